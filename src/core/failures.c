/*
 * Failures kept by position: a list, newest first, sorted only when it
 * becomes an aggregate (see failures.h).
 */
#include "core/failures.h"

#include "base/alloc.h"

#include <stdlib.h>

struct crew__failure {
    struct crew__failure *next;
    size_t position;
    crew_error *error;
};

void
crew__failures_add(struct crew__failures *f, size_t position,
                   crew_error *error)
{
    struct crew__failure *node =
        error != NULL ? crew__malloc(sizeof(*node)) : NULL;

    if (node == NULL) {
        f->lost = true;
        crew_error_release(error);
        return;
    }
    *node = (struct crew__failure){f->list, position, error};
    f->list = node;
    f->count++;
}

static int
by_position(const void *a, const void *b)
{
    const struct crew__entry *x = a;
    const struct crew__entry *y = b;

    return (x->input > y->input) - (x->input < y->input);
}

crew_error *
crew__failures_take(struct crew__failures *f, size_t total, const char *what)
{
    struct crew__entry *entries;
    crew_error *all = NULL;
    size_t k = 0;

    if (!f->lost)
        all = crew__error_aggregate(f->count, total, what, &entries);
    if (all == NULL) {
        crew__failures_clear(f);
        return NULL;
    }
    for (struct crew__failure *node = f->list; node != NULL;) {
        struct crew__failure *next = node->next;

        entries[k++] = (struct crew__entry){node->error, node->position};
        crew__free(node);
        node = next;
    }
    qsort(entries, k, sizeof(entries[0]), by_position);
    *f = (struct crew__failures){0};
    return all;
}

void
crew__failures_clear(struct crew__failures *f)
{
    while (f->list != NULL) {
        struct crew__failure *node = f->list;

        f->list = node->next;
        crew_error_release(node->error);
        crew__free(node);
    }
    *f = (struct crew__failures){0};
}
