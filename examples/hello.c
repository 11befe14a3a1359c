/* hello: square numbers on a pool, one of them failing, and join them. */
#include <crew.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#define N 5

static int
square(crew_task *task, void *arg)
{
    int n = (int)(intptr_t)arg, squared = n * n;

    if (n == 3)
        return crew_task_fail(task, EDOM, "%d is unlucky", n);
    /* An int is copied into the future: no cast, no malloc. */
    return crew_task_return_copy(task, &squared, sizeof(squared));
}

int
main(void)
{
    crew_pool *pool;
    crew_future *futures[N];
    crew_error *error = NULL;
    size_t n = 0;
    int err = crew_pool_create(&pool, NULL);

    if (err != 0) {
        fprintf(stderr, "hello: %s\n", crew_strerror(err));
        return 1;
    }
    while (n < N && err == 0) {
        err = crew_submit(pool, square, (void *)(intptr_t)n, &futures[n]);
        n += err == 0;
    }
    if (err == 0)
        err = crew_wait_all(futures, n, &error);
    for (size_t i = 0; i < n; i++) {
        if (crew_future_state(futures[i]) == CREW_SUCCEEDED)
            printf("%zu squared is %d\n", i,
                   *(const int *)crew_future_result(futures[i]));
    }
    if (error != NULL && crew_error_print(error, stdout) != 0)
        err = EIO;
    crew_error_release(error);
    crew_future_release_all(futures, n);
    crew_pool_destroy(pool);
    /* One failure, at position 3, is what this program expects. */
    return err == CREW_EAGGREGATE ? 0 : 1;
}
