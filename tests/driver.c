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
 * A watchdog thread turns a hang into a failure: when one scenario runs
 * longer than its limit (CREW_WATCHDOG seconds, default 300, times the
 * CREW_STRESS factor when above 1), or the whole run longer than 840
 * seconds (likewise scaled; CTest's limit is 900), it prints which
 * scenario hung and ends the process with _exit(1). The scenario's own
 * threads cannot be stopped, so nothing else could end the run cleanly.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    const char *current; /* the scenario running, or NULL; guarded by lock */
    uint64_t scenario_deadline; /* guarded by lock */
    uint64_t run_deadline;      /* set before the watchdog starts */
    bool finished;              /* guarded by lock */
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double
watchdog_seconds(void)
{
    const char *text = getenv("CREW_WATCHDOG");
    double seconds = 300.0;
    double stress = crew_scenario_stress();

    if (text != NULL && *text != '\0') {
        char *end;
        double value = strtod(text, &end);

        if (*end == '\0' && value > 0.0)
            seconds = value;
    }
    return stress > 1.0 ? seconds * stress : seconds;
}

/* Async-signal-safe and lock-free: stdout's lock may be held by a thread
 * that will never return. */
static void
say(int fd, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};

    for (int i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);

        while (len > 0) {
            ssize_t n = write(fd, parts[i], len);

            if (n <= 0)
                return;
            parts[i] += n;
            len -= (size_t)n;
        }
    }
}

static void *
watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watch.lock);
    while (!watch.finished) {
        uint64_t now = scn_now_ns();
        uint64_t deadline = watch.run_deadline;
        struct timespec until;

        if (watch.current != NULL && watch.scenario_deadline < deadline)
            deadline = watch.scenario_deadline;
        if (now >= deadline) {
            const char *name = watch.current ? watch.current : "(none)";
            const char *which = now >= watch.run_deadline
                                    ? "the whole run's time limit"
                                    : "its time limit";

            say(STDOUT_FILENO, "FAIL ", name, ": hung, watchdog fired\n");
            say(STDERR_FILENO, "crew_driver: watchdog: scenario ", name,
                " ran past ");
            say(STDERR_FILENO, which, "; ending the process\n", "");
            _exit(1);
        }
        until.tv_sec = (time_t)(deadline / NS_PER_S);
        until.tv_nsec = (long)(deadline % NS_PER_S);
        pthread_cond_timedwait(&watch.cond, &watch.lock, &until);
    }
    pthread_mutex_unlock(&watch.lock);
    return NULL;
}

static void
watch_scenario(const char *name, double seconds)
{
    pthread_mutex_lock(&watch.lock);
    watch.current = name;
    watch.scenario_deadline =
        name != NULL ? scn_now_ns() + (uint64_t)(seconds * NS_PER_S) : 0;
    pthread_cond_signal(&watch.cond);
    pthread_mutex_unlock(&watch.lock);
}

static const struct crew_scenario *
find(const char *name)
{
    for (size_t i = 0; i < crew_scenario_count; i++)
        if (strcmp(crew_scenarios[i].name, name) == 0)
            return &crew_scenarios[i];
    return NULL;
}

static bool
run(const struct crew_scenario *scenario, double limit)
{
    uint64_t t0;
    uint64_t tasks0 = scn_tasks_submitted();
    unsigned long long tasks;
    const char *why;
    double seconds;

    watch_scenario(scenario->name, limit);
    t0 = scn_now_ns();
    why = scenario->run();
    seconds = (double)(scn_now_ns() - t0) / NS_PER_S;
    watch_scenario(NULL, 0);
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
    pthread_condattr_t attr;
    pthread_t thread;
    double limit = watchdog_seconds();
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

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watch.cond, &attr);
    pthread_condattr_destroy(&attr);
    watch.run_deadline =
        scn_now_ns() +
        (uint64_t)(840.0 * (stress > 1.0 ? stress : 1.0) * NS_PER_S);
    err = pthread_create(&thread, NULL, watchdog, NULL);
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

        if (run(scenario, limit))
            passed++;
        else
            failed++;
    }

    pthread_mutex_lock(&watch.lock);
    watch.finished = true;
    pthread_cond_signal(&watch.cond);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&watch.cond);
    /* The summary line stays last: scripts read it. */
    printf("tasks: %llu\n", (unsigned long long)scn_tasks_submitted());
    printf("scenarios: %zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
