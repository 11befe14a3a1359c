/*
 * The bottom of the test code: what every test program shares and that
 * needs neither crew nor Criterion. The scenarios, and through them the
 * Criterion tests and crew_driver, build on it; so do deque_model and
 * split_model, which link no part of crew but their deque.
 *
 * Counts, never times: the environment variable CREW_STRESS=N multiplies
 * every iteration count by N (a positive factor, default 1), and a
 * ThreadSanitizer build, slower, takes the smaller count each test names.
 */
#ifndef CREW_TESTS_HARNESS_H
#define CREW_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define CREW_SCENARIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CREW_SCENARIO_TSAN 1
#endif
#endif
#ifndef CREW_SCENARIO_TSAN
#define CREW_SCENARIO_TSAN 0
#endif

/* The CREW_STRESS factor: a positive number, 1 when unset or malformed. */
double crew_scenario_stress(void);

/*
 * An iteration count: @p normal, or @p tsan under ThreadSanitizer, times
 * the CREW_STRESS factor; never below 1.
 */
size_t crew_scenario_scale(size_t normal, size_t tsan);

/* CLOCK_MONOTONIC, in nanoseconds. */
uint64_t scn_now_ns(void);

/* xorshift64: cheap, per thread, seeded with a fixed non-zero value. */
static inline uint64_t
scn_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* A number in [0, n), n > 0. */
static inline unsigned
scn_below(uint64_t *state, unsigned n)
{
    return (unsigned)((scn_rand(state) >> 11) % n);
}

/* A seed for stream @p k: fixed, distinct and never zero. */
static inline uint64_t
scn_seed(uint64_t k)
{
    return 0x9E3779B97F4A7C15u * (k + 1) | 1u;
}

#endif
