/*
 * Statistics counters: each written by one thread alone (a load and a
 * store, no read-modify-write, no shared cache line per task), read by
 * anyone as a snapshot.
 */
#ifndef CREW_SCHED_STATS_H
#define CREW_SCHED_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* How the jobs one thread took out of queues ended. */
struct crew__tally {
    _Atomic uint64_t succeeded;
    _Atomic uint64_t failed;
    _Atomic uint64_t cancelled; /* run or not: husks included */
    _Atomic uint64_t internal;  /* loops' runners, which are no tasks */
};

/* Add n to a counter that only the calling thread writes. */
static inline void
crew__counter_add(_Atomic uint64_t *counter, uint64_t n)
{
    /* Relaxed: statistics; a reader wants a recent value, not an order. */
    atomic_store_explicit(
        counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
        memory_order_relaxed);
}

#endif
