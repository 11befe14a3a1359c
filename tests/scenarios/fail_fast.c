/*
 * crew_when_all_ex's races, for both front ends (TSan runs them through
 * the driver):
 *
 * - fail_fast_race: each round submits a few tasks to a 2-thread pool,
 *   some of which fail, and joins them at once with CREW_FAIL_FAST,
 *   CREW_CANCEL_REST or both, while the workers are resolving them (and
 *   cancelling the rest, from inside a resolution). Invariants: the join
 *   fails exactly when an input failed; a fail-fast aggregate holds one
 *   failure, of an input that did fail, the same error object; without
 *   fail-fast the aggregate names every failed input and the join waits
 *   for all; a cancelled task never ran; the join's callback runs once.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define FF_MAX 8

struct ff_task {
    unsigned spin; /* work before deciding */
    bool fail;
    atomic_bool ran;
};

static int
ff_run(crew_task *task, void *arg)
{
    struct ff_task *t = arg;

    atomic_store(&t->ran, true);
    scn_spin(t->spin);
    return t->fail ? crew_task_fail(task, EIO, "planned") : 0;
}

static void
ff_check_round(struct scn_verdict *v, crew_future *all, crew_future **in,
               size_t n, unsigned flags, struct ff_task *tasks)
{
    const crew_error *e;
    size_t failed = 0;
    int err = crew_future_wait(all);

    /* Without fail-fast the join waits for every input. */
    for (size_t i = 0; i < n && (flags & CREW_FAIL_FAST) == 0; i++)
        SCN_CHECK(v, scn_resolved(crew_future_state(in[i])),
                  "a join without fail-fast resolved before an input");
    for (size_t i = 0; i < n; i++) {
        crew_future_wait(in[i]);
        failed += crew_future_state(in[i]) == CREW_FAILED;
        if (crew_future_state(in[i]) == CREW_CANCELLED)
            SCN_CHECK(v, !atomic_load(&tasks[i].ran),
                      "a task both ran and was cancelled");
    }
    if (failed == 0) {
        SCN_CHECK(v, err == 0, "a join without failures did not succeed");
        return;
    }
    if (!SCN_CHECK(v, err == CREW_EAGGREGATE,
                   "a join with a failed input did not fail"))
        return;
    e = crew_future_error(all);
    if ((flags & CREW_FAIL_FAST) != 0) {
        size_t p = SIZE_MAX;
        const crew_error *inner = crew_error_inner(e, 0, &p);

        SCN_CHECK(v, crew_error_count(e) == 1,
                  "a fail-fast aggregate held more than one failure");
        if (SCN_CHECK(v, p < n, "a fail-fast failure without a position"))
            SCN_CHECK(v,
                      crew_future_state(in[p]) == CREW_FAILED &&
                          inner == crew_future_error(in[p]),
                      "a fail-fast failure is not its input's");
        return;
    }
    SCN_CHECK(v, crew_error_count(e) == failed,
              "an aggregate missed a failure");
    for (size_t k = 0; k < crew_error_count(e); k++) {
        size_t p = SIZE_MAX;
        crew_error_inner(e, k, &p);
        SCN_CHECK(v, p < n && crew_future_state(in[p]) == CREW_FAILED,
                  "an aggregate named an input that did not fail");
    }
}

const char *
crew_scenario_fail_fast_race(void)
{
    static const unsigned flag_sets[] = {CREW_FAIL_FAST, CREW_CANCEL_REST,
                                         CREW_FAIL_FAST | CREW_CANCEL_REST};
    size_t rounds = crew_scenario_scale(4000, 1000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    uint64_t rng = scn_seed(900);
    crew_pool *pool = NULL;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct ff_task tasks[FF_MAX];
        struct scn_seen seen;
        crew_future *in[FF_MAX], *all = NULL;
        size_t n = 2 + scn_below(&rng, FF_MAX - 1);
        unsigned flags = flag_sets[scn_below(&rng, 3)];
        size_t made = 0;

        for (; made < n; made++) {
            tasks[made] = (struct ff_task){
                .spin = scn_below(&rng, 300),
                .fail = scn_below(&rng, 4) == 0,
            };
            if (scn_submit(pool, ff_run, &tasks[made], &in[made]) != 0)
                break;
        }
        if (!SCN_CHECK(&v, made == n, "a submission failed") ||
            !SCN_CHECK(&v, crew_when_all_ex(in, n, flags, &all) == 0,
                       "crew_when_all_ex failed")) {
            scn_release_all(in, made);
            break;
        }
        scn_seen_init(&seen);
        SCN_CHECK(&v, crew_future_on_complete(all, scn_seen_cb, &seen) == 0,
                  "crew_future_on_complete failed");
        ff_check_round(&v, all, in, n, flags, tasks);
        SCN_CHECK(&v, scn_gate_await(&seen.calls, 1) == 1,
                  "the join's callback never ran");
        SCN_CHECK(&v, scn_gate_count(&seen.calls) == 1,
                  "the join's callback ran twice");
        crew_future_release(all);
        /* Every task has finished or been cancelled: the tasks' memory,
         * on this stack, is no longer in use. */
        scn_release_all(in, n);
        scn_gate_destroy(&seen.calls);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}
