/*
 * libuv's side of the benchmarks: its process-wide threadpool, sized to
 * THREADS through UV_THREADPOOL_SIZE, fed by uv_queue_work from the loop
 * thread (main). A finished request's after-work callback runs on the
 * loop thread, so a batch is joined by uv_run(UV_RUN_DEFAULT), which
 * returns once no request is left in flight, that is once every
 * after-work callback has run.
 *
 * A uv_work_t is the caller's memory: the requests of a batch are one
 * array, allocated before the clock starts as crew's future array is,
 * and written by uv_queue_work.
 *
 * fib is left out: a work callback that waits for a child request holds
 * its worker, and the child's completion is only reported on the loop
 * thread, so with a fixed pool the tree deadlocks. errors is left out:
 * a work callback returns nothing, so there is no failure to propagate.
 */
#include "bench.h"

#include <uv.h>

/* libuv silently caps its pool at this many threads. */
#define UV_MAX_THREADS 1024

static uv_loop_t loop;
static long completed;

static void
check_uv(int err, const char *what)
{
    if (err != 0) {
        fprintf(stderr, "%s: %s\n", what, uv_strerror(err));
        exit(1);
    }
}

/* Every request's after-work callback: count it on the loop thread. */
static void
after_work(uv_work_t *req, int status)
{
    (void)req;
    check_uv(status, "uv_queue_work");
    completed++;
}

static void
submit(uv_work_t *req, uv_work_cb fn, void *data)
{
    req->data = data;
    check_uv(uv_queue_work(&loop, req, fn, after_work), "uv_queue_work");
}

/* Run the loop until every request queued so far has completed. */
static void
join(long expected)
{
    if (uv_run(&loop, UV_RUN_DEFAULT) != 0)
        bench_die("uv_run returned with requests still active");
    if (completed != expected)
        bench_die("uv_run returned before every request completed");
}

static void
nop_task(uv_work_t *req)
{
    (void)req;
}

/* libuv starts its threads on the first uv_queue_work; one empty request
 * starts them, so that no timing counts the pool's creation. */
static void
start_pool(unsigned threads)
{
    char value[16];
    uv_work_t req;
    int len;

    if (threads > UV_MAX_THREADS) {
        fprintf(stderr, "uv: at most %d threads\n", UV_MAX_THREADS);
        exit(2);
    }
    len = snprintf(value, sizeof(value), "%u", threads);
    if (len < 0 || (size_t)len >= sizeof(value))
        bench_die("snprintf failed");
    if (setenv("UV_THREADPOOL_SIZE", value, 1) != 0) {
        perror("setenv");
        exit(1);
    }
    check_uv(uv_loop_init(&loop), "uv_loop_init");
    submit(&req, nop_task, NULL);
    join(1);
    completed = 0;
}

/* fanout, pingpong, idle, memory: request i writes bench_tiny(i) to
 * results[i]. */
static uint64_t *results;

static void
tiny_task(uv_work_t *req)
{
    long i = (long)(intptr_t)req->data;

    results[i] = bench_tiny((uint64_t)i);
}

/* Submit n tiny tasks, return the seconds until all are joined. */
static double
fan_out(long n)
{
    uv_work_t *reqs = bench_calloc((size_t)n + 1, sizeof(*reqs));
    uint64_t start;

    results = bench_alloc_u64(n);
    completed = 0;
    start = bench_now_ns();
    for (long i = 0; i < n; i++)
        submit(&reqs[i], tiny_task, (void *)(intptr_t)i);
    join(n);
    double seconds = bench_seconds_since(start);
    free(reqs);
    return seconds;
}

/* pfor: one request per chunk of the uneven loop. */
static void
chunk_task(uv_work_t *req)
{
    bench_run_chunk(req->data);
}

static double
pfor(long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = bench_count_chunks(n, grain);
    struct bench_chunk *c = bench_calloc((size_t)chunks + 1, sizeof(*c));
    uv_work_t *reqs = bench_calloc((size_t)chunks + 1, sizeof(*reqs));
    uint64_t start;

    completed = 0;
    start = bench_now_ns();
    for (long k = 0; k < chunks; k++) {
        bench_fill_chunk(&c[k], k, grain, n);
        submit(&reqs[k], chunk_task, &c[k]);
    }
    join(chunks);
    double seconds = bench_seconds_since(start);
    *checksum = bench_sum_chunks(c, chunks);
    free(reqs);
    free(c);
    return seconds;
}

/* A round trip is one uv_queue_work and one uv_run, which returns once
 * the after-work callback has run on this thread. A completed request
 * may be queued again, so one serves every round. */
static void
round_trip(void *context, long i)
{
    submit(context, tiny_task, (void *)(intptr_t)i);
    join(i + 1);
}

static double
ping_pong(long n, uint64_t *checksum)
{
    uv_work_t req;

    completed = 0;
    return bench_ping_pong_results(n, &results, round_trip, NULL, &req,
                                   checksum);
}

/* memory: workers held on a gate while n requests queue up. */
static struct bench_gate gate = BENCH_GATE_INITIALIZER;

static void
gate_task(uv_work_t *req)
{
    (void)req;
    bench_wait_at_gate(&gate);
}

static double
memory(unsigned threads, long n, uint64_t *checksum)
{
    uv_work_t *gates = bench_calloc(threads, sizeof(*gates));
    uv_work_t *reqs;

    results = bench_alloc_u64(n);
    bench_make_resident(results, ((size_t)n + 1) * sizeof(*results));
    completed = 0;
    for (unsigned t = 0; t < threads; t++)
        submit(&gates[t], gate_task, NULL);
    bench_await_gate(&gate, threads);
    long before = bench_rss_bytes();
    /* The requests are libuv's per-task memory, so they are allocated
     * after the first reading; uv_queue_work's writes make them
     * resident. */
    reqs = bench_calloc((size_t)n + 1, sizeof(*reqs));
    for (long i = 0; i < n; i++)
        submit(&reqs[i], tiny_task, (void *)(intptr_t)i);
    long after = bench_rss_bytes();
    bench_open_gate(&gate);
    join((long)threads + n);
    *checksum = bench_sum(results, n);
    free(reqs);
    free(gates);
    return bench_divide_growth(before, after, n);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "pfor") &&
        !bench_is(&a, "pingpong") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "uv");
    start_pool(a.threads);
    if (bench_is(&a, "fanout")) {
        metric = fan_out(a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(a.threads, a.size, &checksum);
    }
    check_uv(uv_loop_close(&loop), "uv_loop_close");
    free(results);
    bench_report(metric, checksum);
    return 0;
}
