/*
 * Helpers every scenario file uses: the verdict, jitter, and the checks
 * of a when_all outcome against its inputs; and the test kit (testkit.h)
 * the Criterion tests share with them: gates, holding tasks, counting
 * tasks and callbacks, and what /proc says of the process's threads.
 * The counts and the clock are harness.c's.
 *
 * The verdict is one atomic pointer that goes from NULL to the first
 * failure by compare-and-swap, so a task, a callback and the scenario's own
 * thread may all record into it. A gate's count only grows, under its lock;
 * its timed waits run on CLOCK_REALTIME, the clock of a condition variable
 * made with default attributes or PTHREAD_COND_INITIALIZER.
 */
#define _GNU_SOURCE /* gettid() */
#include "scenarios.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCN_SANITIZER_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SCN_SANITIZER_HEAP 1
#endif
#endif

#ifdef SCN_SANITIZER_HEAP
#if defined(__has_include)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#define SCN_HAVE_ALLOCATOR_INTERFACE 1
#endif
#endif
#ifndef SCN_HAVE_ALLOCATOR_INTERFACE
/* gcc 12 ships no <sanitizer/allocator_interface.h>; its runtimes still
 * define the function. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#else
#include <malloc.h> /* glibc declares mallinfo2() whatever the feature macros */
#endif

bool
scn_fail(struct scn_verdict *verdict, const char *why)
{
    const char *expected = NULL;

    atomic_compare_exchange_strong(&verdict->why, &expected, why);
    return false;
}

bool
scn_failed(struct scn_verdict *verdict)
{
    return atomic_load(&verdict->why) != NULL;
}

const char *
scn_result(struct scn_verdict *verdict)
{
    return atomic_load(&verdict->why);
}

static atomic_uint_fast64_t scn_tasks;

int
scn_submit(crew_pool *pool, crew_fn fn, void *arg, crew_future **future)
{
    return scn_submit_ex(pool, fn, arg, NULL, 0, future);
}

int
scn_submit_ex(crew_pool *pool, crew_fn fn, void *arg, crew_free_fn arg_free,
              unsigned flags, crew_future **future)
{
    int err = crew_submit_ex(pool, fn, arg, arg_free, flags, future);

    if (err == 0)
        atomic_fetch_add_explicit(&scn_tasks, 1, memory_order_relaxed);
    return err;
}

int
scn_group_submit(crew_group *group, crew_fn fn, void *arg,
                 crew_free_fn arg_free, unsigned flags, size_t *index,
                 crew_future **future)
{
    int err = crew_group_submit(group, fn, arg, arg_free, flags, index, future);

    if (err == 0)
        atomic_fetch_add_explicit(&scn_tasks, 1, memory_order_relaxed);
    return err;
}

uint64_t
scn_tasks_submitted(void)
{
    return atomic_load(&scn_tasks);
}

void
scn_gate_init(struct scn_gate *gate)
{
    pthread_mutex_init(&gate->lock, NULL);
    pthread_cond_init(&gate->cond, NULL);
    gate->count = 0;
}

void
scn_gate_destroy(struct scn_gate *gate)
{
    pthread_cond_destroy(&gate->cond);
    pthread_mutex_destroy(&gate->lock);
}

void
scn_gate_add(struct scn_gate *gate, size_t n)
{
    pthread_mutex_lock(&gate->lock);
    gate->count += n;
    pthread_cond_broadcast(&gate->cond);
    pthread_mutex_unlock(&gate->lock);
}

void
scn_gate_wait(struct scn_gate *gate, size_t target)
{
    pthread_mutex_lock(&gate->lock);
    while (gate->count < target)
        pthread_cond_wait(&gate->cond, &gate->lock);
    pthread_mutex_unlock(&gate->lock);
}

size_t
scn_gate_count(struct scn_gate *gate)
{
    size_t count;

    pthread_mutex_lock(&gate->lock);
    count = gate->count;
    pthread_mutex_unlock(&gate->lock);
    return count;
}

/* CLOCK_REALTIME @p ms milliseconds from now: a pthread_cond_timedwait()
 * deadline. */
static struct timespec
deadline_after_ms(unsigned ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

size_t
scn_gate_wait_ms(struct scn_gate *gate, size_t target, unsigned ms)
{
    struct timespec deadline = deadline_after_ms(ms);
    size_t count;

    pthread_mutex_lock(&gate->lock);
    while (gate->count < target &&
           pthread_cond_timedwait(&gate->cond, &gate->lock, &deadline) !=
               ETIMEDOUT)
        continue;
    count = gate->count;
    pthread_mutex_unlock(&gate->lock);
    return count;
}

size_t
scn_gate_await(struct scn_gate *gate, size_t target)
{
    return scn_gate_wait_ms(gate, target, SCN_PATIENCE_MS);
}

bool
scn_gate_reaches(struct scn_gate *gate, size_t target)
{
    return scn_gate_await(gate, target) >= target;
}

void
scn_gate_bump(void *gate)
{
    scn_gate_add(gate, 1);
}

void
scn_hold_init(struct scn_hold *hold)
{
    scn_gate_init(&hold->entered);
    scn_gate_init(&hold->gate);
    atomic_init(&hold->saw_cancel, 0);
}

void
scn_hold_destroy(struct scn_hold *hold)
{
    scn_gate_destroy(&hold->gate);
    scn_gate_destroy(&hold->entered);
}

int
scn_hold_task(crew_task *task, void *hold)
{
    struct scn_hold *h = hold;

    scn_gate_add(&h->entered, 1);
    scn_gate_wait(&h->gate, 1);
    if (crew_task_cancelled(task))
        atomic_fetch_add(&h->saw_cancel, 1);
    return 0;
}

int
scn_hold_worker(crew_pool *pool, struct scn_hold *hold, size_t nth,
                crew_future **future)
{
    int err = scn_submit(pool, scn_hold_task, hold, future);

    if (err != 0)
        return err;
    return scn_gate_reaches(&hold->entered, nth) ? 0 : ETIMEDOUT;
}

void
scn_hold_open(struct scn_hold *hold)
{
    scn_gate_add(&hold->gate, 1);
}

int
scn_count_task(crew_task *task, void *counts)
{
    struct scn_counts *c = counts;

    (void)task;
    atomic_fetch_add(&c->ran, 1);
    scn_gate_add(&c->done, 1);
    return 0;
}

void
scn_count_free(void *counts)
{
    struct scn_counts *c = counts;

    atomic_fetch_add(&c->freed, 1);
}

int
scn_ok_task(crew_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

int
scn_bump_task(crew_task *task, void *counter)
{
    (void)task;
    scn_bump(counter);
    return 0;
}

void
scn_bump(void *counter)
{
    atomic_fetch_add((atomic_int *)counter, 1);
}

atomic_uint scn_values_freed;

void
scn_value_free(void *value)
{
    (void)value;
    atomic_fetch_add(&scn_values_freed, 1);
}

/* Polls @p done(@p arg) until it holds; false if it does not within
 * SCN_PATIENCE_MS. */
static bool
poll_until(bool (*done)(const void *arg), const void *arg)
{
    uint64_t deadline = scn_now_ns() + SCN_PATIENCE_MS * 1000000ull;

    while (!done(arg)) {
        if (scn_now_ns() > deadline)
            return false;
        sched_yield();
    }
    return true;
}

static bool
is_cancelled(const void *task)
{
    return crew_task_cancelled(task);
}

bool
scn_spin_until_cancelled(crew_task *task)
{
    return poll_until(is_cancelled, task);
}

void
scn_seen_init(struct scn_seen *seen)
{
    memset(seen, 0, sizeof(*seen));
    scn_gate_init(&seen->calls);
}

void
scn_seen_cb(crew_future *future, void *seen)
{
    struct scn_seen *s = seen;

    s->thread = pthread_self();
    s->state = crew_future_state(future);
    s->result = crew_future_result(future);
    s->error_code = crew_error_code(crew_future_error(future));
    scn_gate_add(&s->calls, 1);
}

void
scn_order_cb(crew_future *future, void *order)
{
    struct scn_order *o = order;
    int slot = atomic_fetch_add(&o->log->next, 1);

    if (slot >= SCN_ORDER_SLOTS)
        return;
    o->log->order[slot] = o->index;
    o->log->thread[slot] = pthread_self();
    o->log->state[slot] = crew_future_state(future);
    o->log->result[slot] = crew_future_result(future);
}

void *
scn_settle_thread(void *settler)
{
    struct scn_settler *s = settler;

    s->thread = pthread_self();
    if (s->code == 0)
        s->err = crew_promise_resolve(s->input, NULL, NULL);
    else
        s->err = crew_promise_fail(s->input, s->code, "%s", s->message);
    s->state_after = crew_future_state(s->watch);
    s->calls_after = scn_gate_count(&s->seen->calls);
    return NULL;
}

int
scn_wait_and_release(crew_future *future)
{
    int err = crew_future_wait(future);

    crew_future_release(future);
    return err;
}

void
scn_release_all(crew_future *const *futures, size_t n)
{
    for (size_t i = 0; i < n; i++)
        crew_future_release(futures[i]);
}

char *
scn_letters(size_t n)
{
    char *text = malloc(n + 1);

    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    return text;
}

void
scn_spin(unsigned n)
{
    volatile unsigned sink = 0;

    for (unsigned i = 0; i < n; i++)
        sink = sink + i;
}

bool
scn_wait_agrees(const crew_future *future, int err)
{
    switch (crew_future_state(future)) {
    case CREW_SUCCEEDED:
        return err == 0;
    case CREW_CANCELLED:
        return err == ECANCELED;
    case CREW_FAILED:
        return err != 0 && err == crew_error_code(crew_future_error(future));
    default:
        return false;
    }
}

/* Same code, message and inner count: the same failure, maybe shared. */
static bool
same_error(const crew_error *a, const crew_error *b)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL)
        return false;
    return crew_error_code(a) == crew_error_code(b) &&
           strcmp(crew_error_message(a), crew_error_message(b)) == 0 &&
           crew_error_count(a) == crew_error_count(b);
}

/*
 * Counts the failed and the cancelled inputs; NULL, or a complaint when
 * one has not resolved.
 */
static const char *
tally(crew_future *const *inputs, size_t n, size_t *failed, bool *cancelled)
{
    *failed = 0;
    *cancelled = false;
    for (size_t i = 0; i < n; i++) {
        crew_state state = crew_future_state(inputs[i]);

        if (!scn_resolved(state))
            return "a when_all resolved while one of its inputs had not";
        if (state == CREW_FAILED)
            (*failed)++;
        else if (state == CREW_CANCELLED)
            *cancelled = true;
    }
    return NULL;
}

static const char *
check_aggregate(const crew_error *error, crew_future *const *inputs, size_t n,
                size_t failed)
{
    size_t k = 0;
    size_t position = SIZE_MAX;

    if (error == NULL)
        return "a failed when_all has no error";
    if (crew_error_code(error) != CREW_EAGGREGATE)
        return "a when_all error's code is not CREW_EAGGREGATE";
    if (crew_error_count(error) != failed)
        return "a when_all aggregate has not one entry per failed position";
    for (size_t i = 0; i < n; i++) {
        const crew_error *inner;

        if (crew_future_state(inputs[i]) != CREW_FAILED)
            continue;
        inner = crew_error_inner(error, k, &position);
        if (inner == NULL)
            return "a when_all aggregate lacks an inner error";
        if (position != i)
            return "a when_all inner error has the wrong position";
        if (!same_error(inner, crew_future_error(inputs[i])))
            return "a when_all inner error differs from its input's error";
        k++;
    }
    if (crew_error_inner(error, k, &position) != NULL)
        return "a when_all aggregate has an entry past its count";
    return NULL;
}

const char *
scn_check_when_all(const crew_future *all, crew_future *const *inputs, size_t n)
{
    crew_state state = crew_future_state(all);
    size_t failed;
    bool cancelled;
    const char *why = tally(inputs, n, &failed, &cancelled);

    if (why != NULL)
        return why;
    if (failed > 0) {
        if (state != CREW_FAILED)
            return "a when_all with a failed input did not fail";
        if (crew_future_result(all) != NULL)
            return "a failed when_all has a result";
        return check_aggregate(crew_future_error(all), inputs, n, failed);
    }
    if (cancelled) {
        if (state != CREW_CANCELLED)
            return "a when_all with a cancelled input and no failure "
                   "was not cancelled";
        if (crew_error_code(crew_future_error(all)) != ECANCELED)
            return "a cancelled when_all's error code is not ECANCELED";
        return NULL;
    }
    if (state != CREW_SUCCEEDED)
        return "a when_all whose inputs all succeeded did not succeed";
    if (crew_future_result(all) != NULL || crew_future_error(all) != NULL)
        return "a succeeded when_all has a result or an error";
    return NULL;
}

const char *
scn_check_wait_all(int err, const crew_error *error, crew_future *const *inputs,
                   size_t n)
{
    size_t failed;
    bool cancelled;
    const char *why = tally(inputs, n, &failed, &cancelled);

    if (why != NULL)
        return "crew_wait_all returned before every input resolved";
    if (failed > 0) {
        if (err != CREW_EAGGREGATE)
            return "crew_wait_all with a failed input did not return "
                   "CREW_EAGGREGATE";
        return check_aggregate(error, inputs, n, failed);
    }
    if (cancelled) {
        if (err != ECANCELED)
            return "crew_wait_all with a cancelled input and no failure "
                   "did not return ECANCELED";
        if (error != NULL && crew_error_code(error) != ECANCELED)
            return "crew_wait_all's error for a cancellation is not "
                   "ECANCELED";
        return NULL;
    }
    if (err != 0 || error != NULL)
        return "crew_wait_all over succeeded inputs reported an error";
    return NULL;
}

pid_t
scn_tid(void)
{
    return gettid();
}

unsigned
scn_thread_count(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *entry;
    unsigned n = 0;

    if (dir == NULL)
        return 0;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static bool
at_most_threads(const void *n)
{
    unsigned count = scn_thread_count();

    return count > 0 && count <= *(const unsigned *)n;
}

bool
scn_threads_back_to(unsigned n)
{
    return poll_until(at_most_threads, &n);
}

static bool
is_gone(const void *tid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/self/task/%d",
             (int)*(const pid_t *)tid);
    return access(path, F_OK) != 0;
}

bool
scn_thread_gone(pid_t tid)
{
    return poll_until(is_gone, &tid);
}

bool
scn_thread_is_asleep(pid_t tid)
{
    char path[64], stat[512];
    const char *state;
    bool asleep = false;
    FILE *file;

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    file = fopen(path, "r");
    if (file == NULL)
        return false;
    if (fgets(stat, sizeof(stat), file) != NULL) {
        /* "tid (name) S ...": the state follows the last ')'. */
        state = strrchr(stat, ')');
        asleep = state != NULL && state[1] == ' ' && state[2] == 'S';
    }
    fclose(file);
    return asleep;
}

static bool
is_asleep(const void *tid)
{
    return scn_thread_is_asleep(*(const pid_t *)tid);
}

bool
scn_thread_falls_asleep(pid_t tid)
{
    return poll_until(is_asleep, &tid);
}

size_t
scn_heap_in_use(void)
{
#ifdef SCN_SANITIZER_HEAP
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 info = mallinfo2();

    return info.uordblks + info.hblkhd;
#endif
}

double
scn_reduce_term(size_t i)
{
    return (i % 3 == 0 ? 1e16 : 1.0) / (double)(i + 1) * (i % 2 ? -1 : 1);
}

int
scn_reduce_sum(crew_task *task, size_t begin, size_t end, void *partial,
               void *arg)
{
    double *sum = partial;

    (void)task;
    (void)arg;
    for (size_t i = begin; i < end; i++)
        *sum += scn_reduce_term(i);
    return 0;
}

void
scn_reduce_add(void *into, const void *from, void *arg)
{
    (void)arg;
    *(double *)into += *(const double *)from;
}

double
scn_reduce_model(size_t begin, size_t end, size_t grain)
{
    double stack[8 * sizeof(size_t) + 1];
    int level[8 * sizeof(size_t) + 1];
    size_t depth = 0;

    for (size_t lo = begin; lo < end; lo += grain) {
        size_t hi = end - lo > grain ? lo + grain : end;
        double partial = 0.0;

        scn_reduce_sum(NULL, lo, hi, &partial, NULL);
        stack[depth] = partial;
        level[depth++] = 0;
        while (depth >= 2 && level[depth - 1] == level[depth - 2]) {
            scn_reduce_add(&stack[depth - 2], &stack[depth - 1], NULL);
            level[depth - 2]++;
            depth--;
        }
    }
    for (size_t i = depth; i-- > 1;)
        scn_reduce_add(&stack[i - 1], &stack[i], NULL);
    return stack[0];
}
