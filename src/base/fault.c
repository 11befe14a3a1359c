/*
 * Fault injection, for tests only (see fault.h). Each countdown is the
 * number of calls to let through before one fails; -1 disarms it. A
 * countdown fires once, then disarms itself.
 */
#include "base/fault.h"

#ifdef CREW_TEST_HOOKS

#include "crew.h"

#include <stdatomic.h>

typedef void (*hook_fn)(void);

static _Thread_local long alloc_countdown = -1;
static _Thread_local long thread_countdown = -1;
static _Thread_local bool fired;
/* Global, not per thread: the thread to hold is not the test's. */
static _Atomic(hook_fn) counting_cancel_hook;

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

void
crew__hook_counting_cancel(void)
{
    hook_fn hook = atomic_load(&counting_cancel_hook);

    if (hook != NULL)
        hook();
}

/* Call `hook` (NULL: nothing) whenever a canceller counts a cancellation
 * on its pool, inside its critical section. */
CREW_API void
crew_test_on_counting_cancel(void (*hook)(void))
{
    atomic_store(&counting_cancel_hook, hook);
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int crew__fault_unused;

#endif
