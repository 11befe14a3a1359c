/*
 * Parallel loops: crew_parallel_for.
 *
 * Theory of operation. The range is handed out in chunks from a shared
 * cursor, one claim (a CAS) a chunk: fixed chunks of `grain` items, or,
 * with grain 0, guided ones, each claim taking what is left divided by
 * twice the participants (at least one item), so the first chunks are
 * large and cheap to hand out and the last ones small enough to even out
 * the finish whatever the items cost. The participants are the calling
 * thread and up to threads - 1 runners, internal tasks on the pool that
 * claim and run chunks until none is left. When a chunk fails the loop
 * stops: claims fail from then on, so chunks not yet started are skipped.
 *
 * The caller claims like the runners. Once it finds nothing left, it
 * takes back the runners still queued (crew__task_revoke(): they would
 * find nothing either, and waiting for a worker to reach them would only
 * cost time) and waits for the others, helping on a worker, so a loop
 * started by a task on a pool of one thread runs entirely on it. The loop
 * lives on the caller's stack: every runner has either been taken back
 * or has finished when the caller returns.
 *
 * Each chunk runs with a crew_task of its own (crew__task_call_range()),
 * so its failure is its own. Failures are kept in a list under a lock
 * (they are rare) with their chunk's first item, and sorted into the
 * aggregate once every participant is done. Runners count in no
 * statistic; their chunks count as tasks.
 */
#include "base/alloc.h"
#include "core/error.h"
#include "core/future.h"
#include "base/platform.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stdatomic.h>

struct failure {
    struct failure *next;
    size_t position; /* the chunk's first item */
    crew_error *error;
};

struct loop {
    crew_pool *pool;
    crew_range_fn fn;
    void *arg;
    size_t end;
    size_t grain;           /* 0: guided */
    size_t participants;    /* the caller and the runners at most */
    atomic_size_t chunks;   /* chunks run, for the aggregate's message */
    atomic_size_t cursor;   /* the first item not yet claimed */
    atomic_bool stop;       /* a chunk failed: claim no more */
    struct crew__lock lock; /* guards the two below */
    struct failure *failures;
    bool lost; /* a failure could not be recorded: memory ran out */
};

/* Claim the next chunk into [*lo, *hi); false once none is left or the
 * loop has stopped. */
static bool
claim(struct loop *l, size_t *lo, size_t *hi)
{
    /* Relaxed: the cursor only shares out the items; what the chunks
     * write is published by the runners' resolution, which the caller
     * waits for. */
    size_t at = atomic_load_explicit(&l->cursor, memory_order_relaxed);
    size_t size;

    do {
        size_t left;

        if (at >= l->end ||
            atomic_load_explicit(&l->stop, memory_order_relaxed))
            return false;
        left = l->end - at;
        size = l->grain != 0 ? l->grain : left / (2 * l->participants);
        if (size == 0)
            size = 1;
        if (size > left)
            size = left;
    } while (!atomic_compare_exchange_weak_explicit(&l->cursor, &at, at + size,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    *lo = at;
    *hi = at + size;
    return true;
}

static void
record_failure(struct loop *l, size_t position, crew_error *error)
{
    struct failure *f = error != NULL ? crew__malloc(sizeof(*f)) : NULL;

    crew__lock_acquire(&l->lock);
    if (f != NULL) {
        *f = (struct failure){l->failures, position, error};
        l->failures = f;
    } else {
        l->lost = true;
    }
    crew__lock_release(&l->lock);
    if (f == NULL)
        crew_error_release(error);
}

/* Claim and run chunks until none is left; count them as tasks. */
static void
participate(struct loop *l)
{
    uint64_t ok = 0, failed = 0;
    size_t lo, hi;

    while (claim(l, &lo, &hi)) {
        crew_error *error;

        if (crew__task_call_range(l->pool, l->fn, lo, hi, l->arg, &error) ==
            0) {
            ok++;
            continue;
        }
        failed++;
        /* Relaxed: a hint to the other participants' claims; the failure
         * itself travels under the lock. */
        atomic_store_explicit(&l->stop, true, memory_order_relaxed);
        record_failure(l, lo, error);
    }
    crew__pool_count_chunks(l->pool, ok, failed);
    /* Relaxed: read once every participant is done. */
    atomic_fetch_add_explicit(&l->chunks, ok + failed, memory_order_relaxed);
}

static int
runner(crew_task *task, void *arg)
{
    (void)task;
    participate(arg);
    return 0;
}

/* Queue a runner: an internal task, holding no max_queued slot and
 * counted as no task, with a reference for the queue and one for *out. */
static int
submit_runner(struct loop *l, crew_future **out)
{
    crew_future *f = crew__task_new(l->pool, runner, l, NULL, 2);
    int err;

    if (f == NULL)
        return ENOMEM;
    f->slotted = false;
    f->internal = true;
    err = crew__pool_submit(l->pool, &f->job, CREW__JOB_INTERNAL);
    if (err != 0) {
        crew__task_discard(f);
        return err;
    }
    *out = f;
    return 0;
}

/* The failures, sorted by position, into an aggregate; ENOMEM if one was
 * lost or the aggregate cannot be made. Frees the list. */
static int
report(struct loop *l, crew_error **error)
{
    struct crew__entry *entries;
    crew_error *all = NULL;
    size_t n = 0;

    for (struct failure *f = l->failures; f != NULL; f = f->next)
        n++;
    if (!l->lost)
        all = crew__error_aggregate(
            n, atomic_load_explicit(&l->chunks, memory_order_relaxed),
            "chunks failed", &entries);
    if (all != NULL) {
        /* Insertion by position: failures are few, and most come in
         * nearly reversed order (the list is newest first). */
        size_t k = 0;
        for (struct failure *f = l->failures; f != NULL; f = f->next, k++) {
            size_t j = k;
            for (; j > 0 && entries[j - 1].input > f->position; j--)
                entries[j] = entries[j - 1];
            entries[j] = (struct crew__entry){f->error, f->position};
        }
    }
    while (l->failures != NULL) {
        struct failure *f = l->failures;
        l->failures = f->next;
        if (all == NULL)
            crew_error_release(f->error);
        crew__free(f);
    }
    if (all == NULL)
        return ENOMEM;
    if (error != NULL)
        *error = all;
    else
        crew_error_release(all);
    return CREW_EAGGREGATE;
}

int
crew_parallel_for(crew_pool *pool, size_t begin, size_t end, size_t grain,
                  crew_range_fn fn, void *arg, crew_error **error)
{
    struct loop l = {
        .pool = pool, .fn = fn, .arg = arg, .end = end, .grain = grain};
    crew_future **runners = NULL;
    size_t wanted, started = 0;

    if (error != NULL)
        *error = NULL;
    if (pool == NULL || fn == NULL || begin > end)
        return EINVAL;
    if (begin == end)
        return 0;
    atomic_init(&l.cursor, begin);
    atomic_init(&l.stop, false);
    atomic_init(&l.chunks, 0);
    atomic_init(&l.lock.word, 0);
    /* Runners beyond the chunks there are would find nothing to do. */
    wanted = crew_pool_threads(pool) - 1;
    if (grain != 0 && (end - begin - 1) / grain < wanted)
        wanted = (end - begin - 1) / grain;
    if (grain == 0 && end - begin - 1 < wanted)
        wanted = end - begin - 1;
    l.participants = wanted + 1;
    if (wanted > 0)
        runners = crew__malloc(wanted * sizeof(*runners));
    /* Without memory or an open pool, fewer runners: the caller does the
     * rest, which is still correct. */
    while (runners != NULL && started < wanted &&
           submit_runner(&l, &runners[started]) == 0)
        started++;

    participate(&l);

    for (size_t i = 0; i < started; i++) {
        if (!crew__task_revoke(runners[i]))
            crew_future_wait(runners[i]);
        crew_future_release(runners[i]);
    }
    crew__free(runners);
    if (l.failures == NULL && !l.lost)
        return 0;
    return report(&l, error);
}
