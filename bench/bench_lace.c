/*
 * Lace's side of the benchmarks (Lace 1.4.2, built from its tarball by
 * bench/run.sh): the fork-join workloads of bench.h, and idle.
 *
 * THREADS is Lace's worker count, lace_start(THREADS, 0): since 1.4 the
 * calling thread can no longer be a worker, so main hands the root task
 * to the workers with RUN and blocks on a semaphore until it is done,
 * which is where crew's main stands too (crew_submit, then
 * crew_future_wait from outside the pool). RUN is timed whole, as Lace's
 * own benchmarks time it. 0 as the deque size takes Lace's default,
 * 100,000 tasks a worker, far more than these workloads keep queued.
 *
 * Lace's workers never sleep unless told to: lace_start leaves them
 * resumed, stealing in a loop (its README warns of the 100% load), and
 * RUN's own lace_resume/lace_suspend pair only counts up and down from
 * there, so they go on spinning between RUNs. A program may park them
 * with lace_suspend() and wake them with lace_resume() (1-2 ms, its
 * README says); Lace's benchmarks do not, and neither does this one.
 *
 * The tasks follow Lace's benchmarks/fib, benchmarks/queens and
 * benchmarks/uts (that one in the shape uts.h gives every system): TASK_n
 * defines them, SPAWN forks one onto the worker's deque, CALL runs one
 * as a plain call, SYNC joins the latest spawn (runs it if no thief took
 * it, else leapfrogs: steals from the thief until the result is there).
 *
 * Not expressed, and exiting with status 2: every workload that submits
 * tasks from outside one by one (fanout, pingpong, errors, memory) or
 * loops (pfor, reduce): Lace's only door from outside is RUN, one task
 * at a time that blocks the caller, and Lace has no loop construct; fib,
 * whose form is a task submitted and a future waited on, which Lace does
 * not have (its SPAWN/SYNC form is fj-fib).
 */
#include "bench.h"
#include "uts.h"

#include <lace.h>

/* fj-fib: fork fib(n-1), call fib(n-2), join. */
TASK_1(uint64_t, lace_fib, long, n)
{
    uint64_t other;

    if (n < 2)
        return (uint64_t)n;
    SPAWN(lace_fib, n - 1);
    other = CALL(lace_fib, n - 2);
    return SYNC(lace_fib) + other;
}

/* fj-nqueens: one spawn per safe column of row j, each with its own
 * board on this call's stack, then as many syncs (latest first). */
TASK_3(uint64_t, lace_queens, int, n, int, j, const struct bench_board *, b)
{
    struct bench_board child[BENCH_QUEENS_MAX];
    uint64_t count = 0;
    int k = 0;

    if (j == n)
        return 1;
    for (int col = 0; col < n; col++) {
        if (!bench_queen_is_safe(b, j, col))
            continue;
        bench_place_queen(&child[k], b, j, col);
        SPAWN(lace_queens, n, j + 1, &child[k]);
        k++;
    }
    while (k-- > 0)
        count += SYNC(lace_queens);
    return count;
}

/* fj-uts-t1, fj-uts-t3: grow child i of parent (the root when parent is
 * NULL), spawn a call for each of its children but the last, call that
 * one, and sync the spawns. A spawn holds its arguments in Lace's own
 * deque, so the children need no room here. */
TASK_3(uint64_t, lace_uts, const struct uts_tree *, tree,
       const struct uts_node *, parent, int, i)
{
    struct uts_node node;
    int n = uts_grow(tree, parent, i, &node);
    uint64_t count = 1;

    if (n == 0)
        return 1;
    for (int k = 0; k < n - 1; k++)
        SPAWN(lace_uts, tree, &node, k);
    count += CALL(lace_uts, tree, &node, n - 1);
    for (int k = 0; k < n - 1; k++)
        count += SYNC(lace_uts);
    return count;
}

/* idle: the burst, 1,000 tiny tasks spawned by one task and synced, each
 * writing bench_tiny(i) to results[i]. */
static uint64_t *results;

VOID_TASK_1(lace_tiny, long, i)
{
    results[i] = bench_tiny((uint64_t)i);
}

VOID_TASK_1(lace_burst, long, n)
{
    for (long i = 0; i < n; i++)
        SPAWN(lace_tiny, i);
    for (long i = 0; i < n; i++)
        SYNC(lace_tiny);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    uint64_t checksum = 0, start;
    double metric;

    if (!bench_is(&a, "fj-fib") && !bench_is(&a, "fj-nqueens") &&
        !bench_is(&a, "fj-uts-t1") && !bench_is(&a, "fj-uts-t3") &&
        !bench_is(&a, "idle"))
        return bench_unsupported(&a, "lace");
    lace_start(a.threads, 0);
    if (bench_is(&a, "fj-fib")) {
        start = bench_now_ns();
        checksum = RUN(lace_fib, a.size);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "fj-nqueens")) {
        struct bench_board empty = {{0}};
        int n = bench_queens_n(a.size);
        start = bench_now_ns();
        checksum = RUN(lace_queens, n, 0, &empty);
        metric = bench_seconds_since(start);
    } else if (bench_is(&a, "fj-uts-t1") || bench_is(&a, "fj-uts-t3")) {
        struct uts_tree tree = uts_tree_of(a.workload, a.size);
        start = bench_now_ns();
        checksum = RUN(lace_uts, &tree, NULL, 0);
        metric = bench_seconds_since(start);
    } else {
        /* The workers spin on after the burst (see the top): what a
         * default Lace program costs between two RUNs. */
        results = bench_alloc_u64(1000);
        RUN(lace_burst, 1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
        free(results);
    }
    lace_stop();
    bench_report(metric, checksum);
    return 0;
}
