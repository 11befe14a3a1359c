/*
 * Intrusive lists: the node lives inside the element, so linking never
 * allocates, and crew__container_of() gets the element back.
 *
 * One shape serves every list of the library that must unlink from the
 * middle (threads waiting on a future, sleeping workers, an inbox's
 * watches): a doubly linked list from a head pointer, newest first, with
 * no sentinel, so an empty head is one NULL and needs no setup. None of
 * these functions locks: each list is guarded by its owner's lock.
 */
#ifndef CREW_BASE_LIST_H
#define CREW_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The element of type `type` whose member `member` is at `ptr`. */
#define crew__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct crew__node {
    struct crew__node *next;
    struct crew__node *prev;
};

struct crew__list {
    struct crew__node *first;
};

static inline bool
crew__list_is_empty(const struct crew__list *list)
{
    return list->first == NULL;
}

/* Link `node` at the front. */
static inline void
crew__list_push(struct crew__list *list, struct crew__node *node)
{
    node->prev = NULL;
    node->next = list->first;
    if (list->first != NULL)
        list->first->prev = node;
    list->first = node;
}

/* Unlink `node`, which is on `list`. */
static inline void
crew__list_remove(struct crew__list *list, struct crew__node *node)
{
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        list->first = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
}

/* Unlink every node at once: the caller walks them through `next`. */
static inline struct crew__node *
crew__list_take_all(struct crew__list *list)
{
    struct crew__node *first = list->first;

    list->first = NULL;
    return first;
}

#endif
