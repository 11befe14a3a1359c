/* work: see work.h. */
#include "work.h"

#include <errno.h>
#include <stdio.h>

#define WORK_BUFFER 16384

/* splitmix64: a full-period generator whose every output is well mixed. */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int
work_digest(uint64_t seed, uint64_t rounds, uint64_t *digest, char *why,
            size_t size)
{
    unsigned char buffer[WORK_BUFFER];
    uint64_t hash = 0xcbf29ce484222325u; /* FNV-1a's offset basis */

    if (rounds < 1 || rounds > WORK_MAX_ROUNDS) {
        snprintf(why, size, "n=%llu: rounds must be 1 to %u",
                 (unsigned long long)rounds, WORK_MAX_ROUNDS);
        return EDOM;
    }
    for (size_t i = 0; i < sizeof(buffer); i += 8) {
        uint64_t r = next_random(&seed);
        for (size_t k = 0; k < 8; k++)
            buffer[i + k] = (unsigned char)(r >> (8 * k));
    }
    for (uint64_t round = 0; round < rounds; round++) {
        for (size_t i = 0; i < sizeof(buffer); i++)
            hash = (hash ^ buffer[i]) * 0x100000001b3u; /* FNV prime */
    }
    *digest = hash;
    return 0;
}
