/*
 * The anchor of the task clock (clock.h): one pair of readings, the
 * counter's and the monotonic clock's, taken together once a process,
 * against which every later pair measures the counter's rate.
 */
#include "base/clock.h"

#include <pthread.h>

#ifdef CREW__HAVE_TSC
#include <cpuid.h>
#endif

/* Below this interval since the anchor, a conversion waits: a pair's
 * two readings lie up to some 50 ns apart, 5e-5 of it. */
#define RATE_MIN_NS 1000000u

atomic_bool crew__clock_tsc;

static pthread_once_t anchor_once = PTHREAD_ONCE_INIT;
/* Written once under anchor_once, read after it. */
static uint64_t anchor_ticks, anchor_ns;

/* Whether the counter ticks at a constant rate whatever the CPU's power
 * state: CPUID's "invariant TSC" bit, leaf 0x80000007, EDX bit 8. */
static bool
has_invariant_tsc(void)
{
#ifdef CREW__HAVE_TSC
    unsigned a, b, c, d;

    /* __get_cpuid() checks the highest extended leaf first. */
    if (__get_cpuid(0x80000007u, &a, &b, &c, &d) == 0)
        return false;
    (void)a, (void)b, (void)c;
    return (d & (1u << 8)) != 0;
#else
    return false;
#endif
}

/* A pair of readings, the counter's taken on both sides of the clock's
 * so that their mean lies where the clock was read. */
static void
read_pair(uint64_t *ticks, uint64_t *ns)
{
    uint64_t before = crew__ticks();

    *ns = crew__now_ns();
    *ticks = before + (crew__ticks() - before) / 2;
}

static void
anchor(void)
{
    /* Relaxed: pthread_once() publishes it with the anchor. */
    atomic_store_explicit(&crew__clock_tsc, has_invariant_tsc(),
                          memory_order_relaxed);
    read_pair(&anchor_ticks, &anchor_ns);
}

void
crew__clock_anchor(void)
{
    pthread_once(&anchor_once, anchor);
}

double
crew__clock_rate(void)
{
    uint64_t ticks, ns;

    crew__clock_anchor();
    if (!atomic_load_explicit(&crew__clock_tsc, memory_order_relaxed))
        return 1.0;
    do {
        read_pair(&ticks, &ns);
    } while (ns - anchor_ns < RATE_MIN_NS || ticks <= anchor_ticks);
    return (double)(ns - anchor_ns) / (double)(ticks - anchor_ticks);
}
