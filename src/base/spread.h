/*
 * A count spread over cache lines, one a thread, until it is frozen into
 * one: Linux's percpu_ref, for a count that many threads move up and
 * down at a high rate while nobody needs its value, and that one thread
 * later wants to see reach zero (a task group's outstanding members).
 *
 * Until crew__spread_freeze(), each thread adds on its own line (the
 * caller says which: a worker's index, or one line shared by every other
 * thread), so the additions share no cache line across threads. The
 * freeze exchanges each line for FROZEN and adds their sum to `central`,
 * which held a bias meanwhile so that it cannot reach zero before the
 * whole sum is in; a thread that finds its line frozen adds on `central`
 * instead. Exactly one addition, or the freeze itself, sees the count
 * reach zero once frozen; before the freeze, none can.
 */
#ifndef CREW_BASE_SPREAD_H
#define CREW_BASE_SPREAD_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct crew__spread_line {
    alignas(64) _Atomic int64_t net; /* added on this line, net */
};

struct crew__spread {
    struct crew__spread_line *lines;
    unsigned n;
    _Atomic int64_t central;
};

/* n lines, zeroed: 0 or ENOMEM. */
int crew__spread_init(struct crew__spread *s, unsigned n);
void crew__spread_destroy(struct crew__spread *s);

/* Add d on line `line` (below n), or on `central` once frozen. True if
 * this brought a frozen count to zero. Acquire-release: what the thread
 * did before is seen by whoever sees zero, and a thread that finds its
 * line frozen sees what its freezer did before the freeze. */
bool crew__spread_add(struct crew__spread *s, unsigned line, int64_t d);
/* Freeze every line into one count, once: true if it is zero then. */
bool crew__spread_freeze(struct crew__spread *s);

#endif
