/*
 * crew_pool_stats_get(): a fresh pool's zeros; bad input; each counter
 * against what the test made happen (tasks that succeed, fail, are
 * cancelled in their queue or by a CREW_CANCEL shutdown, are stolen);
 * busy workers and queued tasks while workers are held, where a task
 * cancelled in its queue, a continuation not yet queued and a loop's
 * helper count as none; counts that add up once the pool is shut down. Workers
 * count a task after resolving it, so exact totals are read once the workers
 * have exited (after crew_pool_shutdown), never raced against. Reading while
 * tasks run is the scenario stats_read_under_load (scenarios/stats.c), which
 * the TSan driver runs too.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

TestSuite(stats, CREW_SUITE);

static crew_pool_stats
stats_of(const crew_pool *pool)
{
    crew_pool_stats s;

    memset(&s, 0xa5, sizeof(s));
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    return s;
}

static int
fail_task(crew_task *task, void *arg)
{
    (void)arg;
    return crew_task_fail(task, EIO, "planned");
}

/* The futures' outcomes, counted as the pool should count them. */
static void
assert_outcomes_match(const crew_pool_stats *s, crew_future **fs, size_t n)
{
    uint64_t ok = 0, failed = 0, cancelled = 0;

    for (size_t i = 0; i < n; i++) {
        crew_state state = crew_future_state(fs[i]);
        ok += state == CREW_SUCCEEDED;
        failed += state == CREW_FAILED;
        cancelled += state == CREW_CANCELLED;
    }
    cr_assert_eq(s->succeeded, ok, "succeeded %llu, futures %llu",
                 (unsigned long long)s->succeeded, (unsigned long long)ok);
    cr_assert_eq(s->failed, failed, "failed %llu, futures %llu",
                 (unsigned long long)s->failed, (unsigned long long)failed);
    cr_assert_eq(s->cancelled, cancelled, "cancelled %llu, futures %llu",
                 (unsigned long long)s->cancelled,
                 (unsigned long long)cancelled);
    cr_assert_eq(s->submitted, s->succeeded + s->failed + s->cancelled,
                 "an idle pool's counts do not add up");
}

CREW_TEST(stats, a_new_pool_has_done_nothing)
{
    crew_pool *pool = crew_test_pool(3);
    crew_pool_stats s = stats_of(pool);

    cr_assert_eq(s.threads, 3);
    cr_assert_eq(s.busy, 0);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.submitted, 0);
    cr_assert_eq(s.succeeded, 0);
    cr_assert_eq(s.failed, 0);
    cr_assert_eq(s.cancelled, 0);
    cr_assert_eq(s.stolen, 0);
    crew_pool_destroy(pool);
}

CREW_TEST(stats, the_reserved_counters_are_filled_with_zeros)
{
    crew_pool *pool = crew_test_pool(1);
    crew_pool_stats s;

    memset(&s, 0xa5, sizeof(s));
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    for (size_t i = 0; i < sizeof(s.reserved) / sizeof(s.reserved[0]); i++)
        cr_assert_eq(s.reserved[i], 0, "reserved[%zu] is not zero", i);
    crew_pool_destroy(pool);
}

CREW_TEST(stats, rejects_bad_input_and_writes_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    crew_pool_stats s, untouched;

    memset(&s, 0x5a, sizeof(s));
    untouched = s;
    cr_assert_eq(crew_pool_stats_get(NULL, &s), EINVAL);
    cr_assert_eq(memcmp(&s, &untouched, sizeof(s)), 0, "stats were written");
    cr_assert_eq(crew_pool_stats_get(pool, NULL), EINVAL);
    crew_pool_destroy(pool);
}

CREW_TEST(stats, counts_each_outcome_once_the_pool_is_idle)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *fs[300];
    crew_pool_stats s;

    for (size_t i = 0; i < 300; i++)
        cr_assert_eq(crew_submit(pool, i % 7 == 3 ? fail_task : scn_ok_task,
                                 NULL, &fs[i]),
                     0);
    cr_assert_eq(crew_wait_all(fs, 300, NULL), CREW_EAGGREGATE);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 300);
    cr_assert_eq(s.failed, 43, "failed %llu", (unsigned long long)s.failed);
    cr_assert_eq(s.succeeded, 257);
    assert_outcomes_match(&s, fs, 300);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.busy, 0);
    scn_release_all(fs, 300);
    crew_pool_destroy(pool);
}

CREW_TEST(stats, busy_and_queued_while_the_workers_are_held)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(2);
    crew_future *held[2], *fs[7];
    crew_pool_stats s;

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held[0]), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 2, &held[1]), 0);
    for (size_t i = 0; i < 7; i++)
        cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, &fs[i]), 0);
    s = stats_of(pool);
    cr_assert_eq(s.busy, 2, "busy %u", s.busy);
    cr_assert_eq(s.queued, 7, "queued %zu", s.queued);
    cr_assert_eq(s.submitted, 9);
    cr_assert_eq(s.succeeded + s.failed + s.cancelled, 0);

    /* Cancelled in their queue: resolved at once, but counted where a
     * worker takes their husks out, and queued until then. */
    cr_assert_eq(crew_future_cancel(fs[2]), 0);
    cr_assert_eq(crew_future_cancel(fs[5]), 0);
    cr_assert_eq(crew_future_state(fs[2]), CREW_CANCELLED);
    s = stats_of(pool);
    cr_assert_eq(s.queued, 7, "queued %zu", s.queued);
    cr_assert_eq(s.cancelled, 0);
    cr_assert_eq(s.busy, 2);
    scn_hold_open(&hold);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    s = stats_of(pool);
    cr_assert_eq(s.cancelled, 2);
    cr_assert_eq(s.succeeded, 7);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.busy, 0);
    scn_release_all(fs, 7);
    scn_release_all(held, 2);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

static int
then_ok(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)input;
    (void)arg;
    return 0;
}

CREW_TEST(stats, a_continuation_counts_once_queued)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(1);
    crew_future *held, *input = crew_test_promise(), *c[3];
    crew_pool_stats s;

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held), 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(crew_then(pool, input, then_ok, NULL, NULL, &c[i]), 0);
    /* Cancelled while it waits for its input: never a task. */
    cr_assert_eq(crew_future_cancel(c[0]), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 1);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.cancelled, 0);

    /* The input resolves: the other two are queued behind the held
     * worker; one of them is cancelled there. */
    cr_assert_eq(crew_promise_resolve(input, NULL, NULL), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 3);
    cr_assert_eq(s.queued, 2, "queued %zu", s.queued);
    cr_assert_eq(crew_future_cancel(c[1]), 0);
    s = stats_of(pool);
    cr_assert_eq(s.queued, 2, "queued %zu", s.queued);
    cr_assert_eq(s.cancelled, 0, "counted before its husk left the queue");

    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(c[2]), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 3);
    cr_assert_eq(s.succeeded, 2);
    cr_assert_eq(s.cancelled, 1);
    cr_assert_eq(s.queued, 0);
    scn_release_all(c, 3);
    crew_future_release(input);
    crew_future_release(held);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

struct probe {
    crew_pool *pool;
    size_t most_queued;
};

static int
probe_range(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct probe *p = arg;
    crew_pool_stats s;

    (void)task;
    (void)begin;
    (void)end;
    if (crew_pool_stats_get(p->pool, &s) != 0)
        return EINVAL;
    if (s.queued > p->most_queued)
        p->most_queued = s.queued;
    return 0;
}

CREW_TEST(stats, a_loops_helpers_are_no_queued_tasks)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(2);
    struct probe probe = {.pool = pool};
    crew_future *held[2];
    crew_pool_stats s;

    /* Both workers held: the loop's helper waits in the queue while the
     * caller runs every chunk, then is taken back, a husk. */
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held[0]), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 2, &held[1]), 0);
    cr_assert_eq(crew_parallel_for(pool, 0, 100, 10, probe_range, &probe, NULL),
                 0);
    cr_assert_eq(probe.most_queued, 0, "queued %zu during the loop",
                 probe.most_queued);
    s = stats_of(pool);
    cr_assert_eq(s.queued, 0, "queued %zu after the loop", s.queued);
    cr_assert_eq(s.submitted, 2 + 10);
    cr_assert_eq(s.succeeded, 10);

    scn_hold_open(&hold);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, s.succeeded + s.failed + s.cancelled);
    cr_assert_eq(s.queued, 0);
    scn_release_all(held, 2);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

struct shutdown_call {
    crew_pool *pool;
    int err;
};

static void *
cancel_pool(void *arg)
{
    struct shutdown_call *call = arg;

    call->err = crew_pool_shutdown(call->pool, CREW_CANCEL);
    return NULL;
}

CREW_TEST(stats, counts_what_a_cancelling_shutdown_cancels)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(1);
    struct shutdown_call call = {.pool = pool};
    crew_future *held, *fs[10];
    pthread_t thread;
    crew_pool_stats s;

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held), 0);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(crew_submit(pool, scn_ok_task, NULL, &fs[i]), 0);
    cr_assert_eq(pthread_create(&thread, NULL, cancel_pool, &call), 0);
    /* The shutdown cancels the queue while the worker is still held. */
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(crew_future_wait(fs[i]), ECANCELED);
    scn_hold_open(&hold);
    pthread_join(thread, NULL);
    cr_assert_eq(call.err, 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 11);
    cr_assert_eq(s.cancelled, 10);
    crew_future *all[11];
    memcpy(all, fs, sizeof(fs));
    all[10] = held;
    assert_outcomes_match(&s, all, 11);
    scn_release_all(all, 11);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

#define CHILDREN 100

struct parent {
    struct scn_gate children_done;
    crew_future *children[CHILDREN];
};

static int
child_task(crew_task *task, void *arg)
{
    (void)task;
    scn_gate_add(arg, 1);
    return 0;
}

/* Queues its children on its own deque, then blocks without helping: the
 * other worker can only steal them. */
static int
parent_task(crew_task *task, void *arg)
{
    struct parent *p = arg;

    for (size_t i = 0; i < CHILDREN; i++) {
        int err = crew_submit(crew_task_pool(task), child_task,
                              &p->children_done, &p->children[i]);
        if (err != 0)
            return crew_task_fail(task, err, "submit %zu", i);
    }
    return scn_gate_await(&p->children_done, CHILDREN) == CHILDREN
               ? 0
               : crew_task_fail(task, ETIMEDOUT, "children not run");
}

CREW_TEST(stats, counts_tasks_stolen_from_a_busy_worker)
{
    crew_pool *pool = crew_test_pool(2);
    struct parent *p = calloc(1, sizeof(*p));
    crew_future *parent;
    crew_pool_stats s;

    cr_assert_not_null(p);
    scn_gate_init(&p->children_done);
    cr_assert_eq(crew_submit(pool, parent_task, p, &parent), 0);
    cr_assert_eq(crew_future_wait(parent), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    s = stats_of(pool);
    cr_assert_eq(s.submitted, 1 + CHILDREN,
                 "tasks submitted from a worker were not counted");
    cr_assert_eq(s.stolen, CHILDREN, "stolen %llu",
                 (unsigned long long)s.stolen);
    cr_assert_eq(s.succeeded, 1 + CHILDREN);
    crew_future_release(parent);
    scn_release_all(p->children, CHILDREN);
    scn_gate_destroy(&p->children_done);
    free(p);
    crew_pool_destroy(pool);
}

static int
succeed(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

/* An outcome is counted before the future resolves: a thread that saw
 * every future resolve reads counters that add up. */
CREW_TEST(stats, add_up_as_soon_as_the_last_future_resolved)
{
    enum { ROUNDS = 2000 };
    crew_pool *pool = crew_test_pool(2);
    crew_future *f;
    crew_pool_stats s;

    for (uint64_t i = 1; i <= ROUNDS; i++) {
        cr_assert_eq(crew_submit(pool, succeed, NULL, &f), 0);
        cr_assert_eq(crew_future_wait(f), 0);
        s = stats_of(pool);
        cr_assert_eq(s.submitted, i);
        cr_assert_eq(s.succeeded + s.failed + s.cancelled, i,
                     "round %llu: %llu submitted, %llu + %llu + %llu ended",
                     (unsigned long long)i, (unsigned long long)s.submitted,
                     (unsigned long long)s.succeeded,
                     (unsigned long long)s.failed,
                     (unsigned long long)s.cancelled);
        crew_future_release(f);
    }
    crew_pool_destroy(pool);
}
