#include "common.h"
#include "testkit.h"

/*
 * Batches: crew_submit_each, one sentence of API.md a test or more.
 * Its allocation failures and the order of submitters waiting for room
 * are in test_faults.c, where the hooks are; its race with a shutdown is
 * a scenario (scenarios/races.c), run under TSan by the driver.
 */

#include <crew.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

TestSuite(each, CREW_SUITE);

#define MANY 1000

/* What a batch shares: how often each index ran, and its arg_free's
 * view of the batch when it ran. */
struct batch_arg {
    atomic_uint runs[MANY];
    atomic_uint calls;          /* calls of fn */
    atomic_uint freed;          /* calls of arg_free */
    struct scn_gate freed_gate; /* one a call of arg_free */
    crew_future **futures;      /* to look at from arg_free */
    size_t n;
    atomic_uint unresolved_at_free; /* futures pending when arg_free ran */
    _Atomic(crew_pool *) pool_seen; /* crew_task_pool() in a task */
};

static struct batch_arg *
batch_arg_new(size_t n, crew_future **futures)
{
    struct batch_arg *a = calloc(1, sizeof(*a));

    cr_assert_not_null(a);
    scn_gate_init(&a->freed_gate);
    a->n = n;
    a->futures = futures;
    return a;
}

static void
batch_arg_free(struct batch_arg *a)
{
    scn_gate_destroy(&a->freed_gate);
    free(a);
}

/* Records its index and succeeds with a copy of twice it. */
static int
record(crew_task *task, size_t index, void *arg)
{
    struct batch_arg *a = arg;
    size_t twice = 2 * index;

    if (index < MANY)
        atomic_fetch_add(&a->runs[index], 1);
    atomic_fetch_add(&a->calls, 1);
    atomic_store(&a->pool_seen, crew_task_pool(task));
    return crew_task_return_copy(task, &twice, sizeof(twice));
}

static void
note_free(void *arg)
{
    struct batch_arg *a = arg;

    if (a->futures != NULL) {
        for (size_t i = 0; i < a->n; i++) {
            if (crew_future_state(a->futures[i]) < CREW_SUCCEEDED)
                atomic_fetch_add(&a->unresolved_at_free, 1);
        }
    }
    atomic_fetch_add(&a->freed, 1);
    scn_gate_add(&a->freed_gate, 1);
}

CREW_TEST(each, runs_task_i_with_index_i_and_fills_slot_i)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *futures[MANY];
    struct batch_arg *a = batch_arg_new(MANY, futures);

    cr_assert_eq(crew_submit_each(pool, MANY, record, a, NULL, 0, futures),
                 0);
    cr_assert_eq(crew_wait_all(futures, MANY, NULL), 0);
    for (size_t i = 0; i < MANY; i++) {
        cr_assert_eq(atomic_load(&a->runs[i]), 1, "index %zu ran %u times",
                     i, atomic_load(&a->runs[i]));
        cr_assert_eq(crew_future_state(futures[i]), CREW_SUCCEEDED);
        cr_assert_eq(crew_future_result_size(futures[i]), sizeof(size_t));
        cr_assert_eq(*(const size_t *)crew_future_result(futures[i]), 2 * i);
    }
    cr_assert_eq(atomic_load(&a->pool_seen), pool);
    crew_future_release_all(futures, MANY);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a->freed), 0, "no arg_free was given");
    batch_arg_free(a);
}

CREW_TEST(each, arg_free_runs_once_after_the_last_task_resolved)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *futures[MANY];
    struct batch_arg *a = batch_arg_new(MANY, futures);

    /* The slots are filled before any task runs, so note_free may read
     * them wherever it runs. */
    cr_assert_eq(
        crew_submit_each(pool, MANY, record, a, note_free, 0, futures), 0);
    cr_assert_eq(crew_wait_all(futures, MANY, NULL), 0);
    cr_assert_eq(scn_gate_await(&a->freed_gate, 1), 1);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a->freed), 1);
    cr_assert_eq(atomic_load(&a->unresolved_at_free), 0,
                 "arg_free ran before every task had resolved");
    crew_future_release_all(futures, MANY);
    batch_arg_free(a);
}

CREW_TEST(each, without_futures_every_task_runs_and_arg_free_follows)
{
    crew_pool *pool = crew_test_pool(2);
    struct batch_arg *a = batch_arg_new(MANY, NULL);

    cr_assert_eq(crew_submit_each(pool, MANY, record, a, note_free, 0, NULL),
                 0);
    cr_assert_eq(scn_gate_await(&a->freed_gate, 1), 1);
    cr_assert_eq(atomic_load(&a->calls), MANY);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a->freed), 1);
    batch_arg_free(a);
}

CREW_TEST(each, zero_tasks_queue_nothing_and_free_arg_at_once)
{
    crew_pool *pool = crew_test_pool(1);
    struct batch_arg *a = batch_arg_new(0, NULL);
    crew_future *sentinel = (crew_future *)(uintptr_t)1;
    crew_pool_stats stats;

    cr_assert_eq(crew_submit_each(pool, 0, record, a, note_free, 0, NULL), 0);
    cr_assert_eq(atomic_load(&a->freed), 1, "arg_free ran before the return");
    cr_assert_eq(crew_submit_each(pool, 0, record, a, NULL, 0, &sentinel), 0);
    cr_assert_eq(sentinel, (crew_future *)(uintptr_t)1,
                 "no slot to fill, none written");
    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_eq(stats.submitted, 0);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a->calls), 0);
    batch_arg_free(a);
}

/* Every slot NULL, arg_free not called, nothing ran. */
static void
assert_refused(crew_pool *pool, crew_each_fn fn, unsigned flags, int code)
{
    crew_future *futures[4];
    struct batch_arg *a = batch_arg_new(4, NULL);

    for (size_t i = 0; i < 4; i++)
        futures[i] = (crew_future *)(uintptr_t)(i + 1);
    cr_assert_eq(crew_submit_each(pool, 4, fn, a, note_free, flags, futures),
                 code);
    for (size_t i = 0; i < 4; i++)
        cr_assert_null(futures[i], "slot %zu was left set", i);
    cr_assert_eq(atomic_load(&a->freed), 0);
    cr_assert_eq(atomic_load(&a->calls), 0);
    batch_arg_free(a);
}

CREW_TEST(each, bad_arguments_are_einval_and_change_nothing)
{
    crew_pool *pool = crew_test_pool(1);

    assert_refused(NULL, record, 0, EINVAL);
    assert_refused(pool, NULL, 0, EINVAL);
    assert_refused(pool, record, 0x80u, EINVAL);
    cr_assert_eq(crew_submit_each(NULL, 0, record, NULL, NULL, 0, NULL),
                 EINVAL);
    crew_pool_destroy(pool);
}

CREW_TEST(each, a_shut_down_pool_refuses_the_whole_batch)
{
    crew_pool *pool = crew_test_pool(1);

    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    assert_refused(pool, record, 0, ESHUTDOWN);
    crew_pool_destroy(pool);
}

CREW_TEST(each, a_cancelled_task_of_a_batch_leaves_the_others_running)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *futures[3];
    struct batch_arg *a = batch_arg_new(3, futures);

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    cr_assert_eq(crew_submit_each(pool, 3, record, a, note_free, 0, futures),
                 0);
    cr_assert_eq(crew_future_cancel(futures[1]), 0);
    cr_assert_eq(crew_future_state(futures[1]), CREW_CANCELLED);
    scn_hold_open(&hold);
    cr_assert_eq(crew_wait_all(futures, 3, NULL), ECANCELED);
    cr_assert_eq(crew_future_state(futures[0]), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_state(futures[2]), CREW_SUCCEEDED);
    cr_assert_eq(atomic_load(&a->runs[1]), 0);
    cr_assert_eq(scn_gate_await(&a->freed_gate, 1), 1);
    crew_future_release_all(futures, 3);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a->freed), 1);
    scn_hold_destroy(&hold);
    batch_arg_free(a);
}

CREW_TEST(each, a_cancelling_shutdown_cancels_the_queued_batch_and_frees_arg)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *futures[MANY];
    struct batch_arg *a = batch_arg_new(MANY, futures);

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    cr_assert_eq(
        crew_submit_each(pool, MANY, record, a, note_free, 0, futures), 0);
    scn_hold_open(&hold);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_CANCEL), 0);
    /* Some may have run before the shutdown began; none is pending. */
    for (size_t i = 0; i < MANY; i++) {
        crew_state s = crew_future_state(futures[i]);
        cr_assert(s == CREW_SUCCEEDED || s == CREW_CANCELLED);
        cr_assert_eq(atomic_load(&a->runs[i]), s == CREW_SUCCEEDED);
    }
    cr_assert_eq(atomic_load(&a->freed), 1, "by the end of the shutdown");
    crew_future_release_all(futures, MANY);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    batch_arg_free(a);
}

/* From a worker: a batch bigger than its deque's ring, and bigger than
 * max_queued, queued in one push and joined by the same task, which
 * helps run it (a one-thread pool has nobody else). */
struct inner {
    size_t n;
    int submitted, joined;
    struct batch_arg *a;
};

static int
submit_inner(crew_task *task, void *arg)
{
    struct inner *in = arg;
    crew_future **futures = calloc(in->n, sizeof(*futures));

    if (futures == NULL)
        return ENOMEM;
    in->submitted = crew_submit_each(crew_task_pool(task), in->n, record,
                                     in->a, NULL, 0, futures);
    if (in->submitted == 0)
        in->joined = crew_wait_all(futures, in->n, NULL);
    crew_future_release_all(futures, in->n);
    free(futures);
    return 0;
}

CREW_TEST(each, from_a_worker_a_batch_is_never_blocked_by_max_queued)
{
    crew_pool_options o = {.threads = 1, .max_queued = 2};
    crew_pool *pool;
    struct inner in = {.n = MANY};
    crew_future *outer;

    in.a = batch_arg_new(MANY, NULL);
    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    cr_assert_eq(crew_submit(pool, submit_inner, &in, &outer), 0);
    cr_assert_eq(crew_future_wait(outer), 0);
    cr_assert_eq(in.submitted, 0);
    cr_assert_eq(in.joined, 0);
    for (size_t i = 0; i < MANY; i++)
        cr_assert_eq(atomic_load(&in.a->runs[i]), 1);
    crew_future_release(outer);
    crew_pool_destroy(pool);
    batch_arg_free(in.a);
}

CREW_TEST(each, from_outside_more_than_max_queued_is_einval)
{
    crew_pool_options o = {.threads = 1, .max_queued = 3};
    crew_pool *pool;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    assert_refused(pool, record, 0, EINVAL); /* 4 tasks */
    assert_refused(pool, record, CREW_NONBLOCKING, EINVAL);
    crew_pool_destroy(pool);
}

CREW_TEST(each, nonblocking_needs_room_for_the_whole_batch)
{
    crew_pool_options o = {.threads = 1, .max_queued = 4};
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *filler[2], *futures[3] = {NULL, NULL, NULL};
    struct batch_arg *a = batch_arg_new(3, NULL);
    crew_pool *pool;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    cr_assert_eq(crew_submit_each(pool, 2, record, a, NULL, 0, filler), 0);
    /* Two places left: three do not fit, and nothing is queued. */
    assert_refused(pool, record, CREW_NONBLOCKING, EAGAIN);
    cr_assert_eq(crew_submit_each(pool, 2, record, a, NULL, CREW_NONBLOCKING,
                                  futures),
                 0);
    cr_assert_eq(crew_submit_each(pool, 1, record, a, NULL, CREW_NONBLOCKING,
                                  futures + 2),
                 EAGAIN);
    cr_assert_null(futures[2]);
    scn_hold_open(&hold);
    cr_assert_eq(crew_wait_all(filler, 2, NULL), 0);
    cr_assert_eq(crew_wait_all(futures, 2, NULL), 0);
    cr_assert_eq(atomic_load(&a->calls), 4);
    crew_future_release_all(filler, 2);
    crew_future_release_all(futures, 2);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    batch_arg_free(a);
}

CREW_TEST(each, a_batch_counts_as_n_submitted_tasks)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *futures[MANY];
    struct batch_arg *a = batch_arg_new(MANY, NULL);
    crew_pool_stats stats;

    cr_assert_eq(crew_submit_each(pool, MANY, record, a, NULL, 0, futures),
                 0);
    cr_assert_eq(crew_wait_all(futures, MANY, NULL), 0);
    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_eq(stats.submitted, MANY);
    cr_assert_eq(stats.succeeded, MANY);
    crew_future_release_all(futures, MANY);
    crew_pool_destroy(pool);
    batch_arg_free(a);
}

/* Task i fails when i is odd, with its index in the message. */
static int
fail_odd(crew_task *task, size_t index, void *arg)
{
    (void)arg;
    if (index % 2 == 1)
        return crew_task_fail(task, EDOM, "task %zu", index);
    return 0;
}

CREW_TEST(each, failures_reach_the_aggregate_at_their_index)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *futures[6];
    crew_error *error = NULL;

    cr_assert_eq(crew_submit_each(pool, 6, fail_odd, NULL, NULL, 0, futures),
                 0);
    cr_assert_eq(crew_wait_all(futures, 6, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 3);
    for (size_t k = 0; k < 3; k++) {
        size_t index = 99;
        const crew_error *inner = crew_error_inner(error, k, &index);

        cr_assert_eq(index, 2 * k + 1);
        cr_assert_eq(crew_error_code(inner), EDOM);
    }
    crew_error_release(error);
    crew_future_release_all(futures, 6);
    crew_pool_destroy(pool);
}
