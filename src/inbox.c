/*
 * The inbox: resolved futures handed to an event loop's own thread
 * through a descriptor it can poll.
 *
 * Theory of operation. A watch is one node: a completion node hung on the
 * watched future, which, once the future resolves, becomes a delivery in
 * the inbox's list, oldest first. The node holds a reference to its
 * future from crew_inbox_watch() until crew_inbox_take() hands it to the
 * caller, or the inbox drops it. The descriptor (platform.h's signal)
 * follows the delivery list: raised when the list becomes non-empty,
 * cleared when a take empties it, both under the inbox's lock, so it
 * polls readable exactly while a delivery waits.
 *
 * Destroying while futures are still watched: a watch still on its
 * future's completion list is taken off it and dropped; one whose future
 * is resolving at that moment (its node detached, about to fire) cannot
 * be, so the inbox's memory outlives crew_inbox_destroy() until every
 * such node has fired: `nodes` counts the watches not yet freed, and the
 * last one out frees the inbox once it is `destroyed`. A node firing
 * into a destroyed inbox drops its future and frees itself.
 *
 * Lock order: the inbox's lock before a future's (destroy takes nodes off
 * completion lists under it); a node fires outside its future's lock. No
 * user code runs under either: releasing a future can run value_free, so
 * references are dropped after the inbox's lock is released.
 */
#include "crew.h"

#include "base/alloc.h"
#include "base/list.h"
#include "core/future.h"
#include "base/park.h"
#include "base/platform.h"

#include <errno.h>

struct watch {
    struct crew__completion node; /* on the future's list until it fires */
    crew_inbox *inbox;
    crew_future *future; /* a reference, until taken or dropped */
    void *user;
    /* Guarded by the inbox's lock: on `watching` until the node fires,
     * then on the delivery queue (or a list of watches to drop). */
    struct crew__node link;
    struct watch *next;
};

struct crew_inbox {
    struct crew__lock lock;     /* guards every field below but the signal */
    struct crew__signal signal; /* raised while `first` is not NULL */
    struct crew__list watching; /* watches not yet fired */
    struct watch *first;        /* deliveries, oldest first */
    struct watch *last;
    size_t nodes;   /* watches not yet freed */
    bool destroyed; /* by crew_inbox_destroy(); `nodes` then frees it */
};

int
crew_inbox_create(crew_inbox **inbox)
{
    crew_inbox *box;
    int err;

    if (inbox == NULL)
        return EINVAL;
    *inbox = NULL;
    box = crew__calloc(1, sizeof(*box));
    if (box == NULL)
        return ENOMEM;
    err = crew__signal_open(&box->signal);
    if (err != 0) {
        crew__free(box);
        return err;
    }
    atomic_init(&box->lock.word, 0);
    *inbox = box;
    return 0;
}

int
crew_inbox_fd(const crew_inbox *inbox)
{
    return inbox != NULL ? inbox->signal.read_end : -1;
}

/* A watch is gone: true if the inbox, destroyed, goes with it. Called
 * under the inbox's lock. */
static bool
forget(crew_inbox *box)
{
    return --box->nodes == 0 && box->destroyed;
}

static void
deliver(struct crew__completion *node, crew_future *future)
{
    struct watch *w = crew__container_of(node, struct watch, node);
    crew_inbox *box = w->inbox;
    bool free_box = false;

    (void)future;
    crew__lock_acquire(&box->lock);
    crew__list_remove(&box->watching, &w->link);
    if (!box->destroyed) {
        w->next = NULL;
        if (box->last != NULL)
            box->last->next = w;
        else
            box->first = w;
        box->last = w;
        if (box->first == w)
            crew__signal_raise(&box->signal);
        crew__lock_release(&box->lock);
        return;
    }
    free_box = forget(box);
    crew__lock_release(&box->lock);
    crew_future_release(w->future);
    crew__free(w);
    if (free_box)
        crew__free(box);
}

int
crew_inbox_watch(crew_inbox *inbox, crew_future *future, void *user)
{
    struct watch *w;

    if (inbox == NULL || future == NULL)
        return EINVAL;
    w = crew__malloc(sizeof(*w));
    if (w == NULL)
        return ENOMEM;
    w->node.fire = deliver;
    w->inbox = inbox;
    w->future = crew_future_retain(future);
    crew__future_observe(future); /* delivered to whoever takes it */
    w->user = user;
    crew__lock_acquire(&inbox->lock);
    crew__list_push(&inbox->watching, &w->link);
    inbox->nodes++;
    crew__lock_release(&inbox->lock);
    /* Last: an already resolved future delivers at once, here. */
    crew__future_subscribe(future, &w->node);
    return 0;
}

size_t
crew_inbox_take(crew_inbox *inbox, crew_future **futures, void **users,
                size_t max)
{
    struct watch *taken = NULL;
    size_t n = 0;

    if (inbox == NULL || futures == NULL)
        return 0;
    crew__lock_acquire(&inbox->lock);
    while (n < max && inbox->first != NULL) {
        struct watch *w = inbox->first;
        inbox->first = w->next;
        futures[n] = w->future;
        if (users != NULL)
            users[n] = w->user;
        n++;
        w->next = taken;
        taken = w;
        inbox->nodes--;
    }
    if (inbox->first == NULL) {
        inbox->last = NULL;
        if (n > 0)
            crew__signal_clear(&inbox->signal);
    }
    crew__lock_release(&inbox->lock);
    while (taken != NULL) {
        struct watch *w = taken;
        taken = w->next;
        crew__free(w);
    }
    return n;
}

void
crew_inbox_destroy(crew_inbox *inbox)
{
    struct watch *drop = NULL;
    bool free_box;

    if (inbox == NULL)
        return;
    crew__lock_acquire(&inbox->lock);
    inbox->destroyed = true;
    /* Deliveries not taken. */
    while (inbox->first != NULL) {
        struct watch *w = inbox->first;
        inbox->first = w->next;
        w->next = drop;
        drop = w;
        inbox->nodes--;
    }
    inbox->last = NULL;
    /* Watches still on their futures' lists; a node already detached by
     * its future's resolver stays, and frees itself when it fires. */
    for (struct crew__node *n = inbox->watching.first, *next; n != NULL;
         n = next) {
        struct watch *w = crew__container_of(n, struct watch, link);
        next = n->next;
        if (crew__future_unsubscribe(w->future, &w->node)) {
            crew__list_remove(&inbox->watching, &w->link);
            w->next = drop;
            drop = w;
            inbox->nodes--;
        }
    }
    crew__signal_close(&inbox->signal);
    free_box = inbox->nodes == 0;
    crew__lock_release(&inbox->lock);
    while (drop != NULL) {
        struct watch *w = drop;
        drop = w->next;
        crew_future_release(w->future);
        crew__free(w);
    }
    if (free_box)
        crew__free(inbox);
}
