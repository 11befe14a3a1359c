/*
 * Pools: options and their defaults, thread hooks, names and stacks, the
 * max_queued limit, shutdown and destroy, nested waits, signal masks.
 *
 * Workers are held on gates (a mutex and a condition variable the test
 * opens), never put to sleep. A task that must see a cancellation spins on
 * crew_task_cancelled() with a deadline, so a request that never comes
 * fails the test instead of hanging it. Nothing here asserts from another
 * thread: tasks and helper threads record what they saw, and the test
 * checks it once it has synchronised with them.
 */
#define _GNU_SOURCE /* pthread_getname_np(), pthread_getattr_np() */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a thread that must stay blocked is watched. */
#define BLOCKED_MS 200u

/* A thread that submits one counting task and records how it went. */
struct submitter {
    crew_pool *pool;
    struct scn_counts *counters;
    struct scn_gate started;
    struct scn_gate done;
    int err;
    crew_future *future;
};

static void *
submit_thread(void *arg)
{
    struct submitter *s = arg;

    scn_gate_add(&s->started, 1);
    s->err = crew_submit_ex(s->pool, scn_count_task, s->counters,
                            scn_count_free, 0, &s->future);
    scn_gate_add(&s->done, 1);
    return NULL;
}

static atomic_uint stopped_workers;

static void
count_stop(crew_pool *pool, unsigned worker, void *user)
{
    (void)pool;
    (void)worker;
    (void)user;
    atomic_fetch_add(&stopped_workers, 1);
}

/* A thread that shuts a pool down and records how it went. */
struct shutter {
    crew_pool *pool;
    crew_shutdown how;
    struct scn_gate done;
    int err;
    unsigned stopped_at_return;
};

static void *
shutdown_thread(void *arg)
{
    struct shutter *s = arg;

    s->err = crew_pool_shutdown(s->pool, s->how);
    s->stopped_at_return = atomic_load(&stopped_workers);
    scn_gate_add(&s->done, 1);
    return NULL;
}

/* Submits counting probes until the pool refuses one with ESHUTDOWN: proof
 * that a shutdown has begun. The probes accepted before are counted. */
static bool
wait_for_eshutdown(crew_pool *pool, struct scn_counts *probes,
                   unsigned *accepted)
{
    uint64_t deadline = scn_now_ns() + SCN_PATIENCE_MS * 1000000ull;

    for (;;) {
        int err = crew_submit_ex(pool, scn_count_task, probes, NULL, 0, NULL);

        if (err == ESHUTDOWN)
            return true;
        if (err != 0 || scn_now_ns() > deadline)
            return false;
        (*accepted)++;
        sched_yield();
    }
}

/* Proves the pool has n workers by holding n of them at once. */
static void
assert_runs_tasks_on(crew_pool *pool, unsigned n)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    crew_future **f = calloc(n, sizeof(*f));

    cr_assert_not_null(f);
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(scn_hold_worker(pool, &h, i + 1, &f[i]), 0,
                     "the holding task never ran");
    scn_hold_open(&h);
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(scn_wait_and_release(f[i]), 0);
    free(f);
}

TestSuite(pool, CREW_SUITE);

CREW_TEST(pool, null_options_give_one_worker_per_online_cpu)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    crew_pool *p = NULL;

    cr_assert_gt(cpus, 0);
    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_not_null(p);
    cr_assert_eq(crew_pool_threads(p), (unsigned)cpus);
    assert_runs_tasks_on(p, (unsigned)cpus);
    crew_pool_destroy(p);
}

CREW_TEST(pool, zeroed_options_give_one_worker_per_online_cpu)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    crew_pool_options o;
    crew_pool *p = NULL;

    memset(&o, 0, sizeof(o));
    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_not_null(p);
    cr_assert_eq(crew_pool_threads(p), (unsigned)cpus);
    assert_runs_tasks_on(p, (unsigned)cpus);
    crew_pool_destroy(p);
}

CREW_TEST(pool, created_with_explicit_threads_has_that_many_workers)
{
    crew_pool_options o = {.threads = 3};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(crew_pool_threads(p), 3);
    assert_runs_tasks_on(p, 3);
    crew_pool_destroy(p);
}

CREW_TEST(pool, threads_of_a_null_pool_is_zero)
{
    cr_assert_eq(crew_pool_threads(NULL), 0);
}

static atomic_uint started_workers;

static void
count_start(crew_pool *pool, unsigned worker, void *user)
{
    (void)pool;
    (void)worker;
    (void)user;
    atomic_fetch_add(&started_workers, 1);
}

CREW_TEST(pool, a_null_out_parameter_is_einval_and_starts_nothing)
{
    crew_pool_options o = {.threads = 2, .on_thread_start = count_start};

    cr_assert_eq(crew_pool_create(NULL, &o), EINVAL);
    cr_assert_eq(crew_pool_create(NULL, NULL), EINVAL);
    cr_assert_eq(atomic_load(&started_workers), 0);
}

CREW_TEST(pool, a_stack_below_the_minimum_is_einval_and_starts_nothing)
{
    static char sentinel;
    crew_pool_options o = {
        .threads = 2, .stack_size = 1, .on_thread_start = count_start};
    crew_pool *p = (crew_pool *)(void *)&sentinel;

    cr_assert_eq(crew_pool_create(&p, &o), EINVAL);
    cr_assert_null(p);
    cr_assert_eq(atomic_load(&started_workers), 0);
}

CREW_TEST(pool, a_reserved_option_not_zero_is_einval_and_starts_nothing)
{
    static char sentinel;
    crew_pool_options o = {.threads = 2, .on_thread_start = count_start};
    crew_pool *p = (crew_pool *)(void *)&sentinel;

    o.reserved[5] = &sentinel;
    cr_assert_eq(crew_pool_create(&p, &o), EINVAL);
    cr_assert_null(p);
    cr_assert_eq(atomic_load(&started_workers), 0);
}

#define HOOKED_MAX 8

static struct {
    atomic_uint starts[HOOKED_MAX];
    atomic_uint stops[HOOKED_MAX];
    atomic_uint out_of_range;
    uintptr_t start_pool[HOOKED_MAX];
    uintptr_t stop_pool[HOOKED_MAX];
    void *start_user[HOOKED_MAX];
    void *stop_user[HOOKED_MAX];
    pthread_t start_thread[HOOKED_MAX];
    bool stopped_on_start_thread[HOOKED_MAX];
    atomic_uint tasks_before_start;
} hooks;

static _Thread_local bool hook_started;

static void
record_start(crew_pool *pool, unsigned worker, void *user)
{
    if (worker >= HOOKED_MAX) {
        atomic_fetch_add(&hooks.out_of_range, 1);
        return;
    }
    hooks.start_pool[worker] = (uintptr_t)pool;
    hooks.start_user[worker] = user;
    hooks.start_thread[worker] = pthread_self();
    hook_started = true;
    atomic_fetch_add(&hooks.starts[worker], 1);
}

static void
record_stop(crew_pool *pool, unsigned worker, void *user)
{
    if (worker >= HOOKED_MAX) {
        atomic_fetch_add(&hooks.out_of_range, 1);
        return;
    }
    hooks.stop_pool[worker] = (uintptr_t)pool;
    hooks.stop_user[worker] = user;
    hooks.stopped_on_start_thread[worker] =
        pthread_equal(hooks.start_thread[worker], pthread_self());
    atomic_fetch_add(&hooks.stops[worker], 1);
}

static int
check_started_task(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    if (!hook_started)
        atomic_fetch_add(&hooks.tasks_before_start, 1);
    return 0;
}

CREW_TEST(pool, hooks_run_once_per_worker_with_its_index_user_and_pool)
{
    static int user;
    crew_pool_options o = {.threads = 4,
                           .on_thread_start = record_start,
                           .on_thread_stop = record_stop,
                           .user = &user};
    crew_future *f[32];
    crew_pool *p = NULL;
    uintptr_t pool_id;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    pool_id = (uintptr_t)p;
    for (size_t i = 0; i < 32; i++)
        cr_assert_eq(crew_submit(p, check_started_task, NULL, &f[i]), 0);
    for (size_t i = 0; i < 32; i++)
        cr_assert_eq(scn_wait_and_release(f[i]), 0);
    crew_pool_destroy(p);

    cr_assert_eq(atomic_load(&hooks.out_of_range), 0);
    cr_assert_eq(atomic_load(&hooks.tasks_before_start), 0,
                 "a task ran on a worker before its start hook");
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(atomic_load(&hooks.starts[i]), 1, "worker %u", i);
        cr_assert_eq(atomic_load(&hooks.stops[i]), 1, "worker %u", i);
        cr_assert_eq(hooks.start_pool[i], pool_id);
        cr_assert_eq(hooks.stop_pool[i], pool_id);
        cr_assert_eq(hooks.start_user[i], (void *)&user);
        cr_assert_eq(hooks.stop_user[i], (void *)&user);
        cr_assert(hooks.stopped_on_start_thread[i],
                  "worker %u stopped on another thread than it started", i);
    }
    for (unsigned i = 4; i < HOOKED_MAX; i++) {
        cr_assert_eq(atomic_load(&hooks.starts[i]), 0);
        cr_assert_eq(atomic_load(&hooks.stops[i]), 0);
    }
}

/* Two tasks held at once record the names of two distinct workers. */
static struct {
    struct scn_hold hold;
    pthread_mutex_t lock;
    char names[2][16];
    int errs[2];
    unsigned n;
} named = {SCN_HOLD_INIT, PTHREAD_MUTEX_INITIALIZER, {{0}}, {0}, 0};

static int
name_task(crew_task *task, void *arg)
{
    char name[16] = {0};
    int err = pthread_getname_np(pthread_self(), name, sizeof(name));

    (void)arg;
    pthread_mutex_lock(&named.lock);
    if (named.n < 2) {
        memcpy(named.names[named.n], name, sizeof(name));
        named.errs[named.n] = err;
    }
    named.n++;
    pthread_mutex_unlock(&named.lock);
    return scn_hold_task(task, &named.hold);
}

static void
read_worker_names(crew_pool *p)
{
    crew_future *f[2];

    for (unsigned i = 0; i < 2; i++) {
        cr_assert_eq(crew_submit(p, name_task, NULL, &f[i]), 0);
        cr_assert(scn_gate_reaches(&named.hold.entered, i + 1));
    }
    scn_hold_open(&named.hold);
    for (unsigned i = 0; i < 2; i++)
        cr_assert_eq(scn_wait_and_release(f[i]), 0);
    cr_assert_eq(named.n, 2);
    cr_assert_eq(named.errs[0], 0);
    cr_assert_eq(named.errs[1], 0);
}

static void
assert_names_are(const char *a, const char *b)
{
    bool straight =
        strcmp(named.names[0], a) == 0 && strcmp(named.names[1], b) == 0;
    bool crossed =
        strcmp(named.names[0], b) == 0 && strcmp(named.names[1], a) == 0;

    cr_assert(straight || crossed, "workers named \"%s\" and \"%s\"",
              named.names[0], named.names[1]);
}

CREW_TEST(pool, workers_are_named_crew_and_their_index_by_default)
{
    crew_pool_options o = {.threads = 2};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    read_worker_names(p);
    crew_pool_destroy(p);
    assert_names_are("crew-0", "crew-1");
}

CREW_TEST(pool, workers_are_named_with_a_copy_of_the_given_prefix)
{
    char prefix[] = "render";
    crew_pool_options o = {.threads = 2, .name = prefix};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    memcpy(prefix, "XXXXXX", sizeof(prefix));
    read_worker_names(p);
    crew_pool_destroy(p);
    assert_names_are("render-0", "render-1");
}

CREW_TEST(pool, a_long_name_prefix_is_cut_to_what_the_system_allows)
{
    crew_pool_options o = {.threads = 2,
                           .name = "a-rather-long-worker-name-prefix"};
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    read_worker_names(p);
    crew_pool_destroy(p);
    for (unsigned i = 0; i < 2; i++) {
        cr_assert_gt(strlen(named.names[i]), 0);
        cr_assert_leq(strlen(named.names[i]), 15);
        cr_assert_eq(strncmp(named.names[i], "a-rather", 8), 0,
                     "worker named \"%s\"", named.names[i]);
    }
}

static int
stack_size_task(crew_task *task, void *arg)
{
    size_t *size = arg;
    pthread_attr_t attr;
    int err;

    (void)task;
    err = pthread_getattr_np(pthread_self(), &attr);
    if (err != 0)
        return err;
    err = pthread_attr_getstacksize(&attr, size);
    pthread_attr_destroy(&attr);
    return err;
}

/* Needs more stack than a default thread has (8 MiB at most on Linux). */
static int
big_stack_task(crew_task *task, void *arg)
{
    volatile char big[12u << 20];

    (void)task;
    (void)arg;
    for (size_t i = 0; i < sizeof(big); i += 4096)
        big[i] = (char)(i >> 12);
    big[sizeof(big) - 1] = 1;
    return big[0] == 0 && big[sizeof(big) - 1] == 1 ? 0 : EIO;
}

CREW_TEST(pool, workers_get_the_stack_size_asked_for)
{
    crew_pool_options o = {.threads = 1, .stack_size = 16u << 20};
    crew_pool *p = NULL;
    crew_future *f = NULL;
    size_t size = 0;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(crew_submit(p, stack_size_task, &size, &f), 0);
    cr_assert_eq(scn_wait_and_release(f), 0);
    cr_assert_geq(size, (size_t)16u << 20, "stack of %zu bytes", size);
    cr_assert_eq(crew_submit(p, big_stack_task, NULL, &f), 0);
    cr_assert_eq(scn_wait_and_release(f), 0);
    crew_pool_destroy(p);
}

CREW_TEST(pool, a_blocking_submit_waits_for_room_in_a_full_queue)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT, late = SCN_COUNTS_INIT;
    static struct submitter s = {.started = SCN_GATE_INIT,
                                 .done = SCN_GATE_INIT};
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    crew_future *held, *a;
    crew_pool *p = NULL;
    pthread_t thread;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    cr_assert_eq(
        crew_submit_ex(p, scn_count_task, &queued, scn_count_free, 0, &a), 0);

    s.pool = p;
    s.counters = &late;
    cr_assert_eq(pthread_create(&thread, NULL, submit_thread, &s), 0);
    cr_assert(scn_gate_reaches(&s.started, 1));
    cr_assert_eq(scn_gate_wait_ms(&s.done, 1, BLOCKED_MS), 0,
                 "a submit returned while max_queued tasks waited");
    cr_assert_eq(atomic_load(&late.ran), 0);
    cr_assert_eq(atomic_load(&late.freed), 0);

    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&s.done, 1), "the submitter never got room");
    pthread_join(thread, NULL);
    cr_assert_eq(s.err, 0);
    cr_assert_not_null(s.future);
    cr_assert_eq(scn_wait_and_release(s.future), 0);
    s.future = NULL;
    cr_assert_eq(scn_wait_and_release(a), 0);
    cr_assert_eq(scn_wait_and_release(held), 0);
    cr_assert_eq(atomic_load(&queued.ran), 1);
    cr_assert_eq(atomic_load(&late.ran), 1);
    cr_assert_eq(atomic_load(&late.freed), 1);
    crew_pool_destroy(p);
    s.pool = NULL;
}

CREW_TEST(pool, a_full_queue_refuses_a_nonblocking_submit_with_eagain)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT,
                             refused = SCN_COUNTS_INIT, later = SCN_COUNTS_INIT;
    static char sentinel;
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    crew_future *held, *a, *f = (crew_future *)(void *)&sentinel;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &queued, NULL, 0, &a), 0);

    cr_assert_eq(crew_submit_ex(p, scn_count_task, &refused, scn_count_free,
                                CREW_NONBLOCKING, &f),
                 EAGAIN);
    cr_assert_null(f);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &refused, scn_count_free,
                                CREW_NONBLOCKING, NULL),
                 EAGAIN);

    scn_hold_open(&h);
    cr_assert_eq(scn_wait_and_release(held), 0);
    cr_assert_eq(scn_wait_and_release(a), 0);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &later, scn_count_free,
                                CREW_NONBLOCKING, &f),
                 0, "a nonblocking submit with room was refused");
    cr_assert_eq(scn_wait_and_release(f), 0);
    crew_pool_destroy(p);

    cr_assert_eq(atomic_load(&refused.ran), 0);
    cr_assert_eq(atomic_load(&refused.freed), 0);
    cr_assert_eq(atomic_load(&queued.ran), 1);
    cr_assert_eq(atomic_load(&later.ran), 1);
    cr_assert_eq(atomic_load(&later.freed), 1);
}

CREW_TEST(pool, cancelling_a_queued_task_frees_its_slot)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts cancelled = SCN_COUNTS_INIT,
                             refused = SCN_COUNTS_INIT, later = SCN_COUNTS_INIT;
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    crew_future *held, *a, *b = NULL;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    cr_assert_eq(
        crew_submit_ex(p, scn_count_task, &cancelled, scn_count_free, 0, &a),
        0);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &refused, scn_count_free,
                                CREW_NONBLOCKING, NULL),
                 EAGAIN);

    cr_assert_eq(crew_future_cancel(a), 0);
    cr_assert_eq(crew_future_state(a), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&cancelled.freed), 1);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &later, scn_count_free,
                                CREW_NONBLOCKING, &b),
                 0, "the cancelled task still held its slot");

    scn_hold_open(&h);
    cr_assert_eq(scn_wait_and_release(b), 0);
    cr_assert_eq(scn_wait_and_release(held), 0);
    crew_future_release(a);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&cancelled.ran), 0);
    cr_assert_eq(atomic_load(&later.ran), 1);
    cr_assert_eq(atomic_load(&refused.ran), 0);
    cr_assert_eq(atomic_load(&refused.freed), 0);
}

/* A task that, once let through, submits to its own full pool. */
static struct {
    struct scn_hold hold;
    struct scn_gate submitted;
    struct scn_counts children;
    int errs[3];
    crew_future *futures[3];
} flood = {SCN_HOLD_INIT, SCN_GATE_INIT, SCN_COUNTS_INIT, {0}, {NULL}};

static int
flood_task(crew_task *task, void *arg)
{
    (void)arg;
    scn_hold_task(task, &flood.hold);
    for (size_t i = 0; i < 3; i++)
        flood.errs[i] = crew_submit_ex(crew_task_pool(task), scn_count_task,
                                       &flood.children, scn_count_free, 0,
                                       &flood.futures[i]);
    scn_gate_add(&flood.submitted, 1);
    return 0;
}

CREW_TEST(pool, a_worker_submitting_to_its_full_pool_is_never_blocked)
{
    static struct scn_counts queued = SCN_COUNTS_INIT;
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    crew_future *w, *a;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(crew_submit(p, flood_task, NULL, &w), 0);
    cr_assert(scn_gate_reaches(&flood.hold.entered, 1));
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &queued, NULL, 0, &a), 0);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &queued, NULL,
                                CREW_NONBLOCKING, NULL),
                 EAGAIN, "the queue should be full");

    scn_hold_open(&flood.hold);
    cr_assert(scn_gate_reaches(&flood.submitted, 1),
              "a worker was blocked submitting to its own pool");
    cr_assert_eq(scn_wait_and_release(w), 0);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(flood.errs[i], 0);
        cr_assert_eq(scn_wait_and_release(flood.futures[i]), 0);
        flood.futures[i] = NULL;
    }
    cr_assert_eq(scn_wait_and_release(a), 0);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&flood.children.ran), 3);
    cr_assert_eq(atomic_load(&flood.children.freed), 3);
    cr_assert_eq(atomic_load(&queued.ran), 1);
}

/* A task that submits a child to its own pool. */
static struct {
    struct scn_counts parents;
    struct scn_counts children;
    atomic_uint child_errs;
} drain = {SCN_COUNTS_INIT, SCN_COUNTS_INIT, 0};

static int
parent_task(crew_task *task, void *arg)
{
    (void)arg;
    atomic_fetch_add(&drain.parents.ran, 1);
    if (crew_submit_ex(crew_task_pool(task), scn_count_task, &drain.children,
                       scn_count_free, 0, NULL) != 0)
        atomic_fetch_add(&drain.child_errs, 1);
    return 0;
}

CREW_TEST(pool, drain_runs_every_queued_task_and_the_tasks_they_submit)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct shutter s = {.how = CREW_DRAIN, .done = SCN_GATE_INIT};
    static struct scn_counts probes = SCN_COUNTS_INIT;
    crew_pool_options o = {.threads = 1};
    crew_future *held, *f[20];
    crew_pool *p = NULL;
    unsigned accepted = 0;
    pthread_t thread;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(crew_submit(p, parent_task, NULL, &f[i]), 0);

    s.pool = p;
    cr_assert_eq(pthread_create(&thread, NULL, shutdown_thread, &s), 0);
    cr_assert(wait_for_eshutdown(p, &probes, &accepted));
    cr_assert_eq(atomic_load(&drain.parents.ran), 0);
    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&s.done, 1), "the drain never finished");
    pthread_join(thread, NULL);
    cr_assert_eq(s.err, 0);

    cr_assert_eq(atomic_load(&drain.parents.ran), 20);
    cr_assert_eq(atomic_load(&drain.child_errs), 0,
                 "a task could not submit during the drain");
    cr_assert_eq(atomic_load(&drain.children.ran), 20);
    cr_assert_eq(atomic_load(&drain.children.freed), 20);
    cr_assert_eq(atomic_load(&probes.ran), accepted);
    for (size_t i = 0; i < 20; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_SUCCEEDED);
        crew_future_release(f[i]);
    }
    cr_assert_eq(crew_future_state(held), CREW_SUCCEEDED);
    crew_future_release(held);
    crew_pool_destroy(p);
    s.pool = NULL;
}

static struct {
    struct scn_gate entered;
    atomic_uint saw_cancel;
} spinner = {SCN_GATE_INIT, 0};

static int
spin_task(crew_task *task, void *arg)
{
    (void)arg;
    scn_gate_add(&spinner.entered, 1);
    if (!scn_spin_until_cancelled(task))
        return ETIMEDOUT;
    atomic_fetch_add(&spinner.saw_cancel, 1);
    return ECANCELED;
}

CREW_TEST(pool, cancel_resolves_queued_tasks_and_tells_running_ones)
{
    static struct scn_counts queued = SCN_COUNTS_INIT;
    crew_pool_options o = {.threads = 1};
    crew_future *running, *f[10];
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(crew_submit(p, spin_task, NULL, &running), 0);
    cr_assert(scn_gate_reaches(&spinner.entered, 1));
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(crew_submit_ex(p, scn_count_task, &queued, scn_count_free,
                                    0, &f[i]),
                     0);

    cr_assert_eq(crew_pool_shutdown(p, CREW_CANCEL), 0);
    cr_assert_eq(atomic_load(&spinner.saw_cancel), 1,
                 "the running task never saw the cancellation");
    cr_assert_eq(crew_future_state(running), CREW_CANCELLED);
    cr_assert_eq(atomic_load(&queued.ran), 0);
    cr_assert_eq(atomic_load(&queued.freed), 10);
    for (size_t i = 0; i < 10; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_CANCELLED);
        cr_assert_eq(crew_future_wait(f[i]), ECANCELED);
        cr_assert_eq(crew_error_code(crew_future_error(f[i])), ECANCELED);
        crew_future_release(f[i]);
    }
    crew_future_release(running);
    crew_pool_destroy(p);
}

CREW_TEST(pool, submit_after_shutdown_is_eshutdown_and_runs_nothing)
{
    static struct scn_counts refused = SCN_COUNTS_INIT;
    static char sentinel;
    crew_future *f = (crew_future *)(void *)&sentinel;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(p, CREW_DRAIN), 0);
    cr_assert_eq(
        crew_submit_ex(p, scn_count_task, &refused, scn_count_free, 0, &f),
        ESHUTDOWN);
    cr_assert_null(f);
    f = (crew_future *)(void *)&sentinel;
    cr_assert_eq(crew_submit(p, scn_count_task, &refused, &f), ESHUTDOWN);
    cr_assert_null(f);
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &refused, scn_count_free,
                                CREW_NONBLOCKING, NULL),
                 ESHUTDOWN);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&refused.ran), 0);
    cr_assert_eq(atomic_load(&refused.freed), 0);
}

CREW_TEST(pool, submitters_waiting_for_room_wake_with_eshutdown)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT, late = SCN_COUNTS_INIT;
    static struct submitter s = {.started = SCN_GATE_INIT,
                                 .done = SCN_GATE_INIT};
    static struct shutter d = {.how = CREW_DRAIN, .done = SCN_GATE_INIT};
    crew_pool_options o = {.threads = 1, .max_queued = 1};
    crew_future *held, *a;
    crew_pool *p = NULL;
    pthread_t submitter, shutter;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    cr_assert_eq(crew_submit_ex(p, scn_count_task, &queued, NULL, 0, &a), 0);
    s.pool = p;
    s.counters = &late;
    cr_assert_eq(pthread_create(&submitter, NULL, submit_thread, &s), 0);
    cr_assert(scn_gate_reaches(&s.started, 1));
    cr_assert_eq(scn_gate_wait_ms(&s.done, 1, BLOCKED_MS), 0,
                 "a submit returned while max_queued tasks waited");

    d.pool = p;
    cr_assert_eq(pthread_create(&shutter, NULL, shutdown_thread, &d), 0);
    cr_assert(scn_gate_reaches(&s.done, 1),
              "the shutdown did not wake the waiting submitter");
    pthread_join(submitter, NULL);
    cr_assert_eq(s.err, ESHUTDOWN);
    cr_assert_null(s.future);
    cr_assert_eq(atomic_load(&queued.ran), 0,
                 "the submitter woke for room, not for the shutdown");

    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&d.done, 1));
    pthread_join(shutter, NULL);
    cr_assert_eq(d.err, 0);
    cr_assert_eq(atomic_load(&queued.ran), 1, "the drain skipped a task");
    cr_assert_eq(atomic_load(&late.ran), 0);
    cr_assert_eq(atomic_load(&late.freed), 0);
    crew_future_release(a);
    crew_future_release(held);
    crew_pool_destroy(p);
    s.pool = NULL;
    d.pool = NULL;
}

CREW_TEST(pool, a_second_shutdown_returns_zero_and_does_nothing_more)
{
    static struct scn_counts c = SCN_COUNTS_INIT;
    crew_pool_options o = {.threads = 2};
    crew_future *f[5];
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(crew_submit(p, scn_count_task, &c, &f[i]), 0);
    cr_assert_eq(crew_pool_shutdown(p, CREW_DRAIN), 0);
    cr_assert_eq(atomic_load(&c.ran), 5);
    cr_assert_eq(crew_pool_shutdown(p, CREW_CANCEL), 0);
    cr_assert_eq(crew_pool_shutdown(p, CREW_DRAIN), 0);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_SUCCEEDED);
        crew_future_release(f[i]);
    }
    cr_assert_eq(crew_submit(p, scn_count_task, &c, NULL), ESHUTDOWN);
    crew_pool_destroy(p);
    cr_assert_eq(atomic_load(&c.ran), 5);
}

CREW_TEST(pool, concurrent_shutdowns_return_zero_once_workers_exit)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT, probes = SCN_COUNTS_INIT;
    static struct shutter first = {.how = CREW_DRAIN, .done = SCN_GATE_INIT};
    static struct shutter second = {.how = CREW_CANCEL, .done = SCN_GATE_INIT};
    crew_pool_options o = {.threads = 1, .on_thread_stop = count_stop};
    crew_future *held, *f[5];
    crew_pool *p = NULL;
    pthread_t t1, t2;
    unsigned accepted = 0;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(crew_submit(p, scn_count_task, &queued, &f[i]), 0);

    first.pool = p;
    cr_assert_eq(pthread_create(&t1, NULL, shutdown_thread, &first), 0);
    cr_assert(wait_for_eshutdown(p, &probes, &accepted));
    second.pool = p;
    cr_assert_eq(pthread_create(&t2, NULL, shutdown_thread, &second), 0);
    cr_assert_eq(scn_gate_wait_ms(&second.done, 1, BLOCKED_MS), 0,
                 "a second shutdown returned before the workers exited");

    scn_hold_open(&h);
    cr_assert(scn_gate_reaches(&first.done, 1));
    cr_assert(scn_gate_reaches(&second.done, 1));
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(first.err, 0);
    cr_assert_eq(second.err, 0);
    cr_assert_eq(first.stopped_at_return, 1);
    cr_assert_eq(second.stopped_at_return, 1,
                 "the second shutdown returned before the workers exited");
    cr_assert_eq(atomic_load(&h.saw_cancel), 0,
                 "the second call turned the drain into a cancel");
    cr_assert_eq(atomic_load(&queued.ran), 5);
    cr_assert_eq(atomic_load(&probes.ran), accepted);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_SUCCEEDED);
        crew_future_release(f[i]);
    }
    crew_future_release(held);
    crew_pool_destroy(p);
    first.pool = NULL;
    second.pool = NULL;
}

static int
shutdown_self_task(crew_task *task, void *arg)
{
    int *errs = arg;

    errs[0] = crew_pool_shutdown(crew_task_pool(task), CREW_DRAIN);
    errs[1] = crew_pool_shutdown(crew_task_pool(task), CREW_CANCEL);
    return 0;
}

CREW_TEST(pool, shutdown_from_a_worker_is_edeadlk_and_changes_nothing)
{
    static struct scn_counts c = SCN_COUNTS_INIT;
    int errs[2] = {-1, -1};
    crew_future *f;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_eq(crew_submit(p, shutdown_self_task, errs, &f), 0);
    cr_assert_eq(scn_wait_and_release(f), 0);
    cr_assert_eq(errs[0], EDEADLK);
    cr_assert_eq(errs[1], EDEADLK);
    cr_assert_eq(crew_submit(p, scn_count_task, &c, &f), 0,
                 "the pool stopped accepting tasks");
    cr_assert_eq(scn_wait_and_release(f), 0);
    cr_assert_eq(atomic_load(&c.ran), 1);
    crew_pool_destroy(p);
}

CREW_TEST(pool, shutdown_with_an_unknown_how_or_a_null_pool_is_einval)
{
    static struct scn_counts c = SCN_COUNTS_INIT;
    crew_future *f;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_eq(crew_pool_shutdown(p, (crew_shutdown)7), EINVAL);
    cr_assert_eq(crew_pool_shutdown(p, (crew_shutdown)-1), EINVAL);
    cr_assert_eq(crew_pool_shutdown(NULL, CREW_DRAIN), EINVAL);
    cr_assert_eq(crew_submit(p, scn_count_task, &c, &f), 0,
                 "the pool stopped accepting tasks");
    cr_assert_eq(scn_wait_and_release(f), 0);
    cr_assert_eq(atomic_load(&c.ran), 1);
    crew_pool_destroy(p);
}

CREW_TEST(pool, destroy_of_null_does_nothing)
{
    crew_pool *p = NULL;

    crew_pool_destroy(NULL);
    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    crew_pool_destroy(p);
}

static struct {
    struct scn_counts rest;
    struct scn_counts child;
    atomic_uint destroyed;
    int child_err;
} selfdestruct = {SCN_COUNTS_INIT, SCN_COUNTS_INIT, 0, -1};

static int
destroy_self_task(crew_task *task, void *arg)
{
    crew_pool *pool = crew_task_pool(task);

    (void)arg;
    crew_pool_destroy(pool);
    atomic_fetch_add(&selfdestruct.destroyed, 1);
    /* A task running on a draining pool may still submit to it. */
    selfdestruct.child_err = crew_submit_ex(
        pool, scn_count_task, &selfdestruct.child, scn_count_free, 0, NULL);
    return 0;
}

CREW_TEST(pool, destroy_from_a_worker_drains_and_the_pool_frees_itself)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    crew_pool_options o = {.threads = 2, .on_thread_stop = count_stop};
    crew_future *held[2], *d, *f[10];
    crew_pool *p = NULL;
    unsigned baseline = scn_thread_count();

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held[0]), 0,
                 "the holding task never ran");
    cr_assert_eq(scn_hold_worker(p, &h, 2, &held[1]), 0,
                 "the holding task never ran");
    cr_assert_eq(crew_submit(p, destroy_self_task, NULL, &d), 0);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(crew_submit_ex(p, scn_count_task, &selfdestruct.rest,
                                    scn_count_free, 0, &f[i]),
                     0);
    /* From here on the pool is the worker's to free: never touch it. */
    p = NULL;
    scn_hold_open(&h);

    cr_assert_eq(crew_future_wait(d), 0);
    cr_assert_eq(atomic_load(&selfdestruct.destroyed), 1);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(crew_future_wait(f[i]), 0, "queued task %zu", i);
    cr_assert(scn_gate_reaches(&selfdestruct.child.done, 1),
              "a task submitted during the drain never ran");
    cr_assert(scn_threads_back_to(baseline), "the workers never exited");

    cr_assert_eq(selfdestruct.child_err, 0);
    cr_assert_eq(atomic_load(&selfdestruct.child.freed), 1);
    cr_assert_eq(atomic_load(&selfdestruct.rest.ran), 10);
    cr_assert_eq(atomic_load(&selfdestruct.rest.freed), 10);
    cr_assert_eq(atomic_load(&stopped_workers), 2);
    /* The futures outlive the pool that freed itself. */
    for (size_t i = 0; i < 10; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_SUCCEEDED);
        crew_future_release(f[i]);
    }
    crew_future_release(d);
    cr_assert_eq(scn_wait_and_release(held[0]), 0);
    cr_assert_eq(scn_wait_and_release(held[1]), 0);
}

static atomic_uint values_freed;

static void
free_value(void *value)
{
    free(value);
    atomic_fetch_add(&values_freed, 1);
}

static int
value_task(crew_task *task, void *arg)
{
    char *value = malloc(8);

    (void)arg;
    if (value == NULL)
        return ENOMEM;
    memcpy(value, "kept", 5);
    crew_task_return(task, value, free_value);
    return 0;
}

static int
fail_task(crew_task *task, void *arg)
{
    (void)arg;
    return crew_task_fail(task, EIO, "lost %d", 7);
}

static void
flag_callback(crew_future *future, void *user)
{
    (void)future;
    atomic_fetch_add((atomic_uint *)user, 1);
}

CREW_TEST(pool, futures_outlive_their_pool)
{
    static struct scn_hold h = SCN_HOLD_INIT;
    static struct scn_counts queued = SCN_COUNTS_INIT;
    static atomic_uint called;
    crew_future *ok, *failed, *held, *f[5];
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_eq(crew_submit(p, value_task, NULL, &ok), 0);
    cr_assert_eq(crew_submit(p, fail_task, NULL, &failed), 0);
    cr_assert_eq(crew_future_wait(ok), 0);
    cr_assert_eq(crew_future_wait(failed), EIO);
    cr_assert_eq(scn_hold_worker(p, &h, 1, &held), 0,
                 "the holding task never ran");
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(crew_submit(p, scn_count_task, &queued, &f[i]), 0);
    scn_hold_open(&h);
    crew_pool_destroy(p);

    cr_assert_eq(atomic_load(&queued.ran), 5, "destroy did not drain");
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(crew_future_state(f[i]), CREW_SUCCEEDED);
        crew_future_release(f[i]);
    }
    cr_assert_eq(crew_future_state(held), CREW_SUCCEEDED);
    crew_future_release(held);

    cr_assert_eq(crew_future_state(ok), CREW_SUCCEEDED);
    cr_assert_str_eq((const char *)crew_future_result(ok), "kept");
    cr_assert_eq(crew_future_on_complete(ok, flag_callback, &called), 0);
    cr_assert_eq(atomic_load(&called), 1);
    cr_assert_eq(crew_future_state(failed), CREW_FAILED);
    cr_assert_eq(crew_error_code(crew_future_error(failed)), EIO);
    cr_assert_str_eq(crew_error_message(crew_future_error(failed)), "lost 7");
    cr_assert_eq(atomic_load(&values_freed), 0);
    crew_future_release(ok);
    crew_future_release(failed);
    cr_assert_eq(atomic_load(&values_freed), 1);
}

#define CHAIN_DEPTH 5000u

static atomic_uint chain_levels;

static int
chain_task(crew_task *task, void *arg)
{
    uintptr_t depth = (uintptr_t)arg;
    crew_future *next;
    int err;

    atomic_fetch_add(&chain_levels, 1);
    if (depth == 0)
        return 0;
    err = crew_submit(crew_task_pool(task), chain_task, (void *)(depth - 1),
                      &next);
    if (err != 0)
        return err;
    err = crew_future_wait(next);
    crew_future_release(next);
    return err;
}

CREW_TEST(pool, a_chain_of_5000_nested_waits_finishes_on_one_thread)
{
    crew_pool_options o = {.threads = 1, .stack_size = 64u << 20};
    crew_future *root;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(
        crew_submit(p, chain_task, (void *)(uintptr_t)CHAIN_DEPTH, &root), 0);
    cr_assert_eq(crew_future_wait(root), 0);
    cr_assert_eq(atomic_load(&chain_levels), CHAIN_DEPTH + 1);
    crew_future_release(root);
    crew_pool_destroy(p);
}

static int fib_task(crew_task *task, void *arg);

/* fib(n), submitting fib(n - 1) as a task and computing fib(n - 2) here. */
static int
fib(crew_task *task, uintptr_t n, uintptr_t *out)
{
    crew_future *child;
    uintptr_t a, b;
    int err, wait_err;

    if (n < 2) {
        *out = n;
        return 0;
    }
    err = crew_submit(crew_task_pool(task), fib_task, (void *)(n - 1), &child);
    if (err != 0)
        return err;
    err = fib(task, n - 2, &b);
    wait_err = crew_future_wait(child);
    a = (uintptr_t)crew_future_result(child);
    crew_future_release(child);
    if (err != 0)
        return err;
    if (wait_err != 0)
        return wait_err;
    *out = a + b;
    return 0;
}

static int
fib_task(crew_task *task, void *arg)
{
    uintptr_t result;
    int err = fib(task, (uintptr_t)arg, &result);

    if (err == 0)
        crew_task_return(task, (void *)result, NULL);
    return err;
}

static void
assert_fib_25_on(unsigned threads)
{
    crew_pool_options o = {.threads = threads, .stack_size = 16u << 20};
    crew_future *f;
    crew_pool *p = NULL;

    cr_assert_eq(crew_pool_create(&p, &o), 0);
    cr_assert_eq(crew_submit(p, fib_task, (void *)(uintptr_t)25, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0, "on %u threads", threads);
    cr_assert_eq((uintptr_t)crew_future_result(f), 75025, "on %u threads",
                 threads);
    crew_future_release(f);
    crew_pool_destroy(p);
}

CREW_TEST(pool, fib_of_25_with_nested_waits_is_right_on_one_thread)
{
    assert_fib_25_on(1);
}

CREW_TEST(pool, fib_of_25_with_nested_waits_is_right_on_two_threads)
{
    assert_fib_25_on(2);
}

static int
mask_task(crew_task *task, void *arg)
{
    (void)task;
    return pthread_sigmask(SIG_BLOCK, NULL, (sigset_t *)arg);
}

CREW_TEST(pool, workers_block_async_signals_the_creator_keeps_its_mask)
{
    static const int async[] = {SIGINT,  SIGTERM, SIGUSR1, SIGUSR2, SIGHUP,
                                SIGQUIT, SIGCHLD, SIGPIPE, SIGALRM};
    sigset_t saved, before, after, worker;
    crew_future *f;
    crew_pool *p = NULL;

    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &saved), 0);
    before = saved;
    for (size_t i = 0; i < sizeof(async) / sizeof(async[0]); i++)
        sigdelset(&before, async[i]);
    sigaddset(&before, SIGUSR2);
    cr_assert_eq(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);

    cr_assert_eq(crew_pool_create(&p, NULL), 0);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    sigemptyset(&worker);
    cr_assert_eq(crew_submit(p, mask_task, &worker, &f), 0);
    cr_assert_eq(scn_wait_and_release(f), 0);
    crew_pool_destroy(p);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);

    for (size_t i = 0; i < sizeof(async) / sizeof(async[0]); i++)
        cr_assert_eq(sigismember(&worker, async[i]), 1,
                     "signal %d reaches a worker", async[i]);
    for (int sig = 1; sig < SIGRTMAX; sig++)
        cr_assert_eq(sigismember(&after, sig), sigismember(&before, sig),
                     "creating a pool changed the mask of signal %d", sig);
}

/*
 * fork(): the child inherits the pool's memory but none of its workers.
 * The child's calls must fail at once with ESHUTDOWN instead of waiting
 * for workers it does not have, and destroy must free without joining;
 * the parent's pool goes on as before. The child reports through its exit
 * status: 0, or the number of the check that failed.
 */
struct at_fork {
    crew_pool *pool; /* one worker, held by `held` */
    struct scn_hold hold;
    struct scn_counts counts;
    crew_future *held;   /* running at the fork */
    crew_future *queued; /* queued behind it */
    crew_future *next;   /* a continuation of `held`, or NULL */
};

static void
at_fork_init(struct at_fork *a)
{
    crew_pool_options options = {.threads = 1};

    *a = (struct at_fork){.hold = SCN_HOLD_INIT, .counts = SCN_COUNTS_INIT};
    cr_assert_eq(crew_pool_create(&a->pool, &options), 0);
    cr_assert_eq(scn_hold_worker(a->pool, &a->hold, 1, &a->held), 0,
                 "the holding task never ran");
    cr_assert_eq(crew_submit(a->pool, scn_count_task, &a->counts, &a->queued),
                 0);
}

/* Fork; the child exits with check(a); the test fails unless it is 0. */
static void
in_child(int (*check)(struct at_fork *a), struct at_fork *a)
{
    int status;
    pid_t child = fork();

    cr_assert_neq(child, -1);
    if (child == 0)
        _exit(check(a));
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status), "the child did not exit normally");
    cr_assert_eq(WEXITSTATUS(status), 0, "the child's check %d failed",
                 WEXITSTATUS(status));
}

/* In the parent: let the held worker go; every task runs as ever. */
static void
at_fork_finish(struct at_fork *a)
{
    crew_future *after;

    scn_hold_open(&a->hold);
    cr_assert_eq(scn_wait_and_release(a->held), 0);
    cr_assert_eq(scn_wait_and_release(a->queued), 0);
    if (a->next != NULL)
        cr_assert_eq(scn_wait_and_release(a->next), 0);
    cr_assert_eq(crew_submit(a->pool, scn_count_task, &a->counts, &after), 0);
    cr_assert_eq(scn_wait_and_release(after), 0);
    cr_assert_eq(atomic_load(&a->counts.ran), 2);
    crew_pool_destroy(a->pool);
}

static int
check_orphan_pool(struct at_fork *a)
{
    struct scn_counts c = SCN_COUNTS_INIT;
    crew_future *f = NULL;

    if (crew_submit_ex(a->pool, scn_count_task, &c, scn_count_free, 0, &f) !=
        ESHUTDOWN)
        return 1;
    if (f != NULL || atomic_load(&c.freed) != 0)
        return 2;
    if (crew_pool_shutdown(a->pool, CREW_DRAIN) != ESHUTDOWN)
        return 3;
    if (crew_pool_shutdown(a->pool, CREW_CANCEL) != ESHUTDOWN)
        return 4;
    crew_pool_destroy(a->pool);
    return atomic_load(&c.ran) == 0 ? 0 : 5;
}

CREW_TEST(pool, after_fork_the_child_gets_eshutdown_and_the_parent_goes_on)
{
    struct at_fork a;

    at_fork_init(&a);
    in_child(check_orphan_pool, &a);
    at_fork_finish(&a);
}

static int
then_nothing(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)input;
    (void)arg;
    return 0;
}

/* Every wait on work only the parent's threads could finish returns
 * ESHUTDOWN at once. */
static int
check_stranded_waits(struct at_fork *a)
{
    crew_future *both[] = {a->held, a->queued};
    crew_error *error = NULL;
    size_t index = 99;

    if (crew_future_wait(a->held) != ESHUTDOWN)
        return 1;
    if (crew_future_wait_for(a->held, CREW_FOREVER) != ESHUTDOWN)
        return 2;
    if (crew_future_wait(a->queued) != ESHUTDOWN)
        return 3;
    if (crew_future_wait(a->next) != ESHUTDOWN)
        return 4;
    if (crew_wait_all(both, 2, &error) != ESHUTDOWN || error != NULL)
        return 5;
    if (crew_wait_any(both, 2, CREW_FOREVER, &index) != ESHUTDOWN ||
        index != 99)
        return 6;
    return 0;
}

CREW_TEST(pool, after_fork_waiting_on_an_inherited_task_returns_eshutdown)
{
    struct at_fork a;

    at_fork_init(&a);
    cr_assert_eq(crew_then(a.pool, a.held, then_nothing, NULL, NULL, &a.next),
                 0);
    in_child(check_stranded_waits, &a);
    at_fork_finish(&a);
}

CREW_TEST(pool, a_stack_just_below_the_system_minimum_is_einval)
{
    long min = sysconf(_SC_THREAD_STACK_MIN);
    crew_pool_options o = {.threads = 1};
    crew_pool *p = NULL;

    cr_assert_gt(min, 1);
    o.stack_size = (size_t)min - 1;
    cr_assert_eq(crew_pool_create(&p, &o), EINVAL);
    cr_assert_null(p);
    o.stack_size = (size_t)min;
    cr_assert_eq(crew_pool_create(&p, &o), 0);
    crew_pool_destroy(p);
}

/* Scanning every worker slot made a huge pool crawl: a pool of a
 * thousand small-stacked workers starts, runs work and stops. */
CREW_TEST(pool, a_pool_of_a_thousand_workers_runs_and_stops)
{
    enum { WORKERS = 1000, TASKS = 2000 };
    crew_pool_options o = {.threads = WORKERS, .stack_size = 64 * 1024};
    struct scn_counts c = SCN_COUNTS_INIT;
    crew_future **futures = calloc(TASKS, sizeof(*futures));
    crew_pool *p = NULL;

    cr_assert_not_null(futures);
    cr_assert_eq(crew_pool_create(&p, &o), 0);
    for (size_t i = 0; i < TASKS; i++)
        cr_assert_eq(crew_submit(p, scn_count_task, &c, &futures[i]), 0);
    cr_assert_eq(crew_wait_all(futures, TASKS, NULL), 0);
    cr_assert_eq(atomic_load(&c.ran), TASKS);
    scn_release_all(futures, TASKS);
    free(futures);
    crew_pool_destroy(p);
}
