/*
 * The watchdog of the standalone test programs, crew_driver,
 * deque_model and split_model: a thread that turns a hang into a named
 * failure, and the lock-free say() it reports with.
 *
 * A program names each unit of its run (a scenario, a phase) as it
 * starts it. When one unit runs longer than the unit limit, or the whole
 * run longer than the run limit, the watchdog prints "FAIL <unit>: hung,
 * watchdog fired" on stdout, says which limit on stderr, and ends the
 * process with _exit(1): the unit's own threads cannot be stopped, so
 * nothing else could end the run cleanly.
 */
#ifndef CREW_TESTS_WATCHDOG_H
#define CREW_TESTS_WATCHDOG_H

/*
 * Writes @p a, @p b and @p c to @p fd with write(2): async-signal-safe
 * and lock-free, for a process where stdout's lock may be held by a
 * thread that will never return.
 */
void say(int fd, const char *a, const char *b, const char *c);

/*
 * The seconds one unit may run: CREW_WATCHDOG (default 300), times the
 * CREW_STRESS factor when above 1.
 */
double watchdog_unit_seconds(void);

/*
 * Starts the watchdog of @p program (its name in messages): a unit may
 * run @p unit_seconds, the whole run @p run_seconds (0: no limit).
 * Returns 0, or pthread_create()'s error.
 */
int watchdog_start(const char *program, double unit_seconds,
                   double run_seconds);

/* The unit @p name starts now; NULL: none runs. */
void watchdog_watch(const char *name);

/* Stops the watchdog and joins its thread. */
void watchdog_stop(void);

#endif
