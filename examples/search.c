/*
 * search: a fail-fast join that stops a parallel search at its first failure.
 *
 *     search [FAILING_TASK]
 *
 * Looks through [0, 2^24) for the values whose hash has at least 20 leading
 * zero bits, as a proof of work does, in 16 ranges, one task per range, and
 * prints how many there are and which hashes lowest. The tasks are joined
 * with crew_when_all_ex() and CREW_FAIL_FAST | CREW_CANCEL_REST: the join
 * fails as soon as one task fails, and the tasks still queued or running are
 * asked to stop. Each task looks at crew_task_cancelled() between steps of
 * 4096 values and returns ECANCELED when asked.
 *
 * FAILING_TASK (0 to 15) poisons a value a quarter of the way into that
 * task's range, a stand-in for a bad input record: the task fails there with
 * EIO. The program reports the failure from the join's aggregate error, then
 * waits for every task, since the tasks still running use their ranges, and
 * counts the tasks that finished, failed, or were cancelled (while running,
 * or before they started) and the steps done out of the whole search; last,
 * the pool's counters, which must add up.
 *
 * Exit status: 0 when the outcome is the one asked for: every task
 * succeeded; or exactly the task asked for failed, at its position, with its
 * message, and the search stopped (if any task had not finished when the
 * join failed, some task was cancelled); 1 otherwise; 2 on a usage error.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASKS      16
#define SPAN       (UINT64_C(1) << 20) /* values in a task's range */
#define STEP       4096                /* values between two cancel checks */
#define ZERO_BITS  20
#define HASH_LIMIT (UINT64_C(1) << (64 - ZERO_BITS)) /* below: a hit */
#define NO_POISON  UINT64_MAX

/* Written by main() before its task is submitted, then by the task alone;
 * main() reads the results once crew_wait_all() has seen the task resolve. */
struct range {
    uint64_t lo;     /* first value */
    uint64_t hi;     /* one past the last */
    uint64_t poison; /* the value the task fails at, or NO_POISON */
    bool started;    /* the task began: it was not cancelled in its queue */
    size_t steps;    /* steps of STEP values done */
    size_t hits;     /* values whose hash is below HASH_LIMIT */
    uint64_t best;   /* the value with the lowest hash, once steps > 0 */
    uint64_t best_hash;
};

/* splitmix64's finalizer: a bijection of 64-bit values. */
static uint64_t
mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Iterated, so that a value costs some tens of nanoseconds: a proof of work
 * wants its hash slow. */
static uint64_t
slow_hash(uint64_t x)
{
    for (int i = 0; i < 8; i++)
        x = mix(x);
    return x;
}

static int
leading_zero_bits(uint64_t x)
{
    int n = 0;

    for (uint64_t bit = UINT64_C(1) << 63; bit != 0 && (x & bit) == 0;
         bit >>= 1)
        n++;
    return n;
}

static int
search_range(crew_task *task, void *arg)
{
    struct range *r = arg;

    r->started = true;
    r->best_hash = UINT64_MAX;
    for (uint64_t x = r->lo; x < r->hi; x += STEP) {
        if (crew_task_cancelled(task))
            return ECANCELED;
        if (r->poison >= x && r->poison - x < STEP)
            return crew_task_fail(task, EIO, "poisoned value at 0x%016" PRIx64,
                                  r->poison);
        for (uint64_t v = x; v < x + STEP; v++) {
            uint64_t h = slow_hash(v);

            r->hits += h < HASH_LIMIT;
            if (h < r->best_hash) {
                r->best = v;
                r->best_hash = h;
            }
        }
        r->steps++;
    }
    return 0;
}

/* What became of the tasks, once every one has resolved. */
struct tally {
    size_t finished;  /* succeeded: searched their whole range */
    size_t failed;    /* failed */
    size_t stopped;   /* cancelled while running */
    size_t unstarted; /* cancelled in their queue */
    size_t steps;     /* steps done, out of TASKS * SPAN / STEP */
};

static struct tally
tally(crew_future *const *futures, const struct range *ranges)
{
    struct tally t = {0};

    for (size_t i = 0; i < TASKS; i++) {
        switch (crew_future_state(futures[i])) {
        case CREW_SUCCEEDED:
            t.finished++;
            break;
        case CREW_FAILED:
            t.failed++;
            break;
        default:
            if (ranges[i].started)
                t.stopped++;
            else
                t.unstarted++;
            break;
        }
        t.steps += ranges[i].steps;
    }
    return t;
}

static void
print_result(const struct range *ranges)
{
    const struct range *best = &ranges[0];
    size_t hits = 0;

    for (size_t i = 0; i < TASKS; i++) {
        hits += ranges[i].hits;
        if (ranges[i].best_hash < best->best_hash)
            best = &ranges[i];
    }
    printf("found %zu values whose hash has at least %d leading zero bits\n",
           hits, ZERO_BITS);
    printf("lowest: hash(0x%016" PRIx64 ") = 0x%016" PRIx64
           " (%d leading zero bits)\n",
           best->best, best->best_hash, leading_zero_bits(best->best_hash));
}

/* Prints the one failure a fail-fast join holds; true if it is the failure
 * of task `failing`, with the message that task gives. */
static bool
report_failure(const crew_error *error, const struct range *ranges,
               size_t failing)
{
    size_t position = TASKS;
    const crew_error *inner = crew_error_inner(error, 0, &position);
    char expected[64];
    int len;

    if (inner == NULL) {
        fprintf(stderr, "search: the join failed with no failure: %s\n",
                crew_error_message(error));
        return false;
    }
    printf("search failed fast: task %zu: %s\n", position,
           crew_error_message(inner));
    if (failing == TASKS)
        return false;
    len = snprintf(expected, sizeof(expected),
                   "poisoned value at 0x%016" PRIx64, ranges[failing].poison);
    return len > 0 && (size_t)len < sizeof(expected) &&
           crew_error_count(error) == 1 && position == failing &&
           crew_error_code(inner) == EIO &&
           strcmp(crew_error_message(inner), expected) == 0;
}

/* Reads the pool's counters once it is shut down, when they must add up,
 * and checks them against what became of the tasks. */
static bool
report_pool(const crew_pool *pool, const struct tally *t)
{
    crew_pool_stats s;
    int err = crew_pool_stats_get(pool, &s);

    if (err != 0) {
        fprintf(stderr, "search: crew_pool_stats_get: %s\n",
                crew_strerror(err));
        return false;
    }
    printf("pool: %" PRIu64 " submitted = %" PRIu64 " succeeded + %" PRIu64
           " failed + %" PRIu64 " cancelled\n",
           s.submitted, s.succeeded, s.failed, s.cancelled);
    if (s.submitted == TASKS &&
        s.submitted == s.succeeded + s.failed + s.cancelled &&
        s.succeeded == t->finished && s.failed == t->failed &&
        s.cancelled == t->stopped + t->unstarted)
        return true;
    fprintf(stderr, "search: the pool's counters do not add up\n");
    return false;
}

static bool
parse(int argc, char **argv, size_t *failing)
{
    char *end;
    unsigned long i;

    *failing = TASKS; /* none */
    if (argc == 1)
        return true;
    if (argc != 2)
        return false;
    errno = 0;
    i = strtoul(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || i >= TASKS)
        return false;
    *failing = i;
    return true;
}

int
main(int argc, char **argv)
{
    static struct range ranges[TASKS];
    crew_future *futures[TASKS];
    crew_future *join = NULL;
    crew_pool *pool;
    struct tally t;
    size_t failing, unfinished = 0, n = 0;
    bool expected;
    int err, status = EXIT_FAILURE;

    if (!parse(argc, argv, &failing)) {
        fprintf(stderr, "usage: search [FAILING_TASK]  (0 to %d)\n", TASKS - 1);
        return 2;
    }
    for (size_t i = 0; i < TASKS; i++) {
        ranges[i].lo = i * SPAN;
        ranges[i].hi = (i + 1) * SPAN;
        ranges[i].poison = i == failing ? i * SPAN + SPAN / 4 : NO_POISON;
    }

    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "search: crew_pool_create: %s\n", crew_strerror(err));
        return EXIT_FAILURE;
    }
    printf("search: %d tasks over [0, 0x%" PRIx64 "), threads: %u\n", TASKS,
           TASKS * SPAN, crew_pool_threads(pool));
    for (n = 0; n < TASKS; n++) {
        err = crew_submit(pool, search_range, &ranges[n], &futures[n]);
        if (err != 0) {
            fprintf(stderr, "search: crew_submit: %s\n", crew_strerror(err));
            goto out_release;
        }
    }
    err = crew_when_all_ex(futures, TASKS, CREW_FAIL_FAST | CREW_CANCEL_REST,
                           &join);
    if (err != 0) {
        fprintf(stderr, "search: crew_when_all_ex: %s\n", crew_strerror(err));
        goto out_release;
    }

    err = crew_future_wait(join);
    if (err != 0 && err != CREW_EAGGREGATE) {
        fprintf(stderr, "search: crew_future_wait: %s\n", crew_strerror(err));
        goto out_release;
    }
    /* Counted now, to tell later whether the search had anything left to
     * stop: the join has resolved, and each task not yet finished has been
     * asked to stop, so it is cancelled in its queue already or will see
     * the request before its next step. */
    for (size_t i = 0; i < TASKS; i++)
        unfinished +=
            i != failing && crew_future_state(futures[i]) != CREW_SUCCEEDED;
    if (err == 0) {
        print_result(ranges);
        expected = failing == TASKS;
    } else {
        expected = report_failure(crew_future_error(join), ranges, failing);
    }

    /* The join does not wait for the tasks it asked to stop, and they still
     * use their ranges: wait for every one before reading them. */
    err = crew_wait_all(futures, TASKS, NULL);
    if (err != 0 && err != CREW_EAGGREGATE) {
        fprintf(stderr, "search: crew_wait_all: %s\n", crew_strerror(err));
        goto out_release;
    }
    t = tally(futures, ranges);
    printf("tasks: %zu finished, %zu failed, %zu cancelled (%zu while running, "
           "%zu before starting)\n",
           t.finished, t.failed, t.stopped + t.unstarted, t.stopped,
           t.unstarted);
    printf("steps: %zu of %zu (%zu%%)\n", t.steps,
           TASKS * (size_t)(SPAN / STEP),
           100 * t.steps / (TASKS * (size_t)(SPAN / STEP)));
    if (failing != TASKS && unfinished > 0 && t.stopped + t.unstarted == 0) {
        fprintf(stderr,
                "search: %zu tasks had not finished at the failure, "
                "and none was cancelled\n",
                unfinished);
        expected = false;
    }

    /* A task cancelled in its queue is counted once a worker takes it out:
     * the counters add up once the pool is shut down. */
    err = crew_pool_shutdown(pool, CREW_DRAIN);
    if (err != 0) {
        fprintf(stderr, "search: crew_pool_shutdown: %s\n", crew_strerror(err));
        goto out_release;
    }
    if (!report_pool(pool, &t))
        goto out_release;
    if (expected)
        status = EXIT_SUCCESS;
    else
        fprintf(stderr, "search: not the outcome asked for\n");

out_release:
    crew_future_release(join);
    while (n > 0)
        crew_future_release(futures[--n]);
    /* Drains: no task may still use ranges once main() returns. */
    crew_pool_destroy(pool);
    return status;
}
