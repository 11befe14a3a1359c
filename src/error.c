/*
 * Errors and aggregates, flatten, format, crew_strerror.
 *
 * An error is immutable once another thread can see it, so reading one
 * needs no lock. A leaf holds its code and message in one block; an
 * aggregate holds its entries, then its message, in one block, and one
 * reference to each inner error, which may sit in many aggregates.
 * Reference counts: a retain needs a reference already held, so it may be
 * relaxed; the release that drops the last one acquires every earlier
 * release's writes before freeing.
 *
 * When memory runs out while a failure is recorded, the future resolves
 * with an error embedded in itself (crew__error_embed_lost); retaining
 * that error retains the future, so it lives exactly as long as needed.
 */
#include "error.h"

#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

crew_error crew__error_cancelled = {
    .code = ECANCELED,
    .kind = CREW__ERROR_STATIC,
    .message = "cancelled",
};

static const char lost_leaf[] =
    "out of memory: the message of this failure was lost";
static const char lost_aggregate[] =
    "out of memory: the failures of this join were lost";

static crew_error *
leaf_new(int code, size_t length, char **text)
{
    crew_error *e = crew__malloc(sizeof(*e) + length + 1);

    if (e == NULL)
        return NULL;
    atomic_init(&e->refs, 1);
    e->code = code;
    e->kind = CREW__ERROR_LEAF;
    e->count = 0;
    e->entries = NULL;
    *text = (char *)(e + 1);
    e->message = *text;
    return e;
}

crew_error *
crew__error_vformat(int code, const char *format, va_list args)
{
    va_list again;
    char *text;
    crew_error *e;

    va_copy(again, args);
    int length = vsnprintf(NULL, 0, format, args);
    if (length < 0) {
        va_end(again);
        return crew__error_default(code);
    }
    e = leaf_new(code, (size_t)length, &text);
    if (e != NULL)
        vsnprintf(text, (size_t)length + 1, format, again);
    va_end(again);
    return e;
}

crew_error *
crew__error_default(int code)
{
    static const char format[] = "failed with code %d";
    char *text;
    int length = snprintf(NULL, 0, format, code);
    crew_error *e = leaf_new(code, (size_t)length, &text);

    if (e != NULL)
        snprintf(text, (size_t)length + 1, format, code);
    return e;
}

crew_error *
crew__error_aggregate(size_t count, size_t inputs, const char *what,
                      struct crew__entry **entries)
{
    static const char format[] = "%zu of %zu %s";
    int length = snprintf(NULL, 0, format, count, inputs, what);
    size_t size = sizeof(crew_error) + count * sizeof(struct crew__entry);
    crew_error *e;

    if (count > (SIZE_MAX - sizeof(*e) - 64) / sizeof(struct crew__entry))
        return NULL;
    e = crew__malloc(size + (size_t)length + 1);
    if (e == NULL)
        return NULL;
    atomic_init(&e->refs, 1);
    e->code = CREW_EAGGREGATE;
    e->kind = CREW__ERROR_AGGREGATE;
    e->count = count;
    *entries = (struct crew__entry *)(e + 1);
    e->entries = *entries;
    char *text = (char *)e + size;
    snprintf(text, (size_t)length + 1, format, count, inputs, what);
    e->message = text;
    return e;
}

void
crew__error_embed_lost(crew_error *error, crew_future *owner, int code)
{
    atomic_init(&error->refs, 0);
    error->code = code;
    error->kind = CREW__ERROR_EMBEDDED;
    error->count = 0;
    error->owner = owner;
    error->message = code == CREW_EAGGREGATE ? lost_aggregate : lost_leaf;
}

int
crew_error_code(const crew_error *error)
{
    return error != NULL ? error->code : 0;
}

const char *
crew_error_message(const crew_error *error)
{
    return error != NULL ? error->message : "";
}

size_t
crew_error_count(const crew_error *error)
{
    return error != NULL ? error->count : 0;
}

const crew_error *
crew_error_inner(const crew_error *error, size_t i, size_t *input)
{
    if (error == NULL || i >= error->count)
        return NULL;
    if (input != NULL)
        *input = error->entries[i].input;
    return error->entries[i].inner;
}

crew_error *
crew_error_retain(const crew_error *error)
{
    crew_error *e = (crew_error *)error;

    if (e == NULL)
        return NULL;
    switch (e->kind) {
    case CREW__ERROR_STATIC:
        break;
    case CREW__ERROR_EMBEDDED:
        crew_future_retain(e->owner);
        break;
    default:
        /* Relaxed: the caller already holds a reference. */
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        break;
    }
    return e;
}

void
crew_error_release(crew_error *error)
{
    if (error == NULL)
        return;
    switch (error->kind) {
    case CREW__ERROR_STATIC:
        return;
    case CREW__ERROR_EMBEDDED:
        crew_future_release(error->owner);
        return;
    default:
        break;
    }
    /* Acquire-release: the last release sees every write made under the
     * other references before it frees. */
    if (atomic_fetch_sub_explicit(&error->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < error->count; i++)
        crew_error_release(error->entries[i].inner);
    crew__free(error);
}

static size_t
count_leaves(const crew_error *error)
{
    size_t n = 0;

    for (size_t i = 0; i < error->count; i++) {
        const crew_error *inner = error->entries[i].inner;
        n += inner->kind == CREW__ERROR_AGGREGATE ? count_leaves(inner) : 1;
    }
    return n;
}

static struct crew__entry *
copy_leaves(const crew_error *error, struct crew__entry *out)
{
    for (size_t i = 0; i < error->count; i++) {
        const struct crew__entry *entry = &error->entries[i];
        if (entry->inner->kind == CREW__ERROR_AGGREGATE) {
            out = copy_leaves(entry->inner, out);
        } else {
            out->inner = crew_error_retain(entry->inner);
            out->input = entry->input;
            out++;
        }
    }
    return out;
}

crew_error *
crew_error_flatten(const crew_error *error)
{
    struct crew__entry *entries;
    crew_error *flat;

    if (error == NULL)
        return NULL;
    if (error->kind != CREW__ERROR_AGGREGATE) {
        flat = crew__error_aggregate(1, 1, "inputs failed", &entries);
        if (flat != NULL) {
            entries[0].inner = crew_error_retain(error);
            entries[0].input = 0;
        }
        return flat;
    }
    size_t n = count_leaves(error);
    flat = crew__error_aggregate(n, n, "inputs failed", &entries);
    if (flat != NULL)
        copy_leaves(error, entries);
    return flat;
}

/* An snprintf-style writer: counts what it would need past `size`. */
struct writer {
    char *buf;
    size_t size;
    size_t length;
};

static void write_text(struct writer *w, const char *format, ...)
    CREW_PRINTF(2, 3);

static void
write_text(struct writer *w, const char *format, ...)
{
    va_list args;
    size_t room = w->length < w->size ? w->size - w->length : 0;

    va_start(args, format);
    int n = vsnprintf(room > 0 ? w->buf + w->length : NULL, room, format, args);
    va_end(args);
    if (n > 0)
        w->length += (size_t)n;
}

static void
write_tree(struct writer *w, const crew_error *error, int depth,
           const size_t *input)
{
    write_text(w, "%*s", depth * 2, "");
    if (input != NULL)
        write_text(w, "[%zu] ", *input);
    if (error->code == CREW_EAGGREGATE)
        write_text(w, "%s\n", error->message);
    else
        write_text(w, "error %d (%s): %s\n", error->code,
                   crew_strerror(error->code), error->message);
    for (size_t i = 0; i < error->count; i++)
        write_tree(w, error->entries[i].inner, depth + 1,
                   &error->entries[i].input);
}

int
crew_error_format(const crew_error *error, char *buf, size_t size)
{
    struct writer w = {buf, buf != NULL ? size : 0, 0};

    if (error == NULL)
        return -1;
    if (w.size > 0)
        buf[0] = '\0';
    write_tree(&w, error, 0, NULL);
    return w.length > INT32_MAX ? INT32_MAX : (int)w.length;
}

const char *
crew_strerror(int code)
{
    if (code == CREW_EAGGREGATE)
        return "one or more inputs failed";
    if (code == ESHUTDOWN)
        return "the pool is shut down";
    if (code == 0)
        return "success";
#ifdef __GLIBC__
    const char *text = strerrordesc_np(code);
    return text != NULL ? text : "unknown error";
#else
    /* Elsewhere strerror() returns static text for the codes it knows. */
    return strerror(code);
#endif
}
