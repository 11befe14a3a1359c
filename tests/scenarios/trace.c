/*
 * Observing a pool while it works, for both front ends (TSan runs them
 * through the driver):
 *
 * - trace_toggle_under_load: two threads submit tasks to a 2-thread pool
 *   (some running a parallel loop from the worker, some spawning a call)
 *   and the main thread runs parallel loops of its own, while a toggler
 *   starts and stops traces, small rings that wrap, written to memory or
 *   discarded, and reads the latency. Every start and stop succeeds; the
 *   count of tasks timed never goes backwards, and never passes what ran.
 * - watchdog_toggle_under_load: the same load, some tasks running for a
 *   few milliseconds, while the toggler sets, replaces and removes a
 *   watchdog of one millisecond. Every call succeeds; every report is of
 *   one of the pool's workers and of a run past its limit.
 */
#define _GNU_SOURCE /* open_memstream() */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TT_SUBMITTERS 2

struct tt {
    crew_pool *pool;
    atomic_bool stop;
    atomic_uint_fast64_t ran; /* tasks and chunks that ran */
    struct scn_verdict *verdict;
    atomic_uint reports;
    atomic_uint finished; /* submitters done */
    atomic_uint tasks;    /* tasks begun: what each does */
};

struct tt_submitter {
    struct tt *tt;
    size_t count;
    int err;
    pthread_t thread;
};

static int
tt_range(crew_task *task, size_t lo, size_t hi, void *arg)
{
    struct tt *tt = arg;

    (void)task;
    atomic_fetch_add(&tt->ran, hi - lo);
    return 0;
}

static int
tt_call(crew_task *task, void *arg)
{
    (void)task;
    atomic_fetch_add(&((struct tt *)arg)->ran, 1);
    return 0;
}

/* Spins for about `ms` milliseconds of the monotonic clock. */
static void
tt_spin(unsigned ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 +
                 (now.tv_nsec - start.tv_nsec) / 1000000 <
             ms);
}

static int
tt_task(crew_task *task, void *arg)
{
    struct tt *tt = arg;
    unsigned kind = atomic_fetch_add(&tt->tasks, 1) % 64;

    atomic_fetch_add(&tt->ran, 1);
    if (kind == 0)
        return crew_parallel_for(crew_task_pool(task), 0, 8, 1, tt_range, tt,
                                 NULL);
    if (kind == 1) {
        crew_frame frame;

        if (crew_spawn(task, &frame, tt_call, tt) != 0)
            return EIO;
        return crew_sync(task, &frame);
    }
    if (kind == 2)
        tt_spin(3);
    return kind == 3 ? crew_task_fail(task, EIO, "planned") : 0;
}

static void *
tt_submit(void *arg)
{
    struct tt_submitter *s = arg;

    for (size_t i = 0; i < s->count && s->err == 0; i++)
        s->err = scn_submit(s->tt->pool, tt_task, s->tt, NULL);
    atomic_fetch_add(&s->tt->finished, 1);
    return NULL;
}

/* Runs the load on a fresh pool while toggle(tt) runs on this thread
 * until the submitters are done; then checks what it can. */
static const char *
tt_run(void (*toggle)(struct tt *tt), size_t per)
{
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct tt tt = {.verdict = &v};
    struct tt_submitter subs[TT_SUBMITTERS];

    if (crew_pool_create(&tt.pool, &options) != 0)
        return "crew_pool_create failed";
    for (int k = 0; k < TT_SUBMITTERS; k++) {
        subs[k] = (struct tt_submitter){.tt = &tt, .count = per};
        pthread_create(&subs[k].thread, NULL, tt_submit, &subs[k]);
    }
    toggle(&tt);
    for (int k = 0; k < TT_SUBMITTERS; k++) {
        pthread_join(subs[k].thread, NULL);
        SCN_CHECK(&v, subs[k].err == 0, "a submission failed");
    }
    crew_pool_destroy(tt.pool);
    return scn_result(&v);
}

/* Whether to go on toggling: until the submitters are done. */
static bool
tt_more(struct tt *tt)
{
    return atomic_load(&tt->finished) < TT_SUBMITTERS &&
           !scn_failed(tt->verdict);
}

static void
tt_toggle_traces(struct tt *tt)
{
    struct scn_verdict *v = tt->verdict;
    uint64_t timed = 0;

    for (unsigned round = 0; tt_more(tt); round++) {
        crew_latency latency;
        char *text = NULL;
        size_t size = 0;
        FILE *json = round % 2 == 0 ? open_memstream(&text, &size) : NULL;

        SCN_CHECK(v, crew_trace_start(tt->pool, 1 + round % 64) == 0,
                  "crew_trace_start failed");
        /* Loops from outside the pool: chunks on this thread's track. */
        SCN_CHECK(
            v, crew_parallel_for(tt->pool, 0, 16, 2, tt_range, tt, NULL) == 0,
            "crew_parallel_for failed");
        SCN_CHECK(v, crew_trace_stop(tt->pool, json) == 0,
                  "crew_trace_stop failed");
        if (json != NULL) {
            fclose(json);
            SCN_CHECK(v, size > 0 && text[size - 1] == '\n',
                      "the trace was cut short");
            free(text);
        }
        SCN_CHECK(v, crew_pool_latency_get(tt->pool, &latency) == 0,
                  "crew_pool_latency_get failed");
        SCN_CHECK(v, latency.tasks >= timed, "the tasks timed went backwards");
        SCN_CHECK(v, latency.tasks <= atomic_load(&tt->ran),
                  "more tasks timed than ran");
        SCN_CHECK(v, latency.run_p50_ns <= latency.run_max_ns,
                  "a median past the maximum");
        timed = latency.tasks;
    }
}

const char *
crew_scenario_trace_toggle_under_load(void)
{
    return tt_run(tt_toggle_traces, crew_scenario_scale(20000, 4000));
}

static void
tt_note(const crew_stuck *stuck, void *user)
{
    struct tt *tt = user;

    SCN_CHECK(tt->verdict, stuck->worker < 2, "a report of no worker");
    SCN_CHECK(tt->verdict, stuck->running_ns > 1000000,
              "a report of a short run");
    atomic_fetch_add(&tt->reports, 1);
}

static void
tt_toggle_watchdog(struct tt *tt)
{
    struct scn_verdict *v = tt->verdict;

    for (unsigned round = 0; tt_more(tt); round++) {
        SCN_CHECK(v, crew_pool_watchdog(tt->pool, 1000000, tt_note, tt) == 0,
                  "setting the watchdog failed");
        tt_spin(2);
        SCN_CHECK(v, crew_pool_watchdog(tt->pool, 1500000, tt_note, tt) == 0,
                  "replacing the watchdog failed");
        tt_spin(2);
        if (round % 2 == 0)
            SCN_CHECK(v, crew_pool_watchdog(tt->pool, 0, NULL, NULL) == 0,
                      "removing the watchdog failed");
    }
}

const char *
crew_scenario_watchdog_toggle_under_load(void)
{
    return tt_run(tt_toggle_watchdog, crew_scenario_scale(4000, 1000));
}
