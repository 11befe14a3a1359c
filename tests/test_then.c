/*
 * crew_then(): every sentence of its contract. The function runs on the
 * pool once the input resolves, whatever its outcome, with the input
 * borrowed; the continuation's future follows a task's rules; arg_free
 * runs exactly once, after fn or when the continuation resolves without
 * running; cancelling before the input resolves means fn never runs;
 * a pool that no longer accepts it (CREW_CANCEL shutdown, finished
 * shutdown, drain with the input resolved outside the workers, a pool
 * destroyed meanwhile) resolves it cancelled, while a drain lets a
 * continuation whose input resolves on a worker run; NULL future;
 * ESHUTDOWN at the call; bad input; chains; statistics.
 *
 * The race of a continuation cancelled while its input resolves is the
 * scenario then_cancel_race (scenarios/then.c), which the TSan driver
 * runs too.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

TestSuite(then, CREW_SUITE);

/* What a continuation saw and did. */
struct seen {
    atomic_int runs;
    atomic_int frees;
    crew_state input_state; /* written by the continuation */
    int input_code;
    void *input_result;
    pthread_t thread;
};

/* Records the input, and succeeds with the input's result plus one (a
 * pointer one past it), or NULL. */
static int
record(crew_task *task, crew_future *input, void *arg)
{
    struct seen *s = arg;

    s->input_state = crew_future_state(input);
    s->input_result = crew_future_result(input);
    s->input_code = crew_future_error(input) != NULL
                        ? crew_error_code(crew_future_error(input))
                        : 0;
    s->thread = pthread_self();
    atomic_fetch_add(&s->runs, 1);
    crew_task_return(
        task, s->input_result != NULL ? (char *)s->input_result + 1 : NULL,
        NULL);
    return 0;
}

static void
count_free(void *arg)
{
    struct seen *s = arg;

    atomic_fetch_add(&s->frees, 1);
}

static crew_future *
then(crew_pool *pool, crew_future *input, struct seen *s)
{
    crew_future *f = NULL;

    cr_assert_eq(crew_then(pool, input, record, s, count_free, &f), 0);
    cr_assert_not_null(f);
    return f;
}

static char text[] = "abc";

CREW_TEST(then, runs_on_the_pool_once_the_input_succeeds)
{
    crew_pool *pool = crew_test_pool(2);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    cr_assert_eq(crew_future_state(next), CREW_PENDING);
    cr_assert_eq(atomic_load(&s.runs), 0, "ran before its input resolved");
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_wait(next), 0);
    cr_assert_eq(atomic_load(&s.runs), 1);
    cr_assert_eq(atomic_load(&s.frees), 1, "arg_free did not run once");
    cr_assert_eq(s.input_state, CREW_SUCCEEDED);
    cr_assert_eq(s.input_result, text, "the input was not the one given");
    cr_assert_eq(crew_future_result(next), text + 1);
    cr_assert(!pthread_equal(s.thread, pthread_self()),
              "ran on the resolving thread, not on the pool");
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, runs_whatever_the_inputs_outcome)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen failed = {0}, cancelled = {0};
    crew_future *a = crew_test_promise(), *b = crew_test_promise();
    crew_future *after_a = then(pool, a, &failed);
    crew_future *after_b = then(pool, b, &cancelled);

    cr_assert_eq(crew_promise_fail(a, EPIPE, "pipe"), 0);
    cr_assert_eq(crew_future_cancel(b), 0);
    cr_assert_eq(crew_future_wait(after_a), 0);
    cr_assert_eq(crew_future_wait(after_b), 0);
    cr_assert_eq(failed.input_state, CREW_FAILED);
    cr_assert_eq(failed.input_code, EPIPE);
    cr_assert_eq(cancelled.input_state, CREW_CANCELLED);
    cr_assert_eq(cancelled.input_code, ECANCELED);
    crew_future_release(after_a);
    crew_future_release(after_b);
    crew_future_release(a);
    crew_future_release(b);
    crew_pool_destroy(pool);
}

CREW_TEST(then, an_input_already_resolved_queues_it_at_once)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next;

    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    next = then(pool, in, &s);
    cr_assert_eq(crew_future_wait(next), 0);
    cr_assert_eq(atomic_load(&s.runs), 1);
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

static int
fail_then(crew_task *task, crew_future *input, void *arg)
{
    (void)input;
    (void)arg;
    return crew_task_fail(task, ERANGE, "too far");
}

CREW_TEST(then, fails_as_a_task_does)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *in = crew_test_promise(), *next = NULL;

    cr_assert_eq(crew_then(pool, in, fail_then, NULL, NULL, &next), 0);
    cr_assert_eq(crew_promise_resolve(in, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(next), ERANGE);
    cr_assert_str_eq(crew_error_message(crew_future_error(next)), "too far");
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, cancelled_before_its_input_it_never_runs)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    cr_assert_eq(crew_future_cancel(next), 0);
    cr_assert_eq(crew_future_state(next), CREW_CANCELLED,
                 "not resolved at once");
    cr_assert_eq(atomic_load(&s.frees), 1, "arg_free did not run once");
    cr_assert_eq(crew_future_cancel(next), EALREADY);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(atomic_load(&s.runs), 0, "fn ran after its cancellation");
    cr_assert_eq(atomic_load(&s.frees), 1);
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, cancelling_after_it_ran_is_ealready)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_wait(next), 0);
    cr_assert_eq(crew_future_cancel(next), EALREADY);
    cr_assert_eq(crew_future_state(next), CREW_SUCCEEDED);
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, a_cancelling_shutdown_cancels_it)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    cr_assert_eq(crew_pool_shutdown(pool, CREW_CANCEL), 0);
    cr_assert_eq(crew_future_state(next), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_state(next), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&s.runs), 0);
    cr_assert_eq(atomic_load(&s.frees), 1);
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, a_finished_drain_cancels_it)
{
    crew_pool *pool = crew_test_pool(2);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_wait(next), ECANCELED);
    cr_assert_eq(atomic_load(&s.runs), 0);
    cr_assert_eq(atomic_load(&s.frees), 1);
    crew_future_release(next);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, a_destroyed_pool_is_still_there_to_cancel_it)
{
    crew_pool *pool = crew_test_pool(2);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = then(pool, in, &s);

    /* The continuation keeps the pool's memory: ASan would see a use
     * after free below if it did not. */
    crew_pool_destroy(pool);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_wait(next), ECANCELED);
    cr_assert_eq(atomic_load(&s.frees), 1);
    crew_future_release(next);
    crew_future_release(in);
}

struct drain_call {
    crew_pool *pool;
    int err;
};

static void *
drain_pool(void *arg)
{
    struct drain_call *call = arg;

    call->err = crew_pool_shutdown(call->pool, CREW_DRAIN);
    return NULL;
}

/* A task that waits at the hold, then resolves the promise it is given:
 * the input resolves on one of the pool's workers. */
struct resolver {
    struct scn_hold *hold;
    crew_future *promise;
};

static int
resolve_later(crew_task *task, void *arg)
{
    struct resolver *r = arg;

    scn_hold_task(task, r->hold);
    return crew_promise_resolve(r->promise, text, NULL);
}

CREW_TEST(then, a_drain_runs_it_if_a_worker_resolves_its_input)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool_options one_slot = {.threads = 1, .max_queued = 1};
    crew_pool *pool = NULL;
    struct drain_call call;
    struct seen on_worker = {0}, outside = {0};
    crew_future *in_worker = crew_test_promise(),
                *in_outside = crew_test_promise();
    struct resolver r = {.hold = &hold, .promise = in_worker};
    crew_future *task, *after_worker, *after_outside;
    pthread_t thread;

    cr_assert_eq(crew_pool_create(&pool, &one_slot), 0);
    call.pool = pool;
    after_worker = then(pool, in_worker, &on_worker);
    after_outside = then(pool, in_outside, &outside);
    cr_assert_eq(crew_submit(pool, resolve_later, &r, &task), 0);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    /* The gate: the only worker held and the one slot filled, a submitter
     * waits for room that nothing but the drain can end (it wakes such
     * submitters with ESHUTDOWN). Once it returns, the drain has begun,
     * and the worker is still held. If the drain never came, the suite's
     * timeout would end the test. */
    cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, NULL), 0);
    cr_assert_eq(pthread_create(&thread, NULL, drain_pool, &call), 0);
    cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, NULL), ESHUTDOWN);
    /* Outside the workers, during the drain: refused. */
    cr_assert_eq(crew_promise_resolve(in_outside, text, NULL), 0);
    cr_assert_eq(crew_future_wait(after_outside), ECANCELED);
    /* On the worker, during the drain: runs. */
    scn_hold_open(&hold);
    pthread_join(thread, NULL);
    cr_assert_eq(call.err, 0);
    cr_assert_eq(crew_future_wait(after_worker), 0,
                 "a continuation of a worker's resolution did not run");
    cr_assert_eq(atomic_load(&on_worker.runs), 1);
    cr_assert_eq(atomic_load(&outside.runs), 0);
    cr_assert_eq(atomic_load(&outside.frees), 1);
    crew_future *all[] = {task, after_worker, after_outside, in_worker,
                          in_outside};
    scn_release_all(all, 5);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(then, a_null_future_fires_and_forgets)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise();

    cr_assert_eq(crew_then(pool, in, record, &s, count_free, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(atomic_load(&s.runs), 1);
    cr_assert_eq(atomic_load(&s.frees), 1);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

static int
append(crew_task *task, crew_future *input, void *arg)
{
    uintptr_t so_far = (uintptr_t)crew_future_result(input);

    crew_task_return(task, (void *)(so_far * 10 + (uintptr_t)arg), NULL);
    return 0;
}

CREW_TEST(then, continuations_chain)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *stage[6];

    stage[0] = crew_test_promise();
    for (uintptr_t i = 1; i < 6; i++)
        cr_assert_eq(
            crew_then(pool, stage[i - 1], append, (void *)i, NULL, &stage[i]),
            0);
    cr_assert_eq(crew_promise_resolve(stage[0], (void *)(uintptr_t)9, NULL), 0);
    cr_assert_eq(crew_future_wait(stage[5]), 0);
    cr_assert_eq((uintptr_t)crew_future_result(stage[5]), 912345);
    scn_release_all(stage, 6);
    crew_pool_destroy(pool);
}

CREW_TEST(then, refuses_at_the_call_on_a_pool_shut_down)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = (crew_future *)&next;

    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_then(pool, in, record, &s, count_free, &next), ESHUTDOWN);
    cr_assert_null(next);
    cr_assert_eq(atomic_load(&s.frees), 0, "arg_free ran on a refusal");
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, rejects_bad_input_and_changes_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen s = {0};
    crew_future *in = crew_test_promise(), *next = (crew_future *)&next;

    cr_assert_eq(crew_then(NULL, in, record, &s, count_free, &next), EINVAL);
    cr_assert_null(next);
    cr_assert_eq(crew_then(pool, NULL, record, &s, count_free, &next), EINVAL);
    cr_assert_eq(crew_then(pool, in, NULL, &s, count_free, &next), EINVAL);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(atomic_load(&s.runs), 0);
    cr_assert_eq(atomic_load(&s.frees), 0);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, counts_as_a_task_once_queued)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen ran = {0}, cancelled = {0};
    crew_future *in = crew_test_promise();
    crew_future *a = then(pool, in, &ran), *b = then(pool, in, &cancelled);
    crew_pool_stats stats;

    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_eq(stats.submitted, 0, "counted before its input resolved");
    cr_assert_eq(crew_future_cancel(b), 0);
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    cr_assert_eq(crew_future_wait(a), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_eq(stats.submitted, 1);
    cr_assert_eq(stats.succeeded, 1);
    cr_assert_eq(stats.cancelled, 0);
    crew_future_release(a);
    crew_future_release(b);
    crew_future_release(in);
    crew_pool_destroy(pool);
}

CREW_TEST(then, is_not_held_back_by_max_queued)
{
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    struct scn_hold hold = SCN_HOLD_INIT;
    struct seen s = {0};
    crew_pool *pool = NULL;
    crew_future *held, *queued, *in = crew_test_promise(), *next;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held), 0);
    cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, &queued), 0);
    next = then(pool, in, &s);
    /* The queue is full; resolving the input must not wait for room. */
    cr_assert_eq(crew_promise_resolve(in, text, NULL), 0);
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(next), 0);
    crew_future *all[] = {held, queued, in, next};
    scn_release_all(all, 4);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}
