/*
 * The inbox under libuv: its descriptor watched by a uv_poll_t on a
 * uv_loop_t, as a libuv program would, with every delivery taken in the
 * poll callback on the loop's thread. Built when pkg-config finds libuv
 * (Debian libuv1-dev); tests only, the library never links it.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>
#include <stdint.h>
#include <uv.h>

TestSuite(inbox_uv, CREW_SUITE);

#define TASKS 1000

struct loop_state {
    crew_inbox *inbox;
    uv_poll_t poll;
    size_t taken;
    unsigned char seen[TASKS];
    bool duplicate;
    bool wrong_thread;
    uv_thread_t loop_thread;
};

static int
square_task(crew_task *task, void *arg)
{
    uintptr_t n = (uintptr_t)arg;

    crew_task_return(task, (void *)(n * n), NULL);
    return 0;
}

static void
on_readable(uv_poll_t *poll, int status, int events)
{
    struct loop_state *s = poll->data;
    crew_future *got[32];
    void *users[32];
    size_t n;

    (void)events;
    if (status < 0)
        return;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &s->loop_thread))
        s->wrong_thread = true;
    while ((n = crew_inbox_take(s->inbox, got, users, 32)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uintptr_t id = (uintptr_t)users[i];
            if (id >= TASKS || s->seen[id]++ != 0 ||
                (uintptr_t)crew_future_result(got[i]) != id * id)
                s->duplicate = true;
            crew_future_release(got[i]);
        }
        s->taken += n;
    }
    if (s->taken == TASKS)
        uv_poll_stop(poll);
}

CREW_TEST(inbox_uv, a_uv_poll_handle_takes_every_delivery_on_the_loop)
{
    crew_pool_options options = {.threads = 2};
    crew_pool *pool = NULL;
    uv_loop_t loop;
    static struct loop_state s;

    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(crew_pool_create(&pool, &options), 0);
    cr_assert_eq(crew_inbox_create(&s.inbox), 0);
    s.loop_thread = uv_thread_self();
    cr_assert_eq(uv_poll_init(&loop, &s.poll, crew_inbox_fd(s.inbox)), 0);
    s.poll.data = &s;
    cr_assert_eq(uv_poll_start(&s.poll, UV_READABLE, on_readable), 0);
    for (uintptr_t i = 0; i < TASKS; i++) {
        crew_future *f;
        cr_assert_eq(crew_submit(pool, square_task, (void *)i, &f), 0);
        cr_assert_eq(crew_inbox_watch(s.inbox, f, (void *)i), 0);
        crew_future_release(f);
    }
    /* Returns once on_readable has stopped the handle: every delivery
     * was taken (the suite's timeout ends a hang). */
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(s.taken, TASKS);
    cr_assert(!s.duplicate, "a delivery came twice, or with a wrong value");
    cr_assert(!s.wrong_thread, "the callback ran off the loop's thread");
    uv_close((uv_handle_t *)&s.poll, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    crew_inbox_destroy(s.inbox);
    crew_pool_destroy(pool);
}
