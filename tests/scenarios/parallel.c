/*
 * crew_parallel_for's races, for both front ends (TSan runs them through
 * the driver):
 *
 * - parallel_for_race: loops from two outside threads and from tasks, on
 *   one 2-thread pool at once, some with a chunk that fails, with fixed
 *   and automatic grains. Invariants: without a failure every item is
 *   visited exactly once; with one, no item twice, the failing item's
 *   chunk in the aggregate at its first item, every inner error a
 *   chunk's own; the pool's counters add up after the shutdown.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define PF_ITEMS 2000

struct pf_loop {
    atomic_uchar visits[PF_ITEMS];
    size_t fail_at; /* SIZE_MAX: none */
};

static int
pf_chunk(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct pf_loop *l = arg;

    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&l->visits[i], 1, memory_order_relaxed);
    if (l->fail_at >= begin && l->fail_at < end)
        return crew_task_fail(task, EDOM, "%zu", begin);
    return 0;
}

/* Runs one loop and checks it; returns what failed, or NULL. */
static const char *
pf_one(crew_pool *pool, uint64_t *rng)
{
    struct pf_loop *l = calloc(1, sizeof(*l));
    size_t grain = scn_below(rng, 3) == 0 ? 0 : 1 + scn_below(rng, 200);
    crew_error *error = NULL;
    const char *why = NULL;
    int err;

    if (l == NULL)
        return "out of memory";
    l->fail_at = scn_below(rng, 3) == 0 ? scn_below(rng, PF_ITEMS) : SIZE_MAX;
    err = crew_parallel_for(pool, 0, PF_ITEMS, grain, pf_chunk, l, &error);
    for (size_t i = 0; i < PF_ITEMS && why == NULL; i++) {
        unsigned v = atomic_load(&l->visits[i]);
        if (v > 1)
            why = "an item was visited twice";
        else if (v == 0 && l->fail_at == SIZE_MAX)
            why = "an item was skipped without a failure";
    }
    if (why == NULL && l->fail_at == SIZE_MAX && err != 0)
        why = "a loop without failures did not succeed";
    if (why == NULL && l->fail_at != SIZE_MAX) {
        bool found = false;

        if (err != CREW_EAGGREGATE || crew_error_count(error) != 1)
            why = "a loop with one failing chunk did not report it alone";
        for (size_t k = 0; why == NULL && k < crew_error_count(error); k++) {
            size_t position = SIZE_MAX;
            crew_error_inner(error, k, &position);
            found |= position <= l->fail_at &&
                     (grain == 0 || l->fail_at - position < grain);
        }
        if (why == NULL && !found)
            why = "the failed chunk's position is wrong";
    }
    crew_error_release(error);
    free(l);
    return why;
}

struct pf_caller {
    crew_pool *pool;
    size_t loops;
    uint64_t rng;
    const char *why;
    pthread_t thread;
};

static void *
pf_call(void *arg)
{
    struct pf_caller *c = arg;

    for (size_t i = 0; i < c->loops && c->why == NULL; i++)
        c->why = pf_one(c->pool, &c->rng);
    return NULL;
}

static int
pf_task(crew_task *task, void *arg)
{
    struct pf_caller *c = arg;
    const char *why = pf_one(crew_task_pool(task), &c->rng);

    return why != NULL ? crew_task_fail(task, EPROTO, "%s", why) : 0;
}

const char *
crew_scenario_parallel_for_race(void)
{
    size_t loops = crew_scenario_scale(300, 60);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct pf_caller callers[2], in_tasks = {.rng = scn_seed(1200)};
    crew_pool *pool = NULL;
    crew_pool_stats s;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (int k = 0; k < 2; k++) {
        callers[k] = (struct pf_caller){
            .pool = pool, .loops = loops, .rng = scn_seed(1100 + (uint64_t)k)};
        pthread_create(&callers[k].thread, NULL, pf_call, &callers[k]);
    }
    /* Loops started from tasks, one at a time: each task uses the
     * caller's generator alone. */
    for (size_t i = 0; i < loops / 4 && !scn_failed(&v); i++) {
        crew_future *f;
        if (!SCN_CHECK(&v, scn_submit(pool, pf_task, &in_tasks, &f) == 0,
                       "a submission failed"))
            break;
        SCN_CHECK(&v, crew_future_wait(f) == 0,
                  "a loop inside a task went wrong");
        crew_future_release(f);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(callers[k].thread, NULL);
        if (callers[k].why != NULL)
            scn_fail(&v, callers[k].why);
    }
    crew_pool_shutdown(pool, CREW_DRAIN);
    crew_pool_stats_get(pool, &s);
    SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
              "the pool's counters do not add up");
    crew_pool_destroy(pool);
    return scn_result(&v);
}
