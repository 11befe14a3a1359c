/*
 * The one allocator. Every allocation of the library goes through these
 * functions, so that a test-only fault hook placed here reaches every site.
 */
#ifndef CREW_ALLOC_H
#define CREW_ALLOC_H

#include <stddef.h>

void *crew__malloc(size_t size);
void *crew__calloc(size_t n, size_t size);
void crew__free(void *p);

#endif
