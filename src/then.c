/*
 * Continuations: crew_then.
 *
 * Theory of operation. A continuation is a task whose queueing waits for
 * its input. One block holds the task's future, the completion node hung
 * on the input, and the user's function and argument; its closure is
 * then_run() with the block as argument. The node holds a reference to
 * the future and a hold on the pool's memory (crew__pool_hold()), so that
 * the pool, though destroyed meanwhile, is still there to refuse the
 * continuation when the input resolves. Then the node queues the future
 * as a task (crew__pool_submit(): the worker's own deque on one of the
 * pool's workers, the injection queue elsewhere), handing its reference
 * to the queue; if the pool refuses, the node resolves it cancelled (or
 * failed, ENOMEM, if a worker's deque could not grow) and drops the
 * reference itself. Either way it lets go of the pool last.
 *
 * The block holds a reference to its input until the continuation is
 * done with it: after `fn` has run, or once it resolves without running
 * (then_done(), the task's arg_free, which runs exactly once either
 * way), so a chain of continuations keeps alive only what is pending.
 * The pointer is read and cleared under the block's lock: a canceller
 * takes a reference of its own there before it looks for the node on
 * the input's list.
 *
 * Cancelling a continuation first takes the node off the input's list.
 * If that succeeds the node will never fire, and the canceller does what
 * it would have done: resolves the future cancelled, drops the node's
 * reference, lets go of the pool. If the node is gone (fired, or firing
 * now) the future is, or is about to be, a queued task, cancelled like any
 * other; a racing queueing then queues a husk, which its taker counts as
 * cancelled and discards. Only a queued continuation counts in the
 * pool's statistics.
 */
#include "base/alloc.h"
#include "core/future.h"
#include "pool.h"
#include "task.h"

#include <errno.h>

struct then {
    crew_future base;             /* first: the block is the future */
    struct crew__completion node; /* on the input's completion list */
    crew_future *input;           /* a reference, until done; under base.lock */
    /* The pool, held by the node: its own copy, as the task's closure
     * shares its storage with the outcome a worker may be writing. */
    crew_pool *pool;
    crew_then_fn fn;
    void *arg;
    crew_free_fn arg_free;
};

static int
then_run(crew_task *task, void *arg)
{
    struct then *t = arg;

    /* Unlocked: only then_done() clears it, after this returns. */
    return t->fn(task, t->input, t->arg);
}

/* The input, with a reference of the caller's own; NULL once the
 * continuation is done with it. */
static crew_future *
input_of(struct then *t)
{
    crew_future *input;

    crew__lock_acquire(&t->base.lock);
    input = crew_future_retain(t->input);
    crew__lock_release(&t->base.lock);
    return input;
}

/* The task's arg_free, which the task machinery runs exactly once: after
 * fn, or when the continuation resolves without running. */
static void
then_done(void *arg)
{
    struct then *t = arg;
    crew_future *input;

    crew__lock_acquire(&t->base.lock);
    input = t->input;
    t->input = NULL;
    crew__lock_release(&t->base.lock);
    crew_future_release(input);
    if (t->arg_free != NULL)
        t->arg_free(t->arg);
}

static void
input_resolved(struct crew__completion *node, crew_future *input)
{
    struct then *t = crew__container_of(node, struct then, node);
    /* Read first: once queued, the block may be run and freed. */
    crew_pool *pool = t->pool;
    int err = crew__pool_submit(pool, &t->base.job, 0);

    (void)input;
    if (err != 0) {
        crew__task_refuse(&t->base, err);
        crew_future_release(&t->base); /* the node's: nothing queued it */
    }
    crew__pool_unhold(pool);
}

static int then_cancel(crew_future *future);

/* A continuation's run calls then_run(), which calls the user's fn. */
static crew__function
then_traced(const crew_future *future)
{
    return (crew__function)crew__container_of(future, struct then, base)->fn;
}

static const struct crew__future_ops then_ops = {
    .job = {.run = crew__task_run},
    .cancel = then_cancel,
    .destroy = crew__future_free, /* done with its input before it resolved */
    .needs_worker = true,
    .traced = then_traced,
};

int
crew_then(crew_pool *pool, crew_future *input, crew_then_fn fn, void *arg,
          crew_free_fn arg_free, crew_future **future)
{
    struct then *t;
    int err;

    if (future != NULL)
        *future = NULL;
    if (pool == NULL || input == NULL || fn == NULL)
        return EINVAL;
    err = crew__pool_accepts(pool);
    if (err != 0)
        return err;
    t = crew__malloc(sizeof(*t));
    if (t == NULL)
        return ENOMEM;
    /* The node's reference, and the caller's if it wants one. */
    crew__future_init(&t->base, &then_ops, future != NULL ? 2 : 1);
    t->base.u.task = (struct crew__closure){
        .fn = then_run,
        .arg = t,
        .arg_free = then_done,
        .pool = pool,
    };
    t->node.fire = input_resolved;
    t->input = crew_future_retain(input);
    t->pool = pool;
    t->fn = fn;
    t->arg = arg;
    t->arg_free = arg_free;
    crew__pool_hold(pool);
    crew__future_observe(input); /* the continuation is handed it */
    if (future != NULL)
        *future = &t->base;
    /* Last: an input already resolved queues the continuation at once. */
    crew__future_subscribe(input, &t->node);
    return 0;
}

static int
then_cancel(crew_future *future)
{
    struct then *t = crew__container_of(future, struct then, base);
    crew_pool *pool = t->pool;
    crew_future *input = input_of(t);
    bool unsubscribed =
        input != NULL && crew__future_unsubscribe(input, &t->node);

    crew_future_release(input);
    if (!unsubscribed)
        return crew__task_cancel(future);
    /* The node will never fire: the caller's reference holds the block
     * while the node's goes. */
    crew__task_cancel(future);
    crew_future_release(future);
    crew__pool_unhold(pool);
    return 0;
}
