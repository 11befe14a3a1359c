/*
 * Errors: immutable, reference-counted, possibly aggregates of others.
 *
 * The layout is shown because a future embeds one: the fallback it
 * resolves with when memory runs out while recording a failure.
 */
#ifndef CREW_ERROR_H
#define CREW_ERROR_H

#include "crew.h"

#include <stdarg.h>
#include <stdatomic.h>

struct crew__entry {
    crew_error *inner; /* a reference owned by the aggregate */
    size_t input;      /* the failed input's position in its when_all */
};

enum crew__error_kind {
    CREW__ERROR_LEAF,      /* code and message */
    CREW__ERROR_AGGREGATE, /* code CREW_EAGGREGATE and entries */
    CREW__ERROR_STATIC,    /* lives forever; references are not counted */
    CREW__ERROR_EMBEDDED   /* inside `owner`, whose references it shares */
};

struct crew_error {
    _Atomic uint32_t refs; /* LEAF and AGGREGATE only */
    int code;
    enum crew__error_kind kind;
    size_t count; /* entries of an aggregate; 0 for every other kind */
    union {
        const struct crew__entry *entries; /* AGGREGATE: in the same block */
        crew_future *owner;                /* EMBEDDED */
    };
    union {
        const char *message; /* in the same block, or static */
        /* Once its last reference is gone: the next error on the
         * releasing thread's list of errors to free. */
        crew_error *doomed_next;
    };
};

/* The error of every cancelled future: code ECANCELED. */
extern crew_error crew__error_cancelled;

/* A new leaf with a printf-formatted message; NULL on ENOMEM. */
crew_error *crew__error_vformat(int code, const char *format, va_list args);
/* A new leaf with the default message naming `code`; NULL on ENOMEM. */
crew_error *crew__error_default(int code);
/* A new aggregate of `count` entries, for the caller to fill in, whose
 * message is "<count> of <inputs> <what>" ("inputs failed", "chunks
 * failed"); NULL on ENOMEM. */
crew_error *crew__error_aggregate(size_t count, size_t inputs, const char *what,
                                  struct crew__entry **entries);
/* Make `error`, embedded in `owner`, the fallback failure with `code`:
 * a fixed message saying the rest was lost to a lack of memory. */
void crew__error_embed_lost(crew_error *error, crew_future *owner, int code);

#endif
