/*
 * The injection queue: a mutex-guarded FIFO of intrusive links, and the
 * slot count that enforces `max_queued`.
 *
 * Submitters that find every slot taken sleep on `room` with the lock
 * released; a freed slot signals one of them, closing the queue wakes
 * them all, and each rechecks in a loop. No user code runs under the lock.
 */
#include "inject.h"

#include <errno.h>

int
crew__inject_init(struct crew__inject *queue, size_t max_queued)
{
    int err = pthread_mutex_init(&queue->lock, NULL);
    if (err != 0)
        return err;
    err = pthread_cond_init(&queue->room, NULL);
    if (err != 0) {
        pthread_mutex_destroy(&queue->lock);
        return err;
    }
    queue->head = NULL;
    queue->tail = &queue->head;
    queue->length = 0;
    queue->max_queued = max_queued;
    queue->slots = 0;
    queue->room_waiters = 0;
    queue->closed = false;
    return 0;
}

void
crew__inject_destroy(struct crew__inject *queue)
{
    pthread_cond_destroy(&queue->room);
    pthread_mutex_destroy(&queue->lock);
}

static bool
is_full(const struct crew__inject *queue)
{
    return queue->max_queued != 0 && queue->slots >= queue->max_queued;
}

int
crew__inject_push(struct crew__inject *queue, struct crew__link *link,
                  bool nonblocking)
{
    int err = 0;

    pthread_mutex_lock(&queue->lock);
    while (!queue->closed && is_full(queue) && !nonblocking) {
        queue->room_waiters++;
        pthread_cond_wait(&queue->room, &queue->lock);
        queue->room_waiters--;
    }
    if (queue->closed)
        err = ESHUTDOWN;
    else if (is_full(queue))
        err = EAGAIN;
    if (err == 0) {
        if (queue->max_queued != 0)
            queue->slots++;
        link->next = NULL;
        *queue->tail = link;
        queue->tail = &link->next;
        queue->length++;
    }
    pthread_mutex_unlock(&queue->lock);
    return err;
}

int
crew__inject_take_slot(struct crew__inject *queue, bool nonblocking)
{
    int err = 0;

    if (queue->max_queued == 0)
        return 0;
    pthread_mutex_lock(&queue->lock);
    if (nonblocking && is_full(queue))
        err = EAGAIN;
    else
        queue->slots++;
    pthread_mutex_unlock(&queue->lock);
    return err;
}

void
crew__inject_release_slot(struct crew__inject *queue)
{
    if (queue->max_queued == 0)
        return;
    pthread_mutex_lock(&queue->lock);
    queue->slots--;
    if (queue->room_waiters > 0)
        pthread_cond_signal(&queue->room);
    pthread_mutex_unlock(&queue->lock);
}

struct crew__link *
crew__inject_pop(struct crew__inject *queue)
{
    struct crew__link *link;

    pthread_mutex_lock(&queue->lock);
    link = queue->head;
    if (link != NULL) {
        queue->head = link->next;
        if (queue->head == NULL)
            queue->tail = &queue->head;
        queue->length--;
    }
    pthread_mutex_unlock(&queue->lock);
    return link;
}

bool
crew__inject_is_empty(struct crew__inject *queue)
{
    bool empty;

    pthread_mutex_lock(&queue->lock);
    empty = queue->length == 0;
    pthread_mutex_unlock(&queue->lock);
    return empty;
}

struct crew__link *
crew__inject_close(struct crew__inject *queue, bool take)
{
    struct crew__link *list = NULL;

    pthread_mutex_lock(&queue->lock);
    queue->closed = true;
    if (take) {
        list = queue->head;
        queue->head = NULL;
        queue->tail = &queue->head;
        queue->length = 0;
    }
    pthread_cond_broadcast(&queue->room);
    pthread_mutex_unlock(&queue->lock);
    return list;
}
