/*
 * The injection queue: where tasks submitted from outside the pool wait,
 * and the keeper of `max_queued`.
 *
 * Items are intrusive links, so a push never allocates. Pushing is
 * lock-free and never waits for the workers taking items; taking is for
 * one thread at a time, the others skip it (see inject.c). The slot count
 * is separate from the list: a task holds a slot from its submission
 * (from anywhere, a worker's own deque included) until a worker starts
 * it or it is cancelled, whichever queue it sits in.
 */
#ifndef CREW_INJECT_H
#define CREW_INJECT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew__link {
    _Atomic(struct crew__link *) next;
};

struct crew__inject {
    /* The newest item: every push exchanges it. */
    alignas(64) _Atomic(struct crew__link *) tail;
    /* Items pushed, for statistics. Not on the tail's line, which workers
     * read while they look for work: between the exchange and this add a
     * reader would take that line back, and each push would pay for it
     * twice. Here only pushes write and only statistics read. */
    alignas(64) _Atomic uint64_t pushed;
    /* The oldest, or the stub: written by the taker only, read by
     * crew__inject_is_empty() too. */
    alignas(64) _Atomic(struct crew__link *) head;
    atomic_bool taking;      /* held by the one thread taking items */
    _Atomic uint64_t popped; /* items taken; written under `taking` */
    struct crew__link stub;  /* in the list whenever it would be empty */
    struct crew__link end;   /* the last node for good, once closed */
    /* The slots, counted only under a limit. */
    alignas(64) size_t max_queued; /* 0: no limit; constant after init */
    pthread_mutex_t lock; /* guards the three below */
    bool closed;          /* `end` is linked: nothing more goes in */
    pthread_cond_t room;  /* signalled when a slot frees or on close */
    size_t slots;         /* slots held */
    size_t room_waiters;
    uint64_t next_ticket; /* the next submitter to wait for room gets it */
    uint64_t serving;     /* the ticket whose holder may take room next */
};

/* What a push does about max_queued. */
enum crew__room {
    CREW__ROOM_WAIT,     /* take a slot, waiting for one */
    CREW__ROOM_FAIL,     /* take a slot, or fail with EAGAIN */
    CREW__ROOM_UNCOUNTED /* take none: a continuation, whose input's
                            resolver cannot be made to wait */
};

int crew__inject_init(struct crew__inject *queue, size_t max_queued);
void crew__inject_destroy(struct crew__inject *queue);

/* Queue the n items of a chain, first..last (the inner links set by the
 * caller), from outside the pool, holding n slots as `room` says: all of
 * them at once, served in the order submitters began waiting. Returns 0;
 * EAGAIN (no room, or others waiting; CREW__ROOM_FAIL); EINVAL (n slots
 * could never fit); or ESHUTDOWN: the queue is closed, and nothing was
 * queued. */
int crew__inject_push_chain(struct crew__inject *queue,
                            struct crew__link *first, struct crew__link *last,
                            size_t n, enum crew__room room);

static inline int
crew__inject_push(struct crew__inject *queue, struct crew__link *link,
                  enum crew__room room)
{
    return crew__inject_push_chain(queue, link, link, 1, room);
}

/* Take n slots for tasks a worker queues on its own deque: never waits.
 * Returns 0, or EAGAIN when they do not fit and nonblocking. */
int crew__inject_take_slots(struct crew__inject *queue, size_t n,
                            bool nonblocking);
/* Give n slots back: tasks started, were cancelled, or were never
 * queued. */
void crew__inject_release_slots(struct crew__inject *queue, size_t n);
/* Take up to `max` of the oldest items into `out`, oldest first; returns
 * how many. 0 also when another thread is taking, or a push is halfway
 * through: crew__inject_is_empty() tells whether to look again. */
size_t crew__inject_pop_batch(struct crew__inject *queue,
                              struct crew__link **out, size_t max);
/* Whether no item is queued, or halfway through a push. */
bool crew__inject_is_empty(struct crew__inject *queue);
/* How many items are queued now: a snapshot, for statistics. */
uint64_t crew__inject_length(const struct crew__inject *queue);
/* Items pushed so far. */
uint64_t crew__inject_pushed(const struct crew__inject *queue);
/* Refuse every later push and wake the submitters waiting for room:
 * every item pushed before lies ahead of the close, and is taken before
 * crew__inject_is_empty() says the queue is empty. */
void crew__inject_close(struct crew__inject *queue);

#endif
