/*
 * What the kinds ask of the pool: the one submission route, and a few
 * facts and counters of its scheduler.
 */
#ifndef CREW_POOL_H
#define CREW_POOL_H

#include "crew.h"
#include "sched/job.h"

#include <stdbool.h>
#include <stdint.h>

/* 0 if the pool takes work from the calling thread now, else ESHUTDOWN
 * (the rule of crew_submit()). */
int crew__pool_accepts(crew_pool *pool);
/* The one submission route (see pool.c): queue a job, handing the queue
 * the caller's hold on it; `flags` are CREW__JOB_* (sched/job.h).
 * Returns 0; ESHUTDOWN if the pool refuses it (nothing was queued);
 * EAGAIN if its max_queued slot could not be had at once
 * (CREW__JOB_NONBLOCKING); ENOMEM if the worker's deque could not grow. */
int crew__pool_submit(crew_pool *pool, struct crew__job *job, unsigned flags);
/* Whether a CREW_CANCEL shutdown of the pool has begun. */
bool crew__pool_is_cancelling(const crew_pool *pool);
/* Whether the pool's tasks hold a slot while queued (max_queued). */
bool crew__pool_counts_slots(const crew_pool *pool);
/* A task of the pool stopped waiting to run: started, or cancelled. */
void crew__pool_release_slot(crew_pool *pool);
/* Count a parallel loop's chunks as tasks that ran: on the calling
 * worker's counters, or the pool's for a thread outside it. */
void crew__pool_count_chunks(crew_pool *pool, uint64_t succeeded,
                             uint64_t failed);
/* Keep the pool's memory until the matching unhold, past
 * crew_pool_destroy(); the caller holds the pool already. */
void crew__pool_hold(crew_pool *pool);
void crew__pool_unhold(crew_pool *pool);

#endif
