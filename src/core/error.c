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
 * that error retains the future, through functions the future hands it
 * (this file calls no future's code), so it lives exactly as long as
 * needed.
 */
#include "core/error.h"

#include "base/alloc.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN_TEXT "unknown error" /* crew_strerror()'s for other codes */

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
    e->count = 0; /* unread: a leaf has no entries (count_of()) */
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

/* The message crew_strerror() has for `code`, or NULL if it knows
 * none. */
static const char *
known_text(int code)
{
    const char *text = crew_strerror(code);

    return strcmp(text, UNKNOWN_TEXT) != 0 ? text : NULL;
}

#define DEFAULT_FORMAT "error %d" /* for a code crew_strerror() knows not */

crew_error *
crew__error_default(int code)
{
    const char *known = known_text(code);
    char *text;
    crew_error *e;

    if (known != NULL) {
        /* Static text: the leaf needs no room for it. */
        e = leaf_new(code, 0, &text);
        if (e != NULL)
            e->message = known;
        return e;
    }
    int length = snprintf(NULL, 0, DEFAULT_FORMAT, code);
    e = leaf_new(code, (size_t)length, &text);
    if (e != NULL)
        snprintf(text, (size_t)length + 1, DEFAULT_FORMAT, code);
    return e;
}

/* Whether `error`'s message says no more than its code does: the default
 * one, which crew_error_format() does not print twice. */
static bool
has_default_message(const crew_error *error)
{
    const char *known = known_text(error->code);
    char text[32];

    if (known != NULL)
        return strcmp(error->message, known) == 0;
    snprintf(text, sizeof(text), DEFAULT_FORMAT, error->code);
    return strcmp(error->message, text) == 0;
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
crew__error_embed_lost(crew_error *error, const struct crew__error_host *host,
                       void *owner, int code)
{
    atomic_init(&error->refs, 0);
    error->code = code;
    error->kind = CREW__ERROR_EMBEDDED;
    error->host = host;
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

/* The entries of an aggregate; 0 for every other kind. */
static size_t
count_of(const crew_error *error)
{
    return error->kind == CREW__ERROR_AGGREGATE ? error->count : 0;
}

size_t
crew_error_count(const crew_error *error)
{
    return error != NULL ? count_of(error) : 0;
}

const crew_error *
crew_error_inner(const crew_error *error, size_t i, size_t *input)
{
    if (error == NULL || i >= count_of(error))
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
        e->host->retain(e->owner);
        break;
    default:
        /* Relaxed: the caller already holds a reference. */
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        break;
    }
    return e;
}

/*
 * Freeing, without recursion: an aggregate whose last reference goes
 * while this thread frees another (one of its inner errors) joins this
 * thread's list, and the outermost call frees them one after the other,
 * so freeing an error a million levels deep takes bounded stack.
 */
static _Thread_local bool freeing;
static _Thread_local crew_error *doomed;

void
crew_error_release(crew_error *error)
{
    if (error == NULL)
        return;
    switch (error->kind) {
    case CREW__ERROR_STATIC:
        return;
    case CREW__ERROR_EMBEDDED:
        error->host->release(error->owner);
        return;
    default:
        break;
    }
    /* Acquire-release: the last release sees every write made under the
     * other references before it frees. */
    if (atomic_fetch_sub_explicit(&error->refs, 1, memory_order_acq_rel) != 1)
        return;
    error->doomed_next = doomed;
    doomed = error;
    if (freeing)
        return;
    freeing = true;
    while ((error = doomed) != NULL) {
        doomed = error->doomed_next;
        for (size_t i = 0; i < count_of(error); i++)
            crew_error_release(error->entries[i].inner);
        crew__free(error);
    }
    freeing = false;
}

/*
 * Flatten and format walk a tree depth-first with a stack of their own,
 * never recursing on its depth (API.md, "Depth, lifetimes and hostile
 * callers"): a frame per aggregate entered, in `local` while the tree is
 * shallow, on the heap past that. The stack never shrinks, so a second
 * walk of the same tree allocates nothing.
 */
#define LOCAL_FRAMES 64

struct frame {
    const crew_error *error; /* an aggregate being walked */
    size_t next;             /* its entry to visit next */
};

struct stack {
    struct frame *frames; /* local, or from crew__malloc() */
    size_t depth;         /* frames in use */
    size_t capacity;
    struct frame local[LOCAL_FRAMES];
};

static void
stack_init(struct stack *s)
{
    s->frames = s->local;
    s->depth = 0;
    s->capacity = LOCAL_FRAMES;
}

static void
stack_free(struct stack *s)
{
    if (s->frames != s->local)
        crew__free(s->frames);
}

static int
stack_grow(struct stack *s)
{
    struct frame *frames;

    if (s->capacity > SIZE_MAX / 2 / sizeof(*frames))
        return ENOMEM;
    size_t capacity = s->capacity * 2;
    if (s->frames == s->local) {
        frames = crew__malloc(capacity * sizeof(*frames));
        if (frames != NULL)
            memcpy(frames, s->local, sizeof(s->local));
    } else {
        frames = crew__realloc(s->frames, capacity * sizeof(*frames));
    }
    if (frames == NULL)
        return ENOMEM;
    s->frames = frames;
    s->capacity = capacity;
    return 0;
}

/* Enter `error`, an aggregate: its entries come next. ENOMEM if the stack
 * cannot grow; the walk is then unchanged. */
static int
stack_push(struct stack *s, const crew_error *error)
{
    if (s->depth == s->capacity) {
        int err = stack_grow(s);
        if (err != 0)
            return err;
    }
    s->frames[s->depth].error = error;
    s->frames[s->depth].next = 0;
    s->depth++;
    return 0;
}

/* The next entry depth-first, leaving the aggregates it has finished;
 * NULL once the walk is over. The entry's nesting depth is then
 * s->depth: 1 for an entry of the aggregate pushed first. */
static const struct crew__entry *
stack_next(struct stack *s)
{
    while (s->depth > 0) {
        struct frame *top = &s->frames[s->depth - 1];
        if (top->next < count_of(top->error))
            return &top->error->entries[top->next++];
        s->depth--;
    }
    return NULL;
}

/* The leaves of the aggregate `error`, into *n; ENOMEM when the stack
 * cannot grow or there are more than an aggregate could hold (a tree
 * sharing its subtrees can have exponentially many). */
static int
count_leaves(struct stack *s, const crew_error *error, size_t *n)
{
    const struct crew__entry *entry;
    size_t leaves = 0;
    int err;

    err = stack_push(s, error);
    while (err == 0 && (entry = stack_next(s)) != NULL) {
        if (entry->inner->kind == CREW__ERROR_AGGREGATE)
            err = stack_push(s, entry->inner);
        else if (++leaves > SIZE_MAX / sizeof(*entry))
            err = ENOMEM;
    }
    s->depth = 0;
    *n = leaves;
    return err;
}

/* Retain the leaves of `error` into `out`, in count_leaves() order. */
static void
copy_leaves(struct stack *s, const crew_error *error, struct crew__entry *out)
{
    const struct crew__entry *entry;
    int err;

    /* The stack cannot fail to grow: count_leaves() walked the same tree
     * with it, so it is already as deep as this walk goes. */
    err = stack_push(s, error);
    while ((entry = stack_next(s)) != NULL) {
        if (entry->inner->kind == CREW__ERROR_AGGREGATE) {
            err |= stack_push(s, entry->inner);
        } else {
            out->inner = crew_error_retain(entry->inner);
            out->input = entry->input;
            out++;
        }
    }
    assert(err == 0);
    (void)err;
}

crew_error *
crew_error_flatten(const crew_error *error)
{
    struct crew__entry *entries;
    crew_error *flat = NULL;
    struct stack s;
    size_t n;

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
    stack_init(&s);
    if (count_leaves(&s, error, &n) == 0) {
        flat = crew__error_aggregate(n, n, "inputs failed", &entries);
        if (flat != NULL)
            copy_leaves(&s, error, entries);
    }
    stack_free(&s);
    return flat;
}

/* Indentation: two blanks a level, down to this depth and no further, so
 * that a deep tree's text grows linearly with it. */
#define INDENT_LEVELS 32
#define INDENT_WIDTH  2

/* An snprintf-style writer: counts what it would need past `size`, up to
 * INT_MAX, the most an int return can say. Or, with a stream, writes
 * there, with no limit, until a write fails. */
struct writer {
    char *buf;
    size_t size;
    size_t length;   /* of the whole text so far; at most INT_MAX */
    bool overflowed; /* the text is longer than INT_MAX: write no more */
    FILE *stream;
    int err; /* a failed write's errno: write no more */
};

static void
write_bytes(struct writer *w, const char *text, size_t n)
{
    if (w->overflowed)
        return;
    if (w->stream != NULL) {
        errno = 0;
        if (fwrite(text, 1, n, w->stream) != n) {
            w->err = errno != 0 ? errno : EIO;
            w->overflowed = true;
        }
        return;
    }
    if (n > (size_t)INT_MAX - w->length) {
        w->overflowed = true;
        return;
    }
    /* The last byte of buf is kept for the NUL. */
    if (w->length + 1 < w->size) {
        size_t room = w->size - 1 - w->length;
        memcpy(w->buf + w->length, text, n < room ? n : room);
    }
    w->length += n;
}

static void
write_string(struct writer *w, const char *text)
{
    write_bytes(w, text, strlen(text));
}

static void write_text(struct writer *w, const char *format, ...)
    CREW_PRINTF(2, 3);

/* A short formatted piece: a number and its punctuation. */
static void
write_text(struct writer *w, const char *format, ...)
{
    char text[64];
    va_list args;

    va_start(args, format);
    int n = vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    assert(n >= 0 && (size_t)n < sizeof(text));
    write_bytes(w, text, (size_t)n);
}

static void
write_indent(struct writer *w, size_t depth)
{
    char blanks[INDENT_LEVELS * INDENT_WIDTH];
    size_t n = depth < INDENT_LEVELS ? depth : INDENT_LEVELS;

    memset(blanks, ' ', n * INDENT_WIDTH);
    write_bytes(w, blanks, n * INDENT_WIDTH);
}

/* A message, each line after the first indented as the entry's first
 * line is; an empty line stays empty, with no trailing blanks. */
static void
write_message(struct writer *w, const char *message, size_t depth)
{
    const char *line = message;
    const char *end;

    while (!w->overflowed && (end = strchr(line, '\n')) != NULL) {
        write_bytes(w, line, (size_t)(end - line) + 1);
        line = end + 1;
        if (*line != '\n' && *line != '\0')
            write_indent(w, depth);
    }
    write_string(w, line);
}

/* One entry of the tree, at `depth`: its position in its aggregate (none
 * for the root), then its code and message. */
static void
write_entry(struct writer *w, const crew_error *error, size_t depth,
            const size_t *input)
{
    write_indent(w, depth);
    if (input != NULL)
        write_text(w, "[%zu] ", *input);
    if (error->code != CREW_EAGGREGATE) {
        write_text(w, "error %d (", error->code);
        write_string(w, crew_strerror(error->code));
        write_string(w, ")");
        if (has_default_message(error)) { /* said already */
            write_bytes(w, "\n", 1);
            return;
        }
        write_string(w, ": ");
    }
    write_message(w, error->message, depth);
    write_bytes(w, "\n", 1);
}

/* Write the whole tree, depth first; 0, or ENOMEM if the walk's stack
 * could not grow. */
static int
write_tree(struct writer *w, const crew_error *error)
{
    const struct crew__entry *entry;
    struct stack s;
    int err;

    write_entry(w, error, 0, NULL);
    stack_init(&s);
    err = stack_push(&s, error);
    while (err == 0 && !w->overflowed && (entry = stack_next(&s)) != NULL) {
        write_entry(w, entry->inner, s.depth, &entry->input);
        if (count_of(entry->inner) > 0)
            err = stack_push(&s, entry->inner);
    }
    stack_free(&s);
    return err;
}

int
crew_error_print(const crew_error *error, FILE *stream)
{
    struct writer w = {.stream = stream};
    int err;

    if (error == NULL || stream == NULL)
        return EINVAL;
    err = write_tree(&w, error);
    return w.err != 0 ? w.err : err;
}

int
crew_error_format(const crew_error *error, char *buf, size_t size)
{
    struct writer w = {buf, buf != NULL ? size : 0, 0, false, NULL, 0};
    int err;

    if (error == NULL)
        return -1;
    err = write_tree(&w, error);
    if (err != 0 || w.overflowed) {
        if (w.size > 0)
            buf[0] = '\0';
        return -1;
    }
    if (w.size > 0)
        buf[w.length < w.size ? w.length : w.size - 1] = '\0';
    return (int)w.length;
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
    return text != NULL ? text : UNKNOWN_TEXT;
#else
    /* Elsewhere strerror() returns static text for the codes it knows. */
    return strerror(code);
#endif
}
