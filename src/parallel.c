/*
 * Parallel loops: crew_parallel_for, and crew_parallel_reduce below.
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
#include "core/failures.h"
#include "core/future.h"
#include "base/platform.h"
#include "observe.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct loop {
    crew_pool *pool;
    /* What each participant does: claim and run chunks until none is
     * left (this file's participate(), or a reduction's). */
    void (*participate)(struct loop *l);
    crew_range_fn fn;
    void *arg;
    /* The user's function and when the loop began, for traces: its
     * chunks count as queued then (0: no trace recorded). */
    void (*traced)(void);
    uint64_t began;
    size_t end;
    size_t grain;           /* 0: guided */
    size_t participants;    /* the caller and the runners at most */
    atomic_size_t chunks;   /* chunks run, for the aggregate's message */
    atomic_size_t cursor;   /* the first item not yet claimed */
    atomic_bool stop;       /* a chunk failed: claim no more */
    struct crew__lock lock; /* guards the failures */
    struct crew__failures failures; /* at each chunk's first item */
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

/* Run one chunk, [lo, hi), with fn and arg, observed as a run of the
 * user's function. Returns what crew__task_call_range() does. */
static int
run_chunk(struct loop *l, crew_range_fn fn, size_t lo, size_t hi, void *arg,
          crew_error **error)
{
    struct crew__run run;
    int rc;

    crew__run_begin(l->pool, &run, l->traced, l->began, CREW__RUN_CHUNK);
    rc = crew__task_call_range(l->pool, fn, lo, hi, arg, error);
    crew__run_end(l->pool, &run, rc == 0 ? CREW_SUCCEEDED : CREW_FAILED, rc);
    return rc;
}

static void
record_failure(struct loop *l, size_t position, crew_error *error)
{
    crew__lock_acquire(&l->lock);
    crew__failures_add(&l->failures, position, error);
    crew__lock_release(&l->lock);
}

/* Claim and run chunks until none is left; count them as tasks. */
static void
participate(struct loop *l)
{
    uint64_t ok = 0, failed = 0;
    size_t lo, hi;

    while (claim(l, &lo, &hi)) {
        crew_error *error;

        if (run_chunk(l, l->fn, lo, hi, l->arg, &error) == 0) {
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
    struct loop *l = arg;

    (void)task;
    l->participate(l);
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
 * lost or the aggregate cannot be made. Empties the list. */
static int
report(struct loop *l, crew_error **error)
{
    crew_error *all = crew__failures_take(
        &l->failures, atomic_load_explicit(&l->chunks, memory_order_relaxed),
        "chunks failed");

    if (all == NULL)
        return ENOMEM;
    if (error != NULL)
        *error = all;
    else
        crew_error_release(all);
    return CREW_EAGGREGATE;
}

/*
 * Run l's participants: up to `wanted` runners on the pool, and the
 * caller; return once every one of them is done. Then the failures, if
 * any: 0, CREW_EAGGREGATE or ENOMEM (see report()).
 */
static int
run_loop(struct loop *l, size_t wanted, crew_error **error)
{
    crew_future **runners = NULL;
    size_t started = 0;

    l->began = crew__pool_trace_now(l->pool);
    atomic_init(&l->stop, false);
    atomic_init(&l->chunks, 0);
    atomic_init(&l->lock.word, 0);
    l->participants = wanted + 1;
    if (wanted > 0)
        runners = crew__malloc(wanted * sizeof(*runners));
    /* Without memory or an open pool, fewer runners: the caller does the
     * rest, which is still correct. */
    while (runners != NULL && started < wanted &&
           submit_runner(l, &runners[started]) == 0)
        started++;

    l->participate(l);

    for (size_t i = 0; i < started; i++) {
        if (!crew__task_revoke(runners[i]))
            crew_future_wait(runners[i]);
        crew_future_release(runners[i]);
    }
    crew__free(runners);
    if (!crew__failures_any(&l->failures))
        return 0;
    return report(l, error);
}

int
crew_parallel_for(crew_pool *pool, size_t begin, size_t end, size_t grain,
                  crew_range_fn fn, void *arg, crew_error **error)
{
    struct loop l = {.pool = pool,
                     .participate = participate,
                     .fn = fn,
                     .arg = arg,
                     .traced = (void (*)(void))fn,
                     .end = end,
                     .grain = grain};
    size_t wanted;

    if (error != NULL)
        *error = NULL;
    if (pool == NULL || fn == NULL || begin > end)
        return EINVAL;
    if (begin == end)
        return 0;
    atomic_init(&l.cursor, begin);
    /* Runners beyond the chunks there are would find nothing to do. */
    wanted = crew_pool_threads(pool) - 1;
    if (grain != 0 && (end - begin - 1) / grain < wanted)
        wanted = (end - begin - 1) / grain;
    if (grain == 0 && end - begin - 1 < wanted)
        wanted = end - begin - 1;
    return run_loop(&l, wanted, error);
}

/*
 * Reductions: crew_parallel_reduce.
 *
 * The tree of merges depends on the range and the grain alone. The C
 * chunks are folded as a binary counter would add them: each chunk's
 * partial is pushed on a stack at level 0, and while the two on top have
 * the same level they merge, the later into the earlier, into one a
 * level up; at the end the stack is merged from the top down. So every
 * aligned run of 2^k chunks is a perfect subtree of its own.
 *
 * The parallel part rests on that. The chunks are cut into at most
 * BLOCKS_PER_PARTICIPANT blocks a participant, each 2^k chunks (the last
 * may be shorter), claimed in order from a shared cursor. A participant
 * folds its block on a stack of k + 1 buffers of its own, into the
 * block's slot of the table. Blocks finish in any order; they are merged
 * in order: whoever finds the next block done takes the depositor's role
 * and pushes every finished block it can onto the shared stack, at
 * level k (the last, shorter block at a level that merges with nothing,
 * as its chunks would not). So the merges are the same whatever the
 * threads and the timing, and the memory is the table, the participants'
 * stacks and the shared one: O(threads * size * log chunks).
 */

#define BLOCKS_PER_PARTICIPANT 16 /* more: finer balance, more memory */
#define CHUNKS_BY_DEFAULT 1024    /* grain 0: about so many chunks */
#define LEVELS 66                 /* past log2 of any count of chunks, + 2 */

struct level_buf {
    unsigned char *buf;
    int level; /* -1: the last block's, which merges with no other */
};

struct reduction {
    struct loop loop; /* first: run_loop() hands runners &loop */
    crew_reduce_fn fn;
    crew_combine_fn combine;
    const void *identity; /* the caller's *result */
    size_t size;          /* of a partial */
    size_t stride;        /* size, rounded up to keep buffers aligned */
    size_t begin, grain;
    size_t chunks, block_chunks, blocks; /* block_chunks = 2^k */
    unsigned k;
    atomic_size_t next_block; /* the first block not yet claimed */
    atomic_size_t next_stack; /* the next participant's stack */
    unsigned char *table;     /* a slot a block */
    unsigned char *stacks;    /* k + 1 buffers a participant */
    bool *done;               /* blocks folded; under loop.lock */
    size_t deposited;         /* blocks merged into `shared`; likewise */
    bool depositing;          /* someone is merging; likewise */
    /* The depositor's alone: */
    struct level_buf shared[LEVELS];
    size_t depth;
};

static unsigned char *
slot(unsigned char *base, size_t stride, size_t i)
{
    return base + i * stride;
}

/* fn's chunk as a crew_range_fn, for crew__task_call_range(). */
struct chunk_call {
    struct reduction *r;
    void *partial;
};

static int
call_chunk(crew_task *task, size_t lo, size_t hi, void *arg)
{
    struct chunk_call *c = arg;

    return c->r->fn(task, lo, hi, c->partial, c->r->loop.arg);
}

/* Push `buf` at `level` on a stack and merge while the two on top share
 * a level. */
static void
push_merge(struct reduction *r, struct level_buf *stack, size_t *depth,
           unsigned char *buf, int level)
{
    stack[(*depth)++] = (struct level_buf){buf, level};
    while (*depth >= 2 && stack[*depth - 1].level >= 0 &&
           stack[*depth - 1].level == stack[*depth - 2].level) {
        r->combine(stack[*depth - 2].buf, stack[*depth - 1].buf,
                   r->loop.arg);
        stack[*depth - 2].level++;
        (*depth)--;
    }
}

/* Merge a stack from the top down, into its bottom. */
static void
merge_down(struct reduction *r, struct level_buf *stack, size_t depth)
{
    for (size_t i = depth; i-- > 1;)
        r->combine(stack[i - 1].buf, stack[i].buf, r->loop.arg);
}

/* Fold block b's chunks on `bufs` (k + 1 buffers) into its slot; false
 * if a chunk failed or the loop stopped. */
static bool
fold_block(struct reduction *r, size_t b, unsigned char *bufs,
           uint64_t *ok, uint64_t *failed)
{
    struct level_buf stack[LEVELS];
    size_t depth = 0;
    size_t first = b * r->block_chunks;
    size_t last = first + r->block_chunks < r->chunks
                      ? first + r->block_chunks
                      : r->chunks;

    for (size_t c = first; c < last; c++) {
        size_t lo = r->begin + c * r->grain;
        size_t hi = r->loop.end - lo > r->grain ? lo + r->grain : r->loop.end;
        /* The first free buffer: the stack holds the ones below. */
        unsigned char *buf = slot(bufs, r->stride, depth);
        struct chunk_call call = {r, buf};
        crew_error *error;

        if (atomic_load_explicit(&r->loop.stop, memory_order_relaxed))
            return false;
        memcpy(buf, r->identity, r->size);
        if (run_chunk(&r->loop, call_chunk, lo, hi, &call, &error) != 0) {
            (*failed)++;
            /* Relaxed: see participate(). */
            atomic_store_explicit(&r->loop.stop, true, memory_order_relaxed);
            record_failure(&r->loop, lo, error);
            return false;
        }
        (*ok)++;
        push_merge(r, stack, &depth, buf, 0);
    }
    merge_down(r, stack, depth);
    memcpy(slot(r->table, r->stride, b), bufs, r->size);
    return true;
}

/* Block b is folded: merge, in order, every block folded so far, unless
 * another thread is doing so (it will see b). */
static void
deposit(struct reduction *r, size_t b)
{
    crew__lock_acquire(&r->loop.lock);
    r->done[b] = true;
    if (r->depositing) {
        crew__lock_release(&r->loop.lock);
        return;
    }
    r->depositing = true;
    while (r->deposited < r->blocks && r->done[r->deposited]) {
        size_t i = r->deposited++;
        bool whole = (i + 1) * r->block_chunks <= r->chunks;

        crew__lock_release(&r->loop.lock);
        push_merge(r, r->shared, &r->depth, slot(r->table, r->stride, i),
                   whole ? (int)r->k : -1);
        crew__lock_acquire(&r->loop.lock);
    }
    r->depositing = false;
    crew__lock_release(&r->loop.lock);
}

static void
participate_reduce(struct loop *l)
{
    struct reduction *r = crew__container_of(l, struct reduction, loop);
    /* Relaxed: only hands out the stacks, at most one a participant. */
    size_t me =
        atomic_fetch_add_explicit(&r->next_stack, 1, memory_order_relaxed);
    unsigned char *bufs =
        slot(r->stacks, r->stride * (r->k + 1), me);
    uint64_t ok = 0, failed = 0;

    for (;;) {
        /* Relaxed: the cursor only shares out blocks; the folds travel
         * under the lock. */
        size_t b =
            atomic_fetch_add_explicit(&r->next_block, 1, memory_order_relaxed);

        if (b >= r->blocks || !fold_block(r, b, bufs, &ok, &failed))
            break;
        deposit(r, b);
    }
    crew__pool_count_chunks(l->pool, ok, failed);
    atomic_fetch_add_explicit(&l->chunks, ok + failed, memory_order_relaxed);
}

/* The shape of the reduction: chunks, blocks, and one allocation for
 * the table, the stacks and the flags. ENOMEM if it cannot be had. */
static int
plan(struct reduction *r, size_t n, size_t participants)
{
    size_t align = _Alignof(max_align_t);
    size_t most = BLOCKS_PER_PARTICIPANT * participants;
    size_t buffers, bytes;

    if (r->grain == 0)
        r->grain = n / CHUNKS_BY_DEFAULT > 0 ? n / CHUNKS_BY_DEFAULT : 1;
    r->chunks = n / r->grain + (n % r->grain != 0);
    r->k = 0;
    while ((r->chunks - 1) >> r->k >= most)
        r->k++;
    r->block_chunks = (size_t)1 << r->k;
    r->blocks = (r->chunks - 1) / r->block_chunks + 1;
    if (r->size > SIZE_MAX - align)
        return ENOMEM;
    r->stride = (r->size + align - 1) / align * align;
    buffers = r->blocks + participants * (r->k + 1);
    if (buffers > (SIZE_MAX - r->blocks) / r->stride)
        return ENOMEM;
    bytes = buffers * r->stride + r->blocks;
    r->table = crew__malloc(bytes);
    if (r->table == NULL)
        return ENOMEM;
    r->stacks = slot(r->table, r->stride, r->blocks);
    r->done = (bool *)(void *)slot(r->table, r->stride, buffers);
    memset(r->done, 0, r->blocks);
    return 0;
}

int
crew_parallel_reduce(crew_pool *pool, size_t begin, size_t end, size_t grain,
                     crew_reduce_fn fn, crew_combine_fn combine, void *arg,
                     void *result, size_t size, crew_error **error)
{
    struct reduction r = {
        .loop = {.pool = pool,
                 .participate = participate_reduce,
                 .arg = arg,
                 .traced = (void (*)(void))fn,
                 .end = end},
        .fn = fn,
        .combine = combine,
        .identity = result,
        .size = size,
        .begin = begin,
        .grain = grain};
    size_t wanted;
    int err;

    if (error != NULL)
        *error = NULL;
    if (pool == NULL || fn == NULL || combine == NULL || result == NULL ||
        size == 0 || begin > end)
        return EINVAL;
    if (begin == end)
        return 0;
    wanted = crew_pool_threads(pool) - 1;
    err = plan(&r, end - begin, wanted + 1);
    if (err != 0)
        return err;
    /* Runners beyond the blocks there are would find nothing to do. */
    if (r.blocks - 1 < wanted)
        wanted = r.blocks - 1;
    atomic_init(&r.next_block, 0);
    atomic_init(&r.next_stack, 0);
    err = run_loop(&r.loop, wanted, error);
    if (err == 0) {
        /* Every block is merged: the last deposit came before its
         * participant finished, and run_loop() waited for them all. */
        merge_down(&r, r.shared, r.depth);
        memcpy(result, r.shared[0].buf, size);
    }
    crew__free(r.table);
    return err;
}
