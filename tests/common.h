/*
 * Shared by the Criterion tests: the suite options every test uses.
 *
 * Criterion runs each test in a child process and, left alone, swallows
 * LeakSanitizer's report: the test stays green. Every suite therefore ends
 * each test with crew_test_fini(), which fails the test when a leak check
 * finds memory the test did not free.
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
crew_test_fini(void)
{
#ifdef CREW_TEST_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found memory this test did not free");
#endif
}

/* Every suite: TestSuite(name, CREW_SUITE); a hang becomes a failure. */
#define CREW_SUITE .timeout = 30, .fini = crew_test_fini

#endif
