/*
 * Parking and waking. Every sleep of the library goes through here.
 *
 * Three layers:
 * - crew__park_wait/crew__park_wake: sleep while a 32-bit word holds a
 *   value, and wake the sleepers of a word (a futex on Linux; a striped
 *   table of mutexes and condition variables elsewhere, or when built with
 *   CREW_PARK_PORTABLE).
 * - struct crew__lock: a four-byte lock on that word, for short critical
 *   sections that never run user code.
 * - struct crew__event: an eventcount, the way to sleep until "something
 *   changed" without losing a wake-up: announce (prepare), recheck the
 *   condition, then wait; or cancel if the condition now holds. A notifier
 *   publishes its change first, then notifies.
 */
#ifndef CREW_PARK_H
#define CREW_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Sleep while *word == expected, until the absolute monotonic deadline
 * (UINT64_MAX: none). Spurious returns happen: callers recheck. Returns
 * ETIMEDOUT once the deadline has passed, else 0. */
int crew__park_wait(_Atomic uint32_t *word, uint32_t expected,
                    uint64_t deadline);
/* Wake one (all == false) or every sleeper of word. Callers change the
 * word before waking. */
void crew__park_wake(_Atomic uint32_t *word, bool all);

struct crew__lock {
    _Atomic uint32_t word; /* 0 free, 1 held, 2 held with sleepers */
};

#define CREW__LOCK_INIT \
    {                   \
        0               \
    }

void crew__lock_acquire(struct crew__lock *lock);
void crew__lock_release(struct crew__lock *lock);

struct crew__event {
    _Atomic uint32_t epoch;   /* bumped by each notification that counts */
    _Atomic uint32_t waiters; /* threads between prepare and wait's end */
};

void crew__event_init(struct crew__event *event);
/* Announce a wait; returns the key to pass to crew__event_wait(). */
uint32_t crew__event_prepare(struct crew__event *event);
/* Withdraw an announcement made by crew__event_prepare(). */
void crew__event_cancel(struct crew__event *event);
/* Sleep until a notification after prepare, or the absolute deadline.
 * Ends the announcement. Returns 0, or ETIMEDOUT. */
int crew__event_wait(struct crew__event *event, uint32_t key,
                     uint64_t deadline);
/* Wake every waiter: cheap when nobody waits. */
void crew__event_notify_all(struct crew__event *event);

/* A pause for spin loops. */
static inline void
crew__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
