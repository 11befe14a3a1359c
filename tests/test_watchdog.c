/*
 * crew_pool_watchdog(): a stuck run reported once, with its function,
 * name (this program is linked with -rdynamic) and worker; short runs
 * never; replacing waits for the previous function's call; EDEADLK from
 * the function; removing joins the monitor thread (counted in
 * /proc/self/task); destroying the pool from the function; bad input.
 */
#define _GNU_SOURCE
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(watchdog, CREW_SUITE);

#define AFTER_NS 20000000u /* 20 ms */

/* Exported (-rdynamic): the watchdog names it. */
int watch_stuck_task(crew_task *task, void *arg);

/* What the watchdog's function saw. */
struct seen {
    struct scn_gate calls; /* one a call */
    pthread_mutex_t lock;
    crew_stuck last[8];
    char names[8][64];
    crew_pool *pool;
    int deadlk; /* what crew_pool_watchdog() returned from inside */
};

static void
note(const crew_stuck *stuck, void *user)
{
    struct seen *s = user;
    size_t n = scn_gate_count(&s->calls);

    if (n < 8) {
        s->last[n] = *stuck;
        snprintf(s->names[n], sizeof(s->names[n]), "%s",
                 stuck->name != NULL ? stuck->name : "(null)");
    }
    scn_gate_add(&s->calls, 1);
}

/* Holds its worker until the gate opens. */
int
watch_stuck_task(crew_task *task, void *arg)
{
    (void)task;
    scn_gate_wait(arg, 1);
    return 0;
}

static int
short_task(crew_task *task, void *arg)
{
    struct timespec ts = {0, 20000}; /* 20 us */

    (void)task;
    (void)arg;
    nanosleep(&ts, NULL);
    return 0;
}

/* The threads of this process. */
static size_t
threads_now(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(dir);
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* Wait, at most SCN_PATIENCE_MS, for the process to have n threads. */
static bool
threads_become(size_t n)
{
    for (int i = 0; i < 1000; i++) {
        struct timespec ts = {0, 5000000};

        if (threads_now() == n)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

CREW_TEST(watchdog, bad_input_is_einval)
{
    crew_pool *pool = crew_test_pool(1);
    size_t threads = threads_now();

    cr_assert_eq(crew_pool_watchdog(NULL, AFTER_NS, note, NULL), EINVAL);
    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, NULL, NULL), EINVAL);
    cr_assert_eq(threads_now(), threads, "a monitor started");
    /* Removing none is no error. */
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    crew_pool_destroy(pool);
}

CREW_TEST(watchdog, reports_a_stuck_run_once_with_its_function_and_worker)
{
    crew_pool *pool = crew_test_pool(2);
    struct seen seen = {.calls = SCN_GATE_INIT};
    struct scn_gate first = SCN_GATE_INIT, second = SCN_GATE_INIT;
    crew_future *a, *b;

    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, note, &seen), 0);
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &first, &a), 0);
    cr_assert(scn_gate_reaches(&seen.calls, 1));
    cr_assert(seen.last[0].fn == (void (*)(void))watch_stuck_task);
    cr_assert_str_eq(seen.names[0], "watch_stuck_task");
    cr_assert_lt(seen.last[0].worker, 2);
    cr_assert_gt(seen.last[0].running_ns, AFTER_NS);
    /* A second stuck run, on the other worker: reported once too, after
     * the monitor has looked many times at the first, still stuck. */
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &second, &b), 0);
    cr_assert(scn_gate_reaches(&seen.calls, 2));
    cr_assert_neq(seen.last[1].worker, seen.last[0].worker);
    scn_gate_add(&second, 1);
    cr_assert_eq(crew_future_wait(b), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 2, "a run reported twice");
    /* The same worker's next stuck run is a new run. */
    crew_future_release(b);
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &second, &b), 0);
    cr_assert_eq(crew_future_wait(b), 0);
    scn_gate_add(&first, 1);
    cr_assert_eq(crew_future_wait(a), 0);
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 2);
    crew_future_release(a);
    crew_future_release(b);
    crew_pool_destroy(pool);
    scn_gate_destroy(&first);
    scn_gate_destroy(&second);
    scn_gate_destroy(&seen.calls);
}

/* Short runs are 20 us; the limit is far above what a preemption of
 * one (under valgrind, on a loaded machine) could stretch it to. */
#define SHORT_AFTER_NS 250000000u

CREW_TEST(watchdog, never_reports_short_runs)
{
    enum { N = 2000 };
    crew_pool *pool = crew_test_pool(2);
    struct seen seen = {.calls = SCN_GATE_INIT};
    struct scn_gate gate = SCN_GATE_INIT;
    crew_future **fs = calloc(N, sizeof(*fs));
    crew_future *stuck;

    cr_assert_eq(crew_pool_watchdog(pool, SHORT_AFTER_NS, note, &seen), 0);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(crew_submit(pool, short_task, NULL, &fs[i]), 0);
    cr_assert_eq(crew_wait_all(fs, N, NULL), 0);
    /* Then one stuck run: the first report must be its. */
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &gate, &stuck), 0);
    cr_assert(scn_gate_reaches(&seen.calls, 1));
    cr_assert(seen.last[0].fn == (void (*)(void))watch_stuck_task);
    scn_gate_add(&gate, 1);
    cr_assert_eq(crew_future_wait(stuck), 0);
    cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
    cr_assert_eq(scn_gate_count(&seen.calls), 1);
    for (size_t i = 0; i < N; i++)
        crew_future_release(fs[i]);
    free(fs);
    crew_future_release(stuck);
    crew_pool_destroy(pool);
    scn_gate_destroy(&gate);
    scn_gate_destroy(&seen.calls);
}

CREW_TEST(watchdog, removing_it_joins_its_thread)
{
    crew_pool *pool = crew_test_pool(1);
    size_t threads = threads_now();

    for (int round = 0; round < 3; round++) {
        cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, note, NULL), 0);
        cr_assert_eq(threads_now(), threads + 1);
        /* Replacing keeps the one thread. */
        cr_assert_eq(crew_pool_watchdog(pool, 2 * AFTER_NS, note, NULL), 0);
        cr_assert_eq(threads_now(), threads + 1);
        cr_assert_eq(crew_pool_watchdog(pool, 0, NULL, NULL), 0);
        /* Joined: gone by the time the call returned. */
        cr_assert_eq(threads_now(), threads);
    }
    crew_pool_destroy(pool);
}

/* A function that blocks until its gate opens, saying it has begun. */
struct blocking {
    struct scn_gate in_call, release;
};

static void
block_in_call(const crew_stuck *stuck, void *user)
{
    struct blocking *b = user;

    (void)stuck;
    scn_gate_add(&b->in_call, 1);
    scn_gate_wait(&b->release, 1);
}

struct replacer {
    crew_pool *pool;
    atomic_bool returned;
};

static void *
replace(void *arg)
{
    struct replacer *r = arg;

    cr_assert_eq(crew_pool_watchdog(r->pool, AFTER_NS, note, NULL), 0);
    atomic_store(&r->returned, true);
    return NULL;
}

CREW_TEST(watchdog, replacing_waits_for_the_call_in_progress)
{
    crew_pool *pool = crew_test_pool(1);
    struct blocking b = {SCN_GATE_INIT, SCN_GATE_INIT};
    struct scn_gate gate = SCN_GATE_INIT;
    struct replacer r = {.pool = pool};
    crew_future *stuck;
    pthread_t thread;

    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, block_in_call, &b), 0);
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &gate, &stuck), 0);
    cr_assert(scn_gate_reaches(&b.in_call, 1));
    cr_assert_eq(pthread_create(&thread, NULL, replace, &r), 0);
    /* The replacer waits as long as the call does: give it time to
     * return wrongly. */
    scn_gate_wait_ms(&gate, 1, 100);
    cr_assert(!atomic_load(&r.returned), "replaced during a call");
    scn_gate_add(&b.release, 1);
    pthread_join(thread, NULL);
    cr_assert(atomic_load(&r.returned));
    scn_gate_add(&gate, 1);
    cr_assert_eq(crew_future_wait(stuck), 0);
    crew_future_release(stuck);
    crew_pool_destroy(pool);
    scn_gate_destroy(&gate);
    scn_gate_destroy(&b.in_call);
    scn_gate_destroy(&b.release);
}

static void
call_back_in(const crew_stuck *stuck, void *user)
{
    struct seen *s = user;

    (void)stuck;
    s->deadlk = crew_pool_watchdog(s->pool, 0, NULL, NULL);
    scn_gate_add(&s->calls, 1);
}

CREW_TEST(watchdog, called_from_its_function_is_edeadlk)
{
    crew_pool *pool = crew_test_pool(1);
    struct seen seen = {.calls = SCN_GATE_INIT, .pool = pool};
    struct scn_gate gate = SCN_GATE_INIT;
    crew_future *stuck;

    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, call_back_in, &seen), 0);
    cr_assert_eq(crew_submit(pool, watch_stuck_task, &gate, &stuck), 0);
    cr_assert(scn_gate_reaches(&seen.calls, 1));
    cr_assert_eq(seen.deadlk, EDEADLK);
    scn_gate_add(&gate, 1);
    cr_assert_eq(crew_future_wait(stuck), 0);
    crew_future_release(stuck);
    crew_pool_destroy(pool); /* removes it */
    scn_gate_destroy(&gate);
    scn_gate_destroy(&seen.calls);
}

struct destroyer {
    crew_pool *pool;
    struct scn_gate in_call, gate, destroyed;
};

static void
destroy_pool(const crew_stuck *stuck, void *user)
{
    struct destroyer *d = user;

    (void)stuck;
    scn_gate_add(&d->in_call, 1);
    crew_pool_destroy(d->pool); /* drains: waits for the stuck task */
    scn_gate_add(&d->destroyed, 1);
}

CREW_TEST(watchdog, its_function_may_destroy_the_pool)
{
    size_t threads = threads_now();
    struct destroyer d = {crew_test_pool(1), SCN_GATE_INIT, SCN_GATE_INIT,
                          SCN_GATE_INIT};

    cr_assert_eq(crew_pool_watchdog(d.pool, AFTER_NS, destroy_pool, &d), 0);
    cr_assert_eq(crew_submit(d.pool, watch_stuck_task, &d.gate, NULL), 0);
    cr_assert(scn_gate_reaches(&d.in_call, 1));
    scn_gate_add(&d.gate, 1);
    cr_assert(scn_gate_reaches(&d.destroyed, 1));
    /* The monitor leaves once the function returns, and frees the pool. */
    cr_assert(threads_become(threads), "threads left behind");
    scn_gate_destroy(&d.in_call);
    scn_gate_destroy(&d.gate);
    scn_gate_destroy(&d.destroyed);
}

CREW_TEST(watchdog, destroying_the_pool_removes_it)
{
    size_t threads = threads_now();
    crew_pool *pool = crew_test_pool(2);

    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, note, NULL), 0);
    crew_pool_destroy(pool);
    cr_assert_eq(threads_now(), threads);
}

CREW_TEST(watchdog, a_forked_childs_pool_refuses_it)
{
    crew_pool *pool = crew_test_pool(1);
    pid_t child;
    int status;

    cr_assert_eq(crew_pool_watchdog(pool, AFTER_NS, note, NULL), 0);
    child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        bool ok = crew_pool_watchdog(pool, AFTER_NS, note, NULL) == ESHUTDOWN &&
                  crew_pool_watchdog(pool, 0, NULL, NULL) == ESHUTDOWN;
        crew_pool_destroy(pool); /* frees without joining */
        _exit(ok ? 0 : 1);
    }
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    crew_pool_destroy(pool);
}
