/*
 * Races on one future between the calls that settle it, watch it and
 * drop it, for both front ends (TSan runs them through the driver):
 *
 * - future_cancel_vs_resolve: a promise with a callback is cancelled by
 *   the scenario while one racer resolves it and another registers a
 *   second callback. Exactly one of cancel and resolve wins, the other
 *   returns EALREADY; the state is the winner's; both callbacks run
 *   once, after resolution; the value's value_free runs once if the
 *   resolve won, never otherwise.
 * - future_cancel_vs_task: a task on a two-thread pool is cancelled while
 *   a racer registers a callback. It runs at most once, its arg_free
 *   once by resolution; cancelled, it never ran or saw the request;
 *   succeeded, it ran once and never saw one; EALREADY only for a task
 *   that succeeded; every callback runs once, after resolution.
 * - future_register_vs_resolve: a racer registers eight callbacks while
 *   the scenario resolves the promise. Each runs once, with the
 *   resolved state and value, and the callbacks each thread runs run in
 *   registration order.
 * - future_release_vs_resolve: tasks whose futures are released, with a
 *   callback registered, while the workers resolve them: every task runs
 *   once, every callback runs, every value is freed once.
 * - future_wait_for_vs_resolve: a timed wait racing a resolve never
 *   reports ETIMEDOUT before its time has passed.
 *
 * The scenario and its racers meet at two barriers a round (struct
 * race): the scenario sets the round up before `start`, each racer acts
 * once between `start` and `end` while the scenario makes its own move,
 * and the scenario checks the round after `end`. A round's plain fields
 * are written before one barrier and read after the next, which orders
 * them; only what the racers write while racing is atomic.
 */
#include "scenarios.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Rounds against racers                                               */
/* ------------------------------------------------------------------ */

#define RACERS_MAX 2

struct race;

struct racer {
    struct race *race;
    void (*act)(void *ctx); /* one move a round */
    pthread_t thread;
};

struct race {
    pthread_barrier_t start;
    pthread_barrier_t end;
    struct scn_gate go; /* opened once every racer exists, or failed to */
    bool stop;          /* set before `go` or a `start`: the racers leave */
    void *ctx;          /* passed to every act */
    size_t n;
    struct racer racers[RACERS_MAX];
};

static void *
racer_main(void *arg)
{
    struct racer *r = arg;
    struct race *race = r->race;

    scn_gate_wait(&race->go, 1);
    if (race->stop)
        return NULL;
    for (;;) {
        pthread_barrier_wait(&race->start);
        if (race->stop)
            break;
        r->act(race->ctx);
        pthread_barrier_wait(&race->end);
    }
    return NULL;
}

/*
 * Starts one racer per non-NULL act of @p acts (up to RACERS_MAX), each
 * acting on @p ctx once a round. Returns false, with nothing left
 * running, if a thread could not be started.
 */
static bool
race_start(struct race *race, void *ctx, void (*a)(void *), void (*b)(void *))
{
    void (*acts[RACERS_MAX])(void *) = {a, b};
    size_t started = 0;
    bool ok = true;

    memset(race, 0, sizeof(*race));
    race->ctx = ctx;
    for (size_t i = 0; i < RACERS_MAX; i++)
        if (acts[i] != NULL)
            race->racers[race->n++] =
                (struct racer){.race = race, .act = acts[i]};
    pthread_barrier_init(&race->start, NULL, (unsigned)race->n + 1);
    pthread_barrier_init(&race->end, NULL, (unsigned)race->n + 1);
    scn_gate_init(&race->go);
    for (; started < race->n; started++) {
        struct racer *r = &race->racers[started];

        if (pthread_create(&r->thread, NULL, racer_main, r) != 0) {
            ok = false;
            break;
        }
    }
    /* A racer reads stop only after go opens: the gate orders it. */
    race->stop = !ok;
    scn_gate_add(&race->go, 1);
    if (ok)
        return true;
    for (size_t i = 0; i < started; i++)
        pthread_join(race->racers[i].thread, NULL);
    pthread_barrier_destroy(&race->start);
    pthread_barrier_destroy(&race->end);
    scn_gate_destroy(&race->go);
    return false;
}

/* Lets the racers make this round's moves. */
static void
race_open(struct race *race)
{
    pthread_barrier_wait(&race->start);
}

/* Returns once every racer has made its move. */
static void
race_close(struct race *race)
{
    pthread_barrier_wait(&race->end);
}

/* Ends the racers, between rounds, and frees what race_start() made. */
static void
race_stop(struct race *race)
{
    race->stop = true;
    pthread_barrier_wait(&race->start);
    for (size_t i = 0; i < race->n; i++)
        pthread_join(race->racers[i].thread, NULL);
    pthread_barrier_destroy(&race->start);
    pthread_barrier_destroy(&race->end);
    scn_gate_destroy(&race->go);
}

/* Rounds of each race: cheap, so TSan runs as many. */
static size_t
race_rounds(void)
{
    return crew_scenario_scale(2000, 2000);
}

/* ------------------------------------------------------------------ */
/* future_cancel_vs_resolve                                            */
/* ------------------------------------------------------------------ */

struct cvr {
    crew_future *promise;
    struct scn_gate freed; /* the resolved value's value_free */
    atomic_int callbacks;  /* this round's */
    atomic_int unresolved; /* callbacks that saw no outcome, all rounds */
    int resolve_err;       /* the resolver's, this round */
    int register_err;      /* the registrar's, this round */
};

static void
cvr_callback(crew_future *future, void *arg)
{
    struct cvr *c = arg;

    if (!scn_resolved(crew_future_state(future)))
        atomic_fetch_add(&c->unresolved, 1);
    atomic_fetch_add(&c->callbacks, 1);
}

static void
cvr_resolve(void *arg)
{
    struct cvr *c = arg;

    c->resolve_err = crew_promise_resolve(c->promise, &c->freed, scn_gate_bump);
}

static void
cvr_register(void *arg)
{
    struct cvr *c = arg;

    c->register_err = crew_future_on_complete(c->promise, cvr_callback, c);
}

const char *
crew_scenario_future_cancel_vs_resolve(void)
{
    size_t rounds = race_rounds();
    struct scn_verdict v = {NULL};
    struct race race;
    struct cvr c;
    size_t resolved = 0, cancelled = 0;

    memset(&c, 0, sizeof(c));
    scn_gate_init(&c.freed);
    if (!race_start(&race, &c, cvr_resolve, cvr_register)) {
        scn_gate_destroy(&c.freed);
        return "pthread_create failed";
    }
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        size_t before = scn_gate_count(&c.freed);
        int cancel_err;
        crew_state state;

        if (!SCN_CHECK(&v, crew_promise_create(&c.promise) == 0,
                       "crew_promise_create failed"))
            break;
        atomic_store(&c.callbacks, 0);
        SCN_CHECK(&v, crew_future_on_complete(c.promise, cvr_callback, &c) == 0,
                  "crew_future_on_complete failed");
        race_open(&race);
        cancel_err = crew_future_cancel(c.promise);
        race_close(&race);

        SCN_CHECK(&v, c.register_err == 0,
                  "crew_future_on_complete failed racing a settlement");
        SCN_CHECK(&v, atomic_load(&c.callbacks) == 2,
                  "a settled promise did not run its two callbacks once each");
        state = crew_future_state(c.promise);
        if (c.resolve_err == 0) {
            resolved++;
            SCN_CHECK(&v, cancel_err == EALREADY,
                      "both the resolve and the cancel of a promise won");
            SCN_CHECK(&v, state == CREW_SUCCEEDED,
                      "a promise whose resolve won did not succeed");
        } else {
            cancelled++;
            SCN_CHECK(&v, c.resolve_err == EALREADY,
                      "a resolve that lost did not return EALREADY");
            SCN_CHECK(&v, cancel_err == 0,
                      "neither the resolve nor the cancel of a promise won");
            SCN_CHECK(&v, state == CREW_CANCELLED,
                      "a promise whose cancel won is not CANCELLED");
        }
        crew_future_release(c.promise);
        SCN_CHECK(&v,
                  scn_gate_count(&c.freed) - before ==
                      (size_t)(c.resolve_err == 0),
                  "value_free did not run exactly once for a value the "
                  "promise took, or ran for one it refused");
    }
    race_stop(&race);
    SCN_CHECK(&v, atomic_load(&c.unresolved) == 0,
              "a callback ran before resolution");
    if (!scn_failed(&v))
        SCN_CHECK(&v, resolved + cancelled == rounds,
                  "a round neither resolved nor cancelled its promise");
    scn_gate_destroy(&c.freed);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* future_cancel_vs_task                                               */
/* ------------------------------------------------------------------ */

struct cvt {
    crew_future *future;
    struct scn_gate callbacks; /* all rounds */
    atomic_int unresolved;     /* callbacks that saw no outcome */
    int register_err;          /* the registrar's, this round */
    /* The task of this round: */
    atomic_int runs;
    atomic_int frees;
    atomic_bool saw_cancel; /* crew_task_cancelled() was true */
};

/* Returns ECANCELED if asked to cancel, else succeeds. */
static int
cvt_task(crew_task *task, void *arg)
{
    struct cvt *c = arg;
    bool cancelled;

    atomic_fetch_add(&c->runs, 1);
    cancelled = crew_task_cancelled(task);
    atomic_store(&c->saw_cancel, cancelled);
    return cancelled ? ECANCELED : 0;
}

static void
cvt_free(void *arg)
{
    struct cvt *c = arg;

    atomic_fetch_add(&c->frees, 1);
}

static void
cvt_callback(crew_future *future, void *arg)
{
    struct cvt *c = arg;

    if (!scn_resolved(crew_future_state(future)))
        atomic_fetch_add(&c->unresolved, 1);
    scn_gate_add(&c->callbacks, 1);
}

static void
cvt_register(void *arg)
{
    struct cvt *c = arg;

    c->register_err = crew_future_on_complete(c->future, cvt_callback, c);
}

/* Checks round @p r, whose cancel returned @p cancel_err. */
static void
cvt_check(struct scn_verdict *v, struct cvt *c, size_t r, int cancel_err)
{
    int err = crew_future_wait(c->future);
    crew_state state = crew_future_state(c->future);
    int runs = atomic_load(&c->runs);

    SCN_CHECK(v, c->register_err == 0,
              "crew_future_on_complete failed racing a cancel");
    SCN_CHECK(v, atomic_load(&c->frees) == 1,
              "arg_free did not run exactly once by resolution");
    SCN_CHECK(v, runs <= 1, "a task ran twice");
    if (state == CREW_CANCELLED) {
        SCN_CHECK(v, cancel_err == 0,
                  "a task is CANCELLED though its cancel did not return 0");
        SCN_CHECK(v, err == ECANCELED,
                  "crew_future_wait on a cancelled task is not ECANCELED");
        SCN_CHECK(v, runs == 0 || atomic_load(&c->saw_cancel),
                  "a task that ran without seeing a request was cancelled");
    } else {
        SCN_CHECK(v, state == CREW_SUCCEEDED,
                  "a task that cannot fail did not succeed or cancel");
        SCN_CHECK(v, err == 0,
                  "crew_future_wait on a succeeded task did not return 0");
        SCN_CHECK(v, runs == 1, "a task succeeded without running");
        SCN_CHECK(v, !atomic_load(&c->saw_cancel),
                  "a task that saw its cancellation succeeded");
    }
    if (cancel_err == EALREADY)
        SCN_CHECK(v, state == CREW_SUCCEEDED,
                  "crew_future_cancel returned EALREADY for a task that "
                  "did not succeed");
    else
        SCN_CHECK(v, cancel_err == 0,
                  "crew_future_cancel returned neither 0 nor EALREADY");
    SCN_CHECK(v, scn_gate_await(&c->callbacks, r + 1) >= r + 1,
              "a task's callback never ran");
}

const char *
crew_scenario_future_cancel_vs_task(void)
{
    size_t rounds = race_rounds();
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct race race;
    struct cvt c;
    crew_pool *pool;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    memset(&c, 0, sizeof(c));
    scn_gate_init(&c.callbacks);
    if (!race_start(&race, &c, cvt_register, NULL)) {
        scn_gate_destroy(&c.callbacks);
        crew_pool_destroy(pool);
        return "pthread_create failed";
    }
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        int cancel_err;

        atomic_store(&c.runs, 0);
        atomic_store(&c.frees, 0);
        atomic_store(&c.saw_cancel, false);
        if (!SCN_CHECK(
                &v,
                scn_submit_ex(pool, cvt_task, &c, cvt_free, 0, &c.future) == 0,
                "crew_submit_ex failed"))
            break;
        race_open(&race);
        cancel_err = crew_future_cancel(c.future);
        race_close(&race);
        cvt_check(&v, &c, r, cancel_err);
        crew_future_release(c.future);
    }
    race_stop(&race);
    crew_pool_destroy(pool);
    if (!scn_failed(&v))
        SCN_CHECK(&v, scn_gate_count(&c.callbacks) == rounds,
                  "a task's callbacks did not run once each");
    SCN_CHECK(&v, atomic_load(&c.unresolved) == 0,
              "a callback ran before resolution");
    scn_gate_destroy(&c.callbacks);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* future_register_vs_resolve                                          */
/* ------------------------------------------------------------------ */

#define RVR_CALLBACKS 8

struct rvr {
    crew_future *promise;
    struct scn_order_log log;
    struct scn_order orders[RVR_CALLBACKS];
    int errs[RVR_CALLBACKS]; /* the registrar's, this round */
};

static void
rvr_register(void *arg)
{
    struct rvr *c = arg;

    for (int i = 0; i < RVR_CALLBACKS; i++)
        c->errs[i] =
            crew_future_on_complete(c->promise, scn_order_cb, &c->orders[i]);
}

/* Checks a round whose promise was resolved with @p value. */
static void
rvr_check(struct scn_verdict *v, struct rvr *c, void *value)
{
    bool done[RVR_CALLBACKS] = {false};
    int last_here = -1, last_there = -1;

    if (!SCN_CHECK(v, atomic_load(&c->log.next) == RVR_CALLBACKS,
                   "the callbacks registered racing a resolve did not run "
                   "once each"))
        return;
    for (int k = 0; k < RVR_CALLBACKS; k++) {
        int index = c->log.order[k];
        int *last;

        SCN_CHECK(v, c->errs[k] == 0,
                  "crew_future_on_complete failed racing a resolve");
        if (!SCN_CHECK(v, index >= 0 && index < RVR_CALLBACKS && !done[index],
                       "a callback ran twice"))
            return;
        done[index] = true;
        SCN_CHECK(v, c->log.state[k] == CREW_SUCCEEDED,
                  "a callback saw a state other than SUCCEEDED");
        SCN_CHECK(v, c->log.result[k] == value,
                  "a callback saw a result other than the value resolved");
        /* Each thread runs its share in registration order. */
        last = pthread_equal(c->log.thread[k], pthread_self()) ? &last_here
                                                               : &last_there;
        SCN_CHECK(v, index > *last,
                  "callbacks ran out of registration order on one thread");
        *last = index;
    }
}

const char *
crew_scenario_future_register_vs_resolve(void)
{
    size_t rounds = race_rounds();
    struct scn_verdict v = {NULL};
    struct race race;
    struct rvr c;
    int token;

    memset(&c, 0, sizeof(c));
    for (int i = 0; i < RVR_CALLBACKS; i++)
        c.orders[i] = (struct scn_order){&c.log, i};
    if (!race_start(&race, &c, rvr_register, NULL))
        return "pthread_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        if (!SCN_CHECK(&v, crew_promise_create(&c.promise) == 0,
                       "crew_promise_create failed"))
            break;
        memset(&c.log, 0, sizeof(c.log));
        race_open(&race);
        SCN_CHECK(&v, crew_promise_resolve(c.promise, &token, NULL) == 0,
                  "crew_promise_resolve failed racing registrations");
        race_close(&race);
        rvr_check(&v, &c, &token);
        crew_future_release(c.promise);
    }
    race_stop(&race);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* future_release_vs_resolve                                           */
/* ------------------------------------------------------------------ */

struct rel {
    struct scn_gate freed;     /* values freed */
    struct scn_gate callbacks; /* callbacks that saw the value */
    atomic_size_t runs;
};

static int
rel_task(crew_task *task, void *arg)
{
    struct rel *c = arg;

    atomic_fetch_add(&c->runs, 1);
    crew_task_return(task, &c->freed, scn_gate_bump);
    return 0;
}

static void
rel_callback(crew_future *future, void *arg)
{
    struct rel *c = arg;

    if (crew_future_result(future) == &c->freed)
        scn_gate_add(&c->callbacks, 1);
}

const char *
crew_scenario_future_release_vs_resolve(void)
{
    size_t rounds = race_rounds();
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    size_t submitted = 0;
    struct rel c;
    crew_pool *pool;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    memset(&c, 0, sizeof(c));
    scn_gate_init(&c.freed);
    scn_gate_init(&c.callbacks);
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *f = NULL;

        if (!SCN_CHECK(&v, scn_submit(pool, rel_task, &c, &f) == 0,
                       "crew_submit failed"))
            break;
        submitted++;
        SCN_CHECK(&v, crew_future_on_complete(f, rel_callback, &c) == 0,
                  "crew_future_on_complete failed");
        crew_future_release(f);
    }
    SCN_CHECK(&v, scn_gate_await(&c.callbacks, submitted) == submitted,
              "a released task's callback never ran");
    SCN_CHECK(&v, scn_gate_await(&c.freed, submitted) == submitted,
              "a released task's value was never freed");
    crew_pool_destroy(pool);
    SCN_CHECK(&v, atomic_load(&c.runs) == submitted,
              "a task whose future was released did not run exactly once");
    SCN_CHECK(&v, scn_gate_count(&c.callbacks) == submitted,
              "a released task's callback ran twice");
    SCN_CHECK(&v, scn_gate_count(&c.freed) == submitted,
              "a released task's value was freed twice");
    scn_gate_destroy(&c.freed);
    scn_gate_destroy(&c.callbacks);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* future_wait_for_vs_resolve                                          */
/* ------------------------------------------------------------------ */

#define WFR_TIMEOUT_NS 50000u

struct wfr {
    crew_future *promise;
    int token;
    int resolve_err; /* the resolver's, this round */
};

static void
wfr_resolve(void *arg)
{
    struct wfr *c = arg;

    c->resolve_err = crew_promise_resolve(c->promise, &c->token, NULL);
}

const char *
crew_scenario_future_wait_for_vs_resolve(void)
{
    size_t rounds = race_rounds();
    struct scn_verdict v = {NULL};
    struct race race;
    struct wfr c;

    memset(&c, 0, sizeof(c));
    if (!race_start(&race, &c, wfr_resolve, NULL))
        return "pthread_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        uint64_t begin, took;
        int err;

        if (!SCN_CHECK(&v, crew_promise_create(&c.promise) == 0,
                       "crew_promise_create failed"))
            break;
        race_open(&race);
        begin = scn_now_ns();
        err = crew_future_wait_for(c.promise, WFR_TIMEOUT_NS);
        took = scn_now_ns() - begin;
        if (err == ETIMEDOUT)
            SCN_CHECK(&v, took >= WFR_TIMEOUT_NS,
                      "crew_future_wait_for timed out early");
        else
            SCN_CHECK(&v, err == 0,
                      "crew_future_wait_for returned neither 0 nor ETIMEDOUT");
        race_close(&race);
        SCN_CHECK(&v, c.resolve_err == 0, "crew_promise_resolve failed");
        SCN_CHECK(&v, crew_future_wait(c.promise) == 0,
                  "a resolved promise's wait did not return 0");
        SCN_CHECK(&v, crew_future_result(c.promise) == &c.token,
                  "a resolved promise's result is not its value");
        crew_future_release(c.promise);
    }
    race_stop(&race);
    return scn_result(&v);
}
