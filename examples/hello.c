/* hello: five squares on two workers, one of them failing; each result
 * or error printed in order. Every call is checked: the exit status is 0
 * when the batch ran and its failure was printed, else 1. */
#include <crew.h>
#include <errno.h>
#include <stdio.h>

/* Task i of the batch; arg, shared by the five, is the unlucky number. */
static int
square(crew_task *task, size_t i, void *arg)
{
    if (i == *(const size_t *)arg)
        return crew_task_fail(task, EDOM, "%zu is unlucky", i);
    /* The int is copied into the future: no cast, no malloc. */
    return crew_task_return_copy(task, &(int){(int)(i * i)}, sizeof(int));
}

int
main(void)
{
    crew_future *f[5] = {NULL};
    crew_pool *pool = NULL;
    size_t unlucky = 3; /* read by the tasks: alive until they have run */
    int err = crew_pool_create(&pool, &(crew_pool_options){.threads = 2});

    if (err == 0) /* one allocation and one hand-over for the five */
        err = crew_submit_each(pool, 5, square, &unlucky, NULL, 0, f);
    if (err == 0) /* CREW_EAGGREGATE: some failed, as expected */
        err = crew_wait_all(f, 5, NULL);
    for (size_t i = 0; i < 5 && err == CREW_EAGGREGATE; i++)
        if (crew_future_state(f[i]) == CREW_SUCCEEDED)
            printf("%zu squared is %d\n", i, *(int *)crew_future_result(f[i]));
        else if (crew_error_print(crew_future_error(f[i]), stdout) != 0)
            err = EIO;
    crew_future_release_all(f, 5);
    crew_pool_destroy(pool);
    return err == CREW_EAGGREGATE ? 0 : 1;
}
