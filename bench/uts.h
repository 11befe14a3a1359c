/*
 * UTS, the Unbalanced Tree Search benchmark, as Lace's benchmarks/uts
 * runs it: the trees of the fj-uts-t1 and fj-uts-t3 workloads (bench.h),
 * shared by every system's program as bench.h is.
 *
 * A tree is grown, never stored. A node is a SHA-1 digest (FIPS 180-1)
 * and its depth. The root's digest is that of 20 bytes: 16 zero bytes,
 * then the seed, 4 bytes big-endian; child i's is that of 24 bytes: its
 * parent's digest, then i, 4 bytes big-endian. A child's digest depends
 * only on its parent's and on i, so any thread can grow any subtree and
 * every system counts the same tree. A node's number of children is
 * drawn from its digest: the low 31 bits of its last 4 bytes (big-endian)
 * over 2^31, a number u in [0, 1).
 *
 *   T1  geometric, with the fixed shape ("-t 1 -a 3 -d 10 -b 4 -r 19"):
 *       a node above depth d = 10 has floor(log(1 - u) / log(1 - p))
 *       children, p = 1 / (1 + b0), a geometric number of mean b0 = 4;
 *       a node at depth d has none. Root seed 19.
 *   T3  binomial ("-t 0 -b 2000 -q 0.124875 -m 8 -r 42"): the root has
 *       b0 = 2000 children; any other node has m = 8 with probability
 *       q = 0.124875 (u < q), else none. Root seed 42.
 *
 * Only the root may have more than 100 children, UTS's cap. Nothing else
 * of UTS is here: no other tree type or shape, no compute granularity.
 *
 * SIZE is the tree's own size parameter: T1's depth d, and T3's b0, the
 * root's children; T3 at a smaller b0 is the tree less all but
 * its first b0 subtrees. The node count is every system's checksum; the
 * reference counts below, at the sizes, are those printed by
 * Lace 1.4.2's own uts-seq and uts-lace (1 and 2 workers), built from its
 * tarball, and uts_count_seq() gets the same:
 *
 *   T1 (d = 10):    4,130,071 nodes, depth 10, 3,305,118 leaves
 *   T3 (b0 = 2000): 4,112,897 nodes, depth 1,572, 3,599,034 leaves
 *
 * Every system forks the same calls: a call grows one node (its digest
 * and its number of children, uts_grow()), forks a call for each of its
 * children but the last, makes that one itself, then joins the forks.
 * UTS's own programs differ in two ways that change no count: there the
 * parent hashes each child's digest before forking it, and every child
 * is forked. Here a fork carries only its parent and its index, so that
 * it needs no room for a node of its own until it runs.
 */
#ifndef CREW_BENCH_UTS_H
#define CREW_BENCH_UTS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* UTS's cap on a node's children; the root of a binomial tree is exempt. */
#define UTS_MAX_CHILDREN 100

/* The largest sizes taken: T1 at depth 12 has about 66 million nodes,
 * 16 times the tree; T3's b0 is at most the issue's, since its
 * subtrees past the 2000th are not UTS's T3. */
#define UTS_T1_DEPTH_MAX 12
#define UTS_T3_ROOT_MAX  2000

/* A tree's parameters, set once by uts_tree_of() and read only. */
struct uts_tree {
    int binomial;      /* T3's kind; else geometric, fixed shape (T1) */
    int seed;          /* the root's */
    int depth;         /* geometric: the depth of the nodes with none */
    double geo_log;    /* geometric: log(1 - p), p = 1 / (1 + b0) */
    int root_children; /* binomial: the root's, b0 */
    double q;          /* binomial: the chance of m children */
    int m;             /* binomial: a node's children, if any */
};

struct uts_node {
    uint32_t digest[5]; /* FIPS 180-1's H0..H4: bytes 4k..4k+3 in word k,
                           the first the most significant */
    int height;         /* the root's is 0 */
};

static inline uint32_t
uts_rotl(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

/* Word t of the message schedule, from the 16 words of w, which it
 * overwrites from t = 16 on: FIPS 180-1's method 2, 16 words kept. */
static inline uint32_t
uts_sha1_word(uint32_t w[16], int t)
{
    if (t >= 16)
        w[t & 15] = uts_rotl(w[(t + 13) & 15] ^ w[(t + 8) & 15] ^
                                 w[(t + 2) & 15] ^ w[t & 15],
                             1);
    return w[t & 15];
}

/* FIPS 180-1's functions f_t of b, c and d, by their names in FIPS
 * 180-2: steps 0-19 take ch, 20-39 and 60-79 parity, 40-59 maj. */
static inline uint32_t
uts_sha1_ch(uint32_t b, uint32_t c, uint32_t d)
{
    return (b & c) | (~b & d);
}

static inline uint32_t
uts_sha1_parity(uint32_t b, uint32_t c, uint32_t d)
{
    return b ^ c ^ d;
}

static inline uint32_t
uts_sha1_maj(uint32_t b, uint32_t c, uint32_t d)
{
    return (b & c) | (b & d) | (c & d);
}

/* Step t, given its constant k and f, on the working variables in the
 * roles a, b and e: the new a goes to *e, the new c to *b. The other
 * variables keep their values; each takes the next role, which the
 * caller's next step names, instead of five words moving. */
static inline void
uts_sha1_step(uint32_t w[16], int t, uint32_t k, uint32_t f, uint32_t a,
              uint32_t *b, uint32_t *e)
{
    *e += uts_rotl(a, 5) + f + k + uts_sha1_word(w, t);
    *b = uts_rotl(*b, 30);
}

/* The SHA-1 digest of a message short enough for one block, given as
 * that block already padded: 16 big-endian words, the message, a 1 bit,
 * zeros, and the message's length in bits in the last 64. Every digest
 * UTS takes is of 20 or 24 bytes, one block. Five steps a turn of each
 * loop, after which every variable is back in its own role. */
static inline void
uts_sha1_block(uint32_t w[16], uint32_t digest[5])
{
    static const uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe,
                                  0x10325476, 0xc3d2e1f0};
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], k;
    int t;

    for (t = 0, k = 0x5a827999; t < 20; t += 5) {
        uts_sha1_step(w, t, k, uts_sha1_ch(b, c, d), a, &b, &e);
        uts_sha1_step(w, t + 1, k, uts_sha1_ch(a, b, c), e, &a, &d);
        uts_sha1_step(w, t + 2, k, uts_sha1_ch(e, a, b), d, &e, &c);
        uts_sha1_step(w, t + 3, k, uts_sha1_ch(d, e, a), c, &d, &b);
        uts_sha1_step(w, t + 4, k, uts_sha1_ch(c, d, e), b, &c, &a);
    }
    for (k = 0x6ed9eba1; t < 40; t += 5) {
        uts_sha1_step(w, t, k, uts_sha1_parity(b, c, d), a, &b, &e);
        uts_sha1_step(w, t + 1, k, uts_sha1_parity(a, b, c), e, &a, &d);
        uts_sha1_step(w, t + 2, k, uts_sha1_parity(e, a, b), d, &e, &c);
        uts_sha1_step(w, t + 3, k, uts_sha1_parity(d, e, a), c, &d, &b);
        uts_sha1_step(w, t + 4, k, uts_sha1_parity(c, d, e), b, &c, &a);
    }
    for (k = 0x8f1bbcdc; t < 60; t += 5) {
        uts_sha1_step(w, t, k, uts_sha1_maj(b, c, d), a, &b, &e);
        uts_sha1_step(w, t + 1, k, uts_sha1_maj(a, b, c), e, &a, &d);
        uts_sha1_step(w, t + 2, k, uts_sha1_maj(e, a, b), d, &e, &c);
        uts_sha1_step(w, t + 3, k, uts_sha1_maj(d, e, a), c, &d, &b);
        uts_sha1_step(w, t + 4, k, uts_sha1_maj(c, d, e), b, &c, &a);
    }
    for (k = 0xca62c1d6; t < 80; t += 5) {
        uts_sha1_step(w, t, k, uts_sha1_parity(b, c, d), a, &b, &e);
        uts_sha1_step(w, t + 1, k, uts_sha1_parity(a, b, c), e, &a, &d);
        uts_sha1_step(w, t + 2, k, uts_sha1_parity(e, a, b), d, &e, &c);
        uts_sha1_step(w, t + 3, k, uts_sha1_parity(d, e, a), c, &d, &b);
        uts_sha1_step(w, t + 4, k, uts_sha1_parity(c, d, e), b, &c, &a);
    }
    digest[0] = h[0] + a;
    digest[1] = h[1] + b;
    digest[2] = h[2] + c;
    digest[3] = h[3] + d;
    digest[4] = h[4] + e;
}

/* The root's digest: SHA-1 of 16 zero bytes and the seed. */
static inline void
uts_hash_root(int seed, uint32_t digest[5])
{
    uint32_t w[16] = {0};

    w[4] = (uint32_t)seed;
    w[5] = 0x80000000; /* the 1 bit past the message */
    w[15] = 20 * 8;
    uts_sha1_block(w, digest);
}

/* Child i's digest: SHA-1 of its parent's digest and i. */
static inline void
uts_hash_child(const uint32_t parent[5], int i, uint32_t digest[5])
{
    uint32_t w[16] = {0};

    memcpy(w, parent, 5 * sizeof(*w));
    w[5] = (uint32_t)i;
    w[6] = 0x80000000;
    w[15] = 24 * 8;
    uts_sha1_block(w, digest);
}

/* The node's u in [0, 1): the low 31 bits of its digest's last word. */
static inline double
uts_draw(const struct uts_node *node)
{
    return (double)(node->digest[4] & 0x7fffffff) / 2147483648.0;
}

/* The node's number of children, by its tree's rule (see the top). */
static inline int
uts_count_children(const struct uts_tree *t, const struct uts_node *node)
{
    int n;

    if (t->binomial) {
        if (node->height == 0)
            return t->root_children;
        n = uts_draw(node) < t->q ? t->m : 0;
    } else {
        if (node->height >= t->depth)
            return 0;
        n = (int)floor(log(1 - uts_draw(node)) / t->geo_log);
    }
    return n < UTS_MAX_CHILDREN ? n : UTS_MAX_CHILDREN;
}

/* Grow child i of parent into *node, or the root when parent is NULL,
 * and return its number of children. Never inlined, for the reason
 * bench_uneven_range() gives: it is every system's unit of UTS work. */
static __attribute__((noinline, unused)) int
uts_grow(const struct uts_tree *t, const struct uts_node *parent, int i,
         struct uts_node *node)
{
    if (parent == NULL) {
        uts_hash_root(t->seed, node->digest);
        node->height = 0;
    } else {
        uts_hash_child(parent->digest, i, node->digest);
        node->height = parent->height + 1;
    }
    return uts_count_children(t, node);
}

/* The serial count of the subtree under child i of parent (the root's
 * when parent is NULL), for checksums and the floor. */
static inline uint64_t
uts_count_seq(const struct uts_tree *t, const struct uts_node *parent, int i)
{
    struct uts_node node;
    int n = uts_grow(t, parent, i, &node);
    uint64_t count = 1;

    for (int k = 0; k < n; k++)
        count += uts_count_seq(t, &node, k);
    return count;
}

/* The tree of workload fj-uts-t1 or fj-uts-t3 at SIZE, or exit. */
static inline struct uts_tree
uts_tree_of(const char *workload, long size)
{
    struct uts_tree t;
    /* Read through a volatile, so that log(1 - p) is the C library's,
     * computed at run time as in UTS's own program, never a constant
     * the compiler folded: the two may differ in the last bit, and so
     * may, once in a while, a node's number of children. Computed once
     * here, where UTS computes it at every node: the same value. */
    volatile double b0 = 4;

    memset(&t, 0, sizeof(t));
    if (strcmp(workload, "fj-uts-t3") == 0) {
        if (size < 1 || size > UTS_T3_ROOT_MAX) {
            fprintf(stderr, "fj-uts-t3: size %ld not in 1..%d\n", size,
                    UTS_T3_ROOT_MAX);
            exit(1);
        }
        t.binomial = 1;
        t.seed = 42;
        t.root_children = (int)size;
        t.q = 0.124875;
        t.m = 8;
    } else {
        if (size < 1 || size > UTS_T1_DEPTH_MAX) {
            fprintf(stderr, "fj-uts-t1: size %ld not in 1..%d\n", size,
                    UTS_T1_DEPTH_MAX);
            exit(1);
        }
        t.seed = 19;
        t.depth = (int)size;
        t.geo_log = log(1 - 1 / (1 + b0));
    }
    return t;
}

#endif
