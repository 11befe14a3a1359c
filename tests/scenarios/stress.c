/*
 * Stress: many tasks with random outcomes from several submitter threads,
 * checked by counting, on pools of 1, 2, 3, 4 and 64 threads (one scenario
 * each, the same mix and the same checks; stress_mixed is the 3-thread
 * one, and the largest).
 *
 * Each submitter works in batches of ST_BATCH jobs. A job succeeds with a
 * malloc'd value (freed by value_free), fails through crew_task_fail(),
 * or spins while watching crew_task_cancelled(); whatever its plan, it
 * returns ECANCELED once cancellation has been requested. Some jobs call
 * crew_task_return() more than once first, some submit children (detached,
 * waited on, or joined with crew_wait_all). The submitter cancels jobs at
 * random moments, registers callbacks (some drop a reference, cancel
 * another job or submit work), builds when_all and when_any futures over
 * random subsets (duplicates included, one when_all nested in another,
 * some cancelled) and calls crew_wait_all / crew_wait_any on others. Then
 * it waits for everything and checks:
 *
 * - every job ran exactly once, or never ran and resolved CANCELLED after
 *   a cancellation request; its arg_free ran exactly once, before the
 *   future resolved; its state, result, code and message are what it did;
 * - every callback ran exactly once, after its future resolved;
 * - every when_all holds one inner error per failed position, in order,
 *   with that input's code and message; every when_any's result is one of
 *   its inputs, resolved when it resolved;
 * - once the pool is gone: every value was freed exactly once, every
 *   child ran and was freed exactly once, every callback ran.
 *
 * A job's plain fields are written by its submitter before it is
 * submitted, or by its task and read after crew_future_wait(): the
 * library's resolution orders them. What callbacks on other threads touch
 * is atomic, and the submitter waits on a gate for every callback of a
 * batch before it reuses the batch. Each submitter draws from its own
 * xorshift stream with a fixed seed.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_BATCH      64
#define ST_COMBOS     4 /* when_all, when_all, when_any, nested when_all */
#define ST_MAX_INPUTS 8
#define ST_MAGIC      0xC0FFEEu
#define ST_KID_CODE   77

enum st_plan { ST_VALUE, ST_FAIL, ST_SLOW };

enum st_nest { ST_NEST_NONE, ST_NEST_DETACHED, ST_NEST_WAIT, ST_NEST_WAIT_ALL };

enum st_kind { ST_ALL, ST_ANY, ST_NESTED };

struct stress {
    crew_pool *pool;
    atomic_size_t values_made;
    atomic_size_t values_freed;
    atomic_size_t kids_submitted;
    atomic_size_t kids_ran;
    atomic_size_t kids_freed;
    atomic_size_t callbacks_registered;
    atomic_size_t callbacks_run;
    struct scn_verdict verdict;
};

struct st_value {
    unsigned magic;
    struct stress *stress;
};

struct st_kid {
    struct stress *stress;
    int code;
};

struct st_batch;

struct st_job {
    struct st_batch *batch;
    unsigned id;
    enum st_plan plan;
    enum st_nest nest;
    unsigned extra_returns; /* crew_task_return calls before the plan's */
    unsigned spin;
    int code; /* the failure code of ST_FAIL */
    crew_future *future;
    /* Duties of the job's first callback. */
    crew_future *cb_ref;          /* a reference to drop, or NULL */
    struct st_job *cancel_target; /* a job to cancel, or NULL */
    bool cb_submits;              /* submit a detached child */
    int callbacks_registered;
    atomic_int ran;
    atomic_int freed;
    atomic_int saw_cancel;
    atomic_int callbacks_run;
    atomic_int cancel_requested;
    /* Written by the task. */
    void *value; /* the last value given to crew_task_return */
    int returned;
};

struct st_combo {
    struct st_batch *batch;
    enum st_kind kind;
    size_t n;
    crew_future *inputs[ST_MAX_INPUTS];
    struct st_job *jobs[ST_MAX_INPUTS]; /* behind each input; NULL: combo */
    crew_future *future;
    bool registered;
    atomic_int callbacks_run;
};

struct st_batch {
    struct stress *stress;
    struct st_job jobs[ST_BATCH];
    struct st_combo combos[ST_COMBOS];
    struct scn_gate callbacks_done; /* callbacks finished, cumulative */
    size_t callbacks_expected;      /* registered, cumulative */
};

struct st_submitter {
    struct stress *stress;
    pthread_t thread;
    uint64_t rng;
    unsigned first_id;
    size_t jobs;
    struct st_batch *batch;
};

static void *
st_value_new(struct stress *s)
{
    struct st_value *value = malloc(sizeof(*value));

    if (!SCN_CHECK(&s->verdict, value != NULL, "out of memory"))
        return NULL;
    value->magic = ST_MAGIC;
    value->stress = s;
    atomic_fetch_add(&s->values_made, 1);
    return value;
}

static void
st_value_free(void *p)
{
    struct st_value *value = p;
    struct stress *s = value->stress;

    SCN_CHECK(&s->verdict, value->magic == ST_MAGIC,
              "value_free got a value that is not one");
    value->magic = 0;
    atomic_fetch_add(&s->values_freed, 1);
    free(value);
}

static int
st_kid_run(crew_task *task, void *arg)
{
    struct st_kid *kid = arg;

    atomic_fetch_add(&kid->stress->kids_ran, 1);
    if (kid->code != 0)
        return crew_task_fail(task, kid->code, "kid");
    return 0;
}

static void
st_kid_free(void *arg)
{
    struct st_kid *kid = arg;

    atomic_fetch_add(&kid->stress->kids_freed, 1);
    free(kid);
}

static int
st_kid_spawn(struct stress *s, int code, crew_future **f)
{
    struct st_kid *kid = malloc(sizeof(*kid));
    int err;

    if (!SCN_CHECK(&s->verdict, kid != NULL, "out of memory"))
        return ENOMEM;
    kid->stress = s;
    kid->code = code;
    err = scn_submit_ex(s->pool, st_kid_run, kid, st_kid_free, 0, f);
    if (!SCN_CHECK(&s->verdict, err == 0, "a nested submission failed")) {
        free(kid);
        return err;
    }
    atomic_fetch_add(&s->kids_submitted, 1);
    return 0;
}

static void
st_nest(struct st_job *job)
{
    struct stress *s = job->batch->stress;
    crew_future *kids[2] = {NULL, NULL};
    crew_error *error = NULL;
    const char *why;
    int err;

    switch (job->nest) {
    case ST_NEST_NONE:
        return;
    case ST_NEST_DETACHED:
        st_kid_spawn(s, 0, NULL);
        return;
    case ST_NEST_WAIT:
        if (st_kid_spawn(s, 0, &kids[0]) != 0)
            return;
        err = crew_future_wait(kids[0]);
        SCN_CHECK(&s->verdict, err == 0,
                  "a task waiting on its child saw it fail");
        crew_future_release(kids[0]);
        return;
    case ST_NEST_WAIT_ALL:
        if (st_kid_spawn(s, 0, &kids[0]) != 0)
            return;
        if (st_kid_spawn(s, ST_KID_CODE, &kids[1]) != 0) {
            crew_future_release(kids[0]);
            return;
        }
        err = crew_wait_all(kids, 2, &error);
        why = scn_check_wait_all(err, error, kids, 2);
        if (why != NULL)
            scn_fail(&s->verdict, why);
        SCN_CHECK(&s->verdict, err == CREW_EAGGREGATE,
                  "crew_wait_all in a task over a failing child did not "
                  "return CREW_EAGGREGATE");
        crew_error_release(error);
        crew_future_release(kids[0]);
        crew_future_release(kids[1]);
        return;
    }
}

static void
st_return(crew_task *task, struct st_job *job)
{
    void *value = st_value_new(job->batch->stress);

    if (value == NULL)
        return;
    /* The value it replaces, if any, is freed by the library. */
    crew_task_return(task, value, st_value_free);
    job->value = value;
}

static int
st_job_run(crew_task *task, void *arg)
{
    struct st_job *job = arg;
    struct stress *s = job->batch->stress;

    SCN_CHECK(&s->verdict, atomic_fetch_add(&job->ran, 1) == 0,
              "a task ran twice");
    st_nest(job);
    for (unsigned i = 0; i < job->extra_returns; i++)
        st_return(task, job);
    switch (job->plan) {
    case ST_VALUE:
        st_return(task, job);
        break;
    case ST_SLOW:
        for (int k = 0; k < 8 && !crew_task_cancelled(task); k++)
            scn_spin(job->spin);
        break;
    case ST_FAIL:
        break;
    }
    /* A value given to a task that then fails or is cancelled is freed
     * at once by the library: counted at the end. */
    if (crew_task_cancelled(task)) {
        atomic_store(&job->saw_cancel, 1);
        job->returned = ECANCELED;
        return ECANCELED;
    }
    if (job->plan == ST_FAIL) {
        job->returned = job->code;
        return crew_task_fail(task, job->code, "job %u", job->id);
    }
    job->returned = 0;
    return 0;
}

static void
st_job_free(void *arg)
{
    struct st_job *job = arg;

    atomic_fetch_add(&job->freed, 1);
}

static void
st_request_cancel(struct stress *s, struct st_job *job)
{
    int err;

    /* Before the call: a task may see crew_task_cancelled() at once. */
    atomic_store(&job->cancel_requested, 1);
    err = crew_future_cancel(job->future);
    SCN_CHECK(&s->verdict, err == 0 || err == EALREADY,
              "crew_future_cancel returned neither 0 nor EALREADY");
    if (err == EALREADY)
        SCN_CHECK(&s->verdict, scn_resolved(crew_future_state(job->future)),
                  "crew_future_cancel returned EALREADY on an unresolved "
                  "future");
}

static void
st_job_callback(crew_future *future, void *user)
{
    struct st_job *job = user;
    struct st_batch *b = job->batch;
    struct stress *s = b->stress;

    SCN_CHECK(&s->verdict, future == job->future,
              "a callback was given another future");
    SCN_CHECK(&s->verdict, scn_resolved(crew_future_state(future)),
              "a callback ran before its future resolved");
    if (atomic_fetch_add(&job->callbacks_run, 1) == 0) {
        if (job->cb_ref != NULL) {
            crew_future *ref = job->cb_ref;

            job->cb_ref = NULL;
            crew_future_release(ref);
        }
        if (job->cancel_target != NULL)
            st_request_cancel(s, job->cancel_target);
        if (job->cb_submits)
            st_kid_spawn(s, 0, NULL);
    }
    atomic_fetch_add(&s->callbacks_run, 1);
    /* Last: the submitter may reuse the batch once every callback is in. */
    scn_gate_add(&b->callbacks_done, 1);
}

static bool
st_is_input(const struct st_combo *c, const crew_future *f)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->inputs[i] == f)
            return true;
    return false;
}

static void
st_combo_callback(crew_future *future, void *user)
{
    struct st_combo *c = user;
    struct stress *s = c->batch->stress;

    if (c->kind == ST_ANY) {
        crew_future *winner = crew_future_result(future);

        SCN_CHECK(&s->verdict, st_is_input(c, winner),
                  "a when_any's result is not one of its inputs");
        SCN_CHECK(&s->verdict,
                  winner != NULL && scn_resolved(crew_future_state(winner)),
                  "a when_any resolved before its winner did");
    } else {
        for (size_t i = 0; i < c->n; i++)
            SCN_CHECK(&s->verdict,
                      scn_resolved(crew_future_state(c->inputs[i])),
                      "a when_all resolved before one of its inputs");
    }
    atomic_fetch_add(&c->callbacks_run, 1);
    atomic_fetch_add(&s->callbacks_run, 1);
    scn_gate_add(&c->batch->callbacks_done, 1);
}

static bool
st_register(struct st_batch *b, crew_future *f, crew_callback cb, void *user)
{
    struct stress *s = b->stress;
    int err = crew_future_on_complete(f, cb, user);

    if (!SCN_CHECK(&s->verdict, err == 0, "crew_future_on_complete failed"))
        return false;
    b->callbacks_expected++;
    atomic_fetch_add(&s->callbacks_registered, 1);
    return true;
}

static void
st_prepare(struct st_batch *b, struct st_job *job, unsigned id, uint64_t *rng)
{
    job->batch = b;
    job->id = id;
    switch (scn_below(rng, 4)) {
    case 0:
    case 1:
        job->plan = ST_VALUE;
        break;
    case 2:
        job->plan = ST_FAIL;
        break;
    default:
        job->plan = ST_SLOW;
        break;
    }
    job->nest = scn_below(rng, 8) == 0
                    ? (enum st_nest)(ST_NEST_DETACHED + scn_below(rng, 3))
                    : ST_NEST_NONE;
    job->extra_returns = scn_below(rng, 8) == 0 ? 1 + scn_below(rng, 2) : 0;
    job->spin =
        job->plan == ST_SLOW ? 200 + scn_below(rng, 800) : scn_below(rng, 200);
    job->code = 1000 + (int)scn_below(rng, 50);
    job->future = NULL;
    job->cb_ref = NULL;
    job->cancel_target = NULL;
    job->cb_submits = false;
    job->callbacks_registered = 0;
    job->value = NULL;
    job->returned = -1;
    atomic_store(&job->ran, 0);
    atomic_store(&job->freed, 0);
    atomic_store(&job->saw_cancel, 0);
    atomic_store(&job->callbacks_run, 0);
    atomic_store(&job->cancel_requested, 0);
}

static void
st_add_callbacks(struct st_batch *b, size_t k, size_t n, uint64_t *rng)
{
    struct st_job *job = &b->jobs[k];
    unsigned count = 1 + scn_below(rng, 2);

    if (scn_below(rng, 8) == 0)
        job->cb_ref = crew_future_retain(job->future);
    if (k + 1 < n && scn_below(rng, 8) == 0)
        job->cancel_target =
            &b->jobs[k + 1 + scn_below(rng, (unsigned)(n - k - 1))];
    job->cb_submits = scn_below(rng, 8) == 0;
    for (unsigned i = 0; i < count; i++) {
        if (!st_register(b, job->future, st_job_callback, job))
            break;
        job->callbacks_registered++;
    }
    if (job->callbacks_registered == 0 && job->cb_ref != NULL) {
        crew_future_release(job->cb_ref);
        job->cb_ref = NULL;
    }
}

static void
st_add_input(struct st_combo *c, crew_future *f, struct st_job *job)
{
    c->inputs[c->n] = f;
    c->jobs[c->n] = job;
    c->n++;
}

static void
st_make_combo(struct st_batch *b, int index, size_t n, uint64_t *rng)
{
    struct stress *s = b->stress;
    struct st_combo *c = &b->combos[index];
    int err;

    c->batch = b;
    c->kind = index == 2 ? ST_ANY : index == 3 ? ST_NESTED : ST_ALL;
    c->n = 0;
    c->future = NULL;
    c->registered = false;
    atomic_store(&c->callbacks_run, 0);
    if (c->kind == ST_NESTED) {
        struct st_job *job = &b->jobs[scn_below(rng, (unsigned)n)];

        if (b->combos[0].future != NULL)
            st_add_input(c, b->combos[0].future, NULL);
        st_add_input(c, job->future, job);
        if (b->combos[2].future != NULL)
            st_add_input(c, b->combos[2].future, NULL);
    } else {
        unsigned m = 1 + scn_below(rng, ST_MAX_INPUTS);

        for (unsigned i = 0; i < m; i++) {
            struct st_job *job = &b->jobs[scn_below(rng, (unsigned)n)];

            st_add_input(c, job->future, job);
        }
    }
    if (c->kind == ST_ANY)
        err = crew_when_any(c->inputs, c->n, &c->future);
    else
        err = crew_when_all(c->inputs, c->n, &c->future);
    if (!SCN_CHECK(&s->verdict, err == 0, "crew_when_all/any failed"))
        return;
    c->registered = st_register(b, c->future, st_combo_callback, c);
    if (c->kind != ST_NESTED && scn_below(rng, 8) == 0) {
        /* The request passes to every input. */
        for (size_t i = 0; i < c->n; i++)
            atomic_store(&c->jobs[i]->cancel_requested, 1);
        err = crew_future_cancel(c->future);
        SCN_CHECK(&s->verdict, err == 0 || err == EALREADY,
                  "cancelling a combinator returned neither 0 nor EALREADY");
    }
}

static size_t
st_random_inputs(struct st_batch *b, size_t n, crew_future **in, uint64_t *rng)
{
    size_t m = 1 + scn_below(rng, ST_MAX_INPUTS);

    for (size_t i = 0; i < m; i++)
        in[i] = b->jobs[scn_below(rng, (unsigned)n)].future;
    return m;
}

static void
st_blocking_joins(struct st_batch *b, size_t n, uint64_t *rng)
{
    struct scn_verdict *v = &b->stress->verdict;
    crew_future *in[ST_MAX_INPUTS];
    size_t m;
    int err;

    if (scn_below(rng, 4) == 0) {
        uint64_t timeout = scn_below(rng, 2) ? 0 : CREW_FOREVER;
        size_t index = SIZE_MAX;

        m = st_random_inputs(b, n, in, rng);
        err = crew_wait_any(in, m, timeout, &index);
        if (err == 0)
            SCN_CHECK(v,
                      index < m && scn_resolved(crew_future_state(in[index])),
                      "crew_wait_any's winner has not resolved");
        else
            SCN_CHECK(v, err == ETIMEDOUT && timeout == 0 && index == SIZE_MAX,
                      "crew_wait_any failed");
    }
    if (scn_below(rng, 4) == 0) {
        crew_error *error = NULL;
        const char *why;

        m = st_random_inputs(b, n, in, rng);
        err = crew_wait_all(in, m, &error);
        why = scn_check_wait_all(err, error, in, m);
        if (why != NULL)
            scn_fail(v, why);
        crew_error_release(error);
    }
}

static void
st_verify_job(struct scn_verdict *v, struct st_job *job)
{
    crew_future *f = job->future;
    crew_state state = crew_future_state(f);
    int ran = atomic_load(&job->ran);
    bool requested = atomic_load(&job->cancel_requested);
    char message[32];

    SCN_CHECK(v, atomic_load(&job->freed) == 1,
              "arg_free did not run exactly once");
    SCN_CHECK(v, atomic_load(&job->callbacks_run) == job->callbacks_registered,
              "a callback did not run exactly once");
    if (ran == 0) {
        SCN_CHECK(v, state == CREW_CANCELLED,
                  "a task that never ran is not CANCELLED");
        SCN_CHECK(v, requested, "a task nobody cancelled never ran");
    } else if (job->returned == ECANCELED) {
        SCN_CHECK(v, state == CREW_CANCELLED,
                  "a task returning ECANCELED after a request is not "
                  "CANCELLED");
        SCN_CHECK(v, requested,
                  "crew_task_cancelled was true for a task nobody "
                  "cancelled");
    } else if (job->returned == 0) {
        SCN_CHECK(v, state == CREW_SUCCEEDED,
                  "a task returning 0 did not succeed");
        SCN_CHECK(v, crew_future_result(f) == job->value,
                  "a task's result is not the last value it returned");
    } else {
        const crew_error *error = crew_future_error(f);

        SCN_CHECK(v, state == CREW_FAILED,
                  "a task returning a code did not fail");
        SCN_CHECK(v, crew_error_code(error) == job->code,
                  "a failed task's code is not the one it returned");
        snprintf(message, sizeof(message), "job %u", job->id);
        SCN_CHECK(v, strcmp(crew_error_message(error), message) == 0,
                  "a failed task's message is not the one it recorded");
    }
    if (state == CREW_CANCELLED)
        SCN_CHECK(v, crew_error_code(crew_future_error(f)) == ECANCELED,
                  "a cancelled future's error code is not ECANCELED");
}

static void
st_verify_combo(struct scn_verdict *v, struct st_combo *c)
{
    const char *why;
    int err;

    if (c->future == NULL)
        return;
    err = crew_future_wait(c->future);
    SCN_CHECK(v, scn_wait_agrees(c->future, err),
              "crew_future_wait disagrees with a combinator's state");
    if (c->kind == ST_ANY) {
        SCN_CHECK(v, crew_future_state(c->future) == CREW_SUCCEEDED,
                  "a when_any did not succeed");
        SCN_CHECK(v, st_is_input(c, crew_future_result(c->future)),
                  "a when_any's result is not one of its inputs");
    } else {
        why = scn_check_when_all(c->future, c->inputs, c->n);
        if (why != NULL)
            scn_fail(v, why);
    }
}

static void
st_batch_run(struct st_submitter *sub, unsigned first_id, size_t n)
{
    struct st_batch *b = sub->batch;
    struct stress *s = b->stress;
    struct scn_verdict *v = &s->verdict;
    uint64_t *rng = &sub->rng;
    int err;

    for (size_t k = 0; k < n; k++) {
        struct st_job *job = &b->jobs[k];

        st_prepare(b, job, first_id + (unsigned)k, rng);
        err = scn_submit_ex(s->pool, st_job_run, job, st_job_free, 0,
                            &job->future);
        if (!SCN_CHECK(v, err == 0, "crew_submit_ex failed")) {
            n = k;
            break;
        }
        if (scn_below(rng, 16) == 0)
            st_request_cancel(s, job);
    }
    for (size_t k = 0; k < n; k++)
        if (scn_below(rng, 2) == 0)
            st_add_callbacks(b, k, n, rng);
    for (int c = 0; c < ST_COMBOS; c++) {
        b->combos[c].future = NULL;
        if (n > 0)
            st_make_combo(b, c, n, rng);
    }
    for (size_t k = 0; k < n; k++)
        if (scn_below(rng, 8) == 0)
            st_request_cancel(s, &b->jobs[k]);
    if (n > 0)
        st_blocking_joins(b, n, rng);

    for (size_t k = 0; k < n; k++) {
        crew_future *f = b->jobs[k].future;

        err = crew_future_wait(f);
        SCN_CHECK(v, scn_wait_agrees(f, err),
                  "crew_future_wait disagrees with the state");
    }
    for (int c = 0; c < ST_COMBOS; c++)
        st_verify_combo(v, &b->combos[c]);
    /* Callbacks may still run after their future's waiters woke. */
    scn_gate_wait(&b->callbacks_done, b->callbacks_expected);
    for (size_t k = 0; k < n; k++)
        st_verify_job(v, &b->jobs[k]);
    for (int c = 0; c < ST_COMBOS; c++) {
        struct st_combo *combo = &b->combos[c];

        if (combo->future != NULL)
            SCN_CHECK(v,
                      atomic_load(&combo->callbacks_run) ==
                          (combo->registered ? 1 : 0),
                      "a combinator's callback did not run exactly once");
        crew_future_release(combo->future);
        combo->future = NULL;
    }
    for (size_t k = 0; k < n; k++)
        crew_future_release(b->jobs[k].future);
}

static void *
st_submitter_run(void *arg)
{
    struct st_submitter *sub = arg;
    struct scn_verdict *v = &sub->stress->verdict;

    for (size_t done = 0; done < sub->jobs && !scn_failed(v);) {
        size_t n = sub->jobs - done < ST_BATCH ? sub->jobs - done : ST_BATCH;

        st_batch_run(sub, sub->first_id + (unsigned)done, n);
        done += n;
    }
    return NULL;
}

static const char *
st_scenario(unsigned threads, unsigned submitters, size_t total)
{
    crew_pool_options options = {.threads = threads, .max_queued = 96};
    struct st_submitter *subs;
    struct stress *s;
    const char *why;
    unsigned started = 0;
    int err;

    s = calloc(1, sizeof(*s));
    subs = calloc(submitters, sizeof(*subs));
    if (s == NULL || subs == NULL) {
        free(s);
        free(subs);
        return "out of memory";
    }
    err = crew_pool_create(&s->pool, &options);
    if (err != 0) {
        free(s);
        free(subs);
        return "crew_pool_create failed";
    }
    for (unsigned i = 0; i < submitters; i++) {
        struct st_submitter *sub = &subs[i];
        size_t share = total / submitters;

        sub->stress = s;
        sub->rng = scn_seed(900 + 16 * (uint64_t)threads + i);
        sub->first_id = (unsigned)(i * share);
        sub->jobs = i + 1 == submitters ? total - i * share : share;
        sub->batch = calloc(1, sizeof(*sub->batch));
        if (!SCN_CHECK(&s->verdict, sub->batch != NULL, "out of memory"))
            break;
        sub->batch->stress = s;
        scn_gate_init(&sub->batch->callbacks_done);
        if (pthread_create(&sub->thread, NULL, st_submitter_run, sub) != 0) {
            scn_fail(&s->verdict, "pthread_create failed");
            scn_gate_destroy(&sub->batch->callbacks_done);
            free(sub->batch);
            sub->batch = NULL;
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(subs[i].thread, NULL);
    /* Draining runs the detached children; then nothing holds a value. */
    crew_pool_destroy(s->pool);

    SCN_CHECK(&s->verdict,
              atomic_load(&s->values_freed) == atomic_load(&s->values_made),
              "value_free did not run exactly once per value");
    SCN_CHECK(&s->verdict,
              atomic_load(&s->kids_ran) == atomic_load(&s->kids_submitted),
              "a nested submission did not run exactly once");
    SCN_CHECK(&s->verdict,
              atomic_load(&s->kids_freed) == atomic_load(&s->kids_submitted),
              "a nested submission's arg_free did not run exactly once");
    SCN_CHECK(&s->verdict,
              atomic_load(&s->callbacks_run) ==
                  atomic_load(&s->callbacks_registered),
              "a callback did not run exactly once");
    for (unsigned i = 0; i < started; i++) {
        scn_gate_destroy(&subs[i].batch->callbacks_done);
        free(subs[i].batch);
    }
    why = scn_result(&s->verdict);
    free(subs);
    free(s);
    return why;
}

/*
 * Jobs per scenario at CREW_STRESS=1, and under ThreadSanitizer; children
 * add about a fifth more tasks. The five together submit about 480,000
 * tasks (240,000 under TSan), so CREW_STRESS=50, the long form, pushes
 * some 24 million through the library; any factor from 3 on (5 under
 * TSan) passes a million.
 */
const char *
crew_scenario_stress_mixed(void)
{
    /* 200,000 jobs from 4 submitters on 3 workers. */
    return st_scenario(3, 4, crew_scenario_scale(200000, 100000));
}

const char *
crew_scenario_stress_one_thread(void)
{
    return st_scenario(1, 2, crew_scenario_scale(50000, 25000));
}

const char *
crew_scenario_stress_two_threads(void)
{
    return st_scenario(2, 3, crew_scenario_scale(50000, 25000));
}

const char *
crew_scenario_stress_four_threads(void)
{
    return st_scenario(4, 4, crew_scenario_scale(50000, 25000));
}

const char *
crew_scenario_stress_many_threads(void)
{
    /* More workers than cores: preemption in every window. */
    return st_scenario(64, 4, crew_scenario_scale(50000, 25000));
}
