/*
 * Shared by the Criterion tests.
 *
 * Criterion runs each test in a child process and, left alone, swallows
 * LeakSanitizer's report: the test stays green. A failed assertion in a
 * suite's .fini does not fail the test either (Criterion 2.4). So every
 * test is declared with CREW_TEST, which runs the body in a function of
 * its own, then checks for leaks inside the test itself.
 *
 * LeakSanitizer counts a block as reachable if any word of the thread's
 * stack points to it, dead frames included: a pointer the body left behind
 * can hide a leak. So the body runs in frames below the test's own (called
 * through a volatile pointer, so it is not inlined), and that stretch of
 * stack is zeroed before the check.
 */
#ifndef CREW_TESTS_COMMON_H
#define CREW_TESTS_COMMON_H

#include <crew.h>
#include <criterion/criterion.h>
#include <errno.h>

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

/*
 * Zero the stack below the caller's frame: what a finished body left.
 * Not instrumented: AddressSanitizer would put redzones around the array,
 * stretches it never writes, and a pointer left there keeps a leak
 * reachable (a planted leak of an inbox's watch hid exactly so).
 */
#ifdef CREW_TEST_ASAN
__attribute__((no_sanitize_address))
#endif
static inline void
crew_test_scrub_stack(void)
{
    volatile unsigned char area[256 * 1024];

    for (size_t i = 0; i < sizeof(area); i++)
        area[i] = 0;
}

static inline void
crew_test_leak_check(void)
{
#ifdef CREW_TEST_ASAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found memory this test did not free");
#endif
}

/* A pool of `threads` workers (0: one per CPU); the test fails if none. */
static inline crew_pool *
crew_test_pool(unsigned threads)
{
    crew_pool_options o = {.threads = threads};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_not_null(p);
    return p;
}

/* A new promise; the test fails if none. */
static inline crew_future *
crew_test_promise(void)
{
    crew_future *f = NULL;

    cr_assert_eq(crew_promise_create(&f), 0);
    cr_assert_not_null(f);
    return f;
}

/* A new promise failed with `code` and `message`. */
static inline crew_future *
crew_test_failed_promise(int code, const char *message)
{
    crew_future *f = crew_test_promise();

    cr_assert_eq(crew_promise_fail(f, code, "%s", message), 0);
    return f;
}

/* Asserts that @p f is pending: no result, no error, and a wait that
 * may not block times out. */
static inline void
crew_test_assert_pending(crew_future *f)
{
    cr_assert_eq(crew_future_state(f), CREW_PENDING);
    cr_assert_null(crew_future_result(f));
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(crew_future_wait_for(f, 0), ETIMEDOUT);
}

/* Every suite: TestSuite(name, CREW_SUITE); a hang becomes a failure. */
#define CREW_SUITE .timeout = 30

/* A test: CREW_TEST(suite, name) { body }, leak-checked at its end. */
#define CREW_TEST(suite, name)                                \
    static void suite##_##name##_body(void);                  \
    Test(suite, name)                                         \
    {                                                         \
        void (*volatile body)(void) = suite##_##name##_body;  \
        void (*volatile scrub)(void) = crew_test_scrub_stack; \
                                                              \
        body();                                               \
        scrub();                                              \
        crew_test_leak_check();                               \
    }                                                         \
    static void suite##_##name##_body(void)

#endif
