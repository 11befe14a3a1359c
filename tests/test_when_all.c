/*
 * Joining every input: crew_when_all() and crew_wait_all(). Outcomes and
 * their aggregate errors, bad input, who holds which reference, where the
 * join resolves, cancellation, and helping when a worker waits.
 *
 * Inputs are mostly promises, resolved by the test in the order it needs;
 * tasks are held on gates. Tasks, callbacks and helper threads only record
 * what they see; the test asserts once it has synchronised with them.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A task held at a gate, which then succeeds or fails as told. */
struct held {
    struct scn_hold *hold;
    int code;
    const char *message;
    pthread_t thread;
};

static int
held_task(crew_task *task, void *arg)
{
    struct held *h = arg;

    h->thread = pthread_self();
    scn_hold_task(task, h->hold);
    if (h->code != 0)
        return crew_task_fail(task, h->code, "%s", h->message);
    return 0;
}

/* Checks the i-th inner error of e: its position, code and message. */
static void
assert_inner(const crew_error *e, size_t i, size_t position, int code,
             const char *message)
{
    size_t input = SIZE_MAX;
    const crew_error *inner = crew_error_inner(e, i, &input);

    cr_assert_not_null(inner, "no inner error %zu", i);
    cr_assert_eq(input, position, "inner error %zu: position %zu", i, input);
    cr_assert_eq(crew_error_code(inner), code, "inner error %zu", i);
    cr_assert_str_eq(crew_error_message(inner), message, "inner error %zu", i);
}

static int
fail_task(crew_task *task, void *arg)
{
    return crew_task_fail(task, EIO, "task %zu failed", (size_t)(uintptr_t)arg);
}

TestSuite(when_all, CREW_SUITE);

CREW_TEST(when_all, succeeds_with_null_once_every_input_has_succeeded)
{
    static int values[3];
    crew_future *in[3], *all = NULL;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_all(in, 3, &all), 0);
    cr_assert_not_null(all);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in[2], &values[2], NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[0], &values[0], NULL), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING,
                 "the join resolved before its last input");
    cr_assert_eq(crew_promise_resolve(in[1], &values[1], NULL), 0);

    cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(all), 0);
    cr_assert_null(crew_future_result(all));
    cr_assert_null(crew_future_error(all));
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(crew_future_result(in[i]), (void *)&values[i]);
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all, collects_each_failure_in_input_order_with_positions)
{
    crew_future *in[5], *all = NULL;
    const crew_error *e;
    size_t input = 777;

    for (size_t i = 0; i < 5; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_all(in, 5, &all), 0);
    /* Resolved last to first: the aggregate keeps input order. */
    cr_assert_eq(crew_promise_fail(in[4], -7, "four %d", 4), 0);
    cr_assert_eq(crew_promise_fail(in[3], ENOENT, "three"), 0);
    cr_assert_eq(crew_future_cancel(in[2]), 0);
    cr_assert_eq(crew_promise_fail(in[1], EIO, "one"), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);

    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_null(crew_future_result(all));
    e = crew_future_error(all);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(e), 3);
    assert_inner(e, 0, 1, EIO, "one");
    assert_inner(e, 1, 3, ENOENT, "three");
    assert_inner(e, 2, 4, -7, "four 4");
    cr_assert_null(crew_error_inner(e, 3, &input));
    cr_assert_eq(input, 777);
    crew_future_release(all);
    scn_release_all(in, 5);
}

CREW_TEST(when_all, collects_the_failures_of_tasks_on_a_pool)
{
    crew_pool *p = crew_test_pool(2);
    crew_future *in[1000], *all = NULL;
    const crew_error *e;

    for (size_t i = 0; i < 1000; i++)
        cr_assert_eq(crew_submit(p, i % 100 == 42 ? fail_task : scn_ok_task,
                                 (void *)(uintptr_t)i, &in[i]),
                     0);
    cr_assert_eq(crew_when_all(in, 1000, &all), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    e = crew_future_error(all);
    cr_assert_eq(crew_error_count(e), 10);
    for (size_t i = 0; i < 10; i++) {
        char message[32];
        size_t failed = i * 100 + 42;

        snprintf(message, sizeof(message), "task %zu failed", failed);
        assert_inner(e, i, failed, EIO, message);
    }
    crew_future_release(all);
    scn_release_all(in, 1000);
    crew_pool_destroy(p);
}

CREW_TEST(when_all, cancelled_inputs_add_no_inner_error)
{
    crew_future *in[3], *all = NULL;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_all(in, 3, &all), 0);
    cr_assert_eq(crew_future_cancel(in[0]), 0);
    cr_assert_eq(crew_promise_fail(in[1], EPIPE, "broken"), 0);
    cr_assert_eq(crew_future_cancel(in[2]), 0);

    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(all)), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(crew_future_error(all)), 1);
    assert_inner(crew_future_error(all), 0, 1, EPIPE, "broken");
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all, is_cancelled_when_some_were_cancelled_none_failed)
{
    crew_future *in[2], *all = NULL, *mixed[2], *some = NULL;

    for (size_t i = 0; i < 2; i++) {
        in[i] = crew_test_promise();
        mixed[i] = crew_test_promise();
    }
    cr_assert_eq(crew_when_all(in, 2, &all), 0);
    cr_assert_eq(crew_when_all(mixed, 2, &some), 0);
    cr_assert_eq(crew_future_cancel(in[0]), 0);
    cr_assert_eq(crew_future_cancel(in[1]), 0);
    cr_assert_eq(crew_promise_resolve(mixed[0], NULL, NULL), 0);
    cr_assert_eq(crew_future_cancel(mixed[1]), 0);

    cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(all), ECANCELED);
    cr_assert_eq(crew_error_code(crew_future_error(all)), ECANCELED);
    cr_assert_eq(crew_future_state(some), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(some), ECANCELED);
    crew_future_release(all);
    crew_future_release(some);
    scn_release_all(in, 2);
    scn_release_all(mixed, 2);
}

CREW_TEST(when_all, with_no_inputs_has_already_succeeded)
{
    crew_future *none = NULL, *empty = NULL, *unused[1] = {NULL};

    cr_assert_eq(crew_when_all(NULL, 0, &none), 0);
    cr_assert_not_null(none);
    cr_assert_eq(crew_future_state(none), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(none));
    cr_assert_eq(crew_when_all(unused, 0, &empty), 0);
    cr_assert_eq(crew_future_state(empty), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(empty), 0);
    crew_future_release(none);
    crew_future_release(empty);
}

CREW_TEST(when_all, accepts_the_same_future_more_than_once)
{
    crew_future *p = crew_test_promise(), *q = crew_test_promise(),
                *x = crew_test_promise();
    crew_future *twice[2] = {p, p}, *thrice[3] = {q, x, q};
    crew_future *a = NULL, *b = NULL;

    cr_assert_eq(crew_when_all(twice, 2, &a), 0);
    cr_assert_eq(crew_when_all(thrice, 3, &b), 0);
    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(a), CREW_SUCCEEDED);

    cr_assert_eq(crew_promise_resolve(x, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(b), CREW_PENDING);
    cr_assert_eq(crew_promise_fail(q, EBADF, "bad q"), 0);
    cr_assert_eq(crew_future_state(b), CREW_FAILED);
    cr_assert_eq(crew_error_count(crew_future_error(b)), 2,
                 "one entry per position of the failed input");
    assert_inner(crew_future_error(b), 0, 0, EBADF, "bad q");
    assert_inner(crew_future_error(b), 1, 2, EBADF, "bad q");
    crew_future_release(a);
    crew_future_release(b);
    crew_future_release(p);
    crew_future_release(q);
    crew_future_release(x);
}

CREW_TEST(when_all, rejects_bad_input_with_einval_and_changes_nothing)
{
    static char sentinel;
    static int value;
    crew_future *v = crew_test_promise(), *pending = crew_test_promise();
    crew_future *with_null[3] = {v, NULL, pending};
    crew_future *all = (crew_future *)(void *)&sentinel;

    cr_assert_eq(crew_promise_resolve(v, &value, scn_value_free), 0);
    cr_assert_eq(crew_when_all(&v, 1, NULL), EINVAL);
    cr_assert_eq(crew_when_all(NULL, 2, &all), EINVAL);
    cr_assert_null(all);
    all = (crew_future *)(void *)&sentinel;
    cr_assert_eq(crew_when_all(with_null, 3, &all), EINVAL);
    cr_assert_null(all);

    /* No reference was taken: ours is the last one. */
    crew_future_release(v);
    cr_assert_eq(atomic_load(&scn_values_freed), 1,
                 "a refused join kept a reference to its input");
    /* No callback was left on the pending input. */
    cr_assert_eq(crew_promise_resolve(pending, &value, scn_value_free), 0);
    crew_future_release(pending);
    cr_assert_eq(atomic_load(&scn_values_freed), 2);
}

CREW_TEST(when_all, holds_its_own_references_to_the_inputs)
{
    static struct scn_hold hold = SCN_HOLD_INIT;
    static struct held h[3] = {
        {.hold = &hold},
        {.hold = &hold, .code = EIO, .message = "first failure"},
        {.hold = &hold, .code = ENOSPC, .message = "second failure"},
    };
    crew_pool *p = crew_test_pool(1);
    crew_future *in[3], *all = NULL;

    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(crew_submit(p, held_task, &h[i], &in[i]), 0);
    cr_assert(scn_gate_reaches(&hold.entered, 1));
    cr_assert_eq(crew_when_all(in, 3, &all), 0);
    scn_release_all(in, 3);
    scn_hold_open(&hold);

    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(crew_future_error(all)), 2);
    assert_inner(crew_future_error(all), 0, 1, EIO, "first failure");
    assert_inner(crew_future_error(all), 1, 2, ENOSPC, "second failure");
    crew_future_release(all);
    crew_pool_destroy(p);
}

CREW_TEST(when_all, may_be_released_before_its_inputs_resolve)
{
    static int value;
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()},
                *all = NULL;

    cr_assert_eq(crew_when_all(in, 2, &all), 0);
    crew_future_release(all);
    cr_assert_eq(crew_promise_resolve(in[0], &value, scn_value_free), 0);
    cr_assert_eq(crew_promise_fail(in[1], EIO, "nobody listens"), 0);
    cr_assert_eq(crew_future_state(in[1]), CREW_FAILED);
    scn_release_all(in, 2);
    cr_assert_eq(atomic_load(&scn_values_freed), 1);
}

/* What a callback on the join saw, and on which thread it ran. */
static struct scn_seen callback = SCN_SEEN_INIT;

/* Resolves the last input on its own thread and looks at once. */
static struct scn_settler resolver = {.message = "last one", .seen = &callback};

static void
assert_resolved_inside_the_last_resolution(int code, crew_state expected)
{
    crew_future *in[3], *all = NULL;
    pthread_t thread;

    for (size_t i = 0; i < 3; i++)
        in[i] = crew_test_promise();
    cr_assert_eq(crew_when_all(in, 3, &all), 0);
    cr_assert_eq(crew_future_on_complete(all, scn_seen_cb, &callback), 0);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[2], NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&callback.calls), 0);

    resolver.input = in[1];
    resolver.watch = all;
    resolver.code = code;
    cr_assert_eq(pthread_create(&thread, NULL, scn_settle_thread, &resolver),
                 0);
    pthread_join(thread, NULL);
    cr_assert_eq(resolver.err, 0);
    cr_assert_eq(resolver.state_after, expected,
                 "the join had not resolved when its last input's "
                 "resolution returned");
    cr_assert_eq(resolver.calls_after, 1,
                 "the join's callback had not run when its last input's "
                 "resolution returned");
    cr_assert(pthread_equal(callback.thread, resolver.thread),
              "the callback ran on another thread than the resolver");
    cr_assert_eq(callback.state, expected);
    cr_assert_eq(scn_gate_count(&callback.calls), 1);
    resolver.input = NULL;
    resolver.watch = NULL;
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(when_all, resolves_and_calls_back_inside_the_last_resolution)
{
    assert_resolved_inside_the_last_resolution(0, CREW_SUCCEEDED);
}

CREW_TEST(when_all, fails_and_calls_back_inside_the_last_failure)
{
    assert_resolved_inside_the_last_resolution(EIO, CREW_FAILED);
}

CREW_TEST(when_all, resolves_on_the_worker_that_finished_the_last_task)
{
    static struct scn_hold hold = SCN_HOLD_INIT;
    static struct held h = {.hold = &hold};
    crew_pool *p = crew_test_pool(1);
    crew_future *in[2], *all = NULL;

    in[0] = crew_test_promise();
    cr_assert_eq(crew_submit(p, held_task, &h, &in[1]), 0);
    cr_assert(scn_gate_reaches(&hold.entered, 1));
    cr_assert_eq(crew_when_all(in, 2, &all), 0);
    cr_assert_eq(crew_future_on_complete(all, scn_seen_cb, &callback), 0);
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&callback.calls), 0);
    scn_hold_open(&hold);

    cr_assert(scn_gate_reaches(&callback.calls, 1), "the callback never ran");
    cr_assert(pthread_equal(callback.thread, h.thread),
              "the callback ran off the worker that resolved the last input");
    cr_assert_eq(callback.state, CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(all), 0);
    crew_future_release(all);
    scn_release_all(in, 2);
    crew_pool_destroy(p);
}

static struct {
    struct scn_gate entered;
    bool saw_cancel;
} spinner = {SCN_GATE_INIT, false};

static int
spin_task(crew_task *task, void *arg)
{
    (void)arg;
    scn_gate_add(&spinner.entered, 1);
    spinner.saw_cancel = scn_spin_until_cancelled(task);
    return spinner.saw_cancel ? ECANCELED : ETIMEDOUT;
}

CREW_TEST(when_all, cancelling_it_passes_the_request_to_its_inputs)
{
    static struct scn_hold hold = SCN_HOLD_INIT;
    static struct held h = {.hold = &hold};
    static struct scn_counts queued = SCN_COUNTS_INIT;
    crew_pool *p = crew_test_pool(2);
    crew_future *blocker, *in[3], *all = NULL;

    /* One worker spins on the cancellation, the other is held. */
    cr_assert_eq(crew_submit(p, spin_task, NULL, &in[1]), 0);
    cr_assert(scn_gate_reaches(&spinner.entered, 1));
    cr_assert_eq(crew_submit(p, held_task, &h, &blocker), 0);
    cr_assert(scn_gate_reaches(&hold.entered, 1));
    in[0] = crew_test_promise();
    cr_assert_eq(
        crew_submit_ex(p, scn_count_task, &queued, scn_count_free, 0, &in[2]),
        0);
    cr_assert_eq(crew_when_all(in, 3, &all), 0);

    cr_assert_eq(crew_future_cancel(all), 0);
    cr_assert_eq(crew_future_state(in[0]), CREW_CANCELLED,
                 "the pending promise was not cancelled");
    cr_assert_eq(crew_future_state(in[2]), CREW_CANCELLED,
                 "the queued task was not cancelled");
    cr_assert_eq(atomic_load(&queued.freed), 1);
    cr_assert_eq(crew_future_wait(all), ECANCELED);
    cr_assert(spinner.saw_cancel, "the running task never saw the request");
    cr_assert_eq(crew_future_state(in[1]), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
    cr_assert_eq(crew_future_cancel(all), EALREADY);

    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(blocker), 0);
    crew_future_release(blocker);
    crew_future_release(all);
    scn_release_all(in, 3);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&queued.ran), 0);
    cr_assert_eq(atomic_load(&queued.freed), 1);
}

CREW_TEST(when_all, a_join_of_resolved_inputs_has_resolved_at_once)
{
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()},
                *all = NULL;

    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[1], EROFS, "read-only"), 0);
    cr_assert_eq(crew_when_all(in, 2, &all), 0);
    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    assert_inner(crew_future_error(all), 0, 1, EROFS, "read-only");
    crew_future_release(all);
    scn_release_all(in, 2);
}

CREW_TEST(when_all, nested_joins_keep_the_nesting)
{
    crew_future *a = crew_test_promise(), *b = crew_test_promise(),
                *c = crew_test_promise(), *d = crew_test_promise();
    crew_future *inner_in[2] = {a, b}, *inner = NULL;
    crew_future *outer_in[3], *outer = NULL;
    const crew_error *e, *nested;
    size_t input = SIZE_MAX;

    cr_assert_eq(crew_when_all(inner_in, 2, &inner), 0);
    outer_in[0] = c;
    outer_in[1] = inner;
    outer_in[2] = d;
    cr_assert_eq(crew_when_all(outer_in, 3, &outer), 0);
    cr_assert_eq(crew_promise_resolve(a, NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(b, EIO, "b"), 0);
    cr_assert_eq(crew_promise_fail(c, ENOENT, "c"), 0);
    cr_assert_eq(crew_future_state(outer), CREW_PENDING);
    cr_assert_eq(crew_promise_fail(d, EPERM, "d"), 0);

    cr_assert_eq(crew_future_state(outer), CREW_FAILED);
    e = crew_future_error(outer);
    cr_assert_eq(crew_error_count(e), 3);
    assert_inner(e, 0, 0, ENOENT, "c");
    nested = crew_error_inner(e, 1, &input);
    cr_assert_eq(input, 1);
    cr_assert_eq(crew_error_code(nested), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(nested), 1);
    assert_inner(nested, 0, 1, EIO, "b");
    assert_inner(e, 2, 2, EPERM, "d");
    crew_future_release(outer);
    crew_future_release(inner);
    crew_future_release(a);
    crew_future_release(b);
    crew_future_release(c);
    crew_future_release(d);
}

CREW_TEST(when_all, nested_joins_of_successes_succeed)
{
    crew_future *a = crew_test_promise(), *b = crew_test_promise(),
                *inner = NULL, *outer = NULL;
    crew_future *outer_in[2];

    cr_assert_eq(crew_when_all(&a, 1, &inner), 0);
    outer_in[0] = inner;
    outer_in[1] = b;
    cr_assert_eq(crew_when_all(outer_in, 2, &outer), 0);
    cr_assert_eq(crew_promise_resolve(b, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(outer), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(a, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(inner), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_state(outer), CREW_SUCCEEDED);
    crew_future_release(outer);
    crew_future_release(inner);
    crew_future_release(a);
    crew_future_release(b);
}

CREW_TEST(when_all, wait_all_gives_zero_and_a_null_error_on_success)
{
    static char sentinel;
    crew_pool *p = crew_test_pool(2);
    crew_future *in[50];
    crew_error *error = (crew_error *)(void *)&sentinel;

    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(crew_submit(p, scn_ok_task, NULL, &in[i]), 0);
    cr_assert_eq(crew_wait_all(in, 50, &error), 0);
    cr_assert_null(error);
    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(crew_future_state(in[i]), CREW_SUCCEEDED);
    cr_assert_eq(crew_wait_all(in, 50, NULL), 0);
    scn_release_all(in, 50);
    crew_pool_destroy(p);
}

CREW_TEST(when_all, wait_all_returns_the_aggregate_error_when_some_fail)
{
    crew_pool *p = crew_test_pool(2);
    crew_future *in[6];
    crew_error *error = NULL;

    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(crew_submit(p, i == 1 || i == 4 ? fail_task : scn_ok_task,
                                 (void *)(uintptr_t)i, &in[i]),
                     0);
    cr_assert_eq(crew_wait_all(in, 6, &error), CREW_EAGGREGATE);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 2);
    assert_inner(error, 0, 1, EIO, "task 1 failed");
    assert_inner(error, 1, 4, EIO, "task 4 failed");
    cr_assert_eq(crew_wait_all(in, 6, NULL), CREW_EAGGREGATE);
    crew_error_release(error);
    scn_release_all(in, 6);
    crew_pool_destroy(p);
}

CREW_TEST(when_all, wait_all_returns_ecanceled_for_cancelled_inputs)
{
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()};
    crew_error *error = NULL;

    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_future_cancel(in[1]), 0);
    cr_assert_eq(crew_wait_all(in, 2, &error), ECANCELED);
    if (error != NULL)
        cr_assert_eq(crew_error_code(error), ECANCELED);
    crew_error_release(error);
    cr_assert_eq(crew_wait_all(in, 2, NULL), ECANCELED);
    scn_release_all(in, 2);
}

/*
 * Settles a promise from another thread once the test's thread has gone
 * to sleep inside crew_wait_all(). The gate: start_late() opens
 * `calling` as its last step and the test calls crew_wait_all() next, so
 * once `calling` is open the test's thread can only sleep in the kernel
 * parked inside that call, waiting for the inputs still pending; the
 * settler waits to see it asleep (scn_thread_falls_asleep()), then
 * settles. So the late input always settles under a sleeping waiter, the
 * path under test, never before the call. (Under valgrind a thread
 * waiting for its turn to run looks asleep too, and the settlement may
 * come first; the outcome must be the same either way.) The settler
 * looks for no longer than the kit's patience, then settles all the
 * same, so the test cannot hang on it.
 */
enum settle { SETTLE_RESOLVE, SETTLE_FAIL, SETTLE_CANCEL };

struct late {
    crew_future *promise;
    enum settle how;
    pid_t caller;            /* the thread that calls crew_wait_all() */
    struct scn_gate calling; /* opened just before that call */
    bool saw_asleep;         /* the caller was seen asleep, then settled */
    pthread_t thread;
};

static void *
settle_late(void *arg)
{
    struct late *l = arg;

    scn_gate_await(&l->calling, 1);
    l->saw_asleep = scn_thread_falls_asleep(l->caller);
    if (l->how == SETTLE_RESOLVE)
        crew_promise_resolve(l->promise, NULL, NULL);
    else if (l->how == SETTLE_FAIL)
        crew_promise_fail(l->promise, EIO, "late failure");
    else
        crew_future_cancel(l->promise);
    return NULL;
}

/* Starts the settler of @p promise; call crew_wait_all() next. */
static void
start_late(struct late *l, crew_future *promise, enum settle how)
{
    l->promise = promise;
    l->how = how;
    l->caller = scn_tid();
    scn_gate_init(&l->calling);
    cr_assert_eq(pthread_create(&l->thread, NULL, settle_late, l), 0);
    scn_gate_add(&l->calling, 1);
}

/* Joins the settler: the caller must have been asleep when it settled. */
static void
join_late(struct late *l)
{
    cr_assert_eq(pthread_join(l->thread, NULL), 0);
    cr_assert(l->saw_asleep, "the caller of crew_wait_all never slept");
    scn_gate_destroy(&l->calling);
}

CREW_TEST(when_all, wait_all_keeps_positions_when_a_later_input_fails_late)
{
    crew_future *in[3] = {crew_test_promise(), crew_test_promise(),
                          crew_test_promise()};
    crew_error *error = NULL;
    struct late late;

    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[2], NULL, NULL), 0);
    start_late(&late, in[1], SETTLE_FAIL);
    cr_assert_eq(crew_wait_all(in, 3, &error), CREW_EAGGREGATE);
    join_late(&late);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_count(error), 1);
    assert_inner(error, 0, 1, EIO, "late failure");
    crew_error_release(error);
    scn_release_all(in, 3);
}

CREW_TEST(when_all, wait_all_counts_an_early_cancel_when_the_rest_succeed)
{
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()};
    crew_error *error = NULL;
    struct late late;

    cr_assert_eq(crew_future_cancel(in[0]), 0);
    start_late(&late, in[1], SETTLE_RESOLVE);
    cr_assert_eq(crew_wait_all(in, 2, &error), ECANCELED);
    join_late(&late);
    cr_assert_eq(crew_future_state(in[1]), CREW_SUCCEEDED);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), ECANCELED);
    crew_error_release(error);
    scn_release_all(in, 2);
}

CREW_TEST(when_all, wait_all_reports_a_late_cancel_after_early_successes)
{
    static char sentinel;
    crew_future *in[3] = {crew_test_promise(), crew_test_promise(),
                          crew_test_promise()};
    crew_error *error = (crew_error *)(void *)&sentinel;
    struct late late;

    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    start_late(&late, in[2], SETTLE_CANCEL);
    cr_assert_eq(crew_wait_all(in, 3, &error), ECANCELED);
    join_late(&late);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), ECANCELED);
    crew_error_release(error);
    error = (crew_error *)(void *)&sentinel;
    cr_assert_eq(crew_wait_all(in, 2, &error), 0, "the first two succeeded");
    cr_assert_null(error);
    scn_release_all(in, 3);
}

CREW_TEST(when_all, wait_all_of_no_inputs_returns_zero_at_once)
{
    static char sentinel;
    crew_error *error = (crew_error *)(void *)&sentinel;

    cr_assert_eq(crew_wait_all(NULL, 0, &error), 0);
    cr_assert_null(error);
}

CREW_TEST(when_all, wait_all_rejects_bad_input_with_einval)
{
    static char sentinel;
    static int value;
    crew_future *v = crew_test_promise(), *with_null[2] = {v, NULL};
    crew_error *error = (crew_error *)(void *)&sentinel;

    cr_assert_eq(crew_promise_resolve(v, &value, scn_value_free), 0);
    cr_assert_eq(crew_wait_all(NULL, 1, &error), EINVAL);
    cr_assert_null(error);
    error = (crew_error *)(void *)&sentinel;
    cr_assert_eq(crew_wait_all(with_null, 2, &error), EINVAL);
    cr_assert_null(error);
    cr_assert_eq(crew_wait_all(with_null, 2, NULL), EINVAL);
    crew_future_release(v);
    cr_assert_eq(atomic_load(&scn_values_freed), 1);
}

/* A task that submits children to its own pool and waits for them all. */
static struct {
    atomic_uint children_ran;
    int err;
    size_t count;
    size_t position;
    int inner_code;
    bool error_null_on_success;
} waiter = {0, -1, 0, SIZE_MAX, 0, false};

static int
child_task(crew_task *task, void *arg)
{
    atomic_fetch_add(&waiter.children_ran, 1);
    if ((uintptr_t)arg == 5)
        return crew_task_fail(task, EXDEV, "child 5");
    return 0;
}

static int
wait_children_task(crew_task *task, void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    crew_future *children[8] = {NULL};
    crew_error *error = NULL;

    for (size_t i = 0; i < n; i++) {
        int err = crew_submit(crew_task_pool(task), child_task,
                              (void *)(uintptr_t)i, &children[i]);

        if (err != 0) {
            scn_release_all(children, i);
            return err;
        }
    }
    waiter.err = crew_wait_all(children, n, &error);
    waiter.error_null_on_success = error == NULL;
    waiter.count = crew_error_count(error);
    waiter.inner_code =
        crew_error_code(crew_error_inner(error, 0, &waiter.position));
    crew_error_release(error);
    for (size_t i = 0; i < n; i++)
        crew_future_release(children[i]);
    return 0;
}

CREW_TEST(when_all, wait_all_on_the_only_worker_helps_not_deadlocks)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *f;

    cr_assert_eq(crew_submit(p, wait_children_task, (void *)(uintptr_t)5, &f),
                 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(waiter.err, 0);
    cr_assert(waiter.error_null_on_success);
    cr_assert_eq(atomic_load(&waiter.children_ran), 5);
    crew_future_release(f);

    cr_assert_eq(crew_submit(p, wait_children_task, (void *)(uintptr_t)8, &f),
                 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(waiter.err, CREW_EAGGREGATE);
    cr_assert_eq(waiter.count, 1);
    cr_assert_eq(waiter.position, 5);
    cr_assert_eq(waiter.inner_code, EXDEV);
    cr_assert_eq(atomic_load(&waiter.children_ran), 13);
    crew_future_release(f);
    crew_pool_destroy(p);
}

/* A count too large to allocate for is refused before the array is read:
 * the array here has two entries, and AddressSanitizer would see a read
 * past them. */
CREW_TEST(when_all, a_count_too_large_fails_before_the_array_is_read)
{
    crew_future *two[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *all = two[0];
    crew_error *error = (crew_error *)two[1];

    cr_assert_eq(crew_when_all(two, SIZE_MAX, &all), ENOMEM);
    cr_assert_null(all);
    all = two[0];
    cr_assert_eq(crew_when_all_ex(two, SIZE_MAX, CREW_FAIL_FAST, &all),
                 ENOMEM);
    cr_assert_null(all);
    cr_assert_eq(crew_wait_all(two, SIZE_MAX, &error), ENOMEM);
    cr_assert_null(error);
    scn_release_all(two, 2);
}
