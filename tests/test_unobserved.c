#include "common.h"
#include "testkit.h"

/*
 * Failures nobody observed: crew_set_unobserved. The handler is called
 * exactly once for each failed future freed with its failure unseen, and
 * never for one that was seen, in every way API.md counts as seeing. The
 * handler records each report's code, so a test tells its failures apart.
 * Group members have their own tests, in test_group.c.
 */

#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

TestSuite(unobserved, CREW_SUITE);

#define MAX_REPORTS 16

/* What the handler saw. */
static struct {
    atomic_int count;
    int codes[MAX_REPORTS];
    char first_message[64];
} seen;

static void
record(const crew_error *error, void *user)
{
    int n = atomic_fetch_add(&seen.count, 1);

    cr_assert_eq(user, &seen, "the handler gets its user pointer");
    if (n < MAX_REPORTS)
        seen.codes[n] = crew_error_code(error);
    if (n == 0)
        snprintf(seen.first_message, sizeof(seen.first_message), "%s",
                 crew_error_message(error));
}

static void
install(void)
{
    atomic_store(&seen.count, 0);
    crew_set_unobserved(record, &seen);
}

/* A failed promise with `code`: a failure no pool is needed for. */
static crew_future *
failed(int code)
{
    return crew_test_failed_promise(code, "unseen");
}

static int
fail_task(crew_task *task, void *arg)
{
    (void)arg;
    return crew_task_fail(task, EIO, "fire and forget");
}

CREW_TEST(unobserved, a_failure_released_unseen_is_reported_once)
{
    install();
    crew_future *f = failed(ENOENT);

    cr_assert_eq(atomic_load(&seen.count), 0, "not before its release");
    crew_future_release(f);
    cr_assert_eq(atomic_load(&seen.count), 1);
    cr_assert_eq(seen.codes[0], ENOENT);
    cr_assert_str_eq(seen.first_message, "unseen");
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, a_fire_and_forget_failure_is_reported_when_it_resolves)
{
    install();
    crew_pool *pool = crew_test_pool(1);

    cr_assert_eq(crew_submit(pool, fail_task, NULL, NULL), 0);
    /* The drain returns once the task has run and its queue let go. */
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(atomic_load(&seen.count), 1);
    cr_assert_eq(seen.codes[0], EIO);
    cr_assert_str_eq(seen.first_message, "fire and forget");
    crew_pool_destroy(pool);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, successes_and_cancellations_are_never_reported)
{
    install();
    crew_future *ok = crew_test_promise();
    crew_future *cancelled = crew_test_promise();

    cr_assert_eq(crew_promise_resolve(ok, NULL, NULL), 0);
    cr_assert_eq(crew_future_cancel(cancelled), 0);
    crew_future_release(ok);
    crew_future_release(cancelled);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, crew_future_error_observes)
{
    install();
    crew_future *f = failed(EIO);

    cr_assert_not_null(crew_future_error(f));
    crew_future_release(f);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, a_wait_that_returns_the_code_observes)
{
    install();
    crew_future *a = failed(EIO);
    crew_future *b = failed(EIO);

    cr_assert_eq(crew_future_wait(a), EIO);
    cr_assert_eq(crew_future_wait_for(b, 0), EIO);
    crew_future_release(a);
    crew_future_release(b);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, a_wait_that_times_out_does_not_observe)
{
    install();
    crew_future *f = crew_test_promise();

    cr_assert_eq(crew_future_wait_for(f, 0), ETIMEDOUT);
    cr_assert_eq(crew_promise_fail(f, EPIPE, "later"), 0);
    crew_future_release(f);
    cr_assert_eq(atomic_load(&seen.count), 1);
    cr_assert_eq(seen.codes[0], EPIPE);
    crew_set_unobserved(NULL, NULL);
}

static void
ignore(crew_future *future, void *user)
{
    (void)future;
    (void)user;
}

CREW_TEST(unobserved, a_callback_observes_before_and_after_the_failure)
{
    install();
    crew_future *before = crew_test_promise();
    crew_future *after = failed(EIO);

    cr_assert_eq(crew_future_on_complete(before, ignore, NULL), 0);
    cr_assert_eq(crew_promise_fail(before, EIO, "x"), 0);
    cr_assert_eq(crew_future_on_complete(after, ignore, NULL), 0);
    crew_future_release(before);
    crew_future_release(after);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, an_inbox_watch_observes)
{
    install();
    crew_inbox *inbox = NULL;
    crew_future *f = failed(EIO);

    cr_assert_eq(crew_inbox_create(&inbox), 0);
    cr_assert_eq(crew_inbox_watch(inbox, f, NULL), 0);
    crew_future_release(f);
    crew_inbox_destroy(inbox); /* the delivery, never taken, goes */
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

static int
ignore_input(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)input;
    (void)arg;
    return 0;
}

CREW_TEST(unobserved, a_continuation_observes_its_input)
{
    install();
    crew_pool *pool = crew_test_pool(1);
    crew_future *input = failed(EIO);
    crew_future *next = NULL;

    cr_assert_eq(crew_then(pool, input, ignore_input, NULL, NULL, &next), 0);
    crew_future_release(input);
    cr_assert_eq(crew_future_wait(next), 0);
    crew_future_release(next);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, a_join_carries_its_inputs_failures_and_may_go_unseen)
{
    install();
    crew_future *in[3] = {failed(EIO), crew_test_promise(), failed(EPIPE)};
    crew_future *all = NULL;

    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_when_all(in, 3, &all), 0);
    crew_future_release_all(in, 3);
    crew_future_release(all);
    /* The inputs were seen by the join; the join's aggregate was not. */
    cr_assert_eq(atomic_load(&seen.count), 1);
    cr_assert_eq(seen.codes[0], CREW_EAGGREGATE);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, wait_all_observes_every_failure)
{
    install();
    crew_future *in[2] = {failed(EIO), failed(EPIPE)};
    crew_error *error = NULL;

    cr_assert_eq(crew_wait_all(in, 2, &error), CREW_EAGGREGATE);
    crew_error_release(error);
    crew_future_release_all(in, 2);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, a_fail_fast_join_reports_the_failure_it_dropped)
{
    install();
    crew_future *in[2] = {failed(EIO), failed(EPIPE)};
    crew_future *all = NULL;

    cr_assert_eq(crew_when_all_ex(in, 2, CREW_FAIL_FAST, &all), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    crew_future_release(all);
    cr_assert_eq(atomic_load(&seen.count), 0, "the join holds its inputs");
    crew_future_release_all(in, 2);
    /* The join's outcome carried the first failure only. */
    cr_assert_eq(atomic_load(&seen.count), 1);
    cr_assert_eq(seen.codes[0], EPIPE);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, when_any_observes_its_winner)
{
    install();
    crew_future *in[2] = {failed(EIO), crew_test_promise()};
    crew_future *any = NULL;

    cr_assert_eq(crew_when_any(in, 2, &any), 0);
    cr_assert_eq(crew_future_wait(any), 0);
    crew_future_release(any);
    cr_assert_eq(crew_promise_fail(in[1], EPIPE, "loser"), 0);
    crew_future_release_all(in, 2);
    cr_assert_eq(atomic_load(&seen.count), 1, "the loser only");
    cr_assert_eq(seen.codes[0], EPIPE);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(unobserved, no_handler_no_report_and_removal_takes_effect)
{
    crew_future *f = failed(EIO);

    crew_future_release(f); /* no handler: nothing to call */
    install();
    crew_set_unobserved(NULL, NULL);
    f = failed(EIO);
    crew_future_release(f);
    cr_assert_eq(atomic_load(&seen.count), 0);
}

static int
fail_range(crew_task *task, size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    (void)arg;
    return crew_task_fail(task, EDOM, "chunk");
}

CREW_TEST(unobserved, a_loops_runners_are_never_reported)
{
    install();
    crew_pool *pool = crew_test_pool(2);

    /* Chunks fail on the loop's runners as well as on this thread; the
     * loop's code carries them all. */
    cr_assert_eq(crew_parallel_for(pool, 0, 256, 1, fail_range, NULL, NULL),
                 CREW_EAGGREGATE);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&seen.count), 0);
    crew_set_unobserved(NULL, NULL);
}

/* A handler that blocks until the test lets it go. */
static struct scn_gate entered = SCN_GATE_INIT;
static struct scn_gate let_go = SCN_GATE_INIT;
static atomic_bool setter_returned;

static atomic_int blocking_calls;

/* The first call blocks; later ones (the test's probes, until the new
 * handler is in place) return at once. */
static void
blocking(const crew_error *error, void *user)
{
    (void)error;
    (void)user;
    if (atomic_fetch_add(&blocking_calls, 1) != 0)
        return;
    scn_gate_add(&entered, 1);
    scn_gate_wait(&let_go, 1);
}

static void *
release_in_thread(void *future)
{
    crew_future_release(future);
    return NULL;
}

static void *
replace_in_thread(void *arg)
{
    (void)arg;
    crew_set_unobserved(record, &seen);
    atomic_store(&setter_returned, true);
    return NULL;
}

CREW_TEST(unobserved, replacing_waits_for_the_old_handlers_calls)
{
    pthread_t releaser, setter;
    crew_future *f = failed(EIO);

    crew_set_unobserved(blocking, NULL);
    cr_assert_eq(pthread_create(&releaser, NULL, release_in_thread, f), 0);
    scn_gate_wait(&entered, 1);
    cr_assert_eq(pthread_create(&setter, NULL, replace_in_thread, NULL), 0);
    /* The new handler is in place at once, for later failures... */
    while (true) {
        crew_future *g = failed(EPIPE);
        int before = atomic_load(&seen.count);
        crew_future_release(g);
        if (atomic_load(&seen.count) > before)
            break;
        cr_assert_not(atomic_load(&setter_returned));
    }
    /* ...but the setter has not returned while the old one runs. */
    cr_assert_not(atomic_load(&setter_returned));
    scn_gate_add(&let_go, 1);
    cr_assert_eq(pthread_join(setter, NULL), 0);
    cr_assert(atomic_load(&setter_returned));
    cr_assert_eq(pthread_join(releaser, NULL), 0);
    crew_set_unobserved(NULL, NULL);
}
