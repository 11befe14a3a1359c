/*
 * The clock that times tasks (traces, latency, the watchdog): cheap to
 * read, in ticks, converted to nanoseconds only when someone looks.
 *
 * On x86-64 with an invariant time-stamp counter a tick is one count of
 * it: rdtsc costs about 10 ns where clock_gettime() costs 25 (both
 * measured on this project's CI machine), and a recorded task reads the
 * clock three times. Elsewhere a tick is a nanosecond of the monotonic
 * clock. Ticks are converted by the rate seen between an anchor, taken
 * once a process, and the moment of the conversion: the counter's rate
 * is constant, so the longer the interval the better the estimate.
 *
 * In hooked builds (CREW_TEST_HOOKS) every read of a clock is counted,
 * crew__now_ns()'s too (see fault.h): the proof that an untimed task
 * reads none.
 */
#ifndef CREW_CLOCK_H
#define CREW_CLOCK_H

#include "base/fault.h"
#include "base/platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define CREW__HAVE_TSC 1
#endif

/* Whether ticks are the time-stamp counter's: decided by
 * crew__clock_anchor(), before any tick is read. */
extern atomic_bool crew__clock_tsc;

/* Now, in ticks. Valid once crew__clock_anchor() has returned. */
static inline uint64_t
crew__ticks(void)
{
#ifdef CREW__HAVE_TSC
    /* Relaxed: written once, by the anchor, before the caller could
     * have asked for ticks (the trace or watchdog that made it ask was
     * published after it). */
    if (atomic_load_explicit(&crew__clock_tsc, memory_order_relaxed)) {
        crew__fault_clock();
        return __builtin_ia32_rdtsc();
    }
#endif
    return crew__now_ns();
}

/* Take the process's anchor, once; later calls return at once. Called
 * before a trace or a watchdog first reads ticks. */
void crew__clock_anchor(void);

/* The rate at which ticks become nanoseconds, now. */
double crew__clock_rate(void);

static inline uint64_t
crew__ticks_to_ns(uint64_t ticks, double rate)
{
    return (uint64_t)((double)ticks * rate + 0.5);
}

#endif
