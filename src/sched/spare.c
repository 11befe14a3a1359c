/*
 * Spare workers. When every worker sits in a wait that cannot help (out
 * of stack room, see worker.c) while work is queued, nobody would run
 * that work: a spare worker, a thread of its own with a deque of its own,
 * runs it, the way Java's ForkJoinPool compensates a blocked worker. A
 * spare runs whatever it finds, then, finding nothing for a search's
 * time, leaves; shutdowns wait for it. Its struct stays on the list until
 * the scheduler is freed (thieves may still look at its deque), and the
 * next spare reuses it. Spares are counted apart from the fixed workers,
 * which alone crew_pool_threads() and the statistics' `threads` count.
 */
#include "sched/private.h"

#include "base/alloc.h"
#include "base/platform.h"

/* Whether every worker, spares included, sits in a wait that cannot help.
 * seq_cst: the load half of a StoreLoad, against block() for a submitter
 * that pushed work, and against a push for a worker that blocked. */
bool
crew__all_blocked(struct crew__sched *sched)
{
    unsigned blocked =
        atomic_load_explicit(&sched->blocked, memory_order_seq_cst);

    return blocked != 0 &&
           blocked >=
               atomic_load_explicit(&sched->live, memory_order_seq_cst) +
                   atomic_load_explicit(&sched->spares_live,
                                        memory_order_seq_cst);
}

static struct crew__job *
spare_search(struct crew__worker *w)
{
    uint64_t deadline = crew__now_ns() + SEARCH_NS;

    for (unsigned round = 1;; round++) {
        struct crew__job *job = crew__find_job(w);
        if (job != NULL)
            return job;
        if (round % 16 == 0) {
            if (crew__now_ns() >= deadline)
                return NULL;
            crew__thread_yield();
        }
        for (int i = 0; i < 8; i++)
            crew__cpu_relax();
    }
}

static void *
spare_main(void *arg)
{
    struct crew__worker *w = arg;
    struct crew__sched *sched = w->sched;
    struct crew__job *job;

    crew__worker_begin(w);
    while ((job = spare_search(w)) != NULL)
        crew__run_job(w, job);
    crew__worker_end(w);
    /* seq_cst: the store half of a StoreLoad; see block() in worker.c.
     * Its deque is empty: only it pushes there, and it pops before it
     * searches. */
    atomic_fetch_sub_explicit(&sched->spares_live, 1, memory_order_seq_cst);
    if (crew__all_blocked(sched) && crew__has_work(w))
        crew__spawn_spare(sched);
    pthread_mutex_lock(&sched->spare_lock);
    w->spare_busy = false;
    pthread_cond_broadcast(&sched->spare_cond);
    pthread_mutex_unlock(&sched->spare_lock);
    crew__sched_unhold(sched); /* taken by crew__spawn_spare() */
    return NULL;
}

/* A new spare worker, on the list; NULL on ENOMEM. The caller holds
 * spare_lock. */
static struct crew__worker *
spare_new(struct crew__sched *sched)
{
    struct crew__worker *w = crew__calloc_aligned(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    if (crew__worker_init(w, sched, sched->threads + sched->spare_count) !=
        0) {
        crew__free(w);
        return NULL;
    }
    sched->spare_count++;
    w->spare_next = crew__first_spare(sched);
    /* Release: pairs with the acquire in crew__first_spare(). */
    atomic_store_explicit(&sched->spares, w, memory_order_release);
    return w;
}

/*
 * Start a spare worker, reusing an idle one's struct, unless one started
 * since the caller saw every worker blocked: that one is not blocked, and
 * it will find the work or, leaving, look again (spare_main()). Spawners
 * take turns under spare_lock, so every request is met by a spare
 * started for it or before it. Best effort: if no thread can be started,
 * the next submission, blocked wait or leaving spare tries again.
 */
void
crew__spawn_spare(struct crew__sched *sched)
{
    struct crew__worker *w = NULL;

    pthread_mutex_lock(&sched->spare_lock);
    if (crew__all_blocked(sched)) {
        for (w = crew__first_spare(sched); w != NULL && w->spare_busy;
             w = w->spare_next)
            continue;
        if (w == NULL)
            w = spare_new(sched);
    }
    if (w != NULL) {
        w->spare_busy = true;
        w->exiting = false;
        /* seq_cst: counted before its thread can block; see
         * crew__all_blocked(). */
        atomic_fetch_add_explicit(&sched->spares_live, 1,
                                  memory_order_seq_cst);
        crew__sched_hold(sched);
        if (crew__worker_start(w, spare_main, true) != 0) {
            w->spare_busy = false;
            atomic_fetch_sub_explicit(&sched->spares_live, 1,
                                      memory_order_seq_cst);
            crew__sched_unhold(sched); /* never the last: the caller's */
        }
    }
    pthread_mutex_unlock(&sched->spare_lock);
}

/* Wait until no spare worker runs. */
void
crew__wait_spares(struct crew__sched *sched)
{
    pthread_mutex_lock(&sched->spare_lock);
    for (;;) {
        struct crew__worker *w = crew__first_spare(sched);
        while (w != NULL && !w->spare_busy)
            w = w->spare_next;
        if (w == NULL)
            break;
        pthread_cond_wait(&sched->spare_cond, &sched->spare_lock);
    }
    pthread_mutex_unlock(&sched->spare_lock);
}

/* Free the spare workers' structs; `abandon`: after fork(), in the
 * child, where their deques' state cannot be trusted. */
void
crew__spares_free(struct crew__sched *sched, bool abandon)
{
    struct crew__worker *w = crew__first_spare(sched);

    while (w != NULL) {
        struct crew__worker *next = w->spare_next;
        crew__worker_destroy(w, abandon);
        crew__free(w);
        w = next;
    }
}
