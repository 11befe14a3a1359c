/*
 * The watchdog (watchdog.h). One thread, asleep on a condition variable
 * on CLOCK_MONOTONIC until the nearer of the two deadlines; the program's
 * thread moves the unit deadline under the lock and signals. The state
 * is static: a program has one watchdog.
 */
#include "watchdog.h"

#include "harness.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define NEVER    UINT64_MAX

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    pthread_t thread;
    const char *program;    /* set before the thread starts */
    uint64_t unit_ns;       /* likewise */
    uint64_t run_deadline;  /* likewise; NEVER: no limit */
    const char *unit;       /* the unit running, or NULL; guarded by lock */
    uint64_t unit_deadline; /* guarded by lock */
    bool finished;          /* guarded by lock */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

void
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

double
watchdog_unit_seconds(void)
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

/* Reports the hung unit and ends the process. Called with wd.lock held. */
static void
fire(uint64_t now)
{
    const char *name = wd.unit != NULL ? wd.unit : "(none)";
    const char *which = now >= wd.run_deadline ? "the whole run's time limit"
                                               : "its time limit";

    say(STDOUT_FILENO, "FAIL ", name, ": hung, watchdog fired\n");
    say(STDERR_FILENO, wd.program, ": watchdog: ", name);
    say(STDERR_FILENO, " ran past ", which, "; ending the process\n");
    _exit(1);
}

static void *
watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd.lock);
    while (!wd.finished) {
        uint64_t now = scn_now_ns();
        uint64_t deadline = wd.run_deadline;
        struct timespec until;

        if (wd.unit != NULL && wd.unit_deadline < deadline)
            deadline = wd.unit_deadline;
        if (now >= deadline)
            fire(now);
        if (deadline == NEVER) {
            pthread_cond_wait(&wd.cond, &wd.lock);
            continue;
        }
        until.tv_sec = (time_t)(deadline / NS_PER_S);
        until.tv_nsec = (long)(deadline % NS_PER_S);
        pthread_cond_timedwait(&wd.cond, &wd.lock, &until);
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int
watchdog_start(const char *program, double unit_seconds, double run_seconds)
{
    pthread_condattr_t attr;
    int err;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.cond, &attr);
    pthread_condattr_destroy(&attr);
    wd.program = program;
    wd.unit_ns = (uint64_t)(unit_seconds * NS_PER_S);
    wd.run_deadline = run_seconds > 0.0
                          ? scn_now_ns() + (uint64_t)(run_seconds * NS_PER_S)
                          : NEVER;
    err = pthread_create(&wd.thread, NULL, watchdog_main, NULL);
    if (err != 0)
        pthread_cond_destroy(&wd.cond);
    return err;
}

void
watchdog_watch(const char *name)
{
    pthread_mutex_lock(&wd.lock);
    wd.unit = name;
    wd.unit_deadline = name != NULL ? scn_now_ns() + wd.unit_ns : NEVER;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
}

void
watchdog_stop(void)
{
    pthread_mutex_lock(&wd.lock);
    wd.finished = true;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    pthread_cond_destroy(&wd.cond);
}
