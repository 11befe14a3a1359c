/*
 * What every benchmark program shares: the command line, the work each
 * task does, the clock, and the one line of output the runner reads.
 *
 * Every system's program is called the same way:
 *
 *     bench_<system> WORKLOAD THREADS SIZE
 *
 * and prints one line, "metric=<number> checksum=<number>", or exits with
 * status 2 (after a line on stderr) for a workload it cannot express.
 * The metric of each workload, and what SIZE means:
 *
 *   fanout    SIZE tiny tasks submitted from the main thread, then joined;
 *             metric: seconds from the first submit to the join's end
 *   fib       fib(SIZE), each call submitting fib(n-1) as a task, computing
 *             fib(n-2) itself, then waiting for the child; metric: seconds
 *   pfor      SIZE uneven loop items (bench_uneven) in chunks; seconds
 *   pingpong  SIZE round trips: submit one tiny task from outside the
 *             pool, wait for it; metric: median round trip, nanoseconds
 *   errors    SIZE tiny tasks of which every tenth fails, joined, the
 *             failures counted from the aggregate; seconds
 *   idle      an idle pool of THREADS workers for SIZE milliseconds after
 *             a burst of 1,000 fanout tasks (the checksum is theirs);
 *             metric: CPU used in that window, percent of one core
 *   memory    SIZE fanout tasks queued behind workers held on a gate
 *             (a plain mutex and condition variable, never a wait that
 *             could run queued tasks); metric: resident-set growth per
 *             queued task, bytes, with the result arrays made resident
 *             before the first reading
 *
 * THREADS counts every thread that runs tasks, a caller that runs some
 * included. The checksum depends only on the workload and SIZE, so the
 * runner can check that every system did the same work.
 */
#ifndef CREW_BENCH_H
#define CREW_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct bench_args {
    const char *workload;
    unsigned threads;
    long size;
};

/* Parse argv, or print the usage and exit with status 1. */
static inline struct bench_args
bench_parse(int argc, char **argv)
{
    struct bench_args a;
    char *end;

    if (argc != 4) {
        fprintf(stderr, "usage: %s WORKLOAD THREADS SIZE\n", argv[0]);
        exit(1);
    }
    a.workload = argv[1];
    a.threads = (unsigned)strtoul(argv[2], &end, 10);
    if (*end != '\0' || a.threads == 0) {
        fprintf(stderr, "%s: bad thread count '%s'\n", argv[0], argv[2]);
        exit(1);
    }
    a.size = strtol(argv[3], &end, 10);
    if (*end != '\0' || a.size < 0) {
        fprintf(stderr, "%s: bad size '%s'\n", argv[0], argv[3]);
        exit(1);
    }
    return a;
}

static inline int
bench_is(const struct bench_args *a, const char *workload)
{
    return strcmp(a->workload, workload) == 0;
}

/* The workload is not one this system can express. */
static inline int
bench_unsupported(const struct bench_args *a, const char *system)
{
    fprintf(stderr, "%s: workload '%s' not supported\n", system, a->workload);
    return 2;
}

static inline void
bench_report(double metric, uint64_t checksum)
{
    printf("metric=%.9g checksum=%llu\n", metric,
           (unsigned long long)checksum);
}

static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double
bench_seconds_since(uint64_t start_ns)
{
    return (double)(bench_now_ns() - start_ns) / 1e9;
}

/* A tiny task's work: one splitmix64 step of its index. */
static inline uint64_t
bench_tiny(uint64_t i)
{
    uint64_t z = i + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Whether the i-th task of the errors workload fails. */
static inline int
bench_fails(long i)
{
    return i % 10 == 9;
}

/* The errors workload's checksum: successes' tiny values summed, plus
 * the failure count times 2^32, so a lost failure shows. */
static inline uint64_t
bench_errors_checksum(long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += bench_fails(i) ? (uint64_t)1 << 32 : bench_tiny((uint64_t)i);
    return sum;
}

/* One loop item of the uneven loop over n items: its cost grows
 * linearly along the range (item n-1 costs about 64 steps, item 0 one),
 * plus noise of 0 to 15 steps, so equal static chunks are unequal work. */
static inline uint64_t
bench_uneven(long i, long n)
{
    long steps = 1 + (long)((uint64_t)i * 64 / (uint64_t)n) +
                 (long)(bench_tiny((uint64_t)i) & 15);
    uint64_t x = (uint64_t)i;
    for (long k = 0; k < steps; k++)
        x = bench_tiny(x);
    return x;
}

/* The uneven loop's items [lo, hi) of n, summed: every system's unit of
 * loop work. Never inlined, so that every system runs the same machine
 * code for the work itself and the comparison is of the schedulers: the
 * compiler lays out an inlined copy differently in each caller, and that
 * alone moved single-thread times by 8%. */
static __attribute__((noinline)) uint64_t
bench_uneven_range(long lo, long hi, long n)
{
    uint64_t sum = 0;
    for (long i = lo; i < hi; i++)
        sum += bench_uneven(i, n);
    return sum;
}

/* Sequential fib, for checksums and the floor. */
static inline uint64_t
bench_fib_seq(long n)
{
    return n < 2 ? (uint64_t)n : bench_fib_seq(n - 1) + bench_fib_seq(n - 2);
}

/* Process CPU time (user + system), seconds. */
static inline double
bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Resident set size, bytes. */
static inline long
bench_rss_bytes(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2)
            pages_resident = 0;
        fclose(f);
    }
    return pages_resident * sysconf(_SC_PAGESIZE);
}

/* Sleep for ms milliseconds, then return the CPU percentage of one core
 * the process used meanwhile: the idle workload's measurement, made once
 * the pool has done its burst of work and returned to idle. */
static inline double
bench_idle_cpu_percent(long ms)
{
    struct timespec settle = {0, 100 * 1000000L};
    struct timespec window = {ms / 1000, (ms % 1000) * 1000000L};
    double cpu0, wall0;

    nanosleep(&settle, NULL); /* past every pool's spin window */
    cpu0 = bench_cpu_seconds();
    wall0 = (double)bench_now_ns() / 1e9;
    nanosleep(&window, NULL);
    return 100.0 * (bench_cpu_seconds() - cpu0) /
           ((double)bench_now_ns() / 1e9 - wall0);
}

static inline int
bench_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of n samples (sorts them). */
static inline double
bench_median(uint64_t *samples, long n)
{
    if (n == 0)
        return 0;
    qsort(samples, (size_t)n, sizeof(*samples), bench_compare_u64);
    return n % 2 ? (double)samples[n / 2]
                 : ((double)samples[n / 2 - 1] + (double)samples[n / 2]) / 2;
}

/* Chunk size for the pfor workload when a system takes one: about 64
 * chunks per thread, at least 1 item. */
static inline long
bench_pfor_grain(long n, unsigned threads)
{
    long grain = n / ((long)threads * 64);
    return grain > 0 ? grain : 1;
}

#endif
