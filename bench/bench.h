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
 *   fanout-each   crew only: the fanout tasks submitted as one batch by
 *             one crew_submit_each call, then joined; seconds from the
 *             call to the join's end (the checksum is fanout's)
 *   group-all   crew only: the fanout tasks as SIZE members of one
 *             task group (CREW_GROUP_ALL, no limit, no futures asked
 *             for), submitted from the main thread, then
 *             crew_group_wait; seconds from the group's creation to the
 *             wait's end, its destruction after the clock as fanout's
 *             release of its futures is (the checksum is fanout's)
 *   sem-limit4  crew only: SIZE limit tasks (bench_limit_work) with at
 *             most BENCH_LIMIT of them submitted and unfinished at once,
 *             by hand, as Go's errgroup.SetLimit does: a counting
 *             semaphore (a mutex and a condition variable) that the main
 *             thread acquires before each crew_submit and the task
 *             releases as its last step, then crew_wait_all on the
 *             futures; seconds from the first acquire to the join's end
 *   group-limit4  crew only: the sem-limit4 tasks as members of one
 *             group with limit = BENCH_LIMIT (no futures asked for),
 *             then crew_group_wait; timed as group-all (the checksum is
 *             sem-limit4's)
 *   fib       fib(SIZE), each call submitting fib(n-1) as a task, computing
 *             fib(n-2) itself, then waiting for the child; metric: seconds
 *   fj-fib    fib(SIZE) by fork-join without futures: each call forks
 *             fib(n-1), computes fib(n-2) itself, then joins the fork
 *             (crew_spawn/crew_sync, Lace's SPAWN/SYNC, a TBB
 *             task_group, an OpenMP task and taskwait; inline: the
 *             serial recursion); metric: seconds, the root's hand-over
 *             and join included where the caller is outside the pool
 *   fj-nqueens  the solutions of the SIZE-queens problem counted by
 *             fork-join: a call for rows [0, j) placed forks one call
 *             for each safe column of row j, then joins them all, as
 *             Lace's benchmarks/queens does (but with the incremental
 *             check, bench_queen_is_safe); metric: seconds
 *   fj-uts-t1, fj-uts-t3   the nodes of UTS's trees T1 and T3 counted by
 *             fork-join (uts.h): a call grows one node, forks a call for
 *             each of its children but the last, makes that one itself,
 *             then joins the forks; SIZE is T1's depth (10 in UTS) and
 *             the number of T3's root's children (2,000 in UTS);
 *             metric: seconds; checksum: the nodes counted
 *   pfor      SIZE uneven loop items (bench_uneven) in chunks; seconds
 *   pfor-auto, pfor-grain   crew only: the pfor loop through
 *             crew_parallel_for, with the grain chosen by crew (0), and
 *             with pfor's grain (bench_pfor_grain); seconds
 *   pfor-reduce crew only: the pfor loop summed by crew_parallel_reduce,
 *             grain chosen by crew; seconds
 *   reduce    the sum of SIZE doubles (bench_reduce_value), the array
 *             filled and resident before the clock starts; metric:
 *             seconds for the sum; checksum: the sum in quarters
 *             (bench_reduce_checksum)
 *   reduce-grain  crew only: reduce through crew_parallel_reduce with
 *             pfor's grain (bench_pfor_grain) instead of crew's; seconds
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
 *
 * Beside the workloads, this holds what every program needs around them
 * and what no system does differently: exits on failure, the arrays,
 * the pfor chunks, the pingpong sample loop and the memory workload's
 * gate. What a system does differently, how it submits and how it joins,
 * stays in its own program.
 */
#ifndef CREW_BENCH_H
#define CREW_BENCH_H

#include <pthread.h>
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

/* Print what failed and exit with status 1: a benchmark cannot go on
 * past a failed call, and a run that stops is one the runner counts as
 * failed, not one with a wrong number. */
static inline __attribute__((noreturn)) void
bench_die(const char *what)
{
    fprintf(stderr, "%s\n", what);
    exit(1);
}

/* Exit unless err, the errno value a pthread function returns, is 0. */
static inline void
bench_check(int err, const char *what)
{
    if (err != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        exit(1);
    }
}

/* calloc, or exit. */
static inline void *
bench_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        bench_die("out of memory");
    return p;
}

/* An array of n zeroed values, the results and samples arrays. It holds
 * one value more, so that for n == 0 calloc's NULL never looks like a
 * failure. */
static inline uint64_t *
bench_alloc_u64(long n)
{
    return (uint64_t *)bench_calloc((size_t)n + 1, sizeof(uint64_t));
}

static inline uint64_t
bench_sum(const uint64_t *values, long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += values[i];
    return sum;
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

/* The limit workloads: at most this many tasks submitted and not yet
 * finished at once (the group's limit, the semaphore's permits). */
#define BENCH_LIMIT 4

/* A limit task's work: BENCH_LIMIT_STEPS splitmix64 steps from its
 * index, about 400 ns on this project's machine (3.8 ns a step), so that
 * the tasks are short but not free and admitting the next one, which the
 * limit makes wait for a finished one, is a visible part of each. Never
 * inlined, for the reason bench_uneven_range() gives. */
#define BENCH_LIMIT_STEPS 100

static __attribute__((noinline, unused)) uint64_t
bench_limit_work(uint64_t i)
{
    uint64_t x = i;
    for (int k = 0; k < BENCH_LIMIT_STEPS; k++)
        x = bench_tiny(x);
    return x;
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

/* A system's fib, called on a thread that runs its tasks. */
typedef uint64_t bench_fib_fn(long n);

/* The fib workload's measurement, for a system whose caller joins in:
 * fib(n) timed on this thread; its result goes to *checksum. */
static inline double
bench_time_fib(bench_fib_fn *fib, long n, uint64_t *checksum)
{
    uint64_t start = bench_now_ns();

    *checksum = fib(n);
    return bench_seconds_since(start);
}

/*
 * fj-nqueens: a board of rows [0, j) placed is row[0..j), the column of
 * each row's queen. The longest board counted; bigger would not finish.
 */
#define BENCH_QUEENS_MAX 32

struct bench_board {
    signed char row[BENCH_QUEENS_MAX];
};

/* Whether a queen in row j, column col is attacked by none of rows
 * [0, j) of b. Never inlined, for the reason bench_uneven_range() gives:
 * it is every system's unit of nqueens work. */
static __attribute__((noinline, unused)) int
bench_queen_is_safe(const struct bench_board *b, int j, int col)
{
    for (int i = 0; i < j; i++) {
        int d = b->row[i] - col;
        if (d == 0 || d == j - i || d == i - j)
            return 0;
    }
    return 1;
}

/* child = b with its row j at col: each forked call's own board, as
 * Lace's benchmark copies its array for every spawn. */
static inline void
bench_place_queen(struct bench_board *child, const struct bench_board *b,
                  int j, int col)
{
    memcpy(child->row, b->row, (size_t)j);
    child->row[j] = (signed char)col;
}

/* The serial count from rows [0, j) of b placed, for checksums and the
 * floor. */
static inline uint64_t
bench_nqueens_seq(int n, int j, const struct bench_board *b)
{
    struct bench_board child;
    uint64_t count = 0;

    if (j == n)
        return 1;
    for (int col = 0; col < n; col++) {
        if (bench_queen_is_safe(b, j, col)) {
            bench_place_queen(&child, b, j, col);
            count += bench_nqueens_seq(n, j + 1, &child);
        }
    }
    return count;
}

/* SIZE as the board of fj-nqueens, or exit: the boards are fixed arrays. */
static inline int
bench_queens_n(long size)
{
    if (size < 1 || size > BENCH_QUEENS_MAX) {
        fprintf(stderr, "fj-nqueens: size %ld not in 1..%d\n", size,
                BENCH_QUEENS_MAX);
        exit(1);
    }
    return (int)size;
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

/* Round i of the pingpong workload, the round trip that is timed: hand
 * the tiny task of index i to the system from outside its threads, and
 * return once it has run. */
typedef void bench_round_fn(void *context, long i);

/* The pingpong workload: n rounds of round_trip, each timed alone, and
 * their median, nanoseconds. after, unless NULL, runs once a round's
 * time is taken, for what a round leaves to tidy that is no part of the
 * round trip. */
static inline double
bench_ping_pong(long n, bench_round_fn *round_trip, bench_round_fn *after,
                void *context)
{
    uint64_t *samples = bench_alloc_u64(n);

    for (long i = 0; i < n; i++) {
        uint64_t start = bench_now_ns();
        round_trip(context, i);
        samples[i] = bench_now_ns() - start;
        if (after != NULL)
            after(context, i);
    }
    double median = bench_median(samples, n);
    free(samples);
    return median;
}

/* bench_ping_pong() for a system whose round i writes bench_tiny(i) to
 * (*results)[i]: the array is allocated before the first round, and its
 * sum, once every round has run, is the checksum. */
static inline double
bench_ping_pong_results(long n, uint64_t **results, bench_round_fn *round_trip,
                        bench_round_fn *after, void *context,
                        uint64_t *checksum)
{
    *results = bench_alloc_u64(n);
    double median = bench_ping_pong(n, round_trip, after, context);
    *checksum = bench_sum(*results, n);
    return median;
}

/* Chunk size for the pfor workload when a system takes one: about 64
 * chunks per thread, at least 1 item. */
static inline long
bench_pfor_grain(long n, unsigned threads)
{
    long grain = n / ((long)threads * 64);
    return grain > 0 ? grain : 1;
}

static inline long
bench_count_chunks(long n, long grain)
{
    return (n + grain - 1) / grain;
}

/* A chunk of the pfor workload: items [lo, hi) of the uneven loop over
 * n, and their sum once it has run. */
struct bench_chunk {
    long lo, hi, n;
    uint64_t sum;
};

/* Chunk k of n items cut in chunks of grain; the last may be short.
 * Every system's chunks are cut here, so that all run the same ones. */
static inline void
bench_fill_chunk(struct bench_chunk *c, long k, long grain, long n)
{
    c->lo = k * grain;
    c->hi = c->lo + grain < n ? c->lo + grain : n;
    c->n = n;
}

static inline void
bench_run_chunk(struct bench_chunk *c)
{
    c->sum = bench_uneven_range(c->lo, c->hi, c->n);
}

/* The pfor checksum, from the chunks' sums once all have run. */
static inline uint64_t
bench_sum_chunks(const struct bench_chunk *c, long chunks)
{
    uint64_t sum = 0;
    for (long k = 0; k < chunks; k++)
        sum += c[k].sum;
    return sum;
}

/* Item i of the reduce workload. Every value is a multiple of 0.25 below
 * 256, so a partial sum of up to 2^43 of them is a multiple of 0.25 below
 * 2^51, a whole number of quarters below 2^53: exact in a double, whose
 * significand has 53 bits. Any order of summation, any split
 * into chunks and any tree of merges then gives the same bits, and the
 * checksums of systems that add in different orders compare exactly. */
static inline double
bench_reduce_value(long i)
{
    return (double)(i % 1024) * 0.25;
}

/* The reduce workload's array of n values, filled: every page written
 * before the clock starts, so the sum measures adding, not page faults.
 * One value more, as bench_alloc_u64() has. */
static inline double *
bench_reduce_array(long n)
{
    double *x = (double *)bench_calloc((size_t)n + 1, sizeof(double));

    for (long i = 0; i < n; i++)
        x[i] = bench_reduce_value(i);
    return x;
}

/* x[lo, hi) summed in order: the unit of reduce work of every system but
 * OpenMP, whose reduction clause writes its own loop (hence "unused": a
 * program that does not sum calls it nowhere). Never inlined, for the
 * reason bench_uneven_range() gives. */
static __attribute__((noinline, unused)) double
bench_reduce_range(const double *x, long lo, long hi)
{
    double sum = 0;
    for (long i = lo; i < hi; i++)
        sum += x[i];
    return sum;
}

/* The reduce checksum: the sum counted in quarters, an exact integer
 * (bench_reduce_value), so a lost or repeated item shows even where it
 * would only move the sum by a fraction. */
static inline uint64_t
bench_reduce_checksum(double sum)
{
    return (uint64_t)(sum * 4);
}

/* Make size bytes at p resident, so that the memory workload's first
 * reading already counts them: with a value other than zero, which a
 * compiler may not drop after calloc. */
static inline void
bench_make_resident(void *p, size_t size)
{
    memset(p, 0xff, size);
}

/* The memory workload's metric: the resident-set growth from before to
 * after, shared among the n tasks queued meanwhile. */
static inline double
bench_divide_growth(long before, long after, long n)
{
    return n > 0 ? (double)(after - before) / (double)n : 0;
}

/*
 * The memory workload's gate: a plain mutex and condition variable,
 * never a wait that could run queued tasks. Each worker runs one gate
 * task, which waits here until main opens the gate. The gate counts the
 * tasks that reached it, so that main can take its first reading once
 * every worker is held and none can drain the queue.
 */
struct bench_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned arrived;
    int open;
};

#define BENCH_GATE_INITIALIZER                                    \
    {                                                             \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 \
    }

/* A gate task's body: arrive, tell main, and wait until the gate opens. */
static inline void
bench_wait_at_gate(struct bench_gate *g)
{
    bench_check(pthread_mutex_lock(&g->lock), "pthread_mutex_lock");
    g->arrived++;
    bench_check(pthread_cond_broadcast(&g->cond), "pthread_cond_broadcast");
    while (!g->open)
        bench_check(pthread_cond_wait(&g->cond, &g->lock), "pthread_cond_wait");
    bench_check(pthread_mutex_unlock(&g->lock), "pthread_mutex_unlock");
}

/* Wait until count gate tasks have reached the gate. */
static inline void
bench_await_gate(struct bench_gate *g, unsigned count)
{
    bench_check(pthread_mutex_lock(&g->lock), "pthread_mutex_lock");
    while (g->arrived < count)
        bench_check(pthread_cond_wait(&g->cond, &g->lock), "pthread_cond_wait");
    bench_check(pthread_mutex_unlock(&g->lock), "pthread_mutex_unlock");
}

/* bench_await_gate(), for a system that might never start a worker: exit
 * (after a line naming who) unless count gate tasks arrive within
 * seconds, so that such a system shows as an error, not a hang. */
static inline void
bench_await_gate_within(struct bench_gate *g, unsigned count, long seconds,
                        const char *system)
{
    struct timespec deadline;
    int err = 0;

    clock_gettime(CLOCK_REALTIME, &deadline); /* the condvar's clock */
    deadline.tv_sec += seconds;
    bench_check(pthread_mutex_lock(&g->lock), "pthread_mutex_lock");
    while (g->arrived < count && err == 0)
        err = pthread_cond_timedwait(&g->cond, &g->lock, &deadline);
    if (g->arrived < count) {
        fprintf(stderr, "%s: only %u of %u workers reached the gate\n", system,
                g->arrived, count);
        exit(1);
    }
    bench_check(pthread_mutex_unlock(&g->lock), "pthread_mutex_unlock");
}

static inline void
bench_open_gate(struct bench_gate *g)
{
    bench_check(pthread_mutex_lock(&g->lock), "pthread_mutex_lock");
    g->open = 1;
    bench_check(pthread_cond_broadcast(&g->cond), "pthread_cond_broadcast");
    bench_check(pthread_mutex_unlock(&g->lock), "pthread_mutex_unlock");
}

#endif
