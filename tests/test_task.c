/*
 * Inside a task: crew_task_return(), crew_task_fail(), crew_task_cancelled()
 * and crew_task_pool(), and how the function's return value decides the
 * outcome.
 *
 * Tasks only record what they see; the test asserts once the task's future
 * has resolved. A task that must see a cancellation spins on
 * crew_task_cancelled() with a deadline, so a request that never arrives
 * fails the test instead of hanging it.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs fn(arg) on a fresh one-thread pool and hands back its future, with
 * the pool already destroyed: every worker is gone, so whatever the library
 * does after resolving has been done, and the test holds the last
 * reference. */
static crew_future *
run_alone(crew_fn fn, void *arg)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *f = NULL;

    cr_assert_eq(crew_submit(p, fn, arg, &f), 0);
    crew_future_wait(f);
    crew_pool_destroy(p);
    return f;
}

/* A value that counts how often, and by which function, it was freed. */
struct value {
    atomic_uint by_first;
    atomic_uint by_second;
};

static void
free_first(void *p)
{
    atomic_fetch_add(&((struct value *)p)->by_first, 1);
}

static void
free_second(void *p)
{
    atomic_fetch_add(&((struct value *)p)->by_second, 1);
}

TestSuite(task, CREW_SUITE);

static int
return_value_task(crew_task *task, void *arg)
{
    crew_task_return(task, arg, free_first);
    return 0;
}

CREW_TEST(task, return_gives_the_value_until_the_last_reference_goes)
{
    static struct value v;
    crew_future *f = run_alone(return_value_task, &v);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_result(f), (void *)&v);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(atomic_load(&v.by_first), 0);
    cr_assert_eq(crew_future_retain(f), f);
    crew_future_release(f);
    cr_assert_eq(atomic_load(&v.by_first), 0,
                 "freed while a reference remained");
    crew_future_release(f);
    cr_assert_eq(atomic_load(&v.by_first), 1);
}

static int
null_value_task(crew_task *task, void *arg)
{
    (void)arg;
    crew_task_return(task, NULL, NULL);
    return 0;
}

CREW_TEST(task, without_a_value_succeeds_with_null)
{
    crew_future *f = run_alone(scn_ok_task, NULL);
    crew_future *g = run_alone(null_value_task, NULL);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(f));
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(crew_future_state(g), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(g));
    crew_future_release(f);
    crew_future_release(g);
}

static struct value first, second;

static int
return_twice_task(crew_task *task, void *arg)
{
    (void)arg;
    crew_task_return(task, &first, free_first);
    crew_task_return(task, &second, free_second);
    return 0;
}

CREW_TEST(task, returning_twice_keeps_the_second_and_frees_the_first)
{
    crew_future *f = run_alone(return_twice_task, NULL);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), (void *)&second);
    cr_assert_eq(atomic_load(&first.by_first), 1,
                 "the first value was not freed");
    cr_assert_eq(atomic_load(&first.by_second), 0,
                 "the first value was freed with the second's function");
    cr_assert_eq(atomic_load(&second.by_second), 0,
                 "the kept value was freed while referenced");
    crew_future_release(f);
    cr_assert_eq(atomic_load(&second.by_second), 1);
    cr_assert_eq(atomic_load(&second.by_first), 0);
    cr_assert_eq(atomic_load(&first.by_first), 1);
}

static int fail_returned = -1;

static int
open_fail_task(crew_task *task, void *arg)
{
    fail_returned = crew_task_fail(task, ENOENT, "open %s: %d%c",
                                   (const char *)arg, 42, '!');
    return fail_returned;
}

CREW_TEST(task, fail_formats_printf_style_and_returns_the_code)
{
    crew_future *f = run_alone(open_fail_task, "data.txt");

    cr_assert_eq(fail_returned, ENOENT);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_future_wait(f), ENOENT);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_error_code(crew_future_error(f)), ENOENT);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)),
                     "open data.txt: 42!");
    cr_assert_eq(crew_error_count(crew_future_error(f)), 0);
    crew_future_release(f);
}

static int
fail_twice_task(crew_task *task, void *arg)
{
    (void)arg;
    crew_task_fail(task, EIO, "first");
    crew_task_fail(task, EPERM, "second");
    return EBUSY;
}

CREW_TEST(task, code_is_the_return_value_and_message_the_last_recorded)
{
    crew_future *f = run_alone(fail_twice_task, NULL);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), EBUSY);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "second");
    crew_future_release(f);
}

static int
negative_fail_task(crew_task *task, void *arg)
{
    (void)arg;
    fail_returned = crew_task_fail(task, -5, "negative");
    return fail_returned;
}

CREW_TEST(task, a_negative_code_is_kept_as_given)
{
    crew_future *f = run_alone(negative_fail_task, NULL);

    cr_assert_eq(fail_returned, -5);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_future_wait(f), -5);
    cr_assert_eq(crew_error_code(crew_future_error(f)), -5);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "negative");
    crew_future_release(f);
}

static int
fail_then_succeed_task(crew_task *task, void *arg)
{
    crew_task_fail(task, EIO, "changed my mind");
    crew_task_return(task, arg, free_first);
    return 0;
}

CREW_TEST(task, a_recorded_failure_is_ignored_when_returning_zero)
{
    static struct value v;
    crew_future *f = run_alone(fail_then_succeed_task, &v);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(crew_future_result(f), (void *)&v);
    crew_future_release(f);
    cr_assert_eq(atomic_load(&v.by_first), 1);
}

#define BIG_MESSAGE (64u << 10)

static int
big_fail_task(crew_task *task, void *arg)
{
    return crew_task_fail(task, EIO, "%s|end", (const char *)arg);
}

CREW_TEST(task, fail_keeps_a_64_kib_message_whole)
{
    char *big = scn_letters(BIG_MESSAGE);
    crew_future *f;
    const char *message;

    cr_assert_not_null(big);
    f = run_alone(big_fail_task, big);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), EIO);
    message = crew_error_message(crew_future_error(f));
    cr_assert_eq(strlen(message), BIG_MESSAGE + 4, "message of %zu bytes",
                 strlen(message));
    cr_assert_eq(memcmp(message, big, BIG_MESSAGE), 0);
    cr_assert_str_eq(message + BIG_MESSAGE, "|end");
    crew_future_release(f);
    free(big);
}

static int
bare_fail_task(crew_task *task, void *arg)
{
    (void)task;
    return (int)(intptr_t)arg;
}

static void
assert_default_message_names(crew_future *f, int code)
{
    const char *message = crew_error_message(crew_future_error(f));
    char number[32];

    snprintf(number, sizeof(number), "%d", code);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), code);
    cr_assert_not_null(message);
    cr_assert_gt(strlen(message), 0, "the default message is empty");
    cr_assert(strstr(message, crew_strerror(code)) != NULL ||
                  strstr(message, number) != NULL,
              "the default message \"%s\" does not name code %d", message,
              code);
}

CREW_TEST(task, no_message_gives_a_default_naming_the_code)
{
    crew_future *f = run_alone(bare_fail_task, (void *)(intptr_t)EACCES);

    assert_default_message_names(f, EACCES);
    crew_future_release(f);
}

static int
forget_fail_task(crew_task *task, void *arg)
{
    (void)arg;
    crew_task_fail(task, EIO, "forget me");
    return crew_task_fail(task, EIO, NULL);
}

CREW_TEST(task, fail_with_a_null_format_forgets_the_recorded_message)
{
    crew_future *f = run_alone(forget_fail_task, NULL);

    assert_default_message_names(f, EIO);
    cr_assert_null(
        strstr(crew_error_message(crew_future_error(f)), "forget me"));
    crew_future_release(f);
}

static int
return_then_fail_task(crew_task *task, void *arg)
{
    crew_task_return(task, arg, free_first);
    return crew_task_fail(task, EIO, "failed after returning");
}

CREW_TEST(task, value_free_runs_at_once_when_failing_after_return)
{
    static struct value v;
    crew_future *f = run_alone(return_then_fail_task, &v);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(atomic_load(&v.by_first), 1,
                 "the value of a failed task waits for the last release");
    crew_future_release(f);
    cr_assert_eq(atomic_load(&v.by_first), 1);
}

/* A running task the test cancels, and what it saw. */
static struct {
    struct scn_gate started;
    bool saw_cancel;
    bool cancelled_at_start;
    int outcome;
    struct value value;
} running = {SCN_GATE_INIT, false, false, 0, {0, 0}};

static int
cancellable_task(crew_task *task, void *arg)
{
    (void)arg;
    running.cancelled_at_start = crew_task_cancelled(task);
    crew_task_return(task, &running.value, free_first);
    scn_gate_add(&running.started, 1);
    running.saw_cancel = scn_spin_until_cancelled(task);
    return running.outcome;
}

/* Runs cancellable_task, cancels it once it runs, and hands back its
 * future with the pool destroyed. */
static crew_future *
cancel_while_running(int outcome)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *f = NULL;

    running.outcome = outcome;
    cr_assert_eq(crew_submit(p, cancellable_task, NULL, &f), 0);
    cr_assert(scn_gate_reaches(&running.started, 1));
    cr_assert_eq(crew_future_cancel(f), 0);
    crew_future_wait(f);
    crew_pool_destroy(p);
    cr_assert(running.saw_cancel, "crew_task_cancelled never became true");
    cr_assert_not(running.cancelled_at_start);
    cr_assert_eq(crew_future_cancel(f), EALREADY);
    return f;
}

CREW_TEST(task, cancelled_becomes_true_and_returning_ecanceled_cancels)
{
    crew_future *f = cancel_while_running(ECANCELED);

    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(atomic_load(&running.value.by_first), 1,
                 "the value of a cancelled task waits for the last release");
    crew_future_release(f);
    cr_assert_eq(atomic_load(&running.value.by_first), 1);
}

CREW_TEST(task, a_cancelled_task_that_returns_zero_still_succeeds)
{
    crew_future *f = cancel_while_running(0);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), (void *)&running.value);
    cr_assert_eq(atomic_load(&running.value.by_first), 0);
    crew_future_release(f);
    cr_assert_eq(atomic_load(&running.value.by_first), 1);
}

CREW_TEST(task, a_cancelled_task_that_returns_another_code_fails)
{
    crew_future *f = cancel_while_running(EIO);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), EIO);
    crew_future_release(f);
}

static int
unasked_cancel_task(crew_task *task, void *arg)
{
    (void)arg;
    return crew_task_fail(task, ECANCELED, "gave up");
}

CREW_TEST(task, returning_ecanceled_unasked_is_a_failure_with_that_code)
{
    crew_future *f = run_alone(unasked_cancel_task, NULL);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "gave up");
    crew_future_release(f);
}

static struct {
    bool at_start;
    bool at_end;
} not_cancelled = {true, true};

static int
check_not_cancelled_task(crew_task *task, void *arg)
{
    (void)arg;
    not_cancelled.at_start = crew_task_cancelled(task);
    crew_task_return(task, NULL, NULL);
    not_cancelled.at_end = crew_task_cancelled(task);
    return 0;
}

CREW_TEST(task, cancelled_is_false_for_a_task_nobody_cancelled)
{
    crew_future *f = run_alone(check_not_cancelled_task, NULL);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_not(not_cancelled.at_start);
    cr_assert_not(not_cancelled.at_end);
    crew_future_release(f);
}

static int
record_pool_task(crew_task *task, void *arg)
{
    *(crew_pool **)arg = crew_task_pool(task);
    return 0;
}

CREW_TEST(task, pool_is_the_pool_the_task_runs_on)
{
    crew_pool *a = crew_test_pool(1), *b = crew_test_pool(1);
    crew_pool *seen_a = NULL, *seen_b = NULL;
    crew_future *fa, *fb;

    cr_assert_eq(crew_submit(a, record_pool_task, &seen_a, &fa), 0);
    cr_assert_eq(crew_submit(b, record_pool_task, &seen_b, &fb), 0);
    cr_assert_eq(crew_future_wait(fa), 0);
    cr_assert_eq(crew_future_wait(fb), 0);
    cr_assert_eq(seen_a, a);
    cr_assert_eq(seen_b, b);
    crew_future_release(fa);
    crew_future_release(fb);
    crew_pool_destroy(a);
    crew_pool_destroy(b);
}

CREW_TEST(task, a_null_task_is_refused_without_side_effects)
{
    static struct value v;

    crew_task_return(NULL, &v, free_first);
    cr_assert_eq(atomic_load(&v.by_first), 0,
                 "returning to a NULL task freed the value");
    cr_assert_eq(crew_task_fail(NULL, EIO, "nobody %d", 1), EINVAL);
    cr_assert_not(crew_task_cancelled(NULL));
    cr_assert_null(crew_task_pool(NULL));
}
