/*
 * crew's side of the benchmarks: every workload of bench.h.
 */
#include "bench.h"

#include <crew.h>

#include <errno.h>
#include <pthread.h>

static crew_pool *
make_pool(unsigned threads)
{
    crew_pool_options options = {.threads = threads, .name = "bench"};
    crew_pool *pool;
    int err = crew_pool_create(&pool, &options);

    if (err != 0) {
        fprintf(stderr, "crew_pool_create: %s\n", crew_strerror(err));
        exit(1);
    }
    return pool;
}

static void
check(int err, const char *what)
{
    if (err != 0) {
        fprintf(stderr, "%s: %s\n", what, crew_strerror(err));
        exit(1);
    }
}

/* fanout, errors, pingpong, memory: task i writes bench_tiny(i) to
 * results[i]; in the errors workload every tenth fails instead. */
static uint64_t *results;

static int
tiny_task(crew_task *task, void *arg)
{
    long i = (long)(intptr_t)arg;

    (void)task;
    results[i] = bench_tiny((uint64_t)i);
    return 0;
}

static int
failing_task(crew_task *task, void *arg)
{
    long i = (long)(intptr_t)arg;

    if (bench_fails(i))
        return crew_task_fail(task, EIO, "item %ld failed", i);
    results[i] = bench_tiny((uint64_t)i);
    return 0;
}

static uint64_t
sum_results(long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += results[i];
    return sum;
}

static void
release_all(crew_future **futures, long n)
{
    for (long i = 0; i < n; i++)
        crew_future_release(futures[i]);
}

/* Submit n tasks of fn, return the seconds until all are joined; the
 * join's error, if any, goes to *error. */
static double
fan_out(crew_pool *pool, crew_fn fn, long n, crew_error **error)
{
    crew_future **futures = calloc((size_t)n + 1, sizeof(*futures));
    uint64_t start;
    int err;

    results = calloc((size_t)n + 1, sizeof(*results));
    if (futures == NULL || results == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        check(crew_submit(pool, fn, (void *)(intptr_t)i, &futures[i]),
              "crew_submit");
    err = crew_wait_all(futures, (size_t)n, error);
    if (err != 0 && err != CREW_EAGGREGATE)
        check(err, "crew_wait_all");
    double seconds = bench_seconds_since(start);
    release_all(futures, n);
    free(futures);
    return seconds;
}

/* fib: each call submits fib(n-1), computes fib(n-2), waits. */
struct fib {
    long n;
    uint64_t result;
};

static uint64_t fib(crew_pool *pool, long n);

static int
fib_task(crew_task *task, void *arg)
{
    struct fib *f = arg;

    f->result = fib(crew_task_pool(task), f->n);
    return 0;
}

static uint64_t
fib(crew_pool *pool, long n)
{
    struct fib child = {.n = n - 1};
    crew_future *future;
    uint64_t other;

    if (n < 2)
        return (uint64_t)n;
    check(crew_submit(pool, fib_task, &child, &future), "crew_submit");
    other = fib(pool, n - 2);
    check(crew_future_wait(future), "crew_future_wait");
    crew_future_release(future);
    return child.result + other;
}

/* pfor: one task per chunk of the uneven loop. */
struct chunk {
    long lo, hi, n;
    uint64_t sum;
};

static int
chunk_task(crew_task *task, void *arg)
{
    struct chunk *c = arg;

    (void)task;
    c->sum = bench_uneven_range(c->lo, c->hi, c->n);
    return 0;
}

static double
pfor(crew_pool *pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = (n + grain - 1) / grain;
    struct chunk *c = calloc((size_t)chunks + 1, sizeof(*c));
    crew_future **futures = calloc((size_t)chunks + 1, sizeof(*futures));
    uint64_t start = bench_now_ns();

    if (c == NULL || futures == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (long k = 0; k < chunks; k++) {
        c[k].lo = k * grain;
        c[k].hi = c[k].lo + grain < n ? c[k].lo + grain : n;
        c[k].n = n;
        check(crew_submit(pool, chunk_task, &c[k], &futures[k]),
              "crew_submit");
    }
    check(crew_wait_all(futures, (size_t)chunks, NULL), "crew_wait_all");
    double seconds = bench_seconds_since(start);
    *checksum = 0;
    for (long k = 0; k < chunks; k++)
        *checksum += c[k].sum;
    release_all(futures, chunks);
    free(futures);
    free(c);
    return seconds;
}

static double
ping_pong(crew_pool *pool, long n, uint64_t *checksum)
{
    uint64_t *samples = calloc((size_t)n + 1, sizeof(*samples));

    results = calloc((size_t)n + 1, sizeof(*results));
    if (samples == NULL || results == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++) {
        crew_future *future;
        uint64_t start = bench_now_ns();
        check(crew_submit(pool, tiny_task, (void *)(intptr_t)i, &future),
              "crew_submit");
        check(crew_future_wait(future), "crew_future_wait");
        samples[i] = bench_now_ns() - start;
        crew_future_release(future);
    }
    *checksum = sum_results(n);
    double median = bench_median(samples, n);
    free(samples);
    return median;
}

/* memory: workers held on a gate while n tasks queue up. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static int
gate_task(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return 0;
}

static double
memory(crew_pool *pool, unsigned threads, long n, uint64_t *checksum)
{
    crew_future **gates = calloc(threads, sizeof(*gates));
    crew_future **futures = calloc((size_t)n + 1, sizeof(*futures));

    results = calloc((size_t)n + 1, sizeof(*results));
    if (gates == NULL || futures == NULL || results == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    /* Make the arrays resident before the first measurement: with a
     * value other than zero, which a compiler may not drop after calloc. */
    memset(futures, 0xff, ((size_t)n + 1) * sizeof(*futures));
    memset(results, 0xff, ((size_t)n + 1) * sizeof(*results));
    for (unsigned t = 0; t < threads; t++)
        check(crew_submit(pool, gate_task, NULL, &gates[t]), "crew_submit");
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        check(crew_submit(pool, tiny_task, (void *)(intptr_t)i, &futures[i]),
              "crew_submit");
    long after = bench_rss_bytes();
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    check(crew_wait_all(futures, (size_t)n, NULL), "crew_wait_all");
    check(crew_wait_all(gates, threads, NULL), "crew_wait_all");
    *checksum = sum_results(n);
    release_all(futures, n);
    release_all(gates, threads);
    free(futures);
    free(gates);
    return n > 0 ? (double)(after - before) / (double)n : 0;
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    crew_pool *pool;
    crew_error *error = NULL;
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "fib") &&
        !bench_is(&a, "pfor") && !bench_is(&a, "pingpong") &&
        !bench_is(&a, "errors") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "crew");
    pool = make_pool(a.threads);
    if (bench_is(&a, "fanout")) {
        metric = fan_out(pool, tiny_task, a.size, NULL);
        checksum = sum_results(a.size);
    } else if (bench_is(&a, "errors")) {
        metric = fan_out(pool, failing_task, a.size, &error);
        checksum = sum_results(a.size) +
                   ((uint64_t)crew_error_count(error) << 32);
        crew_error_release(error);
    } else if (bench_is(&a, "fib")) {
        struct fib root = {.n = a.size};
        crew_future *future;
        uint64_t start = bench_now_ns();
        check(crew_submit(pool, fib_task, &root, &future), "crew_submit");
        check(crew_future_wait(future), "crew_future_wait");
        metric = bench_seconds_since(start);
        crew_future_release(future);
        checksum = root.result;
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(pool, tiny_task, 1000, NULL);
        checksum = sum_results(1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(pool, a.threads, a.size, &checksum);
    }
    crew_pool_destroy(pool);
    free(results);
    bench_report(metric, checksum);
    return 0;
}
