/*
 * Finding a job. A worker looks in its own deque (newest first), its own
 * spawned calls (newest first), then the injection queue (a batch at a
 * time, onto its deque), then the other workers' deques and spawned calls
 * (oldest first), starting from a random victim.
 */
#include "sched/private.h"

#include <assert.h>

#define STEAL_TRIES 64 /* most victims one steal() looks at */

static uint32_t
next_random(struct crew__worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}

static struct crew__job *
steal_from(struct crew__worker *w, struct crew__worker *victim)
{
    struct crew__job *job;

    if (victim == w)
        return NULL;
    job = crew__deque_steal(&victim->deque);
    if (job == NULL)
        job = crew__split_steal(&victim->spawns);
    if (job != NULL)
        crew__counter_add(&w->stolen, 1);
    return job;
}

struct crew__job *
crew__steal_spawned(struct crew__worker *w, struct crew__worker *victim)
{
    struct crew__job *job = crew__split_steal(&victim->spawns);

    if (job != NULL)
        crew__counter_add(&w->stolen, 1);
    return job;
}

/* A job from another worker's deque: up to STEAL_TRIES fixed workers
 * from a random one on, then the spares, if any. A steal that finds
 * nothing is no promise that nothing is there: crew__has_work() is. */
static struct crew__job *
steal(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    unsigned n = crew__created_workers(sched);
    unsigned tries = n < STEAL_TRIES ? n : STEAL_TRIES;
    unsigned start = n > 0 ? next_random(w) % n : 0;
    struct crew__job *job = NULL;

    for (unsigned i = 0; i < tries && job == NULL; i++)
        job = steal_from(w, &sched->workers[(start + i) % n]);
    for (struct crew__worker *v = crew__first_spare(sched);
         v != NULL && job == NULL; v = v->spare_next)
        job = steal_from(w, v);
    return job;
}

static struct crew__job *
job_of_link(struct crew__link *link)
{
    return crew__container_of(link, struct crew__job, link);
}

/*
 * Take a batch from the injection queue: the oldest is returned to run
 * now, the rest go on w's deque, newest first, where w pops them in
 * submission order and idle workers can steal them. w's deque is empty
 * (crew__find_job() looked first), and its ring holds at least 64 items,
 * so the push never grows it and never fails.
 */
static struct crew__job *
take_batch(struct crew__worker *w)
{
    struct crew__link *batch[BATCH];
    void *rest[BATCH];
    size_t n = crew__inject_pop_batch(&w->sched->inject, batch, BATCH);

    if (n == 0)
        return NULL;
    for (size_t i = 1; i < n; i++)
        rest[n - 1 - i] = job_of_link(batch[i]);
    int err = crew__deque_push_many(&w->deque, rest, n - 1);
    assert(err == 0);
    (void)err;
    return job_of_link(batch[0]);
}

struct crew__job *
crew__find_job_elsewhere(struct crew__worker *w)
{
    /* Its own spawned calls, newest first: a worker helping while one
     * of its tasks waits may run that task's spawned calls. */
    struct crew__job *job = crew__split_take(&w->spawns);

    if (job == NULL)
        job = take_batch(w);
    return job != NULL ? job : steal(w);
}

bool
crew__has_work(struct crew__worker *w)
{
    struct crew__sched *sched = w->sched;
    unsigned n = crew__created_workers(sched);

    if (!crew__inject_is_empty(&sched->inject))
        return true;
    for (unsigned i = 0; i < n; i++) {
        if (!crew__deque_is_empty(&sched->workers[i].deque) ||
            !crew__split_is_empty(&sched->workers[i].spawns))
            return true;
    }
    for (struct crew__worker *v = crew__first_spare(sched); v != NULL;
         v = v->spare_next) {
        if (!crew__deque_is_empty(&v->deque) ||
            !crew__split_is_empty(&v->spawns))
            return true;
    }
    return false;
}
