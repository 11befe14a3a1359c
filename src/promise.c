/*
 * Promises: futures resolved by hand. A promise is a bare future of kind
 * CREW__PROMISE; crew__future_complete() settles every race between
 * resolving, failing and cancelling it: the first wins, the others get
 * EALREADY and keep what they brought.
 */
#include "core/future.h"

#include "base/alloc.h"

#include <errno.h>

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
    crew__future_init(promise, CREW__PROMISE, 1);
    *future = promise;
    return 0;
}

int
crew_promise_resolve(crew_future *future, void *value, crew_free_fn value_free)
{
    struct crew__outcome outcome = {
        .state = CREW_SUCCEEDED, .value = value, .value_free = value_free};

    if (future == NULL || future->kind != CREW__PROMISE)
        return EINVAL;
    return crew__future_complete(future, &outcome);
}

int
crew_promise_fail(crew_future *future, int code, const char *format, ...)
{
    struct crew__outcome outcome = {.state = CREW_FAILED, .code = code};
    va_list args;
    int err;

    if (future == NULL || future->kind != CREW__PROMISE || code == 0)
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
