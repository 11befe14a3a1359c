/*
 * deque_model: the work-stealing deque alone (src/sched/deque.h), tested against
 * a model. A plain C program with its own main, so that it runs under
 * every sanitizer, ThreadSanitizer included (RELIABILITY.md: "the deque
 * alone gets its own model test").
 *
 * It uses only the functions of src/sched/deque.h, never the fields of struct
 * crew__deque, so it outlives any rewrite of the deque behind them (the
 * lock-free Chase-Lev deque of the performance issue). Items are unique
 * ids encoded as non-NULL pointers: id + 1.
 *
 * Single-threaded phases check every call against a reference deque, and
 * crew__deque_is_empty() after every call:
 * - empty: pop and steal of an empty deque return NULL: a fresh one, one
 *   just emptied by pops, by steals or by both, after a thousand empty
 *   takes in a row (the Chase-Lev "unsigned wrap on an empty take", where
 *   a pop decrements bottom below top and leaves it there), and one grown
 *   and emptied; and the deque works as before afterwards;
 * - order: pops return the owner's pushes newest first (LIFO), steals
 *   oldest first (FIFO), for counts around every capacity boundary;
 * - growth: fresh deques grown from their initial capacity to 2^17 items
 *   (eleven doublings or more each), with the oldest item away from slot
 *   0 so the copy wraps around the ring, grown again after a partial
 *   drain, then drained from both ends;
 * - random: long random walks of push, pop and steal, biased in turn
 *   towards growing, towards draining (which holds the deque around
 *   empty), or neither.
 *
 * Concurrent phase: one owner pushes ids 0..M-1 in order and pops, in
 * bursts from one item (a pop and steals racing for the last item) to
 * thousands (growth while thieves steal), while 1 to 4 thieves steal all
 * the while. Checks:
 * - every item is taken exactly once (a counter per item), and nothing
 *   is taken that was not pushed;
 * - a pop returns the newest item the owner pushed and did not pop:
 *   thieves take the oldest first, so they cannot have taken it unless
 *   they took everything, and then the pop returns NULL;
 * - each thief's steals come in increasing id order (FIFO);
 * - when is_empty tells the owner the deque is empty, a pop returns NULL
 *   (thieves only ever remove);
 * - once the owner's last pop has returned NULL, pops and steals keep
 *   returning NULL.
 * A steal may fail under contention (a lock-free deque gives up a race it
 * lost), so a NULL steal proves nothing while thieves run.
 *
 * Counts are bounded and scale with the CREW_STRESS factor, as the
 * scenarios' do (harness.h; smaller under ThreadSanitizer); nothing runs
 * for a time. The watchdog (watchdog.h) turns a hang into a failure: a
 * phase running longer than CREW_WATCHDOG seconds (default 300, times
 * CREW_STRESS when above 1) is named, and the process ends with exit
 * status 1.
 *
 * Prints one line per phase, then a summary line; exits 0 when every check
 * held, 1 otherwise.
 */
#include "sched/deque.h"

#include "harness.h"
#include "model_kit.h"
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull

/* The reference deque's ring: more than any single-threaded phase holds. */
#define MODEL_CAP ((size_t)1 << 18)
/* The random walk's limit on items held. */
#define WALK_LIVE_MAX ((size_t)1 << 15)
/* The growth phase's target: 2^17 items, from 64 slots. */
#define GROW_ITEMS  ((size_t)1 << 17)
#define MAX_THIEVES 4
#define DM_PHASES   5

/* ------------------------------------------------------------------ */
/* The deque and its model, single-threaded                            */
/* ------------------------------------------------------------------ */

/* What the single-threaded phases did, for the summary. */
static size_t calls_checked;
static size_t fresh_deques;

/*
 * The deque under test and a reference deque of the same items: a ring
 * whose indices only grow, items [top, bottom).
 */
struct pair {
    struct crew__deque deque;
    size_t *ring; /* MODEL_CAP entries */
    size_t top;
    size_t bottom;
    size_t next_id;
};

static size_t
model_size(const struct pair *p)
{
    return p->bottom - p->top;
}

static bool
pair_init(struct pair *p, size_t *ring)
{
    int err = crew__deque_init(&p->deque);

    if (!CHECK(err == 0, "crew__deque_init failed"))
        return false;
    p->ring = ring;
    p->top = 0;
    p->bottom = 0;
    p->next_id = 0;
    fresh_deques++;
    return true;
}

static bool
check_empty(struct pair *p)
{
    calls_checked++;
    return CHECK(crew__deque_is_empty(&p->deque) == (model_size(p) == 0),
                 "crew__deque_is_empty disagrees with the model");
}

static bool
do_push(struct pair *p)
{
    size_t id = p->next_id++;
    int err;

    if (!CHECK(model_size(p) < MODEL_CAP, "the model is full (test bug)"))
        return false;
    err = crew__deque_push(&p->deque, item_of(id));
    calls_checked++;
    if (!CHECK(err == 0, "crew__deque_push failed"))
        return false;
    p->ring[p->bottom++ % MODEL_CAP] = id;
    return check_empty(p);
}

/* Pushes n items at once, published together: the model takes them in
 * order, so the last is the newest. */
static bool
do_push_many(struct pair *p, size_t n)
{
    void *items[8];
    int err;

    if (!CHECK(n <= 8 && model_size(p) + n <= MODEL_CAP,
               "the model is full (test bug)"))
        return false;
    for (size_t i = 0; i < n; i++)
        items[i] = item_of(p->next_id + i);
    err = crew__deque_push_many(&p->deque, items, n);
    calls_checked++;
    if (!CHECK(err == 0, "crew__deque_push_many failed"))
        return false;
    for (size_t i = 0; i < n; i++)
        p->ring[p->bottom++ % MODEL_CAP] = p->next_id++;
    return check_empty(p);
}

static bool
do_pop(struct pair *p)
{
    void *got = crew__deque_pop(&p->deque);
    bool ok;

    calls_checked++;
    if (model_size(p) == 0) {
        ok = CHECK(got == NULL, "pop of an empty deque returned an item");
    } else {
        size_t want = p->ring[--p->bottom % MODEL_CAP];

        ok = CHECK(got != NULL, "pop returned NULL from a deque holding items");
        ok = ok && CHECK(got == item_of(want),
                         "pop did not return the newest item (not LIFO)");
    }
    return ok && check_empty(p);
}

static bool
do_steal(struct pair *p)
{
    void *got = crew__deque_steal(&p->deque);
    bool ok;

    calls_checked++;
    if (model_size(p) == 0) {
        ok = CHECK(got == NULL, "steal of an empty deque returned an item");
    } else {
        size_t want = p->ring[p->top++ % MODEL_CAP];

        ok = CHECK(got != NULL,
                   "steal returned NULL from a deque holding items, with no "
                   "other thread about");
        ok = ok && CHECK(got == item_of(want),
                         "steal did not return the oldest item (not FIFO)");
    }
    return ok && check_empty(p);
}

/* Runs a script: P push, o pop, s steal; a digit repeats the next op
 * 10^digit times ("3o": a thousand pops). */
static bool
run_script(struct pair *p, const char *script)
{
    for (const char *c = script; *c != '\0' && !model_failed(); c++) {
        size_t times = 1;

        if (*c >= '0' && *c <= '9') {
            for (int k = 0; k < *c - '0'; k++)
                times *= 10;
            c++;
        }
        for (size_t i = 0; i < times; i++) {
            bool ok = *c == 'P'   ? do_push(p)
                      : *c == 'o' ? do_pop(p)
                      : *c == 's' ? do_steal(p)
                                  : CHECK(false, "bad script (test bug)");
            if (!ok)
                return false;
        }
    }
    return !model_failed();
}

/* Empties the deque by pops and steals at random, then checks that both
 * keep returning NULL, and destroys it. */
static void
pair_finish(struct pair *p, uint64_t *rng)
{
    while (model_size(p) > 0 && !model_failed())
        (void)(scn_below(rng, 2) ? do_pop(p) : do_steal(p));
    if (!model_failed())
        run_script(p, "ooss");
    /* Destroy wants it empty: whatever a failure left goes first (a
     * bounded number of pops: a broken deque may never run dry). */
    for (size_t k = 0; k <= MODEL_CAP; k++)
        if (crew__deque_pop(&p->deque) == NULL)
            break;
    crew__deque_destroy(&p->deque);
}

static void
phase_empty(size_t *ring, uint64_t *rng)
{
    /* Each script on a fresh deque, then all of them on one deque. */
    static const char *const scripts[] = {
        "os",
        "3o3s3oP",
        "3oPs",
        "3sPo",
        "Poos",
        "Psso",
        "PPooss",
        "PPssoo",
        "PPosos",
        "PPsoso",
        "PPPosoPPsosos",
        "2P2o2P2s",
        "3o2PsoPsso3s3o",
        "3P3o3o3P3s3s",
        "3P3s3o3sP2o",
        "PoPoPoPsPsPs3oPPPsso",
    };
    size_t n = sizeof(scripts) / sizeof(scripts[0]);
    struct pair p;

    for (size_t i = 0; i < n && !model_failed(); i++) {
        if (!pair_init(&p, ring))
            return;
        run_script(&p, scripts[i]);
        pair_finish(&p, rng);
    }
    if (model_failed() || !pair_init(&p, ring))
        return;
    for (size_t i = 0; i < n && !model_failed(); i++)
        run_script(&p, scripts[i]);
    pair_finish(&p, rng);
}

static void
phase_order(size_t *ring, uint64_t *rng)
{
    static const size_t counts[] = {1,   2,   3,   31,  32,   33,  63,
                                    64,  65,  127, 128, 129,  255, 256,
                                    257, 511, 512, 513, 1000, 4097};
    size_t n = sizeof(counts) / sizeof(counts[0]);
    struct pair reused;

    if (!pair_init(&reused, ring))
        return;
    for (size_t i = 0; i < n && !model_failed(); i++) {
        for (int fresh = 0; fresh < 2 && !model_failed(); fresh++) {
            struct pair own;
            struct pair *p = &reused;

            if (fresh) {
                if (!pair_init(&own, ring))
                    break;
                p = &own;
            }
            /* LIFO: all pushed, all popped. */
            for (size_t k = 0; k < counts[i] && do_push(p); k++)
                continue;
            for (size_t k = 0; k < counts[i] && do_pop(p); k++)
                continue;
            run_script(p, "os");
            /* FIFO: all pushed, all stolen. */
            for (size_t k = 0; k < counts[i] && do_push(p); k++)
                continue;
            for (size_t k = 0; k < counts[i] && do_steal(p); k++)
                continue;
            run_script(p, "so");
            /* Both ends at once. */
            for (size_t k = 0; k < counts[i] && do_push(p); k++)
                continue;
            for (size_t k = 0; k < counts[i]; k++)
                if (!(k % 2 ? do_pop(p) : do_steal(p)))
                    break;
            run_script(p, "soso");
            if (fresh)
                pair_finish(p, rng);
        }
    }
    pair_finish(&reused, rng);
}

static void
phase_growth(size_t *ring, uint64_t *rng)
{
    size_t rounds = crew_scenario_scale(8, 2);

    for (size_t r = 0; r < rounds && !model_failed(); r++) {
        struct pair p;
        size_t offset = 1 + scn_below(rng, r % 2 ? 63 : 5000);
        size_t target = GROW_ITEMS + scn_below(rng, 100);

        if (!pair_init(&p, ring))
            return;
        /* The oldest item away from slot 0: the copy wraps the ring. */
        for (size_t k = 0; k < offset && do_push(&p); k++)
            continue;
        for (size_t k = 0; k < offset && do_steal(&p); k++)
            continue;
        while (model_size(&p) < target && do_push(&p))
            continue;
        /* Drain a third from the oldest end, then grow past it again. */
        for (size_t k = 0; k < target / 3 && do_steal(&p); k++)
            continue;
        for (size_t k = 0; k < target / 2 && do_push(&p); k++)
            continue;
        pair_finish(&p, rng);
    }
}

/* One op of a random walk: weights of push, pop and steal, out of 8. */
static bool
walk_step(struct pair *p, uint64_t *rng, unsigned push, unsigned pop)
{
    size_t r = scn_below(rng, 8);

    if (r < push && model_size(p) < WALK_LIVE_MAX)
        return scn_below(rng, 4) == 0 ? do_push_many(p, 1 + scn_below(rng, 8))
                                      : do_push(p);
    if (r < push + pop)
        return do_pop(p);
    return do_steal(p);
}

static void
phase_random(size_t *ring, uint64_t *rng)
{
    size_t steps = crew_scenario_scale(3000000, 600000);
    size_t per_deque = 250000;
    struct pair p;
    size_t done = 0;

    while (done < steps && !model_failed()) {
        size_t end = done + per_deque < steps ? done + per_deque : steps;

        if (!pair_init(&p, ring))
            return;
        while (done < end && !model_failed()) {
            /* A stretch of one bias: growing (5 push, 2 pop, 1 steal),
             * draining, which keeps it around empty (2, 3, 3), or
             * neither (4, 2, 2), long or short. */
            size_t len = 1 + scn_below(rng, scn_below(rng, 2) ? 4096 : 64);
            unsigned bias = (unsigned)scn_below(rng, 3);
            unsigned push = bias == 0 ? 5 : bias == 1 ? 2 : 4;
            unsigned pop = bias == 0 ? 2 : bias == 1 ? 3 : 2;

            for (size_t k = 0; k < len && done < end; k++, done++)
                if (!walk_step(&p, rng, push, pop))
                    break;
        }
        pair_finish(&p, rng);
    }
}

/* ------------------------------------------------------------------ */
/* One owner, several thieves                                          */
/* ------------------------------------------------------------------ */

struct arena {
    struct crew__deque deque;
    size_t items;            /* M: ids 0..M-1 */
    atomic_uint *taken;      /* per id: how often taken */
    atomic_size_t published; /* ids below this may have been pushed */
    atomic_uint ready;       /* thieves at the start line */
    atomic_int go;           /* every thief may start */
    atomic_int done;         /* the owner has pushed all and emptied it */
};

struct thief {
    struct arena *arena;
    pthread_t thread;
    uint64_t rng;
    size_t stolen;
    size_t empty; /* steals that returned NULL */
};

/* Totals over the concurrent phase, for the summary. */
static size_t total_items, total_popped, total_stolen, total_empty_steals;

static void
take(struct arena *a, size_t id)
{
    unsigned before =
        atomic_fetch_add_explicit(&a->taken[id], 1, memory_order_relaxed);

    CHECK(before == 0, "an item was taken twice");
}

static void *
thief_run(void *arg)
{
    struct thief *t = arg;
    struct arena *a = t->arena;
    size_t last = SIZE_MAX; /* the id this thief stole last */
    unsigned misses = 0;

    /* A start line, so that the owner's first pushes meet thieves. */
    atomic_fetch_add(&a->ready, 1);
    while (!atomic_load_explicit(&a->go, memory_order_acquire))
        sched_yield();
    while (!atomic_load_explicit(&a->done, memory_order_acquire)) {
        void *item = crew__deque_steal(&a->deque);
        size_t id;

        if (item == NULL) {
            t->empty++;
            /* The pool asks is_empty of other workers' deques: let TSan
             * see it race with the owner (no answer can be checked). */
            if (scn_below(&t->rng, 16) == 0)
                (void)crew__deque_is_empty(&a->deque);
            if (++misses % 4 == 0)
                sched_yield();
            continue;
        }
        misses = 0;
        id = id_of(item);
        if (!CHECK(
                id < atomic_load_explicit(&a->published, memory_order_acquire),
                "a steal returned an item never pushed"))
            break;
        CHECK(last == SIZE_MAX || id > last,
              "a thief's steals came out of push order (not FIFO)");
        last = id;
        take(a, id);
        t->stolen++;
        if (model_failed())
            break;
    }
    return NULL;
}

/*
 * The owner's side of a round, on the calling thread. stack holds the
 * ids it pushed and has not popped, oldest first; thieves may have taken
 * a prefix of it, never more unless they took it all.
 */
static size_t
owner_run(struct arena *a, uint64_t *rng, size_t *stack)
{
    size_t next = 0; /* the next id to push */
    size_t sp = 0;
    size_t popped = 0;

    for (;;) {
        size_t r = scn_below(rng, 100);
        size_t n = model_burst(rng, 4000); /* long ones grow the ring */
        bool draining = next == a->items;

        if (model_failed())
            break;
        if (r < 55 && !draining) {
            for (size_t k = 0; k < n && next < a->items; k++) {
                int err;

                atomic_store_explicit(&a->published, next + 1,
                                      memory_order_release);
                err = crew__deque_push(&a->deque, item_of(next));
                if (!CHECK(err == 0, "crew__deque_push failed"))
                    break;
                stack[sp++] = next++;
            }
            continue;
        }
        if (r < 95 || draining) {
            if (draining)
                n = SIZE_MAX;
            for (size_t k = 0; k < n; k++) {
                void *item = crew__deque_pop(&a->deque);
                size_t id;

                if (item == NULL) {
                    /* Thieves took everything the owner still had. */
                    sp = 0;
                    break;
                }
                id = id_of(item);
                if (!CHECK(id < next, "a pop returned an item never pushed"))
                    break;
                if (!CHECK(sp > 0 && stack[sp - 1] == id,
                           "a pop returned another item than the newest "
                           "the owner still had (not LIFO, or an earlier "
                           "pop returned NULL and left items behind)"))
                    break;
                sp--;
                popped++;
                take(a, id);
            }
            if (draining)
                break;
            continue;
        }
        if (crew__deque_is_empty(&a->deque)) {
            void *item = crew__deque_pop(&a->deque);

            CHECK(item == NULL, "is_empty told the owner its deque was empty, "
                                "then a pop returned an item");
            sp = 0;
        }
    }
    /* Emptied for good: no item comes back. */
    for (int k = 0; k < 3 && !model_failed(); k++) {
        CHECK(crew__deque_pop(&a->deque) == NULL,
              "a pop after the deque was emptied returned an item");
        CHECK(crew__deque_steal(&a->deque) == NULL,
              "a steal after the deque was emptied returned an item");
    }
    return popped;
}

static void
concurrent_round(size_t r, size_t items, size_t *stack)
{
    struct arena a;
    struct thief thieves[MAX_THIEVES];
    unsigned count = 1 + (unsigned)(r % MAX_THIEVES);
    unsigned started = 0;
    uint64_t rng = scn_seed(5000 + r);
    size_t popped;
    size_t stolen = 0;
    int err;

    a.items = items;
    a.taken = malloc(items * sizeof(*a.taken));
    if (!CHECK(a.taken != NULL, "out of memory"))
        return;
    for (size_t i = 0; i < items; i++)
        atomic_init(&a.taken[i], 0);
    atomic_init(&a.published, 0);
    atomic_init(&a.ready, 0);
    atomic_init(&a.go, 0);
    atomic_init(&a.done, 0);
    err = crew__deque_init(&a.deque);
    if (!CHECK(err == 0, "crew__deque_init failed")) {
        free(a.taken);
        return;
    }
    fresh_deques++;
    for (unsigned i = 0; i < count; i++) {
        thieves[i] =
            (struct thief){.arena = &a, .rng = scn_seed(6000 + r * 8 + i)};
        if (pthread_create(&thieves[i].thread, NULL, thief_run, &thieves[i]) !=
            0)
            break;
        started++;
    }
    if (started < count) {
        model_fail("pthread_create failed", __LINE__);
        atomic_store(&a.done, 1);
    }
    while (atomic_load(&a.ready) < started)
        sched_yield();
    atomic_store_explicit(&a.go, 1, memory_order_release);
    popped = started == count ? owner_run(&a, &rng, stack) : 0;
    atomic_store_explicit(&a.done, 1, memory_order_release);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(thieves[i].thread, NULL);
        stolen += thieves[i].stolen;
        total_empty_steals += thieves[i].empty;
    }

    if (!model_failed()) {
        size_t never = 0;
        size_t twice = 0;

        for (size_t i = 0; i < items; i++) {
            unsigned n = atomic_load(&a.taken[i]);

            never += n == 0;
            twice += n > 1;
        }
        CHECK(never == 0, "an item pushed was never taken");
        CHECK(twice == 0, "an item was taken more than once");
        CHECK(popped + stolen == items,
              "pops and steals do not add up to the items pushed");
        CHECK(crew__deque_pop(&a.deque) == NULL &&
                  crew__deque_steal(&a.deque) == NULL &&
                  crew__deque_is_empty(&a.deque),
              "the deque is not empty once every item was taken");
    }
    total_items += items;
    total_popped += popped;
    total_stolen += stolen;
    for (size_t k = 0; k <= items; k++)
        if (crew__deque_pop(&a.deque) == NULL)
            break;
    crew__deque_destroy(&a.deque);
    free(a.taken);
}

static void
phase_concurrent(size_t *stack, size_t items)
{
    size_t rounds = crew_scenario_scale(320, 160);

    for (size_t r = 0; r < rounds && !model_failed(); r++)
        concurrent_round(r, items, stack);
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */


/* Runs one phase; counter and unit say what it did, for its line. */
static void
run_phase(const char *name, void (*body)(size_t *, uint64_t *), size_t *ring,
          uint64_t k, const size_t *counter, const char *unit)
{
    uint64_t rng = scn_seed(k);
    size_t count0 = *counter;

    if (!model_phase_start(name))
        return;
    body(ring, &rng);
    model_phase_end(*counter - count0, unit);
}

static size_t concurrent_items;

static void
concurrent_body(size_t *stack, uint64_t *rng)
{
    (void)rng;
    phase_concurrent(stack, concurrent_items);
}

int
main(void)
{
    double limit = watchdog_unit_seconds();
    size_t *ring;
    size_t *stack;
    uint64_t t0 = scn_now_ns();
    int err;

    setvbuf(stdout, NULL, _IOLBF, 0);
    concurrent_items = 10000;
    ring = malloc(MODEL_CAP * sizeof(*ring));
    stack = malloc(concurrent_items * sizeof(*stack));
    if (ring == NULL || stack == NULL) {
        printf("deque_model: FAILED: out of memory\n");
        free(ring);
        free(stack);
        return 1;
    }
    err = watchdog_start("deque_model", limit, 0);
    if (err != 0) {
        printf("deque_model: FAILED: no watchdog thread: %s\n", strerror(err));
        free(ring);
        free(stack);
        return 1;
    }
    printf("deque_model: CREW_STRESS=%g, %s, watchdog %.0f s a phase\n",
           crew_scenario_stress(),
           CREW_SCENARIO_TSAN ? "ThreadSanitizer counts" : "full counts",
           limit);

    run_phase("empty", phase_empty, ring, 1, &calls_checked, "calls checked");
    run_phase("order", phase_order, ring, 2, &calls_checked, "calls checked");
    run_phase("growth", phase_growth, ring, 3, &calls_checked, "calls checked");
    run_phase("random", phase_random, ring, 4, &calls_checked, "calls checked");
    run_phase("concurrent", concurrent_body, stack, 5, &total_items,
              "items taken exactly once");

    watchdog_stop();
    free(ring);
    free(stack);

    if (model_failed()) {
        model_print_failure("deque_model", DM_PHASES);
        return 1;
    }
    printf("deque_model: passed: %zu phases, %zu single-threaded calls "
           "checked on %zu deques; %zu items taken exactly once "
           "(%zu popped, %zu stolen, %zu empty steals) (%.2f s)\n",
           model_phases_passed(), calls_checked, fresh_deques, total_items,
           total_popped, total_stolen, total_empty_steals,
           (double)(scn_now_ns() - t0) / (double)NS_PER_S);
    return 0;
}
