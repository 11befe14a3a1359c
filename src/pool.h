/*
 * What the kinds ask of the pool: the one submission route, and a few
 * facts and counters of its scheduler. The pool's struct is here, not in
 * pool.c, only so that the route's first steps inline into every
 * submission; nothing but pool.c writes it.
 */
#ifndef CREW_POOL_H
#define CREW_POOL_H

#include "crew.h"

#include "base/clock.h"
#include "base/fork.h"
#include "core/future.h"
#include "sched/job.h"
#include "sched/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* What observes the pool's tasks (traces, latency, the watchdog:
 * src/observe.h), reached by pool.c through these two seams alone. */
struct crew__observer_seams {
    /* crew_pool_destroy() begins: stop what runs beside the pool (the
     * watchdog's thread). `orphan`: in a child after fork(), where that
     * thread is not, and no lock may be taken. */
    void (*retire)(struct crew__observer_seams *observer, bool orphan);
    /* The pool's memory goes: free the observer. */
    void (*free)(struct crew__observer_seams *observer, bool orphan);
};

/* Bits of crew_pool's `observing`: what watches each task run. */
enum {
    CREW__OBSERVE_TRACE = 1u, /* a trace records, and times every task */
    CREW__OBSERVE_WATCH = 2u, /* a watchdog is set */
};

struct crew_pool {
    struct crew__sched *sched;
    unsigned long generation; /* fork generation when created */
    bool slotted;             /* max_queued: queued tasks hold a slot */
    /* CREW__OBSERVE_* bits, set and cleared by trace.c and watchdog.c
     * under the observer's lock; read, relaxed, by every submission and
     * every run. On the line that every submission reads already. */
    _Atomic unsigned observing;
    /* Made by the first trace or watchdog, freed with the pool. */
    _Atomic(struct crew__observer_seams *) observer;
    pthread_mutex_t life_lock; /* guards `life` */
    pthread_cond_t life_cond;  /* signalled when `life` becomes JOINED */
    int life;                  /* enum life, in pool.c */
};

/* Whether the pool was made before a fork(), in a parent: its workers
 * are not in this process. */
static inline bool
crew__pool_is_orphan(const crew_pool *pool)
{
    return pool->generation != crew__fork_generation();
}

/* Note when a task enters a queue, if a trace records: its closure's
 * `queued`, read when it runs (crew__run_begin()). Left alone otherwise:
 * whoever made the closure wrote 0 there. Every job submitted through
 * the pool is a task's (a task, member, continuation or loop runner). */
static inline void
crew__pool_stamp(const crew_pool *pool, crew_future *task)
{
    /* Relaxed: see crew__run_begin(). */
    if ((atomic_load_explicit(&pool->observing, memory_order_relaxed) &
         CREW__OBSERVE_TRACE) != 0)
        task->u.task.queued = crew__ticks();
}

/* Now on the task clock if a trace records, else 0: when work that
 * enters no queue (a parallel loop's chunks) counts as queued. */
static inline uint64_t
crew__pool_trace_now(const crew_pool *pool)
{
    /* Relaxed: see crew__run_begin(). */
    return (atomic_load_explicit(&pool->observing, memory_order_relaxed) &
            CREW__OBSERVE_TRACE) != 0
               ? crew__ticks()
               : 0;
}

/*
 * The one submission route: every kind queues its work here, a job with
 * CREW__JOB_* flags (sched/job.h), handing the queue the caller's hold
 * on it. The pool takes work while it is open, and, draining, from its
 * own workers only; never in a child after fork(). From one of the
 * pool's workers the job goes on that worker's own deque, else on the
 * injection queue; then a worker is woken if none is looking
 * (crew__sched_submit()). A job that holds a max_queued slot
 * (CREW__JOB_SLOTTED) takes it there, waiting for room from outside the
 * pool unless CREW__JOB_NONBLOCKING.
 *
 * A submission racing the pool's shutdown is settled by the injection
 * queue alone (see sched/inject.c): either it is refused, ESHUTDOWN, with
 * nothing queued, or it is queued ahead of the close, where the shutdown
 * finds it and runs or cancels it like any other. Nothing is taken back.
 *
 * Returns 0; ESHUTDOWN (nothing was queued); EAGAIN if the slot could not
 * be had at once; ENOMEM if the worker's deque could not grow.
 */
static inline int
crew__pool_submit(crew_pool *pool, struct crew__job *job, unsigned flags)
{
    if (crew__pool_is_orphan(pool))
        return ESHUTDOWN;
    crew__pool_stamp(pool, crew__future_of_job(job));
    return crew__sched_submit(pool->sched, job, flags);
}

/* The route for a batch: n jobs, all or none, in one hand-over (see
 * crew__sched_submit_many()). */
static inline int
crew__pool_submit_many(crew_pool *pool, const struct crew__jobs *jobs,
                       unsigned flags)
{
    if (crew__pool_is_orphan(pool))
        return ESHUTDOWN;
    uint64_t now = crew__pool_trace_now(pool);

    for (size_t i = 0; now != 0 && i < jobs->n; i++)
        crew__future_of_job(crew__jobs_at(jobs, i))->u.task.queued = now;
    return crew__sched_submit_many(pool->sched, jobs, flags);
}

/* 0 if the pool takes work from the calling thread now, else ESHUTDOWN
 * (the rule of crew__pool_submit()), for a kind that checks before it
 * allocates. */
int crew__pool_accepts(crew_pool *pool);

/* Whether the pool's tasks hold a slot while queued (max_queued). */
static inline bool
crew__pool_counts_slots(const crew_pool *pool)
{
    return pool->slotted;
}

/* Whether a CREW_CANCEL shutdown of the pool has begun. */
bool crew__pool_is_cancelling(const crew_pool *pool);
/* A task of the pool stopped waiting to run: started, or cancelled. */
void crew__pool_release_slot(crew_pool *pool);
/* Count a parallel loop's chunks as tasks that ran: on the calling
 * worker's counters, or the pool's for a thread outside it. */
void crew__pool_count_chunks(crew_pool *pool, uint64_t succeeded,
                             uint64_t failed);
/* Deadlines, kept by the pool's timer thread (crew__sched_arm()). */
static inline int
crew__pool_arm(crew_pool *pool, struct crew__timer_entry *entry)
{
    return crew__sched_arm(pool->sched, entry);
}

static inline bool
crew__pool_disarm(crew_pool *pool, struct crew__timer_entry *entry)
{
    return crew__sched_disarm(pool->sched, entry);
}

/* The calling thread's place among the pool's workers, or
 * crew_pool_threads() for any other thread (crew__sched_slot()). */
static inline unsigned
crew__pool_slot(const crew_pool *pool)
{
    return crew__sched_slot(pool->sched);
}

/* The pool's name, its threads' prefix. */
static inline const char *
crew__pool_name(const crew_pool *pool)
{
    return crew__sched_name(pool->sched);
}

/* Run a job on the calling thread, one of the pool's workers, as if it
 * had taken it from a queue. */
void crew__pool_run_here(crew_pool *pool, struct crew__job *job);
/* Keep the pool's memory until the matching unhold, past
 * crew_pool_destroy(); the caller holds the pool already. */
void crew__pool_hold(crew_pool *pool);
void crew__pool_unhold(crew_pool *pool);

#endif
