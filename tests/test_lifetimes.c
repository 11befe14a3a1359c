/*
 * Lifetimes: API.md, "Depth, lifetimes and hostile callers". A wait that
 * times out, and a when_any or fail-fast join released before its inputs
 * resolve, leave nothing registered on those inputs: polling in a loop
 * uses no more memory at each turn. A released join that has a callback
 * still resolves and calls back. A promise whose last reference goes
 * unresolved resolves CREW_CANCELLED first: its callbacks run once, and
 * one may keep the promise.
 *
 * Memory is measured as the heap's growth over a loop (scn_heap_in_use()),
 * after a warm-up that fills the library's per-thread caches; the bounds
 * are far below what one registration left behind per turn would cost.
 * The leak check of CREW_TEST covers the rest under ASan.
 *
 * The races of a join released while its inputs resolve, and of spare
 * workers under load, are the scenarios in scenarios/lifetimes.c, which
 * the TSan driver runs too.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

TestSuite(lifetimes, CREW_SUITE);

#define INPUTS     8
#define POLLS      100000u
#define WARM_UP    1000u
#define GROWTH_MAX ((size_t)1 << 20)
#define CALLBACKS  1000u

static void
make_promises(crew_future **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i] = crew_test_promise();
}

/* Resolves each promise, then releases it. */
static void
resolve_and_release(crew_future **f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(crew_promise_resolve(f[i], NULL, NULL), 0);
        crew_future_release(f[i]);
    }
}

static size_t
growth_since(size_t before)
{
    size_t after = scn_heap_in_use();

    return after > before ? after - before : 0;
}

CREW_TEST(lifetimes, a_timed_out_wait_any_leaves_nothing_on_its_inputs)
{
    crew_future *in[INPUTS];
    size_t before = 0, growth;
    size_t index = 77;

    make_promises(in, INPUTS);
    for (unsigned i = 0; i < WARM_UP; i++)
        cr_assert_eq(crew_wait_any(in, INPUTS, 0, &index), ETIMEDOUT);
    before = scn_heap_in_use();
    for (unsigned i = 0; i < POLLS; i++) {
        int err = crew_wait_any(in, INPUTS, 0, &index);

        if (err != ETIMEDOUT)
            cr_assert_fail("poll %u returned %d, not ETIMEDOUT", i, err);
    }
    growth = growth_since(before);
    cr_assert_eq(index, 77, "a timed-out wait_any wrote *index");
    /* The old code left 416 bytes on the inputs a call: 40 MB. */
    cr_assert_lt(growth, GROWTH_MAX,
                 "%u timed-out polls grew the heap by %zu bytes", POLLS,
                 growth);
    for (size_t i = 0; i < INPUTS; i++)
        cr_assert_eq(crew_future_state(in[i]), CREW_PENDING);
    resolve_and_release(in, INPUTS);
}

typedef int (*join_fn)(crew_future *const *futures, size_t n,
                       crew_future **join);

static int
fail_fast_join(crew_future *const *futures, size_t n, crew_future **join)
{
    return crew_when_all_ex(futures, n, CREW_FAIL_FAST, join);
}

/* Joins `in` with `join`, still pending, and releases it, POLLS times
 * after a warm-up; fails the test if that grows the heap. */
static void
release_pending_joins(crew_future **in, join_fn join, const char *what)
{
    size_t before = 0, growth;

    for (unsigned i = 0; i < WARM_UP + POLLS; i++) {
        crew_future *j = NULL;
        int err;

        if (i == WARM_UP)
            before = scn_heap_in_use();
        err = join(in, INPUTS, &j);
        if (err != 0 || crew_future_state(j) != CREW_PENDING)
            cr_assert_fail("%s %u: %d", what, i, err);
        crew_future_release(j);
    }
    growth = growth_since(before);
    cr_assert_lt(growth, GROWTH_MAX,
                 "%u released %s joins grew the heap by %zu bytes", POLLS, what,
                 growth);
}

CREW_TEST(lifetimes, a_released_when_any_leaves_nothing_on_pending_inputs)
{
    crew_future *in[INPUTS];

    make_promises(in, INPUTS);
    release_pending_joins(in, crew_when_any, "when_any");
    resolve_and_release(in, INPUTS);
}

CREW_TEST(lifetimes, a_released_fail_fast_join_leaves_nothing_on_pending_inputs)
{
    crew_future *in[INPUTS];

    make_promises(in, INPUTS);
    release_pending_joins(in, fail_fast_join, "fail-fast");
    /* Inputs that fail afterwards find nothing of the joins. */
    for (size_t i = 0; i < INPUTS; i++) {
        cr_assert_eq(crew_promise_fail(in[i], EIO, "late %zu", i), 0);
        cr_assert_eq(crew_error_code(crew_future_error(in[i])), EIO);
        crew_future_release(in[i]);
    }
}

CREW_TEST(lifetimes,
          a_released_join_with_a_callback_still_resolves_and_calls_back)
{
    crew_future *in[3];
    crew_future *any = NULL;
    struct scn_seen seen;

    scn_seen_init(&seen);
    make_promises(in, 3);
    cr_assert_eq(crew_when_any(in, 3, &any), 0);
    cr_assert_eq(crew_future_on_complete(any, scn_seen_cb, &seen), 0);
    crew_future_release(any);
    cr_assert_eq(scn_gate_count(&seen.calls), 0);

    /* The join resolves, and calls back, inside this resolution. */
    cr_assert_eq(crew_promise_resolve(in[1], NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 1,
                 "a released join's callback did not run");
    cr_assert_eq(seen.state, CREW_SUCCEEDED);
    cr_assert_eq(seen.result, (void *)in[1], "the wrong winner");
    cr_assert_eq(crew_promise_resolve(in[0], NULL, NULL), 0);
    cr_assert_eq(crew_promise_fail(in[2], EIO, "late"), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 1, "a callback ran twice");
    scn_release_all(in, 3);
    scn_gate_destroy(&seen.calls);
}

/* What one callback on an abandoned promise saw. */
struct abandoned_seen {
    atomic_uint calls;
    crew_state state;
    int code;
    unsigned order; /* its place among every call */
};

static atomic_uint abandoned_calls;

static void
abandoned_cb(crew_future *future, void *user)
{
    struct abandoned_seen *seen = user;

    seen->state = crew_future_state(future);
    seen->code = crew_error_code(crew_future_error(future));
    seen->order = atomic_fetch_add(&abandoned_calls, 1);
    atomic_fetch_add(&seen->calls, 1);
}

CREW_TEST(lifetimes,
          a_promise_released_unresolved_runs_its_callbacks_once_as_cancelled)
{
    struct abandoned_seen *seen = calloc(CALLBACKS, sizeof(*seen));
    crew_future *p = crew_test_promise();

    cr_assert_not_null(seen);
    for (unsigned i = 0; i < CALLBACKS; i++)
        cr_assert_eq(crew_future_on_complete(p, abandoned_cb, &seen[i]), 0);
    cr_assert_eq(atomic_load(&abandoned_calls), 0);
    crew_future_release(p);

    cr_assert_eq(atomic_load(&abandoned_calls), CALLBACKS);
    for (unsigned i = 0; i < CALLBACKS; i++) {
        cr_assert_eq(atomic_load(&seen[i].calls), 1, "callback %u ran %u times",
                     i, atomic_load(&seen[i].calls));
        cr_assert_eq(seen[i].state, CREW_CANCELLED, "callback %u saw %d", i,
                     (int)seen[i].state);
        cr_assert_eq(seen[i].code, ECANCELED);
        cr_assert_eq(seen[i].order, i, "callbacks ran out of order");
    }
    free(seen);
}

static crew_future *kept;
static crew_state kept_state_in_cb;

static void
keep_cb(crew_future *future, void *user)
{
    (void)user;
    kept_state_in_cb = crew_future_state(future);
    kept = crew_future_retain(future);
}

CREW_TEST(lifetimes, a_callback_may_keep_an_abandoned_promise)
{
    static int value;
    crew_future *p = crew_test_promise();

    cr_assert_eq(crew_future_on_complete(p, keep_cb, NULL), 0);
    crew_future_release(p);
    cr_assert_eq(kept, p, "the callback did not run with the promise");
    cr_assert_eq(kept_state_in_cb, CREW_CANCELLED);

    /* Still a whole future: readable, resolved for good. */
    cr_assert_eq(crew_future_state(kept), CREW_CANCELLED);
    cr_assert_eq(crew_future_wait(kept), ECANCELED);
    cr_assert_null(crew_future_result(kept));
    cr_assert_eq(crew_error_code(crew_future_error(kept)), ECANCELED);
    cr_assert_eq(crew_promise_resolve(kept, &value, NULL), EALREADY);
    cr_assert_eq(crew_future_cancel(kept), EALREADY);
    crew_future_release(kept);
}
