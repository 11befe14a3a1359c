/*
 * GLib's side of the benchmarks: an exclusive GThreadPool of THREADS
 * workers, all started when the pool is made. The pool runs one function
 * on every pushed pointer and offers no per-task join, so a batch is
 * joined by a latch: an atomic count of tasks left, and a GMutex and
 * GCond that the last task to finish signals. That costs one atomic
 * decrement a task, and keeps the pool's own teardown out of the timing.
 *
 * fib is left out: a task that waits for a child task holds its worker,
 * so with a fixed pool the tree deadlocks once every worker waits.
 * errors is left out: a task returns nothing, so there is no failure to
 * propagate.
 */
#include "bench.h"

#include <glib.h>

#include <stdatomic.h>

/* A pushed pointer may not be NULL, so tiny task i is pushed as i + 1;
 * the gate is pushed as the one value no index + 1 can reach. */
#define GATE_DATA GSIZE_TO_POINTER(G_MAXSIZE)

static GThreadPool *
make_pool(GFunc fn, unsigned threads)
{
    GError *error = NULL;
    GThreadPool *pool;

    if (threads > G_MAXINT)
        bench_die("g_thread_pool_new: too many threads");
    pool = g_thread_pool_new(fn, NULL, (gint)threads, TRUE, &error);
    if (pool == NULL) {
        fprintf(stderr, "g_thread_pool_new: %s\n",
                error != NULL ? error->message : "failed");
        exit(1);
    }
    return pool;
}

static void
push(GThreadPool *pool, gpointer data)
{
    GError *error = NULL;

    if (!g_thread_pool_push(pool, data, &error)) {
        fprintf(stderr, "g_thread_pool_push: %s\n",
                error != NULL ? error->message : "failed");
        exit(1);
    }
}

/* The join of one batch of tasks. A static GMutex and GCond need no
 * initialisation. */
static struct {
    atomic_long left;
    GMutex lock;
    GCond cond;
    gboolean done;
} latch;

static void
latch_arm(long n)
{
    atomic_store(&latch.left, n);
    latch.done = n == 0;
}

static void
latch_count_down(void)
{
    if (atomic_fetch_sub(&latch.left, 1) == 1) {
        g_mutex_lock(&latch.lock);
        latch.done = TRUE;
        g_cond_signal(&latch.cond);
        g_mutex_unlock(&latch.lock);
    }
}

static void
latch_wait(void)
{
    g_mutex_lock(&latch.lock);
    while (!latch.done)
        g_cond_wait(&latch.cond, &latch.lock);
    g_mutex_unlock(&latch.lock);
}

/* memory: workers held on a gate while n tasks queue up. */
static struct bench_gate gate = BENCH_GATE_INITIALIZER;

/* fanout, idle, memory: task i writes bench_tiny(i) to results[i] and
 * counts down the latch; the memory workload's gate tasks share the
 * pool's one function, so they are told apart by their pointer. */
static uint64_t *results;

static void
tiny_task(gpointer data, gpointer user)
{
    long i;

    (void)user;
    if (data == GATE_DATA) {
        bench_wait_at_gate(&gate);
        return;
    }
    i = (long)(GPOINTER_TO_SIZE(data) - 1);
    results[i] = bench_tiny((uint64_t)i);
    latch_count_down();
}

/* Submit n tiny tasks, return the seconds until all are joined. */
static double
fan_out(GThreadPool *pool, long n)
{
    uint64_t start;

    results = bench_alloc_u64(n);
    latch_arm(n);
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        push(pool, GSIZE_TO_POINTER((gsize)i + 1));
    latch_wait();
    return bench_seconds_since(start);
}

/* pfor: one task per chunk of the uneven loop. */
static void
chunk_task(gpointer data, gpointer user)
{
    (void)user;
    bench_run_chunk(data);
    latch_count_down();
}

static double
pfor(GThreadPool *pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = bench_count_chunks(n, grain);
    struct bench_chunk *c = bench_calloc((size_t)chunks + 1, sizeof(*c));
    uint64_t start;

    latch_arm(chunks);
    start = bench_now_ns();
    for (long k = 0; k < chunks; k++) {
        bench_fill_chunk(&c[k], k, grain, n);
        push(pool, &c[k]);
    }
    latch_wait();
    double seconds = bench_seconds_since(start);
    *checksum = bench_sum_chunks(c, chunks);
    free(c);
    return seconds;
}

/* pingpong: the task ends its round by publishing the round's number
 * under a GMutex and signalling the GCond the caller sleeps on. */
static GMutex round_lock;
static GCond round_cond;
static gsize round_done;

static void
round_task(gpointer data, gpointer user)
{
    gsize round = GPOINTER_TO_SIZE(data);

    (void)user;
    results[round - 1] = bench_tiny((uint64_t)(round - 1));
    g_mutex_lock(&round_lock);
    round_done = round;
    g_cond_signal(&round_cond);
    g_mutex_unlock(&round_lock);
}

static void
round_trip(void *context, long i)
{
    gsize round = (gsize)i + 1;

    push(context, GSIZE_TO_POINTER(round));
    g_mutex_lock(&round_lock);
    while (round_done != round)
        g_cond_wait(&round_cond, &round_lock);
    g_mutex_unlock(&round_lock);
}

static double
ping_pong(GThreadPool *pool, long n, uint64_t *checksum)
{
    return bench_ping_pong_results(n, &results, round_trip, NULL, pool,
                                   checksum);
}

static double
memory(GThreadPool *pool, unsigned threads, long n, uint64_t *checksum)
{
    results = bench_alloc_u64(n);
    bench_make_resident(results, ((size_t)n + 1) * sizeof(*results));
    latch_arm(n);
    for (unsigned t = 0; t < threads; t++)
        push(pool, GATE_DATA);
    bench_await_gate(&gate, threads);
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        push(pool, GSIZE_TO_POINTER((gsize)i + 1));
    long after = bench_rss_bytes();
    bench_open_gate(&gate);
    latch_wait();
    *checksum = bench_sum(results, n);
    return bench_divide_growth(before, after, n);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    GThreadPool *pool;
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "pfor") &&
        !bench_is(&a, "pingpong") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "glib");
    if (bench_is(&a, "fanout")) {
        pool = make_pool(tiny_task, a.threads);
        metric = fan_out(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "pfor")) {
        pool = make_pool(chunk_task, a.threads);
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        pool = make_pool(round_task, a.threads);
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        pool = make_pool(tiny_task, a.threads);
        fan_out(pool, 1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        pool = make_pool(tiny_task, a.threads);
        metric = memory(pool, a.threads, a.size, &checksum);
    }
    /* Every task has run by now; this waits for nothing but the pool. */
    g_thread_pool_free(pool, FALSE, TRUE);
    free(results);
    bench_report(metric, checksum);
    return 0;
}
