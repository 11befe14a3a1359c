/*
 * A worker's thread: becoming a worker on it, its stack, its signals,
 * and the holds that keep the scheduler's memory while threads use it.
 */
#include "sched/private.h"

#include "base/fault.h"
#include "base/platform.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>

#define RESERVE_MIN     (32 * 1024) /* stack a helping worker leaves free */
#define NAME_MAX_LENGTH 15 /* Linux thread names: 16 bytes with the NUL */

_Thread_local struct crew__worker *crew__self;
_Thread_local struct crew__split *crew__spawns_here;
_Thread_local const struct crew__sched *crew__spawns_sched;

/* Whether the calling thread is a worker in its loop, and whose: what
 * crew__sched_spawns() reads. */
static void
set_spawns(struct crew__worker *w)
{
    crew__spawns_here = w != NULL ? &w->spawns : NULL;
    crew__spawns_sched = w != NULL ? w->sched : NULL;
}

struct crew__worker *
crew__worker_self(void)
{
    return crew__self;
}

void
crew__worker_forget(void)
{
    /* A job that forked left its worker's identity on this thread; in
     * the child it is no worker: it must not help, nor count as one.
     * Nor may its task's spawns be stolen: they run at once (the
     * running task keeps its deque, which the child's copy refuses). */
    if (crew__self != NULL)
        crew__self->spawns.capacity = 0;
    crew__self = NULL;
    set_spawns(NULL);
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

void
crew__worker_begin(struct crew__worker *w)
{
    const struct crew__sched_options *o = &w->sched->options;
    char name[NAME_MAX_LENGTH + 1];

    crew__self = w;
    set_spawns(w);
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
    set_spawns(NULL);
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
    err = crew__split_init(&w->spawns, SPAWNS);
    if (err != 0) {
        crew__deque_destroy(&w->deque);
        return err;
    }
    crew__event_init(&w->event);
    crew__event_init(&w->frogs);
    w->sched = sched;
    w->index = index;
    w->rng = 2654435761u * (index + 1);
    return 0;
}

void
crew__worker_destroy(struct crew__worker *w, bool abandon)
{
    if (abandon) {
        crew__deque_abandon(&w->deque);
    } else {
        crew__deque_destroy(&w->deque);
    }
    /* Its items are frames on stacks: nothing to free but the array. */
    crew__split_destroy(&w->spawns);
}

/* The signals the library's threads block: every one but those the kernel sends to the
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
crew__thread_create(pthread_t *thread, void *(*main)(void *), void *arg,
                    size_t stack_size, bool detached)
{
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
        err = pthread_create(thread, &attr, main, arg);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    pthread_attr_destroy(&attr);
    return err;
}

int
crew__worker_start(struct crew__worker *w, void *(*main)(void *),
                   bool detached)
{
    return crew__thread_create(&w->thread, main, w,
                               w->sched->options.stack_size, detached);
}

void
crew__sched_hold(struct crew__sched *sched)
{
    /* Relaxed: the caller holds one already. */
    atomic_fetch_add_explicit(&sched->holds, 1, memory_order_relaxed);
}

void
crew__sched_unhold(struct crew__sched *sched)
{
    /* Acquire-release: the last holder sees every other's writes before
     * it frees. */
    if (atomic_fetch_sub_explicit(&sched->holds, 1, memory_order_acq_rel) ==
        1)
        sched->options.unheld(sched->options.pool);
}
