/*
 * Submitting work: crew_submit() and crew_submit_ex(), their bad input,
 * fire and forget, and the rule that arg_free runs exactly once, after the
 * function or on cancellation, and before the future resolves.
 *
 * Workers are held on gates the test opens; nothing sleeps. Tasks, callbacks
 * and helper threads only record what they see: the test asserts once it
 * has synchronised with them.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

TestSuite(submit, CREW_SUITE);

CREW_TEST(submit, to_a_null_pool_is_einval_and_runs_nothing)
{
    static struct scn_counts c = SCN_COUNTS_INIT;
    static char sentinel;
    crew_future *f = (crew_future *)(void *)&sentinel;

    cr_assert_eq(crew_submit(NULL, scn_count_task, &c, &f), EINVAL);
    cr_assert_null(f);
    f = (crew_future *)(void *)&sentinel;
    cr_assert_eq(
        crew_submit_ex(NULL, scn_count_task, &c, scn_count_free, 0, &f),
        EINVAL);
    cr_assert_null(f);
    cr_assert_eq(
        crew_submit_ex(NULL, scn_count_task, &c, scn_count_free, 0, NULL),
        EINVAL);
    cr_assert_eq(atomic_load(&c.ran), 0);
    cr_assert_eq(atomic_load(&c.freed), 0);
}

CREW_TEST(submit, of_a_null_function_is_einval_and_frees_nothing)
{
    static struct scn_counts c = SCN_COUNTS_INIT;
    static char sentinel;
    crew_future *f = (crew_future *)(void *)&sentinel;
    crew_pool *p = crew_test_pool(1);

    cr_assert_eq(crew_submit(p, NULL, &c, &f), EINVAL);
    cr_assert_null(f);
    f = (crew_future *)(void *)&sentinel;
    cr_assert_eq(crew_submit_ex(p, NULL, &c, scn_count_free, 0, &f), EINVAL);
    cr_assert_null(f);
    cr_assert_eq(crew_submit_ex(p, NULL, &c, scn_count_free, 0, NULL), EINVAL);
    /* Whatever was queued has run once the drain is over. */
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&c.freed), 0);
}

CREW_TEST(submit, with_unknown_flag_bits_is_einval_and_runs_nothing)
{
    static const unsigned bad[] = {0x2u, 0x80u, 0x80000000u, ~CREW_NONBLOCKING,
                                   ~0u};
    static struct scn_counts c = SCN_COUNTS_INIT;
    static char sentinel;
    crew_pool *p = crew_test_pool(1);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        crew_future *f = (crew_future *)(void *)&sentinel;

        cr_assert_eq(
            crew_submit_ex(p, scn_count_task, &c, scn_count_free, bad[i], &f),
            EINVAL, "flags %#x", bad[i]);
        cr_assert_null(f);
        cr_assert_eq(
            crew_submit_ex(p, scn_count_task, &c, scn_count_free, bad[i], NULL),
            EINVAL, "flags %#x", bad[i]);
    }
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&c.ran), 0);
    cr_assert_eq(atomic_load(&c.freed), 0);
}

CREW_TEST(submit, with_a_null_future_still_runs_the_task)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts c = SCN_COUNTS_INIT;
    crew_pool *p = crew_test_pool(1);
    crew_future *held;

    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(crew_submit(p, scn_count_task, &c, NULL), 0);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(
            crew_submit_ex(p, scn_count_task, &c, scn_count_free, 0, NULL), 0);
    cr_assert_eq(atomic_load(&c.ran), 0, "a task ran past a held worker");
    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&c.done, 10),
              "a fire-and-forget task never ran");
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&c.ran), 10);
    cr_assert_eq(atomic_load(&c.freed), 5);
}

/* When a task's function ended and its argument was freed, in one order. */
static atomic_uint sequence;

struct order {
    int outcome;
    atomic_uint fn_calls;
    atomic_uint fn_end;
    atomic_uint frees;
    atomic_uint freed_at;
    void *freed_arg;
};

static int
order_task(crew_task *task, void *arg)
{
    struct order *o = arg;

    (void)task;
    atomic_fetch_add(&o->fn_calls, 1);
    atomic_store(&o->fn_end, atomic_fetch_add(&sequence, 1) + 1);
    return o->outcome;
}

static void
order_free(void *arg)
{
    struct order *o = arg;

    o->freed_arg = arg;
    atomic_store(&o->freed_at, atomic_fetch_add(&sequence, 1) + 1);
    atomic_fetch_add(&o->frees, 1);
}

CREW_TEST(submit, arg_free_runs_exactly_once_after_the_function_returns)
{
    /* Succeeds, fails, and returns ECANCELED unasked (a failure). */
    static struct order o[3] = {
        {.outcome = 0}, {.outcome = EIO}, {.outcome = ECANCELED}};
    static const crew_state expected[3] = {CREW_SUCCEEDED, CREW_FAILED,
                                           CREW_FAILED};
    crew_pool *p = crew_test_pool(1);
    crew_future *f[3];

    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(crew_submit_ex(p, order_task, &o[i], order_free, 0, &f[i]),
                     0);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(crew_future_wait(f[i]), o[i].outcome);
        cr_assert_eq(crew_future_state(f[i]), expected[i]);
        cr_assert_eq(atomic_load(&o[i].frees), 1, "task %zu", i);
        crew_future_release(f[i]);
    }
    crew_pool_destroy(p);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(atomic_load(&o[i].fn_calls), 1, "task %zu", i);
        cr_assert_eq(atomic_load(&o[i].frees), 1, "task %zu", i);
        cr_assert_eq(o[i].freed_arg, (void *)&o[i]);
        cr_assert_gt(atomic_load(&o[i].freed_at), atomic_load(&o[i].fn_end),
                     "task %zu: arg_free ran before its function returned", i);
    }
}

/* What each callback saw of its task's arg_free when it ran. */
static struct {
    struct order order[100];
    atomic_uint frees_seen[100];
    atomic_uint calls[100];
} seen;

static void
see_frees(crew_future *future, void *user)
{
    size_t i = (size_t)(uintptr_t)user;

    (void)future;
    atomic_store(&seen.frees_seen[i], atomic_load(&seen.order[i].frees));
    atomic_fetch_add(&seen.calls[i], 1);
}

CREW_TEST(submit, arg_free_has_run_by_the_time_the_future_resolves)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    crew_pool_options o = {.threads = 2};
    crew_future *held[2], *f[100];
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held[0]), 0,
                 "the holding task never ran");
    cr_assert_eq(scn_hold_worker(p, &h, 2, &held[1]), 0,
                 "the holding task never ran");
    for (size_t i = 0; i < 100; i++) {
        seen.order[i].outcome = i % 2 == 0 ? 0 : EIO;
        cr_assert_eq(
            crew_submit_ex(p, order_task, &seen.order[i], order_free, 0, &f[i]),
            0);
        cr_assert_eq(
            crew_future_on_complete(f[i], see_frees, (void *)(uintptr_t)i), 0);
    }
    scn_hold_open(&h);
    for (size_t i = 0; i < 100; i++) {
        crew_future_wait(f[i]);
        cr_assert_eq(atomic_load(&seen.order[i].frees), 1,
                     "task %zu resolved before its arg_free ran", i);
    }
    cr_assert_eq(scn_wait_and_release(held[0]), 0);
    cr_assert_eq(scn_wait_and_release(held[1]), 0);
    crew_pool_destroy(p);
    for (size_t i = 0; i < 100; i++) {
        cr_assert_eq(atomic_load(&seen.calls[i]), 1);
        cr_assert_eq(atomic_load(&seen.frees_seen[i]), 1,
                     "a callback of task %zu ran before its arg_free", i);
        crew_future_release(f[i]);
    }
}

CREW_TEST(submit, arg_free_runs_once_when_a_queued_task_is_cancelled)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    crew_pool *p = crew_test_pool(1);
    crew_future *held, *f;

    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    seen.order[0].outcome = 0;
    cr_assert_eq(
        crew_submit_ex(p, order_task, &seen.order[0], order_free, 0, &f), 0);
    cr_assert_eq(crew_future_on_complete(f, see_frees, (void *)(uintptr_t)0),
                 0);
    cr_assert_eq(crew_future_cancel(f), 0);
    cr_assert_eq(atomic_load(&seen.order[0].frees), 1,
                 "arg_free had not run when cancel returned");
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&seen.calls[0]), 1);
    cr_assert_eq(atomic_load(&seen.frees_seen[0]), 1,
                 "the callback ran before arg_free");
    cr_assert_eq(crew_future_cancel(f), EALREADY);

    scn_hold_open(&h);
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&seen.order[0].fn_calls), 0);
    cr_assert_eq(atomic_load(&seen.order[0].frees), 1);
    cr_assert_eq(seen.order[0].freed_arg, (void *)&seen.order[0]);
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    crew_future_release(f);
}

#define MANY       10000u
#define SUBMITTERS 4u

static struct {
    atomic_uint runs[MANY];
    atomic_uint frees[MANY];
    crew_future *futures[MANY];
    int errs[SUBMITTERS];
    crew_pool *pool;
} many;

static int
slot_task(crew_task *task, void *arg)
{
    (void)task;
    atomic_fetch_add(&many.runs[(atomic_uint *)arg - many.runs], 1);
    return 0;
}

static void
slot_free(void *arg)
{
    atomic_fetch_add(&many.frees[(atomic_uint *)arg - many.runs], 1);
}

static void *
submit_share(void *arg)
{
    size_t k = (size_t)(uintptr_t)arg;

    for (size_t i = k; i < MANY; i += SUBMITTERS) {
        int err = crew_submit_ex(many.pool, slot_task, &many.runs[i], slot_free,
                                 0, &many.futures[i]);
        if (err != 0) {
            many.errs[k] = err;
            break;
        }
    }
    return NULL;
}

CREW_TEST(submit, ten_thousand_tasks_from_four_threads_run_once_each)
{
    pthread_t threads[SUBMITTERS];

    cr_assert_eq(crew_pool_create(&many.pool, NULL), 0);
    for (size_t k = 0; k < SUBMITTERS; k++)
        cr_assert_eq(pthread_create(&threads[k], NULL, submit_share,
                                    (void *)(uintptr_t)k),
                     0);
    for (size_t k = 0; k < SUBMITTERS; k++) {
        pthread_join(threads[k], NULL);
        cr_assert_eq(many.errs[k], 0);
    }
    for (size_t i = 0; i < MANY; i++) {
        cr_assert_eq(crew_future_wait(many.futures[i]), 0);
        cr_assert_eq(atomic_load(&many.runs[i]), 1, "task %zu", i);
        cr_assert_eq(atomic_load(&many.frees[i]), 1, "task %zu", i);
        crew_future_release(many.futures[i]);
        many.futures[i] = NULL;
    }
    crew_pool_destroy(many.pool);
    many.pool = NULL;
    for (size_t i = 0; i < MANY; i++) {
        cr_assert_eq(atomic_load(&many.runs[i]), 1, "task %zu", i);
        cr_assert_eq(atomic_load(&many.frees[i]), 1, "task %zu", i);
    }
}

CREW_TEST(submit, releasing_the_future_never_cancels_the_task)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts c = SCN_COUNTS_INIT;
    crew_pool *p = crew_test_pool(1);
    crew_future *held, *f;

    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &c, scn_count_free, 0, &f),
                 0);
    crew_future_release(f);
    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&c.done, 1), "the released task never ran");
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&c.ran), 1);
    cr_assert_eq(atomic_load(&c.freed), 1);
}

static void
free_string(void *p)
{
    free(p);
}

static int
answer_task(crew_task *task, void *arg)
{
    char *s = malloc(strlen(arg) + 1);

    if (s == NULL)
        return ENOMEM;
    strcpy(s, arg);
    crew_task_return(task, s, free_string);
    return 0;
}

static int
refuse_task(crew_task *task, void *arg)
{
    return crew_task_fail(task, EPERM, "refused %s", (const char *)arg);
}

CREW_TEST(submit, hands_back_a_future_with_the_task_outcome)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *ok, *no;

    cr_assert_eq(crew_submit(p, answer_task, "forty-two", &ok), 0);
    cr_assert_not_null(ok);
    cr_assert_eq(crew_submit(p, refuse_task, "politely", &no), 0);
    cr_assert_not_null(no);
    cr_assert_eq(crew_future_wait(ok), 0);
    cr_assert_eq(crew_future_state(ok), CREW_SUCCEEDED);
    cr_assert_str_eq((const char *)crew_future_result(ok), "forty-two");
    cr_assert_null(crew_future_error(ok));
    cr_assert_eq(crew_future_wait(no), EPERM);
    cr_assert_eq(crew_future_state(no), CREW_FAILED);
    cr_assert_null(crew_future_result(no));
    cr_assert_str_eq(crew_error_message(crew_future_error(no)),
                     "refused politely");
    crew_future_release(ok);
    crew_future_release(no);
    crew_pool_destroy(p);
}

static struct {
    struct scn_counts child;
    int err;
    crew_future *future;
} nested = {SCN_COUNTS_INIT, -1, NULL};

static int
submit_child_task(crew_task *task, void *arg)
{
    (void)arg;
    nested.err =
        crew_submit_ex(crew_task_pool(task), scn_count_task, &nested.child,
                       scn_count_free, 0, &nested.future);
    return nested.err;
}

CREW_TEST(submit, a_task_may_submit_to_its_own_pool)
{
    crew_pool *p = crew_test_pool(1);
    crew_future *f;

    cr_assert_eq(crew_submit(p, submit_child_task, NULL, &f), 0);
    cr_assert_eq(scn_wait_and_release(f), 0);
    cr_assert_eq(nested.err, 0);
    cr_assert_eq(scn_wait_and_release(nested.future), 0);
    nested.future = NULL;
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&nested.child.ran), 1);
    cr_assert_eq(atomic_load(&nested.child.freed), 1);
}

/* The parent queues every child on its own worker's deque before waiting:
 * on a one-thread pool nothing runs them meanwhile, so the deque must grow
 * far past its first capacity and still hand back each child once. */
#define CHILDREN 10000

struct fan {
    atomic_int runs[CHILDREN];
    crew_future *children[CHILDREN];
};

static int
fan_out_then_wait(crew_task *task, void *arg)
{
    struct fan *fan = arg;
    int err = 0;

    for (size_t i = 0; i < CHILDREN && err == 0; i++)
        err = crew_submit(crew_task_pool(task), scn_bump_task, &fan->runs[i],
                          &fan->children[i]);
    if (err != 0)
        return err;
    for (size_t i = 0; i < CHILDREN; i++) {
        if (atomic_load(&fan->runs[i]) != 0)
            return crew_task_fail(task, EPROTO, "child %zu ran early", i);
    }
    return crew_wait_all(fan->children, CHILDREN, NULL);
}

CREW_TEST(submit, a_task_queues_ten_thousand_children_on_its_own_worker)
{
    crew_pool_options options = {.threads = 1};
    crew_pool *pool;
    crew_future *parent;
    struct fan *fan = calloc(1, sizeof(*fan));

    cr_assert_not_null(fan);
    cr_assert_eq(crew_pool_create(&pool, &options), 0);
    cr_assert_eq(crew_submit(pool, fan_out_then_wait, fan, &parent), 0);
    cr_assert_eq(crew_future_wait(parent), 0, "%s",
                 crew_error_message(crew_future_error(parent)));
    for (size_t i = 0; i < CHILDREN; i++) {
        cr_assert_eq(atomic_load(&fan->runs[i]), 1, "child %zu ran %d times", i,
                     atomic_load(&fan->runs[i]));
        crew_future_release(fan->children[i]);
    }
    crew_future_release(parent);
    crew_pool_destroy(pool);
    free(fan);
}

static int
nothing(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

static void *
submit_once(void *pool)
{
    cr_assert_eq(crew_submit(pool, nothing, NULL, NULL), 0);
    return NULL;
}

/*
 * Fire-and-forget tasks are freed on the worker, whose full cache hands
 * its blocks to the allocator's depot; a thread that only submits takes
 * them from there. When it exits, what it kept must go: valgrind, which
 * CI runs this test under, finds them lost otherwise (a thread that
 * never freed a block had not registered its cache for draining).
 */
CREW_TEST(submit, a_thread_that_only_submits_keeps_no_blocks_past_its_exit)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *last = NULL;
    pthread_t thread;

    for (int i = 0; i < 64 * 8; i++)
        cr_assert_eq(crew_submit(pool, nothing, NULL, NULL), 0);
    /* From outside, oldest first: once the last has run, all have. */
    cr_assert_eq(crew_submit(pool, nothing, NULL, &last), 0);
    cr_assert_eq(crew_future_wait(last), 0);
    crew_future_release(last);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_create(&thread, NULL, submit_once, pool), 0);
        cr_assert_eq(pthread_join(thread, NULL), 0);
    }
    crew_pool_destroy(pool);
}
