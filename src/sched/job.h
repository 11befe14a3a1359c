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
#include <stddef.h>

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
    union {
        struct crew__link link; /* in the injection queue */
        /* Once taken out of every queue (the link is dead by then, and a
         * deque never used it): a word for the job's kind to keep. */
        void *taken;
    };
    const struct crew__job_class *class; /* constant from creation */
};

/*
 * n jobs lying at a fixed stride in one block of memory, the first at
 * `first`: a batch (crew_submit_each()), queued in one hand-over.
 */
struct crew__jobs {
    struct crew__job *first;
    size_t stride; /* bytes from one job to the next */
    size_t n;
};

static inline struct crew__job *
crew__jobs_at(const struct crew__jobs *jobs, size_t i)
{
    return (struct crew__job *)(void *)((char *)jobs->first +
                                        i * jobs->stride);
}

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
