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

#include <pthread.h>
#include <stdatomic.h>

/* A pushed pointer may not be NULL, so tiny task i is pushed as i + 1;
 * the gate is pushed as the one value no index + 1 can reach. */
#define GATE_DATA GSIZE_TO_POINTER(G_MAXSIZE)

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

static GThreadPool *
make_pool(GFunc fn, unsigned threads)
{
    GError *error = NULL;
    GThreadPool *pool;

    if (threads > G_MAXINT)
        die("g_thread_pool_new: too many threads");
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

/* memory: workers held on a gate while n tasks queue up. The gate also
 * counts the workers that reached it, so the first reading is taken
 * only once every worker is held and none can drain the queue. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static unsigned gate_arrived;
static int gate_open;

static void
gate_wait(void)
{
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    gate_arrived++;
    check_pthread(pthread_cond_broadcast(&gate_cond),
                  "pthread_cond_broadcast");
    while (!gate_open)
        check_pthread(pthread_cond_wait(&gate_cond, &gate_lock),
                      "pthread_cond_wait");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
}

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
        gate_wait();
        return;
    }
    i = (long)(GPOINTER_TO_SIZE(data) - 1);
    results[i] = bench_tiny((uint64_t)i);
    latch_count_down();
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
fan_out(GThreadPool *pool, long n)
{
    uint64_t start;

    results = xcalloc((size_t)n + 1, sizeof(*results));
    latch_arm(n);
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        push(pool, GSIZE_TO_POINTER((gsize)i + 1));
    latch_wait();
    return bench_seconds_since(start);
}

/* pfor: one task per chunk of the uneven loop. */
struct chunk {
    long lo, hi, n;
    uint64_t sum;
};

static void
chunk_task(gpointer data, gpointer user)
{
    struct chunk *c = data;

    (void)user;
    c->sum = bench_uneven_range(c->lo, c->hi, c->n);
    latch_count_down();
}

static double
pfor(GThreadPool *pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = (n + grain - 1) / grain;
    struct chunk *c = xcalloc((size_t)chunks + 1, sizeof(*c));
    uint64_t start;

    latch_arm(chunks);
    start = bench_now_ns();
    for (long k = 0; k < chunks; k++) {
        c[k].lo = k * grain;
        c[k].hi = c[k].lo + grain < n ? c[k].lo + grain : n;
        c[k].n = n;
        push(pool, &c[k]);
    }
    latch_wait();
    double seconds = bench_seconds_since(start);
    *checksum = 0;
    for (long k = 0; k < chunks; k++)
        *checksum += c[k].sum;
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

static double
ping_pong(GThreadPool *pool, long n, uint64_t *checksum)
{
    uint64_t *samples = xcalloc((size_t)n + 1, sizeof(*samples));

    results = xcalloc((size_t)n + 1, sizeof(*results));
    for (long i = 0; i < n; i++) {
        gsize round = (gsize)i + 1;
        uint64_t start = bench_now_ns();
        push(pool, GSIZE_TO_POINTER(round));
        g_mutex_lock(&round_lock);
        while (round_done != round)
            g_cond_wait(&round_cond, &round_lock);
        g_mutex_unlock(&round_lock);
        samples[i] = bench_now_ns() - start;
    }
    *checksum = sum_results(n);
    double median = bench_median(samples, n);
    free(samples);
    return median;
}

static double
memory(GThreadPool *pool, unsigned threads, long n, uint64_t *checksum)
{
    results = xcalloc((size_t)n + 1, sizeof(*results));
    /* Make the array resident before the first measurement: with a value
     * other than zero, which a compiler may not drop after calloc. */
    memset(results, 0xff, ((size_t)n + 1) * sizeof(*results));
    latch_arm(n);
    for (unsigned t = 0; t < threads; t++)
        push(pool, GATE_DATA);
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    while (gate_arrived < threads)
        check_pthread(pthread_cond_wait(&gate_cond, &gate_lock),
                      "pthread_cond_wait");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        push(pool, GSIZE_TO_POINTER((gsize)i + 1));
    long after = bench_rss_bytes();
    check_pthread(pthread_mutex_lock(&gate_lock), "pthread_mutex_lock");
    gate_open = 1;
    check_pthread(pthread_cond_broadcast(&gate_cond),
                  "pthread_cond_broadcast");
    check_pthread(pthread_mutex_unlock(&gate_lock), "pthread_mutex_unlock");
    latch_wait();
    *checksum = sum_results(n);
    return n > 0 ? (double)(after - before) / (double)n : 0;
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
        checksum = sum_results(a.size);
    } else if (bench_is(&a, "pfor")) {
        pool = make_pool(chunk_task, a.threads);
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        pool = make_pool(round_task, a.threads);
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        pool = make_pool(tiny_task, a.threads);
        fan_out(pool, 1000);
        checksum = sum_results(1000);
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
