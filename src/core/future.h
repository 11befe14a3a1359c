/*
 * The future block, shared by every kind (tasks, promises, joins,
 * continuations), and the calls the kinds make on it. The future knows
 * its kind only through a table of functions, `ops`, the way
 * libdispatch's objects carry a vtable: a new kind is a new table.
 */
#ifndef CREW_FUTURE_H
#define CREW_FUTURE_H

#include "crew.h"
#include "core/error.h"
#include "sched/job.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/park.h"

#include <stdatomic.h>
#include <stddef.h>

/* A future's state word holds a crew_state, or this: a queued task that
 * a canceller has claimed and is resolving. Readers see it as pending. */
#define CREW__CLAIMED 5u

/* Any function, as traces and the watchdog name it: cast back to its
 * own type before calling. */
typedef void (*crew__function)(void);

/*
 * What a kind of future does differently. Its first member is the job
 * class the scheduler calls to run a queued future (a task, a
 * continuation), so the future's one `job.class` pointer is both: see
 * crew__future_ops(). Kinds that are never queued leave job.run NULL.
 */
struct crew__future_ops {
    struct crew__job_class job;
    /* crew_future_cancel() on this kind. */
    int (*cancel)(crew_future *future);
    /* Free what the kind holds, and the block: the last reference is
     * gone, and the value and error are already dropped. */
    void (*destroy)(crew_future *future);
    /* crew_future_release() on this kind; NULL: drop a reference, and
     * free the block with the last one. */
    void (*release)(crew_future *future);
    /* The last reference went while the future was pending; NULL: it
     * cannot happen (a queued kind's queue holds a reference). */
    void (*abandon)(crew_future *future);
    /* Pending, it waits for a pool's worker: in a child after fork(),
     * one made in the parent never resolves. */
    bool needs_worker;
    /* A thread is about to wait for it, pending: the kind may run it on
     * that thread first (a group's held member, waited on by a member of
     * its group). NULL: nothing to do. */
    void (*before_wait)(crew_future *future);
    /* Whether a running task of this kind was asked to stop by something
     * other than its own future (a member's group). NULL: nothing else
     * asks. */
    bool (*stop_requested)(const crew_future *future);
    /* The user's function a run of this kind calls, where the closure's
     * is the kind's own wrapper (a continuation's, a batch's task's), for
     * traces and the watchdog to name; read before the run. NULL: the
     * closure's. */
    crew__function (*traced)(const crew_future *future);
};

/* A node on a future's completion list: fire(node, future) runs once,
 * after resolution, outside every library lock. fire may free the node. */
struct crew__completion {
    struct crew__completion *next;
    void (*fire)(struct crew__completion *node, crew_future *future);
};

/*
 * What a success holds: a pointer the future owns with its value_free
 * (crew_task_return()), or a copy of `size` bytes (crew_task_return_copy()),
 * kept in the struct up to CREW__INLINE_MAX bytes, else in a block of its
 * own. A zeroed struct is the NULL pointer result.
 */
#define CREW__INLINE_MAX 16

enum crew__result_kind {
    CREW__RESULT_POINTER,
    CREW__RESULT_INLINE,
    CREW__RESULT_HEAP
};

struct crew__result {
    size_t size; /* a copy's */
    union {
        struct {
            void *value;
            crew_free_fn value_free;
        } ptr;
        unsigned char bytes[CREW__INLINE_MAX]; /* see crew_future's layout */
        void *heap;
    } as;
    unsigned char kind; /* enum crew__result_kind */
};

/* Make *result a copy of the `size` bytes at `value`, releasing what it
 * held. ENOMEM (a copy past CREW__INLINE_MAX could not be allocated)
 * leaves it as it was. */
int crew__result_copy(struct crew__result *result, const void *value,
                      size_t size);
/* Release what *result holds (a pointer's value_free, a copy's block) and
 * make it the NULL pointer result. */
void crew__result_drop(struct crew__result *result);

/* What crew_future_result() returns for it: the caller's to use as the
 * future allows (a borrowed pointer into a const future). */
static inline void *
crew__result_data(const struct crew__result *result)
{
    switch (result->kind) {
    case CREW__RESULT_INLINE:
        return result->size > 0 ? (void *)result->as.bytes : NULL;
    case CREW__RESULT_HEAP:
        return result->as.heap;
    default:
        return result->as.ptr.value;
    }
}

/* A thread blocked on a future: linked while it sleeps, in its own stack
 * frame. The resolver notifies `event` and unlinks it under the future's
 * lock; the waiter takes that lock before it leaves, so the node is alive
 * whenever the resolver touches it. */
struct crew__waiter {
    struct crew__node link; /* on the future's `waiters` */
    struct crew__event *event;
    bool linked;
};

/* A task's closure: read by the worker that runs it, dead once it has
 * run or been cancelled. */
struct crew__closure {
    crew_fn fn;
    void *arg;
    crew_free_fn arg_free;
    crew_pool *pool;
    /* When it entered a queue, on the task clock, if a trace recorded
     * then (crew__pool_stamp()); else 0. */
    uint64_t queued;
};

struct crew_future {
    struct crew__lock lock; /* guards the lists and every state change */
    _Atomic uint32_t state; /* a crew_state, or CLAIMED */
    _Atomic uint32_t refs;  /* references; the last frees the block */
    /* Constant from creation: */
    unsigned slotted : 1;  /* a task holding a max_queued slot */
    unsigned internal : 1; /* a parallel loop's runner: not in the statistics */
    uint8_t generation;    /* the fork generation it was made in, mod 256 */
    atomic_bool cancel_requested; /* a running task was asked to stop */
    /* Someone looked at its failure (see crew_set_unobserved()): set by a
     * holder of a reference, read by the last one's release. */
    atomic_bool observed;
    /* How a pool runs it (its link puts it in the injection queue), and
     * through job.class, the kind's ops. */
    struct crew__job job;
    /* Newest first while pending. Once resolved, the list its resolver
     * put off running (see crew__future_settle()), or NULL. */
    struct crew__completion *completions;
    union {
        struct crew__list waiters; /* of crew__waiter, while pending */
        /* Once resolved: the next future whose completions wait on this
         * thread's list of deferred ones. */
        crew_future *deferred_next;
    };
    /* The outcome: written once, before the release store of a final
     * state, read after an acquire load of it. NULL but for a failure or
     * a cancellation. */
    crew_error *error;
    /* One thing at a time: a task's closure until it is claimed (read
     * then, and dead by its resolution); from resolution, the result of a
     * success, or the fallback error of a failure recorded without one. */
    union {
        struct crew__closure task;
        struct crew__result result; /* CREW_SUCCEEDED */
        crew_error lost;            /* CREW_FAILED, memory having run out */
    } u;
};

/* An inline copy is aligned for any type: the block is (malloc()), and
 * so is the copy's offset in it. */
/* A task's future is a small block (base/alloc.h). */
_Static_assert(sizeof(crew_future) <= CREW__BLOCK_SMALL,
               "a future fits a small block");

_Static_assert(offsetof(crew_future, u.result.as.bytes) %
                       _Alignof(max_align_t) ==
                   0,
               "an inline result must be aligned for any type");

/* What a future resolves with. A failure without an error (error NULL)
 * gets the embedded fallback with `code`. */
struct crew__outcome {
    crew_state state;
    struct crew__result result; /* a success's, handed to the future */
    crew_error *error;
    int code;
};

void crew__future_init(crew_future *future, const struct crew__future_ops *ops,
                       uint32_t refs);

static inline const struct crew__future_ops *
crew__future_ops(const crew_future *future)
{
    return crew__container_of(future->job.class, const struct crew__future_ops,
                              job);
}

/* The future a queued job is. */
static inline crew_future *
crew__future_of_job(struct crew__job *job)
{
    return crew__container_of(job, crew_future, job);
}
/* Resolve: publish the outcome, wake the waiters, run the completions.
 * Returns 0, or EALREADY (the outcome stays the caller's) if the future
 * had resolved. */
int crew__future_complete(crew_future *future,
                          const struct crew__outcome *outcome);
/* The same, for a caller whose own reference outlives the call, which
 * no callback can drop: a worker holding the queue's, a join's node. */
int crew__future_settle(crew_future *future,
                        const struct crew__outcome *outcome);
/* Run node->fire(node, future) once the future has resolved: now, on
 * this thread, if it has. */
void crew__future_subscribe(crew_future *future, struct crew__completion *node);
/* Take a node off the completion list before it fires: true if it was
 * there (it will not fire), false if the future has resolved and the node
 * has fired or is about to. Never blocks on the node's firing. */
bool crew__future_unsubscribe(crew_future *future,
                              struct crew__completion *node);
/* How many things this thread has put off to bound its stack:
 * completions past the nesting bound, and crew__defer()'s work. */
extern _Thread_local unsigned crew__put_off;

void crew__future_flush_slow(void);

/* Do now what this thread put off, as a thread about to block must: it
 * may be what the wait needs. */
static inline void
crew__future_flush(void)
{
    if (crew__put_off != 0)
        crew__future_flush_slow();
}
/* Give the future's kind its chance to run it on this thread before
 * the thread waits for it (see before_wait). */
static inline void
crew__future_before_wait(crew_future *future)
{
    void (*before_wait)(crew_future *) = crew__future_ops(future)->before_wait;

    if (before_wait != NULL)
        before_wait(future);
}

/* Block until the future resolves or the absolute deadline passes;
 * a worker helps its pool meanwhile. Returns 0, ETIMEDOUT, or ESHUTDOWN
 * at once for a stranded future (see crew__future_is_stranded()). */
int crew__future_await(crew_future *future, uint64_t deadline);
/* The end of the brief spin a thread outside the pool makes before it
 * sleeps, or the deadline if sooner. */
uint64_t crew__spin_end(uint64_t deadline);
/* Spin until the future resolves (true) or the clock passes `end`. */
bool crew__future_spin(const crew_future *future, uint64_t end);
/* Link a waiter unless the future has resolved (then false). */
bool crew__future_add_waiter(crew_future *future, struct crew__waiter *waiter);
void crew__future_remove_waiter(crew_future *future,
                                struct crew__waiter *waiter);

static inline bool
crew__state_is_final(uint32_t state)
{
    return state >= CREW_SUCCEEDED && state <= CREW_CANCELLED;
}

static inline bool
crew__future_is_resolved(const crew_future *future)
{
    /* Acquire: pairs with the release store in crew__future_complete(),
     * so a caller that sees a final state sees the outcome too. */
    return crew__state_is_final(
        atomic_load_explicit(&future->state, memory_order_acquire));
}

/* Whether the future waits for a thread this process does not have: a
 * pending task or continuation made before a fork(), in the parent. */
bool crew__future_is_stranded(const crew_future *future);

/* Mark the future's failure, if it fails, as seen by someone: the
 * unobserved handler will not be called for it. The caller holds a
 * reference. */
static inline void
crew__future_observe(const crew_future *future)
{
    /* Relaxed: the mark travels to the last release, which frees, with
     * the caller's own release of its reference (acquire-release). The
     * flag is no part of the value a const pointer guards. */
    atomic_store_explicit(&((crew_future *)future)->observed, true,
                          memory_order_relaxed);
}

/* Report a failure nobody observed to the process's handler, if one is
 * installed (crew_set_unobserved()), on the calling thread. */
void crew__unobserved_report(const crew_error *error);

/* The code a wait reports: 0, ECANCELED or the failure's code, which
 * counts as observing the failure. The future has resolved. */
int crew__future_code(const crew_future *future);

/* Free a future whose last reference is gone: its value, its error, what
 * its kind holds, then the block. Iterative across a graph: a future
 * freed while this thread is freeing another waits its turn, so freeing
 * a chain a million futures long takes bounded stack. */
void crew__future_destroy(crew_future *future);

/* The common ops: free a block from crew__block_alloc(), or from
 * crew__malloc(). */
void crew__future_free_block(crew_future *future);
void crew__future_free(crew_future *future);

/*
 * Work put off to bound the stack: an item a kind embeds in its own
 * memory. crew__defer() queues it on this thread; if this thread is not
 * already running put-off work, it runs the queue until it is empty,
 * oldest first, so the outermost call does everything, and a chain of a
 * million items takes bounded stack. crew__future_flush() runs it too.
 */
struct crew__deferred {
    struct crew__deferred *next;
    void (*run)(struct crew__deferred *work);
};

void crew__defer(struct crew__deferred *work);

#endif
