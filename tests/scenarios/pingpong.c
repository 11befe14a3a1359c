/*
 * Lost wake-ups: a thread outside the pool submits one task and waits for
 * it, over and over, so that every round trip parks and wakes a worker and
 * the waiter. A wake-up lost anywhere (a submitter missing a parking
 * worker, a resolver missing a parking waiter, a timed wait racing its
 * resolution) hangs the loop, and the front ends' watchdogs name it.
 *
 * Three kinds of round trip alternate:
 * - plain: submit, then crew_future_wait;
 * - relay: the task itself waits on a promise that this thread resolves
 *   after a jitter, so the worker parks as a waiter, then this thread
 *   waits on the task;
 * - timed: crew_future_wait_for with a short timeout in a loop until the
 *   task has resolved; an ETIMEDOUT must never come early.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdlib.h>

#define PP_TIMEOUT_NS 20000u /* the timed round trip's slice: 20 us */

struct pp {
    atomic_ulong count;   /* round trips the tasks completed */
    crew_future *promise; /* the relay round's, set before submitting */
    void *expect;         /* the relay promise's value */
};

static int
pp_plain(crew_task *task, void *arg)
{
    struct pp *pp = arg;
    unsigned long n = atomic_fetch_add(&pp->count, 1) + 1;

    crew_task_return(task, (void *)(uintptr_t)n, NULL);
    return 0;
}

static int
pp_relay(crew_task *task, void *arg)
{
    struct pp *pp = arg;
    int err = crew_future_wait(pp->promise);

    if (err != 0)
        return crew_task_fail(task, err, "the relay promise failed");
    if (crew_future_result(pp->promise) != pp->expect)
        return crew_task_fail(task, EIO, "the relay promise's value");
    return pp_plain(task, arg);
}

static const char *
pingpong(unsigned threads)
{
    /* 20,000 round trips, TSan included (a round trip costs it little
     * more than it costs a plain build): the long form, CREW_STRESS=50,
     * makes the 10^6 of RELIABILITY.md. */
    size_t rounds = crew_scenario_scale(20000, 20000);
    crew_pool_options options = {.threads = threads};
    struct scn_verdict v = {NULL};
    struct pp pp = {.promise = NULL};
    uint64_t rng = scn_seed(700 + threads);
    crew_pool *pool;
    int err;

    atomic_init(&pp.count, 0);
    err = crew_pool_create(&pool, &options);
    if (err != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *f = NULL;

        switch (r % 3) {
        case 0:
            err = scn_submit(pool, pp_plain, &pp, &f);
            if (!SCN_CHECK(&v, err == 0, "crew_submit failed"))
                break;
            err = crew_future_wait(f);
            break;
        case 1:
            err = crew_promise_create(&pp.promise);
            if (!SCN_CHECK(&v, err == 0, "crew_promise_create failed"))
                break;
            pp.expect = (void *)(uintptr_t)(r + 1);
            err = scn_submit(pool, pp_relay, &pp, &f);
            if (!SCN_CHECK(&v, err == 0, "crew_submit failed")) {
                crew_future_release(pp.promise);
                break;
            }
            scn_spin(scn_below(&rng, 2000));
            err = crew_promise_resolve(pp.promise, pp.expect, NULL);
            if (!SCN_CHECK(&v, err == 0, "crew_promise_resolve failed"))
                crew_future_cancel(pp.promise);
            err = crew_future_wait(f);
            crew_future_release(pp.promise);
            pp.promise = NULL;
            break;
        default:
            err = scn_submit(pool, pp_plain, &pp, &f);
            if (!SCN_CHECK(&v, err == 0, "crew_submit failed"))
                break;
            for (;;) {
                uint64_t t0 = scn_now_ns();

                err = crew_future_wait_for(f, PP_TIMEOUT_NS);
                if (err != ETIMEDOUT)
                    break;
                if (!SCN_CHECK(&v, scn_now_ns() - t0 >= PP_TIMEOUT_NS,
                               "crew_future_wait_for timed out early"))
                    break;
            }
            break;
        }
        if (scn_failed(&v)) {
            if (f != NULL) {
                crew_future_wait(f);
                crew_future_release(f);
            }
            break;
        }
        SCN_CHECK(&v, err == 0, "a ping-pong round trip failed");
        SCN_CHECK(&v, crew_future_result(f) == (void *)(uintptr_t)(r + 1),
                  "a ping-pong task did not run exactly once, in turn");
        crew_future_release(f);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}

const char *
crew_scenario_pingpong_one_thread(void)
{
    return pingpong(1);
}

const char *
crew_scenario_pingpong_two_threads(void)
{
    return pingpong(2);
}
