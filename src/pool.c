/*
 * Pools: lifecycle, shutdown, fork, and the one submission route.
 *
 * A pool is a scheduler (src/sched/: the workers, their queues, the idle
 * protocol, the statistics) and the life around it: made, shut down once
 * (DRAIN or CANCEL; later callers wait for the first), destroyed. The
 * pool's memory goes with the scheduler's last hold (sched.h): the
 * owner's, which crew_pool_destroy() drops (or, destroyed from one of its
 * own workers, the last worker out), spares', and one for each
 * continuation still waiting on its input, which must find the pool,
 * shut down, when the input resolves.
 *
 * Every kind submits through crew__pool_submit() (pool.h); see there.
 *
 * After fork() the child has none of the workers: a pool made before the
 * fork (generation older than the process's) refuses everything that
 * needs them, and is freed without joining.
 *
 * Lock order: `life_lock` is outermost; nothing nests with it. No user
 * code runs under it.
 */
#include "pool.h"

#include "base/alloc.h"
#include "base/fork.h"
#include "base/platform.h"
#include "sched/sched.h"

#include <errno.h>
#include <unistd.h>

enum life { RUNNING, STOPPING, JOINED };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
after_fork_in_child(void)
{
    crew__fork_count_child();
    crew__worker_forget();
    crew__alloc_after_fork();
}

static void
register_atfork(void)
{
    /* If registration fails (ENOMEM), fork detection is lost, nothing
     * else: there is no caller to tell, and pools still work. */
    (void)pthread_atfork(NULL, NULL, after_fork_in_child);
}

/* The scheduler's last hold went: free the pool with it. */
static void
pool_free(crew_pool *pool)
{
    struct crew__observer_seams *observer =
        atomic_load_explicit(&pool->observer, memory_order_acquire);

    if (observer != NULL)
        observer->free(observer, crew__pool_is_orphan(pool));
    if (crew__pool_is_orphan(pool)) {
        /* Its locks may have been held in the parent at the fork. */
        crew__sched_abandon(pool->sched);
    } else {
        crew__sched_free(pool->sched);
        pthread_cond_destroy(&pool->life_cond);
        pthread_mutex_destroy(&pool->life_lock);
    }
    crew__free(pool);
    crew__block_cache_close();
}

/* A stack size in whole pages, as some systems want it. */
static size_t
page_rounded(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);

    if (page > 0 && size % (size_t)page != 0)
        size += (size_t)page - size % (size_t)page;
    return size;
}

/* Whether the options' room for later versions is left empty. */
static bool
reserved_are_zero(const crew_pool_options *options)
{
    for (size_t i = 0; i < sizeof(options->reserved) / sizeof(void *); i++) {
        if (options->reserved[i] != NULL)
            return false;
    }
    return true;
}

int
crew_pool_create(crew_pool **out, const crew_pool_options *options)
{
    static const crew_pool_options defaults = {0};
    crew_pool *pool;
    int err;

    if (out == NULL)
        return EINVAL;
    *out = NULL;
    if (options == NULL)
        options = &defaults;
    if ((options->stack_size != 0 &&
         options->stack_size < crew__stack_min()) ||
        !reserved_are_zero(options))
        return EINVAL;
    pthread_once(&atfork_once, register_atfork);

    pool = crew__calloc(1, sizeof(*pool));
    if (pool == NULL)
        return ENOMEM;
    pool->generation = crew__fork_generation();
    pool->slotted = options->max_queued != 0;
    pool->life = RUNNING;
    err = pthread_mutex_init(&pool->life_lock, NULL);
    if (err != 0)
        goto out_free_pool;
    err = pthread_cond_init(&pool->life_cond, NULL);
    if (err != 0)
        goto out_destroy_life_lock;
    err = crew__sched_create(
        &pool->sched,
        &(struct crew__sched_options){
            .threads = options->threads != 0 ? options->threads
                                             : crew__cpu_count(),
            .max_queued = options->max_queued,
            .stack_size = page_rounded(options->stack_size),
            .name = options->name != NULL ? options->name : "crew",
            .on_thread_start = options->on_thread_start,
            .on_thread_stop = options->on_thread_stop,
            .user = options->user,
            .pool = pool,
            .unheld = pool_free,
        });
    if (err != 0)
        goto out_destroy_life_cond;
    crew__block_cache_open();
    *out = pool;
    return 0;

out_destroy_life_cond:
    pthread_cond_destroy(&pool->life_cond);
out_destroy_life_lock:
    pthread_mutex_destroy(&pool->life_lock);
out_free_pool:
    crew__free(pool);
    return err;
}

int
crew_pool_shutdown(crew_pool *pool, crew_shutdown how)
{
    if (pool == NULL || (how != CREW_DRAIN && how != CREW_CANCEL))
        return EINVAL;
    if (crew__pool_is_orphan(pool))
        return ESHUTDOWN;
    if (crew__sched_is_mine(pool->sched))
        return EDEADLK;

    /* Joining, and waiting for another shutdown, are cancellation points
     * that would leave the pool stopping for good: see platform.h. */
    int state = crew__nocancel_begin();
    pthread_mutex_lock(&pool->life_lock);
    if (pool->life == RUNNING) {
        pool->life = STOPPING;
        pthread_mutex_unlock(&pool->life_lock);
        crew__sched_stop(pool->sched, how == CREW_CANCEL);
        crew__sched_join(pool->sched);
        pthread_mutex_lock(&pool->life_lock);
        pool->life = JOINED;
        pthread_cond_broadcast(&pool->life_cond);
    }
    while (pool->life != JOINED)
        pthread_cond_wait(&pool->life_cond, &pool->life_lock);
    pthread_mutex_unlock(&pool->life_lock);
    crew__nocancel_end(state);
    return 0;
}

void
crew_pool_destroy(crew_pool *pool)
{
    struct crew__observer_seams *observer;

    if (pool == NULL)
        return;
    /* Acquire: pairs with the release that published it. */
    observer = atomic_load_explicit(&pool->observer, memory_order_acquire);
    if (observer != NULL)
        observer->retire(observer, crew__pool_is_orphan(pool));
    if (crew__pool_is_orphan(pool)) {
        crew__pool_unhold(pool);
        return;
    }
    if (!crew__sched_is_mine(pool->sched)) {
        crew_pool_shutdown(pool, CREW_DRAIN);
        crew__pool_unhold(pool);
        return;
    }
    /* From a worker: drain without waiting; the last worker frees. */
    crew__sched_detach(pool->sched);
    pthread_mutex_lock(&pool->life_lock);
    bool first = pool->life == RUNNING;
    pool->life = STOPPING;
    pthread_mutex_unlock(&pool->life_lock);
    if (first)
        crew__sched_stop(pool->sched, false);
}

unsigned
crew_pool_threads(const crew_pool *pool)
{
    return pool != NULL ? crew__sched_threads(pool->sched) : 0;
}

int
crew_pool_stats_get(const crew_pool *pool, crew_pool_stats *stats)
{
    if (pool == NULL || stats == NULL)
        return EINVAL;
    crew__sched_stats(pool->sched, stats);
    return 0;
}

int
crew__pool_accepts(crew_pool *pool)
{
    return crew__pool_is_orphan(pool) ? ESHUTDOWN
                                      : crew__sched_accepts(pool->sched);
}

bool
crew__pool_is_cancelling(const crew_pool *pool)
{
    return crew__sched_is_cancelling(pool->sched);
}

void
crew__pool_release_slot(crew_pool *pool)
{
    crew__sched_release_slot(pool->sched);
}

void
crew__pool_count_chunks(crew_pool *pool, uint64_t succeeded, uint64_t failed)
{
    crew__sched_count_chunks(pool->sched, succeeded, failed);
}

void
crew__pool_hold(crew_pool *pool)
{
    crew__sched_hold(pool->sched);
}

void
crew__pool_unhold(crew_pool *pool)
{
    crew__sched_unhold(pool->sched);
}

void
crew__pool_run_here(crew_pool *pool, struct crew__job *job)
{
    crew__sched_run_here(pool->sched, job);
}
