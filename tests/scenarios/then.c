/*
 * crew_then's races, for both front ends (TSan runs them through the
 * driver):
 *
 * - then_cancel_race: a continuation is cancelled by one thread while
 *   another resolves its input (and a third, every other round, cancels
 *   it too). Whoever wins, its function runs at most once, and only if it
 *   was not cancelled; its arg_free runs exactly once; it resolves. Once
 *   the pool has shut down its statistics add up: a continuation
 *   cancelled before it was queued counts nowhere, one cancelled in its
 *   queue as submitted and cancelled, whichever canceller won.
 * - then_pool_gone_race: continuations wait on promises while the pool is
 *   destroyed and the promises are resolved from another thread at the
 *   same time. Each resolves, cancelled or run; no use after free (ASan,
 *   TSan), no leak.
 * - then_refused_cancel_race: continuations are cancelled by one thread
 *   while another resolves their inputs and the pool drains: a
 *   continuation may be cancelled as it is queued, or as the closed pool
 *   refuses it. Each resolves as above, and the pool's statistics add up
 *   once it has shut down (a cancellation counted for a continuation
 *   that the pool then refused is taken back).
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct tc_count {
    atomic_int runs;
    atomic_int frees;
};

static int
tc_run(crew_task *task, crew_future *input, void *arg)
{
    struct tc_count *c = arg;

    (void)task;
    (void)input;
    atomic_fetch_add(&c->runs, 1);
    return 0;
}

static void
tc_free(void *arg)
{
    struct tc_count *c = arg;

    atomic_fetch_add(&c->frees, 1);
}

#define TC_RACERS 3

struct tc {
    pthread_barrier_t start, done;
    crew_future *input, *next;
    bool third; /* racer 2 cancels too this round */
    bool stop;
};

struct tc_racer {
    struct tc *tc;
    int index;
    pthread_t thread;
};

static void *
tc_race(void *arg)
{
    struct tc_racer *r = arg;
    struct tc *tc = r->tc;

    for (;;) {
        pthread_barrier_wait(&tc->start);
        if (tc->stop)
            return NULL;
        if (r->index == 0)
            crew_promise_resolve(tc->input, NULL, NULL);
        else if (r->index == 1 || tc->third)
            crew_future_cancel(tc->next);
        pthread_barrier_wait(&tc->done);
    }
}

const char *
crew_scenario_then_cancel_race(void)
{
    size_t rounds = crew_scenario_scale(20000, 4000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct tc tc = {.stop = false};
    struct tc_racer racers[TC_RACERS];
    crew_pool *pool = NULL;
    uint64_t ran = 0, cancelled = 0;
    crew_pool_stats s;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    pthread_barrier_init(&tc.start, NULL, TC_RACERS + 1);
    pthread_barrier_init(&tc.done, NULL, TC_RACERS + 1);
    for (int i = 0; i < TC_RACERS; i++) {
        racers[i] = (struct tc_racer){.tc = &tc, .index = i};
        pthread_create(&racers[i].thread, NULL, tc_race, &racers[i]);
    }
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct tc_count count = {0};
        crew_state state;

        if (!SCN_CHECK(&v, crew_promise_create(&tc.input) == 0,
                       "crew_promise_create failed"))
            break;
        if (!SCN_CHECK(&v,
                       crew_then(pool, tc.input, tc_run, &count, tc_free,
                                 &tc.next) == 0,
                       "crew_then failed")) {
            crew_future_release(tc.input);
            break;
        }
        tc.third = r % 2 == 1;
        pthread_barrier_wait(&tc.start);
        pthread_barrier_wait(&tc.done);
        crew_future_wait(tc.next);
        state = crew_future_state(tc.next);
        /* The counts are final once the continuation has resolved and
         * arg_free ran (before the resolution). */
        SCN_CHECK(&v, atomic_load(&count.frees) == 1,
                  "arg_free did not run exactly once");
        SCN_CHECK(&v, atomic_load(&count.runs) <= 1, "fn ran twice");
        SCN_CHECK(
            &v,
            (state == CREW_SUCCEEDED && atomic_load(&count.runs) == 1) ||
                (state == CREW_CANCELLED && atomic_load(&count.runs) == 0),
            "the outcome does not match whether fn ran");
        ran += state == CREW_SUCCEEDED;
        cancelled += state == CREW_CANCELLED;
        crew_future_release(tc.next);
        crew_future_release(tc.input);
    }
    tc.stop = true;
    pthread_barrier_wait(&tc.start);
    for (int i = 0; i < TC_RACERS; i++)
        pthread_join(racers[i].thread, NULL);
    pthread_barrier_destroy(&tc.start);
    pthread_barrier_destroy(&tc.done);
    /* The husks of continuations cancelled as they were queued are taken
     * out by the workers before the shutdown returns. */
    crew_pool_shutdown(pool, CREW_DRAIN);
    crew_pool_stats_get(pool, &s);
    SCN_CHECK(&v, s.succeeded == ran, "the runs do not add up");
    SCN_CHECK(&v, s.cancelled <= cancelled,
              "more cancellations counted than happened");
    SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
              "the pool's counters do not add up");
    SCN_CHECK(&v, s.queued == 0 && s.busy == 0, "a shut-down pool has work");
    crew_pool_destroy(pool);
    return scn_result(&v);
}

#define PG_WAITING 8

struct pg {
    crew_future *inputs[PG_WAITING];
    pthread_barrier_t start;
};

static void *
pg_resolve(void *arg)
{
    struct pg *pg = arg;

    pthread_barrier_wait(&pg->start);
    for (size_t i = 0; i < PG_WAITING; i++)
        crew_promise_resolve(pg->inputs[i], NULL, NULL);
    return NULL;
}

const char *
crew_scenario_then_pool_gone_race(void)
{
    size_t rounds = crew_scenario_scale(500, 150);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct tc_count counts[PG_WAITING];
        crew_future *next[PG_WAITING];
        crew_pool *pool = NULL;
        struct pg pg;
        pthread_t thread;

        if (!SCN_CHECK(&v, crew_pool_create(&pool, &options) == 0,
                       "crew_pool_create failed"))
            break;
        for (size_t i = 0; i < PG_WAITING; i++) {
            counts[i] = (struct tc_count){0};
            crew_promise_create(&pg.inputs[i]);
            /* Half keep a future, half fire and forget. */
            crew_then(pool, pg.inputs[i], tc_run, &counts[i], tc_free,
                      i % 2 == 0 ? &next[i] : NULL);
        }
        pthread_barrier_init(&pg.start, NULL, 2);
        pthread_create(&thread, NULL, pg_resolve, &pg);
        pthread_barrier_wait(&pg.start);
        crew_pool_destroy(pool);
        pthread_join(thread, NULL);
        pthread_barrier_destroy(&pg.start);
        for (size_t i = 0; i < PG_WAITING; i++) {
            if (i % 2 == 0) {
                crew_state state;
                crew_future_wait(next[i]);
                state = crew_future_state(next[i]);
                SCN_CHECK(&v,
                          state == CREW_CANCELLED || state == CREW_SUCCEEDED,
                          "a continuation neither ran nor was cancelled");
                SCN_CHECK(&v,
                          (state == CREW_SUCCEEDED) ==
                              (atomic_load(&counts[i].runs) == 1),
                          "the outcome does not match whether fn ran");
                crew_future_release(next[i]);
            }
            /* Every input has resolved and the pool is destroyed: each
             * continuation ran or was refused, its arg_free done. */
            SCN_CHECK(&v, atomic_load(&counts[i].frees) == 1,
                      "arg_free did not run exactly once");
            crew_future_release(pg.inputs[i]);
        }
    }
    return scn_result(&v);
}

#define RC_WAITING 16

struct rc {
    crew_future *inputs[RC_WAITING];
    crew_future *next[RC_WAITING];
    pthread_barrier_t start;
};

static void *
rc_resolve(void *arg)
{
    struct rc *rc = arg;

    pthread_barrier_wait(&rc->start);
    for (size_t i = 0; i < RC_WAITING; i++)
        crew_promise_resolve(rc->inputs[i], NULL, NULL);
    return NULL;
}

static void *
rc_cancel(void *arg)
{
    struct rc *rc = arg;

    pthread_barrier_wait(&rc->start);
    for (size_t i = 0; i < RC_WAITING; i++)
        crew_future_cancel(rc->next[i]);
    return NULL;
}

const char *
crew_scenario_then_refused_cancel_race(void)
{
    size_t rounds = crew_scenario_scale(1000, 200);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct tc_count counts[RC_WAITING];
        crew_pool *pool = NULL;
        pthread_t resolver, canceller;
        uint64_t ran = 0;
        crew_pool_stats s;
        struct rc rc;

        if (!SCN_CHECK(&v, crew_pool_create(&pool, &options) == 0,
                       "crew_pool_create failed"))
            break;
        for (size_t i = 0; i < RC_WAITING; i++) {
            counts[i] = (struct tc_count){0};
            crew_promise_create(&rc.inputs[i]);
            crew_then(pool, rc.inputs[i], tc_run, &counts[i], tc_free,
                      &rc.next[i]);
        }
        pthread_barrier_init(&rc.start, NULL, 3);
        pthread_create(&resolver, NULL, rc_resolve, &rc);
        pthread_create(&canceller, NULL, rc_cancel, &rc);
        pthread_barrier_wait(&rc.start);
        crew_pool_shutdown(pool, CREW_DRAIN);
        pthread_join(resolver, NULL);
        pthread_join(canceller, NULL);
        pthread_barrier_destroy(&rc.start);
        for (size_t i = 0; i < RC_WAITING; i++) {
            crew_state state;

            crew_future_wait(rc.next[i]);
            state = crew_future_state(rc.next[i]);
            SCN_CHECK(&v, state == CREW_CANCELLED || state == CREW_SUCCEEDED,
                      "a continuation neither ran nor was cancelled");
            SCN_CHECK(&v,
                      (state == CREW_SUCCEEDED) ==
                          (atomic_load(&counts[i].runs) == 1),
                      "the outcome does not match whether fn ran");
            SCN_CHECK(&v, atomic_load(&counts[i].frees) == 1,
                      "arg_free did not run exactly once");
            ran += state == CREW_SUCCEEDED;
            crew_future_release(rc.next[i]);
            crew_future_release(rc.inputs[i]);
        }
        /* Every continuation has resolved, and the workers have exited:
         * the counts are final. */
        crew_pool_stats_get(pool, &s);
        SCN_CHECK(&v, s.succeeded == ran, "the runs do not add up");
        SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
                  "the pool's counters do not add up");
        SCN_CHECK(&v, s.queued == 0, "a shut-down pool has work queued");
        crew_pool_destroy(pool);
    }
    return scn_result(&v);
}
