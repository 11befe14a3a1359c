/*
 * The one allocator. Every allocation of the library goes through these
 * functions, so that a test-only fault hook placed here reaches every site.
 *
 * Future blocks, allocated and freed once per task, have a cache of their
 * own on each thread (see alloc.c), so that steady state never reaches
 * malloc.
 */
#ifndef CREW_ALLOC_H
#define CREW_ALLOC_H

#include <stddef.h>

void *crew__malloc(size_t size);
void *crew__calloc(size_t n, size_t size);
/* As realloc(): on NULL (ENOMEM) the block at p is left as it was. */
void *crew__realloc(void *p, size_t size);
/* n zeroed objects of `size` bytes, the block aligned to a cache line, as
 * the alignas(64) members of pools and workers need; NULL on ENOMEM,
 * including when n * size overflows. Freed with crew__free(). */
void *crew__calloc_aligned(size_t n, size_t size);
void crew__free(void *p);

/* A future's block, of one of two sizes: CREW__BLOCK_SMALL bytes (a
 * task's future) or CREW__BLOCK_LARGE (a group's member); `size`, at most
 * that, picks the class, and the same size is passed to the free. */
#define CREW__BLOCK_SMALL 104
#define CREW__BLOCK_LARGE 144
void *crew__block_alloc_small(void);
void *crew__block_alloc_large(void);
void crew__block_free_small(void *p);
void crew__block_free_large(void *p);

/* Inline, so that a constant size picks its class at compile time. */
static inline void *
crew__block_alloc(size_t size)
{
    return size <= CREW__BLOCK_SMALL ? crew__block_alloc_small()
                                     : crew__block_alloc_large();
}

static inline void
crew__block_free(void *p, size_t size)
{
    if (size <= CREW__BLOCK_SMALL)
        crew__block_free_small(p);
    else
        crew__block_free_large(p);
}
/* A pool was made, or freed: blocks are cached only while one exists,
 * and the thread freeing the last one frees its own cache. */
void crew__block_cache_open(void);
void crew__block_cache_close(void);
/* In a child after fork(): the depots' locks start afresh. */
void crew__alloc_after_fork(void);

#endif
