/*
 * What the model tests of the queues (deque_model.c, split_model.c)
 * share: the first failure, kept across threads; items as non-NULL
 * pointers; and a phase's run, timed and watched, with its line.
 */
#ifndef CREW_TESTS_MODEL_KIT_H
#define CREW_TESTS_MODEL_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records `why`, at `line`, if it is the first failure; returns false. */
bool model_fail(const char *why, int line);
/* Whether any check has failed. */
bool model_failed(void);

/* Evaluates to cond; when false, records why (the first failure wins). */
#define CHECK(cond, why) ((cond) ? true : model_fail((why), __LINE__))

/* Item `id` as the queues hold it: a non-NULL pointer, id + 1. */
static inline void *
item_of(size_t id)
{
    return (void *)(uintptr_t)(id + 1);
}

static inline size_t
id_of(void *item)
{
    return (size_t)((uintptr_t)item - 1);
}

/* How many operations in a row, for an owner thread's burst: mostly a
 * few, sometimes dozens, now and then up to `most` more (the queue deep
 * while thieves steal). */
size_t model_burst(uint64_t *rng, unsigned most);

/* Starts phase `name` under the watchdog: false, and nothing started,
 * once a phase has failed. */
bool model_phase_start(const char *name);
/* Ends the phase started last and prints its line: PASS with `done`
 * things of `unit` done, or FAIL with the first failure. */
void model_phase_end(size_t done, const char *unit);

/* The last line of a run that failed: "PROGRAM: FAILED: why (line N);
 * P phases passed, F failed, R not run", of `phases` in all. */
void model_print_failure(const char *program, size_t phases);
/* Phases that passed. */
size_t model_phases_passed(void);

#endif
