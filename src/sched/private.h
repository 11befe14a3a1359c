/*
 * The scheduler's own insides, shared by the files of src/sched/ and by
 * nothing above them (tools/layers.sh checks that): the scheduler's and
 * the workers' structs, and the calls between its files. The layers
 * above see sched/sched.h.
 */
#ifndef CREW_SCHED_PRIVATE_H
#define CREW_SCHED_PRIVATE_H

#include "sched/sched.h"

#include "base/list.h"
#include "base/park.h"
#include "sched/deque.h"
#include "sched/inject.h"
#include "sched/split.h"
#include "sched/stats.h"
#include "sched/timer.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SEARCH_NS 30000 /* how long an idle worker spins for work */
#define BATCH     32    /* most jobs taken from the injection queue at once */
#define SPAWNS    8192  /* spawned calls a worker queues at most: never grown */

enum crew__mode { CREW__OPEN, CREW__DRAINING, CREW__CANCELLING };

struct crew__worker {
    alignas(64) struct crew__deque deque; /* pushed and popped by owner */
    /* Spawned calls (crew_spawn()) only: the owner takes one back at
     * its sync, or runs it while it helps; thieves take the oldest. Of
     * a fixed size, so that a spawn never allocates: past SPAWNS the
     * call runs at once. */
    struct crew__split spawns;
    struct crew__event event; /* this worker sleeps here, and only it */
    /* Spawners whose call this worker took sleep here, in their sync:
     * notified when it finishes such a call or shares calls. */
    struct crew__event frogs;
    /* On the sleeper list; guarded by the scheduler's `sleep_lock`. */
    struct crew__node sleep_link;
    bool listed;
    struct crew__sched *sched;
    pthread_t thread;
    unsigned index;
    bool exiting; /* past its loop: its deque is looked at no more */
    uint32_t rng; /* xorshift state for picking victims; owner only */
    /* Its thread's stack, found by the thread itself: it helps while more
     * than `stack_reserve` bytes lie between its frame and `stack_low`. */
    uintptr_t stack_low;
    size_t stack_reserve;
    /* Spares: on the list for good (next written once, before the worker
     * is published); `spare_busy` under the scheduler's spare_lock. */
    struct crew__worker *spare_next;
    bool spare_busy; /* a thread runs as this worker */
    /* Statistics: written by this worker only, read by anyone. Apart
     * from the deque's indices, which thieves read. */
    alignas(64) _Atomic uint64_t submitted; /* onto its own deque */
    struct crew__tally tally; /* what it took out of a queue, how it ended */
    _Atomic uint64_t stolen;
    _Atomic unsigned running; /* jobs on its stack, helped ones included */
};

struct crew__sched {
    struct crew__inject inject;
    /* Read by every submission and every job run: kept apart from the
     * counters below, which workers write whenever they start or stop
     * looking for work. */
    alignas(64) _Atomic int mode; /* enum crew__mode; only moves forward */
    unsigned threads;
    struct crew__worker *workers;
    struct crew__sched_options options; /* the name, copied */
    /* Workers counted as searching for work: spinning in search(), or
     * woken to and not yet looking (see crew__sched_wake()). */
    alignas(64) atomic_uint searching;
    atomic_uint sleeping;         /* length of the list below */
    struct crew__lock sleep_lock; /* guards the list */
    struct crew__list sleepers;   /* of workers, newest first */
    /* Statistics of what no worker counts: rare events, or one update a
     * parallel loop. Written by the one thread that runs
     * cancel_queued(): */
    alignas(64) struct crew__tally shutdown_tally; /* what it took out */
    _Atomic uint64_t runners;     /* loops' runners in the injection queue */
    _Atomic uint64_t runners_own; /* ... and on their worker's own deque */
    _Atomic uint64_t outside_chunks_ok, outside_chunks_failed;
    /* Shutdown and lifetime. */
    alignas(64) atomic_uint stopping; /* workers idle during shutdown */
    /* Waits that cannot help (see block()), and the spare workers that
     * then run the queued work. Read by submissions, rarely written. */
    atomic_uint blocked;     /* workers in a wait that cannot help */
    atomic_uint spares_live; /* spare workers whose thread runs */
    _Atomic(struct crew__worker *) spares; /* every spare made, newest first */
    unsigned spare_count;                  /* guarded by spare_lock */
    pthread_mutex_t spare_lock; /* guards spare_count and spare_busy */
    pthread_cond_t spare_cond;  /* signalled when a spare's thread ends */
    atomic_uint created;        /* fixed workers whose thread was created */
    atomic_bool done;           /* every worker idle during shutdown */
    atomic_bool detached;       /* destroyed from a worker: last one frees */
    atomic_uint live;           /* workers that have not exited */
    atomic_uint holds;          /* see crew__sched_hold() */
    /* Deadlines (crew__sched_arm()): NULL until the first. */
    _Atomic(struct crew__timer *) timer;
};

/* The calling thread's worker, whichever scheduler it belongs to. */
extern _Thread_local struct crew__worker *crew__self;

static inline enum crew__mode
crew__mode_of(struct crew__sched *sched)
{
    /* seq_cst: a worker reads the mode before its last search for work,
     * and the shutdown closed the injection queue before storing it. */
    return (enum crew__mode)atomic_load_explicit(&sched->mode,
                                                 memory_order_seq_cst);
}

/* The fixed workers whose thread was created: the others' deques are
 * empty. */
static inline unsigned
crew__created_workers(struct crew__sched *sched)
{
    /* Relaxed: a worker's deque was made before its thread, which alone
     * pushes onto it; one not counted yet holds nothing. */
    return atomic_load_explicit(&sched->created, memory_order_relaxed);
}

/* The spare workers ever made, newest first. */
static inline struct crew__worker *
crew__first_spare(const struct crew__sched *sched)
{
    /* Acquire: pairs with the release in spare_new(), so the worker is
     * seen initialised. */
    return atomic_load_explicit(&sched->spares, memory_order_acquire);
}

/*
 * The calls between the files of this folder, lowest first: each file
 * calls only those above it in this list (tools/layers.sh checks it).
 */

/* find.c: finding a job. The next one for w: its own deque's newest,
 * else a batch from the injection queue, else a victim's oldest. The
 * first step inlines; the others are crew__find_job_elsewhere(). */
struct crew__job *crew__find_job_elsewhere(struct crew__worker *w);

static inline struct crew__job *
crew__find_job(struct crew__worker *w)
{
    struct crew__job *job = crew__deque_pop(&w->deque);

    return job != NULL ? job : crew__find_job_elsewhere(w);
}

/* Whether any queue holds a job, or is about to. */
bool crew__has_work(struct crew__worker *w);
/* The oldest spawned call of victim's, taken by w (counted as stolen). */
struct crew__job *crew__steal_spawned(struct crew__worker *w,
                                      struct crew__worker *victim);

static inline void
crew__run_job(struct crew__worker *w, struct crew__job *job)
{
    unsigned running = atomic_load_explicit(&w->running, memory_order_relaxed);

    /* Relaxed: statistics; see crew__counter_add(). */
    atomic_store_explicit(&w->running, running + 1, memory_order_relaxed);
    crew__job_run(job, crew__mode_of(w->sched) == CREW__CANCELLING,
                  &w->tally);
    atomic_store_explicit(&w->running, running, memory_order_relaxed);
}

/* thread.c: a worker's thread. */
int crew__worker_init(struct crew__worker *w, struct crew__sched *sched,
                      unsigned index);
/* Free what crew__worker_init() made; `abandon`: in a child after fork(),
 * leaving the items alone. */
void crew__worker_destroy(struct crew__worker *w, bool abandon);
/* Become, and stop being, a worker on the calling thread. */
void crew__worker_begin(struct crew__worker *w);
void crew__worker_end(struct crew__worker *w);
/* Start w's thread running main, with the scheduler's stack size and
 * every asynchronous signal blocked. */
int crew__worker_start(struct crew__worker *w, void *(*main)(void *),
                       bool detached);

/* spare.c: spare workers for waits that cannot help. */
bool crew__all_blocked(struct crew__sched *sched);
void crew__spawn_spare(struct crew__sched *sched);
void crew__wait_spares(struct crew__sched *sched);
void crew__spares_free(struct crew__sched *sched, bool abandon);

/* idle.c: searching, sleeping and waking. */
void crew__sched_wake_slow(struct crew__sched *sched);

/* Work was published: make sure some worker will look for it. Inline,
 * the common case of a burst: a worker is searching already, and will
 * find it (see idle.c). */
static inline void
crew__sched_wake(struct crew__sched *sched)
{
    /* seq_cst: the load half of the submitter's StoreLoad (idle.c). */
    if (atomic_load_explicit(&sched->searching, memory_order_seq_cst) == 0)
        crew__sched_wake_slow(sched);
}
void crew__sched_wake_all(struct crew__sched *sched);
void crew__sleeper_add(struct crew__worker *w);
bool crew__sleeper_remove(struct crew__worker *w);
void crew__stop_searching(struct crew__worker *w);
struct crew__job *crew__search(struct crew__worker *w, bool counted);
bool crew__park(struct crew__worker *w);
bool crew__idle_while_stopping(struct crew__worker *w);

/* worker.c: the worker loop and helping; then sched.c. */
void *crew__worker_main(void *arg);
/* Wait on w for a spawned call that `thief` took (see
 * crew__sched_wait_spawned()). */
void crew__worker_wait_spawned(struct crew__worker *w,
                               struct crew__worker *thief,
                               struct crew__wait *wait);

#endif
