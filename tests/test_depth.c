/*
 * Depth: API.md, "Depth, lifetimes and hostile callers". No operation
 * recurses on the depth of a graph of futures: a when_all of a when_all
 * of ... a million levels deep resolves, cancels and releases in bounded
 * stack; a chain of a million continuations keeps alive only what is
 * still pending. A worker's wait helps as deep as its stack allows, not
 * a fixed number of levels, and when every worker is out of room the
 * pool starts spare workers, which run the thread hooks and are not
 * counted in the statistics' threads.
 *
 * A crash (stack overflow) or a hang is the failure most of these look
 * for; the suite's timeout turns a hang into a named one. The graphs stay
 * a million deep under ASan too, whose frames are larger: a recursive
 * walk would overflow there first. Nested waits on tasks shrink under
 * ASan, each level's frames being several times larger, but stay far
 * deeper than one stack could hold without spare workers.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

/* Deep enough that recursion on it overflows any default stack. */
#define GRAPH_DEPTH 1000000u

/* The slowest test takes about two seconds under ASan; the margin is for
 * loaded machines. A nested wait that hangs fails sooner, by name. */
TestSuite(depth, .timeout = 60);

/*
 * Joins GRAPH_DEPTH levels deep over @p innermost: each a when_all of the
 * one below. Keeps only the outermost, which it returns.
 */
static crew_future *
nest_joins(crew_future *innermost)
{
    crew_future *cur = crew_future_retain(innermost);

    for (unsigned i = 0; i < GRAPH_DEPTH; i++) {
        crew_future *next = NULL;
        int err = crew_when_all(&cur, 1, &next);

        cr_assert_eq(err, 0, "crew_when_all failed at level %u: %d", i, err);
        crew_future_release(cur);
        cur = next;
    }
    return cur;
}

CREW_TEST(depth, a_million_nested_when_all_resolve_from_the_innermost)
{
    crew_future *p = crew_test_promise();
    crew_future *outermost = nest_joins(p);

    cr_assert_eq(crew_future_state(outermost), CREW_PENDING);
    cr_assert_eq(crew_promise_fail(p, EIO, "deep"), 0);
    cr_assert_eq(crew_future_state(p), CREW_FAILED);
    cr_assert_eq(crew_future_state(outermost), CREW_FAILED,
                 "the failure did not reach the outermost join");
    cr_assert_eq(crew_error_code(crew_future_error(outermost)),
                 CREW_EAGGREGATE);
    cr_assert_eq(crew_error_count(crew_future_error(outermost)), 1);
    /* Frees a million joins and a million nested aggregates. */
    crew_future_release(outermost);
    crew_future_release(p);
}

CREW_TEST(depth,
          cancelling_the_outermost_of_a_million_nested_joins_cancels_them_all)
{
    crew_future *p = crew_test_promise();
    crew_future *outermost = nest_joins(p);

    cr_assert_eq(crew_future_cancel(outermost), 0);
    cr_assert_eq(crew_future_state(outermost), CREW_CANCELLED);
    cr_assert_eq(crew_future_state(p), CREW_CANCELLED,
                 "the request did not reach the innermost input");
    cr_assert_eq(crew_error_code(crew_future_error(outermost)), ECANCELED);
    cr_assert_eq(crew_future_cancel(outermost), EALREADY);
    crew_future_release(outermost);
    crew_future_release(p);
}

CREW_TEST(depth, releasing_a_million_nested_joins_takes_bounded_stack)
{
    crew_future *p = crew_test_promise();
    crew_future *outermost;

    cr_assert_eq(crew_promise_resolve(p, NULL, NULL), 0);
    outermost = nest_joins(p);
    cr_assert_eq(crew_future_state(outermost), CREW_SUCCEEDED);
    cr_assert_eq(crew_future_wait(outermost), 0);
    crew_future_release(p);
    /* The last reference to the chain: whatever the joins still hold
     * goes now, in one release. */
    crew_future_release(outermost);
}

/* ------------------------------------------------------------------ */
/* Chains of continuations                                             */
/* ------------------------------------------------------------------ */

static atomic_uint links_ran;
static atomic_uint links_saw_unresolved_input;

/* A link: notes that it ran and whether its input had succeeded. */
static int
link_fn(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)arg;
    if (crew_future_state(input) != CREW_SUCCEEDED)
        atomic_fetch_add(&links_saw_unresolved_input, 1);
    atomic_fetch_add(&links_ran, 1);
    return 0;
}

CREW_TEST(depth, a_chain_of_a_million_continuations_keeps_only_what_is_pending)
{
    crew_pool *pool = crew_test_pool(2);
    crew_future *g = crew_test_promise();
    crew_future *cur = crew_future_retain(g);
    size_t before, after, growth;

    before = scn_heap_in_use();
    for (unsigned i = 0; i < GRAPH_DEPTH; i++) {
        crew_future *next = NULL;
        int err = crew_then(pool, cur, link_fn, NULL, NULL, &next);

        cr_assert_eq(err, 0, "crew_then failed at link %u: %d", i, err);
        crew_future_release(cur);
        cur = next;
    }
    cr_assert_eq(atomic_load(&links_ran), 0);
    cr_assert_eq(crew_promise_resolve(g, NULL, NULL), 0);
    crew_future_release(g);
    cr_assert_eq(crew_future_wait(cur), 0);
    after = scn_heap_in_use();
    growth = after > before ? after - before : 0;
    cr_assert_eq(atomic_load(&links_ran), GRAPH_DEPTH);
    cr_assert_eq(atomic_load(&links_saw_unresolved_input), 0);
    /* Only the newest link is held; the old code kept every link alive
     * through the next one's input (176 bytes each, 176 MB). */
    cr_assert_lt(growth, (size_t)4 << 20,
                 "a finished chain of %u continuations still holds %zu "
                 "bytes",
                 GRAPH_DEPTH, growth);
    crew_future_release(cur);
    crew_pool_destroy(pool);
}

static atomic_uint input_values_freed;

static void
count_input_value_free(void *value)
{
    (void)value;
    atomic_fetch_add(&input_values_freed, 1);
}

CREW_TEST(depth, a_continuation_drops_its_input_once_fn_has_run)
{
    static int value;
    crew_pool *pool = crew_test_pool(1);
    crew_future *input = crew_test_promise();
    crew_future *cont = NULL;

    cr_assert_eq(crew_then(pool, input, link_fn, NULL, NULL, &cont), 0);
    /* The continuation's reference is now the last; it keeps the input
     * alive until fn has run, so resolving it below is still sound. */
    crew_future_release(input);
    cr_assert_eq(crew_promise_resolve(input, &value, count_input_value_free),
                 0);
    cr_assert_eq(crew_future_wait(cont), 0);
    cr_assert_eq(atomic_load(&links_ran), 1);
    /* arg_free, and with it the input's last reference, goes before the
     * continuation resolves. */
    cr_assert_eq(atomic_load(&input_values_freed), 1,
                 "a continuation that ran still holds its input");
    crew_future_release(cont);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&input_values_freed), 1);
}

/* ------------------------------------------------------------------ */
/* Nested waits                                                        */
/* ------------------------------------------------------------------ */

#ifdef CREW_TEST_ASAN
#define NESTED_DEFAULT_DEPTH 10000u
#else
#define NESTED_DEFAULT_DEPTH 50000u
#endif
#define NESTED_SMALL_STACK ((size_t)64 << 10)
#define NESTED_SMALL_DEPTH 3000u
#define OUTSIDE_WAIT_DEPTH 300u

static atomic_uint nested_ran;

/* One level of a chain: submit fn(level) to the task's pool and wait. */
static int
submit_and_wait(crew_task *task, crew_fn fn, uintptr_t level)
{
    crew_future *child = NULL;
    int err = crew_submit(crew_task_pool(task), fn, (void *)level, &child);

    if (err != 0)
        return crew_task_fail(task, err, "submit at level %zu", (size_t)level);
    err = crew_future_wait(child);
    crew_future_release(child);
    return err;
}

/* Level `arg`: submits level arg - 1 and waits on it; level 0 returns. */
static int
nested_task(crew_task *task, void *arg)
{
    uintptr_t level = (uintptr_t)arg;

    atomic_fetch_add(&nested_ran, 1);
    return level == 0 ? 0 : submit_and_wait(task, nested_task, level - 1);
}

/* How long a chain of nested waits may take: well under a second even
 * under ASan; a hang is the failure, named, not a suite timeout. */
#define NESTED_PATIENCE_NS (2ull * SCN_PATIENCE_MS * 1000000ull)

/*
 * Runs nested_task @p depth levels deep on @p pool; returns its wait, or
 * ETIMEDOUT, leaving the pool stuck (the caller's assertion ends the test
 * there: a pool whose tasks hang can be neither shut down nor freed).
 */
static int
run_nested(crew_pool *pool, unsigned depth)
{
    crew_future *root = NULL;
    int err;

    atomic_store(&nested_ran, 0);
    err = crew_submit(pool, nested_task, (void *)(uintptr_t)depth, &root);
    if (err != 0)
        return err;
    err = crew_future_wait_for(root, NESTED_PATIENCE_NS);
    if (err == ETIMEDOUT)
        return err;
    crew_future_release(root);
    return err;
}

/* Asserts that a chain @p depth waits deep finishes on @p pool, whose
 * workers @p what describes, every level run. */
static void
assert_nested_finish(crew_pool *pool, unsigned depth, const char *what)
{
    cr_assert_eq(run_nested(pool, depth), 0,
                 "%u nested waits on %s did not finish (%u levels ran)", depth,
                 what, atomic_load(&nested_ran));
    cr_assert_eq(atomic_load(&nested_ran), depth + 1);
}

static struct scn_gate deepest_reached = SCN_GATE_INIT;
static struct scn_gate outside_published = SCN_GATE_INIT;
static _Atomic(crew_future *) outside_work;
static atomic_uint outside_ran;

static int
outside_task(crew_task *task, void *arg)
{
    (void)arg;
    atomic_fetch_add(&outside_ran, 1);
    crew_task_return(task, &outside_ran, NULL);
    return 0;
}

/* Level `arg` of OUTSIDE_WAIT_DEPTH: the deepest waits on work the main
 * thread submits only once the chain is that deep. */
static int
waits_outside_task(crew_task *task, void *arg)
{
    uintptr_t level = (uintptr_t)arg;

    atomic_fetch_add(&nested_ran, 1);
    if (level == OUTSIDE_WAIT_DEPTH) {
        crew_future *outside;
        int err;

        scn_gate_add(&deepest_reached, 1);
        scn_gate_wait(&outside_published, 1);
        outside = atomic_load(&outside_work);
        /* Borrowed: the main thread releases it after the chain ends. */
        err = crew_future_wait(outside);
        if (err == 0 && crew_future_result(outside) != &outside_ran)
            err = EIO;
        return err;
    }
    return submit_and_wait(task, waits_outside_task, level + 1);
}

CREW_TEST(depth, a_task_256_deep_waiting_on_outside_work_finishes)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *root = NULL;
    crew_future *outside = NULL;

    cr_assert_eq(crew_submit(pool, waits_outside_task, (void *)0, &root), 0);
    cr_assert(scn_gate_reaches(&deepest_reached, 1),
              "the chain of waits never got %u deep", OUTSIDE_WAIT_DEPTH);
    cr_assert_eq(atomic_load(&nested_ran), OUTSIDE_WAIT_DEPTH + 1);
    cr_assert_eq(crew_submit(pool, outside_task, NULL, &outside), 0);
    atomic_store(&outside_work, outside);
    scn_gate_add(&outside_published, 1);
    /* Bounded: a hang is the failure this looks for, named here. */
    cr_assert_eq(crew_future_wait_for(root, SCN_PATIENCE_MS * 1000000ull), 0,
                 "a wait %u deep on outside work did not finish",
                 OUTSIDE_WAIT_DEPTH);
    cr_assert_eq(atomic_load(&outside_ran), 1);
    crew_future_release(root);
    crew_future_release(outside);
    crew_pool_destroy(pool);
}

CREW_TEST(depth, nested_waits_on_a_one_thread_pool_never_overflow_the_stack)
{
    crew_pool_options small = {.threads = 1, .stack_size = NESTED_SMALL_STACK};
    crew_pool *pool = crew_test_pool(1);

    assert_nested_finish(pool, NESTED_DEFAULT_DEPTH, "a one-thread pool");
    crew_pool_destroy(pool);

    /* Its one worker runs out of room within a few dozen levels: spare
     * workers run the rest. */
    cr_assert_eq(crew_pool_create(&pool, &small), 0);
    assert_nested_finish(pool, NESTED_SMALL_DEPTH, "64 KiB stacks");
    crew_pool_destroy(pool);
}

static atomic_uint hook_starts;
static atomic_uint hook_stops;
static atomic_uint hook_highest_worker;
static atomic_uint hook_wrong_user;

static void
count_start(crew_pool *pool, unsigned worker, void *user)
{
    unsigned highest = atomic_load(&hook_highest_worker);

    (void)pool;
    if (user != &hook_starts)
        atomic_fetch_add(&hook_wrong_user, 1);
    while (worker > highest && !atomic_compare_exchange_weak(
                                   &hook_highest_worker, &highest, worker))
        continue;
    atomic_fetch_add(&hook_starts, 1);
}

static void
count_stop(crew_pool *pool, unsigned worker, void *user)
{
    (void)pool;
    (void)worker;
    if (user != &hook_starts)
        atomic_fetch_add(&hook_wrong_user, 1);
    atomic_fetch_add(&hook_stops, 1);
}

CREW_TEST(depth, spare_workers_run_thread_hooks_and_are_not_counted_in_threads)
{
    crew_pool_options o = {.threads = 1,
                           .stack_size = NESTED_SMALL_STACK,
                           .on_thread_start = count_start,
                           .on_thread_stop = count_stop,
                           .user = &hook_starts};
    crew_pool_stats s;
    crew_pool *pool = NULL;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    cr_assert_eq(run_nested(pool, NESTED_SMALL_DEPTH), 0,
                 "%u nested waits on 64 KiB stacks did not finish (%u "
                 "levels ran, %u threads started)",
                 NESTED_SMALL_DEPTH, atomic_load(&nested_ran),
                 atomic_load(&hook_starts));
    cr_assert_eq(atomic_load(&nested_ran), NESTED_SMALL_DEPTH + 1);
    cr_assert_gt(atomic_load(&hook_starts), 1,
                 "no spare worker started, or it ran no start hook");
    cr_assert_gt(atomic_load(&hook_highest_worker), 0);
    cr_assert_eq(crew_pool_threads(pool), 1);

    /* Read once every thread has exited: the counters are then final. */
    cr_assert_eq(crew_pool_shutdown(pool, CREW_DRAIN), 0);
    cr_assert_eq(crew_pool_stats_get(pool, &s), 0);
    cr_assert_eq(s.threads, 1, "spare workers were counted in threads");
    cr_assert_eq(s.busy, 0);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.submitted, NESTED_SMALL_DEPTH + 1);
    cr_assert_eq(s.submitted, s.succeeded + s.failed + s.cancelled,
                 "submitted %llu, succeeded %llu, failed %llu, cancelled %llu",
                 (unsigned long long)s.submitted,
                 (unsigned long long)s.succeeded, (unsigned long long)s.failed,
                 (unsigned long long)s.cancelled);
    cr_assert_eq(s.succeeded, NESTED_SMALL_DEPTH + 1);
    crew_pool_destroy(pool);
    cr_assert_eq(atomic_load(&hook_stops), atomic_load(&hook_starts),
                 "%u threads started, %u stopped", atomic_load(&hook_starts),
                 atomic_load(&hook_stops));
    cr_assert_eq(atomic_load(&hook_wrong_user), 0);
}
