/*
 * A worker's deque of tasks: its owner pushes and pops at the bottom
 * (LIFO), thieves steal from the top (FIFO). Lock-free: the Chase-Lev
 * deque, with the C11 orderings of Le, Pop, Cohen and Zappa Nardelli
 * (PPoPP 2013); see deque.c.
 */
#ifndef CREW_DEQUE_H
#define CREW_DEQUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew__ring;

struct crew__deque {
    /* Index of the oldest item: read by everyone, moved only by a CAS
     * (thieves, and the owner taking the last item). */
    alignas(64) _Atomic int64_t top;
    /* One past the newest item: written by the owner only. */
    alignas(64) _Atomic int64_t bottom;
    _Atomic(struct crew__ring *) ring; /* replaced by the owner on growth */
    struct crew__ring *retired; /* outgrown rings, owner only; see deque.c */
};

int crew__deque_init(struct crew__deque *deque);
/* Frees the rings; the deque must be empty and no thief about. */
void crew__deque_destroy(struct crew__deque *deque);
/* In a child after fork(): free the rings, leaving the items as they
 * are. */
void crew__deque_abandon(struct crew__deque *deque);
/* Owner only. Returns 0, or ENOMEM if the ring could not grow. */
int crew__deque_push(struct crew__deque *deque, void *item);
/* Owner only: push items[0], then items[1], ... up to items[n - 1], the
 * newest, published together. Returns 0, or ENOMEM (nothing pushed). */
int crew__deque_push_many(struct crew__deque *deque, void *const *items,
                          size_t n);
/* Owner only: push the n items at a fixed stride in memory, `last`
 * first, then last - stride, ..., first (pushed last, so popped first),
 * published together. Returns 0, or ENOMEM (nothing pushed). */
int crew__deque_push_strided(struct crew__deque *deque, char *first,
                             size_t stride, size_t n);
/* Owner only: the newest item, or NULL. */
void *crew__deque_pop(struct crew__deque *deque);
/* Any thread: the oldest item, or NULL when the deque is empty or another
 * thread took that item first. */
void *crew__deque_steal(struct crew__deque *deque);
bool crew__deque_is_empty(struct crew__deque *deque);
/* Any thread: how many items it holds, a snapshot for statistics. */
size_t crew__deque_length(const struct crew__deque *deque);

#endif
