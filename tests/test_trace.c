/*
 * crew_trace_start(), crew_trace_stop() and crew_pool_latency_get(): the
 * JSON parsed by a real parser (cJSON), one event per task with its
 * thread, name, order and outcome; names from dladdr() (this program is
 * linked with -rdynamic, so its functions with external linkage are
 * exported); the ring's newest records; what is left out; errors; and
 * percentiles against the exact ones of a known set of sleeps.
 */
#define _GNU_SOURCE /* pthread_getname_np() */
#include "common.h"
#include "testkit.h"

#include <cjson/cJSON.h>
#include <crew.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(trace, CREW_SUITE);
TestSuite(latency, CREW_SUITE);

/* Exported (external linkage, -rdynamic): named in the trace. */
int trace_coded_task(crew_task *task, void *arg);
int trace_range(crew_task *task, size_t lo, size_t hi, void *arg);
int trace_then(crew_task *task, crew_future *input, void *arg);
int trace_each(crew_task *task, size_t index, void *arg);
int trace_member(crew_task *task, void *arg);
int trace_reduce(crew_task *task, size_t lo, size_t hi, void *partial,
                 void *arg);

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What task i did: the thread it ran on. */
struct coded {
    size_t i;
    char thread[16];
};

/* Fails with code 1000 + i, or succeeds when i is a multiple of 3: the
 * code tells which task an event is. */
int
trace_coded_task(crew_task *task, void *arg)
{
    struct coded *c = arg;

    pthread_getname_np(pthread_self(), c->thread, sizeof(c->thread));
    if (c->i % 3 == 0)
        return 0;
    return crew_task_fail(task, 1000 + (int)c->i, "task %zu", c->i);
}

static int
unexported_task(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

/* Stop the pool's trace into memory and parse it; the test fails unless
 * the stop returns 0 and the text is JSON. */
static cJSON *
stop_and_parse(crew_pool *pool)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream(&text, &size);
    cJSON *json;

    cr_assert_not_null(stream);
    cr_assert_eq(crew_trace_stop(pool, stream), 0);
    cr_assert_eq(fclose(stream), 0);
    json = cJSON_Parse(text);
    cr_assert_not_null(json, "not JSON: %.200s", text);
    free(text);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItem(json, "traceEvents")));
    return json;
}

static const char *
string_of(const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItem(object, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static double
number_of(const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItem(object, key);

    cr_assert(cJSON_IsNumber(item), "no number \"%s\"", key);
    return item->valuedouble;
}

static bool
has(const cJSON *object, const char *key)
{
    return cJSON_GetObjectItem(object, key) != NULL;
}

/* The complete events ("ph":"X"), in the file's order, into `out`;
 * returns how many. */
static size_t
tasks_of(const cJSON *json, const cJSON **out, size_t max)
{
    const cJSON *event;
    size_t n = 0;

    cJSON_ArrayForEach(event, cJSON_GetObjectItem(json, "traceEvents"))
    {
        const char *ph = string_of(event, "ph");

        cr_assert_not_null(ph);
        if (strcmp(ph, "X") == 0) {
            cr_assert_lt(n, max, "more events than tasks");
            out[n++] = event;
        }
    }
    return n;
}

/* The name of track `tid`, from its thread_name event. */
static const char *
track_name(const cJSON *json, int tid)
{
    const cJSON *event;

    cJSON_ArrayForEach(event, cJSON_GetObjectItem(json, "traceEvents"))
    {
        const char *name = string_of(event, "name");

        if (name != NULL && strcmp(name, "thread_name") == 0 &&
            (int)number_of(event, "tid") == tid)
            return string_of(cJSON_GetObjectItem(event, "args"), "name");
    }
    return NULL;
}

static int
code_of(const cJSON *event)
{
    return (int)number_of(cJSON_GetObjectItem(event, "args"), "code");
}

static const char *
outcome_of(const cJSON *event)
{
    return string_of(cJSON_GetObjectItem(event, "args"), "outcome");
}

/* Run n coded tasks on pool while it records, and wait for them all. */
static void
run_coded(crew_pool *pool, struct coded *coded, size_t n)
{
    crew_future **fs = calloc(n, sizeof(*fs));

    cr_assert_not_null(fs);
    for (size_t i = 0; i < n; i++) {
        coded[i].i = i;
        cr_assert_eq(crew_submit(pool, trace_coded_task, &coded[i], &fs[i]), 0);
    }
    crew_wait_all(fs, n, NULL);
    for (size_t i = 0; i < n; i++)
        crew_future_release(fs[i]);
    free(fs);
}

CREW_TEST(trace, bad_input_is_einval_and_starts_nothing)
{
    crew_pool *pool = crew_test_pool(1);

    cr_assert_eq(crew_trace_start(NULL, 10), EINVAL);
    cr_assert_eq(crew_trace_start(pool, 0), EINVAL);
    cr_assert_eq(crew_trace_stop(NULL, NULL), EINVAL);
    cr_assert_eq(crew_trace_stop(pool, NULL), EALREADY);
    cr_assert_eq(crew_pool_latency_get(NULL, &(crew_latency){0}), EINVAL);
    cr_assert_eq(crew_pool_latency_get(pool, NULL), EINVAL);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, starting_twice_or_stopping_twice_is_ealready)
{
    crew_pool *pool = crew_test_pool(1);

    cr_assert_eq(crew_trace_start(pool, 10), 0);
    cr_assert_eq(crew_trace_start(pool, 10), EALREADY);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    cr_assert_eq(crew_trace_stop(pool, NULL), EALREADY);
    /* And again: a session after a stop. */
    cr_assert_eq(crew_trace_start(pool, 10), 0);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, one_event_per_task_in_order_with_its_outcome)
{
    enum { N = 60 };
    crew_pool *pool = crew_test_pool(1);
    struct coded coded[N];
    const cJSON *events[N];
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, 1000), 0);
    run_coded(pool, coded, N);
    json = stop_and_parse(pool);
    /* One worker takes them from the injection queue in order. */
    cr_assert_eq(tasks_of(json, events, N), N);
    for (size_t i = 0; i < N; i++) {
        const cJSON *args = cJSON_GetObjectItem(events[i], "args");

        cr_assert_str_eq(string_of(events[i], "name"), "trace_coded_task");
        cr_assert_str_eq(string_of(events[i], "cat"), "task");
        cr_assert_eq(code_of(events[i]), i % 3 == 0 ? 0 : 1000 + (int)i);
        cr_assert_str_eq(outcome_of(events[i]),
                         i % 3 == 0 ? "succeeded" : "failed");
        cr_assert_eq(number_of(args, "worker"), 0);
        cr_assert_str_eq(track_name(json, (int)number_of(events[i], "tid")),
                         "crew-0");
        cr_assert_geq(number_of(args, "wait_us"), 0);
        cr_assert_geq(number_of(events[i], "dur"), 0);
        /* One after the other; ts and dur are each rounded to 1 ns. */
        if (i > 0)
            cr_assert_geq(number_of(events[i], "ts") + 0.002,
                          number_of(events[i - 1], "ts") +
                              number_of(events[i - 1], "dur"));
    }
    cJSON_Delete(json);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, each_event_is_on_the_track_of_the_thread_that_ran_it)
{
    enum { N = 400 };
    crew_pool *pool = crew_test_pool(2);
    struct coded *coded = calloc(N, sizeof(*coded));
    const cJSON *events[N];
    bool seen[N] = {false};
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, N), 0);
    run_coded(pool, coded, N);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, N), N);
    for (size_t e = 0; e < N; e++) {
        int code = code_of(events[e]);
        size_t i;

        if (code == 0)
            continue; /* a success does not say which task it was */
        i = (size_t)(code - 1000);
        cr_assert_lt(i, N);
        cr_assert(!seen[i], "task %zu twice", i);
        seen[i] = true;
        cr_assert_str_eq(track_name(json, (int)number_of(events[e], "tid")),
                         coded[i].thread, "task %zu", i);
    }
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(seen[i], i % 3 != 0, "task %zu", i);
    cJSON_Delete(json);
    free(coded);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, a_ring_keeps_the_newest_records_of_its_thread)
{
    enum { N = 100, KEPT = 10 };
    crew_pool *pool = crew_test_pool(1);
    struct coded coded[N];
    const cJSON *events[N];
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, KEPT), 0);
    run_coded(pool, coded, N);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, N), KEPT);
    for (size_t k = 0; k < KEPT; k++) {
        size_t i = N - KEPT + k;

        cr_assert_eq(code_of(events[k]), i % 3 == 0 ? 0 : 1000 + (int)i);
    }
    cJSON_Delete(json);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, a_function_not_exported_is_named_by_its_address)
{
    crew_pool *pool = crew_test_pool(1);
    crew_future *f;
    const cJSON *events[1];
    char address[32];
    cJSON *json;
    crew_fn fn = unexported_task;

    cr_assert_eq(crew_trace_start(pool, 10), 0);
    cr_assert_eq(crew_submit(pool, fn, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, 1), 1);
    void *pointer;

    memcpy(&pointer, &fn, sizeof(pointer)); /* as POSIX allows */
    snprintf(address, sizeof(address), "0x%" PRIxPTR, (uintptr_t)pointer);
    cr_assert_str_eq(string_of(events[0], "name"), address);
    cr_assert_str_eq(string_of(cJSON_GetObjectItem(events[0], "args"), "fn"),
                     address);
    cJSON_Delete(json);
    crew_pool_destroy(pool);
}

static int
asked_to_stop(crew_task *task, void *arg)
{
    struct scn_gate *entered = arg;

    scn_gate_add(entered, 1);
    while (!crew_task_cancelled(task))
        sched_yield();
    return ECANCELED;
}

CREW_TEST(trace, leaves_out_tasks_cancelled_before_running_or_still_running)
{
    crew_pool *pool = crew_test_pool(1);
    struct scn_hold hold = SCN_HOLD_INIT;
    struct scn_gate entered = SCN_GATE_INIT;
    crew_future *held, *queued, *stopped;
    const cJSON *events[4];
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, 10), 0);
    /* A task that stops when asked: recorded, cancelled. */
    cr_assert_eq(crew_submit(pool, asked_to_stop, &entered, &stopped), 0);
    cr_assert(scn_gate_reaches(&entered, 1));
    cr_assert_eq(crew_future_cancel(stopped), 0);
    cr_assert_eq(crew_future_wait(stopped), ECANCELED);
    /* One running at the stop, one cancelled in its queue. */
    cr_assert_eq(scn_hold_worker(pool, &hold, 1, &held), 0);
    cr_assert_eq(
        crew_submit(pool, trace_coded_task, &(struct coded){.i = 1}, &queued),
        0);
    cr_assert_eq(crew_future_cancel(queued), 0);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, 4), 1);
    cr_assert_str_eq(string_of(events[0], "cat"), "task");
    cr_assert_str_eq(outcome_of(events[0]), "cancelled");
    cr_assert_eq(code_of(events[0]), ECANCELED);
    scn_hold_open(&hold);
    cr_assert_eq(crew_future_wait(held), 0);
    crew_future_release(held);
    crew_future_release(queued);
    crew_future_release(stopped);
    cJSON_Delete(json);
    crew_pool_destroy(pool);
    scn_hold_destroy(&hold);
    scn_gate_destroy(&entered);
}

int
trace_range(crew_task *task, size_t lo, size_t hi, void *arg)
{
    (void)task;
    (void)arg;
    (void)lo;
    (void)hi;
    return 0;
}

CREW_TEST(trace, chunks_are_recorded_on_the_thread_that_ran_them)
{
    enum { CHUNKS = 50 };
    crew_pool *pool = crew_test_pool(2);
    const cJSON *events[CHUNKS];
    size_t outside = 0;
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, 100), 0);
    cr_assert_eq(crew_parallel_for(pool, 0, CHUNKS, 1, trace_range, NULL, NULL),
                 0);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, CHUNKS), CHUNKS);
    for (size_t e = 0; e < CHUNKS; e++) {
        const cJSON *args = cJSON_GetObjectItem(events[e], "args");
        const char *track = track_name(json, (int)number_of(events[e], "tid"));

        cr_assert_str_eq(string_of(events[e], "name"), "trace_range");
        cr_assert_str_eq(string_of(events[e], "cat"), "chunk");
        cr_assert_not_null(track);
        /* The caller runs chunks too, on a track of its own. */
        if (strstr(track, "(outside the pool)") != NULL) {
            outside++;
            cr_assert(!has(args, "worker"));
        } else {
            cr_assert(strcmp(track, "crew-0") == 0 ||
                      strcmp(track, "crew-1") == 0);
        }
        cr_assert_geq(number_of(args, "wait_us"), 0);
    }
    cJSON_Delete(json);
    crew_pool_destroy(pool);
    cr_assert_leq(outside, CHUNKS);
}

/* A spawned call that only another worker can run: its spawner waits
 * for it to have run before it syncs. */
static int
stolen_call(crew_task *task, void *arg)
{
    (void)task;
    atomic_store((atomic_bool *)arg, true);
    return 0;
}

static int
spawner(crew_task *task, void *arg)
{
    atomic_bool ran = false;
    crew_frame frame;

    (void)arg;
    cr_assert_eq(crew_spawn(task, &frame, stolen_call, &ran), 0);
    while (!atomic_load(&ran))
        sched_yield();
    return crew_sync(task, &frame);
}

int
trace_then(crew_task *task, crew_future *input, void *arg)
{
    (void)task;
    (void)input;
    (void)arg;
    return 0;
}

int
trace_each(crew_task *task, size_t index, void *arg)
{
    (void)task;
    (void)index;
    (void)arg;
    return 0;
}

int
trace_member(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

int
trace_reduce(crew_task *task, size_t lo, size_t hi, void *partial, void *arg)
{
    (void)task;
    (void)arg;
    *(size_t *)partial += hi - lo;
    return 0;
}

static void
add_sizes(void *into, const void *from, void *arg)
{
    (void)arg;
    *(size_t *)into += *(const size_t *)from;
}

/* How many complete events are named `name`. */
static size_t
count_named(const cJSON *json, const char *name)
{
    const cJSON *events[200];
    size_t n = tasks_of(json, events, 200), k = 0;

    for (size_t e = 0; e < n; e++)
        k += strcmp(string_of(events[e], "name"), name) == 0;
    return k;
}

CREW_TEST(trace, every_kind_of_run_is_named_after_the_users_function)
{
    crew_pool *pool = crew_test_pool(1);
    struct coded coded = {.i = 0};
    crew_future *task, *then, *each[3];
    crew_group *group;
    size_t sum = 0;
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, 100), 0);
    cr_assert_eq(crew_submit(pool, trace_coded_task, &coded, &task), 0);
    cr_assert_eq(crew_then(pool, task, trace_then, NULL, NULL, &then), 0);
    cr_assert_eq(crew_submit_each(pool, 3, trace_each, NULL, NULL, 0, each), 0);
    cr_assert_eq(crew_group_create(&group, pool, NULL), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(
            crew_group_submit(group, trace_member, NULL, NULL, 0, NULL, NULL),
            0);
    cr_assert_eq(crew_group_wait(group, NULL), 0);
    crew_group_destroy(group);
    cr_assert_eq(crew_parallel_reduce(pool, 0, 8, 2, trace_reduce, add_sizes,
                                      NULL, &sum, sizeof(sum), NULL),
                 0);
    cr_assert_eq(sum, 8);
    cr_assert_eq(crew_future_wait(then), 0);
    cr_assert_eq(crew_wait_all(each, 3, NULL), 0);
    json = stop_and_parse(pool);
    cr_assert_eq(count_named(json, "trace_coded_task"), 1);
    cr_assert_eq(count_named(json, "trace_then"), 1);
    cr_assert_eq(count_named(json, "trace_each"), 3);
    cr_assert_eq(count_named(json, "trace_member"), 2);
    cr_assert_eq(count_named(json, "trace_reduce"), 4);
    cJSON_Delete(json);
    crew_future_release(task);
    crew_future_release(then);
    crew_future_release_all(each, 3);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, a_stolen_spawned_call_is_recorded_where_it_ran)
{
    crew_pool *pool = crew_test_pool(2);
    const cJSON *events[4];
    crew_future *f;
    cJSON *json;
    int spawned = -1, task = -1;

    cr_assert_eq(crew_trace_start(pool, 10), 0);
    cr_assert_eq(crew_submit(pool, spawner, NULL, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, 4), 2);
    for (int e = 0; e < 2; e++) {
        if (strcmp(string_of(events[e], "cat"), "spawned") == 0)
            spawned = (int)number_of(events[e], "tid");
        else
            task = (int)number_of(events[e], "tid");
    }
    cr_assert_neq(spawned, -1);
    cr_assert_neq(task, -1);
    cr_assert_neq(spawned, task, "the call ran on the spawner's thread");
    cJSON_Delete(json);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, a_failed_write_returns_its_errno_and_stops_all_the_same)
{
    crew_pool *pool = crew_test_pool(1);
    struct coded coded[20];
    FILE *full = fopen("/dev/full", "w");

    cr_assert_not_null(full);
    cr_assert_eq(crew_trace_start(pool, 100), 0);
    run_coded(pool, coded, 20);
    cr_assert_eq(crew_trace_stop(pool, full), ENOSPC);
    cr_assert_eq(crew_trace_stop(pool, NULL), EALREADY);
    fclose(full);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, a_null_file_discards_the_records)
{
    crew_pool *pool = crew_test_pool(1);
    struct coded coded[20];
    const cJSON *events[20];
    cJSON *json;

    cr_assert_eq(crew_trace_start(pool, 100), 0);
    run_coded(pool, coded, 20);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    /* A new session holds nothing of the last. */
    cr_assert_eq(crew_trace_start(pool, 100), 0);
    json = stop_and_parse(pool);
    cr_assert_eq(tasks_of(json, events, 20), 0);
    cJSON_Delete(json);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, records_nothing_once_stopped)
{
    crew_pool *pool = crew_test_pool(1);
    struct coded coded[20];
    crew_latency latency;

    cr_assert_eq(crew_trace_start(pool, 100), 0);
    run_coded(pool, coded, 10);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    run_coded(pool, coded, 20);
    cr_assert_eq(crew_pool_latency_get(pool, &latency), 0);
    cr_assert_eq(latency.tasks, 10);
    crew_pool_destroy(pool);
}

CREW_TEST(trace, destroying_a_pool_that_records_frees_the_records)
{
    crew_pool *pool = crew_test_pool(2);
    struct coded coded[50];

    cr_assert_eq(crew_trace_start(pool, 100), 0);
    run_coded(pool, coded, 50);
    cr_assert_eq(crew_parallel_for(pool, 0, 10, 1, trace_range, NULL, NULL), 0);
    crew_pool_destroy(pool); /* the leak check says the rest */
}

CREW_TEST(trace, a_forked_childs_pool_refuses_to_start)
{
    crew_pool *pool = crew_test_pool(1);
    pid_t child;
    int status;

    cr_assert_eq(crew_trace_start(pool, 10), 0);
    child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        /* The session the parent started is seen, and can be stopped;
         * nothing new starts. */
        bool ok = crew_trace_start(pool, 10) == ESHUTDOWN &&
                  crew_trace_stop(pool, NULL) == 0 &&
                  crew_trace_start(pool, 10) == ESHUTDOWN;
        _exit(ok ? 0 : 1);
    }
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    crew_pool_destroy(pool);
}

/*
 * Latency.
 */
CREW_TEST(latency, a_pool_never_traced_reports_zeros)
{
    crew_pool *pool = crew_test_pool(1);
    crew_latency latency;
    struct coded coded[10];

    run_coded(pool, coded, 10);
    memset(&latency, 0xa5, sizeof(latency));
    cr_assert_eq(crew_pool_latency_get(pool, &latency), 0);
    cr_assert_eq(latency.tasks, 0);
    cr_assert_eq(latency.run_max_ns, 0);
    cr_assert_eq(latency.wait_p99_ns, 0);
    crew_pool_destroy(pool);
}

/* A sleep of a planned length, the task measuring what it got. */
struct sleeper {
    uint64_t sleep_ns;
    uint64_t submitted, started, ended; /* on CLOCK_MONOTONIC */
};

static int
sleep_task(crew_task *task, void *arg)
{
    struct sleeper *s = arg;
    struct timespec ts = {0, (long)s->sleep_ns};

    (void)task;
    s->started = now_ns();
    nanosleep(&ts, NULL);
    s->ended = now_ns();
    return 0;
}

static int
by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The nearest-rank p-th percentile of n values, sorted in place. */
static uint64_t
exact_percentile(uint64_t *values, size_t n, unsigned p)
{
    size_t rank = (n * p + 99) / 100;

    qsort(values, n, sizeof(values[0]), by_value);
    return values[rank - 1];
}

static void
assert_near(uint64_t got, uint64_t exact, const char *what)
{
    double error = ((double)got - (double)exact) / (double)exact;

    cr_assert(error < 0.05 && error > -0.05,
              "%s: %" PRIu64 " ns against %" PRIu64 " ns exactly (%+.1f%%)",
              what, got, exact, 100 * error);
}

/* The pool's own timing of each task, from the trace: run (dur) and
 * wait (wait_us), in ns, in event order. */
static void
timings_of(const cJSON *json, uint64_t *runs, uint64_t *waits, size_t n)
{
    const cJSON *events[100];

    cr_assert_leq(n, 100);
    cr_assert_eq(tasks_of(json, events, n), n);
    for (size_t e = 0; e < n; e++) {
        const cJSON *args = cJSON_GetObjectItem(events[e], "args");

        runs[e] = (uint64_t)(number_of(events[e], "dur") * 1000 + 0.5);
        waits[e] = (uint64_t)(number_of(args, "wait_us") * 1000 + 0.5);
    }
}

/*
 * Sleeps of 200 us to 2.2 ms, a skewed spread, on one worker: each task
 * waits for those before it. The exact values are the pool's own timing
 * of each task, which the trace holds; a task's measure of itself is a
 * bound from below (the pool's run contains it), no more: under valgrind
 * or load, a preemption between the two clock reads stretches the pool's.
 */
CREW_TEST(latency, percentiles_are_within_5_percent_of_the_exact_ones)
{
    enum { N = 100 };
    crew_pool *pool = crew_test_pool(1);
    struct sleeper s[N];
    crew_future *fs[N];
    uint64_t runs[N], waits[N], own[N];
    crew_latency latency;
    cJSON *json;

    for (size_t i = 0; i < N; i++)
        s[i].sleep_ns = 200000 + (i * i % 97) * (i % 10 == 0 ? 20000 : 4000);
    cr_assert_eq(crew_trace_start(pool, N), 0);
    for (size_t i = 0; i < N; i++) {
        s[i].submitted = now_ns();
        cr_assert_eq(crew_submit(pool, sleep_task, &s[i], &fs[i]), 0);
    }
    crew_wait_all(fs, N, NULL);
    json = stop_and_parse(pool);
    timings_of(json, runs, waits, N);
    cJSON_Delete(json);
    for (size_t i = 0; i < N; i++) {
        crew_future_release(fs[i]);
        own[i] = s[i].ended - s[i].started;
    }
    cr_assert_eq(crew_pool_latency_get(pool, &latency), 0);
    cr_assert_eq(latency.tasks, N);
    assert_near(latency.run_p50_ns, exact_percentile(runs, N, 50), "run p50");
    assert_near(latency.run_p99_ns, exact_percentile(runs, N, 99), "run p99");
    assert_near(latency.run_max_ns, exact_percentile(runs, N, 100), "run max");
    assert_near(latency.wait_p50_ns, exact_percentile(waits, N, 50),
                "wait p50");
    assert_near(latency.wait_p99_ns, exact_percentile(waits, N, 99),
                "wait p99");
    assert_near(latency.wait_max_ns, exact_percentile(waits, N, 100),
                "wait max");
    /* Each run holds the task's own measure of itself (the 5 % allows
     * for the histogram's bucket). */
    cr_assert_geq(latency.run_p50_ns, exact_percentile(own, N, 50) * 95 / 100);
    cr_assert_geq(latency.run_max_ns, exact_percentile(own, N, 100) * 99 / 100);
    crew_pool_destroy(pool);
}

CREW_TEST(latency, counts_accumulate_over_sessions)
{
    crew_pool *pool = crew_test_pool(2);
    struct coded coded[30];
    crew_latency latency;

    for (int round = 0; round < 3; round++) {
        cr_assert_eq(crew_trace_start(pool, 5), 0);
        run_coded(pool, coded, 30);
        cr_assert_eq(crew_trace_stop(pool, NULL), 0);
    }
    cr_assert_eq(crew_pool_latency_get(pool, &latency), 0);
    cr_assert_eq(latency.tasks, 90);
    cr_assert_leq(latency.run_p50_ns, latency.run_p99_ns);
    cr_assert_leq(latency.run_p99_ns, latency.run_max_ns);
    cr_assert_leq(latency.wait_p50_ns, latency.wait_p99_ns);
    cr_assert_leq(latency.wait_p99_ns, latency.wait_max_ns);
    crew_pool_destroy(pool);
}
