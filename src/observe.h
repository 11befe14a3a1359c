/*
 * Watching a pool's tasks run: what every kind calls around each run of
 * a user's function, for traces and latency (trace.c) and the watchdog
 * (watchdog.c), and the state those two share (observe.c).
 *
 * Nothing is observed until a trace starts or a watchdog is set: then a
 * run costs one relaxed load of the pool's `observing` word and a branch,
 * and reads no clock. While something is on, the run goes out of line:
 * crew__run_begin_slow() reads the task clock and publishes the run for
 * the watchdog, crew__run_end_slow() reads it again and records the run
 * on the calling thread's slot.
 *
 * A slot is one thread's: its ring of records for the trace recording
 * now, its latency histograms (kept from the first trace to the pool's
 * end), and, for a worker, the runs the watchdog may look at. Workers
 * have one each, made with the observer; other threads that run tasks
 * (one running its share of a parallel loop, a spare worker) get one
 * when they first record, up to OTHERS_MAX.
 */
#ifndef CREW_OBSERVE_H
#define CREW_OBSERVE_H

#include "crew.h"

#include "base/clock.h"
#include "pool.h"
#include "sched/stats.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a run is, for a trace's "cat". */
enum crew__run_kind {
    CREW__RUN_TASK,    /* a task, continuation or group member */
    CREW__RUN_CHUNK,   /* a parallel loop's chunk */
    CREW__RUN_SPAWNED, /* a spawned call another worker stole */
    CREW__RUN_RUNNER,  /* a loop's runner: not observed, its chunks are */
};

/* Histograms of 32 buckets an octave: a bucket's width is at most 1/32
 * of its least value, so its middle lies within 1/64 of any value in it.
 * Values below 64 ticks have a bucket each. */
#define CREW__HIST_SUB     32
#define CREW__HIST_BUCKETS (60 * CREW__HIST_SUB)
/* Nested runs a worker publishes for the watchdog; deeper ones are not
 * watched (their outer runs are). */
#define CREW__WATCH_DEPTH 16

/* One run of a user's function, on the stack of the thread running it. */
struct crew__run {
    unsigned observing; /* CREW__OBSERVE_* as it started; 0: nothing */
    void (*fn)(void);   /* the user's function */
    uint64_t queued;    /* ticks; 0 if unknown */
    uint64_t start;     /* ticks */
    uint64_t session;   /* the trace recording it; 0: none */
    struct crew__slot *slot;
    bool watched; /* published for the watchdog at depth slot->depth - 1 */
    unsigned char kind; /* enum crew__run_kind */
};

/* A record of a trace: one run that ended while it recorded. */
struct crew__record {
    void (*fn)(void);
    uint64_t queued, start, end; /* ticks; queued 0 if unknown */
    int32_t code;                /* the failure's code, else 0 */
    uint8_t state;               /* crew_state */
    uint8_t kind;                /* enum crew__run_kind */
};

/* The newest records of one thread, in a session: `written` of them in
 * all, the last `capacity` kept; the next goes to `next`, which wraps to
 * 0 (a compare, where `written % capacity` would be a division a task). */
struct crew__ring {
    uint64_t written;
    size_t next;
    size_t capacity;
    struct crew__record records[];
};

/* A run a worker publishes for the watchdog. Written by the worker, read
 * by the monitor thread; see crew__watch_read(). */
struct crew__watch_frame {
    _Atomic uint64_t run; /* the run's number on its slot; 0: none */
    _Atomic(void (*)(void)) fn;
    _Atomic uint64_t start; /* ticks */
};

struct crew__slot {
    /* Set while its thread writes a record: the stop of a trace waits
     * for it to clear before it takes the ring (see record()). */
    alignas(64) atomic_bool busy;
    /* The trace's ring: written by its thread between busy's set and
     * clear, taken by the stop. NULL while no trace records, or if it
     * could not be allocated. */
    struct crew__ring *ring;
    /* A thread other than a worker: which (compared under the observer's
     * lock), the session it last claimed the slot for, its name. */
    pthread_t thread;
    uint64_t session;
    struct crew__slot *next; /* on the observer's list of others */
    char name[16];
    /* The watchdog's view of a worker's runs: written by the worker,
     * read by the monitor thread. `depth` and `runs` are the worker's. */
    unsigned depth; /* runs nested on its stack now */
    uint64_t runs;  /* runs published so far */
    struct crew__watch_frame frames[CREW__WATCH_DEPTH];
    /* Latency, in ticks, written by the slot's thread under `busy` and
     * read by crew_pool_latency_get(): relaxed, a thread's own counts. */
    alignas(64) _Atomic uint64_t tasks;
    _Atomic uint64_t waits; /* tasks whose wait is known */
    _Atomic uint64_t wait_max, run_max;
    _Atomic uint64_t wait_hist[CREW__HIST_BUCKETS];
    _Atomic uint64_t run_hist[CREW__HIST_BUCKETS];
};

struct crew__watchdog; /* watchdog.c */

/*
 * A pool's observer: made by the first crew_trace_start() or
 * crew_pool_watchdog(), freed with the pool.
 */
struct crew__observer {
    struct crew__observer_seams seams; /* first: pool.c calls through it */
    crew_pool *pool;
    /* Guards the sessions (start, stop), the list of others, their
     * claims, and the watchdog's settings. No user code runs under it. */
    pthread_mutex_t lock;
    /* The trace recording now: a number unique in the process, 0 for
     * none. Set under the lock; read by every recorded run. */
    _Atomic uint64_t session;
    size_t events;    /* a ring's capacity, this session */
    uint64_t started; /* ticks at its start */
    unsigned threads;
    struct crew__slot *slots; /* one per worker */
    /* Newest first; linked under the lock, read without it. */
    _Atomic(struct crew__slot *) others;
    unsigned others_count;
    _Atomic uint64_t dropped; /* runs no slot could be had for */
    /* The watchdog (watchdog.c), and its ends, called through these
     * seams by the observer's; set under the lock with the first
     * watchdog, and kept. */
    struct crew__watchdog *watchdog;
    void (*watchdog_retire)(struct crew__observer *o, bool orphan);
    void (*watchdog_free)(struct crew__observer *o);
};

/* The pool's observer, made if it has none. NULL on ENOMEM. */
struct crew__observer *crew__observer_get(crew_pool *pool);

/* The pool's observer, or NULL if it has none yet. */
static inline struct crew__observer *
crew__observer_of(const crew_pool *pool)
{
    /* Acquire: pairs with the release that published it whole. */
    return (struct crew__observer *)atomic_load_explicit(&pool->observer,
                                                         memory_order_acquire);
}

/* Free every slot's ring, the workers' and the others': no thread
 * records into them (no session, or a stop that waited for the writers). */
void crew__observer_free_rings(struct crew__observer *o);

/* A new ring of `capacity` records; NULL on ENOMEM (or an overflowing
 * size). */
struct crew__ring *crew__ring_new(size_t capacity);

/* The bucket of a histogram holding `ticks`. */
static inline unsigned
crew__hist_bucket(uint64_t ticks)
{
    unsigned octave;

    if (ticks < 2 * CREW__HIST_SUB)
        return (unsigned)ticks;
    octave = 63u - (unsigned)__builtin_clzll(ticks); /* at least 6 */
    return (octave - 4) * CREW__HIST_SUB +
           (unsigned)((ticks >> (octave - 5)) % CREW__HIST_SUB);
}

/* The middle of bucket b, in ticks. */
static inline uint64_t
crew__hist_middle(unsigned b)
{
    unsigned octave;
    uint64_t low;

    if (b < 2 * CREW__HIST_SUB)
        return b;
    octave = b / CREW__HIST_SUB + 4;
    low = (uint64_t)(CREW__HIST_SUB + b % CREW__HIST_SUB) << (octave - 5);
    return low + ((uint64_t)1 << (octave - 5)) / 2;
}

/* fn's symbol name when the program exports it (dladdr()), else NULL. */
const char *crew__symbol_of(void (*fn)(void));

void crew__run_begin_slow(crew_pool *pool, struct crew__run *run);
void crew__run_end_slow(crew_pool *pool, struct crew__run *run,
                        crew_state state, int code);

/* Whether a run beginning on the calling thread is observed: a trace
 * records or a watchdog is set. If so, the caller fills in the run's
 * fn, queued and kind, and calls crew__run_begin_slow(). Inline: it is
 * on every task's path, and costs a load and a branch. */
static CREW__ALWAYS_INLINE bool
crew__run_observed(crew_pool *pool, struct crew__run *run)
{
    /* Relaxed: a switch. A run that misses a start goes unrecorded; one
     * that sees it reads the session afresh (crew__run_begin_slow()). */
    run->observing =
        atomic_load_explicit(&pool->observing, memory_order_relaxed);
    return run->observing != 0;
}

/* A run of fn begins on the calling thread: `queued` is its stamp
 * (crew__pool_submit(); 0 if none). */
static CREW__ALWAYS_INLINE void
crew__run_begin(crew_pool *pool, struct crew__run *run, void (*fn)(void),
                uint64_t queued, enum crew__run_kind kind)
{
    if (crew__run_observed(pool, run)) {
        run->fn = fn;
        run->queued = queued;
        run->kind = (unsigned char)kind;
        crew__run_begin_slow(pool, run);
    }
}

/* The run ended, in `state` (SUCCEEDED, FAILED or CANCELLED) with
 * `code` (0 for a success). */
static CREW__ALWAYS_INLINE void
crew__run_end(crew_pool *pool, struct crew__run *run, crew_state state,
              int code)
{
    if (run->observing != 0)
        crew__run_end_slow(pool, run, state, code);
}

#endif
