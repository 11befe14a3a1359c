/*
 * Statistics: counters each written by one thread (stats.h), summed on
 * demand. Each worker counts the jobs it submitted to its own deque, how
 * the jobs it took out of a queue ended, what it stole, and whether it
 * is running one. The injection queue counts its pushes and pops. Rare
 * events are counted on the scheduler, off every job's path: what a
 * CREW_CANCEL stop takes out of the injection queue, loops' runners
 * going in, and the chunks of loops run outside the pool.
 *
 * Every queue entry is counted twice: where it went in, and where it
 * came out, by whoever took it, with how it ended. A task cancelled where
 * it lay is counted when its husk comes out. Loops' runners are entries
 * but no tasks: counted apart on the way in, and as `internal` on the way
 * out. So `queued` is the queues' length less the runners still in them.
 */
#include "sched/private.h"

void
crew__sched_count_chunks(struct crew__sched *sched, uint64_t succeeded,
                         uint64_t failed)
{
    struct crew__worker *w = crew__self;

    if (crew__sched_is_mine(sched)) {
        crew__counter_add(&w->submitted, succeeded + failed);
        crew__counter_add(&w->tally.succeeded, succeeded);
        crew__counter_add(&w->tally.failed, failed);
        return;
    }
    /* Relaxed: statistics; once a loop, not once a chunk. */
    atomic_fetch_add_explicit(&sched->outside_chunks_ok, succeeded,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&sched->outside_chunks_failed, failed,
                              memory_order_relaxed);
}

/* Add a tally to a snapshot, and its runners to `internal`. */
static void
add_tally(crew_pool_stats *stats, const struct crew__tally *tally,
          uint64_t *internal)
{
    stats->succeeded +=
        atomic_load_explicit(&tally->succeeded, memory_order_relaxed);
    stats->failed += atomic_load_explicit(&tally->failed, memory_order_relaxed);
    stats->cancelled +=
        atomic_load_explicit(&tally->cancelled, memory_order_relaxed);
    *internal += atomic_load_explicit(&tally->internal, memory_order_relaxed);
}

/* Add what worker w counted to a snapshot, and its deque's length to
 * `entries`. */
static void
add_worker(crew_pool_stats *stats, const struct crew__worker *w,
           uint64_t *entries, uint64_t *internal)
{
    *entries += crew__deque_length(&w->deque);
    stats->submitted +=
        atomic_load_explicit(&w->submitted, memory_order_relaxed);
    add_tally(stats, &w->tally, internal);
    stats->stolen += atomic_load_explicit(&w->stolen, memory_order_relaxed);
}

void
crew__sched_stats(const struct crew__sched *sched, crew_pool_stats *stats)
{
    /* Relaxed throughout: a snapshot, which the contract allows to be
     * inconsistent while tasks run. */
    uint64_t runners =
        atomic_load_explicit(&sched->runners, memory_order_relaxed);
    uint64_t pushed = crew__inject_pushed(&sched->inject);
    uint64_t chunks_ok =
        atomic_load_explicit(&sched->outside_chunks_ok, memory_order_relaxed);
    uint64_t chunks_failed = atomic_load_explicit(
        &sched->outside_chunks_failed, memory_order_relaxed);
    uint64_t runners_in =
        runners +
        atomic_load_explicit(&sched->runners_own, memory_order_relaxed);
    uint64_t runners_out = 0;
    uint64_t entries = crew__inject_length(&sched->inject);

    *stats = (crew_pool_stats){
        .threads = sched->threads,
        .submitted = (pushed > runners ? pushed - runners : 0) + chunks_ok +
                     chunks_failed,
        .succeeded = chunks_ok,
        .failed = chunks_failed,
    };
    add_tally(stats, &sched->shutdown_tally, &runners_out);
    for (unsigned i = 0; i < sched->threads; i++) {
        stats->busy += atomic_load_explicit(&sched->workers[i].running,
                                            memory_order_relaxed) > 0;
        add_worker(stats, &sched->workers[i], &entries, &runners_out);
    }
    for (struct crew__worker *w = crew__first_spare(sched); w != NULL;
         w = w->spare_next)
        add_worker(stats, w, &entries, &runners_out);
    stats->queued = entries + runners_out > runners_in
                        ? (size_t)(entries + runners_out - runners_in)
                        : 0;
}
