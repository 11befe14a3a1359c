#include "common.h"
#include "testkit.h"

/*
 * crew_parallel_reduce: one sentence of API.md a test or more. The tree
 * of merges is checked against a serial model of the documented one (a
 * binary counter over the chunks, scn_reduce_model() in testkit.h), bytes
 * for bytes, at several thread counts.
 */

#include <crew.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

TestSuite(reduce, CREW_SUITE);

static double
pool_sum(unsigned threads, size_t begin, size_t end, size_t grain)
{
    crew_pool *pool = crew_test_pool(threads);
    double sum = 0.0;
    crew_error *error = NULL;

    cr_assert_eq(crew_parallel_reduce(pool, begin, end, grain,
                                      scn_reduce_sum, scn_reduce_add, NULL,
                                      &sum, sizeof(sum), &error),
                 0);
    cr_assert_null(error);
    crew_pool_destroy(pool);
    return sum;
}

CREW_TEST(reduce, a_float_sum_is_the_same_bytes_at_1_2_3_and_8_threads)
{
    static const unsigned threads[] = {1, 2, 3, 8};
    static const size_t grains[] = {1, 7, 1000};

    for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
        double model = scn_reduce_model(5, 200005, grains[g]);

        for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
            for (int rep = 0; rep < 3; rep++) {
                double sum = pool_sum(threads[t], 5, 200005, grains[g]);

                cr_assert(memcmp(&sum, &model, sizeof(sum)) == 0,
                          "grain %zu, %u threads: %.17g, not %.17g",
                          grains[g], threads[t], sum, model);
            }
        }
    }
}

CREW_TEST(reduce, grain_zero_depends_on_the_range_alone)
{
    double one = pool_sum(1, 0, 123457, 0);
    double two = pool_sum(2, 0, 123457, 0);
    double eight = pool_sum(8, 0, 123457, 0);

    cr_assert(memcmp(&one, &two, sizeof(one)) == 0);
    cr_assert(memcmp(&one, &eight, sizeof(one)) == 0);
}

/* A partial is a run of items [first, last); combine insists that
 * `from` follows `into` exactly. */
struct run {
    size_t first, last;
    bool empty, out_of_order;
};

static int
fold_run(crew_task *task, size_t begin, size_t end, void *partial, void *arg)
{
    struct run *r = partial;

    (void)task;
    (void)arg;
    if (!r->empty) {
        r->out_of_order = true; /* a partial starts as the identity */
        return 0;
    }
    *r = (struct run){.first = begin, .last = end};
    return 0;
}

static void
join_runs(void *into, const void *from, void *arg)
{
    struct run *a = into;
    const struct run *b = from;
    atomic_size_t *merges = arg;

    atomic_fetch_add(merges, 1);
    if (a->empty || b->empty || a->last != b->first || b->out_of_order)
        a->out_of_order = true;
    a->last = b->last;
}

CREW_TEST(reduce, from_always_holds_the_later_chunks)
{
    crew_pool *pool = crew_test_pool(3);
    atomic_size_t merges = 0;
    struct run result = {.empty = true};

    cr_assert_eq(crew_parallel_reduce(pool, 10, 100010, 3, fold_run, join_runs,
                                      &merges, &result, sizeof(result), NULL),
                 0);
    cr_assert(!result.empty);
    cr_assert(!result.out_of_order);
    cr_assert_eq(result.first, 10);
    cr_assert_eq(result.last, 100010);
    /* One merge fewer than chunks: a tree. */
    cr_assert_eq(atomic_load(&merges), (100000 + 2) / 3 - 1);
    crew_pool_destroy(pool);
}

static int
sum_index(crew_task *task, size_t begin, size_t end, void *partial, void *arg)
{
    uint64_t *sum = partial;

    (void)task;
    (void)arg;
    for (size_t i = begin; i < end; i++)
        *sum += i;
    return 0;
}

static void
add_u64(void *into, const void *from, void *arg)
{
    (void)arg;
    *(uint64_t *)into += *(const uint64_t *)from;
}

CREW_TEST(reduce, sums_every_item_once_with_the_grain_chosen)
{
    crew_pool *pool = crew_test_pool(2);
    uint64_t sum = 0;
    crew_pool_stats stats;

    cr_assert_eq(crew_parallel_reduce(pool, 0, 1000000, 0, sum_index, add_u64,
                                      NULL, &sum, sizeof(sum), NULL),
                 0);
    cr_assert_eq(sum, 1000000ull * 999999 / 2);
    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_geq(stats.succeeded, 1000, "chunks count as tasks");
    crew_pool_destroy(pool);
}

/* Where the partials lie: all in the call's one allocation, so their
 * span bounds the memory used; and the heap's peak seen from the chunks,
 * over what it held before the call. */
struct span {
    atomic_uintptr_t low, high;
    atomic_size_t heap_peak;
};

static void
widen(struct span *s, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t low = atomic_load(&s->low), high = atomic_load(&s->high);

    while (a < low && !atomic_compare_exchange_weak(&s->low, &low, a))
        ;
    while (a > high && !atomic_compare_exchange_weak(&s->high, &high, a))
        ;
}

static int
count_and_note(crew_task *task, size_t begin, size_t end, void *partial,
               void *arg)
{
    struct span *s = arg;

    widen(s, partial);
    if (begin % 65536 == 0) {
        size_t heap = scn_heap_in_use(), peak = atomic_load(&s->heap_peak);

        while (heap > peak &&
               !atomic_compare_exchange_weak(&s->heap_peak, &peak, heap))
            ;
    }
    return sum_index(task, begin, end, partial, NULL);
}

static void
add_and_note(void *into, const void *from, void *arg)
{
    widen(arg, into);
    widen(arg, from);
    add_u64(into, from, NULL);
}

CREW_TEST(reduce, ten_million_chunks_use_a_few_buffers)
{
    crew_pool *pool = crew_test_pool(2);
    struct span span = {UINTPTR_MAX, 0, 0};
    uint64_t sum = 0;
    size_t n = 10000000;
    size_t heap_before = scn_heap_in_use();

    cr_assert_eq(crew_parallel_reduce(pool, 0, n, 1, count_and_note,
                                      add_and_note, &span, &sum, sizeof(sum),
                                      NULL),
                 0);
    cr_assert_eq(sum, (uint64_t)n * (n - 1) / 2);
    /* O(threads * log chunks) buffers: 2 * 16 blocks and 2 stacks of
     * log2(10^7 / 32) + 1 = 20 buffers here, 16 bytes each; a buffer a
     * chunk would span 160 MB. */
    cr_assert_lt(atomic_load(&span.high) - atomic_load(&span.low),
                 (size_t)4096, "the partials span %zu bytes",
                 (size_t)(atomic_load(&span.high) - atomic_load(&span.low)));
    /* The memory cap: a buffer a chunk would be 80 MB more at least. */
    cr_assert_lt(atomic_load(&span.heap_peak), heap_before + (1u << 20),
                 "the heap grew by %zu bytes",
                 atomic_load(&span.heap_peak) - heap_before);
    crew_pool_destroy(pool);
}

static int
fail_at_500(crew_task *task, size_t begin, size_t end, void *partial,
            void *arg)
{
    if (begin <= 500 && 500 < end)
        return crew_task_fail(task, EDOM, "item 500");
    return sum_index(task, begin, end, partial, arg);
}

CREW_TEST(reduce, a_failed_chunk_leaves_the_result_and_reports_its_position)
{
    crew_pool *pool = crew_test_pool(2);
    uint64_t sum = 42;
    crew_error *error = NULL;
    size_t position = 0;

    cr_assert_eq(crew_parallel_reduce(pool, 0, 10000, 100, fail_at_500,
                                      add_u64, NULL, &sum, sizeof(sum),
                                      &error),
                 CREW_EAGGREGATE);
    cr_assert_eq(sum, 42);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_count(error), 1);
    cr_assert_eq(crew_error_code(crew_error_inner(error, 0, &position)), EDOM);
    cr_assert_eq(position, 500);
    crew_error_release(error);
    crew_pool_destroy(pool);
}

static int
never(crew_task *task, size_t begin, size_t end, void *partial, void *arg)
{
    (void)task;
    (void)begin;
    (void)end;
    (void)partial;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

CREW_TEST(reduce, bad_input_is_einval_and_an_empty_range_does_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    atomic_int calls = 0;
    uint64_t sum = 7;
    crew_error *error = (crew_error *)(uintptr_t)1;

    cr_assert_eq(crew_parallel_reduce(NULL, 0, 1, 1, never, add_u64, &calls,
                                      &sum, sizeof(sum), &error),
                 EINVAL);
    cr_assert_null(error);
    cr_assert_eq(crew_parallel_reduce(pool, 0, 1, 1, NULL, add_u64, &calls,
                                      &sum, sizeof(sum), NULL),
                 EINVAL);
    cr_assert_eq(crew_parallel_reduce(pool, 0, 1, 1, never, NULL, &calls,
                                      &sum, sizeof(sum), NULL),
                 EINVAL);
    cr_assert_eq(crew_parallel_reduce(pool, 0, 1, 1, never, add_u64, &calls,
                                      NULL, sizeof(sum), NULL),
                 EINVAL);
    cr_assert_eq(crew_parallel_reduce(pool, 0, 1, 1, never, add_u64, &calls,
                                      &sum, 0, NULL),
                 EINVAL);
    cr_assert_eq(crew_parallel_reduce(pool, 2, 1, 1, never, add_u64, &calls,
                                      &sum, sizeof(sum), NULL),
                 EINVAL);
    cr_assert_eq(crew_parallel_reduce(pool, 3, 3, 1, never, add_u64, &calls,
                                      &sum, sizeof(sum), NULL),
                 0);
    cr_assert_eq(sum, 7);
    cr_assert_eq(atomic_load(&calls), 0);
    crew_pool_destroy(pool);
}

/* From a task on a pool of one thread: the caller runs it all. */
static int
reduce_inside(crew_task *task, void *arg)
{
    uint64_t *sum = arg;

    return crew_parallel_reduce(crew_task_pool(task), 0, 100000, 10,
                                sum_index, add_u64, NULL, sum, sizeof(*sum),
                                NULL);
}

CREW_TEST(reduce, from_a_task_on_one_thread_it_never_deadlocks)
{
    crew_pool *pool = crew_test_pool(1);
    uint64_t sum = 0;
    crew_future *f;

    cr_assert_eq(crew_submit(pool, reduce_inside, &sum, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(sum, 100000ull * 99999 / 2);
    crew_future_release(f);
    crew_pool_destroy(pool);
}
