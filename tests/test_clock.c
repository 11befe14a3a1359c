/*
 * The task clock, counted (built with CREW_TEST_HOOKS: every clock read
 * of the library goes through a counter, tests/fault.h): a pool that
 * neither traces nor watches reads no clock per task; one that traces
 * reads it for every task, and so does one with a watchdog, which shows
 * that the counter sees the reads the first test says are absent.
 */
#include "common.h"
#include "fault.h"
#include "testkit.h"

#include <crew.h>
#include <stdint.h>

TestSuite(clock, CREW_SUITE);

enum { TASKS = 10000 };

static int
nothing(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

static void
ignore_stuck(const crew_stuck *stuck, void *user)
{
    (void)stuck;
    (void)user;
}

/*
 * The clock reads made while one worker runs TASKS queued tasks back to
 * back: queued behind a task that holds the worker, so that it never
 * looks for work (a search reads the clock) until the last is done.
 * The reads of the submissions count too: they are made before.
 */
static unsigned long
reads_for_tasks(crew_pool *pool)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future **fs = calloc(TASKS, sizeof(*fs));
    crew_future *held;
    unsigned long before, after;

    cr_assert_not_null(fs);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held), 0);
    before = crew_test_clock_reads();
    for (size_t i = 0; i < TASKS; i++)
        cr_assert_eq(crew_submit(pool, nothing, NULL, &fs[i]), 0);
    scn_hold_open(&hold);
    cr_assert_eq(crew_wait_all(fs, TASKS, NULL), 0);
    after = crew_test_clock_reads();
    for (size_t i = 0; i < TASKS; i++)
        crew_future_release(fs[i]);
    cr_assert_eq(crew_future_wait(held), 0);
    crew_future_release(held);
    free(fs);
    scn_hold_destroy(&hold);
    return after - before;
}

CREW_TEST(clock, an_unobserved_pool_reads_no_clock_per_task)
{
    crew_pool *pool = crew_test_pool(1);
    unsigned long reads = reads_for_tasks(pool);

    /* The waiting thread's spin reads the clock a few times; a read a
     * task would be TASKS. */
    cr_assert_lt(reads, TASKS / 100, "%lu clock reads for %d tasks", reads,
                 TASKS);
    crew_pool_destroy(pool);
}

CREW_TEST(clock, a_trace_reads_it_three_times_a_task)
{
    crew_pool *pool = crew_test_pool(1);
    unsigned long reads;

    cr_assert_eq(crew_trace_start(pool, 16), 0);
    reads = reads_for_tasks(pool);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    cr_assert_geq(reads, 3ul * TASKS, "%lu clock reads for %d tasks", reads,
                  TASKS);
    crew_pool_destroy(pool);
}

CREW_TEST(clock, a_watchdog_reads_it_once_a_task)
{
    crew_pool *pool = crew_test_pool(1);
    unsigned long reads;

    cr_assert_eq(crew_pool_watchdog(pool, 1000000000, ignore_stuck, NULL), 0);
    reads = reads_for_tasks(pool);
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    cr_assert_geq(reads, (unsigned long)TASKS, "%lu clock reads for %d tasks",
                  reads, TASKS);
    crew_pool_destroy(pool);
}
