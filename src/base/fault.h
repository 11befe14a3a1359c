/*
 * Fault injection, for tests only. Built with CREW_TEST_HOOKS, the two
 * predicates below fail the k-th allocation, or the k-th thread creation,
 * that the calling thread makes after a test armed them; without it
 * they are constant and cost nothing.
 *
 * The countdowns are per thread, so what a pool's workers allocate never
 * disturbs the count of the thread under test. Tests arm them through
 * crew_test_fail_alloc() and crew_test_fail_thread(), exported from the
 * library only in hooked builds (declared in tests/fault.h).
 */
#ifndef CREW_FAULT_H
#define CREW_FAULT_H

#include <stdbool.h>

/* A submitter starts waiting for room under max_queued: counted, so
 * that a test can tell a submitter is blocked there
 * (crew_test_room_waits()). A clock is read (crew__fault_clock()):
 * counted, so that a test can tell how often (crew_test_clock_reads()). */
#ifdef CREW_TEST_HOOKS
bool crew__fault_alloc(void);
bool crew__fault_thread(void);
void crew__fault_room_wait(void);
void crew__fault_clock(void);
#else
static inline bool
crew__fault_alloc(void)
{
    return false;
}

static inline bool
crew__fault_thread(void)
{
    return false;
}

static inline void
crew__fault_room_wait(void)
{
}

static inline void
crew__fault_clock(void)
{
}
#endif

#endif
