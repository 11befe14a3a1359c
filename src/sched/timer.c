/*
 * The timer: a thread sleeping until the soonest deadline of a binary
 * min-heap of entries, under one mutex.
 *
 * The thread takes the soonest entry off the heap once its deadline has
 * passed, marks it firing, and calls its function with the lock
 * released, so a fire may arm and disarm entries, or let go of the
 * timer's owner. An entry's `slot` is its index in the heap while armed,
 * and FIRING (or IDLE) otherwise: a disarm that finds it off the heap
 * knows the fire has run or is running, and leaves the entry to it.
 *
 * The owner destroys the timer when nothing is armed. If that happens on
 * the timer's own thread (a fire dropped the last hold on the scheduler),
 * the thread cannot join itself: destroy marks the timer `orphan` and
 * returns, and the thread, back from the fire, frees the timer and
 * leaves, detached.
 */
#include "sched/timer.h"

#include "base/alloc.h"
#include "base/platform.h"
#include "sched/private.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define IDLE   SIZE_MAX       /* never armed, or disarmed */
#define FIRING (SIZE_MAX - 1) /* taken off the heap by the thread */

#define NAME_MAX_LENGTH 15 /* Linux thread names: 16 bytes with the NUL */

struct crew__timer {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t changed; /* a sooner entry, or the stop */
    struct crew__timer_entry **heap;
    size_t n, capacity;
    bool stop;   /* destroy: leave */
    bool orphan; /* destroyed from the thread itself: free and leave */
    pthread_t thread;
    char name[NAME_MAX_LENGTH + 1];
};

static void
place(struct crew__timer *t, size_t i, struct crew__timer_entry *e)
{
    t->heap[i] = e;
    e->slot = i;
}

static void
sift_up(struct crew__timer *t, size_t i)
{
    struct crew__timer_entry *e = t->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent]->deadline <= e->deadline)
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, e);
}

static void
sift_down(struct crew__timer *t, size_t i)
{
    struct crew__timer_entry *e = t->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->n)
            break;
        if (child + 1 < t->n &&
            t->heap[child + 1]->deadline < t->heap[child]->deadline)
            child++;
        if (e->deadline <= t->heap[child]->deadline)
            break;
        place(t, i, t->heap[child]);
        i = child;
    }
    place(t, i, e);
}

/* Take the entry at heap index i off the heap. */
static void
remove_at(struct crew__timer *t, size_t i)
{
    struct crew__timer_entry *last = t->heap[--t->n];

    if (i == t->n)
        return;
    place(t, i, last);
    sift_down(t, i);
    sift_up(t, last->slot);
}

static void
free_timer(struct crew__timer *t)
{
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
    crew__free(t->heap);
    crew__free(t);
}

static void *
timer_main(void *arg)
{
    struct crew__timer *t = arg;

    crew__thread_set_name(t->name);
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct crew__timer_entry *e;

        if (t->n == 0) {
            pthread_cond_wait(&t->changed, &t->lock);
            continue;
        }
        e = t->heap[0];
        if (crew__now_ns() < e->deadline) {
            struct timespec when = crew__timespec_of(e->deadline);
            pthread_cond_timedwait(&t->changed, &t->lock, &when);
            continue;
        }
        remove_at(t, 0);
        e->slot = FIRING;
        pthread_mutex_unlock(&t->lock);
        e->fire(e);
        pthread_mutex_lock(&t->lock);
        if (t->orphan) {
            pthread_mutex_unlock(&t->lock);
            free_timer(t);
            return NULL;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int
crew__timer_create(struct crew__timer **out, const char *name)
{
    struct crew__timer *t = crew__calloc(1, sizeof(*t));
    pthread_condattr_t attr;
    int err;

    if (t == NULL)
        return ENOMEM;
    snprintf(t->name, sizeof(t->name), "%s-timer", name);
    err = pthread_condattr_init(&attr);
    if (err == 0) {
        /* The deadlines are on the monotonic clock, as crew__now_ns(). */
        err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (err == 0)
            err = pthread_cond_init(&t->changed, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (err != 0) {
        crew__free(t);
        return ENOMEM;
    }
    err = pthread_mutex_init(&t->lock, NULL);
    if (err != 0) {
        pthread_cond_destroy(&t->changed);
        crew__free(t);
        return ENOMEM;
    }
    err = crew__thread_create(&t->thread, timer_main, t, 0, false);
    if (err != 0) {
        free_timer(t);
        return err;
    }
    *out = t;
    return 0;
}

void
crew__timer_destroy(struct crew__timer *t)
{
    bool own_thread = pthread_equal(pthread_self(), t->thread);
    int state;

    pthread_mutex_lock(&t->lock);
    t->stop = true;
    t->orphan = own_thread;
    pthread_cond_signal(&t->changed);
    pthread_mutex_unlock(&t->lock);
    if (own_thread) {
        pthread_detach(t->thread);
        return;
    }
    /* Joining is a cancellation point: see platform.h. */
    state = crew__nocancel_begin();
    pthread_join(t->thread, NULL);
    crew__nocancel_end(state);
    free_timer(t);
}

void
crew__timer_abandon(struct crew__timer *t)
{
    crew__free(t->heap);
    crew__free(t);
}

int
crew__timer_arm(struct crew__timer *t, struct crew__timer_entry *e)
{
    pthread_mutex_lock(&t->lock);
    if (t->n == t->capacity) {
        size_t capacity = t->capacity != 0 ? 2 * t->capacity : 16;
        struct crew__timer_entry **heap =
            capacity <= SIZE_MAX / sizeof(*heap)
                ? crew__realloc(t->heap, capacity * sizeof(*heap))
                : NULL;
        if (heap == NULL) {
            pthread_mutex_unlock(&t->lock);
            return ENOMEM;
        }
        t->heap = heap;
        t->capacity = capacity;
    }
    place(t, t->n++, e);
    sift_up(t, e->slot);
    /* A new soonest deadline: the thread sleeps until a later one. */
    if (e->slot == 0)
        pthread_cond_signal(&t->changed);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

bool
crew__timer_disarm(struct crew__timer *t, struct crew__timer_entry *e)
{
    bool armed;

    pthread_mutex_lock(&t->lock);
    armed = e->slot < t->n && t->heap[e->slot] == e;
    if (armed) {
        remove_at(t, e->slot);
        e->slot = IDLE;
    }
    pthread_mutex_unlock(&t->lock);
    return armed;
}
