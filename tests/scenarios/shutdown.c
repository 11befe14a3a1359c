/*
 * Shutting a pool down while work is still coming in, and destroying a
 * pool from one of its own workers.
 *
 * Under load: three submitter threads submit as fast as they can (some
 * with CREW_NONBLOCKING into a bounded queue, some keeping the future,
 * some fire-and-forget, some tasks submitting a child of their own) while
 * the main thread calls crew_pool_shutdown() once enough has been
 * accepted. A submitter that sees ESHUTDOWN stops, after checking that
 * every later submission is refused too; in half the rounds it first calls
 * crew_pool_shutdown() again, with the other mode, which must return 0
 * once the workers have exited and change nothing. Then, by counting, for
 * each submission: accepted ones ran once (DRAIN) or ran once or were
 * cancelled unrun (CANCEL), with arg_free exactly once, and every kept
 * future had resolved when shutdown returned; refused ones never ran and
 * were never freed. A task's own submissions are accepted during a drain.
 * In CANCEL rounds one task spins until crew_task_cancelled() turns true:
 * if the shutdown does not tell running tasks, the round hangs.
 *
 * Each record is written by its submitter before it is submitted and by
 * the task and arg_free afterwards, through atomics; the submitter
 * threads are joined before the main thread reads the records.
 */
#include "scenarios.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#define SD_SUBMITTERS 3

/* A value no submission leaves in *future: NULL is what errors leave. */
static max_align_t sd_sentinel_object;
#define SD_SENTINEL ((crew_future *)(void *)&sd_sentinel_object)

struct sd_round;

struct sd_rec {
    struct sd_round *round;
    unsigned spin;
    bool child; /* the task submits a child task */
    atomic_int ran;
    atomic_int freed;
    atomic_int saw_cancel;
};

enum sd_fate { SD_UNTRIED, SD_ACCEPTED, SD_REFUSED };

struct sd_submitter {
    struct sd_round *round;
    pthread_t thread;
    uint64_t rng;
    struct sd_rec *recs;
    crew_future **futures; /* NULL where not kept */
    unsigned char *fate;   /* enum sd_fate */
    size_t tried;
    bool shuts_down_again;
};

struct sd_round {
    crew_pool *pool;
    crew_shutdown how;
    unsigned threads;
    size_t cap;               /* submissions per submitter, at most */
    bool bounded;             /* max_queued is set */
    struct scn_gate progress; /* accepted submissions, in steps of 32 */
    atomic_size_t started;    /* on_thread_start calls */
    atomic_size_t stopped;    /* on_thread_stop calls */
    atomic_size_t child_accepted;
    atomic_size_t child_ran;
    atomic_size_t child_freed;
    struct scn_verdict *verdict;
};

struct sd_child {
    struct sd_round *round;
};

static void
sd_started(crew_pool *pool, unsigned worker, void *user)
{
    struct sd_round *round = user;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&round->started, 1);
}

static void
sd_stopped(crew_pool *pool, unsigned worker, void *user)
{
    struct sd_round *round = user;

    (void)pool;
    (void)worker;
    atomic_fetch_add(&round->stopped, 1);
}

static int
sd_child_run(crew_task *task, void *arg)
{
    struct sd_child *child = arg;

    (void)task;
    atomic_fetch_add(&child->round->child_ran, 1);
    return 0;
}

static void
sd_child_free(void *arg)
{
    struct sd_child *child = arg;

    atomic_fetch_add(&child->round->child_freed, 1);
    free(child);
}

static void
sd_spawn_child(crew_task *task, struct sd_round *round)
{
    struct sd_child *child = malloc(sizeof(*child));
    int err;

    if (!SCN_CHECK(round->verdict, child != NULL, "out of memory"))
        return;
    child->round = round;
    err = scn_submit_ex(crew_task_pool(task), sd_child_run, child,
                        sd_child_free, 0, NULL);
    if (err == 0) {
        atomic_fetch_add(&round->child_accepted, 1);
        return;
    }
    free(child);
    if (round->how == CREW_DRAIN)
        scn_fail(round->verdict, "a DRAIN shutdown refused a submission "
                                 "from a running task");
    else
        SCN_CHECK(round->verdict, err == ESHUTDOWN,
                  "a task's submission during shutdown failed with other "
                  "than ESHUTDOWN");
}

static int
sd_task(crew_task *task, void *arg)
{
    struct sd_rec *rec = arg;

    atomic_fetch_add(&rec->ran, 1);
    scn_spin(rec->spin);
    if (rec->child)
        sd_spawn_child(task, rec->round);
    if (crew_task_cancelled(task)) {
        atomic_store(&rec->saw_cancel, 1);
        return ECANCELED;
    }
    return 0;
}

static void
sd_free(void *arg)
{
    struct sd_rec *rec = arg;

    atomic_fetch_add(&rec->freed, 1);
}

/* Runs until the pool's CANCEL shutdown tells it to stop. */
static int
sd_loiter(crew_task *task, void *arg)
{
    (void)arg;
    while (!crew_task_cancelled(task))
        sched_yield();
    return ECANCELED;
}

/* After the first ESHUTDOWN: later submissions are refused as well, and
 * a second shutdown call returns once the workers have exited. */
static void
sd_after_refusal(struct sd_submitter *s, struct sd_rec *rec)
{
    struct sd_round *round = s->round;
    struct scn_verdict *v = round->verdict;
    int err;

    for (int k = 0; k < 3; k++) {
        crew_future *f = SD_SENTINEL;

        err = scn_submit_ex(round->pool, sd_task, rec, sd_free, 0, &f);
        SCN_CHECK(v, err == ESHUTDOWN && f == NULL,
                  "a submission after ESHUTDOWN was not refused alike");
    }
    if (!s->shuts_down_again)
        return;
    err = crew_pool_shutdown(
        round->pool, round->how == CREW_DRAIN ? CREW_CANCEL : CREW_DRAIN);
    SCN_CHECK(v, err == 0,
              "a concurrent second crew_pool_shutdown did not "
              "return 0");
    SCN_CHECK(v, atomic_load(&round->stopped) == round->threads,
              "a second crew_pool_shutdown returned before the workers "
              "exited");
    for (size_t i = 0; i < s->tried; i++)
        if (s->futures[i] != NULL)
            SCN_CHECK(v, scn_resolved(crew_future_state(s->futures[i])),
                      "an accepted task was unresolved when a second "
                      "crew_pool_shutdown returned");
}

static void *
sd_submitter_run(void *arg)
{
    struct sd_submitter *s = arg;
    struct sd_round *round = s->round;
    struct scn_verdict *v = round->verdict;
    size_t accepted = 0;

    for (size_t i = 0; i < round->cap && !scn_failed(v); i++) {
        struct sd_rec *rec = &s->recs[i];
        bool keep = scn_below(&s->rng, 2) == 0;
        unsigned flags =
            round->bounded && scn_below(&s->rng, 4) == 0 ? CREW_NONBLOCKING : 0;
        int err;

        rec->round = round;
        rec->spin = scn_below(&s->rng, 1000);
        rec->child = scn_below(&s->rng, 8) == 0;
        s->tried = i + 1;
        for (;;) {
            s->futures[i] = SD_SENTINEL;
            err = scn_submit_ex(round->pool, sd_task, rec, sd_free, flags,
                                keep ? &s->futures[i] : NULL);
            if (err != EAGAIN)
                break;
            SCN_CHECK(v, flags & CREW_NONBLOCKING,
                      "crew_submit_ex returned EAGAIN without "
                      "CREW_NONBLOCKING");
            SCN_CHECK(v, !keep || s->futures[i] == NULL,
                      "a refused submission left *future set");
            SCN_CHECK(v, atomic_load(&rec->freed) == 0,
                      "a refused submission ran arg_free");
            flags = 0;
        }
        if (!keep)
            s->futures[i] = NULL;
        if (err == 0) {
            s->fate[i] = SD_ACCEPTED;
            if (++accepted % 32 == 0)
                scn_gate_add(&round->progress, 32);
            continue;
        }
        s->fate[i] = SD_REFUSED;
        SCN_CHECK(v, err == ESHUTDOWN,
                  "crew_submit_ex failed with other than ESHUTDOWN");
        SCN_CHECK(v, s->futures[i] == NULL,
                  "a refused submission left *future set");
        s->futures[i] = NULL;
        sd_after_refusal(s, rec);
        break;
    }
    /* However it ended, the main thread must not wait for more. */
    scn_gate_add(&round->progress, round->cap);
    return NULL;
}

static void
sd_verify(struct sd_round *round, struct sd_submitter *subs)
{
    struct scn_verdict *v = round->verdict;
    bool drain = round->how == CREW_DRAIN;

    for (int j = 0; j < SD_SUBMITTERS; j++) {
        struct sd_submitter *s = &subs[j];

        for (size_t i = 0; i < s->tried; i++) {
            struct sd_rec *rec = &s->recs[i];
            int ran = atomic_load(&rec->ran);
            int freed = atomic_load(&rec->freed);
            bool saw_cancel = atomic_load(&rec->saw_cancel);
            crew_future *f = s->futures[i];
            crew_state state;

            if (s->fate[i] == SD_REFUSED) {
                SCN_CHECK(v, ran == 0 && freed == 0,
                          "a refused submission ran or was freed");
                continue;
            }
            SCN_CHECK(v, freed == 1,
                      "an accepted task's arg_free did not run exactly once");
            SCN_CHECK(v, ran <= 1, "an accepted task ran twice");
            if (drain) {
                SCN_CHECK(v, ran == 1,
                          "a DRAIN shutdown skipped an accepted task");
                SCN_CHECK(v, !saw_cancel,
                          "crew_task_cancelled was true during a DRAIN "
                          "shutdown");
            }
            if (f == NULL)
                continue;
            state = crew_future_state(f);
            if (!SCN_CHECK(v, scn_resolved(state),
                           "an accepted task was unresolved after "
                           "crew_pool_shutdown returned"))
                continue;
            if (ran == 0 || saw_cancel)
                SCN_CHECK(v, state == CREW_CANCELLED,
                          "a task cancelled by shutdown is not CANCELLED");
            else
                SCN_CHECK(v, state == CREW_SUCCEEDED,
                          "a task that returned 0 did not succeed");
        }
    }
    SCN_CHECK(v,
              atomic_load(&round->child_freed) ==
                  atomic_load(&round->child_accepted),
              "a task's child's arg_free did not run exactly once");
    if (drain)
        SCN_CHECK(v,
                  atomic_load(&round->child_ran) ==
                      atomic_load(&round->child_accepted),
                  "a DRAIN shutdown skipped a task's child");
    else
        SCN_CHECK(v,
                  atomic_load(&round->child_ran) <=
                      atomic_load(&round->child_accepted),
                  "a task's child ran twice");
}

static void
sd_round(struct scn_verdict *v, crew_shutdown how, size_t r, size_t threshold)
{
    struct sd_round round = {.how = how, .verdict = v};
    struct sd_submitter subs[SD_SUBMITTERS];
    crew_pool_options options = {.on_thread_start = sd_started,
                                 .on_thread_stop = sd_stopped,
                                 .user = &round};
    crew_future *loiterer = NULL;
    struct sd_rec late = {.round = &round};
    crew_future *f = SD_SENTINEL;
    int started = 0;
    int err;

    round.threads = 2 + (unsigned)(r % 2);
    round.cap = threshold * 8;
    round.bounded = r % 4 >= 2;
    options.threads = round.threads;
    options.max_queued = round.bounded ? 32 : 0;
    scn_gate_init(&round.progress);
    err = crew_pool_create(&round.pool, &options);
    if (!SCN_CHECK(v, err == 0, "crew_pool_create failed")) {
        scn_gate_destroy(&round.progress);
        return;
    }
    if (how == CREW_CANCEL) {
        err = scn_submit(round.pool, sd_loiter, NULL, &loiterer);
        SCN_CHECK(v, err == 0, "crew_submit failed");
    }
    for (int j = 0; j < SD_SUBMITTERS; j++) {
        struct sd_submitter *s = &subs[j];

        s->round = &round;
        s->rng = scn_seed(800 + r * SD_SUBMITTERS + (uint64_t)j);
        s->recs = calloc(round.cap, sizeof(*s->recs));
        s->futures = calloc(round.cap, sizeof(*s->futures));
        s->fate = calloc(round.cap, sizeof(*s->fate));
        s->tried = 0;
        s->shuts_down_again = j == 0 && r % 2 == 1;
        if (!SCN_CHECK(v, s->recs && s->futures && s->fate, "out of memory"))
            round.cap = 0;
    }
    for (int j = 0; j < SD_SUBMITTERS; j++, started++)
        if (pthread_create(&subs[j].thread, NULL, sd_submitter_run, &subs[j]) !=
            0)
            break;
    if (started < SD_SUBMITTERS) {
        scn_fail(v, "pthread_create failed");
        scn_gate_add(&round.progress, threshold);
    }

    scn_gate_wait(&round.progress, round.cap == 0 ? 0 : threshold);
    err = crew_pool_shutdown(round.pool, how);
    SCN_CHECK(v, err == 0, "crew_pool_shutdown under load failed");
    SCN_CHECK(v, atomic_load(&round.started) == round.threads,
              "on_thread_start did not run once per worker");
    SCN_CHECK(v, atomic_load(&round.stopped) == round.threads,
              "crew_pool_shutdown returned before every worker stopped");
    err = scn_submit_ex(round.pool, sd_task, &late, sd_free, 0, &f);
    SCN_CHECK(v, err == ESHUTDOWN && f == NULL,
              "a submission after crew_pool_shutdown was not refused");
    SCN_CHECK(v, atomic_load(&late.ran) == 0 && atomic_load(&late.freed) == 0,
              "a refused submission ran or was freed");
    for (int j = 0; j < started; j++)
        pthread_join(subs[j].thread, NULL);

    sd_verify(&round, subs);
    if (loiterer != NULL) {
        SCN_CHECK(v, crew_future_state(loiterer) == CREW_CANCELLED,
                  "a task spinning until cancelled is not CANCELLED after a "
                  "CANCEL shutdown");
        crew_future_release(loiterer);
    }
    for (int j = 0; j < SD_SUBMITTERS; j++) {
        for (size_t i = 0; i < subs[j].tried; i++)
            crew_future_release(subs[j].futures[i]);
        free(subs[j].recs);
        free(subs[j].futures);
        free(subs[j].fate);
    }
    crew_pool_destroy(round.pool);
    scn_gate_destroy(&round.progress);
}

static const char *
sd_scenario(crew_shutdown how)
{
    size_t rounds = crew_scenario_scale(20, 10);
    size_t threshold = CREW_SCENARIO_TSAN ? 1000 : 2000;
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++)
        sd_round(&v, how, r, threshold);
    return scn_result(&v);
}

const char *
crew_scenario_shutdown_drain_under_load(void)
{
    return sd_scenario(CREW_DRAIN);
}

const char *
crew_scenario_shutdown_cancel_under_load(void)
{
    return sd_scenario(CREW_CANCEL);
}

/* ------------------------------------------------------------------ */
/* shutdown_destroy_from_worker                                        */
/* ------------------------------------------------------------------ */

#define DW_PLAIN 16

struct dw {
    struct scn_gate go;      /* opened once every task is queued */
    struct scn_gate stopped; /* on_thread_stop calls */
    atomic_size_t ran;
    atomic_size_t freed;
    atomic_size_t follow_ran;
    atomic_size_t follow_freed;
    atomic_int follow_err;
};

static int
dw_plain(crew_task *task, void *arg)
{
    struct dw *dw = arg;

    (void)task;
    atomic_fetch_add(&dw->ran, 1);
    return 0;
}

static void
dw_free(void *arg)
{
    struct dw *dw = arg;

    atomic_fetch_add(&dw->freed, 1);
}

static int
dw_follow(crew_task *task, void *arg)
{
    struct dw *dw = arg;

    (void)task;
    atomic_fetch_add(&dw->follow_ran, 1);
    return 0;
}

static void
dw_follow_free(void *arg)
{
    struct dw *dw = arg;

    atomic_fetch_add(&dw->follow_freed, 1);
}

static int
dw_destroyer(crew_task *task, void *arg)
{
    struct dw *dw = arg;
    crew_pool *pool = crew_task_pool(task);

    scn_gate_wait(&dw->go, 1);
    crew_pool_destroy(pool);
    /* The pool lives until its last worker exits, and a drain accepts
     * the submissions of running tasks. */
    atomic_store(&dw->follow_err,
                 scn_submit_ex(pool, dw_follow, dw, dw_follow_free, 0, NULL));
    return 0;
}

static void
dw_stopped(crew_pool *pool, unsigned worker, void *user)
{
    struct dw *dw = user;

    (void)pool;
    (void)worker;
    scn_gate_add(&dw->stopped, 1);
}

static void
dw_round(struct scn_verdict *v, unsigned threads)
{
    struct dw dw;
    crew_pool_options options = {
        .threads = threads, .on_thread_stop = dw_stopped, .user = &dw};
    crew_future *futures[DW_PLAIN + 1] = {NULL};
    crew_pool *pool;
    size_t submitted = 0;
    bool destroyer = false;
    int err;

    scn_gate_init(&dw.go);
    scn_gate_init(&dw.stopped);
    atomic_init(&dw.ran, 0);
    atomic_init(&dw.freed, 0);
    atomic_init(&dw.follow_ran, 0);
    atomic_init(&dw.follow_freed, 0);
    atomic_init(&dw.follow_err, -1);
    err = crew_pool_create(&pool, &options);
    if (!SCN_CHECK(v, err == 0, "crew_pool_create failed"))
        goto out;
    for (size_t i = 0; i <= DW_PLAIN; i++) {
        if (i == DW_PLAIN / 2) {
            err = scn_submit(pool, dw_destroyer, &dw, &futures[i]);
            destroyer = err == 0;
        } else {
            err = scn_submit_ex(pool, dw_plain, &dw, dw_free, 0, &futures[i]);
            submitted += err == 0;
        }
        SCN_CHECK(v, err == 0, "crew_submit failed");
    }
    scn_gate_add(&dw.go, 1);
    for (size_t i = 0; i <= DW_PLAIN; i++) {
        if (futures[i] == NULL)
            continue;
        err = crew_future_wait(futures[i]);
        SCN_CHECK(v,
                  err == 0 && crew_future_state(futures[i]) == CREW_SUCCEEDED,
                  "a task queued around a destroy from a worker did not "
                  "succeed");
    }
    if (!destroyer) {
        crew_pool_destroy(pool);
        goto out;
    }
    /* Every worker exits; the last frees the pool. */
    scn_gate_wait(&dw.stopped, threads);
    SCN_CHECK(v, atomic_load(&dw.ran) == submitted,
              "a destroy from a worker did not drain every queued task");
    SCN_CHECK(v, atomic_load(&dw.freed) == submitted,
              "arg_free did not run once per task around a destroy from "
              "a worker");
    SCN_CHECK(v, atomic_load(&dw.follow_err) == 0,
              "a task's submission after destroying its own pool was "
              "refused during the drain");
    SCN_CHECK(v,
              atomic_load(&dw.follow_ran) == 1 &&
                  atomic_load(&dw.follow_freed) == 1,
              "a task submitted during the drain did not run exactly once");
out:
    for (size_t i = 0; i <= DW_PLAIN; i++)
        crew_future_release(futures[i]);
    scn_gate_destroy(&dw.go);
    scn_gate_destroy(&dw.stopped);
}

const char *
crew_scenario_shutdown_destroy_from_worker(void)
{
    size_t rounds = crew_scenario_scale(50, 50);
    struct scn_verdict v = {NULL};

    for (size_t r = 0; r < rounds && !scn_failed(&v); r++)
        dw_round(&v, 1 + (unsigned)(r % 2));
    return scn_result(&v);
}
