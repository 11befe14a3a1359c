/*
 * The few operating-system bits: the CPU count, thread names, the
 * monotonic clock and the futex. Everything #ifdef'd on the platform
 * lives here, as whole functions.
 */
#ifndef CREW_PLATFORM_H
#define CREW_PLATFORM_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "base/fault.h"

/* The portable build (CREW_PARK_PORTABLE) uses the fallbacks even on
 * Linux, so that CI runs them: condition variables instead of futexes,
 * a pipe instead of an eventfd. */
/* A function shared by a hot path and a cold one, which the compiler
 * would otherwise keep out of line for the cold one's sake. */
#if defined(__GNUC__)
#define CREW__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CREW__ALWAYS_INLINE inline
#endif

/* The rare branch of a hot function, kept out of it, so that the hot one
 * needs no stack frame of its own, and out of its cache lines. */
#if defined(__GNUC__)
#define CREW__COLD __attribute__((noinline, cold))
#else
#define CREW__COLD
#endif

#if defined(__linux__) && !defined(CREW_PARK_PORTABLE)
#define CREW_HAVE_EVENTFD 1
#include <sys/eventfd.h>
#else
#include <fcntl.h>
#endif

#if defined(__linux__) && !defined(CREW_PARK_PORTABLE)
#define CREW_HAVE_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* The number of online CPUs, at least 1. */
static inline unsigned
crew__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/*
 * crew's calls are no cancellation points: a thread cancelled with
 * pthread_cancel() inside one acts on it at its next cancellation point
 * after the call, never halfway through, where it would leave a lock held
 * or a waiter's node linked on a dead stack. Every system call of the
 * library that POSIX makes a cancellation point (pthread_cond_wait,
 * pthread_join, read, write, close) runs between these two.
 */
static inline int
crew__nocancel_begin(void)
{
    int old;

    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

static inline void
crew__nocancel_end(int old)
{
    int ignored;

    (void)pthread_setcancelstate(old, &ignored);
}

/* The smallest stack a thread may be given. */
static inline size_t
crew__stack_min(void)
{
#ifdef _SC_THREAD_STACK_MIN
    long n = sysconf(_SC_THREAD_STACK_MIN);
    if (n > 0)
        return (size_t)n;
#endif
    return PTHREAD_STACK_MIN;
}

/* The stack size a thread gets when none is asked for. */
static inline size_t
crew__stack_default(void)
{
    pthread_attr_t attr;
    size_t size = 0;

    if (pthread_attr_init(&attr) == 0) {
        (void)pthread_attr_getstacksize(&attr, &size);
        pthread_attr_destroy(&attr);
    }
    return size != 0 ? size : (size_t)8 << 20;
}

/* The calling thread's stack: its lowest address and its size. False
 * where the system cannot tell. */
#ifdef __GLIBC__
static inline bool
crew__thread_stack(void **low, size_t *size)
{
    pthread_attr_t attr;
    bool known;

    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return false;
    known = pthread_attr_getstack(&attr, low, size) == 0;
    pthread_attr_destroy(&attr);
    return known;
}
#else
static inline bool
crew__thread_stack(void **low, size_t *size)
{
    (void)low;
    (void)size;
    return false;
}
#endif

/* Now on the monotonic clock, in nanoseconds. */
static inline uint64_t
crew__now_ns(void)
{
    struct timespec ts;
    crew__fault_clock();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Let another runnable thread have this CPU, if one waits for it. */
static inline void
crew__thread_yield(void)
{
    sched_yield();
}

/* The absolute deadline timeout_ns from now; UINT64_MAX for no limit. */
static inline uint64_t
crew__deadline_after(uint64_t timeout_ns)
{
    uint64_t now = crew__now_ns();
    if (timeout_ns >= UINT64_MAX - now)
        return UINT64_MAX;
    return now + timeout_ns;
}

static inline struct timespec
crew__timespec_of(uint64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

/* Name the calling thread; best effort, names are a debugging aid. */
#if defined(__linux__) || defined(__GLIBC__)
static inline void
crew__thread_set_name(const char *name)
{
    (void)pthread_setname_np(pthread_self(), name);
}

/* The calling thread's name into name[size], "" if unknown. */
static inline void
crew__thread_get_name(char *name, size_t size)
{
    if (pthread_getname_np(pthread_self(), name, size) != 0)
        name[0] = '\0';
}
#else
static inline void
crew__thread_set_name(const char *name)
{
    (void)name;
}

static inline void
crew__thread_get_name(char *name, size_t size)
{
    if (size > 0)
        name[0] = '\0';
}
#endif

/*
 * A descriptor that polls readable while raised, for event loops: an
 * eventfd on Linux (both ends the same descriptor), a pipe elsewhere.
 * Raising a raised signal, or clearing a clear one, changes nothing.
 * errno is the caller's: raise and clear put it back as it was.
 */
struct crew__signal {
    int read_end;
    int write_end;
};

#ifdef CREW_HAVE_EVENTFD
static inline int
crew__signal_open(struct crew__signal *signal)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd == -1)
        return errno;
    signal->read_end = signal->write_end = fd;
    return 0;
}

static inline void
crew__signal_close(struct crew__signal *signal)
{
    int state = crew__nocancel_begin();

    close(signal->read_end);
    crew__nocancel_end(state);
}
#else
static inline int
crew__signal_open(struct crew__signal *signal)
{
    int fds[2];

    if (pipe(fds) == -1)
        return errno;
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags == -1 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) == -1 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1) {
            int err = errno;
            int state = crew__nocancel_begin();
            close(fds[0]);
            close(fds[1]);
            crew__nocancel_end(state);
            return err;
        }
    }
    signal->read_end = fds[0];
    signal->write_end = fds[1];
    return 0;
}

static inline void
crew__signal_close(struct crew__signal *signal)
{
    int state = crew__nocancel_begin();

    close(signal->read_end);
    close(signal->write_end);
    crew__nocancel_end(state);
}
#endif

static inline void
crew__signal_raise(struct crew__signal *signal)
{
    uint64_t one = 1; /* an eventfd takes 8 bytes; a pipe, the first */
    int saved = errno;
    int state = crew__nocancel_begin();

    /* EAGAIN: already readable, which is all that is asked. */
    while (write(signal->write_end, &one,
                 signal->read_end == signal->write_end ? sizeof(one) : 1) ==
               -1 &&
           errno == EINTR)
        continue;
    crew__nocancel_end(state);
    errno = saved;
}

static inline void
crew__signal_clear(struct crew__signal *signal)
{
    uint64_t buffer[8];
    int saved = errno;
    int state = crew__nocancel_begin();

    /* An eventfd empties in one read; a pipe, until EAGAIN. */
    for (;;) {
        ssize_t n = read(signal->read_end, buffer, sizeof(buffer));
        if (n > 0 || (n == -1 && errno == EINTR))
            continue;
        break;
    }
    crew__nocancel_end(state);
    errno = saved;
}

#ifdef CREW_HAVE_FUTEX
/*
 * Sleep while *word == expected, until the absolute monotonic deadline
 * (UINT64_MAX: none). Returns 0 when woken (or the word differed: callers
 * recheck), ETIMEDOUT once the deadline has passed.
 */
static inline int
crew__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != UINT64_MAX) {
        ts = crew__timespec_of(deadline);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
     * errno is the caller's: put it back as it was. */
    int saved = errno;
    long r =
        syscall(SYS_futex, (void *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    int err = (r == -1 && errno == ETIMEDOUT) ? ETIMEDOUT : 0;
    errno = saved;
    return err;
}

static inline void
crew__futex_wake(_Atomic uint32_t *word, int n)
{
    int saved = errno;
    syscall(SYS_futex, (void *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL,
            NULL, 0);
    errno = saved;
}
#endif

#endif
