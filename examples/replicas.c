/*
 * replicas: ask every replica, take the first answer, cancel the rest.
 *
 *     replicas [KEY]
 *
 * Asks four simulated replicas of a small key-value store for KEY (default
 * "bob"), each a member of one CREW_GROUP_FIRST_SUCCESS group: the first
 * member to succeed decides the group, which then cancels the others. A
 * replica takes its latency to answer, waiting a millisecond at a time and
 * looking at crew_task_cancelled() in between, so a cancelled replica stops
 * at once; one replica is down and fails quickly, which does not decide the
 * group. The group's future holds the winning member's future as its
 * result, and that future holds the answer.
 *
 * Prints what became of each replica, the answer and who gave it, and how
 * many replicas were cancelled. For a key that no replica has, every replica
 * fails, and so does the group, with every failure (a group keeps them all,
 * whatever its policy), printed with its member's index.
 *
 * Exit status: 0 when a replica answered, the one its answer names; 1 when
 * none did; 2 on a usage error or when the pool itself failed.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS UINT64_C(1000000) /* nanoseconds */

/* main() sets key before the members start; each member writes its own
 * replica's ran_ns and started, which main() reads once the group has
 * resolved (its future resolves only after every member has). */
static struct replica {
    const char *name;
    uint64_t latency_ns;
    bool down;       /* refuses, after its latency */
    const char *key; /* what it is asked for */
    bool started;    /* it ran: it was not cancelled in its queue */
    uint64_t ran_ns; /* until it answered, failed or stopped */
} replicas[] = {
    {.name = "eu-west", .latency_ns = 60 * MS},
    {.name = "us-east", .latency_ns = 5 * MS, .down = true},
    {.name = "ap-south", .latency_ns = 120 * MS},
    {.name = "eu-north", .latency_ns = 20 * MS},
};
#define REPLICAS (sizeof(replicas) / sizeof(replicas[0]))

/* The store every replica holds a copy of. */
static const struct {
    const char *key;
    int value;
} store[] = {{"alice", 31}, {"bob", 42}, {"carol", 27}};

struct answer { /* a replica's result, copied into its future */
    size_t replica;
    int value;
};

static uint64_t
now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 * MS + (uint64_t)t.tv_nsec;
}

static int
ask(crew_task *task, void *arg)
{
    const struct timespec ms = {0, MS};
    struct replica *r = arg;
    uint64_t start = now_ns();

    r->started = true;
    while (now_ns() - start < r->latency_ns) {
        if (crew_task_cancelled(task)) {
            r->ran_ns = now_ns() - start;
            return ECANCELED;
        }
        nanosleep(&ms, NULL);
    }
    r->ran_ns = now_ns() - start;
    if (r->down)
        return crew_task_fail(task, ECONNREFUSED, "%s: connection refused",
                              r->name);
    for (size_t i = 0; i < sizeof(store) / sizeof(store[0]); i++) {
        if (strcmp(store[i].key, r->key) == 0) {
            struct answer a = {(size_t)(r - replicas), store[i].value};

            /* Small: kept inside the future, no allocation. */
            return crew_task_return_copy(task, &a, sizeof(a));
        }
    }
    return crew_task_fail(task, ENOENT, "%s: no key \"%s\"", r->name, r->key);
}

/* Prints what became of each replica; returns how many were cancelled. */
static size_t
print_replicas(crew_future *const *members)
{
    size_t cancelled = 0;

    for (size_t i = 0; i < REPLICAS; i++) {
        const struct replica *r = &replicas[i];
        uint64_t ran_ms = r->ran_ns / MS, latency_ms = r->latency_ns / MS;

        printf("  %-8s (%3" PRIu64 " ms): ", r->name, latency_ms);
        switch (crew_future_state(members[i])) {
        case CREW_SUCCEEDED:
            printf("answered\n");
            break;
        case CREW_FAILED:
            printf("failed: %s\n",
                   crew_error_message(crew_future_error(members[i])));
            break;
        default:
            cancelled++;
            if (r->started)
                printf("cancelled after %" PRIu64 " ms\n", ran_ms);
            else
                printf("cancelled before it started\n");
            break;
        }
    }
    return cancelled;
}

int
main(int argc, char **argv)
{
    const crew_group_options options = {.policy = CREW_GROUP_FIRST_SUCCESS};
    const char *key = argc > 1 ? argv[1] : "bob";
    crew_future *members[REPLICAS] = {NULL};
    crew_future *done = NULL;
    crew_group *group = NULL;
    crew_pool *pool = NULL;
    uint64_t start;
    size_t cancelled;
    int err, status = 2;

    if (argc > 2) {
        fprintf(stderr, "usage: replicas [KEY]\n");
        return 2;
    }
    /* A thread a replica: every question is in flight at once. */
    err = crew_pool_create(&pool, &(crew_pool_options){.threads = REPLICAS});
    if (err != 0) {
        fprintf(stderr, "replicas: crew_pool_create: %s\n", crew_strerror(err));
        return 2;
    }
    err = crew_group_create(&group, pool, &options);
    if (err != 0) {
        fprintf(stderr, "replicas: crew_group_create: %s\n",
                crew_strerror(err));
        goto out_destroy_pool;
    }
    printf("replicas: asking %zu replicas for \"%s\"\n", REPLICAS, key);
    start = now_ns();
    for (size_t i = 0; i < REPLICAS; i++) {
        replicas[i].key = key;
        /* Member i: the group numbers its members in the order added. */
        err = crew_group_submit(group, ask, &replicas[i], NULL, 0, NULL,
                                &members[i]);
        if (err != 0) {
            fprintf(stderr, "replicas: crew_group_submit: %s\n",
                    crew_strerror(err));
            goto out_destroy_group;
        }
    }
    err = crew_group_close(group, &done);
    if (err != 0) {
        fprintf(stderr, "replicas: crew_group_close: %s\n", crew_strerror(err));
        goto out_destroy_group;
    }

    /* Resolves once every member has: the losers have stopped by now. */
    err = crew_future_wait(done);
    printf("replicas: done in %" PRIu64 " ms\n", (now_ns() - start) / MS);
    cancelled = print_replicas(members);
    status = 1;
    if (err == 0) {
        /* The group's result is the winner's future; its result, the
         * answer. Both borrowed: done holds the winner. */
        crew_future *winner = crew_future_result(done);
        const struct answer *a = crew_future_result(winner);
        size_t i = 0;

        while (i < REPLICAS && members[i] != winner)
            i++;
        if (i < REPLICAS && a != NULL && a->replica == i) {
            printf("answer: %s = %d, from %s (member %zu)\n", key, a->value,
                   replicas[i].name, i);
            printf("cancelled: %zu slower replicas\n", cancelled);
            status = 0;
        } else {
            fprintf(stderr, "replicas: the winner is not a member\n");
        }
    } else if (err == CREW_EAGGREGATE) {
        const crew_error *error = crew_future_error(done);

        printf("no answer: every replica failed\n");
        for (size_t i = 0; i < crew_error_count(error); i++) {
            size_t member = REPLICAS;
            const crew_error *inner = crew_error_inner(error, i, &member);

            printf("  member %zu: %s\n", member, crew_error_message(inner));
        }
    } else {
        fprintf(stderr, "replicas: the group: %s\n", crew_strerror(err));
    }

out_destroy_group:
    crew_future_release(done);
    crew_future_release_all(members, REPLICAS);
    /* Resolved by now, or cancelled and waited for: then freed. */
    crew_group_destroy(group);
out_destroy_pool:
    crew_pool_destroy(pool);
    return status;
}
