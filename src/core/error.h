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

/* How an embedded error shares its owner's references: a seam, as the
 * owner (a future) is built on errors, not the other way round. */
struct crew__error_host {
    void (*retain)(void *owner);
    void (*release)(void *owner);
};

struct crew_error {
    _Atomic uint32_t refs; /* LEAF and AGGREGATE only */
    int code;
    enum crew__error_kind kind;
    union {
        size_t count; /* AGGREGATE: its entries (see count_of() in error.c) */
        const struct crew__error_host *host; /* EMBEDDED */
    };
    union {
        const struct crew__entry *entries; /* AGGREGATE: in the same block */
        void *owner;                       /* EMBEDDED */
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
 * a fixed message saying the rest was lost to a lack of memory. Its
 * references are the owner's, taken and dropped through `host`. */
void crew__error_embed_lost(crew_error *error,
                            const struct crew__error_host *host, void *owner,
                            int code);

#endif
