/*
 * The observer of a pool's runs (observe.h): its slots, and the slow
 * halves of crew__run_begin() and crew__run_end().
 *
 * Recording. A run that ends while the trace it began in still records
 * is written into its thread's slot between the set and the clear of the
 * slot's `busy` flag, after a second look at the session. The stop
 * (trace.c) clears the session first, then waits for every slot's flag
 * to clear before it takes the rings. Both sides store, then load the
 * other's word, seq_cst: a StoreLoad pair, so that either the writer
 * sees the session gone and writes nothing, or the stop sees the flag
 * and waits for it. A slot is only ever its thread's, so no two threads
 * share a flag.
 *
 * Slots of other threads. A thread that is no worker of the pool (one
 * running its share of a parallel loop, a spare worker) finds its slot
 * on the observer's list, by its pthread_t, under the lock, and keeps it
 * for the session in a thread-local cache; it adds one to the list, at
 * most OTHERS_MAX, the first time it records. A slot outlives its thread
 * (its latency counts stay the pool's); a later thread with the same
 * pthread_t, which only a finished thread leaves behind, takes it over.
 *
 * Publishing runs for the watchdog: see crew__watch_read() in
 * watchdog.c, which reads what publish() writes.
 *
 * Lock order: the observer's lock, then nothing.
 */
#include "observe.h"

#include "base/alloc.h"
#include "base/platform.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#define OTHERS_MAX 64 /* slots of threads that are no worker of the pool */

/* The slot of the calling thread, when it is no worker of any pool:
 * valid for one session. */
static _Thread_local struct {
    uint64_t session;
    struct crew__slot *slot;
} other_here;

static void
retire(struct crew__observer_seams *seams, bool orphan)
{
    struct crew__observer *o = (struct crew__observer *)seams;
    void (*watchdog_retire)(struct crew__observer *, bool);

    if (orphan) {
        watchdog_retire = o->watchdog_retire;
    } else {
        pthread_mutex_lock(&o->lock);
        watchdog_retire = o->watchdog_retire;
        pthread_mutex_unlock(&o->lock);
    }
    if (watchdog_retire != NULL)
        watchdog_retire(o, orphan);
}

void
crew__observer_free_rings(struct crew__observer *o)
{
    for (unsigned i = 0; i < o->threads; i++) {
        crew__free(o->slots[i].ring);
        o->slots[i].ring = NULL;
    }
    /* Acquire: see crew_pool_latency_get()'s reading of the list. */
    for (struct crew__slot *s =
             atomic_load_explicit(&o->others, memory_order_acquire);
         s != NULL; s = s->next) {
        crew__free(s->ring);
        s->ring = NULL;
    }
}

static void
observer_free(struct crew__observer_seams *seams, bool orphan)
{
    struct crew__observer *o = (struct crew__observer *)seams;
    struct crew__slot *next;

    if (o->watchdog_free != NULL)
        o->watchdog_free(o);
    crew__observer_free_rings(o);
    crew__free(o->slots);
    for (struct crew__slot *s =
             atomic_load_explicit(&o->others, memory_order_relaxed);
         s != NULL; s = next) {
        next = s->next;
        crew__free(s);
    }
    if (!orphan)
        pthread_mutex_destroy(&o->lock);
    crew__free(o);
}

/* Make the pool's observer and publish it; if another thread published
 * one first, use that. */
static struct crew__observer *
observer_new(crew_pool *pool)
{
    struct crew__observer *o = crew__calloc(1, sizeof(*o));
    struct crew__observer_seams *none = NULL;

    if (o == NULL)
        return NULL;
    o->seams.retire = retire;
    o->seams.free = observer_free;
    o->pool = pool;
    o->threads = crew_pool_threads(pool);
    o->slots = crew__calloc_aligned(o->threads, sizeof(*o->slots));
    if (o->slots == NULL)
        goto out_free;
    if (pthread_mutex_init(&o->lock, NULL) != 0)
        goto out_free_slots;
    crew__clock_anchor();
    /* Acquire-release: publishes the observer whole, or sees the one
     * that won. */
    if (atomic_compare_exchange_strong_explicit(&pool->observer, &none,
                                                &o->seams, memory_order_acq_rel,
                                                memory_order_acquire))
        return o;
    pthread_mutex_destroy(&o->lock);
    crew__free(o->slots);
    crew__free(o);
    return (struct crew__observer *)none;

out_free_slots:
    crew__free(o->slots);
out_free:
    crew__free(o);
    return NULL;
}

struct crew__observer *
crew__observer_get(crew_pool *pool)
{
    struct crew__observer *o = crew__observer_of(pool);

    return o != NULL ? o : observer_new(pool);
}

struct crew__ring *
crew__ring_new(size_t capacity)
{
    struct crew__ring *ring;

    if (capacity > (SIZE_MAX - sizeof(*ring)) / sizeof(ring->records[0]))
        return NULL;
    ring = crew__malloc(sizeof(*ring) + capacity * sizeof(ring->records[0]));
    if (ring == NULL)
        return NULL;
    ring->written = 0;
    ring->next = 0;
    ring->capacity = capacity;
    return ring;
}

/* The calling thread's slot among the others, for `session`, made if
 * need be; NULL if there is none to be had. The caller holds the lock. */
static struct crew__slot *
other_claim(struct crew__observer *o, uint64_t session)
{
    pthread_t self = pthread_self();
    struct crew__slot *s;

    for (s = atomic_load_explicit(&o->others, memory_order_relaxed); s != NULL;
         s = s->next) {
        if (pthread_equal(s->thread, self))
            break;
    }
    if (s == NULL) {
        if (o->others_count == OTHERS_MAX)
            return NULL;
        s = crew__calloc_aligned(1, sizeof(*s));
        if (s == NULL)
            return NULL;
        s->thread = self;
        /* Relaxed: linked under the lock. Release: readers without it
         * (crew_pool_latency_get()) see the slot whole. */
        s->next = atomic_load_explicit(&o->others, memory_order_relaxed);
        atomic_store_explicit(&o->others, s, memory_order_release);
        o->others_count++;
    }
    if (s->session != session) {
        /* Its ring of an earlier session went with that session's stop. */
        s->session = session;
        s->ring = crew__ring_new(o->events);
        crew__thread_get_name(s->name, sizeof(s->name));
    }
    return s;
}

/* The calling thread's slot for `session`, or NULL. */
static struct crew__slot *
slot_here(struct crew__observer *o, uint64_t session)
{
    unsigned i = crew__pool_slot(o->pool);
    struct crew__slot *s;

    if (i < o->threads)
        return &o->slots[i];
    if (other_here.session == session)
        return other_here.slot;
    pthread_mutex_lock(&o->lock);
    /* Relaxed: the lock orders it with the start and the stop. */
    s = atomic_load_explicit(&o->session, memory_order_relaxed) == session
            ? other_claim(o, session)
            : NULL;
    pthread_mutex_unlock(&o->lock);
    if (s == NULL) /* Relaxed: a count. */
        atomic_fetch_add_explicit(&o->dropped, 1, memory_order_relaxed);
    other_here.session = session;
    other_here.slot = s;
    return s;
}

/* Publish the run for the watchdog at the worker's next depth. */
static void
publish(struct crew__slot *s, struct crew__run *run)
{
    unsigned depth = s->depth++;

    run->watched = true;
    if (depth >= CREW__WATCH_DEPTH)
        return;
    struct crew__watch_frame *f = &s->frames[depth];
    /* Relaxed, then release: a reader that sees any field of this run
     * sees `run` cleared first (see crew__watch_read()). */
    atomic_store_explicit(&f->run, 0, memory_order_relaxed);
    atomic_store_explicit(&f->fn, run->fn, memory_order_release);
    atomic_store_explicit(&f->start, run->start, memory_order_release);
    atomic_store_explicit(&f->run, ++s->runs, memory_order_release);
}

static void
unpublish(struct crew__slot *s)
{
    unsigned depth = --s->depth;

    if (depth < CREW__WATCH_DEPTH) /* Relaxed: see crew__watch_read(). */
        atomic_store_explicit(&s->frames[depth].run, 0, memory_order_relaxed);
}

void
crew__run_begin_slow(crew_pool *pool, struct crew__run *run)
{
    struct crew__observer *o = crew__observer_of(pool);

    run->session = 0;
    run->slot = NULL;
    run->watched = false;
    if (run->kind == CREW__RUN_RUNNER) {
        run->observing = 0; /* nor does its end */
        return;
    }
    if ((run->observing & CREW__OBSERVE_TRACE) != 0) {
        /* Relaxed: checked again before the record is written. */
        run->session = atomic_load_explicit(&o->session, memory_order_relaxed);
        if (run->session != 0)
            run->slot = slot_here(o, run->session);
        if (run->slot == NULL)
            run->session = 0;
    }
    run->start = crew__ticks();
    if ((run->observing & CREW__OBSERVE_WATCH) != 0) {
        unsigned i = crew__pool_slot(pool);

        if (i < o->threads)
            publish(&o->slots[i], run);
    }
}

/* The largest of *max and v, by the slot's thread alone. */
static void
raise_to(_Atomic uint64_t *max, uint64_t v)
{
    /* Relaxed: see crew__slot's latency fields. */
    if (v > atomic_load_explicit(max, memory_order_relaxed))
        atomic_store_explicit(max, v, memory_order_relaxed);
}

static void
count(_Atomic uint64_t *counter)
{
    crew__counter_add(counter, 1);
}

/* Record the run on its slot if its session still records. */
static void
record(struct crew__observer *o, const struct crew__run *run, uint64_t end,
       crew_state state, int code)
{
    struct crew__slot *s = run->slot;

    /* seq_cst: the store half of this side's StoreLoad (file comment). */
    atomic_store_explicit(&s->busy, true, memory_order_seq_cst);
    if (atomic_load_explicit(&o->session, memory_order_seq_cst) ==
        run->session) {
        struct crew__ring *ring = s->ring;

        if (ring != NULL) {
            ring->written++;
            if (ring->next == ring->capacity)
                ring->next = 0;
            ring->records[ring->next++] =
                (struct crew__record){.fn = run->fn,
                                      .queued = run->queued,
                                      .start = run->start,
                                      .end = end,
                                      .code = code,
                                      .state = (uint8_t)state,
                                      .kind = run->kind};
        }
        count(&s->tasks);
        count(&s->run_hist[crew__hist_bucket(end - run->start)]);
        raise_to(&s->run_max, end - run->start);
        if (run->queued != 0 && run->queued <= run->start) {
            count(&s->waits);
            count(&s->wait_hist[crew__hist_bucket(run->start - run->queued)]);
            raise_to(&s->wait_max, run->start - run->queued);
        }
    }
    /* Release: the stop that sees it clear reads the record. */
    atomic_store_explicit(&s->busy, false, memory_order_release);
}

void
crew__run_end_slow(crew_pool *pool, struct crew__run *run, crew_state state,
                   int code)
{
    struct crew__observer *o = crew__observer_of(pool);
    uint64_t end = crew__ticks();

    if (run->session != 0)
        record(o, run, end, state, code);
    if (run->watched)
        unpublish(&o->slots[crew__pool_slot(pool)]);
}

const char *
crew__symbol_of(void (*fn)(void))
{
    Dl_info info;
    void *address;

    /* ISO C has no conversion from a function pointer to void *; POSIX
     * requires one to work (dlsym() returns functions as void *). */
    memcpy(&address, &fn, sizeof(address));
    if (dladdr(address, &info) != 0 && info.dli_sname != NULL &&
        info.dli_saddr == address)
        return info.dli_sname;
    return NULL;
}
