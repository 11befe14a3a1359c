/*
 * Waiting for a future: the blocking calls.
 *
 * A thread outside every pool spins briefly (a short task resolves within
 * the time a futex sleep and wake-up would take), then sleeps on an event
 * of its own, linked on the future's waiter list from its own stack
 * frame. The resolver notifies and unlinks the waiters under the future's
 * lock, and a sleeper leaves only after taking that lock to unlink itself
 * if it still is linked, so nothing is left behind by a wait that timed
 * out, and no node is touched after its owner has gone. A pool's worker
 * helps instead (sched.h's crew__worker_wait()), handed the future as a
 * struct crew__wait it knows nothing else of.
 */
#include "core/future.h"

#include "base/fork.h"
#include "base/platform.h"
#include "sched/sched.h"

#include <errno.h>

#define WAIT_SPIN_NS 20000 /* how long a thread outside the pool spins */

bool
crew__future_add_waiter(crew_future *future, struct crew__waiter *waiter)
{
    bool added;

    crew__lock_acquire(&future->lock);
    added = !crew__state_is_final(
        atomic_load_explicit(&future->state, memory_order_relaxed));
    if (added) {
        crew__list_push(&future->waiters, &waiter->link);
        waiter->linked = true;
    }
    crew__lock_release(&future->lock);
    return added;
}

void
crew__future_remove_waiter(crew_future *future, struct crew__waiter *waiter)
{
    crew__lock_acquire(&future->lock);
    if (waiter->linked) {
        crew__list_remove(&future->waiters, &waiter->link);
        waiter->linked = false;
    }
    crew__lock_release(&future->lock);
}

uint64_t
crew__spin_end(uint64_t deadline)
{
    uint64_t end = crew__now_ns() + WAIT_SPIN_NS;

    return deadline < end ? deadline : end;
}

bool
crew__future_spin(const crew_future *future, uint64_t end)
{
    for (unsigned round = 1;; round++) {
        if (crew__future_is_resolved(future))
            return true;
        if (round % 16 == 0 && crew__now_ns() >= end)
            return false;
        for (int i = 0; i < 8; i++)
            crew__cpu_relax();
    }
}

/* A worker's wait on a future (see crew__worker_wait()): over once the
 * future resolves, armed by a waiter node on it. */
struct future_wait {
    struct crew__wait base;
    crew_future *future;
    struct crew__waiter waiter;
};

static bool
wait_over(struct crew__wait *base)
{
    struct future_wait *w = crew__container_of(base, struct future_wait, base);

    /* What this thread put off, a helped task's completions among it,
     * may be what resolves the future. */
    crew__future_flush();
    return crew__future_is_resolved(w->future);
}

static bool
wait_arm(struct crew__wait *base, struct crew__event *event)
{
    struct future_wait *w = crew__container_of(base, struct future_wait, base);

    w->waiter.event = event;
    return crew__future_add_waiter(w->future, &w->waiter);
}

static void
wait_disarm(struct crew__wait *base)
{
    struct future_wait *w = crew__container_of(base, struct future_wait, base);

    crew__future_remove_waiter(w->future, &w->waiter);
}

int
crew__future_await(crew_future *future, uint64_t deadline)
{
    struct crew__worker *self;
    struct crew__event event;
    struct crew__waiter waiter = {.event = &event};
    uint32_t key;
    int err;

    if (crew__future_is_resolved(future))
        return 0;
    crew__future_before_wait(future);
    /* What this thread put off may be what resolves the future. */
    crew__future_flush();
    if (crew__future_is_stranded(future))
        return ESHUTDOWN;
    self = crew__worker_self();
    if (self != NULL) {
        struct future_wait wait = {
            .base = {wait_over, wait_arm, wait_disarm}, .future = future};
        return crew__worker_wait(self, &wait.base, deadline);
    }
    /* Spin briefly before sleeping: a short task resolves within the time
     * a futex sleep and wake-up would take, and then neither happens. */
    if (crew__future_spin(future, crew__spin_end(deadline)))
        return 0;

    /* A thread outside every pool sleeps on an event of its own, which
     * only this future's resolver notifies. */
    crew__event_init(&event);
    key = crew__event_prepare(&event);
    if (!crew__future_add_waiter(future, &waiter)) {
        crew__event_cancel(&event);
        return 0;
    }
    err = crew__event_wait(&event, key, deadline);
    crew__future_remove_waiter(future, &waiter);
    return crew__future_is_resolved(future) ? 0 : err;
}

bool
crew__future_is_stranded(const crew_future *future)
{
    return future->generation != (uint8_t)crew__fork_generation() &&
           crew__future_ops(future)->needs_worker &&
           !crew__future_is_resolved(future);
}

int
crew__future_code(const crew_future *future)
{
    switch (atomic_load_explicit(&future->state, memory_order_acquire)) {
    case CREW_SUCCEEDED:
        return 0;
    case CREW_CANCELLED:
        return ECANCELED;
    default:
        crew__future_observe(future);
        return future->error->code;
    }
}

int
crew_future_wait(crew_future *future)
{
    if (future == NULL)
        return EINVAL;
    if (crew__future_await(future, UINT64_MAX) == ESHUTDOWN)
        return ESHUTDOWN;
    return crew__future_code(future);
}

int
crew_future_wait_for(crew_future *future, uint64_t timeout_ns)
{
    int err;

    if (future == NULL)
        return EINVAL;
    err = crew__future_await(future, crew__deadline_after(timeout_ns));
    return err != 0 ? err : crew__future_code(future);
}
