/*
 * callbacks: join a batch of jobs without blocking on it, as a server would.
 *
 *     callbacks [JOB...]
 *
 * Submits 8 jobs, joins them with crew_when_all() and registers a callback
 * on the join. The callback runs on the thread that resolves the join: a
 * worker, or the main thread itself, at once, if every job has already
 * finished by the time it is registered. It touches none of the main
 * thread's state: it posts the join, with a reference of its own, through a
 * pipe that the main thread watches with poll(), as an event loop watches
 * its sockets. The main thread never calls a crew wait function.
 *
 * The jobs named on the command line (0 to 7) fail deliberately.
 *
 * Exit status: 0 when the outcome is the one asked for (every job succeeded,
 * or exactly the named ones failed), 1 otherwise, 2 on a usage error.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define JOBS 8

struct job {
    uint64_t n; /* the job sums 1..n */
    bool fail;  /* whether it fails instead */
};

static int
sum_job(crew_task *task, void *arg)
{
    const struct job *job = arg;
    uint64_t sum = 0;

    if (job->fail)
        return crew_task_fail(task, EINVAL, "asked to fail (n = %" PRIu64 ")",
                              job->n);
    for (uint64_t k = 1; k <= job->n; k++)
        sum += k;
    /* Eight bytes, kept inside the future: nothing to allocate or free. */
    return crew_task_return_copy(task, &sum, sizeof(sum));
}

/*
 * Runs once the join has resolved, on the thread that resolved it. The
 * write end of the pipe is this callback's: it closes it after posting, so
 * that the main thread sees the end of the pipe even if the post failed.
 */
static void
on_joined(crew_future *join, void *user)
{
    int fd = *(const int *)user;
    crew_future *post = crew_future_retain(join);
    ssize_t n;

    do
        n = write(fd, &post, sizeof(post));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(post))
        crew_future_release(post);
    close(fd);
}

/* The main thread's loop, reduced to its one descriptor. */
static crew_future *
receive(int fd)
{
    struct pollfd watch = {.fd = fd, .events = POLLIN};
    crew_future *join;
    ssize_t n;

    for (;;) {
        if (poll(&watch, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("callbacks: poll");
            return NULL;
        }
        n = read(fd, &join, sizeof(join));
        if (n == (ssize_t)sizeof(join))
            return join;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            perror("callbacks: read");
        else
            fprintf(stderr, "callbacks: the outcome was lost\n");
        return NULL;
    }
}

/* Prints each job's sum, then the join's error if it has one. */
static int
print_outcome(crew_future *join, crew_future *const *futures,
              const struct job *jobs)
{
    const crew_error *error = crew_future_error(join);

    for (size_t i = 0; i < JOBS; i++) {
        const uint64_t *sum = crew_future_result(futures[i]);

        if (sum != NULL)
            printf("job %zu: 1 + ... + %" PRIu64 " = %" PRIu64 "\n", i,
                   jobs[i].n, *sum);
    }
    if (error == NULL) {
        printf("all %d jobs succeeded\n", JOBS);
        return 0;
    }
    printf("the join failed:\n");
    return crew_error_print(error, stdout);
}

/* True when exactly the jobs asked to fail failed, and the others added up. */
static bool
is_expected(crew_future *join, crew_future *const *futures,
            const struct job *jobs)
{
    const crew_error *error = crew_future_error(join);
    size_t failed = 0, input;

    for (size_t i = 0; i < JOBS; i++) {
        const uint64_t *sum = crew_future_result(futures[i]);

        if (jobs[i].fail) {
            if (crew_error_inner(error, failed++, &input) == NULL || input != i)
                return false;
        } else if (sum == NULL || *sum != jobs[i].n * (jobs[i].n + 1) / 2) {
            return false;
        }
    }
    return failed == crew_error_count(error) &&
           crew_future_state(join) ==
               (failed == 0 ? CREW_SUCCEEDED : CREW_FAILED);
}

static bool
parse(int argc, char **argv, struct job *jobs)
{
    for (size_t i = 0; i < JOBS; i++) {
        jobs[i].n = (i + 1) * 100000;
        jobs[i].fail = false;
    }
    for (int a = 1; a < argc; a++) {
        char *end;
        unsigned long i = strtoul(argv[a], &end, 10);

        if (end == argv[a] || *end != '\0' || i >= JOBS)
            return false;
        jobs[i].fail = true;
    }
    return true;
}

int
main(int argc, char **argv)
{
    struct job jobs[JOBS];
    crew_future *futures[JOBS];
    crew_future *join = NULL;
    crew_pool *pool;
    size_t n = 0;
    bool posting = false; /* whether the write end is the callback's */
    int fds[2], err, status = EXIT_FAILURE;

    if (!parse(argc, argv, jobs)) {
        fprintf(stderr, "usage: callbacks [JOB...]  (JOB: 0 to %d)\n",
                JOBS - 1);
        return 2;
    }
    if (pipe(fds) != 0) {
        perror("callbacks: pipe");
        return EXIT_FAILURE;
    }
    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "callbacks: crew_pool_create: %s\n",
                crew_strerror(err));
        goto out_close;
    }
    for (n = 0; n < JOBS; n++) {
        err = crew_submit(pool, sum_job, &jobs[n], &futures[n]);
        if (err != 0) {
            fprintf(stderr, "callbacks: crew_submit: %s\n", crew_strerror(err));
            goto out_shutdown;
        }
    }
    err = crew_when_all(futures, JOBS, &join);
    if (err != 0) {
        fprintf(stderr, "callbacks: crew_when_all: %s\n", crew_strerror(err));
        goto out_shutdown;
    }
    err = crew_future_on_complete(join, on_joined, &fds[1]);
    /* Either way, the main thread is done with its own reference. */
    crew_future_release(join);
    if (err != 0) {
        fprintf(stderr, "callbacks: crew_future_on_complete: %s\n",
                crew_strerror(err));
        goto out_shutdown;
    }
    posting = true;

    join = receive(fds[0]);
    if (join == NULL)
        goto out_shutdown;
    err = print_outcome(join, futures, jobs);
    if (err != 0)
        fprintf(stderr, "callbacks: %s\n", crew_strerror(err));
    else if (is_expected(join, futures, jobs))
        status = EXIT_SUCCESS;
    else
        fprintf(stderr, "callbacks: not the outcome asked for\n");
    crew_future_release(join);

out_shutdown:
    /* Drains the jobs, and waits for the callback to have returned. */
    err = crew_pool_shutdown(pool, CREW_DRAIN);
    if (err != 0) {
        fprintf(stderr, "callbacks: crew_pool_shutdown: %s\n",
                crew_strerror(err));
        status = EXIT_FAILURE;
    }
    crew_pool_destroy(pool);
    /* The callback has run: a join it posted but receive() did not take
     * still holds a reference, in the pipe. */
    while (posting &&
           read(fds[0], &join, sizeof(join)) == (ssize_t)sizeof(join))
        crew_future_release(join);
    while (n > 0)
        crew_future_release(futures[--n]);
out_close:
    close(fds[0]);
    if (!posting)
        close(fds[1]);
    return status;
}
