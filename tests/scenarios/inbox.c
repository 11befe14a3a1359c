/*
 * The inbox's races, for both front ends (TSan runs them through the
 * driver):
 *
 * - inbox_watchers_race: several threads submit tasks and watch them
 *   while one thread, as an event loop would, polls the descriptor and
 *   takes; every delivery comes exactly once, with its user pointer, and
 *   the descriptor is quiet once all are taken.
 * - inbox_destroy_while_resolving: an inbox is destroyed while workers
 *   resolve the futures it watches; nothing is delivered afterwards,
 *   nothing is used after it is freed, nothing leaks (ASan, TSan).
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define IW_RACERS 4

struct iw_racer {
    crew_pool *pool;
    crew_inbox *inbox;
    size_t base, count;
    uint64_t rng;
    int err;
    pthread_t thread;
};

static int
iw_task(crew_task *task, void *arg)
{
    (void)task;
    scn_spin((unsigned)(uintptr_t)arg);
    return 0;
}

static void *
iw_race(void *arg)
{
    struct iw_racer *r = arg;

    for (size_t i = 0; i < r->count && r->err == 0; i++) {
        crew_future *f;
        r->err = scn_submit(r->pool, iw_task,
                            (void *)(uintptr_t)scn_below(&r->rng, 500), &f);
        if (r->err == 0) {
            r->err = crew_inbox_watch(r->inbox, f, (void *)(r->base + i));
            crew_future_release(f);
        }
    }
    return NULL;
}

const char *
crew_scenario_inbox_watchers_race(void)
{
    size_t per = crew_scenario_scale(20000, 5000);
    size_t total = per * IW_RACERS, taken = 0;
    crew_pool_options options = {.threads = 2};
    struct iw_racer racers[IW_RACERS];
    struct scn_verdict v = {NULL};
    atomic_uchar *seen = calloc(total, sizeof(*seen));
    crew_inbox *inbox = NULL;
    crew_pool *pool = NULL;

    if (seen == NULL)
        return "out of memory";
    if (crew_pool_create(&pool, &options) != 0 ||
        crew_inbox_create(&inbox) != 0) {
        crew_pool_destroy(pool);
        free(seen);
        return "could not make a pool and an inbox";
    }
    for (int k = 0; k < IW_RACERS; k++) {
        racers[k] = (struct iw_racer){.pool = pool,
                                      .inbox = inbox,
                                      .base = (size_t)k * per,
                                      .count = per,
                                      .rng = scn_seed(700 + (uint64_t)k)};
        pthread_create(&racers[k].thread, NULL, iw_race, &racers[k]);
    }
    while (taken < total && !scn_failed(&v)) {
        struct pollfd p = {.fd = crew_inbox_fd(inbox), .events = POLLIN};
        crew_future *got[64];
        void *users[64];
        size_t n;

        /* The driver's watchdog ends a hang: a delivery that never came. */
        if (!SCN_CHECK(&v, poll(&p, 1, -1) >= 0, "poll failed"))
            break;
        n = crew_inbox_take(inbox, got, users, 64);
        /* Only this thread takes: readable means a delivery waits. */
        SCN_CHECK(&v, n > 0,
                  "the descriptor polled readable with nothing to take");
        for (size_t i = 0; i < n; i++) {
            size_t id = (size_t)(uintptr_t)users[i];
            if (SCN_CHECK(&v, id < total, "a delivery with a foreign user"))
                SCN_CHECK(&v, atomic_fetch_add(&seen[id], 1) == 0,
                          "a future was delivered twice");
            SCN_CHECK(&v, crew_future_state(got[i]) == CREW_SUCCEEDED,
                      "a delivered future had not succeeded");
            crew_future_release(got[i]);
        }
        taken += n;
    }
    for (int k = 0; k < IW_RACERS; k++) {
        pthread_join(racers[k].thread, NULL);
        SCN_CHECK(&v, racers[k].err == 0, "a watcher's call failed");
    }
    if (!scn_failed(&v)) {
        struct pollfd p = {.fd = crew_inbox_fd(inbox), .events = POLLIN};
        SCN_CHECK(&v, poll(&p, 1, 0) == 0,
                  "the descriptor stayed readable after the last take");
    }
    crew_inbox_destroy(inbox);
    crew_pool_destroy(pool);
    free(seen);
    return scn_result(&v);
}

const char *
crew_scenario_inbox_destroy_while_resolving(void)
{
    size_t rounds = crew_scenario_scale(2000, 500);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    uint64_t rng = scn_seed(800);
    crew_pool *pool = NULL;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *f[8];
        crew_inbox *inbox = NULL;
        size_t n = 0;

        if (!SCN_CHECK(&v, crew_inbox_create(&inbox) == 0,
                       "crew_inbox_create failed"))
            break;
        for (; n < 8; n++) {
            if (scn_submit(pool, iw_task,
                           (void *)(uintptr_t)scn_below(&rng, 2000),
                           &f[n]) != 0)
                break;
            if (crew_inbox_watch(inbox, f[n], NULL) != 0) {
                crew_future_release(f[n]);
                break;
            }
        }
        SCN_CHECK(&v, n == 8, "a submission or a watch failed");
        /* Some of these are resolving on the workers right now. */
        scn_spin(scn_below(&rng, 3000));
        crew_inbox_destroy(inbox);
        SCN_CHECK(&v, crew_wait_all(f, n, NULL) == 0,
                  "a watched task failed");
        scn_release_all(f, n);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}
