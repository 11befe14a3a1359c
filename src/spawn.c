/*
 * Fork-join without futures: crew_spawn() and crew_sync().
 *
 * Theory of operation. A spawned call is a frame on its spawner's stack:
 * the call (fn, arg), the task invocation that spawned it, the frame it
 * spawned before (a stack, synced newest first), and how it went. Its
 * job goes on the spawning worker's second deque, of spawned calls only
 * (sched/sched.h), from which three kinds of thread may take it: the
 * spawner itself at the sync (a pop, the frame on top: see below), the
 * same worker while it helps in a wait of the spawner's (its own
 * deque's newest), or a thief (the oldest). Whoever takes it other than
 * the sync runs run_frame(); the sync runs the call itself.
 *
 * Why the frame is on top at its sync. Spawns are synced in reverse
 * order by the invocation that made them, and invocations nest on a
 * worker's stack: every frame pushed after ours belongs to an invocation
 * above ours, which synced it before it returned. So when the sync comes,
 * either our frame is the newest entry, or it has been taken: by this
 * worker while it helped (then it has run to the end, and is DONE), or by
 * a thief, which takes the oldest entry first, so that nothing older than
 * our frame is left and the pop finds the deque empty.
 *
 * The states: QUEUED until someone other than the sync takes it; TAKEN
 * while that one runs it (a thief records itself first, for the
 * spawner's leapfrogging); WAITING when the spawner sleeps on its
 * worker's event for it; DONE once its outcome is written. The runner
 * exchanges DONE in and wakes the spawner's worker if it found WAITING;
 * it reads the frame no more after that exchange, since the spawner may
 * return at once, and the worker it wakes outlives the frame.
 */
#include "crew.h"

#include "base/platform.h"
#include "core/error.h"
#include "pool.h"
#include "sched/job.h"
#include "sched/sched.h"
#include "task.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

enum { QUEUED, TAKEN, WAITING, DONE };

struct frame {
    struct crew__job job; /* on its spawner's worker's spawn deque */
    crew_fn fn;
    void *arg;
    crew_task *spawner;          /* the invocation that spawned it */
    struct frame *below;         /* the spawner's previous spawn, unsynced */
    struct crew__worker *owner;  /* the spawner's worker, or NULL: inline */
    struct crew__worker *thief;  /* who took it, once TAKEN */
    _Atomic uint32_t state;
    int code;            /* what fn returned, once DONE */
    crew_error *message; /* what a failing fn recorded, or NULL */
};

_Static_assert(sizeof(struct frame) <= sizeof(crew_frame),
               "crew_frame must hold the library's frame");
_Static_assert(_Alignof(struct frame) <= _Alignof(crew_frame),
               "crew_frame must be aligned for the library's frame");

static void run_frame(struct crew__job *job, bool cancel,
                      struct crew__tally *tally);

static const struct crew__job_class frame_class = {.run = run_frame};

static struct frame *
frame_of(crew_frame *frame)
{
    return (struct frame *)(void *)frame;
}

/* Taken out of a spawn deque by anyone but its sync: run it, even in a
 * CREW_CANCEL shutdown (`cancel`), as its spawner's. Counted as a task
 * only when another worker took it. */
static void
run_frame(struct crew__job *job, bool cancel, struct crew__tally *tally)
{
    struct frame *f = crew__container_of(job, struct frame, job);
    struct crew__worker *owner = f->owner;
    struct crew__worker *self = crew__worker_self();
    crew_pool *pool = crew_task_pool(f->spawner);
    bool stolen = self != owner;
    int code;

    (void)cancel;
    (void)tally;
    f->thief = self;
    /* Release: the spawner that sees TAKEN reads `thief`. */
    atomic_store_explicit(&f->state, TAKEN, memory_order_release);
    code = crew__task_call_as(f->spawner, f->fn, f->arg, &f->message);
    f->code = code;
    if (stolen)
        crew__pool_count_chunks(pool, code == 0, code != 0);
    /* Acquire-release: the spawner that sees DONE sees the outcome, and
     * everything the call wrote. */
    if (atomic_exchange_explicit(&f->state, DONE, memory_order_acq_rel) ==
        WAITING)
        crew__worker_notify(owner);
}

/* The spawner's wait for a frame a thief runs. */
struct frame_wait {
    struct crew__wait base;
    struct frame *frame;
};

static bool
frame_done(struct crew__wait *wait)
{
    struct frame_wait *w = crew__container_of(wait, struct frame_wait, base);

    /* Acquire: pairs with the runner's exchange. */
    return atomic_load_explicit(&w->frame->state, memory_order_acquire) ==
           DONE;
}

/* The event is the spawner's worker's, which the runner wakes. */
static bool
frame_arm(struct crew__wait *wait, struct crew__event *event)
{
    struct frame_wait *w = crew__container_of(wait, struct frame_wait, base);
    uint32_t state = TAKEN;

    (void)event;
    /* seq_cst: either the runner's exchange sees WAITING, or this sees
     * DONE. */
    return atomic_compare_exchange_strong_explicit(
               &w->frame->state, &state, WAITING, memory_order_seq_cst,
               memory_order_acquire) ||
           state == WAITING;
}

static void
frame_disarm(struct crew__wait *wait)
{
    (void)wait;
}

/* Wait for the thief running f, leapfrogging into its spawned calls. */
static void
wait_for_thief(struct frame *f)
{
    struct frame_wait wait = {
        .base = {frame_done, frame_arm, frame_disarm}, .frame = f};

    /* A thief records itself within a few instructions of its steal. */
    while (atomic_load_explicit(&f->state, memory_order_acquire) == QUEUED)
        crew__thread_yield();
    crew__worker_wait_spawned(f->owner, f->thief, &wait.base);
}

/* Run f's call on this thread, now: it is the spawner's, the sync's. */
static void
run_here(struct frame *f)
{
    f->code = crew__task_call_as(f->spawner, f->fn, f->arg, &f->message);
    atomic_store_explicit(&f->state, DONE, memory_order_relaxed);
}

int
crew_spawn(crew_task *task, crew_frame *frame, crew_fn fn, void *arg)
{
    struct frame *f = frame_of(frame);
    void **top;

    if (frame == NULL || fn == NULL || !crew__task_is_running_here(task))
        return EINVAL;
    top = crew__task_spawned(task);
    *f = (struct frame){.job = {.class = &frame_class},
                        .fn = fn,
                        .arg = arg,
                        .spawner = task,
                        .below = *top,
                        .owner = crew__worker_self()};
    atomic_init(&f->state, QUEUED);
    *top = f;
    if (f->owner == NULL ||
        crew__pool_spawn(crew_task_pool(task), &f->job) != 0) {
        /* Not one of the pool's workers, or no room: at once. */
        f->owner = NULL;
        run_here(f);
    }
    return 0;
}

int
crew_sync(crew_task *task, crew_frame *frame)
{
    struct frame *f = frame_of(frame);
    void **top;

    if (frame == NULL || !crew__task_is_running_here(task))
        return EINVAL;
    top = crew__task_spawned(task);
    if (*top != f)
        return EINVAL;
    while (atomic_load_explicit(&f->state, memory_order_acquire) != DONE) {
        struct crew__job *job = crew__sched_spawn_pop();

        if (job == &f->job) {
            run_here(f);
        } else if (job == NULL) {
            wait_for_thief(f);
        } else {
            /* Never, by the order of syncs (see above); were it to
             * happen, a spawned call is the one kind of work a sync may
             * run. */
            job->class->run(job, false, NULL);
        }
    }
    *top = f->below;
    if (f->code != 0)
        crew__task_adopt_failure(task, f->message);
    return f->code;
}
