/*
 * The work-stealing deque, guarded by one mutex.
 *
 * Indices only grow; an item's slot is its index masked by the capacity.
 * The ring doubles when full, copying the live items to their indices in
 * the new ring. No user code runs under the lock.
 */
#include "deque.h"

#include "alloc.h"

#include <errno.h>

#define INITIAL_CAPACITY 64

int
crew__deque_init(struct crew__deque *deque)
{
    int err;

    deque->slots = crew__malloc(INITIAL_CAPACITY * sizeof(*deque->slots));
    if (deque->slots == NULL)
        return ENOMEM;
    err = pthread_mutex_init(&deque->lock, NULL);
    if (err != 0) {
        crew__free(deque->slots);
        return err;
    }
    deque->mask = INITIAL_CAPACITY - 1;
    deque->top = 0;
    deque->bottom = 0;
    return 0;
}

void
crew__deque_destroy(struct crew__deque *deque)
{
    pthread_mutex_destroy(&deque->lock);
    crew__free(deque->slots);
}

void
crew__deque_abandon(struct crew__deque *deque)
{
    crew__free(deque->slots);
}

static int
grow(struct crew__deque *deque)
{
    size_t capacity = (deque->mask + 1) * 2;
    void **slots = crew__malloc(capacity * sizeof(*slots));

    if (slots == NULL)
        return ENOMEM;
    for (size_t i = deque->top; i != deque->bottom; i++)
        slots[i & (capacity - 1)] = deque->slots[i & deque->mask];
    crew__free(deque->slots);
    deque->slots = slots;
    deque->mask = capacity - 1;
    return 0;
}

int
crew__deque_push(struct crew__deque *deque, void *item)
{
    int err = 0;

    pthread_mutex_lock(&deque->lock);
    if (deque->bottom - deque->top > deque->mask)
        err = grow(deque);
    if (err == 0)
        deque->slots[deque->bottom++ & deque->mask] = item;
    pthread_mutex_unlock(&deque->lock);
    return err;
}

void *
crew__deque_pop(struct crew__deque *deque)
{
    void *item = NULL;

    pthread_mutex_lock(&deque->lock);
    if (deque->bottom != deque->top)
        item = deque->slots[--deque->bottom & deque->mask];
    pthread_mutex_unlock(&deque->lock);
    return item;
}

void *
crew__deque_steal(struct crew__deque *deque)
{
    void *item = NULL;

    pthread_mutex_lock(&deque->lock);
    if (deque->bottom != deque->top)
        item = deque->slots[deque->top++ & deque->mask];
    pthread_mutex_unlock(&deque->lock);
    return item;
}

bool
crew__deque_is_empty(struct crew__deque *deque)
{
    bool empty;

    pthread_mutex_lock(&deque->lock);
    empty = deque->bottom == deque->top;
    pthread_mutex_unlock(&deque->lock);
    return empty;
}
