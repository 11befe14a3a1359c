#include "common.h"

/*
 * Fault injection: every call that allocates, made to fail at each of its
 * allocations in turn, and every thread a pool starts, made to fail in
 * turn. A call that fails returns ENOMEM (EAGAIN for a thread), sets its
 * out-parameters to NULL and changes nothing: no task runs, no arg_free,
 * no callback, no reference taken or dropped. Where the contract says a
 * call degrades instead (a failure whose message or aggregate cannot be
 * recorded), the future still fails with the right code and a fixed
 * message saying memory ran out. Afterwards the pool still works, and the
 * leak check at the end of each test proves that nothing was left behind.
 * Where a reference could be taken or dropped by mistake, a value freed by
 * a counting value_free shows exactly when its future was freed, without
 * relying on the leak check.
 *
 * The hooks (tests/fault.h) count the allocations of the thread that armed
 * them, so a fault meant for a worker is armed inside a task, and one
 * meant for a combinator is armed on the thread that resolves its
 * deciding input. Each test walks the allocations of its call with
 * each_allocation(): a step of its own arms allocation k = 0, 1, 2, ...,
 * makes the call and checks it, until the call goes through without the
 * fault firing. Whether it fired is read before disarming, since arming
 * (and disarming) clears that record.
 */

#include "fault.h"
#include "testkit.h"

#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(faults, CREW_SUITE);

/* No call here makes anywhere near this many allocations. */
#define MAX_ALLOCS 64

/* More stack than a test's calls use, Criterion's and ASan's included. */

/* Out-parameters start out pointing here, so that a call which forgets to
 * clear them on failure is caught. */
static max_align_t sentinel;
#define NOT_SET_FUTURE ((crew_future *)(void *)&sentinel)
#define NOT_SET_ERROR  ((crew_error *)(void *)&sentinel)
#define NOT_SET_INBOX  ((crew_inbox *)(void *)&sentinel)
#define NOT_SET_POOL   ((crew_pool *)(void *)&sentinel)

/* Arm the k-th allocation of this thread. */
static void
arm(long k)
{
    crew_test_fail_alloc(k);
}

/* Disarm this thread's allocation hook; whether it fired since arming. */
static bool
disarm(void)
{
    bool fired = crew_test_fault_fired();

    crew_test_fail_alloc(-1);
    return fired;
}

/*
 * One step of a fault walk: makes the call under test with allocation
 * @p k armed, on whichever thread the call allocates (this one with
 * arm() and disarm(), or a task's), checks what it did, and returns
 * whether the fault fired.
 */
typedef bool fault_step(long k, void *ctx);

/*
 * Runs @p step for k = 0, 1, 2, ... until a step's fault does not fire
 * (the call went through) or k reaches @p limit; returns k, the number
 * of allocations failed in turn. Asserts nothing: a task may walk.
 */
static long
walk(long limit, fault_step *step, void *ctx)
{
    long k = 0;

    while (k < limit && step(k, ctx))
        k++;
    return k;
}

/*
 * The walk of every test here: fails each allocation of @p call in turn,
 * then lets it go through. The test fails if the fault still fired at
 * the @p limit-th allocation, or if the call allocated nothing. Returns
 * the number of allocations failed.
 */
static long
each_allocation(const char *call, long limit, fault_step *step, void *ctx)
{
    long k = walk(limit, step, ctx);

    cr_assert_lt(k, limit, "%s: the fault fired at each of %ld allocations",
                 call, limit);
    cr_assert_gt(k, 0, "%s allocated nothing", call);
    return k;
}

/* Checks what a call made under a fault walk's step @p k returned: ENOMEM
 * when the fault fired, 0 when it did not. */
static void
expect_enomem_if(bool fired, int err, long k)
{
    if (fired)
        cr_assert_eq(err, ENOMEM, "allocation %ld: %d, not ENOMEM", k, err);
    else
        cr_assert_eq(err, 0, "allocation %ld: %s", k, strerror(err));
}

static bool
called_armed(long k, int err)
{
    bool fired = disarm();

    expect_enomem_if(fired, err, k);
    return fired;
}

/*
 * Makes @p call, an expression giving an errno value, with allocation
 * @p k of this thread armed; checks that it gave ENOMEM if the fault
 * fired, 0 if not; evaluates to whether it fired. The comma arms before
 * the call; called_armed() disarms after it.
 */
#define CALL_ARMED(k, call) called_armed((k), (arm(k), (call)))

static bool
mentions_memory(const crew_error *error)
{
    return strstr(crew_error_message(error), "memory") != NULL;
}

/* Checks that `error` is the fixed "memory ran out" failure with `code`. */
static void
expect_lost(const crew_error *error, int code)
{
    char text[512];

    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), code, "code %d, not %d",
                 crew_error_code(error), code);
    cr_assert_neq(crew_error_message(error)[0], '\0', "the message is empty");
    cr_assert(mentions_memory(error), "\"%s\" does not say memory ran out",
              crew_error_message(error));
    cr_assert_eq(crew_error_count(error), 0);
    cr_assert_null(crew_error_inner(error, 0, NULL));
    cr_assert_gt(crew_error_format(error, text, sizeof(text)), 0);
    cr_assert_not_null(strstr(text, "memory"), "formatted: %s", text);
}

/* ------------------------------------------------------------------ */
/* Tasks that count                                                   */
/* ------------------------------------------------------------------ */

static int
return_arg(crew_task *task, void *arg)
{
    crew_task_return(task, arg, NULL);
    return 0;
}

/* Succeeds with its argument, a counter, as a value freed by scn_bump:
 * the count rises once the task's future is freed. */
static int
return_counted(crew_task *task, void *arg)
{
    crew_task_return(task, arg, scn_bump);
    return 0;
}

/* Checks that the pool still runs a task to success. */
static void
expect_pool_runs(crew_pool *pool)
{
    static int marker;
    crew_future *f = NULL;

    cr_assert_eq(crew_submit(pool, return_arg, &marker, &f), 0,
                 "the pool no longer accepts a task");
    cr_assert_not_null(f);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &marker);
    crew_future_release(f);
}

/* A task future that has already succeeded, with a value counted by
 * `freed` once the future is freed. The worker that resolved it may hold
 * a reference a little longer, so the pool has one worker, and a second
 * task run after it proves that worker done with the first. */
static crew_future *
finished_task(crew_pool *pool, atomic_int *freed)
{
    crew_future *f = NULL;

    cr_assert_eq(crew_pool_threads(pool), 1);
    cr_assert_eq(crew_submit(pool, return_counted, freed, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_result(f), freed);
    expect_pool_runs(pool);
    return f;
}

/* Drops the last reference to a future whose value `freed` counts: the
 * value must be freed then, and not before. */
static void
release_last(crew_future *f, atomic_int *freed, const char *what)
{
    cr_assert_eq(atomic_load(freed), 0, "%s was freed while still held", what);
    crew_future_release(f);
    cr_assert_eq(atomic_load(freed), 1,
                 "%s was not freed by its last release: a reference leaked",
                 what);
}

/* ------------------------------------------------------------------ */
/* Pools                                                              */
/* ------------------------------------------------------------------ */

struct lifecycle {
    atomic_int started;
    atomic_int stopped;
};

static void
on_start(crew_pool *pool, unsigned worker, void *user)
{
    struct lifecycle *l = user;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&l->started, 1);
}

static void
on_stop(crew_pool *pool, unsigned worker, void *user)
{
    struct lifecycle *l = user;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&l->stopped, 1);
}

struct pool_walk {
    crew_pool_options options;
    struct lifecycle life;
    crew_pool *pool;
};

static bool
pool_create_step(long k, void *ctx)
{
    struct pool_walk *w = ctx;

    w->pool = NOT_SET_POOL;
    bool fired = CALL_ARMED(k, crew_pool_create(&w->pool, &w->options));
    if (fired) {
        cr_assert_null(w->pool, "allocation %ld: *pool was not cleared", k);
        cr_assert_eq(atomic_load(&w->life.started), 0,
                     "allocation %ld: a worker started", k);
        cr_assert_eq(atomic_load(&w->life.stopped), 0);
    }
    return fired;
}

static void
pool_create_enomem(void)
{
    struct pool_walk w = {.life = {0}};

    w.options = (crew_pool_options){.threads = 4,
                                    .name = "faults",
                                    .on_thread_start = on_start,
                                    .on_thread_stop = on_stop,
                                    .user = &w.life};
    each_allocation("crew_pool_create", MAX_ALLOCS, pool_create_step, &w);
    cr_assert_not_null(w.pool);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    cr_assert_eq(atomic_load(&w.life.started), 4);
    cr_assert_eq(atomic_load(&w.life.stopped), 4);
}

CREW_TEST(faults, pool_create_returns_enomem_at_every_allocation)
{
    pool_create_enomem();
}

static void
pool_create_eagain(void)
{
    const unsigned threads = 4;

    for (unsigned k = 0; k <= threads; k++) {
        struct lifecycle life = {0};
        crew_pool_options options = {.threads = threads,
                                     .on_thread_start = on_start,
                                     .on_thread_stop = on_stop,
                                     .user = &life};
        crew_pool *pool = NOT_SET_POOL;

        crew_test_fail_thread((long)k);
        int err = crew_pool_create(&pool, &options);
        bool fired = crew_test_fault_fired();
        crew_test_fail_thread(-1);
        if (k == threads) {
            cr_assert(!fired, "a fault fired past the last thread");
            cr_assert_eq(err, 0, "%s", strerror(err));
            expect_pool_runs(pool);
            crew_pool_destroy(pool);
            cr_assert_eq(atomic_load(&life.started), (int)threads);
            cr_assert_eq(atomic_load(&life.stopped), (int)threads);
            break;
        }
        cr_assert(fired, "thread %u: the fault did not fire", k);
        cr_assert_eq(err, EAGAIN, "thread %u: %d, not EAGAIN", k, err);
        cr_assert_null(pool, "thread %u: *pool was not cleared", k);
        /* Workers 0..k-1 started; each must have stopped before the call
         * returned. */
        cr_assert_eq(atomic_load(&life.started), (int)k,
                     "thread %u: %d workers started", k,
                     atomic_load(&life.started));
        cr_assert_eq(atomic_load(&life.stopped), (int)k,
                     "thread %u: %d of %d started workers stopped", k,
                     atomic_load(&life.stopped), atomic_load(&life.started));
    }
}

CREW_TEST(faults, pool_create_gets_eagain_per_thread_and_stops_started_workers)
{
    pool_create_eagain();
}

/* ------------------------------------------------------------------ */
/* Submitting                                                         */
/* ------------------------------------------------------------------ */

/* crew_submit(), or crew_submit_ex() with scn_count_free and flags, of
 * scn_count_task, with a future or without; from outside the pool, or
 * (nested_submit_step) from a task. */
struct submit_walk {
    crew_pool *pool;
    struct scn_counts tally;
    unsigned accepted;
    bool ex;
    unsigned flags;
    bool with_future;
};

static bool
submit_step(long k, void *ctx)
{
    struct submit_walk *w = ctx;
    crew_future *f = NOT_SET_FUTURE;
    crew_future **out = w->with_future ? &f : NULL;
    bool fired = CALL_ARMED(
        k, w->ex ? crew_submit_ex(w->pool, scn_count_task, &w->tally,
                                  scn_count_free, w->flags, out)
                 : crew_submit(w->pool, scn_count_task, &w->tally, out));
    if (!fired) {
        w->accepted++;
        if (w->with_future) {
            cr_assert_eq(crew_future_wait(f), 0);
            crew_future_release(f);
        }
        return false;
    }
    if (w->with_future)
        cr_assert_null(f, "allocation %ld: *future was not cleared", k);
    expect_pool_runs(w->pool);
    /* Every task accepted so far was waited for, or is still to come. */
    cr_assert_leq(atomic_load(&w->tally.ran), w->accepted,
                  "allocation %ld: a rejected task ran", k);
    return true;
}

/* Checks, once the pool is gone, that exactly the accepted tasks ran,
 * and that arg_free ran for each when it was given. */
static void
expect_accepted_ran(struct submit_walk *w)
{
    cr_assert_eq(atomic_load(&w->tally.ran), w->accepted,
                 "%u tasks ran, %u were accepted", atomic_load(&w->tally.ran),
                 w->accepted);
    cr_assert_eq(atomic_load(&w->tally.freed), w->ex ? w->accepted : 0,
                 "arg_free ran %u times for %u accepted tasks",
                 atomic_load(&w->tally.freed), w->accepted);
    scn_gate_destroy(&w->tally.done);
}

static void
submit_enomem(void)
{
    struct submit_walk w = {.pool = crew_test_pool(2),
                            .tally = SCN_COUNTS_INIT,
                            .with_future = true};

    each_allocation("crew_submit", MAX_ALLOCS, submit_step, &w);
    cr_assert_eq(atomic_load(&w.tally.ran), 1);
    /* Fire and forget. */
    w.with_future = false;
    each_allocation("crew_submit", MAX_ALLOCS, submit_step, &w);

    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    expect_accepted_ran(&w);
}

CREW_TEST(faults, submit_returns_enomem_and_the_task_never_runs)
{
    submit_enomem();
}

static void
submit_ex_enomem(void)
{
    static const unsigned flags[] = {0, CREW_NONBLOCKING};
    struct submit_walk w = {
        .pool = crew_test_pool(2), .tally = SCN_COUNTS_INIT, .ex = true};

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        for (int with_future = 0; with_future < 2; with_future++) {
            w.flags = flags[i];
            w.with_future = with_future != 0;
            each_allocation("crew_submit_ex", MAX_ALLOCS, submit_step, &w);
        }
    }

    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    expect_accepted_ran(&w);
}

CREW_TEST(faults, submit_ex_returns_enomem_without_running_or_freeing)
{
    submit_ex_enomem();
}

/* A task that submits one child to its own pool with allocation k of its
 * worker armed. */
struct nested {
    long k;
    bool with_future;
    struct scn_counts *tally;
    int err;
    bool fired;
    crew_future *child;
};

static int
submit_child_armed(crew_task *task, void *arg)
{
    struct nested *n = arg;

    n->child = NOT_SET_FUTURE;
    arm(n->k);
    n->err =
        crew_submit_ex(crew_task_pool(task), scn_count_task, n->tally,
                       scn_count_free, 0, n->with_future ? &n->child : NULL);
    n->fired = disarm();
    return 0;
}

static bool
nested_submit_step(long k, void *ctx)
{
    struct submit_walk *w = ctx;
    struct nested n = {
        .k = k, .with_future = w->with_future, .tally = &w->tally};
    crew_future *parent = NULL;

    cr_assert_eq(crew_submit(w->pool, submit_child_armed, &n, &parent), 0);
    cr_assert_eq(crew_future_wait(parent), 0);
    crew_future_release(parent);
    expect_enomem_if(n.fired, n.err, k);
    if (!n.fired) {
        w->accepted++;
        if (w->with_future) {
            cr_assert_eq(crew_future_wait(n.child), 0);
            crew_future_release(n.child);
        }
        return false;
    }
    if (w->with_future)
        cr_assert_null(n.child, "*future was not cleared");
    expect_pool_runs(w->pool);
    return true;
}

static void
nested_submit_enomem(void)
{
    struct submit_walk w = {
        .pool = crew_test_pool(2), .tally = SCN_COUNTS_INIT, .ex = true};

    for (int with_future = 0; with_future < 2; with_future++) {
        w.with_future = with_future != 0;
        each_allocation("a nested crew_submit_ex", MAX_ALLOCS,
                        nested_submit_step, &w);
    }

    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    expect_accepted_ran(&w);
}

CREW_TEST(faults, a_nested_submit_gets_enomem_and_the_child_never_runs)
{
    nested_submit_enomem();
}

/* A task that queues CHILDREN children on its own worker's deque, which
 * starts with 64 slots, with allocation k of its worker armed: on a
 * one-thread pool nothing takes them meanwhile, so the deque must grow
 * twice, and each growth is an allocation that can fail. */
#define CHILDREN 200

struct fan {
    long k;
    bool fired;
    int err[CHILDREN];
    atomic_int runs[CHILDREN];
    crew_future *children[CHILDREN];
};

static int
fan_out_armed(crew_task *task, void *arg)
{
    struct fan *fan = arg;

    arm(fan->k);
    for (size_t i = 0; i < CHILDREN; i++)
        fan->err[i] = crew_submit(crew_task_pool(task), scn_bump_task,
                                  &fan->runs[i], &fan->children[i]);
    fan->fired = disarm();
    /* Waiting helps: this worker runs the children from its own deque. */
    for (size_t i = 0; i < CHILDREN; i++) {
        if (fan->err[i] == 0)
            crew_future_wait(fan->children[i]);
    }
    return 0;
}

/* A fresh pool each step: a deque never shrinks back to 64 slots. */
static bool
deque_growth_step(long k, void *ctx)
{
    struct fan *fan = ctx;
    crew_pool *pool = crew_test_pool(1);
    crew_future *parent = NULL;
    int rejected = 0;

    memset(fan, 0, sizeof(*fan));
    fan->k = k;
    cr_assert_eq(crew_submit(pool, fan_out_armed, fan, &parent), 0);
    cr_assert_eq(crew_future_wait(parent), 0);
    crew_future_release(parent);
    for (size_t i = 0; i < CHILDREN; i++) {
        if (fan->err[i] == 0) {
            cr_assert_not_null(fan->children[i]);
            cr_assert_eq(crew_future_state(fan->children[i]), CREW_SUCCEEDED);
            crew_future_release(fan->children[i]);
        } else {
            cr_assert_eq(fan->err[i], ENOMEM,
                         "allocation %ld, child %zu: %d, not ENOMEM", k, i,
                         fan->err[i]);
            cr_assert_null(fan->children[i]);
            rejected++;
        }
    }
    expect_pool_runs(pool);
    crew_pool_destroy(pool);
    for (size_t i = 0; i < CHILDREN; i++)
        cr_assert_eq(atomic_load(&fan->runs[i]), fan->err[i] == 0 ? 1 : 0,
                     "allocation %ld: child %zu (%s) ran %d times", k, i,
                     fan->err[i] == 0 ? "accepted" : "rejected",
                     atomic_load(&fan->runs[i]));
    cr_assert_eq(rejected, fan->fired ? 1 : 0,
                 "allocation %ld: %d children rejected", k, rejected);
    return fan->fired;
}

static void
deque_growth_enomem(void)
{
    /* On the heap: freed memory holds no pointer the leak check sees. */
    struct fan *fan = calloc(1, sizeof(*fan));
    long k;

    cr_assert_not_null(fan);
    k = each_allocation("a task's submissions", 4 * CHILDREN, deque_growth_step,
                        fan);
    free(fan);
    /* Each submission makes one allocation of its own: more than CHILDREN
     * faults that fired means the growths were reached, and failed too. */
    cr_assert_gt(k, CHILDREN,
                 "only %ld allocations for %d submissions: the deque never "
                 "grew while armed",
                 k, CHILDREN);
}

CREW_TEST(faults, deque_growth_failing_rejects_one_child_and_runs_the_rest_once)
{
    deque_growth_enomem();
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
/* ------------------------------------------------------------------ */

static void
count_call(crew_future *future, void *user)
{
    (void)future;
    atomic_fetch_add((atomic_int *)user, 1);
}

struct callback_walk {
    crew_future *p;
    atomic_int calls;
    int before; /* calls before this walk */
};

/* A registration that failed leaves nothing behind, and calls nothing
 * back; one that went through on a resolved future calls back at once. */
static bool
on_complete_step(long k, void *ctx)
{
    struct callback_walk *w = ctx;
    bool resolved = crew_future_state(w->p) != CREW_PENDING;

    bool fired =
        CALL_ARMED(k, crew_future_on_complete(w->p, count_call, &w->calls));
    cr_assert_eq(atomic_load(&w->calls), w->before + (!fired && resolved),
                 "allocation %ld: %d callbacks ran", k, atomic_load(&w->calls));
    return fired;
}

static void
on_complete_enomem(void)
{
    struct callback_walk w = {.p = crew_test_promise()};

    /* Pending. */
    each_allocation("crew_future_on_complete", MAX_ALLOCS, on_complete_step,
                    &w);
    cr_assert_eq(crew_promise_resolve(w.p, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&w.calls), 1,
                 "%d callbacks ran for the one registered",
                 atomic_load(&w.calls));

    /* Resolved. */
    w.before = 1;
    each_allocation("crew_future_on_complete", MAX_ALLOCS, on_complete_step,
                    &w);
    crew_future_release(w.p);
    cr_assert_eq(atomic_load(&w.calls), 2);
}

CREW_TEST(faults, on_complete_returns_enomem_and_the_callback_never_runs)
{
    on_complete_enomem();
}

/* ------------------------------------------------------------------ */
/* Joining                                                            */
/* ------------------------------------------------------------------ */

typedef int (*join_fn)(crew_future *const *futures, size_t n,
                       crew_future **out);

struct join_walk {
    join_fn join;
    crew_future *const *inputs;
    size_t n;
    crew_future *out;
};

static bool
join_step(long k, void *ctx)
{
    struct join_walk *w = ctx;

    w->out = NOT_SET_FUTURE;
    bool fired = CALL_ARMED(k, w->join(w->inputs, w->n, &w->out));
    if (!fired) {
        cr_assert_not_null(w->out);
        return false;
    }
    cr_assert_null(w->out, "allocation %ld: *out was not cleared", k);
    for (size_t i = 0; i < w->n; i++)
        cr_assert_eq(crew_future_state(w->inputs[i]),
                     i == 1 ? CREW_PENDING : CREW_SUCCEEDED);
    return true;
}

/* A join over {a finished task, a pending promise, the same task again}
 * at every allocation: ENOMEM leaves the inputs as they were. Returns the
 * join made once no fault fired. */
static crew_future *
join_under_faults(join_fn join, crew_future *const *inputs, size_t n)
{
    struct join_walk w = {join, inputs, n, NULL};

    each_allocation("the join", MAX_ALLOCS, join_step, &w);
    return w.out;
}

/*
 * The inputs of the join tests: t, a task future that has succeeded, and
 * p, a pending promise, each with a value counted when its future is
 * freed; on a pool of one worker.
 */
struct two_inputs {
    crew_pool *pool;
    atomic_int t_freed;
    atomic_int p_freed;
    crew_future *t;
    crew_future *p;
};

static void
two_inputs_start(struct two_inputs *in)
{
    in->pool = crew_test_pool(1);
    atomic_init(&in->t_freed, 0);
    atomic_init(&in->p_freed, 0);
    in->t = finished_task(in->pool, &in->t_freed);
    in->p = crew_test_promise();
}

/* Resolves p, with its counted value. */
static void
resolve_p(struct two_inputs *in)
{
    cr_assert_eq(crew_promise_resolve(in->p, &in->p_freed, scn_bump), 0);
}

/* Drops the test's references to p and t, which must be their last: a
 * reference the failed calls took or dropped shows up here. Then checks
 * that the pool still runs, and ends it. */
static void
two_inputs_end(struct two_inputs *in)
{
    release_last(in->p, &in->p_freed, "the promise");
    release_last(in->t, &in->t_freed, "the task");
    expect_pool_runs(in->pool);
    crew_pool_destroy(in->pool);
}

static void
when_all_enomem(void)
{
    struct two_inputs in;

    two_inputs_start(&in);
    crew_future *inputs[] = {in.t, in.p, in.t};
    crew_future *all = join_under_faults(crew_when_all, inputs, 3);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    /* A failed join that left a node on the promise would fire it now. */
    resolve_p(&in);
    cr_assert_eq(crew_future_wait(all), 0);
    cr_assert_eq(crew_future_state(all), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(in.p), 0);
    cr_assert_eq(crew_future_wait(in.t), 0);
    crew_future_release(all);
    two_inputs_end(&in);
}

CREW_TEST(faults, when_all_returns_enomem_and_leaves_its_inputs_alone)
{
    when_all_enomem();
}

static int
when_all_fail_fast(crew_future *const *futures, size_t n, crew_future **all)
{
    return crew_when_all_ex(futures, n, CREW_FAIL_FAST | CREW_CANCEL_REST, all);
}

/* The same for crew_when_all_ex, whose flags would cancel the pending
 * input if a failed call had left a node on the others. */
CREW_TEST(faults, when_all_ex_returns_enomem_and_leaves_its_inputs_alone)
{
    struct two_inputs in;

    two_inputs_start(&in);
    crew_future *inputs[] = {in.t, in.p, in.t};
    crew_future *all = join_under_faults(when_all_fail_fast, inputs, 3);
    resolve_p(&in);
    cr_assert_eq(crew_future_wait(all), 0);
    crew_future_release(all);
    two_inputs_end(&in);
}

/* A fail-fast join whose one-failure aggregate cannot be allocated still
 * fails, with the fixed "memory ran out" error. */
static bool
fail_fast_step(long k, void *saw_lost)
{
    crew_future *inputs[] = {crew_test_promise(), crew_test_promise()};
    crew_future *all = NULL;

    cr_assert_eq(crew_when_all_ex(inputs, 2, CREW_FAIL_FAST, &all), 0);
    arm(k);
    int err = crew_promise_fail(inputs[1], EIO, "one");
    bool fired = disarm();
    cr_assert_eq(err, 0);
    cr_assert_eq(crew_future_state(all), CREW_FAILED,
                 "allocation %ld: the join did not fail", k);
    const crew_error *e = crew_future_error(all);
    if (crew_error_count(e) == 0) {
        cr_assert(fired, "an empty aggregate without a fault");
        expect_lost(e, CREW_EAGGREGATE);
        *(bool *)saw_lost = true;
    } else {
        size_t input = SIZE_MAX;
        cr_assert_eq(crew_error_count(e), 1);
        cr_assert_not_null(crew_error_inner(e, 0, &input));
        cr_assert_eq(input, 1);
    }
    cr_assert_eq(crew_promise_resolve(inputs[0], NULL, NULL), 0);
    crew_future_release(all);
    crew_future_release(inputs[0]);
    crew_future_release(inputs[1]);
    return fired;
}

CREW_TEST(faults, a_fail_fast_join_without_memory_fails_all_the_same)
{
    bool saw_lost = false;

    each_allocation("crew_promise_fail", MAX_ALLOCS, fail_fast_step, &saw_lost);
    cr_assert(saw_lost, "no fault lost the aggregate");
}

static int
then_count(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)input;
    atomic_fetch_add(&((struct scn_counts *)arg)->ran, 1);
    return 0;
}

struct then_walk {
    crew_pool *pool;
    crew_future *input;
    struct scn_counts t;
    crew_future *next;
};

static bool
then_step(long k, void *ctx)
{
    struct then_walk *w = ctx;

    w->next = NOT_SET_FUTURE;
    bool fired = CALL_ARMED(k, crew_then(w->pool, w->input, then_count, &w->t,
                                         scn_count_free, &w->next));
    if (fired) {
        cr_assert_null(w->next, "allocation %ld: *future was not cleared", k);
        cr_assert_eq(atomic_load(&w->t.freed), 0, "arg_free ran on ENOMEM");
    }
    return fired;
}

/* crew_then at every allocation: ENOMEM queues nothing, frees nothing,
 * and leaves its input as it was. */
CREW_TEST(faults, then_returns_enomem_and_changes_nothing)
{
    struct then_walk w = {.pool = crew_test_pool(1),
                          .input = crew_test_promise(),
                          .t = SCN_COUNTS_INIT};
    atomic_int p_freed = 0;

    each_allocation("crew_then", MAX_ALLOCS, then_step, &w);
    cr_assert_eq(crew_promise_resolve(w.input, &p_freed, scn_bump), 0);
    cr_assert_eq(crew_future_wait(w.next), 0);
    cr_assert_eq(atomic_load(&w.t.ran), 1, "a failed call queued its function");
    cr_assert_eq(atomic_load(&w.t.freed), 1);
    expect_pool_runs(w.pool);
    /* The workers gone, the queue's reference to the continuation is too;
     * the continuation's, to its input, goes with our release. */
    cr_assert_eq(crew_pool_shutdown(w.pool, CREW_DRAIN), 0);
    crew_future_release(w.next);
    release_last(w.input, &p_freed, "the input");
    crew_pool_destroy(w.pool);
}

static int
fail_third_chunk(crew_task *task, size_t begin, size_t end, void *arg)
{
    atomic_int *ran = arg;

    (void)end;
    atomic_fetch_add(ran, 1);
    return begin == 20 ? crew_task_fail(task, EDOM, "chunk %zu", begin / 10)
                       : 0;
}

struct loop_walk {
    crew_pool *pool;
    bool saw_enomem;
};

static bool
parallel_for_step(long k, void *ctx)
{
    struct loop_walk *w = ctx;
    atomic_int ran = 0;
    crew_error *error = NOT_SET_ERROR;

    arm(k);
    int err =
        crew_parallel_for(w->pool, 0, 100, 10, fail_third_chunk, &ran, &error);
    bool fired = disarm();
    cr_assert_eq(atomic_load(&ran), 3, "allocation %ld: %d chunks ran", k,
                 atomic_load(&ran));
    if (err == ENOMEM) {
        cr_assert(fired, "ENOMEM without a fault");
        cr_assert_null(error);
        w->saw_enomem = true;
    } else {
        size_t position = SIZE_MAX;
        cr_assert_eq(err, CREW_EAGGREGATE, "allocation %ld: %d", k, err);
        cr_assert_eq(crew_error_count(error), 1);
        const crew_error *inner = crew_error_inner(error, 0, &position);
        cr_assert_eq(position, 20);
        cr_assert_str_eq(crew_error_message(inner), "chunk 2");
        crew_error_release(error);
    }
    return fired;
}

/* A failing loop at every allocation of the calling thread (on a pool of
 * one thread it runs every chunk itself): the failure is reported, or,
 * when it could not be recorded, ENOMEM; nothing leaks either way. */
CREW_TEST(faults, parallel_for_reports_a_failure_or_enomem)
{
    struct loop_walk w = {.pool = crew_test_pool(1)};

    each_allocation("crew_parallel_for", MAX_ALLOCS, parallel_for_step, &w);
    cr_assert(w.saw_enomem, "no fault made the loop lose its failure");
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
}

static void
when_any_enomem(void)
{
    struct two_inputs in;

    two_inputs_start(&in);
    crew_future *inputs[] = {in.t, in.p, in.t};
    crew_future *any = join_under_faults(crew_when_any, inputs, 3);
    cr_assert_eq(crew_future_wait(any), 0);
    cr_assert_eq(crew_future_result(any), in.t);
    resolve_p(&in);
    cr_assert_eq(crew_future_wait(in.p), 0);
    cr_assert_eq(crew_future_wait(in.t), 0);
    crew_future_release(any);
    two_inputs_end(&in);
}

CREW_TEST(faults, when_any_returns_enomem_and_leaves_its_inputs_alone)
{
    when_any_enomem();
}

/* Resolves the promise of a struct two_inputs, from a thread of its own. */
static void *
resolve_p_thread(void *arg)
{
    resolve_p(arg);
    return NULL;
}

/* A task that waits, allocation 0 of its worker armed, for its pool's
 * inputs, one of them a promise nobody resolves meanwhile. */
struct armed_wait {
    crew_future *const *inputs;
    crew_error *error;
    int err;
    bool fired;
};

static int
wait_all_armed(crew_task *task, void *arg)
{
    struct armed_wait *w = arg;

    (void)task;
    arm(0);
    w->err = crew_wait_all(w->inputs, 2, &w->error);
    w->fired = disarm();
    return 0;
}

static void
wait_all_enomem(void)
{
    struct two_inputs in;
    struct armed_wait w = {.error = NOT_SET_ERROR};
    crew_error *error = NOT_SET_ERROR;
    crew_future *waiter;
    pthread_t thread;

    two_inputs_start(&in);
    crew_future *inputs[] = {in.t, in.p};

    /* On a worker a join is made first: without memory, ENOMEM at once.
     * Had it waited, the unresolved promise would hang it. */
    w.inputs = inputs;
    cr_assert_eq(crew_submit(in.pool, wait_all_armed, &w, &waiter), 0);
    cr_assert_eq(crew_future_wait(waiter), 0);
    crew_future_release(waiter);
    cr_assert(w.fired, "crew_wait_all allocated nothing on a worker");
    cr_assert_eq(w.err, ENOMEM, "%d, not ENOMEM", w.err);
    cr_assert_null(w.error, "*error was not cleared");
    cr_assert_eq(crew_future_state(in.p), CREW_PENDING);

    /* Outside the pool it needs no memory: it waits for each input in
     * turn, and the promise resolves on another thread meanwhile. */
    cr_assert_eq(pthread_create(&thread, NULL, resolve_p_thread, &in), 0);
    arm(0);
    int err = crew_wait_all(inputs, 2, &error);
    bool fired = disarm();
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert(!fired, "crew_wait_all allocated outside the pool");
    cr_assert_eq(err, 0, "%d", err);
    cr_assert_null(error);
    two_inputs_end(&in);
}

CREW_TEST(faults, wait_all_returns_enomem_at_once_on_a_worker_needs_none_outside)
{
    wait_all_enomem();
}

/* Each allocation of crew_wait_all() over two inputs failed in turn, on
 * the calling thread, until a call fails none: what each call returned. */
struct wait_all_walk {
    crew_future *const *inputs;
    long steps;
    int err[MAX_ALLOCS];
    bool fired[MAX_ALLOCS];
    crew_error *error[MAX_ALLOCS];
};

static bool
wait_all_step(long k, void *ctx)
{
    struct wait_all_walk *w = ctx;

    w->steps = k + 1;
    w->error[k] = NOT_SET_ERROR;
    arm(k);
    w->err[k] = crew_wait_all(w->inputs, 2, &w->error[k]);
    w->fired[k] = disarm();
    return w->fired[k];
}

static void
walk_wait_all(struct wait_all_walk *w)
{
    walk(MAX_ALLOCS, wait_all_step, w);
}

static int
walk_task(crew_task *task, void *arg)
{
    (void)task;
    walk_wait_all(arg);
    return 0;
}

/* Check a walk over {a finished task, a promise failed with EIO
 * "broken"}, releasing the errors it got; tell which kinds of failure
 * the injected faults gave. */
static void
check_walk(struct wait_all_walk *w, bool *saw_enomem, bool *saw_lost)
{
    cr_assert_gt(w->steps, 0);
    cr_assert(!w->fired[w->steps - 1], "crew_wait_all never succeeded");
    for (long k = 0; k < w->steps; k++) {
        int err = w->err[k];
        crew_error *error = w->error[k];
        if (!w->fired[k]) {
            cr_assert_eq(err, CREW_EAGGREGATE, "%d", err);
            cr_assert_not_null(error);
            cr_assert_eq(crew_error_count(error), 1);
            size_t input = SIZE_MAX;
            const crew_error *inner = crew_error_inner(error, 0, &input);
            cr_assert_eq(input, 1);
            cr_assert_eq(crew_error_code(inner), EIO);
            cr_assert_str_eq(crew_error_message(inner), "broken");
        } else if (err == ENOMEM) {
            /* Nothing was waited for. */
            *saw_enomem = true;
            cr_assert_null(error, "allocation %ld: *error was not cleared", k);
        } else {
            /* The aggregate of a join: the contract's degraded outcome.
             * The lost error lives in the join, which holds the inputs. */
            *saw_lost = true;
            cr_assert_eq(err, CREW_EAGGREGATE, "allocation %ld: %d", k, err);
            expect_lost(error, CREW_EAGGREGATE);
        }
        if (error != NULL)
            crew_error_release(error);
    }
}

static void
wait_all_failures_enomem(void)
{
    crew_pool *pool = crew_test_pool(1);
    atomic_int t_freed = 0;
    crew_future *t = finished_task(pool, &t_freed);
    crew_future *bad = crew_test_failed_promise(EIO, "broken");
    crew_future *inputs[] = {t, bad};
    static struct wait_all_walk outside, inside;
    bool saw_enomem = false, saw_lost = false;
    crew_future *walker;

    /* From outside the pool, over inputs that have resolved, no join is
     * needed: the one allocation is the aggregate's, and when it fails
     * the call reports ENOMEM. */
    outside.inputs = inputs;
    walk_wait_all(&outside);
    check_walk(&outside, &saw_enomem, &saw_lost);
    cr_assert(saw_enomem, "outside: no allocation returned ENOMEM");
    cr_assert(!saw_lost, "outside: an aggregate was lost, not reported");
    cr_assert_eq(atomic_load(&t_freed), 0);
    expect_pool_runs(pool);

    /* On a worker, crew_wait_all joins every input: a failure of the
     * join's allocation is ENOMEM, of the aggregate's a lost aggregate. */
    saw_enomem = saw_lost = false;
    inside.inputs = inputs;
    cr_assert_eq(crew_submit(pool, walk_task, &inside, &walker), 0);
    cr_assert_eq(crew_future_wait(walker), 0);
    crew_future_release(walker);
    check_walk(&inside, &saw_enomem, &saw_lost);
    cr_assert(saw_enomem, "on a worker: no allocation returned ENOMEM");
    cr_assert(saw_lost, "on a worker: no allocation lost the aggregate");

    cr_assert_eq(crew_future_state(bad), CREW_FAILED);
    cr_assert_str_eq(crew_error_message(crew_future_error(bad)), "broken");
    crew_future_release(bad);
    /* Every join made inside crew_wait_all, and its error, is gone. */
    release_last(t, &t_freed, "the task");
    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, wait_all_over_failures_gets_enomem_or_a_lost_aggregate)
{
    wait_all_failures_enomem();
}

/* crew_wait_any() over {a pending promise, a finished task}. */
static bool
wait_any_step(long k, void *inputs)
{
    crew_future **in = inputs;
    size_t index = SIZE_MAX;

    bool fired = CALL_ARMED(k, crew_wait_any(in, 2, CREW_FOREVER, &index));
    if (fired)
        cr_assert_eq(crew_future_state(in[0]), CREW_PENDING);
    else
        cr_assert_eq(index, 1);
    return fired;
}

static void
wait_any_enomem(void)
{
    struct two_inputs in;
    size_t index = SIZE_MAX;

    two_inputs_start(&in);
    /* Had it waited, the unresolved promise would hang it. */
    arm(0);
    int err = crew_wait_any(&in.p, 1, CREW_FOREVER, &index);
    bool fired = disarm();
    cr_assert(fired, "crew_wait_any allocated nothing");
    cr_assert_eq(err, ENOMEM, "%d, not ENOMEM", err);
    cr_assert_eq(crew_future_state(in.p), CREW_PENDING);

    /* Every allocation, with a winner at position 1. */
    crew_future *inputs[] = {in.p, in.t};
    each_allocation("crew_wait_any", MAX_ALLOCS, wait_any_step, inputs);

    resolve_p(&in);
    cr_assert_eq(crew_wait_any(&in.p, 1, CREW_FOREVER, &index), 0);
    cr_assert_eq(index, 0);
    two_inputs_end(&in);
}

CREW_TEST(faults, wait_any_returns_enomem_at_once_without_waiting)
{
    wait_any_enomem();
}

/* ------------------------------------------------------------------ */
/* Promises                                                           */
/* ------------------------------------------------------------------ */

static bool
promise_create_step(long k, void *future)
{
    crew_future **f = future;

    *f = NOT_SET_FUTURE;
    bool fired = CALL_ARMED(k, crew_promise_create(f));
    if (fired)
        cr_assert_null(*f, "allocation %ld: *future was not cleared", k);
    return fired;
}

static void
promise_create_enomem(void)
{
    crew_future *f = NULL;

    each_allocation("crew_promise_create", MAX_ALLOCS, promise_create_step, &f);
    cr_assert_not_null(f);
    cr_assert_eq(crew_future_state(f), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(f, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
}

CREW_TEST(faults, promise_create_returns_enomem_and_no_future)
{
    promise_create_enomem();
}

/* crew_promise_fail(), with a format or without one (the default
 * message). */
static bool
promise_fail_step(long k, void *with_format)
{
    bool format = *(bool *)with_format;
    crew_future *p = crew_test_promise();

    arm(k);
    int err = format ? crew_promise_fail(p, ENOENT, "open %s", "/x")
                     : crew_promise_fail(p, ENOENT, NULL);
    bool fired = disarm();
    cr_assert_eq(err, 0, "allocation %ld: %d", k, err);
    cr_assert_eq(crew_future_state(p), CREW_FAILED);
    cr_assert_eq(crew_future_wait(p), ENOENT);
    cr_assert_null(crew_future_result(p));
    const crew_error *e = crew_future_error(p);
    if (fired) {
        expect_lost(e, ENOENT);
    } else {
        cr_assert_eq(crew_error_code(e), ENOENT);
        if (format)
            cr_assert_str_eq(crew_error_message(e), "open /x");
        else
            cr_assert(!mentions_memory(e), "%s", crew_error_message(e));
    }
    /* Resolved once, for good. */
    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), EALREADY);
    crew_future_release(p);
    return fired;
}

static void
promise_fail_enomem(void)
{
    for (int i = 0; i < 2; i++) {
        bool with_format = i != 0;

        each_allocation("crew_promise_fail", MAX_ALLOCS, promise_fail_step,
                        &with_format);
    }
}

CREW_TEST(faults, promise_fail_without_memory_keeps_its_code_and_says_so)
{
    promise_fail_enomem();
}

static void
lost_error_references(void)
{
    crew_future *p = crew_test_promise();

    arm(0);
    cr_assert_eq(crew_promise_fail(p, EPIPE, "pipe %d", 3), 0);
    cr_assert(disarm(), "crew_promise_fail allocated nothing");

    crew_error *e = crew_error_retain(crew_future_error(p));
    cr_assert_not_null(e);
    crew_error *again = crew_error_retain(e);
    cr_assert_eq(again, e);
    crew_future_release(p);
    /* The future's own reference is gone: the error must still read. */
    expect_lost(e, EPIPE);
    crew_error_release(again);
    expect_lost(e, EPIPE);

    /* Flattening it retains it once more, and must free that too. */
    crew_error *flat = crew_error_flatten(e);
    cr_assert_not_null(flat);
    cr_assert_eq(crew_error_count(flat), 1);
    crew_error_release(e);
    expect_lost(crew_error_inner(flat, 0, NULL), EPIPE);
    crew_error_release(flat);
}

CREW_TEST(faults, a_lost_message_error_outlives_its_released_future)
{
    lost_error_references();
}

/* ------------------------------------------------------------------ */
/* Failing tasks                                                      */
/* ------------------------------------------------------------------ */

/* A task that records a failure with allocation k of its worker armed. */
struct failing {
    long k;
    bool fired;
};

static int
fail_armed(crew_task *task, void *arg)
{
    struct failing *f = arg;

    arm(f->k);
    int code = crew_task_fail(task, EIO, "disk %d failed", 7);
    f->fired = disarm();
    return code;
}

/* Records a message, then loses a second one, and returns another code:
 * the outcome has the returned code, and not the first message. */
static int
fail_twice_armed(crew_task *task, void *arg)
{
    struct failing *f = arg;

    crew_task_fail(task, EIO, "first");
    arm(0);
    crew_task_fail(task, EPERM, "second");
    f->fired = disarm();
    return ENOENT;
}

static bool
task_fail_step(long k, void *pool)
{
    struct failing failing = {.k = k};
    crew_future *f = NULL;

    cr_assert_eq(crew_submit(pool, fail_armed, &failing, &f), 0);
    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    if (failing.fired) {
        expect_lost(crew_future_error(f), EIO);
    } else {
        cr_assert_eq(crew_error_code(crew_future_error(f)), EIO);
        cr_assert_str_eq(crew_error_message(crew_future_error(f)),
                         "disk 7 failed");
    }
    crew_future_release(f);
    expect_pool_runs(pool);
    return failing.fired;
}

static void
task_fail_enomem(void)
{
    crew_pool *pool = crew_test_pool(1);

    each_allocation("crew_task_fail", MAX_ALLOCS, task_fail_step, pool);

    struct failing twice = {0};
    crew_future *f = NULL;
    cr_assert_eq(crew_submit(pool, fail_twice_armed, &twice, &f), 0);
    cr_assert_eq(crew_future_wait(f), ENOENT);
    cr_assert(twice.fired, "the second crew_task_fail allocated nothing");
    expect_lost(crew_future_error(f), ENOENT);
    crew_future_release(f);

    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, task_fail_without_memory_fails_with_the_task_code)
{
    task_fail_enomem();
}

/* Fails without crew_task_fail, the next allocation of its worker armed:
 * the default message, built once the function has returned, on this
 * worker. */
static int
return_code_armed(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    arm(0);
    return EIO;
}

static int
return_code(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return EIO;
}

/* Reports whether a fault fired on this worker, and disarms it. */
static int
report_fired(crew_task *task, void *arg)
{
    (void)task;
    *(bool *)arg = disarm();
    return 0;
}

static void
default_message_enomem(void)
{
    /* One worker: the report below runs on the thread that was armed. */
    crew_pool *pool = crew_test_pool(1);
    crew_future *f = NULL;
    bool fired = false;

    cr_assert_eq(crew_submit(pool, return_code_armed, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    expect_lost(crew_future_error(f), EIO);
    crew_future_release(f);

    cr_assert_eq(crew_submit(pool, report_fired, &fired, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    cr_assert(fired, "the worker's fault never fired");

    /* Without the fault, the default message names the code. */
    cr_assert_eq(crew_submit(pool, return_code, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_eq(crew_error_code(crew_future_error(f)), EIO);
    cr_assert(!mentions_memory(crew_future_error(f)), "%s",
              crew_error_message(crew_future_error(f)));
    crew_future_release(f);

    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, failing_task_losing_its_default_message_keeps_its_code)
{
    default_message_enomem();
}

/* ------------------------------------------------------------------ */
/* Aggregates                                                         */
/* ------------------------------------------------------------------ */

struct aggregate_walk {
    crew_pool *pool;
    bool saw_lost_message;
    bool saw_lost_aggregate;
};

/* {failed, a finished task, the last input}: the last input fails with
 * allocation k armed, and the aggregate is built inside that call, on
 * this thread. */
static bool
aggregate_step(long k, void *ctx)
{
    struct aggregate_walk *w = ctx;
    atomic_int t_freed = 0;
    crew_future *first = crew_test_failed_promise(ENOENT, "first");
    crew_future *t = finished_task(w->pool, &t_freed);
    crew_future *last = crew_test_promise();
    crew_future *inputs[] = {first, t, last};
    crew_future *all = NULL;

    cr_assert_eq(crew_when_all(inputs, 3, &all), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    arm(k);
    int err = crew_promise_fail(last, EIO, "last");
    bool fired = disarm();
    cr_assert_eq(err, 0, "allocation %ld: %d", k, err);
    cr_assert_eq(crew_future_state(last), CREW_FAILED);
    cr_assert_eq(crew_future_state(all), CREW_FAILED,
                 "allocation %ld: the join did not resolve", k);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    const crew_error *e = crew_future_error(all);
    cr_assert_eq(crew_error_code(e), CREW_EAGGREGATE);

    if (crew_error_count(e) == 0) {
        cr_assert(fired, "an empty aggregate without a fault");
        w->saw_lost_aggregate = true;
        expect_lost(e, CREW_EAGGREGATE);
        cr_assert_str_eq(crew_error_message(crew_future_error(last)), "last");
        /* Waiting on it again, as an input, gives the aggregate. */
        crew_error *outer = NOT_SET_ERROR;
        cr_assert_eq(crew_wait_all(&all, 1, &outer), CREW_EAGGREGATE);
        cr_assert_eq(crew_error_count(outer), 1);
        expect_lost(crew_error_inner(outer, 0, NULL), CREW_EAGGREGATE);
        crew_error_release(outer);
    } else {
        cr_assert_eq(crew_error_count(e), 2);
        size_t input = SIZE_MAX;
        const crew_error *inner = crew_error_inner(e, 0, &input);
        cr_assert_eq(input, 0);
        cr_assert_eq(crew_error_code(inner), ENOENT);
        cr_assert_str_eq(crew_error_message(inner), "first");
        inner = crew_error_inner(e, 1, &input);
        cr_assert_eq(input, 2);
        if (fired) {
            /* The last input's own message was the one lost. */
            w->saw_lost_message = true;
            expect_lost(inner, EIO);
        } else {
            cr_assert_eq(crew_error_code(inner), EIO);
            cr_assert_str_eq(crew_error_message(inner), "last");
        }
    }
    /* The inputs themselves still join, with nothing armed. */
    crew_error *again = NOT_SET_ERROR;
    cr_assert_eq(crew_wait_all(inputs, 3, &again), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(again), 2);
    crew_error_release(again);

    crew_future_release(all);
    crew_future_release(first);
    crew_future_release(last);
    /* The join, the errors that name it and every join crew_wait_all
     * made are gone, and with them their references to the task. */
    release_last(t, &t_freed, "the task");
    expect_pool_runs(w->pool);
    return fired;
}

static void
aggregate_enomem(void)
{
    struct aggregate_walk w = {.pool = crew_test_pool(1)};
    crew_pool *pool = w.pool;

    each_allocation("crew_promise_fail", MAX_ALLOCS, aggregate_step, &w);
    cr_assert(w.saw_lost_message, "no fault lost the last input's message");
    cr_assert(w.saw_lost_aggregate, "no fault lost the aggregate");

    /* The last input succeeding: the aggregate is the only allocation. */
    atomic_int last_freed = 0;
    crew_future *first = crew_test_failed_promise(ENOENT, "first");
    crew_future *last = crew_test_promise();
    crew_future *inputs[] = {first, last};
    crew_future *all = NULL;
    cr_assert_eq(crew_when_all(inputs, 2, &all), 0);
    arm(0);
    cr_assert_eq(crew_promise_resolve(last, &last_freed, scn_bump), 0);
    cr_assert(disarm(), "resolving the last input allocated nothing");
    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    expect_lost(crew_future_error(all), CREW_EAGGREGATE);
    crew_error *error = NOT_SET_ERROR;
    cr_assert_eq(crew_wait_all(&all, 1, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 1);
    expect_lost(crew_error_inner(error, 0, NULL), CREW_EAGGREGATE);
    /* The error names the join: it keeps the join, and so its inputs. */
    crew_error *lost = crew_error_retain(crew_future_error(all));
    crew_future_release(all);
    crew_error_release(error);
    crew_future_release(first);
    crew_future_release(last);
    cr_assert_eq(atomic_load(&last_freed), 0,
                 "the join was freed while its error was held");
    expect_lost(lost, CREW_EAGGREGATE);
    crew_error_release(lost);
    cr_assert_eq(atomic_load(&last_freed), 1,
                 "the join outlived the last reference to its error");

    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, when_all_without_memory_for_its_aggregate_fails_and_says_so)
{
    aggregate_enomem();
}

/* A task that waits on a gate, then succeeds with a counted value and the
 * next allocation of its worker armed: the join it resolves last builds
 * its aggregate there. */
struct gated {
    crew_future *gate;
    atomic_int freed;
};

static int
succeed_armed_after_gate(crew_task *task, void *arg)
{
    struct gated *g = arg;

    crew_future_wait(g->gate);
    crew_task_return(task, &g->freed, scn_bump);
    arm(0);
    return 0;
}

static void
aggregate_on_worker_enomem(void)
{
    /* One worker: the report below runs on the thread that was armed. */
    crew_pool *pool = crew_test_pool(1);
    struct gated gated = {.gate = crew_test_promise()};
    crew_future *first = crew_test_failed_promise(ENOENT, "first");
    crew_future *t = NULL;
    crew_future *all = NULL;
    bool fired = false;

    cr_assert_eq(crew_submit(pool, succeed_armed_after_gate, &gated, &t), 0);
    crew_future *inputs[] = {first, t};
    cr_assert_eq(crew_when_all(inputs, 2, &all), 0);
    cr_assert_eq(crew_future_state(all), CREW_PENDING);
    cr_assert_eq(crew_promise_resolve(gated.gate, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(t), 0);
    cr_assert_eq(crew_future_wait(all), CREW_EAGGREGATE);
    cr_assert_eq(crew_future_state(all), CREW_FAILED);
    expect_lost(crew_future_error(all), CREW_EAGGREGATE);

    crew_future *report = NULL;
    cr_assert_eq(crew_submit(pool, report_fired, &fired, &report), 0);
    cr_assert_eq(crew_future_wait(report), 0);
    crew_future_release(report);
    cr_assert(fired, "the worker's fault never fired");

    crew_error *error = NOT_SET_ERROR;
    cr_assert_eq(crew_wait_all(&all, 1, &error), CREW_EAGGREGATE);
    crew_error_release(error);
    crew_future_release(all);
    crew_future_release(first);
    crew_future_release(gated.gate);
    release_last(t, &gated.freed, "the task");
    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, a_task_resolving_a_when_all_loses_its_aggregate_on_its_worker)
{
    aggregate_on_worker_enomem();
}

/* A failed future whose error shows when the last reference to it is
 * gone: a when_all that lost its aggregate, over a failed promise and one
 * that succeeded with a value counted by `freed`. Its error is embedded in
 * the join, so whatever holds the error holds the join, and the join holds
 * that value until it is freed. */
static crew_future *
observed_failure(atomic_int *freed)
{
    crew_future *bad = crew_test_failed_promise(EIO, "observed");
    crew_future *good = crew_test_promise();
    crew_future *inputs[] = {bad, good};
    crew_future *all = NULL;

    cr_assert_eq(crew_when_all(inputs, 2, &all), 0);
    arm(0);
    cr_assert_eq(crew_promise_resolve(good, freed, scn_bump), 0);
    cr_assert(disarm(), "resolving the last input allocated nothing");
    expect_lost(crew_future_error(all), CREW_EAGGREGATE);
    crew_future_release(bad);
    crew_future_release(good);
    return all;
}

struct flatten_walk {
    const crew_error *subject; /* flattened */
    size_t leaves;             /* its leaves */
    const crew_error *tree;    /* must read the same after a failure */
    int length;
    char before[1024]; /* the tree, formatted before the walk */
};

static bool
flatten_step(long k, void *ctx)
{
    struct flatten_walk *w = ctx;
    char after[sizeof(w->before)];

    arm(k);
    crew_error *flat = crew_error_flatten(w->subject);
    bool fired = disarm();
    if (!fired) {
        cr_assert_not_null(flat);
        cr_assert_eq(crew_error_count(flat), w->leaves);
        crew_error_release(flat);
        return false;
    }
    cr_assert_null(flat, "allocation %ld: not NULL", k);
    cr_assert_eq(crew_error_format(w->tree, after, sizeof(after)), w->length);
    cr_assert_str_eq(after, w->before);
    return true;
}

static void
flatten_enomem(void)
{
    atomic_int freed = 0;
    crew_future *x = observed_failure(&freed);
    crew_future *a = crew_test_failed_promise(EIO, "a");
    crew_future *b = crew_test_failed_promise(ENOENT, "b");
    crew_future *c = crew_test_failed_promise(EPERM, "c");
    crew_future *pair[] = {a, b, x};
    crew_future *inner = NULL, *outer = NULL;
    struct flatten_walk w = {0};
    char after[sizeof(w.before)];

    /* outer: {c, inner: {a, b, x}}; x's error is a leaf of the tree, and
     * x lives exactly as long as some error holds it. */
    cr_assert_eq(crew_when_all(pair, 3, &inner), 0);
    crew_future_release(x);
    crew_future *nested[] = {c, inner};
    cr_assert_eq(crew_when_all(nested, 2, &outer), 0);
    const crew_error *e = crew_future_error(outer);
    cr_assert_eq(crew_error_count(e), 2);
    w.tree = e;
    w.length = crew_error_format(e, w.before, sizeof(w.before));
    cr_assert_gt(w.length, 0);
    cr_assert_lt(w.length, (int)sizeof(w.before));

    /* An aggregate, then a leaf. */
    const crew_error *subjects[] = {e, crew_future_error(a)};
    const size_t leaves[] = {4, 1};
    for (size_t s = 0; s < 2; s++) {
        w.subject = subjects[s];
        w.leaves = leaves[s];
        each_allocation("crew_error_flatten", MAX_ALLOCS, flatten_step, &w);
    }
    cr_assert_eq(crew_error_format(e, after, sizeof(after)), w.length);
    cr_assert_str_eq(after, w.before);
    cr_assert_str_eq(crew_error_message(crew_future_error(a)), "a");

    crew_future_release(inner);
    crew_future_release(a);
    crew_future_release(b);
    crew_future_release(c);
    /* Only the outer join holds the tree now: its last release frees it
     * all, x and x's inputs included. */
    cr_assert_eq(atomic_load(&freed), 0, "x was freed while held");
    crew_future_release(outer);
    cr_assert_eq(atomic_load(&freed), 1,
                 "an error of the tree outlived its last reference");
}

CREW_TEST(faults, flatten_returns_null_on_enomem_and_leaves_the_original_alone)
{
    flatten_enomem();
}

CREW_TEST(faults, inbox_create_and_watch_return_enomem_and_leave_nothing)
{
    crew_inbox *inbox = NOT_SET_INBOX;
    crew_future *p = crew_test_promise();
    crew_future *got = NULL;
    bool fired;
    int err;

    arm(0);
    err = crew_inbox_create(&inbox);
    fired = disarm();
    cr_assert(fired, "crew_inbox_create allocated nothing");
    cr_assert_eq(err, ENOMEM);
    cr_assert_null(inbox, "*inbox was not cleared");

    cr_assert_eq(crew_inbox_create(&inbox), 0);
    arm(0);
    err = crew_inbox_watch(inbox, p, NULL);
    fired = disarm();
    cr_assert(fired, "crew_inbox_watch allocated nothing");
    cr_assert_eq(err, ENOMEM);
    /* Nothing is watched: resolving delivers nothing, and the promise's
     * only other reference is ours. */
    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), 0);
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 0);
    cr_assert_eq(crew_inbox_watch(inbox, p, NULL), 0);
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 1);
    crew_future_release(got);
    crew_inbox_destroy(inbox);
    crew_future_release(p);
}

/* ------------------------------------------------------------------ */
/* Copied results                                                     */
/* ------------------------------------------------------------------ */

struct copy_under_fault {
    int small, large;        /* what the two copies returned */
    bool small_allocated;    /* the armed fault fired during the small one */
    bool large_allocated;
};

/* Copies 16 bytes, then 17, each with the next allocation armed to fail:
 * the first must not allocate at all, the second must, and fail. */
static int
copy_under_fault_task(crew_task *task, void *arg)
{
    struct copy_under_fault *c = arg;
    unsigned char bytes[17];

    memset(bytes, 0x5a, sizeof(bytes));
    crew_test_fail_alloc(0);
    c->small = crew_task_return_copy(task, bytes, 16);
    c->small_allocated = crew_test_fault_fired();
    crew_test_fail_alloc(0);
    c->large = crew_task_return_copy(task, bytes, 17);
    c->large_allocated = crew_test_fault_fired();
    crew_test_fail_alloc(-1);
    return 0;
}

CREW_TEST(faults, a_copy_of_up_to_16_bytes_never_allocates)
{
    crew_pool *pool = crew_test_pool(1);
    struct copy_under_fault c = {0};
    crew_future *f;

    cr_assert_eq(crew_submit(pool, copy_under_fault_task, &c, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(c.small, 0);
    cr_assert_not(c.small_allocated, "a 16-byte copy allocated");
    cr_assert_eq(c.large, ENOMEM);
    cr_assert(c.large_allocated, "a 17-byte copy did not allocate");
    /* ENOMEM left the 16-byte copy as the result. */
    cr_assert_eq(crew_future_result_size(f), 16);
    cr_assert_eq(((const unsigned char *)crew_future_result(f))[15], 0x5a);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, a_promise_copy_of_16_bytes_never_allocates)
{
    crew_future *small = crew_test_promise();
    crew_future *large = crew_test_promise();
    unsigned char bytes[17] = {1, 2, 3};

    crew_test_fail_alloc(0);
    cr_assert_eq(crew_promise_resolve_copy(small, bytes, 16), 0);
    cr_assert_not(crew_test_fault_fired(), "a 16-byte copy allocated");
    crew_test_fail_alloc(0);
    cr_assert_eq(crew_promise_resolve_copy(large, bytes, 17), ENOMEM);
    cr_assert(crew_test_fault_fired());
    crew_test_fail_alloc(-1);
    cr_assert_eq(crew_future_state(large), CREW_PENDING,
                 "ENOMEM resolved the promise");
    cr_assert_eq(crew_future_result_size(small), 16);
    cr_assert_eq(crew_promise_resolve_copy(large, bytes, 17), 0);
    cr_assert_eq(crew_future_result_size(large), 17);
    crew_future_release(small);
    crew_future_release(large);
}

/* ------------------------------------------------------------------ */
/* Batches                                                             */
/* ------------------------------------------------------------------ */

#define BATCH_N 200 /* past a worker deque's first ring of 64 */

static int
count_each(crew_task *task, size_t index, void *counts)
{
    (void)index;
    return scn_count_task(task, counts);
}

/* A batch under a fault walk, from this thread or, `inside`, from a
 * task, whose worker must also grow its deque to take it. */
struct batch_walk {
    crew_pool *pool;
    struct scn_counts tally;
    unsigned accepted; /* batches that went through */
    long k;
    int err;
    bool fired;
};

static void
submit_batch_armed(struct batch_walk *w)
{
    crew_future *futures[BATCH_N];

    for (size_t i = 0; i < BATCH_N; i++)
        futures[i] = NOT_SET_FUTURE;
    arm(w->k);
    w->err = crew_submit_each(w->pool, BATCH_N, count_each, &w->tally,
                              scn_count_free, 0, futures);
    w->fired = disarm();
    if (w->err != 0) {
        for (size_t i = 0; i < BATCH_N; i++)
            cr_assert_null(futures[i], "slot %zu left set on error", i);
        return;
    }
    w->accepted++;
    cr_assert_eq(crew_wait_all(futures, BATCH_N, NULL), 0);
    crew_future_release_all(futures, BATCH_N);
}

static int
batch_from_task(crew_task *task, void *arg)
{
    (void)task;
    submit_batch_armed(arg);
    return 0;
}

static bool
batch_step(long k, void *ctx)
{
    struct batch_walk *w = ctx;

    w->k = k;
    submit_batch_armed(w);
    expect_enomem_if(w->fired, w->err, k);
    return w->fired;
}

static bool
batch_step_inside(long k, void *ctx)
{
    struct batch_walk *w = ctx;
    crew_future *f;

    w->k = k;
    cr_assert_eq(crew_submit(w->pool, batch_from_task, w, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    expect_enomem_if(w->fired, w->err, k);
    return w->fired;
}

static void
expect_batches_ran(struct batch_walk *w)
{
    /* Every accepted batch ran whole, and freed its arg once; nothing of
     * a refused one ran. The pool is destroyed: every arg_free ran. */
    cr_assert_eq(atomic_load(&w->tally.ran), w->accepted * BATCH_N);
    cr_assert_eq(atomic_load(&w->tally.freed), w->accepted);
    scn_gate_destroy(&w->tally.done);
}

CREW_TEST(faults, submit_each_is_all_or_nothing_at_every_allocation)
{
    struct batch_walk w = {.pool = crew_test_pool(2),
                           .tally = SCN_COUNTS_INIT};

    /* One allocation from outside, whatever the size of the batch. */
    cr_assert_eq(each_allocation("crew_submit_each", MAX_ALLOCS, batch_step,
                                 &w),
                 1);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    expect_batches_ran(&w);
}

CREW_TEST(faults, submit_each_from_a_worker_is_all_or_nothing_too)
{
    struct batch_walk w = {.pool = crew_test_pool(1),
                           .tally = SCN_COUNTS_INIT};

    /* The batch's block, then the worker's deque growing to take it. */
    cr_assert_eq(each_allocation("crew_submit_each from a worker", MAX_ALLOCS,
                                 batch_step_inside, &w),
                 2);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    expect_batches_ran(&w);
}

/* A submitter on a thread of its own, for the order of room. */
struct room_submitter {
    crew_pool *pool;
    size_t n; /* a batch of n, or, 0, one crew_submit() */
    struct scn_counts *tally;
    crew_future *futures[4];
    int err;
    pthread_t thread;
};

/* Which submitter's task ran when: each appends its mark. */
static atomic_int order_next;
static int order_log[16];

static int
log_order(crew_task *task, size_t index, void *mark)
{
    (void)task;
    (void)index;
    order_log[atomic_fetch_add(&order_next, 1) % 16] = (int)(intptr_t)mark;
    return 0;
}

static int
log_order_one(crew_task *task, void *mark)
{
    return log_order(task, 0, mark);
}

static void *
submit_waiting(void *arg)
{
    struct room_submitter *s = arg;

    if (s->n > 0)
        s->err = crew_submit_each(s->pool, s->n, log_order,
                                  (void *)(intptr_t)s->n, NULL, 0, s->futures);
    else
        s->err = crew_submit(s->pool, log_order_one, (void *)(intptr_t)1,
                             s->futures);
    return NULL;
}

/* Wait, with patience, until `count` submitters have started waiting for
 * room since `base`. */
static void
await_room_waits(unsigned long base, unsigned long count)
{
    for (int i = 0; i < 100000 && crew_test_room_waits() < base + count; i++)
        sched_yield();
    cr_assert_geq(crew_test_room_waits(), base + count,
                  "no submitter started waiting for room");
}

CREW_TEST(faults, a_batch_waiting_for_room_is_not_overtaken)
{
    crew_pool_options o = {.threads = 1, .max_queued = 3};
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *fillers[2];
    struct room_submitter batch = {.n = 2}, single = {.n = 0};
    unsigned long base = crew_test_room_waits();
    crew_pool *pool;
    crew_future *extra = NOT_SET_FUTURE;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    batch.pool = single.pool = pool;
    atomic_store(&order_next, 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    /* Two places of three taken by tasks that hold the worker in turn:
     * a batch of two waits, and a single task behind it waits too,
     * though a place is free. */
    cr_assert_eq(crew_submit(pool, scn_hold_task, &hold, &fillers[0]), 0);
    cr_assert_eq(crew_submit(pool, scn_hold_task, &hold, &fillers[1]), 0);
    cr_assert_eq(pthread_create(&batch.thread, NULL, submit_waiting, &batch),
                 0);
    await_room_waits(base, 1);
    cr_assert_eq(pthread_create(&single.thread, NULL, submit_waiting, &single),
                 0);
    await_room_waits(base, 2);
    /* Someone waits ahead: no room for a newcomer, though one fits. */
    cr_assert_eq(crew_submit_ex(pool, log_order_one, (void *)(intptr_t)3, NULL,
                                CREW_NONBLOCKING, &extra),
                 EAGAIN);
    cr_assert_null(extra);
    scn_hold_open(&hold);
    cr_assert_eq(pthread_join(batch.thread, NULL), 0);
    cr_assert_eq(pthread_join(single.thread, NULL), 0);
    cr_assert_eq(batch.err, 0);
    cr_assert_eq(single.err, 0);
    cr_assert_eq(crew_wait_all(batch.futures, 2, NULL), 0);
    cr_assert_eq(crew_future_wait(single.futures[0]), 0);
    /* One worker runs the injection queue in order: the batch first. */
    cr_assert_eq(atomic_load(&order_next), 3);
    cr_assert_eq(order_log[0], 2);
    cr_assert_eq(order_log[1], 2);
    cr_assert_eq(order_log[2], 1, "the single task overtook the batch");
    crew_future_release_all(batch.futures, 2);
    crew_future_release(single.futures[0]);
    crew_future_release_all(fillers, 2);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(faults, a_shutdown_wakes_a_batch_waiting_for_room_with_eshutdown)
{
    crew_pool_options o = {.threads = 1, .max_queued = 2};
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *filler;
    struct room_submitter batch = {.n = 2};
    unsigned long base = crew_test_room_waits();
    crew_pool *pool;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    batch.pool = pool;
    atomic_store(&order_next, 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    cr_assert_eq(crew_submit(pool, scn_hold_task, &hold, &filler), 0);
    cr_assert_eq(pthread_create(&batch.thread, NULL, submit_waiting, &batch),
                 0);
    await_room_waits(base, 1);
    scn_hold_open(&hold);
    /* The shutdown wakes the waiting batch; the pool is destroyed only
     * once no call on it is under way. */
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(pthread_join(batch.thread, NULL), 0);
    crew_pool_destroy(pool);
    /* Either the places freed first, and the batch ran whole, or the
     * shutdown came first, and none of it ran. */
    if (batch.err == 0) {
        cr_assert_eq(atomic_load(&order_next), 2);
        crew_future_release_all(batch.futures, 2);
    } else {
        cr_assert_eq(batch.err, ESHUTDOWN);
        cr_assert_eq(atomic_load(&order_next), 0);
        cr_assert_null(batch.futures[0]);
        cr_assert_null(batch.futures[1]);
    }
    crew_future_release(filler);
    crew_future_release(holder);
    scn_hold_destroy(&hold);
}

/* ------------------------------------------------------------------ */
/* Reductions                                                          */
/* ------------------------------------------------------------------ */

static int
sum_items(crew_task *task, size_t begin, size_t end, void *partial,
          void *calls)
{
    (void)task;
    atomic_fetch_add((atomic_uint *)calls, 1);
    for (size_t i = begin; i < end; i++)
        *(uint64_t *)partial += i;
    return 0;
}

static void
add_sums(void *into, const void *from, void *arg)
{
    (void)arg;
    *(uint64_t *)into += *(const uint64_t *)from;
}

CREW_TEST(faults, parallel_reduce_without_memory_runs_nothing_or_still_sums)
{
    crew_pool *pool = crew_test_pool(2);
    long k = 0;

    /* Its own block first: ENOMEM, nothing run, the result untouched.
     * Past it, the runners' (fewer runners: the caller does more). */
    for (bool fired = true; fired && k < MAX_ALLOCS; k++) {
        atomic_uint calls = 0;
        uint64_t sum = 7;
        int err;

        arm(k);
        err = crew_parallel_reduce(pool, 0, 10000, 10, sum_items, add_sums,
                                   &calls, &sum, sizeof(sum), NULL);
        fired = disarm();
        if (fired && k == 0) {
            cr_assert_eq(err, ENOMEM);
            cr_assert_eq(sum, 7, "the result was touched");
            cr_assert_eq(atomic_load(&calls), 0, "a chunk ran");
            continue;
        }
        cr_assert_eq(err, 0, "allocation %ld: %s", k, strerror(err));
        /* Each of the 1,000 partials started as a copy of the 7. */
        cr_assert_eq(sum, 7000 + 10000ull * 9999 / 2, "allocation %ld", k);
        cr_assert_eq(atomic_load(&calls), 1000);
    }
    cr_assert_gt(k, 1, "crew_parallel_reduce allocated nothing");
    cr_assert_lt(k, MAX_ALLOCS);
    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Groups                                                             */
/* ------------------------------------------------------------------ */

#define NOT_SET_GROUP ((crew_group *)(void *)&sentinel)
#define NOT_SET_INDEX ((size_t)77)

/* A member that spins until its group is cancelled (by its deadline). */
static int
until_cancelled(crew_task *task, void *arg)
{
    (void)arg;
    return scn_spin_until_cancelled(task) ? 0 : ETIMEDOUT;
}

/* Checks that a group made under a fault walk works: a member runs, and
 * with a deadline the group times out; then destroys it. */
static void
expect_group_works(crew_group *g, bool deadline)
{
    struct scn_counts tally = SCN_COUNTS_INIT;
    size_t index = NOT_SET_INDEX;

    cr_assert_eq(crew_group_submit(g,
                                   deadline ? until_cancelled : scn_count_task,
                                   &tally, NULL, 0, &index, NULL),
                 0);
    cr_assert_eq(index, 0);
    cr_assert_eq(crew_group_wait(g, NULL), deadline ? ETIMEDOUT : 0);
    cr_assert_eq(atomic_load(&tally.ran), deadline ? 0 : 1);
    crew_group_destroy(g);
    scn_gate_destroy(&tally.done);
}

struct group_create_walk {
    crew_pool *pool;
    crew_group_options options;
    crew_group *made; /* by the step whose fault did not fire */
};

static bool
group_create_step(long k, void *ctx)
{
    struct group_create_walk *w = ctx;
    crew_group *g = NOT_SET_GROUP;
    bool fired = CALL_ARMED(k, crew_group_create(&g, w->pool, &w->options));

    if (!fired) {
        cr_assert_not_null(g);
        w->made = g;
        return false;
    }
    cr_assert_null(g, "allocation %ld: *group was not cleared", k);
    expect_pool_runs(w->pool);
    return true;
}

CREW_TEST(faults, group_create_returns_enomem_at_every_allocation)
{
    struct group_create_walk w = {.pool = crew_test_pool(2)};

    /* The group's block, its per-thread counts. */
    cr_assert_eq(
        each_allocation("crew_group_create", MAX_ALLOCS, group_create_step, &w),
        2);
    expect_group_works(w.made, false);

    /* With a deadline, on a pool without a timer yet: the block, the
     * counts, the timer, its heap. A timer made before the heap failed
     * stays the pool's, for the next deadline. */
    w.options.timeout_ns = 1000000;
    cr_assert_eq(each_allocation("crew_group_create with a deadline",
                                 MAX_ALLOCS, group_create_step, &w),
                 4);
    expect_group_works(w.made, true);
    /* The timer exists now, its heap has room: the block, the counts. */
    cr_assert_eq(each_allocation("crew_group_create with a deadline, again",
                                 MAX_ALLOCS, group_create_step, &w),
                 2);
    expect_group_works(w.made, true);

    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
}

CREW_TEST(faults, group_create_without_a_timer_thread_is_enomem)
{
    crew_pool *pool = crew_test_pool(1);
    crew_group_options o = {.timeout_ns = 1000000};
    crew_group *g = NOT_SET_GROUP;
    int err;
    bool fired;

    crew_test_fail_thread(0);
    err = crew_group_create(&g, pool, &o);
    fired = crew_test_fault_fired();
    crew_test_fail_thread(-1);
    cr_assert(fired, "no thread was started for the deadline");
    cr_assert_eq(err, ENOMEM, "%d, not ENOMEM", err);
    cr_assert_null(g, "*group was not cleared");
    expect_pool_runs(pool);

    /* Without a deadline no thread is needed. */
    crew_test_fail_thread(0);
    err = crew_group_create(&g, pool, NULL);
    fired = crew_test_fault_fired();
    crew_test_fail_thread(-1);
    cr_assert(!fired, "a group without a deadline started a thread");
    cr_assert_eq(err, 0);
    expect_group_works(g, false);

    /* The next deadline starts the timer. */
    cr_assert_eq(crew_group_create(&g, pool, &o), 0);
    expect_group_works(g, true);
    crew_pool_destroy(pool);
}

/* A member that makes a child group with allocation k of its worker
 * armed. */
struct kid_walk {
    crew_pool *pool;
    long k;
    int err;
    bool fired;
    crew_group *kid;
};

static int
make_kid_armed(crew_task *task, void *arg)
{
    struct kid_walk *w = arg;

    (void)task;
    w->kid = NOT_SET_GROUP;
    arm(w->k);
    w->err = crew_group_create(&w->kid, w->pool, NULL);
    w->fired = disarm();
    return 0;
}

static bool
kid_create_step(long k, void *ctx)
{
    struct kid_walk *w = ctx;
    crew_group *parent = NULL;
    crew_future *member = NULL;
    crew_error *error = NOT_SET_ERROR;

    w->k = k;
    cr_assert_eq(crew_group_create(&parent, w->pool, NULL), 0);
    cr_assert_eq(
        crew_group_submit(parent, make_kid_armed, w, NULL, 0, NULL, &member),
        0);
    cr_assert_eq(crew_future_wait(member), 0);
    crew_future_release(member);
    /* Refused, the child is not the parent's: the parent resolves. */
    if (w->fired) {
        cr_assert_eq(crew_group_wait(parent, &error), 0);
        cr_assert_null(error);
        expect_enomem_if(true, w->err, k);
        cr_assert_null(w->kid, "allocation %ld: *group was not cleared", k);
        crew_group_destroy(parent);
        expect_pool_runs(w->pool);
        return true;
    }
    expect_enomem_if(false, w->err, k);
    /* Made, the child holds its parent open until it resolves. */
    cr_assert_eq(crew_group_close(parent, NULL), 0);
    cr_assert_eq(crew_group_wait(w->kid, NULL), 0);
    crew_group_destroy(w->kid);
    cr_assert_eq(crew_group_wait(parent, NULL), 0);
    crew_group_destroy(parent);
    return false;
}

CREW_TEST(faults, a_child_group_refused_for_memory_leaves_its_parent_alone)
{
    struct kid_walk w = {.pool = crew_test_pool(1)};

    cr_assert_eq(each_allocation("crew_group_create from a member", MAX_ALLOCS,
                                 kid_create_step, &w),
                 2);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
}

/* crew_group_submit() of scn_count_task with scn_count_free, from this
 * thread, with a future or without. */
struct group_submit_walk {
    crew_pool *pool;
    crew_group *group;
    struct scn_counts tally;
    unsigned accepted;
    bool with_future;
};

static bool
group_submit_step(long k, void *ctx)
{
    struct group_submit_walk *w = ctx;
    crew_future *f = NOT_SET_FUTURE;
    size_t index = NOT_SET_INDEX;
    bool fired =
        CALL_ARMED(k, crew_group_submit(w->group, scn_count_task, &w->tally,
                                        scn_count_free, 0, &index,
                                        w->with_future ? &f : NULL));

    if (!fired) {
        cr_assert_eq(index, w->accepted, "the indices skipped one");
        w->accepted++;
        if (w->with_future)
            crew_future_release(f);
        return false;
    }
    cr_assert_eq(index, NOT_SET_INDEX, "allocation %ld: *index was set", k);
    if (w->with_future)
        cr_assert_null(f, "allocation %ld: *future was not cleared", k);
    cr_assert_leq(atomic_load(&w->tally.ran), w->accepted,
                  "allocation %ld: a refused member ran", k);
    cr_assert_leq(atomic_load(&w->tally.freed), w->accepted,
                  "allocation %ld: a refused member's arg was freed", k);
    return true;
}

/* Once the group resolved: exactly the accepted members ran, each freed
 * its argument once. */
static void
expect_members_ran(struct group_submit_walk *w)
{
    crew_error *error = NOT_SET_ERROR;

    cr_assert_eq(crew_group_wait(w->group, &error), 0);
    cr_assert_null(error);
    cr_assert_eq(atomic_load(&w->tally.ran), w->accepted,
                 "%u members ran, %u were accepted", atomic_load(&w->tally.ran),
                 w->accepted);
    cr_assert_eq(atomic_load(&w->tally.freed), w->accepted);
    crew_group_destroy(w->group);
    scn_gate_destroy(&w->tally.done);
}

CREW_TEST(faults, group_submit_returns_enomem_and_the_member_never_runs)
{
    struct group_submit_walk w = {.pool = crew_test_pool(2),
                                  .tally = SCN_COUNTS_INIT};

    cr_assert_eq(crew_group_create(&w.group, w.pool, NULL), 0);
    for (int with_future = 0; with_future < 2; with_future++) {
        w.with_future = with_future != 0;
        each_allocation("crew_group_submit", MAX_ALLOCS, group_submit_step, &w);
    }
    expect_members_ran(&w);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
}

CREW_TEST(faults, group_submit_past_the_limit_returns_enomem_and_holds_none)
{
    struct group_submit_walk w = {.pool = crew_test_pool(2),
                                  .tally = SCN_COUNTS_INIT};
    crew_group_options o = {.limit = 1};
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder = NULL;

    cr_assert_eq(crew_group_create(&w.group, w.pool, &o), 0);
    /* The one place is taken: every member after it is held. */
    cr_assert_eq(crew_group_submit(w.group, scn_hold_task, &hold, NULL, 0, NULL,
                                   &holder),
                 0);
    cr_assert(scn_gate_reaches(&hold.entered, 1));
    w.accepted = 1; /* the holder's index */
    for (int with_future = 0; with_future < 2; with_future++) {
        w.with_future = with_future != 0;
        /* The member's block, nothing else: no queue takes it. */
        cr_assert_eq(each_allocation("crew_group_submit, held", MAX_ALLOCS,
                                     group_submit_step, &w),
                     1);
    }
    cr_assert_eq(atomic_load(&w.tally.ran), 0, "a held member ran");
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(holder), 0);
    crew_future_release(holder);
    w.accepted--; /* the holder is not scn_count_task */
    expect_members_ran(&w);
    crew_pool_destroy(w.pool);
    scn_hold_destroy(&hold);
}

/* A member that adds a member to its own group with allocation k of its
 * worker armed. */
struct member_submit {
    long k;
    struct scn_counts *tally;
    int err;
    bool fired;
    size_t index;
};

static int
add_member_armed(crew_task *task, void *arg)
{
    struct member_submit *s = arg;

    s->index = NOT_SET_INDEX;
    arm(s->k);
    s->err = crew_group_submit(crew_task_group(task), scn_count_task, s->tally,
                               scn_count_free, 0, &s->index, NULL);
    s->fired = disarm();
    return 0;
}

static bool
member_submit_step(long k, void *ctx)
{
    struct group_submit_walk *w = ctx;
    struct member_submit s = {.k = k, .tally = &w->tally};
    crew_group *g = NULL;

    cr_assert_eq(crew_group_create(&g, w->pool, NULL), 0);
    cr_assert_eq(
        crew_group_submit(g, add_member_armed, &s, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    crew_group_destroy(g);
    expect_enomem_if(s.fired, s.err, k);
    if (!s.fired) {
        cr_assert_eq(s.index, 1);
        w->accepted++;
    } else {
        cr_assert_eq(s.index, NOT_SET_INDEX, "*index was set");
    }
    /* The group has resolved: whatever was accepted has run. */
    cr_assert_eq(atomic_load(&w->tally.ran), w->accepted,
                 "allocation %ld: a refused member ran", k);
    cr_assert_eq(atomic_load(&w->tally.freed), w->accepted);
    return s.fired;
}

CREW_TEST(faults, group_submit_from_a_member_returns_enomem_too)
{
    struct group_submit_walk w = {.pool = crew_test_pool(1),
                                  .tally = SCN_COUNTS_INIT};

    each_allocation("crew_group_submit from a member", MAX_ALLOCS,
                    member_submit_step, &w);
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
    scn_gate_destroy(&w.tally.done);
}

/* A member that waits on a gate, then returns `code` (a bare code, or 0)
 * with the next allocation k of its worker armed: what its group does
 * with the outcome, on that worker, runs under the fault. */
struct gated_member {
    crew_future *gate;
    long k;
    int code;
};

static int
return_armed_after_gate(crew_task *task, void *arg)
{
    struct gated_member *m = arg;

    (void)task;
    crew_future_wait(m->gate);
    arm(m->k);
    return m->code;
}

static int
fail_at_once(crew_task *task, void *arg)
{
    (void)arg;
    return crew_task_fail(task, ENOENT, "first");
}

struct group_failure_walk {
    crew_pool *pool;
    bool saw_lost_message;
    bool saw_lost_aggregate;
};

/* A group of one member that fails with allocation k of its worker
 * armed: the member's default message, the group's record of the
 * failure, then the aggregate at resolution, in turn, run out. */
static bool
group_failure_step(long k, void *ctx)
{
    struct group_failure_walk *w = ctx;
    struct gated_member m = {.gate = crew_test_promise(), .k = k, .code = EIO};
    crew_group *g = NULL;
    crew_future *f = NULL, *done = NULL, *report = NULL;
    crew_error *error = NOT_SET_ERROR;
    bool fired = false;

    cr_assert_eq(crew_group_create(&g, w->pool, NULL), 0);
    cr_assert_eq(
        crew_group_submit(g, return_armed_after_gate, &m, NULL, 0, NULL, &f),
        0);
    /* Closed first: the member's resolution resolves the group too. */
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_promise_resolve(m.gate, NULL, NULL), 0);
    cr_assert_eq(crew_group_wait(g, &error), CREW_EAGGREGATE,
                 "allocation %ld: the group did not fail", k);
    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_eq(crew_submit(w->pool, report_fired, &fired, &report), 0);
    cr_assert_eq(crew_future_wait(report), 0);
    crew_future_release(report);

    cr_assert_eq(error, crew_future_error(done));
    cr_assert_eq(crew_error_code(error), CREW_EAGGREGATE);
    if (crew_error_count(error) == 0) {
        /* The failure could not be kept, or the aggregate not made: the
         * group still fails, CREW_EAGGREGATE, saying memory ran out. */
        cr_assert(fired, "an empty aggregate without a fault");
        w->saw_lost_aggregate = true;
        expect_lost(error, CREW_EAGGREGATE);
    } else {
        size_t at = SIZE_MAX;
        const crew_error *inner = crew_error_inner(error, 0, &at);

        cr_assert_eq(crew_error_count(error), 1);
        cr_assert_eq(at, 0);
        cr_assert_eq(inner, crew_future_error(f));
        cr_assert_eq(crew_error_code(inner), EIO);
        if (mentions_memory(inner)) {
            cr_assert(fired);
            w->saw_lost_message = true;
            expect_lost(inner, EIO);
        }
    }
    crew_error_release(error);
    crew_future_release(f);
    crew_future_release(done);
    crew_future_release(m.gate);
    crew_group_destroy(g);
    expect_pool_runs(w->pool);
    return fired;
}

CREW_TEST(faults, a_group_without_memory_for_a_failure_still_fails_aggregate)
{
    /* One worker: the report runs on the thread that was armed. */
    struct group_failure_walk w = {.pool = crew_test_pool(1)};

    each_allocation("a group member's failure", MAX_ALLOCS, group_failure_step,
                    &w);
    cr_assert(w.saw_lost_message, "no fault lost the member's message");
    cr_assert(w.saw_lost_aggregate, "no fault lost the group's aggregate");
    expect_pool_runs(w.pool);
    crew_pool_destroy(w.pool);
}

CREW_TEST(faults, a_group_without_memory_for_its_aggregate_says_so)
{
    /* One worker: the report runs on the thread that was armed. */
    crew_pool *pool = crew_test_pool(1);
    struct gated_member last = {.gate = crew_test_promise(), .k = 0};
    crew_future *first = NULL, *f = NULL, *report = NULL;
    crew_group *g = NULL;
    crew_error *error = NOT_SET_ERROR;
    bool fired = false;

    /* The first member's failure is recorded with memory to spare; the
     * last member succeeds with the next allocation armed, and the only
     * allocation its resolution makes is the group's aggregate. */
    cr_assert_eq(crew_group_create(&g, pool, NULL), 0);
    cr_assert_eq(
        crew_group_submit(g, fail_at_once, NULL, NULL, 0, NULL, &first), 0);
    cr_assert_eq(crew_future_wait(first), ENOENT);
    cr_assert_eq(
        crew_group_submit(g, return_armed_after_gate, &last, NULL, 0, NULL, &f),
        0);
    cr_assert_eq(crew_group_close(g, NULL), 0);
    cr_assert_eq(crew_promise_resolve(last.gate, NULL, NULL), 0);
    cr_assert_eq(crew_group_wait(g, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_submit(pool, report_fired, &fired, &report), 0);
    cr_assert_eq(crew_future_wait(report), 0);
    crew_future_release(report);
    cr_assert(fired, "resolving the group allocated nothing");
    expect_lost(error, CREW_EAGGREGATE);

    crew_error_release(error);
    crew_future_release(first);
    crew_future_release(f);
    crew_future_release(last.gate);
    crew_group_destroy(g);
    expect_pool_runs(pool);
    crew_pool_destroy(pool);
}

/*
 * Traces and the watchdog: ENOMEM at every allocation (the observer, its
 * slots, each worker's ring; the watchdog's state), EAGAIN when the
 * monitor thread cannot start; each changes nothing, and the call then
 * succeeds.
 */
static bool
trace_start_step(long k, void *ctx)
{
    crew_pool *pool = ctx;
    bool fired = CALL_ARMED(k, crew_trace_start(pool, 1000));

    /* Nothing records after a failure; a stop says so. */
    cr_assert_eq(crew_trace_stop(pool, NULL), fired ? EALREADY : 0,
                 "allocation %ld", k);
    return fired;
}

CREW_TEST(faults, trace_start_returns_enomem_at_every_allocation)
{
    crew_pool *pool = crew_test_pool(2);
    crew_latency latency;

    each_allocation("crew_trace_start", MAX_ALLOCS, trace_start_step, pool);
    /* Tasks run, and are timed by a start that goes through. */
    expect_pool_runs(pool);
    cr_assert_eq(crew_trace_start(pool, 10), 0);
    expect_pool_runs(pool);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    cr_assert_eq(crew_pool_latency_get(pool, &latency), 0);
    cr_assert_eq(latency.tasks, 1);
    crew_pool_destroy(pool);
}

static void
never_stuck(const crew_stuck *stuck, void *user)
{
    (void)stuck;
    (void)user;
}

static bool
watchdog_step(long k, void *ctx)
{
    crew_pool *pool = ctx;

    return CALL_ARMED(k, crew_pool_watchdog(pool, 1000000000, never_stuck,
                                            NULL));
}

CREW_TEST(faults, watchdog_returns_enomem_at_every_allocation)
{
    crew_pool *pool = crew_test_pool(1);

    each_allocation("crew_pool_watchdog", MAX_ALLOCS, watchdog_step, pool);
    expect_pool_runs(pool);
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    crew_pool_destroy(pool);
}

CREW_TEST(faults, watchdog_without_a_thread_is_eagain_and_sets_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    int err;
    bool fired;

    crew_test_fail_thread(0);
    err = crew_pool_watchdog(pool, 1000000000, never_stuck, NULL);
    fired = crew_test_fault_fired();
    crew_test_fail_thread(-1);
    cr_assert(fired, "no thread was started for the watchdog");
    cr_assert_eq(err, EAGAIN, "%d, not EAGAIN", err);
    expect_pool_runs(pool);
    /* Nothing was set: a removal has nothing to join; a new one starts. */
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    cr_assert_eq(crew_pool_watchdog(pool, 1000000000, never_stuck, NULL), 0);
    crew_pool_destroy(pool);
}
