/*
 * Fork-join without futures: crew_spawn() and crew_sync().
 *
 * Theory of operation. A spawned call is a frame on its spawner's stack:
 * the call (fn, arg), the task invocation that spawned it, the frame it
 * spawned before (a stack, synced newest first), and how it went. Its
 * job goes on the spawning worker's split deque of spawned calls
 * (sched/split.h), from which three kinds of thread may take it: the
 * spawner itself at the sync (the frame on top: see below), the same
 * worker while it helps in a wait of the spawner's (its own deque's
 * newest), or a thief (the oldest shared one). Whoever takes it other
 * than the sync runs run_frame(); the sync runs the call itself.
 *
 * The sync nobody stole from is the common case, and inline: the deque's
 * head is still above the frame's index and the frame lies above the
 * split, so taking it back is a compare and a store of the worker's own
 * fields, and the call runs at once, with no atomic instruction between
 * the spawn and the end of the sync. A head at or below the frame's
 * index means this worker ran it while it helped.
 *
 * Why the frame is on top at its sync. Spawns are synced in reverse
 * order by the invocation that made them, and invocations nest on a
 * worker's stack: every frame pushed after ours belongs to an invocation
 * above ours, which synced it before it returned. So when the sync comes,
 * either our frame is the newest entry, or it has been taken: by this
 * worker while it helped (then it has run to the end, and is DONE), or by
 * a thief, which takes the oldest entry first, so that nothing older than
 * our frame is left, and the take finds it gone.
 *
 * The states: QUEUED until someone other than the sync takes it; TAKEN
 * while that one runs it (a thief records itself first, for the
 * spawner's leapfrogging); WAITING when the spawner sleeps for it, on
 * the runner's worker's `frogs` event (sched/worker.c), which also wakes
 * it when the runner shares calls to leapfrog into; DONE once its
 * outcome is written. The runner exchanges DONE in and notifies its own
 * worker's event if it found WAITING; it reads the frame no more after
 * that exchange, since the spawner may return at once.
 */
#include "crew.h"

#include "base/platform.h"
#include "core/error.h"
#include "observe.h"
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
    struct crew__job job; /* on its spawner's worker's split deque */
    crew_fn fn;
    void *arg;
    crew_task *spawner;        /* the invocation that spawned it */
    struct frame *below;       /* the spawner's previous spawn, unsynced */
    struct crew__split *home;  /* the spawner's worker's deque, or NULL:
                                  it ran at once */
    struct crew__split *thief; /* the deque of whoever took it, once TAKEN */
    uint32_t index;            /* its place in `home` */
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
    struct crew__split *home = f->home;
    bool stolen = crew__spawns_here != home;
    crew_pool *pool = f->spawner->pool;
    int code;

    (void)cancel;
    (void)tally;
    f->thief = crew__spawns_here;
    /* Release: the spawner that sees TAKEN reads `thief`, and may drop
     * the frame's place in its deque, where this thread read the job. */
    atomic_store_explicit(&f->state, TAKEN, memory_order_release);
    if (stolen) {
        struct crew__run run;

        /* A stolen call counts as queued when it was stolen: now. */
        crew__run_begin(pool, &run, (void (*)(void))f->fn,
                        crew__pool_trace_now(pool), CREW__RUN_SPAWNED);
        code = crew__task_call_as(f->spawner, crew__spawns_here, f->fn,
                                  f->arg, &f->message);
        crew__run_end(pool, &run, code == 0 ? CREW_SUCCEEDED : CREW_FAILED,
                      code);
    } else {
        code = crew__task_call_as(f->spawner, crew__spawns_here, f->fn,
                                  f->arg, &f->message);
    }
    f->code = code;
    if (stolen)
        crew__pool_count_chunks(pool, code == 0, code != 0);
    /* Acquire-release: the spawner that sees DONE sees the outcome, and
     * everything the call wrote. */
    if (atomic_exchange_explicit(&f->state, DONE, memory_order_acq_rel) ==
        WAITING)
        crew__sched_spawns_notify(crew__spawns_here);
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
    crew__sched_wait_spawned(f->home, f->thief, &wait.base);
}

/* The rare ends of a spawn: no queue took f (the caller is not one of
 * the pool's workers, or its queue is full), and f's call runs at once;
 * or the push asks its worker to share calls. */
static CREW__COLD int
spawn_slow(crew_task *task, struct frame *f, struct crew__split *q,
           enum crew__split_push how)
{
    if (q != NULL && how == CREW__SPLIT_TO_SHARE) {
        crew__sched_spawns_share(q);
        return 0;
    }
    f->home = NULL;
    f->code = crew__task_call_as(task, task->spawns, f->fn, f->arg,
                                 &f->message);
    return 0;
}

int
crew_spawn(crew_task *task, crew_frame *frame, crew_fn fn, void *arg)
{
    struct frame *f = frame_of(frame);
    struct crew__split *q;
    enum crew__split_push how = CREW__SPLIT_FULL;

    if (frame == NULL || fn == NULL || !crew__task_is_running_here(task))
        return EINVAL;
    q = task->spawns;
    f->job.class = &frame_class;
    f->fn = fn;
    f->arg = arg;
    f->spawner = task;
    f->below = task->spawned;
    task->spawned = f;
    /* Relaxed: published with the job, by the deque (split.c). */
    atomic_store_explicit(&f->state, QUEUED, memory_order_relaxed);
    f->home = q;
    if (q != NULL) {
        f->index = q->head;
        how = crew__split_put(q, &f->job);
        if (how == CREW__SPLIT_PRIVATE)
            return 0;
    }
    return spawn_slow(task, f, q, how);
}

/* The sync of a frame on this worker's deque q that is not its newest
 * private item: shared (the take may still get it back), or stolen. */
static CREW__COLD void
sync_shared(crew_task *task, struct frame *f, struct crew__split *q)
{
    if (crew__split_take(q) == &f->job) {
        f->code = crew__task_call_as(task, q, f->fn, f->arg, &f->message);
    } else {
        /* The take found it stolen (never another frame: see the order
         * of syncs above). */
        wait_for_thief(f);
        crew__split_drop(q);
    }
}

int
crew_sync(crew_task *task, crew_frame *frame)
{
    struct frame *f = frame_of(frame);
    struct crew__split *q;

    if (frame == NULL || !crew__task_is_running_here(task) ||
        task->spawned != f)
        return EINVAL;
    q = f->home;
    /* Else it ran at once, or this worker ran it while it helped. */
    if (q != NULL && q->head > f->index) {
        if (f->index >= q->split) {
            /* The newest item, and private: f's (see above). */
            q->head = f->index;
            f->code = crew__task_call_as(task, q, f->fn, f->arg, &f->message);
        } else {
            sync_shared(task, f, q);
        }
    }
    task->spawned = f->below;
    if (f->code != 0)
        crew__task_adopt_failure(task, f->message);
    return f->code;
}
