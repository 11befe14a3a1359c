/*
 * split_model: the split deque of spawned calls alone (src/sched/split.h),
 * tested against a model. A plain C program with its own main, so that
 * it runs under every sanitizer, ThreadSanitizer included, as
 * deque_model does for the deque of submitted tasks.
 *
 * It uses only the functions of src/sched/split.h, never the fields of
 * struct crew__split, and the model asserts only what the header
 * promises, never how split.c places its split point. Items are unique
 * ids encoded as non-NULL pointers: id + 1.
 *
 * The model. The deque's items are the owner's stack, oldest first:
 * pushed, not yet taken back nor dropped (the deque's head). A prefix of
 * it is stolen, the rest the owner's: thieves take the oldest first, so
 * nothing stolen lies above an item that was not. Of the owner's, the
 * oldest are shared and the newest private; the model knows bounds on
 * how many are shared, and whether a thief has asked for work and not
 * been answered. After every call crew__split_is_empty() is checked
 * against the bounds (shared items known: not empty; none possible:
 * empty), and its answer narrows them, so that the next push and steal
 * have one right result, which the next calls check in turn.
 *
 * Single-threaded phases check every call against the model (a steal
 * from the owner's thread acts as a thief's):
 * - scripts: short sequences on fresh deques of capacities 1 to 1000,
 *   then all on one deque: take and steal of an empty deque return NULL;
 *   the first push into a fresh deque is shared, and a steal gets it; a
 *   push is shared when nothing is, or when a steal found nothing shared
 *   since the last share (the request), and private otherwise; take
 *   returns the newest item, newest first; steal returns the oldest
 *   shared item, and NULL (asking) when none is; share_all shares every
 *   item, true if it shared any; a take whose newest item was stolen
 *   returns NULL, again at every later take, and head stays: the stolen
 *   item still counts towards the capacity, and items pushed above it
 *   (shared at once, nothing else being) are taken back or stolen, until
 *   crew__split_drop(), after which the next push starts a fresh shared
 *   run;
 * - capacity: for capacities 1 to 4097, a push returns FULL exactly when
 *   the deque holds its capacity, stolen items included, and pushes
 *   nothing: the takes and steals that follow find exactly the items
 *   pushed;
 * - random: long random walks of push, take, steal, share_all and drop
 *   (drop only where the contract allows it: the newest item stolen and
 *   a take refused it), biased in turn towards the owner, towards the
 *   thief, or neither, on capacities from 1 to 4096.
 *
 * Concurrent phase: one owner and 1 to 4 thieves, stealing all the
 * while, on capacities from 1 to 4096. The owner follows a fork-join
 * discipline: it pushes ids in increasing order to random depths, now
 * and then pausing after its pushes (a spawner's own work), and takes
 * them back newest first; when a take refuses an item (stolen), it
 * waits until the thief has run it (a flag the thief sets), meanwhile
 * pushing and taking back nested work above it (as the sync's
 * leapfrogging does) and taking again, then drops it. Now and then it
 * shares all and pauses, as a worker about to sleep. Checks:
 * - every item is taken exactly once, by the owner's take or by a steal
 *   (a counter per item that says which): a thief never gets an item
 *   the owner took back, nor the owner one a thief stole;
 * - a take returns the newest item the owner still has, or NULL only
 *   when a thief took it: the owner then waits until every thief that
 *   was inside a steal has left it (a per-thief count of steals begun
 *   and ended), and the item's counter must say stolen;
 * - once a take refused an item, takes return NULL until it is dropped,
 *   and after the drop, for the item below (everything below a stolen
 *   item is stolen); after a refusal and after a drop, is_empty is true
 *   (nothing is shared); a push onto a stack of stolen items (or none)
 *   is shared, and share_all there shares nothing;
 * - a push returns FULL exactly at the capacity (head is the owner's
 *   alone, stolen items included until dropped);
 * - the deque publishes the item: each carries a plain word the owner
 *   writes before the push and the thief reads after the steal, and the
 *   test orders nothing else from owner to thief, so that ThreadSanitizer
 *   reports a race where a push does not release or a steal does not
 *   acquire;
 * - nothing is stolen that was not pushed; each thief's steals come in
 *   increasing id order, across fresh runs too (every item stolen was
 *   pushed after every item stolen before it: the items below a steal
 *   are stolen, and an item dropped left no item above it);
 * - at the end, with everything taken back, or stolen, run and dropped,
 *   every stolen item was refused once, and take and steal return NULL
 *   and is_empty is true.
 * A steal may fail under contention (a CAS lost), so a NULL steal
 * proves nothing while the owner runs.
 *
 * Counts are bounded and scale with the CREW_STRESS factor (harness.h;
 * smaller under ThreadSanitizer); nothing runs for a time. The watchdog
 * (watchdog.h) turns a hang into a failure: a phase running longer than
 * CREW_WATCHDOG seconds (default 300, times CREW_STRESS when above 1) is
 * named, and the process ends with exit status 1.
 *
 * Prints one line per phase, then a summary line; exits 0 when every check
 * held, 1 otherwise.
 */
#include "sched/split.h"

#include "harness.h"
#include "model_kit.h"
#include "watchdog.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull

/* The largest capacity of a single-threaded deque: the model's arrays. */
#define MODEL_CAP   ((size_t)1 << 13)
#define MAX_THIEVES 4
#define SM_PHASES   4
/* How deep nested work may go while the owner waits for a thief. */
#define MAX_NEST 4

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ------------------------------------------------------------------ */
/* The deque and its model, single-threaded                            */
/* ------------------------------------------------------------------ */

/* What the single-threaded phases did, for the summary. */
static size_t calls_checked;
static size_t fresh_deques;

/*
 * The deque under test and the model. Items [0, n) are the deque's,
 * oldest first; [0, stolen) a thief's, [stolen, n) the owner's, of
 * which the oldest k are shared, lo <= k <= hi, and the rest private.
 */
struct pair {
    struct crew__split split;
    size_t capacity;
    size_t *ids;    /* MODEL_CAP entries */
    bool *refused;  /* per entry: stolen, and a take returned NULL for it */
    size_t n;       /* the deque's head */
    size_t stolen;  /* items [0, stolen) are a thief's */
    size_t lo;      /* at least this many of the owner's are shared */
    size_t hi;      /* at most this many */
    bool wanted;    /* a steal found nothing shared; no push shared since */
    size_t next_id; /* the next id to push */
};

/* The model's arrays, shared by every pair (one lives at a time). */
static size_t *model_ids;
static bool *model_refused;

static size_t
owners(const struct pair *p)
{
    return p->n - p->stolen;
}

static bool
pair_init(struct pair *p, size_t capacity)
{
    int err;

    if (!CHECK(capacity >= 1 && capacity <= MODEL_CAP,
               "bad capacity (test bug)"))
        return false;
    err = crew__split_init(&p->split, (uint32_t)capacity);
    if (!CHECK(err == 0, "crew__split_init failed"))
        return false;
    p->capacity = capacity;
    p->ids = model_ids;
    p->refused = model_refused;
    p->n = 0;
    p->stolen = 0;
    p->lo = 0;
    p->hi = 0;
    p->wanted = false;
    p->next_id = 0;
    fresh_deques++;
    return true;
}

/* Checks is_empty against the bounds, then narrows them with it. */
static bool
check_empty(struct pair *p)
{
    bool empty = crew__split_is_empty(&p->split);
    bool ok = true;

    calls_checked++;
    if (p->lo >= 1)
        ok = CHECK(!empty, "is_empty said nothing was shared, where items "
                           "were shared");
    if (p->hi == 0)
        ok = ok && CHECK(empty, "is_empty said items were shared, where "
                                "none could be");
    if (empty) {
        p->lo = 0;
        p->hi = 0;
    } else if (p->lo == 0) {
        p->lo = 1;
    }
    return ok;
}

static bool
do_push(struct pair *p)
{
    size_t id = p->next_id;
    enum crew__split_push how = crew__split_push(&p->split, item_of(id));
    bool ok;

    calls_checked++;
    if (p->n == p->capacity)
        return CHECK(how == CREW__SPLIT_FULL,
                     "a push into a full deque did not return FULL") &&
               check_empty(p);
    ok = CHECK(how != CREW__SPLIT_FULL,
               "a push returned FULL below the capacity");
    if (p->hi == 0 || p->wanted)
        ok = ok && CHECK(how == CREW__SPLIT_SHARED,
                         p->wanted ? "a push after a steal's request did "
                                     "not share"
                                   : "a push where nothing was shared did "
                                     "not share");
    else
        ok = ok && CHECK(how == CREW__SPLIT_PRIVATE,
                         "a push shared items, with items shared and no "
                         "request");
    if (!ok)
        return false;
    p->ids[p->n] = id;
    p->refused[p->n] = false;
    p->n++;
    p->next_id++;
    if (how == CREW__SPLIT_SHARED) {
        /* Nothing was shared, and at least one item is; or a thief
         * asked, and at least one private item more is (the new one
         * was private, at least). */
        p->wanted = false;
        p->lo = min_size(p->lo + 1, owners(p));
        p->hi = owners(p);
    }
    return check_empty(p);
}

static bool
do_take(struct pair *p)
{
    void *got = crew__split_take(&p->split);
    size_t m = owners(p);
    bool ok;

    calls_checked++;
    if (p->n == 0)
        return CHECK(got == NULL, "a take of an empty deque returned an "
                                  "item") &&
               check_empty(p);
    if (m == 0) {
        ok = CHECK(got == NULL, "a take returned an item a thief had "
                                "stolen");
        p->refused[p->n - 1] = true;
        return ok && check_empty(p);
    }
    ok = CHECK(got != NULL, "a take returned NULL, the newest item not "
                            "stolen");
    ok = ok && CHECK(got == item_of(p->ids[p->n - 1]),
                     "a take did not return the newest item (not LIFO)");
    if (!ok)
        return false;
    p->n--;
    /* If it was shared (it was the newest, so all were), the split moved
     * down: any number of the rest may be shared now. */
    if (p->hi == m) {
        p->lo = 0;
        p->hi = m - 1;
    }
    return check_empty(p);
}

static bool
do_steal(struct pair *p)
{
    void *got = crew__split_steal(&p->split);
    bool ok;

    calls_checked++;
    if (got == NULL) {
        ok = CHECK(p->lo == 0, "a steal returned NULL, with items shared "
                               "and no other thread about");
        p->lo = 0;
        p->hi = 0;
        p->wanted = true;
        return ok && check_empty(p);
    }
    ok = CHECK(p->hi >= 1, "a steal returned an item, where none could be "
                           "shared");
    ok = ok && CHECK(p->stolen < p->n && got == item_of(p->ids[p->stolen]),
                     "a steal did not return the oldest item of the "
                     "owner's (not FIFO)");
    if (!ok)
        return false;
    p->stolen++;
    p->lo = p->lo > 0 ? p->lo - 1 : 0;
    p->hi--;
    return check_empty(p);
}

static bool
do_share_all(struct pair *p)
{
    bool shared = crew__split_share_all(&p->split);
    size_t m = owners(p);
    bool ok = true;

    calls_checked++;
    if (p->lo == m)
        ok = CHECK(!shared, "share_all returned true, every item being "
                            "shared already");
    else if (p->hi < m)
        ok = CHECK(shared, "share_all returned false, with private items");
    p->lo = m;
    p->hi = m;
    return ok && check_empty(p);
}

/* Drops the newest item: the test calls it only where the contract lets
 * it (stolen, and refused by a take). */
static bool
do_drop(struct pair *p)
{
    if (!CHECK(p->n > 0 && p->stolen == p->n && p->refused[p->n - 1],
               "a drop the contract does not allow (test bug)"))
        return false;
    crew__split_drop(&p->split);
    calls_checked++;
    p->n--;
    p->stolen--;
    return check_empty(p);
}

static bool
can_drop(const struct pair *p)
{
    return p->n > 0 && p->stolen == p->n && p->refused[p->n - 1];
}

/* Takes back the newest item as a sync does: and if a take refuses it,
 * drops it. */
static bool
do_sync(struct pair *p)
{
    return do_take(p) && (!can_drop(p) || do_drop(p));
}

/* Runs a script: P push, t take, s steal, a share_all, d drop, D sync
 * (take, and drop if refused); a digit repeats the next op 10^digit
 * times ("2t": a hundred takes). Scripts are written for a deque with
 * room: on a small one, where pushes come back FULL, a drop the contract
 * does not allow is left out, unless strict. */
static bool
run_script(struct pair *p, const char *script, bool strict)
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
                      : *c == 't' ? do_take(p)
                      : *c == 's' ? do_steal(p)
                      : *c == 'a' ? do_share_all(p)
                      : *c == 'd' ? (can_drop(p) || strict ? do_drop(p) : true)
                      : *c == 'D' ? do_sync(p)
                      : *c == ' ' ? true
                                  : CHECK(false, "bad script (test bug)");
            if (!ok)
                return false;
        }
    }
    return !model_failed();
}

/* Empties the deque as an owner would, by takes, refusals and drops,
 * with steals at random; then checks that take and steal return NULL,
 * and destroys it. */
static void
pair_finish(struct pair *p, uint64_t *rng)
{
    while (p->n > 0 && !model_failed()) {
        if (can_drop(p))
            do_drop(p);
        else if (scn_below(rng, 4) == 0)
            do_steal(p);
        else
            do_take(p);
    }
    if (!model_failed())
        run_script(p, "ttssP t", false);
    crew__split_destroy(&p->split);
}

static void
phase_scripts(uint64_t *rng)
{
    static const char *const scripts[] = {
        /* Empty. */
        "ts",
        "3t3s",
        /* The first push is shared; then private, with one shared. */
        "Ps",
        "Pt",
        "PPss",
        "PPtt",
        "PPPsss",
        "PPPttt",
        /* A steal finding nothing shared asks: the next push shares. */
        "PPsPsss",
        "PPPPssPsss",
        "PPPPPPPPssPssPsss",
        "sPPPs",
        "PPss PPP sss",
        /* A request answered once: the push after it is private. */
        "PPssPPsss",
        /* share_all. */
        "a",
        "Pa",
        "PPa",
        "PPPPaaa",
        "PPPPPPPPassssssss",
        "PPPPPPPPattttttttt",
        "PPPPssPPPPattsss",
        /* Taking shared items back. */
        "PPPPPPPPatsssss",
        "PPPPPPPPatttsss",
        "PPPPPPPPassttsss",
        /* The newest stolen: NULL, again, until the drop. */
        "Pstd",
        "Psttttd",
        "PPassttdtd",
        "PPPPasssstdtdtdtd",
        "PPsstttd",
        "PPPssPsstttdtd",
        /* After the drop, a fresh shared run. */
        "PstdPs",
        "PstdPt",
        "PstdPPss",
        "PPasstdtdPPPsstt",
        /* Pushes above a stolen item, taken back, then the drop. */
        "PstPtd",
        "PstPtdP",
        "PstPtdPs",
        "PstPtdPt",
        "PstPPttdPPtt",
        "PstPPPattttdPPs",
        "PstPsttdtd",
        "PstPPsttdtd",
        "PstPPssttdtdPs",
        "PstPtPtPttdPs",
        "PstPstPstdtdtdPst",
        "PPPassstPPtttdtdtdP",
        "PstPPPsPttttdPsttdd",
        /* Requests around refusals and drops. */
        "PstsPtd",
        "PstPsstdP",
        "PstdsPPss",
        "PPsstsPPPsstttd",
        "2P2s2D",
        "2P2t2s",
        "2Pa2s2D",
        "2Pa2t2s",
        "2P1s2t1s",
    };
    static const size_t capacities[] = {1, 2, 3, 4, 5, 8, 64, 1000};
    size_t n = sizeof(scripts) / sizeof(scripts[0]);
    struct pair p;

    for (size_t c = 0; c < sizeof(capacities) / sizeof(capacities[0]); c++) {
        for (size_t i = 0; i < n && !model_failed(); i++) {
            if (!pair_init(&p, capacities[c]))
                return;
            run_script(&p, scripts[i], capacities[c] >= 1000);
            if (model_failed())
                printf("  (script \"%s\", capacity %zu)\n", scripts[i],
                       capacities[c]);
            pair_finish(&p, rng);
        }
        if (model_failed() || !pair_init(&p, capacities[c]))
            return;
        for (size_t i = 0; i < n && !model_failed(); i++)
            run_script(&p, scripts[i], false);
        pair_finish(&p, rng);
    }
}

static void
phase_capacity(uint64_t *rng)
{
    static const size_t capacities[] = {1,  2,  3,  4,   5,   7,   8,    31,
                                        32, 33, 64, 100, 127, 128, 1000, 4097};
    size_t n = sizeof(capacities) / sizeof(capacities[0]);

    for (size_t i = 0; i < n && !model_failed(); i++) {
        size_t cap = capacities[i];

        for (int round = 0; round < 8 && !model_failed(); round++) {
            struct pair p;
            size_t steals = scn_below(rng, (unsigned)cap + 1);

            if (!pair_init(&p, cap))
                return;
            /* Full, by pushes alone, or with a share_all among them. */
            while (p.n < cap && do_push(&p))
                if (round % 2 && scn_below(rng, 8) == 0)
                    do_share_all(&p);
            run_script(&p, "PPP", false);
            /* Stolen items still count: full. */
            do_share_all(&p);
            for (size_t k = 0; k < steals && do_steal(&p); k++)
                continue;
            run_script(&p, "P", false);
            /* Take back half of the owner's: room again, for as many. */
            for (size_t k = owners(&p) / 2; k > 0 && do_take(&p); k--)
                continue;
            while (p.n < cap && do_push(&p))
                continue;
            run_script(&p, "P", false);
            /* Everything of the owner's back, the stolen refused: head
             * stays, still full, until the drops. */
            while (owners(&p) > 0 && do_take(&p))
                continue;
            if (p.n > 0)
                run_script(&p, "tPtd", true);
            if (p.n > 0 && scn_below(rng, 2))
                run_script(&p, "PtPsttdtd", true);
            pair_finish(&p, rng);
        }
    }
}

/* One op of a random walk, weighted: owner, thief (steal), share_all. */
static bool
walk_step(struct pair *p, uint64_t *rng, unsigned push, unsigned take,
          unsigned steal)
{
    unsigned r = scn_below(rng, push + take + steal + 1);

    /* The owner drops a refused item soon, as a sync would. */
    if (can_drop(p) && scn_below(rng, 3) == 0)
        return do_drop(p);
    if (r < push)
        return do_push(p);
    if (r < push + take)
        return do_take(p);
    if (r < push + take + steal)
        return do_steal(p);
    return do_share_all(p);
}

static void
phase_random(uint64_t *rng)
{
    size_t steps = crew_scenario_scale(10000000, 2000000);
    size_t per_deque = 100000;
    size_t done = 0;

    while (done < steps && !model_failed()) {
        size_t end = done + per_deque < steps ? done + per_deque : steps;
        size_t cap = scn_below(rng, 2) ? 1 + scn_below(rng, 16)
                                       : 1 + scn_below(rng, 4096);
        struct pair p;

        if (!pair_init(&p, cap))
            return;
        while (done < end && !model_failed()) {
            /* A stretch of one bias, long or short: towards the owner's
             * pushes, towards its takes, towards the thief, or neither;
             * a share_all one step in 12. */
            static const unsigned weights[4][3] = {
                {6, 3, 2}, {3, 6, 2}, {3, 2, 6}, {4, 4, 3}};
            size_t len = 1 + scn_below(rng, scn_below(rng, 2) ? 2048 : 64);
            const unsigned *w = weights[scn_below(rng, 4)];
            unsigned push = w[0], take = w[1], steal = w[2];

            for (size_t k = 0; k < len && done < end; k++, done++)
                if (!walk_step(&p, rng, push, take, steal))
                    break;
        }
        pair_finish(&p, rng);
    }
}

/* ------------------------------------------------------------------ */
/* One owner, several thieves                                          */
/* ------------------------------------------------------------------ */

/* An item's counter: who took it, added once per taking. */
#define BY_OWNER   1u
#define BY_THIEF   0x100u
#define OWNER_MASK 0xffu
#define THIEF_MASK 0xff00u

struct thief {
    /* Steals begun and ended: odd while inside one. Written by the
     * thief, read by the owner proving a refused item stolen. */
    alignas(64) atomic_uint steals;
    struct arena *arena;
    pthread_t thread;
    uint64_t rng;
    size_t stolen;
    size_t empty; /* steals that returned NULL */
};

struct arena {
    struct crew__split split;
    size_t capacity;
    size_t items;            /* M: ids 0..M-1 */
    atomic_uint *taken;      /* per id: BY_OWNER or BY_THIEF, summed */
    atomic_uchar *finished;  /* per id: its thief has run it */
    size_t *payload;         /* per id: written by the owner before the
                              * push, read by whoever takes the item;
                              * plain, published by the deque alone */
    atomic_size_t published; /* ids below this may have been pushed */
    atomic_uint ready;       /* thieves at the start line */
    atomic_int go;           /* every thief may start */
    atomic_int done;         /* the owner has taken back or dropped all */
    struct thief *thieves;
    unsigned count; /* thieves running */
};

/* What the owner writes in an item before it pushes it. */
static size_t
payload_of(size_t id)
{
    return id * 2654435761u + 1;
}

/* Totals over the concurrent phase, for the summary. */
static size_t total_items, total_taken_back, total_stolen, total_empty_steals;
static size_t total_refused, total_nested, total_full;

static void *
thief_run(void *arg)
{
    struct thief *t = arg;
    struct arena *a = t->arena;
    size_t last = SIZE_MAX; /* the id this thief stole last */
    unsigned begun = 0;
    unsigned misses = 0;

    atomic_fetch_add(&a->ready, 1);
    while (!atomic_load_explicit(&a->go, memory_order_acquire))
        sched_yield();
    while (!atomic_load_explicit(&a->done, memory_order_acquire)) {
        void *item;
        size_t id;
        unsigned before = 0;

        /* Sequenced before the steal's CAS, whose release the owner
         * acquires (is_empty after a refusal): the owner then reads this
         * odd count or a later one. Release, as every store of the
         * count, so that the owner's acquire of any later one sees the
         * counter of the item stolen. */
        atomic_store_explicit(&t->steals, ++begun, memory_order_release);
        item = crew__split_steal(&a->split);
        if (item != NULL)
            before = atomic_fetch_add_explicit(&a->taken[id_of(item)], BY_THIEF,
                                               memory_order_relaxed);
        /* Release: publishes the counter above to the owner's acquire in
         * prove_stolen(). */
        atomic_store_explicit(&t->steals, ++begun, memory_order_release);
        if (item == NULL) {
            t->empty++;
            /* The pool asks is_empty of other workers' deques: let TSan
             * see it race with the owner (no answer can be checked). */
            if (scn_below(&t->rng, 16) == 0)
                (void)crew__split_is_empty(&a->split);
            if (++misses % 4 == 0)
                sched_yield();
            continue;
        }
        misses = 0;
        id = id_of(item);
        if (!CHECK(
                id < atomic_load_explicit(&a->published, memory_order_relaxed),
                "a steal returned an item never pushed"))
            break;
        if (!CHECK(before == 0, before & OWNER_MASK
                                    ? "a thief stole an item the owner had "
                                      "taken back"
                                    : "an item was stolen twice"))
            break;
        /* A plain read: TSan reports a race if the steal did not
         * acquire what the push released. */
        CHECK(a->payload[id] == payload_of(id),
              "a steal's item did not carry what the owner wrote");
        CHECK(last == SIZE_MAX || id > last,
              "a thief's steals came out of push order");
        last = id;
        t->stolen++;
        /* Run it: a while, so that the owner's sync waits and works
         * above it meanwhile. */
        for (unsigned k = scn_below(&t->rng, 4); k > 0; k--)
            sched_yield();
        /* Release: the owner drops the item after its acquire of this,
         * the thief done with the item's slot. */
        atomic_store_explicit(&a->finished[id], 1, memory_order_release);
        if (model_failed())
            break;
    }
    return NULL;
}

/*
 * The owner's state. stack holds the deque's items, oldest first:
 * pushed, not taken back nor dropped. Items [0, known_stolen) are known
 * stolen: the newest of them was refused by a take, and everything
 * below a stolen item is stolen.
 */
struct owner {
    struct arena *a;
    uint64_t rng;
    size_t *stack;
    size_t sp;
    size_t known_stolen;
    size_t next; /* the next id to push */
    size_t taken_back, refused, nested, full;
};

/*
 * After a take refused item id: proves a thief took it. The owner has
 * acquired the release of the CAS that stole it, by a seq_cst is_empty
 * after a refusal: this one, or the one that began its run of refusals
 * (only RMWs write the word between), so the stealing thief's count
 * reads odd for that steal, or later. Once every thief seen inside a
 * steal has left it, the item's counter is written, if it was stolen.
 */
static bool
prove_stolen(struct owner *o, size_t id)
{
    struct arena *a = o->a;
    unsigned seen[MAX_THIEVES];

    for (unsigned k = 0; k < a->count; k++)
        seen[k] =
            atomic_load_explicit(&a->thieves[k].steals, memory_order_acquire);
    for (;;) {
        bool inside = false;

        if (atomic_load_explicit(&a->taken[id], memory_order_relaxed) &
            THIEF_MASK)
            return true;
        for (unsigned k = 0; k < a->count; k++)
            if (seen[k] % 2 == 1 &&
                atomic_load_explicit(&a->thieves[k].steals,
                                     memory_order_acquire) == seen[k])
                inside = true;
        if (!inside)
            break;
        sched_yield();
    }
    return CHECK(atomic_load_explicit(&a->taken[id], memory_order_relaxed) &
                     THIEF_MASK,
                 "a take returned NULL, but no thief took its newest item");
}

/* Pushes the next id; false if the deque was full (nothing pushed). */
static bool
owner_push(struct owner *o)
{
    struct arena *a = o->a;
    bool fresh = o->known_stolen == o->sp;
    enum crew__split_push how;

    a->payload[o->next] = payload_of(o->next);
    /* Relaxed, both: the test orders nothing from owner to thief, or it
     * would hide a push that does not release (payload above). The
     * steal's acquire of the push's release orders this store before
     * the thief's load. */
    atomic_store_explicit(&a->published, o->next + 1, memory_order_relaxed);
    how = crew__split_push(&a->split, item_of(o->next));
    if (o->sp == a->capacity) {
        o->full++;
        CHECK(how == CREW__SPLIT_FULL,
              "a push into a full deque did not return FULL");
        return false;
    }
    if (!CHECK(how != CREW__SPLIT_FULL,
               "a push returned FULL below the capacity"))
        return false;
    if (fresh)
        CHECK(how == CREW__SPLIT_SHARED,
              "a push onto stolen items (or none) did not share");
    o->stack[o->sp++] = o->next++;
    return true;
}

static void owner_work(struct owner *o, unsigned level, size_t budget);

/* Takes back the newest item; when a thief stole it, syncs with the
 * thief (with nested work meanwhile) and drops it. */
static void
owner_take(struct owner *o, unsigned level)
{
    struct arena *a = o->a;
    size_t id = o->stack[o->sp - 1];
    void *item = crew__split_take(&a->split);

    if (item != NULL) {
        unsigned before;

        if (!CHECK(o->sp > o->known_stolen,
                   "a take returned an item below a stolen one"))
            return;
        if (!CHECK(item == item_of(id), "a take returned another item than "
                                        "the newest the owner had"))
            return;
        before = atomic_fetch_add_explicit(&a->taken[id], BY_OWNER,
                                           memory_order_relaxed);
        if (!CHECK(before == 0, before & THIEF_MASK
                                    ? "the owner took back an item a "
                                      "thief had stolen"
                                    : "the owner took an item back twice"))
            return;
        o->sp--;
        o->taken_back++;
        return;
    }
    /* Refused: stolen, and everything below it. Nothing is shared. */
    o->refused++;
    o->known_stolen = o->sp;
    CHECK(crew__split_is_empty(&a->split),
          "is_empty said items were shared, after a take was refused");
    if (!prove_stolen(o, id))
        return;
    while (!atomic_load_explicit(&a->finished[id], memory_order_acquire) &&
           !model_failed()) {
        unsigned r = scn_below(&o->rng, 8);

        if (r == 0 && level < MAX_NEST) {
            o->nested++;
            owner_work(o, level + 1, 1 + scn_below(&o->rng, 8));
            o->known_stolen = o->sp;
        } else if (r == 1) {
            CHECK(crew__split_take(&a->split) == NULL,
                  "a take returned an item a thief had stolen");
        } else {
            sched_yield();
        }
    }
    if (model_failed())
        return;
    crew__split_drop(&a->split);
    o->sp--;
    o->known_stolen = o->sp;
    CHECK(crew__split_is_empty(&a->split),
          "is_empty said items were shared, after a drop");
}

/*
 * Pushes and takes back at random, budget rounds of it (level 0: until
 * every id is pushed), then takes back everything it pushed: a task's
 * spawns and syncs, nested in the sync of a stolen item when level > 0.
 */
static void
owner_work(struct owner *o, unsigned level, size_t budget)
{
    struct arena *a = o->a;
    size_t base = o->sp;

    for (size_t round = 0; !model_failed(); round++) {
        size_t r = scn_below(&o->rng, 100);
        size_t n = model_burst(&o->rng, 2000);

        if (o->next == a->items || (level > 0 && round == budget))
            break;
        if (r < 50) {
            for (size_t k = 0; k < n && o->next < a->items; k++)
                if (!owner_push(o))
                    break;
            /* Now and then, work of the spawner's own after its spawns,
             * long enough for thieves to take some. */
            if (scn_below(&o->rng, 8) == 0)
                sched_yield();
        } else if (r < 97) {
            for (size_t k = 0; k < n && o->sp > base && !model_failed(); k++)
                owner_take(o, level);
        } else {
            /* As a worker about to sleep: everything shared, then a
             * while for thieves to take it. */
            bool shared = crew__split_share_all(&a->split);

            CHECK(!shared || o->sp > o->known_stolen,
                  "share_all said it shared, with every item stolen");
            for (unsigned k = scn_below(&o->rng, 4); k > 0; k--)
                sched_yield();
        }
    }
    while (o->sp > base && !model_failed())
        owner_take(o, level);
}

static void
concurrent_round(size_t r, size_t items, size_t *stack)
{
    static const size_t capacities[] = {4096, 4096, 1, 2, 7, 64};
    struct arena a;
    struct thief thieves[MAX_THIEVES];
    struct owner o = {.a = &a, .rng = scn_seed(5000 + r), .stack = stack};
    unsigned count = 1 + (unsigned)(r % MAX_THIEVES);
    unsigned started = 0;
    size_t stolen = 0;
    int err;

    a.capacity = capacities[(r / MAX_THIEVES) % 6];
    a.items = items;
    a.taken = malloc(items * sizeof(*a.taken));
    a.finished = malloc(items * sizeof(*a.finished));
    a.payload = calloc(items, sizeof(*a.payload));
    if (!CHECK(a.taken != NULL && a.finished != NULL && a.payload != NULL,
               "out of memory"))
        goto out_free;
    for (size_t i = 0; i < items; i++) {
        atomic_init(&a.taken[i], 0);
        atomic_init(&a.finished[i], 0);
    }
    atomic_init(&a.published, 0);
    atomic_init(&a.ready, 0);
    atomic_init(&a.go, 0);
    atomic_init(&a.done, 0);
    a.thieves = thieves;
    err = crew__split_init(&a.split, (uint32_t)a.capacity);
    if (!CHECK(err == 0, "crew__split_init failed"))
        goto out_free;
    fresh_deques++;
    for (unsigned i = 0; i < count; i++) {
        thieves[i].arena = &a;
        thieves[i].rng = scn_seed(6000 + r * 8 + i);
        thieves[i].stolen = 0;
        thieves[i].empty = 0;
        atomic_init(&thieves[i].steals, 0);
        if (pthread_create(&thieves[i].thread, NULL, thief_run, &thieves[i]) !=
            0)
            break;
        started++;
    }
    a.count = started;
    if (started < count) {
        model_fail("pthread_create failed", __LINE__);
        atomic_store(&a.done, 1);
    }
    while (atomic_load(&a.ready) < started)
        sched_yield();
    atomic_store_explicit(&a.go, 1, memory_order_release);
    if (started == count)
        owner_work(&o, 0, 0);
    atomic_store_explicit(&a.done, 1, memory_order_release);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(thieves[i].thread, NULL);
        stolen += thieves[i].stolen;
        total_empty_steals += thieves[i].empty;
    }

    if (!model_failed()) {
        size_t never = 0;
        size_t twice = 0;
        size_t unfinished = 0;

        for (size_t i = 0; i < items; i++) {
            unsigned n = atomic_load(&a.taken[i]);

            never += n == 0;
            twice += n != 0 && n != BY_OWNER && n != BY_THIEF;
            unfinished += n == BY_THIEF && !atomic_load(&a.finished[i]);
        }
        CHECK(never == 0, "an item pushed was never taken");
        CHECK(twice == 0, "an item was taken more than once");
        CHECK(unfinished == 0, "an item stolen was never run (test bug)");
        CHECK(o.taken_back + stolen == items,
              "takes and steals do not add up to the items pushed");
        CHECK(o.taken_back + o.refused == items && o.refused == stolen,
              "the takes refused are not the items stolen");
        CHECK(crew__split_take(&a.split) == NULL &&
                  crew__split_steal(&a.split) == NULL &&
                  crew__split_is_empty(&a.split),
              "the deque is not empty once every item was taken");
    }
    total_items += items;
    total_taken_back += o.taken_back;
    total_stolen += stolen;
    total_refused += o.refused;
    total_nested += o.nested;
    total_full += o.full;
    crew__split_destroy(&a.split);
out_free:
    free(a.taken);
    free(a.finished);
    free(a.payload);
}

static size_t concurrent_items;
static size_t *concurrent_stack;

static void
phase_concurrent(uint64_t *rng)
{
    size_t rounds = crew_scenario_scale(320, 160);

    (void)rng;
    for (size_t r = 0; r < rounds && !model_failed(); r++)
        concurrent_round(r, concurrent_items, concurrent_stack);
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */


/* Runs one phase; counter and unit say what it did, for its line. */
static void
run_phase(const char *name, void (*body)(uint64_t *), uint64_t k,
          const size_t *counter, const char *unit)
{
    uint64_t rng = scn_seed(k);
    size_t count0 = *counter;

    if (!model_phase_start(name))
        return;
    body(&rng);
    model_phase_end(*counter - count0, unit);
}

int
main(void)
{
    double limit = watchdog_unit_seconds();
    uint64_t t0 = scn_now_ns();
    int err;

    setvbuf(stdout, NULL, _IOLBF, 0);
    concurrent_items = 10000;
    model_ids = malloc(MODEL_CAP * sizeof(*model_ids));
    model_refused = malloc(MODEL_CAP * sizeof(*model_refused));
    concurrent_stack = malloc(concurrent_items * sizeof(*concurrent_stack));
    if (model_ids == NULL || model_refused == NULL ||
        concurrent_stack == NULL) {
        printf("split_model: FAILED: out of memory\n");
        err = 1;
        goto out_free;
    }
    err = watchdog_start("split_model", limit, 0);
    if (err != 0) {
        printf("split_model: FAILED: no watchdog thread: %s\n", strerror(err));
        err = 1;
        goto out_free;
    }
    printf("split_model: CREW_STRESS=%g, %s, watchdog %.0f s a phase\n",
           crew_scenario_stress(),
           CREW_SCENARIO_TSAN ? "ThreadSanitizer counts" : "full counts",
           limit);

    run_phase("scripts", phase_scripts, 1, &calls_checked, "calls checked");
    run_phase("capacity", phase_capacity, 2, &calls_checked, "calls checked");
    run_phase("random", phase_random, 3, &calls_checked, "calls checked");
    run_phase("concurrent", phase_concurrent, 4, &total_items,
              "items taken exactly once");

    watchdog_stop();
    if (model_failed()) {
        model_print_failure("split_model", SM_PHASES);
        err = 1;
        goto out_free;
    }
    printf("split_model: passed: %zu phases, %zu single-threaded calls "
           "checked on %zu deques; %zu items taken exactly once (%zu taken "
           "back, %zu stolen; %zu refused takes, %zu nested works, %zu full "
           "pushes, %zu empty steals) (%.2f s)\n",
           model_phases_passed(), calls_checked, fresh_deques, total_items,
           total_taken_back, total_stolen, total_refused, total_nested,
           total_full, total_empty_steals,
           (double)(scn_now_ns() - t0) / (double)NS_PER_S);
out_free:
    free(model_ids);
    free(model_refused);
    free(concurrent_stack);
    return err;
}
