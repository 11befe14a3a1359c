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

/* Wait for a continuation counted by `c`: it ran at most once, exactly
 * when it succeeded, was cancelled otherwise, and its arg_free ran once
 * (the counts are final once it has resolved: arg_free runs before).
 * Returns its state. */
static crew_state
tc_check(struct scn_verdict *v, crew_future *next, struct tc_count *c)
{
    crew_state state;

    crew_future_wait(next);
    state = crew_future_state(next);
    SCN_CHECK(v, atomic_load(&c->frees) == 1,
              "arg_free did not run exactly once");
    SCN_CHECK(v, atomic_load(&c->runs) <= 1, "fn ran twice");
    SCN_CHECK(v,
              (state == CREW_SUCCEEDED && atomic_load(&c->runs) == 1) ||
                  (state == CREW_CANCELLED && atomic_load(&c->runs) == 0),
              "the outcome does not match whether fn ran");
    return state;
}

/* The statistics of a pool that has shut down, its continuations all
 * resolved, `ran` of them run and `cancelled` cancelled (not all of them
 * queued): every one queued is accounted for. */
static void
tc_check_stats(struct scn_verdict *v, crew_pool *pool, uint64_t ran,
               uint64_t cancelled)
{
    crew_pool_stats s;

    crew_pool_stats_get(pool, &s);
    SCN_CHECK(v, s.succeeded == ran, "the runs do not add up");
    SCN_CHECK(v, s.cancelled <= cancelled,
              "more cancellations counted than happened");
    SCN_CHECK(v, s.submitted == s.succeeded + s.failed + s.cancelled,
              "the pool's counters do not add up");
    SCN_CHECK(v, s.queued == 0 && s.busy == 0, "a shut-down pool has work");
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
        state = tc_check(&v, tc.next, &count);
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
    tc_check_stats(&v, pool, ran, cancelled);
    crew_pool_destroy(pool);
    return scn_result(&v);
}

/* Continuations waiting on promises, resolved together from a thread of
 * their own. */
#define WAITING_MAX 16

struct waiting {
    size_t n;
    crew_future *inputs[WAITING_MAX];
    crew_future *next[WAITING_MAX]; /* NULL: fire and forget */
    struct tc_count counts[WAITING_MAX];
    pthread_barrier_t start;
};

/* `n` continuations on `pool`, each on a promise of its own; the even ones
 * are kept unless `forget_odd` is false, when all are. */
static void
waiting_init(struct waiting *w, size_t n, crew_pool *pool, bool forget_odd,
             unsigned threads)
{
    w->n = n;
    for (size_t i = 0; i < n; i++) {
        w->counts[i] = (struct tc_count){0};
        w->next[i] = NULL;
        crew_promise_create(&w->inputs[i]);
        crew_then(pool, w->inputs[i], tc_run, &w->counts[i], tc_free,
                  forget_odd && i % 2 == 1 ? NULL : &w->next[i]);
    }
    pthread_barrier_init(&w->start, NULL, threads);
}

static void *
waiting_resolve(void *arg)
{
    struct waiting *w = arg;

    pthread_barrier_wait(&w->start);
    for (size_t i = 0; i < w->n; i++)
        crew_promise_resolve(w->inputs[i], NULL, NULL);
    return NULL;
}

static void *
waiting_cancel(void *arg)
{
    struct waiting *w = arg;

    pthread_barrier_wait(&w->start);
    for (size_t i = 0; i < w->n; i++)
        crew_future_cancel(w->next[i]);
    return NULL;
}

/* Every input has resolved and the pool is shut down: each continuation
 * ran or was refused, its arg_free done; those kept are checked with
 * tc_check() and released, and counted into *ran and *cancelled. */
static void
waiting_check(struct scn_verdict *v, struct waiting *w, uint64_t *ran,
              uint64_t *cancelled)
{
    pthread_barrier_destroy(&w->start);
    for (size_t i = 0; i < w->n; i++) {
        if (w->next[i] != NULL) {
            crew_state state = tc_check(v, w->next[i], &w->counts[i]);

            *ran += state == CREW_SUCCEEDED;
            *cancelled += state == CREW_CANCELLED;
            crew_future_release(w->next[i]);
        } else {
            SCN_CHECK(v, atomic_load(&w->counts[i].frees) == 1,
                      "arg_free did not run exactly once");
        }
        crew_future_release(w->inputs[i]);
    }
}

const char *
crew_scenario_then_pool_gone_race(void)
{
    size_t rounds = crew_scenario_scale(500, 150);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_pool *pool = NULL;
        struct waiting w;
        pthread_t thread;
        uint64_t ran = 0, cancelled = 0;

        if (!SCN_CHECK(&v, crew_pool_create(&pool, &options) == 0,
                       "crew_pool_create failed"))
            break;
        /* Half keep a future, half fire and forget. */
        waiting_init(&w, 8, pool, true, 2);
        pthread_create(&thread, NULL, waiting_resolve, &w);
        pthread_barrier_wait(&w.start);
        crew_pool_destroy(pool);
        pthread_join(thread, NULL);
        waiting_check(&v, &w, &ran, &cancelled);
    }
    return scn_result(&v);
}

const char *
crew_scenario_then_refused_cancel_race(void)
{
    size_t rounds = crew_scenario_scale(1000, 200);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_pool *pool = NULL;
        pthread_t resolver, canceller;
        uint64_t ran = 0, cancelled = 0;
        struct waiting w;

        if (!SCN_CHECK(&v, crew_pool_create(&pool, &options) == 0,
                       "crew_pool_create failed"))
            break;
        waiting_init(&w, WAITING_MAX, pool, false, 3);
        pthread_create(&resolver, NULL, waiting_resolve, &w);
        pthread_create(&canceller, NULL, waiting_cancel, &w);
        pthread_barrier_wait(&w.start);
        crew_pool_shutdown(pool, CREW_DRAIN);
        pthread_join(resolver, NULL);
        pthread_join(canceller, NULL);
        waiting_check(&v, &w, &ran, &cancelled);
        /* The workers have exited: the counts are final. */
        tc_check_stats(&v, pool, ran, cancelled);
        crew_pool_destroy(pool);
    }
    return scn_result(&v);
}
