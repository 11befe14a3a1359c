/*
 * The one allocator: thin wrappers over the C library, the single place
 * where fault injection (fault.h) reaches every allocation, and a
 * per-thread cache of future blocks.
 *
 * Blocks come in two sizes (alloc.h), each with a cache of its own.
 *
 * Theory of operation. A task's future is allocated by its submitter
 * and freed by whichever thread drops the last reference. The block goes
 * to the freeing thread's cache, a plain list in thread-local storage, up
 * to CACHE_BLOCKS of them; beyond that, and for a thread whose cache could
 * not be registered, to free(). An allocation takes from the calling
 * thread's cache first. A thread that submits and waits (fork-join, a
 * request loop) thus reuses the same few blocks without a lock or a call
 * into malloc. A thread's cache is freed when the thread exits, by the
 * destructor of a thread-specific key; a block freed by a later
 * destructor re-registers the cache, and the C library runs the
 * destructor again.
 *
 * Blocks often die on another thread than the one they were born on: a
 * fan-out's submitter allocates, the workers free. A thread's cache that
 * is full then hands its CACHE_BLOCKS blocks whole, a magazine, to the
 * class's depot, and a thread whose cache is empty takes a magazine from
 * there before it calls malloc (Bonwick's magazines and depot, as in
 * Solaris's and Linux's slab allocators): one mutex a magazine, not a
 * contended malloc arena a block. The depot keeps at most DEPOT_MAGAZINES;
 * past that a full cache's block goes to free().
 *
 * Blocks are cached only while a pool exists (`pools`): the thread that
 * frees the last pool frees its own cache and the depots, and blocks freed
 * after that go back to free(). So a program that destroys its pools before
 * it exits leaves nothing of the caches behind, though its main thread, whose
 * thread-specific destructors never run, freed blocks all along.
 */
#include "base/alloc.h"

#include "base/fault.h"
#include "base/platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

/* Under AddressSanitizer the cache is off: a block kept for reuse would
 * hide a use after free from it, and the stale pointers in a cached block
 * would hide leaks from LeakSanitizer (they make what they point to look
 * reachable). */
#if defined(__SANITIZE_ADDRESS__)
#define CACHE_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_BLOCKS 0
#endif
#endif
#ifndef CACHE_BLOCKS
#define CACHE_BLOCKS 64
#endif

struct cached {
    struct cached *next;
    struct cached *next_magazine; /* a magazine's first block, in a depot */
};

#define DEPOT_MAGAZINES 64

/* Full magazines of one class, first blocks linked by next_magazine. */
struct depot {
    pthread_mutex_t lock; /* guards the two below */
    struct cached *magazines;
    /* Written under the lock; read without it as a hint, so that a thread
     * finding the depot empty takes no lock. */
    atomic_uint count;
};

static struct depot depots[2] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
};

struct cache {
    struct cached *head;
    unsigned count;
    bool registered; /* the key's value is set: the destructor will run */
};

/* A variable, not the macro: gcc's -Wtype-limits would call a count
 * compared with a capacity of 0 always true under ASan. */
static const unsigned cache_capacity = CACHE_BLOCKS;
/* One cache a size class, and the exact size of the blocks each keeps. */
static _Thread_local struct cache caches[2];
static const size_t class_size[2] = {CREW__BLOCK_SMALL, CREW__BLOCK_LARGE};
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static bool cache_key_made;
static atomic_uint pools; /* pools alive in the process */

void *
crew__malloc(size_t size)
{
    if (crew__fault_alloc())
        return NULL;
    return malloc(size);
}

void *
crew__calloc(size_t n, size_t size)
{
    if (crew__fault_alloc())
        return NULL;
    return calloc(n, size);
}

void *
crew__realloc(void *p, size_t size)
{
    if (crew__fault_alloc())
        return NULL;
    return realloc(p, size);
}

void *
crew__calloc_aligned(size_t n, size_t size)
{
    size_t bytes;
    void *p;

    if (size != 0 && n > (SIZE_MAX - CACHE_LINE) / size)
        return NULL;
    /* aligned_alloc wants a multiple of the alignment. */
    bytes = (n * size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    if (crew__fault_alloc())
        return NULL;
    p = aligned_alloc(CACHE_LINE, bytes != 0 ? bytes : CACHE_LINE);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

void
crew__free(void *p)
{
    free(p);
}

/* Free the blocks of a list linked by `next`. */
static void
free_list(struct cached *block)
{
    while (block != NULL) {
        struct cached *next = block->next;
        free(block);
        block = next;
    }
}

/* Hand c's full magazine to the depot; false if the depot is full. */
static CREW__COLD bool
depot_give(struct depot *d, struct cache *c)
{
    bool given;

    /* Relaxed: a hint, as in depot_take(); the lock decides. */
    if (atomic_load_explicit(&d->count, memory_order_relaxed) >=
        DEPOT_MAGAZINES)
        return false;
    pthread_mutex_lock(&d->lock);
    given = atomic_load_explicit(&d->count, memory_order_relaxed) <
            DEPOT_MAGAZINES;
    if (given) {
        c->head->next_magazine = d->magazines;
        d->magazines = c->head;
        atomic_fetch_add_explicit(&d->count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&d->lock);
    if (given) {
        c->head = NULL;
        c->count = 0;
    }
    return given;
}

/* Fill c, empty, with a magazine from the depot; false if it has none.
 * Out of line: the allocation's usual path stays a tail call. */
static CREW__COLD bool
depot_take(struct depot *d, struct cache *c)
{
    struct cached *magazine;

    /* Relaxed: a hint; a magazine given a moment ago is taken next time. */
    if (atomic_load_explicit(&d->count, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(&d->lock);
    magazine = d->magazines;
    if (magazine != NULL) {
        d->magazines = magazine->next_magazine;
        atomic_fetch_sub_explicit(&d->count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&d->lock);
    if (magazine == NULL)
        return false;
    c->head = magazine;
    c->count = cache_capacity;
    return true;
}

/* Free every magazine the depots keep. */
static void
depots_drain(void)
{
    for (size_t k = 0; k < 2; k++) {
        struct cached *magazine;

        pthread_mutex_lock(&depots[k].lock);
        magazine = depots[k].magazines;
        depots[k].magazines = NULL;
        atomic_store_explicit(&depots[k].count, 0, memory_order_relaxed);
        pthread_mutex_unlock(&depots[k].lock);
        while (magazine != NULL) {
            struct cached *next = magazine->next_magazine;
            free_list(magazine);
            magazine = next;
        }
    }
}

void
crew__alloc_after_fork(void)
{
    /* A thread of the parent's may have held a depot's lock at the fork:
     * the child has the memory, and a lock of its own. */
    for (size_t k = 0; k < 2; k++)
        pthread_mutex_init(&depots[k].lock, NULL);
}

/* Free every block this thread keeps: `value` is its caches. */
static void
cache_drain(void *value)
{
    struct cache *c = value;

    for (size_t k = 0; k < 2; k++) {
        free_list(c[k].head);
        c[k].head = NULL;
        c[k].count = 0;
    }
    c[0].registered = false;
}

static void
make_cache_key(void)
{
    cache_key_made = pthread_key_create(&cache_key, cache_drain) == 0;
}

/* Arrange for this thread's cache to be drained when it exits. */
static bool
cache_register(void)
{
    if (caches[0].registered)
        return true;
    pthread_once(&cache_key_once, make_cache_key);
    if (!cache_key_made || pthread_setspecific(cache_key, caches) != 0)
        return false;
    caches[0].registered = true;
    return true;
}

/* The cache of class k is empty: a magazine from the depot, or malloc. */
static CREW__COLD void *
refill(struct cache *c, unsigned k)
{
    struct cached *block;

    /* A thread that keeps blocks must have its cache drained when it
     * exits: one that only ever allocates has not registered it yet. */
    if (!cache_register() || !depot_take(&depots[k], c))
        return malloc(class_size[k]);
    block = c->head;
    c->head = block->next;
    c->count--;
    return block;
}

/* The allocation of class k, inlined into one function a class so that
 * its usual paths are a few instructions: a pop from the cache, or a tail
 * call to malloc while the depot is empty. */
static inline void *
alloc_in(unsigned k)
{
    struct cache *c = &caches[k];
    struct cached *block;

    if (crew__fault_alloc())
        return NULL;
    block = c->head;
    if (block != NULL) {
        c->head = block->next;
        c->count--;
        return block;
    }
    /* Relaxed: a hint; see depot_take(). */
    if (cache_capacity == 0 ||
        atomic_load_explicit(&depots[k].count, memory_order_relaxed) == 0)
        return malloc(class_size[k]);
    return refill(c, k);
}

void *
crew__block_alloc_small(void)
{
    return alloc_in(0);
}

void *
crew__block_alloc_large(void)
{
    return alloc_in(1);
}

/* The cache of class k is full, or cannot keep p: hand its magazine to
 * the depot and start afresh with p, or free p. */
static CREW__COLD void
spill(struct cache *c, unsigned k, void *p)
{
    struct cached *block = p;

    if (cache_capacity == 0 ||
        atomic_load_explicit(&pools, memory_order_relaxed) == 0 ||
        !cache_register() ||
        (c->count == cache_capacity && !depot_give(&depots[k], c))) {
        free(p);
        return;
    }
    block->next = c->head;
    c->head = block;
    c->count++;
}

static inline void
free_in(void *p, unsigned k)
{
    struct cache *c = &caches[k];
    struct cached *block = p;

    if (p == NULL)
        return;
    /* Relaxed: a stale count only decides whether one block is cached;
     * the pool's own creation and freeing order the rest. The usual
     * case, a registered cache with room, stays inline. */
    if (c->count >= cache_capacity || !caches[0].registered ||
        atomic_load_explicit(&pools, memory_order_relaxed) == 0) {
        spill(c, k, p);
        return;
    }
    block->next = c->head;
    c->head = block;
    c->count++;
}

void
crew__block_free_small(void *p)
{
    free_in(p, 0);
}

void
crew__block_free_large(void *p)
{
    free_in(p, 1);
}

void
crew__block_cache_open(void)
{
    /* Relaxed: a count; see crew__block_free(). */
    atomic_fetch_add_explicit(&pools, 1, memory_order_relaxed);
}

void
crew__block_cache_close(void)
{
    if (atomic_fetch_sub_explicit(&pools, 1, memory_order_relaxed) == 1) {
        cache_drain(caches);
        depots_drain();
    }
}
