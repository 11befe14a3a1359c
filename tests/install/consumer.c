/*
 * A program outside the crew tree, built against an installed crew: runs
 * one task and joins it. Exit status 0 when the task ran and its value
 * came back.
 */
#include <crew.h>

#include <stdint.h>
#include <stdio.h>

static int
triple(crew_task *task, void *arg)
{
    crew_task_return(task, (void *)((intptr_t)arg * 3), NULL);
    return 0;
}

int
main(void)
{
    crew_pool *pool;
    crew_future *future;
    int err = crew_pool_create(&pool, NULL);

    if (err != 0) {
        fprintf(stderr, "consumer: %s\n", crew_strerror(err));
        return 1;
    }
    err = crew_submit(pool, triple, (void *)(intptr_t)14, &future);
    if (err == 0) {
        err = crew_future_wait(future);
        if (err == 0 && (intptr_t)crew_future_result(future) != 42)
            err = -1;
        crew_future_release(future);
    }
    crew_pool_destroy(pool);
    if (err != 0) {
        fprintf(stderr, "consumer: the task did not return 42\n");
        return 1;
    }
    printf("consumer: crew %s, 14 * 3 = 42\n", crew_version());
    return 0;
}
