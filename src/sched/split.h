/*
 * A worker's deque of spawned calls, split in two: the newest items are
 * private to the owner, which pushes and takes them back without an
 * atomic instruction or a fence; the oldest are shared, and thieves take
 * them oldest first. The split point moves up when a thief asks for
 * work, and down when the owner takes back a shared item. This is Lace's
 * deque (van Dijk and van de Pol, "Lace: non-blocking split deque for
 * work-stealing", Euro-Par 2014); see split.c for the orderings.
 *
 * The owner's operations are inline: a spawn and a sync that nobody
 * stole from are a few loads and stores of the owner's own cache line.
 * Items are opaque non-NULL pointers; a fixed array holds them, never
 * grown, so that a push never allocates.
 */
#ifndef CREW_SPLIT_H
#define CREW_SPLIT_H

#include "base/platform.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crew__split {
    /* The owner's alone. Items [split, head) are private; below split
     * they are shared, or taken: by thieves from the bottom up, to
     * `tail`. After `drained`, every item below head is a thief's. */
    alignas(64) uint32_t head; /* one past the newest item */
    uint32_t split;            /* the owner's copy of the split point */
    uint32_t capacity;
    bool drained; /* the owner found every shared item taken */
    /* Relaxed atomics: the owner writes a slot only above the split,
     * where no thief reads, and a thief reads one only after its CAS
     * took it (split.c). */
    _Atomic(void *) *slots;
    /* The thieves'. `ends` packs tail (low half: the next item to
     * steal) and the split point (high half), so that a thief takes an
     * item with one CAS that fails if either moved. */
    alignas(64) _Atomic uint64_t ends;
    /* Set by a thief that found nothing shared; the owner answers it at
     * its next push (crew__split_push()). */
    atomic_bool wanted;
};

/* How a push went. */
enum crew__split_push {
    CREW__SPLIT_FULL,    /* no room: nothing pushed */
    CREW__SPLIT_PRIVATE, /* pushed, private to the owner */
    CREW__SPLIT_SHARED,  /* pushed, and items were shared: wake a thief */
    CREW__SPLIT_TO_SHARE /* crew__split_put(): pushed, and the owner must
                            share now (crew__split_share_new()) */
};

/* An empty deque with room for `capacity` items (at most 2^31).
 * Returns 0 or ENOMEM. */
int crew__split_init(struct crew__split *q, uint32_t capacity);
/* Frees the array; the deque must be empty and no thief about. */
void crew__split_destroy(struct crew__split *q);

/* The owner's slow paths of the inline operations below. */
/* Share after crew__split_put() said CREW__SPLIT_TO_SHARE; returns
 * CREW__SPLIT_SHARED. */
enum crew__split_push crew__split_share_new(struct crew__split *q);
void *crew__split_take_shared(struct crew__split *q);

/* Owner only: push an item. Private, unless nothing is shared or a
 * thief asked: then the older half of the private items are shared, the
 * new one too when it is the only one (so that a first spawn followed by
 * long work of the spawner's is there for a thief without asking). After
 * a drain the new item alone is shared. crew__split_put() leaves the
 * sharing to its caller, so that the common case calls nothing. */
static CREW__ALWAYS_INLINE enum crew__split_push
crew__split_put(struct crew__split *q, void *item)
{
    uint32_t head = q->head;

    if (head >= q->capacity)
        return CREW__SPLIT_FULL;
    /* Relaxed: above the split; published, if ever, by the release of
     * the CAS or store that moves the split over it. */
    atomic_store_explicit(&q->slots[head], item, memory_order_relaxed);
    q->head = head + 1;
    /* Relaxed, both on the thieves' one line: hints. A request or a
     * steal missed now is seen at a later push, or at the owner's
     * take of a shared item. */
    uint64_t ends = atomic_load_explicit(&q->ends, memory_order_relaxed);
    if (q->drained || (uint32_t)ends == (uint32_t)(ends >> 32) ||
        atomic_load_explicit(&q->wanted, memory_order_relaxed))
        return CREW__SPLIT_TO_SHARE;
    return CREW__SPLIT_PRIVATE;
}

static inline enum crew__split_push
crew__split_push(struct crew__split *q, void *item)
{
    enum crew__split_push how = crew__split_put(q, item);

    return how == CREW__SPLIT_TO_SHARE ? crew__split_share_new(q) : how;
}

/* Owner only: take back the newest item (index head - 1) if no thief
 * took it; then head moves below it. NULL when the deque is empty or a
 * thief took the newest item: head stays, and once the caller has no
 * more use for the item's place, crew__split_drop() gives it up. */
static CREW__ALWAYS_INLINE void *
crew__split_take(struct crew__split *q)
{
    uint32_t head = q->head;

    if (head > q->split) {
        q->head = head - 1;
        return atomic_load_explicit(&q->slots[head - 1], memory_order_relaxed);
    }
    return head == 0 ? NULL : crew__split_take_shared(q);
}

/* Owner only: forget the newest item, which a thief took and has done
 * with (crew__split_take() returned NULL for it). Thieves take the
 * oldest first, so every item below it is taken too, and every one
 * above was taken back: nothing is shared, and the next push starts
 * afresh. The take left the deque drained, but calls pushed and synced
 * since (the owner leapfrogging while the thief ran the item) may have
 * started it afresh: drained again here, whatever they left. */
static inline void
crew__split_drop(struct crew__split *q)
{
    assert(q->head > 0);
    q->head--;
    q->drained = true;
}

/* Owner only: share every private item, before the owner stops taking
 * them back for a while (it sleeps). True if it shared any: wake a
 * thief. */
bool crew__split_share_all(struct crew__split *q);

/* Any thread but the owner: the oldest shared item, or NULL when none is
 * shared (the thief then asks the owner to share) or another thief took
 * it first. */
void *crew__split_steal(struct crew__split *q);
/* Any thread: whether no item is shared now. Items private to the owner
 * are not seen: the owner takes them back itself, or shares them when
 * asked, or before it sleeps. */
bool crew__split_is_empty(struct crew__split *q);

#endif
