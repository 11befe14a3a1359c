#include "common.h"
#include "testkit.h"

/*
 * Task groups: every sentence of API.md's "Task groups" section. Each
 * policy's outcome, cancellation reaching queued, held and running
 * members and child groups, deadlines, the limit, closing, submission
 * errors, destroy, waits from workers and members, crew_task_group, and
 * the unobserved handler's view of groups. The races (cancel against
 * completion and the deadline, quorum against a failure, close against a
 * member's submission) are scenarios (scenarios/group.c), which TSan
 * runs too; allocation failures are in test_faults.c.
 *
 * Members are held on gates the test opens, or spin until cancelled;
 * none sleeps for a time the test depends on.
 */

#include <crew.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

TestSuite(group, CREW_SUITE);

#define MS 1000000ull

/* What a member does, scripted by the test. */
struct script {
    struct scn_hold *hold; /* held here first, when not NULL */
    bool until_cancelled;  /* spins until its cancellation is asked */
    int ret;               /* what it returns */
    atomic_int ran;        /* times it ran */
    atomic_int freed;      /* times its arg_free ran */
    atomic_bool saw_cancel;
};

static int
scripted(crew_task *task, void *arg)
{
    struct script *s = arg;

    atomic_fetch_add(&s->ran, 1);
    if (s->hold != NULL)
        scn_hold_task(task, s->hold);
    if (s->until_cancelled && !scn_spin_until_cancelled(task))
        return ETIMEDOUT; /* the test fails: nobody cancelled it */
    atomic_store(&s->saw_cancel, crew_task_cancelled(task));
    if (s->ret != 0)
        return crew_task_fail(task, s->ret, "member failed with %d", s->ret);
    return 0;
}

static void
script_freed(void *arg)
{
    struct script *s = arg;

    atomic_fetch_add(&s->freed, 1);
}

static crew_group *
make_group(crew_pool *pool, const crew_group_options *options)
{
    crew_group *g = NULL;

    cr_assert_eq(crew_group_create(&g, pool, options), 0);
    cr_assert_not_null(g);
    return g;
}

static size_t
add(crew_group *g, struct script *s, crew_future **future)
{
    size_t index = SIZE_MAX;

    cr_assert_eq(crew_group_submit(g, scripted, s, script_freed, 0, &index,
                                   future),
                 0);
    return index;
}

static int
ok_member(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                          */
/* ---------------------------------------------------------------- */

CREW_TEST(group, all_succeeds_when_every_member_does)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *g = make_group(pool, NULL);
    struct script s[8] = {{0}};
    crew_future *done = NULL;
    crew_error *error = (crew_error *)1;

    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(add(g, &s[i], NULL), i, "indices count up from 0");
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_group_wait(g, &error), 0);
    cr_assert_null(error);
    cr_assert_eq(crew_future_state(done), CREW_SUCCEEDED);
    cr_assert_null(crew_future_result(done));
    for (size_t i = 0; i < 8; i++) {
        cr_assert_eq(atomic_load(&s[i].ran), 1);
        cr_assert_eq(atomic_load(&s[i].freed), 1);
    }
    crew_group_destroy(g);
    crew_future_release(done); /* valid after the destroy */
    crew_pool_destroy(pool);
}

CREW_TEST(group, all_keeps_every_failure_in_member_order)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *g = make_group(pool, NULL);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct script s[6] = {{0}};
    crew_error *error = NULL;

    /* Members 1 and 4 fail; 4 is let through first. */
    s[1].ret = EIO;
    s[1].hold = &hold;
    s[4].ret = EPIPE;
    for (size_t i = 0; i < 6; i++)
        add(g, &s[i], NULL);
    crew_future *f4 = NULL;
    for (size_t i = 0; i < 100 && atomic_load(&s[4].ran) == 0; i++)
        scn_gate_wait_ms(&hold.entered, 2, 10);
    scn_hold_open(&hold);
    (void)f4;
    cr_assert_eq(crew_group_wait(g, &error), CREW_EAGGREGATE);
    cr_assert_not_null(error);
    cr_assert_eq(crew_error_code(error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 2);
    size_t at = SIZE_MAX;
    const crew_error *inner = crew_error_inner(error, 0, &at);
    cr_assert_eq(at, 1);
    cr_assert_eq(crew_error_code(inner), EIO);
    cr_assert_str_eq(crew_error_message(inner), "member failed with 5");
    inner = crew_error_inner(error, 1, &at);
    cr_assert_eq(at, 4);
    cr_assert_eq(crew_error_code(inner), EPIPE);
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(atomic_load(&s[i].ran), 1, "ALL runs every member");
    crew_error_release(error);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(group, cancel_on_failure_cancels_the_rest)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.policy = CREW_GROUP_CANCEL_ON_FAILURE};
    crew_group *g = make_group(pool, &o);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct script s[3] = {{0}};
    crew_future *queued = NULL;
    crew_error *error = NULL;

    /* Member 0 runs on one worker until cancelled; member 1 holds the
     * other, and fails once let go; member 2 waits in the queue. */
    s[0].until_cancelled = true;
    add(g, &s[0], NULL);
    while (atomic_load(&s[0].ran) == 0)
        sched_yield();
    s[1].hold = &hold;
    s[1].ret = EIO;
    add(g, &s[1], NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    add(g, &s[2], &queued);
    scn_hold_open(&hold);
    cr_assert_eq(crew_group_wait(g, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 1);
    size_t at = SIZE_MAX;
    cr_assert_eq(crew_error_code(crew_error_inner(error, 0, &at)), EIO);
    cr_assert_eq(at, 1);
    cr_assert(atomic_load(&s[0].saw_cancel), "the running one was asked");
    /* Cancelled by member 1's resolution, before its worker was free. */
    cr_assert_eq(atomic_load(&s[2].ran), 0);
    cr_assert_eq(crew_future_state(queued), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&s[2].freed), 1);
    /* Later submissions: the group is cancelled, by policy. */
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL, NULL),
                 ECANCELED);
    crew_error_release(error);
    crew_future_release(queued);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

static int
answer(crew_task *task, void *arg)
{
    crew_task_return(task, arg, NULL);
    return 0;
}

CREW_TEST(group, first_success_resolves_with_the_winners_future)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.policy = CREW_GROUP_FIRST_SUCCESS};
    crew_group *g = make_group(pool, &o);
    struct script failing = {.ret = EIO};
    struct script slow = {.until_cancelled = true};
    static int value = 42;
    crew_future *winner = NULL;
    crew_future *done = NULL;

    add(g, &failing, NULL);
    cr_assert_eq(crew_future_wait(NULL), EINVAL);
    add(g, &slow, NULL);
    cr_assert_eq(crew_group_submit(g, answer, &value, NULL, 0, NULL, &winner),
                 0);
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_future_wait(done), 0, "a failure does not matter");
    cr_assert_eq(crew_future_result(done), winner);
    cr_assert_eq(crew_future_result(crew_future_result(done)), &value);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    /* The rest is cancelled: asked while running, or never run. */
    cr_assert(atomic_load(&slow.ran) == 0 || atomic_load(&slow.saw_cancel));
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    crew_group_destroy(g);
    crew_future_release(winner);
    /* The group's future holds the winner's. */
    cr_assert_eq(crew_future_state(crew_future_result(done)), CREW_SUCCEEDED);
    crew_future_release(done);
    crew_pool_destroy(pool);
}

CREW_TEST(group, first_success_without_one_fails_with_the_aggregate)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.policy = CREW_GROUP_FIRST_SUCCESS};
    crew_group *g = make_group(pool, &o);
    struct script s[2] = {{.ret = EIO}, {.ret = EPIPE}};
    crew_error *error = NULL;

    add(g, &s[0], NULL);
    add(g, &s[1], NULL);
    cr_assert_eq(crew_group_wait(g, &error), CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(error), 2);
    crew_error_release(error);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, quorum_succeeds_at_quorum_and_cancels_the_rest)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.policy = CREW_GROUP_QUORUM, .quorum = 2};
    crew_group *g = make_group(pool, &o);
    struct script quick[2] = {{0}};
    struct script slow = {.until_cancelled = true};
    crew_future *done = NULL;

    add(g, &slow, NULL);
    while (atomic_load(&slow.ran) == 0)
        sched_yield();
    add(g, &quick[0], NULL);
    add(g, &quick[1], NULL);
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_future_wait(done), 0);
    cr_assert_null(crew_future_result(done));
    cr_assert(atomic_load(&slow.saw_cancel));
    crew_future_release(done);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, too_few_successes_is_enoent)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.policy = CREW_GROUP_QUORUM, .quorum = 3};
    crew_group *g = make_group(pool, &o);
    crew_future *one = NULL;
    crew_error *error = NULL;

    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL, &one),
                 0);
    cr_assert_eq(crew_group_wait(g, &error), ENOENT);
    cr_assert_eq(crew_error_code(error), ENOENT);
    cr_assert_str_eq(crew_error_message(error), "too few members succeeded");
    crew_error_release(error);
    crew_future_release(one);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, the_empty_group)
{
    crew_pool *pool = crew_test_pool(1);
    static const crew_group_policy policies[] = {
        CREW_GROUP_ALL, CREW_GROUP_CANCEL_ON_FAILURE,
        CREW_GROUP_FIRST_SUCCESS, CREW_GROUP_QUORUM};
    static const int expected[] = {0, 0, ENOENT, ENOENT};

    for (size_t i = 0; i < 4; i++) {
        crew_group_options o = {.policy = policies[i], .quorum = 1};
        crew_group *g = make_group(pool, &o);
        crew_future *done = NULL;

        cr_assert_eq(crew_group_close(g, &done), 0);
        /* Closed and empty: resolved by the close itself. */
        cr_assert_neq(crew_future_state(done), CREW_PENDING);
        cr_assert_eq(crew_group_wait(g, NULL), expected[i]);
        crew_future_release(done);
        crew_group_destroy(g);
    }
    crew_pool_destroy(pool);
}

CREW_TEST(group, cancelled_is_ecanceled_and_failures_still_come_first)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *g = make_group(pool, NULL);
    struct script spin = {.until_cancelled = true, .ret = 0};
    crew_future *done = NULL;

    add(g, &spin, NULL);
    cr_assert_eq(crew_group_cancel(g), 0);
    cr_assert_eq(crew_group_cancel(g), 0, "twice is harmless");
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_group_close(g, NULL), EALREADY);
    cr_assert_eq(crew_group_wait(g, NULL), ECANCELED);
    /* Asked while running, or never run. */
    cr_assert(atomic_load(&spin.ran) == 0 || atomic_load(&spin.saw_cancel));
    cr_assert_eq(crew_future_state(done), CREW_CANCELLED);
    crew_future_release(done);
    crew_group_destroy(g);

    /* A member that fails anyway: the aggregate wins over the cancel. */
    struct script failing = {.until_cancelled = true, .ret = EIO};
    g = make_group(pool, NULL);
    add(g, &failing, NULL);
    while (atomic_load(&failing.ran) == 0)
        sched_yield();
    cr_assert_eq(crew_group_cancel(g), 0);
    cr_assert_eq(crew_group_wait(g, NULL), CREW_EAGGREGATE);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_member_cancelled_alone_is_neither_success_nor_failure)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group *g = make_group(pool, NULL);
    struct script first = {.hold = &hold};
    struct script second = {0};
    crew_future *f = NULL;

    add(g, &first, NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    add(g, &second, &f);
    cr_assert_eq(crew_future_cancel(f), 0);
    scn_hold_open(&hold);
    cr_assert_eq(crew_group_wait(g, NULL), 0, "ALL, nothing failed");
    cr_assert_eq(atomic_load(&second.ran), 0);
    crew_future_release(f);
    crew_group_destroy(g);

    crew_group_options o = {.policy = CREW_GROUP_QUORUM, .quorum = 1};
    g = make_group(pool, &o);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(group, cancelling_the_done_future_cancels_the_group)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *g = make_group(pool, NULL);
    struct script spin = {.until_cancelled = true};
    crew_future *done = NULL;

    add(g, &spin, NULL);
    while (atomic_load(&spin.ran) == 0)
        sched_yield();
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(crew_future_cancel(done), 0);
    cr_assert_eq(crew_future_wait(done), ECANCELED);
    cr_assert(atomic_load(&spin.saw_cancel));
    cr_assert_eq(crew_future_cancel(done), EALREADY);
    crew_future_release(done);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

/* ---------------------------------------------------------------- */
/* Deadlines                                                         */
/* ---------------------------------------------------------------- */

CREW_TEST(group, a_deadline_fires_while_members_run)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.timeout_ns = 200 * MS};
    crew_group *g = make_group(pool, &o);
    struct script s[2] = {{.until_cancelled = true},
                          {.until_cancelled = true}};
    crew_error *error = NULL;

    add(g, &s[0], NULL);
    add(g, &s[1], NULL);
    /* Both running when the deadline comes, unless the machine is too
     * busy to start them within it. */
    for (uint64_t t0 = scn_now_ns();
         atomic_load(&s[0].ran) + atomic_load(&s[1].ran) < 2 &&
         scn_now_ns() - t0 < 100 * MS;)
        sched_yield();
    cr_assert_eq(crew_group_wait(g, &error), ETIMEDOUT);
    cr_assert_eq(crew_error_code(error), ETIMEDOUT);
    cr_assert_str_eq(crew_error_message(error), "the group's deadline passed");
    /* Running, each was asked to stop; still queued (a machine too busy
     * to start it before the deadline), it was cancelled unrun. */
    for (size_t i = 0; i < 2; i++)
        cr_assert(atomic_load(&s[i].ran) == 0 || atomic_load(&s[i].saw_cancel));
    crew_error_release(error);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_deadline_fires_while_members_are_held)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.limit = 1, .timeout_ns = 20 * MS};
    crew_group *g = make_group(pool, &o);
    struct script running = {.until_cancelled = true};
    struct script held[3] = {{0}};
    crew_future *f[3] = {NULL};

    add(g, &running, NULL);
    for (size_t i = 0; i < 3; i++) {
        add(g, &held[i], &f[i]);
        cr_assert_eq(crew_future_state(f[i]), CREW_PENDING);
    }
    cr_assert_eq(crew_group_wait(g, NULL), ETIMEDOUT);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_CANCELLED);
        cr_assert_eq(atomic_load(&held[i].ran), 0);
        cr_assert_eq(atomic_load(&held[i].freed), 1);
    }
    crew_future_release_all(f, 3);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_deadline_fires_when_nobody_waits)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.timeout_ns = 10 * MS};
    crew_group *g = make_group(pool, &o);
    struct script spin = {.until_cancelled = true};
    crew_future *f = NULL;

    add(g, &spin, &f);
    /* The member ends only once cancelled: by the deadline, unwaited.
     * Running, it returns; still queued then, it is cancelled unrun. */
    if (crew_future_wait(f) == 0)
        cr_assert(atomic_load(&spin.saw_cancel));
    else
        cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL, NULL),
                 ECANCELED);
    cr_assert_eq(crew_group_wait(g, NULL), ETIMEDOUT);
    crew_future_release(f);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_deadline_fires_no_earlier_than_its_timeout)
{
    crew_pool *pool = crew_test_pool(1);
    crew_group_options o = {.timeout_ns = 30 * MS};
    uint64_t t0 = scn_now_ns();
    crew_group *g = make_group(pool, &o);
    struct script spin = {.until_cancelled = true};

    add(g, &spin, NULL);
    cr_assert_eq(crew_group_wait(g, NULL), ETIMEDOUT);
    cr_assert_geq(scn_now_ns() - t0, 30 * MS);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, no_deadline_with_zero_or_forever)
{
    crew_pool *pool = crew_test_pool(1);
    uint64_t timeouts[] = {0, CREW_FOREVER};

    for (size_t i = 0; i < 2; i++) {
        crew_group_options o = {.timeout_ns = timeouts[i]};
        crew_group *g = make_group(pool, &o);
        cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL,
                                       NULL),
                     0);
        cr_assert_eq(crew_group_wait(g, NULL), 0);
        crew_group_destroy(g);
    }
    crew_pool_destroy(pool);
}

/* ---------------------------------------------------------------- */
/* The limit                                                         */
/* ---------------------------------------------------------------- */

struct load {
    atomic_int now;  /* members running */
    atomic_int most; /* the most at once */
    atomic_int done;
};

static int
counted(crew_task *task, void *arg)
{
    struct load *l = arg;
    int now = atomic_fetch_add(&l->now, 1) + 1;
    int most = atomic_load(&l->most);

    (void)task;
    while (now > most && !atomic_compare_exchange_weak(&l->most, &most, now))
        ;
    for (volatile int i = 0; i < 2000; i++)
        ;
    sched_yield();
    atomic_fetch_sub(&l->now, 1);
    atomic_fetch_add(&l->done, 1);
    return 0;
}

static int
submit_counted(crew_task *task, void *arg)
{
    crew_group *g = crew_task_group(task);

    /* Members adding members: the limit counts them too. */
    for (int i = 0; i < 4; i++) {
        int err = crew_group_submit(g, counted, arg, NULL, 0, NULL, NULL);
        if (err != 0)
            return err;
    }
    return counted(task, arg);
}

CREW_TEST(group, the_limit_is_never_exceeded)
{
    crew_pool *pool = crew_test_pool(4);
    crew_group_options o = {.limit = 3};
    crew_group *g = make_group(pool, &o);
    struct load l = {0};

    for (int i = 0; i < 300; i++)
        cr_assert_eq(crew_group_submit(g, i % 10 == 0 ? submit_counted
                                                       : counted,
                                       &l, NULL, 0, NULL, NULL),
                     0);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(atomic_load(&l.done), 300 + 30 * 4);
    cr_assert_leq(atomic_load(&l.most), 3);
    cr_assert_geq(atomic_load(&l.most), 1);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

/* A member that waits, a while, for company past the limit: with the
 * limit kept, none comes, and it leaves after its patience. */
static int
waits_for_company(crew_task *task, void *arg)
{
    struct load *l = arg;
    int now = atomic_fetch_add(&l->now, 1) + 1;
    int most = atomic_load(&l->most);
    uint64_t t0 = scn_now_ns();

    (void)task;
    while (now > most && !atomic_compare_exchange_weak(&l->most, &most, now))
        ;
    while (atomic_load(&l->now) <= 2 && scn_now_ns() - t0 < 20 * MS)
        sched_yield();
    most = atomic_load(&l->most);
    now = atomic_load(&l->now);
    while (now > most && !atomic_compare_exchange_weak(&l->most, &most, now))
        ;
    atomic_fetch_sub(&l->now, 1);
    atomic_fetch_add(&l->done, 1);
    return 0;
}

CREW_TEST(group, the_limit_holds_against_members_that_wait_for_company)
{
    crew_pool *pool = crew_test_pool(4);
    crew_group_options o = {.limit = 2};
    crew_group *g = make_group(pool, &o);
    struct load l = {0};

    /* Four workers, idle: one member more than the limit would run at
     * once, and the waiting members would see it. */
    for (int i = 0; i < 8; i++)
        cr_assert_eq(crew_group_submit(g, waits_for_company, &l, NULL, 0,
                                       NULL, NULL),
                     0);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(atomic_load(&l.done), 8);
    cr_assert_leq(atomic_load(&l.most), 2);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

CREW_TEST(group, held_members_wait_in_order_pending_and_in_no_queue)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group_options o = {.limit = 1};
    crew_group *g = make_group(pool, &o);
    struct script first = {.hold = &hold};
    struct script later[3] = {{0}};
    crew_future *f[3] = {NULL};
    crew_pool_stats stats;

    add(g, &first, NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(add(g, &later[i], &f[i]), i + 1);
    /* A free worker, and still nothing runs: they are in no queue. */
    cr_assert_eq(crew_future_wait_for(f[0], 20 * MS), ETIMEDOUT);
    cr_assert_eq(crew_pool_stats_get(pool, &stats), 0);
    cr_assert_eq(stats.queued, 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(crew_future_state(f[i]), CREW_PENDING);
    scn_hold_open(&hold);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&later[i].ran), 1);
    crew_future_release_all(f, 3);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

struct in_place {
    crew_future *held;    /* the held member's future */
    pid_t waiter_thread;  /* where the waiting member ran */
    pid_t held_thread;    /* where the held one ran */
    struct scn_gate ready;
};

static int
held_body(crew_task *task, void *arg)
{
    struct in_place *p = arg;

    (void)task;
    p->held_thread = scn_tid();
    return 0;
}

static int
waiting_body(crew_task *task, void *arg)
{
    struct in_place *p = arg;
    crew_group *g = crew_task_group(task);
    int err;

    p->waiter_thread = scn_tid();
    /* The limit is 1 and this member has it: the next one is held. */
    err = crew_group_submit(g, held_body, p, NULL, 0, NULL, &p->held);
    if (err != 0)
        return err;
    if (crew_future_state(p->held) != CREW_PENDING)
        return EPROTO;
    return crew_future_wait(p->held);
}

CREW_TEST(group, a_member_waiting_on_a_held_member_runs_it_in_its_place)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group_options o = {.limit = 1};
    crew_group *g = make_group(pool, &o);
    struct in_place p = {0};

    cr_assert_eq(crew_group_submit(g, waiting_body, &p, NULL, 0, NULL, NULL),
                 0);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(p.held_thread, p.waiter_thread, "run in the waiter's place");
    cr_assert_eq(crew_future_state(p.held), CREW_SUCCEEDED);
    crew_future_release(p.held);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

static int
wait_all_held(crew_task *task, void *arg)
{
    crew_group *g = crew_task_group(task);
    struct load *l = arg;
    crew_future *f[4] = {NULL};
    int err = 0;

    for (size_t i = 0; i < 4 && err == 0; i++)
        err = crew_group_submit(g, counted, l, NULL, 0, NULL, &f[i]);
    if (err == 0)
        err = crew_wait_all(f, 4, NULL);
    crew_future_release_all(f, 4);
    return err;
}

CREW_TEST(group, wait_all_from_a_member_runs_held_members_too)
{
    crew_pool *pool = crew_test_pool(1);
    crew_group_options o = {.limit = 1};
    crew_group *g = make_group(pool, &o);
    struct load l = {0};

    cr_assert_eq(crew_group_submit(g, wait_all_held, &l, NULL, 0, NULL, NULL),
                 0);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(atomic_load(&l.done), 4);
    cr_assert_eq(atomic_load(&l.most), 1);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
}

/* ---------------------------------------------------------------- */
/* Cancellation everywhere                                           */
/* ---------------------------------------------------------------- */

CREW_TEST(group, cancel_reaches_queued_held_and_running_members)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold busy = SCN_HOLD_INIT;
    crew_future *blocker = NULL;
    crew_group_options o = {.limit = 2};
    crew_group *g = make_group(pool, &o);
    struct script s[4] = {{0}};
    crew_future *f[4] = {NULL};

    /* The one worker runs member 0 (which spins until cancelled)... */
    s[0].until_cancelled = true;
    add(g, &s[0], &f[0]);
    while (atomic_load(&s[0].ran) == 0)
        sched_yield();
    /* ...so 1 is queued behind it, and 2 and 3 are held. */
    add(g, &s[1], &f[1]);
    add(g, &s[2], &f[2]);
    add(g, &s[3], &f[3]);
    cr_assert_eq(crew_group_cancel(g), 0);
    cr_assert_eq(crew_group_wait(g, NULL), ECANCELED);
    cr_assert(atomic_load(&s[0].saw_cancel), "running: asked");
    for (size_t i = 1; i < 4; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_CANCELLED);
        cr_assert_eq(atomic_load(&s[i].ran), 0);
        cr_assert_eq(atomic_load(&s[i].freed), 1);
    }
    crew_future_release_all(f, 4);
    crew_group_destroy(g);
    (void)blocker;
    crew_pool_destroy(pool);
    scn_hold_destroy(&busy);
}

/* A chain of groups, one inside the other's member, `depth` deep; the
 * innermost member spins until cancelled. */
struct chain {
    int depth;
    atomic_int made;
    atomic_int saw_cancel;
    crew_error *inner_errors[4];
    int codes[4];
};

struct link {
    struct chain *chain;
    int level;
};

static int
chain_member(crew_task *task, void *arg)
{
    struct link *here = arg;
    struct chain *c = here->chain;
    struct link next = {c, here->level + 1};
    crew_group *g = NULL;
    int err;

    if (here->level == c->depth) {
        atomic_fetch_add(&c->made, 1);
        if (!scn_spin_until_cancelled(task))
            return ETIMEDOUT;
        atomic_fetch_add(&c->saw_cancel, 1);
        return ECANCELED;
    }
    err = crew_group_create(&g, crew_task_pool(task), NULL);
    if (err != 0)
        return err;
    atomic_fetch_add(&c->made, 1);
    err = crew_group_submit(g, chain_member, &next, NULL, 0, NULL, NULL);
    if (err == 0) {
        /* Waiting on its own group's parent is EDEADLK. */
        if (crew_group_wait(crew_task_group(task), NULL) != EDEADLK)
            err = EPROTO;
        int code = crew_group_wait(g, NULL);
        c->codes[here->level] = code;
        if (crew_task_cancelled(task))
            atomic_fetch_add(&c->saw_cancel, 1);
    }
    crew_group_destroy(g);
    return err;
}

CREW_TEST(group, cancel_reaches_child_groups_three_levels_deep)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *root = make_group(pool, NULL);
    struct chain c = {.depth = 3};
    struct link top = {&c, 0};

    cr_assert_eq(crew_group_submit(root, chain_member, &top, NULL, 0, NULL,
                                   NULL),
                 0);
    /* Three child groups and the innermost member. */
    while (atomic_load(&c.made) < 4)
        sched_yield();
    cr_assert_eq(crew_group_cancel(root), 0);
    cr_assert_eq(crew_group_wait(root, NULL), ECANCELED);
    /* Every level saw it: 3 waiting members and the innermost one. */
    cr_assert_eq(atomic_load(&c.saw_cancel), 4);
    for (int level = 0; level < 3; level++)
        cr_assert_eq(c.codes[level], ECANCELED, "level %d", level);
    crew_group_destroy(root);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_child_inherits_its_parents_sooner_deadline)
{
    crew_pool *pool = crew_test_pool(2);
    /* Long enough for the chain to be made first, even on a busy
     * machine: the deadline must find the children there. */
    crew_group_options o = {.timeout_ns = 200 * MS};
    crew_group *root = make_group(pool, &o);
    struct chain c = {.depth = 2};
    struct link top = {&c, 0};

    cr_assert_eq(crew_group_submit(root, chain_member, &top, NULL, 0, NULL,
                                   NULL),
                 0);
    cr_assert_eq(crew_group_wait(root, NULL), ETIMEDOUT);
    cr_assert_eq(c.codes[0], ETIMEDOUT);
    cr_assert_eq(c.codes[1], ETIMEDOUT);
    crew_group_destroy(root);
    crew_pool_destroy(pool);
}

struct late_child {
    struct scn_hold *hold;
    crew_group *child;
    atomic_bool child_done;
};

static int
late_child_member(crew_task *task, void *arg)
{
    struct late_child *l = arg;

    (void)task;
    scn_hold_task(task, l->hold);
    atomic_store(&l->child_done, true);
    return 0;
}

static int
makes_child(crew_task *task, void *arg)
{
    struct late_child *l = arg;
    int err = crew_group_create(&l->child, crew_task_pool(task), NULL);

    if (err != 0)
        return err;
    /* Returns with its child still running: the parent waits for it. */
    err = crew_group_submit(l->child, late_child_member, l, NULL, 0, NULL,
                            NULL);
    if (err == 0)
        err = crew_group_close(l->child, NULL);
    return err;
}

CREW_TEST(group, a_group_resolves_after_its_child_groups)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group *g = make_group(pool, NULL);
    struct late_child l = {.hold = &hold};
    crew_future *done = NULL;

    cr_assert_eq(crew_group_submit(g, makes_child, &l, NULL, 0, NULL, NULL),
                 0);
    cr_assert_eq(crew_group_close(g, &done), 0);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    cr_assert_eq(crew_future_wait_for(done, 20 * MS), ETIMEDOUT);
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(done), 0);
    cr_assert(atomic_load(&l.child_done));
    crew_future_release(done);
    crew_group_destroy(g);
    crew_group_destroy(l.child);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

/* ---------------------------------------------------------------- */
/* Closing, submitting, destroying                                   */
/* ---------------------------------------------------------------- */

struct adder {
    crew_group *group;
    atomic_int added;
    int err_from_member;
};

static int
adds_after_close(crew_task *task, void *arg)
{
    struct adder *a = arg;
    crew_group *g = crew_task_group(task);
    size_t index;

    if (g != a->group)
        return EPROTO;
    a->err_from_member =
        crew_group_submit(g, ok_member, NULL, NULL, 0, &index, NULL);
    if (a->err_from_member == 0)
        atomic_fetch_add(&a->added, 1);
    return 0;
}

CREW_TEST(group, members_add_members_after_close_and_outsiders_cannot)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group *g = make_group(pool, NULL);
    struct adder a = {.group = g};
    struct script held = {.hold = &hold};

    add(g, &held, NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    cr_assert_eq(crew_group_close(g, NULL), 0);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, NULL, NULL),
                 ESHUTDOWN);
    /* The held member is still running: a member submitted now... is not
     * possible from here; let one of them add. */
    scn_hold_open(&hold);
    crew_group_wait(g, NULL);
    crew_group_destroy(g);

    g = make_group(pool, NULL);
    a.group = g;
    struct scn_hold hold2 = SCN_HOLD_INIT;
    struct script gate = {.hold = &hold2};
    add(g, &gate, NULL);
    cr_assert_eq(scn_gate_await(&hold2.entered, 1), 1);
    cr_assert_eq(crew_group_submit(g, adds_after_close, &a, NULL, 0, NULL,
                                   NULL),
                 0);
    /* adds_after_close may run before or after the close: both ways a
     * member may add. */
    cr_assert_eq(crew_group_close(g, NULL), 0);
    scn_hold_open(&hold2);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(a.err_from_member, 0);
    cr_assert_eq(atomic_load(&a.added), 1);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    scn_hold_destroy(&hold2);
}

static int
close_then_add(crew_task *task, void *arg)
{
    struct adder *a = arg;

    (void)task;
    /* The test closed the group before letting this member go. */
    a->err_from_member =
        crew_group_submit(a->group, ok_member, NULL, NULL, 0, NULL, NULL);
    return 0;
}

CREW_TEST(group, a_member_adds_after_the_close_it_waited_for)
{
    crew_pool *pool = crew_test_pool(2);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group *g = make_group(pool, NULL);
    struct adder a = {.group = g, .err_from_member = -1};
    struct script gate = {.hold = &hold};
    crew_future *f = NULL;

    add(g, &gate, NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    /* close_then_add is queued on the free worker only after the close;
     * to be sure, it holds at the same gate. */
    struct script wait_gate = {.hold = &hold};
    add(g, &wait_gate, NULL);
    cr_assert_eq(scn_gate_await(&hold.entered, 2), 2);
    cr_assert_eq(crew_group_submit(g, close_then_add, &a, NULL, 0, NULL, &f),
                 0);
    cr_assert_eq(crew_group_close(g, NULL), 0);
    scn_hold_open(&hold);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    cr_assert_eq(a.err_from_member, 0);
    crew_future_release(f);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(group, submission_errors_change_nothing)
{
    crew_pool *pool = crew_test_pool(1);
    crew_group *g = make_group(pool, NULL);
    struct script s = {0};
    size_t index = 77;
    crew_future *f = (crew_future *)1;

    cr_assert_eq(crew_group_submit(NULL, ok_member, NULL, NULL, 0, &index, &f),
                 EINVAL);
    cr_assert_null(f);
    f = (crew_future *)1;
    cr_assert_eq(crew_group_submit(g, NULL, NULL, NULL, 0, &index, &f), EINVAL);
    cr_assert_null(f);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0x80, &index, &f),
                 EINVAL);
    cr_assert_eq(crew_group_cancel(g), 0);
    cr_assert_eq(crew_group_submit(g, scripted, &s, script_freed, 0, &index,
                                   &f),
                 ECANCELED);
    cr_assert_eq(index, 77);
    cr_assert_null(f);
    cr_assert_eq(atomic_load(&s.freed), 0, "arg_free is not called");
    cr_assert_eq(crew_group_wait(g, NULL), ECANCELED);
    crew_group_destroy(g);

    g = make_group(pool, NULL);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_group_submit(g, scripted, &s, script_freed, 0, &index,
                                   &f),
                 ESHUTDOWN);
    cr_assert_eq(index, 77);
    cr_assert_eq(atomic_load(&s.ran) + atomic_load(&s.freed), 0);
    cr_assert_eq(crew_group_wait(g, NULL), 0, "the empty group");
    crew_group_destroy(g);
    crew_group *none = (crew_group *)1;
    cr_assert_eq(crew_group_create(&none, pool, NULL), ESHUTDOWN);
    cr_assert_null(none);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_refused_submission_takes_no_index)
{
    crew_pool_options po = {.threads = 1, .max_queued = 1};
    crew_pool *pool = NULL;
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_group *g;
    struct script gate = {.hold = &hold};
    size_t index = 99;

    cr_assert_eq(crew_pool_create(&pool, &po), 0);
    g = make_group(pool, NULL);
    cr_assert_eq(add(g, &gate, NULL), 0);
    cr_assert_eq(scn_gate_await(&hold.entered, 1), 1);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, CREW_NONBLOCKING,
                                   &index, NULL),
                 0);
    cr_assert_eq(index, 1);
    /* The one slot is taken: refused, and no index is spent. */
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, CREW_NONBLOCKING,
                                   &index, NULL),
                 EAGAIN);
    cr_assert_eq(index, 1);
    scn_hold_open(&hold);
    cr_assert_eq(crew_group_submit(g, ok_member, NULL, NULL, 0, &index, NULL),
                 0);
    cr_assert_eq(index, 2);
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    crew_group_destroy(g);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}

CREW_TEST(group, bad_arguments)
{
    crew_pool *pool = crew_test_pool(1);
    crew_group *g = (crew_group *)1;
    crew_group_options bad_policy = {.policy = (crew_group_policy)7};
    crew_group_options no_quorum = {.policy = CREW_GROUP_QUORUM};

    cr_assert_eq(crew_group_create(NULL, pool, NULL), EINVAL);
    cr_assert_eq(crew_group_create(&g, NULL, NULL), EINVAL);
    cr_assert_null(g);
    cr_assert_eq(crew_group_create(&g, pool, &bad_policy), EINVAL);
    cr_assert_eq(crew_group_create(&g, pool, &no_quorum), EINVAL);
    cr_assert_eq(crew_group_cancel(NULL), EINVAL);
    cr_assert_eq(crew_group_close(NULL, NULL), EINVAL);
    cr_assert_eq(crew_group_wait(NULL, NULL), EINVAL);
    crew_group_destroy(NULL);
    cr_assert_null(crew_task_group(NULL));
    crew_pool_destroy(pool);
}

CREW_TEST(group, destroy_cancels_an_open_group_and_waits_for_its_members)
{
    crew_pool *pool = crew_test_pool(2);
    crew_group *g = make_group(pool, NULL);
    struct script s[2] = {{.until_cancelled = true},
                          {.until_cancelled = true}};
    crew_future *f = NULL;

    add(g, &s[0], &f);
    add(g, &s[1], NULL);
    while (atomic_load(&s[0].ran) + atomic_load(&s[1].ran) < 2)
        sched_yield();
    crew_group_destroy(g);
    /* Returned once both had ended. */
    cr_assert_eq(atomic_load(&s[0].freed) + atomic_load(&s[1].freed), 2);
    cr_assert(atomic_load(&s[0].saw_cancel) && atomic_load(&s[1].saw_cancel));
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED, "still valid");
    crew_future_release(f);
    crew_pool_destroy(pool);
}

struct self_destroy {
    crew_group *group;
    atomic_int destroyed;
};

static int
destroys_its_group(crew_task *task, void *arg)
{
    struct self_destroy *d = arg;

    /* Cancels and closes, without waiting for itself. */
    crew_group_destroy(d->group);
    atomic_store(&d->destroyed, 1);
    return crew_task_cancelled(task) ? 0 : EPROTO;
}

CREW_TEST(group, destroy_from_a_member_frees_the_group_once_resolved)
{
    crew_pool *pool = crew_test_pool(2);
    struct self_destroy d = {0};
    crew_future *f = NULL;

    d.group = make_group(pool, NULL);
    cr_assert_eq(crew_group_submit(d.group, destroys_its_group, &d, NULL, 0,
                                   NULL, &f),
                 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(atomic_load(&d.destroyed), 1);
    crew_future_release(f);
    /* The leak check at the end says the group went. */
    crew_pool_destroy(pool);
}

struct from_worker {
    int code;
    atomic_int ran;
};

static int
bump_member(crew_task *task, void *arg)
{
    struct from_worker *w = arg;

    (void)task;
    atomic_fetch_add(&w->ran, 1);
    return 0;
}

static int
waits_on_a_group(crew_task *task, void *arg)
{
    struct from_worker *w = arg;
    crew_group *g = NULL;
    int err = crew_group_create(&g, crew_task_pool(task), NULL);

    if (err != 0)
        return err;
    if (crew_task_group(task) != NULL)
        return EPROTO; /* a plain task is in no group */
    for (int i = 0; i < 10 && err == 0; i++)
        err = crew_group_submit(g, bump_member, w, NULL, 0, NULL, NULL);
    w->code = crew_group_wait(g, NULL);
    crew_group_destroy(g);
    return err;
}

CREW_TEST(group, a_wait_from_a_worker_helps_on_a_one_thread_pool)
{
    crew_pool *pool = crew_test_pool(1);
    struct from_worker w = {.code = -1};
    crew_future *f = NULL;

    cr_assert_eq(crew_submit(pool, waits_on_a_group, &w, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(w.code, 0);
    cr_assert_eq(atomic_load(&w.ran), 10);
    crew_future_release(f);
    crew_pool_destroy(pool);
}

static int
spawned_sees_group(crew_task *task, void *arg)
{
    crew_group **seen = arg;

    *seen = crew_task_group(task);
    return 0;
}

struct membership {
    crew_group *group;
    crew_group *seen;
    crew_group *seen_spawned;
    int deadlock;
};

static int
member_looks(crew_task *task, void *arg)
{
    struct membership *m = arg;
    crew_frame frame;

    m->seen = crew_task_group(task);
    m->deadlock = crew_group_wait(m->group, NULL);
    crew_spawn(task, &frame, spawned_sees_group, &m->seen_spawned);
    return crew_sync(task, &frame);
}

CREW_TEST(group, crew_task_group_in_members_and_spawned_calls)
{
    crew_pool *pool = crew_test_pool(2);
    struct membership m = {0};

    m.group = make_group(pool, NULL);
    cr_assert_eq(crew_group_submit(m.group, member_looks, &m, NULL, 0, NULL,
                                   NULL),
                 0);
    cr_assert_eq(crew_group_wait(m.group, NULL), 0);
    cr_assert_eq(m.seen, m.group);
    cr_assert_eq(m.seen_spawned, m.group);
    cr_assert_eq(m.deadlock, EDEADLK);
    crew_group_destroy(m.group);
    crew_pool_destroy(pool);
}

CREW_TEST(group, a_cancel_shutdown_cancels_held_members_a_drain_runs_them)
{
    for (int how = 0; how < 2; how++) {
        crew_pool *pool = crew_test_pool(1);
        struct scn_hold hold = SCN_HOLD_INIT;
        crew_group_options o = {.limit = 1};
        crew_group *g = make_group(pool, &o);
        /* Cancelling: the first member runs until the shutdown asks it
         * to stop. Draining: until the test lets it go. */
        struct script first = {.hold = how == 0 ? NULL : &hold,
                               .until_cancelled = how == 0};
        struct script held[3] = {{0}};
        crew_future *f[3] = {NULL};

        add(g, &first, NULL);
        while (atomic_load(&first.ran) == 0)
            sched_yield();
        for (size_t i = 0; i < 3; i++)
            add(g, &held[i], &f[i]);
        scn_hold_open(&hold);
        cr_assert_eq(crew_pool_shutdown(pool, how == 0 ? CREW_CANCEL
                                                       : CREW_DRAIN),
                     0);
        for (size_t i = 0; i < 3; i++) {
            cr_assert_eq(crew_future_wait(f[i]),
                         how == 0 ? ECANCELED : 0);
            cr_assert_eq(atomic_load(&held[i].ran), how == 0 ? 0 : 1);
            cr_assert_eq(atomic_load(&held[i].freed), 1);
        }
        cr_assert_eq(crew_group_wait(g, NULL), 0, "ALL: nothing failed");
        crew_future_release_all(f, 3);
        crew_group_destroy(g);
        crew_pool_destroy(pool);
        scn_hold_destroy(&hold);
    }
}

/* ---------------------------------------------------------------- */
/* Unobserved failures                                               */
/* ---------------------------------------------------------------- */

static atomic_int reports;
static int report_code;

static void
count_report(const crew_error *error, void *user)
{
    (void)user;
    report_code = crew_error_code(error);
    atomic_fetch_add(&reports, 1);
}

CREW_TEST(group, members_failures_are_the_groups_to_report)
{
    crew_pool *pool = crew_test_pool(2);
    struct script s[3] = {{.ret = EIO}, {.ret = EPIPE}, {0}};
    crew_group *g;

    crew_set_unobserved(count_report, NULL);
    /* Observed by its wait: nothing is reported. */
    g = make_group(pool, NULL);
    for (size_t i = 0; i < 3; i++)
        add(g, &s[i], NULL);
    cr_assert_eq(crew_group_wait(g, NULL), CREW_EAGGREGATE);
    crew_group_destroy(g);
    cr_assert_eq(atomic_load(&reports), 0);

    /* Destroyed unlooked-at: the group's aggregate, once; the members'
     * failures are inside it and never reported alone. */
    g = make_group(pool, NULL);
    for (size_t i = 0; i < 3; i++)
        add(g, &s[i], NULL);
    crew_future *done = NULL;
    cr_assert_eq(crew_group_close(g, &done), 0);
    /* Resolved before the destroy, which would cancel it; its state is
     * no look at its failure. */
    while (crew_future_state(done) == CREW_PENDING)
        sched_yield();
    crew_future_release(done);
    crew_group_destroy(g);
    /* Its last reference may be the worker's that resolved it: once the
     * pool is gone, it has gone. */
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&reports), 1);
    cr_assert_eq(report_code, CREW_EAGGREGATE);
    crew_set_unobserved(NULL, NULL);
}

CREW_TEST(group, a_cancelled_members_husk_outlives_its_group_safely)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold hold = SCN_HOLD_INIT;
    crew_future *blocker = NULL;
    crew_group *g = make_group(pool, NULL);
    struct script s = {0};
    crew_future *f = NULL;

    /* The one worker is busy: the member waits in the queue. */
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &blocker), 0);
    add(g, &s, &f);
    /* Cancelled where it lies: resolved and accounted for at once, its
     * job left in the queue as a husk... */
    cr_assert_eq(crew_future_cancel(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_CANCELLED);
    /* ...so the group resolves and goes before the worker reaches it. */
    cr_assert_eq(crew_group_wait(g, NULL), 0);
    crew_group_destroy(g);
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(blocker), 0);
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0); /* past the husk */
    cr_assert_eq(atomic_load(&s.ran), 0);
    cr_assert_eq(atomic_load(&s.freed), 1);
    crew_future_release(f);
    crew_future_release(blocker);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
}
