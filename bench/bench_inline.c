/*
 * The floor: every workload run inline on the calling thread, with no
 * pool at all. THREADS is ignored.
 */
#include "bench.h"
#include "uts.h"

static uint64_t
fanout(long n, int with_failures)
{
    uint64_t *results = bench_alloc_u64(n);
    uint64_t sum;

    for (long i = 0; i < n; i++)
        results[i] = with_failures && bench_fails(i)
                         ? (uint64_t)1 << 32
                         : bench_tiny((uint64_t)i);
    sum = bench_sum(results, n);
    free(results);
    return sum;
}

/* A round trip is a call: the floor of any hand-off. Its value goes to
 * a volatile, so that the call cannot be dropped, and is added to the
 * checksum only after the round's time is taken. */
static volatile uint64_t sink;

static void
round_trip(void *context, long i)
{
    (void)context;
    sink = bench_tiny((uint64_t)i);
}

static void
add_to_checksum(void *context, long i)
{
    (void)i;
    *(uint64_t *)context += sink;
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    uint64_t checksum = 0;
    uint64_t start = bench_now_ns();
    double metric;

    if (bench_is(&a, "fanout") || bench_is(&a, "errors")) {
        checksum = fanout(a.size, bench_is(&a, "errors"));
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "fib") || bench_is(&a, "fj-fib")) {
        checksum = bench_fib_seq(a.size);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "fj-nqueens")) {
        struct bench_board empty = {{0}};
        int n = bench_queens_n(a.size);
        start = bench_now_ns();
        checksum = bench_nqueens_seq(n, 0, &empty);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "fj-uts-t1") || bench_is(&a, "fj-uts-t3")) {
        struct uts_tree tree = uts_tree_of(a.workload, a.size);
        start = bench_now_ns();
        checksum = uts_count_seq(&tree, NULL, 0);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "pfor")) {
        checksum = bench_uneven_range(0, a.size, a.size);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "reduce")) {
        /* The array is filled before the clock starts, as everywhere. */
        double *x = bench_reduce_array(a.size);
        start = bench_now_ns();
        checksum = bench_reduce_checksum(bench_reduce_range(x, 0, a.size));
        metric = bench_seconds_since(start);
        free(x);
    } else if (bench_is(&a, "pingpong")) {
        metric =
            bench_ping_pong(a.size, round_trip, add_to_checksum, &checksum);
    } else if (bench_is(&a, "idle")) {
        checksum = fanout(1000, 0);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        return bench_unsupported(&a, "inline");
    }
    bench_report(metric, checksum);
    return 0;
}
