/*
 * work: the CPU-heavy part of the server example, shared by the server and
 * its test client (which checks the server's digests against its own).
 *
 * A request asks for `rounds` rounds over a 16 KiB buffer generated from
 * `seed`: each round hashes the whole buffer with 64-bit FNV-1a, starting
 * from the previous round's hash. One round costs about 20 us on a 2020s
 * core, so the work grows linearly with `rounds` and cannot be skipped.
 */
#ifndef CREW_EXAMPLE_WORK_H
#define CREW_EXAMPLE_WORK_H

#include <stddef.h>
#include <stdint.h>

/* Rounds a request may ask for: 1 to WORK_MAX_ROUNDS (about 2 s). */
#define WORK_MAX_ROUNDS 100000u

/*
 * Computes the digest of `rounds` rounds from `seed` into *digest.
 * Returns 0, or EDOM when `rounds` is out of range, with a message of at
 * most `size` bytes in `why`.
 */
int work_digest(uint64_t seed, uint64_t rounds, uint64_t *digest, char *why,
                size_t size);

#endif
