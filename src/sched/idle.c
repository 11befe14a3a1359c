/*
 * Idle workers: searching for work, sleeping, waking one.
 *
 * Theory of operation. A worker that finds nothing searches for a while,
 * counted in `searching`, then lists itself on the sleeper list, rechecks
 * every queue, and sleeps on its own event. A submitter, having published
 * its job, wakes a sleeper only when no worker is counted in `searching`,
 * and then counts the sleeper there itself before taking it off the
 * list: later submitters see a searcher and wake no one, so a burst of
 * submissions costs one wake-up, not one each (the rule of Go's
 * scheduler). A worker that finds itself taken off the list when it wakes
 * knows it was woken to search and is counted.
 *
 * No wake-up is lost: a sleeper lists itself (seq_cst) and then reads the
 * queues; a submitter pushes (seq_cst) and then reads `searching` and
 * `sleeping`. In the single total order, either the sleeper's recheck
 * sees the job, or the submitter sees the sleeper listed and wakes it
 * (or sees a searcher, who in turn rechecks before it sleeps).
 *
 * During shutdown a worker that finds nothing counts itself in
 * `stopping`: an idle worker pushes nothing, so once every worker is
 * counted, every deque is empty for good. The last one counted checks the
 * injection queue once more (a push from before the close may still be
 * halfway through it), then sets `done` and wakes the rest, which exit.
 *
 * `sleep_lock` guards the sleeper list and is held only for its links
 * (and by crew__sched_wake_all() for the notifications).
 */
#include "sched/private.h"

#include "base/platform.h"

void
crew__sleeper_add(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;

    crew__lock_acquire(&sched->sleep_lock);
    crew__list_push(&sched->sleepers, &w->sleep_link);
    w->listed = true;
    /* seq_cst: the store half of the sleeper's StoreLoad; see above. */
    atomic_fetch_add_explicit(&sched->sleeping, 1, memory_order_seq_cst);
    crew__lock_release(&sched->sleep_lock);
}

static void
unlink_sleeper(struct crew__sched *sched, struct crew__worker *w)
{
    crew__list_remove(&sched->sleepers, &w->sleep_link);
    w->listed = false;
    /* Relaxed: a stale count only costs a waker a look at the list. */
    atomic_fetch_sub_explicit(&sched->sleeping, 1, memory_order_relaxed);
}

/* Take w off the sleeper list. Returns false if a waker took it off
 * first: then w was woken to search, and is counted in `searching`. */
bool
crew__sleeper_remove(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    bool listed;

    crew__lock_acquire(&sched->sleep_lock);
    listed = w->listed;
    if (listed)
        unlink_sleeper(sched, w);
    crew__lock_release(&sched->sleep_lock);
    return listed;
}

/* crew__sched_wake() found no worker searching. */
void
crew__sched_wake_slow(struct crew__sched *sched)
{
    struct crew__worker *w = NULL;
    unsigned none = 0;

    if (atomic_load_explicit(&sched->sleeping, memory_order_seq_cst) == 0) {
        /* Every worker runs a job, or waits: see spare.c. */
        if (crew__all_blocked(sched))
            crew__spawn_spare(sched);
        return;
    }
    /* Count the sleeper as searching before it wakes. Failing, another
     * worker started searching, and it will find the work. */
    if (!atomic_compare_exchange_strong_explicit(&sched->searching, &none, 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    crew__lock_acquire(&sched->sleep_lock);
    if (!crew__list_is_empty(&sched->sleepers)) {
        w = crew__container_of(sched->sleepers.first, struct crew__worker,
                               sleep_link);
        unlink_sleeper(sched, w);
    }
    crew__lock_release(&sched->sleep_lock);
    if (w != NULL) {
        crew__event_notify_all(&w->event);
    } else {
        /* The sleepers left on their own, each to recheck the queues
         * after listing itself, which finds this work. */
        atomic_fetch_sub_explicit(&sched->searching, 1, memory_order_seq_cst);
    }
}

/* Wake every sleeper: the mode changed. */
void
crew__sched_wake_all(struct crew__sched *sched)
{
    struct crew__node *list;

    crew__lock_acquire(&sched->sleep_lock);
    list = crew__list_take_all(&sched->sleepers);
    for (struct crew__node *n = list; n != NULL; n = n->next) {
        crew__container_of(n, struct crew__worker, sleep_link)->listed = false;
        atomic_fetch_add_explicit(&sched->searching, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&sched->sleeping, 0, memory_order_relaxed);
    /* Notified under the lock: a woken worker may leave its sleep, find
     * itself unlisted, and be relisted, rewriting its link. */
    for (struct crew__node *n = list; n != NULL; n = n->next)
        crew__event_notify_all(
            &crew__container_of(n, struct crew__worker, sleep_link)->event);
    crew__lock_release(&sched->sleep_lock);
}

/* w stops being counted in `searching`, having found work or not. If it
 * was the last searcher and work waits, submitters that saw it searching
 * woke no one for that work: wake a sleeper for it. */
void
crew__stop_searching(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;

    /* seq_cst: ordered before the crew__has_work() rechecks that follow,
     * here and in crew__park(), against a submitter that saw w
     * searching. */
    if (atomic_fetch_sub_explicit(&sched->searching, 1,
                                  memory_order_seq_cst) == 1 &&
        crew__has_work(w))
        crew__sched_wake(sched);
}

/*
 * Spin for a while looking for work, counted in `searching`, before
 * parking. While a worker searches, submissions wake nobody: the
 * searcher will find their jobs. A searcher that gives up rechecks every
 * queue after it has left the count (in crew__park()), so a job pushed by
 * a submitter that saw it searching is never stranded. At most half of
 * the workers search at once, at least one, unless woken to (`counted`):
 * spinning costs the cores that running jobs could use.
 */
struct crew__job *
crew__search(struct crew__worker *w, bool counted)
{
    struct crew__sched *sched = w->sched;
    struct crew__job *job = NULL;
    uint64_t deadline;

    if (!counted) {
        /* Relaxed: a heuristic bound; a worker that does not search
         * parks, which is always correct. */
        if (2 * atomic_load_explicit(&sched->searching,
                                     memory_order_relaxed) >=
            sched->threads)
            return NULL;
        /* seq_cst: against the submitter's push then read of
         * `searching`; this count precedes the searches below. */
        atomic_fetch_add_explicit(&sched->searching, 1, memory_order_seq_cst);
    }
    deadline = crew__now_ns() + SEARCH_NS;
    for (unsigned round = 1;; round++) {
        job = crew__find_job(w);
        if (job != NULL || crew__mode_of(sched) != CREW__OPEN)
            break;
        if (round % 16 == 0) {
            if (crew__now_ns() >= deadline)
                break;
            crew__thread_yield();
        }
        for (int i = 0; i < 8; i++)
            crew__cpu_relax();
    }
    crew__stop_searching(w);
    return job;
}

/* Park an idle worker of an open scheduler until something changes.
 * Returns true if it was woken to search, and is counted in
 * `searching`. */
bool
crew__park(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    uint32_t key;

    /* A worker that lost the race for a job sees work still queued:
     * looking again costs less than listing itself as a sleeper. */
    if (crew__has_work(w))
        return false;
    key = crew__event_prepare(&w->event);
    crew__sleeper_add(w);
    if (crew__has_work(w) || crew__mode_of(sched) != CREW__OPEN)
        crew__event_cancel(&w->event);
    else
        crew__event_wait(&w->event, key, UINT64_MAX);
    return !crew__sleeper_remove(w);
}

/* A worker found nothing to do during shutdown. Returns true when every
 * worker is idle, and it may exit. */
bool
crew__idle_while_stopping(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;

    /* Acquire-release: the last worker counted sees the others' searches
     * as finished. */
    unsigned idle = atomic_fetch_add_explicit(&sched->stopping, 1,
                                              memory_order_acq_rel) +
                    1;

    if (idle == sched->threads) {
        /* Every deque is empty for good, but the injection queue may
         * hold a job no worker could take yet: pushed before the close,
         * and halfway through its push. Look again. */
        if (crew__has_work(w)) {
            atomic_fetch_sub_explicit(&sched->stopping, 1,
                                      memory_order_acq_rel);
            return false;
        }
        /* seq_cst, StoreLoad: against the sleepers below, which list
         * themselves and then read `done`. */
        atomic_store_explicit(&sched->done, true, memory_order_seq_cst);
        crew__sched_wake_all(sched);
        return true;
    }
    uint32_t key = crew__event_prepare(&w->event);
    crew__sleeper_add(w);
    if (atomic_load_explicit(&sched->done, memory_order_seq_cst) ||
        crew__has_work(w))
        crew__event_cancel(&w->event);
    else
        crew__event_wait(&w->event, key, UINT64_MAX);
    if (!crew__sleeper_remove(w)) {
        /* Relaxed: during shutdown no submitter relies on searchers. */
        atomic_fetch_sub_explicit(&sched->searching, 1, memory_order_relaxed);
    }
    if (atomic_load_explicit(&sched->done, memory_order_seq_cst))
        return true;
    atomic_fetch_sub_explicit(&sched->stopping, 1, memory_order_acq_rel);
    return false;
}
