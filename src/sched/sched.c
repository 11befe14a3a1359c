/*
 * The scheduler's life: making one, queueing jobs, stopping, freeing.
 *
 * Stopping. The injection queue closes first, then `mode` leaves OPEN,
 * so a worker that sees the new mode finds every outside job in the
 * queue. Workers keep running (DRAINING) or cancelling (CANCELLING)
 * whatever they find, until every one of them is idle (idle.c). A
 * scheduler stopped from one of its own workers is `detached`: its
 * threads are detached and the last worker to exit drops the owner's
 * hold.
 *
 * Memory. The scheduler, and its pool, are freed when the last hold
 * goes: the owner's, spares' (each while its thread runs), and whatever
 * the layers above take (continuations waiting on their input, which
 * must find the pool, shut down, when the input resolves).
 */
#include "sched/private.h"

#include "base/alloc.h"
#include "base/platform.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

static char *
copy_name(const char *name)
{
    size_t length = strlen(name);
    char *copy = crew__malloc(length + 1);

    if (copy != NULL)
        memcpy(copy, name, length + 1);
    return copy;
}

static void
workers_free(struct crew__sched *sched, unsigned count)
{
    /* Every deque is empty: the scheduler either never started, or its
     * workers exited, which they do only once all of them are idle. */
    for (unsigned i = 0; i < count; i++)
        crew__worker_destroy(&sched->workers[i], false);
    crew__free(sched->workers);
}

static int
workers_new(struct crew__sched *sched)
{
    unsigned i;
    int err = 0;

    sched->workers =
        crew__calloc_aligned(sched->threads, sizeof(*sched->workers));
    if (sched->workers == NULL)
        return ENOMEM;
    for (i = 0; i < sched->threads && err == 0; i++)
        err = crew__worker_init(&sched->workers[i], sched, i);
    if (err != 0)
        workers_free(sched, i - 1);
    return err;
}

static void
join_workers(struct crew__sched *sched, unsigned count)
{
    int state = crew__nocancel_begin(); /* see platform.h */

    for (unsigned i = 0; i < count; i++)
        pthread_join(sched->workers[i].thread, NULL);
    crew__nocancel_end(state);
}

static int
start_workers(struct crew__sched *sched)
{
    unsigned started = 0;
    int err = 0;

    atomic_store_explicit(&sched->live, sched->threads, memory_order_relaxed);
    for (; started < sched->threads; started++) {
        /* Counted first: its deque is searched from its first push on. */
        atomic_store_explicit(&sched->created, started + 1,
                              memory_order_relaxed);
        err = crew__worker_start(&sched->workers[started], crew__worker_main,
                                 false);
        if (err != 0)
            break;
    }
    if (err != 0) {
        /* The workers that started see `done` and exit at once. */
        atomic_fetch_sub_explicit(&sched->live, sched->threads - started,
                                  memory_order_relaxed);
        crew__sched_stop(sched, true);
        atomic_store_explicit(&sched->done, true, memory_order_seq_cst);
        crew__sched_wake_all(sched);
        join_workers(sched, started);
    }
    return err;
}

int
crew__sched_create(struct crew__sched **out,
                   const struct crew__sched_options *options)
{
    struct crew__sched *sched = crew__calloc_aligned(1, sizeof(*sched));
    int err;

    *out = NULL;
    if (sched == NULL)
        return ENOMEM;
    sched->options = *options;
    sched->threads = options->threads;
    atomic_init(&sched->mode, CREW__OPEN);
    atomic_init(&sched->holds, 1);
    atomic_init(&sched->sleep_lock.word, 0);
    sched->options.name = copy_name(options->name);
    if (sched->options.name == NULL) {
        err = ENOMEM;
        goto out_free;
    }
    err = crew__inject_init(&sched->inject, options->max_queued);
    if (err != 0)
        goto out_free_name;
    err = pthread_mutex_init(&sched->spare_lock, NULL);
    if (err != 0)
        goto out_destroy_inject;
    err = pthread_cond_init(&sched->spare_cond, NULL);
    if (err != 0)
        goto out_destroy_spare_lock;
    err = workers_new(sched);
    if (err != 0)
        goto out_destroy_spare_cond;
    /* Published before the threads start: their hooks may use the pool,
     * which reaches the scheduler through *out. */
    *out = sched;
    err = start_workers(sched);
    if (err != 0)
        goto out_free_workers;
    return 0;

out_free_workers:
    *out = NULL; /* the workers that started were joined */
    workers_free(sched, sched->threads);
out_destroy_spare_cond:
    pthread_cond_destroy(&sched->spare_cond);
out_destroy_spare_lock:
    pthread_mutex_destroy(&sched->spare_lock);
out_destroy_inject:
    crew__inject_destroy(&sched->inject);
out_free_name:
    crew__free((char *)sched->options.name);
out_free:
    crew__free(sched);
    return err;
}

/* Its queues are empty: the last worker idle during the stop found them
 * so, and the injection queue, closed, takes nothing more. */
void
crew__sched_free(struct crew__sched *sched)
{
    struct crew__timer *timer =
        atomic_load_explicit(&sched->timer, memory_order_acquire);

    /* Nothing is armed: every holder of an entry held the scheduler. */
    if (timer != NULL)
        crew__timer_destroy(timer);
    workers_free(sched, sched->threads);
    crew__spares_free(sched, false);
    pthread_cond_destroy(&sched->spare_cond);
    pthread_mutex_destroy(&sched->spare_lock);
    crew__inject_destroy(&sched->inject);
    crew__free((char *)sched->options.name);
    crew__free(sched);
}

/* Its workers live only in the parent, and a lock of it may have been
 * held there at the fork, never to be released here: take no lock, and
 * leave the jobs in its queues alone (they are the parent's work, in
 * states the child cannot trust). Only its own memory is freed. */
void
crew__sched_abandon(struct crew__sched *sched)
{
    struct crew__timer *timer =
        atomic_load_explicit(&sched->timer, memory_order_relaxed);

    if (timer != NULL)
        crew__timer_abandon(timer);
    for (unsigned i = 0; i < sched->threads; i++)
        crew__worker_destroy(&sched->workers[i], true);
    crew__free(sched->workers);
    crew__spares_free(sched, true);
    crew__free((char *)sched->options.name);
    crew__free(sched);
}

/*
 * Cancel the jobs left in the injection queue, which workers may be
 * taking and cancelling too. Once the mode has moved on no submission
 * begins, and a push halfway through ends promptly, so the queue empties
 * for good: a push that comes later finds it closed (inject.c).
 */
static void
cancel_queued(struct crew__sched *sched)
{
    struct crew__link *batch[BATCH];

    while (!crew__inject_is_empty(&sched->inject)) {
        size_t n = crew__inject_pop_batch(&sched->inject, batch, BATCH);
        if (n == 0)
            crew__thread_yield();
        for (size_t i = 0; i < n; i++)
            crew__job_run(crew__container_of(batch[i], struct crew__job, link),
                          true, &sched->shutdown_tally);
    }
}

void
crew__sched_stop(struct crew__sched *sched, bool cancel)
{
    crew__inject_close(&sched->inject);
    /* seq_cst: pairs with crew__mode_of(); see the file comment. */
    atomic_store_explicit(&sched->mode,
                          cancel ? CREW__CANCELLING : CREW__DRAINING,
                          memory_order_seq_cst);
    crew__sched_wake_all(sched);
    if (cancel)
        cancel_queued(sched);
}

void
crew__sched_join(struct crew__sched *sched)
{
    join_workers(sched, sched->threads);
    crew__wait_spares(sched);
}

void
crew__sched_detach(struct crew__sched *sched)
{
    for (unsigned i = 0; i < sched->threads; i++)
        pthread_detach(sched->workers[i].thread);
    atomic_store_explicit(&sched->detached, true, memory_order_release);
}

unsigned
crew__sched_threads(const struct crew__sched *sched)
{
    return sched->threads;
}

const char *
crew__sched_name(const struct crew__sched *sched)
{
    return sched->options.name;
}

bool
crew__sched_is_mine(const struct crew__sched *sched)
{
    return crew__self != NULL && crew__self->sched == sched;
}

/* Whether the calling thread is one of the scheduler's workers, still
 * looking at its own deque. */
static bool
in_loop(const struct crew__sched *sched)
{
    return crew__sched_is_mine(sched) && !crew__self->exiting;
}

/* The rule of crew__sched_accepts(), for a caller that knows whether it
 * is one of the scheduler's workers in its loop. */
static bool
refuses(struct crew__sched *sched, bool own)
{
    enum crew__mode mode = crew__mode_of(sched);

    return mode == CREW__CANCELLING || (mode == CREW__DRAINING && !own);
}

int
crew__sched_accepts(struct crew__sched *sched)
{
    return refuses(sched, in_loop(sched)) ? ESHUTDOWN : 0;
}

/* Link the jobs into a chain, in order, for one push onto the injection
 * queue. */
static void
chain(const struct crew__jobs *jobs)
{
    for (size_t i = 0; i + 1 < jobs->n; i++) {
        /* Relaxed: published by the push's release of the chain. */
        atomic_store_explicit(&crew__jobs_at(jobs, i)->link.next,
                              &crew__jobs_at(jobs, i + 1)->link,
                              memory_order_relaxed);
    }
}

/* crew__sched_submit() and crew__sched_submit_many(): one hand-over for
 * the n jobs, on this worker's deque or the injection queue. Inlined into
 * both: the single job's path is every task's. */
static CREW__ALWAYS_INLINE int
submit(struct crew__sched *sched, const struct crew__jobs *jobs,
       unsigned flags)
{
    bool slotted = (flags & CREW__JOB_SLOTTED) != 0;
    bool nonblocking = (flags & CREW__JOB_NONBLOCKING) != 0;
    struct crew__worker *self = crew__self;
    bool own = in_loop(sched);
    size_t n = jobs->n;
    int err;

    if (refuses(sched, own))
        return ESHUTDOWN;
    if (own) {
        if (slotted) {
            err = crew__inject_take_slots(&sched->inject, n, nonblocking);
            if (err != 0)
                return err;
        }
        err = n == 1 ? crew__deque_push(&self->deque, jobs->first)
                     : crew__deque_push_strided(&self->deque,
                                                (char *)jobs->first,
                                                jobs->stride, n);
        if (err != 0) {
            if (slotted)
                crew__inject_release_slots(&sched->inject, n);
            return err;
        }
        if ((flags & CREW__JOB_INTERNAL) == 0)
            crew__counter_add(&self->submitted, n);
        else /* Relaxed: statistics, once a loop. */
            atomic_fetch_add_explicit(&sched->runners_own, n,
                                      memory_order_relaxed);
    } else {
        enum crew__room room = !slotted      ? CREW__ROOM_UNCOUNTED
                               : nonblocking ? CREW__ROOM_FAIL
                                             : CREW__ROOM_WAIT;
        chain(jobs);
        err = crew__inject_push_chain(&sched->inject, &jobs->first->link,
                                      &crew__jobs_at(jobs, n - 1)->link, n,
                                      room);
        if (err != 0)
            return err;
        if ((flags & CREW__JOB_INTERNAL) != 0) /* Relaxed: statistics. */
            atomic_fetch_add_explicit(&sched->runners, n,
                                      memory_order_relaxed);
    }
    /* The jobs are in their queue (the push's seq_cst store or CAS)
     * before crew__sched_wake() reads. Once there, they may have run and
     * be gone. One wake-up: a worker that finds work while others still
     * sleep wakes the next (idle.c). */
    crew__sched_wake(sched);
    return 0;
}

int
crew__sched_submit(struct crew__sched *sched, struct crew__job *job,
                   unsigned flags)
{
    struct crew__jobs one = {.first = job, .stride = 0, .n = 1};

    return submit(sched, &one, flags);
}

int
crew__sched_submit_many(struct crew__sched *sched,
                        const struct crew__jobs *jobs, unsigned flags)
{
    return submit(sched, jobs, flags);
}

static struct crew__worker *
owner_of(struct crew__split *q)
{
    return crew__container_of(q, struct crew__worker, spawns);
}

void
crew__sched_spawns_share(struct crew__split *q)
{
    struct crew__worker *w = owner_of(q);

    crew__split_share_new(q);
    /* After the share's seq_cst RMW or store (split.c): an idle worker,
     * and the spawners waiting for calls of w's (worker.c). */
    crew__sched_wake(w->sched);
    crew__event_notify_all(&w->frogs);
}

void
crew__sched_spawns_notify(struct crew__split *thief)
{
    crew__event_notify_all(&owner_of(thief)->frogs);
}

void
crew__sched_wait_spawned(struct crew__split *q, struct crew__split *thief,
                         struct crew__wait *wait)
{
    crew__worker_wait_spawned(owner_of(q), owner_of(thief), wait);
}

bool
crew__sched_is_cancelling(const struct crew__sched *sched)
{
    /* Relaxed: a hint for running jobs; it carries no data. */
    return atomic_load_explicit(&sched->mode, memory_order_relaxed) ==
           CREW__CANCELLING;
}

void
crew__sched_release_slot(struct crew__sched *sched)
{
    crew__inject_release_slots(&sched->inject, 1);
}

/*
 * The timer starts with the first deadline. Two first arms racing each
 * start one; the loser of the exchange stops its own and uses the
 * winner's.
 */
int
crew__sched_arm(struct crew__sched *sched, struct crew__timer_entry *entry)
{
    /* Acquire: pairs with the exchange's release below, so the timer is
     * seen whole. */
    struct crew__timer *timer =
        atomic_load_explicit(&sched->timer, memory_order_acquire);

    if (timer == NULL) {
        struct crew__timer *none = NULL;
        int err = crew__timer_create(&timer, sched->options.name);

        if (err != 0)
            return err;
        if (!atomic_compare_exchange_strong_explicit(
                &sched->timer, &none, timer, memory_order_acq_rel,
                memory_order_acquire)) {
            crew__timer_destroy(timer);
            timer = none;
        }
    }
    return crew__timer_arm(timer, entry);
}

bool
crew__sched_disarm(struct crew__sched *sched, struct crew__timer_entry *entry)
{
    /* Acquire: as in crew__sched_arm(); armed, the entry found it set. */
    return crew__timer_disarm(
        atomic_load_explicit(&sched->timer, memory_order_acquire), entry);
}

void
crew__sched_run_here(struct crew__sched *sched, struct crew__job *job)
{
    (void)sched; /* NDEBUG */
    assert(crew__sched_is_mine(sched));
    crew__run_job(crew__self, job);
}

unsigned
crew__sched_slot(const struct crew__sched *sched)
{
    const struct crew__worker *w = crew__self;

    return w != NULL && w->sched == sched && w->index < sched->threads
               ? w->index
               : sched->threads;
}
