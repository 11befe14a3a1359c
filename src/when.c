/*
 * Joins: crew_when_all, crew_when_any and their blocking forms.
 *
 * Theory of operation. A join is one block: its own future, then one
 * input record per position, each embedding the completion node it hangs
 * on that input. No thread waits: each input's resolution fires its node.
 * For when_all, the node that brings `remaining` to zero reads every
 * input's outcome and resolves the join, inside that input's resolution;
 * for when_any, the first node to set `decided` resolves it.
 *
 * crew_when_all_ex's flags act at the first failure: the node of the
 * first failed input sets `decided`, cancels the other inputs
 * (CREW_CANCEL_REST), then resolves the join with that failure alone
 * (CREW_FAIL_FAST); the node that brings `remaining` to zero then finds
 * the join decided and leaves it be. Nodes are subscribed in position
 * order, so among inputs that failed before the call the lowest fires
 * first.
 *
 * Lifetime. The join holds a reference to each input, dropped when the
 * block is freed, so cancelling the join can always reach its inputs.
 * The block is freed when its last pin goes: one for the join's
 * references taken together, one for each node on an input's list or
 * firing. The nodes hold no reference to the join's future: a join that
 * nobody holds and nobody listens to (no callback, no waiter) is
 * `abandoned` when its last reference goes, and takes its nodes off the
 * inputs it still hangs on, so a when_any that lost interest, or a
 * wait_any that timed out, leaves nothing behind on inputs that may never
 * resolve. A join released while a callback still waits on it is not
 * abandoned: its nodes stay, and the one that resolves it takes a
 * reference for the callbacks (under the join's lock, where abandonment
 * is decided), whose release abandons it afterwards.
 */
#include "core/future.h"

#include "base/alloc.h"
#include "base/platform.h"
#include "sched/sched.h"

#include <errno.h>

struct join;

struct input {
    struct crew__completion node; /* on the input's completion list */
    struct join *join;
};

struct join {
    crew_future base;
    atomic_size_t pins; /* the block's holders; see the file comment */
    /* Set under base.lock by the last reference's release; read by
     * nodes under it, and without it as a hint. */
    atomic_bool abandoned;
    struct crew__deferred pass; /* passing a cancellation to the inputs */
    size_t n;
    bool any;                /* a when_any, else a when_all */
    unsigned flags;          /* when_all_ex: CREW_FAIL_FAST, CREW_CANCEL_REST */
    atomic_size_t remaining; /* when_all: inputs not yet resolved */
    /* when_any: a winner has been chosen; when_all_ex: an input failed. */
    atomic_bool decided;
    atomic_bool cancel_passed; /* a cancellation was passed to the inputs */
    size_t winner;             /* when_any: written before resolution */
    crew_future **futures; /* the inputs, a reference to each; after inputs */
    struct input inputs[];
};

static struct join *
join_of(crew_future *future)
{
    return crew__container_of(future, struct join, base);
}

static size_t
position_of(const struct input *in)
{
    return (size_t)(in - in->join->inputs);
}

static bool
inputs_are_valid(crew_future *const *futures, size_t n)
{
    if (n > 0 && futures == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (futures[i] == NULL)
            return false;
    }
    return true;
}

/* The outcome of a when_all over inputs that have all resolved. Its
 * aggregate error is NULL when memory ran out (a failure, all the same). */
static struct crew__outcome
all_outcome(crew_future *const *futures, size_t n)
{
    struct crew__outcome outcome = {.state = CREW_SUCCEEDED};
    struct crew__entry *entries;
    size_t failed = 0;
    bool cancelled = false;

    for (size_t i = 0; i < n; i++) {
        crew_state state = crew_future_state(futures[i]);
        failed += state == CREW_FAILED;
        cancelled |= state == CREW_CANCELLED;
    }
    if (failed > 0) {
        outcome.state = CREW_FAILED;
        outcome.code = CREW_EAGGREGATE;
        outcome.error =
            crew__error_aggregate(failed, n, "inputs failed", &entries);
        if (outcome.error == NULL)
            return outcome;
        for (size_t i = 0; i < n; i++) {
            if (crew_future_state(futures[i]) != CREW_FAILED)
                continue;
            entries->inner = crew_error_retain(crew_future_error(futures[i]));
            entries->input = i;
            entries++;
        }
    } else if (cancelled) {
        outcome.state = CREW_CANCELLED;
        outcome.error = &crew__error_cancelled;
    }
    return outcome;
}

/* A fail-fast join's outcome: the failure at `position` alone, which may
 * not be the only one ("1 of 4 inputs failed first"). */
static struct crew__outcome
first_failure_outcome(const struct join *j, size_t position)
{
    struct crew__outcome outcome = {.state = CREW_FAILED,
                                    .code = CREW_EAGGREGATE};
    struct crew__entry *entry;

    outcome.error =
        crew__error_aggregate(1, j->n, "inputs failed first", &entry);
    if (outcome.error != NULL) {
        entry->inner =
            crew_error_retain(crew_future_error(j->futures[position]));
        entry->input = position;
    }
    return outcome;
}

/* Drop one of the block's pins; the last frees it. */
static void
unpin(struct join *j)
{
    /* Acquire-release: the last holder sees every other's writes. */
    if (atomic_fetch_sub_explicit(&j->pins, 1, memory_order_acq_rel) == 1)
        crew__future_destroy(&j->base);
}

/*
 * Resolve the join from one of its nodes, unless it was abandoned (then
 * nobody can see the outcome, which is dropped). The join's references
 * may all be gone, its callbacks still waiting: take one for the call,
 * under the lock where abandonment is decided (join_release()).
 */
static void
join_settle(struct join *j, struct crew__outcome *outcome)
{
    bool abandoned;

    crew__lock_acquire(&j->base.lock);
    /* Relaxed: written under this lock. */
    abandoned = atomic_load_explicit(&j->abandoned, memory_order_relaxed);
    if (!abandoned)
        crew_future_retain(&j->base);
    crew__lock_release(&j->base.lock);
    /* Dropped, the outcome's error goes (the static cancelled one
     * ignores its release). */
    if (abandoned || crew__future_settle(&j->base, outcome) != 0)
        crew_error_release(outcome->error);
    if (!abandoned)
        crew_future_release(&j->base);
}

/*
 * The input at `position` failed: if it is the first, act on the flags.
 * An abandoned join acts no more: nobody is left to want it.
 */
static void
input_failed(struct join *j, size_t position)
{
    /* Relaxed: elects the first; the join's own resolution publishes the
     * outcome, and the last node reads `decided` after the decrements. */
    if (atomic_exchange_explicit(&j->decided, true, memory_order_relaxed) ||
        atomic_load_explicit(&j->abandoned, memory_order_relaxed))
        return;
    /* Cancel first: whoever the failure wakes finds the rest asked to
     * stop. */
    if ((j->flags & CREW_CANCEL_REST) != 0) {
        for (size_t i = 0; i < j->n; i++)
            crew_future_cancel(j->futures[i]);
    }
    if ((j->flags & CREW_FAIL_FAST) != 0) {
        struct crew__outcome outcome = first_failure_outcome(j, position);
        join_settle(j, &outcome);
    }
}

static void
all_input_resolved(struct crew__completion *node, crew_future *future)
{
    struct input *in = crew__container_of(node, struct input, node);
    struct join *j = in->join;

    if (j->flags != 0 && crew_future_state(future) == CREW_FAILED)
        input_failed(j, position_of(in));
    /* Acquire-release: the last input's resolver must see the outcomes of
     * the others, each published before its decrement, and a fail-fast
     * decision made before one of them. */
    if (atomic_fetch_sub_explicit(&j->remaining, 1, memory_order_acq_rel) ==
            1 &&
        !((j->flags & CREW_FAIL_FAST) != 0 &&
          atomic_load_explicit(&j->decided, memory_order_relaxed)) &&
        !atomic_load_explicit(&j->abandoned, memory_order_relaxed)) {
        struct crew__outcome outcome = all_outcome(j->futures, j->n);
        join_settle(j, &outcome);
    }
    unpin(j);
}

static void
any_input_resolved(struct crew__completion *node, crew_future *future)
{
    struct input *in = crew__container_of(node, struct input, node);
    struct join *j = in->join;

    /* Relaxed: the exchange only elects one winner; the outcome travels
     * through the join's own resolution. */
    if (!atomic_exchange_explicit(&j->decided, true, memory_order_relaxed)) {
        struct crew__outcome outcome = {.state = CREW_SUCCEEDED,
                                        .result.as.ptr.value = future};
        /* The join's outcome carries the winner, failure and all. */
        crew__future_observe(future);
        j->winner = position_of(in);
        join_settle(j, &outcome);
    }
    unpin(j);
}

/* Take the join's nodes off the inputs they still hang on. */
static void
unsubscribe_all(struct join *j)
{
    for (size_t i = 0; i < j->n; i++) {
        if (crew__future_unsubscribe(j->futures[i], &j->inputs[i].node))
            unpin(j);
    }
}

static void
join_release(crew_future *future)
{
    struct join *j = join_of(future);
    bool abandon;

    /*
     * The last reference goes under the lock, where a node may take one
     * for the callbacks (join_settle()) and abandonment is decided: a
     * thread that finds the count at zero here is the one that dropped
     * it, and the references' pin still holds the block for it.
     */
    crew__lock_acquire(&future->lock);
    /* Acquire-release: as crew_future_release(). */
    abandon = atomic_fetch_sub_explicit(&future->refs, 1,
                                        memory_order_acq_rel) == 1 &&
              (crew__state_is_final(atomic_load_explicit(
                   &future->state, memory_order_relaxed)) ||
               (future->completions == NULL &&
                crew__list_is_empty(&future->waiters)));
    if (abandon)
        atomic_store_explicit(&j->abandoned, true, memory_order_relaxed);
    crew__lock_release(&future->lock);
    if (!abandon)
        return;
    unsubscribe_all(j);
    unpin(j); /* the references' pin */
}

/* The most inputs a join can take: its block's size must not overflow. */
#define MAX_INPUTS                      \
    ((SIZE_MAX - sizeof(struct join)) / \
     (sizeof(((struct join *)0)->inputs[0]) + sizeof(crew_future *)))

static void
join_destroy(crew_future *future)
{
    struct join *j = join_of(future);

    for (size_t i = 0; i < j->n; i++)
        crew_future_release(j->futures[i]);
    crew__free(j);
}

static int join_cancel(crew_future *future);

static const struct crew__future_ops join_ops = {
    .cancel = join_cancel,
    .destroy = join_destroy,
    .release = join_release,
};

static int
join_new(crew_future *const *futures, size_t n, bool any, unsigned flags,
         crew_future **out)
{
    struct join *j;

    if (out != NULL)
        *out = NULL;
    if (out == NULL || (n > 0 && futures == NULL) ||
        (any && n == 0) ||
        (flags & ~(CREW_FAIL_FAST | CREW_CANCEL_REST)) != 0)
        return EINVAL;
    /* The block before the array: a count too large to allocate for
     * fails before a single entry is read. */
    if (n > MAX_INPUTS)
        return ENOMEM;
    j = crew__malloc(sizeof(*j) +
                     n * (sizeof(j->inputs[0]) + sizeof(j->futures[0])));
    if (j == NULL)
        return ENOMEM;
    if (!inputs_are_valid(futures, n)) {
        crew__free(j);
        return EINVAL;
    }
    crew__future_init(&j->base, &join_ops, 1);
    atomic_init(&j->pins, n + 1);
    atomic_init(&j->abandoned, false);
    j->n = n;
    j->any = any;
    j->flags = flags;
    atomic_init(&j->remaining, n);
    atomic_init(&j->decided, false);
    atomic_init(&j->cancel_passed, false);
    j->winner = 0;
    j->futures = (crew_future **)&j->inputs[n];
    for (size_t i = 0; i < n; i++) {
        j->inputs[i].node.fire = any ? any_input_resolved : all_input_resolved;
        j->inputs[i].join = j;
        j->futures[i] = crew_future_retain(futures[i]);
    }
    if (n == 0) {
        static const struct crew__outcome succeeded = {.state = CREW_SUCCEEDED};
        crew__future_complete(&j->base, &succeeded);
    }
    /* In position order, so that among inputs already resolved the lowest
     * position fires first. */
    for (size_t i = 0; i < n; i++)
        crew__future_subscribe(j->futures[i], &j->inputs[i].node);
    *out = &j->base;
    return 0;
}

/*
 * Passing a cancellation on, without recursion: the join's inputs are
 * cancelled as put-off work (crew__defer()), so a join reached while this
 * thread already passes one on waits its turn, and cancelling a million
 * nested joins takes bounded stack. Everything is passed on before the
 * outermost crew_future_cancel() returns.
 */
static void
pass_now(struct crew__deferred *work)
{
    struct join *j = crew__container_of(work, struct join, pass);

    for (size_t i = 0; i < j->n; i++)
        crew_future_cancel(j->futures[i]);
    crew_future_release(&j->base);
}

static void
pass_cancel(struct join *j)
{
    crew_future_retain(&j->base); /* dropped once passed on */
    j->pass.run = pass_now;
    crew__defer(&j->pass);
}

static int
join_cancel(crew_future *future)
{
    struct join *j = join_of(future);
    bool resolved = crew__future_is_resolved(future);

    /* A fail-fast join resolves while inputs still run, and a when_all_ex
     * passes the request on whatever the flags: a when_all reaches its
     * inputs even once resolved (when they have all resolved, nothing
     * changes). A when_any's winner decided it: the request stops there. */
    if (resolved && j->any)
        return EALREADY;
    /* Once is enough: the inputs are fixed, and each keeps a request once
     * made. It also keeps a cancellation of joins over joins that share
     * inputs from walking every path of the graph, which grows
     * exponentially with its depth. Relaxed: only electing the one
     * thread that passes it on. */
    if (!atomic_exchange_explicit(&j->cancel_passed, true,
                                  memory_order_relaxed))
        pass_cancel(j);
    return resolved ? EALREADY : 0;
}

int
crew_when_all(crew_future *const *futures, size_t n, crew_future **all)
{
    return join_new(futures, n, false, 0, all);
}

int
crew_when_all_ex(crew_future *const *futures, size_t n, unsigned flags,
                 crew_future **all)
{
    return join_new(futures, n, false, flags, all);
}

int
crew_when_any(crew_future *const *futures, size_t n, crew_future **any)
{
    return join_new(futures, n, true, 0, any);
}

/* Join the inputs and sleep once, on the join, until the absolute
 * deadline. Past it, ETIMEDOUT: releasing the join, which nobody else
 * holds or listens to, takes its nodes off the inputs (join_release()). */
static int
wait_join(crew_future *const *futures, size_t n, uint64_t deadline,
          crew_error **error)
{
    crew_future *all;
    int err;

    err = crew_when_all(futures, n, &all);
    if (err != 0)
        return err;
    for (size_t i = 0; i < n; i++) {
        if (!crew__future_is_resolved(futures[i]))
            crew__future_before_wait(futures[i]);
        if (crew__future_is_stranded(futures[i])) {
            crew_future_release(all);
            return ESHUTDOWN;
        }
    }
    if (crew__future_await(all, deadline) == ETIMEDOUT) {
        crew_future_release(all);
        return ETIMEDOUT;
    }
    err = crew__future_code(all);
    if (err != 0 && error != NULL)
        *error = crew_error_retain(crew_future_error(all));
    crew_future_release(all);
    return err;
}

/* What a join of inputs that have all resolved would resolve with, and
 * the error it would hold, without the join. ENOMEM if the aggregate
 * could not be built. */
static int
outcome_now(crew_future *const *futures, size_t n, crew_error **error)
{
    struct crew__outcome outcome = all_outcome(futures, n);

    if (outcome.state == CREW_SUCCEEDED)
        return 0;
    if (outcome.error == NULL)
        return ENOMEM;
    if (error != NULL)
        *error = outcome.error;
    else
        crew_error_release(outcome.error);
    return outcome.state == CREW_FAILED ? CREW_EAGGREGATE : ECANCELED;
}

/*
 * On a worker, crew_wait_all joins every input and helps until the join
 * resolves. Outside the pool no join is needed at first: it waits for
 * the inputs one at a time, the last first, since work queued from
 * outside runs oldest first and the last input is likely the last to
 * resolve; once it has, most of the others have too, and they cost a
 * look each. A fan-out of a million tasks thus costs one sleep, not a
 * million registrations, and no memory. Inputs that keep resolving in the
 * other order would cost a sleep each: after WAITS_BEFORE_JOIN of them,
 * the inputs left are joined and slept on once, or, without memory for
 * the join, still waited for one at a time (having waited, the call no
 * longer returns ENOMEM for want of a join). Every input resolved, the
 * outcome and its aggregate are read off the inputs, in the caller's
 * positions.
 */
#define WAITS_BEFORE_JOIN 16

static int
wait_all_until(crew_future *const *futures, size_t n, uint64_t deadline,
               crew_error **error)
{
    unsigned waits = 0;
    int err;

    if (error != NULL)
        *error = NULL;
    if (n > 0 && futures == NULL)
        return EINVAL;
    if (n > MAX_INPUTS)
        return ENOMEM;
    if (!inputs_are_valid(futures, n))
        return EINVAL;
    if (crew__worker_self() != NULL)
        return wait_join(futures, n, deadline, error);
    for (size_t i = n; i > 0; i--) {
        if (crew__future_is_resolved(futures[i - 1]))
            continue;
        if (waits++ == WAITS_BEFORE_JOIN) {
            err = wait_join(futures, i, deadline, NULL);
            if (err == ETIMEDOUT || err == ESHUTDOWN)
                return err;
            if (err != ENOMEM)
                break; /* every input has resolved */
        }
        err = crew__future_await(futures[i - 1], deadline);
        if (err != 0)
            return err; /* ETIMEDOUT, or ESHUTDOWN: stranded */
    }
    return outcome_now(futures, n, error);
}

int
crew_wait_all(crew_future *const *futures, size_t n, crew_error **error)
{
    return wait_all_until(futures, n, UINT64_MAX, error);
}

int
crew_wait_all_for(crew_future *const *futures, size_t n, uint64_t timeout_ns,
                  crew_error **error)
{
    return wait_all_until(futures, n, crew__deadline_after(timeout_ns),
                          error);
}

/* Whether no input can resolve any more: every one still pending is a
 * task of a pool this process inherited across fork(). */
static bool
all_stranded(crew_future *const *futures, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!crew__future_is_stranded(futures[i]))
            return false;
    }
    return true;
}

int
crew_wait_any(crew_future *const *futures, size_t n, uint64_t timeout_ns,
              size_t *index)
{
    crew_future *any;
    int err;

    if (index == NULL)
        return EINVAL;
    err = crew_when_any(futures, n, &any);
    if (err != 0)
        return err;
    err = all_stranded(futures, n)
              ? ESHUTDOWN
              : crew__future_await(any, crew__deadline_after(timeout_ns));
    if (err == 0)
        *index = join_of(any)->winner;
    crew_future_release(any);
    return err;
}
