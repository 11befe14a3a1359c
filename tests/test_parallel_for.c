/*
 * crew_parallel_for(): every sentence of its contract. Chunks cover the
 * range exactly once, never empty, at most `grain` items (any size with
 * grain 0); begin == end calls nothing; begin > end and NULLs are EINVAL
 * and call nothing; *error is NULL on success; a failing chunk skips the
 * chunks not yet started, and the aggregate holds one inner error per
 * failed chunk, positioned at its first item; the calling thread runs
 * chunks; from a task on a pool of one thread it completes; a shut-down
 * pool leaves all chunks to the caller; chunks count as tasks.
 *
 * Chunks record what they covered in a per-item counter. The race of
 * failures across workers is the scenario parallel_for_race
 * (scenarios/parallel.c), which the TSan driver runs too.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(parallel_for, CREW_SUITE);

/* What the chunks of one loop did. */
struct cover {
    size_t base, n;       /* the items [base, base + n) may be visited */
    atomic_uchar *visits; /* per item */
    atomic_size_t chunks;
    atomic_size_t largest;
    atomic_size_t empty; /* chunks with no item, or out of range */
    size_t fail_at;      /* a chunk holding this item fails; SIZE_MAX: none */
    pthread_t caller;
    atomic_size_t on_caller; /* chunks run on the calling thread */
};

static void
cover_init(struct cover *c, size_t base, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->base = base;
    c->n = n;
    c->visits = calloc(n + 1, sizeof(*c->visits));
    cr_assert_not_null(c->visits);
    c->fail_at = SIZE_MAX;
    c->caller = pthread_self();
}

static int
visit(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct cover *c = arg;
    size_t size = end - begin, largest;

    if (begin >= end || begin < c->base || end > c->base + c->n) {
        atomic_fetch_add(&c->empty, 1);
        return 0;
    }
    atomic_fetch_add(&c->chunks, 1);
    if (pthread_equal(pthread_self(), c->caller))
        atomic_fetch_add(&c->on_caller, 1);
    largest = atomic_load(&c->largest);
    while (size > largest &&
           !atomic_compare_exchange_weak(&c->largest, &largest, size))
        continue;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add(&c->visits[i - c->base], 1);
    if (c->fail_at >= begin && c->fail_at < end)
        return crew_task_fail(task, EDOM, "chunk at %zu failed", begin);
    return 0;
}

/* Every item visited exactly once. */
static void
assert_covered_once(const struct cover *c)
{
    for (size_t i = 0; i < c->n; i++)
        cr_assert_eq(atomic_load(&c->visits[i]), 1, "item %zu visited %u times",
                     c->base + i, (unsigned)atomic_load(&c->visits[i]));
    cr_assert_eq(atomic_load(&c->empty), 0, "an empty or stray chunk");
}

CREW_TEST(parallel_for, covers_the_range_once_in_chunks_of_at_most_grain)
{
    static const struct {
        size_t begin, end, grain;
    } cases[] = {
        {0, 1, 0},
        {0, 1, 1},
        {0, 10, 1},
        {5, 1000, 7},
        {0, 1000, 0},
        {3, 100000, 0},
        {0, 64, 64},
        {0, 63, 64},
        {0, 65, 64},
        {0, 100, 1000},
        {SIZE_MAX - 300, SIZE_MAX - 1, 0},
    };
    crew_pool *pool = crew_test_pool(3);

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct cover c;
        crew_error *error = (crew_error *)&error;

        cover_init(&c, cases[k].begin, cases[k].end - cases[k].begin);
        cr_assert_eq(crew_parallel_for(pool, cases[k].begin, cases[k].end,
                                       cases[k].grain, visit, &c, &error),
                     0, "case %zu", k);
        cr_assert_null(error, "case %zu: *error was not set to NULL", k);
        assert_covered_once(&c);
        if (cases[k].grain != 0)
            cr_assert_leq(atomic_load(&c.largest), cases[k].grain,
                          "case %zu: a chunk of %zu items", k,
                          atomic_load(&c.largest));
        free(c.visits);
    }
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, grain_zero_balances_with_several_chunks)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;

    cover_init(&c, 0, 100000);
    cr_assert_eq(crew_parallel_for(pool, 0, 100000, 0, visit, &c, NULL), 0);
    assert_covered_once(&c);
    /* Large first, smaller towards the end: many chunks, none of all. */
    cr_assert_gt(atomic_load(&c.chunks), 8, "%zu chunks",
                 atomic_load(&c.chunks));
    cr_assert_lt(atomic_load(&c.largest), 100000 / 2);
    free(c.visits);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, an_empty_range_calls_nothing)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;
    crew_error *error = (crew_error *)&error;

    cover_init(&c, 0, 0);
    cr_assert_eq(crew_parallel_for(pool, 7, 7, 0, visit, &c, &error), 0);
    cr_assert_null(error);
    cr_assert_eq(atomic_load(&c.chunks) + atomic_load(&c.empty), 0);
    free(c.visits);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, rejects_bad_input_and_calls_nothing)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;
    crew_error *error = (crew_error *)&error;

    cover_init(&c, 0, 10);
    cr_assert_eq(crew_parallel_for(pool, 10, 9, 1, visit, &c, &error), EINVAL);
    cr_assert_null(error, "*error was not cleared");
    cr_assert_eq(crew_parallel_for(NULL, 0, 10, 1, visit, &c, NULL), EINVAL);
    cr_assert_eq(crew_parallel_for(pool, 0, 10, 1, NULL, &c, NULL), EINVAL);
    cr_assert_eq(atomic_load(&c.chunks) + atomic_load(&c.empty), 0);
    free(c.visits);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, a_failure_skips_the_chunks_not_yet_started)
{
    /* One thread: no runner, the caller runs the chunks in order. */
    crew_pool *pool = crew_test_pool(1);
    struct cover c;
    crew_error *error = NULL;
    size_t position = SIZE_MAX;
    const crew_error *inner;

    cover_init(&c, 0, 100);
    c.fail_at = 35;
    cr_assert_eq(crew_parallel_for(pool, 0, 100, 10, visit, &c, &error),
                 CREW_EAGGREGATE);
    cr_assert_eq(atomic_load(&c.chunks), 4, "%zu chunks ran",
                 atomic_load(&c.chunks));
    for (size_t i = 40; i < 100; i++)
        cr_assert_eq(atomic_load(&c.visits[i]), 0, "item %zu ran", i);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 1);
    inner = crew_error_inner(error, 0, &position);
    cr_assert_eq(position, 30, "the position is the chunk's first item");
    cr_assert_eq(crew_error_code(inner), EDOM);
    cr_assert_str_eq(crew_error_message(inner), "chunk at 30 failed");
    crew_error_release(error);
    free(c.visits);
    crew_pool_destroy(pool);
}

/* Fails every chunk but lets them all start first: one error each. */
struct all_fail {
    struct scn_gate started;
    size_t chunks;
};

static int
fail_after_all_started(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct all_fail *a = arg;

    (void)end;
    scn_gate_add(&a->started, 1);
    scn_gate_wait(&a->started, a->chunks);
    return crew_task_fail(task, (int)(EIO + begin / 10), "at %zu", begin);
}

CREW_TEST(parallel_for, holds_one_error_per_failed_chunk_in_order)
{
    crew_pool *pool = crew_test_pool(3);
    struct all_fail a = {.chunks = 3};
    crew_error *error = NULL;

    scn_gate_init(&a.started);
    /* Three chunks, three participants, each waiting for the others. */
    cr_assert_eq(
        crew_parallel_for(pool, 0, 30, 10, fail_after_all_started, &a, &error),
        CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 3);
    for (size_t i = 0; i < 3; i++) {
        size_t position = SIZE_MAX;
        const crew_error *inner = crew_error_inner(error, i, &position);
        char message[16];

        snprintf(message, sizeof(message), "at %zu", i * 10);
        cr_assert_eq(position, i * 10);
        cr_assert_eq(crew_error_code(inner), (int)(EIO + i));
        cr_assert_str_eq(crew_error_message(inner), message);
    }
    crew_error_release(error);
    /* Without a place for it, the aggregate is dropped, not leaked. */
    cr_assert_eq(
        crew_parallel_for(pool, 0, 30, 10, fail_after_all_started, &a, NULL),
        CREW_EAGGREGATE);
    scn_gate_destroy(&a.started);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, the_calling_thread_runs_chunks)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(2);
    crew_future *held[2];
    struct cover c;

    /* Both workers held: the runners stay queued, the caller does it all,
     * then takes them back without waiting for a worker. */
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held[0]), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 2, &held[1]), 0);
    cover_init(&c, 0, 1000);
    cr_assert_eq(crew_parallel_for(pool, 0, 1000, 10, visit, &c, NULL), 0);
    assert_covered_once(&c);
    cr_assert_eq(atomic_load(&c.on_caller), 100);
    scn_hold_open(&hold);
    scn_release_all(held, 2);
    free(c.visits);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

struct inside {
    struct cover cover;
    size_t grain;
    int result;
};

static int
loop_inside(crew_task *task, void *arg)
{
    struct inside *in = arg;

    in->result = crew_parallel_for(crew_task_pool(task), 0, in->cover.n,
                                   in->grain, visit, &in->cover, NULL);
    return 0;
}

CREW_TEST(parallel_for, from_a_task_on_a_pool_of_one_thread)
{
    const size_t grains[] = {0, 1, 7};

    for (size_t k = 0; k < 3; k++) {
        crew_pool *pool = crew_test_pool(1);
        struct inside in = {.grain = grains[k], .result = -1};
        crew_future *f;

        cover_init(&in.cover, 0, 5000);
        cr_assert_eq(crew_submit(pool, loop_inside, &in, &f), 0);
        cr_assert_eq(crew_future_wait(f), 0, "grain %zu", grains[k]);
        cr_assert_eq(in.result, 0);
        assert_covered_once(&in.cover);
        crew_future_release(f);
        free(in.cover.visits);
        crew_pool_destroy(pool);
    }
}

/* A chunk that runs a loop of its own over its items' squares. */
static int
nested(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct cover *outer = arg;

    for (size_t i = begin; i < end; i++) {
        struct cover inner;
        int err;

        cover_init(&inner, 0, 50);
        err = crew_parallel_for(crew_task_pool(task), 0, 50, 3, visit, &inner,
                                NULL);
        for (size_t k = 0; k < 50; k++)
            if (atomic_load(&inner.visits[k]) != 1)
                err = EPROTO;
        free(inner.visits);
        if (err != 0)
            return crew_task_fail(task, err, "inner loop at %zu", i);
        atomic_fetch_add(&outer->visits[i], 1);
    }
    return 0;
}

CREW_TEST(parallel_for, nests_inside_its_own_chunks)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;
    crew_error *error = NULL;

    cover_init(&c, 0, 200);
    cr_assert_eq(crew_parallel_for(pool, 0, 200, 0, nested, &c, &error), 0,
                 "%s", error != NULL ? crew_error_message(error) : "");
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(atomic_load(&c.visits[i]), 1);
    free(c.visits);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, a_shut_down_pool_leaves_it_to_the_caller)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;

    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cover_init(&c, 0, 1000);
    cr_assert_eq(crew_parallel_for(pool, 0, 1000, 0, visit, &c, NULL), 0);
    assert_covered_once(&c);
    cr_assert_eq(atomic_load(&c.on_caller), atomic_load(&c.chunks));
    free(c.visits);
    crew_pool_destroy(pool);
}

static int
returns_values(crew_task *task, size_t begin, size_t end, void *arg)
{
    (void)begin;
    (void)end;
    crew_task_return(task, arg, scn_bump);
    return 0;
}

CREW_TEST(parallel_for, frees_values_a_chunk_returns)
{
    crew_pool *pool = crew_test_pool(2);
    atomic_int freed = 0;

    cr_assert_eq(
        crew_parallel_for(pool, 0, 100, 10, returns_values, &freed, NULL), 0);
    cr_assert_eq(atomic_load(&freed), 10);
    crew_pool_destroy(pool);
}

CREW_TEST(parallel_for, counts_its_chunks_as_tasks)
{
    crew_pool *pool = crew_test_pool(2);
    struct cover c;
    crew_pool_stats s;

    cover_init(&c, 0, 1000);
    c.fail_at = SIZE_MAX;
    cr_assert_eq(crew_parallel_for(pool, 0, 1000, 10, visit, &c, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    cr_assert_eq(s.submitted, 100, "submitted %llu, not the 100 chunks",
                 (unsigned long long)s.submitted);
    cr_assert_eq(s.succeeded, 100);
    cr_assert_eq(s.failed + s.cancelled, 0);
    free(c.visits);
    crew_pool_destroy(pool);
}
