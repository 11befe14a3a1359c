/*
 * crew_when_all_ex(): every sentence of its contract. Flags 0 is
 * crew_when_all(); CREW_FAIL_FAST resolves at the first failure with that
 * failure alone and ignores what follows; success and cancellation
 * resolve as crew_when_all() does; CREW_CANCEL_REST cancels the
 * unresolved inputs at the first failure, and without CREW_FAIL_FAST
 * still waits for every input and keeps every failure; among inputs
 * failed before the call the lowest position is the first; cancelling
 * the result reaches the inputs, even once a fail-fast result has failed;
 * unknown flags are EINVAL and change nothing. And an input's arg_free
 * may fail another input of a CREW_CANCEL_REST join while its own task is
 * being cancelled.
 *
 * Inputs are promises, settled in the order each test needs, or tasks held
 * on gates. The race of an input failing while others succeed on a pool
 * is the scenario races_fail_fast (scenarios/races.c), which the TSan
 * driver runs too.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

TestSuite(when_all_ex, CREW_SUITE);

static void
promises(crew_future **in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        in[i] = crew_test_promise();
}

static crew_future *
join(crew_future **in, size_t n, unsigned flags)
{
    crew_future *all = NULL;

    cr_assert_eq(crew_when_all_ex(in, n, flags, &all), 0);
    cr_assert_not_null(all);
    return all;
}

/* The aggregate of `all` has exactly the one failure at `position`. */
static void
assert_only_failure(crew_future *all, size_t position, int code,
                    const char *message)
{
    const crew_error *e = crew_future_error(all);
    const crew_error *inner;
    size_t input = SIZE_MAX;

    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_code(e), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(e), 1, "%zu inner errors",
                 crew_error_count(e));
    inner = crew_error_inner(e, 0, &input);
    cr_assert_eq(input, position, "the failure of input %zu, not %zu", input,
                 position);
    cr_assert_eq(crew_error_code(inner), code);
    cr_assert_str_eq(crew_error_message(inner), message);
}

CREW_TEST(when_all_ex, flags_zero_is_when_all)
{
    crew_future *in[3], *all;

    promises(in, 3);
    all = join(in, 3, 0);
    cr_assert_eq(crew_promise_fail(in[1], EIO, "one"), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING,
                 "flags 0 resolved at the first failure");
    cr_assert_eq(crew_future_state(in[0]), CREW_PENDING,
                 "flags 0 cancelled an input");
    cr_assert_eq(crew_promise_fail(in[2], ENOENT, "two"), 0);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(crew_future_error(all)), 2);
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all_ex, fail_fast_resolves_at_the_first_failure)
{
    crew_future *in[4], *all;

    promises(in, 4);
    all = join(in, 4, CREW_FAIL_FAST);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    cr_assert_eq(crew_promise_fail(in[2], EPIPE, "broken pipe at %d", 2), 0);

    assert_only_failure(all, 2, EPIPE, "broken pipe at 2");
    /* Without CREW_CANCEL_REST the others are left alone. */
    cr_assert_eq(crew_future_state(in[1]), CREW_PENDING);
    cr_assert_eq(crew_future_state(in[3]), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[3], NULL, NULL), 0);
    crew_future_release(all);
    scn_release_all(in, 4);
}

CREW_TEST(when_all_ex, fail_fast_ignores_what_resolves_later)
{
    crew_future *in[4], *all;

    promises(in, 4);
    all = join(in, 4, CREW_FAIL_FAST);
    cr_assert_eq(crew_promise_fail(in[3], EIO, "first"), 0);
    cr_assert_eq(crew_promise_fail(in[0], ENOENT, "second"), 0);
    cr_assert_eq(crew_future_cancel(in[1]), 0);
    cr_assert_eq(crew_promise_resolve(in[2], NULL, NULL), 0);

    /* A later failure at a lower position changes nothing either. */
    assert_only_failure(all, 3, EIO, "first");
    crew_future_release(all);
    scn_release_all(in, 4);
}

CREW_TEST(when_all_ex, fail_fast_succeeds_as_when_all_does)
{
    static int values[3];
    crew_future *in[3], *all;

    promises(in, 3);
    all = join(in, 3, CREW_FAIL_FAST | CREW_CANCEL_REST);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(crew_future_state(all), CREW_PENDING);
        cr_assert_eq(crew_promise_resolve(in[i], &values[i], NULL), 0);
    }
    cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(all));
    cr_assert_null(crew_future_error(all));
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all_ex, a_cancellation_is_no_failure)
{
    crew_future *in[3], *all;

    promises(in, 3);
    all = join(in, 3, CREW_FAIL_FAST | CREW_CANCEL_REST);
    cr_assert_eq(crew_future_cancel(in[0]), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING,
                 "a cancelled input resolved a fail-fast join");
    cr_assert_eq(crew_future_state(in[1]), CREW_PENDING,
                 "a cancellation cancelled the rest");
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[2], NULL, NULL), 0);
    cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(all), ECANCELED);
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all_ex, cancel_rest_with_fail_fast_cancels_the_unresolved)
{
    crew_future *in[4], *all;

    promises(in, 4);
    all = join(in, 4, CREW_FAIL_FAST | CREW_CANCEL_REST);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[1], EDOM, "out of range"), 0);

    assert_only_failure(all, 1, EDOM, "out of range");
    cr_assert_eq(crew_future_state(in[0]), CREW_SUCCEEDED,
                 "a resolved input was touched");
    cr_assert_eq(crew_future_state(in[2]), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(in[3]), CREW_CANCELLED);
    crew_future_release(all);
    scn_release_all(in, 4);
}

/* A task that waits at a gate until its cancellation is requested, then
 * fails: it is still running when the rest are cancelled. */
static int
stubborn_task(crew_task *task, void *arg)
{
    struct scn_gate *started = arg;

    scn_gate_bump(started);
    if (!scn_spin_until_cancelled(task))
        return crew_task_fail(task, ETIMEDOUT, "never asked to stop");
    return crew_task_fail(task, EINTR, "stopped late");
}

CREW_TEST(when_all_ex, cancel_rest_alone_waits_for_every_input)
{
    struct scn_gate started = SCN_GATE_INIT;
    crew_pool *pool = crew_test_pool(1);
    crew_future *in[4], *all;

    in[0] = crew_test_promise();
    cr_assert_eq(crew_submit(pool, stubborn_task, &started, &in[1]), 0);
    in[2] = crew_test_promise();
    in[3] = crew_test_promise();
    cr_assert_eq(scn_gate_await(&started, 1), 1, "the task never started");
    all = join(in, 4, CREW_CANCEL_REST);

    cr_assert_eq(crew_promise_fail(in[2], EIO, "two failed"), 0);
    cr_assert_eq(crew_future_state(in[0]), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(in[3]), CREW_CANCELLED);
    /* The running task was asked to stop; the join waits for it. */
    cr_assert_eq(crew_future_wait(in[1]), EINTR);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);

    const crew_error *e = crew_future_error(all);
    size_t pos0 = SIZE_MAX, pos1 = SIZE_MAX;
    cr_assert_eq(crew_error_count(e), 2, "every failure is kept");
    cr_assert_str_eq(crew_error_message(crew_error_inner(e, 0, &pos0)),
                     "stopped late");
    cr_assert_str_eq(crew_error_message(crew_error_inner(e, 1, &pos1)),
                     "two failed");
    cr_assert_eq(pos0, 1);
    cr_assert_eq(pos1, 2);
    crew_future_release(all);
    scn_release_all(in, 4);
    crew_pool_destroy(pool);
}

CREW_TEST(when_all_ex, cancel_rest_alone_is_pending_while_one_runs)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(1);
    crew_future *in[2], *all;

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &in[0]), 0);
    in[1] = crew_test_promise();
    all = join(in, 2, CREW_CANCEL_REST);
    cr_assert_eq(crew_promise_fail(in[1], EIO, "failed"), 0);
    /* The holding task ignores the request: the join must wait. */
    cr_assert_eq(crew_future_state(all), CREW_PENDING,
                 "resolved before a running input finished");
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_eq(crew_future_state(in[0]), CREW_SUCCEEDED);
    cr_assert_eq(crew_error_count(crew_future_error(all)), 1);
    crew_future_release(all);
    scn_release_all(in, 2);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(when_all_ex, the_lowest_of_those_failed_before_the_call_is_first)
{
    crew_future *in[5], *all;

    promises(in, 5);
    cr_assert_eq(crew_promise_fail(in[4], EIO, "four"), 0);
    cr_assert_eq(crew_promise_fail(in[1], EACCES, "one"), 0);
    cr_assert_eq(crew_promise_fail(in[3], EPERM, "three"), 0);
    all = join(in, 5, CREW_FAIL_FAST | CREW_CANCEL_REST);

    assert_only_failure(all, 1, EACCES, "one");
    cr_assert_eq(crew_future_state(in[0]), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(in[2]), CREW_CANCELLED);
    crew_future_release(all);
    scn_release_all(in, 5);
}

CREW_TEST(when_all_ex, cancelling_the_result_reaches_the_inputs)
{
    const unsigned flags[] = {0, CREW_FAIL_FAST, CREW_CANCEL_REST,
                              CREW_FAIL_FAST | CREW_CANCEL_REST};

    for (size_t k = 0; k < 4; k++) {
        crew_future *in[3], *all;

        promises(in, 3);
        cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
        all = join(in, 3, flags[k]);
        cr_assert_eq(crew_future_cancel(all), 0);
        cr_assert_eq(crew_future_state(in[0]), CREW_SUCCEEDED);
        cr_assert_eq(crew_future_state(in[1]), CREW_CANCELLED,
                     "flags %u: input 1 not cancelled", flags[k]);
        cr_assert_eq(crew_future_state(in[2]), CREW_CANCELLED,
                     "flags %u: input 2 not cancelled", flags[k]);
        cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
        crew_future_release(all);
        scn_release_all(in, 3);
    }
}

CREW_TEST(when_all_ex, cancelling_a_failed_fail_fast_result_stops_the_rest)
{
    crew_future *in[3], *all;
    const crew_error *e;

    promises(in, 3);
    all = join(in, 3, CREW_FAIL_FAST);
    cr_assert_eq(crew_promise_fail(in[1], EIO, "first"), 0);
    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    e = crew_future_error(all);
    cr_assert_str_eq(crew_error_message(e), "1 of 3 inputs failed first");

    /* The join has resolved, its inputs still run: the request reaches
     * them, and the answer still says the join had resolved. */
    cr_assert_eq(crew_future_cancel(all), EALREADY);
    cr_assert_eq(crew_future_state(in[0]), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(in[2]), CREW_CANCELLED);
    cr_assert_eq(crew_future_error(all), e, "the outcome changed");
    crew_future_release(all);
    scn_release_all(in, 3);
}

/* A resolved when_all passes a cancellation on, but once: over a graph of
 * joins that take the one below four times, 20 deep, passing it on along
 * every path would take 4^20 steps (the suite's timeout). */
CREW_TEST(when_all_ex, a_join_passes_a_cancellation_on_once)
{
    crew_future *promise = crew_test_promise(), *any, *level;
    crew_future *in[4];

    cr_assert_eq(crew_when_any(&promise, 1, &any), 0);
    level = any;
    for (int depth = 0; depth < 20; depth++) {
        crew_future *next;

        for (size_t i = 0; i < 4; i++)
            in[i] = level;
        cr_assert_eq(crew_when_all_ex(in, 4, 0, &next), 0);
        crew_future_release(level);
        level = next;
    }
    cr_assert_eq(crew_future_cancel(level), 0);
    cr_assert_eq(crew_future_state(promise), CREW_CANCELLED);
    /* The when_any resolved with its cancelled input, and every level
     * above it succeeded. A second request finds all of it resolved. */
    cr_assert_eq(crew_future_state(level), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_cancel(level), EALREADY);
    crew_future_release(level);
    crew_future_release(promise);
}

/* The arg_free of the task being cancelled fails the join's other input,
 * so the join cancels the task again from inside its own arg_free. */
struct fail_on_free {
    crew_future *promise;
    int fail_rc;
};

static int
never_runs(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return EPROTO;
}

static void
fail_the_promise(void *arg)
{
    struct fail_on_free *f = arg;

    f->fail_rc = crew_promise_fail(f->promise, EIO, "failed in arg_free");
}

/* A 1-thread pool whose worker is held, a queued task whose arg_free
 * fails a promise, and a CREW_CANCEL_REST join over the two. */
struct own_join {
    struct scn_hold hold;
    struct fail_on_free ff;
    crew_pool *pool;
    crew_future *busy, *in[2], *all;
};

static void
own_join_start(struct own_join *o)
{
    o->ff.fail_rc = -1;
    o->pool = crew_test_pool(1);
    cr_assert_eq(scn_hold_worker(o->pool, &o->hold, 1, &o->busy), 0);
    o->ff.promise = crew_test_promise();
    cr_assert_eq(crew_submit_ex(o->pool, never_runs, &o->ff, fail_the_promise,
                                0, &o->in[0]),
                 0);
    o->in[1] = o->ff.promise;
    o->all = join(o->in, 2, CREW_CANCEL_REST);
}

/* The task was cancelled, its arg_free failed the promise, and the join
 * holds that failure alone. */
static void
own_join_check(struct own_join *o)
{
    cr_assert_eq(o->ff.fail_rc, 0);
    cr_assert_eq(crew_future_state(o->in[0]), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(o->all), CREW_EAGGREGATE);
    assert_only_failure(o->all, 1, EIO, "failed in arg_free");
}

static void
own_join_end(struct own_join *o)
{
    crew_future_release(o->busy);
    crew_future_release(o->all);
    scn_release_all(o->in, 2);
    crew_pool_destroy(o->pool);
    scn_hold_destroy(&o->hold);
}

CREW_TEST(when_all_ex, an_arg_free_may_fail_an_input_of_its_own_join)
{
    struct own_join o = {.hold = SCN_HOLD_INIT};

    own_join_start(&o);
    /* Before the fix this cancel waited for itself (the suite's timeout
     * turns that into a failure). */
    cr_assert_eq(crew_future_cancel(o.in[0]), 0);
    own_join_check(&o);
    scn_hold_open(&o.hold);
    cr_assert_eq(crew_future_wait(o.busy), 0);
    own_join_end(&o);
}

static void *
shut_down_cancelling(void *pool)
{
    return (void *)(intptr_t)crew_pool_shutdown(pool, CREW_CANCEL);
}

/* The same cancellation from a CREW_CANCEL shutdown, on the thread that
 * sweeps the queue. */
CREW_TEST(when_all_ex, an_arg_free_may_fail_an_input_during_a_shutdown)
{
    struct own_join o = {.hold = SCN_HOLD_INIT};
    pthread_t shutter;
    void *rc;

    own_join_start(&o);
    cr_assert_eq(pthread_create(&shutter, NULL, shut_down_cancelling, o.pool),
                 0);
    /* The shutdown cancels the queued task while the worker is held; it
     * used to wait there for itself, and this wait never ended. */
    cr_assert_eq(crew_future_wait(o.in[0]), ECANCELED);
    own_join_check(&o);
    scn_hold_open(&o.hold);
    cr_assert_eq(pthread_join(shutter, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0);
    own_join_end(&o);
}

CREW_TEST(when_all_ex, no_inputs_succeeds_at_once)
{
    crew_future *all = NULL;

    cr_assert_eq(
        crew_when_all_ex(NULL, 0, CREW_FAIL_FAST | CREW_CANCEL_REST, &all), 0);
    cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
    crew_future_release(all);
}

CREW_TEST(when_all_ex, fail_fast_works_on_a_pool)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(2);
    crew_future *in[3], *all;

    /* Two tasks hold both workers; the third, queued, fails at once. */
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &in[0]), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 2, &in[1]), 0);
    in[2] = crew_test_promise();
    all = join(in, 3, CREW_FAIL_FAST);
    cr_assert_eq(crew_promise_fail(in[2], ENOSPC, "disk full"), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE,
                 "a fail-fast join waited for running tasks");
    assert_only_failure(all, 2, ENOSPC, "disk full");
    cr_assert_eq(crew_future_state(in[0]), CREW_RUNNING);
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(in[0]), 0);
    cr_assert_eq(crew_future_wait(in[1]), 0);
    crew_future_release(all);
    scn_release_all(in, 3);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(when_all_ex, rejects_bad_input_and_changes_nothing)
{
    crew_future *in[2], *all = (crew_future *)&all, *null_in[2];

    promises(in, 2);
    cr_assert_eq(crew_when_all_ex(in, 2, 0x4u, &all), EINVAL);
    cr_assert_null(all, "*all was not cleared");
    cr_assert_eq(crew_when_all_ex(in, 2, ~0u, &all), EINVAL);
    cr_assert_eq(crew_when_all_ex(in, 2, CREW_FAIL_FAST, NULL), EINVAL);
    cr_assert_eq(crew_when_all_ex(NULL, 2, CREW_FAIL_FAST, &all), EINVAL);
    null_in[0] = in[0];
    null_in[1] = NULL;
    cr_assert_eq(crew_when_all_ex(null_in, 2, CREW_CANCEL_REST, &all), EINVAL);
    /* Nothing was joined: failing an input cancels nothing. */
    cr_assert_eq(crew_promise_fail(in[0], EIO, "x"), 0);
    cr_assert_eq(crew_future_state(in[1]), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    scn_release_all(in, 2);
}
