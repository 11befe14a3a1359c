#include "common.h"
#include "testkit.h"

/*
 * Values and reports: results copied into the future
 * (crew_task_return_copy, crew_promise_resolve_copy,
 * crew_future_result_size), crew_future_release_all, crew_error_print.
 * The allocation-free promise of a copy of up to 16 bytes is proven in
 * test_faults.c, where the fault hooks are.
 */

#include <crew.h>

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(values, CREW_SUITE);

/* What a task copies: `size` bytes of a pattern, then how it ends. */
struct copy_job {
    size_t size;
    int fail;                  /* the code it returns after the copy */
    int copied;                /* what crew_task_return_copy returned */
    int bad_null, bad_task;    /* its EINVAL cases */
    atomic_int values_freed;   /* for a pointer result it replaces */
    struct scn_gate freed;     /* one a values_freed */
    bool pointer_after;        /* crew_task_return a pointer afterwards */
    bool pointer_before;       /* crew_task_return a pointer first */
};

static unsigned char
pattern(size_t i)
{
    return (unsigned char)(i * 37 + 11);
}

static void
count_value_free(void *p)
{
    struct copy_job *job = p;
    atomic_fetch_add(&job->values_freed, 1);
    scn_gate_add(&job->freed, 1);
}

static int
copy_task(crew_task *task, void *arg)
{
    struct copy_job *job = arg;
    unsigned char *bytes = malloc(job->size + 1);

    if (bytes == NULL)
        return ENOMEM;
    for (size_t i = 0; i < job->size; i++)
        bytes[i] = pattern(i);
    if (job->pointer_before)
        crew_task_return(task, job, count_value_free);
    job->bad_null = crew_task_return_copy(task, NULL, 1);
    job->bad_task = crew_task_return_copy(NULL, bytes, job->size);
    job->copied = crew_task_return_copy(task, bytes, job->size);
    /* The copy is the future's: the source may go at once. */
    memset(bytes, 0, job->size + 1);
    free(bytes);
    if (job->pointer_after)
        crew_task_return(task, job, count_value_free);
    return job->fail;
}

static crew_future *
run_copy(crew_pool *pool, struct copy_job *job)
{
    crew_future *f;

    cr_assert_eq(crew_submit(pool, copy_task, job, &f), 0);
    crew_future_wait(f);
    cr_assert_eq(job->copied, 0);
    cr_assert_eq(job->bad_null, EINVAL, "a NULL value of size 1 was taken");
    cr_assert_eq(job->bad_task, EINVAL, "a NULL task was taken");
    return f;
}

static void
assert_copy(const crew_future *f, size_t size)
{
    const unsigned char *got = crew_future_result(f);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result_size(f), size);
    cr_assert_not_null(got);
    cr_assert_eq((uintptr_t)got % alignof(max_align_t), 0,
                 "a copy of %zu bytes is not aligned for any type", size);
    for (size_t i = 0; i < size; i++)
        cr_assert_eq(got[i], pattern(i), "byte %zu of %zu differs", i, size);
}

CREW_TEST(values, a_task_returns_copies_of_every_size_inline_and_not)
{
    static const size_t sizes[] = {1, 7, 8, 15, 16, 17, 64, 1000, 100000};
    crew_pool *pool = crew_test_pool(2);

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct copy_job job = {.size = sizes[k]};
        crew_future *f = run_copy(pool, &job);
        assert_copy(f, sizes[k]);
        crew_future_release(f);
    }
    crew_pool_destroy(pool);
}

CREW_TEST(values, a_double_comes_back_without_a_cast_or_a_malloc_in_sight)
{
    crew_future *f = crew_test_promise();
    double pi = 3.14159;

    cr_assert_eq(crew_promise_resolve_copy(f, &pi, sizeof(pi)), 0);
    cr_assert_eq(*(const double *)crew_future_result(f), pi);
    cr_assert_eq(crew_future_result_size(f), sizeof(double));
    crew_future_release(f);
}

/* A success with a copy of nothing: a NULL result of size 0. */
static void
assert_empty_copy(const crew_future *f)
{
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_future_result_size(f), 0);
}

CREW_TEST(values, a_copy_of_size_zero_is_a_null_result_of_size_zero)
{
    crew_pool *pool = crew_test_pool(1);
    struct copy_job job = {.size = 0};
    crew_future *f = run_copy(pool, &job);
    crew_future *p = crew_test_promise();

    assert_empty_copy(f);
    cr_assert_eq(crew_promise_resolve_copy(p, NULL, 0), 0);
    assert_empty_copy(p);
    crew_future_release(p);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(values, the_last_call_wins_and_releases_the_value_it_replaces)
{
    crew_pool *pool = crew_test_pool(1);
    /* A pointer, then a copy: the pointer's value_free runs once. */
    struct copy_job first = {
        .size = 24, .pointer_before = true, .freed = SCN_GATE_INIT};
    /* A large copy, then a pointer: the copy goes (ASan sees a leak if
     * not), the pointer is the result. */
    struct copy_job second = {
        .size = 40, .pointer_after = true, .freed = SCN_GATE_INIT};
    crew_future *f = run_copy(pool, &first);

    assert_copy(f, 24);
    cr_assert_eq(atomic_load(&first.values_freed), 1);
    crew_future_release(f);

    f = run_copy(pool, &second);
    cr_assert_eq(crew_future_result(f), &second);
    cr_assert_eq(crew_future_result_size(f), 0, "a pointer result has no size");
    cr_assert_eq(atomic_load(&second.values_freed), 0);
    crew_future_release(f);
    /* With the last reference, which may be the worker's, not ours. */
    cr_assert_eq(scn_gate_await(&second.freed, 1), 1,
                 "value_free never ran");
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&second.values_freed), 1);
    scn_gate_destroy(&first.freed);
    scn_gate_destroy(&second.freed);
}

CREW_TEST(values, a_task_that_fails_after_copying_discards_the_copy)
{
    crew_pool *pool = crew_test_pool(1);
    struct copy_job small = {.size = 8, .fail = EIO};
    struct copy_job large = {.size = 4096, .fail = EIO};
    crew_future *f = run_copy(pool, &small);
    crew_future *g = run_copy(pool, &large);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_future_result_size(f), 0);
    cr_assert_eq(crew_future_state(g), CREW_FAILED);
    cr_assert_eq(crew_future_result_size(g), 0);
    crew_future_release(f);
    crew_future_release(g); /* the 4096 bytes went at resolution */
    crew_pool_destroy(pool);
}

CREW_TEST(values, result_size_is_zero_but_for_a_succeeded_copy)
{
    crew_future *pending = crew_test_promise();
    crew_future *pointer = crew_test_promise();
    crew_future *failed = crew_test_promise();
    int x = 5;

    cr_assert_eq(crew_future_result_size(NULL), 0);
    cr_assert_eq(crew_future_result_size(pending), 0);
    cr_assert_eq(crew_promise_resolve(pointer, &x, NULL), 0);
    cr_assert_eq(crew_future_result_size(pointer), 0);
    cr_assert_eq(crew_promise_fail(failed, EIO, NULL), 0);
    cr_assert_eq(crew_future_result_size(failed), 0);
    crew_future_release(pending);
    crew_future_release(pointer);
    crew_future_release(failed);
}

CREW_TEST(values, resolve_copy_rejects_what_resolve_rejects_and_keeps_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *p = crew_test_promise();
    crew_future *task;
    char big[100] = "kept by the caller";
    int x = 1;

    cr_assert_eq(crew_promise_resolve_copy(NULL, &x, sizeof(x)), EINVAL);
    cr_assert_eq(crew_promise_resolve_copy(p, NULL, 4), EINVAL);
    cr_assert_eq(crew_future_state(p), CREW_PENDING);
    cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, &task), 0);
    cr_assert_eq(crew_promise_resolve_copy(task, &x, sizeof(x)), EINVAL,
                 "a task's future is no promise");
    cr_assert_eq(crew_promise_resolve_copy(p, big, sizeof(big)), 0);
    /* Resolved: a second copy is refused, and nothing of it kept. */
    cr_assert_eq(crew_promise_resolve_copy(p, &x, sizeof(x)), EALREADY);
    cr_assert_eq(crew_promise_resolve_copy(p, big, sizeof(big)), EALREADY);
    cr_assert_str_eq(crew_future_result(p), "kept by the caller");
    cr_assert_eq(crew_future_result_size(p), sizeof(big));
    crew_future_release(task);
    crew_future_release(p);
    crew_pool_destroy(pool);
}

CREW_TEST(values, a_cancelled_promise_refuses_a_copy_with_ealready)
{
    crew_future *p = crew_test_promise();
    int x = 1;

    cr_assert_eq(crew_future_cancel(p), 0);
    cr_assert_eq(crew_promise_resolve_copy(p, &x, sizeof(x)), EALREADY);
    cr_assert_eq(crew_future_state(p), CREW_CANCELLED);
    crew_future_release(p);
}

static void
resolve_copy_cb(crew_future *input, void *user)
{
    (void)input;
    /* A callback of another promise copies into this one. */
    long v = 42;
    crew_promise_resolve_copy(user, &v, sizeof(v));
}

CREW_TEST(values, a_copy_made_by_a_callback_reaches_a_waiter)
{
    crew_future *a = crew_test_promise();
    crew_future *b = crew_test_promise();

    cr_assert_eq(crew_future_on_complete(a, resolve_copy_cb, b), 0);
    cr_assert_eq(crew_promise_resolve(a, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(b), 0);
    cr_assert_eq(*(const long *)crew_future_result(b), 42);
    crew_future_release(a);
    crew_future_release(b);
}

CREW_TEST(values, release_all_releases_each_and_nulls_its_slot)
{
    crew_future *fs[4] = {crew_test_promise(), NULL, crew_test_promise(),
                          crew_test_promise()};
    crew_future *kept = crew_future_retain(fs[2]);

    crew_future_release_all(fs, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_null(fs[i], "slot %zu was not set to NULL", i);
    /* Exactly one reference went: the one kept still works. */
    cr_assert_eq(crew_promise_resolve(kept, NULL, NULL), 0);
    crew_future_release(kept);
    crew_future_release_all(NULL, 4);
    crew_future_release_all(fs, 0);
}

/* An aggregate of two failures, one of them nested. */
static crew_error *
make_report(void)
{
    crew_future *in[3] = {crew_test_promise(), crew_test_promise(),
                          crew_test_promise()};
    crew_future *inner_in[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *inner, *all;
    crew_error *error = NULL;

    cr_assert_eq(crew_when_all(inner_in, 2, &inner), 0);
    cr_assert_eq(crew_promise_fail(inner_in[1], ENOENT, "no such file: a"),
                 0);
    cr_assert_eq(crew_promise_resolve(inner_in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[0], EIO, "line one\nline two"), 0);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(in[2], NULL, NULL), 0);
    crew_future *outer[4] = {in[0], in[1], in[2], inner};
    cr_assert_eq(crew_when_all(outer, 4, &all), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    error = crew_error_retain(crew_future_error(all));
    crew_future_release(all);
    crew_future_release(inner);
    crew_future_release_all(in, 3);
    crew_future_release_all(inner_in, 2);
    return error;
}

CREW_TEST(values, error_print_writes_what_format_would)
{
    crew_error *error = make_report();
    int length = crew_error_format(error, NULL, 0);
    char *want = malloc((size_t)length + 1);
    char *got = malloc((size_t)length + 2);
    FILE *stream = tmpfile();

    cr_assert(length > 0);
    cr_assert_not_null(stream);
    crew_error_format(error, want, (size_t)length + 1);
    cr_assert_eq(crew_error_print(error, stream), 0);
    rewind(stream);
    size_t n = fread(got, 1, (size_t)length + 1, stream);
    got[n] = '\0';
    cr_assert_eq(n, (size_t)length, "printed %zu bytes, format says %d", n,
                 length);
    cr_assert_str_eq(got, want);
    fclose(stream);
    free(want);
    free(got);
    crew_error_release(error);
}

CREW_TEST(values, error_print_rejects_null_and_reports_a_failed_write)
{
    crew_error *error = make_report();
    FILE *read_only = fopen("/dev/null", "r");

    cr_assert_not_null(read_only);
    cr_assert_eq(crew_error_print(NULL, stdout), EINVAL);
    cr_assert_eq(crew_error_print(error, NULL), EINVAL);
    /* Unbuffered, so the write is tried at once and fails at once. */
    setvbuf(read_only, NULL, _IONBF, 0);
    cr_assert_eq(crew_error_print(error, read_only), EBADF);
    fclose(read_only);
    crew_error_release(error);
}

/* ------------------------------------------------------------------ */
/* The default message                                                */
/* ------------------------------------------------------------------ */

static int
return_code(crew_task *task, void *arg)
{
    (void)task;
    return (int)(intptr_t)arg;
}

/* The error a task returning `code` without a message fails with. */
static crew_error *
failure_of(crew_pool *pool, int code)
{
    crew_future *f;
    crew_error *error;

    cr_assert_eq(crew_submit(pool, return_code, (void *)(intptr_t)code, &f),
                 0);
    cr_assert_eq(crew_future_wait(f), code);
    error = crew_error_retain(crew_future_error(f));
    crew_future_release(f);
    return error;
}

static void
assert_formats_as(const crew_error *error, const char *want)
{
    char got[256];

    cr_assert_eq(crew_error_format(error, got, sizeof(got)), (int)strlen(want));
    cr_assert_str_eq(got, want);
}

CREW_TEST(values, a_known_code_without_a_message_says_what_strerror_says)
{
    crew_pool *pool = crew_test_pool(1);
    crew_error *error = failure_of(pool, ENOENT);
    crew_future *p = crew_test_promise();

    cr_assert_str_eq(crew_error_message(error), crew_strerror(ENOENT));
    cr_assert_str_neq(crew_error_message(error), "unknown error");
    /* Said once, not as "(text): text". */
    char want[128];
    snprintf(want, sizeof(want), "error %d (%s)\n", ENOENT,
             crew_strerror(ENOENT));
    assert_formats_as(error, want);
    crew_error_release(error);

    cr_assert_eq(crew_promise_fail(p, EIO, NULL), 0);
    cr_assert_str_eq(crew_error_message(crew_future_error(p)),
                     crew_strerror(EIO));
    crew_future_release(p);
    crew_pool_destroy(pool);
}

CREW_TEST(values, an_unknown_code_without_a_message_is_error_and_the_code)
{
    crew_pool *pool = crew_test_pool(1);
    crew_error *error = failure_of(pool, 12345);

    cr_assert_str_eq(crew_error_message(error), "error 12345");
    assert_formats_as(error, "error 12345 (unknown error)\n");
    crew_error_release(error);
    crew_pool_destroy(pool);
}

CREW_TEST(values, a_recorded_message_is_still_printed_after_the_code)
{
    crew_future *p = crew_test_promise();
    char want[128];

    cr_assert_eq(crew_promise_fail(p, ENOENT, "open %s", "a.txt"), 0);
    snprintf(want, sizeof(want), "error %d (%s): open a.txt\n", ENOENT,
             crew_strerror(ENOENT));
    assert_formats_as(crew_future_error(p), want);
    crew_future_release(p);
}

/* ------------------------------------------------------------------ */
/* crew_wait_all_for                                                  */
/* ------------------------------------------------------------------ */

CREW_TEST(values, wait_all_for_times_out_cancelling_nothing)
{
    crew_future *fs[3] = {crew_test_promise(), crew_test_promise(),
                          crew_test_promise()};
    crew_error *error = (crew_error *)fs; /* not NULL: must be cleared */

    cr_assert_eq(crew_promise_resolve(fs[0], NULL, NULL), 0);
    cr_assert_eq(crew_wait_all_for(fs, 3, 1000000, &error), ETIMEDOUT);
    cr_assert_null(error);
    cr_assert_eq(crew_future_state(fs[1]), CREW_PENDING, "an input changed");
    cr_assert_eq(crew_future_state(fs[2]), CREW_PENDING);
    /* Once they resolve, it answers as crew_wait_all does. */
    cr_assert_eq(crew_promise_fail(fs[1], EIO, "lost"), 0);
    cr_assert_eq(crew_promise_resolve(fs[2], NULL, NULL), 0);
    cr_assert_eq(crew_wait_all_for(fs, 3, 0, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 1);
    crew_error_release(error);
    cr_assert_eq(crew_wait_all_for(fs, 1, 0, NULL), 0);
    cr_assert_eq(crew_wait_all_for(NULL, 2, 0, NULL), EINVAL);
    cr_assert_eq(crew_wait_all_for(NULL, 0, 0, NULL), 0);
    crew_future_release_all(fs, 3);
}

CREW_TEST(values, wait_all_for_polling_a_pending_input_leaves_nothing_behind)
{
    crew_future *fs[2] = {crew_test_promise(), crew_test_promise()};
    size_t before = scn_heap_in_use();

    for (int i = 0; i < 20000; i++)
        cr_assert_eq(crew_wait_all_for(fs, 2, 0, NULL), ETIMEDOUT);
    /* A join left on the inputs at each turn would be 20000 of them. */
    size_t after = scn_heap_in_use();
    cr_assert(after < before + 64 * 1024,
              "the heap grew by %zu bytes over 20000 polls", after - before);
    cr_assert_eq(crew_promise_resolve(fs[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_resolve(fs[1], NULL, NULL), 0);
    cr_assert_eq(crew_wait_all_for(fs, 2, 0, NULL), 0);
    crew_future_release_all(fs, 2);
}

static int
wait_all_for_task(crew_task *task, void *arg)
{
    crew_future **pending = arg;

    (void)task;
    return crew_wait_all_for(pending, 1, 2000000, NULL);
}

CREW_TEST(values, wait_all_for_times_out_on_a_worker_too)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *pending = crew_test_promise();
    crew_future *f;

    cr_assert_eq(crew_submit(pool, wait_all_for_task, &pending, &f), 0);
    cr_assert_eq(crew_future_wait(f), ETIMEDOUT);
    cr_assert_eq(crew_future_state(pending), CREW_PENDING);
    crew_future_release(f);
    crew_future_release(pending);
    crew_pool_destroy(pool);
}
