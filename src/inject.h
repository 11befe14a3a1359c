/*
 * The injection queue: where tasks submitted from outside the pool wait,
 * and the keeper of `max_queued`.
 *
 * Items are intrusive links, so a push never allocates. The slot count is
 * separate from the list: a task holds a slot from its submission (from
 * anywhere, a worker's own deque included) until a worker starts it or it
 * is cancelled, whichever queue it sits in.
 */
#ifndef CREW_INJECT_H
#define CREW_INJECT_H

#include "park.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct crew__link {
    struct crew__link *next;
};

struct crew__inject {
    /* The list: a short lock, held for a few pointer writes. */
    struct crew__lock list_lock; /* guards head and tail; see closed */
    struct crew__link *head;     /* oldest first */
    struct crew__link **tail;
    /* Items in the list, and detached by a batch not yet taken: read
     * without the lock by workers looking for work, so an empty queue
     * costs them no lock. */
    _Atomic size_t length;
    atomic_bool closed; /* written under both locks, read under either */
    /* The slots, counted only under a limit. */
    size_t max_queued;     /* 0: no limit; constant after init */
    pthread_mutex_t lock;  /* guards slots and room_waiters */
    pthread_cond_t room;   /* signalled when a slot frees or on close */
    size_t slots;          /* slots held */
    size_t room_waiters;
};

int crew__inject_init(struct crew__inject *queue, size_t max_queued);
void crew__inject_destroy(struct crew__inject *queue);

/* Queue an item from outside the pool, holding a slot. Waits for room
 * unless nonblocking. Returns 0, EAGAIN (full, nonblocking), or ESHUTDOWN
 * (closed, also while waiting). */
int crew__inject_push(struct crew__inject *queue, struct crew__link *link,
                      bool nonblocking);
/* Take a slot for a task a worker queues on its own deque: never waits.
 * Returns 0, or EAGAIN when full and nonblocking. */
int crew__inject_take_slot(struct crew__inject *queue, bool nonblocking);
/* Give a slot back: the task started, was cancelled, or was never
 * queued. */
void crew__inject_release_slot(struct crew__inject *queue);
/* Up to `max` of the oldest items, linked oldest first, or NULL. */
struct crew__link *crew__inject_pop_batch(struct crew__inject *queue,
                                          size_t max);
/* The oldest item, or NULL. */
struct crew__link *crew__inject_pop(struct crew__inject *queue);
/* How many items wait: a snapshot. */
size_t crew__inject_length(struct crew__inject *queue);
bool crew__inject_is_empty(struct crew__inject *queue);
/* Refuse every later push and wake the submitters waiting for room. With
 * take, also empty the list and return it, oldest first. */
struct crew__link *crew__inject_close(struct crew__inject *queue, bool take);

#endif
