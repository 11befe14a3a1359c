/*
 * The one allocator: thin wrappers over the C library, and the single
 * place where fault injection (fault.h) reaches every allocation.
 */
#include "alloc.h"

#include "fault.h"

#include <stdlib.h>

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

void
crew__free(void *p)
{
    free(p);
}
