/*
 * Waiting for the first input: crew_when_any() and crew_wait_any(). The
 * winner, whatever its outcome; ties among inputs already resolved; bad
 * input; timeouts; where the combinator resolves; cancellation; helping.
 *
 * Inputs are mostly promises, resolved by the test in the order it needs,
 * and every one is resolved or cancelled before it is released: an input
 * that never resolves may keep its combinator alive. Tasks, callbacks and
 * helper threads only record what they see; the test asserts once it has
 * synchronised with them.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Cancels what is still pending, then releases every future. */
static void
settle_and_release(crew_future **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        crew_future_cancel(f[i]);
    scn_release_all(f, n);
}

TestSuite(when_any, CREW_SUITE);

CREW_TEST(when_any, resolves_with_the_first_input_to_resolve)
{
    crew_future *in[3], *any = NULL;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_any(in, 3, &any), 0);
    cr_assert_not_null(any);
    cr_assert_eq(crew_future_state(any), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);

    cr_assert_eq(crew_future_state(any), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(any), 0);
    cr_assert_eq(crew_future_result(any), (void *)in[1]);
    cr_assert_null(crew_future_error(any));
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[2], EIO, "late"), 0);
    cr_assert_eq(crew_future_result(any), (void *)in[1],
                 "a later input changed the winner");
    crew_future_release(any);
    settle_and_release(in, 3);
}

CREW_TEST(when_any, a_failed_or_cancelled_winner_still_succeeds_it)
{
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *other[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *any = NULL, *any_cancelled = NULL;

    cr_assert_eq(crew_when_any(in, 2, &any), 0);
    cr_assert_eq(crew_when_any(other, 2, &any_cancelled), 0);
    cr_assert_eq(crew_promise_fail(in[1], ENOENT, "gone"), 0);
    cr_assert_eq(crew_future_cancel(other[0]), 0);

    cr_assert_eq(crew_future_state(any), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(any), 0);
    cr_assert_eq(crew_future_result(any), (void *)in[1]);
    cr_assert_null(crew_future_error(any));
    cr_assert_eq(crew_future_state(any_cancelled), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(any_cancelled), 0);
    cr_assert_eq(crew_future_result(any_cancelled), (void *)other[0]);
    crew_future_release(any);
    crew_future_release(any_cancelled);
    settle_and_release(in, 2);
    settle_and_release(other, 2);
}

CREW_TEST(when_any, the_lowest_position_wins_among_resolved_inputs)
{
    crew_future *in[4], *any = NULL, *all_done = NULL;
    size_t index = 777;

    for (size_t i = 0; i < 4; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(in[3], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[2], EIO, "two"), 0);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_when_any(in, 4, &any), 0);
    cr_assert_eq(crew_future_state(any), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(any), (void *)in[1]);
    cr_assert_eq(crew_wait_any(in, 4, CREW_FOREVER, &index), 0);
    cr_assert_eq(index, 1);

    cr_assert_eq(crew_future_cancel(in[0]), 0);
    cr_assert_eq(crew_when_any(in, 4, &all_done), 0);
    cr_assert_eq(crew_future_result(all_done), (void *)in[0]);
    cr_assert_eq(crew_wait_any(in, 4, 0, &index), 0);
    cr_assert_eq(index, 0);
    crew_future_release(any);
    crew_future_release(all_done);
    settle_and_release(in, 4);
}

CREW_TEST(when_any, with_no_inputs_is_einval)
{
    static char sentinel;
    crew_future *unused[1] = {NULL};
    crew_future *any = (crew_future *)(void *)&sentinel;
    size_t index = 777;

    cr_assert_eq(crew_when_any(NULL, 0, &any), EINVAL);
    cr_assert_null(any);
    any = (crew_future *)(void *)&sentinel;
    cr_assert_eq(crew_when_any(unused, 0, &any), EINVAL);
    cr_assert_null(any);
    cr_assert_eq(crew_wait_any(NULL, 0, CREW_FOREVER, &index), EINVAL);
    cr_assert_eq(crew_wait_any(unused, 0, 0, &index), EINVAL);
    cr_assert_eq(index, 777);
}

CREW_TEST(when_any, rejects_bad_input_with_einval_and_changes_nothing)
{
    static char sentinel;
    static int value;
    crew_future *v = crew_test_promise(), *pending = crew_test_promise();
    crew_future *with_null[3] = {pending, NULL, v};
    crew_future *any = (crew_future *)(void *)&sentinel;
    size_t index = 777;

    cr_assert_eq(crew_promise_resolve(v, &value, scn_value_free), 0);
    cr_assert_eq(crew_when_any(&v, 1, NULL), EINVAL);
    cr_assert_eq(crew_when_any(NULL, 2, &any), EINVAL);
    cr_assert_null(any);
    any = (crew_future *)(void *)&sentinel;
    cr_assert_eq(crew_when_any(with_null, 3, &any), EINVAL);
    cr_assert_null(any);
    cr_assert_eq(crew_wait_any(&v, 1, CREW_FOREVER, NULL), EINVAL);
    cr_assert_eq(crew_wait_any(NULL, 2, CREW_FOREVER, &index), EINVAL);
    cr_assert_eq(crew_wait_any(with_null, 3, 0, &index), EINVAL);
    cr_assert_eq(index, 777);

    /* No reference was taken: ours is the last one. */
    crew_future_release(v);
    cr_assert_eq(atomic_load(&scn_values_freed), 1,
                 "a refused combinator kept a reference to its input");
    cr_assert_eq(crew_promise_resolve(pending, &value, scn_value_free), 0);
    crew_future_release(pending);
    cr_assert_eq(atomic_load(&scn_values_freed), 2);
}

CREW_TEST(when_any, accepts_the_same_future_more_than_once)
{
    crew_future *p = crew_test_promise(), *twice[2] = {p, p}, *any = NULL;
    size_t index = 777;

    cr_assert_eq(crew_when_any(twice, 2, &any), 0);
    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(any), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(any), (void *)p);
    cr_assert_eq(crew_wait_any(twice, 2, 0, &index), 0);
    cr_assert_eq(index, 0);
    crew_future_release(any);
    crew_future_release(p);
}

CREW_TEST(when_any, may_be_released_before_its_inputs_resolve)
{
    static int value;
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()},
                *any = NULL;

    cr_assert_eq(crew_when_any(in, 2, &any), 0);
    crew_future_release(any);
    cr_assert_eq(crew_promise_resolve(in[1], &value, scn_value_free), 0);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    settle_and_release(in, 2);
    cr_assert_eq(atomic_load(&scn_values_freed), 1);
}

/* What a callback on the combinator saw, and on which thread it ran. */
static struct scn_seen callback = SCN_SEEN_INIT;

/* Fails the first input on its own thread and looks at once. */
static struct scn_settler resolver = {
    .code = EIO, .message = "first", .seen = &callback};

CREW_TEST(when_any, resolves_and_calls_back_inside_the_first_resolution)
{
    crew_future *in[3], *any = NULL;
    pthread_t thread;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_any(in, 3, &any), 0);
    cr_assert_eq(crew_future_on_complete(any, scn_seen_cb, &callback), 0);
    resolver.input = in[2];
    resolver.watch = any;
    cr_assert_eq(pthread_create(&thread, NULL, scn_settle_thread, &resolver),
                 0);
    pthread_join(thread, NULL);

    cr_assert_eq(resolver.err, 0);
    cr_assert_eq(resolver.state_after, CREW_SUCCEEDED,
                 "the combinator had not resolved when its first input's "
                 "resolution returned");
    cr_assert_eq(resolver.calls_after, 1,
                 "the callback had not run when the first input's "
                 "resolution returned");
    cr_assert(pthread_equal(callback.thread, resolver.thread),
              "the callback ran on another thread than the resolver");
    cr_assert_eq(callback.state, CREW_SUCCEEDED);
    cr_assert_eq(callback.result, (void *)in[2]);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&callback.calls), 1);
    resolver.input = NULL;
    resolver.watch = NULL;
    callback.result = NULL;
    crew_future_release(any);
    settle_and_release(in, 3);
}

CREW_TEST(when_any, wait_any_stores_the_position_of_the_winner)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    crew_pool *p = crew_test_pool(2);
    crew_future *in[3];
    size_t index = 777;

    cr_assert_eq(scn_hold_worker(p, &h, 1, &in[0]), 0);
    in[1] = crew_test_promise();
    cr_assert_eq(crew_submit(p, scn_ok_task, NULL, &in[2]), 0);
    cr_assert_eq(crew_wait_any(in, 3, CREW_FOREVER, &index), 0);
    cr_assert_eq(index, 2);
    cr_assert_eq(crew_future_state(in[0]), CREW_RUNNING);
    cr_assert_eq(crew_future_state(in[1]), CREW_PENDING);
    scn_hold_open(&h);
    cr_assert_eq(crew_future_wait(in[0]), 0);
    settle_and_release(in, 3);
    crew_pool_destroy(p);
}

static void *
resolve_later_thread(void *arg)
{
    crew_promise_resolve(arg, NULL, NULL);
    return NULL;
}

CREW_TEST(when_any, wait_any_wakes_when_another_thread_resolves)
{
    crew_future *in[3];
    pthread_t thread;
    size_t index = 777;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(pthread_create(&thread, NULL, resolve_later_thread, in[2]), 0);
    cr_assert_eq(crew_wait_any(in, 3, CREW_FOREVER, &index), 0);
    pthread_join(thread, NULL);
    cr_assert_eq(index, 2);
    cr_assert_eq(crew_future_state(in[2]), CREW_SUCCEEDED);
    settle_and_release(in, 3);
}

CREW_TEST(when_any, wait_any_times_out_without_touching_the_index)
{
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()};
    size_t index = 777;
    uint64_t start = scn_now_ns();

    cr_assert_eq(crew_wait_any(in, 2, 20000000u, &index), ETIMEDOUT);
    cr_assert_geq(scn_now_ns() - start, 20000000u, "timed out early");
    cr_assert_eq(index, 777);
    cr_assert_eq(crew_wait_any(in, 2, 0, &index), ETIMEDOUT);
    cr_assert_eq(index, 777);
    cr_assert_eq(crew_future_state(in[0]), CREW_PENDING);
    cr_assert_eq(crew_future_state(in[1]), CREW_PENDING);

    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_wait_any(in, 2, 0, &index), 0,
                 "a zero timeout missed an input already resolved");
    cr_assert_eq(index, 1);
    settle_and_release(in, 2);
}

/* A task that waits for the first of a pending promise and its child. */
static struct {
    crew_future *never;
    int err;
    size_t index;
} helper = {NULL, -1, 777};

static int
wait_child_task(crew_task *task, void *arg)
{
    crew_future *in[2];
    uint64_t timeout_ns = arg == NULL ? CREW_FOREVER : 20000000000u;
    int err;

    in[0] = helper.never;
    err = crew_submit(crew_task_pool(task), scn_ok_task, NULL, &in[1]);
    if (err != 0)
        return err;
    helper.err = crew_wait_any(in, 2, timeout_ns, &helper.index);
    crew_future_release(in[1]);
    return 0;
}

CREW_TEST(when_any, wait_any_on_the_only_worker_helps_not_deadlocks)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *f;

    helper.never = crew_test_promise();
    cr_assert_eq(crew_submit(p, wait_child_task, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(helper.err, 0);
    cr_assert_eq(helper.index, 1);
    crew_future_release(f);

    /* With a timeout too: the worker helps, it does not just time out. */
    helper.err = -1;
    helper.index = 777;
    cr_assert_eq(crew_submit(p, wait_child_task, (void *)&helper, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(helper.err, 0);
    cr_assert_eq(helper.index, 1);
    crew_future_release(f);
    settle_and_release(&helper.never, 1);
    helper.never = NULL;
    crew_pool_destroy(p);
}

CREW_TEST(when_any, cancelling_it_passes_the_request_to_its_inputs)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT;
    crew_pool *p = crew_test_pool(1);
    crew_future *blocker, *in[2], *any = NULL;

    cr_assert_eq(scn_hold_worker(p, &h, 1, &blocker), 0);
    in[0] = crew_test_promise();
    cr_assert_eq(
        crew_submit_ex(p, scn_count_task, &queued, scn_count_free, 0, &in[1]),
        0);
    cr_assert_eq(crew_when_any(in, 2, &any), 0);

    cr_assert_eq(crew_future_cancel(any), 0);
    cr_assert_eq(crew_future_state(in[0]), CREW_CANCELLED,
                 "the pending promise was not cancelled");
    cr_assert_eq(crew_future_state(in[1]), CREW_CANCELLED,
                 "the queued task was not cancelled");
    cr_assert_eq(atomic_load(&queued.freed), 1);
    cr_assert_neq(crew_future_state(any), CREW_PENDING);
    cr_assert_eq(crew_future_cancel(any), EALREADY);

    scn_hold_open(&h);
    cr_assert_eq(crew_future_wait(blocker), 0);
    crew_future_release(blocker);
    crew_future_release(any);
    settle_and_release(in, 2);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&queued.ran), 0);
    cr_assert_eq(atomic_load(&queued.freed), 1);
}

/* As for when_all: refused before the two-entry array is read. */
CREW_TEST(when_any, a_count_too_large_fails_before_the_array_is_read)
{
    crew_future *two[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *any = two[0];
    size_t index = 7;

    cr_assert_eq(crew_when_any(two, SIZE_MAX, &any), ENOMEM);
    cr_assert_null(any);
    cr_assert_eq(crew_wait_any(two, SIZE_MAX, 0, &index), ENOMEM);
    cr_assert_eq(index, 7);
    scn_release_all(two, 2);
}
