/*
 * Telling a child process from its parent: a count of the fork()s
 * between the first process and this one. Pools and futures remember the
 * value they were made under; one made under an older value belongs to
 * a parent, whose threads this process does not have.
 */
#ifndef CREW_BASE_FORK_H
#define CREW_BASE_FORK_H

#include <stdatomic.h>

extern atomic_ulong crew__forks;

static inline unsigned long
crew__fork_generation(void)
{
    /* Relaxed: it changes only in a child, while it has a single
     * thread. */
    return atomic_load_explicit(&crew__forks, memory_order_relaxed);
}

/* In a child, just after fork(): this is a new generation. */
static inline void
crew__fork_count_child(void)
{
    /* Relaxed: the child has a single thread now. */
    atomic_fetch_add_explicit(&crew__forks, 1, memory_order_relaxed);
}

#endif
