/*
 * crew's blocking calls are not cancellation points (API.md, "Depth,
 * lifetimes and hostile callers"): a thread cancelled with
 * pthread_cancel() while it sleeps inside one acts on it after the call
 * returns, and leaves no lock held, no pool half shut down, and no waiter
 * node linked on its dead stack.
 *
 * Each test starts a thread that enters a blocking call, waits until the
 * kernel reports that thread asleep (so that the cancellation lands
 * inside the call, where the old code acted on it), cancels it, then
 * lets the call finish. The thread must come back from the call with its
 * result, and only then be cancelled, at the pthread_testcancel() that
 * follows; and the pool must go on working.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

TestSuite(cancellation_points, CREW_SUITE);

#define TWO_SECONDS 2000000000u

static int
nothing(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

/* A thread making one blocking crew call. */
struct caller {
    int (*call)(struct caller *c); /* the call; returns its result */
    pthread_t thread;
    struct scn_gate started; /* opened once tid is set */
    pid_t tid;               /* the caller's id in the kernel */
    atomic_bool returned;    /* set after the call returned */
    int result;              /* what the call returned */
    crew_pool *pool;
    crew_future *future;
    crew_future *submitted;
};

/* Wait until the caller has started and sleeps; fail the test if it does
 * not within the patience of the test kit. */
static void
wait_until_asleep(struct caller *c)
{
    cr_assert_eq(scn_gate_await(&c->started, 1), 1, "the caller never ran");
    cr_assert(scn_thread_falls_asleep(c->tid),
              "the caller never went to sleep");
}

/* The caller's thread: make the call, note its result, then act on the
 * cancellation. */
static void *
caller_main(void *arg)
{
    struct caller *c = arg;

    c->tid = scn_tid();
    scn_gate_add(&c->started, 1);
    c->result = c->call(c);
    atomic_store(&c->returned, true);
    pthread_testcancel();
    return NULL;
}

/* Start a thread making `call`, and cancel it once it sleeps inside. */
static void
cancel_while_asleep(struct caller *c, int (*call)(struct caller *c))
{
    c->call = call;
    scn_gate_init(&c->started);
    atomic_init(&c->returned, false);
    cr_assert_eq(pthread_create(&c->thread, NULL, caller_main, c), 0);
    wait_until_asleep(c);
    cr_assert_eq(pthread_cancel(c->thread), 0);
}

/* Join the caller: it must have been cancelled after its call returned. */
static void
join_cancelled(struct caller *c)
{
    void *exit_value = NULL;

    cr_assert_eq(pthread_join(c->thread, &exit_value), 0);
    cr_assert_eq(exit_value, PTHREAD_CANCELED,
                 "the caller was not cancelled at all");
    cr_assert(atomic_load(&c->returned),
              "the caller was cancelled inside the call");
    scn_gate_destroy(&c->started);
}

static int
submit_call(struct caller *c)
{
    return crew_submit(c->pool, nothing, NULL, &c->submitted);
}

CREW_TEST(
    cancellation_points,
    a_submitter_cancelled_while_waiting_for_room_leaves_the_queue_unlocked)
{
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    struct scn_hold h = SCN_HOLD_INIT;
    struct caller c = {0};
    crew_future *held, *queued, *after;

    cr_assert_eq(crew_pool_create(&c.pool, &o), 0);
    cr_assert_eq(scn_hold_worker(c.pool, &h, 1, &held), 0);
    /* The one slot is taken: the caller waits for room. */
    cr_assert_eq(crew_submit(c.pool, nothing, NULL, &queued), 0);
    cancel_while_asleep(&c, submit_call);
    scn_hold_open(&h);
    join_cancelled(&c);
    cr_assert_eq(c.result, 0);
    /* The queue's lock is free: more submissions and waits go through. */
    cr_assert_eq(crew_submit(c.pool, nothing, NULL, &after), 0);
    cr_assert_eq(crew_future_wait_for(after, TWO_SECONDS), 0);
    cr_assert_eq(crew_future_wait_for(c.submitted, TWO_SECONDS), 0);
    crew_future_release(after);
    crew_future_release(c.submitted);
    cr_assert_eq(scn_wait_and_release(queued), 0);
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_pool_destroy(c.pool);
}

static int
shutdown_call(struct caller *c)
{
    return crew_pool_shutdown(c->pool, CREW_DRAIN);
}

CREW_TEST(cancellation_points,
          a_thread_cancelled_inside_shutdown_leaves_the_pool_shut_down)
{
    crew_pool_options o = {.threads = 2};
    struct scn_hold h = SCN_HOLD_INIT;
    struct caller c = {0};
    crew_future *held, *refused = NULL;

    cr_assert_eq(crew_pool_create(&c.pool, &o), 0);
    cr_assert_eq(scn_hold_worker(c.pool, &h, 1, &held), 0);
    /* The shutdown waits for the held worker. */
    cancel_while_asleep(&c, shutdown_call);
    scn_hold_open(&h);
    join_cancelled(&c);
    cr_assert_eq(c.result, 0);
    /* Shut down for good: a second call returns at once. */
    cr_assert_eq(crew_pool_shutdown(c.pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_submit(c.pool, nothing, NULL, &refused), ESHUTDOWN);
    cr_assert_null(refused);
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_pool_destroy(c.pool);
}

static int
wait_call(struct caller *c)
{
    return crew_future_wait(c->future);
}

CREW_TEST(cancellation_points,
          a_waiter_cancelled_while_asleep_leaves_nothing_on_the_future)
{
    struct caller c = {0};
    crew_future *other;

    c.future = crew_test_promise();
    cancel_while_asleep(&c, wait_call);
    /* Resolving wakes the waiter, whose node must still be alive. */
    cr_assert_eq(crew_promise_resolve(c.future, NULL, NULL), 0);
    join_cancelled(&c);
    cr_assert_eq(c.result, 0);
    /* And the next waiter of another future is served as ever. */
    other = crew_test_promise();
    cr_assert_eq(crew_promise_resolve(other, NULL, NULL), 0);
    cr_assert_eq(crew_future_wait_for(other, TWO_SECONDS), 0);
    crew_future_release(other);
    crew_future_release(c.future);
}

static int
wait_all_call(struct caller *c)
{
    crew_error *error = NULL;
    int err = crew_wait_all(&c->future, 1, &error);

    crew_error_release(error);
    return err;
}

CREW_TEST(cancellation_points, a_thread_cancelled_in_wait_all_returns_first)
{
    struct caller c = {0};

    c.future = crew_test_promise();
    cancel_while_asleep(&c, wait_all_call);
    cr_assert_eq(crew_promise_fail(c.future, EIO, "late"), 0);
    join_cancelled(&c);
    cr_assert_eq(c.result, CREW_EAGGREGATE);
    crew_future_release(c.future);
}
