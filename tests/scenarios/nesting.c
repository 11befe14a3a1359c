/*
 * Waiting inside tasks: a fixed pool must finish work whose tasks wait on
 * tasks they submitted, however deep, because a waiting worker helps.
 *
 * - A chain: each link submits the next and waits on it, on a single
 *   worker with a large stack (RELIABILITY.md: ASan frames are large, and
 *   TSan crashes on very deep nesting, so the depth shrinks under TSan).
 * - fib(20), each call submitting both children and waiting on them, on
 *   one and on two workers.
 * - crew_wait_all, crew_wait_any, crew_future_wait_for and a when_all
 *   future waited on from inside tasks, on one and two workers.
 *
 * A hang is the failure these look for; the front ends' watchdogs turn it
 * into a named one. Values travel as integers cast to pointers, offset by
 * one so that no result is NULL.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AS_VALUE(n) ((void *)(uintptr_t)((n) + 1))
#define AS_COUNT(p) ((size_t)(uintptr_t)(p)-1)

/* ------------------------------------------------------------------ */
/* nesting_deep_chain                                                  */
/* ------------------------------------------------------------------ */

struct chain {
    atomic_size_t ran;
};

struct link {
    struct chain *chain;
    size_t depth;
};

static int
chain_run(crew_task *task, void *arg)
{
    struct link *link = arg;
    struct link *next;
    crew_future *f;
    int err;
    bool ok;

    atomic_fetch_add(&link->chain->ran, 1);
    if (link->depth > 0) {
        next = malloc(sizeof(*next));
        if (next == NULL)
            return crew_task_fail(task, ENOMEM, "out of memory");
        next->chain = link->chain;
        next->depth = link->depth - 1;
        err = scn_submit_ex(crew_task_pool(task), chain_run, next, free, 0, &f);
        if (err != 0) {
            free(next);
            return crew_task_fail(task, err, "submit at depth %zu",
                                  link->depth);
        }
        err = crew_future_wait(f);
        ok = err == 0 && crew_future_result(f) == AS_VALUE(link->depth - 1);
        crew_future_release(f);
        if (!ok)
            return crew_task_fail(task, err != 0 ? err : EIO,
                                  "link %zu: the next link failed",
                                  link->depth);
    }
    crew_task_return(task, AS_VALUE(link->depth), NULL);
    return 0;
}

const char *
crew_scenario_nesting_deep_chain(void)
{
    /* Not scaled by CREW_STRESS: the depth is bounded by the stack. */
    size_t depth = CREW_SCENARIO_TSAN ? 500 : 2000;
    size_t rounds = crew_scenario_scale(2, 1);
    crew_pool_options options = {.threads = 1, .stack_size = (size_t)64 << 20};
    struct scn_verdict v = {NULL};
    crew_pool *pool;
    int err;

    err = crew_pool_create(&pool, &options);
    if (err != 0)
        return "crew_pool_create with a 64 MiB stack failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct chain chain;
        struct link *head = malloc(sizeof(*head));
        crew_future *f;

        if (!SCN_CHECK(&v, head != NULL, "out of memory"))
            break;
        atomic_init(&chain.ran, 0);
        head->chain = &chain;
        head->depth = depth;
        err = scn_submit_ex(pool, chain_run, head, free, 0, &f);
        if (!SCN_CHECK(&v, err == 0, "crew_submit_ex failed")) {
            free(head);
            break;
        }
        err = crew_future_wait(f);
        SCN_CHECK(&v, err == 0, "a chain of waits on one worker failed");
        SCN_CHECK(&v, crew_future_result(f) == AS_VALUE(depth),
                  "a chain's head has the wrong result");
        SCN_CHECK(&v, atomic_load(&chain.ran) == depth + 1,
                  "a chain did not run each link exactly once");
        crew_future_release(f);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* nesting_fib_*                                                       */
/* ------------------------------------------------------------------ */

struct fib {
    atomic_size_t calls;
};

struct fib_arg {
    struct fib *fib;
    unsigned n;
};

static int fib_run(crew_task *task, void *arg);

static int
fib_spawn(crew_task *task, struct fib *fib, unsigned n, crew_future **f)
{
    struct fib_arg *arg = malloc(sizeof(*arg));
    int err;

    *f = NULL;
    if (arg == NULL)
        return ENOMEM;
    arg->fib = fib;
    arg->n = n;
    err = scn_submit_ex(crew_task_pool(task), fib_run, arg, free, 0, f);
    if (err != 0)
        free(arg);
    return err;
}

static int
fib_run(crew_task *task, void *arg)
{
    struct fib_arg *a = arg;
    crew_future *kids[2];
    size_t sum;
    int err;

    atomic_fetch_add(&a->fib->calls, 1);
    if (a->n < 2) {
        crew_task_return(task, AS_VALUE(a->n), NULL);
        return 0;
    }
    err = fib_spawn(task, a->fib, a->n - 1, &kids[0]);
    if (err != 0)
        return crew_task_fail(task, err, "fib(%u): submit", a->n - 1);
    err = fib_spawn(task, a->fib, a->n - 2, &kids[1]);
    if (err != 0) {
        crew_future_wait(kids[0]);
        crew_future_release(kids[0]);
        return crew_task_fail(task, err, "fib(%u): submit", a->n - 2);
    }
    /* Both ways of waiting, alternating with the depth. */
    if (a->n % 2 == 0) {
        err = crew_wait_all(kids, 2, NULL);
    } else {
        err = crew_future_wait(kids[0]);
        if (crew_future_wait(kids[1]) != 0 && err == 0)
            err = EIO;
    }
    sum = err == 0 ? AS_COUNT(crew_future_result(kids[0])) +
                         AS_COUNT(crew_future_result(kids[1]))
                   : 0;
    crew_future_release(kids[0]);
    crew_future_release(kids[1]);
    if (err != 0)
        return crew_task_fail(task, EIO, "fib(%u): a child failed", a->n);
    crew_task_return(task, AS_VALUE(sum), NULL);
    return 0;
}

static const char *
fib_scenario(unsigned threads)
{
    const unsigned n = 20;
    const size_t expect = 6765; /* fib(20) */
    const size_t calls = 21891; /* 2 fib(21) - 1 */
    size_t rounds = crew_scenario_scale(3, 2);
    crew_pool_options options = {.threads = threads};
    struct scn_verdict v = {NULL};
    crew_pool *pool;
    int err;

    err = crew_pool_create(&pool, &options);
    if (err != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct fib fib;
        struct fib_arg *arg = malloc(sizeof(*arg));
        crew_future *f;

        if (!SCN_CHECK(&v, arg != NULL, "out of memory"))
            break;
        atomic_init(&fib.calls, 0);
        arg->fib = &fib;
        arg->n = n;
        err = scn_submit_ex(pool, fib_run, arg, free, 0, &f);
        if (!SCN_CHECK(&v, err == 0, "crew_submit_ex failed")) {
            free(arg);
            break;
        }
        err = crew_future_wait(f);
        SCN_CHECK(&v, err == 0, "fib(20) with nested waits failed");
        SCN_CHECK(&v, crew_future_result(f) == AS_VALUE(expect),
                  "fib(20) computed the wrong value");
        SCN_CHECK(&v, atomic_load(&fib.calls) == calls,
                  "fib(20) did not run each call exactly once");
        crew_future_release(f);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}

const char *
crew_scenario_nesting_fib_one_thread(void)
{
    return fib_scenario(1);
}

const char *
crew_scenario_nesting_fib_two_threads(void)
{
    return fib_scenario(2);
}

/* ------------------------------------------------------------------ */
/* nesting_waits_on_workers                                            */
/* ------------------------------------------------------------------ */

#define WW_KIDS 4

struct ww {
    crew_future *never; /* a promise left pending while the outer task runs */
    unsigned fail_mask; /* which of the first children fail */
    struct scn_verdict *verdict;
};

/* A child: its argument is its code, 0 to succeed. */
static int
ww_kid(crew_task *task, void *arg)
{
    int code = (int)(intptr_t)arg;

    if (code != 0)
        return crew_task_fail(task, code, "child %d", code);
    crew_task_return(task, AS_VALUE(7), NULL);
    return 0;
}

static int
ww_spawn(crew_task *task, int code, crew_future **f)
{
    return scn_submit(crew_task_pool(task), ww_kid, (void *)(intptr_t)code, f);
}

/* A middle task: submits grandchildren and waits on them all. */
static int
ww_middle(crew_task *task, void *arg)
{
    crew_future *kids[3] = {NULL, NULL, NULL};
    int err = 0;

    (void)arg;
    for (int i = 0; i < 3 && err == 0; i++)
        err = ww_spawn(task, 0, &kids[i]);
    if (err == 0)
        err = crew_wait_all(kids, 3, NULL);
    else
        for (int i = 0; i < 3; i++)
            if (kids[i] != NULL)
                crew_future_wait(kids[i]);
    for (int i = 0; i < 3; i++)
        crew_future_release(kids[i]);
    return err;
}

static void
ww_release_all(crew_future **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i] != NULL) {
            crew_future_wait(f[i]);
            crew_future_release(f[i]);
        }
}

static void
ww_failing_kids(crew_task *task, struct ww *ww)
{
    struct scn_verdict *v = ww->verdict;
    crew_future *kids[WW_KIDS] = {NULL};
    crew_error *error = NULL;
    const char *why;
    int err;

    for (int i = 0; i < WW_KIDS; i++) {
        int code = (ww->fail_mask >> i) & 1 ? 300 + i : 0;

        err = ww_spawn(task, code, &kids[i]);
        if (!SCN_CHECK(v, err == 0, "crew_submit from a task failed")) {
            ww_release_all(kids, WW_KIDS);
            return;
        }
    }
    err = crew_wait_all(kids, WW_KIDS, &error);
    why = scn_check_wait_all(err, error, kids, WW_KIDS);
    if (why != NULL)
        scn_fail(v, why);
    crew_error_release(error);
    ww_release_all(kids, WW_KIDS);
}

static void
ww_any(crew_task *task, struct ww *ww)
{
    struct scn_verdict *v = ww->verdict;
    crew_future *inputs[4] = {ww->never, NULL, NULL, NULL};
    size_t index = SIZE_MAX;
    int err;

    for (int i = 1; i < 4; i++) {
        err = ww_spawn(task, 0, &inputs[i]);
        if (!SCN_CHECK(v, err == 0, "crew_submit from a task failed")) {
            ww_release_all(inputs + 1, 3);
            return;
        }
    }
    /* The pending promise never wins: only helping resolves the rest. */
    err = crew_wait_any(inputs, 4, CREW_FOREVER, &index);
    SCN_CHECK(v, err == 0, "crew_wait_any on a worker failed");
    SCN_CHECK(v, index >= 1 && index < 4,
              "crew_wait_any on a worker picked an unresolved input");
    if (index >= 1 && index < 4)
        SCN_CHECK(v, scn_resolved(crew_future_state(inputs[index])),
                  "crew_wait_any's winner has not resolved");
    err = crew_wait_all(inputs + 1, 3, NULL);
    SCN_CHECK(v, err == 0, "crew_wait_all on a worker failed");
    ww_release_all(inputs + 1, 3);
}

static void
ww_timeouts(struct ww *ww)
{
    struct scn_verdict *v = ww->verdict;
    const uint64_t timeout = 1000000; /* 1 ms */
    size_t index = 77;
    uint64_t t0 = scn_now_ns();
    int err;

    err = crew_future_wait_for(ww->never, timeout);
    SCN_CHECK(v, err == ETIMEDOUT,
              "crew_future_wait_for on a worker did not time out");
    SCN_CHECK(v, scn_now_ns() - t0 >= timeout,
              "crew_future_wait_for on a worker timed out early");
    t0 = scn_now_ns();
    err = crew_wait_any(&ww->never, 1, timeout, &index);
    SCN_CHECK(v, err == ETIMEDOUT,
              "crew_wait_any on a worker did not time out");
    SCN_CHECK(v, index == 77, "crew_wait_any wrote *index on ETIMEDOUT");
    SCN_CHECK(v, scn_now_ns() - t0 >= timeout,
              "crew_wait_any on a worker timed out early");
}

static void
ww_nested(crew_task *task, struct ww *ww)
{
    struct scn_verdict *v = ww->verdict;
    crew_future *middle[2] = {NULL, NULL};
    crew_future *all = NULL;
    const char *why;
    int err;

    for (int i = 0; i < 2; i++) {
        err = scn_submit(crew_task_pool(task), ww_middle, NULL, &middle[i]);
        if (!SCN_CHECK(v, err == 0, "crew_submit from a task failed")) {
            ww_release_all(middle, 2);
            return;
        }
    }
    err = crew_when_all(middle, 2, &all);
    if (SCN_CHECK(v, err == 0, "crew_when_all on a worker failed")) {
        err = crew_future_wait(all);
        SCN_CHECK(v, err == 0, "waiting on a when_all on a worker failed");
        why = scn_check_when_all(all, middle, 2);
        if (why != NULL)
            scn_fail(v, why);
        crew_future_release(all);
    }
    ww_release_all(middle, 2);
}

static int
ww_outer(crew_task *task, void *arg)
{
    struct ww *ww = arg;

    ww_failing_kids(task, ww);
    ww_any(task, ww);
    ww_timeouts(ww);
    ww_nested(task, ww);
    return 0;
}

const char *
crew_scenario_nesting_waits_on_workers(void)
{
    size_t rounds = crew_scenario_scale(200, 100);
    struct scn_verdict v = {NULL};
    uint64_t rng = scn_seed(600);

    for (unsigned threads = 1; threads <= 2 && !scn_failed(&v); threads++) {
        crew_pool_options options = {.threads = threads};
        crew_pool *pool;
        int err = crew_pool_create(&pool, &options);

        if (!SCN_CHECK(&v, err == 0, "crew_pool_create failed"))
            break;
        for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
            struct ww ww = {.fail_mask = scn_below(&rng, 1u << WW_KIDS),
                            .verdict = &v};
            crew_future *outer;

            err = crew_promise_create(&ww.never);
            if (!SCN_CHECK(&v, err == 0, "crew_promise_create failed"))
                break;
            err = scn_submit(pool, ww_outer, &ww, &outer);
            if (SCN_CHECK(&v, err == 0, "crew_submit failed")) {
                err = crew_future_wait(outer);
                SCN_CHECK(&v, err == 0, "a task waiting on tasks failed");
                crew_future_release(outer);
            }
            if (r % 2 == 0)
                err = crew_promise_resolve(ww.never, NULL, NULL);
            else
                err = crew_future_cancel(ww.never);
            SCN_CHECK(&v, err == 0,
                      "settling a promise nobody settled did not return 0");
            crew_future_release(ww.never);
        }
        crew_pool_destroy(pool);
    }
    return scn_result(&v);
}
