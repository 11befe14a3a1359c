/*
 * oneTBB's side of the benchmarks: the workloads of bench.h that TBB can
 * express.
 *
 * THREADS counts every thread that runs tasks (bench.h). Where the main
 * thread joins in (fanout, fib and the fork-join workloads, pfor, reduce,
 * idle) it enters an arena of THREADS slots, one kept for it, and
 * global_control allows THREADS threads in all, so THREADS - 1 workers
 * help it. Where it submits from outside and only waits (pingpong,
 * memory) it runs nothing, so the arena keeps no slot for it and
 * global_control allows THREADS + 1 threads in all (TBB counts the main
 * thread in that limit even when it runs nothing): THREADS workers, as
 * crew has.
 *
 * Not expressed, and exiting with status 2:
 *
 *   errors  A failing TBB task throws; task_group::wait rethrows the first
 *           exception only and cancels the rest of the group, so it cannot
 *           report every failure, which is what the workload counts.
 */
#include "bench.h"
#include "uts.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>

/* fanout, pingpong, idle, memory: task i writes bench_tiny(i) to
 * results[i]. */
static uint64_t *results;

/* A task group that ends any other way than complete means TBB cancelled
 * it, and then the work was not all done. */
static void
check_wait(tbb::task_group &g)
{
    if (g.wait() != tbb::complete) {
        fprintf(stderr, "bench_tbb: task group cancelled\n");
        exit(1);
    }
}

/* SIZE tasks run from the main thread inside the arena, then joined; the
 * main thread runs tasks too while it waits. */
static double
fan_out(tbb::task_arena &arena, long n)
{
    double seconds = 0;

    results = bench_alloc_u64(n);
    arena.execute([&] {
        tbb::task_group g;
        uint64_t start = bench_now_ns();
        for (long i = 0; i < n; i++)
            g.run([i] { results[i] = bench_tiny((uint64_t)i); });
        check_wait(g);
        seconds = bench_seconds_since(start);
    });
    return seconds;
}

/* fib: a task group per call, fib(n-1) run in it, fib(n-2) computed
 * inline, then the wait; no cutoff, the same task structure as crew's. */
static uint64_t
fib(long n)
{
    uint64_t x = 0, y;

    if (n < 2)
        return (uint64_t)n;
    /* Only past the leaf test, so leaves build no group. */
    tbb::task_group g;
    g.run([&x, n] { x = fib(n - 1); });
    y = fib(n - 2);
    check_wait(g);
    return x + y;
}

/* fj-nqueens: a task group per call, one run per safe column of row j,
 * each with its own board on this call's stack, then the wait. */
static uint64_t
queens(int n, int j, const struct bench_board *b)
{
    struct bench_board child[BENCH_QUEENS_MAX];
    uint64_t count[BENCH_QUEENS_MAX], sum = 0;
    int k = 0;

    if (j == n)
        return 1;
    tbb::task_group g;
    for (int col = 0; col < n; col++) {
        if (!bench_queen_is_safe(b, j, col))
            continue;
        bench_place_queen(&child[k], b, j, col);
        g.run([&child, &count, n, j, k] {
            count[k] = queens(n, j + 1, &child[k]);
        });
        k++;
    }
    check_wait(g);
    for (int i = 0; i < k; i++)
        sum += count[i];
    return sum;
}

static double
queens_run(tbb::task_arena &arena, int n, uint64_t *checksum)
{
    double seconds = 0;

    arena.execute([&] {
        struct bench_board empty = {};
        uint64_t start = bench_now_ns();
        *checksum = queens(n, 0, &empty);
        seconds = bench_seconds_since(start);
    });
    return seconds;
}

/* fj-uts-t1, fj-uts-t3: grow child i of parent (the root when parent is
 * NULL), then a task group for its children: one run for each but the
 * last, which this call counts itself, then the wait. The runs add their
 * counts to one total of the call: a child count has nowhere else to go,
 * as a node's children can be too many for an array on the stack (2,000
 * under T3's root). Relaxed: the wait orders every add before the load. */
static uint64_t
uts(const struct uts_tree *tree, const struct uts_node *parent, int i)
{
    struct uts_node node;
    int n = uts_grow(tree, parent, i, &node);

    if (n == 0)
        return 1;
    if (n == 1)
        return 1 + uts(tree, &node, 0); /* no run, no group */
    std::atomic<uint64_t> sum{0};
    tbb::task_group g;
    for (int k = 0; k < n - 1; k++)
        g.run([tree, &node, k, &sum] {
            sum.fetch_add(uts(tree, &node, k), std::memory_order_relaxed);
        });
    uint64_t last = uts(tree, &node, n - 1);
    check_wait(g);
    return 1 + last + sum.load(std::memory_order_relaxed);
}

static double
uts_run(tbb::task_arena &arena, const struct uts_tree *tree, uint64_t *checksum)
{
    double seconds = 0;

    arena.execute([&] {
        uint64_t start = bench_now_ns();
        *checksum = uts(tree, nullptr, 0);
        seconds = bench_seconds_since(start);
    });
    return seconds;
}

static double
fib_run(tbb::task_arena &arena, long n, uint64_t *checksum)
{
    double seconds = 0;

    arena.execute([&] { seconds = bench_time_fib(fib, n, checksum); });
    return seconds;
}

/*
 * pfor: parallel_for with TBB's default partitioner, auto_partitioner,
 * which is what a TBB user gets without asking. The shared grain is the
 * range's grain size, so no chunk is smaller than other systems' chunks,
 * and auto_partitioner splits further only where work is stolen, which is
 * how TBB balances an uneven loop. Each chunk adds its sum to one atomic
 * total: a few hundred adds, and wrapping unsigned addition gives the
 * same total in any order, so the checksum matches the inline one.
 */
static double
pfor(tbb::task_arena &arena, unsigned threads, long n, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    std::atomic<uint64_t> total{0};
    double seconds = 0;

    arena.execute([&] {
        uint64_t start = bench_now_ns();
        tbb::parallel_for(
            tbb::blocked_range<long>(0, n, (size_t)grain),
            [&total, n](const tbb::blocked_range<long> &r) {
                total.fetch_add(bench_uneven_range(r.begin(), r.end(), n),
                                std::memory_order_relaxed);
            },
            tbb::auto_partitioner());
        seconds = bench_seconds_since(start);
    });
    *checksum = total.load(std::memory_order_relaxed);
    return seconds;
}

/*
 * reduce: parallel_reduce over a blocked_range of the items with the
 * default partitioner (auto_partitioner) and the default grain of one
 * item, what a TBB user writes for a sum: TBB cuts the range itself. Each
 * piece is added in order by the shared bench_reduce_range(); the pieces'
 * sums are then added in whatever tree TBB builds, which changes no bit
 * of the result (bench_reduce_value).
 */
static double
reduce(tbb::task_arena &arena, long n, uint64_t *checksum)
{
    double *x = bench_reduce_array(n);
    double sum = 0, seconds = 0;

    arena.execute([&] {
        uint64_t start = bench_now_ns();
        sum = tbb::parallel_reduce(
            tbb::blocked_range<long>(0, n), 0.0,
            [x](const tbb::blocked_range<long> &r, double partial) {
                return partial + bench_reduce_range(x, r.begin(), r.end());
            },
            std::plus<double>());
        seconds = bench_seconds_since(start);
    });
    *checksum = bench_reduce_checksum(sum);
    free(x);
    return seconds;
}

/*
 * Completion signalled from tasks to a main thread outside the arena: a
 * mutex and a condition variable, so the main thread blocks at once, as a
 * thread outside crew's pool does in crew_future_wait (no spinning), and
 * TBB's wait machinery, which could run tasks, is never involved.
 */
struct completion {
    std::mutex lock;
    std::condition_variable cond;
    std::atomic<long> done{0};
};

/* A task's end: count it, and wake the main thread at the target count.
 * The lock orders the count with a waiter's check so no wake-up is lost. */
static void
signal_done(struct completion &s, long target)
{
    if (s.done.fetch_add(1, std::memory_order_acq_rel) + 1 == target) {
        std::lock_guard<std::mutex> hold(s.lock);
        s.cond.notify_one();
    }
}

static void
wait_done(struct completion &s, long target)
{
    std::unique_lock<std::mutex> hold(s.lock);
    s.cond.wait(hold, [&s, target] {
        return s.done.load(std::memory_order_acquire) == target;
    });
}

/* pingpong: each round trip enqueues one task into the arena from the
 * main thread, which is not in it, and blocks until the task is done. */
struct round_state {
    tbb::task_arena *arena;
    struct completion *s;
};

static void
round_trip(void *context, long i)
{
    struct round_state *r = static_cast<struct round_state *>(context);
    struct completion &s = *r->s;

    r->arena->enqueue([i, &s] {
        results[i] = bench_tiny((uint64_t)i);
        signal_done(s, i + 1);
    });
    wait_done(s, i + 1);
}

static double
ping_pong(tbb::task_arena &arena, long n, uint64_t *checksum)
{
    struct completion s;
    struct round_state r = {&arena, &s};

    return bench_ping_pong_results(n, &results, round_trip, nullptr, &r,
                                   checksum);
}

/* memory: every worker held on bench.h's gate, a plain mutex and
 * condition variable that TBB cannot see into, while SIZE tasks are
 * enqueued from outside. */
static struct bench_gate gate = BENCH_GATE_INITIALIZER;

static double
memory(tbb::task_arena &arena, unsigned threads, long n, uint64_t *checksum)
{
    struct completion s;
    long total = n + (long)threads;

    results = bench_alloc_u64(n);
    bench_make_resident(results, ((size_t)n + 1) * sizeof(*results));
    for (unsigned t = 0; t < threads; t++)
        arena.enqueue([&s, total] {
            bench_wait_at_gate(&gate);
            signal_done(s, total);
        });
    /* Every worker must be on the gate before the tasks go in, or some
     * would run at once instead of queuing. The wait is bounded so that
     * a worker TBB never starts shows as an error, not a hang. */
    bench_await_gate_within(&gate, threads, 10, "bench_tbb");
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        arena.enqueue([i, &s, total] {
            results[i] = bench_tiny((uint64_t)i);
            signal_done(s, total);
        });
    long after = bench_rss_bytes();
    bench_open_gate(&gate);
    wait_done(s, total);
    *checksum = bench_sum(results, n);
    return bench_divide_growth(before, after, n);
}

static int
run(const struct bench_args &a)
{
    bool outside = bench_is(&a, "pingpong") || bench_is(&a, "memory");
    uint64_t checksum = 0;
    double metric;

    /* Declared in this order so the arena goes before the limit. */
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              outside ? a.threads + 1 : a.threads);
    tbb::task_arena arena((int)a.threads, outside ? 0 : 1);

    arena.initialize();
    if (bench_is(&a, "fanout")) {
        metric = fan_out(arena, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "fib") || bench_is(&a, "fj-fib")) {
        /* task_group is TBB's fork-join: fib is already its fj-fib */
        metric = fib_run(arena, a.size, &checksum);
    } else if (bench_is(&a, "fj-nqueens")) {
        metric = queens_run(arena, bench_queens_n(a.size), &checksum);
    } else if (bench_is(&a, "fj-uts-t1") || bench_is(&a, "fj-uts-t3")) {
        struct uts_tree tree = uts_tree_of(a.workload, a.size);
        metric = uts_run(arena, &tree, &checksum);
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(arena, a.threads, a.size, &checksum);
    } else if (bench_is(&a, "reduce")) {
        metric = reduce(arena, a.size, &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(arena, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(arena, 1000);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(arena, a.threads, a.size, &checksum);
    }
    free(results);
    bench_report(metric, checksum);
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);

    if (!bench_is(&a, "fanout") && !bench_is(&a, "fib") &&
        !bench_is(&a, "fj-fib") && !bench_is(&a, "fj-nqueens") &&
        !bench_is(&a, "fj-uts-t1") && !bench_is(&a, "fj-uts-t3") &&
        !bench_is(&a, "pfor") && !bench_is(&a, "reduce") &&
        !bench_is(&a, "pingpong") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "tbb");
    /* TBB and the standard library report failure by throwing. */
    try {
        return run(a);
    } catch (const std::exception &e) {
        fprintf(stderr, "bench_tbb: %s\n", e.what());
        return 1;
    }
}
