/*
 * crew_submit_each(): n tasks of one function, in one allocation and one
 * hand-over to the workers.
 *
 * Theory of operation. A batch is one block: a header, then n futures
 * side by side, each a task of its own in every other respect (it is
 * claimed, run, cancelled, counted and resolved by task.c's code, and
 * referenced, waited on and released like any future). Its closure calls
 * call_each(), which finds the task's index from its future's place in
 * the block. The n jobs are queued together (crew__pool_submit_many()):
 * a chain linked onto the injection queue with one CAS, or one push onto
 * the calling worker's deque.
 *
 * The block goes when its last future does: `live` counts the futures
 * not yet destroyed, and, while arg_free waits to run, one more. A
 * future's destroy() must find its batch after the future has resolved,
 * when its closure lies under the result; so each job, once taken out
 * of its queue, keeps the batch in its `taken` word (sched/job.h), set by
 * run_each() before the task runs. Every future of a batch is destroyed
 * only after run_each() dropped the queue's reference, so the word is
 * set by then. Until then the closure holds the batch: a canceller that
 * resolves a queued task writes no result over it (core/future.c writes
 * one only for a success).
 *
 * arg_free runs once, after the batch's last task resolved: `pending`
 * counts the tasks not yet out of their queue, and run_each() decrements
 * it once the task's run has resolved it, or, for a husk, once its
 * canceller has. Without an
 * arg_free nothing is counted, and tasks touch no shared line but their
 * own.
 */
#include "crew.h"

#include "base/alloc.h"
#include "base/platform.h"
#include "core/future.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct batch {
    _Atomic size_t live;    /* futures not destroyed, + 1 until arg_free */
    _Atomic size_t pending; /* tasks not yet out of their queue */
    crew_each_fn fn;
    void *arg;
    crew_free_fn arg_free;
    size_t n;
    crew_future futures[];
};

/* Each future, like a task's own block from malloc(), is aligned for any
 * type, and so is its inline result. */
_Static_assert(offsetof(struct batch, futures) % _Alignof(max_align_t) == 0,
               "a batch's first future must be aligned for any type");
_Static_assert(sizeof(crew_future) % _Alignof(max_align_t) == 0,
               "a batch's futures must all be aligned for any type");

static void run_each(struct crew__job *job, bool cancel,
                     struct crew__tally *tally);
static void destroy_each(crew_future *future);

/* A batch's task calls call_each(), which calls the user's fn. */
static crew__function
each_traced(const crew_future *future)
{
    const struct batch *batch = future->u.task.arg;

    return (crew__function)batch->fn;
}

static const struct crew__future_ops each_ops = {
    .job = {.run = run_each},
    .cancel = crew__task_cancel,
    .destroy = destroy_each,
    .needs_worker = true,
    .traced = each_traced,
};

static void
batch_unref(struct batch *batch)
{
    /* Acquire-release: whoever frees the block sees every other user's
     * last writes to it. */
    if (atomic_fetch_sub_explicit(&batch->live, 1, memory_order_acq_rel) == 1)
        crew__free(batch);
}

static int
call_each(crew_task *task, void *arg)
{
    struct batch *batch = arg;
    size_t index = (size_t)(crew__task_future(task) - batch->futures);

    return batch->fn(task, index, batch->arg);
}

static void
run_each(struct crew__job *job, bool cancel, struct crew__tally *tally)
{
    crew_future *future = crew__future_of_job(job);
    struct batch *batch = future->u.task.arg; /* see the file comment */
    /* Read first: without an arg_free, the run may free the block. */
    bool counted = batch->arg_free != NULL;

    job->taken = batch;
    if (!counted) {
        crew__task_run(job, cancel, tally);
        return;
    }
    /* A husk may still be resolving on its canceller's thread, a few
     * instructions from its final state (no user code runs there before
     * it): hold the future and wait for that, so that arg_free follows
     * every task's resolution. */
    crew_future_retain(future);
    crew__task_run(job, cancel, tally);
    while (!crew__future_is_resolved(future))
        crew__thread_yield();
    crew_future_release(future);
    /* Acquire-release: the task that frees arg runs after every other
     * task of the batch, and its own resolution, in memory order too. */
    if (atomic_fetch_sub_explicit(&batch->pending, 1, memory_order_acq_rel) ==
        1) {
        batch->arg_free(batch->arg);
        batch_unref(batch);
    }
}

static void
destroy_each(crew_future *future)
{
    batch_unref(future->job.taken);
}

/* The block for n tasks, its futures made with `refs` references each;
 * NULL on ENOMEM, n * its size overflowing included. */
static struct batch *
batch_new(crew_pool *pool, size_t n, crew_each_fn fn, void *arg,
          crew_free_fn arg_free, uint32_t refs)
{
    struct batch *batch;
    bool slotted = crew__pool_counts_slots(pool);

    if (n > (SIZE_MAX - sizeof(*batch)) / sizeof(crew_future))
        return NULL;
    batch = crew__malloc(sizeof(*batch) + n * sizeof(crew_future));
    if (batch == NULL)
        return NULL;
    atomic_init(&batch->live, n + (arg_free != NULL));
    atomic_init(&batch->pending, n);
    batch->fn = fn;
    batch->arg = arg;
    batch->arg_free = arg_free;
    batch->n = n;
    for (size_t i = 0; i < n; i++) {
        crew_future *future = &batch->futures[i];

        crew__future_init(future, &each_ops, refs);
        future->slotted = slotted;
        future->u.task = (struct crew__closure){
            .fn = call_each, .arg = batch, .arg_free = NULL, .pool = pool};
    }
    return batch;
}

int
crew_submit_each(crew_pool *pool, size_t n, crew_each_fn fn, void *arg,
                 crew_free_fn arg_free, unsigned flags, crew_future **futures)
{
    struct batch *batch;
    struct crew__jobs jobs;
    int err;

    if (pool == NULL || fn == NULL || (flags & ~CREW_NONBLOCKING) != 0) {
        err = EINVAL;
        goto out_clear;
    }
    if (n == 0) {
        if (arg_free != NULL)
            arg_free(arg);
        return 0;
    }
    /* The queue's reference, and the caller's if asked for. */
    batch = batch_new(pool, n, fn, arg, arg_free, futures != NULL ? 2 : 1);
    if (batch == NULL) {
        err = ENOMEM;
        goto out_clear;
    }
    /* The slots first: a task may read them as soon as it runs. */
    if (futures != NULL) {
        for (size_t i = 0; i < n; i++)
            futures[i] = &batch->futures[i];
    }
    jobs = (struct crew__jobs){.first = &batch->futures[0].job,
                               .stride = sizeof(crew_future),
                               .n = n};
    err = crew__pool_submit_many(
        pool, &jobs,
        (crew__pool_counts_slots(pool) ? CREW__JOB_SLOTTED : 0u) |
            ((flags & CREW_NONBLOCKING) != 0 ? CREW__JOB_NONBLOCKING : 0u));
    if (err != 0) {
        crew__free(batch); /* nothing of it was queued */
        goto out_clear;
    }
    return 0;

out_clear:
    if (futures != NULL) {
        for (size_t i = 0; i < n; i++)
            futures[i] = NULL;
    }
    return err;
}
