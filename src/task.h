/*
 * Tasks as the pool sees them: made at submission, run or cancelled by
 * whoever takes them from a queue.
 */
#ifndef CREW_TASK_H
#define CREW_TASK_H

#include "crew.h"

#include "base/platform.h"
#include "core/future.h"
#include "sched/split.h"
#include "sched/stats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A task's future, not yet queued, with `refs` references. NULL on
 * ENOMEM. */
crew_future *crew__task_new(crew_pool *pool, crew_fn fn, void *arg,
                            crew_free_fn arg_free, uint32_t refs);
/* Free a task that was never queued: its function and arg_free never
 * run. */
void crew__task_discard(crew_future *future);
/* The job class's run, a task's and a continuation's: take a task from
 * a queue and run it, or, when `cancel` (a CREW_CANCEL shutdown),
 * resolve it cancelled. Drops the queue's reference. Counts how it ended
 * on `tally`: a task that runs before its future resolves, so a thread
 * that sees it resolved reads the count too; a husk (a task a canceller
 * took where it lay) here, as it leaves the queue. */
void crew__task_run(struct crew__job *job, bool cancel,
                    struct crew__tally *tally);
/* crew_future_cancel() on a queued task. */
int crew__task_cancel(crew_future *future);
/* Resolve a task its pool would not queue (a continuation whose input
 * resolved): cancelled for ESHUTDOWN, else failed with `code`; its
 * arg_free runs first. Nothing to do if a canceller took it first. */
void crew__task_refuse(crew_future *future, int code);
/* Take back a queued task that has not started, resolving it cancelled
 * without asking a running one to stop. False if it has started or
 * resolved. */
bool crew__task_revoke(crew_future *future);
/* The future of the task running as `task`; NULL for a loop's chunk. */
crew_future *crew__task_future(const crew_task *task);
/* Call fn(task, lo, hi, arg) with a crew_task of its own, not a queued
 * task's (a parallel loop's chunk): crew_task_cancelled() answers for the
 * pool alone. Returns 0, or the failure's code with *failure its error
 * (a new reference; NULL if memory ran out). A value returned is freed. */
int crew__task_call_range(crew_pool *pool, crew_range_fn fn, size_t lo,
                          size_t hi, void *arg, crew_error **failure);

/*
 * What crew_task points to: the running invocation of a task's function,
 * on the stack of the thread that runs it. The value and message
 * recorded by crew_task_return and crew_task_fail stay here until the
 * function returns and the outcome is decided.
 */
struct crew_task {
    crew_future *future; /* NULL for a loop's chunk */
    crew_pool *pool;
    crew_error *failure; /* from crew_task_fail(), private until resolution */
    bool failure_lost;   /* crew_task_fail() ran out of memory */
    void *spawned;       /* its latest spawn not yet synced (spawn.c) */
    /* The deque of spawned calls of the worker that runs it, or NULL on
     * a thread that is not one of the pool's workers in its loop. */
    struct crew__split *spawns;
    struct crew__result result; /* crew_task_return(), _copy() */
};

/* The task whose function this thread runs, innermost first. */
extern _Thread_local const struct crew_task *crew__task_running;

/* Whether `task` is the one whose function the calling thread runs. */
static inline bool
crew__task_is_running_here(const crew_task *task)
{
    return task != NULL && task == crew__task_running;
}

/* The end of crew__task_call_as() for a call that failed, returned a
 * value or recorded a message. */
int crew__task_end_spawned(struct crew_task *child, int rc,
                           crew_error **message);

/* Call fn(child, arg) as a spawned call of `spawner`'s, on the thread
 * whose deque of spawned calls is `spawns`: a crew_task of its own that
 * acts for the spawner (its future's cancellation, its pool). A value it returns is released at once. Returns fn's code; on
 * failure *message is the message the call recorded (a new reference,
 * its code the call's), or NULL if it recorded none; on success
 * *message is left alone. Inline: it is the body of every sync. */
static CREW__ALWAYS_INLINE int
crew__task_call_as(const crew_task *spawner, struct crew__split *spawns,
                   crew_fn fn, void *arg, crew_error **message)
{
    const struct crew_task *outer = crew__task_running;
    struct crew_task child;
    int rc;

    /* Field by field, only those read before written: nothing reads a
     * spawned call's `failure_lost`, nor the rest of its result. */
    child.future = spawner->future;
    child.pool = spawner->pool;
    child.failure = NULL;
    child.spawned = NULL;
    child.spawns = spawns;
    child.result.kind = CREW__RESULT_POINTER;
    child.result.as.ptr.value = NULL;
    child.result.as.ptr.value_free = NULL;
    crew__task_running = &child;
    rc = fn(&child, arg);
    crew__task_running = outer;
    if (rc == 0 && child.failure == NULL &&
        child.result.kind == CREW__RESULT_POINTER &&
        child.result.as.ptr.value_free == NULL)
        return 0;
    return crew__task_end_spawned(&child, rc, message);
}
/* Make `message` (NULL: none) the failure the task has recorded, as if
 * it had called crew_task_fail() itself; takes the reference. */
void crew__task_adopt_failure(crew_task *task, crew_error *message);

#endif
