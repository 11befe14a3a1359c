/*
 * Promises: futures resolved by hand. A promise is a bare future with
 * the ops below; crew__future_complete() settles every race between
 * resolving, failing and cancelling it: the first wins, the others get
 * EALREADY and keep what they brought.
 */
#include "core/future.h"

#include "base/alloc.h"

#include <errno.h>

static const struct crew__outcome cancelled = {.state = CREW_CANCELLED,
                                               .error = &crew__error_cancelled};

static int
promise_cancel(crew_future *future)
{
    return crew__future_complete(future, &cancelled);
}

/* The last reference went while the promise was pending: nobody can
 * resolve it any more. Resolve it cancelled, so that its callbacks run
 * once and leave nothing behind, holding a reference of its own, which a
 * callback may outlive by taking another. */
static void
promise_abandon(crew_future *future)
{
    /* Relaxed: no other thread holds a reference. */
    atomic_store_explicit(&future->refs, 1, memory_order_relaxed);
    crew__future_settle(future, &cancelled);
    crew_future_release(future);
}

static const struct crew__future_ops promise_ops = {
    .cancel = promise_cancel,
    .destroy = crew__future_free_block,
    .abandon = promise_abandon,
};

static bool
is_promise(const crew_future *future)
{
    return future != NULL && crew__future_ops(future) == &promise_ops;
}

int
crew_promise_create(crew_future **future)
{
    crew_future *promise;

    if (future == NULL)
        return EINVAL;
    *future = NULL;
    promise = crew__block_alloc(sizeof(*promise));
    if (promise == NULL)
        return ENOMEM;
    crew__future_init(promise, &promise_ops, 1);
    *future = promise;
    return 0;
}

int
crew_promise_resolve(crew_future *future, void *value, crew_free_fn value_free)
{
    struct crew__outcome outcome = {
        .state = CREW_SUCCEEDED,
        .result.as.ptr = {.value = value, .value_free = value_free}};

    if (!is_promise(future))
        return EINVAL;
    return crew__future_complete(future, &outcome);
}

int
crew_promise_resolve_copy(crew_future *future, const void *value, size_t size)
{
    struct crew__outcome outcome = {.state = CREW_SUCCEEDED};
    int err;

    if (!is_promise(future) || (value == NULL && size > 0))
        return EINVAL;
    if (crew__future_is_resolved(future))
        return EALREADY;
    err = crew__result_copy(&outcome.result, value, size);
    if (err != 0)
        return err; /* still pending */
    err = crew__future_complete(future, &outcome);
    if (err != 0)
        crew__result_drop(&outcome.result); /* lost the race: ours */
    return err;
}

int
crew_promise_fail(crew_future *future, int code, const char *format, ...)
{
    struct crew__outcome outcome = {.state = CREW_FAILED, .code = code};
    va_list args;
    int err;

    if (!is_promise(future) || code == 0)
        return EINVAL;
    if (crew__future_is_resolved(future))
        return EALREADY;
    if (format != NULL) {
        va_start(args, format);
        outcome.error = crew__error_vformat(code, format, args);
        va_end(args);
    } else {
        outcome.error = crew__error_default(code);
    }
    err = crew__future_complete(future, &outcome);
    if (err != 0)
        crew_error_release(outcome.error);
    return err;
}
