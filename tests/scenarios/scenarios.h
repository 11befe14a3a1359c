/*
 * The concurrency scenarios: plain functions, one body shared by two front
 * ends, as RELIABILITY.md asks. tests/test_scenarios.c runs them under
 * Criterion in the normal and ASan builds; tests/driver.c runs them
 * standalone, where Criterion cannot start (ThreadSanitizer).
 *
 * A scenario returns NULL when every invariant held, otherwise a string
 * literal naming the first one that did not. It releases everything it
 * made, on success and on failure, and never sleeps to synchronize: threads
 * meet on gates (a mutex and a condition variable), barriers or promises.
 *
 * Iteration counts go through crew_scenario_scale() (harness.h): the
 * environment variable CREW_STRESS=N multiplies every scenario's count by
 * N (a positive factor, default 1), and a ThreadSanitizer build, slower,
 * takes the smaller count each scenario names. Counts only: nothing runs
 * for a time.
 *
 * - N = 1, the short form, the normal test run: a few seconds in all.
 *   The stress scenarios submit about 480,000 tasks (240,000 under TSan),
 *   the one-thread ping-pong makes 20,000 round trips.
 * - N = 50, the long form of RELIABILITY.md, for CI: the one-thread
 *   ping-pong makes 10^6 round trips (in every build), the stress
 *   scenarios submit some 24 million tasks (12 million under TSan), the
 *   shutdown-under-load loops run 1,000 rounds each; a few minutes.
 * - N = 0.1: a quick pass under valgrind.
 *
 * The driver prints the tasks each scenario submitted and the total.
 */
#ifndef CREW_TESTS_SCENARIOS_H
#define CREW_TESTS_SCENARIOS_H

#include "testkit.h"

#include <crew.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew_scenario {
    const char *name;
    const char *(*run)(void);
};

/*
 * Every scenario, in the order the driver runs them. Both front ends
 * expand this list, so a scenario added here is declared, listed in
 * crew_scenarios[] and given a Criterion test at once.
 */
#define CREW_SCENARIO_LIST(X)                           \
    X(future_cancel_vs_resolve)                         \
    X(future_cancel_vs_task)                            \
    X(future_register_vs_resolve)                       \
    X(future_release_vs_resolve)                        \
    X(future_wait_for_vs_resolve)                       \
    X(races_cancel_vs_start)                            \
    X(races_promise_settle)                             \
    X(races_release_storm)                              \
    X(races_when_inputs)                                \
    X(races_state_poll_publishes)                       \
    X(nesting_deep_chain)                               \
    X(nesting_fib_one_thread)                           \
    X(nesting_fib_two_threads)                          \
    X(nesting_waits_on_workers)                         \
    X(pingpong_one_thread)                              \
    X(pingpong_two_threads)                             \
    X(shutdown_drain_under_load)                        \
    X(shutdown_cancel_under_load)                       \
    X(shutdown_destroy_from_worker)                     \
    X(stress_mixed)                                     \
    X(stress_one_thread)                                \
    X(stress_two_threads)                               \
    X(stress_four_threads)                              \
    X(stress_many_threads)                              \
    X(inbox_watchers_race)                              \
    X(inbox_destroy_while_resolving)                    \
    X(fail_fast_race)                                   \
    X(stats_read_under_load)                            \
    X(stats_add_up_once_resolved)                       \
    X(then_cancel_race)                                 \
    X(then_pool_gone_race)                              \
    X(then_refused_cancel_race)                         \
    X(parallel_for_race)                                \
    X(each_vs_shutdown)                                 \
    X(reduce_race)                                      \
    X(lifetimes_when_any_released_while_inputs_resolve) \
    X(lifetimes_spare_workers_under_load)               \
    X(spawn_thief_finishes_while_owner_syncs)           \
    X(spawn_leapfrog)                                   \
    X(group_cancel_race)                                \
    X(group_quorum_race)                                \
    X(group_close_race)                                 \
    X(group_limit_race)                                \
    X(trace_toggle_under_load)                         \
    X(watchdog_toggle_under_load)

#define CREW_SCENARIO_DECLARE(name) const char *crew_scenario_##name(void);
CREW_SCENARIO_LIST(CREW_SCENARIO_DECLARE)
#undef CREW_SCENARIO_DECLARE

extern const struct crew_scenario crew_scenarios[];
extern const size_t crew_scenario_count;

/* ------------------------------------------------------------------ */
/* Helpers shared by the scenario files                                */
/* ------------------------------------------------------------------ */

/* Gates, the clock and the other helpers the Criterion tests use too are
 * in testkit.h. */

/*
 * The first violated invariant of one scenario run. Any thread may record
 * one (a task, a callback, a helper thread); the first recorded wins.
 */
struct scn_verdict {
    _Atomic(const char *) why;
};

#define SCN_STR_(x) #x
#define SCN_STR(x)  SCN_STR_(x)

/*
 * Evaluates to @p cond; when false, records @p why (a string literal),
 * tagged with the line, unless an earlier failure was recorded.
 */
#define SCN_CHECK(verdict, cond, why) \
    ((cond) ? true : scn_fail((verdict), why " (line " SCN_STR(__LINE__) ")"))

/* Records @p why unless a failure was recorded before; returns false. */
bool scn_fail(struct scn_verdict *verdict, const char *why);

/* Whether a failure has been recorded. */
bool scn_failed(struct scn_verdict *verdict);

/* The first failure recorded, or NULL. */
const char *scn_result(struct scn_verdict *verdict);

/* Burns roughly @p n loop iterations: timing jitter, never synchronization. */
void scn_spin(unsigned n);

/*
 * Whether crew_future_wait()'s return @p err agrees with the state of the
 * resolved @p future: 0 when it succeeded, ECANCELED when cancelled, the
 * error's code when it failed.
 */
bool scn_wait_agrees(const crew_future *future, int err);

/*
 * Whether @p all, a resolved crew_when_all() over @p inputs, holds what
 * the contract says: failed when any input failed, with one inner error
 * per failed position, in order, each with that input's code, message
 * and inner count; else cancelled when any input was cancelled; else
 * succeeded with a NULL result. Every input must have resolved. Returns
 * NULL or the first difference.
 */
const char *scn_check_when_all(const crew_future *all,
                               crew_future *const *inputs, size_t n);

/*
 * The same for the aggregate @p error reported by crew_wait_all() with
 * return value @p err over @p inputs.
 */
const char *scn_check_wait_all(int err, const crew_error *error,
                               crew_future *const *inputs, size_t n);

#endif
