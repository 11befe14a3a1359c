/*
 * The injection queue: a FIFO of intrusive links under a short lock, and
 * the slot count that enforces `max_queued` under a mutex.
 *
 * Theory of operation. The list and the slots are kept apart so the
 * common pool, without a limit, never touches the mutex: a push is the
 * four-byte list lock (park.h, which spins briefly before it sleeps) held
 * for three stores. `length` counts the items for readers that take no
 * lock: workers poll it while searching for work, and take the lock only
 * when it is not zero, then a batch at a time and for a few stores only
 * (see crew__inject_pop_batch()), so a submitter pushing from outside
 * rarely waits for the lock.
 *
 * Under a limit, a push first takes a slot under the mutex; submitters
 * that find every slot taken sleep on `room` with the mutex released; a
 * freed slot signals one of them, closing wakes them all, and each
 * rechecks in a loop. `closed` is set under both locks, so a push that
 * saw the queue open under the list lock appended before the close, and
 * a room waiter that saw it open under the mutex sleeps before the close
 * broadcasts.
 *
 * Lock order: `lock` before `list_lock`. No user code runs under either.
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
    atomic_init(&queue->list_lock.word, 0);
    queue->head = NULL;
    queue->tail = &queue->head;
    atomic_init(&queue->length, 0);
    atomic_init(&queue->closed, false);
    queue->max_queued = max_queued;
    queue->slots = 0;
    queue->room_waiters = 0;
    return 0;
}

void
crew__inject_destroy(struct crew__inject *queue)
{
    pthread_cond_destroy(&queue->room);
    pthread_mutex_destroy(&queue->lock);
}

static bool
is_closed(struct crew__inject *queue)
{
    /* Relaxed: read under one of the locks that its writer holds. */
    return atomic_load_explicit(&queue->closed, memory_order_relaxed);
}

static bool
is_full(const struct crew__inject *queue)
{
    return queue->max_queued != 0 && queue->slots >= queue->max_queued;
}

/* Take a slot for a push, waiting for room unless nonblocking. */
static int
take_slot(struct crew__inject *queue, bool nonblocking, bool may_wait)
{
    int err = 0;

    pthread_mutex_lock(&queue->lock);
    while (may_wait && !nonblocking && !is_closed(queue) && is_full(queue)) {
        queue->room_waiters++;
        pthread_cond_wait(&queue->room, &queue->lock);
        queue->room_waiters--;
    }
    if (may_wait && is_closed(queue))
        err = ESHUTDOWN;
    else if (nonblocking && is_full(queue))
        err = EAGAIN;
    else
        queue->slots++;
    pthread_mutex_unlock(&queue->lock);
    return err;
}

int
crew__inject_push(struct crew__inject *queue, struct crew__link *link,
                  bool nonblocking)
{
    int err = 0;

    if (queue->max_queued != 0) {
        err = take_slot(queue, nonblocking, true);
        if (err != 0)
            return err;
    }
    link->next = NULL;
    crew__lock_acquire(&queue->list_lock);
    if (is_closed(queue)) {
        err = ESHUTDOWN;
    } else {
        *queue->tail = link;
        queue->tail = &link->next;
        /* seq_cst: the store half of the submitter's StoreLoad against a
         * searching worker (pool.c, wake_searcher()), which reads this
         * without the lock. */
        atomic_fetch_add_explicit(&queue->length, 1, memory_order_seq_cst);
    }
    crew__lock_release(&queue->list_lock);
    if (err != 0 && queue->max_queued != 0)
        crew__inject_release_slot(queue);
    return err;
}

int
crew__inject_take_slot(struct crew__inject *queue, bool nonblocking)
{
    if (queue->max_queued == 0)
        return 0;
    return take_slot(queue, nonblocking, false);
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

/*
 * Take up to `max` of the oldest items. The lock is held only to detach
 * the whole list and, if more than `max` were there, to put the rest back
 * in front: walking the links touches a cache line per task, and a
 * submitter must not wait for that. `length` keeps counting the detached
 * items until they are either taken or back in the list, so no worker
 * takes the queue for empty meanwhile.
 */
struct crew__link *
crew__inject_pop_batch(struct crew__inject *queue, size_t max)
{
    struct crew__link *first, *last, *rest;
    struct crew__link **end;
    size_t n = 1;

    if (crew__inject_length(queue) == 0)
        return NULL;
    crew__lock_acquire(&queue->list_lock);
    first = queue->head;
    end = queue->tail;
    queue->head = NULL;
    queue->tail = &queue->head;
    crew__lock_release(&queue->list_lock);
    if (first == NULL)
        return NULL;

    for (last = first; n < max && last->next != NULL; n++)
        last = last->next;
    rest = last->next;
    last->next = NULL;
    if (rest != NULL) {
        crew__lock_acquire(&queue->list_lock);
        *end = queue->head;
        if (queue->head == NULL)
            queue->tail = end;
        queue->head = rest;
        crew__lock_release(&queue->list_lock);
    }
    /* Relaxed: a reader that still counts these items takes the lock, or
     * steals them from the deque they go to, and finds the truth. */
    atomic_fetch_sub_explicit(&queue->length, n, memory_order_relaxed);
    return first;
}

struct crew__link *
crew__inject_pop(struct crew__inject *queue)
{
    return crew__inject_pop_batch(queue, 1);
}

size_t
crew__inject_length(struct crew__inject *queue)
{
    /* seq_cst: the load half of a searching worker's StoreLoad; see
     * crew__inject_push(). */
    return atomic_load_explicit(&queue->length, memory_order_seq_cst);
}

bool
crew__inject_is_empty(struct crew__inject *queue)
{
    return crew__inject_length(queue) == 0;
}

struct crew__link *
crew__inject_close(struct crew__inject *queue, bool take)
{
    struct crew__link *list = NULL;

    pthread_mutex_lock(&queue->lock);
    crew__lock_acquire(&queue->list_lock);
    /* Relaxed: both locks are held; see is_closed(). */
    atomic_store_explicit(&queue->closed, true, memory_order_relaxed);
    if (take) {
        size_t n = 0;
        list = queue->head;
        queue->head = NULL;
        queue->tail = &queue->head;
        for (struct crew__link *link = list; link != NULL; link = link->next)
            n++;
        /* Relaxed: as in crew__inject_pop_batch(), which may have items
         * of its own still counted. */
        atomic_fetch_sub_explicit(&queue->length, n, memory_order_relaxed);
    }
    crew__lock_release(&queue->list_lock);
    pthread_cond_broadcast(&queue->room);
    pthread_mutex_unlock(&queue->lock);
    return list;
}
