/*
 * A worker's deque of tasks: its owner pushes and pops at the bottom
 * (LIFO), thieves steal from the top (FIFO).
 *
 * This version guards a growable ring with a mutex; the interface is the
 * one a lock-free Chase-Lev deque will keep.
 */
#ifndef CREW_DEQUE_H
#define CREW_DEQUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct crew__deque {
    pthread_mutex_t lock; /* guards every field below */
    void **slots;         /* ring of capacity `mask + 1`, a power of two */
    size_t mask;
    size_t top;    /* index of the oldest item, for thieves */
    size_t bottom; /* one past the newest item, for the owner */
};

int crew__deque_init(struct crew__deque *deque);
/* Frees the ring; the deque must be empty. */
void crew__deque_destroy(struct crew__deque *deque);
/* In a child after fork(): free the ring without taking the lock, which a
 * thread of the parent may have held; the items are left as they are. */
void crew__deque_abandon(struct crew__deque *deque);
/* Owner only. Returns 0, or ENOMEM if the ring could not grow. */
int crew__deque_push(struct crew__deque *deque, void *item);
/* Owner only: the newest item, or NULL. */
void *crew__deque_pop(struct crew__deque *deque);
/* Any thread: the oldest item, or NULL. */
void *crew__deque_steal(struct crew__deque *deque);
bool crew__deque_is_empty(struct crew__deque *deque);

#endif
