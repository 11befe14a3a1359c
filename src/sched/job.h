/*
 * A job: all the scheduler knows of the work it runs. Queues hold jobs
 * (a deque holds pointers to them, the injection queue links them), and
 * a worker that takes one out calls its class's run(). What a job is —
 * a task and its future, a continuation — is its kind's business, behind
 * that one function pointer, as libuv's workers run opaque uv__work items
 * and oneTBB's dispatcher calls t->execute().
 */
#ifndef CREW_SCHED_JOB_H
#define CREW_SCHED_JOB_H

#include "sched/inject.h"

#include <stdbool.h>

struct crew__job;
struct crew__tally; /* sched/stats.h */

/* What every job of one kind shares: how to run it. A kind may place
 * this at the start of a larger table of its own (see core/future.h), so
 * that one pointer in each object serves both. */
struct crew__job_class {
    /* Run `job`, just taken out of a queue, or, when `cancel` (a
     * CREW_CANCEL shutdown), resolve it cancelled without running it.
     * The queue's hold on the job is the callee's to drop. Count how it
     * ended on `tally`, the taker's counters. */
    void (*run)(struct crew__job *job, bool cancel, struct crew__tally *tally);
};

struct crew__job {
    struct crew__link link;              /* in the injection queue */
    const struct crew__job_class *class; /* constant from creation */
};

static inline void
crew__job_run(struct crew__job *job, bool cancel, struct crew__tally *tally)
{
    job->class->run(job, cancel, tally);
}

/* Flags of a submission (see crew__pool_submit()). */
enum {
    CREW__JOB_SLOTTED = 1u << 0,     /* holds a max_queued slot while queued */
    CREW__JOB_INTERNAL = 1u << 1,    /* no task: counted apart, as a runner */
    CREW__JOB_NONBLOCKING = 1u << 2, /* EAGAIN rather than wait for a slot */
};

#endif
