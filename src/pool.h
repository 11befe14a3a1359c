/*
 * What the rest of the library asks of the pool: who is a worker, how a
 * worker waits while helping, and two facts about a pool's state.
 */
#ifndef CREW_POOL_H
#define CREW_POOL_H

#include "crew.h"
#include "sched/job.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct crew__worker;

/* How many fork()s lie between the first process and this one: pools
 * and futures made under an older value belong to a parent. Bumped in
 * each child, by a pthread_atfork() handler. */
extern atomic_ulong crew__forks;

static inline unsigned long
crew__fork_generation(void)
{
    /* Relaxed: it changes only in a child, while it has a single
     * thread. */
    return atomic_load_explicit(&crew__forks, memory_order_relaxed);
}
/* The calling thread's worker, or NULL outside every pool. */
struct crew__worker *crew__worker_self(void);
/* Wait for a future on a worker, running other tasks meanwhile. Returns
 * 0 once it has resolved, or ETIMEDOUT at the absolute deadline. */
int crew__worker_wait(struct crew__worker *worker, crew_future *future,
                      uint64_t deadline);
/* Whether a CREW_CANCEL shutdown of the pool has begun. */
bool crew__pool_is_cancelling(const crew_pool *pool);
/* Whether the pool's tasks hold a slot while queued (max_queued). */
bool crew__pool_counts_slots(const crew_pool *pool);
/* A task of the pool stopped waiting to run: started, or cancelled. */
void crew__pool_release_slot(crew_pool *pool);
/* Keep the pool's memory until the matching unhold, past
 * crew_pool_destroy(); the caller holds the pool already. */
void crew__pool_hold(crew_pool *pool);
void crew__pool_unhold(crew_pool *pool);
/* 0 if the pool takes work from the calling thread now, else ESHUTDOWN
 * (the rule of crew_submit()). */
int crew__pool_accepts(crew_pool *pool);
/* The one submission route (see pool.c): queue a job, handing the queue
 * the caller's hold on it; `flags` are CREW__JOB_* (sched/job.h).
 * Returns 0; ESHUTDOWN if the pool refuses it (nothing was queued);
 * EAGAIN if its max_queued slot could not be had at once
 * (CREW__JOB_NONBLOCKING); ENOMEM if the worker's deque could not grow. */
int crew__pool_submit(crew_pool *pool, struct crew__job *job, unsigned flags);
/* Count a parallel loop's chunks as tasks that ran: on the calling
 * worker's counters, or the pool's for a thread outside it. */
void crew__pool_count_chunks(crew_pool *pool, uint64_t succeeded,
                             uint64_t failed);

#endif
