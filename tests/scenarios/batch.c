/*
 * Batches and reductions under races, for both front ends (TSan runs
 * them through the driver):
 *
 * - each_vs_shutdown: a thread submits batches of random sizes, every
 *   other one from a task (one push onto its worker's deque), some to a
 *   pool with max_queued, where they wait for room, while the pool is
 *   shut down, draining or cancelling, at a random moment. Invariants: a
 *   batch is accepted whole or refused whole (ESHUTDOWN, no slot set,
 *   nothing run, no arg_free); an accepted one resolves every future,
 *   runs each task at most once (exactly once when draining), and frees
 *   its arg once, after its last task resolved.
 * - reduce_race: reductions from two outside threads and from tasks on
 *   one 2-thread pool at once, each giving the bytes of the serial
 *   model of the documented tree.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EB_MAX 300 /* tasks a batch at most */

struct eb_batch {
    atomic_uchar runs[EB_MAX];
    atomic_uint freed;
    atomic_uint unresolved_at_free;
    crew_future *futures[EB_MAX];
    size_t n;
    uint64_t rng;       /* a batch submitted from a task: its draw */
    const char *why;    /* ... and what its submission found wrong */
    crew_future *outer; /* that task */
};

static int
eb_task(crew_task *task, size_t index, void *arg)
{
    struct eb_batch *b = arg;

    (void)task;
    atomic_fetch_add_explicit(&b->runs[index], 1, memory_order_relaxed);
    return 0;
}

/* The slots are filled before any task runs: arg_free may read them. */
static void
eb_free(void *arg)
{
    struct eb_batch *b = arg;

    for (size_t i = 0; i < b->n; i++) {
        if (crew_future_state(b->futures[i]) < CREW_SUCCEEDED)
            atomic_fetch_add(&b->unresolved_at_free, 1);
    }
    atomic_fetch_add(&b->freed, 1);
}

/* Submits one batch and, once the pool is gone, checks it. */
static const char *
eb_submit(crew_pool *pool, struct eb_batch *b, uint64_t *rng)
{
    b->n = 1 + scn_below(rng, EB_MAX);
    for (size_t i = 0; i < b->n; i++)
        b->futures[i] = (crew_future *)(uintptr_t)1;
    int err = crew_submit_each(pool, b->n, eb_task, b, eb_free, 0, b->futures);

    if (err == 0)
        return NULL;
    if (err != ESHUTDOWN)
        return "a batch failed with neither 0 nor ESHUTDOWN";
    for (size_t i = 0; i < b->n; i++) {
        if (b->futures[i] != NULL)
            return "a refused batch left a slot set";
    }
    b->n = 0; /* refused: nothing of it may run */
    return NULL;
}

static const char *
eb_check(struct eb_batch *b, bool drained, bool refused)
{
    if (refused) {
        for (size_t i = 0; i < EB_MAX; i++) {
            if (atomic_load(&b->runs[i]) != 0)
                return "a task of a refused batch ran";
        }
        return atomic_load(&b->freed) == 0 ? NULL
                                            : "a refused batch freed its arg";
    }
    for (size_t i = 0; i < b->n; i++) {
        crew_state s = crew_future_state(b->futures[i]);
        unsigned runs = atomic_load(&b->runs[i]);

        if (s != CREW_SUCCEEDED && s != CREW_CANCELLED)
            return "a task of an accepted batch did not resolve";
        if (runs != (s == CREW_SUCCEEDED))
            return "a task ran other than once when it succeeded";
        if (drained && s != CREW_SUCCEEDED)
            return "a drained pool cancelled a task of a batch";
    }
    crew_future_release_all(b->futures, b->n);
    if (atomic_load(&b->freed) != 1)
        return "an accepted batch did not free its arg once";
    if (atomic_load(&b->unresolved_at_free) != 0)
        return "a batch freed its arg before its last task resolved";
    return NULL;
}

/* A task submitting its batch from a worker: refused (n 0) if the pool
 * is cancelling, or if this task itself is cancelled before it runs. */
static int
eb_inner(crew_task *task, void *arg)
{
    struct eb_batch *b = arg;

    b->why = eb_submit(crew_task_pool(task), b, &b->rng);
    return 0;
}

struct eb_run {
    crew_pool *pool;
    struct eb_batch *batches;
    size_t count, submitted;
    uint64_t rng;
    const char *why;
};

static void *
eb_submitter(void *arg)
{
    struct eb_run *r = arg;

    for (r->submitted = 0; r->submitted < r->count && r->why == NULL;
         r->submitted++) {
        struct eb_batch *b = &r->batches[r->submitted];

        if (r->submitted % 2 == 0) {
            r->why = eb_submit(r->pool, b, &r->rng);
            continue;
        }
        b->rng = r->rng + r->submitted;
        int err = crew_submit(r->pool, eb_inner, b, &b->outer);
        if (err != 0 && err != ESHUTDOWN)
            r->why = "crew_submit failed with neither 0 nor ESHUTDOWN";
    }
    return NULL;
}

const char *
crew_scenario_each_vs_shutdown(void)
{
    size_t rounds = crew_scenario_scale(60, 15);
    uint64_t rng = scn_seed(1400);

    for (size_t round = 0; round < rounds; round++) {
        crew_pool_options o = {.threads = 2,
                               .max_queued = scn_below(&rng, 2) ? 0 : EB_MAX};
        bool drain = scn_below(&rng, 2) == 0;
        struct eb_run r = {.count = 8, .rng = scn_seed(1401 + round)};
        pthread_t thread;
        const char *why = NULL;

        r.batches = calloc(r.count, sizeof(*r.batches));
        if (r.batches == NULL || crew_pool_create(&r.pool, &o) != 0) {
            free(r.batches);
            return "no pool";
        }
        if (pthread_create(&thread, NULL, eb_submitter, &r) != 0) {
            crew_pool_destroy(r.pool);
            free(r.batches);
            return "no thread";
        }
        scn_spin((unsigned)scn_below(&rng, 200000));
        crew_pool_shutdown(r.pool, drain ? CREW_DRAIN : CREW_CANCEL);
        pthread_join(thread, NULL);
        crew_pool_destroy(r.pool);
        why = r.why;
        for (size_t i = 0; i < r.count; i++) {
            /* A batch from a task: its task ran (and submitted) or was
             * cancelled before it could; either way it is over. */
            if (why == NULL)
                why = r.batches[i].why;
            crew_future_release(r.batches[i].outer);
        }
        for (size_t i = 0; i < r.count && why == NULL; i++)
            why = eb_check(&r.batches[i], drain,
                           i >= r.submitted || r.batches[i].n == 0);
        free(r.batches);
        if (why != NULL)
            return why;
    }
    return NULL;
}

/* Reductions: the order-sensitive sum of testkit.h, against its serial
 * model. */
static const char *
rr_one(crew_pool *pool, uint64_t *rng)
{
    size_t n = 1 + scn_below(rng, 20000);
    size_t grain = 1 + scn_below(rng, 300);
    double sum = 0.0, model = scn_reduce_model(0, n, grain);

    if (crew_parallel_reduce(pool, 0, n, grain, scn_reduce_sum,
                             scn_reduce_add, NULL, &sum, sizeof(sum),
                             NULL) != 0)
        return "a reduction failed";
    return memcmp(&sum, &model, sizeof(sum)) == 0
               ? NULL
               : "a reduction's bytes differ from the tree's";
}

struct rr_caller {
    crew_pool *pool;
    size_t count;
    uint64_t rng;
    const char *why;
    pthread_t thread;
};

static void *
rr_call(void *arg)
{
    struct rr_caller *c = arg;

    for (size_t i = 0; i < c->count && c->why == NULL; i++)
        c->why = rr_one(c->pool, &c->rng);
    return NULL;
}

static int
rr_task(crew_task *task, void *arg)
{
    struct rr_caller *c = arg;
    const char *why = rr_one(crew_task_pool(task), &c->rng);

    return why != NULL ? crew_task_fail(task, EPROTO, "%s", why) : 0;
}

const char *
crew_scenario_reduce_race(void)
{
    size_t count = crew_scenario_scale(60, 15);
    crew_pool_options o = {.threads = 2};
    struct rr_caller callers[2], in_tasks[8];
    crew_future *tasks[8];
    crew_error *error = NULL;
    const char *why = NULL;
    crew_pool *pool;
    size_t started = 0;

    if (crew_pool_create(&pool, &o) != 0)
        return "no pool";
    for (size_t i = 0; i < 2; i++) {
        callers[i] = (struct rr_caller){
            .pool = pool, .count = count, .rng = scn_seed(1501 + i)};
        if (pthread_create(&callers[i].thread, NULL, rr_call, &callers[i]) ==
            0)
            started++;
    }
    for (size_t i = 0; i < 8; i++) {
        in_tasks[i] = (struct rr_caller){.rng = scn_seed(1510 + i)};
        if (crew_submit(pool, rr_task, &in_tasks[i], &tasks[i]) != 0)
            tasks[i] = NULL;
    }
    for (size_t i = 0; i < started; i++) {
        pthread_join(callers[i].thread, NULL);
        if (why == NULL)
            why = callers[i].why;
    }
    for (size_t i = 0; i < 8; i++) {
        if (tasks[i] == NULL) {
            why = why != NULL ? why : "crew_submit failed";
            continue;
        }
        if (crew_future_wait(tasks[i]) != 0 && why == NULL) {
            error = crew_error_retain(crew_future_error(tasks[i]));
            why = "a reduction from a task went wrong";
        }
        crew_future_release(tasks[i]);
    }
    crew_error_release(error);
    crew_pool_destroy(pool);
    if (why == NULL && started < 2)
        why = "no thread";
    return why;
}
