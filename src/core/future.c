/*
 * The future: states, references, resolution, callbacks, cancel.
 * Waiting for one is wait.c's.
 *
 * Theory of operation. A future is one block, reference counted, whose
 * kind is known only through its ops (future.h). Its state word moves
 * PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, or PENDING ->
 * CLAIMED -> CANCELLED for a queued task cancelled in its queue. Every
 * change happens under the future's own four-byte lock but one: a task
 * without a max_queued slot leaves PENDING by a CAS (task.c), and whoever
 * takes the lock next reads the state afresh. The final change is a
 * release store made after the outcome (value, error) is written, so
 * lock-free readers acquire the state and then read the outcome.
 *
 * The lock also guards two lists. The completion list holds callbacks and
 * the internal nodes of joins, newest first (a push is two stores, and
 * the block keeps no tail pointer); the resolver detaches it under the
 * lock, reverses it, and runs it outside in registration order, while a
 * reference holds the future: its own, or one the caller holds for the
 * whole call (so a callback may release the last one of the caller's). A
 * registration that finds the future resolved runs at once, on the
 * registering thread. The waiter list holds threads blocked on the
 * future (wait.c); the resolver notifies and unlinks them under the lock.
 *
 * Lock order: a future's lock may be held while taking a pool's injection
 * queue lock (a claimed task gives its slot back), never the reverse. No
 * user code runs under any library lock.
 */
#include "core/future.h"

#include "base/alloc.h"
#include "base/fork.h"

#include <errno.h>
#include <string.h>

void
crew__future_init(crew_future *future, const struct crew__future_ops *ops,
                  uint32_t refs)
{
    atomic_init(&future->lock.word, 0);
    atomic_init(&future->state, CREW_PENDING);
    atomic_init(&future->refs, refs);
    future->job.class = &ops->job;
    future->slotted = false;
    future->internal = false;
    future->generation = (uint8_t)crew__fork_generation();
    atomic_init(&future->cancel_requested, false);
    atomic_init(&future->observed, false);
    atomic_init(&future->job.link.next, NULL);
    future->completions = NULL;
    future->waiters.first = NULL;
    future->error = NULL;
}

int
crew__result_copy(struct crew__result *result, const void *value, size_t size)
{
    struct crew__result copy = {.size = size, .kind = CREW__RESULT_INLINE};

    if (size > CREW__INLINE_MAX) {
        copy.kind = CREW__RESULT_HEAP;
        copy.as.heap = crew__malloc(size);
        if (copy.as.heap == NULL)
            return ENOMEM;
        memcpy(copy.as.heap, value, size);
    } else if (size > 0) {
        memcpy(copy.as.bytes, value, size);
    }
    /* Last: `value` may lie in what is dropped. */
    crew__result_drop(result);
    *result = copy;
    return 0;
}

void
crew__result_drop(struct crew__result *result)
{
    if (result->kind == CREW__RESULT_HEAP)
        crew__free(result->as.heap);
    else if (result->kind == CREW__RESULT_POINTER &&
             result->as.ptr.value_free != NULL)
        result->as.ptr.value_free(result->as.ptr.value);
    *result = (struct crew__result){0};
}

/* The completion list in registration order. */
static struct crew__completion *
reversed(struct crew__completion *node)
{
    struct crew__completion *list = NULL;

    while (node != NULL) {
        struct crew__completion *next = node->next;
        node->next = list;
        list = node;
        node = next;
    }
    return list;
}

/*
 * Resolution nests: a completion may resolve another future (a join's
 * node resolves the join), whose completions may resolve another, as deep
 * as the graph. Past NEST_MAX nested resolutions on one thread, a
 * resolver runs no completions itself: it keeps them on the future
 * (`completions`, unused once resolved), holds a reference for them, and
 * queues the future on this thread's list of deferred ones, which the
 * outermost resolution runs, in order, before it returns. Every
 * completion still runs on the resolving thread, within the call that
 * started it all, and a million-deep graph takes bounded stack.
 */
#define NEST_MAX 16

_Thread_local unsigned crew__put_off;
static _Thread_local unsigned nest_depth;
static _Thread_local crew_future *deferred_first;
static _Thread_local crew_future *deferred_last;

static void
run_completions(crew_future *future, struct crew__completion *node)
{
    nest_depth++;
    while (node != NULL) {
        struct crew__completion *next = node->next;
        node->fire(node, future);
        node = next;
    }
    nest_depth--;
}

static void
defer_completions(crew_future *future, struct crew__completion *node)
{
    future->completions = node;
    future->deferred_next = NULL;
    crew_future_retain(future); /* dropped once they have run */
    crew__put_off++;
    if (deferred_last != NULL)
        deferred_last->deferred_next = future;
    else
        deferred_first = future;
    deferred_last = future;
}

/* Run the completions deferred on this thread, those they defer too. */
static void
run_deferred(void)
{
    crew_future *future;

    while ((future = deferred_first) != NULL) {
        struct crew__completion *node = future->completions;

        deferred_first = future->deferred_next;
        if (deferred_first == NULL)
            deferred_last = NULL;
        future->completions = NULL;
        crew__put_off--;
        run_completions(future, node);
        crew_future_release(future);
    }
}

static _Thread_local struct crew__deferred *work_first;
static _Thread_local struct crew__deferred *work_last;
static _Thread_local bool working; /* in run_work(), lower on the stack */

static void
run_work(void)
{
    struct crew__deferred *work;

    while ((work = work_first) != NULL) {
        work_first = work->next;
        if (work_first == NULL)
            work_last = NULL;
        crew__put_off--;
        work->run(work);
    }
}

void
crew__defer(struct crew__deferred *work)
{
    work->next = NULL;
    if (work_last != NULL)
        work_last->next = work;
    else
        work_first = work;
    work_last = work;
    crew__put_off++;
    if (working)
        return;
    working = true;
    run_work();
    working = false;
}

void
crew__future_flush_slow(void)
{
    /* Inside run_work() already, perhaps, lower on this stack: take its
     * work on from here, as its loop would. */
    run_work();
    run_deferred();
}

/* The fallback error embedded in a future shares its references. */
static void
host_retain(void *owner)
{
    crew_future_retain(owner);
}

static void
host_release(void *owner)
{
    crew_future_release(owner);
}

static const struct crew__error_host lost_host = {host_retain, host_release};

/* Resolve, the caller holding a reference that outlives the call. */
int
crew__future_settle(crew_future *future, const struct crew__outcome *outcome)
{
    struct crew__completion *node;

    crew__lock_acquire(&future->lock);
    if (crew__state_is_final(
            atomic_load_explicit(&future->state, memory_order_relaxed))) {
        crew__lock_release(&future->lock);
        return EALREADY;
    }
    /* Over the closure, read by whoever claimed the task, and dead. */
    if (outcome->state == CREW_SUCCEEDED)
        future->u.result = outcome->result;
    future->error = outcome->error;
    if (outcome->state == CREW_FAILED && outcome->error == NULL) {
        crew__error_embed_lost(&future->u.lost, &lost_host, future,
                               outcome->code);
        future->error = &future->u.lost;
    }
    /* Release: pairs with the acquire in crew__future_is_resolved(); the
     * outcome above is visible to whoever sees the final state. From
     * here the lists are this resolver's: registrations see the final
     * state and run at once, and crew__future_unsubscribe() finds
     * nothing. */
    atomic_store_explicit(&future->state, (uint32_t)outcome->state,
                          memory_order_release);
    node = future->completions;
    future->completions = NULL;
    for (struct crew__node *n = crew__list_take_all(&future->waiters);
         n != NULL; n = n->next) {
        struct crew__waiter *w =
            crew__container_of(n, struct crew__waiter, link);
        w->linked = false;
        crew__event_notify_all(w->event);
    }
    crew__lock_release(&future->lock);

    node = reversed(node);
    if (node == NULL)
        return 0;
    if (nest_depth >= NEST_MAX) {
        defer_completions(future, node);
        return 0;
    }
    run_completions(future, node);
    if (nest_depth == 0)
        run_deferred();
    return 0;
}

int
crew__future_complete(crew_future *future, const struct crew__outcome *outcome)
{
    int err;

    /* The resolver's own reference: a callback may drop the caller's. */
    crew_future_retain(future);
    err = crew__future_settle(future, outcome);
    crew_future_release(future);
    return err;
}

void
crew__future_subscribe(crew_future *future, struct crew__completion *node)
{
    bool resolved;

    node->next = NULL;
    /* Resolution is final: a node on a resolved future fires at once,
     * with no need for the lock. */
    if (crew__future_is_resolved(future)) {
        node->fire(node, future);
        return;
    }
    crew__lock_acquire(&future->lock);
    resolved = crew__state_is_final(
        atomic_load_explicit(&future->state, memory_order_relaxed));
    if (!resolved) {
        node->next = future->completions;
        future->completions = node;
    }
    crew__lock_release(&future->lock);
    if (resolved)
        node->fire(node, future);
}

bool
crew__future_unsubscribe(crew_future *future, struct crew__completion *node)
{
    struct crew__completion **link;
    bool found = false;

    crew__lock_acquire(&future->lock);
    /* Once resolved, `completions` is the resolver's: see
     * crew__future_settle(). */
    if (crew__state_is_final(
            atomic_load_explicit(&future->state, memory_order_relaxed))) {
        crew__lock_release(&future->lock);
        return false;
    }
    for (link = &future->completions; *link != NULL; link = &(*link)->next) {
        if (*link == node) {
            *link = node->next;
            found = true;
            break;
        }
    }
    crew__lock_release(&future->lock);
    return found;
}

crew_state
crew_future_state(const crew_future *future)
{
    uint32_t state;

    if (future == NULL)
        return CREW_PENDING;
    /* Acquire: pairs with the release store of a final state, so a caller
     * that sees one reads the outcome, and what the task wrote, after. */
    state = atomic_load_explicit(&future->state, memory_order_acquire);
    return crew__state_is_final(state) || state == CREW_RUNNING
               ? (crew_state)state
               : CREW_PENDING;
}

void *
crew_future_result(const crew_future *future)
{
    if (future == NULL ||
        atomic_load_explicit(&future->state, memory_order_acquire) !=
            CREW_SUCCEEDED)
        return NULL;
    return crew__result_data(&future->u.result);
}

size_t
crew_future_result_size(const crew_future *future)
{
    if (future == NULL ||
        atomic_load_explicit(&future->state, memory_order_acquire) !=
            CREW_SUCCEEDED ||
        future->u.result.kind == CREW__RESULT_POINTER)
        return 0;
    return future->u.result.size;
}

void
crew_future_release_all(crew_future **futures, size_t n)
{
    if (futures == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        crew_future_release(futures[i]);
        futures[i] = NULL;
    }
}

const crew_error *
crew_future_error(const crew_future *future)
{
    uint32_t state;

    if (future == NULL)
        return NULL;
    state = atomic_load_explicit(&future->state, memory_order_acquire);
    if (state != CREW_FAILED && state != CREW_CANCELLED)
        return NULL;
    crew__future_observe(future);
    return future->error;
}

int
crew_future_cancel(crew_future *future)
{
    if (future == NULL)
        return EINVAL;
    return crew__future_ops(future)->cancel(future);
}

/* A user's callback on the completion list. */
struct callback {
    struct crew__completion node;
    crew_callback cb;
    void *user;
};

static void
fire_callback(struct crew__completion *node, crew_future *future)
{
    struct callback *c = (struct callback *)node;
    crew_callback cb = c->cb;
    void *user = c->user;

    crew__free(c);
    cb(future, user);
}

int
crew_future_on_complete(crew_future *future, crew_callback cb, void *user)
{
    struct callback *c;

    if (future == NULL || cb == NULL)
        return EINVAL;
    c = crew__malloc(sizeof(*c));
    if (c == NULL)
        return ENOMEM;
    c->node.fire = fire_callback;
    c->cb = cb;
    c->user = user;
    crew__future_observe(future);
    crew__future_subscribe(future, &c->node);
    return 0;
}

crew_future *
crew_future_retain(const crew_future *future)
{
    /* A reference is no part of the value a const pointer guards. */
    crew_future *f = (crew_future *)future;

    if (f != NULL) {
        /* Relaxed: the caller already holds a reference. */
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    }
    return f;
}

/*
 * Freeing, without recursion: a future freed while this thread frees
 * another (a join freeing its inputs, a continuation its input, a
 * value_free releasing a future) joins this thread's list, linked through
 * `deferred_next` (see crew__future_destroy()), and the outermost call
 * frees them one after the other.
 */
static _Thread_local bool destroying;
static _Thread_local crew_future *doomed;

static void
destroy_now(crew_future *future)
{
    uint32_t state = atomic_load_explicit(&future->state, memory_order_relaxed);

    if (state == CREW_SUCCEEDED)
        crew__result_drop(&future->u.result);
    else if (state == CREW_FAILED && !future->internal &&
             !atomic_load_explicit(&future->observed, memory_order_relaxed))
        crew__unobserved_report(future->error);
    /* The embedded fallback shares the future's references: nothing to
     * drop. */
    if (future->error != &future->u.lost)
        crew_error_release(future->error);
    crew__future_ops(future)->destroy(future);
}

void
crew__future_free_block(crew_future *future)
{
    crew__block_free(future, sizeof(*future));
}

void
crew__future_free(crew_future *future)
{
    crew__free(future);
}

void
crew__future_destroy(crew_future *future)
{
    if (destroying) {
        /* Linked through `deferred_next`, dead with the last reference:
         * no waiter is left, and the deferred list holds a reference.
         * Not through the job's link, which a kind may keep a word in
         * once the job is out of its queue (sched/job.h). */
        future->deferred_next = doomed;
        doomed = future;
        return;
    }
    destroying = true;
    destroy_now(future);
    while ((future = doomed) != NULL) {
        doomed = future->deferred_next;
        destroy_now(future);
    }
    destroying = false;
}

void
crew_future_release(crew_future *future)
{
    const struct crew__future_ops *ops;

    if (future == NULL)
        return;
    ops = crew__future_ops(future);
    if (ops->release != NULL) {
        ops->release(future);
        return;
    }
    /* Acquire-release: the last release sees every write made under the
     * other references before it frees. */
    if (atomic_fetch_sub_explicit(&future->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ops->abandon != NULL && !crew__future_is_resolved(future)) {
        ops->abandon(future);
        return;
    }
    crew__future_destroy(future);
}
