/*
 * demo: fan CPU-bound work out over a pool and collect every failure.
 *
 * Counts the primes in 64 ranges of numbers, one task per range, all 64
 * submitted by one crew_submit_each() call (task i gets range i). A few
 * ranges are deliberately given backwards, and their tasks fail with a
 * message of their own. crew_wait_all() joins every task and hands back one
 * aggregate error that holds each failure with the position of its input.
 *
 * Exit status: 0 when exactly the backward ranges failed, 1 otherwise.
 */
#include <crew.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define RANGES 64
#define WIDTH  10000

struct range {
    unsigned long lo;     /* first number to test */
    unsigned long hi;     /* one past the last */
    unsigned long primes; /* written by the task, read after the join */
};

static bool
is_backwards(size_t i)
{
    return i % 20 == 7; /* ranges 7, 27 and 47 */
}

static bool
is_prime(unsigned long n)
{
    for (unsigned long d = 2; d * d <= n; d++) {
        if (n % d == 0)
            return false;
    }
    return n >= 2;
}

static int
count_primes(crew_task *task, size_t i, void *ranges)
{
    struct range *r = (struct range *)ranges + i;

    if (r->lo > r->hi)
        return crew_task_fail(task, EDOM, "range [%lu, %lu) runs backwards",
                              r->lo, r->hi);
    for (unsigned long n = r->lo; n < r->hi; n++)
        r->primes += is_prime(n);
    return 0;
}

/* True when the failures are exactly the backward ranges, in order. */
static bool
failed_as_designed(const crew_error *error)
{
    size_t k = 0, input;

    for (size_t i = 0; i < RANGES; i++) {
        if (!is_backwards(i))
            continue;
        const crew_error *inner = crew_error_inner(error, k++, &input);
        if (inner == NULL || input != i || crew_error_code(inner) != EDOM)
            return false;
    }
    return k == crew_error_count(error);
}

int
main(void)
{
    static struct range ranges[RANGES];
    crew_future *futures[RANGES] = {NULL};
    crew_error *error = NULL;
    crew_pool *pool;
    int err, status = EXIT_FAILURE;

    for (size_t i = 0; i < RANGES; i++) {
        ranges[i].lo = is_backwards(i) ? (i + 1) * WIDTH : i * WIDTH;
        ranges[i].hi = is_backwards(i) ? i * WIDTH : (i + 1) * WIDTH;
    }

    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "demo: crew_pool_create: %s\n", crew_strerror(err));
        return EXIT_FAILURE;
    }
    /* All or nothing: on error no task runs and every slot is NULL. */
    err = crew_submit_each(pool, RANGES, count_primes, ranges, NULL, 0,
                           futures);
    if (err != 0) {
        fprintf(stderr, "demo: crew_submit_each: %s\n", crew_strerror(err));
        goto out_release;
    }

    /* Waits for every task, not just until the first failure. */
    err = crew_wait_all(futures, RANGES, &error);
    if (err != 0 && err != CREW_EAGGREGATE) {
        fprintf(stderr, "demo: crew_wait_all: %s\n", crew_strerror(err));
        goto out_release;
    }
    for (size_t i = 0; i < RANGES; i++) {
        if (crew_future_state(futures[i]) == CREW_SUCCEEDED)
            printf("range %2zu  [%6lu, %6lu)  %4lu primes\n", i, ranges[i].lo,
                   ranges[i].hi, ranges[i].primes);
    }
    if (error != NULL &&
        (putchar('\n') == EOF || crew_error_print(error, stdout) != 0)) {
        fprintf(stderr, "demo: the report could not be printed\n");
        goto out_release;
    }
    if (error != NULL && failed_as_designed(error))
        status = EXIT_SUCCESS;
    else
        fprintf(stderr, "demo: the wrong ranges failed\n");

out_release:
    crew_error_release(error);
    crew_future_release_all(futures, RANGES);
    crew_pool_destroy(pool);
    return status;
}
