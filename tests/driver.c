/*
 * The standalone front end of the concurrency scenarios, for the builds
 * where Criterion cannot start (ThreadSanitizer) and for valgrind, whose
 * exit status this program controls.
 *
 *     crew_driver [--list] [name...]
 *
 * Runs every scenario, or the ones named, one after the other, printing
 * "PASS name (seconds, tasks)" or "FAIL name: reason (seconds, tasks)" for
 * each, where tasks counts the submissions the pools accepted; then
 * "tasks: N", the total over the run, and last the summary line
 * "scenarios: N passed, M failed". Exits 1 if any failed, 2 on a bad
 * command line.
 *
 * The watchdog (watchdog.h) turns a hang into a failure: when one
 * scenario runs longer than its limit (CREW_WATCHDOG seconds, default
 * 300, times the CREW_STRESS factor when above 1), or the whole run
 * longer than 840 seconds (likewise scaled; CTest's limit is 900), it
 * prints which scenario hung and ends the process with _exit(1).
 */
#include "scenarios.h"
#include "watchdog.h"

#include <stdio.h>
#include <string.h>

#define NS_PER_S 1000000000ull

static const struct crew_scenario *
find(const char *name)
{
    for (size_t i = 0; i < crew_scenario_count; i++)
        if (strcmp(crew_scenarios[i].name, name) == 0)
            return &crew_scenarios[i];
    return NULL;
}

static bool
run(const struct crew_scenario *scenario)
{
    uint64_t t0;
    uint64_t tasks0 = scn_tasks_submitted();
    unsigned long long tasks;
    const char *why;
    double seconds;

    watchdog_watch(scenario->name);
    t0 = scn_now_ns();
    why = scenario->run();
    seconds = (double)(scn_now_ns() - t0) / NS_PER_S;
    watchdog_watch(NULL);
    tasks = (unsigned long long)(scn_tasks_submitted() - tasks0);
    if (why == NULL)
        printf("PASS %s (%.2f s, %llu tasks)\n", scenario->name, seconds,
               tasks);
    else
        printf("FAIL %s: %s (%.2f s, %llu tasks)\n", scenario->name, why,
               seconds, tasks);
    return why == NULL;
}

int
main(int argc, char **argv)
{
    double limit = watchdog_unit_seconds();
    double stress = crew_scenario_stress();
    size_t passed = 0;
    size_t failed = 0;
    int err;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < crew_scenario_count; i++)
            printf("%s\n", crew_scenarios[i].name);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (find(argv[i]) == NULL) {
            fprintf(stderr,
                    "crew_driver: no scenario named '%s' (see --list)\n",
                    argv[i]);
            return 2;
        }
    }

    err = watchdog_start("crew_driver", limit,
                         840.0 * (stress > 1.0 ? stress : 1.0));
    if (err != 0) {
        fprintf(stderr, "crew_driver: no watchdog thread: %s\n", strerror(err));
        return 1;
    }
    printf("crew_driver: crew %s, CREW_STRESS=%g, %s, watchdog %.0f s a "
           "scenario\n",
           crew_version(), stress,
           CREW_SCENARIO_TSAN ? "ThreadSanitizer counts" : "full counts",
           limit);

    for (size_t i = 0; i < (argc > 1 ? (size_t)argc - 1 : crew_scenario_count);
         i++) {
        const struct crew_scenario *scenario =
            argc > 1 ? find(argv[i + 1]) : &crew_scenarios[i];

        if (run(scenario))
            passed++;
        else
            failed++;
    }

    watchdog_stop();
    /* The summary line stays last: scripts read it. */
    printf("tasks: %llu\n", (unsigned long long)scn_tasks_submitted());
    printf("scenarios: %zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
