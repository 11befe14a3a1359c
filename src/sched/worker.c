/*
 * A worker: finding a job, running it, helping while it waits, and the
 * loop a worker thread runs from its start to its exit.
 *
 * Theory of operation. Each worker owns a deque: a job submitted from a
 * worker goes on that worker's own deque, a job from any other thread on
 * the injection queue. A worker looks for work in its own deque (newest
 * first), then the injection queue (a batch at a time, onto its deque),
 * then the other workers' deques (oldest first), starting from a random
 * victim. Finding none, it searches and then sleeps (idle.c).
 *
 * A worker that waits helps: it runs jobs as above until the wait is
 * over, and with none to run sleeps on its own event, listed as a
 * sleeper and armed on what it waits for, so either new work or the end
 * of the wait wakes it. Helping nests: a helped job that waits helps in
 * turn, as deep as the worker's stack has room for (see has_room()).
 * Past that a wait blocks: it runs nothing and only the end of the wait
 * wakes it; spare.c makes sure someone runs the queued work meanwhile.
 */
#include "sched/worker.h"

#include "base/fault.h"
#include "base/platform.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#define STEAL_TRIES     64          /* most victims one steal() looks at */
#define RESERVE_MIN     (32 * 1024) /* stack a helping worker leaves free */
#define BATCH           32 /* most jobs taken from the injection queue */
#define NAME_MAX_LENGTH 15 /* Linux thread names: 16 bytes with the NUL */

_Thread_local struct crew__worker *crew__self;

struct crew__worker *
crew__worker_self(void)
{
    return crew__self;
}

void
crew__worker_forget(void)
{
    /* A job that forked left its worker's identity on this thread; in
     * the child it is no worker: it must not help, nor count as one. */
    crew__self = NULL;
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

static struct crew__job *
steal_from(struct crew__worker *w, struct crew__worker *victim)
{
    struct crew__job *job;

    if (victim == w)
        return NULL;
    job = crew__deque_steal(&victim->deque);
    if (job != NULL)
        crew__counter_add(&w->stolen, 1);
    return job;
}

/* A job from another worker's deque: up to STEAL_TRIES fixed workers
 * from a random one on, then the spares, if any. A steal that finds
 * nothing is no promise that nothing is there: crew__has_work() is. */
static struct crew__job *
steal(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    unsigned n = crew__created_workers(sched);
    unsigned tries = n < STEAL_TRIES ? n : STEAL_TRIES;
    unsigned start = n > 0 ? next_random(w) % n : 0;
    struct crew__job *job = NULL;

    for (unsigned i = 0; i < tries && job == NULL; i++)
        job = steal_from(w, &sched->workers[(start + i) % n]);
    for (struct crew__worker *v = crew__first_spare(sched);
         v != NULL && job == NULL; v = v->spare_next)
        job = steal_from(w, v);
    return job;
}

static struct crew__job *
job_of_link(struct crew__link *link)
{
    return crew__container_of(link, struct crew__job, link);
}

/*
 * Take a batch from the injection queue: the oldest is returned to run
 * now, the rest go on w's deque, newest first, where w pops them in
 * submission order and idle workers can steal them. w's deque is empty
 * (crew__find_job() looked first), and its ring holds at least 64 items,
 * so the push never grows it and never fails.
 */
static struct crew__job *
take_batch(struct crew__worker *w)
{
    struct crew__link *batch[BATCH];
    void *rest[BATCH];
    size_t n = crew__inject_pop_batch(&w->sched->inject, batch, BATCH);

    if (n == 0)
        return NULL;
    for (size_t i = 1; i < n; i++)
        rest[n - 1 - i] = job_of_link(batch[i]);
    int err = crew__deque_push_many(&w->deque, rest, n - 1);
    assert(err == 0);
    (void)err;
    return job_of_link(batch[0]);
}

struct crew__job *
crew__find_job(struct crew__worker *w)
{
    struct crew__job *job = crew__deque_pop(&w->deque);

    if (job != NULL)
        return job;
    job = take_batch(w);
    if (job != NULL)
        return job;
    return steal(w);
}

bool
crew__has_work(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    unsigned n = crew__created_workers(sched);

    if (!crew__inject_is_empty(&sched->inject))
        return true;
    for (unsigned i = 0; i < n; i++) {
        if (!crew__deque_is_empty(&sched->workers[i].deque))
            return true;
    }
    for (struct crew__worker *v = crew__first_spare(sched); v != NULL;
         v = v->spare_next) {
        if (!crew__deque_is_empty(&v->deque))
            return true;
    }
    return false;
}

void
crew__run_job(struct crew__worker *w, struct crew__job *job)
{
    unsigned running = atomic_load_explicit(&w->running, memory_order_relaxed);

    /* Relaxed: statistics; see crew__counter_add(). */
    atomic_store_explicit(&w->running, running + 1, memory_order_relaxed);
    crew__job_run(job, crew__mode_of(w->sched) == CREW__CANCELLING,
                  &w->tally);
    atomic_store_explicit(&w->running, running, memory_order_relaxed);
}

/*
 * Helping nests: a helped job that waits helps in turn, each level a few
 * frames deeper on the worker's stack. A wait helps while more than the
 * worker's reserve of stack lies below its frame, so that the jobs it
 * runs have room; past that it blocks: it sleeps until the wait is over,
 * running nothing, counted in `blocked`.
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
        size = w->sched->options.stack_size != 0 ? w->sched->options.stack_size
                                                 : crew__stack_default();
        low = (void *)(here - (size - size / 16));
    }
    w->stack_low = (uintptr_t)low;
    w->stack_reserve = size / 8 > RESERVE_MIN   ? size / 8
                       : size / 2 < RESERVE_MIN ? size / 2
                                                : RESERVE_MIN;
}

/*
 * w starts a wait that cannot help. If every worker now waits so while
 * work is queued, nobody would run it: start a spare worker. No need
 * goes unseen: w counts itself (seq_cst) and then looks at the queues; a
 * submitter pushes (seq_cst) and then reads the counts
 * (crew__sched_wake()); a spare that leaves uncounts itself and then
 * looks (spare.c). In the single total order, the last of them sees the
 * others.
 */
static void
block(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;

    atomic_fetch_add_explicit(&sched->blocked, 1, memory_order_seq_cst);
    if (crew__all_blocked(sched) && crew__has_work(w))
        crew__spawn_spare(sched);
}

static void
unblock(struct crew__worker *w)
{
    /* Relaxed: a count too high for a moment can only start a spare
     * that finds nothing to do and leaves. */
    atomic_fetch_sub_explicit(&w->sched->blocked, 1, memory_order_relaxed);
}

int
crew__worker_wait(struct crew__worker *w, struct crew__wait *wait,
                  uint64_t deadline)
{
    bool help = has_room(w);

    for (;;) {
        if (wait->over(wait))
            return 0;
        if (deadline != UINT64_MAX && crew__now_ns() >= deadline)
            return ETIMEDOUT;
        struct crew__job *job = help ? crew__find_job(w) : NULL;
        if (job != NULL) {
            crew__run_job(w, job);
            continue;
        }
        uint32_t key = crew__event_prepare(&w->event);
        if (!wait->arm(wait, &w->event)) {
            crew__event_cancel(&w->event);
            return 0;
        }
        if (help) {
            /* Woken by new work as well as by the end of the wait. */
            crew__sleeper_add(w);
            if (crew__has_work(w))
                crew__event_cancel(&w->event);
            else
                crew__event_wait(&w->event, key, deadline);
        } else {
            /* Woken by the end of the wait alone. */
            block(w);
            crew__event_wait(&w->event, key, deadline);
            unblock(w);
        }
        wait->disarm(wait);
        /* Woken to search: this loop looks for work anyway, but may leave
         * at once if the wait is over; pass the duty on. */
        if (help && !crew__sleeper_remove(w))
            crew__stop_searching(w);
    }
}

void
crew__worker_begin(struct crew__worker *w)
{
    const struct crew__sched_options *o = &w->sched->options;
    char name[NAME_MAX_LENGTH + 1];

    crew__self = w;
    find_stack(w);
    snprintf(name, sizeof(name), "%s-%u", o->name, w->index);
    crew__thread_set_name(name);
    if (o->on_thread_start != NULL)
        o->on_thread_start(o->pool, w->index, o->user);
}

/* Still the scheduler's worker (a shutdown from the hook is EDEADLK),
 * but one that will look at its deque no more: a submission from here on
 * is an outside one, refused during the shutdown. */
void
crew__worker_end(struct crew__worker *w)
{
    const struct crew__sched_options *o = &w->sched->options;

    w->exiting = true;
    if (o->on_thread_stop != NULL)
        o->on_thread_stop(o->pool, w->index, o->user);
    crew__self = NULL;
}

int
crew__worker_init(struct crew__worker *w, struct crew__sched *sched,
                  unsigned index)
{
    int err = crew__deque_init(&w->deque);

    if (err != 0)
        return err;
    crew__event_init(&w->event);
    w->sched = sched;
    w->index = index;
    w->rng = 2654435761u * (index + 1);
    return 0;
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

int
crew__worker_start(struct crew__worker *w, void *(*main)(void *),
                   bool detached)
{
    size_t stack_size = w->sched->options.stack_size;
    pthread_attr_t attr;
    sigset_t blocked, saved;
    int err;

    if (crew__fault_thread())
        return EAGAIN;
    err = pthread_attr_init(&attr);
    if (err != 0)
        return err;
    if (stack_size != 0)
        err = pthread_attr_setstacksize(&attr, stack_size);
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

/* What a fixed worker's thread runs, from its start to its exit. */
void *
crew__worker_main(void *arg)
{
    struct crew__worker *w = arg;
    struct crew__sched *sched = w->sched;

    crew__worker_begin(w);
    for (bool woken = false;;) {
        enum crew__mode mode = crew__mode_of(sched);
        struct crew__job *job = woken ? NULL : crew__find_job(w);
        if (job == NULL && (mode == CREW__OPEN || woken))
            job = crew__search(w, woken);
        woken = false;
        if (job != NULL) {
            crew__run_job(w, job);
            continue;
        }
        if (mode == CREW__OPEN)
            woken = crew__park(w);
        else if (crew__idle_while_stopping(w))
            break;
    }
    crew__worker_end(w);
    /* Acquire-release: the last worker out sees `detached` and every
     * other worker's last writes before it lets go of the scheduler. */
    if (atomic_fetch_sub_explicit(&sched->live, 1, memory_order_acq_rel) ==
            1 &&
        atomic_load_explicit(&sched->detached, memory_order_acquire))
        crew__sched_unhold(sched);
    return NULL;
}
