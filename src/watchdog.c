/*
 * The watchdog: crew_pool_watchdog().
 *
 * Theory of operation. While a watchdog is set, every run on a worker
 * reads the task clock as it starts and publishes itself in a frame of
 * the worker's slot, one a depth of nesting (observe.c's publish()). A
 * monitor thread, the pool's, wakes every after_ns / 2 (at least a
 * millisecond apart), reads every frame, and calls the user's function
 * once for each run it finds started more than after_ns ago: it keeps,
 * per frame, the number of the last run it reported.
 *
 * Reading a frame. The worker clears `run`, then stores `fn` and `start`
 * with release, then the run's number with release. The monitor loads
 * the number (acquire), then fn and start (acquire), then the number
 * again. If fn or start came from a later run's stores, the acquire of
 * them makes that run's clearing of `run` visible to the second load,
 * which then differs from the first; so two equal, non-zero loads
 * bracket the fields of that very run.
 *
 * Settings and calls. The settings live under the observer's lock. The
 * monitor copies them under it, marks itself calling with their
 * generation, and calls the user's function without the lock; a setter
 * changes them, then waits until no call of an older generation is in
 * progress. Removal stops and joins the monitor; called from the user's
 * function (on the monitor's own thread) it returns EDEADLK, but
 * crew_pool_destroy() from there detaches the thread, which leaves once
 * the function returns.
 *
 * Lifetime. The monitor holds the pool (crew__pool_hold()) while its
 * thread runs, and drops the hold as its very last act: a destroy from
 * its own function frees the pool then, on its thread.
 *
 * Lock order: the observer's lock only; no user code runs under it.
 */
#include "observe.h"

#include "base/alloc.h"
#include "base/platform.h"
#include "sched/sched.h"

#include <errno.h>
#include <pthread.h>

#define PERIOD_MIN_NS 1000000u /* the monitor looks at most once a ms */

struct crew__watchdog {
    struct crew__observer *observer;
    pthread_t thread;
    /* Under the observer's lock: */
    pthread_cond_t wake;  /* the monitor sleeps here (monotonic) */
    pthread_cond_t calls; /* a setter waits here for a call to end */
    uint64_t after_ns;
    crew_stuck_fn fn;
    void *user;
    uint64_t generation;         /* of the settings: one a change */
    uint64_t calling_generation; /* of the scan calling now; 0: none */
    bool stop;                   /* leave the loop */
    bool detached;               /* stopped from its own function */
    /* The monitor's own: the number of the run it reported last, a
     * frame of a worker's slot each. */
    uint64_t *reported;
};

/* The watchdog whose monitor the calling thread is, or NULL. */
static _Thread_local const struct crew__watchdog *monitor_here;

/* The run in frame f if one is there, consistent (file comment). */
static bool
read_frame(struct crew__watch_frame *f, uint64_t *run, void (**fn)(void),
           uint64_t *start)
{
    *run = atomic_load_explicit(&f->run, memory_order_acquire);
    if (*run == 0)
        return false;
    *fn = atomic_load_explicit(&f->fn, memory_order_acquire);
    *start = atomic_load_explicit(&f->start, memory_order_acquire);
    /* Relaxed: ordered after the acquires above. */
    return atomic_load_explicit(&f->run, memory_order_relaxed) == *run;
}

/* Look at every worker's runs once; report those past after_ns. */
static void
scan(struct crew__observer *o, struct crew__watchdog *wd, uint64_t after_ns,
     crew_stuck_fn fn, void *user)
{
    double rate = crew__clock_rate();
    uint64_t now = crew__ticks();

    for (unsigned i = 0; i < o->threads; i++) {
        for (unsigned d = 0; d < CREW__WATCH_DEPTH; d++) {
            uint64_t *reported = &wd->reported[i * CREW__WATCH_DEPTH + d];
            crew_stuck stuck;
            uint64_t run, start;

            if (!read_frame(&o->slots[i].frames[d], &run, &stuck.fn, &start) ||
                run == *reported || start > now)
                continue;
            stuck.running_ns = crew__ticks_to_ns(now - start, rate);
            if (stuck.running_ns <= after_ns)
                continue;
            *reported = run;
            stuck.name = crew__symbol_of(stuck.fn);
            stuck.worker = i;
            fn(&stuck, user);
        }
    }
}

static void *
monitor_main(void *arg)
{
    struct crew__watchdog *wd = arg;
    struct crew__observer *o = wd->observer;
    crew_pool *pool = o->pool;

    /* It may have been taken off already: it then sees `stop`. */
    pthread_mutex_lock(&o->lock);
    monitor_here = wd;
    for (uint64_t last = crew__now_ns();;) {
        uint64_t period =
            wd->after_ns / 2 > PERIOD_MIN_NS ? wd->after_ns / 2 : PERIOD_MIN_NS;
        struct timespec when = crew__timespec_of(last + period);

        if (!wd->stop &&
            pthread_cond_timedwait(&wd->wake, &o->lock, &when) != ETIMEDOUT)
            continue; /* a change, or nothing: look at the time afresh */
        if (wd->stop)
            break;
        crew_stuck_fn fn = wd->fn;
        void *user = wd->user;
        uint64_t after_ns = wd->after_ns;

        wd->calling_generation = wd->generation;
        pthread_mutex_unlock(&o->lock);
        scan(o, wd, after_ns, fn, user);
        pthread_mutex_lock(&o->lock);
        wd->calling_generation = 0;
        pthread_cond_broadcast(&wd->calls);
        last = crew__now_ns();
    }
    pthread_mutex_unlock(&o->lock);
    /* Last: it may free the pool, the observer and wd (see the file
     * comment). */
    crew__pool_unhold(pool);
    return NULL;
}

static void
watchdog_free(struct crew__observer *o)
{
    struct crew__watchdog *wd = o->watchdog;

    if (wd == NULL)
        return;
    pthread_cond_destroy(&wd->calls);
    pthread_cond_destroy(&wd->wake);
    crew__free(wd->reported);
    crew__free(wd);
    o->watchdog = NULL;
}

/* Take the watchdog off; the caller holds the lock, and joins the
 * monitor after it lets go. */
static struct crew__watchdog *
take_off(struct crew__observer *o)
{
    struct crew__watchdog *wd = o->watchdog;

    wd->stop = true;
    pthread_cond_signal(&wd->wake);
    atomic_fetch_and_explicit(&o->pool->observing,
                              ~(unsigned)CREW__OBSERVE_WATCH,
                              memory_order_relaxed);
    o->watchdog = NULL;
    return wd;
}

/* Join the monitor of a watchdog taken off, and free it. */
static void
join_and_free(struct crew__watchdog *wd)
{
    int state = crew__nocancel_begin(); /* see platform.h */

    pthread_join(wd->thread, NULL);
    crew__nocancel_end(state);
    pthread_cond_destroy(&wd->calls);
    pthread_cond_destroy(&wd->wake);
    crew__free(wd->reported);
    crew__free(wd);
}

/* crew_pool_destroy() begins: remove the watchdog. From its own function
 * the monitor cannot be joined: it is left to leave, and the pool's last
 * hold, its own, frees what remains. In a forked child its thread is not
 * there: its hold is dropped for it. */
static void
watchdog_retire(struct crew__observer *o, bool orphan)
{
    struct crew__watchdog *wd;

    if (orphan) {
        if (o->watchdog != NULL) {
            crew__free(o->watchdog->reported);
            crew__free(o->watchdog);
            o->watchdog = NULL;
            crew__pool_unhold(o->pool);
        }
        return;
    }
    pthread_mutex_lock(&o->lock);
    wd = o->watchdog;
    if (wd != NULL && wd == monitor_here) {
        wd->stop = true;
        wd->detached = true;
        atomic_fetch_and_explicit(&o->pool->observing,
                                  ~(unsigned)CREW__OBSERVE_WATCH,
                                  memory_order_relaxed);
        pthread_detach(wd->thread);
        wd = NULL; /* freed with the observer */
    } else if (wd != NULL) {
        take_off(o);
    }
    pthread_mutex_unlock(&o->lock);
    if (wd != NULL)
        join_and_free(wd);
}

/* A new watchdog with its monitor running; the caller holds the lock. */
static int
watchdog_start(struct crew__observer *o, uint64_t after_ns, crew_stuck_fn fn,
               void *user)
{
    struct crew__watchdog *wd = crew__calloc(1, sizeof(*wd));
    pthread_condattr_t attr;
    int err;

    if (wd == NULL)
        return ENOMEM;
    wd->reported = crew__calloc((size_t)o->threads * CREW__WATCH_DEPTH,
                                sizeof(*wd->reported));
    if (wd->reported == NULL) {
        err = ENOMEM;
        goto out_free;
    }
    err = pthread_condattr_init(&attr);
    if (err != 0)
        goto out_free_reported;
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (err == 0)
        err = pthread_cond_init(&wd->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (err != 0)
        goto out_free_reported;
    err = pthread_cond_init(&wd->calls, NULL);
    if (err != 0)
        goto out_destroy_wake;
    wd->after_ns = after_ns;
    wd->fn = fn;
    wd->user = user;
    wd->generation = 1;
    wd->observer = o;
    o->watchdog = wd;
    o->watchdog_retire = watchdog_retire;
    o->watchdog_free = watchdog_free;
    crew__pool_hold(o->pool); /* the monitor's, dropped as it leaves */
    err = crew__thread_create(&wd->thread, monitor_main, wd, 0, false);
    if (err != 0) {
        crew__pool_unhold(o->pool); /* not the last: the caller's holds */
        o->watchdog = NULL;
        goto out_destroy_calls;
    }
    atomic_fetch_or_explicit(&o->pool->observing, CREW__OBSERVE_WATCH,
                             memory_order_relaxed);
    return 0;

out_destroy_calls:
    pthread_cond_destroy(&wd->calls);
out_destroy_wake:
    pthread_cond_destroy(&wd->wake);
out_free_reported:
    crew__free(wd->reported);
out_free:
    crew__free(wd);
    return err == ENOMEM || err == EAGAIN ? err : EAGAIN;
}

int
crew_pool_watchdog(crew_pool *pool, uint64_t after_ns, crew_stuck_fn fn,
                   void *user)
{
    struct crew__observer *o;
    struct crew__watchdog *wd;
    int err = 0;

    if (pool == NULL || (after_ns != 0 && fn == NULL))
        return EINVAL;
    if (crew__pool_is_orphan(pool))
        return ESHUTDOWN;
    o = after_ns != 0 ? crew__observer_get(pool) : crew__observer_of(pool);
    if (o == NULL)
        return after_ns != 0 ? ENOMEM : 0;
    pthread_mutex_lock(&o->lock);
    wd = o->watchdog;
    if (wd != NULL && wd == monitor_here) {
        err = EDEADLK;
    } else if (after_ns == 0) {
        if (wd != NULL)
            take_off(o);
    } else if (wd == NULL) {
        err = watchdog_start(o, after_ns, fn, user);
    } else {
        uint64_t generation = ++wd->generation;

        wd->after_ns = after_ns;
        wd->fn = fn;
        wd->user = user;
        pthread_cond_signal(&wd->wake);
        while (wd->calling_generation != 0 &&
               wd->calling_generation < generation)
            pthread_cond_wait(&wd->calls, &o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    if (err == 0 && after_ns == 0 && wd != NULL)
        join_and_free(wd);
    return err;
}
