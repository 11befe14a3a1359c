/*
 * Task groups: crew_group_* and crew_task_group.
 *
 * Theory of operation. A group is one block: its future first (what
 * crew_group_close() hands out), then its state. A member is a task whose
 * block (a large one, base/alloc.h) also holds its index and a completion
 * node. The node is on the member's completion list from birth, so
 * whatever resolves the member (a worker running it, a canceller, a pool
 * refusing it) accounts for it in the group on the resolving thread
 * before anyone else sees the outcome: a failure is recorded at its
 * index, a success counted for the policy, a held member queued in its
 * place.
 *
 * Counting without a shared line. What keeps a group from resolving is
 * its outstanding count: members added and not accounted for, child
 * groups not resolved. A fan-out of a million members would bounce one
 * shared counter between the submitter and every worker, so it is a
 * spread count (base/spread.h, Linux's percpu_ref): each thread counts on
 * a line of its own until the close freezes the lines into one, and
 * whoever brings that to zero resolves the group, once (`resolving`). A member's decrement is the last thing its accounting
 * does to the group, which may be gone right after. The group holds a
 * reference to its own future until it has resolved.
 *
 * Adding a member races its own resolution. A member queued at once may
 * run and resolve before its submitter has given it its index, which is
 * the number of members added before it and so is only given once the
 * queue has taken it (a refused submission takes none). Whichever of the
 * two, the index given or the resolution, comes second accounts for the
 * member (`phase`). The submitter's own reference keeps the block.
 *
 * Cancelling is lazy where it can be. A member that runs asks its group
 * (crew_task_cancelled() through the ops' stop_requested); a queued member
 * taken out of its queue after the cancel resolves cancelled without
 * running; so neither needs a list, and the fan-out pays nothing for it.
 * Held members (past `limit`: PENDING in the group's FIFO, in no queue,
 * holding the reference a queue would) are taken out of the FIFO by the
 * canceller and resolved cancelled at once; child groups, on a list, are
 * cancelled recursively. The first cause (a request, the deadline, the
 * policy) is the one the outcome reports.
 *
 * Deadlines are the pool's (sched/timer.h): an armed group holds a
 * reference for its timer entry, dropped by the fire or by the disarm at
 * resolution. A child group inherits its parent's sooner deadline
 * without an entry of its own: the parent's fire cancels it.
 *
 * `lock` guards what a fan-out without a limit never touches: the FIFO
 * and the running count of a limited group, the failures, the children.
 * It is a leaf: nothing else is taken under it, no future is resolved
 * and no user code runs under it.
 */
#include "base/alloc.h"
#include "base/platform.h"
#include "base/spread.h"
#include "core/error.h"
#include "core/failures.h"
#include "core/future.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stdalign.h>
#include <stdarg.h>

/* Why a group was cancelled: the first cause wins. */
enum cause { NOT_CANCELLED, BY_REQUEST, BY_DEADLINE, BY_POLICY };

struct member;

/* A FIFO of held members, linked through their jobs' links. */
struct held {
    struct member *first, *last;
};

struct crew_group {
    crew_future base; /* first: the group's future */
    crew_pool *pool;  /* held until the block is freed */
    crew_group *parent;
    crew_group_policy policy;
    size_t quorum;
    size_t limit;      /* 0: none */
    uint64_t deadline; /* absolute; UINT64_MAX: none */
    struct crew__timer_entry timer;
    bool armed; /* constant once made: an entry of its own is armed */
    /* Members not accounted for and children not resolved, on a line a
     * worker and one for every other thread until the close. */
    struct crew__spread outstanding;
    atomic_size_t next_index; /* members added */
    atomic_int cause;         /* enum cause */
    atomic_bool closed;
    atomic_bool resolving;
    atomic_size_t successes;     /* QUORUM */
    _Atomic(crew_future *) winner; /* FIRST_SUCCESS: a reference */

    struct crew__lock lock; /* guards the rest */
    size_t running;         /* limited: members queued or running */
    struct held held;       /* members past the limit, oldest first */
    struct crew__failures failures; /* at their members' indices */
    struct crew__list kids_live; /* children, cancellation not yet asked */
    struct crew__list kids_asked;
    struct crew__node sibling; /* on the parent's kids_live or kids_asked */
    bool sibling_asked;        /* which: under the parent's lock */
};

/* Where a member is, as to the limit: under the group's lock. */
enum where { QUEUED, IN_FIFO, TAKEN_BY_CANCEL };

/* Who accounts for a member: see the file comment. */
enum phase { ADDING, ADDED, EARLY };

/* Small enough for malloc's fast bins: a member is often freed by a
 * thread other than the one that made it. While held it lies in no
 * queue, and its job's link is the FIFO's. */
struct member {
    crew_future base; /* first: the member's future */
    struct crew__completion node;
    crew_group *group;
    size_t index;
    _Atomic unsigned char phase; /* enum phase */
    unsigned char where;         /* enum where */
};

_Static_assert(sizeof(struct member) <= CREW__BLOCK_LARGE,
               "a member fits a large block");

static const struct crew__future_ops member_ops;

static struct member *
member_of(const crew_future *future)
{
    return crew__container_of(future, struct member, base);
}

static crew_group *
group_of(const crew_future *future)
{
    return crew__container_of(future, crew_group, base);
}

crew_group *
crew_task_group(const crew_task *task)
{
    crew_future *future = task != NULL ? crew__task_future(task) : NULL;

    if (future == NULL || crew__future_ops(future) != &member_ops)
        return NULL;
    return member_of(future)->group;
}

/* The group the calling thread's running task is a member of, or NULL. */
static crew_group *
group_here(void)
{
    return crew_task_group(crew__task_running);
}

/* Whether the calling thread runs a member of g or of a descendant. */
static bool
inside(const crew_group *g)
{
    for (const crew_group *h = group_here(); h != NULL; h = h->parent) {
        if (h == g)
            return true;
    }
    return false;
}

static bool
is_cancelled(const crew_group *g)
{
    /* Relaxed: a hint, as a task's own cancellation request is; what
     * else a canceller did is read under the lock. */
    return atomic_load_explicit(&g->cause, memory_order_relaxed) !=
           NOT_CANCELLED;
}

/* Add d to the outstanding count from the calling thread; true if this
 * brought the closed group's count to zero. */
static bool
count(crew_group *g, int64_t d)
{
    return crew__spread_add(&g->outstanding, crew__pool_slot(g->pool), d);
}

static void resolve(crew_group *g);

/* The count reached zero: resolve, once. */
static void
resolve_once(crew_group *g)
{
    if (!atomic_exchange_explicit(&g->resolving, true, memory_order_acq_rel))
        resolve(g);
}

/* Count one member or child done: the last touch of g unless it is the
 * one that empties a closed group. */
static void
count_down(crew_group *g)
{
    if (count(g, -1))
        resolve_once(g);
}

static struct member *
held_next(const struct member *m)
{
    /* Relaxed: the FIFO is under the group's lock. */
    struct crew__link *next =
        atomic_load_explicit(&m->base.job.link.next, memory_order_relaxed);

    return next != NULL ? member_of(crew__future_of_job(crew__container_of(
                              next, struct crew__job, link)))
                        : NULL;
}

static void
set_held_next(struct member *m, struct member *next)
{
    atomic_store_explicit(&m->base.job.link.next,
                          next != NULL ? &next->base.job.link : NULL,
                          memory_order_relaxed);
}

static void
held_append(struct held *h, struct member *m)
{
    m->where = IN_FIFO;
    set_held_next(m, NULL);
    if (h->last != NULL)
        set_held_next(h->last, m);
    else
        h->first = m;
    h->last = m;
}

/* Take m off the FIFO: at its head when the limit lets one go, anywhere
 * when one is cancelled alone or run by a waiting member. */
static void
held_remove(struct held *h, struct member *m)
{
    struct member *prev = NULL;

    for (struct member *at = h->first; at != m; at = held_next(at))
        prev = at;
    if (prev != NULL)
        set_held_next(prev, held_next(m));
    else
        h->first = held_next(m);
    if (h->last == m)
        h->last = prev;
    set_held_next(m, NULL);
}

/* Take held members off the FIFO while the limit has room, as a chain
 * (still linked as the FIFO was) for queue_held(); under the lock. A
 * cancelled group queues none: its canceller takes the FIFO. */
static struct member *
take_held(crew_group *g)
{
    struct member *chain = g->held.first, *last = NULL;

    while (g->held.first != NULL && g->running < g->limit &&
           !is_cancelled(g)) {
        last = g->held.first;
        last->where = QUEUED;
        g->running++;
        g->held.first = held_next(last);
    }
    if (last == NULL)
        return NULL;
    if (g->held.first == NULL)
        g->held.last = NULL;
    set_held_next(last, NULL);
    return chain;
}

/* Queue a chain of members taken from the FIFO, with the FIFO's
 * references, and no max_queued slot. */
static void
queue_held(crew_group *g, struct member *m)
{
    while (m != NULL) {
        /* Read first: the queue takes the link. */
        struct member *next = held_next(m);
        int err = crew__pool_submit(g->pool, &m->base.job, 0);

        if (err != 0) {
            /* The pool shut down (a CANCEL one cancels held members) or
             * a deque could not grow: it resolves without running, and
             * its node accounts for it. The reference was the queue's. */
            crew__task_refuse(&m->base, err);
            crew_future_release(&m->base);
        }
        m = next;
    }
}

/* Keep a member's failure at its index; out of memory, the aggregate
 * will say so. */
static void
record_failure(crew_group *g, size_t index, const crew_error *error)
{
    crew__lock_acquire(&g->lock);
    crew__failures_add(&g->failures, index, crew_error_retain(error));
    crew__lock_release(&g->lock);
}

static void cancel_group(crew_group *g, enum cause cause);

/* What the policy makes of one resolved member: true to cancel the rest. */
static bool
policy_decides(crew_group *g, crew_future *f, crew_state state)
{
    crew_future *none = NULL;

    if (state == CREW_FAILED) {
        record_failure(g, member_of(f)->index, f->error);
        return g->policy == CREW_GROUP_CANCEL_ON_FAILURE;
    }
    if (state != CREW_SUCCEEDED)
        return false;
    switch (g->policy) {
    case CREW_GROUP_FIRST_SUCCESS:
        /* The reference goes with the exchange: released if it lost. */
        crew_future_retain(f);
        if (atomic_compare_exchange_strong_explicit(
                &g->winner, &none, f, memory_order_acq_rel,
                memory_order_relaxed))
            return true;
        crew_future_release(f);
        return false;
    case CREW_GROUP_QUORUM:
        return atomic_fetch_add_explicit(&g->successes, 1,
                                         memory_order_acq_rel) +
                   1 ==
               g->quorum;
    default:
        return false;
    }
}

/* A member resolved and has its index: count it in the group. */
static void
account(crew_group *g, struct member *m)
{
    crew_future *f = &m->base;
    struct member *chain = NULL;
    bool unheld = false;

    if (g->limit != 0) {
        crew__lock_acquire(&g->lock);
        if (m->where == QUEUED) {
            g->running--;
        } else {
            /* Cancelled where it waited: never queued, never running. */
            if (m->where == IN_FIFO)
                held_remove(&g->held, m);
            unheld = true;
        }
        chain = take_held(g);
        crew__lock_release(&g->lock);
    }
    if (policy_decides(g, f, crew_future_state(f)))
        cancel_group(g, BY_POLICY);
    queue_held(g, chain);
    if (unheld)
        crew_future_release(f); /* the FIFO's; the resolver holds one */
    count_down(g);
}

/* The node on every member's completion list. */
static void
member_resolved(struct crew__completion *node, crew_future *future)
{
    struct member *m = member_of(future);
    unsigned char adding = ADDING;

    (void)node;
    /* Acquire-release: the submitter's index, written before its
     * exchange, is seen here; or this resolution is seen by it. */
    if (atomic_compare_exchange_strong_explicit(&m->phase, &adding, EARLY,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return; /* its submitter accounts for it, index given */
    account(m->group, m);
}

/* Asked by a running member (crew_task_cancelled()), and by the worker
 * that has just claimed a queued one, which then resolves it cancelled
 * without running it: either way the member is not yet accounted for,
 * so its group is alive. */
static bool
member_stop_requested(const crew_future *future)
{
    return is_cancelled(member_of(future)->group);
}

/*
 * A member that waits on a held member's future runs it in its own
 * place: the waiter runs nothing meanwhile, so the limit holds. The
 * running count takes the held member in as the queue would, and its
 * resolution gives it back.
 */
static void
member_before_wait(crew_future *future)
{
    struct member *m = member_of(future);
    crew_group *g = m->group;
    bool take;

    if (group_here() != g || !crew__sched_is_mine(g->pool->sched))
        return;
    crew__lock_acquire(&g->lock);
    take = m->where == IN_FIFO && !is_cancelled(g);
    if (take) {
        held_remove(&g->held, m);
        m->where = QUEUED;
        g->running++;
    }
    crew__lock_release(&g->lock);
    if (take)
        crew__pool_run_here(g->pool, &m->base.job); /* the FIFO's reference */
}

static void
member_free(crew_future *future)
{
    crew__block_free(member_of(future), sizeof(struct member));
}

static const struct crew__future_ops member_ops = {
    .job = {.run = crew__task_run},
    .cancel = crew__task_cancel,
    .destroy = member_free,
    .needs_worker = true,
    .before_wait = member_before_wait,
    .stop_requested = member_stop_requested,
};

/* A new member, not yet counted, with the queue's (or FIFO's) reference
 * and the submitter's. */
static struct member *
member_new(crew_group *g, crew_fn fn, void *arg, crew_free_fn arg_free)
{
    struct member *m = crew__block_alloc(sizeof(*m));

    if (m == NULL)
        return NULL;
    crew__future_init(&m->base, &member_ops, 2);
    m->base.u.task = (struct crew__closure){
        .fn = fn, .arg = arg, .arg_free = arg_free, .pool = g->pool};
    /* Its failure is the group's to report. */
    atomic_store_explicit(&m->base.observed, true, memory_order_relaxed);
    m->node.fire = member_resolved;
    m->node.next = NULL;
    m->base.completions = &m->node; /* not yet shared: no lock */
    m->group = g;
    atomic_init(&m->phase, ADDING);
    m->where = QUEUED;
    return m;
}

/* Whether the calling thread may add members now; counts one if so. */
static int
enter(crew_group *g)
{
    bool member = group_here() == g;

    if (is_cancelled(g))
        return ECANCELED;
    /* Acquire: a close seen here was made before; see below. */
    if (atomic_load_explicit(&g->closed, memory_order_acquire) && !member)
        return ESHUTDOWN;
    count(g, 1);
    /* Closed meanwhile: the close's freeze may have missed this thread's
     * count, or not; either way it is taken back, and if that empties
     * the group, this thread resolves it. A member's own count keeps the
     * group from resolving under it. */
    if (!member && atomic_load_explicit(&g->closed, memory_order_acquire)) {
        count_down(g);
        return ESHUTDOWN;
    }
    return 0;
}

/* Queue a member at once: 0, or the pool's error (nothing queued). */
static int
queue_now(crew_group *g, struct member *m, unsigned flags)
{
    m->base.slotted = crew__pool_counts_slots(g->pool);
    return crew__pool_submit(
        g->pool, &m->base.job,
        (m->base.slotted ? CREW__JOB_SLOTTED : 0u) |
            ((flags & CREW_NONBLOCKING) != 0 ? CREW__JOB_NONBLOCKING : 0u));
}

int
crew_group_submit(crew_group *g, crew_fn fn, void *arg, crew_free_fn arg_free,
                  unsigned flags, size_t *index, crew_future **future)
{
    struct member *m;
    bool held = false;
    unsigned char adding = ADDING;
    int err;

    if (future != NULL)
        *future = NULL;
    if (g == NULL || fn == NULL || (flags & ~CREW_NONBLOCKING) != 0)
        return EINVAL;
    err = crew__pool_accepts(g->pool);
    if (err != 0)
        return err;
    m = member_new(g, fn, arg, arg_free);
    if (m == NULL)
        return ENOMEM;
    err = enter(g);
    if (err != 0) {
        member_free(&m->base);
        return err;
    }
    if (g->limit != 0) {
        crew__lock_acquire(&g->lock);
        if (is_cancelled(g)) {
            /* Its canceller may have taken the FIFO already. */
            err = ECANCELED;
        } else if (g->running < g->limit) {
            g->running++;
        } else {
            held = true;
            held_append(&g->held, m);
            m->index = atomic_fetch_add_explicit(&g->next_index, 1,
                                                 memory_order_relaxed);
            atomic_store_explicit(&m->phase, ADDED, memory_order_relaxed);
        }
        crew__lock_release(&g->lock);
    }
    if (err == 0 && !held) {
        err = queue_now(g, m, flags);
        if (err != 0 && g->limit != 0) {
            struct member *chain;

            crew__lock_acquire(&g->lock);
            g->running--;
            chain = take_held(g);
            crew__lock_release(&g->lock);
            queue_held(g, chain);
        }
    }
    if (err != 0) {
        member_free(&m->base); /* never queued, never seen */
        count_down(g);
        return err;
    }
    if (!held) {
        /* Relaxed: the index is published by the exchange below. */
        m->index = atomic_fetch_add_explicit(&g->next_index, 1,
                                             memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(
                &m->phase, &adding, ADDED, memory_order_acq_rel,
                memory_order_acquire))
            account(g, m); /* it resolved first: EARLY */
    }
    if (index != NULL)
        *index = m->index;
    if (future != NULL)
        *future = &m->base;
    else
        crew_future_release(&m->base);
    return 0;
}

/*
 * Cancel the group: mark it (members that run or are taken from their
 * queue ask the mark), resolve its held members cancelled, and cancel
 * its children, one at a time, each moved to `kids_asked` under the lock
 * and cancelled outside it with a reference of the walk's. Only the
 * first cause acts.
 */
static void
cancel_group(crew_group *g, enum cause cause)
{
    int none = NOT_CANCELLED;
    struct member *m;

    /* Relaxed: the lock below orders the rest. */
    if (!atomic_compare_exchange_strong_explicit(&g->cause, &none, (int)cause,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    /* The FIFO, detached whole, keeps its links. Each member's
     * resolution drops the FIFO's reference, and may come first (a
     * crew_future_cancel() of it): the walk holds one of its own. */
    crew__lock_acquire(&g->lock);
    m = g->held.first;
    for (struct member *h = m; h != NULL; h = held_next(h)) {
        h->where = TAKEN_BY_CANCEL;
        crew_future_retain(&h->base);
    }
    g->held.first = g->held.last = NULL;
    crew__lock_release(&g->lock);
    while (m != NULL) {
        struct member *next = held_next(m);

        crew__task_cancel(&m->base);
        crew_future_release(&m->base);
        m = next;
    }
    crew__lock_acquire(&g->lock);
    for (;;) {
        struct crew__node *n = g->kids_live.first;
        crew_group *kid;

        if (n == NULL)
            break;
        kid = crew__container_of(n, crew_group, sibling);
        crew__list_remove(&g->kids_live, n);
        crew__list_push(&g->kids_asked, n);
        kid->sibling_asked = true;
        crew_future_retain(&kid->base);
        crew__lock_release(&g->lock);
        /* A deadline passing down is the child's own: it inherited it. */
        cancel_group(kid, cause == BY_DEADLINE ? BY_DEADLINE : BY_REQUEST);
        crew_future_release(&kid->base);
        crew__lock_acquire(&g->lock);
    }
    crew__lock_release(&g->lock);
}

int
crew_group_cancel(crew_group *g)
{
    if (g == NULL)
        return EINVAL;
    cancel_group(g, BY_REQUEST);
    return 0;
}

static int
group_future_cancel(crew_future *future)
{
    if (crew__future_is_resolved(future))
        return EALREADY;
    cancel_group(group_of(future), BY_REQUEST);
    return 0;
}

/* The timer's fire: the deadline passed. */
static void
deadline_passed(struct crew__timer_entry *entry)
{
    crew_group *g = crew__container_of(entry, crew_group, timer);

    cancel_group(g, BY_DEADLINE);
    crew_future_release(&g->base); /* the entry's */
}

/* A new error with `code` and a printf message; NULL on ENOMEM. */
static crew_error *
error_new(int code, const char *format, ...)
{
    crew_error *error;
    va_list args;

    va_start(args, format);
    error = crew__error_vformat(code, format, args);
    va_end(args);
    return error;
}

static void
release_future(void *future)
{
    crew_future_release(future);
}

/* What the group resolves with: see crew_group_close() in crew.h. */
static struct crew__outcome
outcome_of(crew_group *g)
{
    struct crew__outcome outcome = {.state = CREW_FAILED};
    int cause = atomic_load_explicit(&g->cause, memory_order_relaxed);
    crew_future *winner =
        atomic_exchange_explicit(&g->winner, NULL, memory_order_acquire);
    bool enough;

    switch (g->policy) {
    case CREW_GROUP_FIRST_SUCCESS:
        enough = winner != NULL;
        break;
    case CREW_GROUP_QUORUM:
        enough = atomic_load_explicit(&g->successes, memory_order_relaxed) >=
                 g->quorum;
        break;
    default:
        enough = !crew__failures_any(&g->failures);
        break;
    }
    if (cause != BY_REQUEST && cause != BY_DEADLINE && enough) {
        outcome.state = CREW_SUCCEEDED;
        if (winner != NULL) {
            outcome.result.as.ptr.value = winner;
            outcome.result.as.ptr.value_free = release_future;
            winner = NULL; /* the outcome's reference now */
        }
    } else if (crew__failures_any(&g->failures)) {
        /* Every failure, in member order; NULL when memory ran out (the
         * future then fails with the fallback error). */
        outcome.code = CREW_EAGGREGATE;
        outcome.error = crew__failures_take(
            &g->failures,
            atomic_load_explicit(&g->next_index, memory_order_relaxed),
            "members failed");
    } else if (cause == BY_DEADLINE) {
        outcome.code = ETIMEDOUT;
        outcome.error = error_new(ETIMEDOUT, "the group's deadline passed");
    } else if (cause == BY_REQUEST) {
        outcome.state = CREW_CANCELLED;
        outcome.error = &crew__error_cancelled;
    } else {
        outcome.code = ENOENT;
        outcome.error = error_new(ENOENT, "%s",
                                  g->policy == CREW_GROUP_FIRST_SUCCESS
                                      ? "no member succeeded"
                                      : "too few members succeeded");
    }
    crew_future_release(winner);
    return outcome;
}

static void
kid_resolved(crew_group *g, crew_group *kid)
{
    crew__lock_acquire(&g->lock);
    crew__list_remove(kid->sibling_asked ? &g->kids_asked : &g->kids_live,
                      &kid->sibling);
    crew__lock_release(&g->lock);
    count_down(g);
}

/*
 * Resolve: the group is closed, its count is zero, and this thread won
 * `resolving`: nothing below changes any more but the cause. The lock is
 * taken once, for the failures, as a barrier with their recorders.
 */
static void
resolve(crew_group *g)
{
    struct crew__outcome outcome;

    if (g->armed && crew__pool_disarm(g->pool, &g->timer))
        crew_future_release(&g->base); /* the entry's */
    crew__lock_acquire(&g->lock);
    outcome = outcome_of(g);
    crew__failures_clear(&g->failures); /* those a success leaves */
    crew__lock_release(&g->lock);
    /* The group's reference to itself outlives the call. */
    crew__future_settle(&g->base, &outcome);
    if (g->parent != NULL)
        kid_resolved(g->parent, g);
    crew_future_release(&g->base); /* its own */
}

static void
group_destroy(crew_future *future)
{
    crew_group *g = group_of(future);
    crew_pool *pool = g->pool;

    crew__spread_destroy(&g->outstanding);
    crew__free(g);
    crew__pool_unhold(pool);
}

static const struct crew__future_ops group_ops = {
    .cancel = group_future_cancel,
    .destroy = group_destroy,
    .needs_worker = true,
};

/* Make `g` a child of `parent`, or cancelled at birth if it is. */
static void
adopt(crew_group *parent, crew_group *g)
{
    /* The creating member's own count keeps the parent open. */
    count(parent, 1);
    crew__lock_acquire(&parent->lock);
    crew__list_push(&parent->kids_live, &g->sibling);
    g->sibling_asked = false;
    crew__lock_release(&parent->lock);
    /* A cancel that marked the parent before the push walks the list
     * without g: g takes the mark itself. One after finds g there. */
    switch (atomic_load_explicit(&parent->cause, memory_order_relaxed)) {
    case NOT_CANCELLED:
        break;
    case BY_DEADLINE:
        cancel_group(g, BY_DEADLINE);
        break;
    default:
        cancel_group(g, BY_REQUEST);
        break;
    }
}

int
crew_group_create(crew_group **out, crew_pool *pool,
                  const crew_group_options *options)
{
    static const crew_group_options defaults = {0};
    crew_group *parent = group_here();
    crew_group *g;
    uint64_t deadline;
    int err;

    if (out == NULL)
        return EINVAL;
    *out = NULL;
    if (options == NULL)
        options = &defaults;
    if (pool == NULL || (unsigned)options->policy > CREW_GROUP_QUORUM ||
        (options->policy == CREW_GROUP_QUORUM && options->quorum == 0))
        return EINVAL;
    err = crew__pool_accepts(pool);
    if (err != 0)
        return err;
    g = crew__calloc(1, sizeof(*g));
    if (g == NULL)
        return ENOMEM;
    if (crew__spread_init(&g->outstanding, crew_pool_threads(pool) + 1) !=
        0) {
        crew__free(g);
        return ENOMEM;
    }
    /* The handle's reference, and its own until it resolves. */
    crew__future_init(&g->base, &group_ops, 2);
    atomic_init(&g->lock.word, 0);
    g->pool = pool;
    g->policy = options->policy;
    g->quorum = options->quorum;
    g->limit = options->limit;
    deadline = options->timeout_ns == 0 ? UINT64_MAX
                                        : crew__deadline_after(options->timeout_ns);
    g->deadline = deadline;
    if (parent != NULL && parent->deadline <= deadline) {
        g->deadline = parent->deadline; /* its parent's fire cancels it */
    } else if (deadline != UINT64_MAX) {
        g->timer.deadline = deadline;
        g->timer.fire = deadline_passed;
        crew_future_retain(&g->base); /* the entry's */
        if (crew__pool_arm(pool, &g->timer) != 0) {
            crew__spread_destroy(&g->outstanding);
            crew__free(g);
            return ENOMEM;
        }
        g->armed = true;
    }
    g->parent = parent;
    crew__pool_hold(pool);
    if (parent != NULL)
        adopt(parent, g);
    *out = g;
    return 0;
}

int
crew_group_close(crew_group *g, crew_future **done)
{
    if (done != NULL)
        *done = NULL;
    if (g == NULL)
        return EINVAL;
    /* Acquire-release: pairs with enter()'s loads. */
    if (atomic_exchange_explicit(&g->closed, true, memory_order_acq_rel))
        return EALREADY;
    if (done != NULL)
        *done = crew_future_retain(&g->base);
    if (crew__spread_freeze(&g->outstanding))
        resolve_once(g);
    return 0;
}

/* Close the group if open, and wait for it to resolve: 0, or ESHUTDOWN
 * (its members are the parent's, after fork()). */
static int
close_and_wait(crew_group *g)
{
    (void)crew_group_close(g, NULL); /* EALREADY: closed before */
    return crew__future_await(&g->base, UINT64_MAX);
}

int
crew_group_wait(crew_group *g, crew_error **error)
{
    int err;

    if (error != NULL)
        *error = NULL;
    if (g == NULL)
        return EINVAL;
    if (inside(g))
        return EDEADLK;
    err = close_and_wait(g);
    if (err != 0)
        return err;
    err = crew__future_code(&g->base);
    if (err != 0 && error != NULL)
        *error = crew_error_retain(g->base.error);
    return err;
}

void
crew_group_destroy(crew_group *g)
{
    if (g == NULL)
        return;
    if (!crew__future_is_resolved(&g->base))
        cancel_group(g, BY_REQUEST);
    /* Not crew_group_wait(): a failure nobody looked at stays
     * unobserved, for crew_set_unobserved()'s handler. */
    if (inside(g))
        (void)crew_group_close(g, NULL);
    else
        (void)close_and_wait(g);
    crew_future_release(&g->base); /* the handle's */
}
