/*
 * Shared by the Criterion tests.
 *
 * Criterion runs each test in a child process and, left alone, swallows
 * LeakSanitizer's report: the test stays green. A failed assertion in a
 * suite's .fini does not fail the test either (Criterion 2.4). So every
 * test is declared with CREW_TEST, which runs the body in a function of
 * its own, then checks for leaks inside the test itself. The body is
 * called through a volatile pointer so that it is not inlined: pointers
 * the body left in its dead stack frame would otherwise still look
 * reachable and hide a leak.
 */
#ifndef CREW_TESTS_COMMON_H
#define CREW_TESTS_COMMON_H

#include <criterion/criterion.h>

#if defined(__SANITIZE_ADDRESS__)
#define CREW_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CREW_TEST_ASAN 1
#endif
#endif

#ifdef CREW_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

static inline void
crew_test_leak_check(void)
{
#ifdef CREW_TEST_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found memory this test did not free");
#endif
}

/* Every suite: TestSuite(name, CREW_SUITE); a hang becomes a failure. */
#define CREW_SUITE .timeout = 30

/* A test: CREW_TEST(suite, name) { body }, leak-checked at its end. */
#define CREW_TEST(suite, name)                               \
    static void suite##_##name##_body(void);                 \
    Test(suite, name)                                        \
    {                                                        \
        void (*volatile body)(void) = suite##_##name##_body; \
                                                             \
        body();                                              \
        crew_test_leak_check();                              \
    }                                                        \
    static void suite##_##name##_body(void)

#endif
