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
#include <pthread.h>

static void
die(const char *what)
{
    fprintf(stderr, "%s\n", what);
    exit(1);
}

static void
check_pthread(int err, const char *what)
{
    if (err != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        exit(1);
    }
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        die("out of memory");
    return p;
}

static threadpool
make_pool(unsigned threads)
{
    threadpool pool;

    if (threads > INT_MAX)
        die("thpool_init: too many threads");
    pool = thpool_init((int)threads);
    if (pool == NULL)
        die("thpool_init failed");
    return pool;
}

static void
submit(threadpool pool, void (*fn)(void *), void *arg)
{
    if (thpool_add_work(pool, fn, arg) != 0)
        die("thpool_add_work failed");
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

static uint64_t
sum_results(long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += results[i];
    return sum;
}

/* Submit n tiny tasks, return the seconds until all are joined. */
static double
fan_out(threadpool pool, long n)
{
    uint64_t start;

    results = xcalloc((size_t)n + 1, sizeof(*results));
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        submit(pool, tiny_task, (void *)(intptr_t)i);
    thpool_wait(pool);
    return bench_seconds_since(start);
}

/* pfor: one task per chunk of the uneven loop. */
struct chunk {
    long lo, hi, n;
    uint64_t sum;
};

static void
chunk_task(void *arg)
{
    struct chunk *c = arg;

    c->sum = bench_uneven_range(c->lo, c->hi, c->n);
}

static double
pfor(threadpool pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = (n + grain - 1) / grain;
    struct chunk *c = xcalloc((size_t)chunks + 1, sizeof(*c));
    uint64_t start = bench_now_ns();

    for (long k = 0; k < chunks; k++) {
        c[k].lo = k * grain;
        c[k].hi = c[k].lo + grain < n ? c[k].lo + grain : n;
        c[k].n = n;
        submit(pool, chunk_task, &c[k]);
    }
    thpool_wait(pool);
    double seconds = bench_seconds_since(start);
    *checksum = 0;
    for (long k = 0; k < chunks; k++)
        *checksum += c[k].sum;
    free(c);
    return seconds;
}

/* A round trip is one submit and one thpool_wait: the pool's only way
 * for the caller to learn that a task has run. */
static double
ping_pong(threadpool pool, long n, uint64_t *checksum)
{
    uint64_t *samples = xcalloc((size_t)n + 1, sizeof(*samples));

    results = xcalloc((size_t)n + 1, sizeof(*results));
    for (long i = 0; i < n; i++) {
        uint64_t start = bench_now_ns();
        submit(pool, tiny_task, (void *)(intptr_t)i);
        thpool_wait(pool);
        samples[i] = bench_now_ns() - start;
    }
    *checksum = sum_results(n);
    double median = bench_median(samples, n);
    free(samples);
    return median;
}

/* memory: workers held on a gate while n tasks queue up. The gate also
 * counts the workers that reached it, so the first reading is taken
 * only once every worker is held and none can drain the queue. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static unsigned gate_arrived;
static int gate_open;

static void
gate_task(void *arg)
{
    (void)arg;
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    gate_arrived++;
    check_pthread(pthread_cond_broadcast(&gate_cond),
                  "pthread_cond_broadcast");
    while (!gate_open)
        check_pthread(pthread_cond_wait(&gate_cond, &gate_lock),
                      "pthread_cond_wait");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
}

static double
memory(threadpool pool, unsigned threads, long n, uint64_t *checksum)
{
    results = xcalloc((size_t)n + 1, sizeof(*results));
    /* Make the array resident before the first measurement: with a value
     * other than zero, which a compiler may not drop after calloc. */
    memset(results, 0xff, ((size_t)n + 1) * sizeof(*results));
    for (unsigned t = 0; t < threads; t++)
        submit(pool, gate_task, NULL);
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    while (gate_arrived < threads)
        check_pthread(pthread_cond_wait(&gate_cond, &gate_lock),
                      "pthread_cond_wait");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        submit(pool, tiny_task, (void *)(intptr_t)i);
    long after = bench_rss_bytes();
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    gate_open = 1;
    check_pthread(pthread_cond_broadcast(&gate_cond),
                  "pthread_cond_broadcast");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
    thpool_wait(pool);
    *checksum = sum_results(n);
    return n > 0 ? (double)(after - before) / (double)n : 0;
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
        checksum = sum_results(a.size);
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(pool, 1000);
        checksum = sum_results(1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(pool, a.threads, a.size, &checksum);
    }
    thpool_destroy(pool);
    free(results);
    bench_report(metric, checksum);
    return 0;
}
