/*
 * Task groups' races, for both front ends (TSan runs them through the
 * driver). Each round checks what API.md's "Task groups" section says of
 * the group it made, once the group has resolved:
 *
 * - group_cancel_race: crew_group_cancel from a helper thread, and from
 *   members, races the main thread's submissions, members completing
 *   (some failing) on two workers and, in some rounds, a deadline of a
 *   few microseconds to a millisecond; some members make a child group
 *   with members of its own (and sometimes a deadline of its own) and
 *   leave it to the round. Invariants: the outcome's precedence (any
 *   failure: CREW_EAGGREGATE holding exactly the failed members, each at
 *   its index, in order, its own error; else ETIMEDOUT only with a
 *   deadline and never before it; else ECANCELED only when someone
 *   asked; else 0, and never 0 when a cancel returned before the close
 *   began, or came from a member); indices 0, 1, 2, ... and once a
 *   submission is refused (ECANCELED) every later one is too, touching
 *   nothing; every member resolved, its arg_free run once, a cancelled
 *   one never run; the done future's callback runs once, after every
 *   child group resolved; a child group is cancelled only when its
 *   parent was, times out only with a deadline, and succeeds when its
 *   parent did without deadlines.
 * - group_quorum_race: CREW_GROUP_QUORUM and CREW_GROUP_FIRST_SUCCESS
 *   (sometimes with a limit, so that held members are cancelled too),
 *   successes and failures arriving on two workers while the main thread
 *   still submits. The policy's cancellation is not "cancelled": the
 *   group succeeds exactly when enough members succeeded (failures or
 *   not), else fails with the aggregate of every failure, else ENOENT.
 *   A member is cancelled, or a submission refused, only once the quorum
 *   was reached; FIRST_SUCCESS's result is a member's future that
 *   succeeded, with that member's value.
 * - group_close_race: crew_group_close from the main thread races
 *   members adding members and a helper thread adding from outside.
 *   Members may add after the close and always can (unless a member
 *   cancelled the group); an outsider cannot once the close returned;
 *   the group never resolves while a member runs or adds; every member
 *   added runs once (or is cancelled, never run, when a member cancelled
 *   the group), its arg_free once; the indices handed out are exactly
 *   0..n-1, none repeated.
 * - group_limit_race: a limit of 1 to 3 on pools of 2, 3 and 4 threads,
 *   members adding members (held past the limit), and in some rounds a
 *   member cancelling the group with members held: never more members
 *   run at once than the limit, and the invariants of group_close_race.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Whether the aggregate `e` holds exactly the `failed` members of
 * `futures` (n of them, NULL where a submission was refused) that
 * failed, in member order, each at its index, with its own error. */
static bool
holds_the_failures(struct scn_verdict *v, const crew_error *e,
                   crew_future *const *futures, size_t n, size_t failed)
{
    size_t previous = SIZE_MAX;

    if (!SCN_CHECK(v, crew_error_code(e) == CREW_EAGGREGATE,
                   "a group with failed members is not CREW_EAGGREGATE"))
        return false;
    if (!SCN_CHECK(v, crew_error_count(e) == failed,
                   "the aggregate does not hold every failure"))
        return false;
    for (size_t k = 0; k < failed; k++) {
        size_t p = SIZE_MAX;
        const crew_error *inner = crew_error_inner(e, k, &p);

        if (!SCN_CHECK(v, p < n && futures[p] != NULL,
                       "the aggregate names no member") ||
            !SCN_CHECK(v, previous == SIZE_MAX || p > previous,
                       "the aggregate is not in member order") ||
            !SCN_CHECK(v, crew_future_state(futures[p]) == CREW_FAILED,
                       "the aggregate names a member that did not fail") ||
            !SCN_CHECK(v, inner == crew_future_error(futures[p]),
                       "an aggregate's failure is not its member's error"))
            return false;
        previous = p;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* group_cancel_race                                                  */
/* ------------------------------------------------------------------ */

#define GC_MAX  8 /* members a round submits */
#define GC_SUBS 2 /* members of a member's child group */

/* Deadlines, group's or child's: a few microseconds to a millisecond. */
static const uint64_t gc_timeouts_ns[] = {2000, 10000, 50000, 200000, 1000000};

struct gc_round;

/* A member of a member's child group. */
struct gc_sub {
    unsigned spin;
    atomic_int ran;
    atomic_int freed;
    bool accepted; /* written by the member that submitted it */
};

struct gc_member {
    struct gc_round *round;
    unsigned spin;
    int code;       /* 0: succeeds; else fails with it */
    bool cancels;   /* cancels its own group first */
    bool makes_kid; /* makes a child group and leaves it to the round */
    uint64_t kid_timeout_ns;
    atomic_int ran;
    atomic_int freed;
    crew_future *future; /* NULL: refused; written before the close */
    /* Written by the member, read once the group resolved. */
    crew_group *kid;
    crew_future *kid_done;
    struct gc_sub subs[GC_SUBS];
};

struct gc_round {
    struct scn_verdict *v;
    crew_pool *pool;
    crew_group *group; /* written before the helper starts */
    crew_group_policy policy;
    uint64_t timeout_ns;
    uint64_t created_ns; /* just before crew_group_create */
    size_t n;
    struct gc_member m[GC_MAX];
    atomic_bool member_cancelled; /* set before a member's cancel */
    struct scn_gate calls;        /* of the done future's callback */
    atomic_uint_fast64_t resolved_ns;

    /* The helper's part: set before it starts, read after it ends. */
    bool helper_cancels;
    unsigned helper_spin;
    bool helper_cancelled;
    bool must_fail;      /* a cancel returned before the close began */
    atomic_bool closing; /* the main thread is about to close */
};

static int
gc_sub_run(crew_task *task, void *arg)
{
    struct gc_sub *s = arg;

    (void)task;
    atomic_fetch_add(&s->ran, 1);
    scn_spin(s->spin);
    return 0;
}

static void
gc_sub_free(void *arg)
{
    struct gc_sub *s = arg;

    atomic_fetch_add(&s->freed, 1);
}

/* A child group of the member's group: its members are submitted, it is
 * closed, and the round checks and destroys it. */
static void
gc_make_kid(struct gc_round *r, struct gc_member *m)
{
    crew_group_options o = {.timeout_ns = m->kid_timeout_ns};
    crew_group *kid = NULL;
    crew_future *done = NULL;

    if (!SCN_CHECK(r->v, crew_group_create(&kid, r->pool, &o) == 0,
                   "a member could not make a child group"))
        return;
    for (size_t i = 0; i < GC_SUBS; i++) {
        struct gc_sub *s = &m->subs[i];
        int err =
            scn_group_submit(kid, gc_sub_run, s, gc_sub_free, 0, NULL, NULL);

        s->accepted = err == 0;
        SCN_CHECK(r->v, err == 0 || err == ECANCELED,
                  "a child group refused a member but for ECANCELED");
    }
    SCN_CHECK(r->v, crew_group_close(kid, &done) == 0 && done != NULL,
              "a child group's crew_group_close failed");
    m->kid = kid;
    m->kid_done = done;
}

static int
gc_member_run(crew_task *task, void *arg)
{
    struct gc_member *m = arg;
    struct gc_round *r = m->round;

    atomic_fetch_add(&m->ran, 1);
    SCN_CHECK(r->v, crew_task_group(task) == r->group,
              "crew_task_group is not the member's group");
    if (m->cancels) {
        /* The group cannot resolve while this member runs. */
        atomic_store(&r->member_cancelled, true);
        SCN_CHECK(r->v, crew_group_cancel(r->group) == 0,
                  "crew_group_cancel from a member failed");
    }
    if (m->makes_kid)
        gc_make_kid(r, m);
    scn_spin(m->spin);
    if (m->code != 0)
        return crew_task_fail(task, m->code, "member failed with %d", m->code);
    return 0;
}

static void
gc_member_free(void *arg)
{
    struct gc_member *m = arg;

    atomic_fetch_add(&m->freed, 1);
}

/* The group's future resolved: every member and child group has. */
static void
gc_done_cb(crew_future *done, void *arg)
{
    struct gc_round *r = arg;

    (void)done;
    atomic_store(&r->resolved_ns, scn_now_ns());
    for (size_t i = 0; i < r->n; i++) {
        const struct gc_member *m = &r->m[i];

        if (m->future != NULL)
            SCN_CHECK(r->v, scn_resolved(crew_future_state(m->future)),
                      "a group resolved before one of its members");
        if (m->kid_done != NULL)
            SCN_CHECK(r->v, scn_resolved(crew_future_state(m->kid_done)),
                      "a group resolved before a child group of a member");
    }
    scn_gate_add(&r->calls, 1);
}

/* The helper thread: cancels the round's group, maybe, then says whether
 * the group was still unresolved when its cancel returned. */
struct gc_helper {
    pthread_t thread;
    pthread_barrier_t start, end;
    struct gc_round *round; /* NULL: leave */
};

static void
gc_helper_cancel(struct gc_round *r)
{
    scn_spin(r->helper_spin);
    SCN_CHECK(r->v, crew_group_cancel(r->group) == 0,
              "crew_group_cancel failed");
    r->helper_cancelled = true;
    /* Sequentially consistent, as the main thread's store of closing:
     * seen false, the close had not begun when the cancel returned, so
     * the group's outcome was not decided yet. (Once closed, a cancel
     * may come after the last member, while the group resolves: then
     * it is too late, though the future is still pending.) */
    if (!atomic_load(&r->closing))
        r->must_fail = true;
}

static void *
gc_helper_main(void *arg)
{
    struct gc_helper *h = arg;

    for (;;) {
        struct gc_round *r;

        pthread_barrier_wait(&h->start);
        r = h->round;
        if (r == NULL)
            return NULL;
        if (r->helper_cancels)
            gc_helper_cancel(r);
        pthread_barrier_wait(&h->end);
    }
}

/* A member's child group, after its parent resolved: its outcome agrees
 * with its parent's, every member of it ran once or was cancelled. */
static void
gc_check_kid(struct gc_round *r, struct gc_member *m, int parent_err,
             bool parent_asked)
{
    int err = crew_group_wait(m->kid, NULL);
    bool cancelled = err == ECANCELED || err == ETIMEDOUT;

    SCN_CHECK(r->v, scn_wait_agrees(m->kid_done, err),
              "crew_group_wait disagrees with a child group's future");
    SCN_CHECK(r->v, err == 0 || err == ECANCELED || err == ETIMEDOUT,
              "a child group of members that cannot fail failed");
    if (err == ECANCELED)
        SCN_CHECK(r->v, parent_asked,
                  "a child group was cancelled though its parent was not");
    if (err == ETIMEDOUT)
        SCN_CHECK(r->v, m->kid_timeout_ns != 0 || r->timeout_ns != 0,
                  "a child group timed out without a deadline");
    if (parent_err == 0 && m->kid_timeout_ns == 0)
        SCN_CHECK(r->v, err == 0,
                  "a child group was cancelled though its parent succeeded");
    for (size_t i = 0; i < GC_SUBS; i++) {
        struct gc_sub *s = &m->subs[i];
        int ran = atomic_load(&s->ran);

        if (!s->accepted) {
            SCN_CHECK(r->v, ran == 0 && atomic_load(&s->freed) == 0,
                      "a refused member of a child group ran or was freed");
            continue;
        }
        SCN_CHECK(r->v, atomic_load(&s->freed) == 1,
                  "a child group member's arg_free did not run once");
        SCN_CHECK(r->v, ran == 1 || (ran == 0 && cancelled),
                  "a child group's member neither ran once nor was "
                  "cancelled");
    }
    crew_group_destroy(m->kid);
    crew_future_release(m->kid_done);
}

/* Checks a round whose group resolved with `err` and `error`. */
static void
gc_check(struct gc_round *r, crew_future *done, int err,
         const crew_error *error)
{
    struct scn_verdict *v = r->v;
    crew_future *futures[GC_MAX];
    size_t failed = 0, cancelled = 0;
    bool asked = r->helper_cancelled || atomic_load(&r->member_cancelled);
    bool policy_cancels = false;

    for (size_t i = 0; i < r->n; i++) {
        struct gc_member *m = &r->m[i];
        int ran = atomic_load(&m->ran);
        crew_state state;

        futures[i] = m->future;
        if (m->future == NULL) {
            SCN_CHECK(v, ran == 0 && atomic_load(&m->freed) == 0,
                      "a refused member ran or had its arg_free called");
            continue;
        }
        state = crew_future_state(m->future);
        SCN_CHECK(v, scn_resolved(state), "a member has not resolved");
        SCN_CHECK(v, atomic_load(&m->freed) == 1,
                  "a member's arg_free did not run exactly once");
        if (state == CREW_CANCELLED) {
            SCN_CHECK(v, ran == 0, "a cancelled member ran");
            cancelled++;
            continue;
        }
        SCN_CHECK(v, ran == 1, "a member that resolved ran twice or never");
        SCN_CHECK(v, (state == CREW_FAILED) == (m->code != 0),
                  "a member's outcome is not what it returned");
        failed += state == CREW_FAILED;
    }
    policy_cancels = r->policy == CREW_GROUP_CANCEL_ON_FAILURE && failed > 0;

    /* The callback runs after the resolution that ended the wait. */
    SCN_CHECK(v, scn_gate_await(&r->calls, 1) == 1,
              "the group's callback never ran");
    SCN_CHECK(v, scn_gate_count(&r->calls) == 1,
              "the group's callback ran twice");
    SCN_CHECK(v, scn_wait_agrees(done, err),
              "crew_group_wait disagrees with the group's future");
    SCN_CHECK(v, (err == 0) == (error == NULL),
              "crew_group_wait's error is not the group's");
    if (error != NULL)
        SCN_CHECK(v, error == crew_future_error(done),
                  "crew_group_wait's error is not the group's");
    if (failed > 0) {
        if (SCN_CHECK(v, err == CREW_EAGGREGATE,
                      "a group with failed members did not fail with "
                      "CREW_EAGGREGATE"))
            holds_the_failures(v, crew_future_error(done), futures, r->n,
                               failed);
    } else if (err == ETIMEDOUT) {
        SCN_CHECK(v, r->timeout_ns != 0,
                  "a group without a deadline timed out");
        SCN_CHECK(v,
                  atomic_load(&r->resolved_ns) - r->created_ns >= r->timeout_ns,
                  "a deadline fired before its timeout");
    } else if (err == ECANCELED) {
        SCN_CHECK(v, asked, "a group was cancelled though nobody asked");
    } else {
        SCN_CHECK(v, err == 0,
                  "a group of members that ran without "
                  "failing neither succeeded nor was cancelled");
    }
    if (err == 0)
        SCN_CHECK(v, cancelled == 0,
                  "a member was cancelled yet its group succeeded");
    if (r->must_fail || atomic_load(&r->member_cancelled))
        SCN_CHECK(v, err != 0,
                  "a group cancelled before it resolved succeeded");
    if (!asked && r->timeout_ns == 0 && !policy_cancels) {
        SCN_CHECK(v, cancelled == 0,
                  "a member was cancelled though nothing cancelled the "
                  "group");
        SCN_CHECK(v, err == 0 || err == CREW_EAGGREGATE,
                  "a group nothing cancelled did not run to its end");
    }
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].kid != NULL)
            gc_check_kid(r, &r->m[i], err, asked || policy_cancels);
}

/* One round: set up from `rng`, race, check, release. */
static void
gc_round(struct gc_round *r, struct gc_helper *h, uint64_t *rng)
{
    struct scn_verdict *v = r->v;
    crew_group_options o;
    crew_future *done = NULL;
    crew_error *error = NULL;
    bool refused = false;
    int err;

    r->n = 2 + scn_below(rng, GC_MAX - 1);
    r->policy =
        scn_below(rng, 3) == 0 ? CREW_GROUP_CANCEL_ON_FAILURE : CREW_GROUP_ALL;
    r->timeout_ns =
        scn_below(rng, 3) == 0 ? gc_timeouts_ns[scn_below(rng, 5)] : 0;
    r->helper_cancels = scn_below(rng, 3) != 0;
    /* From before the first submission to after the last member. */
    r->helper_spin = scn_below(rng, 1u << (8 + scn_below(rng, 8)));
    for (size_t i = 0; i < r->n; i++) {
        struct gc_member *m = &r->m[i];

        m->round = r;
        m->spin = scn_below(rng, 3000);
        m->code = scn_below(rng, 4) == 0 ? EIO + (int)scn_below(rng, 3) : 0;
        m->cancels = scn_below(rng, 10) == 0;
        m->makes_kid = scn_below(rng, 5) == 0;
        m->kid_timeout_ns =
            scn_below(rng, 3) == 0 ? gc_timeouts_ns[scn_below(rng, 5)] : 0;
        for (size_t k = 0; k < GC_SUBS; k++)
            m->subs[k].spin = scn_below(rng, 2000);
    }
    o = (crew_group_options){.policy = r->policy, .timeout_ns = r->timeout_ns};

    r->created_ns = scn_now_ns();
    if (!SCN_CHECK(v, crew_group_create(&r->group, r->pool, &o) == 0,
                   "crew_group_create failed"))
        return;
    h->round = r;
    pthread_barrier_wait(&h->start);
    for (size_t i = 0; i < r->n; i++) {
        struct gc_member *m = &r->m[i];
        size_t index = SIZE_MAX;
        crew_future *f = (crew_future *)r; /* must be overwritten */

        err = scn_group_submit(r->group, gc_member_run, m, gc_member_free, 0,
                               &index, &f);
        if (err != 0) {
            SCN_CHECK(v, err == ECANCELED,
                      "a submission was refused but for ECANCELED");
            SCN_CHECK(v, index == SIZE_MAX && f == NULL,
                      "a refused submission set its index or kept a future");
            refused = true;
            m->future = NULL;
            continue;
        }
        SCN_CHECK(v, !refused,
                  "a submission went through after one was refused as "
                  "cancelled");
        SCN_CHECK(v, index == i, "the indices are not 0, 1, 2, ...");
        SCN_CHECK(v, f != NULL, "an accepted member has no future");
        m->future = f;
    }
    atomic_store(&r->closing, true);
    SCN_CHECK(v, crew_group_close(r->group, &done) == 0 && done != NULL,
              "crew_group_close failed");
    if (done != NULL)
        SCN_CHECK(v, crew_future_on_complete(done, gc_done_cb, r) == 0,
                  "crew_future_on_complete failed");
    err = crew_group_wait(r->group, &error);
    pthread_barrier_wait(&h->end);
    if (done != NULL)
        gc_check(r, done, err, error);
    crew_error_release(error);
    crew_group_destroy(r->group);
    crew_future_release(done);
    for (size_t i = 0; i < r->n; i++)
        crew_future_release(r->m[i].future);
}

const char *
crew_scenario_group_cancel_race(void)
{
    size_t rounds = crew_scenario_scale(20000, 10000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    struct gc_helper h = {.round = NULL};
    uint64_t rng = scn_seed(1100);
    crew_pool *pool = NULL;
    struct gc_round *r = malloc(sizeof(*r));

    if (r == NULL)
        return "out of memory";
    if (crew_pool_create(&pool, &options) != 0) {
        free(r);
        return "crew_pool_create failed";
    }
    pthread_barrier_init(&h.start, NULL, 2);
    pthread_barrier_init(&h.end, NULL, 2);
    pthread_create(&h.thread, NULL, gc_helper_main, &h);
    for (size_t i = 0; i < rounds && !scn_failed(&v); i++) {
        memset(r, 0, sizeof(*r));
        r->v = &v;
        r->pool = pool;
        scn_gate_init(&r->calls);
        gc_round(r, &h, &rng);
        scn_gate_destroy(&r->calls);
    }
    h.round = NULL;
    pthread_barrier_wait(&h.start);
    pthread_join(h.thread, NULL);
    pthread_barrier_destroy(&h.start);
    pthread_barrier_destroy(&h.end);
    crew_pool_destroy(pool);
    free(r);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* group_quorum_race                                                  */
/* ------------------------------------------------------------------ */

#define GQ_MAX 10

struct gq_member {
    unsigned spin;
    int code;
    atomic_int ran;
    atomic_int freed;
    crew_future *future; /* NULL: refused */
};

static int
gq_member_run(crew_task *task, void *arg)
{
    struct gq_member *m = arg;

    atomic_fetch_add(&m->ran, 1);
    scn_spin(m->spin);
    if (m->code != 0)
        return crew_task_fail(task, m->code, "member failed");
    crew_task_return(task, m, NULL);
    return 0;
}

static void
gq_member_free(void *arg)
{
    struct gq_member *m = arg;

    atomic_fetch_add(&m->freed, 1);
}

static void
gq_done_cb(crew_future *done, void *calls)
{
    (void)done;
    scn_gate_add(calls, 1);
}

static void
gq_check(struct scn_verdict *v, struct gq_member *ms, size_t n, size_t need,
         crew_group_policy policy, crew_future *done, int err,
         struct scn_gate *calls)
{
    crew_future *futures[GQ_MAX];
    size_t succeeded = 0, failed = 0, cancelled = 0, refused = 0;

    for (size_t i = 0; i < n; i++) {
        struct gq_member *m = &ms[i];
        int ran = atomic_load(&m->ran);
        crew_state state;

        futures[i] = m->future;
        if (m->future == NULL) {
            SCN_CHECK(v, ran == 0 && atomic_load(&m->freed) == 0,
                      "a refused member ran or had its arg_free called");
            refused++;
            continue;
        }
        state = crew_future_state(m->future);
        SCN_CHECK(v, scn_resolved(state), "a member has not resolved");
        SCN_CHECK(v, atomic_load(&m->freed) == 1,
                  "a member's arg_free did not run exactly once");
        if (state == CREW_CANCELLED) {
            SCN_CHECK(v, ran == 0, "a cancelled member ran");
            cancelled++;
            continue;
        }
        SCN_CHECK(v, ran == 1, "a member that resolved ran twice or never");
        SCN_CHECK(v, (state == CREW_FAILED) == (m->code != 0),
                  "a member's outcome is not what it returned");
        succeeded += state == CREW_SUCCEEDED;
        failed += state == CREW_FAILED;
    }
    SCN_CHECK(v, scn_gate_await(calls, 1) == 1,
              "the group's callback never ran");
    SCN_CHECK(v, scn_gate_count(calls) == 1, "the group's callback ran twice");
    SCN_CHECK(v, scn_wait_agrees(done, err),
              "crew_group_wait disagrees with the group's future");
    if (succeeded >= need) {
        if (!SCN_CHECK(v, err == 0,
                       "enough members succeeded, yet the group did not"))
            return;
        if (policy == CREW_GROUP_QUORUM) {
            SCN_CHECK(v, crew_future_result(done) == NULL,
                      "a quorum's result is not NULL");
        } else {
            crew_future *winner = crew_future_result(done);
            size_t p = 0;

            while (p < n && futures[p] != winner)
                p++;
            if (SCN_CHECK(v, winner != NULL && p < n,
                          "FIRST_SUCCESS's result is not a member's future"))
                SCN_CHECK(v,
                          crew_future_state(winner) == CREW_SUCCEEDED &&
                              crew_future_result(winner) == &ms[p],
                          "FIRST_SUCCESS's result is not a member that "
                          "succeeded");
        }
        return;
    }
    /* Too few successes: the policy never decided. */
    SCN_CHECK(v, cancelled == 0,
              "a member was cancelled before the quorum was reached");
    SCN_CHECK(v, refused == 0,
              "a submission was refused before the quorum was reached");
    if (failed > 0) {
        if (SCN_CHECK(v, err == CREW_EAGGREGATE,
                      "too few successes with failures is not "
                      "CREW_EAGGREGATE"))
            holds_the_failures(v, crew_future_error(done), futures, n, failed);
    } else {
        SCN_CHECK(v, err == ENOENT,
                  "too few successes without a failure is not ENOENT");
    }
}

static void
gq_round(struct scn_verdict *v, crew_pool *pool, uint64_t *rng)
{
    struct gq_member ms[GQ_MAX];
    size_t n = 2 + scn_below(rng, GQ_MAX - 1);
    crew_group_options o = {.policy = CREW_GROUP_QUORUM};
    crew_group *g = NULL;
    crew_future *done = NULL;
    struct scn_gate calls = SCN_GATE_INIT;
    bool refused = false;
    size_t need;
    int err;

    if (scn_below(rng, 3) == 0) {
        o.policy = CREW_GROUP_FIRST_SUCCESS;
        need = 1;
    } else {
        o.quorum = need = 1 + scn_below(rng, (unsigned)n);
    }
    if (scn_below(rng, 3) == 0)
        o.limit = 1 + scn_below(rng, 2);
    for (size_t i = 0; i < n; i++) {
        ms[i] = (struct gq_member){
            .spin = scn_below(rng, 4000),
            .code = scn_below(rng, 2) == 0 ? EIO : 0,
            .future = NULL,
        };
    }
    if (!SCN_CHECK(v, crew_group_create(&g, pool, &o) == 0,
                   "crew_group_create failed"))
        return;
    for (size_t i = 0; i < n; i++) {
        size_t index = SIZE_MAX;
        crew_future *f = (crew_future *)&ms[i]; /* must be overwritten */

        err = scn_group_submit(g, gq_member_run, &ms[i], gq_member_free, 0,
                               &index, &f);
        if (err != 0) {
            SCN_CHECK(v, err == ECANCELED,
                      "a submission was refused but for ECANCELED");
            SCN_CHECK(v, index == SIZE_MAX && f == NULL,
                      "a refused submission set its index or kept a future");
            refused = true;
            continue;
        }
        SCN_CHECK(v, !refused,
                  "a submission went through after the policy cancelled");
        SCN_CHECK(v, index == i, "the indices are not 0, 1, 2, ...");
        ms[i].future = f;
    }
    if (SCN_CHECK(v, crew_group_close(g, &done) == 0 && done != NULL,
                  "crew_group_close failed") &&
        SCN_CHECK(v, crew_future_on_complete(done, gq_done_cb, &calls) == 0,
                  "crew_future_on_complete failed")) {
        err = crew_group_wait(g, NULL);
        gq_check(v, ms, n, need, o.policy, done, err, &calls);
    }
    crew_group_destroy(g);
    crew_future_release(done);
    for (size_t i = 0; i < n; i++)
        crew_future_release(ms[i].future);
    scn_gate_destroy(&calls);
}

const char *
crew_scenario_group_quorum_race(void)
{
    size_t rounds = crew_scenario_scale(40000, 20000);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    uint64_t rng = scn_seed(1200);
    crew_pool *pool = NULL;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++)
        gq_round(&v, pool, &rng);
    crew_pool_destroy(pool);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* group_close_race and group_limit_race: members adding members      */
/* ------------------------------------------------------------------ */

#define GT_MAX     192 /* members a round records (and adds at most) */
#define GT_WORDS   (GT_MAX / 64)
#define GT_OUTSIDE 12 /* submissions the outsider tries */

struct gt_round;

struct gt_member {
    struct gt_round *round;
    unsigned depth;
    atomic_int ran;
    atomic_int freed;
    atomic_bool accepted; /* set once its submission returned 0 */
};

struct gt_round {
    struct scn_verdict *v;
    crew_pool *pool;
    crew_group *group;
    uint64_t seed;    /* each member's randomness, with its slot */
    size_t limit;     /* the group's; 0: none */
    unsigned fanout;  /* members a member adds, at most */
    unsigned depth;   /* of the tree of members */
    unsigned spin;    /* a member's work, at most */
    size_t cancel_at; /* this member slot cancels the group; else none */
    bool outsider;    /* the helper adds from outside until the close */

    struct gt_member m[GT_MAX];
    atomic_size_t used;                     /* slots of m[] taken */
    atomic_uint_fast64_t indices[GT_WORDS]; /* handed out */
    atomic_size_t handed;
    atomic_int running; /* members inside their function */
    atomic_int most;
    atomic_bool cancelled; /* set before a member's cancel */
    atomic_bool closed;    /* set once crew_group_close returned */
    _Atomic(crew_future *) done;
    struct scn_gate calls; /* of the done future's callback */
};

static int gt_member_run(crew_task *task, void *arg);

/* Raise the high-water mark `most` to `now`. */
static void
raise_to(atomic_int *most, int now)
{
    int seen = atomic_load(most);

    while (now > seen && !atomic_compare_exchange_weak(most, &seen, now))
        ;
}

static void
gt_member_free(void *arg)
{
    struct gt_member *m = arg;

    atomic_fetch_add(&m->freed, 1);
}

/* Add a member of `depth`; returns crew_group_submit's error, or -1 when
 * the round's records are used up (nothing submitted). */
static int
gt_add(struct gt_round *r, unsigned depth)
{
    size_t slot = atomic_fetch_add(&r->used, 1);
    struct gt_member *m;
    size_t index = SIZE_MAX;
    uint_fast64_t bit, before;
    int err;

    if (slot >= GT_MAX)
        return -1;
    m = &r->m[slot];
    m->round = r;
    m->depth = depth;
    err = scn_group_submit(r->group, gt_member_run, m, gt_member_free, 0,
                           &index, NULL);
    if (err != 0) {
        SCN_CHECK(r->v, index == SIZE_MAX,
                  "a refused submission set its index");
        return err;
    }
    if (!SCN_CHECK(r->v, index < GT_MAX,
                   "an index is past the number of members added"))
        return err;
    bit = (uint_fast64_t)1 << (index % 64);
    before = atomic_fetch_or(&r->indices[index / 64], bit);
    SCN_CHECK(r->v, (before & bit) == 0, "an index was handed out twice");
    atomic_fetch_add(&r->handed, 1);
    atomic_store(&m->accepted, true);
    return 0;
}

static int
gt_member_run(crew_task *task, void *arg)
{
    struct gt_member *m = arg;
    struct gt_round *r = m->round;
    size_t slot = (size_t)(m - r->m);
    uint64_t rng = scn_seed(r->seed + slot);
    int now = atomic_fetch_add(&r->running, 1) + 1;

    atomic_fetch_add(&m->ran, 1);
    raise_to(&r->most, now);
    if (r->limit != 0)
        SCN_CHECK(r->v, (size_t)now <= r->limit,
                  "more members ran at once than the group's limit");
    SCN_CHECK(r->v, crew_task_group(task) == r->group,
              "crew_task_group is not the member's group");
    if (slot == r->cancel_at) {
        atomic_store(&r->cancelled, true);
        SCN_CHECK(r->v, crew_group_cancel(r->group) == 0,
                  "crew_group_cancel from a member failed");
    }
    if (m->depth < r->depth) {
        unsigned k = scn_below(&rng, r->fanout + 1);

        for (unsigned i = 0; i < k; i++) {
            int err = gt_add(r, m->depth + 1);
            crew_future *done;

            if (err == -1)
                break;
            /* A member may add after the close; only a cancel refuses. */
            if (err != 0) {
                SCN_CHECK(r->v, err == ECANCELED && atomic_load(&r->cancelled),
                          "a member could not add a member");
                break;
            }
            /* This member still runs: the group cannot have resolved. */
            done = atomic_load(&r->done);
            if (done != NULL)
                SCN_CHECK(r->v, !scn_resolved(crew_future_state(done)),
                          "the group resolved while a member was adding");
        }
    }
    scn_spin(scn_below(&rng, r->spin + 1));
    atomic_fetch_sub(&r->running, 1);
    return 0;
}

/* The group's future resolved: no member may be running. */
static void
gt_done_cb(crew_future *done, void *arg)
{
    struct gt_round *r = arg;

    (void)done;
    SCN_CHECK(r->v, atomic_load(&r->running) == 0,
              "the group resolved while a member was running");
    scn_gate_add(&r->calls, 1);
}

/* The helper: adds members from outside until the close refuses it. */
struct gt_helper {
    pthread_t thread;
    pthread_barrier_t start, end;
    struct gt_round *round; /* NULL: leave */
};

static void
gt_outsider(struct gt_round *r)
{
    uint64_t rng = scn_seed(r->seed ^ 0x5a5a);

    for (int i = 0; i < GT_OUTSIDE; i++) {
        bool was_closed = atomic_load(&r->closed);
        int err = gt_add(r, r->depth); /* adds none of its own */

        if (err == -1)
            return;
        if (err == 0) {
            SCN_CHECK(r->v, !was_closed,
                      "an outsider added a member after the close");
        } else if (err == ESHUTDOWN) {
            return;
        } else {
            SCN_CHECK(r->v, err == ECANCELED && atomic_load(&r->cancelled),
                      "an outsider was refused but for ESHUTDOWN or a "
                      "cancel");
            return;
        }
        scn_spin(scn_below(&rng, 2000));
    }
}

static void *
gt_helper_main(void *arg)
{
    struct gt_helper *h = arg;

    for (;;) {
        struct gt_round *r;

        pthread_barrier_wait(&h->start);
        r = h->round;
        if (r == NULL)
            return NULL;
        if (r->outsider)
            gt_outsider(r);
        pthread_barrier_wait(&h->end);
    }
}

static void
gt_check(struct gt_round *r, crew_future *done, int err)
{
    struct scn_verdict *v = r->v;
    size_t used = atomic_load(&r->used);
    size_t handed = atomic_load(&r->handed);
    size_t accepted = 0;
    bool cancelled = atomic_load(&r->cancelled);

    if (used > GT_MAX)
        used = GT_MAX;
    SCN_CHECK(v, scn_gate_await(&r->calls, 1) == 1,
              "the group's callback never ran");
    SCN_CHECK(v, scn_gate_count(&r->calls) == 1,
              "the group's callback ran twice");
    SCN_CHECK(v, scn_wait_agrees(done, err),
              "crew_group_wait disagrees with the group's future");
    if (cancelled)
        SCN_CHECK(v, err == ECANCELED,
                  "a group a member cancelled is not ECANCELED");
    else
        SCN_CHECK(v, err == 0,
                  "a group of members that cannot fail did "
                  "not succeed");
    for (size_t i = 0; i < GT_MAX; i++) {
        uint_fast64_t word = atomic_load(&r->indices[i / 64]);
        bool set = (word >> (i % 64)) & 1;

        if (!SCN_CHECK(v, set == (i < handed),
                       "the indices handed out are not 0..n-1"))
            break;
    }
    for (size_t i = 0; i < used; i++) {
        struct gt_member *m = &r->m[i];
        int n = atomic_load(&m->ran);

        if (!atomic_load(&m->accepted)) {
            SCN_CHECK(v, n == 0 && atomic_load(&m->freed) == 0,
                      "a refused member ran or had its arg_free called");
            continue;
        }
        accepted++;
        SCN_CHECK(v, atomic_load(&m->freed) == 1,
                  "a member's arg_free did not run exactly once");
        SCN_CHECK(v, n == 1 || (n == 0 && cancelled),
                  "a member added neither ran once nor was cancelled");
    }
    SCN_CHECK(v, accepted == handed,
              "the members added are not the indices handed out");
    if (r->limit != 0)
        SCN_CHECK(v, (size_t)atomic_load(&r->most) <= r->limit,
                  "more members ran at once than the group's limit");
}

/* One round: `roots` members from the main thread, racing the helper,
 * then the close after `close_spin`. */
static void
gt_round(struct gt_round *r, struct gt_helper *h, unsigned roots,
         unsigned close_spin)
{
    struct scn_verdict *v = r->v;
    crew_group_options o = {.limit = r->limit};
    crew_future *done = NULL;
    int err;

    if (!SCN_CHECK(v, crew_group_create(&r->group, r->pool, &o) == 0,
                   "crew_group_create failed"))
        return;
    h->round = r;
    pthread_barrier_wait(&h->start);
    for (unsigned i = 0; i < roots; i++) {
        err = gt_add(r, 0);
        if (err != 0) {
            SCN_CHECK(v, err == ECANCELED && atomic_load(&r->cancelled),
                      "a submission before the close was refused");
            break;
        }
    }
    scn_spin(close_spin);
    SCN_CHECK(v, crew_group_close(r->group, &done) == 0 && done != NULL,
              "crew_group_close failed");
    atomic_store(&r->closed, true);
    atomic_store(&r->done, done);
    if (done != NULL) {
        SCN_CHECK(v, crew_future_on_complete(done, gt_done_cb, r) == 0,
                  "crew_future_on_complete failed");
        err = crew_group_wait(r->group, NULL);
    }
    pthread_barrier_wait(&h->end);
    if (done != NULL)
        gt_check(r, done, err);
    crew_group_destroy(r->group);
    crew_future_release(done);
}

/* What varies between the two scenarios. */
struct gt_plan {
    uint64_t seed;
    size_t rounds;
    bool outsider;
    bool limited;
};

static const char *
gt_scenario(const struct gt_plan *plan)
{
    static const unsigned threads[] = {2, 3, 4};
    struct scn_verdict v = {NULL};
    struct gt_helper h = {.round = NULL};
    crew_pool *pools[3] = {NULL, NULL, NULL};
    size_t npools = plan->limited ? 3 : 1;
    uint64_t rng = scn_seed(plan->seed);
    struct gt_round *r = malloc(sizeof(*r));

    if (r == NULL)
        return "out of memory";
    for (size_t i = 0; i < npools; i++) {
        crew_pool_options options = {.threads = threads[i]};

        if (!SCN_CHECK(&v, crew_pool_create(&pools[i], &options) == 0,
                       "crew_pool_create failed"))
            break;
    }
    pthread_barrier_init(&h.start, NULL, 2);
    pthread_barrier_init(&h.end, NULL, 2);
    pthread_create(&h.thread, NULL, gt_helper_main, &h);
    for (size_t i = 0; i < plan->rounds && !scn_failed(&v); i++) {
        unsigned roots = 1 + scn_below(&rng, 3);
        unsigned close_spin = scn_below(&rng, 1u << scn_below(&rng, 16));

        memset(r, 0, sizeof(*r));
        r->v = &v;
        r->pool = pools[scn_below(&rng, (unsigned)npools)];
        r->seed = scn_rand(&rng);
        r->limit = plan->limited ? 1 + scn_below(&rng, 3) : 0;
        r->fanout = 1 + scn_below(&rng, 3);
        r->depth = 1 + scn_below(&rng, 3);
        r->spin = scn_below(&rng, 3000);
        r->cancel_at = scn_below(&rng, 4) == 0 ? scn_below(&rng, 8) : SIZE_MAX;
        r->outsider = plan->outsider;
        scn_gate_init(&r->calls);
        gt_round(r, &h, roots, close_spin);
        scn_gate_destroy(&r->calls);
    }
    h.round = NULL;
    pthread_barrier_wait(&h.start);
    pthread_join(h.thread, NULL);
    pthread_barrier_destroy(&h.start);
    pthread_barrier_destroy(&h.end);
    for (size_t i = 0; i < npools; i++)
        crew_pool_destroy(pools[i]);
    free(r);
    return scn_result(&v);
}

const char *
crew_scenario_group_close_race(void)
{
    const struct gt_plan plan = {
        .seed = 1300,
        .rounds = crew_scenario_scale(15000, 8000),
        .outsider = true,
    };

    return gt_scenario(&plan);
}

const char *
crew_scenario_group_limit_race(void)
{
    const struct gt_plan plan = {
        .seed = 1400,
        .rounds = crew_scenario_scale(15000, 8000),
        .limited = true,
    };

    return gt_scenario(&plan);
}
