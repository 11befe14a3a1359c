/*
 * The work-stealing deque: Chase and Lev's (SPAA 2005), with the C11
 * orderings of Le, Pop, Cohen and Zappa Nardelli ("Correct and Efficient
 * Work-Stealing for Weak Memory Models", PPoPP 2013).
 *
 * Theory of operation. Items sit in a ring at their index masked by its
 * capacity. `bottom` is one past the newest item and only the owner
 * writes it; `top` is the oldest and only moves forward, by a CAS. The
 * indices are signed 64-bit: the owner's pop first decrements `bottom`,
 * which on an empty deque goes below `top`, and the comparisons must see
 * that as "empty", not as a huge unsigned count.
 *
 * The one item both ends can want is the last: the owner's pop announces
 * it by storing the decremented `bottom`, then reads `top`; a thief reads
 * `top`, then `bottom`. That is a StoreLoad on each side. The paper puts
 * seq_cst fences between the accesses; here the index accesses themselves
 * are seq_cst, which is the same order for x86 and ARMv8 code size and
 * which ThreadSanitizer understands (it ignores fences). With both sides
 * in the single total order, either the thief sees the smaller `bottom`
 * and backs off, or the owner sees the thief's `top` and the two race for
 * the item with the same CAS on `top`, which one wins.
 *
 * Growth. When the ring is full the owner copies the live items to a ring
 * twice the size, at the same indices, and publishes it with a release
 * store before the push's `bottom`. A thief that read the old ring reads
 * a valid item from it (the owner never writes old rings again), and its
 * CAS on `top` decides whether the item is its. So an outgrown ring is
 * not freed while thieves may still hold it: it is kept on the `retired`
 * list until the deque is destroyed, which happens once every worker of
 * the pool has stopped. Rings only double, so the retired ones together
 * are smaller than the current one.
 */
#include "sched/deque.h"

#include "base/alloc.h"
#include "base/platform.h"

#include <errno.h>
#include <stddef.h>

#define INITIAL_CAPACITY 64

struct crew__ring {
    int64_t mask;             /* capacity - 1; capacity a power of two */
    struct crew__ring *older; /* the retired list, newest first */
    /* Relaxed atomics: a thief may read a slot the owner is writing, and
     * discards what it read unless its CAS on `top` succeeds. */
    _Atomic(void *) slots[];
};

static struct crew__ring *
ring_new(int64_t capacity)
{
    struct crew__ring *ring =
        crew__malloc(offsetof(struct crew__ring, slots) +
                     (size_t)capacity * sizeof(ring->slots[0]));

    if (ring != NULL) {
        ring->mask = capacity - 1;
        ring->older = NULL;
    }
    return ring;
}

int
crew__deque_init(struct crew__deque *deque)
{
    struct crew__ring *ring = ring_new(INITIAL_CAPACITY);

    if (ring == NULL)
        return ENOMEM;
    atomic_init(&deque->top, 0);
    atomic_init(&deque->bottom, 0);
    atomic_init(&deque->ring, ring);
    deque->retired = NULL;
    return 0;
}

void
crew__deque_abandon(struct crew__deque *deque)
{
    struct crew__ring *ring =
        atomic_load_explicit(&deque->ring, memory_order_relaxed);

    crew__free(ring);
    while (deque->retired != NULL) {
        ring = deque->retired;
        deque->retired = ring->older;
        crew__free(ring);
    }
}

void
crew__deque_destroy(struct crew__deque *deque)
{
    crew__deque_abandon(deque);
}

/* Owner only: move items [top, bottom) to a ring of at least `need`
 * slots, the least power of two times the old size. */
static struct crew__ring *
grow(struct crew__deque *deque, struct crew__ring *old, int64_t top,
     int64_t bottom, size_t need)
{
    size_t size = 2 * ((size_t)old->mask + 1);

    while (size < need) {
        if (size > SIZE_MAX / 4 / sizeof(void *))
            return NULL; /* its bytes would not fit a size_t */
        size *= 2;
    }
    struct crew__ring *ring = ring_new((int64_t)size);

    if (ring == NULL)
        return NULL;
    for (int64_t i = top; i < bottom; i++) {
        /* Relaxed: the owner wrote these slots itself. */
        void *item = atomic_load_explicit(&old->slots[i & old->mask],
                                          memory_order_relaxed);
        atomic_store_explicit(&ring->slots[i & ring->mask], item,
                              memory_order_relaxed);
    }
    old->older = deque->retired;
    deque->retired = old;
    /* Release: a thief that acquires the new ring sees the copies. */
    atomic_store_explicit(&deque->ring, ring, memory_order_release);
    return ring;
}

/*
 * Owner only: the ring, with room for n more items past *bottom (read
 * here), or NULL (ENOMEM) with nothing changed.
 */
static CREW__ALWAYS_INLINE struct crew__ring *
reserve(struct crew__deque *deque, size_t n, int64_t *bottom)
{
    /* Relaxed: only the owner writes `bottom` and `ring`. */
    struct crew__ring *ring =
        atomic_load_explicit(&deque->ring, memory_order_relaxed);
    /* Acquire: pairs with a thief's CAS of `top`, so the slots it took
     * are free for reuse. */
    int64_t top = atomic_load_explicit(&deque->top, memory_order_acquire);
    size_t need;

    *bottom = atomic_load_explicit(&deque->bottom, memory_order_relaxed);
    need = (size_t)(*bottom - top) + n;
    if (need > (size_t)ring->mask + 1)
        ring = grow(deque, ring, top, *bottom, need);
    return ring;
}

/* Owner only: the item for `index`, not yet visible to thieves. */
static void
put(struct crew__ring *ring, int64_t index, void *item)
{
    /* Relaxed: published by publish(). */
    atomic_store_explicit(&ring->slots[index & ring->mask], item,
                          memory_order_relaxed);
}

static void
publish(struct crew__deque *deque, int64_t bottom)
{
    /* seq_cst: a release, publishing the items (and what the caller wrote
     * into them) to a thief that reads this `bottom`; and the store half
     * of the submitter's StoreLoad against a searching worker (idle.c,
     * crew__sched_wake()). */
    atomic_store_explicit(&deque->bottom, bottom, memory_order_seq_cst);
}

int
crew__deque_push_many(struct crew__deque *deque, void *const *items, size_t n)
{
    int64_t bottom;
    struct crew__ring *ring = reserve(deque, n, &bottom);

    if (ring == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        put(ring, bottom + (int64_t)i, items[i]);
    publish(deque, bottom + (int64_t)n);
    return 0;
}

int
crew__deque_push_strided(struct crew__deque *deque, char *first,
                         size_t stride, size_t n)
{
    int64_t bottom;
    struct crew__ring *ring = reserve(deque, n, &bottom);

    if (ring == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        put(ring, bottom + (int64_t)i, first + (n - 1 - i) * stride);
    publish(deque, bottom + (int64_t)n);
    return 0;
}

int
crew__deque_push(struct crew__deque *deque, void *item)
{
    return crew__deque_push_many(deque, &item, 1);
}

void *
crew__deque_pop(struct crew__deque *deque)
{
    int64_t bottom =
        atomic_load_explicit(&deque->bottom, memory_order_relaxed) - 1;
    struct crew__ring *ring =
        atomic_load_explicit(&deque->ring, memory_order_relaxed);
    void *item = NULL;

    /* seq_cst, StoreLoad: announce the take before reading `top`; see the
     * file comment. */
    atomic_store_explicit(&deque->bottom, bottom, memory_order_seq_cst);
    int64_t top = atomic_load_explicit(&deque->top, memory_order_seq_cst);

    if (top <= bottom) {
        /* Relaxed: the owner wrote this slot. */
        item = atomic_load_explicit(&ring->slots[bottom & ring->mask],
                                    memory_order_relaxed);
        if (top == bottom) {
            /* The last item: a thief may be taking it too; the CAS
             * decides. seq_cst: ordered with the thieves' CAS. */
            if (!atomic_compare_exchange_strong_explicit(
                    &deque->top, &top, top + 1, memory_order_seq_cst,
                    memory_order_relaxed))
                item = NULL;
            /* Relaxed: the deque is empty; only the owner reads `bottom`
             * for its value, thieves see top >= bottom either way. */
            atomic_store_explicit(&deque->bottom, bottom + 1,
                                  memory_order_relaxed);
        }
    } else {
        /* Empty: undo the announcement. Relaxed: as above. */
        atomic_store_explicit(&deque->bottom, bottom + 1, memory_order_relaxed);
    }
    return item;
}

void *
crew__deque_steal(struct crew__deque *deque)
{
    /* seq_cst: read `top` before `bottom`, the thief's half of the
     * StoreLoad with crew__deque_pop(). */
    int64_t top = atomic_load_explicit(&deque->top, memory_order_seq_cst);
    /* seq_cst (an acquire too): pairs with the push's store of `bottom`,
     * so the item below and what it points to are visible. */
    int64_t bottom = atomic_load_explicit(&deque->bottom, memory_order_seq_cst);

    if (top >= bottom)
        return NULL;
    /* Acquire: pairs with the release in grow(): a new ring's copies are
     * visible. An older ring still holds item `top`: see the file
     * comment. */
    struct crew__ring *ring =
        atomic_load_explicit(&deque->ring, memory_order_acquire);
    /* Relaxed: worthless unless the CAS below succeeds, which proves no
     * one took item `top` since it was read. */
    void *item = atomic_load_explicit(&ring->slots[top & ring->mask],
                                      memory_order_relaxed);
    /* seq_cst: ordered with the owner's pop of the last item. */
    if (!atomic_compare_exchange_strong_explicit(&deque->top, &top, top + 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return NULL;
    return item;
}

bool
crew__deque_is_empty(struct crew__deque *deque)
{
    /* seq_cst: the reads of a worker's recheck before it sleeps, ordered
     * after its announcement (park.c) against the push's store. */
    int64_t top = atomic_load_explicit(&deque->top, memory_order_seq_cst);
    int64_t bottom = atomic_load_explicit(&deque->bottom, memory_order_seq_cst);

    return top >= bottom;
}

size_t
crew__deque_length(const struct crew__deque *deque)
{
    /* Relaxed: a snapshot, off by the pushes, pops and steals made
     * between the two loads; never below 0. */
    int64_t t = atomic_load_explicit(&deque->top, memory_order_relaxed);
    int64_t b = atomic_load_explicit(&deque->bottom, memory_order_relaxed);

    return b > t ? (size_t)(b - t) : 0;
}
