/*
 * The inbox: deliveries in resolution order and exactly once, already
 * resolved futures, the descriptor's readability (poll and epoll), the
 * references a take hands over, destroy with futures still watched and
 * deliveries untaken, bad input. The races (many watchers and one taker,
 * destroy while workers resolve) are scenarios (scenarios/inbox.c), run
 * by test_scenarios and, under TSan, by the driver.
 *
 * Inputs are promises the test resolves in the order it needs, or tasks;
 * a value_free counts, through scn_values_freed, that every future the
 * inbox held was released exactly once.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

TestSuite(inbox, CREW_SUITE);

static crew_inbox *
inbox_new(void)
{
    crew_inbox *inbox = NULL;

    cr_assert_eq(crew_inbox_create(&inbox), 0);
    cr_assert_not_null(inbox);
    return inbox;
}

/* Whether the inbox's descriptor polls readable now. */
static bool
readable(const crew_inbox *inbox)
{
    struct pollfd p = {.fd = crew_inbox_fd(inbox), .events = POLLIN};
    int n = poll(&p, 1, 0);

    cr_assert_geq(n, 0, "poll failed");
    return n == 1 && (p.revents & POLLIN) != 0;
}

/* Resolve a promise with a counted value: its release is seen. */
static void
resolve(crew_future *f)
{
    static int value;

    cr_assert_eq(crew_promise_resolve(f, &value, scn_value_free), 0);
}

CREW_TEST(inbox, delivers_in_resolution_order_exactly_once)
{
    crew_inbox *inbox = inbox_new();
    crew_future *in[3] = {crew_test_promise(), crew_test_promise(),
                          crew_test_promise()};
    crew_future *got[4] = {NULL};
    void *users[4] = {NULL};
    unsigned freed = atomic_load(&scn_values_freed);

    for (uintptr_t i = 0; i < 3; i++)
        cr_assert_eq(crew_inbox_watch(inbox, in[i], (void *)(i + 1)), 0);
    cr_assert_eq(crew_inbox_take(inbox, got, users, 4), 0,
                 "a delivery before anything resolved");
    resolve(in[2]);
    resolve(in[0]);
    resolve(in[1]);
    cr_assert_eq(crew_inbox_take(inbox, got, users, 4), 3);
    cr_assert_eq(got[0], in[2]);
    cr_assert_eq(got[1], in[0]);
    cr_assert_eq(got[2], in[1]);
    cr_assert_eq((uintptr_t)users[0], 3);
    cr_assert_eq((uintptr_t)users[1], 1);
    cr_assert_eq((uintptr_t)users[2], 2);
    cr_assert_eq(crew_inbox_take(inbox, got, users, 4), 0,
                 "a future was delivered twice");
    /* Each taken future came with a reference of its own. */
    scn_release_all(got, 3);
    cr_assert_eq(atomic_load(&scn_values_freed), freed, "freed too early");
    scn_release_all(in, 3);
    cr_assert_eq(atomic_load(&scn_values_freed), freed + 3);
    crew_inbox_destroy(inbox);
}

CREW_TEST(inbox, delivers_an_already_resolved_future_at_once)
{
    crew_inbox *inbox = inbox_new();
    crew_future *f = crew_test_promise();
    crew_future *got = NULL;
    void *user = NULL;
    static int tag;

    resolve(f);
    cr_assert(!readable(inbox));
    cr_assert_eq(crew_inbox_watch(inbox, f, &tag), 0);
    cr_assert(readable(inbox), "no delivery for a resolved future");
    cr_assert_eq(crew_inbox_take(inbox, &got, &user, 1), 1);
    cr_assert_eq(got, f);
    cr_assert_eq(user, &tag);
    crew_future_release(got);
    crew_future_release(f);
    crew_inbox_destroy(inbox);
}

CREW_TEST(inbox, descriptor_is_readable_exactly_while_deliveries_wait)
{
    crew_inbox *inbox = inbox_new();
    crew_future *in[2] = {crew_test_promise(), crew_test_promise()};
    crew_future *got = NULL;

    cr_assert_geq(crew_inbox_fd(inbox), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(crew_inbox_watch(inbox, in[i], NULL), 0);
    cr_assert(!readable(inbox), "readable with nothing resolved");
    resolve(in[0]);
    cr_assert(readable(inbox), "not readable with a delivery waiting");
    resolve(in[1]);
    cr_assert(readable(inbox));
    /* Taking one of two leaves it readable; taking the last clears it. */
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 1);
    crew_future_release(got);
    cr_assert(readable(inbox), "cleared with a delivery still waiting");
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 1);
    crew_future_release(got);
    cr_assert(!readable(inbox), "still readable with nothing to take");
    /* And raised again by the next delivery. */
    crew_future *again = crew_test_promise();
    cr_assert_eq(crew_inbox_watch(inbox, again, NULL), 0);
    cr_assert(!readable(inbox));
    resolve(again);
    cr_assert(readable(inbox));
    crew_inbox_destroy(inbox);
    crew_future_release(again);
    scn_release_all(in, 2);
}

CREW_TEST(inbox, an_epoll_loop_sees_deliveries)
{
    crew_inbox *inbox = inbox_new();
    crew_future *f = crew_test_promise();
    struct epoll_event ev = {.events = EPOLLIN}, out;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    crew_future *got = NULL;

    cr_assert_geq(ep, 0);
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, crew_inbox_fd(inbox), &ev), 0);
    cr_assert_eq(crew_inbox_watch(inbox, f, NULL), 0);
    cr_assert_eq(epoll_wait(ep, &out, 1, 0), 0);
    resolve(f);
    cr_assert_eq(epoll_wait(ep, &out, 1, 10000), 1);
    cr_assert(out.events & EPOLLIN);
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 1);
    crew_future_release(got);
    cr_assert_eq(epoll_wait(ep, &out, 1, 0), 0, "readable after the take");
    close(ep);
    crew_inbox_destroy(inbox);
    crew_future_release(f);
}

CREW_TEST(inbox, destroy_drops_untaken_deliveries_and_watched_futures)
{
    crew_inbox *inbox = inbox_new();
    crew_future *delivered = crew_test_promise(),
                *watched = crew_test_promise();
    crew_future *abandoned = crew_test_promise();
    unsigned freed = atomic_load(&scn_values_freed);

    cr_assert_eq(crew_inbox_watch(inbox, delivered, NULL), 0);
    cr_assert_eq(crew_inbox_watch(inbox, watched, NULL), 0);
    cr_assert_eq(crew_inbox_watch(inbox, abandoned, NULL), 0);
    resolve(delivered);
    /* The inbox's references go with it: ours are the last. */
    crew_inbox_destroy(inbox);
    crew_future_release(delivered);
    cr_assert_eq(atomic_load(&scn_values_freed), freed + 1,
                 "an untaken delivery kept its future alive");
    /* Resolving a watched future afterwards delivers nowhere. */
    resolve(watched);
    crew_future_release(watched);
    cr_assert_eq(atomic_load(&scn_values_freed), freed + 2,
                 "a watched future was kept alive by a destroyed inbox");
    /* A watched future never resolved: once ours is gone, nothing may
     * hold it (the leak check at the end of the test sees it, and the
     * inbox with it, if the inbox kept its reference). */
    crew_future_release(abandoned);
}

CREW_TEST(inbox, destroy_closes_the_descriptor)
{
    crew_inbox *inbox = inbox_new();
    int fd = crew_inbox_fd(inbox);

    cr_assert_neq(fcntl(fd, F_GETFD), -1);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
    crew_inbox_destroy(inbox);
    /* No other thread of this test opens descriptors meanwhile. */
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "the descriptor is still open");
    cr_assert_eq(errno, EBADF);
}

CREW_TEST(inbox, rejects_bad_input_and_changes_nothing)
{
    crew_inbox *inbox = inbox_new();
    crew_future *f = crew_test_promise();
    crew_future *got = NULL;

    cr_assert_eq(crew_inbox_create(NULL), EINVAL);
    cr_assert_eq(crew_inbox_fd(NULL), -1);
    cr_assert_eq(crew_inbox_watch(NULL, f, NULL), EINVAL);
    cr_assert_eq(crew_inbox_watch(inbox, NULL, NULL), EINVAL);
    cr_assert_eq(crew_inbox_take(NULL, &got, NULL, 1), 0);
    cr_assert_eq(crew_inbox_take(inbox, NULL, NULL, 1), 0);
    crew_inbox_destroy(NULL);
    /* The rejected watch left the promise alone: resolving it delivers
     * nothing, and our reference is its last. */
    resolve(f);
    cr_assert(!readable(inbox));
    cr_assert_eq(crew_inbox_take(inbox, &got, NULL, 1), 0);
    crew_future_release(f);
    crew_inbox_destroy(inbox);
}
