/*
 * Races between the calls that change a future: cancel against a worker
 * starting the task, resolve against fail against cancel against callback
 * registration on one promise from three threads, many threads releasing
 * the same future, and combinators whose inputs resolve from several
 * threads while the combinators are being built.
 *
 * Each scenario runs rounds. Its threads meet at two barriers a round:
 * `start` opens the race, `done` closes it; the main thread prepares the
 * round before `start` and checks it after `done`, so the fields a round
 * shares are written by one thread between barriers and read after the
 * next one (the barrier orders them). Only what the racers write while
 * racing is atomic. Main sets `stop` before a `start` to end the helpers.
 */
#include "scenarios.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* races_cancel_vs_start                                               */
/* ------------------------------------------------------------------ */

#define CVS_BATCH 4

/* Who cancels a slot's task: bits of cvs_slot.who. */
#define CVS_MAIN_EARLY 1u /* main, right after submitting it */
#define CVS_MAIN_LATE  2u /* main, after `start` */
#define CVS_HELPER     4u /* the helper, after `start`, in reverse order */

struct cvs_slot {
    crew_future *future;
    atomic_ulong *tickets; /* the scenario's, shared by every slot */
    unsigned spin;         /* the task's own jitter */
    unsigned who;          /* CVS_* bits */
    atomic_int ran;
    atomic_int freed;
    atomic_int saw_cancel;
    unsigned long check_ticket; /* taken by the task just before it asks */
    /* Per canceller, 0 main and 1 helper, what it saw on return. */
    int cancel_err[2]; /* -1: did not cancel */
    int freed_after[2];
    crew_state state_after[2];
    unsigned long cancel_ticket[2]; /* taken once cancel returned 0 */
};

struct cvs {
    struct cvs_slot slots[CVS_BATCH];
    /*
     * Orders a canceller's return against the task's question. A cancel
     * that returned 0 takes a ticket afterwards; the task takes one just
     * before it calls crew_task_cancelled(). Both are seq_cst RMWs on one
     * atomic, so a lower cancel ticket means the cancel happened before
     * the question, which must then be answered true.
     */
    atomic_ulong tickets;
    pthread_barrier_t start;
    pthread_barrier_t done;
    bool stop;
};

static int
cvs_task(crew_task *task, void *arg)
{
    struct cvs_slot *slot = arg;

    atomic_fetch_add(&slot->ran, 1);
    scn_spin(slot->spin);
    /* Read by the main thread after crew_future_wait(). */
    slot->check_ticket = atomic_fetch_add(slot->tickets, 1);
    if (crew_task_cancelled(task)) {
        atomic_store(&slot->saw_cancel, 1);
        return ECANCELED;
    }
    crew_task_return(task, slot, NULL);
    return 0;
}

static void
cvs_free(void *arg)
{
    struct cvs_slot *slot = arg;

    atomic_fetch_add(&slot->freed, 1);
}

static void
cvs_cancel(struct cvs_slot *slot, int canceller)
{
    slot->cancel_err[canceller] = crew_future_cancel(slot->future);
    if (slot->cancel_err[canceller] == 0)
        slot->cancel_ticket[canceller] = atomic_fetch_add(slot->tickets, 1);
    slot->freed_after[canceller] = atomic_load(&slot->freed);
    slot->state_after[canceller] = crew_future_state(slot->future);
}

static void *
cvs_helper(void *arg)
{
    struct cvs *c = arg;
    uint64_t rng = scn_seed(101);

    for (;;) {
        pthread_barrier_wait(&c->start);
        if (c->stop)
            break;
        for (int k = CVS_BATCH - 1; k >= 0; k--) {
            if (!(c->slots[k].who & CVS_HELPER))
                continue;
            scn_spin(scn_below(&rng, 400));
            cvs_cancel(&c->slots[k], 1);
        }
        pthread_barrier_wait(&c->done);
    }
    return NULL;
}

static void
cvs_check(struct scn_verdict *v, struct cvs_slot *slot)
{
    int err = crew_future_wait(slot->future);
    crew_state state = crew_future_state(slot->future);
    int ran = atomic_load(&slot->ran);
    int zeros = 0;

    SCN_CHECK(v, scn_wait_agrees(slot->future, err),
              "crew_future_wait disagrees with the state");
    SCN_CHECK(v, atomic_load(&slot->freed) == 1,
              "arg_free did not run exactly once");
    SCN_CHECK(v, ran <= 1, "a task ran twice");
    SCN_CHECK(v, state == CREW_SUCCEEDED || state == CREW_CANCELLED,
              "a task that cannot fail did not succeed or cancel");
    for (int i = 0; i < 2; i++) {
        int e = slot->cancel_err[i];

        if (e == -1)
            continue;
        SCN_CHECK(v, e == 0 || e == EALREADY,
                  "crew_future_cancel returned neither 0 nor EALREADY");
        if (e == EALREADY)
            SCN_CHECK(v, scn_resolved(slot->state_after[i]),
                      "cancel returned EALREADY on an unresolved future");
        if (e != 0)
            continue;
        zeros++;
        if (ran == 0) {
            SCN_CHECK(v, slot->state_after[i] == CREW_CANCELLED,
                      "a queued task was not CANCELLED when "
                      "crew_future_cancel returned 0");
            SCN_CHECK(v, slot->freed_after[i] == 1,
                      "a queued task's arg_free had not run when "
                      "crew_future_cancel returned 0");
        }
    }
    if (ran == 0) {
        SCN_CHECK(v, state == CREW_CANCELLED,
                  "a task that never ran is not CANCELLED");
        SCN_CHECK(v, zeros > 0,
                  "a task never ran although no cancel succeeded");
    } else if (atomic_load(&slot->saw_cancel)) {
        SCN_CHECK(v, state == CREW_CANCELLED,
                  "a task returning ECANCELED after a request is not "
                  "CANCELLED");
        SCN_CHECK(v, zeros > 0,
                  "crew_task_cancelled was true with no cancel returning 0");
    } else {
        SCN_CHECK(v, state == CREW_SUCCEEDED,
                  "a task returning 0 did not succeed");
        SCN_CHECK(v, crew_future_result(slot->future) == slot,
                  "a task's result is not the value it returned");
        for (int i = 0; i < 2; i++)
            SCN_CHECK(v,
                      slot->cancel_err[i] != 0 ||
                          slot->cancel_ticket[i] > slot->check_ticket,
                      "crew_task_cancelled was false after "
                      "crew_future_cancel had returned 0");
    }
    if (slot->who == 0)
        SCN_CHECK(v, ran == 1 && state == CREW_SUCCEEDED,
                  "a task nobody cancelled did not run and succeed");
    crew_future_release(slot->future);
    slot->future = NULL;
}

const char *
crew_scenario_races_cancel_vs_start(void)
{
    /* 4 tasks a round: 20,000 tasks, 10,000 under TSan. */
    size_t rounds = crew_scenario_scale(5000, 2500);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct cvs *c;
    crew_pool *pool;
    pthread_t helper;
    uint64_t rng = scn_seed(100);
    int err;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return "out of memory";
    err = crew_pool_create(&pool, &options);
    if (err != 0) {
        free(c);
        return "crew_pool_create failed";
    }
    atomic_init(&c->tickets, 0);
    pthread_barrier_init(&c->start, NULL, 2);
    pthread_barrier_init(&c->done, NULL, 2);
    pthread_create(&helper, NULL, cvs_helper, c);

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        for (int k = 0; k < CVS_BATCH; k++) {
            struct cvs_slot *slot = &c->slots[k];

            atomic_store(&slot->ran, 0);
            atomic_store(&slot->freed, 0);
            atomic_store(&slot->saw_cancel, 0);
            slot->tickets = &c->tickets;
            slot->cancel_err[0] = slot->cancel_err[1] = -1;
            slot->spin = scn_below(&rng, scn_below(&rng, 2) ? 3000 : 40000);
            slot->who = scn_below(&rng, 8);
            if ((slot->who & CVS_MAIN_EARLY) && (slot->who & CVS_MAIN_LATE))
                slot->who &= ~CVS_MAIN_LATE;
            err =
                scn_submit_ex(pool, cvs_task, slot, cvs_free, 0, &slot->future);
            if (!SCN_CHECK(&v, err == 0, "crew_submit_ex failed")) {
                slot->who = 0;
                continue;
            }
            if (slot->who & CVS_MAIN_EARLY) {
                scn_spin(scn_below(&rng, 200));
                cvs_cancel(slot, 0);
            }
        }
        pthread_barrier_wait(&c->start);
        for (int k = 0; k < CVS_BATCH; k++) {
            if (!(c->slots[k].who & CVS_MAIN_LATE))
                continue;
            scn_spin(scn_below(&rng, 400));
            cvs_cancel(&c->slots[k], 0);
        }
        pthread_barrier_wait(&c->done);
        for (int k = 0; k < CVS_BATCH; k++)
            if (c->slots[k].future != NULL)
                cvs_check(&v, &c->slots[k]);
    }

    c->stop = true;
    pthread_barrier_wait(&c->start);
    pthread_join(helper, NULL);
    pthread_barrier_destroy(&c->start);
    pthread_barrier_destroy(&c->done);
    crew_pool_destroy(pool);
    free(c);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* races_promise_settle                                                */
/* ------------------------------------------------------------------ */

#define PS_THREADS 3 /* 0: main, which only registers; 1, 2: settlers */
#define PS_CBS     3 /* callbacks per thread: 2 before settling, 1 after */

enum ps_action { PS_NONE, PS_RESOLVE, PS_FAIL, PS_CANCEL };

struct ps;

struct ps_value {
    struct ps *ps;
};

struct ps_cb {
    struct ps *ps;
    pthread_t registrant;
    atomic_int registering; /* 1 while the registrant is in on_complete */
    atomic_int runs;
    /* Written by the callback, read by main after `done`. */
    pthread_t ran_on;
    bool ran_inline;
    bool saw_resolved;
    unsigned long ticket;
    crew_future *release; /* a reference the callback drops, or NULL */
};

struct ps {
    crew_future *promise;
    enum ps_action action[PS_THREADS];
    int result[PS_THREADS];
    bool register_failed[PS_THREADS];
    void *value[PS_THREADS];
    int code[PS_THREADS];
    pthread_t thread[PS_THREADS];
    struct ps_cb cbs[PS_THREADS][PS_CBS];
    atomic_ulong tickets;
    atomic_size_t values_made;
    atomic_size_t values_freed; /* by the library, as value_free */
    atomic_size_t values_kept;  /* by a settler whose resolve lost */
    pthread_barrier_t start;
    pthread_barrier_t done;
    bool stop;
};

static void
ps_value_free(void *p)
{
    struct ps_value *value = p;

    atomic_fetch_add(&value->ps->values_freed, 1);
    free(value);
}

static void
ps_callback(crew_future *future, void *user)
{
    struct ps_cb *cb = user;

    cb->ran_on = pthread_self();
    cb->ran_inline = pthread_equal(cb->ran_on, cb->registrant) &&
                     atomic_load(&cb->registering);
    cb->saw_resolved = scn_resolved(crew_future_state(future));
    cb->ticket = atomic_fetch_add(&cb->ps->tickets, 1);
    if (cb->release != NULL)
        crew_future_release(cb->release);
    atomic_fetch_add(&cb->runs, 1);
}

static int
ps_register(struct ps *ps, int t, int k)
{
    struct ps_cb *cb = &ps->cbs[t][k];
    int err;

    atomic_store(&cb->registering, 1);
    err = crew_future_on_complete(ps->promise, ps_callback, cb);
    atomic_store(&cb->registering, 0);
    return err;
}

static void
ps_settle(struct ps *ps, int t, uint64_t *rng)
{
    struct ps_value *value;

    scn_spin(scn_below(rng, 300));
    switch (ps->action[t]) {
    case PS_RESOLVE:
        value = malloc(sizeof(*value));
        if (value == NULL) {
            ps->result[t] = ENOMEM;
            break;
        }
        value->ps = ps;
        atomic_fetch_add(&ps->values_made, 1);
        ps->value[t] = value;
        ps->result[t] = crew_promise_resolve(ps->promise, value, ps_value_free);
        if (ps->result[t] != 0) {
            /* On error the value stays ours. */
            atomic_fetch_add(&ps->values_kept, 1);
            free(value);
        }
        break;
    case PS_FAIL:
        ps->result[t] =
            crew_promise_fail(ps->promise, ps->code[t], "settler %d", t);
        break;
    case PS_CANCEL:
        ps->result[t] = crew_future_cancel(ps->promise);
        break;
    case PS_NONE:
        break;
    }
}

struct ps_settler {
    struct ps *ps;
    int t;
};

static void *
ps_settler(void *arg)
{
    struct ps_settler *settler = arg;
    struct ps *ps = settler->ps;
    int t = settler->t;
    uint64_t rng = scn_seed(200 + (uint64_t)t);

    for (;;) {
        pthread_barrier_wait(&ps->start);
        if (ps->stop)
            break;
        ps->register_failed[t] =
            ps_register(ps, t, 0) != 0 || ps_register(ps, t, 1) != 0;
        ps_settle(ps, t, &rng);
        if (ps_register(ps, t, 2) != 0)
            ps->register_failed[t] = true;
        pthread_barrier_wait(&ps->done);
    }
    return NULL;
}

/* The checks of one round, after `done`: every call has returned. */
static void
ps_check(struct scn_verdict *v, struct ps *ps)
{
    crew_future *promise = ps->promise;
    crew_state state = crew_future_state(promise);
    int winner = -1;
    int settled = 0;
    int err;

    for (int t = 1; t < PS_THREADS; t++) {
        SCN_CHECK(v, !ps->register_failed[t], "crew_future_on_complete failed");
        SCN_CHECK(v, ps->result[t] == 0 || ps->result[t] == EALREADY,
                  "settling a promise returned neither 0 nor EALREADY");
        if (ps->result[t] == 0) {
            settled++;
            winner = t;
        }
    }
    SCN_CHECK(v, settled == 1,
              "not exactly one of two racing settlers won the promise");
    SCN_CHECK(v, scn_resolved(state), "a settled promise is unresolved");
    err = crew_future_wait(promise);
    SCN_CHECK(v, scn_wait_agrees(promise, err),
              "crew_future_wait disagrees with the state");
    if (winner < 0)
        return;
    switch (ps->action[winner]) {
    case PS_RESOLVE:
        SCN_CHECK(v, state == CREW_SUCCEEDED,
                  "the resolve that won left the promise unsucceeded");
        SCN_CHECK(v, crew_future_result(promise) == ps->value[winner],
                  "a resolved promise's result is not its value");
        break;
    case PS_FAIL:
        SCN_CHECK(v, state == CREW_FAILED,
                  "the fail that won left the promise unfailed");
        SCN_CHECK(
            v, crew_error_code(crew_future_error(promise)) == ps->code[winner],
            "a failed promise's code is not the one given");
        SCN_CHECK(v,
                  strcmp(crew_error_message(crew_future_error(promise)),
                         winner == 1 ? "settler 1" : "settler 2") == 0,
                  "a failed promise's message is not the one given");
        break;
    default:
        SCN_CHECK(v, state == CREW_CANCELLED,
                  "the cancel that won left the promise uncancelled");
        SCN_CHECK(v, crew_error_code(crew_future_error(promise)) == ECANCELED,
                  "a cancelled promise's error code is not ECANCELED");
        break;
    }
    for (int t = 0; t < PS_THREADS; t++) {
        unsigned long last = 0;
        bool any = false;

        for (int k = 0; k < PS_CBS; k++) {
            struct ps_cb *cb = &ps->cbs[t][k];

            if (!SCN_CHECK(v, atomic_load(&cb->runs) == 1,
                           "a promise callback did not run exactly once"))
                continue;
            SCN_CHECK(v, cb->saw_resolved,
                      "a callback ran before its promise resolved");
            if (cb->ran_inline)
                continue;
            /* Registered before resolution: run by the resolver, in
             * registration order. */
            SCN_CHECK(v, pthread_equal(cb->ran_on, ps->thread[winner]),
                      "a callback registered before resolution ran on "
                      "another thread than the resolver");
            SCN_CHECK(v, !any || cb->ticket > last,
                      "callbacks registered before resolution ran out of "
                      "registration order");
            any = true;
            last = cb->ticket;
        }
    }
}

const char *
crew_scenario_races_promise_settle(void)
{
    size_t rounds = crew_scenario_scale(20000, 10000);
    struct scn_verdict v = {NULL};
    struct ps *ps;
    struct ps_settler settlers[PS_THREADS];
    uint64_t rng = scn_seed(300);
    size_t resolved = 0;

    ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return "out of memory";
    pthread_barrier_init(&ps->start, NULL, PS_THREADS);
    pthread_barrier_init(&ps->done, NULL, PS_THREADS);
    ps->thread[0] = pthread_self();
    for (int t = 0; t < PS_THREADS; t++)
        for (int k = 0; k < PS_CBS; k++)
            ps->cbs[t][k].ps = ps;
    for (int t = 1; t < PS_THREADS; t++) {
        settlers[t].ps = ps;
        settlers[t].t = t;
        pthread_create(&ps->thread[t], NULL, ps_settler, &settlers[t]);
    }

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        int err = crew_promise_create(&ps->promise);

        if (!SCN_CHECK(&v, err == 0, "crew_promise_create failed"))
            break;
        for (int t = 0; t < PS_THREADS; t++) {
            for (int k = 0; k < PS_CBS; k++) {
                struct ps_cb *cb = &ps->cbs[t][k];

                cb->registrant = ps->thread[t];
                atomic_store(&cb->runs, 0);
                cb->ran_inline = false;
                cb->saw_resolved = false;
                cb->release = NULL;
            }
            ps->value[t] = NULL;
            ps->code[t] = scn_below(&rng, 2) ? EIO : -5 - t;
        }
        ps->action[0] = PS_NONE;
        ps->action[1] = scn_below(&rng, 2) ? PS_RESOLVE : PS_FAIL;
        ps->action[2] = (enum ps_action)(PS_RESOLVE + scn_below(&rng, 3));
        /* One of main's callbacks drops a reference of its own. */
        ps->cbs[0][scn_below(&rng, PS_CBS)].release =
            crew_future_retain(ps->promise);

        pthread_barrier_wait(&ps->start);
        for (int k = 0; k < PS_CBS; k++) {
            scn_spin(scn_below(&rng, 200));
            if (ps_register(ps, 0, k) != 0) {
                scn_fail(&v, "crew_future_on_complete failed");
                crew_future_release(ps->cbs[0][k].release);
                atomic_store(&ps->cbs[0][k].runs, 1);
            }
        }
        pthread_barrier_wait(&ps->done);

        ps_check(&v, ps);
        for (int t = 1; t < PS_THREADS; t++)
            if (ps->action[t] == PS_RESOLVE && ps->result[t] == 0)
                resolved++;
        crew_future_release(ps->promise);
        ps->promise = NULL;
        /* Main held the last reference: the callbacks have dropped theirs
         * and nothing else holds one once every call has returned. */
        SCN_CHECK(&v, atomic_load(&ps->values_freed) == resolved,
                  "a resolved promise's value_free did not run once its "
                  "last reference went");
    }

    ps->stop = true;
    pthread_barrier_wait(&ps->start);
    for (int t = 1; t < PS_THREADS; t++)
        pthread_join(ps->thread[t], NULL);
    SCN_CHECK(&v,
              atomic_load(&ps->values_made) ==
                  atomic_load(&ps->values_freed) +
                      atomic_load(&ps->values_kept),
              "a promise value was freed twice or never");
    pthread_barrier_destroy(&ps->start);
    pthread_barrier_destroy(&ps->done);
    free(ps);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* races_release_storm                                                 */
/* ------------------------------------------------------------------ */

#define RS_HELPERS 4
#define RS_MAGIC   0x5EEDu

struct rs;

struct rs_value {
    unsigned magic;
    bool of_promise;
    struct rs *rs;
};

struct rs {
    crew_pool *pool;
    crew_future *future; /* this round's; each helper owns one reference */
    bool is_task;
    bool stop;
    pthread_barrier_t start;
    pthread_barrier_t done;
    atomic_size_t values_made;
    atomic_size_t values_freed;
    atomic_size_t promise_values_freed;
    struct scn_verdict *verdict;
};

static struct rs_value *
rs_value_new(struct rs *rs, bool of_promise)
{
    struct rs_value *value = malloc(sizeof(*value));

    if (value == NULL)
        return NULL;
    value->magic = RS_MAGIC;
    value->of_promise = of_promise;
    value->rs = rs;
    atomic_fetch_add(&rs->values_made, 1);
    return value;
}

static void
rs_value_free(void *p)
{
    struct rs_value *value = p;
    struct rs *rs = value->rs;

    SCN_CHECK(rs->verdict, value->magic == RS_MAGIC,
              "value_free got a value that is not one");
    value->magic = 0;
    if (value->of_promise)
        atomic_fetch_add(&rs->promise_values_freed, 1);
    atomic_fetch_add(&rs->values_freed, 1);
    free(value);
}

static int
rs_task(crew_task *task, void *arg)
{
    struct rs_value *value = rs_value_new(arg, false);

    if (value == NULL)
        return crew_task_fail(task, ENOMEM, "out of memory");
    crew_task_return(task, value, rs_value_free);
    return 0;
}

static void
rs_release_callback(crew_future *future, void *user)
{
    (void)future;
    crew_future_release(user);
}

struct rs_helper {
    struct rs *rs;
    pthread_t thread;
    uint64_t rng;
};

static void *
rs_helper(void *arg)
{
    struct rs_helper *h = arg;
    struct rs *rs = h->rs;

    for (;;) {
        crew_future *f;
        bool look;

        pthread_barrier_wait(&rs->start);
        if (rs->stop)
            break;
        f = rs->future;
        /* Half the helpers of a task round release without waiting,
         * racing the worker's own release. */
        look = !rs->is_task || scn_below(&h->rng, 2) == 0;
        scn_spin(scn_below(&h->rng, 300));
        if (look) {
            struct rs_value *value;

            SCN_CHECK(rs->verdict, crew_future_wait(f) == 0,
                      "a future with a value did not succeed");
            value = crew_future_result(f);
            SCN_CHECK(rs->verdict, value != NULL && value->magic == RS_MAGIC,
                      "a shared future's result is not its value");
        }
        for (unsigned n = scn_below(&h->rng, 4); n > 0; n--)
            crew_future_release(crew_future_retain(f));
        if (scn_below(&h->rng, 4) == 0) {
            crew_future *extra = crew_future_retain(f);

            if (crew_future_on_complete(f, rs_release_callback, extra) != 0) {
                scn_fail(rs->verdict, "crew_future_on_complete failed");
                crew_future_release(extra);
            }
        }
        crew_future_release(f);
        pthread_barrier_wait(&rs->done);
    }
    return NULL;
}

const char *
crew_scenario_races_release_storm(void)
{
    size_t rounds = crew_scenario_scale(10000, 5000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct rs *rs;
    struct rs_helper helpers[RS_HELPERS];
    uint64_t rng = scn_seed(400);
    size_t promise_values = 0;
    int err;

    rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return "out of memory";
    rs->verdict = &v;
    err = crew_pool_create(&rs->pool, &options);
    if (err != 0) {
        free(rs);
        return "crew_pool_create failed";
    }
    pthread_barrier_init(&rs->start, NULL, RS_HELPERS + 1);
    pthread_barrier_init(&rs->done, NULL, RS_HELPERS + 1);
    for (int i = 0; i < RS_HELPERS; i++) {
        helpers[i].rs = rs;
        helpers[i].rng = scn_seed(410 + (uint64_t)i);
        pthread_create(&helpers[i].thread, NULL, rs_helper, &helpers[i]);
    }

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *f;

        rs->is_task = scn_below(&rng, 2) == 0;
        if (rs->is_task) {
            err = scn_submit(rs->pool, rs_task, rs, &f);
            if (!SCN_CHECK(&v, err == 0, "crew_submit failed"))
                break;
        } else {
            struct rs_value *value = rs_value_new(rs, true);

            err = crew_promise_create(&f);
            if (!SCN_CHECK(&v, value != NULL && err == 0,
                           "crew_promise_create failed")) {
                if (value != NULL) {
                    value->magic = 0;
                    free(value);
                    atomic_fetch_sub(&rs->values_made, 1);
                }
                crew_future_release(f);
                break;
            }
            err = crew_promise_resolve(f, value, rs_value_free);
            SCN_CHECK(&v, err == 0, "crew_promise_resolve failed");
            promise_values++;
        }
        rs->future = f;
        for (int i = 0; i < RS_HELPERS; i++)
            crew_future_retain(f);
        pthread_barrier_wait(&rs->start);
        scn_spin(scn_below(&rng, 300));
        crew_future_release(f);
        pthread_barrier_wait(&rs->done);
        /* Every reference to the promise is gone, and no call that took
         * one is still running: its value went with the last. Tasks'
         * values are counted once the pool is gone, as a worker may hold
         * the last reference a moment longer. */
        if (!rs->is_task)
            SCN_CHECK(&v,
                      atomic_load(&rs->promise_values_freed) == promise_values,
                      "racing releases did not free a promise's value "
                      "exactly once");
    }

    rs->stop = true;
    pthread_barrier_wait(&rs->start);
    for (int i = 0; i < RS_HELPERS; i++)
        pthread_join(helpers[i].thread, NULL);
    crew_pool_destroy(rs->pool);
    SCN_CHECK(&v,
              atomic_load(&rs->values_freed) == atomic_load(&rs->values_made),
              "value_free did not run exactly once per value after racing "
              "releases");
    pthread_barrier_destroy(&rs->start);
    pthread_barrier_destroy(&rs->done);
    free(rs);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* races_when_inputs                                                   */
/* ------------------------------------------------------------------ */

#define WI_PROMISES  8
#define WI_INPUTS    12
#define WI_RESOLVERS 3
#define WI_COMBOS    4 /* all1, any1 before the race; all2, any2 during */

enum wi_plan { WI_SUCCEED, WI_FAIL, WI_CANCEL };

struct wi;

struct wi_cb {
    struct wi *wi;
    bool any;
    atomic_int runs;
};

struct wi {
    crew_future *promises[WI_PROMISES];
    size_t np;
    crew_future *inputs[WI_INPUTS];
    size_t ni;
    enum wi_plan plan[WI_PROMISES];
    int owner[WI_PROMISES];
    int result[WI_PROMISES];
    crew_future *combos[WI_COMBOS];
    struct wi_cb cbs[WI_COMBOS];
    pthread_barrier_t start;
    pthread_barrier_t done;
    bool stop;
    atomic_size_t values_made;
    atomic_size_t values_freed;
    atomic_size_t values_kept;
    struct scn_verdict *verdict;
};

struct wi_value {
    struct wi *wi;
};

static void
wi_value_free(void *p)
{
    struct wi_value *value = p;

    atomic_fetch_add(&value->wi->values_freed, 1);
    free(value);
}

static bool
wi_is_input(struct wi *wi, const crew_future *f)
{
    for (size_t i = 0; i < wi->ni; i++)
        if (wi->inputs[i] == f)
            return true;
    return false;
}

static void
wi_callback(crew_future *future, void *user)
{
    struct wi_cb *cb = user;
    struct wi *wi = cb->wi;

    if (cb->any) {
        crew_future *winner = crew_future_result(future);

        SCN_CHECK(wi->verdict, winner != NULL && wi_is_input(wi, winner),
                  "a when_any's result is not one of its inputs");
        SCN_CHECK(wi->verdict,
                  winner != NULL && scn_resolved(crew_future_state(winner)),
                  "a when_any resolved before its winner did");
    } else {
        for (size_t i = 0; i < wi->ni; i++)
            SCN_CHECK(wi->verdict,
                      scn_resolved(crew_future_state(wi->inputs[i])),
                      "a when_all ran its callbacks before an input "
                      "resolved");
    }
    atomic_fetch_add(&cb->runs, 1);
}

struct wi_resolver {
    struct wi *wi;
    int index;
    pthread_t thread;
    uint64_t rng;
};

static void
wi_settle(struct wi *wi, size_t p, uint64_t *rng)
{
    struct wi_value *value;

    scn_spin(scn_below(rng, 300));
    switch (wi->plan[p]) {
    case WI_SUCCEED:
        value = malloc(sizeof(*value));
        if (value == NULL) {
            wi->result[p] = ENOMEM;
            break;
        }
        value->wi = wi;
        atomic_fetch_add(&wi->values_made, 1);
        wi->result[p] =
            crew_promise_resolve(wi->promises[p], value, wi_value_free);
        if (wi->result[p] != 0) {
            atomic_fetch_add(&wi->values_kept, 1);
            free(value);
        }
        break;
    case WI_FAIL:
        wi->result[p] =
            crew_promise_fail(wi->promises[p], 200 + (int)p, "promise %zu", p);
        break;
    case WI_CANCEL:
        wi->result[p] = crew_future_cancel(wi->promises[p]);
        break;
    }
}

static void *
wi_resolver(void *arg)
{
    struct wi_resolver *res = arg;
    struct wi *wi = res->wi;

    for (;;) {
        pthread_barrier_wait(&wi->start);
        if (wi->stop)
            break;
        for (size_t p = 0; p < wi->np; p++)
            if (wi->owner[p] == res->index)
                wi_settle(wi, p, &res->rng);
        pthread_barrier_wait(&wi->done);
    }
    return NULL;
}

static bool
wi_make(struct wi *wi, int k)
{
    int err;

    if (k % 2 == 0)
        err = crew_when_all(wi->inputs, wi->ni, &wi->combos[k]);
    else
        err = crew_when_any(wi->inputs, wi->ni, &wi->combos[k]);
    if (!SCN_CHECK(wi->verdict, err == 0, "crew_when_all/any failed"))
        return false;
    wi->cbs[k].any = k % 2 == 1;
    atomic_store(&wi->cbs[k].runs, 0);
    err = crew_future_on_complete(wi->combos[k], wi_callback, &wi->cbs[k]);
    if (!SCN_CHECK(wi->verdict, err == 0, "crew_future_on_complete failed"))
        atomic_store(&wi->cbs[k].runs, 1);
    return true;
}

static void
wi_check(struct scn_verdict *v, struct wi *wi, int cancelled_combo)
{
    crew_error *error = NULL;
    const char *why;
    size_t index = SIZE_MAX;
    int err;

    for (size_t p = 0; p < wi->np; p++) {
        crew_state state = crew_future_state(wi->promises[p]);
        static const crew_state expect[] = {CREW_SUCCEEDED, CREW_FAILED,
                                            CREW_CANCELLED};

        SCN_CHECK(v, wi->result[p] == 0 || wi->result[p] == EALREADY,
                  "settling a promise returned neither 0 nor EALREADY");
        if (wi->result[p] == 0)
            SCN_CHECK(v, state == expect[wi->plan[p]],
                      "a promise settled by one thread has another state");
        else
            SCN_CHECK(v, state == CREW_CANCELLED && cancelled_combo >= 0,
                      "a promise refused a settle although nobody else "
                      "settled it");
    }
    for (int k = 0; k < WI_COMBOS; k++) {
        crew_future *combo = wi->combos[k];

        if (combo == NULL)
            continue;
        err = crew_future_wait(combo);
        SCN_CHECK(v, scn_wait_agrees(combo, err),
                  "crew_future_wait disagrees with a combinator's state");
        SCN_CHECK(v, atomic_load(&wi->cbs[k].runs) == 1,
                  "a combinator's callback did not run exactly once");
        if (k % 2 == 0) {
            why = scn_check_when_all(combo, wi->inputs, wi->ni);
            if (why != NULL)
                scn_fail(v, why);
        } else {
            SCN_CHECK(v, crew_future_state(combo) == CREW_SUCCEEDED,
                      "a when_any did not succeed");
            SCN_CHECK(v, wi_is_input(wi, crew_future_result(combo)),
                      "a when_any's result is not one of its inputs");
        }
    }
    err = crew_wait_all(wi->inputs, wi->ni, &error);
    why = scn_check_wait_all(err, error, wi->inputs, wi->ni);
    if (why != NULL)
        scn_fail(v, why);
    crew_error_release(error);
    /* Every input has resolved: the lowest position wins. */
    err = crew_wait_any(wi->inputs, wi->ni, 0, &index);
    SCN_CHECK(v, err == 0 && index == 0,
              "crew_wait_any over resolved inputs did not pick position 0");
}

const char *
crew_scenario_races_when_inputs(void)
{
    size_t rounds = crew_scenario_scale(5000, 2500);
    struct scn_verdict v = {NULL};
    struct wi *wi;
    struct wi_resolver resolvers[WI_RESOLVERS];
    uint64_t rng = scn_seed(500);

    wi = calloc(1, sizeof(*wi));
    if (wi == NULL)
        return "out of memory";
    wi->verdict = &v;
    for (int k = 0; k < WI_COMBOS; k++)
        wi->cbs[k].wi = wi;
    pthread_barrier_init(&wi->start, NULL, WI_RESOLVERS + 1);
    pthread_barrier_init(&wi->done, NULL, WI_RESOLVERS + 1);
    for (int i = 0; i < WI_RESOLVERS; i++) {
        resolvers[i].wi = wi;
        resolvers[i].index = i;
        resolvers[i].rng = scn_seed(510 + (uint64_t)i);
        pthread_create(&resolvers[i].thread, NULL, wi_resolver, &resolvers[i]);
    }

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        int cancelled_combo = -1;
        size_t made = 0;

        wi->np = 1 + scn_below(&rng, WI_PROMISES);
        for (size_t p = 0; p < wi->np; p++) {
            if (!SCN_CHECK(&v, crew_promise_create(&wi->promises[p]) == 0,
                           "crew_promise_create failed"))
                break;
            made++;
            /* Mostly successes, so that some rounds fail nothing. */
            switch (scn_below(&rng, 8)) {
            case 0:
            case 1:
                wi->plan[p] = WI_FAIL;
                break;
            case 2:
                wi->plan[p] = WI_CANCEL;
                break;
            default:
                wi->plan[p] = WI_SUCCEED;
                break;
            }
            wi->owner[p] = (int)scn_below(&rng, WI_RESOLVERS);
            wi->result[p] = -1;
        }
        if (made < wi->np) {
            for (size_t p = 0; p < made; p++)
                crew_future_release(wi->promises[p]);
            break;
        }
        /* Every promise once, in order, then duplicates. */
        wi->ni = wi->np + scn_below(&rng, WI_INPUTS - wi->np + 1);
        for (size_t i = 0; i < wi->ni; i++)
            wi->inputs[i] =
                wi->promises[i < wi->np ? i
                                        : scn_below(&rng, (unsigned)wi->np)];
        for (int k = 0; k < WI_COMBOS; k++)
            wi->combos[k] = NULL;
        wi_make(wi, 0);
        wi_make(wi, 1);

        pthread_barrier_wait(&wi->start);
        scn_spin(scn_below(&rng, 300));
        wi_make(wi, 2);
        wi_make(wi, 3);
        if (scn_below(&rng, 4) == 0) {
            cancelled_combo = 2 + (int)scn_below(&rng, 2);
            if (wi->combos[cancelled_combo] != NULL) {
                int err = crew_future_cancel(wi->combos[cancelled_combo]);

                SCN_CHECK(&v, err == 0 || err == EALREADY,
                          "cancelling a combinator returned neither 0 nor "
                          "EALREADY");
            }
        }
        pthread_barrier_wait(&wi->done);

        wi_check(&v, wi, cancelled_combo);
        for (int k = 0; k < WI_COMBOS; k++)
            crew_future_release(wi->combos[k]);
        for (size_t p = 0; p < wi->np; p++)
            crew_future_release(wi->promises[p]);
    }

    wi->stop = true;
    pthread_barrier_wait(&wi->start);
    for (int i = 0; i < WI_RESOLVERS; i++)
        pthread_join(resolvers[i].thread, NULL);
    SCN_CHECK(&v,
              atomic_load(&wi->values_made) ==
                  atomic_load(&wi->values_freed) +
                      atomic_load(&wi->values_kept),
              "a promise value was freed twice or never");
    pthread_barrier_destroy(&wi->start);
    pthread_barrier_destroy(&wi->done);
    free(wi);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* races_state_poll_publishes                                          */
/* ------------------------------------------------------------------ */

/*
 * A thread that polls crew_future_state() until it reads CREW_SUCCEEDED
 * may then read what the task wrote, with no other synchronisation: the
 * read of a resolved state is an acquire. The task writes plain memory;
 * the poller reads it after the poll. Under TSan a relaxed read of the
 * state shows as a data race; elsewhere the values are checked.
 */
#define SP_WORDS 8

struct sp_box {
    unsigned round;
    unsigned words[SP_WORDS]; /* written by the task, read by the poller */
};

static int
sp_write(crew_task *task, void *arg)
{
    struct sp_box *box = arg;

    (void)task;
    for (unsigned i = 0; i < SP_WORDS; i++)
        box->words[i] = box->round * SP_WORDS + i;
    return 0;
}

const char *
crew_scenario_races_state_poll_publishes(void)
{
    size_t rounds = crew_scenario_scale(20000, 2000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    crew_pool *pool;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct sp_box *box = calloc(1, sizeof(*box));
        crew_future *f;

        if (!SCN_CHECK(&v, box != NULL, "out of memory"))
            break;
        box->round = (unsigned)r;
        if (!SCN_CHECK(&v, crew_submit(pool, sp_write, box, &f) == 0,
                       "crew_submit failed")) {
            free(box);
            break;
        }
        while (crew_future_state(f) != CREW_SUCCEEDED)
            sched_yield();
        for (unsigned i = 0; i < SP_WORDS; i++)
            SCN_CHECK(&v, box->words[i] == (unsigned)r * SP_WORDS + i,
                      "a value the task wrote was not seen after its state");
        crew_future_release(f);
        free(box);
    }
    crew_pool_destroy(pool);
    return scn_result(&v);
}
