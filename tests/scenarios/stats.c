/*
 * Reading a pool's statistics while it works, for both front ends (TSan
 * runs it through the driver):
 *
 * - stats_read_under_load: two threads submit tasks (some failing, some
 *   submitting children) to a 2-thread pool while a third reads
 *   crew_pool_stats_get() in a loop. Every snapshot is plausible: no
 *   more busy workers than threads, counters that never go backwards;
 *   once the pool is shut down the totals are exact.
 * - stats_add_up_once_resolved: see below.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#define SR_SUBMITTERS 2

struct sr {
    crew_pool *pool;
    atomic_bool stop;
    struct scn_verdict *verdict;
    uint64_t reads;
};

struct sr_submitter {
    crew_pool *pool;
    size_t count;
    uint64_t failing; /* tasks that fail, counted by the submitter */
    int err;
    pthread_t thread;
};

static int
sr_leaf(crew_task *task, void *arg)
{
    return arg != NULL ? crew_task_fail(task, EIO, "planned") : 0;
}

/* Submits a child to its own deque: counted by its worker. */
static int
sr_parent(crew_task *task, void *arg)
{
    (void)arg;
    return crew_submit(crew_task_pool(task), sr_leaf, NULL, NULL);
}

static void *
sr_submit(void *arg)
{
    struct sr_submitter *s = arg;

    for (size_t i = 0; i < s->count && s->err == 0; i++) {
        bool fail = i % 5 == 0;
        crew_fn fn = i % 3 == 0 ? sr_parent : sr_leaf;

        s->err =
            scn_submit(s->pool, fn, fail && fn == sr_leaf ? s : NULL, NULL);
        s->failing += fail && fn == sr_leaf;
    }
    return NULL;
}

static void *
sr_read(void *arg)
{
    struct sr *r = arg;
    crew_pool_stats last = {0};

    while (!atomic_load(&r->stop)) {
        crew_pool_stats s;

        if (!SCN_CHECK(r->verdict, crew_pool_stats_get(r->pool, &s) == 0,
                       "crew_pool_stats_get failed"))
            break;
        SCN_CHECK(r->verdict, s.threads == 2, "threads changed");
        SCN_CHECK(r->verdict, s.busy <= s.threads,
                  "more busy workers than workers");
        SCN_CHECK(r->verdict,
                  s.submitted >= last.submitted &&
                      s.succeeded >= last.succeeded &&
                      s.failed >= last.failed && s.stolen >= last.stolen,
                  "a counter went backwards");
        last = s;
        r->reads++;
    }
    return NULL;
}

const char *
crew_scenario_stats_read_under_load(void)
{
    size_t per = crew_scenario_scale(30000, 5000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct sr_submitter subs[SR_SUBMITTERS];
    struct sr reader = {.verdict = &v};
    pthread_t reader_thread;
    uint64_t failing = 0, parents = 0;
    crew_pool_stats s;

    if (crew_pool_create(&reader.pool, &options) != 0)
        return "crew_pool_create failed";
    pthread_create(&reader_thread, NULL, sr_read, &reader);
    for (int k = 0; k < SR_SUBMITTERS; k++) {
        subs[k] = (struct sr_submitter){.pool = reader.pool, .count = per};
        pthread_create(&subs[k].thread, NULL, sr_submit, &subs[k]);
    }
    for (int k = 0; k < SR_SUBMITTERS; k++) {
        pthread_join(subs[k].thread, NULL);
        SCN_CHECK(&v, subs[k].err == 0, "a submission failed");
        failing += subs[k].failing;
        parents += (per + 2) / 3;
    }
    crew_pool_shutdown(reader.pool, CREW_DRAIN);
    atomic_store(&reader.stop, true);
    pthread_join(reader_thread, NULL);
    crew_pool_stats_get(reader.pool, &s);
    SCN_CHECK(&v, s.submitted == SR_SUBMITTERS * per + parents,
              "the submissions do not add up");
    SCN_CHECK(&v, s.failed == failing, "the failures do not add up");
    SCN_CHECK(&v, s.succeeded + s.failed + s.cancelled == s.submitted,
              "the outcomes do not add up");
    SCN_CHECK(&v, s.queued == 0 && s.busy == 0, "a shut-down pool has work");
    SCN_CHECK(&v, reader.reads > 0, "the reader never read");
    crew_pool_destroy(reader.pool);
    return scn_result(&v);
}

/*
 * stats_add_up_once_resolved: the outcome of a task that runs is counted
 * before its future resolves, so the thread that saw every future of a
 * batch resolve reads every one of them in `succeeded` and `failed`,
 * before the workers have done anything more. A task cancelled in its
 * queue is counted when a worker takes its husk out: by the shutdown at
 * the latest, never before it was cancelled. Batches of tasks, some
 * failing, some cancelled, on a 2-thread pool.
 */
#define SA_BATCH 8

const char *
crew_scenario_stats_add_up_once_resolved(void)
{
    size_t rounds = crew_scenario_scale(5000, 1000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    crew_pool *pool = NULL;
    uint64_t accepted = 0, husks = 0;
    crew_pool_stats s;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *batch[SA_BATCH];
        size_t n = 0;

        for (; n < SA_BATCH; n++) {
            void *fail = (r + n) % 3 == 0 ? &v : NULL;
            if (!SCN_CHECK(&v, scn_submit(pool, sr_leaf, fail, &batch[n]) == 0,
                           "crew_submit failed"))
                break;
        }
        accepted += n;
        if (n > 0 && r % 4 == 0)
            crew_future_cancel(batch[n - 1]);
        for (size_t i = 0; i < n; i++) {
            crew_future_wait(batch[i]);
            /* The tasks ignore cancellation: cancelled means never run. */
            husks += crew_future_state(batch[i]) == CREW_CANCELLED;
        }
        if (SCN_CHECK(&v, crew_pool_stats_get(pool, &s) == 0,
                      "crew_pool_stats_get failed")) {
            SCN_CHECK(&v, s.submitted == accepted,
                      "a submission went uncounted");
            SCN_CHECK(&v, s.succeeded + s.failed == accepted - husks,
                      "an outcome was counted after its future resolved");
            SCN_CHECK(&v, s.cancelled <= husks,
                      "a cancellation was counted twice");
        }
        scn_release_all(batch, n);
    }
    crew_pool_shutdown(pool, CREW_DRAIN);
    if (SCN_CHECK(&v, crew_pool_stats_get(pool, &s) == 0,
                  "crew_pool_stats_get failed"))
        SCN_CHECK(&v, s.cancelled == husks && s.queued == 0,
                  "a husk was never counted");
    crew_pool_destroy(pool);
    return scn_result(&v);
}
