/*
 * Traces and latency: crew_trace_start(), crew_trace_stop() and
 * crew_pool_latency_get(), over the observer's slots (observe.h).
 *
 * A session is the interval between a start and its stop. The start
 * gives every worker's slot a ring, then publishes a session number no
 * other session of the process has had, then sets the pool's TRACE bit;
 * runs that see the bit record into their thread's slot while the
 * session lasts (observe.c). The stop clears the bit and the session,
 * waits until no slot is being written (observe.c's StoreLoad pair),
 * and then owns every ring: it sorts each by start, writes the JSON and
 * frees them, all under the observer's lock, so that a new start waits
 * for it.
 *
 * Latency is read from the slots' histograms without the lock: each is
 * one thread's, its counts only grow, and the list of other threads'
 * slots only grows at its head.
 */
#include "observe.h"

#include "base/alloc.h"
#include "base/platform.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAMES                                                      \
    64 /* symbol names a stop keeps at hand: a direct-mapped cache \
        */

/* Numbers of sessions, unique in the process: 0 is "none". */
static _Atomic uint64_t sessions;

int
crew_trace_start(crew_pool *pool, size_t events)
{
    struct crew__observer *o;
    unsigned i;
    int err = 0;

    if (pool == NULL || events == 0)
        return EINVAL;
    if (crew__pool_is_orphan(pool))
        return ESHUTDOWN;
    o = crew__observer_get(pool);
    if (o == NULL)
        return ENOMEM;
    pthread_mutex_lock(&o->lock);
    /* Relaxed: written under the lock. */
    if (atomic_load_explicit(&o->session, memory_order_relaxed) != 0) {
        err = EALREADY;
        goto out_unlock;
    }
    /* No run writes a worker's ring now: none has this session yet. */
    for (i = 0; i < o->threads; i++) {
        o->slots[i].ring = crew__ring_new(events);
        if (o->slots[i].ring == NULL) {
            crew__observer_free_rings(o);
            err = ENOMEM;
            goto out_unlock;
        }
    }
    o->events = events;
    o->started = crew__ticks();
    /* Relaxed: a unique number is all it must be. seq_cst store: the
     * runs' recheck in record() (observe.c) acquires it, and with it
     * the rings. */
    atomic_store_explicit(
        &o->session,
        atomic_fetch_add_explicit(&sessions, 1, memory_order_relaxed) + 1,
        memory_order_seq_cst);
    atomic_fetch_or_explicit(&pool->observing, CREW__OBSERVE_TRACE,
                             memory_order_relaxed);
out_unlock:
    pthread_mutex_unlock(&o->lock);
    return err;
}

/* The other threads' slots, newest first. */
static struct crew__slot *
others_of(const struct crew__observer *o)
{
    /* Acquire: pairs with the release that linked the newest. */
    return atomic_load_explicit(&o->others, memory_order_acquire);
}

/* Wait until the slot's thread writes no record: the load half of the
 * stop's StoreLoad (observe.c). */
static void
wait_unbusy(struct crew__slot *s)
{
    while (atomic_load_explicit(&s->busy, memory_order_seq_cst))
        crew__thread_yield();
}

/*
 * Writing the JSON. Every write goes through out(), which keeps the
 * first failure's errno and writes nothing after it.
 */
struct writer {
    FILE *file;
    int err;
    double us_per_tick;
    uint64_t started; /* ticks */
    int pid;
    bool first; /* no event written yet */
    struct {
        void (*fn)(void);
        const char *name; /* NULL: not exported */
    } names[NAMES];
};

static void out(struct writer *w, const char *format, ...) CREW_PRINTF(2, 3);

static void
out(struct writer *w, const char *format, ...)
{
    va_list args;

    if (w->err != 0)
        return;
    va_start(args, format);
    if (vfprintf(w->file, format, args) < 0)
        w->err = errno != 0 ? errno : EIO;
    va_end(args);
}

/* A JSON string's body: quotes, backslashes and control characters
 * escaped. */
static void
out_string(struct writer *w, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            out(w, "\\%c", c);
        else if (c < 0x20)
            out(w, "\\u%04x", c);
        else
            out(w, "%c", c);
    }
}

/* Open the next event: a comma after the previous one. */
static void
out_event(struct writer *w)
{
    out(w, w->first ? "\n  {" : ",\n  {");
    w->first = false;
}

/* fn's address as a number (see crew__symbol_of()). */
static uintptr_t
address_of(void (*fn)(void))
{
    void *address;

    memcpy(&address, &fn, sizeof(address));
    return (uintptr_t)address;
}

/* fn's symbol name if the program exports it, else NULL; kept at hand,
 * since most records share a few functions. */
static const char *
symbol_of(struct writer *w, void (*fn)(void))
{
    size_t i = (size_t)(address_of(fn) >> 4) % NAMES;

    if (w->names[i].fn != fn) {
        w->names[i].fn = fn;
        w->names[i].name = crew__symbol_of(fn);
    }
    return w->names[i].name;
}

static double
us_of(const struct writer *w, uint64_t ticks)
{
    return (double)(int64_t)(ticks - w->started) * w->us_per_tick;
}

static void
out_track_name(struct writer *w, int tid, const char *name)
{
    out_event(w);
    out(w,
        "\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
        "\"args\":{\"name\":\"",
        w->pid, tid);
    out_string(w, name);
    out(w, "\"}}");
    out_event(w);
    out(w,
        "\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,"
        "\"tid\":%d,\"args\":{\"sort_index\":%d}}",
        w->pid, tid, tid);
}

static void
out_record(struct writer *w, int tid, int worker, const struct crew__record *r)
{
    static const char *const kinds[] = {"task", "chunk", "spawned"};
    static const char *const outcomes[] = {
        [CREW_SUCCEEDED] = "succeeded",
        [CREW_FAILED] = "failed",
        [CREW_CANCELLED] = "cancelled",
    };
    const char *name = symbol_of(w, r->fn);
    char address[2 + 2 * sizeof(uintptr_t) + 1];

    snprintf(address, sizeof(address), "0x%" PRIxPTR, address_of(r->fn));
    out_event(w);
    out(w, "\"name\":\"");
    out_string(w, name != NULL ? name : address);
    out(w,
        "\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,"
        "\"ts\":%.3f,\"dur\":%.3f,\"args\":{",
        kinds[r->kind], w->pid, tid, us_of(w, r->start),
        (double)(r->end - r->start) * w->us_per_tick);
    if (worker >= 0)
        out(w, "\"worker\":%d,", worker);
    if (r->queued != 0 && r->queued <= r->start)
        out(w, "\"queued_us\":%.3f,\"wait_us\":%.3f,", us_of(w, r->queued),
            (double)(r->start - r->queued) * w->us_per_tick);
    out(w, "\"outcome\":\"%s\",\"code\":%d,\"fn\":\"%s\"}}",
        r->state < sizeof(outcomes) / sizeof(outcomes[0]) &&
                outcomes[r->state] != NULL
            ? outcomes[r->state]
            : "unknown",
        (int)r->code, address);
}

static int
by_start(const void *a, const void *b)
{
    const struct crew__record *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* Write one thread's track: its name, then its records by start. */
static void
out_track(struct writer *w, int tid, int worker, const char *name,
          struct crew__ring *ring)
{
    size_t n;

    out_track_name(w, tid, name);
    if (ring == NULL)
        return;
    n = ring->written < ring->capacity ? (size_t)ring->written : ring->capacity;
    qsort(ring->records, n, sizeof(ring->records[0]), by_start);
    for (size_t i = 0; i < n && w->err == 0; i++)
        out_record(w, tid, worker, &ring->records[i]);
}

static void
out_trace(struct writer *w, struct crew__observer *o, uint64_t session)
{
    const char *pool_name = crew__pool_name(o->pool);
    char name[16];
    int tid = 1;

    out(w, "{\"traceEvents\":[");
    out_event(w);
    out(w,
        "\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
        "\"args\":{\"name\":\"crew pool ",
        w->pid);
    out_string(w, pool_name);
    out(w, "\"}}");
    for (unsigned i = 0; i < o->threads; i++, tid++) {
        /* Named as the worker's thread is (sched/thread.c). */
        snprintf(name, sizeof(name), "%s-%u", pool_name, i);
        out_track(w, tid, (int)i, name, o->slots[i].ring);
    }
    for (struct crew__slot *s = others_of(o); s != NULL; s = s->next) {
        char label[48];

        if (s->session != session)
            continue;
        snprintf(label, sizeof(label), "%s (outside the pool)",
                 s->name[0] != '\0' ? s->name : "thread");
        out_track(w, tid++, -1, label, s->ring);
    }
    out(w,
        "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{"
        "\"library\":\"crew %s\",\"threads\":%u,\"events_per_thread\":%zu,"
        "\"dropped\":%" PRIu64 "}}\n",
        crew_version(), o->threads, o->events,
        atomic_load_explicit(&o->dropped, memory_order_relaxed));
}

int
crew_trace_stop(crew_pool *pool, FILE *json)
{
    struct crew__observer *o;
    uint64_t session;
    bool orphan;
    int err = 0;

    if (pool == NULL)
        return EINVAL;
    o = crew__observer_of(pool);
    if (o == NULL)
        return EALREADY;
    /* In a child after fork() the lock may have been held at the fork,
     * and the threads that set `busy` are not here: neither is waited
     * for. */
    orphan = crew__pool_is_orphan(pool);
    if (!orphan)
        pthread_mutex_lock(&o->lock);
    session = atomic_load_explicit(&o->session, memory_order_relaxed);
    if (session == 0) {
        err = EALREADY;
        goto out_unlock;
    }
    atomic_fetch_and_explicit(&pool->observing, ~(unsigned)CREW__OBSERVE_TRACE,
                              memory_order_relaxed);
    /* seq_cst: the store half of the stop's StoreLoad (observe.c). */
    atomic_store_explicit(&o->session, 0, memory_order_seq_cst);
    for (unsigned i = 0; i < o->threads && !orphan; i++)
        wait_unbusy(&o->slots[i]);
    for (struct crew__slot *s = others_of(o); s != NULL && !orphan; s = s->next)
        wait_unbusy(s);
    if (json != NULL) {
        struct writer w = {.file = json,
                           .us_per_tick = crew__clock_rate() / 1000.0,
                           .started = o->started,
                           .pid = (int)getpid(),
                           .first = true};

        out_trace(&w, o, session);
        if (w.err == 0 && fflush(json) != 0)
            w.err = errno != 0 ? errno : EIO;
        err = w.err;
    }
    crew__observer_free_rings(o);
    atomic_store_explicit(&o->dropped, 0, memory_order_relaxed);
out_unlock:
    if (!orphan)
        pthread_mutex_unlock(&o->lock);
    return err;
}

/*
 * Latency.
 */
enum which { WAIT, RUN };

static _Atomic uint64_t *
hist_of(struct crew__slot *s, enum which which)
{
    return which == WAIT ? s->wait_hist : s->run_hist;
}

/* The count of bucket b over every slot. */
static uint64_t
bucket_count(const struct crew__observer *o, enum which which, unsigned b)
{
    uint64_t n = 0;

    /* Relaxed: see crew__slot's latency fields. */
    for (unsigned i = 0; i < o->threads; i++)
        n += atomic_load_explicit(&hist_of(&o->slots[i], which)[b],
                                  memory_order_relaxed);
    for (struct crew__slot *s = others_of(o); s != NULL; s = s->next)
        n += atomic_load_explicit(&hist_of(s, which)[b], memory_order_relaxed);
    return n;
}

/* The nearest-rank percentiles p50 and p99 of a histogram, in ticks, no
 * more than `max`. The counts only grow meanwhile, so the second pass
 * reaches every rank the first one's total asks for. */
static void
percentiles(const struct crew__observer *o, enum which which, uint64_t max,
            uint64_t *p50, uint64_t *p99)
{
    uint64_t total = 0, seen = 0, rank50, rank99;
    unsigned b;

    *p50 = *p99 = 0;
    for (b = 0; b < CREW__HIST_BUCKETS; b++)
        total += bucket_count(o, which, b);
    if (total == 0)
        return;
    rank50 = (total * 50 + 99) / 100;
    rank99 = (total * 99 + 99) / 100;
    for (b = 0; b < CREW__HIST_BUCKETS && seen < rank99; b++) {
        uint64_t middle = crew__hist_middle(b);

        seen += bucket_count(o, which, b);
        if (middle > max)
            middle = max;
        if (*p50 == 0 && seen >= rank50)
            *p50 = middle;
        if (seen >= rank99)
            *p99 = middle;
    }
}

static uint64_t
field_of(const struct crew__slot *s, size_t offset)
{
    /* Relaxed: see crew__slot's latency fields. */
    return atomic_load_explicit(
        (_Atomic uint64_t *)(void *)((char *)s + offset), memory_order_relaxed);
}

/* A counter of every slot's, at `offset` in it: summed, or the largest. */
static uint64_t
gather(const struct crew__observer *o, size_t offset, bool largest)
{
    uint64_t result = 0;

    for (unsigned i = 0; i < o->threads; i++) {
        uint64_t v = field_of(&o->slots[i], offset);
        result = largest ? (v > result ? v : result) : result + v;
    }
    for (struct crew__slot *s = others_of(o); s != NULL; s = s->next) {
        uint64_t v = field_of(s, offset);
        result = largest ? (v > result ? v : result) : result + v;
    }
    return result;
}

int
crew_pool_latency_get(const crew_pool *pool, crew_latency *latency)
{
    const struct crew__observer *o;
    uint64_t wait_max, run_max, wait50, wait99, run50, run99;
    double rate;

    if (pool == NULL || latency == NULL)
        return EINVAL;
    memset(latency, 0, sizeof(*latency));
    o = crew__observer_of(pool);
    if (o == NULL)
        return 0;
    rate = crew__clock_rate();
    wait_max = gather(o, offsetof(struct crew__slot, wait_max), true);
    run_max = gather(o, offsetof(struct crew__slot, run_max), true);
    percentiles(o, WAIT, wait_max, &wait50, &wait99);
    percentiles(o, RUN, run_max, &run50, &run99);
    latency->tasks = gather(o, offsetof(struct crew__slot, tasks), false);
    latency->wait_p50_ns = crew__ticks_to_ns(wait50, rate);
    latency->wait_p99_ns = crew__ticks_to_ns(wait99, rate);
    latency->wait_max_ns = crew__ticks_to_ns(wait_max, rate);
    latency->run_p50_ns = crew__ticks_to_ns(run50, rate);
    latency->run_p99_ns = crew__ticks_to_ns(run99, rate);
    latency->run_max_ns = crew__ticks_to_ns(run_max, rate);
    return 0;
}
