/*
 * A count spread over cache lines until frozen: see spread.h.
 *
 * A line's value once frozen is FROZEN, moved by the threads that still
 * add to it before they see it frozen: anything below FROZEN_BELOW. Live
 * values stay far above (a line's net is bounded by the additions made
 * on it), frozen ones far from overflowing.
 */
#include "base/spread.h"

#include "base/alloc.h"

#include <errno.h>

#define FROZEN       (-(INT64_C(1) << 62))
#define FROZEN_BELOW (-(INT64_C(1) << 61))
/* What `central` holds until the frozen lines' sum is in. */
#define BIAS (INT64_C(1) << 62)

int
crew__spread_init(struct crew__spread *s, unsigned n)
{
    s->lines = crew__calloc_aligned(n, sizeof(s->lines[0]));
    if (s->lines == NULL)
        return ENOMEM;
    s->n = n;
    atomic_init(&s->central, BIAS);
    return 0;
}

void
crew__spread_destroy(struct crew__spread *s)
{
    crew__free(s->lines);
}

bool
crew__spread_add(struct crew__spread *s, unsigned line, int64_t d)
{
    /* Acquire-release on the line: see spread.h. A frozen line's old
     * value tells this thread to go to `central`. */
    if (atomic_fetch_add_explicit(&s->lines[line].net, d,
                                  memory_order_acq_rel) >= FROZEN_BELOW)
        return false;
    return atomic_fetch_add_explicit(&s->central, d, memory_order_acq_rel) +
               d ==
           0;
}

bool
crew__spread_freeze(struct crew__spread *s)
{
    int64_t sum = 0;

    /* Acquire-release: collects every line's work for whoever sees
     * zero, and publishes the freezer's to those that find a line
     * frozen. */
    for (unsigned i = 0; i < s->n; i++)
        sum += atomic_exchange_explicit(&s->lines[i].net, FROZEN,
                                        memory_order_acq_rel);
    return atomic_fetch_add_explicit(&s->central, sum - BIAS,
                                     memory_order_acq_rel) +
               (sum - BIAS) ==
           0;
}
