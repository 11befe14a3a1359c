/*
 * The split deque of spawned calls (split.h): Lace's, after van Dijk and
 * van de Pol (Euro-Par 2014), with the split point and the thieves' tail
 * packed in one 64-bit word, moved by CAS alone.
 *
 * Theory of operation. Items [0, head) are the owner's in push order.
 * Thieves see the packed word `ends` = (tail, split): items [tail, split)
 * are shared, and a thief takes the one at tail with a CAS that moves
 * tail up by one and fails if either half changed since it read them.
 * Items [split, head) are private: no thief can reach them, so the owner
 * pushes and takes them back with plain stores to its own fields. Only
 * the owner moves the split:
 *
 * - up, at a push, to share: half of the private items when a thief has
 *   set `wanted`, with a fetch-add on the split half (raising the split
 *   only gives thieves more, so it need not know tail);
 * - down, at a take of an item below the split: a CAS that moves the
 *   split to the middle of [tail, split), so the item taken back and
 *   those between become private; a CAS, because a thief may be taking
 *   an item of that range at the same moment, and only one of them may
 *   win it. When tail has reached the split, every shared item was
 *   stolen: the owner is `drained`. It then gives up its items one by
 *   one as their thieves finish (crew__split_drop()), with head below
 *   the split, and thieves leave the word alone: they only CAS when tail
 *   is below the split. The next push starts afresh: it stores (head -
 *   1, head), its own item shared at once, so that the first call
 *   spawned after a steal is there for the next thief without asking.
 *
 * Why a CAS that succeeds gives the thief a valid item. The owner writes
 * a slot only at head, which is above the split, and makes it shared by
 * a release (the store or RMW that moves the split over it). A thief's
 * CAS reads the latest value of `ends`; every change to it after the
 * owner's last release store is an RMW, so the thief's acquire
 * synchronises with that release (a release sequence), and it reads the
 * slot after it, seeing what the owner wrote. The owner does not write
 * that slot again until the item's spawner has seen the thief finish
 * with it (spawn.c waits for the thief's TAKEN before its sync drops
 * the item), so the thief's read races with nothing. An old (tail,
 * split) seen again after the owner started afresh (ABA) is harmless:
 * the CAS then takes an item that really is shared at tail, and reads
 * the slot only after it.
 *
 * Waking. A push that shares returns CREW__SPLIT_SHARED and its caller
 * wakes a worker (sched.c), after a seq_cst RMW or store here: with the
 * sleeper's seq_cst announcement and re-check of crew__split_is_empty(),
 * the single total order makes one of them see the other (idle.c). A
 * thief's request, though, is answered only at the owner's next push:
 * until then the owner runs the private items itself, which is why an
 * owner about to sleep shares them all first.
 */
#include "sched/split.h"

#include "base/alloc.h"

#include <errno.h>

#define TAIL_OF(ends)  ((uint32_t)(ends))
#define SPLIT_OF(ends) ((uint32_t)((ends) >> 32))

static uint64_t
ends_of(uint32_t tail, uint32_t split)
{
    return (uint64_t)split << 32 | tail;
}

int
crew__split_init(struct crew__split *q, uint32_t capacity)
{
    q->slots = crew__malloc(capacity * sizeof(q->slots[0]));
    if (q->slots == NULL)
        return ENOMEM;
    for (uint32_t i = 0; i < capacity; i++)
        atomic_init(&q->slots[i], NULL);
    q->head = 0;
    q->split = 0;
    q->capacity = capacity;
    /* Empty: as after every item was stolen, so that the first push
     * shares its item. */
    q->drained = true;
    atomic_init(&q->ends, ends_of(0, 0));
    atomic_init(&q->wanted, false);
    return 0;
}

void
crew__split_destroy(struct crew__split *q)
{
    crew__free(q->slots);
    q->slots = NULL;
}

enum crew__split_push
crew__split_share_new(struct crew__split *q)
{
    uint32_t head = q->head;

    /* Relaxed: cleared before the share that answers it, so that a
     * request made after this is answered again, never lost. */
    atomic_store_explicit(&q->wanted, false, memory_order_relaxed);
    if (q->drained) {
        /* No thief touches `ends` while tail is at the split. seq_cst
         * (a release at least): see the comment at the top. */
        atomic_store_explicit(&q->ends, ends_of(head - 1, head),
                              memory_order_seq_cst);
        q->split = head;
        q->drained = false;
        return CREW__SPLIT_SHARED;
    }
    /* The older half of the private items, rounding up: at least one. */
    uint32_t split = q->split + (head - q->split + 1) / 2;
    atomic_fetch_add_explicit(&q->ends, (uint64_t)(split - q->split) << 32,
                              memory_order_seq_cst);
    q->split = split;
    return CREW__SPLIT_SHARED;
}

void *
crew__split_take_shared(struct crew__split *q)
{
    uint32_t item = q->head - 1;

    if (q->drained)
        return NULL;
    /* Not drained: split <= head, so the newest item is the highest
     * shared one, item = split - 1. Relaxed: the CAS decides. */
    uint64_t ends = atomic_load_explicit(&q->ends, memory_order_relaxed);
    for (;;) {
        uint32_t tail = TAIL_OF(ends);
        if (tail == q->split) {
            q->drained = true;
            return NULL;
        }
        /* tail <= item < split: move the split to the middle, at or
         * below the item. Relaxed on failure: the loop reads again. */
        uint32_t split = (uint32_t)(((uint64_t)tail + q->split) / 2);
        if (atomic_compare_exchange_weak_explicit(
                &q->ends, &ends, ends_of(tail, split), memory_order_seq_cst,
                memory_order_relaxed)) {
            q->split = split;
            q->head = item;
            return atomic_load_explicit(&q->slots[item],
                                        memory_order_relaxed);
        }
    }
}

bool
crew__split_share_all(struct crew__split *q)
{
    if (q->drained || q->split == q->head)
        return false;
    atomic_fetch_add_explicit(&q->ends, (uint64_t)(q->head - q->split) << 32,
                              memory_order_seq_cst);
    q->split = q->head;
    return true;
}

void *
crew__split_steal(struct crew__split *q)
{
    /* Acquire on success: the slot is read after it (see the top). */
    uint64_t ends = atomic_load_explicit(&q->ends, memory_order_seq_cst);
    uint32_t tail = TAIL_OF(ends);

    if (tail < SPLIT_OF(ends)) {
        if (!atomic_compare_exchange_strong_explicit(
                &q->ends, &ends, ends + 1, memory_order_seq_cst,
                memory_order_relaxed))
            return NULL; /* another thief, or the owner, moved first */
        return atomic_load_explicit(&q->slots[tail], memory_order_relaxed);
    }
    /* Relaxed: a hint (see crew__split_push()); read first so that
     * searching thieves do not keep writing the owner's line. */
    if (!atomic_load_explicit(&q->wanted, memory_order_relaxed))
        atomic_store_explicit(&q->wanted, true, memory_order_relaxed);
    return NULL;
}

bool
crew__split_is_empty(struct crew__split *q)
{
    /* seq_cst: the load half of a sleeper's StoreLoad (idle.c). */
    uint64_t ends = atomic_load_explicit(&q->ends, memory_order_seq_cst);

    return TAIL_OF(ends) >= SPLIT_OF(ends);
}
