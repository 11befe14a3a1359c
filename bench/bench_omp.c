/*
 * OpenMP's side of the benchmarks (GCC's libgomp): the workloads of
 * bench.h that OpenMP can express.
 *
 * THREADS is the team size, the encountering thread included: OpenMP has
 * no pool apart from the threads of a parallel region, so the thread that
 * creates the tasks is always one of those that run them. The runtime's
 * defaults (OMP_WAIT_POLICY, GOMP_SPINCOUNT) are left alone on purpose:
 * the numbers are what a default OpenMP program gets.
 *
 * Not expressed, and exiting with status 2:
 *
 *   errors  OpenMP tasks have no error result and no aggregate join, so
 *           failures could only be counted by hand, which would measure
 *           the benchmark's bookkeeping rather than the runtime.
 *   memory  libgomp never queues more than 64 tasks per team thread: past
 *           that (team->task_count > 64 * team->nthreads in GOMP_task) the
 *           creating thread runs each new task at once, undeferred. With
 *           the other threads held on a gate, SIZE tasks would not queue
 *           behind them but run inline on the creator, so there is no
 *           queue whose memory could be measured.
 */
#include "bench.h"
#include "uts.h"

#include <omp.h>

/* fanout, pingpong, idle: task i writes bench_tiny(i) to results[i]. */
static uint64_t *results;

/*
 * Start the team once before anything is timed, as crew's pool starts its
 * workers when it is created: libgomp keeps the threads of a finished
 * region for the next one, so later regions reuse them. It also checks
 * that the runtime gave the team size asked for (OMP_THREAD_LIMIT or
 * OMP_DYNAMIC could shrink it), since every metric assumes it.
 */
static void
start_team(unsigned threads)
{
    int team = 0;

    omp_set_num_threads((int)threads);
#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    if (team != (int)threads) {
        fprintf(stderr, "bench_omp: asked for %u threads, got %d\n", threads,
                team);
        exit(1);
    }
}

/*
 * SIZE tasks created by one thread of the team and joined by its
 * taskwait; the time runs from the first creation to the join's end.
 * Expect the creator to run most tasks itself: once 64 tasks per thread
 * are queued, libgomp runs each new one undeferred, as a plain call (on
 * two threads about 99% of a million). That is libgomp's own answer to a
 * flood of tiny tasks, so it is measured as it is, not worked around.
 */
static double
fan_out(unsigned threads, long n)
{
    uint64_t start = 0;
    double seconds = 0;

    results = bench_alloc_u64(n);
#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        {
            start = bench_now_ns();
            for (long i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
                results[i] = bench_tiny((uint64_t)i);
            }
#pragma omp taskwait
            seconds = bench_seconds_since(start);
        }
    }
    return seconds;
}

/* fib: each call makes fib(n-1) a task, computes fib(n-2), then waits;
 * no cutoff, the same task structure as crew's. */
static uint64_t
fib(long n)
{
    uint64_t x = 0, y;

    if (n < 2)
        return (uint64_t)n;
#pragma omp task shared(x) firstprivate(n)
    x = fib(n - 1);
    y = fib(n - 2);
#pragma omp taskwait
    return x + y;
}

/* fj-nqueens: one task per safe column of row j, each with its own
 * board on this call's stack, then the taskwait. The arrays are named
 * shared: an orphaned task would otherwise take them firstprivate, a
 * copy of each. */
static uint64_t
queens(int n, int j, const struct bench_board *b)
{
    struct bench_board child[BENCH_QUEENS_MAX];
    uint64_t count[BENCH_QUEENS_MAX], sum = 0;
    int k = 0;

    if (j == n)
        return 1;
    for (int col = 0; col < n; col++) {
        if (!bench_queen_is_safe(b, j, col))
            continue;
        bench_place_queen(&child[k], b, j, col);
#pragma omp task shared(child, count) firstprivate(n, j, k)
        count[k] = queens(n, j + 1, &child[k]);
        k++;
    }
#pragma omp taskwait
    for (int i = 0; i < k; i++)
        sum += count[i];
    return sum;
}

static double
queens_run(unsigned threads, int n, uint64_t *checksum)
{
    double seconds = 0;
    uint64_t result = 0;

#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        {
            struct bench_board empty = {{0}};
            uint64_t start = bench_now_ns();
            result = queens(n, 0, &empty);
            seconds = bench_seconds_since(start);
        }
    }
    *checksum = result;
    return seconds;
}

/* fj-uts-t1, fj-uts-t3: grow child i of parent (the root when parent is
 * NULL), make a task of each of its children but the last, count that
 * one here, then the taskwait. The tasks add their counts to one total
 * of the call, atomically: a node's children can be too many for an
 * array on the stack (2,000 under T3's root). */
static uint64_t
uts(const struct uts_tree *tree, const struct uts_node *parent, int i)
{
    struct uts_node node;
    int n = uts_grow(tree, parent, i, &node);
    uint64_t sum = 0, last;

    if (n == 0)
        return 1;
    for (int k = 0; k < n - 1; k++) {
#pragma omp task shared(node, sum) firstprivate(tree, k)
        {
            uint64_t count = uts(tree, &node, k);
#pragma omp atomic
            sum += count;
        }
    }
    last = uts(tree, &node, n - 1);
#pragma omp taskwait
    return 1 + last + sum;
}

static double
uts_run(unsigned threads, const struct uts_tree *tree, uint64_t *checksum)
{
    double seconds = 0;
    uint64_t result = 0;

#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        {
            uint64_t start = bench_now_ns();
            result = uts(tree, NULL, 0);
            seconds = bench_seconds_since(start);
        }
    }
    *checksum = result;
    return seconds;
}

static double
fib_run(unsigned threads, long n, uint64_t *checksum)
{
    double seconds = 0;
    uint64_t result = 0;

#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        seconds = bench_time_fib(fib, n, &result);
    }
    *checksum = result;
    return seconds;
}

/* pfor: OpenMP's dynamic schedule with the shared grain, the reference
 * "OpenMP dynamic" loop. It runs over chunks of `grain` items, one chunk
 * per iteration with schedule(dynamic, 1), which hands out exactly what
 * schedule(dynamic, grain) over the items would, so that the work is the
 * shared bench_uneven_range() every system runs. The fork and join of
 * the region are timed too, as they are part of what a parallel loop
 * costs in OpenMP. */
static double
pfor(unsigned threads, long n, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = bench_count_chunks(n, grain);
    uint64_t sum = 0;
    uint64_t start = bench_now_ns();

#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) \
    reduction(+ : sum)
    for (long k = 0; k < chunks; k++) {
        struct bench_chunk c;

        bench_fill_chunk(&c, k, grain, n);
        bench_run_chunk(&c);
        sum += c.sum;
    }
    double seconds = bench_seconds_since(start);
    *checksum = sum;
    return seconds;
}

/* reduce: what an OpenMP program writes for a sum, the reduction clause
 * over the items with a static schedule, each thread adding one
 * contiguous block into its private copy. The loop body is the clause's
 * own rather than bench_reduce_range(), since that is the code an OpenMP
 * user gets; it compiles to the same in-order chain of additions. The
 * fork and join of the region are timed, as in pfor. */
static double
reduce(unsigned threads, long n, uint64_t *checksum)
{
    double *x = bench_reduce_array(n);
    double sum = 0;
    uint64_t start = bench_now_ns();

#pragma omp parallel for num_threads(threads) schedule(static) \
    reduction(+ : sum)
    for (long i = 0; i < n; i++)
        sum += x[i];
    double seconds = bench_seconds_since(start);
    *checksum = bench_reduce_checksum(sum);
    free(x);
    return seconds;
}

/* pingpong: OpenMP cannot hand a task to its threads from outside them,
 * so this is the nearest thing, a fork and join of a whole region whose
 * one single computes the tiny value. It is not the same measurement as
 * the other systems' and is reported beside them. */
static void
round_trip(void *context, long i)
{
    unsigned threads = *(const unsigned *)context;

#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        results[i] = bench_tiny((uint64_t)i);
    }
}

static double
ping_pong(unsigned threads, long n, uint64_t *checksum)
{
    return bench_ping_pong_results(n, &results, round_trip, NULL, &threads,
                                   checksum);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "fib") &&
        !bench_is(&a, "fj-fib") && !bench_is(&a, "fj-nqueens") &&
        !bench_is(&a, "fj-uts-t1") && !bench_is(&a, "fj-uts-t3") &&
        !bench_is(&a, "pfor") && !bench_is(&a, "reduce") &&
        !bench_is(&a, "pingpong") && !bench_is(&a, "idle"))
        return bench_unsupported(&a, "omp");
    start_team(a.threads);
    if (bench_is(&a, "fanout")) {
        metric = fan_out(a.threads, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "fib") || bench_is(&a, "fj-fib")) {
        /* a task and a taskwait are OpenMP's fork-join: fib is already
         * its fj-fib */
        metric = fib_run(a.threads, a.size, &checksum);
    } else if (bench_is(&a, "fj-nqueens")) {
        metric = queens_run(a.threads, bench_queens_n(a.size), &checksum);
    } else if (bench_is(&a, "fj-uts-t1") || bench_is(&a, "fj-uts-t3")) {
        struct uts_tree tree = uts_tree_of(a.workload, a.size);
        metric = uts_run(a.threads, &tree, &checksum);
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(a.threads, a.size, &checksum);
    } else if (bench_is(&a, "reduce")) {
        metric = reduce(a.threads, a.size, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(a.threads, a.size, &checksum);
    } else {
        /* The team's threads wait between regions the way libgomp
         * chooses by default, spinning first; that is what is measured. */
        fan_out(a.threads, 1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    }
    free(results);
    bench_report(metric, checksum);
    return 0;
}
