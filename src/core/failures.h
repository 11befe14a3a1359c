/*
 * Failures kept by position until they become one aggregate: a parallel
 * loop's failed chunks, a group's failed members. Not synchronized: the
 * owner's lock guards it.
 */
#ifndef CREW_FAILURES_H
#define CREW_FAILURES_H

#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>

struct crew__failure;

struct crew__failures {
    struct crew__failure *list; /* newest first */
    size_t count;
    bool lost; /* one could not be kept: memory ran out */
};

/* Keep `error` (the caller's reference, taken) at `position`. A NULL
 * error, or no memory for the record, loses the failure: the aggregate
 * can no longer be made whole. */
void crew__failures_add(struct crew__failures *f, size_t position,
                        crew_error *error);

static inline bool
crew__failures_any(const struct crew__failures *f)
{
    return f->count != 0 || f->lost;
}

/* Every failure in position order, as an aggregate whose message is
 * crew__error_aggregate()'s over `total` `what`; NULL if one was lost or
 * memory ran out. Empties f either way. */
crew_error *crew__failures_take(struct crew__failures *f, size_t total,
                                const char *what);
/* Drop every failure kept. */
void crew__failures_clear(struct crew__failures *f);

#endif
