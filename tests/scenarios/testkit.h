/*
 * The test kit: plain C helpers shared by the Criterion tests
 * (tests/test_*.c) and the concurrency scenarios, so that each exists
 * once. Implemented in support.c; scenarios.h includes this header.
 *
 * Nothing here includes Criterion or asserts. A helper reports what it
 * found (a bool, a count, an error code) and the caller asserts on it, or
 * records it in a scenario's verdict.
 *
 * Threads meet on gates (a mutex, a condition variable and a count) and
 * never sleep to synchronize. A wait for something that must happen is
 * bounded by SCN_PATIENCE_MS, so that a lost wake-up or a task that never
 * ran fails the test instead of hanging it.
 */
#ifndef CREW_TESTS_TESTKIT_H
#define CREW_TESTS_TESTKIT_H

#include "harness.h"

#include <crew.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The longest a test waits for something that must happen. */
#define SCN_PATIENCE_MS 10000u

static inline bool
scn_resolved(crew_state state)
{
    return state == CREW_SUCCEEDED || state == CREW_FAILED ||
           state == CREW_CANCELLED;
}

/* ------------------------------------------------------------------ */
/* Gates                                                               */
/* ------------------------------------------------------------------ */

/*
 * A counting gate: threads wait until the count reaches a target. Whoever
 * adds holds the lock while it changes the count, then broadcasts, so no
 * wake-up is lost; a waiter re-checks in a loop. The count only grows.
 *
 * As a door the test opens, the target is 1: scn_gate_wait(gate, 1) holds
 * a thread until scn_gate_add(gate, 1). As a latch, threads add one each
 * and the test waits for the sum.
 */
struct scn_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t count; /* guarded by lock */
};

/* A static initializer; the same as scn_gate_init(). */
#define SCN_GATE_INIT                                          \
    {                                                          \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 \
    }

void scn_gate_init(struct scn_gate *gate);
void scn_gate_destroy(struct scn_gate *gate);
void scn_gate_add(struct scn_gate *gate, size_t n);
/* Waits, with no limit, until the count reaches @p target. */
void scn_gate_wait(struct scn_gate *gate, size_t target);
size_t scn_gate_count(struct scn_gate *gate);

/*
 * Waits at most @p ms milliseconds for the count to reach @p target;
 * returns the count then, below @p target if the time ran out.
 */
size_t scn_gate_wait_ms(struct scn_gate *gate, size_t target, unsigned ms);

/* scn_gate_wait_ms() for at most SCN_PATIENCE_MS. */
size_t scn_gate_await(struct scn_gate *gate, size_t target);

/* Whether the count reaches @p target within SCN_PATIENCE_MS. */
bool scn_gate_reaches(struct scn_gate *gate, size_t target);

/*
 * Adds one to the gate @p gate points to: a crew_free_fn (or any
 * callback that takes a void pointer) that counts its calls.
 */
void scn_gate_bump(void *gate);

/* ------------------------------------------------------------------ */
/* Holding workers                                                     */
/* ------------------------------------------------------------------ */

/*
 * Tasks that hold their workers until the test opens the gate: each says
 * it has entered, waits for the gate, then notes whether its cancellation
 * had been requested by the time it was let through.
 */
struct scn_hold {
    struct scn_gate entered; /* one a holding task that has started */
    struct scn_gate gate;    /* opened by scn_hold_open() */
    atomic_uint saw_cancel;  /* holding tasks let through cancelled */
};

#define SCN_HOLD_INIT                   \
    {                                   \
        SCN_GATE_INIT, SCN_GATE_INIT, 0 \
    }

void scn_hold_init(struct scn_hold *hold);
void scn_hold_destroy(struct scn_hold *hold);

/* A crew_fn; @p hold is the struct scn_hold. Returns 0. */
int scn_hold_task(crew_task *task, void *hold);

/*
 * Submits a holding task to @p pool, its future to @p future, and waits
 * at most SCN_PATIENCE_MS until @p nth holding tasks of @p hold have
 * entered. Returns 0, crew_submit()'s error, or ETIMEDOUT when they did
 * not.
 */
int scn_hold_worker(crew_pool *pool, struct scn_hold *hold, size_t nth,
                    crew_future **future);

/* Opens the gate: every holding task, now and later, goes through. */
void scn_hold_open(struct scn_hold *hold);

/* ------------------------------------------------------------------ */
/* Submitting, counted                                                 */
/* ------------------------------------------------------------------ */

/*
 * crew_submit() and crew_submit_ex(), counting each task the pool accepts
 * (return 0) in a process-wide total. The scenarios submit through these,
 * so that the driver can say how many tasks a run pushed through the
 * library; refused submissions are not counted.
 */
int scn_submit(crew_pool *pool, crew_fn fn, void *arg, crew_future **future);
int scn_submit_ex(crew_pool *pool, crew_fn fn, void *arg, crew_free_fn arg_free,
                  unsigned flags, crew_future **future);

/*
 * crew_group_submit(), counted in the same total when the group accepts
 * the member.
 */
int scn_group_submit(crew_group *group, crew_fn fn, void *arg,
                     crew_free_fn arg_free, unsigned flags, size_t *index,
                     crew_future **future);

/* Tasks accepted through scn_submit(), scn_submit_ex() and
 * scn_group_submit() so far. */
uint64_t scn_tasks_submitted(void);

/* ------------------------------------------------------------------ */
/* Tasks and counters                                                  */
/* ------------------------------------------------------------------ */

/* How often a task ran and its argument was freed. */
struct scn_counts {
    atomic_uint ran;      /* scn_count_task() calls */
    atomic_uint freed;    /* scn_count_free() calls */
    struct scn_gate done; /* one a scn_count_task() call, after ran */
};

#define SCN_COUNTS_INIT     \
    {                       \
        0, 0, SCN_GATE_INIT \
    }

/* A crew_fn counting into the struct scn_counts @p counts; returns 0. */
int scn_count_task(crew_task *task, void *counts);

/* An arg_free counting into the struct scn_counts @p counts. */
void scn_count_free(void *counts);

/* A crew_fn that does nothing and succeeds with no value. */
int scn_ok_task(crew_task *task, void *arg);

/* A crew_fn adding one to the atomic_int @p counter; returns 0. */
int scn_bump_task(crew_task *task, void *counter);

/* An arg_free or value_free adding one to the atomic_int @p counter. */
void scn_bump(void *counter);

/*
 * How many values scn_value_free() has been handed in this process (each
 * Criterion test runs in a process of its own).
 */
extern atomic_uint scn_values_freed;

/* A value_free that frees nothing and counts in scn_values_freed. */
void scn_value_free(void *value);

/*
 * Spins, yielding the processor, until cancellation of @p task is
 * requested; false if none came within SCN_PATIENCE_MS.
 */
bool scn_spin_until_cancelled(crew_task *task);

/* ------------------------------------------------------------------ */
/* Futures and callbacks                                               */
/* ------------------------------------------------------------------ */

/* What a completion callback saw: how often it ran, where, and what. */
struct scn_seen {
    struct scn_gate calls; /* one a call, added after the fields below */
    pthread_t thread;      /* the thread of the latest call */
    crew_state state;
    void *result;
    int error_code;
};

#define SCN_SEEN_INIT          \
    {                          \
        .calls = SCN_GATE_INIT \
    }

void scn_seen_init(struct scn_seen *seen);

/* A crew_callback recording into the struct scn_seen @p seen. */
void scn_seen_cb(crew_future *future, void *seen);

/*
 * Settles the promise @p input on a thread of its own, then looks at once
 * at @p watch and @p seen: what a test needs to show that a combinator
 * resolved, and called back, inside that settlement.
 */
struct scn_settler {
    crew_future *input;     /* the promise to settle */
    int code;               /* 0: resolve it with NULL; else fail it */
    const char *message;    /* the failure's message */
    crew_future *watch;     /* its state is read right after */
    struct scn_seen *seen;  /* its calls are counted right after */
    pthread_t thread;       /* the settling thread */
    int err;                /* what the settling call returned */
    crew_state state_after; /* the state of watch right after */
    size_t calls_after;     /* the calls of seen right after */
};

/* A pthread start routine settling the struct scn_settler @p settler. */
void *scn_settle_thread(void *settler);

/*
 * The order completion callbacks ran in: scn_order_cb() takes the next
 * slot of its log and records which callback ran, on which thread, and
 * what the future held then. Slots past SCN_ORDER_SLOTS are counted in
 * next and not recorded.
 */
#define SCN_ORDER_SLOTS 16

struct scn_order_log {
    atomic_int next;            /* calls so far: the next free slot */
    int order[SCN_ORDER_SLOTS]; /* the index of each call's registration */
    pthread_t thread[SCN_ORDER_SLOTS];
    crew_state state[SCN_ORDER_SLOTS];
    void *result[SCN_ORDER_SLOTS];
};

/* One registration of scn_order_cb(): its log and its index. */
struct scn_order {
    struct scn_order_log *log;
    int index;
};

/* A crew_callback logging into the struct scn_order @p order. */
void scn_order_cb(crew_future *future, void *order);

/* Waits for @p future, releases it, and returns what the wait returned. */
int scn_wait_and_release(crew_future *future);

/* Releases each of the @p n futures. */
void scn_release_all(crew_future *const *futures, size_t n);

/*
 * A new string of @p n letters, a to z over and over, or NULL when out
 * of memory; the caller frees it.
 */
char *scn_letters(size_t n);

/* ------------------------------------------------------------------ */
/* Threads of this process                                             */
/* ------------------------------------------------------------------ */

/*
 * What the kernel says of this process's threads, read from
 * /proc/self/task (Linux). A test that needs to know a thread is blocked,
 * or gone, asks here rather than sleeping for long enough. The polls
 * yield between looks and give up after SCN_PATIENCE_MS.
 */

/* The calling thread's id in the kernel (gettid()). */
pid_t scn_tid(void);

/* The number of threads in this process; 0 when /proc cannot say. */
unsigned scn_thread_count(void);

/*
 * Whether the process is down to @p n threads or fewer within
 * SCN_PATIENCE_MS: a joined or detached thread can linger in /proc for a
 * moment. False, too, when the count cannot be read.
 */
bool scn_threads_back_to(unsigned n);

/* Whether thread @p tid has exited within SCN_PATIENCE_MS: a detached
 * thread leaves no other trace. */
bool scn_thread_gone(pid_t tid);

/*
 * Whether thread @p tid of this process is blocked in the kernel (state
 * S in /proc/self/task/<tid>/stat): waiting on a futex, a condition
 * variable, a join. Under valgrind, which runs one thread at a time, a
 * thread waiting for its turn looks asleep too.
 */
bool scn_thread_is_asleep(pid_t tid);

/* Whether thread @p tid is asleep within SCN_PATIENCE_MS. */
bool scn_thread_falls_asleep(pid_t tid);

/* ------------------------------------------------------------------ */
/* The heap                                                            */
/* ------------------------------------------------------------------ */

/*
 * The bytes the process's heap holds allocated now: the sanitizer
 * allocator's count under ASan or TSan, otherwise glibc's mallinfo2()
 * (blocks in the arenas plus blocks mapped on their own). For growth
 * checks, after minus before around a loop: other threads' allocations
 * and the library's per-thread caches of future blocks are noise, small
 * next to the bounds such checks use.
 */
size_t scn_heap_in_use(void);

/* ------------------------------------------------------------------ */
/* Reductions                                                          */
/* ------------------------------------------------------------------ */

/*
 * A floating-point sum whose bytes depend on the order of its additions,
 * for crew_parallel_reduce: scn_reduce_sum() is its crew_reduce_fn (the
 * terms of items [begin, end) added in order into a double partial),
 * scn_reduce_add() its crew_combine_fn, and scn_reduce_model() the result
 * of the documented tree computed serially: each chunk of @p grain items
 * (the last may be shorter) pushed at level 0, the two on top merged
 * while their levels match, the rest merged from the top down.
 */
double scn_reduce_term(size_t i);
int scn_reduce_sum(crew_task *task, size_t begin, size_t end, void *partial,
                   void *arg);
void scn_reduce_add(void *into, const void *from, void *arg);
double scn_reduce_model(size_t begin, size_t end, size_t grain);

#endif
