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
 * Blocks are cached only while a pool exists (`pools`): the thread that
 * frees the last pool frees its own cache, and blocks freed after that
 * go back to free(). So a program that destroys its pools before it
 * exits leaves nothing of the caches behind, though its main thread, whose
 * thread-specific destructors never run, freed blocks all along.
 */
#include "base/alloc.h"

#include "base/fault.h"

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

/* Free every block this thread keeps: `value` is its caches. */
static void
cache_drain(void *value)
{
    struct cache *c = value;

    for (size_t k = 0; k < 2; k++) {
        while (c[k].head != NULL) {
            struct cached *block = c[k].head;
            c[k].head = block->next;
            free(block);
        }
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

/* The class of blocks of `size` bytes. */
static size_t
class_of(size_t size)
{
    return size <= CREW__BLOCK_SMALL ? 0 : 1;
}

void *
crew__block_alloc(size_t size)
{
    struct cache *c = &caches[class_of(size)];
    struct cached *block;

    if (crew__fault_alloc())
        return NULL;
    block = c->head;
    if (block == NULL)
        return malloc(class_size[class_of(size)]);
    c->head = block->next;
    c->count--;
    return block;
}

void
crew__block_free(void *p, size_t size)
{
    struct cache *c = &caches[class_of(size)];
    struct cached *block = p;

    if (p == NULL)
        return;
    /* Relaxed: a stale count only decides whether one block is cached;
     * the pool's own creation and freeing order the rest. */
    if (c->count >= cache_capacity ||
        atomic_load_explicit(&pools, memory_order_relaxed) == 0 ||
        !cache_register()) {
        free(p);
        return;
    }
    block->next = c->head;
    c->head = block;
    c->count++;
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
    if (atomic_fetch_sub_explicit(&pools, 1, memory_order_relaxed) == 1)
        cache_drain(caches);
}
