/*
 * The library's fault-injection hooks, present only when it is built with
 * CREW_TEST_HOOKS (see src/fault.h). Countdowns are per thread: they count
 * the allocations, or thread creations, of the thread that armed them.
 */
#ifndef CREW_TESTS_FAULT_H
#define CREW_TESTS_FAULT_H

#include <stdbool.h>

/* Fail this thread's k-th allocation from now (0: the next); -1 disarms.
 * Fires once. */
void crew_test_fail_alloc(long k);
/* Fail this thread's k-th pthread_create from now with EAGAIN; -1
 * disarms. Fires once. */
void crew_test_fail_thread(long k);
/* Whether an armed fault fired on this thread since it was armed. */
bool crew_test_fault_fired(void);
/* How many times a submitter, on any thread, started waiting for room
 * under max_queued. */
unsigned long crew_test_room_waits(void);
/* How many times any thread read a clock through the library (the
 * monotonic clock, or the task clock's counter). */
unsigned long crew_test_clock_reads(void);

#endif
