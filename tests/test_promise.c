#include "common.h"
#include "testkit.h"

/*
 * Promises: futures resolved by hand. Creating, resolving, failing,
 * resolving twice, resolving what is not a promise, cancelled promises,
 * waking waiters, where callbacks run, and the failure message.
 */

#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(promise, CREW_SUITE);

/* ------------------------------------------------------------------ */
/* Creating                                                           */
/* ------------------------------------------------------------------ */

CREW_TEST(promise, is_created_pending_with_neither_result_nor_error)
{
    crew_future *f = crew_test_promise();
    crew_test_assert_pending(f);
    crew_future_release(f);
}

CREW_TEST(promise, creating_with_a_null_out_parameter_is_einval)
{
    cr_assert_eq(crew_promise_create(NULL), EINVAL);
}

CREW_TEST(promise, released_unresolved_leaks_nothing)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_future_retain(f), f);
    crew_future_release(f);
    crew_future_release(f);
}

/* ------------------------------------------------------------------ */
/* Resolving and failing                                              */
/* ------------------------------------------------------------------ */

CREW_TEST(promise, resolving_succeeds_with_the_value_given)
{
    struct scn_gate freed;
    scn_gate_init(&freed);
    crew_future *f = crew_test_promise();

    cr_assert_eq(crew_promise_resolve(f, &freed, scn_gate_bump), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &freed);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(scn_gate_count(&freed), 0, "the value was freed while held");

    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 1);
    scn_gate_destroy(&freed);
}

CREW_TEST(promise, resolving_with_a_null_value_succeeds_with_a_null_result)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(f, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(f));
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
}

CREW_TEST(promise, frees_its_value_once_after_every_reference_is_released)
{
    struct scn_gate freed;
    scn_gate_init(&freed);
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_future_retain(f), f);
    cr_assert_eq(crew_promise_resolve(f, &freed, scn_gate_bump), 0);
    cr_assert_eq(crew_future_retain(f), f);

    crew_future_release(f);
    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 0);
    cr_assert_eq(crew_future_result(f), &freed);
    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 1);
    scn_gate_destroy(&freed);
}

CREW_TEST(promise, failing_records_the_code_and_the_formatted_message)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_fail(f, ENOENT, "open %s: %d", "a.txt", 42), 0);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_future_wait(f), ENOENT);
    const crew_error *e = crew_future_error(f);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), ENOENT);
    cr_assert_str_eq(crew_error_message(e), "open a.txt: 42");
    cr_assert_eq(crew_error_count(e), 0);
    crew_future_release(f);
}

CREW_TEST(promise, failing_with_code_zero_is_einval_and_leaves_it_pending)
{
    crew_future *f = crew_test_promise();
    struct scn_seen seen = SCN_SEEN_INIT;
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);

    cr_assert_eq(crew_promise_fail(f, 0, "not a failure"), EINVAL);
    cr_assert_eq(crew_future_state(f), CREW_PENDING);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(scn_gate_count(&seen.calls), 0);

    cr_assert_eq(crew_promise_fail(f, EIO, "a failure"), 0);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    crew_future_release(f);
}

CREW_TEST(promise, failing_with_a_negative_code_keeps_it_as_given)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_fail(f, -42, "below zero"), 0);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_future_wait(f), -42);
    cr_assert_eq(crew_error_code(crew_future_error(f)), -42);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "below zero");
    crew_future_release(f);
}

CREW_TEST(promise, failing_with_ecanceled_is_a_failure_not_a_cancellation)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_fail(f, ECANCELED, "gave up"), 0);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "gave up");
    crew_future_release(f);
}

CREW_TEST(promise, failing_applies_every_printf_conversion)
{
    crew_future *f = crew_test_promise();
    char expect[256];
    snprintf(expect, sizeof(expect), "%s|%d|%u|%ld|%x|%c|%5.2f|%%|%-4s|%03d",
             "str", -7, 7u, 123456789L, 0xbeefu, 'q', 3.14159, "ab", 5);
    cr_assert_eq(crew_promise_fail(
                     f, EDOM, "%s|%d|%u|%ld|%x|%c|%5.2f|%%|%-4s|%03d", "str",
                     -7, 7u, 123456789L, 0xbeefu, 'q', 3.14159, "ab", 5),
                 0);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), expect);
    cr_assert_str_eq(expect, "str|-7|7|123456789|beef|q| 3.14|%|ab  |005");
    crew_future_release(f);
}

CREW_TEST(promise, failing_copies_the_message_at_the_call)
{
    crew_future *f = crew_test_promise();
    char text[] = "original words";
    cr_assert_eq(crew_promise_fail(f, EIO, "%s", text), 0);
    memset(text, 'x', sizeof(text) - 1);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)),
                     "original words");
    crew_future_release(f);
}

CREW_TEST(promise, failing_keeps_a_long_message_whole)
{
    enum { LEN = 100 * 1024 };
    char *big = scn_letters(LEN);
    cr_assert_not_null(big);
    crew_future *f = crew_test_promise();

    cr_assert_eq(crew_promise_fail(f, E2BIG, "%s|%d", big, 7), 0);
    const char *msg = crew_error_message(crew_future_error(f));
    cr_assert_eq(strlen(msg), (size_t)LEN + 2, "kept %zu of %d bytes",
                 strlen(msg), LEN + 2);
    cr_assert_eq(memcmp(msg, big, LEN), 0);
    cr_assert_str_eq(msg + LEN, "|7");
    cr_assert_eq(crew_error_code(crew_future_error(f)), E2BIG);
    crew_future_release(f);
    free(big);
}

/* ------------------------------------------------------------------ */
/* Resolving twice                                                    */
/* ------------------------------------------------------------------ */

CREW_TEST(promise, resolving_twice_returns_ealready)
{
    struct scn_gate first, second;
    scn_gate_init(&first);
    scn_gate_init(&second);
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(f, &first, scn_gate_bump), 0);

    cr_assert_eq(crew_promise_resolve(f, &second, scn_gate_bump), EALREADY);
    cr_assert_eq(crew_promise_fail(f, EIO, "too late"), EALREADY);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &first);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(scn_gate_count(&second), 0, "the refused value was freed");

    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&first), 1);
    cr_assert_eq(scn_gate_count(&second), 0, "the refused value was freed");
    scn_gate_destroy(&first);
    scn_gate_destroy(&second);
}

CREW_TEST(promise, failing_twice_returns_ealready)
{
    struct scn_gate refused;
    scn_gate_init(&refused);
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_promise_fail(f, EIO, "first"), 0);

    cr_assert_eq(crew_promise_fail(f, ENOENT, "second"), EALREADY);
    cr_assert_eq(crew_promise_resolve(f, &refused, scn_gate_bump), EALREADY);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), EIO);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "first");
    cr_assert_null(crew_future_result(f));

    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&refused), 0, "the refused value was freed");
    scn_gate_destroy(&refused);
}

CREW_TEST(promise,
          resolving_a_cancelled_promise_returns_ealready_and_leaves_the_value)
{
    struct scn_gate refused;
    scn_gate_init(&refused);
    crew_future *f = crew_test_promise();
    struct scn_seen seen = SCN_SEEN_INIT;
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    cr_assert_eq(crew_future_cancel(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);

    cr_assert_eq(crew_promise_resolve(f, &refused, scn_gate_bump), EALREADY);
    cr_assert_eq(crew_promise_fail(f, EIO, "too late"), EALREADY);
    cr_assert_eq(scn_gate_count(&refused), 0, "the value is the caller's");
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);

    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&refused), 0, "the value is the caller's");
    scn_gate_destroy(&refused);
}

/* Several threads resolve one promise at once; one wins. */
struct contest {
    pthread_barrier_t *start;
    crew_future *f;
    int id;
    struct scn_gate freed; /* this contender's value */
    int err;
    pthread_t thread;
};

static void *
contest_main(void *p)
{
    struct contest *c = p;
    pthread_barrier_wait(c->start);
    if (c->id % 2 == 0)
        c->err = crew_promise_resolve(c->f, &c->freed, scn_gate_bump);
    else
        c->err = crew_promise_fail(c->f, 1000 + c->id, "contender %d", c->id);
    return NULL;
}

CREW_TEST(promise, resolvers_racing_leave_exactly_one_winner)
{
    enum { CONTENDERS = 4, ROUNDS = 500 };
    pthread_barrier_t start;
    struct contest c[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++)
        scn_gate_init(&c[i].freed);

    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_init(&start, NULL, CONTENDERS);
        crew_future *f = crew_test_promise();
        size_t freed_before[CONTENDERS];
        for (int i = 0; i < CONTENDERS; i++) {
            c[i].start = &start;
            c[i].f = f;
            c[i].id = i;
            c[i].err = -1;
            freed_before[i] = scn_gate_count(&c[i].freed);
            cr_assert_eq(
                pthread_create(&c[i].thread, NULL, contest_main, &c[i]), 0);
        }
        for (int i = 0; i < CONTENDERS; i++)
            pthread_join(c[i].thread, NULL);
        pthread_barrier_destroy(&start);

        int winner = -1;
        for (int i = 0; i < CONTENDERS; i++) {
            if (c[i].err == 0) {
                cr_assert_eq(winner, -1, "round %d: %d and %d both won", round,
                             winner, i);
                winner = i;
            } else {
                cr_assert_eq(c[i].err, EALREADY, "round %d: %d", round,
                             c[i].err);
            }
        }
        cr_assert_neq(winner, -1, "round %d: nobody won", round);
        if (winner % 2 == 0) {
            cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
            cr_assert_eq(crew_future_result(f), &c[winner].freed);
        } else {
            cr_assert_eq(crew_future_state(f), CREW_FAILED);
            cr_assert_eq(crew_error_code(crew_future_error(f)), 1000 + winner);
        }
        crew_future_release(f);
        for (int i = 0; i < CONTENDERS; i++) {
            int n = (int)(scn_gate_count(&c[i].freed) - freed_before[i]);
            cr_assert_eq(n, i == winner && i % 2 == 0,
                         "round %d: contender %d's value freed %d times", round,
                         i, n);
        }
    }
    for (int i = 0; i < CONTENDERS; i++)
        scn_gate_destroy(&c[i].freed);
}

/* ------------------------------------------------------------------ */
/* Futures that are not promises, and NULL                            */
/* ------------------------------------------------------------------ */

/* Returns its gate as its value, then holds its worker there. */
static int
gate_run(crew_task *task, void *arg)
{
    crew_task_return(task, arg, NULL);
    return scn_hold_task(task, arg);
}

CREW_TEST(promise, resolving_a_task_future_is_einval)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold g = SCN_HOLD_INIT;
    crew_future *f = NULL;
    cr_assert_eq(crew_submit(pool, gate_run, &g, &f), 0);
    cr_assert(scn_gate_reaches(&g.entered, 1), "the task never started");

    struct scn_gate refused;
    scn_gate_init(&refused);
    cr_assert_eq(crew_promise_resolve(f, &refused, scn_gate_bump), EINVAL);
    cr_assert_eq(crew_promise_fail(f, EIO, "not mine"), EINVAL);
    cr_assert_eq(crew_future_state(f), CREW_RUNNING);

    scn_hold_open(&g);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_result(f), &g);

    cr_assert_eq(crew_promise_resolve(f, &refused, scn_gate_bump), EINVAL);
    cr_assert_eq(crew_promise_fail(f, EIO, "not mine"), EINVAL);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &g);
    crew_future_release(f);
    crew_pool_destroy(pool);
    cr_assert_eq(scn_gate_count(&refused), 0, "the refused value was freed");
    scn_gate_destroy(&refused);
}

CREW_TEST(promise, resolving_a_combinator_future_is_einval)
{
    crew_future *p = crew_test_promise();
    crew_future *all = NULL, *any = NULL;
    cr_assert_eq(crew_when_all(&p, 1, &all), 0);
    cr_assert_eq(crew_when_any(&p, 1, &any), 0);
    struct scn_gate refused;
    scn_gate_init(&refused);

    crew_future *joins[] = {all, any};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(crew_promise_resolve(joins[i], &refused, scn_gate_bump),
                     EINVAL);
        cr_assert_eq(crew_promise_fail(joins[i], EIO, "not mine"), EINVAL);
        cr_assert_eq(crew_future_state(joins[i]), CREW_PENDING);
    }
    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_state(any), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(any), p);
    crew_future_release(all);
    crew_future_release(any);
    crew_future_release(p);
    cr_assert_eq(scn_gate_count(&refused), 0, "the refused value was freed");
    scn_gate_destroy(&refused);
}

CREW_TEST(promise, resolving_or_failing_null_is_einval)
{
    struct scn_gate refused;
    scn_gate_init(&refused);
    cr_assert_eq(crew_promise_resolve(NULL, &refused, scn_gate_bump), EINVAL);
    cr_assert_eq(crew_promise_resolve(NULL, NULL, NULL), EINVAL);
    cr_assert_eq(crew_promise_fail(NULL, EIO, "nothing"), EINVAL);
    cr_assert_eq(crew_promise_fail(NULL, 0, "nothing"), EINVAL);
    cr_assert_eq(scn_gate_count(&refused), 0, "the refused value was freed");
    scn_gate_destroy(&refused);
}

/* ------------------------------------------------------------------ */
/* Waiters and callbacks                                              */
/* ------------------------------------------------------------------ */

enum { WAITERS = 4 };

struct waiter {
    pthread_t thread;
    crew_future *f;
    struct scn_gate *started;
    int index;
    int err;
    void *result;
    int code;
};

static void *
waiter_main(void *p)
{
    struct waiter *w = p;
    scn_gate_add(w->started, 1);
    switch (w->index % 3) {
    case 0:
        w->err = crew_future_wait(w->f);
        break;
    case 1:
        w->err = crew_future_wait_for(w->f, CREW_FOREVER);
        break;
    default:
        w->err = crew_future_wait_for(w->f, 20000000000u);
        break;
    }
    w->result = crew_future_result(w->f);
    w->code = crew_error_code(crew_future_error(w->f));
    return NULL;
}

/* WAITERS threads waiting on one new promise, each in its own way. */
struct waiters {
    struct waiter w[WAITERS];
    struct scn_gate started; /* one a waiter about to wait */
};

/* Creates the promise, starts the waiters on it, and returns it once
 * every waiter is about to wait. */
static crew_future *
start_waiters(struct waiters *ws)
{
    crew_future *f = crew_test_promise();
    struct waiter *w = ws->w;

    scn_gate_init(&ws->started);
    for (int i = 0; i < WAITERS; i++) {
        w[i].f = f;
        w[i].started = &ws->started;
        w[i].index = i;
        w[i].err = -1;
        cr_assert_eq(pthread_create(&w[i].thread, NULL, waiter_main, &w[i]), 0);
    }
    cr_assert_eq(scn_gate_await(&ws->started, WAITERS), WAITERS);
    cr_assert_eq(crew_future_state(f), CREW_PENDING);
    return f;
}

static void
join_waiters(struct waiters *ws)
{
    for (int i = 0; i < WAITERS; i++)
        pthread_join(ws->w[i].thread, NULL);
    scn_gate_destroy(&ws->started);
}

CREW_TEST(promise, waiting_threads_wake_when_it_is_resolved)
{
    struct waiters ws;
    crew_future *f = start_waiters(&ws);
    struct waiter *w = ws.w;
    int token;
    cr_assert_eq(crew_promise_resolve(f, &token, NULL), 0);
    join_waiters(&ws);
    for (int i = 0; i < WAITERS; i++) {
        cr_assert_eq(w[i].err, 0, "waiter %d: %d", i, w[i].err);
        cr_assert_eq(w[i].result, &token);
    }
    crew_future_release(f);
}

CREW_TEST(promise, waiting_threads_wake_with_the_code_when_it_fails)
{
    struct waiters ws;
    crew_future *f = start_waiters(&ws);
    struct waiter *w = ws.w;
    cr_assert_eq(crew_promise_fail(f, EPIPE, "broken"), 0);
    join_waiters(&ws);
    for (int i = 0; i < WAITERS; i++) {
        cr_assert_eq(w[i].err, EPIPE, "waiter %d: %d", i, w[i].err);
        cr_assert_eq(w[i].code, EPIPE);
        cr_assert_null(w[i].result);
    }
    crew_future_release(f);
}

CREW_TEST(promise, waiting_threads_wake_when_it_is_cancelled)
{
    struct waiters ws;
    crew_future *f = start_waiters(&ws);
    struct waiter *w = ws.w;
    cr_assert_eq(crew_future_cancel(f), 0);
    join_waiters(&ws);
    for (int i = 0; i < WAITERS; i++) {
        cr_assert_eq(w[i].err, ECANCELED, "waiter %d: %d", i, w[i].err);
        cr_assert_eq(w[i].code, ECANCELED);
    }
    crew_future_release(f);
}

struct settler {
    pthread_t thread;
    crew_future *f;
    int how; /* 0 resolve, 1 fail, 2 cancel */
    int err;
};

static void *
settler_main(void *p)
{
    struct settler *s = p;
    if (s->how == 0)
        s->err = crew_promise_resolve(s->f, s, NULL);
    else if (s->how == 1)
        s->err = crew_promise_fail(s->f, EXDEV, "from afar");
    else
        s->err = crew_future_cancel(s->f);
    return NULL;
}

CREW_TEST(promise, runs_callbacks_on_the_thread_that_resolves_it)
{
    static const crew_state outcome[] = {CREW_SUCCEEDED, CREW_FAILED,
                                         CREW_CANCELLED};
    static const int codes[] = {0, EXDEV, ECANCELED};
    for (int how = 0; how < 3; how++) {
        crew_future *f = crew_test_promise();
        struct scn_seen seen[3];
        for (int i = 0; i < 3; i++) {
            scn_seen_init(&seen[i]);
            cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen[i]), 0);
        }
        struct settler s = {.f = f, .how = how, .err = -1};
        cr_assert_eq(pthread_create(&s.thread, NULL, settler_main, &s), 0);
        pthread_join(s.thread, NULL);
        cr_assert_eq(s.err, 0);

        for (int i = 0; i < 3; i++) {
            cr_assert_eq(scn_gate_count(&seen[i].calls), 1);
            cr_assert(pthread_equal(seen[i].thread, s.thread),
                      "outcome %d: callback %d ran off the resolving thread",
                      how, i);
            cr_assert_eq(seen[i].state, outcome[how]);
            cr_assert_eq(seen[i].error_code, codes[how]);
            cr_assert_eq(seen[i].result, how == 0 ? (void *)&s : NULL);
        }
        struct scn_seen late = SCN_SEEN_INIT;
        cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &late), 0);
        cr_assert_eq(scn_gate_count(&late.calls), 1);
        cr_assert(pthread_equal(late.thread, pthread_self()));
        crew_future_release(f);
    }
}

struct pool_resolve {
    crew_future *f;
    struct scn_gate *freed;
};

static int
resolve_run(crew_task *task, void *arg)
{
    struct pool_resolve *r = arg;
    (void)task;
    return crew_promise_resolve(r->f, r->freed, scn_gate_bump);
}

CREW_TEST(promise, can_be_resolved_from_a_pool_task)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_gate freed;
    scn_gate_init(&freed);
    crew_future *p = crew_test_promise();
    struct scn_seen seen = SCN_SEEN_INIT;
    cr_assert_eq(crew_future_on_complete(p, scn_seen_cb, &seen), 0);
    struct pool_resolve r = {.f = p, .freed = &freed};
    crew_future *t = NULL;
    cr_assert_eq(crew_submit(pool, resolve_run, &r, &t), 0);

    cr_assert_eq(crew_future_wait(p), 0);
    cr_assert_eq(crew_future_result(p), &freed);
    cr_assert_eq(crew_future_wait(t), 0, "the task's resolve failed");
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert_not(pthread_equal(seen.thread, pthread_self()));
    crew_future_release(t);
    crew_pool_destroy(pool);
    crew_future_release(p);
    cr_assert_eq(scn_gate_count(&freed), 1);
    scn_gate_destroy(&freed);
}
