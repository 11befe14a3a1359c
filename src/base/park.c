/*
 * Parking: futex-style wait and wake, a small lock, an eventcount.
 *
 * Theory of operation. All sleeping in crew is "sleep while this word
 * still holds the value I saw". On Linux that is the futex itself. The
 * portable fallback hashes the word's address to one of a few stripes,
 * each a mutex and a condition variable: a waiter checks the word under
 * the stripe's mutex and sleeps on its condition variable; a waker, having
 * changed the word, takes the same mutex before broadcasting, so a waiter
 * either sees the new value or is already asleep when the broadcast comes.
 *
 * The eventcount never loses a wake-up. Its waiter increments `waiters`
 * (seq_cst), reads `epoch`, rechecks its condition, and sleeps while
 * `epoch` is unchanged. Its notifier makes its change visible, then reads
 * `waiters` (seq_cst) and, if anyone waits, bumps `epoch` and wakes. Either
 * the notifier's read comes after the waiter's increment in the single
 * total order, and then the epoch bump comes after the waiter's read of
 * it, so the waiter's sleep returns at once or is woken; or it comes
 * before, and then the waiter's recheck comes after the change and sees it.
 * Conditions guarded by a mutex work the same way: the mutex orders the
 * recheck and the change, and the seq_cst pair does the rest.
 */
#include "base/park.h"

#include "base/platform.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#ifdef CREW_HAVE_FUTEX

int
crew__park_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t deadline)
{
    if (deadline != UINT64_MAX && crew__now_ns() >= deadline)
        return ETIMEDOUT;
    return crew__futex_wait(word, expected, deadline);
}

void
crew__park_wake(_Atomic uint32_t *word, bool all)
{
    crew__futex_wake(word, all ? INT32_MAX : 1);
}

#else /* the portable fallback */

#define STRIPES 64

static struct stripe {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* realtime clock: statically initialised */
} stripes[STRIPES] = {
#define S                                                   \
    {                                                       \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER \
    }
#define S8 S, S, S, S, S, S, S, S
    S8, S8, S8, S8, S8,
    S8, S8, S8
#undef S8
#undef S
};

static struct stripe *
stripe_of(const void *word)
{
    uintptr_t a = (uintptr_t)word;
    return &stripes[(a >> 4 ^ a >> 10) % STRIPES];
}

int
crew__park_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t deadline)
{
    struct stripe *s = stripe_of(word);
    int state = crew__nocancel_begin();
    int err = 0;

    pthread_mutex_lock(&s->lock);
    /* Relaxed: the stripe's mutex orders this load with the waker's
     * change, which it makes before taking the same mutex. */
    if (atomic_load_explicit(word, memory_order_relaxed) == expected) {
        if (deadline == UINT64_MAX) {
            pthread_cond_wait(&s->cond, &s->lock);
        } else {
            uint64_t now = crew__now_ns();
            if (now >= deadline) {
                err = ETIMEDOUT;
            } else {
                /* The condition variable runs on the realtime clock:
                 * convert the remaining monotonic time. */
                struct timespec rt;
                clock_gettime(CLOCK_REALTIME, &rt);
                uint64_t abs_rt = (uint64_t)rt.tv_sec * 1000000000u +
                                  (uint64_t)rt.tv_nsec + (deadline - now);
                struct timespec ts = crew__timespec_of(abs_rt);
                pthread_cond_timedwait(&s->cond, &s->lock, &ts);
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    crew__nocancel_end(state);
    if (err == 0 && deadline != UINT64_MAX && crew__now_ns() >= deadline)
        err = ETIMEDOUT;
    return err;
}

void
crew__park_wake(_Atomic uint32_t *word, bool all)
{
    struct stripe *s = stripe_of(word);

    /* Stripes are shared, so a single signal could reach a sleeper of
     * another word: always broadcast; sleepers recheck their word. */
    (void)all;
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

#endif

/*
 * The lock: Drepper's three-state mutex ("Futexes Are Tricky", mutex 3).
 * A brief spin first, since critical sections are a few stores long.
 */
void
crew__lock_acquire(struct crew__lock *lock)
{
    uint32_t c = 0;

    /* Acquire: pairs with the release in crew__lock_release(), so the
     * previous holder's writes are visible inside the section. */
    if (atomic_compare_exchange_strong_explicit(
            &lock->word, &c, 1, memory_order_acquire, memory_order_relaxed))
        return;
    for (int spin = 0; spin < 64; spin++) {
        crew__cpu_relax();
        c = 0;
        if (atomic_compare_exchange_weak_explicit(
                &lock->word, &c, 1, memory_order_acquire, memory_order_relaxed))
            return;
    }
    if (c != 2)
        c = atomic_exchange_explicit(&lock->word, 2, memory_order_acquire);
    while (c != 0) {
        crew__park_wait(&lock->word, 2, UINT64_MAX);
        c = atomic_exchange_explicit(&lock->word, 2, memory_order_acquire);
    }
}

void
crew__lock_release(struct crew__lock *lock)
{
    /* Release: publishes the section's writes to the next acquirer. */
    if (atomic_fetch_sub_explicit(&lock->word, 1, memory_order_release) != 1) {
        atomic_store_explicit(&lock->word, 0, memory_order_release);
        crew__park_wake(&lock->word, false);
    }
}

void
crew__event_init(struct crew__event *event)
{
    atomic_init(&event->epoch, 0);
    atomic_init(&event->waiters, 0);
}

uint32_t
crew__event_prepare(struct crew__event *event)
{
    /* StoreLoad: the increment must precede, in the total order, both the
     * epoch read below and the caller's recheck; see the file comment. */
    atomic_fetch_add_explicit(&event->waiters, 1, memory_order_seq_cst);
    return atomic_load_explicit(&event->epoch, memory_order_seq_cst);
}

void
crew__event_cancel(struct crew__event *event)
{
    /* Relaxed: a notifier that still sees this waiter only wakes in vain. */
    atomic_fetch_sub_explicit(&event->waiters, 1, memory_order_relaxed);
}

int
crew__event_wait(struct crew__event *event, uint32_t key, uint64_t deadline)
{
    int err = 0;

    /* Acquire: pairs with the notifier's bump, so what it published before
     * notifying is visible once the epoch has moved. */
    while (atomic_load_explicit(&event->epoch, memory_order_acquire) == key) {
        if (crew__park_wait(&event->epoch, key, deadline) == ETIMEDOUT) {
            err = ETIMEDOUT;
            break;
        }
    }
    crew__event_cancel(event);
    return err;
}

void
crew__event_notify_all(struct crew__event *event)
{
    /* StoreLoad: the caller's change precedes this read; see the file
     * comment. */
    if (atomic_load_explicit(&event->waiters, memory_order_seq_cst) == 0)
        return;
    atomic_fetch_add_explicit(&event->epoch, 1, memory_order_seq_cst);
    crew__park_wake(&event->epoch, true);
}
