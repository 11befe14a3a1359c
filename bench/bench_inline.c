/*
 * The floor: every workload run inline on the calling thread, with no
 * pool at all. THREADS is ignored.
 */
#include "bench.h"

static uint64_t
fanout(long n, int with_failures)
{
    uint64_t *results = calloc((size_t)n + 1, sizeof(*results));
    uint64_t sum = 0;

    if (results == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (long i = 0; i < n; i++)
        results[i] = with_failures && bench_fails(i)
                         ? (uint64_t)1 << 32
                         : bench_tiny((uint64_t)i);
    for (long i = 0; i < n; i++)
        sum += results[i];
    free(results);
    return sum;
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
    } else if (bench_is(&a, "fib")) {
        checksum = bench_fib_seq(a.size);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "pfor")) {
        checksum = bench_uneven_range(0, a.size, a.size);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "pingpong")) {
        /* A round trip is a call: the floor of any hand-off. */
        uint64_t *samples = calloc((size_t)a.size + 1, sizeof(*samples));
        volatile uint64_t sink;
        if (samples == NULL) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (long i = 0; i < a.size; i++) {
            uint64_t t0 = bench_now_ns();
            sink = bench_tiny((uint64_t)i);
            samples[i] = bench_now_ns() - t0;
            checksum += sink;
        }
        metric = bench_median(samples, a.size);
        free(samples);
    } else if (bench_is(&a, "idle")) {
        checksum = fanout(1000, 0);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        return bench_unsupported(&a, "inline");
    }
    bench_report(metric, checksum);
    return 0;
}
