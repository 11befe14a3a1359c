/*
 * C-Thread-Pool's side of the benchmarks (Debian's cthreadpool, compiled
 * in): a fixed pool of THREADS workers fed by thpool_add_work and joined
 * by thpool_wait, which waits until the queue is empty and every worker
 * idle.
 *
 * fib is left out: a task that waits for a child task holds its worker,
 * so with a fixed pool the tree deadlocks once every worker waits; and
 * thpool_wait cannot be called from a task at all. errors is left out:
 * a task returns nothing, so there is no failure to propagate.
 */
#include "bench.h"

#include <thpool.h>

#include <limits.h>

static threadpool
make_pool(unsigned threads)
{
    threadpool pool;

    if (threads > INT_MAX)
        bench_die("thpool_init: too many threads");
    pool = thpool_init((int)threads);
    if (pool == NULL)
        bench_die("thpool_init failed");
    return pool;
}

static void
submit(threadpool pool, void (*fn)(void *), void *arg)
{
    if (thpool_add_work(pool, fn, arg) != 0)
        bench_die("thpool_add_work failed");
}

/* fanout, pingpong, idle, memory: task i writes bench_tiny(i) to
 * results[i]. */
static uint64_t *results;

static void
tiny_task(void *arg)
{
    long i = (long)(intptr_t)arg;

    results[i] = bench_tiny((uint64_t)i);
}

/* Submit n tiny tasks, return the seconds until all are joined. */
static double
fan_out(threadpool pool, long n)
{
    uint64_t start;

    results = bench_alloc_u64(n);
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        submit(pool, tiny_task, (void *)(intptr_t)i);
    thpool_wait(pool);
    return bench_seconds_since(start);
}

/* pfor: one task per chunk of the uneven loop. */
static void
chunk_task(void *arg)
{
    bench_run_chunk(arg);
}

static double
pfor(threadpool pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = bench_count_chunks(n, grain);
    struct bench_chunk *c = bench_calloc((size_t)chunks + 1, sizeof(*c));
    uint64_t start = bench_now_ns();

    for (long k = 0; k < chunks; k++) {
        bench_fill_chunk(&c[k], k, grain, n);
        submit(pool, chunk_task, &c[k]);
    }
    thpool_wait(pool);
    double seconds = bench_seconds_since(start);
    *checksum = bench_sum_chunks(c, chunks);
    free(c);
    return seconds;
}

/* A round trip is one submit and one thpool_wait: the pool's only way
 * for the caller to learn that a task has run. */
static void
round_trip(void *context, long i)
{
    threadpool pool = context;

    submit(pool, tiny_task, (void *)(intptr_t)i);
    thpool_wait(pool);
}

static double
ping_pong(threadpool pool, long n, uint64_t *checksum)
{
    return bench_ping_pong_results(n, &results, round_trip, NULL, pool,
                                   checksum);
}

/* memory: workers held on a gate while n tasks queue up. */
static struct bench_gate gate = BENCH_GATE_INITIALIZER;

static void
gate_task(void *arg)
{
    (void)arg;
    bench_wait_at_gate(&gate);
}

static double
memory(threadpool pool, unsigned threads, long n, uint64_t *checksum)
{
    results = bench_alloc_u64(n);
    bench_make_resident(results, ((size_t)n + 1) * sizeof(*results));
    for (unsigned t = 0; t < threads; t++)
        submit(pool, gate_task, NULL);
    bench_await_gate(&gate, threads);
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        submit(pool, tiny_task, (void *)(intptr_t)i);
    long after = bench_rss_bytes();
    bench_open_gate(&gate);
    thpool_wait(pool);
    *checksum = bench_sum(results, n);
    return bench_divide_growth(before, after, n);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    threadpool pool;
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "pfor") &&
        !bench_is(&a, "pingpong") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "thpool");
    pool = make_pool(a.threads);
    if (bench_is(&a, "fanout")) {
        metric = fan_out(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(pool, 1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(pool, a.threads, a.size, &checksum);
    }
    thpool_destroy(pool);
    free(results);
    bench_report(metric, checksum);
    return 0;
}
