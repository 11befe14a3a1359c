/*
 * Tasks as the pool sees them: made at submission, run or cancelled by
 * whoever takes them from a queue.
 */
#ifndef CREW_TASK_H
#define CREW_TASK_H

#include "crew.h"
#include "core/future.h"
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

/* Call fn(child, arg) as a spawned call of `spawner`'s: a crew_task of
 * its own that acts for the spawner (its future's cancellation, its
 * pool). A value it returns is released at once. Returns fn's code; on
 * failure *message is the message the call recorded (a new reference,
 * its code the call's), or NULL if it recorded none. */
int crew__task_call_as(const crew_task *spawner, crew_fn fn, void *arg,
                       crew_error **message);
/* Whether `task` is the one whose function the calling thread runs. */
bool crew__task_is_running_here(const crew_task *task);
/* The task's latest spawned call not yet synced: spawn.c's to keep. */
void **crew__task_spawned(crew_task *task);
/* Make `message` (NULL: none) the failure the task has recorded, as if
 * it had called crew_task_fail() itself; takes the reference. */
void crew__task_adopt_failure(crew_task *task, crew_error *message);

#endif
