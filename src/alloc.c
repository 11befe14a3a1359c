/*
 * The one allocator: thin wrappers over the C library today, the single
 * place where fault injection and per-thread caches will hook in.
 */
#include "alloc.h"

#include <stdlib.h>

void *
crew__malloc(size_t size)
{
    return malloc(size);
}

void *
crew__calloc(size_t n, size_t size)
{
    return calloc(n, size);
}

void *
crew__realloc(void *p, size_t size)
{
    return realloc(p, size);
}

void
crew__free(void *p)
{
    free(p);
}
