/*
 * Deadlines kept by one thread: entries armed with an absolute time and a
 * function, fired on that thread once the time has passed. A scheduler
 * owns at most one, started by the first arm (crew__sched_arm()), so a
 * deadline costs no thread of its own.
 */
#ifndef CREW_SCHED_TIMER_H
#define CREW_SCHED_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An entry, in its owner's memory. */
struct crew__timer_entry {
    uint64_t deadline; /* absolute, on crew__now_ns()'s clock */
    /* Runs once on the timer's thread, outside its lock, after the
     * deadline, unless the entry was disarmed first. */
    void (*fire)(struct crew__timer_entry *entry);
    size_t slot; /* the timer's: its place while armed */
};

struct crew__timer;

/* Make a timer and start its thread. Returns 0, ENOMEM, or EAGAIN (the
 * thread could not start). */
int crew__timer_create(struct crew__timer **out, const char *name);
/* Stop the thread and free the timer; nothing may be armed. Called on
 * the timer's own thread (an entry's fire let go of the timer's owner),
 * it returns at once, and the thread frees the timer as it leaves. */
void crew__timer_destroy(struct crew__timer *timer);
/* In a child after fork(): the thread is the parent's; free the memory
 * without taking the lock. */
void crew__timer_abandon(struct crew__timer *timer);

/* Arm `entry` (not armed) for its deadline. 0, or ENOMEM. */
int crew__timer_arm(struct crew__timer *timer, struct crew__timer_entry *entry);
/* Take an armed entry back: true if it will never fire; false if it has
 * fired or is firing now. */
bool crew__timer_disarm(struct crew__timer *timer,
                        struct crew__timer_entry *entry);

#endif
