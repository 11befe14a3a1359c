#include "common.h"
#include "testkit.h"

/*
 * Errors: leaves and aggregates, their accessors, nesting, flattening,
 * formatting, references, crew_strerror and crew_version. Aggregates come
 * from crew_when_all over promises failed in known patterns, so every
 * entry's code, message and position is known in advance.
 */

#include <crew.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The library's fault-injection hooks (tests/fault.h) exist only when it
 * was built with CREW_TEST_HOOKS, a library option the tests cannot see.
 * Declared weak, they are NULL when absent.
 */
__attribute__((weak)) void crew_test_fail_alloc(long k);
__attribute__((weak)) bool crew_test_fault_fired(void);

TestSuite(error, CREW_SUITE);

static crew_future *
succeeded(void)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(f, NULL, NULL), 0);
    return f;
}

static crew_future *
cancelled(void)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_future_cancel(f), 0);
    return f;
}

/* crew_when_all over inputs that have all resolved: resolved at once. */
static crew_future *
join(crew_future *const *inputs, size_t n)
{
    crew_future *all = NULL;
    cr_assert_eq(crew_when_all(inputs, n, &all), 0);
    cr_assert_not_null(all);
    return all;
}

/* The error of a when_all that failed. */
static const crew_error *
aggregate_of(crew_future *all)
{
    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    const crew_error *e = crew_future_error(all);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), CREW_EAGGREGATE);
    return e;
}

/* Checks entry i of agg: a leaf with this code and message, at position. */
static const crew_error *
expect_leaf(const crew_error *agg, size_t i, int code, const char *message,
            size_t position)
{
    size_t input = SIZE_MAX;
    const crew_error *e = crew_error_inner(agg, i, &input);
    cr_assert_not_null(e, "entry %zu is missing", i);
    cr_assert_eq(crew_error_code(e), code, "entry %zu: code %d, not %d", i,
                 crew_error_code(e), code);
    cr_assert_str_eq(crew_error_message(e), message, "entry %zu", i);
    cr_assert_eq(crew_error_count(e), 0, "entry %zu is not a leaf", i);
    cr_assert_eq(input, position, "entry %zu: position %zu, not %zu", i, input,
                 position);
    return e;
}

/* ------------------------------------------------------------------ */
/* Leaves                                                             */
/* ------------------------------------------------------------------ */

CREW_TEST(error, a_leaf_has_its_code_and_message_and_no_inner_errors)
{
    crew_future *f = crew_test_failed_promise(ENOENT, "no such thing");
    const crew_error *e = crew_future_error(f);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), ENOENT);
    cr_assert_str_eq(crew_error_message(e), "no such thing");
    cr_assert_eq(crew_error_count(e), 0);
    size_t input = 12345;
    cr_assert_null(crew_error_inner(e, 0, &input));
    cr_assert_eq(input, 12345, "the position was written for no entry");
    cr_assert_null(crew_error_inner(e, 0, NULL));
    crew_future_release(f);
}

CREW_TEST(error, accessors_of_a_null_error_return_neutral_values)
{
    cr_assert_eq(crew_error_code(NULL), 0);
    cr_assert_not_null(crew_error_message(NULL));
    cr_assert_str_eq(crew_error_message(NULL), "");
    cr_assert_eq(crew_error_count(NULL), 0);
    size_t input = 77;
    cr_assert_null(crew_error_inner(NULL, 0, &input));
    cr_assert_eq(input, 77);
    cr_assert_null(crew_error_flatten(NULL));
}

/* ------------------------------------------------------------------ */
/* Aggregates                                                         */
/* ------------------------------------------------------------------ */

CREW_TEST(error, an_aggregate_holds_one_entry_per_failed_input_in_input_order)
{
    crew_future *in[] = {crew_test_failed_promise(EIO, "first"), succeeded(),
                         crew_test_failed_promise(ENOENT, "third"), cancelled(),
                         crew_test_failed_promise(-7, "fifth")};
    crew_future *all = join(in, 5);
    const crew_error *e = aggregate_of(all);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_null(crew_future_result(all));

    cr_assert_eq(crew_error_count(e), 3);
    expect_leaf(e, 0, EIO, "first", 0);
    expect_leaf(e, 1, ENOENT, "third", 2);
    expect_leaf(e, 2, -7, "fifth", 4);
    size_t input = 999;
    cr_assert_null(crew_error_inner(e, 3, &input));
    cr_assert_null(crew_error_inner(e, SIZE_MAX, &input));
    cr_assert_eq(input, 999, "the position was written for no entry");
    cr_assert_not_null(crew_error_inner(e, 2, NULL));
    crew_future_release(all);
    scn_release_all(in, 5);
}

CREW_TEST(error, every_pattern_of_failures_gives_exactly_its_entries)
{
    enum { N = 5 };
    for (unsigned mask = 0; mask < (1u << N); mask++) {
        crew_future *in[N];
        char messages[N][32];
        for (int i = 0; i < N; i++) {
            snprintf(messages[i], sizeof(messages[i]), "input %d of %u", i,
                     mask);
            in[i] = mask & (1u << i)
                        ? crew_test_failed_promise(100 + i, messages[i])
                        : succeeded();
        }
        crew_future *all = join(in, N);
        if (mask == 0) {
            cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
            cr_assert_null(crew_future_error(all));
        } else {
            const crew_error *e = aggregate_of(all);
            size_t k = 0;
            for (int i = 0; i < N; i++) {
                if (mask & (1u << i))
                    expect_leaf(e, k++, 100 + i, messages[i], (size_t)i);
            }
            cr_assert_eq(crew_error_count(e), k, "mask %#x", mask);
            cr_assert_null(crew_error_inner(e, k, NULL));
        }
        crew_future_release(all);
        scn_release_all(in, N);
    }
}

CREW_TEST(error, entries_follow_input_order_whatever_the_order_of_failure)
{
    crew_future *in[4];
    for (int i = 0; i < 4; i++)
        in[i] = crew_test_promise();
    crew_future *all = join(in, 4);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);

    cr_assert_eq(crew_promise_fail(in[3], 13, "d"), 0);
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[2], 12, "c"), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    cr_assert_eq(crew_promise_fail(in[0], 10, "a"), 0);

    const crew_error *e = aggregate_of(all);
    cr_assert_eq(crew_error_count(e), 3);
    expect_leaf(e, 0, 10, "a", 0);
    expect_leaf(e, 1, 12, "c", 2);
    expect_leaf(e, 2, 13, "d", 3);
    crew_future_release(all);
    scn_release_all(in, 4);
}

CREW_TEST(error, the_same_failed_future_at_two_positions_gives_two_entries)
{
    crew_future *bad = crew_test_failed_promise(EACCES, "shared");
    crew_future *ok = succeeded();
    crew_future *in[] = {bad, ok, ok, bad};
    crew_future *all = join(in, 4);
    const crew_error *e = aggregate_of(all);

    cr_assert_eq(crew_error_count(e), 2);
    expect_leaf(e, 0, EACCES, "shared", 0);
    expect_leaf(e, 1, EACCES, "shared", 3);
    crew_future_release(all);
    crew_future_release(bad);
    crew_future_release(ok);
}

CREW_TEST(error, cancelled_inputs_add_no_inner_error)
{
    crew_future *in[] = {cancelled(), crew_test_failed_promise(EBUSY, "busy"),
                         cancelled(), succeeded()};
    crew_future *all = join(in, 4);
    const crew_error *e = aggregate_of(all);
    cr_assert_eq(crew_error_count(e), 1);
    expect_leaf(e, 0, EBUSY, "busy", 1);
    crew_future_release(all);
    scn_release_all(in, 4);
}

CREW_TEST(error, all_cancelled_inputs_give_a_cancelled_join)
{
    crew_future *in[] = {cancelled(), cancelled(), cancelled()};
    crew_future *all = join(in, 3);
    cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(all), ECANCELED);
    const crew_error *e = crew_future_error(all);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), ECANCELED);
    cr_assert_eq(crew_error_count(e), 0);

    crew_error *out = NULL;
    cr_assert_eq(crew_wait_all(in, 3, &out), ECANCELED);
    if (out != NULL)
        cr_assert_eq(crew_error_code(out), ECANCELED);
    crew_error_release(out);
    cr_assert_eq(crew_wait_all(in, 3, NULL), ECANCELED);
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(error, cancelled_and_succeeded_inputs_give_a_cancelled_join)
{
    crew_future *in[] = {succeeded(), cancelled(), succeeded()};
    crew_future *all = join(in, 3);
    cr_assert_eq(crew_future_state(all), CREW_CANCELLED);
    cr_assert_eq(crew_error_code(crew_future_error(all)), ECANCELED);
    cr_assert_eq(crew_wait_all(in, 3, NULL), ECANCELED);
    crew_future_release(all);
    scn_release_all(in, 3);
}

CREW_TEST(error, wait_all_hands_out_the_aggregate)
{
    crew_future *in[] = {succeeded(), crew_test_failed_promise(EIO, "one"),
                         cancelled(),
                         crew_test_failed_promise(ENOENT, "three")};
    crew_error *e = NULL;
    cr_assert_eq(crew_wait_all(in, 4, &e), CREW_EAGGREGATE);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(e), 2);
    expect_leaf(e, 0, EIO, "one", 1);
    expect_leaf(e, 1, ENOENT, "three", 3);
    cr_assert_eq(crew_wait_all(in, 4, NULL), CREW_EAGGREGATE);
    scn_release_all(in, 4);
    /* The reference is the caller's: it outlives the inputs. */
    expect_leaf(e, 1, ENOENT, "three", 3);
    crew_error_release(e);
}

CREW_TEST(error, wait_all_stores_null_when_everything_succeeded)
{
    crew_future *in[] = {succeeded(), succeeded()};
    crew_error *e = (crew_error *)in;
    cr_assert_eq(crew_wait_all(in, 2, &e), 0);
    cr_assert_null(e);
    scn_release_all(in, 2);
}

struct failing_job {
    int code;
    int index;
};

static int
failing_run(crew_task *task, void *arg)
{
    struct failing_job *job = arg;
    if (job->code == 0)
        return 0;
    return crew_task_fail(task, job->code, "task %d failed", job->index);
}

CREW_TEST(error, an_aggregate_holds_the_errors_of_failed_tasks)
{
    crew_pool *pool = crew_test_pool(2);
    enum { N = 8 };
    struct failing_job jobs[N];
    crew_future *in[N];
    for (int i = 0; i < N; i++) {
        jobs[i].code = i % 3 == 1 ? 200 + i : 0;
        jobs[i].index = i;
        cr_assert_eq(crew_submit(pool, failing_run, &jobs[i], &in[i]), 0);
    }
    crew_error *e = NULL;
    cr_assert_eq(crew_wait_all(in, N, &e), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(e), 3);
    expect_leaf(e, 0, 201, "task 1 failed", 1);
    expect_leaf(e, 1, 204, "task 4 failed", 4);
    expect_leaf(e, 2, 207, "task 7 failed", 7);
    crew_error_release(e);
    scn_release_all(in, N);
    crew_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Nesting and flattening                                             */
/* ------------------------------------------------------------------ */

/* inner = when_all(A, ok, B); outer = when_all(C, inner, D). */
struct nest {
    crew_future *leaves[5]; /* A, ok, B, C, D */
    crew_future *inner;
    crew_future *outer;
};

static void
nest_build(struct nest *n)
{
    n->leaves[0] = crew_test_failed_promise(EIO, "A");
    n->leaves[1] = succeeded();
    n->leaves[2] = crew_test_failed_promise(ENOENT, "B");
    n->leaves[3] = crew_test_failed_promise(EPERM, "C");
    n->leaves[4] = crew_test_failed_promise(EEXIST, "D");
    crew_future *inner_in[] = {n->leaves[0], n->leaves[1], n->leaves[2]};
    n->inner = join(inner_in, 3);
    crew_future *outer_in[] = {n->leaves[3], n->inner, n->leaves[4]};
    n->outer = join(outer_in, 3);
}

static void
nest_release(struct nest *n)
{
    crew_future_release(n->outer);
    crew_future_release(n->inner);
    scn_release_all(n->leaves, 5);
}

CREW_TEST(error, a_nested_when_all_keeps_the_nesting)
{
    struct nest n;
    nest_build(&n);
    const crew_error *e = aggregate_of(n.outer);
    cr_assert_eq(crew_error_count(e), 3);
    expect_leaf(e, 0, EPERM, "C", 0);
    expect_leaf(e, 2, EEXIST, "D", 2);

    size_t input = SIZE_MAX;
    const crew_error *mid = crew_error_inner(e, 1, &input);
    cr_assert_not_null(mid);
    cr_assert_eq(input, 1);
    cr_assert_eq(crew_error_code(mid), CREW_EAGGREGATE,
                 "the inner error is not itself an aggregate");
    cr_assert_eq(crew_error_count(mid), 2);
    expect_leaf(mid, 0, EIO, "A", 0);
    expect_leaf(mid, 1, ENOENT, "B", 2);
    nest_release(&n);
}

CREW_TEST(error,
          flatten_lists_the_leaves_depth_first_with_their_innermost_positions)
{
    struct nest n;
    nest_build(&n);
    crew_error *flat = crew_error_flatten(aggregate_of(n.outer));
    cr_assert_not_null(flat);
    cr_assert_eq(crew_error_code(flat), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(flat), 4);
    expect_leaf(flat, 0, EPERM, "C", 0);
    expect_leaf(flat, 1, EIO, "A", 0);
    expect_leaf(flat, 2, ENOENT, "B", 2);
    expect_leaf(flat, 3, EEXIST, "D", 2);
    cr_assert_null(crew_error_inner(flat, 4, NULL));
    crew_error_release(flat);
    nest_release(&n);
}

CREW_TEST(error, flatten_reaches_leaves_three_levels_down)
{
    /* l3 = (ok, y); l2 = (l3, z, ok); l1 = (w, ok, l2, v) */
    crew_future *ok = succeeded();
    crew_future *y = crew_test_failed_promise(11, "y"),
                *z = crew_test_failed_promise(12, "z");
    crew_future *w = crew_test_failed_promise(13, "w"),
                *v = crew_test_failed_promise(14, "v");
    crew_future *l3_in[] = {ok, y};
    crew_future *l3 = join(l3_in, 2);
    crew_future *l2_in[] = {l3, z, ok};
    crew_future *l2 = join(l2_in, 3);
    crew_future *l1_in[] = {w, ok, l2, v};
    crew_future *l1 = join(l1_in, 4);

    const crew_error *e = aggregate_of(l1);
    cr_assert_eq(crew_error_count(e), 3);
    size_t input;
    const crew_error *e2 = crew_error_inner(e, 1, &input);
    cr_assert_eq(input, 2);
    cr_assert_eq(crew_error_count(e2), 2);
    const crew_error *e3 = crew_error_inner(e2, 0, &input);
    cr_assert_eq(input, 0);
    cr_assert_eq(crew_error_code(e3), CREW_EAGGREGATE);
    expect_leaf(e3, 0, 11, "y", 1);

    crew_error *flat = crew_error_flatten(e);
    cr_assert_not_null(flat);
    cr_assert_eq(crew_error_count(flat), 4);
    expect_leaf(flat, 0, 13, "w", 0);
    expect_leaf(flat, 1, 11, "y", 1);
    expect_leaf(flat, 2, 12, "z", 1);
    expect_leaf(flat, 3, 14, "v", 3);
    crew_error_release(flat);

    crew_future *all[] = {l1, l2, l3, ok, y, z, w, v};
    scn_release_all(all, 8);
}

CREW_TEST(error, flatten_of_a_leaf_is_an_aggregate_holding_it_at_position_0)
{
    crew_future *f = crew_test_failed_promise(ETIMEDOUT, "too slow");
    const crew_error *leaf = crew_future_error(f);
    crew_error *flat = crew_error_flatten(leaf);
    cr_assert_not_null(flat);
    cr_assert_neq((const crew_error *)flat, leaf);
    cr_assert_eq(crew_error_code(flat), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(flat), 1);
    expect_leaf(flat, 0, ETIMEDOUT, "too slow", 0);
    crew_future_release(f);
    /* The flattened aggregate holds its own reference to the leaf. */
    expect_leaf(flat, 0, ETIMEDOUT, "too slow", 0);
    crew_error_release(flat);
}

CREW_TEST(error, flatten_of_a_flat_aggregate_keeps_its_entries)
{
    crew_future *bad = crew_test_failed_promise(EIO, "x");
    crew_future *ok = succeeded(),
                *broken = crew_test_failed_promise(EPIPE, "y");
    crew_future *in[] = {ok, bad, broken, bad};
    crew_future *all = join(in, 4);
    const crew_error *e = aggregate_of(all);
    crew_error *flat = crew_error_flatten(e);
    cr_assert_not_null(flat);
    cr_assert_neq((const crew_error *)flat, e, "flatten made no new error");
    cr_assert_eq(crew_error_count(flat), 3);
    expect_leaf(flat, 0, EIO, "x", 1);
    expect_leaf(flat, 1, EPIPE, "y", 2);
    expect_leaf(flat, 2, EIO, "x", 3);
    /* Whatever it holds, it holds on its own. */
    crew_future *mine[] = {all, ok, bad, broken};
    scn_release_all(mine, 4);
    expect_leaf(flat, 2, EIO, "x", 3);
    crew_error_release(flat);
}

/*
 * A tree `depth` aggregates deep: the bottom one is when_all(ok, a leaf
 * with this code and message), so the leaf sits at position 1 and depth
 * `depth`; each aggregate above is a when_all of the one below alone.
 * Returns a reference to the top aggregate, the futures released.
 */
static crew_error *
deep_error(size_t depth, int code, const char *message)
{
    crew_future *bottom[] = {succeeded(),
                             crew_test_failed_promise(code, message)};
    crew_future *top = join(bottom, 2);
    scn_release_all(bottom, 2);
    for (size_t d = 1; d < depth; d++) {
        crew_future *next = join(&top, 1);
        crew_future_release(top);
        top = next;
    }
    crew_error *e = crew_error_retain(aggregate_of(top));
    crew_future_release(top);
    return e;
}

CREW_TEST(error, flatten_of_a_300000_deep_error_uses_bounded_stack)
{
    crew_error *e = deep_error(300000, EIO, "at the bottom");
    crew_error *flat = crew_error_flatten(e);
    cr_assert_not_null(flat);
    cr_assert_eq(crew_error_count(flat), 1);
    expect_leaf(flat, 0, EIO, "at the bottom", 1);
    crew_error_release(flat);
    crew_error_release(e);
}

CREW_TEST(error, flatten_of_a_deep_tree_keeps_the_leaves_in_depth_first_order)
{
    /* Level k (1 at the bottom) is when_all(a_k, level k-1, b_k); level 0
     * is the leaf "bottom". Depth first: a_N .. a_1, bottom, b_1 .. b_N. */
    enum { N = 1000 };
    static crew_future *a[N + 1], *b[N + 1], *level[N + 1];
    char text[32];

    level[0] = crew_test_failed_promise(EIO, "bottom");
    for (int k = 1; k <= N; k++) {
        snprintf(text, sizeof(text), "a%d", k);
        a[k] = crew_test_failed_promise(100, text);
        snprintf(text, sizeof(text), "b%d", k);
        b[k] = crew_test_failed_promise(200, text);
        crew_future *in[] = {a[k], level[k - 1], b[k]};
        level[k] = join(in, 3);
    }
    crew_error *flat = crew_error_flatten(aggregate_of(level[N]));
    cr_assert_not_null(flat);
    cr_assert_eq(crew_error_count(flat), 2 * N + 1);
    for (int k = N; k >= 1; k--) {
        snprintf(text, sizeof(text), "a%d", k);
        expect_leaf(flat, (size_t)(N - k), 100, text, 0);
        snprintf(text, sizeof(text), "b%d", k);
        expect_leaf(flat, (size_t)(N + k), 200, text, 2);
    }
    expect_leaf(flat, N, EIO, "bottom", 1);
    crew_error_release(flat);
    for (int k = N; k >= 1; k--) {
        crew_future *mine[] = {level[k], a[k], b[k]};
        scn_release_all(mine, 3);
    }
    crew_future_release(level[0]);
}

CREW_TEST(error, flatten_returns_null_when_its_stack_cannot_grow)
{
    if (crew_test_fail_alloc == NULL || crew_test_fault_fired == NULL)
        cr_skip_test("crew was built without CREW_TEST_HOOKS");
    /* Deeper than the stack a walk starts with, so that it must grow. */
    crew_error *e = deep_error(1000, EIO, "deep down");
    long k;
    for (k = 0; k < 64; k++) {
        crew_test_fail_alloc(k);
        crew_error *flat = crew_error_flatten(e);
        bool fired = crew_test_fault_fired();
        crew_test_fail_alloc(-1);
        if (!fired) {
            cr_assert_not_null(flat);
            expect_leaf(flat, 0, EIO, "deep down", 1);
            crew_error_release(flat);
            break;
        }
        cr_assert_null(flat, "allocation %ld failed, yet not NULL", k);
    }
    cr_assert_lt(k, 64);
    cr_assert_gt(k, 1, "flatten of a deep tree allocated no stack");
    crew_error_release(e);
}

/* ------------------------------------------------------------------ */
/* Formatting                                                         */
/* ------------------------------------------------------------------ */

/* The whole text of e, malloc'd. */
static char *
format_all(const crew_error *e)
{
    int n = crew_error_format(e, NULL, 0);
    cr_assert_gt(n, 0);
    char *text = malloc((size_t)n + 1);
    cr_assert_not_null(text);
    cr_assert_eq(crew_error_format(e, text, (size_t)n + 1), n);
    cr_assert_eq(strlen(text), (size_t)n);
    return text;
}

/* Leading blanks of the line of text holding needle; -1 if absent. */
static int
indent_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    if (at == NULL)
        return -1;
    const char *line = at;
    while (line > text && line[-1] != '\n')
        line--;
    int n = 0;
    while (line[n] == ' ' || line[n] == '\t')
        n++;
    return n;
}

/*
 * A tree with distinctive positions: inner = when_all of 54 inputs where
 * 17 ("alpha") and 38 ("beta") failed; outer = when_all of 60 inputs where
 * 44 ("gamma") failed and 53 is inner. The numbers occur nowhere else.
 */
struct tree {
    crew_future *ok, *alpha, *beta, *gamma, *inner, *outer;
};

static void
tree_build(struct tree *t)
{
    t->ok = succeeded();
    t->alpha = crew_test_failed_promise(EIO, "alpha went wrong");
    t->beta = crew_test_failed_promise(ENOENT, "beta went wrong");
    t->gamma = crew_test_failed_promise(EPERM, "gamma went wrong");
    crew_future *in[60];
    for (int i = 0; i < 60; i++)
        in[i] = t->ok;
    in[17] = t->alpha;
    in[38] = t->beta;
    t->inner = join(in, 54);
    in[17] = t->ok;
    in[38] = t->ok;
    in[44] = t->gamma;
    in[53] = t->inner;
    t->outer = join(in, 60);
}

static void
tree_release(struct tree *t)
{
    crew_future *all[] = {t->outer, t->inner, t->ok,
                          t->alpha, t->beta,  t->gamma};
    scn_release_all(all, 6);
}

CREW_TEST(error, format_returns_the_length_it_needs_and_writes_the_whole_text)
{
    struct tree t;
    tree_build(&t);
    const crew_error *e = aggregate_of(t.outer);
    char *text = format_all(e);
    int n = (int)strlen(text);

    char big[8192];
    memset(big, '#', sizeof(big));
    cr_assert_lt(n, (int)sizeof(big));
    cr_assert_eq(crew_error_format(e, big, sizeof(big)), n);
    cr_assert_str_eq(big, text);
    cr_assert_eq(big[n + 1], '#', "wrote past the text");
    free(text);
    tree_release(&t);
}

CREW_TEST(error, format_mentions_every_message_and_every_position)
{
    struct tree t;
    tree_build(&t);
    char *text = format_all(aggregate_of(t.outer));
    static const char *const wanted[] = {"alpha went wrong",
                                         "beta went wrong",
                                         "gamma went wrong",
                                         "17",
                                         "38",
                                         "44",
                                         "53"};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        cr_assert_not_null(strstr(text, wanted[i]), "\"%s\" is missing in:\n%s",
                           wanted[i], text);
    cr_assert_not_null(strchr(text, '\n'), "not multi-line:\n%s", text);
    free(text);
    tree_release(&t);
}

CREW_TEST(error, format_indents_nested_errors_deeper)
{
    struct tree t;
    tree_build(&t);
    char *text = format_all(aggregate_of(t.outer));
    int outer_leaf = indent_of(text, "gamma went wrong");
    int inner_leaf = indent_of(text, "alpha went wrong");
    cr_assert_geq(outer_leaf, 0);
    cr_assert_gt(inner_leaf, outer_leaf,
                 "a nested leaf is not indented deeper:\n%s", text);
    cr_assert_eq(indent_of(text, "beta went wrong"), inner_leaf);
    free(text);
    tree_release(&t);
}

CREW_TEST(error, format_truncates_to_a_nul_terminated_prefix)
{
    struct tree t;
    tree_build(&t);
    const crew_error *e = aggregate_of(t.outer);
    char *text = format_all(e);
    int n = (int)strlen(text);
    cr_assert_gt(n, 20);

    static const size_t sizes[] = {1, 2, 10, 20};
    for (size_t k = 0; k < 4; k++) {
        size_t size = sizes[k];
        char buf[64];
        memset(buf, '#', sizeof(buf));
        cr_assert_eq(crew_error_format(e, buf, size), n, "size %zu", size);
        cr_assert_eq(buf[size - 1], '\0', "size %zu: no NUL", size);
        cr_assert_eq(memcmp(buf, text, size - 1), 0, "size %zu", size);
        for (size_t i = size; i < sizeof(buf); i++)
            cr_assert_eq(buf[i], '#', "size %zu: wrote byte %zu", size, i);
    }
    /* One short of the whole text loses exactly its last character. */
    char *shy = malloc((size_t)n);
    cr_assert_eq(crew_error_format(e, shy, (size_t)n), n);
    cr_assert_eq(strlen(shy), (size_t)n - 1);
    cr_assert_eq(memcmp(shy, text, (size_t)n - 1), 0);
    free(shy);
    free(text);
    tree_release(&t);
}

CREW_TEST(error, format_with_size_0_writes_nothing)
{
    crew_future *f = crew_test_failed_promise(EIO, "leaf text");
    const crew_error *e = crew_future_error(f);
    int n = crew_error_format(e, NULL, 0);
    cr_assert_geq(n, (int)strlen("leaf text"));
    char buf[16];
    memset(buf, '#', sizeof(buf));
    cr_assert_eq(crew_error_format(e, buf, 0), n);
    for (size_t i = 0; i < sizeof(buf); i++)
        cr_assert_eq(buf[i], '#', "wrote byte %zu", i);
    crew_future_release(f);
}

CREW_TEST(error, format_of_a_null_error_returns_minus_1_and_writes_nothing)
{
    char buf[16];
    memset(buf, '#', sizeof(buf));
    cr_assert_eq(crew_error_format(NULL, buf, sizeof(buf)), -1);
    for (size_t i = 0; i < sizeof(buf); i++)
        cr_assert_eq(buf[i], '#', "wrote byte %zu", i);
    cr_assert_eq(crew_error_format(NULL, NULL, 0), -1);
}

CREW_TEST(error, format_of_a_leaf_mentions_its_message)
{
    crew_future *f = crew_test_failed_promise(ENOENT, "the missing file");
    char *text = format_all(crew_future_error(f));
    cr_assert_not_null(strstr(text, "the missing file"), "%s", text);
    free(text);
    crew_future_release(f);
}

CREW_TEST(error, format_writes_a_long_message_whole)
{
    enum { LEN = 100 * 1024 };
    char *big = scn_letters(LEN);
    cr_assert_not_null(big);
    crew_future *f = crew_test_failed_promise(E2BIG, big);
    crew_future *in[] = {f};
    crew_future *all = join(in, 1);

    char *text = format_all(aggregate_of(all));
    cr_assert_gt(strlen(text), (size_t)LEN);
    cr_assert_not_null(strstr(text, big), "the message was cut");
    free(text);
    free(big);
    crew_future_release(all);
    crew_future_release(f);
}

CREW_TEST(error, format_indents_every_line_of_a_multiline_message)
{
    /* outer = when_all(C, inner); inner = when_all(ok, M), where M's
     * message has four lines, the third empty. */
    static const char message[] = "first line\nsecond line\n\nfourth line";
    crew_future *c = crew_test_failed_promise(EPERM, "C");
    crew_future *ok = succeeded();
    crew_future *m = crew_test_failed_promise(EIO, message);
    crew_future *inner_in[] = {ok, m};
    crew_future *inner = join(inner_in, 2);
    crew_future *outer_in[] = {c, inner};
    crew_future *outer = join(outer_in, 2);
    char expect[512];

    char *text = format_all(aggregate_of(outer));
    snprintf(expect, sizeof(expect),
             "2 of 2 inputs failed\n"
             "  [0] error %d (%s): C\n"
             "  [1] 1 of 2 inputs failed\n"
             "    [1] error %d (%s): first line\n"
             "    second line\n"
             "\n"
             "    fourth line\n",
             EPERM, crew_strerror(EPERM), EIO, crew_strerror(EIO));
    cr_assert_str_eq(text, expect);
    free(text);

    /* Alone, the leaf is the root: its lines are not indented. */
    text = format_all(crew_future_error(m));
    snprintf(expect, sizeof(expect), "error %d (%s): %s\n", EIO,
             crew_strerror(EIO), message);
    cr_assert_str_eq(text, expect);
    free(text);

    crew_future *mine[] = {outer, inner, c, ok, m};
    scn_release_all(mine, 5);
}

/* Checks that text has depth + 1 lines, line d indented 2 * min(d, 32)
 * blanks, and every line but the first starting with a position. */
static void
expect_capped_indentation(const char *text, size_t depth)
{
    const char *line = text;
    size_t d;

    for (d = 0; *line != '\0'; d++) {
        size_t want = 2 * (d < 32 ? d : 32);
        size_t blanks = strspn(line, " ");
        cr_assert_eq(blanks, want, "line %zu: %zu blanks, not %zu", d, blanks,
                     want);
        if (d > 0)
            cr_assert_eq(line[blanks], '[', "line %zu has no position", d);
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end, "line %zu is not ended", d);
        line = end + 1;
    }
    cr_assert_eq(d, depth + 1, "%zu lines, not %zu", d, depth + 1);
}

CREW_TEST(error, format_stops_indenting_past_depth_32)
{
    crew_error *e = deep_error(40, EIO, "deep down");
    char *text = format_all(e);
    expect_capped_indentation(text, 40);
    cr_assert_not_null(strstr(text, "): deep down\n"), "%s", text);
    free(text);
    crew_error_release(e);

    /* Linear: a 10,000-deep tree takes at most 64 blanks a line. */
    enum { DEEP = 10000 };
    e = deep_error(DEEP, EIO, "deep down");
    int n = crew_error_format(e, NULL, 0);
    cr_assert_gt(n, 0);
    cr_assert_lt(n, (DEEP + 1) * (64 + 80), "%d bytes for %d levels", n, DEEP);
    crew_error_release(e);
}

CREW_TEST(error, format_of_a_300000_deep_error_uses_bounded_stack)
{
    enum { DEPTH = 300000 };
    crew_error *e = deep_error(DEPTH, EIO, "at the bottom");
    char *text = format_all(e);
    expect_capped_indentation(text, DEPTH);
    size_t n = strlen(text);
    static const char last[] = "): at the bottom\n";
    cr_assert_gt(n, sizeof(last));
    cr_assert_str_eq(text + n - (sizeof(last) - 1), last);
    free(text);
    crew_error_release(e);
}

CREW_TEST(error, format_returns_minus_one_when_its_stack_cannot_grow)
{
    if (crew_test_fail_alloc == NULL || crew_test_fault_fired == NULL)
        cr_skip_test("crew was built without CREW_TEST_HOOKS");
    crew_error *e = deep_error(1000, EIO, "deep down");
    char buf[64];
    memset(buf, '#', sizeof(buf));
    crew_test_fail_alloc(0);
    int n = crew_error_format(e, buf, sizeof(buf));
    bool fired = crew_test_fault_fired();
    crew_test_fail_alloc(-1);
    cr_assert(fired, "format of a deep tree allocated no stack");
    cr_assert_eq(n, -1);
    cr_assert_eq(buf[0], '\0', "not an empty string");
    /* With memory, the same call goes through. */
    cr_assert_gt(crew_error_format(e, buf, sizeof(buf)), (int)sizeof(buf));
    cr_assert_eq(strlen(buf), sizeof(buf) - 1);
    crew_error_release(e);
}

/* The length of the text of an aggregate of n entries, the i-th the leaf
 * (code, message) at position i. */
static size_t
flat_text_length(size_t n, int code, size_t message_length)
{
    size_t length =
        (size_t)snprintf(NULL, 0, "%zu of %zu inputs failed\n", n, n);
    for (size_t i = 0; i < n; i++)
        length += (size_t)snprintf(NULL, 0, "  [%zu] error %d (%s): \n", i,
                                   code, crew_strerror(code)) +
                  message_length;
    return length;
}

CREW_TEST(error, format_of_a_tree_longer_than_INT_MAX_returns_minus_one)
{
    /* One 1 MiB message, shared by every entry of an aggregate. */
    enum { MESSAGE = 1 << 20, UNDER = 2000, OVER = 2100 };
    char *big = scn_letters(MESSAGE);
    cr_assert_not_null(big);
    crew_future *f = crew_test_failed_promise(E2BIG, big);
    free(big);
    static crew_future *in[OVER];
    for (size_t i = 0; i < OVER; i++)
        in[i] = f;

    /* Just under INT_MAX: the exact length. */
    size_t length = flat_text_length(UNDER, E2BIG, MESSAGE);
    cr_assert_lt(length, (size_t)INT_MAX);
    crew_future *under = join(in, UNDER);
    cr_assert_eq(crew_error_format(aggregate_of(under), NULL, 0), (int)length);
    crew_future_release(under);

    cr_assert_gt(flat_text_length(OVER, E2BIG, MESSAGE), (size_t)INT_MAX);
    crew_future *over = join(in, OVER);
    const crew_error *e = aggregate_of(over);
    cr_assert_eq(crew_error_format(e, NULL, 0), -1);
    char buf[64];
    memset(buf, '#', sizeof(buf));
    cr_assert_eq(crew_error_format(e, buf, sizeof(buf)), -1);
    cr_assert_eq(buf[0], '\0', "not an empty string");
    crew_future_release(over);
    crew_future_release(f);
}

/* ------------------------------------------------------------------ */
/* References                                                         */
/* ------------------------------------------------------------------ */

CREW_TEST(error, retain_and_release_accept_null)
{
    cr_assert_null(crew_error_retain(NULL));
    crew_error_release(NULL);
}

CREW_TEST(error, a_retained_error_outlives_its_future)
{
    crew_future *f = crew_test_failed_promise(EILSEQ, "kept alive");
    crew_error *e = crew_error_retain(crew_future_error(f));
    cr_assert_eq((const crew_error *)e, crew_future_error(f));
    crew_future_release(f);
    cr_assert_eq(crew_error_code(e), EILSEQ);
    cr_assert_str_eq(crew_error_message(e), "kept alive");
    cr_assert_eq(crew_error_retain(e), e);
    crew_error_release(e);
    cr_assert_str_eq(crew_error_message(e), "kept alive");
    crew_error_release(e);
}

CREW_TEST(error, a_retained_aggregate_keeps_its_inner_errors)
{
    struct nest n;
    nest_build(&n);
    crew_error *e = crew_error_retain(aggregate_of(n.outer));
    nest_release(&n);

    cr_assert_eq(crew_error_count(e), 3);
    expect_leaf(e, 0, EPERM, "C", 0);
    const crew_error *mid = crew_error_inner(e, 1, NULL);
    expect_leaf(mid, 1, ENOENT, "B", 2);
    char *text = format_all(e);
    free(text);
    crew_error_release(e);
}

/* ------------------------------------------------------------------ */
/* crew_strerror and crew_version                                     */
/* ------------------------------------------------------------------ */

CREW_TEST(error, strerror_describes_each_code_distinctly)
{
    static const int codes[] = {CREW_EAGGREGATE, ESHUTDOWN, ENOENT, ECANCELED,
                                ETIMEDOUT,       EALREADY,  EINVAL, ENOMEM,
                                EAGAIN,          EDEADLK,   EIO};
    enum { N = sizeof(codes) / sizeof(codes[0]) };
    const char *unknown = crew_strerror(0x7ffffff0);
    cr_assert_not_null(unknown);
    const char *text[N];
    for (size_t i = 0; i < N; i++) {
        text[i] = crew_strerror(codes[i]);
        cr_assert_not_null(text[i], "code %d", codes[i]);
        cr_assert_gt(strlen(text[i]), 0, "code %d", codes[i]);
        cr_assert_str_neq(text[i], unknown, "code %d is unknown", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(text[i], text[j], "codes %d and %d: \"%s\"",
                              codes[i], codes[j], text[i]);
    }
}

CREW_TEST(error, strerror_of_an_unknown_code_is_not_null)
{
    static const int codes[] = {-1, -4711, 0x7ffffff0, INT32_MIN,
                                CREW_EAGGREGATE + 1};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        cr_assert_not_null(crew_strerror(codes[i]), "code %d", codes[i]);
    for (int code = 0; code < 200; code++)
        cr_assert_not_null(crew_strerror(code), "code %d", code);
}

CREW_TEST(error, version_matches_the_version_macros)
{
    char expect[64];
    snprintf(expect, sizeof(expect), "%d.%d.%d", CREW_VERSION_MAJOR,
             CREW_VERSION_MINOR, CREW_VERSION_PATCH);
    cr_assert_not_null(crew_version());
    cr_assert_str_eq(crew_version(), expect);
}
