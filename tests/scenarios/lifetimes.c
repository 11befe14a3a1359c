/*
 * Lifetimes under races (API.md, "Depth, lifetimes and hostile callers"):
 *
 * - lifetimes_when_any_released_while_inputs_resolve: one thread settles
 *   promises (resolve, fail, cancel, in a random order) while another
 *   builds when_any joins over them and releases each at once: some
 *   unread, some read first, some with a callback registered. A join
 *   released before its inputs resolve must leave nothing on them, one
 *   with a callback must still resolve and call back once, and every
 *   join seen resolved must have a winner among its inputs. The heap
 *   must not grow with the rounds.
 * - lifetimes_spare_workers_under_load: a two-thread pool with 64 KiB
 *   stacks, two outside threads each running a chain of nested
 *   submit-and-wait deeper than those stacks hold, while the main thread
 *   floods the pool with plain tasks. The waits that run out of room
 *   block; spare workers must run the rest; everything finishes, and the
 *   statistics add up once the pool has shut down.
 *
 * Threads meet at barriers: `start` opens a round, `done` closes it; the
 * main thread prepares a round before `start` and checks it after
 * `done`.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* lifetimes_when_any_released_while_inputs_resolve                    */
/* ------------------------------------------------------------------ */

#define WA_INPUTS 4
#define WA_JOINS  16
/* The most the heap may grow over the whole scenario: a join, or its
 * registrations, left behind per round would cost several times this. */
#define WA_GROWTH_MAX ((size_t)256 << 10)

struct wa {
    crew_future *in[WA_INPUTS]; /* written by main between rounds */
    pthread_barrier_t start;
    pthread_barrier_t done;
    bool stop;
    uint64_t rng;      /* the settler's */
    atomic_uint calls; /* callbacks run, this round */
    struct scn_verdict *verdict;
};

/* Whether @p winner is one of the round's inputs from @p first on, and
 * resolved. */
static bool
wa_winner_ok(struct wa *wa, unsigned first, const crew_future *winner)
{
    for (size_t i = first; i < WA_INPUTS; i++)
        if (wa->in[i] == winner)
            return scn_resolved(crew_future_state(winner));
    return false;
}

static void
wa_cb(crew_future *any, void *arg)
{
    struct wa *wa = arg;

    SCN_CHECK(wa->verdict, crew_future_state(any) == CREW_SUCCEEDED,
              "a released when_any called back unresolved or not succeeded");
    SCN_CHECK(wa->verdict, wa_winner_ok(wa, 0, crew_future_result(any)),
              "a released when_any called back without a winner among "
              "its inputs");
    atomic_fetch_add(&wa->calls, 1);
}

static void *
wa_settler(void *arg)
{
    struct wa *wa = arg;

    for (;;) {
        unsigned order[WA_INPUTS];

        pthread_barrier_wait(&wa->start);
        if (wa->stop)
            break;
        for (unsigned i = 0; i < WA_INPUTS; i++)
            order[i] = i;
        for (unsigned i = WA_INPUTS - 1; i > 0; i--) {
            unsigned j = scn_below(&wa->rng, i + 1);
            unsigned t = order[i];

            order[i] = order[j];
            order[j] = t;
        }
        /* Half the rounds settle at once, against the release of the
         * join made before `start`. */
        if (scn_below(&wa->rng, 2) == 0)
            scn_spin(scn_below(&wa->rng, 2000));
        for (unsigned i = 0; i < WA_INPUTS; i++) {
            crew_future *p = wa->in[order[i]];
            int err;

            switch (scn_below(&wa->rng, 3)) {
            case 0:
                err = crew_promise_resolve(p, NULL, NULL);
                break;
            case 1:
                err = crew_promise_fail(p, EIO, "input %u", order[i]);
                break;
            default:
                err = crew_future_cancel(p);
                break;
            }
            SCN_CHECK(wa->verdict, err == 0,
                      "settling a pending promise did not return 0");
            scn_spin(scn_below(&wa->rng, 500));
        }
        pthread_barrier_wait(&wa->done);
    }
    return NULL;
}

/* One join over a subset of the inputs, released at once after @p how:
 * 0 nothing, 1 a look at its state, 2 a callback. Returns the callbacks
 * registered (0 or 1). */
static unsigned
wa_join(struct wa *wa, unsigned first, unsigned how)
{
    crew_future *any = NULL;
    unsigned registered = 0;
    int err;

    err = crew_when_any(wa->in + first, WA_INPUTS - first, &any);
    if (!SCN_CHECK(wa->verdict, err == 0, "crew_when_any failed"))
        return 0;
    if (how == 1) {
        crew_state state = crew_future_state(any);

        SCN_CHECK(wa->verdict, state == CREW_PENDING || state == CREW_SUCCEEDED,
                  "a when_any was neither pending nor succeeded");
        if (state == CREW_SUCCEEDED)
            SCN_CHECK(wa->verdict,
                      wa_winner_ok(wa, first, crew_future_result(any)),
                      "a resolved when_any has no winner among its inputs");
    } else if (how == 2) {
        err = crew_future_on_complete(any, wa_cb, wa);
        if (SCN_CHECK(wa->verdict, err == 0, "crew_future_on_complete failed"))
            registered = 1;
    }
    crew_future_release(any);
    return registered;
}

const char *
crew_scenario_lifetimes_when_any_released_while_inputs_resolve(void)
{
    size_t rounds = crew_scenario_scale(20000, 5000);
    struct scn_verdict v = {NULL};
    struct wa wa = {.rng = scn_seed(900), .verdict = &v};
    uint64_t rng = scn_seed(901);
    size_t before, after;
    pthread_t settler;

    atomic_init(&wa.calls, 0);
    before = scn_heap_in_use();
    pthread_barrier_init(&wa.start, NULL, 2);
    pthread_barrier_init(&wa.done, NULL, 2);
    if (pthread_create(&settler, NULL, wa_settler, &wa) != 0) {
        pthread_barrier_destroy(&wa.done);
        pthread_barrier_destroy(&wa.start);
        return "pthread_create failed";
    }
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        unsigned registered = 0;
        size_t made = 0;
        crew_future *early;
        int err;

        for (; made < WA_INPUTS; made++)
            if (crew_promise_create(&wa.in[made]) != 0)
                break;
        if (!SCN_CHECK(&v, made == WA_INPUTS, "crew_promise_create failed")) {
            scn_release_all(wa.in, made);
            break;
        }
        atomic_store(&wa.calls, 0);
        /* One join made while every input is pending, released the
         * moment the settler starts. */
        early = NULL;
        err = crew_when_any(wa.in, WA_INPUTS, &early);
        SCN_CHECK(&v, err == 0, "crew_when_any failed");
        if (early != NULL && scn_below(&rng, 2) == 0 &&
            SCN_CHECK(&v, crew_future_on_complete(early, wa_cb, &wa) == 0,
                      "crew_future_on_complete failed"))
            registered++;
        pthread_barrier_wait(&wa.start);
        crew_future_release(early);
        for (unsigned j = 0; j < WA_JOINS; j++) {
            registered +=
                wa_join(&wa, scn_below(&rng, WA_INPUTS), scn_below(&rng, 3));
            scn_spin(scn_below(&rng, 200));
        }
        pthread_barrier_wait(&wa.done);
        /* Every input has settled: every join has resolved, and each
         * callback has run, on this thread or in the settler's calls. */
        SCN_CHECK(&v, atomic_load(&wa.calls) == registered,
                  "a released when_any's callback did not run exactly once");
        for (size_t i = 0; i < WA_INPUTS; i++)
            SCN_CHECK(&v, scn_resolved(crew_future_state(wa.in[i])),
                      "an input was left unresolved");
        scn_release_all(wa.in, WA_INPUTS);
    }
    wa.stop = true;
    pthread_barrier_wait(&wa.start);
    pthread_join(settler, NULL);
    pthread_barrier_destroy(&wa.done);
    pthread_barrier_destroy(&wa.start);
    after = scn_heap_in_use();
    if (!scn_failed(&v))
        SCN_CHECK(&v, after < before || after - before < WA_GROWTH_MAX,
                  "the heap grew with the released joins");
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* lifetimes_spare_workers_under_load                                  */
/* ------------------------------------------------------------------ */

#define SW_CHAINS 2

/* How long a chain may take: well under a second in every build; a hang
 * is the failure this looks for. */
#define SW_PATIENCE_NS (2ull * SCN_PATIENCE_MS * 1000000ull)

struct sw {
    crew_pool *pool;
    atomic_bool stuck;  /* a chain did not finish: the pool is hung */
    atomic_uint starts; /* thread hooks: workers and spares started */
    atomic_uint stops;
    size_t depth;
    struct scn_gate go; /* main adds one a round, the chains wait for it */
    size_t round;       /* set before the round's threads start */
    atomic_size_t nested_ran;
    atomic_size_t plain_ran;
    struct scn_verdict *verdict;
};

struct sw_link {
    struct sw *sw;
    size_t level;
};

/* A level of the chain: submits the next and waits on it. */
static int
sw_nested(crew_task *task, void *arg)
{
    struct sw_link *link = arg;
    struct sw_link *next;
    crew_future *f = NULL;
    int err;

    atomic_fetch_add(&link->sw->nested_ran, 1);
    if (link->level == 0)
        return 0;
    next = malloc(sizeof(*next));
    if (next == NULL)
        return crew_task_fail(task, ENOMEM, "out of memory");
    next->sw = link->sw;
    next->level = link->level - 1;
    err = scn_submit_ex(crew_task_pool(task), sw_nested, next, free, 0, &f);
    if (err != 0) {
        free(next);
        return crew_task_fail(task, err, "submit at level %zu", link->level);
    }
    err = crew_future_wait(f);
    crew_future_release(f);
    return err;
}

static int
sw_plain(crew_task *task, void *arg)
{
    struct sw *sw = arg;

    (void)task;
    scn_spin(200);
    atomic_fetch_add(&sw->plain_ran, 1);
    return 0;
}

static void
sw_start_hook(crew_pool *pool, unsigned worker, void *arg)
{
    struct sw *sw = arg;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&sw->starts, 1);
}

static void
sw_stop_hook(crew_pool *pool, unsigned worker, void *arg)
{
    struct sw *sw = arg;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&sw->stops, 1);
}

static void *
sw_chain_thread(void *arg)
{
    struct sw *sw = arg;
    struct sw_link *head = malloc(sizeof(*head));
    crew_future *f = NULL;
    int err;

    scn_gate_wait(&sw->go, sw->round);
    if (!SCN_CHECK(sw->verdict, head != NULL, "out of memory"))
        return NULL;
    head->sw = sw;
    head->level = sw->depth;
    err = scn_submit_ex(sw->pool, sw_nested, head, free, 0, &f);
    if (!SCN_CHECK(sw->verdict, err == 0, "crew_submit_ex failed")) {
        free(head);
        return NULL;
    }
    err = crew_future_wait_for(f, SW_PATIENCE_NS);
    if (err == ETIMEDOUT) {
        scn_fail(sw->verdict, "a chain of nested waits on 64 KiB stacks "
                              "hung: no spare worker ran its next level");
        atomic_store(&sw->stuck, true);
        return NULL; /* f stays: its task may yet run */
    }
    SCN_CHECK(sw->verdict, err == 0,
              "a chain of nested waits on 64 KiB stacks failed");
    crew_future_release(f);
    return NULL;
}

const char *
crew_scenario_lifetimes_spare_workers_under_load(void)
{
    /* Only the rounds are scaled by CREW_STRESS: each level past a
     * stack's room costs spare threads, not just time, and plain tasks
     * scaled too would grow the whole with its square. */
    size_t depth = CREW_SCENARIO_TSAN ? 200 : 500;
    size_t rounds = crew_scenario_scale(10, 4);
    size_t plain = CREW_SCENARIO_TSAN ? 1000 : 5000;
    struct scn_verdict v = {NULL};
    struct sw sw = {.depth = depth, .verdict = &v};
    crew_pool_options options = {.threads = 2,
                                 .stack_size = (size_t)64 << 10,
                                 .on_thread_start = sw_start_hook,
                                 .on_thread_stop = sw_stop_hook,
                                 .user = &sw};
    size_t chains_run = 0;
    size_t plain_submitted = 0;
    crew_pool_stats s;
    uint64_t total;
    int err;

    atomic_init(&sw.stuck, false);
    atomic_init(&sw.starts, 0);
    atomic_init(&sw.stops, 0);
    atomic_init(&sw.nested_ran, 0);
    atomic_init(&sw.plain_ran, 0);
    err = crew_pool_create(&sw.pool, &options);
    if (err != 0)
        return "crew_pool_create with a 64 KiB stack failed";
    scn_gate_init(&sw.go);
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        pthread_t threads[SW_CHAINS];
        size_t started = 0;

        sw.round = r + 1;
        for (; started < SW_CHAINS; started++)
            if (pthread_create(&threads[started], NULL, sw_chain_thread, &sw) !=
                0)
                break;
        scn_gate_add(&sw.go, 1);
        if (!SCN_CHECK(&v, started == SW_CHAINS, "pthread_create failed")) {
            /* The ones started run their chains all the same. */
        } else {
            for (size_t i = 0; i < plain; i++) {
                err = scn_submit(sw.pool, sw_plain, &sw, NULL);
                if (!SCN_CHECK(&v, err == 0, "crew_submit failed"))
                    break;
                plain_submitted++;
            }
        }
        for (size_t i = 0; i < started; i++)
            pthread_join(threads[i], NULL);
        chains_run += started;
    }
    scn_gate_destroy(&sw.go);
    /* A hung pool can be neither shut down nor freed: the failure is the
     * report, and what the pool holds stays. */
    if (atomic_load(&sw.stuck))
        return scn_result(&v);

    /* Read once every thread has exited: the counters are then final. */
    err = crew_pool_shutdown(sw.pool, CREW_DRAIN);
    SCN_CHECK(&v, err == 0, "crew_pool_shutdown failed");
    total = chains_run * (depth + 1) + plain_submitted;
    SCN_CHECK(&v, atomic_load(&sw.nested_ran) == chains_run * (depth + 1),
              "a chain did not run each level exactly once");
    SCN_CHECK(&v, atomic_load(&sw.plain_ran) == plain_submitted,
              "a plain task did not run exactly once");
    err = crew_pool_stats_get(sw.pool, &s);
    if (SCN_CHECK(&v, err == 0, "crew_pool_stats_get failed")) {
        SCN_CHECK(&v, s.threads == 2, "spare workers were counted in threads");
        SCN_CHECK(&v, s.busy == 0 && s.queued == 0,
                  "a shut-down pool reports work");
        SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
                  "submitted != succeeded + failed + cancelled");
        SCN_CHECK(&v, s.submitted == total,
                  "the pool counted another number of tasks than accepted");
        SCN_CHECK(&v, s.succeeded == total, "a task did not succeed");
    }
    /* 500 levels cannot fit in 64 KiB stacks: spares must have run. */
    SCN_CHECK(&v, atomic_load(&sw.starts) > 2,
              "no spare worker started, or it ran no start hook");
    crew_pool_destroy(sw.pool);
    SCN_CHECK(&v, atomic_load(&sw.stops) == atomic_load(&sw.starts),
              "a worker or spare that started ran no stop hook");
    return scn_result(&v);
}
