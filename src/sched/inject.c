/*
 * The injection queue: an intrusive multi-producer queue (Vyukov's, with
 * a stub node), and the slot count that enforces `max_queued`.
 *
 * Theory of operation. A push links its item at the tail with one
 * exchange and then points the previous tail at it: submitters never wait
 * for each other or for the workers. Between those two steps the item is
 * in the queue but not yet reachable; a taker that meets such a gap
 * reports nothing for now, and crew__inject_is_empty() still says the
 * queue is not empty, so a worker looks again rather than sleeping. The
 * stub stands in the list whenever it would otherwise be empty, so the
 * queue is empty exactly when the stub is both its head and its tail.
 *
 * Taking is for one thread at a time: the holder of `taking`, a
 * try-lock. A worker that finds it held moves on to stealing, as it
 * would from an empty queue; it takes a batch when it holds it, so
 * workers rarely meet.
 *
 * Closing is a push: the closer links the queue's `end` marker at the
 * tail, and a push that finds the marker there refuses (pushes install
 * their item with a CAS on the tail for that reason, not an exchange).
 * So every accepted item lies before the marker, and whoever takes items
 * until the marker has seen every one of them: a submission that races
 * the close is either refused, with nothing queued, or queued before the
 * marker, where the shutdown finds it. Nothing is ever taken back.
 *
 * Under a limit, a push takes its slots and links its items in one hold
 * of the mutex (one slot a task; a batch takes all of its own at once). Submitters that find no
 * room, or others already waiting, take a ticket and sleep on `room`
 * with the mutex released, and are served in ticket order; a freed slot
 * or a served ticket wakes them all, closing too, and each rechecks in
 * a loop. No user code runs under the mutex.
 */
#include "sched/inject.h"

#include "base/fault.h"
#include "base/platform.h"

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
    atomic_init(&queue->stub.next, NULL);
    atomic_init(&queue->tail, &queue->stub);
    atomic_init(&queue->head, &queue->stub);
    atomic_init(&queue->taking, false);
    atomic_init(&queue->end.next, NULL);
    queue->closed = false;
    atomic_init(&queue->pushed, 0);
    atomic_init(&queue->popped, 0);
    queue->max_queued = max_queued;
    queue->slots = 0;
    queue->room_waiters = 0;
    queue->next_ticket = 0;
    queue->serving = 0;
    return 0;
}

void
crew__inject_destroy(struct crew__inject *queue)
{
    pthread_cond_destroy(&queue->room);
    pthread_mutex_destroy(&queue->lock);
}

/* Whether k more slots fit under the limit. */
static bool
fits(const struct crew__inject *queue, size_t k)
{
    return queue->max_queued == 0 || (queue->slots <= queue->max_queued &&
                                      k <= queue->max_queued - queue->slots);
}

/*
 * Take k slots for a push. From a worker, never waits: takes them even
 * past the limit, unless nonblocking. From outside, waits its turn: a
 * submitter that finds others waiting takes a ticket behind them, and
 * only the ticket being served takes slots, once all k fit; and it links
 * its chain first..last in the same hold of the mutex, so the queue's
 * order is the order of service. So nobody overtakes a waiting batch,
 * however few slots the newcomer needs. The queue is open there (a close
 * links its marker under the mutex too), so the link does not fail.
 */
static bool link_at_tail(struct crew__inject *queue, struct crew__link *first,
                         struct crew__link *last);

static int
take_slots(struct crew__inject *queue, size_t k, bool nonblocking,
           bool from_worker, struct crew__link *first, struct crew__link *last)
{
    int state = crew__nocancel_begin(); /* see platform.h */
    int err = 0;

    pthread_mutex_lock(&queue->lock);
    if (from_worker) {
        if (nonblocking && !fits(queue, k))
            err = EAGAIN;
    } else if (queue->closed) {
        err = ESHUTDOWN;
    } else if (k > queue->max_queued) {
        err = EINVAL;
    } else if (queue->room_waiters == 0 && fits(queue, k)) {
        /* Nobody ahead, and room. */
    } else if (nonblocking) {
        err = EAGAIN;
    } else {
        uint64_t ticket = queue->next_ticket++;

        queue->room_waiters++;
        crew__fault_room_wait();
        while (!queue->closed &&
               !(queue->serving == ticket && fits(queue, k)))
            pthread_cond_wait(&queue->room, &queue->lock);
        queue->room_waiters--;
        if (queue->closed) {
            /* Everyone waiting leaves, and nobody waits from now on:
             * the tickets are not looked at again. */
            err = ESHUTDOWN;
        } else {
            queue->serving++;
            if (queue->room_waiters > 0) /* the next may fit too */
                pthread_cond_broadcast(&queue->room);
        }
    }
    if (err == 0)
        queue->slots += k;
    if (err == 0 && first != NULL && !link_at_tail(queue, first, last)) {
        queue->slots -= k; /* never: the queue is open here */
        err = ESHUTDOWN;
    }
    pthread_mutex_unlock(&queue->lock);
    crew__nocancel_end(state);
    return err;
}

/*
 * The tail this thread last installed, in any queue: the first guess of
 * its next CAS. A thread pushing a burst finds its own last item at the
 * tail, so the CAS succeeds at once, without a load before it (which,
 * with workers reading the tail's line, cost the fan-out some 5 % over
 * the exchange a push once was). A wrong guess only costs a failed CAS,
 * which returns the tail to try next. The guess is only ever compared,
 * never followed: a pointer equal to the tail is the tail.
 */
static _Thread_local struct crew__link *last_tail;

/* Link the chain first..last (its inner links set) at the tail, unless
 * the queue is closed (then false). */
static bool
link_at_tail(struct crew__inject *queue, struct crew__link *first,
             struct crew__link *last)
{
    /* Never the marker: a CAS expecting it could succeed, behind it. */
    struct crew__link *prev = last_tail != &queue->end ? last_tail : NULL;

    /* Relaxed: published by the CAS and the store below. */
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    /* seq_cst: the items are queued from here on. The store half of the
     * submitter's StoreLoad against a worker about to sleep (idle.c). A
     * failed CAS reads the tail into `prev`; the marker, once the tail,
     * stays it, so no CAS succeeds after the close. */
    while (!atomic_compare_exchange_weak_explicit(&queue->tail, &prev, last,
                                                  memory_order_seq_cst,
                                                  memory_order_relaxed)) {
        if (prev == &queue->end)
            return false;
    }
    last_tail = last;
    /* Release: the taker that follows this pointer sees the items, their
     * inner links, and what their submitter wrote into them. */
    atomic_store_explicit(&prev->next, first, memory_order_release);
    return true;
}

int
crew__inject_push_chain(struct crew__inject *queue, struct crew__link *first,
                        struct crew__link *last, size_t n,
                        enum crew__room room)
{
    if (queue->max_queued != 0 && room != CREW__ROOM_UNCOUNTED) {
        int err = take_slots(queue, n, room == CREW__ROOM_FAIL, false, first,
                             last);
        if (err != 0)
            return err;
    } else if (!link_at_tail(queue, first, last)) {
        return ESHUTDOWN;
    }
    /* Relaxed: a statistic; see the field. */
    atomic_fetch_add_explicit(&queue->pushed, n, memory_order_relaxed);
    return 0;
}

int
crew__inject_take_slots(struct crew__inject *queue, size_t n, bool nonblocking)
{
    if (queue->max_queued == 0)
        return 0;
    return take_slots(queue, n, nonblocking, true, NULL, NULL);
}

void
crew__inject_release_slots(struct crew__inject *queue, size_t n)
{
    if (queue->max_queued == 0)
        return;
    pthread_mutex_lock(&queue->lock);
    queue->slots -= n;
    /* Broadcast: only the ticket being served may take the room, and a
     * signal could wake another. */
    if (queue->room_waiters > 0)
        pthread_cond_broadcast(&queue->room);
    pthread_mutex_unlock(&queue->lock);
}

static void
set_head(struct crew__inject *queue, struct crew__link *head)
{
    /* Relaxed: the next taker acquires `taking` after this one released
     * it; crew__inject_is_empty() reads it after an acquire of `tail`,
     * which orders every head the taker set before re-linking the stub. */
    atomic_store_explicit(&queue->head, head, memory_order_relaxed);
}

/* The taker's step: the oldest item, or NULL if there is none yet. */
static struct crew__link *
pop_one(struct crew__inject *queue)
{
    /* Relaxed: the taker's own field; see set_head(). */
    struct crew__link *head =
        atomic_load_explicit(&queue->head, memory_order_relaxed);
    /* Acquire: pairs with the release in link_at_tail(). */
    struct crew__link *next =
        atomic_load_explicit(&head->next, memory_order_acquire);

    if (head == &queue->stub) {
        if (next == NULL)
            return NULL;
        set_head(queue, next);
        head = next;
        next = atomic_load_explicit(&head->next, memory_order_acquire);
    }
    if (head == &queue->end) /* closed, and every item taken */
        return NULL;
    if (next != NULL) {
        set_head(queue, next);
        return head;
    }
    /* head is the last item reachable. Unless a push is halfway (the tail
     * moved on but head->next is not set yet), it is the last item: put
     * the stub behind it, so that taking it leaves the stub in the list.
     * A push may still slip in between (head -> item -> stub); see
     * crew__inject_is_empty(). If the queue has closed meanwhile, the
     * marker follows head instead, or is about to. */
    if (atomic_load_explicit(&queue->tail, memory_order_acquire) != head)
        return NULL;
    link_at_tail(queue, &queue->stub, &queue->stub);
    next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (next == NULL)
        return NULL;
    set_head(queue, next);
    return head;
}

size_t
crew__inject_pop_batch(struct crew__inject *queue, struct crew__link **out,
                       size_t max)
{
    size_t n = 0;

    if (crew__inject_is_empty(queue))
        return 0;
    /* Acquire: pairs with the release below, so this taker sees `head`
     * and the stub as the last one left them. */
    if (atomic_exchange_explicit(&queue->taking, true, memory_order_acquire))
        return 0;
    while (n < max && (out[n] = pop_one(queue)) != NULL)
        n++;
    /* Relaxed: only the holder of `taking` writes it; readers want a
     * snapshot. */
    atomic_store_explicit(
        &queue->popped,
        atomic_load_explicit(&queue->popped, memory_order_relaxed) + n,
        memory_order_relaxed);
    atomic_store_explicit(&queue->taking, false, memory_order_release);
    return n;
}

uint64_t
crew__inject_length(const struct crew__inject *queue)
{
    /* Relaxed: a snapshot. A push counts itself after linking its item,
     * which a taker may pop (and count) first: hence the floor at 0. */
    uint64_t popped =
        atomic_load_explicit(&queue->popped, memory_order_relaxed);
    uint64_t pushed =
        atomic_load_explicit(&queue->pushed, memory_order_relaxed);

    return pushed >= popped ? pushed - popped : 0;
}

uint64_t
crew__inject_pushed(const struct crew__inject *queue)
{
    return atomic_load_explicit(&queue->pushed, memory_order_relaxed);
}

/*
 * Open, empty when the stub is both the newest and the oldest node. The
 * tail alone is not enough: a push can slip in between the taker's look
 * at the tail and its re-linking of the stub, which then ends the list
 * behind items the taker has not reached. Closed, empty when the next
 * node to take is the marker. A stale head only ever says "not empty".
 */
bool
crew__inject_is_empty(struct crew__inject *queue)
{
    /* seq_cst: the load half of a sleeping worker's StoreLoad; see
     * link_at_tail(). */
    struct crew__link *tail =
        atomic_load_explicit(&queue->tail, memory_order_seq_cst);
    /* Relaxed: ordered after the load above; see set_head(). */
    struct crew__link *head =
        atomic_load_explicit(&queue->head, memory_order_relaxed);

    if (tail == &queue->stub)
        return head == &queue->stub;
    if (tail != &queue->end)
        return false;
    return head == &queue->end ||
           (head == &queue->stub &&
            atomic_load_explicit(&queue->stub.next, memory_order_acquire) ==
                &queue->end);
}

void
crew__inject_close(struct crew__inject *queue)
{
    pthread_mutex_lock(&queue->lock);
    /* Under the mutex: a submitter waiting for room rechecks it before
     * sleeping. Only the mutex's holders read it. */
    if (!queue->closed) {
        queue->closed = true;
        link_at_tail(queue, &queue->end, &queue->end);
    }
    pthread_cond_broadcast(&queue->room);
    pthread_mutex_unlock(&queue->lock);
}
