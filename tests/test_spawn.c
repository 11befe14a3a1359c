/*
 * crew_spawn() and crew_sync(): fork-join without futures, one sentence
 * of API.md ("Fork-join without futures: spawn and sync") a test or more.
 *
 * What a task sees is recorded in a verdict (scenarios.h) and asserted
 * by the test's own thread once the task has resolved: Criterion's
 * assertions belong to that thread. Calls are "surely stolen" when the
 * pool's second worker is held (scn_hold_worker) until the spawner has
 * spawned, then let go: it finishes its holding task, looks for work and
 * finds the spawned calls in the spawner's queue, while the spawner waits
 * on a gate for a call to have run. A call that ran on another thread
 * than its spawner's before the spawner synced was taken by another
 * worker. Every wait for something that must happen is bounded
 * (SCN_PATIENCE_MS), so a call that never runs fails a test instead of
 * hanging it.
 *
 * The races of thieves and syncing owners, and leapfrogging, are the
 * scenarios of scenarios/spawn.c, which the TSan driver runs too.
 */
#include "common.h"
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The library's fault-injection hooks (tests/fault.h) exist only when it
 * was built with CREW_TEST_HOOKS, a library option the tests cannot see.
 * Declared weak, they are NULL when absent.
 */
__attribute__((weak)) void crew_test_fail_alloc(long k);
__attribute__((weak)) bool crew_test_fault_fired(void);

TestSuite(spawn, CREW_SUITE);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void
assert_verdict(struct scn_verdict *v)
{
    const char *why = scn_result(v);

    cr_assert_null(why, "%s", why != NULL ? why : "");
}

/* Submits fn(arg) to @p pool and waits for it; the caller releases. */
static crew_future *
run_task(crew_pool *pool, crew_fn fn, void *arg)
{
    crew_future *f = NULL;

    cr_assert_eq(crew_submit(pool, fn, arg, &f), 0);
    crew_future_wait(f);
    return f;
}

/* A pool of @p threads workers, each with a stack of @p bytes. */
static crew_pool *
pool_with_stack(unsigned threads, size_t bytes)
{
    crew_pool_options o = {.threads = threads, .stack_size = bytes};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    return p;
}

/*
 * A spawned call: records where and how it ran, optionally returns a
 * value and records a message, then returns `code`.
 */
struct call {
    int code;                /* returned */
    const char *message;     /* recorded with crew_task_fail, when set */
    void *value;             /* given to crew_task_return, when value_free */
    crew_free_fn value_free; /* set */
    atomic_uint ran;
    pthread_t thread;     /* the thread it ran on */
    bool saw_cancel;      /* crew_task_cancelled(task) as it ran */
    struct scn_gate done; /* one when it has run */
};

static void
call_init(struct call *c, int code)
{
    memset(c, 0, sizeof(*c));
    c->code = code;
    scn_gate_init(&c->done);
}

static int
call_run(crew_task *task, void *arg)
{
    struct call *c = arg;

    c->thread = pthread_self();
    c->saw_cancel = crew_task_cancelled(task);
    if (c->value_free != NULL)
        crew_task_return(task, c->value, c->value_free);
    if (c->message != NULL)
        crew_task_fail(task, EDOM, "%s", c->message);
    atomic_fetch_add(&c->ran, 1);
    scn_gate_add(&c->done, 1);
    return c->code;
}

/* ------------------------------------------------------------------ */
/* EINVAL                                                              */
/* ------------------------------------------------------------------ */

/*
 * "It never allocates and never fails but with EINVAL (NULL task, frame
 * or fn ...)", and, by the conventions, bad input changes nothing.
 */
struct nulls {
    struct scn_verdict v;
    struct call call;
};

static int
nulls_task(crew_task *task, void *arg)
{
    struct nulls *n = arg;
    crew_frame frame = {{NULL}};
    int err;

    SCN_CHECK(&n->v, crew_spawn(NULL, &frame, call_run, &n->call) == EINVAL,
              "crew_spawn with a NULL task is not EINVAL");
    SCN_CHECK(&n->v, crew_spawn(task, NULL, call_run, &n->call) == EINVAL,
              "crew_spawn with a NULL frame is not EINVAL");
    SCN_CHECK(&n->v, crew_spawn(task, &frame, NULL, &n->call) == EINVAL,
              "crew_spawn with a NULL fn is not EINVAL");
    SCN_CHECK(&n->v, atomic_load(&n->call.ran) == 0,
              "a refused crew_spawn ran its call");
    /* Nothing spawned: no frame to sync. */
    SCN_CHECK(&n->v, crew_sync(task, &frame) == EINVAL,
              "crew_sync of a frame never spawned is not EINVAL");
    SCN_CHECK(&n->v, crew_sync(NULL, &frame) == EINVAL,
              "crew_sync with a NULL task is not EINVAL");
    SCN_CHECK(&n->v, crew_sync(task, NULL) == EINVAL,
              "crew_sync with a NULL frame is not EINVAL");

    /* With a spawn outstanding, NULLs still sync nothing (one thread:
     * nobody else can have run the call). */
    err = crew_spawn(task, &frame, call_run, &n->call);
    if (!SCN_CHECK(&n->v, err == 0, "crew_spawn failed"))
        return 0;
    SCN_CHECK(&n->v, crew_sync(NULL, &frame) == EINVAL,
              "crew_sync with a NULL task is not EINVAL");
    SCN_CHECK(&n->v, crew_sync(task, NULL) == EINVAL,
              "crew_sync with a NULL frame is not EINVAL");
    SCN_CHECK(&n->v, atomic_load(&n->call.ran) == 0,
              "a refused crew_sync ran the call");
    SCN_CHECK(&n->v, crew_sync(task, &frame) == 3,
              "crew_sync did not return the call's code");
    SCN_CHECK(&n->v, atomic_load(&n->call.ran) == 1,
              "the call did not run exactly once");
    return 0;
}

CREW_TEST(spawn, null_task_frame_or_fn_is_einval_and_runs_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    struct nulls n = {.v = {NULL}};
    crew_future *f;

    call_init(&n.call, 3);
    f = run_task(pool, nulls_task, &n);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&n.v);
    crew_future_release(f);
    crew_pool_destroy(pool);
    scn_gate_destroy(&n.call.done);
}

/*
 * "... task not the calling thread's running task": another running
 * task's pointer, from a second task and from a thread outside the pool.
 * Task A spawns a call and waits on a gate; while it waits, B uses A's
 * task and frame, and so does the test's thread.
 */
struct foreign {
    struct scn_verdict v;
    _Atomic(crew_task *) a_task;
    _Atomic(crew_frame *) a_frame;
    struct scn_gate a_ready, b_done;
    struct call a_call; /* A's own spawn */
    struct call stray;  /* what the refused calls would have run */
    int a_synced;
};

static int
foreign_a(crew_task *task, void *arg)
{
    struct foreign *x = arg;
    crew_frame frame;

    if (!SCN_CHECK(&x->v, crew_spawn(task, &frame, call_run, &x->a_call) == 0,
                   "A's crew_spawn failed"))
        return 0;
    atomic_store(&x->a_task, task);
    atomic_store(&x->a_frame, &frame);
    scn_gate_add(&x->a_ready, 1);
    SCN_CHECK(&x->v, scn_gate_reaches(&x->b_done, 1), "B never finished");
    x->a_synced = crew_sync(task, &frame);
    return 0;
}

static int
foreign_b(crew_task *task, void *arg)
{
    struct foreign *x = arg;
    crew_task *a = atomic_load(&x->a_task);
    crew_frame *a_frame = atomic_load(&x->a_frame);
    crew_frame mine;

    SCN_CHECK(&x->v, crew_spawn(a, &mine, call_run, &x->stray) == EINVAL,
              "crew_spawn with another running task's pointer is not EINVAL");
    SCN_CHECK(&x->v, crew_sync(a, a_frame) == EINVAL,
              "crew_sync with another running task and its frame is not "
              "EINVAL");
    SCN_CHECK(&x->v, crew_sync(task, a_frame) == EINVAL,
              "crew_sync of another task's frame is not EINVAL");
    scn_gate_add(&x->b_done, 1);
    return 0;
}

CREW_TEST(spawn, another_running_tasks_pointer_is_einval)
{
    crew_pool *pool = crew_test_pool(2);
    struct foreign x = {.v = {NULL}, .a_synced = -1};
    crew_future *a, *b;
    crew_frame frame;

    scn_gate_init(&x.a_ready);
    scn_gate_init(&x.b_done);
    call_init(&x.a_call, 0);
    call_init(&x.stray, 0);
    cr_assert_eq(crew_submit(pool, foreign_a, &x, &a), 0);
    cr_assert(scn_gate_reaches(&x.a_ready, 1), "task A never started");
    /* The test's thread runs no task at all. */
    cr_assert_eq(crew_spawn(atomic_load(&x.a_task), &frame, call_run, &x.stray),
                 EINVAL);
    cr_assert_eq(crew_sync(atomic_load(&x.a_task), atomic_load(&x.a_frame)),
                 EINVAL);
    cr_assert_eq(crew_submit(pool, foreign_b, &x, &b), 0);
    cr_assert_eq(crew_future_wait(b), 0);
    cr_assert_eq(crew_future_wait(a), 0);
    assert_verdict(&x.v);
    cr_assert_eq(x.a_synced, 0, "A's own sync returned %d", x.a_synced);
    cr_assert_eq(atomic_load(&x.a_call.ran), 1);
    cr_assert_eq(atomic_load(&x.stray.ran), 0, "a refused call ran");
    crew_future_release(a);
    crew_future_release(b);
    crew_pool_destroy(pool);
    scn_gate_destroy(&x.a_ready);
    scn_gate_destroy(&x.b_done);
    scn_gate_destroy(&x.a_call.done);
    scn_gate_destroy(&x.stray.done);
}

/*
 * "... called by a running task ... with its own task": inside a spawned
 * call the running task is the call's `child`, not its spawner's.
 */
struct own_task {
    struct scn_verdict v;
    crew_task *spawner;
    struct call stray, mine;
};

static int
uses_spawners_task(crew_task *child, void *arg)
{
    struct own_task *o = arg;
    crew_frame frame;

    SCN_CHECK(&o->v,
              crew_spawn(o->spawner, &frame, call_run, &o->stray) == EINVAL,
              "a spawned call spawning with its spawner's task is not EINVAL");
    /* With its own, it works. */
    if (SCN_CHECK(&o->v, crew_spawn(child, &frame, call_run, &o->mine) == 0,
                  "a spawned call could not spawn with its own task"))
        SCN_CHECK(&o->v, crew_sync(child, &frame) == 0,
                  "the nested sync failed");
    return 0;
}

static int
spawns_misuser(crew_task *task, void *arg)
{
    struct own_task *o = arg;
    crew_frame frame;

    o->spawner = task;
    if (SCN_CHECK(&o->v, crew_spawn(task, &frame, uses_spawners_task, o) == 0,
                  "crew_spawn failed"))
        SCN_CHECK(&o->v, crew_sync(task, &frame) == 0, "crew_sync failed");
    return 0;
}

CREW_TEST(spawn, a_spawned_call_using_its_spawners_task_is_einval)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        crew_pool *pool = crew_test_pool(threads);
        struct own_task o = {.v = {NULL}};
        crew_future *f;

        call_init(&o.stray, 0);
        call_init(&o.mine, 0);
        f = run_task(pool, spawns_misuser, &o);
        cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
        assert_verdict(&o.v);
        cr_assert_eq(atomic_load(&o.stray.ran), 0);
        cr_assert_eq(atomic_load(&o.mine.ran), 1);
        crew_future_release(f);
        crew_pool_destroy(pool);
        scn_gate_destroy(&o.stray.done);
        scn_gate_destroy(&o.mine.done);
    }
}

/* ------------------------------------------------------------------ */
/* Spawning and syncing on one thread                                  */
/* ------------------------------------------------------------------ */

/*
 * "... makes fn(child, arg) available to the pool's other workers and
 * returns 0 at once"; "If no other worker took the call, it runs it right
 * there." On a pool of one thread nobody else can take it: it has not run
 * when crew_spawn returns, and crew_sync runs it on the spawner's thread.
 */
struct deferred {
    struct scn_verdict v;
    struct call call;
    pthread_t thread;
    unsigned ran_at_spawn;
    int synced;
};

static int
deferred_task(crew_task *task, void *arg)
{
    struct deferred *d = arg;
    crew_frame frame;

    d->thread = pthread_self();
    if (!SCN_CHECK(&d->v, crew_spawn(task, &frame, call_run, &d->call) == 0,
                   "crew_spawn did not return 0"))
        return 0;
    d->ran_at_spawn = atomic_load(&d->call.ran);
    d->synced = crew_sync(task, &frame);
    return 0;
}

CREW_TEST(spawn, on_one_thread_spawn_returns_first_and_sync_runs_the_call)
{
    crew_pool *pool = crew_test_pool(1);
    struct deferred d = {.v = {NULL}, .synced = -1};
    crew_future *f;

    call_init(&d.call, 0);
    f = run_task(pool, deferred_task, &d);
    assert_verdict(&d.v);
    cr_assert_eq(d.ran_at_spawn, 0, "the call ran inside crew_spawn");
    cr_assert_eq(d.synced, 0);
    cr_assert_eq(atomic_load(&d.call.ran), 1);
    cr_assert(pthread_equal(d.call.thread, d.thread),
              "the sync did not run the call on the spawner's thread");
    crew_future_release(f);
    crew_pool_destroy(pool);
    scn_gate_destroy(&d.call.done);
}

/*
 * "Spawns are synced in the reverse order of their spawning ...:
 * crew_sync on any other frame is EINVAL and syncs nothing." One thread:
 * a call that has not been synced has not run.
 */
struct order {
    struct scn_verdict v;
    struct call first, second;
};

static int
order_task(crew_task *task, void *arg)
{
    struct order *o = arg;
    crew_frame f1, f2, never;

    if (!SCN_CHECK(&o->v, crew_spawn(task, &f1, call_run, &o->first) == 0,
                   "crew_spawn failed"))
        return 0;
    if (!SCN_CHECK(&o->v, crew_spawn(task, &f2, call_run, &o->second) == 0,
                   "crew_spawn failed")) {
        crew_sync(task, &f1);
        return 0;
    }
    SCN_CHECK(&o->v, crew_sync(task, &f1) == EINVAL,
              "crew_sync of the older spawn first is not EINVAL");
    SCN_CHECK(&o->v, crew_sync(task, &never) == EINVAL,
              "crew_sync of a frame never spawned is not EINVAL");
    SCN_CHECK(&o->v,
              atomic_load(&o->first.ran) == 0 &&
                  atomic_load(&o->second.ran) == 0,
              "a refused crew_sync ran a call");
    SCN_CHECK(&o->v, crew_sync(task, &f2) == 22,
              "the newest spawn's sync did not return its call's code");
    SCN_CHECK(&o->v, atomic_load(&o->second.ran) == 1,
              "the newest call did not run once");
    SCN_CHECK(&o->v, atomic_load(&o->first.ran) == 0,
              "syncing the newest spawn ran the older one");
    SCN_CHECK(&o->v, crew_sync(task, &f2) == EINVAL,
              "a frame synced twice is not EINVAL");
    SCN_CHECK(&o->v, crew_sync(task, &f1) == 11,
              "the older spawn's sync did not return its call's code");
    SCN_CHECK(&o->v, atomic_load(&o->first.ran) == 1,
              "the older call did not run once");
    SCN_CHECK(&o->v, crew_sync(task, &f1) == EINVAL,
              "crew_sync with nothing left to sync is not EINVAL");
    return 0;
}

CREW_TEST(spawn, a_sync_out_of_order_is_einval_and_syncs_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    struct order o = {.v = {NULL}};
    crew_future *f;

    call_init(&o.first, 11);
    call_init(&o.second, 22);
    f = run_task(pool, order_task, &o);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&o.v);
    crew_future_release(f);
    crew_pool_destroy(pool);
    scn_gate_destroy(&o.first.done);
    scn_gate_destroy(&o.second.done);
}

/* ------------------------------------------------------------------ */
/* What crew_sync returns, stolen or not                               */
/* ------------------------------------------------------------------ */

static const int codes[] = {0, EDOM, -7, 12345, ECANCELED, INT_MAX, 0, EIO};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

struct returns {
    struct scn_verdict v;
    struct scn_hold *hold; /* set: a thief takes some calls */
    struct call calls[NCODES];
    int synced[NCODES];
    pthread_t thread;
};

static int
returns_task(crew_task *task, void *arg)
{
    struct returns *r = arg;
    crew_frame frames[NCODES];
    size_t n;

    r->thread = pthread_self();
    for (n = 0; n < NCODES; n++)
        if (!SCN_CHECK(&r->v,
                       crew_spawn(task, &frames[n], call_run, &r->calls[n]) ==
                           0,
                       "crew_spawn failed"))
            break;
    if (r->hold != NULL) {
        /* Nothing synced yet: whatever runs now was taken by the thief. */
        scn_hold_open(r->hold);
        SCN_CHECK(&r->v, scn_gate_reaches(&r->calls[0].done, 1),
                  "no other worker took the oldest spawned call");
    }
    while (n-- > 0)
        r->synced[n] = crew_sync(task, &frames[n]);
    return 0;
}

static void
check_returns(unsigned threads)
{
    crew_pool *pool = crew_test_pool(threads);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct returns r = {.v = {NULL}};
    crew_future *holder = NULL, *f;

    for (size_t i = 0; i < NCODES; i++) {
        call_init(&r.calls[i], codes[i]);
        r.synced[i] = -12345;
    }
    if (threads > 1) {
        cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
        r.hold = &hold;
    }
    f = run_task(pool, returns_task, &r);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&r.v);
    for (size_t i = 0; i < NCODES; i++) {
        cr_assert_eq(r.synced[i], codes[i], "call %zu returned %d, synced %d",
                     i, codes[i], r.synced[i]);
        cr_assert_eq(atomic_load(&r.calls[i].ran), 1);
    }
    if (threads > 1)
        cr_assert_not(pthread_equal(r.calls[0].thread, r.thread),
                      "the oldest call was not stolen");
    crew_future_release(f);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    for (size_t i = 0; i < NCODES; i++)
        scn_gate_destroy(&r.calls[i].done);
}

/* "crew_sync returns what the spawned fn returned" (run by the sync). */
CREW_TEST(spawn, sync_returns_what_fn_returned)
{
    check_returns(1);
}

/* The same when another worker took the call. */
CREW_TEST(spawn, sync_returns_what_a_stolen_fn_returned)
{
    check_returns(2);
}

/* ------------------------------------------------------------------ */
/* Every kind of task spawns                                           */
/* ------------------------------------------------------------------ */

/* Squares: a spawned call writes i * i into its slot, plainly. */
struct square {
    size_t i;
    uint64_t *out;
};

static int
square_run(crew_task *task, void *arg)
{
    struct square *s = arg;

    (void)task;
    s->out[s->i] = (uint64_t)s->i * s->i;
    return 0;
}

/* Spawns a square for each item of [begin, end) (at most 16), then syncs
 * them; returns the first error. */
static int
spawn_squares(crew_task *task, size_t begin, size_t end, uint64_t *out)
{
    crew_frame frames[16];
    struct square squares[16];
    size_t n = 0;
    int err = 0;

    for (size_t i = begin; i < end && n < 16; i++, n++) {
        squares[n] = (struct square){.i = i, .out = out};
        err = crew_spawn(task, &frames[n], square_run, &squares[n]);
        if (err != 0)
            break;
    }
    while (n-- > 0) {
        int e = crew_sync(task, &frames[n]);
        if (err == 0)
            err = e;
    }
    return err;
}

/* "called by a running task (a submitted task, ...)" */
struct squares_arg {
    size_t n;
    uint64_t *out;
};

static int
squares_task(crew_task *task, void *arg)
{
    struct squares_arg *a = arg;

    return spawn_squares(task, 0, a->n, a->out);
}

static void
assert_squares(const uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out[i], (uint64_t)i * i, "slot %zu holds %llu", i,
                     (unsigned long long)out[i]);
}

CREW_TEST(spawn, from_a_submitted_task)
{
    crew_pool *pool = crew_test_pool(2);
    uint64_t out[16] = {0};
    struct squares_arg a = {16, out};
    crew_future *f = run_task(pool, squares_task, &a);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_squares(out, 16);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

/* "... a continuation ..." */
static int
squares_then(crew_task *task, crew_future *input, void *arg)
{
    (void)input;
    return squares_task(task, arg);
}

CREW_TEST(spawn, from_a_continuation)
{
    crew_pool *pool = crew_test_pool(2);
    uint64_t out[16] = {0};
    struct squares_arg a = {16, out};
    crew_future *input = crew_test_promise(), *f = NULL;

    cr_assert_eq(crew_then(pool, input, squares_then, &a, NULL, &f), 0);
    cr_assert_eq(crew_promise_resolve(input, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    assert_squares(out, 16);
    crew_future_release(f);
    crew_future_release(input);
    crew_pool_destroy(pool);
}

/* "... a parallel_for ... chunk": a loop started by a task, so that
 * every chunk runs on one of the pool's workers. */
struct loop {
    size_t n;
    uint64_t *out;
    int result;
};

static int
squares_chunk(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct loop *l = arg;

    return spawn_squares(task, begin, end, l->out);
}

static int
loop_task(crew_task *task, void *arg)
{
    struct loop *l = arg;

    l->result = crew_parallel_for(crew_task_pool(task), 0, l->n, 7,
                                  squares_chunk, l, NULL);
    return 0;
}

CREW_TEST(spawn, from_a_parallel_for_chunk_on_a_worker)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        crew_pool *pool = crew_test_pool(threads);
        struct loop l = {.n = 1000, .result = -1};
        crew_future *f;

        l.out = calloc(l.n, sizeof(*l.out));
        cr_assert_not_null(l.out);
        f = run_task(pool, loop_task, &l);
        cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
        cr_assert_eq(l.result, 0, "%u threads: the loop returned %d", threads,
                     l.result);
        assert_squares(l.out, l.n);
        crew_future_release(f);
        free(l.out);
        crew_pool_destroy(pool);
    }
}

/*
 * "When ... the caller is not one of the pool's workers (a chunk run by
 * the thread that called crew_parallel_for), fn runs at once, before
 * crew_spawn returns." Both workers are held: the calling thread runs
 * every chunk. A chunk's call spawns again: that call runs on the same
 * thread, so inline too.
 */
struct inline_loop {
    pthread_t caller;
    atomic_size_t chunks, on_caller;
    atomic_size_t deferred; /* calls that had not run when spawn returned */
    atomic_size_t bad;      /* spawn or sync returned the wrong thing */
    atomic_size_t calls;
};

static int
inline_leaf(crew_task *task, void *arg)
{
    struct inline_loop *l = arg;

    (void)task;
    atomic_fetch_add(&l->calls, 1);
    return 9;
}

static int
inline_call(crew_task *task, void *arg)
{
    struct inline_loop *l = arg;
    crew_frame frame;
    size_t before = atomic_load(&l->calls);

    atomic_fetch_add(&l->calls, 1);
    if (crew_spawn(task, &frame, inline_leaf, l) != 0) {
        atomic_fetch_add(&l->bad, 1);
        return 0;
    }
    if (atomic_load(&l->calls) != before + 2)
        atomic_fetch_add(&l->deferred, 1);
    if (crew_sync(task, &frame) != 9)
        atomic_fetch_add(&l->bad, 1);
    return 8;
}

static int
inline_chunk(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct inline_loop *l = arg;

    (void)begin;
    (void)end;
    atomic_fetch_add(&l->chunks, 1);
    if (pthread_equal(pthread_self(), l->caller)) {
        crew_frame frame;
        size_t before = atomic_load(&l->calls);

        atomic_fetch_add(&l->on_caller, 1);
        if (crew_spawn(task, &frame, inline_call, l) != 0) {
            atomic_fetch_add(&l->bad, 1);
            return 0;
        }
        if (atomic_load(&l->calls) != before + 2)
            atomic_fetch_add(&l->deferred, 1);
        if (crew_sync(task, &frame) != 8)
            atomic_fetch_add(&l->bad, 1);
    }
    return 0;
}

CREW_TEST(spawn, from_a_chunk_on_the_calling_thread_the_call_runs_inline)
{
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_pool *pool = crew_test_pool(2);
    struct inline_loop l = {.caller = pthread_self()};
    crew_future *held[2];

    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held[0]), 0);
    cr_assert_eq(scn_hold_worker(pool, &hold, 2, &held[1]), 0);
    cr_assert_eq(crew_parallel_for(pool, 0, 100, 10, inline_chunk, &l, NULL),
                 0);
    cr_assert_eq(atomic_load(&l.chunks), 10);
    cr_assert_eq(atomic_load(&l.on_caller), 10,
                 "with both workers held, the caller ran %zu chunks of 10",
                 atomic_load(&l.on_caller));
    cr_assert_eq(atomic_load(&l.deferred), 0,
                 "%zu calls had not run when crew_spawn returned",
                 atomic_load(&l.deferred));
    cr_assert_eq(atomic_load(&l.bad), 0);
    cr_assert_eq(atomic_load(&l.calls), 20);
    scn_hold_open(&hold);
    scn_release_all(held, 2);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

/* "... a parallel_reduce chunk ...": each chunk sums its first half in a
 * spawned call, its second half itself. */
struct half {
    size_t begin, end;
    uint64_t sum;
};

static int
sum_half(crew_task *task, void *arg)
{
    struct half *h = arg;

    (void)task;
    for (size_t i = h->begin; i < h->end; i++)
        h->sum += i;
    return 0;
}

static int
reduce_chunk(crew_task *task, size_t begin, size_t end, void *partial,
             void *arg)
{
    size_t mid = begin + (end - begin) / 2;
    struct half first = {begin, mid, 0}, second = {mid, end, 0};
    crew_frame frame;
    int err;

    (void)arg;
    err = crew_spawn(task, &frame, sum_half, &first);
    if (err != 0)
        return crew_task_fail(task, EPROTO, "crew_spawn returned %d", err);
    sum_half(task, &second);
    err = crew_sync(task, &frame);
    if (err != 0)
        return crew_task_fail(task, EPROTO, "crew_sync returned %d", err);
    *(uint64_t *)partial += first.sum + second.sum;
    return 0;
}

static void
add_u64(void *into, const void *from, void *arg)
{
    (void)arg;
    *(uint64_t *)into += *(const uint64_t *)from;
}

CREW_TEST(spawn, from_a_parallel_reduce_chunk)
{
    crew_pool *pool = crew_test_pool(2);
    const size_t n = 100000;
    uint64_t sum = 0;
    crew_error *error = NULL;

    cr_assert_eq(crew_parallel_reduce(pool, 0, n, 97, reduce_chunk, add_u64,
                                      NULL, &sum, sizeof(sum), &error),
                 0, "%s", error != NULL ? crew_error_message(error) : "");
    cr_assert_eq(sum, (uint64_t)n * (n - 1) / 2);
    crew_pool_destroy(pool);
}

/* ------------------------------------------------------------------ */
/* Recursion: a spawned call spawns again                              */
/* ------------------------------------------------------------------ */

/*
 * fib by spawn and sync: even n spawns both halves and syncs them in
 * reverse; odd n spawns n - 1 and computes n - 2 itself. Every call
 * but the first is a spawned call that spawns again.
 */
struct fib {
    unsigned n;
    uint64_t result;
    atomic_size_t *calls;
};

static int
fib_run(crew_task *task, void *arg)
{
    struct fib *f = arg;
    struct fib a, b;
    crew_frame fa, fb;
    int ea, eb;

    atomic_fetch_add_explicit(f->calls, 1, memory_order_relaxed);
    if (f->n < 2) {
        f->result = f->n;
        return 0;
    }
    a = (struct fib){f->n - 1, 0, f->calls};
    b = (struct fib){f->n - 2, 0, f->calls};
    if (crew_spawn(task, &fa, fib_run, &a) != 0)
        return EPROTO;
    if (f->n % 2 == 0) {
        if (crew_spawn(task, &fb, fib_run, &b) != 0) {
            crew_sync(task, &fa);
            return EPROTO;
        }
        eb = crew_sync(task, &fb);
    } else {
        eb = fib_run(task, &b);
    }
    ea = crew_sync(task, &fa);
    f->result = a.result + b.result;
    return ea != 0 ? ea : eb;
}

static uint64_t
fib_serial(unsigned n)
{
    uint64_t a = 0, b = 1;

    for (unsigned i = 0; i < n; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static void
check_fib(unsigned threads)
{
    const unsigned n = 25;
    crew_pool *pool = crew_test_pool(threads);
    atomic_size_t calls = 0;
    struct fib top = {n, 0, &calls};
    crew_future *f = run_task(pool, fib_run, &top);

    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED, "%s",
                 crew_error_message(crew_future_error(f)));
    cr_assert_eq(top.result, fib_serial(n), "fib(%u) = %llu, not %llu", n,
                 (unsigned long long)top.result,
                 (unsigned long long)fib_serial(n));
    /* fib(n) makes 2 fib(n + 1) - 1 calls: each exactly once. */
    cr_assert_eq(atomic_load(&calls), 2 * fib_serial(n + 1) - 1);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(spawn, fib_on_one_thread)
{
    check_fib(1);
}

CREW_TEST(spawn, fib_on_two_threads)
{
    check_fib(2);
}

/*
 * A chain 10,000 spawns deep on one thread: each link spawns the next
 * and returns crew_sync(task, &frame). RELIABILITY.md: ASan's frames are
 * large, so the worker gets a 64 MiB stack. The failing chain carries
 * the leaf's code and message up every link to the task's future.
 */
#define CHAIN_DEPTH 10000

struct chain {
    size_t depth;
    int leaf_code;
    atomic_uint *ran; /* per link */
};

struct link {
    struct chain *chain;
    size_t depth;
};

static int
link_run(crew_task *task, void *arg)
{
    struct link *l = arg;
    crew_frame frame;

    atomic_fetch_add(&l->chain->ran[l->depth], 1);
    if (l->depth == l->chain->depth)
        return l->chain->leaf_code == 0
                   ? 0
                   : crew_task_fail(task, l->chain->leaf_code,
                                    "the leaf at depth %zu", l->depth);
    if (crew_spawn(task, &frame, link_run, l + 1) != 0)
        return EPROTO;
    return crew_sync(task, &frame);
}

static void
check_chain(int leaf_code)
{
    crew_pool *pool = pool_with_stack(1, (size_t)64 << 20);
    struct chain c = {.depth = CHAIN_DEPTH, .leaf_code = leaf_code};
    struct link *links = calloc(CHAIN_DEPTH + 1, sizeof(*links));
    crew_future *f;

    c.ran = calloc(CHAIN_DEPTH + 1, sizeof(*c.ran));
    cr_assert(links != NULL && c.ran != NULL);
    for (size_t d = 0; d <= CHAIN_DEPTH; d++)
        links[d] = (struct link){&c, d};
    f = run_task(pool, link_run, &links[0]);
    for (size_t d = 0; d <= CHAIN_DEPTH; d++)
        cr_assert_eq(atomic_load(&c.ran[d]), 1, "link %zu ran %u times", d,
                     atomic_load(&c.ran[d]));
    if (leaf_code == 0) {
        cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED, "%s",
                     crew_error_message(crew_future_error(f)));
    } else {
        cr_assert_eq(crew_future_state(f), CREW_FAILED);
        cr_assert_eq(crew_error_code(crew_future_error(f)), leaf_code);
        cr_assert_str_eq(crew_error_message(crew_future_error(f)),
                         "the leaf at depth 10000");
    }
    crew_future_release(f);
    crew_pool_destroy(pool);
    free(links);
    free(c.ran);
}

CREW_TEST(spawn, a_chain_ten_thousand_deep_on_one_thread)
{
    check_chain(0);
}

CREW_TEST(spawn, a_failure_climbs_a_chain_ten_thousand_deep)
{
    check_chain(EDOM);
}

/* ------------------------------------------------------------------ */
/* Codes, messages and values handed back                              */
/* ------------------------------------------------------------------ */

enum then_return {
    RETURN_SYNC,          /* return crew_sync(task, &frame) */
    RETURN_EIO_IF_FAILED, /* return synced != 0 ? EIO : 0 */
    RETURN_ZERO,          /* return 0 whatever the sync returned */
    RETURN_EIO,           /* return EIO whatever the sync returned */
};

/* One spawner, one call: the spawner may record a message and return a
 * value of its own first; a thief may run the call. */
struct spawner {
    struct scn_verdict v;
    struct scn_hold *hold; /* set: wait for another worker to run it */
    struct call call;
    const char *own_message; /* recorded before the spawn, when set */
    void *own_value;         /* returned before the spawn, when set */
    enum then_return how;
    int synced;
    unsigned values_freed_at_sync; /* scn_values_freed right after */
    pthread_t thread;
};

static int
spawner_run(crew_task *task, void *arg)
{
    struct spawner *s = arg;
    crew_frame frame;

    s->thread = pthread_self();
    if (s->own_message != NULL)
        crew_task_fail(task, EIO, "%s", s->own_message);
    if (s->own_value != NULL)
        crew_task_return(task, s->own_value, NULL);
    if (!SCN_CHECK(&s->v, crew_spawn(task, &frame, call_run, &s->call) == 0,
                   "crew_spawn failed"))
        return EPROTO;
    if (s->hold != NULL) {
        scn_hold_open(s->hold);
        SCN_CHECK(&s->v, scn_gate_reaches(&s->call.done, 1),
                  "no other worker took the call");
    }
    s->synced = crew_sync(task, &frame);
    s->values_freed_at_sync = atomic_load(&scn_values_freed);
    if (s->hold != NULL)
        SCN_CHECK(&s->v, !pthread_equal(s->call.thread, s->thread),
                  "the call ran on its spawner's thread");
    switch (s->how) {
    case RETURN_SYNC:
        return s->synced;
    case RETURN_EIO_IF_FAILED:
        return s->synced != 0 ? EIO : 0;
    case RETURN_ZERO:
        return 0;
    case RETURN_EIO:
        return EIO;
    }
    return EPROTO;
}

/*
 * Runs @p s on a pool of @p threads (2: the call is stolen) and returns
 * the spawner's resolved future; the verdict is asserted.
 */
static crew_future *
run_spawner(struct spawner *s, unsigned threads)
{
    crew_pool *pool = crew_test_pool(threads);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder = NULL, *f;

    s->hold = NULL;
    s->synced = -12345;
    if (threads > 1) {
        cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
        s->hold = &hold;
    }
    f = run_task(pool, spawner_run, s);
    assert_verdict(&s->v);
    cr_assert_eq(atomic_load(&s->call.ran), 1);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    s->hold = NULL;
    return f;
}

static void
spawner_init(struct spawner *s, int code, const char *message)
{
    memset(s, 0, sizeof(*s));
    call_init(&s->call, code);
    s->call.message = message;
}

static void
assert_failed(crew_future *f, int code, const char *message)
{
    const crew_error *e = crew_future_error(f);

    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(crew_error_code(e), code, "code %d, not %d",
                 crew_error_code(e), code);
    cr_assert_str_eq(crew_error_message(e), message);
}

/*
 * "when the call fails (returns nonzero), crew_sync hands its code back
 * and its message to the spawner as if the spawner had recorded it,
 * replacing whatever the spawner had recorded ... so `return
 * crew_sync(task, &frame);` passes code and message on."
 */
CREW_TEST(spawn, return_sync_passes_a_failing_calls_code_and_message)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        struct spawner s;
        crew_future *f;

        spawner_init(&s, ENOENT, "the call says no");
        s.own_message = "the spawner's own";
        s.how = RETURN_SYNC;
        f = run_spawner(&s, threads);
        cr_assert_eq(s.synced, ENOENT);
        assert_failed(f, ENOENT, "the call says no");
        crew_future_release(f);
        scn_gate_destroy(&s.call.done);
    }
}

/* "... as if the spawner had recorded it": the spawner may return a
 * code of its own, the message stays the call's. */
CREW_TEST(spawn, the_handed_message_is_the_spawners_recorded_one)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        struct spawner s;
        crew_future *f;

        spawner_init(&s, ENOENT, "the call says no");
        s.own_message = "the spawner's own";
        s.how = RETURN_EIO_IF_FAILED;
        f = run_spawner(&s, threads);
        assert_failed(f, EIO, "the call says no");
        crew_future_release(f);
        scn_gate_destroy(&s.call.done);
    }
}

/* A recorded message decides nothing: the spawner that returns 0 after a
 * failed sync succeeds. */
CREW_TEST(spawn, a_spawner_returning_zero_after_a_failed_sync_succeeds)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        struct spawner s;
        crew_future *f;

        spawner_init(&s, ENOENT, "the call says no");
        s.how = RETURN_ZERO;
        f = run_spawner(&s, threads);
        cr_assert_eq(s.synced, ENOENT);
        cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
        crew_future_release(f);
        scn_gate_destroy(&s.call.done);
    }
}

/*
 * "(a failing call that recorded none clears it, so the default message
 * applies)": crew_strerror(code) for a code it knows, else "error <code>".
 */
CREW_TEST(spawn, a_failing_call_without_a_message_clears_the_spawners)
{
    static const struct {
        int code;
        const char *message; /* NULL: crew_strerror(code) */
    } cases[] = {{ENOENT, NULL}, {54321, "error 54321"}};

    for (unsigned threads = 1; threads <= 2; threads++) {
        for (size_t k = 0; k < 2; k++) {
            struct spawner s;
            crew_future *f;

            spawner_init(&s, cases[k].code, NULL);
            s.own_message = "the spawner's own";
            s.how = RETURN_SYNC;
            f = run_spawner(&s, threads);
            assert_failed(f, cases[k].code,
                          cases[k].message != NULL ? cases[k].message
                                                   : crew_strerror(ENOENT));
            crew_future_release(f);
            scn_gate_destroy(&s.call.done);
        }
    }
}

/* "A call that returns 0 passes nothing": the spawner's recorded message
 * stays, and a message the call recorded goes nowhere. */
CREW_TEST(spawn, a_call_returning_zero_passes_nothing)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        struct spawner s;
        crew_future *f;

        spawner_init(&s, 0, "recorded by a call that succeeded");
        s.own_message = "the spawner's own";
        s.how = RETURN_EIO;
        f = run_spawner(&s, threads);
        cr_assert_eq(s.synced, 0);
        assert_failed(f, EIO, "the spawner's own");
        crew_future_release(f);
        scn_gate_destroy(&s.call.done);

        /* Without a message of the spawner's own: the default one. */
        spawner_init(&s, 0, "recorded by a call that succeeded");
        s.how = RETURN_EIO;
        f = run_spawner(&s, threads);
        assert_failed(f, EIO, crew_strerror(EIO));
        crew_future_release(f);
        scn_gate_destroy(&s.call.done);
    }
}

/*
 * "A value given to crew_task_return in a spawned call has nowhere to go
 * and is released at once": its value_free has run when crew_sync
 * returns, whether the call succeeded or failed, and the spawner's own
 * value is untouched.
 */
CREW_TEST(spawn, a_value_a_call_returns_is_released_at_once)
{
    static int marker, own;
    unsigned expect = 0;

    for (unsigned threads = 1; threads <= 2; threads++) {
        for (int code = 0; code <= EDOM; code += EDOM) {
            struct spawner s;
            crew_future *f;

            spawner_init(&s, code, NULL);
            s.call.value = &marker;
            s.call.value_free = scn_value_free;
            s.own_value = &own;
            s.how = RETURN_ZERO;
            f = run_spawner(&s, threads);
            expect++;
            cr_assert_eq(s.values_freed_at_sync, expect,
                         "the call's value was not released by the sync");
            cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
            cr_assert_eq(crew_future_result(f), &own,
                         "the call's value replaced the spawner's");
            crew_future_release(f);
            cr_assert_eq(atomic_load(&scn_values_freed), expect,
                         "released twice");
            scn_gate_destroy(&s.call.done);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Cancellation                                                        */
/* ------------------------------------------------------------------ */

/*
 * "A spawned call always runs, even after its spawner's cancellation ...
 * (it then sees crew_task_cancelled true). It acts for its spawner: ...
 * the same cancellation." The spawner's future is cancelled while its
 * calls run (on both workers): each call, and each call's own call, sees
 * it; a call spawned after the cancellation still runs and sees it.
 */
#define CANCEL_KIDS 4

struct cancel_case {
    struct scn_verdict v;
    struct scn_gate entered;
    struct call grandchildren[CANCEL_KIDS];
    struct call later;
    atomic_uint saw_cancel;
    atomic_uint ran;
};

struct cancel_kid {
    struct cancel_case *c;
    size_t i;
};

static int
waits_for_cancel(crew_task *task, void *arg)
{
    struct cancel_kid *k = arg;
    struct cancel_case *c = k->c;
    crew_frame frame;

    atomic_fetch_add(&c->ran, 1);
    scn_gate_add(&c->entered, 1);
    if (scn_spin_until_cancelled(task))
        atomic_fetch_add(&c->saw_cancel, 1);
    if (SCN_CHECK(&c->v,
                  crew_spawn(task, &frame, call_run, &c->grandchildren[k->i]) ==
                      0,
                  "a spawned call's crew_spawn failed"))
        SCN_CHECK(&c->v, crew_sync(task, &frame) == 0,
                  "a spawned call's crew_sync failed");
    return 0;
}

static int
cancel_spawner(crew_task *task, void *arg)
{
    struct cancel_case *c = arg;
    struct cancel_kid kids[CANCEL_KIDS];
    crew_frame frames[CANCEL_KIDS], later;
    size_t n;

    for (n = 0; n < CANCEL_KIDS; n++) {
        kids[n] = (struct cancel_kid){c, n};
        if (!SCN_CHECK(
                &c->v,
                crew_spawn(task, &frames[n], waits_for_cancel, &kids[n]) == 0,
                "crew_spawn failed"))
            break;
    }
    while (n-- > 0)
        SCN_CHECK(&c->v, crew_sync(task, &frames[n]) == 0, "crew_sync failed");
    if (SCN_CHECK(&c->v, crew_spawn(task, &later, call_run, &c->later) == 0,
                  "crew_spawn after the cancellation failed"))
        SCN_CHECK(&c->v, crew_sync(task, &later) == 0,
                  "crew_sync after the cancellation failed");
    return crew_task_cancelled(task) ? ECANCELED : 0;
}

CREW_TEST(spawn, calls_see_their_spawners_cancellation_and_still_run)
{
    for (unsigned threads = 1; threads <= 2; threads++) {
        crew_pool *pool = crew_test_pool(threads);
        struct cancel_case c = {.v = {NULL}};
        crew_future *f;

        scn_gate_init(&c.entered);
        for (size_t i = 0; i < CANCEL_KIDS; i++)
            call_init(&c.grandchildren[i], 0);
        call_init(&c.later, 0);
        cr_assert_eq(crew_submit(pool, cancel_spawner, &c, &f), 0);
        cr_assert(scn_gate_reaches(&c.entered, 1), "no spawned call ran");
        cr_assert_eq(crew_future_cancel(f), 0);
        crew_future_wait(f);
        cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
        assert_verdict(&c.v);
        cr_assert_eq(atomic_load(&c.ran), CANCEL_KIDS);
        cr_assert_eq(atomic_load(&c.saw_cancel), CANCEL_KIDS,
                     "%u of %d calls saw the cancellation",
                     atomic_load(&c.saw_cancel), CANCEL_KIDS);
        for (size_t i = 0; i < CANCEL_KIDS; i++) {
            cr_assert_eq(atomic_load(&c.grandchildren[i].ran), 1);
            cr_assert(c.grandchildren[i].saw_cancel,
                      "a call's call did not see the cancellation");
        }
        cr_assert_eq(atomic_load(&c.later.ran), 1);
        cr_assert(c.later.saw_cancel);
        crew_future_release(f);
        crew_pool_destroy(pool);
        scn_gate_destroy(&c.entered);
        for (size_t i = 0; i < CANCEL_KIDS; i++)
            scn_gate_destroy(&c.grandchildren[i].done);
        scn_gate_destroy(&c.later.done);
    }
}

/*
 * "... or during a CREW_CANCEL shutdown (it then sees crew_task_cancelled
 * true)." One thread: a call spawned before the shutdown is still in the
 * spawner's queue when it begins; it is not dropped as a queued task
 * would be, but runs in the sync. So does one spawned during it.
 */
struct shutdown_case {
    struct scn_verdict v;
    struct scn_gate entered;
    struct call before, during;
    int synced_before, synced_during;
};

static int
shutdown_spawner(crew_task *task, void *arg)
{
    struct shutdown_case *s = arg;
    crew_frame frame;

    if (!SCN_CHECK(&s->v, crew_spawn(task, &frame, call_run, &s->before) == 0,
                   "crew_spawn failed"))
        return 0;
    scn_gate_add(&s->entered, 1);
    SCN_CHECK(&s->v, scn_spin_until_cancelled(task),
              "the CREW_CANCEL shutdown was not seen");
    s->synced_before = crew_sync(task, &frame);
    if (!SCN_CHECK(&s->v, crew_spawn(task, &frame, call_run, &s->during) == 0,
                   "crew_spawn during the shutdown failed"))
        return 0;
    s->synced_during = crew_sync(task, &frame);
    return 0;
}

CREW_TEST(spawn, a_cancel_shutdown_still_runs_spawned_calls)
{
    crew_pool *pool = crew_test_pool(1);
    struct shutdown_case s = {
        .v = {NULL}, .synced_before = -1, .synced_during = -1};
    crew_future *f;

    scn_gate_init(&s.entered);
    call_init(&s.before, 31);
    call_init(&s.during, 32);
    cr_assert_eq(crew_submit(pool, shutdown_spawner, &s, &f), 0);
    cr_assert(scn_gate_reaches(&s.entered, 1));
    cr_assert_eq(crew_pool_shutdown(pool, CREW_CANCEL), 0);
    assert_verdict(&s.v);
    cr_assert_eq(s.synced_before, 31);
    cr_assert_eq(s.synced_during, 32);
    cr_assert_eq(atomic_load(&s.before.ran), 1);
    cr_assert_eq(atomic_load(&s.during.ran), 1);
    cr_assert(s.before.saw_cancel, "the queued call did not see the shutdown");
    cr_assert(s.during.saw_cancel, "the later call did not see the shutdown");
    crew_future_release(f);
    crew_pool_destroy(pool);
    scn_gate_destroy(&s.entered);
    scn_gate_destroy(&s.before.done);
    scn_gate_destroy(&s.during.done);
}

/* ------------------------------------------------------------------ */
/* Thieves                                                             */
/* ------------------------------------------------------------------ */

/*
 * Calls that each wait until two of them have started: the second to
 * start must run on the other thread, the first being blocked. So with
 * the second worker let go after the spawns, some call is surely taken
 * by another worker.
 */
#define BUSY_CALLS 64

struct busy {
    struct scn_verdict v;
    struct scn_hold *hold;
    struct scn_gate entered;
    pthread_t owner;
    atomic_size_t on_thief, failed_on_thief;
    /* Plain writes, read by the spawner after its syncs. */
    uint32_t data[BUSY_CALLS][64];
};

struct busy_call {
    struct busy *b;
    size_t i;
};

static int
busy_run(crew_task *task, void *arg)
{
    struct busy_call *c = arg;
    struct busy *b = c->b;

    (void)task;
    scn_gate_add(&b->entered, 1);
    SCN_CHECK(&b->v, scn_gate_await(&b->entered, 2) >= 2,
              "no second call started: nobody stole");
    for (size_t k = 0; k < 64; k++)
        b->data[c->i][k] = (uint32_t)(c->i * 1000 + k);
    if (!pthread_equal(pthread_self(), b->owner)) {
        atomic_fetch_add(&b->on_thief, 1);
        if (c->i % 2 == 1)
            atomic_fetch_add(&b->failed_on_thief, 1);
    }
    return c->i % 2 == 1 ? EDOM : 0;
}

static int
busy_spawner(crew_task *task, void *arg)
{
    struct busy *b = arg;
    struct busy_call calls[BUSY_CALLS];
    crew_frame frames[BUSY_CALLS];
    size_t n;

    b->owner = pthread_self();
    for (n = 0; n < BUSY_CALLS; n++) {
        calls[n] = (struct busy_call){b, n};
        if (!SCN_CHECK(&b->v,
                       crew_spawn(task, &frames[n], busy_run, &calls[n]) == 0,
                       "crew_spawn failed"))
            break;
    }
    if (b->hold != NULL)
        scn_hold_open(b->hold);
    while (n-- > 0) {
        SCN_CHECK(&b->v, crew_sync(task, &frames[n]) == (n % 2 ? EDOM : 0),
                  "crew_sync did not return the call's code");
        /* "On return the caller sees everything the call wrote." */
        for (size_t k = 0; k < 64; k++)
            if (b->data[n][k] != (uint32_t)(n * 1000 + k)) {
                scn_fail(&b->v, "a call's write was not seen after its sync");
                break;
            }
    }
    return 0;
}

/* Runs busy_spawner on a pool of two, the second worker let go after the
 * spawns; returns the pool, drained, for its statistics. */
static crew_pool *
run_busy(struct busy *b)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *holder, *f;

    memset(b, 0, sizeof(*b));
    scn_gate_init(&b->entered);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    b->hold = &hold;
    f = run_task(pool, busy_spawner, b);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(holder), 0);
    assert_verdict(&b->v);
    crew_future_release(f);
    crew_future_release(holder);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    scn_hold_destroy(&hold);
    scn_gate_destroy(&b->entered);
    b->hold = NULL;
    return pool;
}

/* "On return the caller sees everything the call wrote", for calls run
 * by a thief: plain writes checked after each sync (in busy_spawner). */
CREW_TEST(spawn, after_sync_the_caller_sees_what_a_stolen_call_wrote)
{
    struct busy *b = malloc(sizeof(*b));
    crew_pool *pool;

    cr_assert_not_null(b);
    pool = run_busy(b);
    cr_assert_gt(atomic_load(&b->on_thief), 0, "no call was stolen");
    crew_pool_destroy(pool);
    free(b);
}

/*
 * "The statistics count a spawned call only when another worker took it:
 * then in submitted, stolen and its outcome, so submitted = succeeded +
 * failed + cancelled still holds once the pool is idle." The holder and
 * the spawner are the two submitted tasks; odd calls fail.
 */
CREW_TEST(spawn, stats_count_stolen_calls_as_tasks)
{
    struct busy *b = malloc(sizeof(*b));
    crew_pool_stats s;
    crew_pool *pool;
    size_t stolen, failed;

    cr_assert_not_null(b);
    pool = run_busy(b);
    stolen = atomic_load(&b->on_thief);
    failed = atomic_load(&b->failed_on_thief);
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    cr_assert_gt(stolen, 0, "no call was stolen");
    cr_assert_eq(s.submitted, s.succeeded + s.failed + s.cancelled,
                 "submitted %llu != %llu + %llu + %llu",
                 (unsigned long long)s.submitted,
                 (unsigned long long)s.succeeded, (unsigned long long)s.failed,
                 (unsigned long long)s.cancelled);
    cr_assert_eq(s.submitted, 2 + stolen,
                 "submitted %llu: not the 2 tasks and %zu stolen calls",
                 (unsigned long long)s.submitted, stolen);
    cr_assert_eq(s.failed, failed, "failed %llu, not the %zu stolen failures",
                 (unsigned long long)s.failed, failed);
    cr_assert_eq(s.cancelled, 0);
    cr_assert_geq(s.stolen, stolen, "stolen %llu < %zu calls stolen",
                  (unsigned long long)s.stolen, stolen);
    crew_pool_destroy(pool);
    free(b);
}

/* On one thread nothing is stolen: spawned calls, failing ones too, add
 * nothing to the statistics. */
struct plain_spawns {
    struct scn_verdict v;
    struct call calls[100];
};

static int
plain_spawner(crew_task *task, void *arg)
{
    struct plain_spawns *p = arg;
    crew_frame frames[100];
    size_t n;

    for (n = 0; n < 100; n++)
        if (!SCN_CHECK(&p->v,
                       crew_spawn(task, &frames[n], call_run, &p->calls[n]) ==
                           0,
                       "crew_spawn failed"))
            break;
    while (n-- > 0)
        SCN_CHECK(&p->v, crew_sync(task, &frames[n]) == p->calls[n].code,
                  "crew_sync did not return the call's code");
    return 0;
}

CREW_TEST(spawn, stats_count_no_call_on_one_thread)
{
    crew_pool *pool = crew_test_pool(1);
    struct plain_spawns *p = malloc(sizeof(*p));
    crew_pool_stats s;
    crew_future *f;

    cr_assert_not_null(p);
    p->v = (struct scn_verdict){NULL};
    for (size_t i = 0; i < 100; i++)
        call_init(&p->calls[i], i % 3 == 0 ? EDOM : 0);
    f = run_task(pool, plain_spawner, p);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&p->v);
    crew_future_release(f);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    cr_assert_eq(s.submitted, 1, "submitted %llu",
                 (unsigned long long)s.submitted);
    cr_assert_eq(s.succeeded, 1);
    cr_assert_eq(s.failed, 0);
    cr_assert_eq(s.cancelled, 0);
    cr_assert_eq(s.stolen, 0);
    crew_pool_destroy(pool);
    for (size_t i = 0; i < 100; i++)
        scn_gate_destroy(&p->calls[i].done);
    free(p);
}

/*
 * "Otherwise, while the call runs elsewhere, the caller runs only
 * spawned calls ... or waits; it never runs submitted tasks there." The
 * spawner's call is stolen and holds its thief until the spawner is in
 * crew_sync and asleep (or a submitted task has started: the failure);
 * the spawner submitted a task to its own queue just before syncing.
 */
struct no_tasks {
    struct scn_verdict v;
    struct scn_hold *hold;
    struct scn_gate call_started, task_started, task_done;
    atomic_bool in_sync;
    pthread_t owner;
    pid_t owner_tid;
    atomic_bool task_ran_in_sync;
    atomic_bool owner_slept;
    pthread_t call_thread;
};

static int
submitted_during_sync(crew_task *task, void *arg)
{
    struct no_tasks *x = arg;

    (void)task;
    if (pthread_equal(pthread_self(), x->owner) && atomic_load(&x->in_sync))
        atomic_store(&x->task_ran_in_sync, true);
    scn_gate_add(&x->task_started, 1);
    scn_gate_add(&x->task_done, 1);
    return 0;
}

static int
held_call(crew_task *task, void *arg)
{
    struct no_tasks *x = arg;
    uint64_t end = scn_now_ns() + (uint64_t)SCN_PATIENCE_MS * 1000000u;

    (void)task;
    x->call_thread = pthread_self();
    scn_gate_add(&x->call_started, 1);
    while (!atomic_load(&x->in_sync) && scn_now_ns() < end)
        sched_yield();
    while (scn_gate_count(&x->task_started) == 0 && scn_now_ns() < end) {
        if (scn_thread_is_asleep(x->owner_tid)) {
            atomic_store(&x->owner_slept, true);
            break;
        }
        sched_yield();
    }
    return 0;
}

static int
no_tasks_spawner(crew_task *task, void *arg)
{
    struct no_tasks *x = arg;
    crew_frame frame;
    int err;

    x->owner = pthread_self();
    x->owner_tid = scn_tid();
    if (!SCN_CHECK(&x->v, crew_spawn(task, &frame, held_call, x) == 0,
                   "crew_spawn failed"))
        return 0;
    scn_hold_open(x->hold);
    SCN_CHECK(&x->v, scn_gate_reaches(&x->call_started, 1),
              "no other worker took the call");
    err = crew_submit(crew_task_pool(task), submitted_during_sync, x, NULL);
    SCN_CHECK(&x->v, err == 0, "crew_submit failed");
    atomic_store(&x->in_sync, true);
    SCN_CHECK(&x->v, crew_sync(task, &frame) == 0, "crew_sync failed");
    atomic_store(&x->in_sync, false);
    SCN_CHECK(&x->v, !pthread_equal(x->call_thread, x->owner),
              "the call was not stolen");
    return 0;
}

CREW_TEST(spawn, a_sync_waiting_for_a_thief_runs_no_submitted_task)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct no_tasks x = {.v = {NULL}, .hold = &hold};
    crew_future *holder, *f;

    scn_gate_init(&x.call_started);
    scn_gate_init(&x.task_started);
    scn_gate_init(&x.task_done);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    f = run_task(pool, no_tasks_spawner, &x);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert(scn_gate_reaches(&x.task_done, 1), "the task never ran");
    assert_verdict(&x.v);
    cr_assert_not(atomic_load(&x.task_ran_in_sync),
                  "crew_sync ran a submitted task while its call ran "
                  "elsewhere");
    crew_future_release(f);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    scn_gate_destroy(&x.call_started);
    scn_gate_destroy(&x.task_started);
    scn_gate_destroy(&x.task_done);
}

/*
 * "... the caller runs only spawned calls — the thief's first — or
 * waits": a spawner asleep in the sync of a stolen call wakes when the
 * thief shares calls, and takes them. The thief's call waits until the
 * spawner's thread sleeps (scn_thread_falls_asleep()), then spawns a child and
 * waits for it to start; only the sleeping spawner is free to take it.
 * A sync that slept until the call was done would leave the child
 * untaken, and the test fails after SCN_PATIENCE_MS.
 */
struct frog {
    struct scn_verdict v;
    struct scn_hold *hold;
    pid_t spawner_tid;
    pthread_t spawner;
    pthread_t child_thread;
    struct scn_gate root_started;
    struct scn_gate child_started;
};

static int
frog_child(crew_task *task, void *arg)
{
    struct frog *x = arg;

    (void)task;
    x->child_thread = pthread_self();
    scn_gate_add(&x->child_started, 1);
    return 0;
}

static int
frog_root(crew_task *task, void *arg)
{
    struct frog *x = arg;
    crew_frame frame;

    scn_gate_add(&x->root_started, 1);
    SCN_CHECK(&x->v, scn_thread_falls_asleep(x->spawner_tid),
              "the spawner never slept in its sync");
    SCN_CHECK(&x->v, crew_spawn(task, &frame, frog_child, x) == 0,
              "crew_spawn of the child failed");
    SCN_CHECK(&x->v, scn_gate_reaches(&x->child_started, 1),
              "nobody took the shared child while the spawner slept");
    SCN_CHECK(&x->v, crew_sync(task, &frame) == 0, "crew_sync failed");
    return 0;
}

static int
frog_spawner(crew_task *task, void *arg)
{
    struct frog *x = arg;
    crew_frame frame;

    x->spawner = pthread_self();
    x->spawner_tid = scn_tid();
    if (!SCN_CHECK(&x->v, crew_spawn(task, &frame, frog_root, x) == 0,
                   "crew_spawn of the root failed")) {
        scn_hold_open(x->hold);
        return 0;
    }
    scn_hold_open(x->hold); /* the other worker steals the root */
    SCN_CHECK(&x->v, scn_gate_reaches(&x->root_started, 1),
              "no thief took the root");
    SCN_CHECK(&x->v, crew_sync(task, &frame) == 0, "crew_sync failed");
    return 0;
}

CREW_TEST(spawn, a_sleeping_sync_wakes_to_take_what_its_thief_shares)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct frog x = {.v = {NULL}, .hold = &hold};
    crew_future *holder, *f;

    scn_gate_init(&x.root_started);
    scn_gate_init(&x.child_started);
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &holder), 0);
    f = run_task(pool, frog_spawner, &x);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&x.v);
    cr_assert(pthread_equal(x.child_thread, x.spawner),
              "the child ran on its own spawner's thread, not the sleeper's");
    crew_future_release(f);
    crew_future_release(holder);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    scn_gate_destroy(&x.root_started);
    scn_gate_destroy(&x.child_started);
}

/* ------------------------------------------------------------------ */
/* Frames, queues and memory                                           */
/* ------------------------------------------------------------------ */

/*
 * A spawner that waits in the library for what its own spawned calls
 * do: on one thread nobody else can take them, so the wait must run them
 * (the newest first), and the syncs then find them done. The second
 * call, private to the worker, resolves the promise the spawner waits
 * on; the first records that it ran.
 */
struct waiter {
    struct scn_verdict v;
    crew_future *promise;
    atomic_int first_ran;
};

static int
waiter_first(crew_task *task, void *arg)
{
    struct waiter *w = arg;

    (void)task;
    atomic_store(&w->first_ran, 1);
    return 0;
}

static int
waiter_second(crew_task *task, void *arg)
{
    struct waiter *w = arg;

    (void)task;
    return crew_promise_resolve(w->promise, NULL, NULL) == 0 ? 7 : EPROTO;
}

static int
waiter_spawner(crew_task *task, void *arg)
{
    struct waiter *w = arg;
    crew_frame first, second;

    SCN_CHECK(&w->v, crew_spawn(task, &first, waiter_first, w) == 0,
              "crew_spawn of the first call failed");
    SCN_CHECK(&w->v, crew_spawn(task, &second, waiter_second, w) == 0,
              "crew_spawn of the second call failed");
    SCN_CHECK(&w->v, crew_future_wait(w->promise) == 0,
              "the wait for the promise failed");
    SCN_CHECK(&w->v, crew_sync(task, &second) == 7,
              "the sync of a call the wait ran lost its code");
    SCN_CHECK(&w->v, crew_sync(task, &first) == 0,
              "the sync of the first call failed");
    SCN_CHECK(&w->v, atomic_load(&w->first_ran) == 1,
              "the first call did not run by its sync");
    return 0;
}

CREW_TEST(spawn, a_wait_in_the_spawner_runs_its_own_spawned_calls)
{
    crew_pool *pool = crew_test_pool(1);
    struct waiter w = {.v = {NULL}};
    crew_future *f;

    cr_assert_eq(crew_promise_create(&w.promise), 0);
    f = run_task(pool, waiter_spawner, &w);
    assert_verdict(&w.v);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    crew_future_release(f);
    crew_future_release(w.promise);
    crew_pool_destroy(pool);
}

/*
 * "... and no queue refers to the frame any more": once synced, a frame
 * is the caller's memory again. Frames on the heap are scribbled on and
 * freed after their syncs (AddressSanitizer sees a late touch), and one
 * frame on the stack is spawned and synced again and again. Two
 * workers, so that thieves are about.
 */
struct reuse {
    struct scn_verdict v;
    atomic_uint *runs;
    size_t rounds;
};

static int
reuse_run(crew_task *task, void *arg)
{
    atomic_uint *slot = arg;

    (void)task;
    atomic_fetch_add(slot, 1);
    return 0;
}

static int
reuse_spawner(crew_task *task, void *arg)
{
    struct reuse *r = arg;
    crew_frame one;

    for (size_t round = 0; round < r->rounds && !scn_failed(&r->v); round++) {
        crew_frame *frames = malloc(32 * sizeof(*frames));
        size_t n;

        if (!SCN_CHECK(&r->v, frames != NULL, "out of memory"))
            break;
        for (n = 0; n < 32; n++)
            if (!SCN_CHECK(&r->v,
                           crew_spawn(task, &frames[n], reuse_run,
                                      &r->runs[round * 32 + n]) == 0,
                           "crew_spawn failed"))
                break;
        while (n-- > 0)
            SCN_CHECK(&r->v, crew_sync(task, &frames[n]) == 0,
                      "crew_sync failed");
        memset(frames, 0xA5, 32 * sizeof(*frames));
        free(frames);
    }
    for (size_t i = 0; i < 10000 && !scn_failed(&r->v); i++) {
        if (!SCN_CHECK(&r->v,
                       crew_spawn(task, &one, reuse_run,
                                  &r->runs[r->rounds * 32]) == 0,
                       "crew_spawn failed"))
            break;
        SCN_CHECK(&r->v, crew_sync(task, &one) == 0, "crew_sync failed");
    }
    return 0;
}

CREW_TEST(spawn, a_synced_frame_is_free_to_reuse_or_free)
{
    crew_pool *pool = crew_test_pool(2);
    struct reuse r = {.v = {NULL}, .rounds = 300};
    crew_future *f;

    r.runs = calloc(r.rounds * 32 + 1, sizeof(*r.runs));
    cr_assert_not_null(r.runs);
    f = run_task(pool, reuse_spawner, &r);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&r.v);
    for (size_t i = 0; i < r.rounds * 32; i++)
        cr_assert_eq(atomic_load(&r.runs[i]), 1, "call %zu ran %u times", i,
                     atomic_load(&r.runs[i]));
    cr_assert_eq(atomic_load(&r.runs[r.rounds * 32]), 10000);
    crew_future_release(f);
    crew_pool_destroy(pool);
    free(r.runs);
}

/*
 * "It never allocates and never fails but with EINVAL": 100,000 spawns
 * outstanding at once on one thread, more than a worker's queue may
 * take ("When the worker's queue cannot take it ... fn runs at once"):
 * every crew_spawn returns 0, every call runs once, every sync returns
 * its code.
 */
#define OUTSTANDING 100000

struct outstanding {
    struct scn_verdict v;
    atomic_uint *runs;
    crew_frame *frames;
};

static int
count_run(crew_task *task, void *arg)
{
    atomic_uint *slot = arg;

    (void)task;
    atomic_fetch_add(slot, 1);
    return 7;
}

static int
outstanding_spawner(crew_task *task, void *arg)
{
    struct outstanding *o = arg;
    size_t n;

    for (n = 0; n < OUTSTANDING; n++)
        if (!SCN_CHECK(
                &o->v,
                crew_spawn(task, &o->frames[n], count_run, &o->runs[n]) == 0,
                "crew_spawn with many spawns outstanding failed"))
            break;
    while (n-- > 0)
        SCN_CHECK(&o->v, crew_sync(task, &o->frames[n]) == 7,
                  "crew_sync did not return the call's code");
    return 0;
}

CREW_TEST(spawn, many_outstanding_spawns_never_fail)
{
    crew_pool *pool = crew_test_pool(1);
    struct outstanding o = {.v = {NULL}};
    crew_future *f;

    o.runs = calloc(OUTSTANDING, sizeof(*o.runs));
    o.frames = calloc(OUTSTANDING, sizeof(*o.frames));
    cr_assert(o.runs != NULL && o.frames != NULL);
    f = run_task(pool, outstanding_spawner, &o);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&o.v);
    for (size_t i = 0; i < OUTSTANDING; i++)
        cr_assert_eq(atomic_load(&o.runs[i]), 1, "call %zu ran %u times", i,
                     atomic_load(&o.runs[i]));
    crew_future_release(f);
    crew_pool_destroy(pool);
    free(o.runs);
    free(o.frames);
}

/*
 * "It never allocates": with the test hooks, the spawner's thread has its
 * next allocation armed to fail across spawns and syncs (many
 * outstanding, and nested); none may fire.
 */
struct no_alloc {
    struct scn_verdict v;
    struct outstanding o;
    bool fired;
};

static int
no_alloc_spawner(crew_task *task, void *arg)
{
    struct no_alloc *a = arg;
    atomic_size_t calls = 0;
    struct fib top = {15, 0, &calls};

    crew_test_fail_alloc(0);
    outstanding_spawner(task, &a->o);
    fib_run(task, &top);
    a->fired = crew_test_fault_fired();
    crew_test_fail_alloc(-1);
    SCN_CHECK(&a->v, top.result == fib_serial(15), "fib(15) went wrong");
    return 0;
}

CREW_TEST(spawn, spawn_and_sync_never_allocate)
{
    crew_pool *pool;
    struct no_alloc a = {.v = {NULL}};
    crew_future *f;

    if (crew_test_fail_alloc == NULL || crew_test_fault_fired == NULL)
        cr_skip_test("crew was built without CREW_TEST_HOOKS");
    pool = crew_test_pool(1);
    a.o.v = (struct scn_verdict){NULL};
    a.o.runs = calloc(OUTSTANDING, sizeof(*a.o.runs));
    a.o.frames = calloc(OUTSTANDING, sizeof(*a.o.frames));
    cr_assert(a.o.runs != NULL && a.o.frames != NULL);
    f = run_task(pool, no_alloc_spawner, &a);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    assert_verdict(&a.v);
    assert_verdict(&a.o.v);
    cr_assert_not(a.fired, "crew_spawn or crew_sync allocated");
    crew_future_release(f);
    crew_pool_destroy(pool);
    free(a.o.runs);
    free(a.o.frames);
}
