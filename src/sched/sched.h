/*
 * The scheduler: a pool's worker threads, their deques, the injection
 * queue, the idle protocol and the statistics. It runs jobs (job.h) and
 * knows nothing of futures: a worker that waits helps until a condition
 * it is handed says the wait is over (struct crew__wait), the way Go's
 * gopark takes a callback and never learns what a goroutine waits for.
 * pool.c owns one per pool and gives it the pool's lifetime.
 */
#ifndef CREW_SCHED_SCHED_H
#define CREW_SCHED_SCHED_H

#include "crew.h"

#include "base/park.h"
#include "sched/job.h"
#include "sched/split.h"
#include "sched/timer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew__sched;
struct crew__worker;

struct crew__sched_options {
    unsigned threads;  /* not 0 */
    size_t max_queued; /* 0: no limit */
    size_t stack_size; /* in whole pages; 0: the system's default */
    const char *name;  /* thread-name prefix; copied */
    void (*on_thread_start)(crew_pool *pool, unsigned worker, void *user);
    void (*on_thread_stop)(crew_pool *pool, unsigned worker, void *user);
    void *user;
    crew_pool *pool; /* passed to the hooks */
    /* The last hold went (see crew__sched_hold()): free the pool, which
     * frees the scheduler. */
    void (*unheld)(crew_pool *pool);
};

/* Make a scheduler and start its workers; *out is set before they
 * start, for their hooks. Returns 0; ENOMEM; or EAGAIN (a thread could
 * not be started: those that were are stopped and joined, *out is NULL,
 * and nothing is left). */
int crew__sched_create(struct crew__sched **out,
                       const struct crew__sched_options *options);
/* Free a scheduler whose workers have exited. */
void crew__sched_free(struct crew__sched *sched);
/* Free one inherited across fork(), in the child: no lock is taken, and
 * the jobs in its queues, the parent's, are left alone. */
void crew__sched_abandon(struct crew__sched *sched);

/* Close to new work from outside the workers and start the workers
 * towards the exit: they keep running what they find, or, `cancel`,
 * resolve it cancelled; the injection queue is swept now too. Once. */
void crew__sched_stop(struct crew__sched *sched, bool cancel);
/* Wait for every worker, spares included, to exit. */
void crew__sched_join(struct crew__sched *sched);
/* Called from a worker instead of joining: its threads are detached, and
 * the last one out drops the owner's hold. */
void crew__sched_detach(struct crew__sched *sched);

/* Holds on the scheduler's and its pool's memory: the owner's, taken by
 * crew__sched_create(), and others' (spares, waiting continuations).
 * The caller of hold holds one already; the last unhold calls the
 * options' `unheld`. */
void crew__sched_hold(struct crew__sched *sched);
void crew__sched_unhold(struct crew__sched *sched);

unsigned crew__sched_threads(const struct crew__sched *sched);
/* The name its threads are named after (options.name). */
const char *crew__sched_name(const struct crew__sched *sched);
/* Whether the calling thread is one of this scheduler's workers (in its
 * thread hooks too). */
bool crew__sched_is_mine(const struct crew__sched *sched);
/* 0 if work from the calling thread is accepted now: the scheduler is
 * open, or draining and this is one of its workers. Else ESHUTDOWN. */
int crew__sched_accepts(struct crew__sched *sched);
/* Queue a job, if crew__sched_accepts() would, handing the queue the
 * caller's hold on it: on the calling worker's own deque, else on the
 * injection queue; then wake a worker if none is looking. `flags` are
 * CREW__JOB_*. Returns 0; ESHUTDOWN (refused, or the injection queue is
 * closed: nothing was queued); EAGAIN (no slot, and
 * CREW__JOB_NONBLOCKING); ENOMEM (the deque could not grow). */
int crew__sched_submit(struct crew__sched *sched, struct crew__job *job,
                       unsigned flags);
/* The same for n > 0 jobs at once, all or none, in one hand-over: one
 * push of them all onto the calling worker's deque (the first on top, to
 * run first), or one chain linked onto the injection queue in order.
 * With CREW__JOB_SLOTTED they take n slots at once, waiting their turn;
 * also EINVAL from outside when n slots could never fit. */
int crew__sched_submit_many(struct crew__sched *sched,
                            const struct crew__jobs *jobs, unsigned flags);
/*
 * Spawned calls (crew_spawn()): jobs on a second deque of each worker's,
 * split (sched/split.h): its owner pushes them and takes them back at the
 * sync, or runs them while it helps, and thieves take the oldest shared
 * ones like any job. The owner's side is inline, on the deque itself,
 * which crew__sched_spawns() finds for the calling thread.
 */
struct crew__wait;

extern _Thread_local struct crew__split *crew__spawns_here;
extern _Thread_local const struct crew__sched *crew__spawns_sched;

/* The calling thread's deque of spawned calls if it is one of sched's
 * workers in its loop, else NULL. */
static inline struct crew__split *
crew__sched_spawns(const struct crew__sched *sched)
{
    return crew__spawns_sched == sched ? crew__spawns_here : NULL;
}

/* Share spawned calls of q's, the calling worker's, after
 * crew__split_put() said CREW__SPLIT_TO_SHARE, and make sure a worker
 * will look for them. A spawn puts its call with crew__split_put(): when
 * q is full (it is never grown, so a spawn never allocates) the caller
 * runs the call itself. */
void crew__sched_spawns_share(struct crew__split *q);

/* The worker owning `thief` finished a spawned call whose spawner sleeps
 * in crew__sched_wait_spawned(): wake it. */
void crew__sched_spawns_notify(struct crew__split *thief);
/* The owner of q waits for a spawned call that the worker owning `thief`
 * took: running meanwhile only spawned calls, the thief's (leapfrogging),
 * never other work, so the wait lasts no longer than the call's own
 * work; then sleeping on its event. */
void crew__sched_wait_spawned(struct crew__split *q, struct crew__split *thief,
                              struct crew__wait *wait);

/* Arm a deadline on the scheduler's timer thread, started by the first
 * (sched/timer.h): entry->fire runs on it once entry->deadline has
 * passed, unless disarmed first. The caller keeps a hold on the
 * scheduler while the entry is armed or firing. Returns 0, ENOMEM, or
 * EAGAIN (the thread could not start). */
int crew__sched_arm(struct crew__sched *sched, struct crew__timer_entry *entry);
/* Take an armed entry back: true if it will never fire; false if it has
 * fired or is firing. */
bool crew__sched_disarm(struct crew__sched *sched,
                        struct crew__timer_entry *entry);

/* The calling thread's place among sched's fixed workers, 0 to
 * threads - 1, or `threads` for any other thread (a spare, a thread
 * outside the pool): for counters kept one a thread. */
unsigned crew__sched_slot(const struct crew__sched *sched);

/* Run a job taken out of no queue on the calling thread, one of sched's
 * workers, as if it had taken it from one: its counters, and a
 * CREW_CANCEL stop's cancellation. */
void crew__sched_run_here(struct crew__sched *sched, struct crew__job *job);

/* Whether a CREW_CANCEL stop has begun: a hint for running jobs. */
bool crew__sched_is_cancelling(const struct crew__sched *sched);
/* A job holding a max_queued slot left its queue: give the slot back. */
void crew__sched_release_slot(struct crew__sched *sched);

/* Count a parallel loop's chunks as tasks that ran: on the calling
 * worker's counters, or the scheduler's for a thread outside it. */
void crew__sched_count_chunks(struct crew__sched *sched, uint64_t succeeded,
                              uint64_t failed);
/* Sum every counter into a snapshot (see crew_pool_stats_get()). */
void crew__sched_stats(const struct crew__sched *sched,
                       crew_pool_stats *stats);

/* Start a thread of the library's (sched/thread.c), a worker or not:
 * `stack_size` 0 for the system's default, every signal blocked but
 * those the kernel sends to the thread that caused them. Returns 0, or
 * pthread_create()'s error (EAGAIN). */
int crew__thread_create(pthread_t *thread, void *(*main)(void *), void *arg,
                        size_t stack_size, bool detached);

/* The calling thread's worker, or NULL outside every scheduler. */
struct crew__worker *crew__worker_self(void);
/* In a child after fork(): the calling thread is no worker any more. */
void crew__worker_forget(void);

/* What a worker waits for, seen through three functions. */
struct crew__wait {
    /* Whether the wait is over. */
    bool (*over)(struct crew__wait *wait);
    /* Notify `event` once the wait is over; false (and nothing asked) if
     * it is over already. */
    bool (*arm)(struct crew__wait *wait, struct crew__event *event);
    /* Take back what arm() asked, once the event's sleep has ended. */
    void (*disarm)(struct crew__wait *wait);
};

/* Wait on a worker, running other jobs meanwhile while its stack has
 * room (else it only sleeps, and a spare worker runs the queued work).
 * Returns 0 once the wait is over, or ETIMEDOUT at the absolute
 * monotonic deadline. */
int crew__worker_wait(struct crew__worker *w, struct crew__wait *wait,
                      uint64_t deadline);
#endif
