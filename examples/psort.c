/*
 * psort: a parallel quicksort of integers with crew_spawn / crew_sync,
 * checked against the C library's qsort.
 *
 *     psort [COUNT [THREADS]]     (default 10,000,000 on a thread a CPU)
 *
 * Each call partitions its range around a median of three, spawns the
 * sort of the left part, sorts the right part itself, and syncs: a fork
 * costs a frame on the stack, no allocation. Ranges under CUTOFF items are
 * sorted by qsort in the call. Prints both times and the speed-up; the
 * exit status is 0 when the two sorts agree, 1 otherwise.
 */
#include <crew.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CUTOFF 4096

struct range {
    int *base;
    size_t n;
};

static int
compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

static void
swap(int *a, int *b)
{
    int t = *a;
    *a = *b;
    *b = t;
}

/* Hoare partition around the median of the first, middle and last items:
 * returns k with every item of [0, k) <= every item of [k, n), 0 < k < n. */
static size_t
partition(int *a, size_t n)
{
    size_t i = 0, j = n - 1, mid = n / 2;

    if (a[mid] < a[0])
        swap(&a[mid], &a[0]);
    if (a[j] < a[0])
        swap(&a[j], &a[0]);
    if (a[j] < a[mid])
        swap(&a[j], &a[mid]);
    int pivot = a[mid];
    for (;;) {
        while (a[i] < pivot)
            i++;
        while (a[j] > pivot)
            j--;
        if (i >= j)
            return j + 1;
        swap(&a[i++], &a[j--]);
    }
}

static int
sort(crew_task *task, void *arg)
{
    struct range *r = arg;

    while (r->n >= CUTOFF) {
        size_t k = partition(r->base, r->n);
        struct range left = {r->base, k};
        crew_frame frame;

        crew_spawn(task, &frame, sort, &left);
        *r = (struct range){r->base + k, r->n - k};
        sort(task, r);
        return crew_sync(task, &frame);
    }
    qsort(r->base, r->n, sizeof(int), compare_ints);
    return 0;
}

static double
seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

int
main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000;
    crew_pool_options options = {
        .threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0};
    int *data = malloc(n * sizeof(int)), *check = malloc(n * sizeof(int));
    struct range all = {data, n};
    crew_pool *pool = NULL;
    crew_future *future = NULL;
    struct timespec start;
    double parallel, serial;
    uint32_t x = 2463534242u;
    int err;

    if (n == 0 || data == NULL || check == NULL) {
        fprintf(stderr, "psort: %s\n",
                n == 0 ? "usage: psort [COUNT [THREADS]]" : "out of memory");
        free(data);
        free(check);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = check[i] = (int)(x >> 1);
    }
    err = crew_pool_create(&pool, &options);
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (err == 0)
        err = crew_submit(pool, sort, &all, &future);
    if (err == 0)
        err = crew_future_wait(future);
    parallel = seconds_since(&start);
    clock_gettime(CLOCK_MONOTONIC, &start);
    qsort(check, n, sizeof(int), compare_ints);
    serial = seconds_since(&start);
    if (err == 0 && memcmp(data, check, n * sizeof(int)) != 0)
        err = EPROTO;
    if (err == 0)
        printf("%zu integers: crew %.3f s on %u threads, qsort %.3f s: "
               "%.2fx\n",
               n, parallel, crew_pool_threads(pool), serial,
               serial / parallel);
    else
        fprintf(stderr, "psort: %s\n", err == EPROTO
                                           ? "the sorts differ"
                                           : crew_strerror(err));
    crew_future_release(future);
    crew_pool_destroy(pool);
    free(data);
    free(check);
    return err == 0 ? 0 : 1;
}
