/*
 * Fault injection, for tests only (see fault.h). Each countdown is the
 * number of calls to let through before one fails; -1 disarms it. A
 * countdown fires once, then disarms itself.
 */
#include "base/fault.h"

#ifdef CREW_TEST_HOOKS

#include "crew.h"

#include <stdatomic.h>

static _Thread_local long alloc_countdown = -1;
static _Thread_local long thread_countdown = -1;
static _Thread_local bool fired;
static atomic_ulong room_waits; /* process-wide: the waiter is elsewhere */
static atomic_ulong clock_reads; /* process-wide: workers read them */

static bool
fire(long *countdown)
{
    if (*countdown < 0)
        return false;
    if ((*countdown)-- > 0)
        return false;
    fired = true;
    return true;
}

bool
crew__fault_alloc(void)
{
    return fire(&alloc_countdown);
}

bool
crew__fault_thread(void)
{
    return fire(&thread_countdown);
}

void
crew__fault_room_wait(void)
{
    atomic_fetch_add(&room_waits, 1);
}

void
crew__fault_clock(void)
{
    /* Relaxed: a count, read once the work it counts is over. */
    atomic_fetch_add_explicit(&clock_reads, 1, memory_order_relaxed);
}

/* How many times any thread read a clock through the library. */
CREW_API unsigned long
crew_test_clock_reads(void)
{
    return atomic_load(&clock_reads);
}

/* How many times a submitter, on any thread, started waiting for room
 * under max_queued. */
CREW_API unsigned long
crew_test_room_waits(void)
{
    return atomic_load(&room_waits);
}

/* Fail the calling thread's k-th allocation from now (0: the next one);
 * -1 disarms. Clears the record of a fault having fired. */
CREW_API void
crew_test_fail_alloc(long k)
{
    alloc_countdown = k;
    fired = false;
}

/* The same for thread creation: the k-th pthread_create fails, EAGAIN. */
CREW_API void
crew_test_fail_thread(long k)
{
    thread_countdown = k;
    fired = false;
}

/* Whether a fault fired on this thread since it was armed. */
CREW_API bool
crew_test_fault_fired(void)
{
    return fired;
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int crew__fault_unused;

#endif
