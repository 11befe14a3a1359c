#include "common.h"
#include "testkit.h"

/*
 * Futures: every state a future passes through, waiting, the outcome
 * accessors, cancellation, completion callbacks, references and bad
 * input. The races between cancel, resolution, callback registration,
 * release and timed waits are scenarios (scenarios/future.c), so that
 * TSan runs them too.
 *
 * Workers are held on gates the test opens, never put to sleep: a task
 * that reaches its gate says so, and the test waits for that word.
 */

#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(future, CREW_SUITE);

/* A task that does what the test scripts, and reports what it saw. */
struct job {
    struct scn_hold *gate;   /* held at first, when not NULL */
    bool set_value;          /* calls crew_task_return(value, value_free) */
    void *value;             /* the value it returns */
    crew_free_fn value_free; /* frees it */
    bool honour_cancel;      /* returns ECANCELED when asked to cancel */
    const char *message;     /* recorded with crew_task_fail when not NULL */
    int ret;                 /* what it returns otherwise */
    atomic_int runs;         /* times the function ran */
    atomic_int frees;        /* times arg_free ran */
    atomic_bool cancelled_at_start;
    atomic_bool cancelled_at_end;
};

static int
job_run(crew_task *task, void *arg)
{
    struct job *job = arg;
    atomic_fetch_add(&job->runs, 1);
    atomic_store(&job->cancelled_at_start, crew_task_cancelled(task));
    if (job->gate != NULL)
        scn_hold_task(task, job->gate);
    bool cancelled = crew_task_cancelled(task);
    atomic_store(&job->cancelled_at_end, cancelled);
    if (job->set_value)
        crew_task_return(task, job->value, job->value_free);
    if (job->honour_cancel && cancelled)
        return ECANCELED;
    if (job->message != NULL)
        return crew_task_fail(task, job->ret, "%s", job->message);
    return job->ret;
}

static void
job_free(void *arg)
{
    struct job *job = arg;
    atomic_fetch_add(&job->frees, 1);
}

static crew_future *
submit(crew_pool *pool, struct job *job)
{
    crew_future *future = NULL;
    cr_assert_eq(crew_submit_ex(pool, job_run, job, job_free, 0, &future), 0);
    cr_assert_not_null(future);
    return future;
}

/* Every worker of a pool held at a gate, so that what a test submits
 * stays queued until it calls unhold(). */
#define BUSY_MAX 2

struct busy {
    struct scn_hold gate;
    struct job jobs[BUSY_MAX];
    crew_future *held[BUSY_MAX];
    unsigned n;
};

/* Holds each of the @p n workers of @p pool on @p b's gate. */
static void
hold_all(crew_pool *pool, struct busy *b, unsigned n)
{
    cr_assert_leq(n, BUSY_MAX);
    memset(b, 0, sizeof(*b));
    scn_hold_init(&b->gate);
    b->n = n;
    for (unsigned i = 0; i < n; i++) {
        b->jobs[i].gate = &b->gate;
        b->held[i] = submit(pool, &b->jobs[i]);
    }
    cr_assert_eq(scn_gate_await(&b->gate.entered, n), n,
                 "the workers never all reached the gate");
}

/* Lets the workers go: their holding tasks succeed, and the gate goes. */
static void
unhold(struct busy *b)
{
    scn_hold_open(&b->gate);
    for (unsigned i = 0; i < b->n; i++)
        cr_assert_eq(scn_wait_and_release(b->held[i]), 0);
    scn_hold_destroy(&b->gate);
}

/* One task running on a pool of two workers, held on its gate until the
 * test opens it; the other worker stays free. */
struct running {
    crew_pool *pool;
    struct scn_hold gate;
    crew_future *future; /* the task's, the test's reference */
};

/* Starts @p job on a new pool, held on @p r's gate, and returns its
 * future once the task has reached the gate. */
static crew_future *
start_running(struct running *r, struct job *job)
{
    r->pool = crew_test_pool(2);
    scn_hold_init(&r->gate);
    job->gate = &r->gate;
    r->future = submit(r->pool, job);
    cr_assert_eq(scn_gate_await(&r->gate.entered, 1), 1,
                 "the task never reached its gate");
    return r->future;
}

/* Releases the future, then destroys the pool, then the gate. */
static void
stop_running(struct running *r)
{
    crew_future_release(r->future);
    crew_pool_destroy(r->pool);
    scn_hold_destroy(&r->gate);
}

/* A callback that notes how often arg_free had run when it was called. */
struct frees_probe {
    struct job *job;
    struct scn_gate calls;
    int frees_seen;
};

static void
frees_probe_cb(crew_future *future, void *user)
{
    struct frees_probe *p = user;
    (void)future;
    p->frees_seen = atomic_load(&p->job->frees);
    scn_gate_add(&p->calls, 1);
}

/* ------------------------------------------------------------------ */
/* States                                                             */
/* ------------------------------------------------------------------ */

CREW_TEST(future, is_pending_while_its_task_waits_in_the_queue)
{
    crew_pool *pool = crew_test_pool(1);
    struct busy busy;
    hold_all(pool, &busy, 1);

    struct job queued = {0};
    crew_future *f = submit(pool, &queued);
    crew_test_assert_pending(f);
    cr_assert_eq(atomic_load(&queued.runs), 0);

    unhold(&busy);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(atomic_load(&queued.runs), 1);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, is_running_while_its_function_executes)
{
    struct running run;
    struct job job = {0};
    crew_future *f = start_running(&run, &job);

    cr_assert_eq(crew_future_state(f), CREW_RUNNING);
    cr_assert_null(crew_future_result(f));
    cr_assert_null(crew_future_error(f));

    scn_hold_open(&run.gate);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    stop_running(&run);
}

CREW_TEST(future, succeeds_with_the_value_its_task_returned)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_gate freed = SCN_GATE_INIT;
    struct job job = {
        .set_value = true, .value = &freed, .value_free = scn_gate_bump};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &freed);
    cr_assert_null(crew_future_error(f));
    cr_assert_eq(atomic_load(&job.frees), 1, "arg_free ran before resolution");
    cr_assert_eq(scn_gate_count(&freed), 0, "the value was freed while held");

    /* The worker may hold the last reference a moment longer. */
    crew_future_release(f);
    cr_assert_eq(scn_gate_await(&freed, 1), 1);
    crew_pool_destroy(pool);
    cr_assert_eq(scn_gate_count(&freed), 1, "the value was freed twice");
    scn_gate_destroy(&freed);
}

CREW_TEST(future, succeeds_with_a_null_result_when_its_task_returned_no_value)
{
    crew_pool *pool = crew_test_pool(2);
    struct job job = {0};
    crew_future *f = submit(pool, &job);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(f));
    cr_assert_null(crew_future_error(f));
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, fails_with_the_code_and_message_its_task_recorded)
{
    crew_pool *pool = crew_test_pool(2);
    struct job job = {.ret = EIO, .message = "disk on fire"};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_null(crew_future_result(f));
    const crew_error *e = crew_future_error(f);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), EIO);
    cr_assert_str_eq(crew_error_message(e), "disk on fire");
    cr_assert_eq(crew_error_count(e), 0);
    cr_assert_eq(crew_future_wait_for(f, 0), EIO);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, fails_with_a_default_message_naming_an_errno_code)
{
    crew_pool *pool = crew_test_pool(2);
    struct job job = {.ret = ENOENT};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), ENOENT);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    const crew_error *e = crew_future_error(f);
    cr_assert_eq(crew_error_code(e), ENOENT);
    const char *msg = crew_error_message(e);
    cr_assert_not_null(msg);
    cr_assert(strstr(msg, crew_strerror(ENOENT)) != NULL ||
                  strstr(msg, "ENOENT") != NULL || strstr(msg, "2") != NULL,
              "the default message \"%s\" does not name ENOENT", msg);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, fails_with_a_default_message_naming_a_code_of_its_own)
{
    crew_pool *pool = crew_test_pool(2);
    struct job job = {.ret = 4711};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), 4711);
    const crew_error *e = crew_future_error(f);
    cr_assert_eq(crew_error_code(e), 4711);
    cr_assert_not_null(strstr(crew_error_message(e), "4711"),
                       "the default message \"%s\" does not name 4711",
                       crew_error_message(e));
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, frees_the_value_of_a_failed_task_at_once)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_gate freed = SCN_GATE_INIT;
    struct job job = {.set_value = true,
                      .value = &freed,
                      .value_free = scn_gate_bump,
                      .ret = EIO};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), EIO);
    cr_assert_null(crew_future_result(f));
    /* Still held: only "at once" explains a free now. */
    cr_assert_eq(scn_gate_await(&freed, 1), 1);
    crew_future_release(f);
    crew_pool_destroy(pool);
    cr_assert_eq(scn_gate_count(&freed), 1, "the value was freed twice");
    scn_gate_destroy(&freed);
}

CREW_TEST(future, frees_the_value_of_a_cancelled_task_at_once)
{
    struct scn_gate freed = SCN_GATE_INIT;
    struct running run;
    struct job job = {.set_value = true,
                      .value = &freed,
                      .value_free = scn_gate_bump,
                      .honour_cancel = true};
    crew_future *f = start_running(&run, &job);
    cr_assert_eq(crew_future_cancel(f), 0);
    scn_hold_open(&run.gate);

    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(scn_gate_await(&freed, 1), 1);
    stop_running(&run);
    cr_assert_eq(scn_gate_count(&freed), 1, "the value was freed twice");
    scn_gate_destroy(&freed);
}

/* ------------------------------------------------------------------ */
/* Waiting                                                            */
/* ------------------------------------------------------------------ */

CREW_TEST(future, wait_for_reports_etimedout_only_after_the_timeout_has_passed)
{
    crew_pool *pool = crew_test_pool(1);
    struct busy busy;
    hold_all(pool, &busy, 1);
    struct job queued = {0};
    crew_future *f = submit(pool, &queued);

    static const uint64_t timeouts[] = {0,       1,        1000,
                                        1000000, 20000000, 50000000};
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        crew_future *targets[] = {busy.held[0], f};
        for (size_t k = 0; k < 2; k++) {
            uint64_t start = scn_now_ns();
            int err = crew_future_wait_for(targets[k], timeouts[i]);
            uint64_t took = scn_now_ns() - start;
            cr_assert_eq(err, ETIMEDOUT, "timeout %llu: got %d",
                         (unsigned long long)timeouts[i], err);
            cr_assert_geq(took, timeouts[i],
                          "ETIMEDOUT after %llu ns of a %llu ns timeout",
                          (unsigned long long)took,
                          (unsigned long long)timeouts[i]);
        }
    }
    cr_assert_eq(crew_future_state(busy.held[0]), CREW_RUNNING);
    cr_assert_eq(crew_future_state(f), CREW_PENDING);

    unhold(&busy);
    cr_assert_eq(crew_future_wait_for(f, CREW_FOREVER), 0);
    cr_assert_eq(atomic_load(&queued.runs), 1);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future, wait_for_returns_at_once_when_the_future_has_resolved)
{
    crew_future *ok = crew_test_promise();
    crew_future *bad = crew_test_promise();
    crew_future *gone = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(ok, NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(bad, ENOENT, "no"), 0);
    cr_assert_eq(crew_future_cancel(gone), 0);

    crew_future *futures[] = {ok, bad, gone};
    int expect[] = {0, ENOENT, ECANCELED};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(crew_future_wait_for(futures[i], 0), expect[i]);
        uint64_t start = scn_now_ns();
        cr_assert_eq(crew_future_wait_for(futures[i], 20000000000u), expect[i]);
        cr_assert_eq(crew_future_wait_for(futures[i], CREW_FOREVER), expect[i]);
        cr_assert_eq(crew_future_wait(futures[i]), expect[i]);
        cr_assert_lt(scn_now_ns() - start, 5000000000u,
                     "waiting on a resolved future took seconds");
        crew_future_release(futures[i]);
    }
}

struct resolver {
    pthread_t thread;
    crew_future *future;
    void *value;
    int err;
};

static void *
resolver_main(void *p)
{
    struct resolver *r = p;
    r->err = crew_promise_resolve(r->future, r->value, NULL);
    return NULL;
}

static void
resolve_from_thread(struct resolver *r, crew_future *f, void *value)
{
    r->future = f;
    r->value = value;
    r->err = -1;
    cr_assert_eq(pthread_create(&r->thread, NULL, resolver_main, r), 0);
}

CREW_TEST(future, wait_for_returns_when_the_future_resolves_before_the_timeout)
{
    static const uint64_t timeouts[] = {20000000000u, UINT64_MAX - 1,
                                        CREW_FOREVER};
    for (size_t i = 0; i < 3; i++) {
        crew_future *f = crew_test_promise();
        int token;
        struct resolver r;
        uint64_t start = scn_now_ns();
        resolve_from_thread(&r, f, &token);
        cr_assert_eq(crew_future_wait_for(f, timeouts[i]), 0);
        cr_assert_lt(scn_now_ns() - start, 10000000000u);
        cr_assert_eq(crew_future_result(f), &token);
        pthread_join(r.thread, NULL);
        cr_assert_eq(r.err, 0);
        crew_future_release(f);
    }
}

CREW_TEST(future, wait_wakes_when_a_running_task_finishes)
{
    struct running run;
    struct job job = {.ret = EPERM, .message = "denied"};
    crew_future *f = start_running(&run, &job);
    cr_assert_eq(crew_future_wait_for(f, 1000000), ETIMEDOUT);
    scn_hold_open(&run.gate);
    cr_assert_eq(crew_future_wait(f), EPERM);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_eq(atomic_load(&job.frees), 1);
    stop_running(&run);
}

CREW_TEST(future, runs_arg_free_before_its_task_resolves)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold gate = SCN_HOLD_INIT;
    struct job jobs[2] = {{.gate = &gate}, {.gate = &gate, .ret = EIO}};
    struct frees_probe probes[2];
    crew_future *f[2];
    for (int i = 0; i < 2; i++) {
        f[i] = submit(pool, &jobs[i]);
        probes[i].job = &jobs[i];
        probes[i].frees_seen = -1;
        scn_gate_init(&probes[i].calls);
    }
    cr_assert_eq(scn_gate_await(&gate.entered, 2), 2);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(crew_future_on_complete(f[i], frees_probe_cb, &probes[i]),
                     0);
    cr_assert_eq(atomic_load(&jobs[0].frees), 0, "arg_free ran before fn");
    scn_hold_open(&gate);

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(scn_gate_await(&probes[i].calls, 1), 1);
        cr_assert_eq(probes[i].frees_seen, 1, "task %d resolved first", i);
        crew_future_release(f[i]);
    }
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&jobs[0].frees), 1);
    cr_assert_eq(atomic_load(&jobs[1].frees), 1);
    scn_hold_destroy(&gate);
}

/* ------------------------------------------------------------------ */
/* Outcome accessors                                                  */
/* ------------------------------------------------------------------ */

CREW_TEST(future, has_neither_result_nor_error_while_pending)
{
    crew_future *f = crew_test_promise();
    crew_test_assert_pending(f);
    cr_assert_eq(crew_promise_resolve(f, NULL, NULL), 0);
    crew_future_release(f);
}

CREW_TEST(future, when_cancelled_has_an_error_with_code_ecanceled_and_no_result)
{
    crew_future *f = crew_test_promise();
    cr_assert_eq(crew_future_cancel(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_null(crew_future_result(f));
    const crew_error *e = crew_future_error(f);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), ECANCELED);
    cr_assert_eq(crew_error_count(e), 0);
    cr_assert_not_null(crew_error_message(e));
    cr_assert_eq(crew_future_wait(f), ECANCELED);
    crew_future_release(f);
}

CREW_TEST(future, when_failed_has_an_error_and_no_result)
{
    crew_future *f = crew_test_promise();
    int token;
    cr_assert_eq(crew_promise_fail(f, EBUSY, "busy %d", 7), 0);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(crew_error_code(crew_future_error(f)), EBUSY);
    cr_assert_str_eq(crew_error_message(crew_future_error(f)), "busy 7");
    cr_assert_eq(crew_promise_resolve(f, &token, NULL), EALREADY);
    cr_assert_null(crew_future_result(f));
    crew_future_release(f);
}

/* ------------------------------------------------------------------ */
/* Cancellation                                                       */
/* ------------------------------------------------------------------ */

CREW_TEST(
    future,
    cancel_resolves_a_queued_task_before_returning_while_every_worker_is_busy)
{
    crew_pool *pool = crew_test_pool(2);
    struct busy busy;
    hold_all(pool, &busy, 2);

    struct job queued = {0};
    crew_future *f = submit(pool, &queued);
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    struct frees_probe probe = {.job = &queued, .frees_seen = -1};
    scn_gate_init(&probe.calls);
    cr_assert_eq(crew_future_on_complete(f, frees_probe_cb, &probe), 0);
    cr_assert_eq(crew_future_state(f), CREW_PENDING);

    cr_assert_eq(crew_future_cancel(f), 0);
    /* Every worker is still held: only cancel itself can have done this. */
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&queued.frees), 1, "arg_free had not run");
    cr_assert_eq(atomic_load(&queued.runs), 0);
    cr_assert_eq(crew_future_wait_for(f, 0), ECANCELED);
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_null(crew_future_result(f));
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert(pthread_equal(seen.thread, pthread_self()),
              "the callback did not run on the cancelling thread");
    cr_assert_eq(seen.state, CREW_CANCELLED);
    cr_assert_eq(scn_gate_count(&probe.calls), 1);
    cr_assert_eq(probe.frees_seen, 1, "resolved before arg_free ran");
    cr_assert_eq(crew_future_cancel(f), EALREADY);

    unhold(&busy);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&queued.runs), 0, "a cancelled task ran");
    cr_assert_eq(atomic_load(&queued.frees), 1, "arg_free ran twice");
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    crew_future_release(f);
}

CREW_TEST(future, cancelled_queued_task_no_longer_counts_against_max_queued)
{
    crew_pool_options one_slot = {.threads = 1, .max_queued = 1};
    crew_pool *pool = NULL;
    cr_assert_eq(crew_pool_create(&pool, &one_slot), 0);
    struct busy busy;
    hold_all(pool, &busy, 1);

    struct job a = {0}, b = {0}, c = {0};
    crew_future *fa = submit(pool, &a);
    crew_future *fb = (crew_future *)&b;
    cr_assert_eq(
        crew_submit_ex(pool, job_run, &b, job_free, CREW_NONBLOCKING, &fb),
        EAGAIN);
    cr_assert_null(fb);
    cr_assert_eq(crew_future_cancel(fa), 0);
    crew_future *fc = NULL;
    cr_assert_eq(
        crew_submit_ex(pool, job_run, &c, job_free, CREW_NONBLOCKING, &fc), 0,
        "the cancelled task still takes the queue's room");

    unhold(&busy);
    cr_assert_eq(crew_future_wait(fc), 0);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&a.runs), 0);
    cr_assert_eq(atomic_load(&a.frees), 1);
    cr_assert_eq(atomic_load(&b.runs), 0);
    cr_assert_eq(atomic_load(&b.frees), 0);
    cr_assert_eq(atomic_load(&c.runs), 1);
    crew_future_release(fa);
    crew_future_release(fc);
}

CREW_TEST(
    future,
    cancelling_a_running_task_lets_it_resolve_cancelled_by_returning_ecanceled)
{
    struct running run;
    struct job job = {.honour_cancel = true};
    crew_future *f = start_running(&run, &job);
    cr_assert_not(atomic_load(&job.cancelled_at_start));

    cr_assert_eq(crew_future_cancel(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_RUNNING,
                 "a running task decides itself");
    scn_hold_open(&run.gate);

    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert(atomic_load(&job.cancelled_at_end),
              "crew_task_cancelled stayed false");
    cr_assert_eq(crew_error_code(crew_future_error(f)), ECANCELED);
    cr_assert_eq(atomic_load(&job.runs), 1);
    cr_assert_eq(atomic_load(&job.frees), 1);
    cr_assert_eq(crew_future_cancel(f), EALREADY);
    stop_running(&run);
}

CREW_TEST(future, cancelling_a_running_task_that_ignores_it_keeps_its_outcome)
{
    struct running run;
    int token;
    struct job job = {.set_value = true, .value = &token};
    crew_future *f = start_running(&run, &job);
    cr_assert_eq(crew_future_cancel(f), 0);
    scn_hold_open(&run.gate);

    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(f), &token);
    cr_assert(atomic_load(&job.cancelled_at_end));
    stop_running(&run);
}

CREW_TEST(future, a_task_returning_ecanceled_without_a_request_has_failed)
{
    crew_pool *pool = crew_test_pool(2);
    struct job job = {.ret = ECANCELED, .honour_cancel = true};
    crew_future *f = submit(pool, &job);

    cr_assert_eq(crew_future_wait(f), ECANCELED);
    cr_assert_eq(crew_future_state(f), CREW_FAILED);
    cr_assert_not(atomic_load(&job.cancelled_at_end));
    const crew_error *e = crew_future_error(f);
    cr_assert_not_null(e);
    cr_assert_eq(crew_error_code(e), ECANCELED);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

CREW_TEST(future,
          cancelling_a_resolved_future_returns_ealready_and_changes_nothing)
{
    crew_pool *pool = crew_test_pool(2);
    int token;
    struct job good = {.set_value = true, .value = &token};
    struct job bad = {.ret = EIO, .message = "bad"};
    crew_future *fg = submit(pool, &good);
    crew_future *fb = submit(pool, &bad);
    crew_future *fc = crew_test_promise();
    cr_assert_eq(crew_future_wait(fg), 0);
    cr_assert_eq(crew_future_wait(fb), EIO);
    cr_assert_eq(crew_future_cancel(fc), 0);
    struct scn_seen seen[3];
    crew_future *all[] = {fg, fb, fc};
    for (int i = 0; i < 3; i++) {
        scn_seen_init(&seen[i]);
        cr_assert_eq(crew_future_on_complete(all[i], scn_seen_cb, &seen[i]), 0);
    }

    cr_assert_eq(crew_future_cancel(fg), EALREADY);
    cr_assert_eq(crew_future_cancel(fb), EALREADY);
    cr_assert_eq(crew_future_cancel(fc), EALREADY);

    cr_assert_eq(crew_future_state(fg), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_result(fg), &token);
    cr_assert_null(crew_future_error(fg));
    cr_assert_eq(crew_future_state(fb), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(fb)), EIO);
    cr_assert_str_eq(crew_error_message(crew_future_error(fb)), "bad");
    cr_assert_eq(crew_future_state(fc), CREW_CANCELLED);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(scn_gate_count(&seen[i].calls), 1,
                     "cancel ran callbacks again");
        crew_future_release(all[i]);
    }
    crew_pool_destroy(pool);
}

struct canceller {
    pthread_t thread;
    crew_future *future;
    int err;
};

static void *
canceller_main(void *p)
{
    struct canceller *c = p;
    c->err = crew_future_cancel(c->future);
    return NULL;
}

CREW_TEST(future,
          cancelling_a_pending_promise_resolves_it_on_the_cancelling_thread)
{
    crew_future *f = crew_test_promise();
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);

    struct canceller c = {.future = f, .err = -1};
    cr_assert_eq(pthread_create(&c.thread, NULL, canceller_main, &c), 0);
    pthread_join(c.thread, NULL);

    cr_assert_eq(c.err, 0);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert(pthread_equal(seen.thread, c.thread));
    cr_assert_eq(seen.state, CREW_CANCELLED);
    cr_assert_eq(seen.error_code, ECANCELED);
    crew_future_release(f);
}

/* ------------------------------------------------------------------ */
/* Completion callbacks                                               */
/* ------------------------------------------------------------------ */

#define NCALLBACKS 8

CREW_TEST(future, runs_callbacks_registered_before_resolution_once_in_order)
{
    crew_future *f = crew_test_promise();
    struct scn_order_log log;
    memset(&log, 0, sizeof(log));
    struct scn_order orders[NCALLBACKS];
    for (int i = 0; i < NCALLBACKS; i++) {
        orders[i] = (struct scn_order){&log, i};
        cr_assert_eq(crew_future_on_complete(f, scn_order_cb, &orders[i]), 0);
    }
    cr_assert_eq(atomic_load(&log.next), 0, "a callback ran before resolution");

    int token;
    struct resolver r;
    resolve_from_thread(&r, f, &token);
    pthread_join(r.thread, NULL);
    cr_assert_eq(r.err, 0);

    cr_assert_eq(atomic_load(&log.next), NCALLBACKS);
    for (int i = 0; i < NCALLBACKS; i++) {
        cr_assert_eq(log.order[i], i, "callback %d ran in place %d",
                     log.order[i], i);
        cr_assert(pthread_equal(log.thread[i], r.thread),
                  "callback %d ran off the resolving thread", i);
        cr_assert_eq(log.state[i], CREW_SUCCEEDED);
        cr_assert_eq(log.result[i], &token);
    }
    crew_future_release(f);
}

CREW_TEST(future,
          runs_a_callback_registered_after_resolution_at_once_on_the_caller)
{
    crew_future *f = crew_test_promise();
    int token;
    cr_assert_eq(crew_promise_resolve(f, &token, NULL), 0);
    struct scn_seen seen;
    scn_seen_init(&seen);

    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 1, "did not run at once");
    cr_assert(pthread_equal(seen.thread, pthread_self()));
    cr_assert_eq(seen.state, CREW_SUCCEEDED);
    cr_assert_eq(seen.result, &token);

    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 2, "each registration runs once");
    crew_future_release(f);
}

CREW_TEST(future, runs_a_task_futures_callbacks_on_the_worker_that_resolves_it)
{
    struct running run;
    int token;
    struct job job = {.set_value = true, .value = &token};
    crew_future *f = start_running(&run, &job);
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 0, "ran before resolution");

    scn_hold_open(&run.gate);
    cr_assert_eq(scn_gate_await(&seen.calls, 1), 1);
    cr_assert_not(pthread_equal(seen.thread, pthread_self()));
    cr_assert_eq(seen.state, CREW_SUCCEEDED);
    cr_assert_eq(seen.result, &token);
    cr_assert_eq(crew_future_wait(f), 0);
    stop_running(&run);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
}

struct releasing {
    crew_future *future; /* the reference the first callback drops */
    struct scn_seen later[3];
};

static void
release_cb(crew_future *future, void *user)
{
    struct releasing *r = user;
    (void)future;
    crew_future_release(r->future);
}

CREW_TEST(
    future,
    a_callback_releasing_the_last_reference_leaves_later_callbacks_a_future)
{
    struct scn_gate freed = SCN_GATE_INIT;
    struct releasing r;
    r.future = crew_test_promise();
    cr_assert_eq(crew_future_on_complete(r.future, release_cb, &r), 0);
    for (int i = 0; i < 3; i++) {
        scn_seen_init(&r.later[i]);
        cr_assert_eq(
            crew_future_on_complete(r.future, scn_seen_cb, &r.later[i]), 0);
    }
    /* The test's only reference now belongs to release_cb. */
    cr_assert_eq(crew_promise_resolve(r.future, &freed, scn_gate_bump), 0);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(scn_gate_count(&r.later[i].calls), 1);
        cr_assert_eq(r.later[i].state, CREW_SUCCEEDED);
        cr_assert_eq(r.later[i].result, &freed);
    }
    cr_assert_eq(scn_gate_await(&freed, 1), 1,
                 "the value was not freed with the last reference");
    scn_gate_destroy(&freed);
}

CREW_TEST(future,
          a_callback_releasing_a_task_future_leaves_later_callbacks_a_future)
{
    struct scn_gate freed = SCN_GATE_INIT;
    struct running run;
    struct job job = {
        .set_value = true, .value = &freed, .value_free = scn_gate_bump};
    struct releasing r;
    /* The test's only reference goes to release_cb: no stop_running(). */
    r.future = start_running(&run, &job);
    cr_assert_eq(crew_future_on_complete(r.future, release_cb, &r), 0);
    for (int i = 0; i < 3; i++) {
        scn_seen_init(&r.later[i]);
        cr_assert_eq(
            crew_future_on_complete(r.future, scn_seen_cb, &r.later[i]), 0);
    }
    scn_hold_open(&run.gate);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(scn_gate_await(&r.later[i].calls, 1), 1);
        cr_assert_eq(r.later[i].state, CREW_SUCCEEDED);
        cr_assert_eq(r.later[i].result, &freed);
    }
    cr_assert_eq(scn_gate_await(&freed, 1), 1);
    crew_pool_destroy(run.pool);
    cr_assert_eq(scn_gate_count(&freed), 1);
    scn_gate_destroy(&freed);
    scn_hold_destroy(&run.gate);
}

struct submitting {
    crew_pool *pool;
    struct scn_gate done;     /* bumped by the task the callback submits */
    struct scn_gate returned; /* bumped once err holds crew_submit's answer */
    int err;
};

static int
count_run(crew_task *task, void *arg)
{
    (void)task;
    scn_gate_add(arg, 1);
    return 0;
}

static void
submit_cb(crew_future *future, void *user)
{
    struct submitting *s = user;
    (void)future;
    s->err = crew_submit(s->pool, count_run, &s->done, NULL);
    scn_gate_add(&s->returned, 1);
}

CREW_TEST(future, a_callback_may_submit_work)
{
    struct running run;
    struct job job = {0};
    crew_future *f = start_running(&run, &job);

    /* One runs on the worker that resolves f, one at once on this thread. */
    struct submitting on_worker = {.pool = run.pool, .err = -1};
    struct submitting on_caller = {.pool = run.pool, .err = -1};
    scn_gate_init(&on_worker.done);
    scn_gate_init(&on_worker.returned);
    scn_gate_init(&on_caller.done);
    scn_gate_init(&on_caller.returned);
    cr_assert_eq(crew_future_on_complete(f, submit_cb, &on_worker), 0);
    scn_hold_open(&run.gate);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_on_complete(f, submit_cb, &on_caller), 0);
    cr_assert_eq(on_caller.err, 0);

    cr_assert_eq(scn_gate_await(&on_worker.returned, 1), 1);
    cr_assert_eq(on_worker.err, 0);
    cr_assert_eq(scn_gate_await(&on_worker.done, 1), 1);
    cr_assert_eq(scn_gate_await(&on_caller.done, 1), 1);
    stop_running(&run);
    cr_assert_eq(scn_gate_count(&on_worker.done), 1);
    cr_assert_eq(scn_gate_count(&on_caller.done), 1);
}

/* ------------------------------------------------------------------ */
/* References                                                         */
/* ------------------------------------------------------------------ */

CREW_TEST(future, retain_and_release_accept_null)
{
    cr_assert_null(crew_future_retain(NULL));
    crew_future_release(NULL);
}

/* As crew_error_retain() keeps a borrowed const error. */
CREW_TEST(future, retain_keeps_a_borrowed_const_future)
{
    crew_future *p = crew_test_promise();
    const crew_future *borrowed = p;
    crew_future *kept = crew_future_retain(borrowed);

    cr_assert_eq(kept, p);
    crew_future_release(p);
    cr_assert_eq(crew_promise_resolve(kept, NULL, NULL), 0);
    cr_assert_eq(crew_future_state(kept), CREW_SUCCEEDED);
    crew_future_release(kept);
}

CREW_TEST(future, frees_its_value_exactly_once_at_the_last_release)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_gate freed = SCN_GATE_INIT;
    struct job job = {
        .set_value = true, .value = &freed, .value_free = scn_gate_bump};
    crew_future *f = submit(pool, &job);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_pool_destroy(pool);

    cr_assert_eq(crew_future_retain(f), f);
    cr_assert_eq(crew_future_retain(f), f);
    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 0);
    cr_assert_eq(crew_future_result(f), &freed,
                 "futures stay readable after their pool");
    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 0);
    crew_future_release(f);
    cr_assert_eq(scn_gate_count(&freed), 1);
    scn_gate_destroy(&freed);
}

CREW_TEST(future, releasing_a_queued_tasks_future_does_not_cancel_it)
{
    crew_pool *pool = crew_test_pool(1);
    struct busy busy;
    hold_all(pool, &busy, 1);

    struct scn_gate freed = SCN_GATE_INIT;
    struct job job = {
        .set_value = true, .value = &freed, .value_free = scn_gate_bump};
    crew_future *f = submit(pool, &job);
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    crew_future_release(f);

    unhold(&busy);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&job.runs), 1, "the released task did not run");
    cr_assert_eq(atomic_load(&job.frees), 1);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert_eq(seen.state, CREW_SUCCEEDED);
    cr_assert_eq(scn_gate_await(&freed, 1), 1);
    scn_gate_destroy(&freed);
}

/* ------------------------------------------------------------------ */
/* Bad input                                                          */
/* ------------------------------------------------------------------ */

CREW_TEST(future, rejects_a_null_future_with_einval_and_does_nothing)
{
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_wait(NULL), EINVAL);
    cr_assert_eq(crew_future_wait_for(NULL, 0), EINVAL);
    cr_assert_eq(crew_future_wait_for(NULL, 1000), EINVAL);
    cr_assert_eq(crew_future_cancel(NULL), EINVAL);
    cr_assert_eq(crew_future_on_complete(NULL, scn_seen_cb, &seen), EINVAL);
    cr_assert_eq(scn_gate_count(&seen.calls), 0);
    cr_assert_eq(crew_future_state(NULL), CREW_PENDING);
    cr_assert_null(crew_future_result(NULL));
    cr_assert_null(crew_future_error(NULL));
}

CREW_TEST(future, rejects_a_null_callback_with_einval_and_registers_nothing)
{
    crew_future *f = crew_test_promise();
    struct scn_seen seen;
    scn_seen_init(&seen);
    cr_assert_eq(crew_future_on_complete(f, NULL, &seen), EINVAL);
    cr_assert_eq(crew_future_on_complete(f, scn_seen_cb, &seen), 0);
    cr_assert_eq(crew_promise_resolve(f, NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert_eq(crew_future_on_complete(f, NULL, &seen), EINVAL);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    crew_future_release(f);
}

/*
 * Resolution nests a bounded depth on one thread, and puts off deeper
 * completions until the outermost one returns. A callback that waits
 * on what it put off must see it done, not wait forever.
 */
#define CHAIN  60 /* promises resolved one from the other's callback */
#define WAITER 20 /* the one whose second callback waits on the last */

static crew_future *chain[CHAIN + 1];
static int chain_waited = -1;

static void
resolve_next(crew_future *future, void *user)
{
    (void)future;
    crew_promise_resolve(chain[(intptr_t)user + 1], NULL, NULL);
}

static void
wait_for_last(crew_future *future, void *user)
{
    (void)future;
    (void)user;
    chain_waited = crew_future_wait_for(chain[CHAIN], 5000000000u);
}

CREW_TEST(future, a_callback_may_wait_on_resolutions_put_off_beneath_it)
{
    for (intptr_t i = 0; i <= CHAIN; i++)
        chain[i] = crew_test_promise();
    for (intptr_t i = 0; i < CHAIN; i++)
        cr_assert_eq(crew_future_on_complete(chain[i], resolve_next, (void *)i),
                     0);
    cr_assert_eq(crew_future_on_complete(chain[WAITER], wait_for_last, NULL),
                 0);
    cr_assert_eq(crew_promise_resolve(chain[0], NULL, NULL), 0);
    cr_assert_eq(chain_waited, 0, "the wait returned %d", chain_waited);
    for (intptr_t i = 0; i <= CHAIN; i++) {
        cr_assert_eq(crew_future_state(chain[i]), CREW_SUCCEEDED);
        crew_future_release(chain[i]);
    }
}
