/*
 * crew's side of the benchmarks: every workload of bench.h.
 */
#include "bench.h"
#include "uts.h"

#include <crew.h>

#include <errno.h>
#include <stdatomic.h>

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
    crew_future **futures = bench_calloc((size_t)n + 1, sizeof(*futures));
    uint64_t start;
    int err;

    results = bench_alloc_u64(n);
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

/* fanout-each: the fanout tasks as one batch. Task i of the batch is
 * given its index, so it needs no argument of its own. */
static int
tiny_each(crew_task *task, size_t index, void *arg)
{
    (void)task;
    (void)arg;
    results[index] = bench_tiny((uint64_t)index);
    return 0;
}

/* One crew_submit_each for all n tasks, then the join; timed as
 * fan_out() is, the release of the futures after the clock. */
static double
fan_out_each(crew_pool *pool, long n)
{
    crew_future **futures = bench_calloc((size_t)n + 1, sizeof(*futures));
    uint64_t start;

    results = bench_alloc_u64(n);
    start = bench_now_ns();
    check(crew_submit_each(pool, (size_t)n, tiny_each, NULL, NULL, 0, futures),
          "crew_submit_each");
    check(crew_wait_all(futures, (size_t)n, NULL), "crew_wait_all");
    double seconds = bench_seconds_since(start);
    crew_future_release_all(futures, (size_t)n);
    free(futures);
    return seconds;
}

/* group-all: the fanout tasks as the members of one group with the
 * default options (CREW_GROUP_ALL, no limit, no deadline), no future
 * asked for, then the group's wait: timed as fan_out() is, from before
 * the group's creation (part of what a group costs) to the wait's end;
 * the destruction of the resolved group comes after the clock, as
 * fan_out()'s release of its futures does. */
static double
group_all(crew_pool *pool, long n)
{
    crew_group *group;
    uint64_t start;

    results = bench_alloc_u64(n);
    start = bench_now_ns();
    check(crew_group_create(&group, pool, NULL), "crew_group_create");
    for (long i = 0; i < n; i++)
        check(crew_group_submit(group, tiny_task, (void *)(intptr_t)i, NULL,
                                0, NULL, NULL),
              "crew_group_submit");
    check(crew_group_wait(group, NULL), "crew_group_wait");
    double seconds = bench_seconds_since(start);
    crew_group_destroy(group);
    return seconds;
}

/* sem-limit4, group-limit4: task i writes bench_limit_work(i) to
 * results[i]. */
static int
limit_task(crew_task *task, void *arg)
{
    long i = (long)(intptr_t)arg;

    (void)task;
    results[i] = bench_limit_work((uint64_t)i);
    return 0;
}

/* sem-limit4: Go's errgroup.SetLimit by hand on the same pool. A
 * counting semaphore of BENCH_LIMIT permits, a mutex and a condition
 * variable (the simplest correct one; only the main thread ever waits
 * on it, so one signal a release is enough): the main thread takes a
 * permit before each crew_submit, the task gives it back as its last
 * step, so at most BENCH_LIMIT tasks are submitted and unfinished at
 * once; then crew_wait_all on their futures. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned permits, waiting;
} sem = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, BENCH_LIMIT, 0};

static void
sem_acquire(void)
{
    bench_check(pthread_mutex_lock(&sem.lock), "pthread_mutex_lock");
    while (sem.permits == 0) {
        sem.waiting++;
        bench_check(pthread_cond_wait(&sem.cond, &sem.lock),
                    "pthread_cond_wait");
        sem.waiting--;
    }
    sem.permits--;
    bench_check(pthread_mutex_unlock(&sem.lock), "pthread_mutex_unlock");
}

static void
sem_release(void)
{
    bench_check(pthread_mutex_lock(&sem.lock), "pthread_mutex_lock");
    sem.permits++;
    if (sem.waiting > 0)
        bench_check(pthread_cond_signal(&sem.cond), "pthread_cond_signal");
    bench_check(pthread_mutex_unlock(&sem.lock), "pthread_mutex_unlock");
}

static int
sem_limit_task(crew_task *task, void *arg)
{
    limit_task(task, arg);
    sem_release();
    return 0;
}

static double
sem_limit(crew_pool *pool, long n)
{
    crew_future **futures = bench_calloc((size_t)n + 1, sizeof(*futures));
    uint64_t start;

    results = bench_alloc_u64(n);
    start = bench_now_ns();
    for (long i = 0; i < n; i++) {
        sem_acquire();
        check(crew_submit(pool, sem_limit_task, (void *)(intptr_t)i,
                          &futures[i]),
              "crew_submit");
    }
    check(crew_wait_all(futures, (size_t)n, NULL), "crew_wait_all");
    double seconds = bench_seconds_since(start);
    release_all(futures, n);
    free(futures);
    return seconds;
}

/* group-limit4: the same tasks as members of a group of limit
 * BENCH_LIMIT, no future asked for; timed as group_all() is. */
static double
group_limit(crew_pool *pool, long n)
{
    crew_group_options options = {.policy = CREW_GROUP_ALL,
                                  .limit = BENCH_LIMIT};
    crew_group *group;
    uint64_t start;

    results = bench_alloc_u64(n);
    start = bench_now_ns();
    check(crew_group_create(&group, pool, &options), "crew_group_create");
    for (long i = 0; i < n; i++)
        check(crew_group_submit(group, limit_task, (void *)(intptr_t)i, NULL,
                                0, NULL, NULL),
              "crew_group_submit");
    check(crew_group_wait(group, NULL), "crew_group_wait");
    double seconds = bench_seconds_since(start);
    crew_group_destroy(group);
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

/* fj-fib: fork-join without futures. Each call forks fib(n-1) with
 * crew_spawn, its frame and its argument on this call's stack, computes
 * fib(n-2) itself and joins with crew_sync; the same struct fib carries
 * the child's result back. */
static uint64_t fj_fib(crew_task *task, long n);

static int
fj_fib_task(crew_task *task, void *arg)
{
    struct fib *f = arg;

    f->result = fj_fib(task, f->n);
    return 0;
}

static uint64_t
fj_fib(crew_task *task, long n)
{
    struct fib child = {.n = n - 1};
    crew_frame frame;
    uint64_t other;

    if (n < 2)
        return (uint64_t)n;
    check(crew_spawn(task, &frame, fj_fib_task, &child), "crew_spawn");
    other = fj_fib(task, n - 2);
    check(crew_sync(task, &frame), "crew_sync");
    return child.result + other;
}

/* fj-nqueens: a call forks one call per safe column of its row, each
 * with its own board, then syncs them, latest first as crew_sync
 * requires. */
struct queens {
    int n, j;
    uint64_t count;
    struct bench_board board;
};

static int
queens_task(crew_task *task, void *arg)
{
    struct queens *q = arg;
    struct queens child[BENCH_QUEENS_MAX];
    crew_frame frame[BENCH_QUEENS_MAX];
    int k = 0;

    if (q->j == q->n) {
        q->count = 1;
        return 0;
    }
    for (int col = 0; col < q->n; col++) {
        if (!bench_queen_is_safe(&q->board, q->j, col))
            continue;
        child[k].n = q->n;
        child[k].j = q->j + 1;
        bench_place_queen(&child[k].board, &q->board, q->j, col);
        check(crew_spawn(task, &frame[k], queens_task, &child[k]),
              "crew_spawn");
        k++;
    }
    q->count = 0;
    while (k > 0) {
        k--;
        check(crew_sync(task, &frame[k]), "crew_sync");
        q->count += child[k].count;
    }
    return 0;
}

/* fj-uts-t1, fj-uts-t3: a call grows child i of its parent (the root
 * when parent is NULL) and counts the subtree under it. */
struct uts_call {
    const struct uts_tree *tree;
    const struct uts_node *parent;
    int i;
    uint64_t count;
};

static uint64_t uts_fork(crew_task *task, const struct uts_tree *tree,
                         const struct uts_node *node, int i, int n);

static int
uts_task(crew_task *task, void *arg)
{
    struct uts_call *c = arg;
    struct uts_node node;
    int n = uts_grow(c->tree, c->parent, c->i, &node);

    c->count = 1 + (n > 0 ? uts_fork(task, c->tree, &node, 0, n) : 0);
    return 0;
}

/* The nodes under children [i, n) of node: child i spawned, the rest
 * counted by recursing, the last made by a plain call. A node's children
 * are too many for an array on the stack (2,000 under T3's root), so
 * each spawn has a level of this recursion to hold its frame and call,
 * and the syncs come as the levels return, latest first. */
static uint64_t
uts_fork(crew_task *task, const struct uts_tree *tree,
         const struct uts_node *node, int i, int n)
{
    struct uts_call child = {.tree = tree, .parent = node, .i = i};
    crew_frame frame;
    uint64_t rest;

    if (i == n - 1) {
        uts_task(task, &child);
        return child.count;
    }
    check(crew_spawn(task, &frame, uts_task, &child), "crew_spawn");
    rest = uts_fork(task, tree, node, i + 1, n);
    check(crew_sync(task, &frame), "crew_sync");
    return child.count + rest;
}

/* Submit fn(arg) as the root task from this thread, outside the pool,
 * and wait for it: the fork-join workloads' seconds. */
static double
run_root(crew_pool *pool, crew_fn fn, void *arg)
{
    crew_future *future;
    uint64_t start = bench_now_ns();

    check(crew_submit(pool, fn, arg, &future), "crew_submit");
    check(crew_future_wait(future), "crew_future_wait");
    double seconds = bench_seconds_since(start);
    crew_future_release(future);
    return seconds;
}

/* pfor: one task per chunk of the uneven loop. */
static int
chunk_task(crew_task *task, void *arg)
{
    (void)task;
    bench_run_chunk(arg);
    return 0;
}

static double
pfor(crew_pool *pool, long n, unsigned threads, uint64_t *checksum)
{
    long grain = bench_pfor_grain(n, threads);
    long chunks = bench_count_chunks(n, grain);
    struct bench_chunk *c = bench_calloc((size_t)chunks + 1, sizeof(*c));
    crew_future **futures = bench_calloc((size_t)chunks + 1, sizeof(*futures));
    uint64_t start = bench_now_ns();

    for (long k = 0; k < chunks; k++) {
        bench_fill_chunk(&c[k], k, grain, n);
        check(crew_submit(pool, chunk_task, &c[k], &futures[k]),
              "crew_submit");
    }
    check(crew_wait_all(futures, (size_t)chunks, NULL), "crew_wait_all");
    double seconds = bench_seconds_since(start);
    *checksum = bench_sum_chunks(c, chunks);
    release_all(futures, chunks);
    free(futures);
    free(c);
    return seconds;
}

/* pfor-auto, pfor-grain: the same loop through crew_parallel_for, each
 * chunk adding its sum to one total (wrapping addition: any order gives
 * the same checksum as the chunks of pfor). */
struct pfor_loop {
    long n;
    _Atomic uint64_t total;
};

static int
pfor_range(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct pfor_loop *l = arg;

    (void)task;
    atomic_fetch_add_explicit(
        &l->total, bench_uneven_range((long)begin, (long)end, l->n),
        memory_order_relaxed);
    return 0;
}

static double
parallel_for(crew_pool *pool, long n, size_t grain, uint64_t *checksum)
{
    struct pfor_loop l = {.n = n};
    uint64_t start = bench_now_ns();

    check(crew_parallel_for(pool, 0, (size_t)n, grain, pfor_range, &l, NULL),
          "crew_parallel_for");
    double seconds = bench_seconds_since(start);
    *checksum = atomic_load(&l.total);
    return seconds;
}

/* pfor-reduce: the pfor loop through crew_parallel_reduce, grain chosen
 * by crew: each chunk's sum into its partial, the partials added
 * (wrapping addition: the same checksum as pfor's). */
static int
uneven_partial(crew_task *task, size_t begin, size_t end, void *partial,
               void *arg)
{
    (void)task;
    *(uint64_t *)partial +=
        bench_uneven_range((long)begin, (long)end, *(const long *)arg);
    return 0;
}

static void
add_u64(void *into, const void *from, void *arg)
{
    (void)arg;
    *(uint64_t *)into += *(const uint64_t *)from;
}

static double
parallel_reduce_uneven(crew_pool *pool, long n, uint64_t *checksum)
{
    uint64_t sum = 0, start = bench_now_ns();

    check(crew_parallel_reduce(pool, 0, (size_t)n, 0, uneven_partial, add_u64,
                               &n, &sum, sizeof(sum), NULL),
          "crew_parallel_reduce");
    double seconds = bench_seconds_since(start);
    *checksum = sum;
    return seconds;
}

/* reduce, reduce-grain: the sum through crew_parallel_reduce, each chunk
 * added in order into its partial by the shared bench_reduce_range(), the
 * partials added together; the array is the call's argument. reduce lets
 * crew choose the grain; reduce-grain fixes pfor's, the form whose result
 * keeps its bytes whatever the threads and timing (here every order
 * gives the same sum anyway). As in pfor-auto, the pool has THREADS
 * workers and the calling thread helps them. */
static int
reduce_range(crew_task *task, size_t begin, size_t end, void *partial,
             void *arg)
{
    (void)task;
    *(double *)partial += bench_reduce_range(arg, (long)begin, (long)end);
    return 0;
}

static void
add_double(void *into, const void *from, void *arg)
{
    (void)arg;
    *(double *)into += *(const double *)from;
}

static double
parallel_reduce(crew_pool *pool, long n, size_t grain, uint64_t *checksum)
{
    double *x = bench_reduce_array(n);
    double sum = 0; /* the identity of add_double */
    uint64_t start = bench_now_ns();

    check(crew_parallel_reduce(pool, 0, (size_t)n, grain, reduce_range,
                               add_double, x, &sum, sizeof(sum), NULL),
          "crew_parallel_reduce");
    double seconds = bench_seconds_since(start);
    *checksum = bench_reduce_checksum(sum);
    free(x);
    return seconds;
}

/* pingpong: a round trip is a submit and a wait for the future; its
 * release is no part of the round trip, so it comes after the timing. */
struct round_state {
    crew_pool *pool;
    crew_future *future;
};

static void
round_trip(void *context, long i)
{
    struct round_state *r = context;

    check(crew_submit(r->pool, tiny_task, (void *)(intptr_t)i, &r->future),
          "crew_submit");
    check(crew_future_wait(r->future), "crew_future_wait");
}

static void
round_release(void *context, long i)
{
    struct round_state *r = context;

    (void)i;
    crew_future_release(r->future);
}

static double
ping_pong(crew_pool *pool, long n, uint64_t *checksum)
{
    struct round_state r = {.pool = pool};

    return bench_ping_pong_results(n, &results, round_trip, round_release, &r,
                                   checksum);
}

/* memory: workers held on a gate while n tasks queue up. */
static struct bench_gate gate = BENCH_GATE_INITIALIZER;

static int
gate_task(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    bench_wait_at_gate(&gate);
    return 0;
}

static double
memory(crew_pool *pool, unsigned threads, long n, uint64_t *checksum)
{
    crew_future **gates = bench_calloc(threads, sizeof(*gates));
    crew_future **futures = bench_calloc((size_t)n + 1, sizeof(*futures));

    results = bench_alloc_u64(n);
    bench_make_resident(futures, ((size_t)n + 1) * sizeof(*futures));
    bench_make_resident(results, ((size_t)n + 1) * sizeof(*results));
    for (unsigned t = 0; t < threads; t++)
        check(crew_submit(pool, gate_task, NULL, &gates[t]), "crew_submit");
    /* Every worker held, as the peers' programs wait for theirs: none
     * can take a task while the queue is measured. */
    bench_await_gate(&gate, threads);
    long before = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        check(crew_submit(pool, tiny_task, (void *)(intptr_t)i, &futures[i]),
              "crew_submit");
    long after = bench_rss_bytes();
    bench_open_gate(&gate);
    check(crew_wait_all(futures, (size_t)n, NULL), "crew_wait_all");
    check(crew_wait_all(gates, threads, NULL), "crew_wait_all");
    *checksum = bench_sum(results, n);
    release_all(futures, n);
    release_all(gates, threads);
    free(futures);
    free(gates);
    return bench_divide_growth(before, after, n);
}

int
main(int argc, char **argv)
{
    struct bench_args a = bench_parse(argc, argv);
    crew_pool *pool;
    crew_error *error = NULL;
    uint64_t checksum = 0;
    double metric;

    if (!bench_is(&a, "fanout") && !bench_is(&a, "fanout-each") &&
        !bench_is(&a, "fanout-traced") &&
        !bench_is(&a, "group-all") && !bench_is(&a, "sem-limit4") &&
        !bench_is(&a, "group-limit4") &&
        !bench_is(&a, "fib") && !bench_is(&a, "fj-fib") &&
        !bench_is(&a, "fj-nqueens") && !bench_is(&a, "fj-uts-t1") &&
        !bench_is(&a, "fj-uts-t3") && !bench_is(&a, "pfor") &&
        !bench_is(&a, "pfor-auto") && !bench_is(&a, "pfor-grain") &&
        !bench_is(&a, "pfor-reduce") && !bench_is(&a, "reduce") &&
        !bench_is(&a, "reduce-grain") && !bench_is(&a, "pingpong") &&
        !bench_is(&a, "errors") && !bench_is(&a, "idle") &&
        !bench_is(&a, "memory"))
        return bench_unsupported(&a, "crew");
    pool = make_pool(a.threads);
    if (bench_is(&a, "fanout")) {
        metric = fan_out(pool, tiny_task, a.size, NULL);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "fanout-traced")) {
        /* The fan-out while a trace records, each worker keeping its
         * newest 65,536 records (2.5 MiB): the cost of recording. */
        check(crew_trace_start(pool, 65536), "crew_trace_start");
        metric = fan_out(pool, tiny_task, a.size, NULL);
        check(crew_trace_stop(pool, NULL), "crew_trace_stop");
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "fanout-each")) {
        metric = fan_out_each(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "group-all")) {
        metric = group_all(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "sem-limit4")) {
        metric = sem_limit(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "group-limit4")) {
        metric = group_limit(pool, a.size);
        checksum = bench_sum(results, a.size);
    } else if (bench_is(&a, "errors")) {
        metric = fan_out(pool, failing_task, a.size, &error);
        checksum = bench_sum(results, a.size) +
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
    } else if (bench_is(&a, "fj-fib")) {
        struct fib root = {.n = a.size};
        metric = run_root(pool, fj_fib_task, &root);
        checksum = root.result;
    } else if (bench_is(&a, "fj-nqueens")) {
        struct queens root = {.n = bench_queens_n(a.size)};
        metric = run_root(pool, queens_task, &root);
        checksum = root.count;
    } else if (bench_is(&a, "fj-uts-t1") || bench_is(&a, "fj-uts-t3")) {
        struct uts_tree tree = uts_tree_of(a.workload, a.size);
        struct uts_call root = {.tree = &tree};
        metric = run_root(pool, uts_task, &root);
        checksum = root.count;
    } else if (bench_is(&a, "pfor")) {
        metric = pfor(pool, a.size, a.threads, &checksum);
    } else if (bench_is(&a, "pfor-auto")) {
        metric = parallel_for(pool, a.size, 0, &checksum);
    } else if (bench_is(&a, "pfor-grain")) {
        metric = parallel_for(pool, a.size,
                              (size_t)bench_pfor_grain(a.size, a.threads),
                              &checksum);
    } else if (bench_is(&a, "pfor-reduce")) {
        metric = parallel_reduce_uneven(pool, a.size, &checksum);
    } else if (bench_is(&a, "reduce")) {
        metric = parallel_reduce(pool, a.size, 0, &checksum);
    } else if (bench_is(&a, "reduce-grain")) {
        metric = parallel_reduce(pool, a.size,
                                 (size_t)bench_pfor_grain(a.size, a.threads),
                                 &checksum);
    } else if (bench_is(&a, "pingpong")) {
        metric = ping_pong(pool, a.size, &checksum);
    } else if (bench_is(&a, "idle")) {
        fan_out(pool, tiny_task, 1000, NULL);
        checksum = bench_sum(results, 1000);
        metric = bench_idle_cpu_percent(a.size);
    } else {
        metric = memory(pool, a.threads, a.size, &checksum);
    }
    crew_pool_destroy(pool);
    free(results);
    bench_report(metric, checksum);
    return 0;
}
