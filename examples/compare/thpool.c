/*
 * compare/thpool: the same job as examples/hello.c (five squares, number 3
 * failing, each outcome printed in order), written with C-Thread-Pool
 * (Debian cthreadpool-dev), for the line count in the README. Its tasks
 * return nothing and cannot fail: each carries its result or its error in a
 * struct of its own, and the program reads them after thpool_wait.
 */
#include <thpool.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define N 5

struct job {
    int n;
    int result;
    int error;              /* 0, or an errno value */
    char message[64];
};

static void
square(void *arg)
{
    struct job *job = arg;

    if (job->n == 3) {
        job->error = EDOM;
        snprintf(job->message, sizeof(job->message), "%d is unlucky", job->n);
        return;
    }
    job->result = job->n * job->n;
}

int
main(void)
{
    struct job jobs[N];
    threadpool pool = thpool_init(2);
    size_t n;
    int failures = 0, failed = -1;

    if (pool == NULL) {
        fprintf(stderr, "thpool: thpool_init failed\n");
        return 1;
    }
    for (n = 0; n < N; n++) {
        jobs[n] = (struct job){ .n = (int)n };
        if (thpool_add_work(pool, square, &jobs[n]) != 0) {
            fprintf(stderr, "thpool: thpool_add_work failed\n");
            break;
        }
    }
    /* Waits for the queue to empty and every worker to be idle. */
    thpool_wait(pool);
    thpool_destroy(pool);
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].error == 0) {
            printf("%zu squared is %d\n", i, jobs[i].result);
            continue;
        }
        printf("%zu failed: error %d (%s): %s\n", i, jobs[i].error,
               strerror(jobs[i].error), jobs[i].message);
        failures++;
        failed = (int)i;
    }
    if (fflush(stdout) != 0)
        return 1;
    /* One failure, at position 3, is what this program expects. */
    return n == N && failures == 1 && failed == 3 ? 0 : 1;
}
