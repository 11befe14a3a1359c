/*
 * Task groups: crew_group_* and crew_task_group.
 *
 * Theory of operation. A group is one block: its future first (what
 * crew_group_close() hands out), then the state its lock guards. A
 * member is a task whose block also holds its place in the group: its
 * index, a completion node, and links. The node is on the member's
 * completion list from birth, so whatever resolves the member (a worker
 * running it, a canceller, a pool refusing it) accounts for it in the
 * group, on the resolving thread, before anything else sees the outcome:
 * a failure is recorded at its index, a success counted, the policy
 * consulted, and a held member queued in its place.
 *
 * Counting. `pending` counts members added and not yet accounted for,
 * and `kids` the child groups not yet resolved; while either is above
 * zero the group holds a reference to its own future (`busy`), so that
 * neither a member nor a child outlives it. `running` counts members
 * queued or running, which `limit` bounds: past it a member is held,
 * PENDING in the group's FIFO and in no queue, holding the reference a
 * queue would, until a member resolves and it is queued in its place
 * (without a max_queued slot: the thread that queues it may be a
 * worker). The group resolves once it is closed and both counts are
 * zero; the thread that sees that happen does it, outside the lock.
 *
 * Adding a member races its own resolution. A member queued at once may
 * run and resolve before its submitter has given it its index, which is
 * the number of members added before it and so is only given once the
 * queue has taken it (a refused submission takes no index). Its node
 * then finds it not yet `added`, marks it `early` and leaves it; the
 * submitter, giving the index under the lock, accounts for it instead.
 * The submitter's own reference keeps the block until then.
 *
 * Cancelling. The group's live members are on `live` (members not yet
 * resolved), its live children on `kids_live`. A canceller marks the
 * group cancelled under the lock, then takes one member at a time off
 * `live`, onto `asked`, with a reference, and cancels it outside the
 * lock, where its resolution may come back into the group; the same
 * for children, recursively. A member added while the walk runs sees
 * the mark when it joins `live`, and cancels itself. The first cause
 * (a request, the deadline, the policy) is the one the outcome reports.
 *
 * Deadlines are the pool's (sched/timer.h): an armed group holds a
 * reference for its timer entry, dropped by the fire or by the disarm at
 * resolution. A child group inherits its parent's sooner deadline
 * without an entry of its own: the parent's fire cancels it.
 *
 * Lock order: a group's lock is a leaf. Nothing else is taken under it,
 * no future is resolved and no user code runs under it.
 */
#include "base/alloc.h"
#include "base/platform.h"
#include "core/error.h"
#include "core/future.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>

/* Why a group was cancelled: the first cause wins. */
enum cause { NOT_CANCELLED, BY_REQUEST, BY_DEADLINE, BY_POLICY };

struct failure {
    size_t index;
    crew_error *error; /* a reference */
};

struct member;

/* A FIFO of held members, linked through their `held_link`. */
struct held {
    struct member *first, *last;
};

struct crew_group {
    crew_future base; /* first: the group's future */
    crew_pool *pool;  /* held until the block is freed */
    struct crew_group *parent;
    crew_group_policy policy;
    size_t quorum;
    size_t limit;      /* 0: none */
    uint64_t deadline; /* absolute; UINT64_MAX: none */
    struct crew__timer_entry timer;
    bool armed; /* constant once made: an entry of its own is armed */

    struct crew__lock lock; /* guards everything below */
    bool closed;
    bool resolving;    /* its resolution is decided: the rest is frozen */
    enum cause cause;  /* cancelled, and why */
    size_t next_index; /* members added */
    size_t pending;    /* members added and not accounted for */
    size_t running;    /* members queued or running */
    size_t kids;       /* child groups not resolved */
    size_t successes;
    crew_future *winner; /* FIRST_SUCCESS: the first success, a reference */
    struct failure *failures; /* in the order they came */
    size_t failed, failures_capacity;
    bool failures_lost; /* one could not be recorded: memory ran out */
    struct crew__list live;      /* members, resolution not yet asked */
    struct crew__list asked;     /* members asked to cancel */
    struct held held;            /* members past the limit, oldest first */
    struct crew__list kids_live; /* children, cancellation not yet asked */
    struct crew__list kids_asked;
    struct crew__node sibling; /* on the parent's kids_live or kids_asked */
    bool sibling_asked;        /* which: under the parent's lock */
};

struct member {
    crew_future base; /* first: the member's future */
    struct crew__completion node;
    crew_group *group;
    struct crew__node link;    /* on the group's live or asked */
    struct member *held_next;  /* in the group's held FIFO */
    struct member *held_prev;
    size_t index;
    bool added; /* has its index: the rest is under the group's lock */
    bool early; /* resolved before it was added */
    bool asked; /* on `asked`, not `live` */
    bool held;  /* in the FIFO */
};

/* What a thread must do once it lets go of a group's lock. */
struct todo {
    bool cancel;              /* the policy decided: cancel the rest */
    bool resolve;             /* resolve the group */
    bool unbusy;              /* drop the `busy` reference */
    struct member *unheld;    /* a held member resolved: drop its hold */
    struct member *to_queue;  /* held members to queue, a chain */
};

static const struct crew__future_ops member_ops;
static const struct crew__future_ops group_ops;

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

/* pending or kids went from zero: the group holds its own future. */
static void
busy_up(crew_group *g, size_t *count)
{
    if (g->pending + g->kids == 0)
        crew_future_retain(&g->base);
    ++*count;
}

/* pending or kids went down; the caller let go of the lock first. */
static void
busy_down(crew_group *g, size_t *count, struct todo *todo)
{
    --*count;
    if (g->pending + g->kids != 0)
        return;
    todo->unbusy = true;
    if (g->closed && !g->resolving) {
        g->resolving = true;
        todo->resolve = true;
    }
}

static void
held_append(struct held *h, struct member *m)
{
    m->held = true;
    m->held_next = NULL;
    m->held_prev = h->last;
    if (h->last != NULL)
        h->last->held_next = m;
    else
        h->first = m;
    h->last = m;
}

static void
held_remove(struct held *h, struct member *m)
{
    m->held = false;
    if (m->held_prev != NULL)
        m->held_prev->held_next = m->held_next;
    else
        h->first = m->held_next;
    if (m->held_next != NULL)
        m->held_next->held_prev = m->held_prev;
    else
        h->last = m->held_prev;
}

/* Queue held members while the limit has room: the caller does, from
 * todo->to_queue, outside the lock. */
static void
take_held(crew_group *g, struct todo *todo)
{
    struct member **tail = &todo->to_queue;

    while (*tail != NULL)
        tail = &(*tail)->held_next;
    while (g->held.first != NULL && g->running < g->limit) {
        struct member *m = g->held.first;

        held_remove(&g->held, m);
        g->running++;
        m->held_next = NULL;
        *tail = m;
        tail = &m->held_next;
    }
}

/* Record a failure at its index; out of memory, note it was lost. */
static void
record_failure(crew_group *g, size_t index, const crew_error *error)
{
    if (g->failed == g->failures_capacity) {
        size_t capacity =
            g->failures_capacity != 0 ? 2 * g->failures_capacity : 4;
        struct failure *grown =
            capacity <= SIZE_MAX / sizeof(*grown)
                ? crew__realloc(g->failures, capacity * sizeof(*grown))
                : NULL;
        if (grown == NULL) {
            g->failures_lost = true;
            return;
        }
        g->failures = grown;
        g->failures_capacity = capacity;
    }
    g->failures[g->failed].index = index;
    g->failures[g->failed].error = crew_error_retain(error);
    g->failed++;
}

/* A member resolved (and was added): count it, under the lock. */
static void
account(crew_group *g, struct member *m, struct todo *todo)
{
    crew_future *f = &m->base;
    crew_state state = crew_future_state(f);

    crew__list_remove(m->asked ? &g->asked : &g->live, &m->link);
    if (m->held) {
        /* Cancelled where it waited: never queued, never running. */
        held_remove(&g->held, m);
        todo->unheld = m;
    } else {
        g->running--;
    }
    if (state == CREW_FAILED) {
        record_failure(g, m->index, f->error);
        if (g->policy == CREW_GROUP_CANCEL_ON_FAILURE)
            todo->cancel = true;
    } else if (state == CREW_SUCCEEDED) {
        g->successes++;
        if (g->policy == CREW_GROUP_FIRST_SUCCESS && g->winner == NULL) {
            g->winner = crew_future_retain(f);
            todo->cancel = true;
        } else if (g->policy == CREW_GROUP_QUORUM &&
                   g->successes == g->quorum) {
            todo->cancel = true;
        }
    }
    if (g->limit != 0)
        take_held(g, todo);
    busy_down(g, &g->pending, todo);
}

static void cancel_group(crew_group *g, enum cause cause);
static void resolve(crew_group *g);

/* Queue held members, taken from the FIFO with the limit's room. */
static void
queue_held(crew_group *g, struct member *m)
{
    while (m != NULL) {
        struct member *next = m->held_next;
        int err = crew__pool_submit(g->pool, &m->base.job, 0);

        if (err != 0) {
            /* The pool shut down (a CANCEL one cancels held members) or
             * a deque could not grow: it resolves without running, and
             * its node accounts for it, running. The hold was ours. */
            crew__task_refuse(&m->base, err);
            crew_future_release(&m->base);
        }
        m = next;
    }
}

/* Do what the lock's holder left to do, in this order. */
static void
act(crew_group *g, struct todo *todo)
{
    if (todo->cancel)
        cancel_group(g, BY_POLICY);
    if (todo->unheld != NULL)
        crew_future_release(&todo->unheld->base);
    queue_held(g, todo->to_queue);
    if (todo->resolve)
        resolve(g);
    if (todo->unbusy)
        crew_future_release(&g->base);
}

/* The node on every member's completion list. */
static void
member_resolved(struct crew__completion *node, crew_future *future)
{
    struct member *m = member_of(future);
    crew_group *g = m->group;
    struct todo todo = {0};

    (void)node;
    crew__lock_acquire(&g->lock);
    if (!m->added) {
        /* Its submitter accounts for it, once it has its index. */
        m->early = true;
        crew__lock_release(&g->lock);
        return;
    }
    account(g, m, &todo);
    crew__lock_release(&g->lock);
    act(g, &todo);
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
    take = m->held;
    if (take) {
        held_remove(&g->held, m);
        g->running++;
    }
    crew__lock_release(&g->lock);
    if (take)
        crew__pool_run_here(g->pool, &m->base.job); /* drops the hold */
}

static const struct crew__future_ops member_ops = {
    .job = {.run = crew__task_run},
    .cancel = crew__task_cancel,
    .destroy = crew__future_free,
    .needs_worker = true,
    .before_wait = member_before_wait,
};

/* Give a member its index, and what follows from it, under the lock. */
static void
add(crew_group *g, struct member *m, struct todo *todo)
{
    m->index = g->next_index++;
    m->added = true;
    if (m->early) {
        crew__list_push(&g->live, &m->link);
        account(g, m, todo);
    } else {
        crew__list_push(&g->live, &m->link);
    }
}

int
crew_group_submit(crew_group *g, crew_fn fn, void *arg, crew_free_fn arg_free,
                  unsigned flags, size_t *index, crew_future **future)
{
    struct todo todo = {0};
    struct member *m;
    bool direct, cancel_it = false;
    int err;

    if (future != NULL)
        *future = NULL;
    if (g == NULL || fn == NULL || (flags & ~CREW_NONBLOCKING) != 0)
        return EINVAL;
    err = crew__pool_accepts(g->pool);
    if (err != 0)
        return err;
    m = crew__malloc(sizeof(*m));
    if (m == NULL)
        return ENOMEM;
    /* The queue's (or the FIFO's) reference, and this call's. */
    crew__future_init(&m->base, &member_ops, 2);
    m->base.u.task = (struct crew__closure){
        .fn = fn, .arg = arg, .arg_free = arg_free, .pool = g->pool};
    /* Its failure is the group's to report. */
    atomic_store_explicit(&m->base.observed, true, memory_order_relaxed);
    m->node.fire = member_resolved;
    m->node.next = NULL;
    m->base.completions = &m->node; /* not yet shared: no lock */
    m->group = g;
    m->added = false;
    m->early = false;
    m->asked = false;
    m->held = false;

    crew__lock_acquire(&g->lock);
    if (g->cause != NOT_CANCELLED)
        err = ECANCELED;
    else if (g->closed && group_here() != g)
        err = ESHUTDOWN;
    if (err != 0) {
        crew__lock_release(&g->lock);
        crew__free(m);
        return err;
    }
    busy_up(g, &g->pending);
    direct = g->limit == 0 || g->running < g->limit;
    if (direct) {
        g->running++;
        m->base.slotted = crew__pool_counts_slots(g->pool);
    } else {
        held_append(&g->held, m);
        add(g, m, &todo);
    }
    crew__lock_release(&g->lock);

    if (direct) {
        err = crew__pool_submit(
            g->pool, &m->base.job,
            (m->base.slotted ? CREW__JOB_SLOTTED : 0u) |
                ((flags & CREW_NONBLOCKING) != 0 ? CREW__JOB_NONBLOCKING
                                                  : 0u));
        crew__lock_acquire(&g->lock);
        if (err != 0) {
            g->running--;
            if (g->limit != 0)
                take_held(g, &todo);
            busy_down(g, &g->pending, &todo);
        } else {
            /* Cancelled while it was being queued: the walk missed it. */
            cancel_it = g->cause != NOT_CANCELLED && !m->early;
            add(g, m, &todo);
        }
        crew__lock_release(&g->lock);
        if (err != 0) {
            crew__free(m); /* never queued, never seen */
            act(g, &todo);
            return err;
        }
    }
    if (index != NULL)
        *index = m->index;
    if (cancel_it)
        crew__task_cancel(&m->base);
    act(g, &todo);
    if (future != NULL)
        *future = &m->base;
    else
        crew_future_release(&m->base);
    return 0;
}

/*
 * Cancel every member and child not yet resolved, one at a time, each
 * moved to its `asked` list under the lock and cancelled outside it with
 * a reference of the walk's. Only the first canceller walks; a member
 * added meanwhile cancels itself (crew_group_submit()).
 */
static void
cancel_group(crew_group *g, enum cause cause)
{
    crew__lock_acquire(&g->lock);
    if (g->cause != NOT_CANCELLED) {
        crew__lock_release(&g->lock);
        return;
    }
    g->cause = cause;
    for (;;) {
        struct crew__node *n = g->live.first;
        struct member *m;

        if (n == NULL)
            break;
        m = crew__container_of(n, struct member, link);
        crew__list_remove(&g->live, n);
        crew__list_push(&g->asked, n);
        m->asked = true;
        crew_future_retain(&m->base);
        crew__lock_release(&g->lock);
        crew__task_cancel(&m->base);
        crew_future_release(&m->base);
        crew__lock_acquire(&g->lock);
    }
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

static int
by_index(const void *a, const void *b)
{
    const struct failure *x = a;
    const struct failure *y = b;

    return (x->index > y->index) - (x->index < y->index);
}

/* The failures, every one in member order, as an aggregate; NULL if
 * memory ran out (the future then fails with the fallback error). */
static crew_error *
aggregate(crew_group *g)
{
    struct crew__entry *entries;
    crew_error *error;

    if (g->failures_lost)
        return NULL;
    error = crew__error_aggregate(g->failed, g->next_index, "members failed",
                                  &entries);
    if (error == NULL)
        return NULL;
    qsort(g->failures, g->failed, sizeof(g->failures[0]), by_index);
    for (size_t i = 0; i < g->failed; i++) {
        entries[i].inner = g->failures[i].error;
        entries[i].input = g->failures[i].index;
        g->failures[i].error = NULL; /* the aggregate's now */
    }
    return error;
}

static void
release_future(void *future)
{
    crew_future_release(future);
}

/* What the group resolves with: see crew_group_close() in crew.h. */
static struct crew__outcome
outcome_of(crew_group *g, enum cause cause)
{
    struct crew__outcome outcome = {.state = CREW_FAILED};
    bool cancelled = cause == BY_REQUEST || cause == BY_DEADLINE;
    bool enough;

    switch (g->policy) {
    case CREW_GROUP_FIRST_SUCCESS:
        enough = g->winner != NULL;
        break;
    case CREW_GROUP_QUORUM:
        enough = g->successes >= g->quorum;
        break;
    default:
        enough = g->failed == 0 && !g->failures_lost;
        break;
    }
    if (!cancelled && enough) {
        outcome.state = CREW_SUCCEEDED;
        if (g->winner != NULL) {
            outcome.result.as.ptr.value = g->winner;
            outcome.result.as.ptr.value_free = release_future;
            g->winner = NULL; /* the outcome's reference now */
        }
    } else if (g->failed != 0 || g->failures_lost) {
        outcome.code = CREW_EAGGREGATE;
        outcome.error = aggregate(g);
    } else if (cause == BY_DEADLINE) {
        outcome.code = ETIMEDOUT;
        outcome.error = crew__error_default(ETIMEDOUT);
    } else if (cause == BY_REQUEST) {
        outcome.state = CREW_CANCELLED;
        outcome.error = &crew__error_cancelled;
    } else {
        outcome.code = ENOENT;
        outcome.error = crew__error_default(ENOENT);
    }
    return outcome;
}

static void kid_resolved(crew_group *parent, crew_group *kid);

/*
 * Resolve: the group is closed, no member is pending, every child has
 * resolved, and this thread set `resolving`, so nothing below changes
 * but the cause, read once under the lock.
 */
static void
resolve(crew_group *g)
{
    struct crew__outcome outcome;
    enum cause cause;

    if (g->armed && crew__pool_disarm(g->pool, &g->timer))
        crew_future_release(&g->base); /* the entry's */
    crew__lock_acquire(&g->lock);
    cause = g->cause;
    crew__lock_release(&g->lock);
    outcome = outcome_of(g, cause);
    for (size_t i = 0; i < g->failed; i++)
        crew_error_release(g->failures[i].error);
    crew__free(g->failures);
    g->failures = NULL;
    g->failed = 0;
    crew_future_release(g->winner);
    g->winner = NULL;
    /* The caller's `busy` reference outlives the call. */
    crew__future_settle(&g->base, &outcome);
    if (g->parent != NULL)
        kid_resolved(g->parent, g);
}

static void
kid_resolved(crew_group *g, crew_group *kid)
{
    struct todo todo = {0};

    crew__lock_acquire(&g->lock);
    crew__list_remove(kid->sibling_asked ? &g->kids_asked : &g->kids_live,
                      &kid->sibling);
    busy_down(g, &g->kids, &todo);
    crew__lock_release(&g->lock);
    act(g, &todo);
}

static void
group_destroy(crew_future *future)
{
    crew_group *g = group_of(future);
    crew_pool *pool = g->pool;

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
    enum cause cause;

    crew__lock_acquire(&parent->lock);
    cause = parent->cause;
    busy_up(parent, &parent->kids);
    crew__list_push(&parent->kids_live, &g->sibling);
    g->sibling_asked = false;
    crew__lock_release(&parent->lock);
    /* Nobody else knows g yet: no lock needed. */
    if (cause != NOT_CANCELLED)
        g->cause = cause == BY_DEADLINE ? BY_DEADLINE : BY_REQUEST;
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
    /* The handle's reference. */
    crew__future_init(&g->base, &group_ops, 1);
    atomic_init(&g->lock.word, 0);
    g->pool = pool;
    g->policy = options->policy;
    g->quorum = options->quorum;
    g->limit = options->limit;
    deadline = options->timeout_ns == 0 ? UINT64_MAX
                                        : crew__deadline_after(options->timeout_ns);
    g->deadline = deadline;
    if (parent != NULL && parent->deadline <= deadline)
        g->deadline = parent->deadline; /* its parent's fire cancels it */
    else if (deadline != UINT64_MAX) {
        g->timer.deadline = deadline;
        g->timer.fire = deadline_passed;
        crew_future_retain(&g->base); /* the entry's */
        err = crew__pool_arm(pool, &g->timer);
        if (err != 0) {
            crew__free(g);
            return ENOMEM;
        }
        g->armed = true;
    }
    g->parent = parent;
    if (parent != NULL)
        adopt(parent, g);
    crew__pool_hold(pool);
    *out = g;
    return 0;
}

int
crew_group_close(crew_group *g, crew_future **done)
{
    struct todo todo = {0};
    bool closed;

    if (done != NULL)
        *done = NULL;
    if (g == NULL)
        return EINVAL;
    crew__lock_acquire(&g->lock);
    closed = g->closed;
    g->closed = true;
    if (!closed && g->pending + g->kids == 0 && !g->resolving) {
        g->resolving = true;
        todo.resolve = true;
    }
    crew__lock_release(&g->lock);
    if (closed)
        return EALREADY;
    if (done != NULL)
        *done = crew_future_retain(&g->base);
    /* The handle's reference holds the group through the resolution. */
    if (todo.resolve)
        resolve(g);
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
