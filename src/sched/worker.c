/*
 * The worker loop, and helping while waiting.
 *
 * Theory of operation. Each worker owns a deque: a job submitted from a
 * worker goes on that worker's own deque, a job from any other thread on
 * the injection queue (sched.c). A worker runs what it finds (find.c);
 * finding nothing, it searches and then sleeps (idle.c).
 *
 * A worker that waits helps: it runs jobs until the wait is over, and
 * with none to run sleeps on its own event, listed as a sleeper and
 * armed on what it waits for, so either new work or the end of the wait
 * wakes it. Helping nests: a helped job that waits helps in turn, as
 * deep as the worker's stack has room for (see has_room()). Past that a
 * wait blocks: it runs nothing and only the end of the wait wakes it;
 * spare.c makes sure someone runs the queued work meanwhile.
 */
#include "sched/private.h"

#include "base/platform.h"

#include <errno.h>

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

    /* Its spawned calls kept private would wait for it. */
    if (crew__split_share_all(&w->spawns)) {
        crew__sched_wake(sched);
        crew__event_notify_all(&w->frogs);
    }
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

/* Tries a spawned wait makes before it sleeps: each looks for a call of
 * the thief's to run, then at the wait. */
#define SPAWNED_SPINS 256

/*
 * The sync of a call that `thief` took: leapfrog into the thief's shared
 * spawned calls, the pieces of the awaited call's own work, and with none
 * to take, sleep on the thief's `frogs` event. The thief notifies it both
 * when it finishes a call whose spawner sleeps and when it shares calls
 * (sched.c), so that a sleeping spawner is back for the next piece: on a
 * deep, narrow tree the thief's shares are the only work there is.
 */
void
crew__worker_wait_spawned(struct crew__worker *w, struct crew__worker *thief,
                          struct crew__wait *wait)
{
    bool help = has_room(w);
    unsigned spins = 0;

    while (!wait->over(wait)) {
        struct crew__job *job = help ? crew__steal_spawned(w, thief) : NULL;
        if (job != NULL) {
            crew__run_job(w, job);
            spins = 0;
            continue;
        }
        if (spins++ < SPAWNED_SPINS) {
            crew__thread_yield();
            continue;
        }
        uint32_t key = crew__event_prepare(&thief->frogs);
        if (!wait->arm(wait, &thief->frogs)) {
            crew__event_cancel(&thief->frogs);
            return;
        }
        /* After the announcement: a share from here on notifies. */
        if (help && !crew__split_is_empty(&thief->spawns)) {
            crew__event_cancel(&thief->frogs);
            wait->disarm(wait);
            continue;
        }
        /* Counted as blocked: it runs no queued work while it sleeps,
         * and if every worker waits so, a spare runs that work. */
        block(w);
        crew__event_wait(&thief->frogs, key, UINT64_MAX);
        unblock(w);
        wait->disarm(wait);
        spins = SPAWNED_SPINS / 2;
    }
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
