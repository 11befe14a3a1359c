/*
 * crew_spawn / crew_sync races, for both front ends (TSan runs them
 * through the driver):
 *
 * - spawn_thief_finishes_while_owner_syncs: two spawners at once on a
 *   2-thread pool, each spawning runs of short calls of random lengths
 *   and syncing some at once, the rest in reverse at the end, while the
 *   other worker, its own spawner done, steals. Invariants: every call
 *   runs exactly once; each sync returns its call's code; after each
 *   sync the owner reads the call's plain writes (TSan would see a sync
 *   that does not publish); the pool's counters add up, with exactly the
 *   calls run off their owner's thread counted as submitted and their
 *   failures as failed.
 * - spawn_leapfrog: the spawner's call is taken by the other worker (held
 *   until the spawn, then let go) and itself spawns a tree of calls, a
 *   random tree sum or a fib with a random serial cutoff, while the
 *   spawner syncs it: the spawner may leapfrog into the thief's calls.
 *   Invariants: the result equals the serial model's, every node runs
 *   exactly once.
 */
#include "scenarios.h"
#include "testkit.h"

#include <crew.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* spawn_thief_finishes_while_owner_syncs                              */
/* ------------------------------------------------------------------ */

#define TF_MAX_CALLS 64

struct tf_owner;

struct tf_call {
    struct tf_owner *owner;
    size_t i;
    unsigned spin;
    int code;
    uint64_t out; /* written plainly by the call */
    atomic_uint runs;
};

struct tf_owner {
    struct scn_verdict *v;
    uint64_t rng;
    size_t n;
    pthread_t thread;
    atomic_size_t *off_owner;        /* calls run off the owner's thread */
    atomic_size_t *failed_off_owner; /* of which failed */
    struct tf_call calls[TF_MAX_CALLS];
};

static int
tf_call_run(crew_task *task, void *arg)
{
    struct tf_call *c = arg;

    (void)task;
    scn_spin(c->spin);
    c->out = (uint64_t)c->i * 2654435761u + 1;
    atomic_fetch_add(&c->runs, 1);
    if (!pthread_equal(pthread_self(), c->owner->thread)) {
        atomic_fetch_add(c->owner->off_owner, 1);
        if (c->code != 0)
            atomic_fetch_add(c->owner->failed_off_owner, 1);
    }
    return c->code;
}

/* Syncs the newest outstanding call and checks it. */
static void
tf_sync(crew_task *task, struct tf_owner *o, crew_frame *frames, size_t i)
{
    struct tf_call *c = &o->calls[i];

    SCN_CHECK(o->v, crew_sync(task, &frames[i]) == c->code,
              "crew_sync did not return its call's code");
    SCN_CHECK(o->v, atomic_load(&c->runs) == 1,
              "a synced call did not run exactly once");
    SCN_CHECK(o->v, c->out == (uint64_t)i * 2654435761u + 1,
              "a call's write was not seen after its sync");
}

static int
tf_owner_run(crew_task *task, void *arg)
{
    struct tf_owner *o = arg;
    crew_frame frames[TF_MAX_CALLS];
    size_t stack[TF_MAX_CALLS], depth = 0;

    o->thread = pthread_self();
    for (size_t i = 0; i < o->n; i++) {
        if (!SCN_CHECK(
                o->v,
                crew_spawn(task, &frames[i], tf_call_run, &o->calls[i]) == 0,
                "crew_spawn failed"))
            break;
        stack[depth++] = i;
        /* Now and then sync the newest at once: the owner syncs while
         * thieves still work on older calls. */
        if (scn_below(&o->rng, 4) == 0)
            tf_sync(task, o, frames, stack[--depth]);
    }
    while (depth > 0)
        tf_sync(task, o, frames, stack[--depth]);
    return 0;
}

static void
tf_owner_init(struct tf_owner *o, struct scn_verdict *v, uint64_t seed,
              atomic_size_t *off_owner, atomic_size_t *failed_off_owner)
{
    memset(o, 0, sizeof(*o));
    o->v = v;
    o->rng = seed;
    o->off_owner = off_owner;
    o->failed_off_owner = failed_off_owner;
    o->n = 8 + scn_below(&o->rng, TF_MAX_CALLS - 8 + 1);
    for (size_t i = 0; i < o->n; i++) {
        struct tf_call *c = &o->calls[i];

        c->owner = o;
        c->i = i;
        c->spin = scn_below(&o->rng, 2000);
        c->code = scn_below(&o->rng, 8) == 0 ? EDOM : 0;
        atomic_init(&c->runs, 0);
    }
}

const char *
crew_scenario_spawn_thief_finishes_while_owner_syncs(void)
{
    size_t rounds = crew_scenario_scale(300, 60);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    atomic_size_t off_owner = 0, failed_off_owner = 0;
    struct tf_owner *owners = calloc(2, sizeof(*owners));
    size_t tasks = 0;
    crew_pool *pool = NULL;
    crew_pool_stats s;

    if (owners == NULL)
        return "out of memory";
    if (crew_pool_create(&pool, &options) != 0) {
        free(owners);
        return "crew_pool_create failed";
    }
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        crew_future *f[2] = {NULL, NULL};

        for (int k = 0; k < 2; k++) {
            tf_owner_init(&owners[k], &v, scn_seed(3000 + 2 * r + (size_t)k),
                          &off_owner, &failed_off_owner);
            if (!SCN_CHECK(
                    &v, scn_submit(pool, tf_owner_run, &owners[k], &f[k]) == 0,
                    "a submission failed"))
                break;
            tasks++;
        }
        for (int k = 0; k < 2; k++) {
            if (f[k] == NULL)
                continue;
            SCN_CHECK(&v, crew_future_wait(f[k]) == 0, "a spawner failed");
            crew_future_release(f[k]);
            for (size_t i = 0; i < owners[k].n; i++)
                SCN_CHECK(&v, atomic_load(&owners[k].calls[i].runs) == 1,
                          "a call did not run exactly once");
        }
    }
    crew_pool_shutdown(pool, CREW_DRAIN);
    crew_pool_stats_get(pool, &s);
    SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
              "the pool's counters do not add up");
    SCN_CHECK(&v, s.submitted == tasks + atomic_load(&off_owner),
              "submitted is not the spawners plus the stolen calls");
    SCN_CHECK(&v, s.failed == atomic_load(&failed_off_owner),
              "failed is not the stolen calls that failed");
    SCN_CHECK(&v, s.stolen >= atomic_load(&off_owner),
              "fewer steals counted than calls run off their owner's thread");
    crew_pool_destroy(pool);
    free(owners);
    return scn_result(&v);
}

/* ------------------------------------------------------------------ */
/* spawn_leapfrog                                                      */
/* ------------------------------------------------------------------ */

#define LF_MAX_DEPTH 12
#define LF_MAX_NODES 200000u

static uint64_t
lf_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* A node's children: two or three near the root, zero to three below,
 * none at the bottom. */
static unsigned
lf_children(uint64_t seed, unsigned depth)
{
    uint64_t h = lf_mix(seed ^ 0x5bd1e995u);

    if (depth >= LF_MAX_DEPTH)
        return 0;
    if (depth < 2)
        return 2 + (unsigned)(h % 2);
    return (unsigned)(h % 4);
}

static uint64_t
lf_child_seed(uint64_t seed, unsigned k)
{
    return lf_mix(seed * 31 + k + 1);
}

/* The serial model: the tree's sum, its nodes counted in @p nodes. */
static uint64_t
lf_model(uint64_t seed, unsigned depth, size_t *nodes)
{
    unsigned n = lf_children(seed, depth);
    uint64_t sum = seed % 1000;

    ++*nodes;
    for (unsigned k = 0; k < n && *nodes <= LF_MAX_NODES; k++)
        sum += lf_model(lf_child_seed(seed, k), depth + 1, nodes);
    return sum;
}

struct lf_round {
    struct scn_verdict *v;
    struct scn_hold *hold;
    struct scn_gate root_started;
    atomic_size_t nodes;
    bool fib;        /* a fib rather than a tree */
    unsigned fib_n;  /* its argument */
    unsigned cutoff; /* below it, fib is computed serially */
    uint64_t seed;   /* the tree's root */
    pthread_t owner;
    pthread_t root_thread;
    uint64_t result;
};

struct lf_node {
    struct lf_round *round;
    uint64_t seed; /* a tree's node; for fib, the argument */
    unsigned depth;
    uint64_t sum; /* written plainly, read after the sync */
};

static void
lf_root_started(struct lf_node *node)
{
    if (node->depth == 0) {
        node->round->root_thread = pthread_self();
        scn_gate_add(&node->round->root_started, 1);
    }
}

static int
lf_tree_run(crew_task *task, void *arg)
{
    struct lf_node *node = arg;
    struct lf_round *r = node->round;
    unsigned n = lf_children(node->seed, node->depth);
    struct lf_node kids[3];
    crew_frame frames[3];
    unsigned k;
    int err = 0;

    atomic_fetch_add_explicit(&r->nodes, 1, memory_order_relaxed);
    lf_root_started(node);
    for (k = 0; k < n; k++) {
        kids[k] = (struct lf_node){r, lf_child_seed(node->seed, k),
                                   node->depth + 1, 0};
        if (crew_spawn(task, &frames[k], lf_tree_run, &kids[k]) != 0) {
            err = EPROTO;
            break;
        }
    }
    scn_spin((unsigned)(node->seed % 300));
    node->sum = node->seed % 1000;
    while (k-- > 0) {
        int e = crew_sync(task, &frames[k]);

        if (e != 0 && err == 0)
            err = e;
        node->sum += kids[k].sum;
    }
    return err;
}

static uint64_t
lf_fib_serial(uint64_t n)
{
    return n < 2 ? n : lf_fib_serial(n - 1) + lf_fib_serial(n - 2);
}

static int
lf_fib_run(crew_task *task, void *arg)
{
    struct lf_node *node = arg;
    struct lf_round *r = node->round;
    struct lf_node a, b;
    crew_frame fa;
    int ea, eb;

    atomic_fetch_add_explicit(&r->nodes, 1, memory_order_relaxed);
    lf_root_started(node);
    if (node->seed < r->cutoff) {
        node->sum = lf_fib_serial(node->seed);
        return 0;
    }
    a = (struct lf_node){r, node->seed - 1, node->depth + 1, 0};
    b = (struct lf_node){r, node->seed - 2, node->depth + 1, 0};
    if (crew_spawn(task, &fa, lf_fib_run, &a) != 0)
        return EPROTO;
    eb = lf_fib_run(task, &b);
    ea = crew_sync(task, &fa);
    node->sum = a.sum + b.sum;
    return ea != 0 ? ea : eb;
}

/* Calls of lf_fib_run for fib(n) with a serial cutoff. */
static size_t
lf_fib_calls(unsigned n, unsigned cutoff)
{
    return n < cutoff
               ? 1
               : 1 + lf_fib_calls(n - 1, cutoff) + lf_fib_calls(n - 2, cutoff);
}

static int
lf_owner_run(crew_task *task, void *arg)
{
    struct lf_round *r = arg;
    struct lf_node root = {r, r->fib ? r->fib_n : r->seed, 0, 0};
    crew_frame frame;
    int err;

    r->owner = pthread_self();
    err = crew_spawn(task, &frame, r->fib ? lf_fib_run : lf_tree_run, &root);
    if (!SCN_CHECK(r->v, err == 0, "crew_spawn failed")) {
        scn_hold_open(r->hold);
        return 0;
    }
    /* The held worker, let go, steals the root; the owner then syncs it
     * while it runs there, and may leapfrog into its calls. */
    scn_hold_open(r->hold);
    SCN_CHECK(r->v, scn_gate_reaches(&r->root_started, 1),
              "no thief took the root call");
    err = crew_sync(task, &frame);
    SCN_CHECK(r->v, err == 0, "crew_sync of the root failed");
    SCN_CHECK(r->v, !pthread_equal(r->root_thread, r->owner),
              "the root call ran on its spawner's thread");
    r->result = root.sum;
    return 0;
}

const char *
crew_scenario_spawn_leapfrog(void)
{
    size_t rounds = crew_scenario_scale(100, 20);
    crew_pool_options options = {.threads = 2};
    struct scn_verdict v = {NULL};
    uint64_t rng = scn_seed(4000);
    crew_pool *pool = NULL;
    crew_pool_stats s;

    if (crew_pool_create(&pool, &options) != 0)
        return "crew_pool_create failed";
    for (size_t r = 0; r < rounds && !scn_failed(&v); r++) {
        struct scn_hold hold = SCN_HOLD_INIT;
        struct lf_round round;
        crew_future *holder = NULL, *f = NULL;
        size_t expect_nodes = 0;
        uint64_t expect;

        memset(&round, 0, sizeof(round));
        round.v = &v;
        round.hold = &hold;
        scn_gate_init(&round.root_started);
        atomic_init(&round.nodes, 0);
        round.fib = r % 2 == 1;
        if (round.fib) {
            round.fib_n = 14 + scn_below(&rng, 7);
            round.cutoff = 2 + scn_below(&rng, 8);
            expect = lf_fib_serial(round.fib_n);
            expect_nodes = lf_fib_calls(round.fib_n, round.cutoff);
        } else {
            /* A random shape, not too large. */
            do {
                expect_nodes = 0;
                round.seed = scn_rand(&rng);
                expect = lf_model(round.seed, 0, &expect_nodes);
            } while (expect_nodes > LF_MAX_NODES);
        }
        if (SCN_CHECK(&v, scn_hold_worker(pool, &hold, 1, &holder) == 0,
                      "the second worker could not be held") &&
            SCN_CHECK(&v, scn_submit(pool, lf_owner_run, &round, &f) == 0,
                      "a submission failed")) {
            SCN_CHECK(&v, crew_future_wait(f) == 0, "the spawner failed");
            SCN_CHECK(&v, round.result == expect,
                      "the parallel result differs from the serial model");
            SCN_CHECK(&v, atomic_load(&round.nodes) == expect_nodes,
                      "a node did not run exactly once");
        }
        scn_hold_open(&hold);
        if (holder != NULL)
            crew_future_wait(holder);
        crew_future_release(f);
        crew_future_release(holder);
        scn_hold_destroy(&hold);
        scn_gate_destroy(&round.root_started);
    }
    crew_pool_shutdown(pool, CREW_DRAIN);
    crew_pool_stats_get(pool, &s);
    SCN_CHECK(&v, s.submitted == s.succeeded + s.failed + s.cancelled,
              "the pool's counters do not add up");
    SCN_CHECK(&v, s.stolen > 0, "nothing was stolen");
    crew_pool_destroy(pool);
    return scn_result(&v);
}
