/*
 * Running a task, cancelling a queued one, and the crew_task_* calls.
 *
 * Theory of operation. A queued task's future is PENDING and its queue
 * holds a reference. Whoever moves the state out of PENDING first
 * decides: a worker moves it to RUNNING and runs it; a canceller moves it
 * to CLAIMED and resolves it cancelled, running arg_free itself before
 * the future resolves. The loser of that race does nothing more (a worker
 * that pops a claimed task, its husk, counts it cancelled and drops the
 * queue's reference), so a task runs at most once and its arg_free runs
 * exactly once. A task without a max_queued slot is claimed by a CAS on
 * the state. One with a slot is claimed under the future's lock, and the
 * winner gives the slot back before releasing it. The lock is what keeps
 * the pool alive for a canceller's call: the pool cannot finish shutting
 * down while one of its queues still holds the task, and whoever takes
 * it out passes through the same lock.
 *
 * crew_task lives on the running worker's stack: the value and message
 * recorded by crew_task_return and crew_task_fail stay there until the
 * function returns and the outcome is decided.
 */
#include "task.h"

#include "base/alloc.h"
#include "core/error.h"
#include "core/future.h"
#include "observe.h"
#include "pool.h"

#include <errno.h>
#include <stdarg.h>

/* The task whose function this thread is running, innermost first: a
 * task's body, a loop's chunk, a spawned call. */
_Thread_local const struct crew_task *crew__task_running;

/* Call fn(task, arg) as this thread's running task. */
static int
call_as_running(struct crew_task *task, crew_fn fn, void *arg)
{
    const struct crew_task *outer = crew__task_running;
    int rc;

    crew__task_running = task;
    rc = fn(task, arg);
    crew__task_running = outer;
    return rc;
}

static const struct crew__future_ops task_ops = {
    .job = {.run = crew__task_run},
    .cancel = crew__task_cancel,
    .destroy = crew__future_free_block,
    .needs_worker = true,
};

crew_future *
crew__task_new(crew_pool *pool, crew_fn fn, void *arg, crew_free_fn arg_free,
               uint32_t refs)
{
    crew_future *future = crew__block_alloc(sizeof(*future));

    if (future == NULL)
        return NULL;
    crew__future_init(future, &task_ops, refs);
    future->slotted = crew__pool_counts_slots(pool);
    future->u.task.fn = fn;
    future->u.task.arg = arg;
    future->u.task.arg_free = arg_free;
    future->u.task.pool = pool;
    future->u.task.queued = 0;
    return future;
}

void
crew__task_discard(crew_future *future)
{
    crew__block_free(future, sizeof(*future));
}

/* A CAS from PENDING to `to`. Acquire: the winner reads the closure,
 * and, whoever wins, the loser's view of the state is settled by the
 * same atomic. */
static bool
cas_pending(crew_future *future, uint32_t to)
{
    uint32_t pending = CREW_PENDING;

    return atomic_compare_exchange_strong_explicit(&future->state, &pending, to,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

/*
 * Move a queued task from PENDING to `to`, giving its slot back; false if
 * someone else took it first. The lock orders every other change of the
 * state (completion, cancel requests) with this one: those take it and
 * read the state afresh. A task with a slot is claimed under it by
 * everyone, workers included, so the pool is alive while the slot goes
 * back: the task lies in one of its queues, and whoever takes it out
 * passes through the lock before it can let the pool go.
 */
static bool
claim(crew_future *future, uint32_t to)
{
    bool won;

    if (!future->slotted)
        return cas_pending(future, to);
    crew__lock_acquire(&future->lock);
    won = atomic_load_explicit(&future->state, memory_order_relaxed) ==
          CREW_PENDING;
    if (won) {
        /* Relaxed: every claimer holds the lock, and readers of a
         * non-final state read no outcome. */
        atomic_store_explicit(&future->state, to, memory_order_relaxed);
        crew__pool_release_slot(future->u.task.pool);
    }
    crew__lock_release(&future->lock);
    return won;
}

/*
 * The claimed tasks whose arg_free is running on this thread, innermost
 * first. Such an arg_free may cancel its own task again, directly or
 * through a join with CREW_CANCEL_REST whose input it fails: that
 * canceller finds the task CLAIMED and would wait for a resolution that
 * only its own return can bring. It must return instead.
 */
struct claimed {
    const crew_future *future;
    const struct claimed *outer;
};

static _Thread_local const struct claimed *claimed_here;

/* Run a claimed task's arg_free, known to this thread as its claimer. */
static void
free_claimed_arg(const crew_future *future)
{
    struct crew__closure task = future->u.task;
    struct claimed frame = {.future = future, .outer = claimed_here};

    if (task.arg_free == NULL)
        return;
    claimed_here = &frame;
    task.arg_free(task.arg);
    claimed_here = frame.outer;
}

static bool
claimed_by_this_thread(const crew_future *future)
{
    for (const struct claimed *c = claimed_here; c != NULL; c = c->outer) {
        if (c->future == future)
            return true;
    }
    return false;
}

/* Resolve a claimed task as cancelled, its arg_free first. */
static void
resolve_cancelled(crew_future *future)
{
    static const struct crew__outcome cancelled = {
        .state = CREW_CANCELLED, .error = &crew__error_cancelled};

    free_claimed_arg(future);
    crew__future_complete(future, &cancelled);
}

/* Whether something other than the task's own future (a member's
 * group) asks it to stop: its kind's stop_requested op. */
static bool
asked_elsewhere(const crew_future *future)
{
    bool (*stop_requested)(const crew_future *) =
        crew__future_ops(future)->stop_requested;

    return stop_requested != NULL && stop_requested(future);
}

static bool
cancel_requested(const crew_future *future, const crew_pool *pool)
{
    if (crew__pool_is_cancelling(pool))
        return true;
    /* A loop's chunk has no future of its own. */
    if (future == NULL)
        return false;
    /* Relaxed: a hint the task polls; no data travels with it. */
    if (atomic_load_explicit(&future->cancel_requested, memory_order_relaxed))
        return true;
    return asked_elsewhere(future);
}

/* Count how a task taken out of a queue ended on `tally`: a loop's
 * runner as internal, whatever it did. */
static void
count_outcome(struct crew__tally *tally, const crew_future *future,
              crew_state state)
{
    crew__counter_add(future->internal        ? &tally->internal
                      : state == CREW_SUCCEEDED ? &tally->succeeded
                      : state == CREW_FAILED    ? &tally->failed
                                                : &tally->cancelled,
                      1);
}

/* A trace records or a watchdog is set: the task's run begins,
 * observed as a run of the user's function. */
static CREW__COLD void
observe_begin(struct crew__run *run, const crew_future *future,
              const struct crew__closure *closure)
{
    crew__function (*traced)(const crew_future *) =
        crew__future_ops(future)->traced;

    run->fn = traced != NULL ? traced(future) : (crew__function)closure->fn;
    run->queued = closure->queued;
    /* A loop's runner is no task of the user's: its chunks are. */
    run->kind = future->internal ? CREW__RUN_RUNNER : CREW__RUN_TASK;
    crew__run_begin_slow(closure->pool, run);
}

void
crew__task_run(struct crew__job *job, bool cancel, struct crew__tally *tally)
{
    crew_future *future = crew__future_of_job(job);

    if (!claim(future, cancel ? CREW__CLAIMED : CREW_RUNNING)) {
        /* A husk: a canceller took it where it lay, and resolves it
         * cancelled (if it has not yet). It leaves the queue now. */
        count_outcome(tally, future, CREW_CANCELLED);
        crew_future_release(future);
        return;
    }
    /* Asked to stop by its group before it started: resolves cancelled
     * without running. Asked only now that the task is this thread's:
     * until its resolution, what it asks (its group) is alive. */
    if (cancel || asked_elsewhere(future)) {
        count_outcome(tally, future, CREW_CANCELLED);
        resolve_cancelled(future);
        crew_future_release(future);
        return;
    }

    struct crew__closure closure = future->u.task;
    struct crew_task task = {
        .future = future,
        .pool = closure.pool,
        .spawns = crew__sched_spawns(closure.pool->sched)};
    struct crew__outcome outcome = {.state = CREW_SUCCEEDED};
    struct crew__run run;
    int rc;

    if (crew__run_observed(closure.pool, &run))
        observe_begin(&run, future, &closure);
    rc = call_as_running(&task, closure.fn, closure.arg);

    if (closure.arg_free != NULL)
        closure.arg_free(closure.arg);
    if (rc == 0) {
        outcome.result = task.result;
    } else if (rc == ECANCELED && cancel_requested(future, closure.pool)) {
        outcome.state = CREW_CANCELLED;
        outcome.error = &crew__error_cancelled;
    } else {
        outcome.state = CREW_FAILED;
        outcome.code = rc;
        if (task.failure != NULL) {
            /* Still private: the code becomes the function's own. */
            task.failure->code = rc;
            outcome.error = task.failure;
            task.failure = NULL;
        } else if (!task.failure_lost) {
            outcome.error = crew__error_default(rc);
        }
    }
    crew_error_release(task.failure);
    if (outcome.state != CREW_SUCCEEDED)
        crew__result_drop(&task.result);
    count_outcome(tally, future, outcome.state);
    crew__run_end(closure.pool, &run, outcome.state,
                  outcome.state == CREW_SUCCEEDED ? 0 : rc);
    /* The queue's reference, dropped below, holds the future. */
    crew__future_settle(future, &outcome);
    crew_future_release(future);
}

bool
crew__task_revoke(crew_future *future)
{
    if (!claim(future, CREW__CLAIMED))
        return false;
    resolve_cancelled(future);
    return true;
}

/* The end of a call made with a crew_task of its own: its value
 * released, its failure handed to *failure. */
static int
end_call(struct crew_task *task, int rc, crew_error **failure)
{
    crew__result_drop(&task->result);
    *failure = NULL;
    if (rc == 0) {
        crew_error_release(task->failure);
        return 0;
    }
    if (task->failure != NULL) {
        /* Still private: the code becomes the function's own. */
        task->failure->code = rc;
        *failure = task->failure;
    } else if (!task->failure_lost) {
        *failure = crew__error_default(rc);
    }
    return rc;
}

int
crew__task_call_range(crew_pool *pool, crew_range_fn fn, size_t lo, size_t hi,
                      void *arg, crew_error **failure)
{
    struct crew_task task = {.pool = pool,
                             .spawns = crew__sched_spawns(pool->sched)};
    const struct crew_task *outer = crew__task_running;
    int rc;

    crew__task_running = &task;
    rc = fn(&task, lo, hi, arg);
    crew__task_running = outer;
    return end_call(&task, rc, failure);
}

int
crew__task_end_spawned(struct crew_task *child, int rc, crew_error **message)
{
    crew__result_drop(&child->result);
    if (rc == 0) {
        crew_error_release(child->failure);
        return 0;
    }
    if (child->failure != NULL)
        child->failure->code = rc; /* still private */
    *message = child->failure;
    return rc;
}

void
crew__task_adopt_failure(crew_task *task, crew_error *message)
{
    crew_error_release(task->failure);
    task->failure = message;
    task->failure_lost = false;
}

void
crew__task_refuse(crew_future *future, int code)
{
    struct crew__outcome failed = {.state = CREW_FAILED, .code = code};

    if (!claim(future, CREW__CLAIMED))
        return; /* a canceller took it first, and resolves it */
    if (code == ESHUTDOWN) {
        resolve_cancelled(future);
        return;
    }
    free_claimed_arg(future);
    failed.error = crew__error_default(code);
    crew__future_complete(future, &failed);
}

int
crew__task_cancel(crew_future *future)
{
    uint32_t state;

    if (claim(future, CREW__CLAIMED)) {
        resolve_cancelled(future);
        return 0;
    }
    crew__lock_acquire(&future->lock);
    state = atomic_load_explicit(&future->state, memory_order_relaxed);
    if (state == CREW_RUNNING) {
        /* Relaxed: see cancel_requested(). */
        atomic_store_explicit(&future->cancel_requested, true,
                              memory_order_relaxed);
    }
    crew__lock_release(&future->lock);
    if (state == CREW__CLAIMED) {
        /* Another canceller won: it resolves the task promptly. Return
         * once it has, as the winner does, unless that canceller is this
         * thread, inside the task's own arg_free. */
        if (!claimed_by_this_thread(future))
            crew__future_await(future, UINT64_MAX);
        return 0;
    }
    return crew__state_is_final(state) ? EALREADY : 0;
}

int
crew_submit(crew_pool *pool, crew_fn fn, void *arg, crew_future **future)
{
    return crew_submit_ex(pool, fn, arg, NULL, 0, future);
}

int
crew_submit_ex(crew_pool *pool, crew_fn fn, void *arg, crew_free_fn arg_free,
               unsigned flags, crew_future **future)
{
    crew_future *f;
    int err;

    if (future != NULL)
        *future = NULL;
    if (pool == NULL || fn == NULL || (flags & ~CREW_NONBLOCKING) != 0)
        return EINVAL;
    /* The queue's reference, and the caller's, which the submitter keeps
     * until it returns even when the caller wants no future. */
    f = crew__task_new(pool, fn, arg, arg_free, 2);
    if (f == NULL)
        return ENOMEM;
    err = crew__pool_submit(
        pool, &f->job,
        (f->slotted ? CREW__JOB_SLOTTED : 0u) |
            ((flags & CREW_NONBLOCKING) != 0 ? CREW__JOB_NONBLOCKING : 0u));
    if (err != 0) {
        crew__task_discard(f);
        return err;
    }
    if (future != NULL)
        *future = f;
    else
        crew_future_release(f);
    return 0;
}

void
crew_task_return(crew_task *task, void *value, crew_free_fn value_free)
{
    if (task == NULL)
        return;
    /* The same value again is kept, not freed. */
    if (task->result.kind == CREW__RESULT_POINTER &&
        task->result.as.ptr.value == value)
        task->result.as.ptr.value_free = NULL;
    crew__result_drop(&task->result);
    task->result.as.ptr.value = value;
    task->result.as.ptr.value_free = value_free;
}

int
crew_task_return_copy(crew_task *task, const void *value, size_t size)
{
    if (task == NULL || (value == NULL && size > 0))
        return EINVAL;
    return crew__result_copy(&task->result, value, size);
}

int
crew_task_fail(crew_task *task, int code, const char *format, ...)
{
    va_list args;

    if (task == NULL)
        return EINVAL;
    crew_error_release(task->failure);
    task->failure = NULL;
    task->failure_lost = false;
    if (format == NULL)
        return code;
    va_start(args, format);
    task->failure = crew__error_vformat(code, format, args);
    va_end(args);
    task->failure_lost = task->failure == NULL;
    return code;
}

bool
crew_task_cancelled(const crew_task *task)
{
    if (task == NULL)
        return false;
    return cancel_requested(task->future, task->pool);
}

crew_future *
crew__task_future(const crew_task *task)
{
    return task->future;
}

crew_pool *
crew_task_pool(const crew_task *task)
{
    return task != NULL ? task->pool : NULL;
}
