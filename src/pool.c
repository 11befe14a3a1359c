/*
 * Pools: lifecycle, the worker loop, helping while waiting, shutdown,
 * submission.
 *
 * Theory of operation. Each worker owns a deque: a task submitted from a
 * worker goes on that worker's own deque, a task from any other thread on
 * the pool's injection queue. A worker looks for work in its own deque
 * (newest first), then the injection queue (a batch at a time, onto its
 * deque), then the other workers' deques (oldest first), starting from a
 * random victim. Finding none, it searches for a while, counted in
 * `searching`, then lists itself on the sleeper list, rechecks every
 * queue, and sleeps on its own event. A submission wakes a sleeper only
 * when no worker searches (see wake_searcher()): a burst of submissions
 * costs one wake-up, and none is lost.
 *
 * A worker that waits on a future helps: it runs tasks as above until the
 * future resolves, and with none to run sleeps on its own event, listed
 * as a sleeper and with a waiter node on the future, so either new work
 * or the resolution wakes it. Helping nests: a helped task that waits
 * helps in turn, as deep as the worker's stack has room for (see
 * has_room()). Past that a wait blocks: it runs nothing and only the
 * future's resolution wakes it. When every worker is blocked so while
 * work is queued, a spare worker is started to run that work (see
 * spawn_spare()), so no wait hangs for lack of a thread.
 *
 * Shutdown. The injection queue closes first, then `mode` leaves OPEN, so
 * a worker that sees the new mode finds every outside task in the queue.
 * Workers keep running (DRAIN) or cancelling (CANCEL) whatever they find.
 * A worker that finds nothing during shutdown counts itself in `stopping`:
 * an idle worker pushes nothing, so once every worker is counted, every
 * deque is empty for good. The last one counted checks the injection
 * queue once more (a push from before the close may still be halfway
 * through it), then sets `done` and wakes the rest, which exit. A pool
 * destroyed from one of its own workers is `detached`: its threads are
 * detached and the last worker to exit lets go of it.
 *
 * Memory. The pool's memory is freed when its last hold goes: the
 * owner's, which crew_pool_destroy() (or, detached, the last worker out)
 * drops, and one for each continuation still waiting on its input, which
 * must be able to find the pool, shut down, when the input resolves.
 *
 * Statistics. Each worker counts what it does in counters of its own,
 * which only it writes (a load and a store, no read-modify-write) and
 * crew_pool_stats_get() sums: tasks it submitted to its own deque, ran to
 * each outcome (a task cancelled where it lay when its husk comes out),
 * stole, whether it is running one, and the runners it took out of a
 * queue. The injection queue counts its pushes and pops. Rare events are
 * counted on the pool, off every task's path: what a CREW_CANCEL shutdown
 * takes out of the injection queue, and loops' runners going in. See
 * crew_pool_stats_get().
 *
 * After fork() the child has none of the workers: a pool made before the
 * fork (generation older than the process's) refuses everything that
 * needs them, and is freed without joining.
 *
 * Lock order: `life_lock` is outermost; nothing else nests with it.
 * `sleep_lock` guards the sleeper list and is held only for its links (and
 * by wake_all() for the notifications). No user code runs under a library
 * lock.
 */
#include "pool.h"

#include "base/alloc.h"
#include "sched/deque.h"
#include "base/fault.h"
#include "core/future.h"
#include "sched/inject.h"
#include "base/park.h"
#include "base/platform.h"
#include "task.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#define SEARCH_NS       30000       /* how long an idle worker spins for work */
#define STEAL_TRIES     64          /* most victims one steal() looks at */
#define RESERVE_MIN     (32 * 1024) /* stack a helping worker leaves free */
#define BATCH           32 /* most tasks taken from the injection queue */
#define NAME_MAX_LENGTH 15 /* Linux thread names: 16 bytes with the NUL */

enum mode { OPEN, DRAINING, CANCELLING };
enum life { RUNNING, STOPPING, JOINED };

struct crew__worker {
    alignas(64) struct crew__deque deque; /* pushed and popped by owner */
    struct crew__event event; /* this worker sleeps here, and only it */
    /* On the pool's sleeper list; guarded by the pool's `sleep_lock`. */
    struct crew__node sleep_link;
    bool listed;
    crew_pool *pool;
    pthread_t thread;
    unsigned index;
    bool exiting; /* past its loop: its deque is looked at no more */
    uint32_t rng; /* xorshift state for picking victims; owner only */
    /* Its thread's stack, found by the thread itself: it helps while more
     * than `stack_reserve` bytes lie between its frame and `stack_low`. */
    uintptr_t stack_low;
    size_t stack_reserve;
    /* Spares: on the pool's list for good (next written once, before the
     * worker is published); `spare_busy` under the pool's spare_lock. */
    struct crew__worker *spare_next;
    bool spare_busy; /* a thread runs as this worker */
    /* Statistics: written by this worker only, read by anyone. Apart
     * from the deque's indices, which thieves read. */
    alignas(64) _Atomic uint64_t submitted; /* onto its own deque */
    struct crew__tally tally; /* what it took out of a queue, how it ended */
    _Atomic uint64_t stolen;
    _Atomic unsigned running; /* tasks on its stack, helped ones included */
};

struct crew_pool {
    struct crew__inject inject;
    /* Read by every submission and every task run: kept apart from the
     * counters below, which workers write whenever they start or stop
     * looking for work. */
    alignas(64) _Atomic int mode; /* enum mode; only ever moves forward */
    unsigned threads;
    struct crew__worker *workers;
    unsigned long generation; /* fork generation when created */
    char *name;
    void (*on_thread_start)(crew_pool *pool, unsigned worker, void *user);
    void (*on_thread_stop)(crew_pool *pool, unsigned worker, void *user);
    void *user;
    /* Workers counted as searching for work: spinning in search(), or
     * woken to and not yet looking (see wake_searcher()). */
    alignas(64) atomic_uint searching;
    atomic_uint sleeping;          /* length of the list below */
    struct crew__lock sleep_lock;  /* guards the list */
    struct crew__list sleepers;   /* of workers, newest first */
    /* Statistics of what no worker counts: rare events, or one update
     * a parallel loop. */
    /* Written by the one thread that runs cancel_queued(): */
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
    size_t stack_size;                     /* of every worker; 0: the default */
    pthread_mutex_t spare_lock; /* guards spare_count and spare_busy */
    pthread_cond_t spare_cond;  /* signalled when a spare's thread ends */
    atomic_uint created;        /* fixed workers whose thread was created */
    atomic_bool done;           /* every worker idle during shutdown */
    atomic_bool detached;       /* destroyed from a worker: last one frees */
    atomic_uint live;           /* workers that have not exited */
    atomic_uint holds;          /* the owner's, and waiting continuations' */
    pthread_mutex_t life_lock;  /* guards `life` */
    pthread_cond_t life_cond;   /* signalled when `life` becomes JOINED */
    enum life life;
};

static _Thread_local struct crew__worker *self;

static bool all_blocked(crew_pool *pool);
static void spawn_spare(crew_pool *pool);

/* Bumped in each child after fork(); pools remember the value they were
 * made under. */
atomic_ulong crew__forks;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
after_fork_in_child(void)
{
    /* Relaxed: the child has a single thread now. */
    atomic_fetch_add_explicit(&crew__forks, 1, memory_order_relaxed);
    /* A task that forked left its worker's identity on this thread; in
     * the child it is no worker: it must not help, nor count as one. */
    self = NULL;
}

static void
register_atfork(void)
{
    /* If registration fails (ENOMEM), fork detection is lost, nothing
     * else: there is no caller to tell, and pools still work. */
    (void)pthread_atfork(NULL, NULL, after_fork_in_child);
}

static bool
is_orphan(const crew_pool *pool)
{
    return pool->generation != crew__fork_generation();
}

struct crew__worker *
crew__worker_self(void)
{
    return self;
}

bool
crew__pool_is_cancelling(const crew_pool *pool)
{
    /* Relaxed: a hint for running tasks; it carries no data. */
    return atomic_load_explicit(&((crew_pool *)pool)->mode,
                                memory_order_relaxed) == CANCELLING;
}

bool
crew__pool_counts_slots(const crew_pool *pool)
{
    return pool->inject.max_queued != 0;
}

void
crew__pool_release_slot(crew_pool *pool)
{
    crew__inject_release_slot(&pool->inject);
}

static struct crew__job *
job_of_link(struct crew__link *link)
{
    return crew__container_of(link, struct crew__job, link);
}

static uint32_t
next_random(struct crew__worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}

/* The fixed workers whose thread was created: the others' deques are
 * empty. */
static unsigned
created_workers(const crew_pool *pool)
{
    /* Relaxed: a worker's deque was made before its thread, which alone
     * pushes onto it; one not counted yet holds nothing. */
    return atomic_load_explicit(&((crew_pool *)pool)->created,
                                memory_order_relaxed);
}

/* The spare workers ever made, newest first. */
static struct crew__worker *
first_spare(const crew_pool *pool)
{
    /* Acquire: pairs with the release in spare_new(), so the worker is
     * seen initialised. */
    return atomic_load_explicit(&((crew_pool *)pool)->spares,
                                memory_order_acquire);
}

static struct crew__job *
steal_from(struct crew__worker *w, struct crew__worker *victim)
{
    struct crew__job *f;

    if (victim == w)
        return NULL;
    f = crew__deque_steal(&victim->deque);
    if (f != NULL)
        crew__counter_add(&w->stolen, 1);
    return f;
}

/* A task from another worker's deque: up to STEAL_TRIES fixed workers
 * from a random one on, then the spares, if any. A steal that finds
 * nothing is no promise that nothing is there: has_work() is. */
static struct crew__job *
steal(struct crew__worker *w)
{
    crew_pool *pool = w->pool;
    unsigned n = created_workers(pool);
    unsigned tries = n < STEAL_TRIES ? n : STEAL_TRIES;
    unsigned start = n > 0 ? next_random(w) % n : 0;
    struct crew__job *f = NULL;

    for (unsigned i = 0; i < tries && f == NULL; i++)
        f = steal_from(w, &pool->workers[(start + i) % n]);
    for (struct crew__worker *v = first_spare(pool); v != NULL && f == NULL;
         v = v->spare_next)
        f = steal_from(w, v);
    return f;
}

/*
 * Take a batch from the injection queue: the oldest is returned to run
 * now, the rest go on w's deque, newest first, where w pops them in
 * submission order and idle workers can steal them. w's deque is empty
 * (find_task() looked first), and its ring holds at least 64 items, so
 * the push never grows it and never fails.
 */
static struct crew__job *
take_batch(struct crew__worker *w)
{
    struct crew__link *batch[BATCH];
    void *rest[BATCH];
    size_t n = crew__inject_pop_batch(&w->pool->inject, batch, BATCH);

    if (n == 0)
        return NULL;
    for (size_t i = 1; i < n; i++)
        rest[n - 1 - i] = job_of_link(batch[i]);
    int err = crew__deque_push_many(&w->deque, rest, n - 1);
    assert(err == 0);
    (void)err;
    return job_of_link(batch[0]);
}

/* The next task for w: its own deque, the injection queue, then a
 * victim's deque. */
static struct crew__job *
find_task(struct crew__worker *w)
{
    struct crew__job *f = crew__deque_pop(&w->deque);

    if (f != NULL)
        return f;
    f = take_batch(w);
    if (f != NULL)
        return f;
    return steal(w);
}

/* Whether any queue of the pool holds a task, or is about to. */
static bool
has_work(struct crew__worker *w)
{
    crew_pool *pool = w->pool;
    unsigned n = created_workers(pool);

    if (!crew__inject_is_empty(&pool->inject))
        return true;
    for (unsigned i = 0; i < n; i++) {
        if (!crew__deque_is_empty(&pool->workers[i].deque))
            return true;
    }
    for (struct crew__worker *v = first_spare(pool); v != NULL;
         v = v->spare_next) {
        if (!crew__deque_is_empty(&v->deque))
            return true;
    }
    return false;
}

static enum mode
mode_of(crew_pool *pool)
{
    /* seq_cst: a worker reads the mode before its last search for work,
     * and the shutdown closed the injection queue before storing it. */
    return (enum mode)atomic_load_explicit(&pool->mode, memory_order_seq_cst);
}

static void
run(struct crew__worker *w, struct crew__job *f)
{
    unsigned running = atomic_load_explicit(&w->running, memory_order_relaxed);

    /* Relaxed: statistics; see crew__counter_add(). */
    atomic_store_explicit(&w->running, running + 1, memory_order_relaxed);
    crew__job_run(f, mode_of(w->pool) == CANCELLING, &w->tally);
    atomic_store_explicit(&w->running, running, memory_order_relaxed);
}

/*
 * Sleeping and waking. An idle worker puts itself on the pool's sleeper
 * list, rechecks every queue, and sleeps on its own event. A submitter,
 * having published its task, wakes a sleeper only when no worker is
 * counted in `searching`, and then counts the sleeper there itself before
 * taking it off the list: later submitters see a searcher and wake no
 * one, so a burst of submissions costs one wake-up, not one each (the
 * rule of Go's scheduler). A worker that finds itself taken off the list
 * when it wakes knows it was woken to search and is counted.
 *
 * No wake-up is lost: a sleeper lists itself (seq_cst) and then reads the
 * queues; a submitter pushes (seq_cst) and then reads `searching` and
 * `sleeping`. In the single total order, either the sleeper's recheck
 * sees the task, or the submitter sees the sleeper listed and wakes it
 * (or sees a searcher, who in turn rechecks before it sleeps).
 */
static void
list_sleeper(struct crew__worker *w)
{
    crew_pool *pool = w->pool;

    crew__lock_acquire(&pool->sleep_lock);
    crew__list_push(&pool->sleepers, &w->sleep_link);
    w->listed = true;
    /* seq_cst: the store half of the sleeper's StoreLoad; see above. */
    atomic_fetch_add_explicit(&pool->sleeping, 1, memory_order_seq_cst);
    crew__lock_release(&pool->sleep_lock);
}

static void
unlink_sleeper(crew_pool *pool, struct crew__worker *w)
{
    crew__list_remove(&pool->sleepers, &w->sleep_link);
    w->listed = false;
    /* Relaxed: a stale count only costs a waker a look at the list. */
    atomic_fetch_sub_explicit(&pool->sleeping, 1, memory_order_relaxed);
}

/* Take w off the sleeper list. Returns false if a waker took it off
 * first: then w was woken to search, and is counted in `searching`. */
static bool
unlist_sleeper(struct crew__worker *w)
{
    crew_pool *pool = w->pool;
    bool listed;

    crew__lock_acquire(&pool->sleep_lock);
    listed = w->listed;
    if (listed)
        unlink_sleeper(pool, w);
    crew__lock_release(&pool->sleep_lock);
    return listed;
}

/* Work was published: make sure some worker will look for it. */
static void
wake_searcher(crew_pool *pool)
{
    struct crew__worker *w;
    unsigned none = 0;

    /* seq_cst: the load half of the submitter's StoreLoad; see above. */
    if (atomic_load_explicit(&pool->searching, memory_order_seq_cst) != 0)
        return;
    if (atomic_load_explicit(&pool->sleeping, memory_order_seq_cst) == 0) {
        /* Every worker runs a task, or waits: see block(). */
        if (all_blocked(pool))
            spawn_spare(pool);
        return;
    }
    /* Count the sleeper as searching before it wakes. Failing, another
     * worker started searching, and it will find the work. */
    if (!atomic_compare_exchange_strong_explicit(&pool->searching, &none, 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    crew__lock_acquire(&pool->sleep_lock);
    w = crew__list_is_empty(&pool->sleepers)
            ? NULL
            : crew__container_of(pool->sleepers.first, struct crew__worker,
                                 sleep_link);
    if (w != NULL)
        unlink_sleeper(pool, w);
    crew__lock_release(&pool->sleep_lock);
    if (w != NULL) {
        crew__event_notify_all(&w->event);
    } else {
        /* The sleepers left on their own, each to recheck the queues
         * after listing itself, which finds this work. */
        atomic_fetch_sub_explicit(&pool->searching, 1, memory_order_seq_cst);
    }
}

/* Wake every sleeper: the pool's mode changed. */
static void
wake_all(crew_pool *pool)
{
    struct crew__node *list;

    crew__lock_acquire(&pool->sleep_lock);
    list = crew__list_take_all(&pool->sleepers);
    for (struct crew__node *n = list; n != NULL; n = n->next) {
        crew__container_of(n, struct crew__worker, sleep_link)->listed = false;
        atomic_fetch_add_explicit(&pool->searching, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&pool->sleeping, 0, memory_order_relaxed);
    /* Notified under the lock: a woken worker may leave its sleep, find
     * itself unlisted, and be relisted, rewriting its link. */
    for (struct crew__node *n = list; n != NULL; n = n->next)
        crew__event_notify_all(
            &crew__container_of(n, struct crew__worker, sleep_link)->event);
    crew__lock_release(&pool->sleep_lock);
}

/* w stops being counted in `searching`, having found work or not. If it
 * was the last searcher and work waits, submitters that saw it searching
 * woke no one for that work: wake a sleeper for it. */
static void
stop_searching(struct crew__worker *w)
{
    crew_pool *pool = w->pool;

    /* seq_cst: ordered before the has_work() rechecks that follow, here
     * and in park(), against a submitter that saw w searching. */
    if (atomic_fetch_sub_explicit(&pool->searching, 1, memory_order_seq_cst) ==
            1 &&
        has_work(w))
        wake_searcher(pool);
}

/*
 * Helping nests: a helped task that waits helps in turn, each level a few
 * frames deeper on the worker's stack. A wait helps while more than the
 * worker's reserve of stack lies below its frame, so that the tasks it
 * runs have room; past that it blocks: it sleeps until its future
 * resolves, running nothing, counted in `blocked`.
 */
static bool
has_room(const struct crew__worker *w)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);

    return here > w->stack_low && here - w->stack_low > w->stack_reserve;
}

/* Record where the calling worker's stack ends, and what to keep free. */
static void
find_stack(struct crew__worker *w)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    void *low;
    size_t size;

    if (!crew__thread_stack(&low, &size)) {
        /* Unknown: assume the stack it was given, less a guess at what
         * the thread library keeps at its top. */
        size = w->pool->stack_size != 0 ? w->pool->stack_size
                                        : crew__stack_default();
        low = (void *)(here - (size - size / 16));
    }
    w->stack_low = (uintptr_t)low;
    w->stack_reserve = size / 8 > RESERVE_MIN   ? size / 8
                       : size / 2 < RESERVE_MIN ? size / 2
                                                : RESERVE_MIN;
}

/* Whether every worker, spares included, sits in a wait that cannot help.
 * seq_cst: the load half of a StoreLoad, against block() for a submitter
 * that pushed work, and against a push for a worker that blocked. */
static bool
all_blocked(crew_pool *pool)
{
    unsigned blocked =
        atomic_load_explicit(&pool->blocked, memory_order_seq_cst);

    return blocked != 0 &&
           blocked >= atomic_load_explicit(&pool->live, memory_order_seq_cst) +
                          atomic_load_explicit(&pool->spares_live,
                                               memory_order_seq_cst);
}

/*
 * w starts a wait that cannot help. If every worker now waits so while
 * work is queued, nobody would run it: start a spare worker. No need
 * goes unseen: w counts itself (seq_cst) and then looks at the queues; a
 * submitter pushes (seq_cst) and then reads the counts (wake_searcher());
 * a spare that leaves uncounts itself and then looks (spare_main()). In
 * the single total order, the last of them sees the others.
 */
static void
block(struct crew__worker *w)
{
    crew_pool *pool = w->pool;

    atomic_fetch_add_explicit(&pool->blocked, 1, memory_order_seq_cst);
    if (all_blocked(pool) && has_work(w))
        spawn_spare(pool);
}

static void
unblock(struct crew__worker *w)
{
    /* Relaxed: a count too high for a moment can only start a spare
     * that finds nothing to do and leaves. */
    atomic_fetch_sub_explicit(&w->pool->blocked, 1, memory_order_relaxed);
}

int
crew__worker_wait(struct crew__worker *w, crew_future *future,
                  uint64_t deadline)
{
    bool help = has_room(w);
    struct crew__waiter waiter = {.event = &w->event};
    int err = 0;

    for (;;) {
        if (crew__future_is_resolved(future))
            break;
        if (deadline != UINT64_MAX && crew__now_ns() >= deadline) {
            err = ETIMEDOUT;
            break;
        }
        struct crew__job *f = help ? find_task(w) : NULL;
        if (f != NULL) {
            run(w, f);
            crew__future_flush();
            continue;
        }
        uint32_t key = crew__event_prepare(&w->event);
        if (!crew__future_add_waiter(future, &waiter)) {
            crew__event_cancel(&w->event);
            break;
        }
        if (help) {
            /* Woken by new work as well as by the future. */
            list_sleeper(w);
            if (has_work(w))
                crew__event_cancel(&w->event);
            else
                crew__event_wait(&w->event, key, deadline);
        } else {
            /* Woken by the future alone. */
            block(w);
            crew__event_wait(&w->event, key, deadline);
            unblock(w);
        }
        crew__future_remove_waiter(future, &waiter);
        /* Woken to search: this loop looks for work anyway, but may leave
         * at once if the future has resolved; pass the duty on. */
        if (help && !unlist_sleeper(w))
            stop_searching(w);
    }
    return err;
}

/*
 * Spin for a while looking for work, counted in `searching`, before
 * parking. While a worker searches, submissions wake nobody: the
 * searcher will find their tasks. A searcher that gives up rechecks
 * every queue after it has left the count (in park()), so a task pushed
 * by a submitter that saw it searching is never stranded. At most half of
 * the workers search at once, at least one, unless woken to (`counted`):
 * spinning costs the cores that running tasks could use.
 */
static struct crew__job *
search(struct crew__worker *w, bool counted)
{
    crew_pool *pool = w->pool;
    struct crew__job *f = NULL;
    uint64_t deadline;

    if (!counted) {
        /* Relaxed: a heuristic bound; a worker that does not search
         * parks, which is always correct. */
        if (2 * atomic_load_explicit(&pool->searching, memory_order_relaxed) >=
            pool->threads)
            return NULL;
        /* seq_cst: against the submitter's push then read of
         * `searching`; this count precedes the searches below. */
        atomic_fetch_add_explicit(&pool->searching, 1, memory_order_seq_cst);
    }
    deadline = crew__now_ns() + SEARCH_NS;
    for (unsigned round = 1;; round++) {
        f = find_task(w);
        if (f != NULL || mode_of(pool) != OPEN)
            break;
        if (round % 16 == 0) {
            if (crew__now_ns() >= deadline)
                break;
            crew__thread_yield();
        }
        for (int i = 0; i < 8; i++)
            crew__cpu_relax();
    }
    stop_searching(w);
    return f;
}

/* Park an idle worker of an open pool until something changes. Returns
 * true if it was woken to search, and is counted in `searching`. */
static bool
park(struct crew__worker *w)
{
    crew_pool *pool = w->pool;
    uint32_t key;

    /* A worker that lost the race for a task sees work still queued:
     * looking again costs less than listing itself as a sleeper. */
    if (has_work(w))
        return false;
    key = crew__event_prepare(&w->event);
    list_sleeper(w);
    if (has_work(w) || mode_of(pool) != OPEN)
        crew__event_cancel(&w->event);
    else
        crew__event_wait(&w->event, key, UINT64_MAX);
    return !unlist_sleeper(w);
}

/* A worker found nothing to do during shutdown. Returns true when every
 * worker is idle, and it may exit. */
static bool
idle_while_stopping(struct crew__worker *w)
{
    crew_pool *pool = w->pool;

    /* Acquire-release: the last worker counted sees the others' searches
     * as finished. */
    unsigned idle =
        atomic_fetch_add_explicit(&pool->stopping, 1, memory_order_acq_rel) + 1;

    if (idle == pool->threads) {
        /* Every deque is empty for good, but the injection queue may
         * hold a task no worker could take yet: pushed before the close,
         * and halfway through its push. Look again. */
        if (has_work(w)) {
            atomic_fetch_sub_explicit(&pool->stopping, 1, memory_order_acq_rel);
            return false;
        }
        /* seq_cst, StoreLoad: against the sleepers below, which list
         * themselves and then read `done`. */
        atomic_store_explicit(&pool->done, true, memory_order_seq_cst);
        wake_all(pool);
        return true;
    }
    uint32_t key = crew__event_prepare(&w->event);
    list_sleeper(w);
    if (atomic_load_explicit(&pool->done, memory_order_seq_cst) || has_work(w))
        crew__event_cancel(&w->event);
    else
        crew__event_wait(&w->event, key, UINT64_MAX);
    if (!unlist_sleeper(w)) {
        /* Relaxed: during shutdown no submitter relies on searchers. */
        atomic_fetch_sub_explicit(&pool->searching, 1, memory_order_relaxed);
    }
    if (atomic_load_explicit(&pool->done, memory_order_seq_cst))
        return true;
    atomic_fetch_sub_explicit(&pool->stopping, 1, memory_order_acq_rel);
    return false;
}

static void pool_free(crew_pool *pool);

/* What every worker does first: become the pool's worker on this thread. */
static void
worker_begin(struct crew__worker *w)
{
    crew_pool *pool = w->pool;
    char name[NAME_MAX_LENGTH + 1];

    self = w;
    find_stack(w);
    snprintf(name, sizeof(name), "%s-%u", pool->name, w->index);
    crew__thread_set_name(name);
    if (pool->on_thread_start != NULL)
        pool->on_thread_start(pool, w->index, pool->user);
}

/* And last. Still the pool's worker (shutdown from the hook is EDEADLK),
 * but one that will look at its deque no more: a submission from here on
 * is an outside one, refused during the shutdown. */
static void
worker_end(struct crew__worker *w)
{
    crew_pool *pool = w->pool;

    w->exiting = true;
    if (pool->on_thread_stop != NULL)
        pool->on_thread_stop(pool, w->index, pool->user);
    self = NULL;
}

static void *
worker_main(void *arg)
{
    struct crew__worker *w = arg;
    crew_pool *pool = w->pool;

    worker_begin(w);
    for (bool woken = false;;) {
        enum mode mode = mode_of(pool);
        struct crew__job *f = woken ? NULL : find_task(w);
        if (f == NULL && (mode == OPEN || woken))
            f = search(w, woken);
        woken = false;
        if (f != NULL) {
            run(w, f);
            continue;
        }
        if (mode == OPEN)
            woken = park(w);
        else if (idle_while_stopping(w))
            break;
    }
    worker_end(w);
    /* Acquire-release: the last worker out sees `detached` and every
     * other worker's last writes before it lets go of the pool. */
    if (atomic_fetch_sub_explicit(&pool->live, 1, memory_order_acq_rel) == 1 &&
        atomic_load_explicit(&pool->detached, memory_order_acquire))
        crew__pool_unhold(pool);
    return NULL;
}

/*
 * Spare workers. When every worker sits in a wait that cannot help (out
 * of stack room) while work is queued, nobody would run that work: a
 * spare worker, a thread of its own with a deque of its own, runs it, the
 * way Java's ForkJoinPool compensates a blocked worker. A spare runs
 * whatever it finds, then, finding nothing for a search's time, leaves;
 * shutdowns wait for it. Its struct stays on the pool's list until the
 * pool is freed (thieves may still look at its deque), and the next spare
 * reuses it. Spares are counted apart from the fixed workers, which alone
 * crew_pool_threads() and the statistics' `threads` count.
 */
static struct crew__job *
spare_search(struct crew__worker *w)
{
    uint64_t deadline = crew__now_ns() + SEARCH_NS;

    for (unsigned round = 1;; round++) {
        struct crew__job *f = find_task(w);
        if (f != NULL)
            return f;
        if (round % 16 == 0) {
            if (crew__now_ns() >= deadline)
                return NULL;
            crew__thread_yield();
        }
        for (int i = 0; i < 8; i++)
            crew__cpu_relax();
    }
}

static void *
spare_main(void *arg)
{
    struct crew__worker *w = arg;
    crew_pool *pool = w->pool;
    struct crew__job *f;

    worker_begin(w);
    while ((f = spare_search(w)) != NULL)
        run(w, f);
    worker_end(w);
    /* seq_cst: the store half of a StoreLoad; see block(). Its deque is
     * empty: only it pushes there, and it pops before it searches. */
    atomic_fetch_sub_explicit(&pool->spares_live, 1, memory_order_seq_cst);
    if (all_blocked(pool) && has_work(w))
        spawn_spare(pool);
    pthread_mutex_lock(&pool->spare_lock);
    w->spare_busy = false;
    pthread_cond_broadcast(&pool->spare_cond);
    pthread_mutex_unlock(&pool->spare_lock);
    crew__pool_unhold(pool); /* taken by spawn_spare() */
    return NULL;
}

/* A new spare worker, on the pool's list; NULL on ENOMEM. The caller
 * holds spare_lock. */
static struct crew__worker *
spare_new(crew_pool *pool)
{
    struct crew__worker *w = crew__calloc_aligned(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    if (crew__deque_init(&w->deque) != 0) {
        crew__free(w);
        return NULL;
    }
    crew__event_init(&w->event);
    w->pool = pool;
    w->index = pool->threads + pool->spare_count++;
    w->rng = 2654435761u * (w->index + 1);
    w->spare_next = first_spare(pool);
    /* Release: pairs with the acquire in first_spare(). */
    atomic_store_explicit(&pool->spares, w, memory_order_release);
    return w;
}

static int start_thread(crew_pool *pool, struct crew__worker *w,
                        void *(*main)(void *), bool detached);

/*
 * Start a spare worker, reusing an idle one's struct, unless one started
 * since the caller saw every worker blocked: that one is not blocked, and
 * it will find the work or, leaving, look again (spare_main()). Spawners
 * take turns under spare_lock, so every request is met by a spare
 * started for it or before it. Best effort: if no thread can be started,
 * the next submission, blocked wait or leaving spare tries again.
 */
static void
spawn_spare(crew_pool *pool)
{
    struct crew__worker *w = NULL;

    pthread_mutex_lock(&pool->spare_lock);
    if (all_blocked(pool)) {
        for (w = first_spare(pool); w != NULL && w->spare_busy;
             w = w->spare_next)
            continue;
        if (w == NULL)
            w = spare_new(pool);
    }
    if (w != NULL) {
        w->spare_busy = true;
        w->exiting = false;
        /* seq_cst: counted before its thread can block; see all_blocked(). */
        atomic_fetch_add_explicit(&pool->spares_live, 1, memory_order_seq_cst);
        crew__pool_hold(pool);
        if (start_thread(pool, w, spare_main, true) != 0) {
            w->spare_busy = false;
            atomic_fetch_sub_explicit(&pool->spares_live, 1,
                                      memory_order_seq_cst);
            crew__pool_unhold(pool); /* never the last: the caller holds */
        }
    }
    pthread_mutex_unlock(&pool->spare_lock);
}

/* Wait until no spare worker runs. */
static void
wait_spares(crew_pool *pool)
{
    pthread_mutex_lock(&pool->spare_lock);
    for (;;) {
        struct crew__worker *w = first_spare(pool);
        while (w != NULL && !w->spare_busy)
            w = w->spare_next;
        if (w == NULL)
            break;
        pthread_cond_wait(&pool->spare_cond, &pool->spare_lock);
    }
    pthread_mutex_unlock(&pool->spare_lock);
}

/*
 * Cancel the tasks left in the injection queue, which workers may be
 * taking and cancelling too. Once the mode has moved on no submission
 * begins, and a push halfway through ends promptly, so the queue empties
 * for good: a push that comes later finds it closed (sched/inject.c).
 */
static void
cancel_queued(crew_pool *pool)
{
    struct crew__link *batch[BATCH];

    while (!crew__inject_is_empty(&pool->inject)) {
        size_t n = crew__inject_pop_batch(&pool->inject, batch, BATCH);
        if (n == 0)
            crew__thread_yield();
        for (size_t i = 0; i < n; i++)
            crew__job_run(job_of_link(batch[i]), true, &pool->shutdown_tally);
    }
}

/* Close the pool to new work and start its workers towards the exit. */
static void
begin_shutdown(crew_pool *pool, crew_shutdown how)
{
    crew__inject_close(&pool->inject);
    /* seq_cst: pairs with mode_of(); see the file comment. */
    atomic_store_explicit(&pool->mode,
                          how == CREW_CANCEL ? CANCELLING : DRAINING,
                          memory_order_seq_cst);
    wake_all(pool);
    if (how == CREW_CANCEL)
        cancel_queued(pool);
}

static void
join_workers(crew_pool *pool, unsigned count)
{
    int state = crew__nocancel_begin(); /* see platform.h */

    for (unsigned i = 0; i < count; i++)
        pthread_join(pool->workers[i].thread, NULL);
    crew__nocancel_end(state);
}

/* The signals workers block: every one but those the kernel sends to the
 * thread that caused them. */
static void
worker_signal_mask(sigset_t *set)
{
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                                      SIGTRAP, SIGSYS, SIGABRT};

    sigfillset(set);
    for (size_t i = 0; i < sizeof(synchronous) / sizeof(synchronous[0]); i++)
        sigdelset(set, synchronous[i]);
}

/* Start w's thread running main, with the pool's stack size and every
 * asynchronous signal blocked (the caller's mask is left as it was). */
static int
start_thread(crew_pool *pool, struct crew__worker *w, void *(*main)(void *),
             bool detached)
{
    pthread_attr_t attr;
    sigset_t blocked, saved;
    int err;

    if (crew__fault_thread())
        return EAGAIN;
    err = pthread_attr_init(&attr);
    if (err != 0)
        return err;
    if (pool->stack_size != 0)
        err = pthread_attr_setstacksize(&attr, pool->stack_size);
    if (err == 0 && detached)
        err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (err == 0) {
        worker_signal_mask(&blocked);
        pthread_sigmask(SIG_SETMASK, &blocked, &saved);
        err = pthread_create(&w->thread, &attr, main, w);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    pthread_attr_destroy(&attr);
    return err;
}

static int
start_workers(crew_pool *pool)
{
    unsigned started = 0;
    int err = 0;

    atomic_store_explicit(&pool->live, pool->threads, memory_order_relaxed);
    for (; started < pool->threads; started++) {
        /* Counted first: its deque is searched from its first push on. */
        atomic_store_explicit(&pool->created, started + 1,
                              memory_order_relaxed);
        err = start_thread(pool, &pool->workers[started], worker_main, false);
        if (err != 0)
            break;
    }
    if (err != 0) {
        /* The workers that started see `done` and exit at once. */
        atomic_fetch_sub_explicit(&pool->live, pool->threads - started,
                                  memory_order_relaxed);
        begin_shutdown(pool, CREW_CANCEL);
        atomic_store_explicit(&pool->done, true, memory_order_seq_cst);
        wake_all(pool);
        join_workers(pool, started);
    }
    return err;
}

static void
workers_free(crew_pool *pool, unsigned count)
{
    /* Every deque is empty: the pool either never started, or its
     * workers exited, which they do only once all of them are idle. */
    for (unsigned i = 0; i < count; i++)
        crew__deque_destroy(&pool->workers[i].deque);
    crew__free(pool->workers);
}

/* Free the spare workers' structs; `abandon`: after fork(), in the
 * child, where their deques' state cannot be trusted. */
static void
spares_free(crew_pool *pool, bool abandon)
{
    struct crew__worker *w = first_spare(pool);

    while (w != NULL) {
        struct crew__worker *next = w->spare_next;
        if (abandon)
            crew__deque_abandon(&w->deque);
        else
            crew__deque_destroy(&w->deque);
        crew__free(w);
        w = next;
    }
}

/* Free a pool whose workers have exited. Its queues are empty: the last
 * worker idle during shutdown found them so, and the injection queue,
 * closed, takes nothing more. */
static void
pool_free(crew_pool *pool)
{
    workers_free(pool, pool->threads);
    spares_free(pool, false);
    pthread_cond_destroy(&pool->spare_cond);
    pthread_mutex_destroy(&pool->spare_lock);
    crew__inject_destroy(&pool->inject);
    pthread_cond_destroy(&pool->life_cond);
    pthread_mutex_destroy(&pool->life_lock);
    crew__free(pool->name);
    crew__free(pool);
    crew__block_cache_close();
}

/*
 * Free a pool inherited across fork(). Its workers live only in the
 * parent, and a lock of the pool may have been held there at the fork,
 * never to be released here: take no lock, and leave the tasks in its
 * queues alone (they are the parent's work, in states the child cannot
 * trust). Only the pool's own memory is freed.
 */
static void
orphan_free(crew_pool *pool)
{
    for (unsigned i = 0; i < pool->threads; i++)
        crew__deque_abandon(&pool->workers[i].deque);
    crew__free(pool->workers);
    spares_free(pool, true);
    crew__free(pool->name);
    crew__free(pool);
    crew__block_cache_close();
}

void
crew__pool_hold(crew_pool *pool)
{
    /* Relaxed: the caller holds the pool already (its owner, or the
     * owner's caller). */
    atomic_fetch_add_explicit(&pool->holds, 1, memory_order_relaxed);
}

void
crew__pool_unhold(crew_pool *pool)
{
    /* Acquire-release: the last holder sees every other's writes before
     * it frees. */
    if (atomic_fetch_sub_explicit(&pool->holds, 1, memory_order_acq_rel) != 1)
        return;
    if (is_orphan(pool))
        orphan_free(pool);
    else
        pool_free(pool);
}

/* A stack size in whole pages, as some systems want it. */
static size_t
page_rounded(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page > 0 && size % (size_t)page != 0)
        size += (size_t)page - size % (size_t)page;
    return size;
}

static char *
copy_name(const char *name)
{
    size_t length = strlen(name);
    char *copy = crew__malloc(length + 1);

    if (copy != NULL)
        memcpy(copy, name, length + 1);
    return copy;
}

static int
workers_new(crew_pool *pool)
{
    unsigned i;
    int err = 0;

    pool->workers = crew__calloc_aligned(pool->threads, sizeof(*pool->workers));
    if (pool->workers == NULL)
        return ENOMEM;
    for (i = 0; i < pool->threads; i++) {
        struct crew__worker *w = &pool->workers[i];
        err = crew__deque_init(&w->deque);
        if (err != 0)
            break;
        crew__event_init(&w->event);
        w->pool = pool;
        w->index = i;
        w->rng = 2654435761u * (i + 1);
    }
    if (err != 0)
        workers_free(pool, i);
    return err;
}

int
crew_pool_create(crew_pool **out, const crew_pool_options *options)
{
    static const crew_pool_options defaults = {0};
    crew_pool *pool;
    int err;

    if (out == NULL)
        return EINVAL;
    *out = NULL;
    if (options == NULL)
        options = &defaults;
    if (options->stack_size != 0 && options->stack_size < crew__stack_min())
        return EINVAL;
    pthread_once(&atfork_once, register_atfork);

    pool = crew__calloc_aligned(1, sizeof(*pool));
    if (pool == NULL)
        return ENOMEM;
    pool->threads =
        options->threads != 0 ? options->threads : crew__cpu_count();
    pool->on_thread_start = options->on_thread_start;
    pool->on_thread_stop = options->on_thread_stop;
    pool->user = options->user;
    pool->stack_size = page_rounded(options->stack_size);
    pool->generation = crew__fork_generation();
    pool->life = RUNNING;
    atomic_init(&pool->mode, OPEN);
    atomic_init(&pool->searching, 0);
    atomic_init(&pool->sleeping, 0);
    atomic_init(&pool->holds, 1);
    atomic_init(&pool->sleep_lock.word, 0);
    pool->name = copy_name(options->name != NULL ? options->name : "crew");
    if (pool->name == NULL) {
        err = ENOMEM;
        goto out_free_pool;
    }
    err = crew__inject_init(&pool->inject, options->max_queued);
    if (err != 0)
        goto out_free_name;
    err = pthread_mutex_init(&pool->life_lock, NULL);
    if (err != 0)
        goto out_destroy_inject;
    err = pthread_cond_init(&pool->life_cond, NULL);
    if (err != 0)
        goto out_destroy_life_lock;
    err = pthread_mutex_init(&pool->spare_lock, NULL);
    if (err != 0)
        goto out_destroy_life_cond;
    err = pthread_cond_init(&pool->spare_cond, NULL);
    if (err != 0)
        goto out_destroy_spare_lock;
    err = workers_new(pool);
    if (err != 0)
        goto out_destroy_spare_cond;
    err = start_workers(pool);
    if (err != 0)
        goto out_free_workers;
    crew__block_cache_open();
    *out = pool;
    return 0;

out_free_workers:
    workers_free(pool, pool->threads);
out_destroy_spare_cond:
    pthread_cond_destroy(&pool->spare_cond);
out_destroy_spare_lock:
    pthread_mutex_destroy(&pool->spare_lock);
out_destroy_life_cond:
    pthread_cond_destroy(&pool->life_cond);
out_destroy_life_lock:
    pthread_mutex_destroy(&pool->life_lock);
out_destroy_inject:
    crew__inject_destroy(&pool->inject);
out_free_name:
    crew__free(pool->name);
out_free_pool:
    crew__free(pool);
    return err;
}

static bool
is_own_worker(const crew_pool *pool)
{
    return self != NULL && self->pool == pool;
}

int
crew_pool_shutdown(crew_pool *pool, crew_shutdown how)
{
    if (pool == NULL || (how != CREW_DRAIN && how != CREW_CANCEL))
        return EINVAL;
    if (is_orphan(pool))
        return ESHUTDOWN;
    if (is_own_worker(pool))
        return EDEADLK;

    /* Joining, and waiting for another shutdown, are cancellation points
     * that would leave the pool stopping for good: see platform.h. */
    int state = crew__nocancel_begin();
    pthread_mutex_lock(&pool->life_lock);
    if (pool->life == RUNNING) {
        pool->life = STOPPING;
        pthread_mutex_unlock(&pool->life_lock);
        begin_shutdown(pool, how);
        join_workers(pool, pool->threads);
        wait_spares(pool);
        pthread_mutex_lock(&pool->life_lock);
        pool->life = JOINED;
        pthread_cond_broadcast(&pool->life_cond);
    }
    while (pool->life != JOINED)
        pthread_cond_wait(&pool->life_cond, &pool->life_lock);
    pthread_mutex_unlock(&pool->life_lock);
    crew__nocancel_end(state);
    return 0;
}

void
crew_pool_destroy(crew_pool *pool)
{
    if (pool == NULL)
        return;
    if (is_orphan(pool)) {
        crew__pool_unhold(pool);
        return;
    }
    if (!is_own_worker(pool)) {
        crew_pool_shutdown(pool, CREW_DRAIN);
        crew__pool_unhold(pool);
        return;
    }
    /* From a worker: drain without waiting; the last worker frees. */
    for (unsigned i = 0; i < pool->threads; i++)
        pthread_detach(pool->workers[i].thread);
    atomic_store_explicit(&pool->detached, true, memory_order_release);
    pthread_mutex_lock(&pool->life_lock);
    bool first = pool->life == RUNNING;
    pool->life = STOPPING;
    pthread_mutex_unlock(&pool->life_lock);
    if (first)
        begin_shutdown(pool, CREW_DRAIN);
}

unsigned
crew_pool_threads(const crew_pool *pool)
{
    return pool != NULL ? pool->threads : 0;
}

/* Whether the pool takes work from the calling thread now: open, or
 * draining and called from one of its own workers. ESHUTDOWN if not. */
static int
accepts(crew_pool *pool)
{
    enum mode mode;

    if (is_orphan(pool))
        return ESHUTDOWN;
    mode = mode_of(pool);
    if (mode == CANCELLING ||
        (mode == DRAINING && !(is_own_worker(pool) && !self->exiting)))
        return ESHUTDOWN;
    return 0;
}

int
crew__pool_accepts(crew_pool *pool)
{
    return accepts(pool);
}

/*
 * The one submission route: every kind queues its work here. From one of
 * the pool's workers the job goes on that worker's own deque, else on
 * the injection queue; then a worker is woken if none is looking. A job
 * that holds a max_queued slot (CREW__JOB_SLOTTED) takes it here, waiting
 * for room from outside the pool unless CREW__JOB_NONBLOCKING.
 *
 * A submission racing the pool's shutdown is settled by the injection
 * queue alone (see sched/inject.c): either it is refused, ESHUTDOWN, with
 * nothing queued, or it is queued ahead of the close, where the shutdown
 * finds it and runs or cancels it like any other. Nothing is taken back.
 */
int
crew__pool_submit(crew_pool *pool, struct crew__job *job, unsigned flags)
{
    bool slotted = (flags & CREW__JOB_SLOTTED) != 0;
    bool nonblocking = (flags & CREW__JOB_NONBLOCKING) != 0;
    int err = accepts(pool);

    if (err != 0)
        return err;
    if (is_own_worker(pool) && !self->exiting) {
        if (slotted) {
            err = crew__inject_take_slot(&pool->inject, nonblocking);
            if (err != 0)
                return err;
        }
        err = crew__deque_push(&self->deque, job);
        if (err != 0) {
            if (slotted)
                crew__inject_release_slot(&pool->inject);
            return err;
        }
        if ((flags & CREW__JOB_INTERNAL) == 0)
            crew__counter_add(&self->submitted, 1);
        else /* Relaxed: statistics, once a loop. */
            atomic_fetch_add_explicit(&pool->runners_own, 1,
                                      memory_order_relaxed);
    } else {
        enum crew__room room = !slotted      ? CREW__ROOM_UNCOUNTED
                               : nonblocking ? CREW__ROOM_FAIL
                                             : CREW__ROOM_WAIT;
        err = crew__inject_push(&pool->inject, &job->link, room);
        if (err != 0)
            return err;
        if ((flags & CREW__JOB_INTERNAL) != 0) /* Relaxed: statistics. */
            atomic_fetch_add_explicit(&pool->runners, 1, memory_order_relaxed);
    }
    /* The job is in its queue (the push's seq_cst store or CAS) before
     * wake_searcher() reads. Once there, it may have run and be gone. */
    wake_searcher(pool);
    return 0;
}

void
crew__pool_count_chunks(crew_pool *pool, uint64_t succeeded, uint64_t failed)
{
    if (is_own_worker(pool)) {
        crew__counter_add(&self->submitted, succeeded + failed);
        crew__counter_add(&self->tally.succeeded, succeeded);
        crew__counter_add(&self->tally.failed, failed);
        return;
    }
    /* Relaxed: statistics; once a loop, not once a chunk. */
    atomic_fetch_add_explicit(&pool->outside_chunks_ok, succeeded,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->outside_chunks_failed, failed,
                              memory_order_relaxed);
}

/* Add a tally of what was taken out of a queue to a snapshot, and its
 * runners to `internal`. */
static void
add_tally(crew_pool_stats *stats, struct crew__tally *tally,
          uint64_t *internal)
{
    stats->succeeded +=
        atomic_load_explicit(&tally->succeeded, memory_order_relaxed);
    stats->failed += atomic_load_explicit(&tally->failed, memory_order_relaxed);
    stats->cancelled +=
        atomic_load_explicit(&tally->cancelled, memory_order_relaxed);
    *internal += atomic_load_explicit(&tally->internal, memory_order_relaxed);
}

/* Add what worker w counted to a snapshot, and its deque's length to
 * `entries`. */
static void
add_worker(crew_pool_stats *stats, struct crew__worker *w, uint64_t *entries,
           uint64_t *internal)
{
    *entries += crew__deque_length(&w->deque);
    stats->submitted +=
        atomic_load_explicit(&w->submitted, memory_order_relaxed);
    add_tally(stats, &w->tally, internal);
    stats->stolen += atomic_load_explicit(&w->stolen, memory_order_relaxed);
}

/*
 * Every entry of a queue is counted twice: where it went in (the
 * injection queue's pushes, a worker's own submissions), and where it
 * came out, by whoever took it (a worker, or a CREW_CANCEL shutdown), with
 * how it ended. A task cancelled where it lay is counted when its husk
 * comes out. Loops' runners are entries but no tasks: counted apart on
 * the way in, and as `internal` on the way out.
 */
int
crew_pool_stats_get(const crew_pool *pool, crew_pool_stats *stats)
{
    crew_pool *p = (crew_pool *)pool; /* the queue's readers take no const */

    if (pool == NULL || stats == NULL)
        return EINVAL;
    /* Relaxed throughout: a snapshot, which the contract allows to be
     * inconsistent while tasks run. */
    uint64_t runners = atomic_load_explicit(&p->runners, memory_order_relaxed);
    uint64_t pushed = crew__inject_pushed(&p->inject);
    uint64_t chunks_ok =
        atomic_load_explicit(&p->outside_chunks_ok, memory_order_relaxed);
    uint64_t chunks_failed =
        atomic_load_explicit(&p->outside_chunks_failed, memory_order_relaxed);
    uint64_t runners_in =
        runners + atomic_load_explicit(&p->runners_own, memory_order_relaxed);
    uint64_t runners_out = 0;
    uint64_t entries = crew__inject_length(&p->inject);

    *stats = (crew_pool_stats){
        .threads = pool->threads,
        .submitted = (pushed > runners ? pushed - runners : 0) + chunks_ok +
                     chunks_failed,
        .succeeded = chunks_ok,
        .failed = chunks_failed,
    };
    add_tally(stats, &p->shutdown_tally, &runners_out);
    for (unsigned i = 0; i < pool->threads; i++) {
        stats->busy += atomic_load_explicit(&p->workers[i].running,
                                            memory_order_relaxed) > 0;
        add_worker(stats, &p->workers[i], &entries, &runners_out);
    }
    for (struct crew__worker *w = first_spare(p); w != NULL; w = w->spare_next)
        add_worker(stats, w, &entries, &runners_out);
    stats->queued = entries + runners_out > runners_in
                        ? (size_t)(entries + runners_out - runners_in)
                        : 0;
    return 0;
}
