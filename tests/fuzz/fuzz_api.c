/*
 * crew_fuzz: a libFuzzer target that reads its input as a program of crew
 * API calls and checks the contract (../../../shared/API.md, include/crew.h)
 * by counting.
 *
 * Build (clang only). The library is compiled with CMAKE_C_FLAGS, so pass
 * the coverage instrumentation there; this target adds -fsanitize=fuzzer
 * itself:
 *
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCREW_FUZZ=ON \
 *         -DCREW_CRITERION_TESTS=OFF -DCREW_BUILD_EXAMPLES=OFF \
 *         -DCMAKE_C_FLAGS='-fsanitize=fuzzer-no-link,address,undefined
 * -fno-sanitize-recover=all' cmake --build build-fuzz -j2 --target crew_fuzz
 *
 * Run:
 *
 *   tests/fuzz/run.sh build-fuzz 60          # 60 s on a copy of the corpus
 *   ctest --test-dir build-fuzz -R fuzz_corpus   # replay every seed once
 *   build-fuzz/tests/fuzz/crew_fuzz FILE...  # replay a reproducer
 *   python3 tests/fuzz/make_corpus.py        # regenerate corpus/
 *
 * The program. Each input is a sequence of operations over fixed slots:
 * 2 pool slots, 16 future slots (tasks, promises, when_all, when_any) and
 * 4 error slots. An operation is one byte (its opcode, modulo OP_COUNT)
 * followed by its operands, one byte each; a missing byte reads as 0. At
 * most MAX_OPS operations run. Slot operands are taken modulo the number
 * of slots. The operands, in order:
 *
 *   0  POOL_CREATE     pool, cfg      threads cfg%4 (0: one per CPU),
 *                                     max_queued (cfg>>2)%4, hooks cfg&16,
 *                                     long name cfg&32, stack of 1 byte
 *                                     (EINVAL) when cfg>>6 == 3
 *   1  POOL_SHUTDOWN   pool, how      how%3: DRAIN, CANCEL, invalid
 *   2  POOL_DESTROY    pool
 *   3  SUBMIT          pool, kind, param, aux, dst, mode
 *                                     kind%7: see enum kind; dst%32 >= 16
 *                                     is fire and forget; mode%4:
 *                                     crew_submit, submit_ex 0, submit_ex
 *                                     NONBLOCKING, submit_ex unknown bits
 *   4  PROMISE_CREATE  dst
 *   5  PROMISE_RESOLVE slot, v        v&1: resolve with no value
 *   6  PROMISE_FAIL    slot, code     (int8_t)code; 0 is EINVAL
 *   7  CANCEL          slot
 *   8  WAIT_FOR        slot, t        t%4: 0, 1 us, 100 us, 1 ms
 *   9  WAIT            slot           only if it provably resolves
 *   10 RETAIN          src, dst
 *   11 RELEASE         slot
 *   12 ON_COMPLETE     slot, v        v%3: count, give the slot's
 *                                     reference to the callback, read
 *   13 WHEN_ALL        dst, n, v, n slots   n%9; v%4: 1 NULL array, 2 NULL
 *                                     out-parameter; an empty slot is a
 *                                     NULL entry (EINVAL)
 *   14 WHEN_ANY        dst, n, v, n slots   as WHEN_ALL
 *   15 WAIT_ALL        n, v, n slots  v&1: no error out-parameter,
 *                                     v&2: NULL array; (v>>2)%4: error slot
 *   16 WAIT_ANY        n, t, v, n slots   v&1: NULL index, v&2: NULL array
 *   17 ERROR_TAKE      dst, src, how  how%3: the error of future slot src,
 *                                     flatten of error slot src, inner
 *                                     src>>4 of error slot src
 *   18 ERROR_INSPECT   slot, size     accessors, format into size%16 bytes
 *   19 ERROR_RELEASE   slot
 *   20 BAD_ARGS        which, slot    a call with bad input: EINVAL
 *   21 STATE           slot           state, result and error agree
 *   22 PAUSE           t              t%4: yield, 10 us, 100 us, 500 us
 *   23 WHEN_ALL_EX     dst, n, v, f, n slots   as WHEN_ALL, flags f%5:
 *                                     0..3 CREW_FAIL_FAST | CREW_CANCEL_REST,
 *                                     4 an unknown bit (EINVAL)
 *   24 THEN            pool, src, dst, mode   a continuation on slot src;
 *                                     dst%32 >= 16 fire and forget; mode&1
 *                                     its function fails, mode&2 arg_free
 *   25 PARALLEL_FOR    pool, n, g, f  items [100, 100 + n%48), grain g%9
 *                                     (0: crew's), the item 100 + f%64
 *                                     fails (none past the end); f >= 250:
 *                                     bad arguments (EINVAL)
 *   26 STATS           pool           a snapshot; exact once shut down
 *   27 RESOLVE_COPY    slot, size     crew_promise_resolve_copy of size%41
 *                                     bytes (inline up to 16, else not)
 *   28 WAIT_ALL_FOR    n, t, n slots  crew_wait_all_for, limit t%3: 0,
 *                                     1 us, 100 us; any input, resolving
 *                                     or not
 *   29 SUBMIT_EACH     pool, n, v     crew_submit_each of n%40 tasks (task
 *                                     v%8 of them fails when v&8), flags
 *                                     NONBLOCKING when v&16, no futures
 *                                     when v&32, bad input when v >= 250;
 *                                     waited for, arg_free awaited
 *   30 REDUCE          pool, n, g, f  crew_parallel_reduce of the items
 *                                     [100, 100 + n%48), grain g%9, the
 *                                     item 100 + f%64 fails; f >= 250: bad
 *                                     arguments (EINVAL)
 *   31 SPAWN           pool, d, w, f  a task summing a tree of spawned
 *                                     calls, depth d%6, width 1 + w%4, the
 *                                     leaf f%64 failing (none past the
 *                                     last leaf); f >= 250: bad spawns and
 *                                     syncs (EINVAL) inside the task
 *   32 GROUP_CREATE    g, pool, cfg, t   group slot g%3: policy cfg%4,
 *                                     quorum 1 + (cfg>>2)%4, limit
 *                                     (cfg>>4)%4, deadline t%4: none, 2 us,
 *                                     100 us, 1 ms; cfg>>6 == 3 an unknown
 *                                     policy, == 2 with QUORUM quorum 0
 *                                     (both EINVAL)
 *   33 GROUP_SUBMIT    g, kind, param, dst, mode   a member: kind%4
 *                                     succeeds, fails, spins (polling its
 *                                     cancellation, <= 160 us), or adds
 *                                     one or two members itself; dst%32
 *                                     >= 16 keeps no future in a slot;
 *                                     mode%4: arg_free, none, NONBLOCKING,
 *                                     an unknown flag (EINVAL)
 *   34 GROUP_CANCEL    g, how         how%4: crew_group_cancel, cancel
 *                                     its future (once closed), cancel
 *                                     twice, bad input (EINVAL)
 *   35 GROUP_CLOSE     g, dst         its future to slot dst%32 (>= 16:
 *                                     none); closed before: EALREADY
 *   36 GROUP_WAIT      g, v           closes, waits; v&1: no error
 *   37 GROUP_DESTROY   g, v           v&1: closes first (its outcome is
 *                                     then checked)
 *   38 TRACE           pool, v        v%4: crew_trace_start with a ring of
 *                                     1 + (v>>2)%16 records (EALREADY when
 *                                     recording), stop into memory (the
 *                                     JSON ends whole), stop discarding
 *                                     (EALREADY when not recording), read
 *                                     the latency (the count never goes
 *                                     back, p50 <= p99 <= max); v >= 250:
 *                                     bad input (EINVAL)
 *   39 WATCHDOG        pool, v        v%3: set (1 ms, or 2 when v&4), set
 *                                     again, remove; every report is of
 *                                     one of the pool's workers, past its
 *                                     limit; v >= 250: bad input (EINVAL)
 *
 * SUBMIT's kind 7 runs a parallel loop inside the task (on a worker).
 *
 * Never hanging. Every task finishes on its own: waits inside tasks are
 * bounded (wait_for on a promise) or on a child task that itself finishes.
 * The main thread waits without a bound (WAIT, WAIT_ALL) only on futures
 * that provably resolve: tasks, promises already resolved, and joins of
 * such futures (see compute_resolving); every other wait has a timeout of
 * at most 1 ms. At the end every promise is cancelled (EALREADY if it had
 * resolved) before anything waits for everything.
 *
 * The checks, at each call and at the end of every input (teardown):
 * every accepted task ran exactly once or resolved CANCELLED, and its
 * outcome is the one its function decided; every arg_free ran exactly
 * once per accepted submission (never for a refused one), after the
 * function returned and before the future resolved; every value_free ran
 * exactly once per value handed to the library; every callback ran
 * exactly once; a when_all resolved FAILED with one inner error per failed
 * position, in order, with its position, else CANCELLED if any input was,
 * else SUCCEEDED; a when_any resolved with an input already resolved, the
 * lowest position among those resolved at the call; a fail-fast
 * when_all_ex that failed holds one failure, an input's own, and
 * otherwise resolves as when_all; a continuation runs at most once, after
 * its input resolved, and only if it did not resolve cancelled, its
 * arg_free exactly once; a parallel loop covers its items exactly once,
 * or reports its one failing chunk; a shut-down pool's statistics add up
 * and count every accepted task; timeouts are never
 * early; bad input returns EINVAL. A group hands out indices 0..n-1,
 * refuses outsiders once closed (members may still add), resolves after
 * every member, and resolves as API.md's order of precedence says for
 * what its members did (the policy's cancellation is not a
 * cancellation; ETIMEDOUT never early); a refused member never runs. A
 * violation calls __builtin_trap() so libFuzzer reports it; ASan and LSan catch
 * the rest.
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream() */

#include <crew.h>

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounds: an input runs in milliseconds whatever its bytes say. */
#define MAX_OPS       192  /* operations per input */
#define N_POOLS       2    /* pool slots */
#define N_SLOTS       16   /* future slots */
#define N_ERRORS      4    /* error slots */
#define MAX_INSTANCES 8    /* pools created per input */
#define MAX_TASKS     192  /* submissions per input, children included */
#define MAX_NODES     64   /* futures described per input */
#define MAX_PROMISES  24   /* promises per input */
#define MAX_CALLBACKS 48   /* user callbacks per input */
#define MAX_INPUTS    8    /* inputs of one join */
#define MAX_WEIGHT    64   /* failures one when_all may aggregate */
#define MAX_LEAVES    1024 /* leaves compared after a flatten */
#define MAX_DEPTH     2    /* task nesting */
#define MAX_THENS     32   /* continuations per input */
#define PF_ITEMS      48   /* items of a parallel loop, at most */
#define N_GROUPS      3    /* group slots */
#define MAX_GROUPS    8    /* groups created per input */
#define GROUP_MEMBERS 24   /* members one group records, added ones too */

#define BOX_MAGIC   0x626f7821u
#define VALUE_MAGIC 0x76616c75u

#define CHECK(cond)                              \
    do {                                         \
        if (!(cond))                             \
            violated(#cond, __FILE__, __LINE__); \
    } while (0)

static _Noreturn void
violated(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: crew_fuzz: invariant violated: %s\n", file, line,
            what);
    __builtin_trap();
}

enum op {
    OP_POOL_CREATE,
    OP_POOL_SHUTDOWN,
    OP_POOL_DESTROY,
    OP_SUBMIT,
    OP_PROMISE_CREATE,
    OP_PROMISE_RESOLVE,
    OP_PROMISE_FAIL,
    OP_CANCEL,
    OP_WAIT_FOR,
    OP_WAIT,
    OP_RETAIN,
    OP_RELEASE,
    OP_ON_COMPLETE,
    OP_WHEN_ALL,
    OP_WHEN_ANY,
    OP_WAIT_ALL,
    OP_WAIT_ANY,
    OP_ERROR_TAKE,
    OP_ERROR_INSPECT,
    OP_ERROR_RELEASE,
    OP_BAD_ARGS,
    OP_STATE,
    OP_PAUSE,
    OP_WHEN_ALL_EX,
    OP_THEN,
    OP_PARALLEL_FOR,
    OP_STATS,
    OP_RESOLVE_COPY,
    OP_WAIT_ALL_FOR,
    OP_SUBMIT_EACH,
    OP_REDUCE,
    OP_SPAWN,
    OP_GROUP_CREATE,
    OP_GROUP_SUBMIT,
    OP_GROUP_CANCEL,
    OP_GROUP_CLOSE,
    OP_GROUP_WAIT,
    OP_GROUP_DESTROY,
    OP_TRACE,
    OP_WATCHDOG,
    OP_COUNT
};

/* What a task does (SUBMIT's kind operand). */
enum kind {
    K_SUCCEED,         /* returns one or two malloc'd values, or none */
    K_FAIL,            /* fails with crew_task_fail or a bare code */
    K_CANCEL_AWARE,    /* polls crew_task_cancelled, returns ECANCELED */
    K_NESTED,          /* submits a child to its pool and waits for it */
    K_WAIT_PROMISE,    /* wait_for (<= 1 ms) on a promise */
    K_RESOLVE_PROMISE, /* resolves or fails a promise from a worker */
    K_SELF,            /* bad calls from inside a task: EDEADLK, EINVAL */
    K_PFOR,            /* a parallel loop on its own pool */
    K_COUNT
};

/* What the message of a failed task must be. */
enum message { M_DEFAULT, M_EXACT, M_NOT_FIRST };

/* One pool created by this input. */
struct instance {
    crew_pool *pool;       /* NULL once destroyed */
    unsigned threads;      /* as crew_pool_threads() says */
    size_t max_queued;     /* as created */
    bool hooks;            /* thread hooks installed */
    bool shut;             /* crew_pool_shutdown() called (main only) */
    atomic_bool cancelled; /* the first shutdown was CREW_CANCEL */
    atomic_uint starts;    /* on_thread_start calls */
    atomic_uint stops;     /* on_thread_stop calls */
    bool tracing;          /* a trace records (main only) */
    uint64_t timed;        /* crew_pool_latency_get()'s last count */
    uint64_t watch_ns;     /* the watchdog's limit; 0: none */
    atomic_uint stuck;     /* the watchdog's reports */
    atomic_uint bad_stuck; /* reports of no worker, or of a short run */
};

struct task;

/* A task's argument: malloc'd when the task has arg_free, else inline. */
struct box {
    uint32_t magic;
    struct task *task;
    crew_future *promise; /* a reference, for the promise kinds */
};

/* One submission. The fields above `ready` are written before it is
 * published; the task writes its outcome before it returns, which happens
 * before its future resolves. */
struct task {
    struct instance *inst;
    crew_pool *pool;
    unsigned index;
    int kind;
    unsigned param;
    unsigned aux;
    int depth;
    bool has_arg_free;
    bool has_future; /* a tracker callback is registered on it */
    struct box inline_box;
    atomic_bool ready; /* the fields above are written */

    bool accepted;       /* by the submitter, after submission */
    crew_future *future; /* raw; set before the tracker is registered */

    atomic_int ran;       /* the function started */
    atomic_int returned;  /* the function returned */
    atomic_int arg_freed; /* arg_free calls */
    atomic_int tracked;   /* tracker calls */

    int ret;         /* what the function returned */
    bool saw_cancel; /* crew_task_cancelled() was true before returning */
    void *value;     /* the last value given to crew_task_return */
    int message;     /* enum message */
};

enum node_kind {
    N_TASK,
    N_PROMISE,
    N_ALL,
    N_ANY,
    N_ALL_EX,
    N_THEN,
    N_GMEMBER,
    N_GDONE
};

/* What a future is: nodes are never reused within an input, and a join's
 * inputs always have lower indices. */
struct node {
    int kind;
    int task;    /* N_TASK: index in ctx.tasks */
    int promise; /* N_PROMISE: index in ctx.promises */
    size_t n;
    int in[MAX_INPUTS];              /* joins: the inputs' nodes */
    crew_future *inputs[MAX_INPUTS]; /* raw: the join holds references */
    long lowest;        /* when_any: lowest position resolved before */
    unsigned flags;     /* when_all_ex: its flags */
    int then;           /* N_THEN: index in ctx.thens */
    int group;          /* N_GMEMBER, N_GDONE: index in ctx.groups */
    int gmember;        /* N_GMEMBER: its record in the group */
    unsigned weight;    /* inner errors an aggregate from it may hold */
    atomic_int checked; /* the join's checker ran */
};

/* A user callback. */
struct callback {
    crew_future *future; /* the future it was registered on */
    int mode;            /* 0 count, 1 owns a reference, 2 read */
    atomic_int calls;
};

struct slot {
    crew_future *f; /* a reference, or NULL */
    int node;
};

/* What a group member does (GROUP_SUBMIT's kind operand). */
enum gkind { G_SUCCEED, G_FAIL, G_SPIN, G_ADDER, G_COUNT };

struct grp;

/* One submission to a group. The fields above `future` are written
 * before it is submitted; `future` and `index` before `accepted`. */
struct gmember {
    struct grp *grp; /* NULL: a record that must never run */
    int kind;
    unsigned param;
    bool has_free;
    crew_future *future; /* a reference, once accepted */
    size_t index;
    atomic_bool accepted;
    atomic_int ran;
    atomic_int returned;
    atomic_int freed;
    int ret;         /* what the function returned */
    bool saw_cancel; /* crew_task_cancelled() before returning */
};

/* One group created by this input. */
struct grp {
    crew_group *g;      /* NULL once destroyed */
    crew_group *handle; /* as created: what crew_task_group() says */
    struct instance *inst;
    crew_pool *pool;
    crew_group_options o;
    uint64_t created_ns;
    bool closed;           /* by the main thread */
    crew_future *done;     /* a reference, once closed */
    atomic_bool requested; /* a cancel was asked for, or is about to be */
    atomic_int used;       /* records of m[] taken */
    atomic_uint indices;   /* the indices handed out */
    atomic_int checked;    /* group_checker calls */
    struct gmember m[GROUP_MEMBERS];
};

/* A continuation. */
struct then {
    crew_future *input; /* raw: the continuation holds a reference */
    bool fail;          /* its function fails */
    bool has_free;      /* it has an arg_free */
    bool accepted;
    atomic_int ran;
    atomic_int freed;
    atomic_int tracked;
};

static struct {
    const uint8_t *data;
    size_t size;
    size_t pos;

    int pool_slot[N_POOLS]; /* instance index, or -1 */
    struct instance inst[MAX_INSTANCES];
    int ninst;

    struct task tasks[MAX_TASKS];
    atomic_int ntasks; /* may run past MAX_TASKS: clamp */

    struct node nodes[MAX_NODES];
    int nnodes;

    crew_future *promises[MAX_PROMISES]; /* one reference each */
    int npromises;

    struct callback callbacks[MAX_CALLBACKS];
    int ncallbacks;

    struct then thens[MAX_THENS];
    int nthens;

    int group_slot[N_GROUPS]; /* index in groups, or -1 */
    struct grp groups[MAX_GROUPS];
    int ngroups;
    struct gmember never; /* the argument of submissions bound to fail */

    struct slot slots[N_SLOTS];
    crew_error *errors[N_ERRORS];

    atomic_long values_made;  /* values handed to the library */
    atomic_long values_freed; /* value_free calls */
} ctx;

static const uint64_t wait_timeouts[4] = {0, 1000, 100000, 1000000};

/* 256 bytes: a message that must be kept whole. */
#define TAIL16 "0123456789abcdef"
#define TAIL256                                                           \
    TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 \
        TAIL16 TAIL16 TAIL16 TAIL16 TAIL16 TAIL16

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static unsigned
next(void)
{
    return ctx.pos < ctx.size ? ctx.data[ctx.pos++] : 0;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
pause_ns(long ns)
{
    struct timespec ts = {0, ns};

    if (ns == 0)
        sched_yield();
    else
        nanosleep(&ts, NULL);
}

static bool
is_final(crew_state state)
{
    return state == CREW_SUCCEEDED || state == CREW_FAILED ||
           state == CREW_CANCELLED;
}

/* What crew_future_wait() must return for a resolved future. */
static int
code_of(const crew_future *f)
{
    const crew_error *e = crew_future_error(f); /* acquire */

    switch (crew_future_state(f)) {
    case CREW_SUCCEEDED:
        return 0;
    case CREW_CANCELLED:
        return ECANCELED;
    case CREW_FAILED:
        CHECK(e != NULL);
        return crew_error_code(e);
    default:
        violated("code_of: the future has not resolved", __FILE__, __LINE__);
    }
}

/*
 * A timed wait on `f`, begun at `start`, returned ETIMEDOUT: whether it
 * timed out (never early). A future that failed with ETIMEDOUT (a
 * group's deadline, a promise failed with that code) makes the wait
 * return it too: once `f` has resolved so, the two cannot be told apart,
 * and it counts as resolved.
 */
static bool
wait_timed_out(const crew_future *f, uint64_t start, uint64_t timeout)
{
    if (is_final(crew_future_state(f)) && code_of(f) == ETIMEDOUT)
        return false;
    CHECK(now_ns() - start >= timeout);
    return true;
}

/* A wait returned `r` without a timeout: the future has resolved, and
 * `r` says how. */
static void
check_code(const crew_future *f, int r)
{
    CHECK(is_final(crew_future_state(f)));
    CHECK(r == code_of(f));
}

/* State, result and error agree. The state is read first: a future
 * still running may resolve between two reads, but once final it never
 * changes, so the error and result read after it belong to it. */
static void
check_outcome_shape(const crew_future *f)
{
    crew_state state = crew_future_state(f);
    const crew_error *e = crew_future_error(f);
    void *result = crew_future_result(f);

    switch (state) {
    case CREW_SUCCEEDED:
        CHECK(e == NULL);
        break;
    case CREW_FAILED:
        CHECK(e != NULL && result == NULL && crew_error_code(e) != 0);
        CHECK(crew_error_message(e) != NULL);
        break;
    case CREW_CANCELLED:
        CHECK(e != NULL && result == NULL);
        CHECK(crew_error_code(e) == ECANCELED);
        break;
    default:
        /* Not resolved yet: nothing to read. A later state only moves
         * forward. */
        break;
    }
}

static void
value_free(void *p)
{
    uint32_t *v = p;

    CHECK(v != NULL && *v == VALUE_MAGIC);
    *v = 0;
    free(v);
    atomic_fetch_add(&ctx.values_freed, 1);
}

static uint32_t *
value_new(void)
{
    uint32_t *v = malloc(sizeof(*v));

    if (v == NULL)
        abort();
    *v = VALUE_MAGIC;
    return v;
}

/* A value the library refused stays the caller's. */
static void
value_discard(uint32_t *v)
{
    free(v);
}

/* ------------------------------------------------------------------ */
/* Tasks                                                              */
/* ------------------------------------------------------------------ */

static struct task *
task_new(struct instance *inst, crew_pool *pool, int kind, unsigned param,
         unsigned aux, int depth, bool has_arg_free, bool has_future)
{
    int i = atomic_fetch_add(&ctx.ntasks, 1);
    struct task *t;

    if (i >= MAX_TASKS)
        return NULL;
    t = &ctx.tasks[i];
    t->inst = inst;
    t->pool = pool;
    t->index = (unsigned)i;
    t->kind = kind;
    t->param = param;
    t->aux = aux;
    t->depth = depth;
    t->has_arg_free = has_arg_free;
    t->has_future = has_future;
    t->inline_box.magic = BOX_MAGIC;
    t->inline_box.task = t;
    t->inline_box.promise = NULL;
    atomic_store_explicit(&t->ready, true, memory_order_release);
    return t;
}

static int
task_count(void)
{
    int n = atomic_load(&ctx.ntasks);

    return n < MAX_TASKS ? n : MAX_TASKS;
}

/* The argument of a task with arg_free; takes over `promise`. */
static struct box *
box_new(struct task *t, crew_future *promise)
{
    struct box *b = malloc(sizeof(*b));

    if (b == NULL)
        abort();
    b->magic = BOX_MAGIC;
    b->task = t;
    b->promise = promise;
    return b;
}

/* A refused submission's argument stays the caller's. */
static void
box_discard(struct box *b)
{
    crew_future_release(b->promise);
    b->magic = 0;
    free(b);
}

static void
arg_free(void *p)
{
    struct box *b = p;
    struct task *t;

    CHECK(b != NULL && b->magic == BOX_MAGIC);
    t = b->task;
    CHECK(t->has_arg_free);
    CHECK(atomic_fetch_add(&t->arg_freed, 1) == 0);
    /* After the function returned, or instead of running it. */
    CHECK(atomic_load(&t->ran) == atomic_load(&t->returned));
    box_discard(b);
}

static int
fail_code(const struct task *t)
{
    int code = 1 + (int)((t->param >> 3) % 100); /* never ECANCELED */

    return (t->aux & 1) ? -code : code;
}

static void
task_message(const struct task *t, int code, char *buf, size_t size)
{
    snprintf(buf, size, "task %u failed with %d%s", t->index, code,
             (t->aux & 2) ? TAIL256 : "");
}

/* A task's outcome is the one its function decided. */
static void
check_task_outcome(struct task *t, const crew_future *f)
{
    const crew_error *e = crew_future_error(f); /* acquire */
    void *result = crew_future_result(f);
    crew_state state = crew_future_state(f);

    CHECK(is_final(state));
    check_outcome_shape(f);
    /* arg_free has run by the time the future resolves. */
    CHECK(atomic_load(&t->arg_freed) == (t->has_arg_free ? 1 : 0));
    if (atomic_load(&t->ran) == 0) {
        /* Accepted and never run: cancelled. */
        CHECK(state == CREW_CANCELLED);
        return;
    }
    CHECK(atomic_load(&t->ran) == 1 && atomic_load(&t->returned) == 1);
    if (t->ret == 0) {
        CHECK(state == CREW_SUCCEEDED);
        CHECK(result == t->value);
    } else if (t->ret == ECANCELED) {
        /* Cancelled once a request was seen; without one seen, the
         * request may still have come in time, or it simply failed. */
        if (t->saw_cancel)
            CHECK(state == CREW_CANCELLED);
        else
            CHECK(state == CREW_CANCELLED ||
                  (state == CREW_FAILED && crew_error_code(e) == ECANCELED));
    } else {
        char expected[512];

        CHECK(state == CREW_FAILED);
        CHECK(crew_error_code(e) == t->ret);
        CHECK(crew_error_count(e) == 0);
        switch (t->message) {
        case M_EXACT:
            task_message(t, t->ret, expected, sizeof(expected));
            CHECK(strcmp(crew_error_message(e), expected) == 0);
            break;
        case M_NOT_FIRST:
            CHECK(strcmp(crew_error_message(e), "first") != 0);
            CHECK(crew_error_message(e)[0] != '\0');
            break;
        default:
            CHECK(crew_error_message(e)[0] != '\0');
            break;
        }
    }
}

/* Registered on every task future: runs once, when it resolves. */
static void
tracker(crew_future *f, void *user)
{
    struct task *t = user;

    CHECK(atomic_fetch_add(&t->tracked, 1) == 0);
    CHECK(f == t->future);
    check_task_outcome(t, f);
}

static int
run_succeed(crew_task *task, struct task *t, void **value)
{
    uint32_t *v = NULL;

    if (!(t->param & 1)) {
        v = value_new();
        atomic_fetch_add(&ctx.values_made, 1);
        crew_task_return(task, v, value_free);
    }
    if (t->param & 2) {
        /* Called twice: keeps the second, releases the first. */
        v = value_new();
        atomic_fetch_add(&ctx.values_made, 1);
        crew_task_return(task, v, value_free);
    }
    if (t->param & 4) {
        crew_task_return(task, NULL, NULL);
        v = NULL;
    }
    *value = v;
    return 0;
}

static int
run_fail(crew_task *task, struct task *t, void **value)
{
    int code = fail_code(t);
    uint32_t *v = NULL;

    if (t->param & 1) {
        /* Freed at once when the task does not succeed. */
        v = value_new();
        atomic_fetch_add(&ctx.values_made, 1);
        crew_task_return(task, v, value_free);
    }
    *value = v;
    switch ((t->param >> 1) & 3) {
    case 0:
        t->message = M_EXACT;
        return crew_task_fail(task, code, "task %u failed with %d%s", t->index,
                              code, (t->aux & 2) ? TAIL256 : "");
    case 1:
        t->message = M_DEFAULT;
        return code;
    case 2:
        /* A recorded message, then success: the message is dropped. */
        CHECK(crew_task_fail(task, code, "never seen") == code);
        return 0;
    default:
        /* A NULL format forgets the recorded message. */
        CHECK(crew_task_fail(task, EPERM, "first") == EPERM);
        t->message = M_NOT_FIRST;
        return crew_task_fail(task, code, NULL);
    }
}

static int
run_cancel_aware(crew_task *task, struct task *t)
{
    unsigned rounds = 1 + t->param % 8;

    for (unsigned i = 0; i < rounds; i++) {
        if (crew_task_cancelled(task))
            return ECANCELED;
        pause_ns(50000);
    }
    /* ECANCELED without a request is a plain failure. */
    return (t->param & 8) ? ECANCELED : 0;
}

static int task_fn(crew_task *task, void *arg);
static void check_gmember(const struct gmember *m, const crew_future *f);
static void check_group(const struct grp *gr, const crew_future *done);
static int gmember_fn(crew_task *task, void *arg);
static void gmember_free(void *arg);

static int
run_nested(crew_task *task, struct task *t)
{
    static const int child_kinds[4] = {K_SUCCEED, K_FAIL, K_CANCEL_AWARE,
                                       K_NESTED};
    unsigned flags = (t->param & 1) ? CREW_NONBLOCKING : 0;
    crew_future *cf = NULL;
    struct task *c;
    struct box *b;
    int r, w;

    if (t->depth >= MAX_DEPTH)
        return 0;
    c = task_new(t->inst, t->pool, child_kinds[t->aux % 4],
                 t->param * 37u + 11u, t->aux >> 2, t->depth + 1, true, true);
    if (c == NULL)
        return 0;
    b = box_new(c, NULL);
    cf = (crew_future *)b; /* must be overwritten */
    r = crew_submit_ex(crew_task_pool(task), task_fn, b, arg_free, flags, &cf);
    if (r != 0) {
        CHECK(cf == NULL);
        /* A worker of its own pool is refused only by a CREW_CANCEL
         * shutdown, or by a full queue when it asked not to wait. */
        CHECK((r == ESHUTDOWN && atomic_load(&t->inst->cancelled)) ||
              (r == EAGAIN && flags != 0 && t->inst->max_queued != 0));
        box_discard(b);
        return 0;
    }
    c->accepted = true;
    c->future = cf;
    CHECK(crew_future_on_complete(cf, tracker, c) == 0);
    switch ((t->param >> 1) % 3) {
    case 0:
        w = crew_future_wait(cf);
        check_code(cf, w);
        break;
    case 1: {
        crew_error *e = (crew_error *)b; /* must be overwritten */
        w = crew_wait_all(&cf, 1, &e);
        CHECK(is_final(crew_future_state(cf)));
        switch (crew_future_state(cf)) {
        case CREW_SUCCEEDED:
            CHECK(w == 0 && e == NULL);
            break;
        case CREW_FAILED: {
            size_t pos = 99;
            CHECK(w == CREW_EAGGREGATE && e != NULL);
            CHECK(crew_error_code(e) == CREW_EAGGREGATE);
            CHECK(crew_error_count(e) == 1);
            CHECK(crew_error_inner(e, 0, &pos) == crew_future_error(cf));
            CHECK(pos == 0);
            break;
        }
        default:
            CHECK(w == ECANCELED);
            CHECK(e == NULL || crew_error_code(e) == ECANCELED);
            break;
        }
        crew_error_release(e);
        w = code_of(cf);
        break;
    }
    default: {
        size_t index = 99;
        CHECK(crew_wait_any(&cf, 1, CREW_FOREVER, &index) == 0);
        CHECK(index == 0);
        w = code_of(cf);
        break;
    }
    }
    crew_future_release(cf);
    return w;
}

static int
run_wait_promise(struct task *t, crew_future *promise)
{
    uint64_t timeout = wait_timeouts[t->param % 4];
    uint64_t start;
    int r;

    if (promise == NULL)
        return 0;
    start = now_ns();
    r = crew_future_wait_for(promise, timeout);
    if (r == ETIMEDOUT && wait_timed_out(promise, start, timeout))
        return 0;
    check_code(promise, r);
    return r;
}

static int
run_resolve_promise(struct task *t, crew_future *promise)
{
    int r;

    if (promise == NULL)
        return 0;
    if (t->param & 1) {
        uint32_t *v = value_new();
        r = crew_promise_resolve(promise, v, value_free);
        if (r == 0) {
            atomic_fetch_add(&ctx.values_made, 1);
            CHECK(crew_future_state(promise) == CREW_SUCCEEDED);
        } else {
            CHECK(r == EALREADY);
            value_discard(v);
        }
    } else {
        int code = fail_code(t);
        r = crew_promise_fail(promise, code, "failed by task %u", t->index);
        if (r == 0) {
            CHECK(crew_future_state(promise) == CREW_FAILED);
            CHECK(crew_error_code(crew_future_error(promise)) == code);
        } else {
            CHECK(r == EALREADY);
        }
    }
    CHECK(is_final(crew_future_state(promise)));
    return 0;
}

static int
run_self(crew_task *task, struct task *t)
{
    crew_pool *pool = crew_task_pool(task);

    /* A worker may not wait for its own pool's workers. */
    CHECK(crew_pool_shutdown(pool, CREW_DRAIN) == EDEADLK);
    CHECK(crew_pool_shutdown(pool, CREW_CANCEL) == EDEADLK);
    CHECK(crew_pool_threads(pool) == t->inst->threads);
    crew_task_return(NULL, NULL, NULL);
    CHECK(crew_task_fail(NULL, EIO, "x") == EINVAL);
    CHECK(!crew_task_cancelled(NULL));
    CHECK(crew_task_pool(NULL) == NULL);
    return 0;
}

/* A parallel loop over [PF_BASE, PF_BASE + n): what its chunks did. */
#define PF_BASE 100

struct pf {
    size_t n;
    size_t fail_at; /* an item whose chunk fails; SIZE_MAX: none */
    atomic_uchar visits[PF_ITEMS];
};

static int
pf_chunk(crew_task *task, size_t begin, size_t end, void *arg)
{
    struct pf *l = arg;

    CHECK(task != NULL && begin < end && begin >= PF_BASE &&
          end <= PF_BASE + l->n);
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add(&l->visits[i - PF_BASE], 1);
    if (l->fail_at >= begin && l->fail_at < end)
        return crew_task_fail(task, EDOM, "pf %zu", begin);
    return 0;
}

/* Run a loop of n items, grain g, the item fail_at failing; check it. */
static void
pf_run(crew_pool *pool, size_t n, size_t grain, size_t fail_at)
{
    struct pf l = {.n = n, .fail_at = fail_at};
    crew_error *error = (crew_error *)&l; /* must be overwritten */
    bool fails = fail_at >= PF_BASE && fail_at < PF_BASE + n;
    int r = crew_parallel_for(pool, PF_BASE, PF_BASE + n, grain, pf_chunk, &l,
                              &error);

    for (size_t i = 0; i < n; i++)
        CHECK(atomic_load(&l.visits[i]) <= 1 &&
              (fails || atomic_load(&l.visits[i]) == 1));
    if (!fails) {
        CHECK(r == 0 && error == NULL);
        return;
    }
    CHECK(r == CREW_EAGGREGATE && error != NULL);
    CHECK(crew_error_count(error) == 1);
    size_t pos = SIZE_MAX;
    const crew_error *inner = crew_error_inner(error, 0, &pos);
    char message[32];
    snprintf(message, sizeof(message), "pf %zu", pos);
    CHECK(pos <= fail_at && (grain == 0 || fail_at - pos < grain));
    CHECK(crew_error_code(inner) == EDOM &&
          strcmp(crew_error_message(inner), message) == 0);
    CHECK(atomic_load(&l.visits[fail_at - PF_BASE]) == 1);
    crew_error_release(error);
}

static int
task_fn(crew_task *task, void *arg)
{
    struct box *b = arg;
    struct task *t;
    void *value = NULL;
    int ret = 0;

    CHECK(task != NULL && b != NULL && b->magic == BOX_MAGIC);
    t = b->task;
    CHECK(atomic_fetch_add(&t->ran, 1) == 0);
    CHECK(atomic_load(&t->arg_freed) == 0);
    CHECK(crew_task_pool(task) == t->pool);
    switch (t->kind) {
    case K_SUCCEED:
        ret = run_succeed(task, t, &value);
        break;
    case K_FAIL:
        ret = run_fail(task, t, &value);
        break;
    case K_CANCEL_AWARE:
        ret = run_cancel_aware(task, t);
        break;
    case K_NESTED:
        ret = run_nested(task, t);
        break;
    case K_WAIT_PROMISE:
        ret = run_wait_promise(t, b->promise);
        break;
    case K_RESOLVE_PROMISE:
        ret = run_resolve_promise(t, b->promise);
        break;
    case K_PFOR:
        /* From a worker, on its own pool: never a deadlock. */
        pf_run(t->pool, t->param % 32, t->aux % 4, SIZE_MAX);
        break;
    default:
        ret = run_self(task, t);
        break;
    }
    t->ret = ret;
    t->value = value;
    t->saw_cancel = crew_task_cancelled(task);
    atomic_store(&t->returned, 1);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Joins and callbacks                                                */
/* ------------------------------------------------------------------ */

/* A when_all over `in` resolved as (state, e): check it against the
 * inputs, which have all resolved. */
static void
check_all(crew_state state, const crew_error *e, const void *result,
          crew_future *const *in, size_t n)
{
    size_t failed = 0, k = 0, pos;
    bool cancelled = false;

    for (size_t i = 0; i < n; i++) {
        crew_state s = crew_future_state(in[i]);
        CHECK(is_final(s));
        failed += s == CREW_FAILED;
        cancelled |= s == CREW_CANCELLED;
    }
    if (failed > 0) {
        CHECK(state == CREW_FAILED);
        CHECK(e != NULL && crew_error_code(e) == CREW_EAGGREGATE);
        CHECK(crew_error_count(e) == failed);
        for (size_t i = 0; i < n; i++) {
            if (crew_future_state(in[i]) != CREW_FAILED)
                continue;
            pos = SIZE_MAX;
            CHECK(crew_error_inner(e, k, &pos) == crew_future_error(in[i]));
            CHECK(pos == i);
            k++;
        }
        pos = 12345;
        CHECK(crew_error_inner(e, k, &pos) == NULL && pos == 12345);
    } else if (cancelled) {
        CHECK(state == CREW_CANCELLED);
        CHECK(e != NULL && crew_error_code(e) == ECANCELED);
    } else {
        CHECK(state == CREW_SUCCEEDED && e == NULL && result == NULL);
    }
}

static long
lowest_resolved(crew_future *const *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_final(crew_future_state(in[i])))
            return (long)i;
    }
    return -1;
}

static void
check_any(const crew_future *f, const struct node *nd)
{
    const crew_future *winner = crew_future_result(f);
    size_t i = 0;

    CHECK(crew_future_state(f) == CREW_SUCCEEDED);
    CHECK(crew_future_error(f) == NULL);
    while (i < nd->n && nd->inputs[i] != winner)
        i++;
    CHECK(i < nd->n);
    CHECK(is_final(crew_future_state(winner)));
    /* Among inputs already resolved at the call, the lowest wins. */
    CHECK(nd->lowest < 0 || (long)i <= nd->lowest);
}

/* A when_all_ex: a fail-fast one that failed holds one failure, one of
 * its inputs' own; otherwise it resolved as a when_all. */
static void
check_all_ex(const crew_future *f, const struct node *nd)
{
    const crew_error *e = crew_future_error(f);

    if ((nd->flags & CREW_FAIL_FAST) != 0 &&
        crew_future_state(f) == CREW_FAILED) {
        size_t pos = SIZE_MAX;
        const crew_error *inner;

        CHECK(e != NULL && crew_error_code(e) == CREW_EAGGREGATE);
        CHECK(crew_error_count(e) == 1);
        inner = crew_error_inner(e, 0, &pos);
        CHECK(pos < nd->n);
        CHECK(crew_future_state(nd->inputs[pos]) == CREW_FAILED &&
              inner == crew_future_error(nd->inputs[pos]));
        return;
    }
    check_all(crew_future_state(f), e, crew_future_result(f), nd->inputs,
              nd->n);
}

/* A resolved continuation: it ran exactly when it did not resolve
 * cancelled, and its arg_free ran first. */
static void
check_then(const struct then *c, crew_state state)
{
    CHECK(atomic_load(&c->freed) == (c->has_free ? 1 : 0));
    switch (state) {
    case CREW_SUCCEEDED:
        CHECK(atomic_load(&c->ran) == 1 && !c->fail);
        break;
    case CREW_FAILED:
        CHECK(atomic_load(&c->ran) == 1 && c->fail);
        break;
    default:
        CHECK(state == CREW_CANCELLED && atomic_load(&c->ran) == 0);
        break;
    }
}

/* A resolved future: its outcome agrees with what it is. */
static void
check_resolved(const crew_future *f, int node)
{
    const struct node *nd;

    CHECK(is_final(crew_future_state(f)));
    check_outcome_shape(f);
    if (node < 0)
        return;
    nd = &ctx.nodes[node];
    switch (nd->kind) {
    case N_TASK:
        check_task_outcome(&ctx.tasks[nd->task], f);
        break;
    case N_ALL:
        check_all(crew_future_state(f), crew_future_error(f),
                  crew_future_result(f), nd->inputs, nd->n);
        break;
    case N_ANY:
        check_any(f, nd);
        break;
    case N_ALL_EX:
        check_all_ex(f, nd);
        break;
    case N_THEN:
        check_then(&ctx.thens[nd->then], crew_future_state(f));
        break;
    case N_GMEMBER:
        check_gmember(&ctx.groups[nd->group].m[nd->gmember], f);
        break;
    case N_GDONE:
        check_group(&ctx.groups[nd->group], f);
        break;
    default:
        break;
    }
}

/* Registered on every join: runs once, when it resolves. */
static void
join_checker(crew_future *f, void *user)
{
    struct node *nd = user;

    CHECK(atomic_fetch_add(&nd->checked, 1) == 0);
    check_resolved(f, (int)(nd - ctx.nodes));
}

static void
user_callback(crew_future *f, void *user)
{
    struct callback *c = user;

    CHECK(atomic_fetch_add(&c->calls, 1) == 0);
    CHECK(f == c->future);
    CHECK(is_final(crew_future_state(f)));
    check_outcome_shape(f);
    if (c->mode == 2 && crew_future_error(f) != NULL)
        CHECK(crew_error_format(crew_future_error(f), NULL, 0) > 0);
    /* The library holds its own reference while it dispatches. */
    if (c->mode == 1)
        crew_future_release(f);
}

/* Which nodes provably resolve, given what has resolved so far. */
static void
compute_resolving(bool *out)
{
    for (int i = 0; i < ctx.nnodes; i++) {
        const struct node *nd = &ctx.nodes[i];
        switch (nd->kind) {
        case N_TASK:
            out[i] = true;
            break;
        case N_PROMISE:
            out[i] = is_final(crew_future_state(ctx.promises[nd->promise]));
            break;
        case N_ALL:
        case N_ALL_EX:
            out[i] = true;
            for (size_t j = 0; j < nd->n; j++)
                out[i] = out[i] && out[nd->in[j]];
            break;
        case N_THEN:
            /* Run or refused, it resolves once its input does. */
            out[i] = nd->in[0] >= 0 && out[nd->in[0]];
            break;
        case N_GMEMBER:
        case N_GDONE:
            /* Members finish on their own; a group's future exists once
             * it is closed, and resolves after its members. */
            out[i] = true;
            break;
        default:
            out[i] = false;
            for (size_t j = 0; j < nd->n; j++)
                out[i] = out[i] || out[nd->in[j]];
            break;
        }
    }
}

static bool
slot_resolves(unsigned s)
{
    bool resolving[MAX_NODES];

    if (ctx.slots[s].f == NULL)
        return false;
    if (is_final(crew_future_state(ctx.slots[s].f)))
        return true;
    compute_resolving(resolving);
    return ctx.slots[s].node >= 0 && resolving[ctx.slots[s].node];
}

/* ------------------------------------------------------------------ */
/* Slots                                                              */
/* ------------------------------------------------------------------ */

static void
slot_set(unsigned s, crew_future *f, int node)
{
    crew_future_release(ctx.slots[s].f);
    ctx.slots[s].f = f;
    ctx.slots[s].node = node;
}

static int
node_new(int kind)
{
    struct node *nd;

    if (ctx.nnodes >= MAX_NODES)
        return -1;
    nd = &ctx.nodes[ctx.nnodes];
    nd->kind = kind;
    nd->task = -1;
    nd->promise = -1;
    nd->lowest = -1;
    nd->group = -1;
    nd->weight = kind == N_TASK || kind == N_PROMISE || kind == N_THEN ||
                 kind == N_GMEMBER;
    return ctx.nnodes++;
}

static unsigned
node_weight(int node)
{
    return node >= 0 ? ctx.nodes[node].weight : MAX_WEIGHT + 1;
}

static struct instance *
pool_of(unsigned p)
{
    int i = ctx.pool_slot[p % N_POOLS];

    return i >= 0 ? &ctx.inst[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Pools                                                              */
/* ------------------------------------------------------------------ */

static void
on_start(crew_pool *pool, unsigned worker, void *user)
{
    struct instance *in = user;

    CHECK(pool != NULL && worker < 64);
    atomic_fetch_add(&in->starts, 1);
}

static void
on_stop(crew_pool *pool, unsigned worker, void *user)
{
    struct instance *in = user;

    CHECK(pool != NULL && worker < 64);
    atomic_fetch_add(&in->stops, 1);
}

/* The pool's workers have exited: every task it accepted is done. */
static void
check_pool_finished(struct instance *in)
{
    int n = task_count();

    if (in->hooks) {
        CHECK(atomic_load(&in->starts) == in->threads);
        CHECK(atomic_load(&in->stops) == in->threads);
    }
    for (int i = 0; i < n; i++) {
        struct task *t = &ctx.tasks[i];
        if (!atomic_load_explicit(&t->ready, memory_order_acquire) ||
            t->inst != in || !t->accepted)
            continue;
        CHECK(atomic_load(&t->arg_freed) == (t->has_arg_free ? 1 : 0));
        if (t->has_future)
            CHECK(atomic_load(&t->tracked) == 1);
        else
            CHECK(atomic_load(&t->ran) == 1 || atomic_load(&in->cancelled));
    }
}

static void
op_pool_create(void)
{
    static const char long_name[] = "a-very-long-thread-name-prefix";
    unsigned p = next() % N_POOLS;
    unsigned cfg = next();
    crew_pool_options options = {0};
    struct instance *in;
    crew_pool *pool = (crew_pool *)&options; /* must be overwritten */
    int r;

    if (ctx.pool_slot[p] >= 0 || ctx.ninst >= MAX_INSTANCES)
        return;
    in = &ctx.inst[ctx.ninst];
    options.threads = cfg % 4;
    options.max_queued = (cfg >> 2) % 4;
    options.name = (cfg & 32) ? long_name : "fz";
    if (cfg & 16) {
        options.on_thread_start = on_start;
        options.on_thread_stop = on_stop;
        options.user = in;
    }
    if ((cfg >> 6) == 3) {
        /* Below the system minimum. */
        options.stack_size = 1;
        CHECK(crew_pool_create(&pool, &options) == EINVAL);
        CHECK(pool == NULL);
        return;
    }
    r = crew_pool_create(&pool, &options);
    CHECK(r == 0 && pool != NULL);
    in->pool = pool;
    in->threads = crew_pool_threads(pool);
    CHECK(options.threads == 0 ? in->threads >= 1
                               : in->threads == options.threads);
    in->max_queued = options.max_queued;
    in->hooks = (cfg & 16) != 0;
    ctx.pool_slot[p] = ctx.ninst++;
}

static uint64_t accepted_tasks(const struct instance *in);

static void
op_pool_shutdown(void)
{
    struct instance *in = pool_of(next());
    unsigned how = next() % 3;

    if (in == NULL)
        return;
    if (how == 2) {
        CHECK(crew_pool_shutdown(in->pool, (crew_shutdown)7) == EINVAL);
        return;
    }
    /* A second call changes nothing about how the first shuts down. */
    if (!in->shut && how == CREW_CANCEL)
        atomic_store(&in->cancelled, true);
    in->shut = true;
    CHECK(crew_pool_shutdown(in->pool, (crew_shutdown)how) == 0);
    check_pool_finished(in);
    /* Every worker has exited: the counters are exact. Continuations and
     * loop chunks count too, so accepted tasks are a lower bound. */
    crew_pool_stats s;
    CHECK(crew_pool_stats_get(in->pool, &s) == 0);
    CHECK(s.busy == 0 && s.queued == 0);
    CHECK(s.submitted == s.succeeded + s.failed + s.cancelled);
    CHECK(s.submitted >= accepted_tasks(in));
}

static void
pool_destroy(unsigned p)
{
    struct instance *in = pool_of(p);

    if (in == NULL)
        return;
    in->shut = true;
    crew_pool_destroy(in->pool); /* removes the watchdog */
    in->pool = NULL;
    ctx.pool_slot[p] = -1;
    check_pool_finished(in);
    CHECK(atomic_load(&in->bad_stuck) == 0);
}

/* ------------------------------------------------------------------ */
/* Submitting                                                         */
/* ------------------------------------------------------------------ */

static void
op_submit(void)
{
    struct instance *in = pool_of(next());
    int kind = (int)(next() % K_COUNT);
    unsigned param = next(), aux = next(), dst = next() % 32, mode = next() % 4;
    bool forget = dst >= N_SLOTS, promise_kind;
    crew_future *f = NULL, **out = forget ? NULL : &f;
    crew_future *promise = NULL;
    unsigned flags = 0;
    struct task *t;
    struct box *b;
    int node = -1, r;

    if (in == NULL)
        return;
    promise_kind = kind == K_WAIT_PROMISE || kind == K_RESOLVE_PROMISE;
    if (promise_kind) {
        struct slot *s = &ctx.slots[aux % N_SLOTS];
        if (s->f != NULL && ctx.nodes[s->node].kind == N_PROMISE)
            promise = crew_future_retain(s->f);
        if (mode == 0)
            mode = 1; /* the promise's reference needs arg_free */
    }
    if (!forget) {
        node = node_new(N_TASK);
        if (node < 0) {
            crew_future_release(promise);
            return;
        }
    }
    t = task_new(in, in->pool, kind, param, aux, 0, mode != 0, !forget);
    if (t == NULL) {
        crew_future_release(promise);
        if (node >= 0)
            ctx.nnodes--;
        return;
    }
    if (mode == 2)
        flags = CREW_NONBLOCKING;
    else if (mode == 3)
        flags = (2u << (aux % 31)) | (param & 1);
    f = (crew_future *)in; /* must be overwritten */
    if (mode == 0) {
        b = &t->inline_box;
        r = crew_submit(in->pool, task_fn, b, out);
    } else {
        b = box_new(t, promise);
        r = crew_submit_ex(in->pool, task_fn, b, arg_free, flags, out);
    }
    if (r != 0) {
        if (!forget)
            CHECK(f == NULL);
        if (mode == 3)
            CHECK(r == EINVAL);
        else if (in->shut)
            CHECK(r == ESHUTDOWN);
        else
            CHECK(r == EAGAIN && flags == CREW_NONBLOCKING &&
                  in->max_queued != 0);
        if (b != &t->inline_box)
            box_discard(b);
        if (node >= 0)
            ctx.nnodes--;
        return;
    }
    CHECK(mode != 3 && !in->shut);
    t->accepted = true;
    if (forget)
        return;
    CHECK(f != NULL);
    t->future = f;
    CHECK(crew_future_on_complete(f, tracker, t) == 0);
    ctx.nodes[node].task = (int)t->index;
    slot_set(dst, f, node);
}

/* ------------------------------------------------------------------ */
/* Promises and futures                                               */
/* ------------------------------------------------------------------ */

static void
op_promise_create(void)
{
    unsigned dst = next() % N_SLOTS;
    crew_future *f = (crew_future *)&ctx; /* must be overwritten */
    int node;

    if (ctx.npromises >= MAX_PROMISES)
        return;
    node = node_new(N_PROMISE);
    if (node < 0)
        return;
    CHECK(crew_promise_create(&f) == 0 && f != NULL);
    CHECK(crew_future_state(f) == CREW_PENDING);
    CHECK(crew_future_result(f) == NULL && crew_future_error(f) == NULL);
    ctx.nodes[node].promise = ctx.npromises;
    ctx.promises[ctx.npromises++] = crew_future_retain(f);
    slot_set(dst, f, node);
}

static bool
slot_is_promise(const struct slot *s)
{
    return s->f != NULL && ctx.nodes[s->node].kind == N_PROMISE;
}

/*
 * Checks what crew_promise_resolve() or crew_promise_fail() returned on
 * a slot: EINVAL where the call may not settle it (not a promise, a bad
 * code); EALREADY if it had resolved before the call; otherwise 0, or
 * EALREADY when a task resolved it first.
 */
static void
check_settle_result(int r, bool invalid, bool was_final)
{
    if (invalid)
        CHECK(r == EINVAL);
    else if (was_final)
        CHECK(r == EALREADY);
    else
        CHECK(r == 0 || r == EALREADY);
}

static void
op_promise_resolve(void)
{
    struct slot *s = &ctx.slots[next() % N_SLOTS];
    bool bare = next() & 1;
    uint32_t *v = bare ? NULL : value_new();
    bool was_final;
    int r;

    if (s->f == NULL) {
        value_discard(v);
        return;
    }
    was_final = is_final(crew_future_state(s->f));
    r = crew_promise_resolve(s->f, v, bare ? NULL : value_free);
    check_settle_result(r, !slot_is_promise(s), was_final);
    if (r == 0) {
        CHECK(crew_future_state(s->f) == CREW_SUCCEEDED);
        CHECK(crew_future_result(s->f) == v);
        if (v != NULL)
            atomic_fetch_add(&ctx.values_made, 1);
    } else {
        /* Refused: the value stays the caller's. */
        value_discard(v);
    }
    check_outcome_shape(s->f);
}

/* The bytes a copied result holds: a pattern of its size. */
static unsigned char
copy_byte(size_t size, size_t i)
{
    return (unsigned char)(size * 31 + i * 7 + 1);
}

static void
op_resolve_copy(void)
{
    struct slot *s = &ctx.slots[next() % N_SLOTS];
    size_t size = next() % 41;
    unsigned char bytes[40];
    bool was_final;
    int r;

    if (s->f == NULL)
        return;
    for (size_t i = 0; i < size; i++)
        bytes[i] = copy_byte(size, i);
    was_final = is_final(crew_future_state(s->f));
    r = crew_promise_resolve_copy(s->f, size > 0 ? bytes : NULL, size);
    check_settle_result(r, !slot_is_promise(s), was_final);
    if (r == 0) {
        const unsigned char *got = crew_future_result(s->f);
        memset(bytes, 0, sizeof(bytes)); /* the copy is the future's */
        CHECK(crew_future_state(s->f) == CREW_SUCCEEDED);
        CHECK(crew_future_result_size(s->f) == size);
        CHECK((size == 0) == (got == NULL));
        for (size_t i = 0; i < size; i++)
            CHECK(got[i] == copy_byte(size, i));
    }
    check_outcome_shape(s->f);
}

static void
op_promise_fail(void)
{
    struct slot *s = &ctx.slots[next() % N_SLOTS];
    int code = (int8_t)next();
    bool was_final;
    int r;

    if (s->f == NULL)
        return;
    was_final = is_final(crew_future_state(s->f));
    r = crew_promise_fail(s->f, code, "promise failed with %d", code);
    check_settle_result(r, !slot_is_promise(s) || code == 0, was_final);
    if (r == 0) {
        char expected[64];
        const crew_error *e = crew_future_error(s->f);
        snprintf(expected, sizeof(expected), "promise failed with %d", code);
        CHECK(crew_future_state(s->f) == CREW_FAILED);
        CHECK(crew_error_code(e) == code);
        CHECK(strcmp(crew_error_message(e), expected) == 0);
    }
    check_outcome_shape(s->f);
}

/* A cancellation of `node` reaches every group whose future it holds
 * through joins, which pass a cancellation on to their inputs: say so
 * before it happens, as for a group's own future. */
static void
note_from(int node, bool *seen)
{
    const struct node *nd;

    if (node < 0 || seen[node])
        return; /* joins share inputs: each node once */
    seen[node] = true;
    nd = &ctx.nodes[node];
    if (nd->kind == N_GDONE) {
        atomic_store(&ctx.groups[nd->group].requested, true);
    } else if (nd->kind == N_ALL || nd->kind == N_ANY ||
               nd->kind == N_ALL_EX) {
        for (size_t i = 0; i < nd->n; i++)
            note_from(nd->in[i], seen);
    }
}

static void
note_cancel_reaches(int node)
{
    bool seen[MAX_NODES] = {false};

    note_from(node, seen);
}

static void
op_cancel(void)
{
    struct slot *s = &ctx.slots[next() % N_SLOTS];
    bool was_final;
    int r;

    if (s->f == NULL)
        return;
    /* Cancelling a group's future cancels the group; so does cancelling
     * a join over it. */
    note_cancel_reaches(s->node);
    was_final = is_final(crew_future_state(s->f));
    r = crew_future_cancel(s->f);
    CHECK(r == 0 || r == EALREADY);
    if (was_final)
        CHECK(r == EALREADY);
    if (r == EALREADY)
        CHECK(is_final(crew_future_state(s->f)));
    if (r == 0) {
        switch (ctx.nodes[s->node].kind) {
        case N_PROMISE:
            CHECK(crew_future_state(s->f) == CREW_CANCELLED);
            break;
        case N_TASK:
            /* A queued task is resolved before the call returns; a
             * running one decides itself. Either way, never PENDING. */
            CHECK(crew_future_state(s->f) != CREW_PENDING);
            break;
        default:
            break;
        }
    }
    check_outcome_shape(s->f);
}

static void
op_wait_for(void)
{
    unsigned s = next() % N_SLOTS;
    uint64_t timeout = wait_timeouts[next() % 4];
    crew_future *f = ctx.slots[s].f;
    uint64_t start;
    int r;

    if (f == NULL)
        return;
    start = now_ns();
    r = crew_future_wait_for(f, timeout);
    if (r == ETIMEDOUT && wait_timed_out(f, start, timeout))
        return;
    check_code(f, r);
    check_resolved(f, ctx.slots[s].node);
}

static void
op_wait(void)
{
    unsigned s = next() % N_SLOTS;
    crew_future *f = ctx.slots[s].f;
    int r;

    if (f == NULL)
        return;
    if (!slot_resolves(s)) {
        CHECK(crew_future_wait_for(f, 0) == ETIMEDOUT ||
              is_final(crew_future_state(f)));
        return;
    }
    r = crew_future_wait(f);
    check_code(f, r);
    check_resolved(f, ctx.slots[s].node);
}

static void
op_retain(void)
{
    unsigned src = next() % N_SLOTS, dst = next() % N_SLOTS;
    crew_future *f = ctx.slots[src].f;

    if (f == NULL || src == dst)
        return;
    CHECK(crew_future_retain(f) == f);
    slot_set(dst, f, ctx.slots[src].node);
}

static void
op_release(void)
{
    slot_set(next() % N_SLOTS, NULL, -1);
}

static void
op_on_complete(void)
{
    unsigned s = next() % N_SLOTS;
    int mode = (int)(next() % 3);
    struct callback *c;

    if (ctx.slots[s].f == NULL || ctx.ncallbacks >= MAX_CALLBACKS)
        return;
    c = &ctx.callbacks[ctx.ncallbacks++];
    c->future = ctx.slots[s].f;
    c->mode = mode;
    CHECK(crew_future_on_complete(c->future, user_callback, c) == 0);
    if (mode == 1) {
        /* The slot's reference is the callback's now. */
        ctx.slots[s].f = NULL;
        ctx.slots[s].node = -1;
    }
}

/* ------------------------------------------------------------------ */
/* Joins                                                              */
/* ------------------------------------------------------------------ */

/*
 * Picks @p n inputs, one program byte each, from the slots: their futures
 * (NULL for an empty slot) into @p fs and their nodes into @p nodes.
 * Returns whether any is NULL.
 */
static bool
pick_inputs(crew_future **fs, int *nodes, size_t n)
{
    bool has_null = false;

    for (size_t i = 0; i < n; i++) {
        unsigned s = next() % N_SLOTS;
        fs[i] = ctx.slots[s].f;
        nodes[i] = ctx.slots[s].node;
        has_null |= fs[i] == NULL;
    }
    return has_null;
}

static void
op_join(int kind)
{
    unsigned dst = next() % N_SLOTS;
    crew_future *fs[MAX_INPUTS], *out;
    int nodes[MAX_INPUTS];
    unsigned variant, weight = 0;
    bool has_null;
    size_t n;
    int node, r;
    int (*join)(crew_future *const *, size_t, crew_future **) =
        kind == N_ALL ? crew_when_all : crew_when_any;
    unsigned flags = 0;

    n = next() % (MAX_INPUTS + 1);
    variant = next() % 4;
    if (kind == N_ALL_EX) {
        unsigned f = next() % 5;
        /* An unknown bit: EINVAL, whatever else is wrong. */
        flags = f == 4 ? CREW_CANCEL_REST << 1 : f;
    }
    has_null = pick_inputs(fs, nodes, n);
    for (size_t i = 0; i < n; i++)
        weight += node_weight(nodes[i]);
    out = (crew_future *)&ctx; /* must be overwritten */
    if (kind == N_ALL_EX) {
        if (flags > (CREW_FAIL_FAST | CREW_CANCEL_REST) ||
            (variant == 1 && n > 0) || variant == 2 || has_null) {
            CHECK(crew_when_all_ex(variant == 1 && n > 0 ? NULL : fs, n, flags,
                                   variant == 2 ? NULL : &out) == EINVAL);
            CHECK(variant == 2 || out == NULL);
            return;
        }
    }
    if (variant == 1 && n > 0) {
        CHECK(join(NULL, n, &out) == EINVAL && out == NULL);
        return;
    }
    if (variant == 2) {
        CHECK(join(fs, n, NULL) == EINVAL);
        return;
    }
    if (has_null || (kind == N_ANY && n == 0)) {
        CHECK(join(fs, n, &out) == EINVAL && out == NULL);
        return;
    }
    /* Aggregates of aggregates grow as a product: keep them small. */
    if ((kind == N_ALL || kind == N_ALL_EX) && weight > MAX_WEIGHT)
        return;
    node = node_new(kind);
    if (node < 0)
        return;
    ctx.nodes[node].n = n;
    ctx.nodes[node].weight = kind == N_ANY ? 0 : weight;
    ctx.nodes[node].flags = flags;
    for (size_t i = 0; i < n; i++) {
        ctx.nodes[node].in[i] = nodes[i];
        ctx.nodes[node].inputs[i] = fs[i];
    }
    ctx.nodes[node].lowest = lowest_resolved(fs, n);
    /* A failed input will cancel the rest, the groups' futures too. */
    if ((flags & CREW_CANCEL_REST) != 0)
        note_cancel_reaches(node);
    r = kind == N_ALL_EX ? crew_when_all_ex(fs, n, flags, &out)
                         : join(fs, n, &out);
    CHECK(r == 0 && out != NULL);
    if (n == 0)
        CHECK(crew_future_state(out) == CREW_SUCCEEDED);
    CHECK(crew_future_on_complete(out, join_checker, &ctx.nodes[node]) == 0);
    slot_set(dst, out, node);
}

static int
then_fn(crew_task *task, crew_future *input, void *arg)
{
    struct then *c = arg;

    /* Queued once its input resolved, which it borrows. */
    CHECK(task != NULL && input == c->input);
    CHECK(is_final(crew_future_state(input)));
    check_outcome_shape(input);
    CHECK(atomic_fetch_add(&c->ran, 1) == 0);
    CHECK(atomic_load(&c->freed) == 0);
    return c->fail ? crew_task_fail(task, EPIPE, "then") : 0;
}

static void
then_free(void *arg)
{
    struct then *c = arg;

    CHECK(atomic_fetch_add(&c->freed, 1) == 0);
}

/* Registered on every continuation kept in a slot. */
static void
then_tracker(crew_future *f, void *user)
{
    struct then *c = user;

    CHECK(atomic_fetch_add(&c->tracked, 1) == 0);
    check_then(c, crew_future_state(f));
}

static void
op_then(void)
{
    struct instance *in = pool_of(next());
    struct slot *src = &ctx.slots[next() % N_SLOTS];
    unsigned dst = next() % 32, mode = next();
    bool forget = dst >= N_SLOTS;
    crew_future *f = (crew_future *)&ctx, **out = forget ? NULL : &f;
    struct then *c;
    int node = -1, r;

    if (in == NULL || ctx.nthens >= MAX_THENS)
        return;
    c = &ctx.thens[ctx.nthens];
    *c = (struct then){
        .input = src->f, .fail = (mode & 1) != 0, .has_free = (mode & 2) != 0};
    if (!forget && src->f != NULL) {
        node = node_new(N_THEN);
        if (node < 0)
            return;
    }
    r = crew_then(in->pool, src->f, then_fn, c, c->has_free ? then_free : NULL,
                  out);
    if (src->f == NULL) {
        CHECK(r == EINVAL && (forget || f == NULL));
        return;
    }
    if (in->shut) {
        CHECK(r == ESHUTDOWN && (forget || f == NULL));
        if (node >= 0)
            ctx.nnodes--;
        return;
    }
    CHECK(r == 0);
    c->accepted = true;
    ctx.nthens++;
    if (forget)
        return;
    CHECK(f != NULL);
    ctx.nodes[node].then = (int)(c - ctx.thens);
    ctx.nodes[node].n = 1;
    ctx.nodes[node].in[0] = src->node;
    ctx.nodes[node].inputs[0] = src->f;
    CHECK(crew_future_on_complete(f, then_tracker, c) == 0);
    slot_set(dst, f, node);
}

static void
op_parallel_for(void)
{
    struct instance *in = pool_of(next());
    size_t n = next() % PF_ITEMS, grain = next() % 9;
    unsigned f = next();
    crew_error *error = (crew_error *)&ctx; /* must be overwritten */

    if (in == NULL)
        return;
    if (f >= 250) {
        CHECK(crew_parallel_for(in->pool, 10, 9, grain, pf_chunk, NULL,
                                &error) == EINVAL &&
              error == NULL);
        CHECK(crew_parallel_for(in->pool, 0, 10, grain, NULL, NULL, NULL) ==
              EINVAL);
        return;
    }
    pf_run(in->pool, n, grain, PF_BASE + f % 64);
}

/* A batch: how often each task ran, and its arg_free. */
#define EACH_MAX 40

struct each {
    atomic_uint runs[EACH_MAX];
    atomic_uint freed;
    size_t fail_at; /* EACH_MAX: none */
};

static int
each_fn(crew_task *task, size_t index, void *arg)
{
    struct each *b = arg;

    CHECK(task != NULL && index < EACH_MAX);
    CHECK(atomic_fetch_add(&b->runs[index], 1) == 0);
    CHECK(atomic_load(&b->freed) == 0);
    if (index == b->fail_at)
        return crew_task_fail(task, EDOM, "each %zu", index);
    return crew_task_return_copy(task, &index, sizeof(index));
}

static void
each_free(void *arg)
{
    struct each *b = arg;

    CHECK(atomic_fetch_add(&b->freed, 1) == 0);
}

static void
op_submit_each(void)
{
    struct instance *in = pool_of(next());
    size_t n = next() % EACH_MAX;
    unsigned v = next();
    struct each *b = calloc(1, sizeof(*b));
    crew_future *fs[EACH_MAX], **out = (v & 32) ? NULL : fs;
    unsigned flags = (v & 16) ? CREW_NONBLOCKING : 0;
    int r;

    if (b == NULL)
        return;
    b->fail_at = (v & 8) ? v % 8 : EACH_MAX;
    for (size_t i = 0; i < EACH_MAX; i++)
        fs[i] = (crew_future *)b; /* must be overwritten */
    if (in == NULL || v >= 250) {
        CHECK(crew_submit_each(in != NULL ? in->pool : NULL, n, each_fn, b,
                               each_free, in != NULL ? 0x80u : 0, fs) ==
              EINVAL);
        for (size_t i = 0; i < n; i++)
            CHECK(fs[i] == NULL);
        CHECK(atomic_load(&b->freed) == 0);
        free(b);
        return;
    }
    r = crew_submit_each(in->pool, n, each_fn, b, each_free, flags, out);
    if (r != 0) {
        /* All or nothing: no slot, no task, no arg_free. */
        CHECK(r == ESHUTDOWN || r == ENOMEM ||
              (r == EAGAIN && flags != 0) ||
              (r == EINVAL && in->max_queued != 0 && n > in->max_queued));
        for (size_t i = 0; out != NULL && i < n; i++)
            CHECK(fs[i] == NULL);
        for (size_t i = 0; i < EACH_MAX; i++)
            CHECK(atomic_load(&b->runs[i]) == 0);
        CHECK(atomic_load(&b->freed) == 0);
        free(b);
        return;
    }
    if (n == 0)
        CHECK(atomic_load(&b->freed) == 1);
    if (out != NULL) {
        crew_error *e = NULL;

        r = crew_wait_all(fs, n, &e);
        CHECK(r == 0 || r == CREW_EAGGREGATE || r == ECANCELED);
        for (size_t i = 0; i < n; i++) {
            crew_state st = crew_future_state(fs[i]);

            CHECK(st == CREW_CANCELLED ||
                  atomic_load(&b->runs[i]) == 1);
            if (st == CREW_SUCCEEDED)
                CHECK(crew_future_result_size(fs[i]) == sizeof(size_t) &&
                      *(const size_t *)crew_future_result(fs[i]) == i);
            CHECK(st != CREW_FAILED || i == b->fail_at);
        }
        crew_error_release(e);
        crew_future_release_all(fs, n);
        for (size_t i = 0; i < n; i++)
            CHECK(fs[i] == NULL);
    }
    /* arg_free follows the last task's resolution, on whichever thread
     * took it out of its queue: wait for it, boundedly (tasks finish on
     * their own, and a shut-down pool has cancelled the rest). */
    for (int i = 0; i < 200000 && atomic_load(&b->freed) == 0; i++)
        sched_yield();
    CHECK(atomic_load(&b->freed) == 1);
    free(b);
}

/* A reduction over [PF_BASE, PF_BASE + n): the sum of the items, the
 * item fail_at failing. */
static int
reduce_chunk(crew_task *task, size_t begin, size_t end, void *partial,
             void *arg)
{
    size_t fail_at = *(const size_t *)arg;

    CHECK(task != NULL && begin < end && begin >= PF_BASE);
    for (size_t i = begin; i < end; i++)
        *(uint64_t *)partial += i;
    if (fail_at >= begin && fail_at < end)
        return crew_task_fail(task, EDOM, "reduce %zu", begin);
    return 0;
}

static void
reduce_add(void *into, const void *from, void *arg)
{
    (void)arg;
    *(uint64_t *)into += *(const uint64_t *)from;
}

static void
op_reduce(void)
{
    struct instance *in = pool_of(next());
    size_t n = next() % PF_ITEMS, grain = next() % 9;
    unsigned f = next();
    size_t fail_at = PF_BASE + f % 64;
    bool fails = fail_at < PF_BASE + n;
    uint64_t sum = 0, expected = 0;
    crew_error *error = (crew_error *)&ctx; /* must be overwritten */
    int r;

    if (in == NULL)
        return;
    if (f >= 250) {
        CHECK(crew_parallel_reduce(in->pool, 10, 9, grain, reduce_chunk,
                                   reduce_add, &fail_at, &sum, sizeof(sum),
                                   &error) == EINVAL &&
              error == NULL);
        CHECK(crew_parallel_reduce(in->pool, 0, 10, grain, reduce_chunk,
                                   reduce_add, &fail_at, &sum, 0,
                                   NULL) == EINVAL);
        return;
    }
    for (size_t i = PF_BASE; i < PF_BASE + n; i++)
        expected += i;
    r = crew_parallel_reduce(in->pool, PF_BASE, PF_BASE + n, grain,
                             reduce_chunk, reduce_add, &fail_at, &sum,
                             sizeof(sum), &error);
    if (r == ENOMEM) {
        CHECK(sum == 0);
        return;
    }
    if (!fails) {
        CHECK(r == 0 && error == NULL && sum == expected);
        return;
    }
    CHECK(r == CREW_EAGGREGATE && error != NULL && sum == 0);
    CHECK(crew_error_count(error) == 1);
    size_t pos = SIZE_MAX;
    CHECK(crew_error_code(crew_error_inner(error, 0, &pos)) == EDOM);
    CHECK(pos <= fail_at);
    crew_error_release(error);
}

/* A tree of spawned calls: each node of depth > 0 spawns width - 1
 * children, computes the last itself, then syncs them newest first; a
 * leaf counts one, and the leaf numbered fail_at fails. */
struct tree {
    unsigned depth, width;
    size_t first;   /* the number of its first leaf */
    size_t fail_at; /* SIZE_MAX: none */
    size_t leaves;  /* out: leaves counted */
};

static size_t
tree_leaves(unsigned depth, unsigned width)
{
    size_t n = 1;

    while (depth-- > 0)
        n *= width;
    return n;
}

static int
tree_fn(crew_task *task, void *arg)
{
    struct tree *t = arg;
    struct tree kids[4];
    crew_frame frames[4];
    size_t span;
    int rc = 0;

    if (t->depth == 0) {
        t->leaves = 1;
        if (t->first == t->fail_at)
            return crew_task_fail(task, EDOM, "leaf %zu", t->first);
        return 0;
    }
    span = tree_leaves(t->depth - 1, t->width);
    for (unsigned i = 0; i < t->width; i++)
        kids[i] = (struct tree){.depth = t->depth - 1,
                                .width = t->width,
                                .first = t->first + i * span,
                                .fail_at = t->fail_at};
    for (unsigned i = 0; i + 1 < t->width; i++)
        CHECK(crew_spawn(task, &frames[i], tree_fn, &kids[i]) == 0);
    int last = tree_fn(task, &kids[t->width - 1]);
    for (unsigned i = t->width - 1; i-- > 0;) {
        int r = crew_sync(task, &frames[i]);
        if (r != 0)
            rc = r;
    }
    if (last != 0)
        rc = crew_task_fail(task, last, "leaf %zu", t->fail_at);
    t->leaves = 0;
    for (unsigned i = 0; i < t->width; i++)
        t->leaves += kids[i].leaves;
    return rc;
}

/* Bad spawns and syncs, inside a running task. */
static int
bad_spawns_fn(crew_task *task, void *arg)
{
    crew_frame a, b;
    struct tree leaf = {.fail_at = SIZE_MAX};

    (void)arg;
    CHECK(crew_spawn(NULL, &a, tree_fn, &leaf) == EINVAL);
    CHECK(crew_spawn(task, NULL, tree_fn, &leaf) == EINVAL);
    CHECK(crew_spawn(task, &a, NULL, &leaf) == EINVAL);
    CHECK(crew_sync(task, &a) == EINVAL); /* nothing spawned */
    CHECK(crew_spawn(task, &a, tree_fn, &leaf) == 0);
    CHECK(crew_spawn(task, &b, tree_fn, &leaf) == 0);
    CHECK(crew_sync(task, &a) == EINVAL); /* not the latest */
    CHECK(crew_sync(NULL, &b) == EINVAL);
    CHECK(crew_sync(task, &b) == 0);
    CHECK(crew_sync(task, &a) == 0);
    CHECK(leaf.leaves == 1);
    return 0;
}

static void
op_spawn(void)
{
    struct instance *in = pool_of(next());
    unsigned depth = next() % 6, width = 1 + next() % 4, f = next();
    struct tree t = {.depth = depth, .width = width};
    size_t leaves = tree_leaves(depth, width);
    crew_future *fut = NULL;
    int r;

    if (in == NULL)
        return;
    t.fail_at = f % 64 < leaves ? f % 64 : SIZE_MAX;
    r = crew_submit(in->pool, f >= 250 ? bad_spawns_fn : tree_fn, &t, &fut);
    if (r != 0) {
        CHECK(r == ESHUTDOWN || r == ENOMEM || r == EAGAIN);
        return;
    }
    r = crew_future_wait(fut);
    if (f >= 250) {
        CHECK(r == 0 || r == ECANCELED);
    } else if (r == 0) {
        CHECK(t.fail_at == SIZE_MAX && t.leaves == leaves);
    } else if (r != ECANCELED) {
        char message[32];

        /* The failing leaf's code and message, passed up by each sync. */
        snprintf(message, sizeof(message), "leaf %zu", t.fail_at);
        CHECK(r == EDOM && t.fail_at != SIZE_MAX);
        CHECK(strcmp(crew_error_message(crew_future_error(fut)), message) ==
              0);
    }
    crew_future_release(fut);
}

/* How many tasks of this pool its submitters saw accepted. */
static uint64_t
accepted_tasks(const struct instance *in)
{
    uint64_t k = 0;
    int n = task_count();

    for (int i = 0; i < n; i++) {
        const struct task *t = &ctx.tasks[i];
        if (atomic_load_explicit(&t->ready, memory_order_acquire) &&
            t->inst == in && t->accepted)
            k++;
    }
    return k;
}

static void
op_stats(void)
{
    struct instance *in = pool_of(next());
    crew_pool_stats s;

    if (in == NULL) {
        CHECK(crew_pool_stats_get(NULL, &s) == EINVAL);
        return;
    }
    CHECK(crew_pool_stats_get(in->pool, &s) == 0);
    CHECK(s.threads == in->threads && s.busy <= s.threads);
}

/* Keep an error in an error slot, or drop it. */
static void
error_keep(unsigned e, crew_error *error)
{
    crew_error_release(ctx.errors[e % N_ERRORS]);
    ctx.errors[e % N_ERRORS] = error;
}

static void
op_wait_all(void)
{
    crew_future *fs[MAX_INPUTS];
    int nodes[MAX_INPUTS];
    bool has_null, resolving[MAX_NODES], all_resolve = true;
    unsigned variant;
    crew_error *e, **out;
    size_t n, failed = 0;
    bool cancelled = false;
    int r;

    n = next() % (MAX_INPUTS + 1);
    variant = next();
    has_null = pick_inputs(fs, nodes, n);
    e = (crew_error *)&ctx; /* must be overwritten */
    out = (variant & 1) ? NULL : &e;
    if ((variant & 2) && n > 0) {
        CHECK(crew_wait_all(NULL, n, out) == EINVAL);
        CHECK(out == NULL || e == NULL);
        return;
    }
    if (has_null) {
        CHECK(crew_wait_all(fs, n, out) == EINVAL);
        CHECK(out == NULL || e == NULL);
        return;
    }
    /* Wait without a bound only for what provably resolves. */
    compute_resolving(resolving);
    for (size_t i = 0; i < n; i++) {
        all_resolve = all_resolve && (is_final(crew_future_state(fs[i])) ||
                                      resolving[nodes[i]]);
    }
    if (!all_resolve)
        return;
    r = crew_wait_all(fs, n, out);
    for (size_t i = 0; i < n; i++) {
        crew_state s = crew_future_state(fs[i]);
        CHECK(is_final(s));
        failed += s == CREW_FAILED;
        cancelled |= s == CREW_CANCELLED;
        check_resolved(fs[i], nodes[i]);
    }
    if (failed > 0) {
        CHECK(r == CREW_EAGGREGATE);
        if (out != NULL)
            check_all(CREW_FAILED, e, NULL, fs, n);
    } else if (cancelled) {
        CHECK(r == ECANCELED);
        CHECK(out == NULL || e == NULL || crew_error_code(e) == ECANCELED);
    } else {
        CHECK(r == 0);
        CHECK(out == NULL || e == NULL);
    }
    if (out != NULL)
        error_keep(variant >> 2, e);
}

static void
op_wait_all_for(void)
{
    static const uint64_t limits[] = {0, 1000, 100000};
    crew_future *fs[MAX_INPUTS];
    int nodes[MAX_INPUTS];
    size_t n = next() % (MAX_INPUTS + 1);
    uint64_t limit = limits[next() % 3];
    bool has_null = pick_inputs(fs, nodes, n);
    crew_error *e = (crew_error *)&ctx; /* must be overwritten */
    int r;

    r = crew_wait_all_for(fs, n, limit, &e);
    if (has_null) {
        CHECK(r == EINVAL && e == NULL);
        return;
    }
    if (r == ETIMEDOUT) {
        /* Nothing cancelled, nothing kept. */
        CHECK(e == NULL);
        return;
    }
    CHECK(r == 0 || r == CREW_EAGGREGATE || r == ECANCELED);
    for (size_t i = 0; i < n; i++)
        CHECK(is_final(crew_future_state(fs[i])));
    CHECK(r != 0 || e == NULL);
    crew_error_release(e);
}

static void
op_wait_any(void)
{
    crew_future *fs[MAX_INPUTS];
    int nodes[MAX_INPUTS];
    size_t n = next() % (MAX_INPUTS + 1);
    uint64_t timeout = wait_timeouts[next() % 4];
    unsigned variant = next();
    bool has_null = pick_inputs(fs, nodes, n);
    size_t index = SIZE_MAX;
    uint64_t start;
    long lowest;
    int r;

    if (variant & 1) {
        CHECK(crew_wait_any(fs, n, timeout, NULL) == EINVAL);
        return;
    }
    if ((variant & 2) && n > 0) {
        CHECK(crew_wait_any(NULL, n, timeout, &index) == EINVAL);
        CHECK(index == SIZE_MAX);
        return;
    }
    if (has_null || n == 0) {
        CHECK(crew_wait_any(fs, n, timeout, &index) == EINVAL);
        return;
    }
    lowest = lowest_resolved(fs, n);
    start = now_ns();
    r = crew_wait_any(fs, n, timeout, &index);
    if (r == ETIMEDOUT) {
        CHECK(now_ns() - start >= timeout);
        CHECK(index == SIZE_MAX);
        CHECK(lowest < 0);
        return;
    }
    CHECK(r == 0);
    CHECK(index < n);
    CHECK(is_final(crew_future_state(fs[index])));
    CHECK(lowest < 0 || (long)index <= lowest);
    check_resolved(fs[index], nodes[index]);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

struct leaf {
    const crew_error *error;
    size_t input;
};

/* The leaves of `e`, depth-first; returns how many (only the first `cap`
 * are stored). */
static size_t
collect_leaves(const crew_error *e, size_t input, struct leaf *out, size_t n,
               size_t cap)
{
    size_t count = crew_error_count(e);

    if (count == 0) {
        if (n < cap) {
            out[n].error = e;
            out[n].input = input;
        }
        return n + 1;
    }
    for (size_t i = 0; i < count; i++) {
        size_t pos = SIZE_MAX;
        const crew_error *inner = crew_error_inner(e, i, &pos);
        CHECK(inner != NULL && pos != SIZE_MAX);
        n = collect_leaves(inner, pos, out, n, cap);
    }
    return n;
}

static void
check_flatten(const crew_error *e)
{
    static struct leaf leaves[MAX_LEAVES];
    crew_error *flat = crew_error_flatten(e);
    size_t n = collect_leaves(e, 0, leaves, 0, MAX_LEAVES);

    CHECK(flat != NULL);
    CHECK(crew_error_code(flat) == CREW_EAGGREGATE);
    CHECK(crew_error_count(flat) == n);
    for (size_t i = 0; i < n && i < MAX_LEAVES; i++) {
        size_t pos = SIZE_MAX;
        const crew_error *leaf = crew_error_inner(flat, i, &pos);
        CHECK(leaf == leaves[i].error);
        CHECK(pos == leaves[i].input);
        CHECK(crew_error_count(leaf) == 0);
    }
    crew_error_release(flat);
}

static void
check_format(const crew_error *e, size_t small_size)
{
    char small[24];
    char *full;
    int length = crew_error_format(e, NULL, 0);
    size_t len;

    CHECK(length > 0);
    len = (size_t)length;
    full = malloc(len + 1);
    if (full == NULL)
        abort();
    CHECK(crew_error_format(e, full, len + 1) == length);
    CHECK(strlen(full) == len);
    memset(small, 'X', sizeof(small));
    CHECK(crew_error_format(e, small, small_size) == length);
    if (small_size > 0) {
        size_t kept = len < small_size - 1 ? len : small_size - 1;
        CHECK(small[kept] == '\0');
        CHECK(memcmp(small, full, kept) == 0);
    }
    for (size_t i = small_size; i < sizeof(small); i++)
        CHECK(small[i] == 'X');
    free(full);
}

static void
op_error_take(void)
{
    unsigned dst = next() % N_ERRORS, src = next(), how = next() % 3;
    const crew_error *from;

    switch (how) {
    case 0: {
        crew_future *f = ctx.slots[src % N_SLOTS].f;
        from = f != NULL ? crew_future_error(f) : NULL;
        if (from != NULL)
            error_keep(dst, crew_error_retain(from));
        break;
    }
    case 1:
        from = ctx.errors[src % N_ERRORS];
        if (from != NULL)
            error_keep(dst, crew_error_flatten(from));
        break;
    default: {
        size_t pos = SIZE_MAX;
        from = ctx.errors[src % N_ERRORS];
        if (from == NULL)
            break;
        from = crew_error_inner(from, src >> 4, &pos);
        CHECK((from == NULL) == (pos == SIZE_MAX));
        if (from != NULL)
            error_keep(dst, crew_error_retain(from));
        break;
    }
    }
}

/* crew_error_print() writes what crew_error_format() says, all of it. */
static void
check_print(const crew_error *e)
{
    static FILE *sink; /* a file of its own, rewritten each time */
    long written;

    if (sink == NULL)
        sink = tmpfile();
    if (sink == NULL)
        return;
    rewind(sink);
    CHECK(crew_error_print(e, sink) == 0);
    CHECK(fflush(sink) == 0);
    written = ftell(sink);
    CHECK(written == crew_error_format(e, NULL, 0));
}

static void
op_error_inspect(void)
{
    crew_error *e = ctx.errors[next() % N_ERRORS];
    size_t small_size = next() % 16;
    size_t count, pos;

    if (e == NULL)
        return;
    CHECK(crew_error_code(e) != 0);
    CHECK(crew_error_message(e) != NULL);
    CHECK(crew_strerror(crew_error_code(e)) != NULL);
    count = crew_error_count(e);
    if (count > 0)
        CHECK(crew_error_code(e) == CREW_EAGGREGATE);
    for (size_t i = 0; i < count; i++) {
        pos = SIZE_MAX;
        CHECK(crew_error_inner(e, i, &pos) != NULL && pos != SIZE_MAX);
        CHECK(crew_error_inner(e, i, NULL) != NULL);
    }
    pos = 777;
    CHECK(crew_error_inner(e, count, &pos) == NULL && pos == 777);
    CHECK(crew_error_retain(e) == e);
    crew_error_release(e);
    check_format(e, small_size);
    check_print(e);
    check_flatten(e);
}

static void
op_error_release(void)
{
    error_keep(next() % N_ERRORS, NULL);
}

/* ------------------------------------------------------------------ */
/* Groups                                                             */
/* ------------------------------------------------------------------ */

static const uint64_t group_timeouts[4] = {0, 2000, 100000, 1000000};

/* Add a member of `kind` to `gr` (the group `g`, as its submitter sees
 * it), recorded in gr->m[*slot]; returns crew_group_submit's result, or
 * -1 when the group's records are used up (nothing submitted). Checks
 * what a refusal leaves. */
static int
group_add(struct grp *gr, crew_group *g, int kind, unsigned param,
          bool has_free, unsigned flags, int *slot_out)
{
    int slot = atomic_fetch_add(&gr->used, 1);
    struct gmember *m;
    crew_future *f = (crew_future *)gr; /* must be overwritten */
    size_t index = 4242;
    int r;

    *slot_out = slot;
    if (slot >= GROUP_MEMBERS)
        return -1;
    m = &gr->m[slot];
    m->grp = gr;
    m->kind = kind;
    m->param = param;
    m->has_free = has_free;
    r = crew_group_submit(g, gmember_fn, m, has_free ? gmember_free : NULL,
                          flags, &index, &f);
    if (r != 0) {
        CHECK(f == NULL && index == 4242);
        return r;
    }
    CHECK(f != NULL && index < GROUP_MEMBERS);
    CHECK((atomic_fetch_or(&gr->indices, 1u << index) & (1u << index)) == 0);
    m->future = f;
    m->index = index;
    /* Release: the fields above, to whoever sees it accepted. */
    atomic_store_explicit(&m->accepted, true, memory_order_release);
    return 0;
}

/* Whether `gr`'s group may have been cancelled without a request, by
 * its deadline or its policy. */
static bool
group_may_cancel_itself(const struct grp *gr)
{
    return gr->o.timeout_ns != 0 || gr->o.policy != CREW_GROUP_ALL;
}

static int
gmember_fn(crew_task *task, void *arg)
{
    struct gmember *m = arg;
    struct grp *gr;
    int ret = 0;

    CHECK(task != NULL && m != NULL && m->grp != NULL);
    gr = m->grp;
    CHECK(atomic_fetch_add(&m->ran, 1) == 0);
    CHECK(atomic_load(&m->freed) == 0);
    CHECK(crew_task_group(task) == gr->handle);
    CHECK(crew_task_pool(task) == gr->pool);
    switch (m->kind) {
    case G_SUCCEED:
        crew_task_return(task, m, NULL);
        break;
    case G_FAIL:
        ret = crew_task_fail(task, 1 + (int)(m->param % 40), "member %u",
                             m->param);
        break;
    case G_SPIN:
        for (unsigned i = 0; i < 1 + m->param % 8; i++) {
            if (crew_task_cancelled(task)) {
                ret = (m->param & 8) ? ECANCELED : 0;
                break;
            }
            pause_ns(20000);
        }
        break;
    default: {
        /* Members may add members, closed or not; never wait on their
         * own group. */
        crew_group *g = crew_task_group(task);
        crew_error *e = (crew_error *)m; /* must be overwritten */

        CHECK(crew_group_wait(g, &e) == EDEADLK && e == NULL);
        for (unsigned i = 0; i < 1 + m->param % 2; i++) {
            int slot;
            int r =
                group_add(gr, g, (int)((m->param >> 2) % 3), m->param * 29u + i,
                          (m->param & 32) != 0, 0, &slot);
            if (r == -1)
                break;
            /* A worker of its own pool is refused only by a CREW_CANCEL
             * shutdown. */
            CHECK(r == 0 ||
                  (r == ECANCELED && (atomic_load(&gr->requested) ||
                                      group_may_cancel_itself(gr))) ||
                  (r == ESHUTDOWN && atomic_load(&gr->inst->cancelled)));
        }
        break;
    }
    }
    m->ret = ret;
    m->saw_cancel = crew_task_cancelled(task);
    atomic_store(&m->returned, 1);
    return ret;
}

static void
gmember_free(void *arg)
{
    struct gmember *m = arg;

    CHECK(m != NULL && m->has_free);
    CHECK(atomic_fetch_add(&m->freed, 1) == 0);
    /* After the function returned, or instead of running it. */
    CHECK(atomic_load(&m->ran) == atomic_load(&m->returned));
}

/* A member's resolved future agrees with what its function did. */
static void
check_gmember(const struct gmember *m, const crew_future *f)
{
    const crew_error *e = crew_future_error(f); /* acquire */
    crew_state state = crew_future_state(f);
    int ran = atomic_load(&m->ran);

    CHECK(is_final(state));
    check_outcome_shape(f);
    CHECK(atomic_load(&m->freed) == (m->has_free ? 1 : 0));
    CHECK(ran <= 1 && atomic_load(&m->returned) == ran);
    switch (state) {
    case CREW_SUCCEEDED:
        CHECK(ran == 1 && m->ret == 0);
        CHECK(crew_future_result(f) == (m->kind == G_SUCCEED ? m : NULL));
        break;
    case CREW_FAILED:
        CHECK(ran == 1 && m->ret != 0 && crew_error_code(e) == m->ret);
        break;
    default:
        /* Never run, or it returned ECANCELED once asked. */
        CHECK(ran == 0 || m->ret == ECANCELED);
        break;
    }
}

/* The accepted member of `gr` at `index`, or NULL. */
static const struct gmember *
gmember_at(const struct grp *gr, size_t index)
{
    int n = atomic_load(&gr->used);

    for (int i = 0; i < n && i < GROUP_MEMBERS; i++) {
        const struct gmember *m = &gr->m[i];
        if (atomic_load_explicit(&m->accepted, memory_order_acquire) &&
            m->index == index)
            return m;
    }
    return NULL;
}

/* The group's future resolved: its outcome is the one API.md's order of
 * precedence gives for what its members did. */
static void
check_group(const struct grp *gr, const crew_future *done)
{
    const crew_error *e = crew_future_error(done); /* acquire */
    crew_state state = crew_future_state(done);
    int n = atomic_load(&gr->used);
    size_t added = 0, succeeded = 0, failed = 0;
    uint32_t indices = 0;
    bool enough;

    CHECK(is_final(state));
    check_outcome_shape(done);
    for (int i = 0; i < n && i < GROUP_MEMBERS; i++) {
        const struct gmember *m = &gr->m[i];
        crew_state s;

        if (!atomic_load_explicit(&m->accepted, memory_order_acquire))
            continue;
        /* Every member resolved before its group. */
        s = crew_future_state(m->future);
        check_gmember(m, m->future);
        CHECK((indices & (1u << m->index)) == 0);
        indices |= 1u << m->index;
        added++;
        succeeded += s == CREW_SUCCEEDED;
        failed += s == CREW_FAILED;
    }
    /* The indices handed out are 0..added-1. */
    CHECK(indices == (uint32_t)((1ull << added) - 1));
    switch (gr->o.policy) {
    case CREW_GROUP_FIRST_SUCCESS:
        enough = succeeded >= 1;
        break;
    case CREW_GROUP_QUORUM:
        enough = succeeded >= gr->o.quorum;
        break;
    default:
        enough = failed == 0;
        break;
    }
    switch (state) {
    case CREW_SUCCEEDED:
        CHECK(enough);
        if (gr->o.policy == CREW_GROUP_FIRST_SUCCESS) {
            const crew_future *w = crew_future_result(done);
            const struct gmember *m;

            CHECK(w != NULL && crew_future_state(w) == CREW_SUCCEEDED);
            m = crew_future_result(w);
            CHECK(m == NULL ||
                  (m >= gr->m && m < gr->m + GROUP_MEMBERS && m->future == w));
        } else {
            CHECK(crew_future_result(done) == NULL);
        }
        break;
    case CREW_FAILED:
        if (failed > 0) {
            size_t previous = SIZE_MAX;

            /* Every failure, in member order, at its index. */
            CHECK(crew_error_code(e) == CREW_EAGGREGATE);
            CHECK(crew_error_count(e) == failed);
            for (size_t k = 0; k < failed; k++) {
                size_t pos = SIZE_MAX;
                const crew_error *inner = crew_error_inner(e, k, &pos);
                const struct gmember *m = gmember_at(gr, pos);

                CHECK(m != NULL && (previous == SIZE_MAX || pos > previous));
                CHECK(crew_future_state(m->future) == CREW_FAILED &&
                      inner == crew_future_error(m->future));
                previous = pos;
            }
        } else if (crew_error_code(e) == ETIMEDOUT) {
            CHECK(gr->o.timeout_ns != 0);
            CHECK(now_ns() - gr->created_ns >= gr->o.timeout_ns);
        } else {
            CHECK(crew_error_code(e) == ENOENT && !enough);
        }
        break;
    default:
        CHECK(state == CREW_CANCELLED && failed == 0);
        CHECK(atomic_load(&gr->requested));
        break;
    }
    /* The policy's own cancellation is not a cancellation. */
    if (enough && !atomic_load(&gr->requested) && gr->o.timeout_ns == 0)
        CHECK(state == CREW_SUCCEEDED);
}

/* Registered on every group's future: runs once, when it resolves. */
static void
group_checker(crew_future *f, void *user)
{
    struct grp *gr = user;

    CHECK(f == gr->done);
    check_group(gr, f);
    CHECK(atomic_fetch_add(&gr->checked, 1) == 0);
}

static struct grp *
group_of(unsigned g)
{
    int i = ctx.group_slot[g % N_GROUPS];

    return i >= 0 ? &ctx.groups[i] : NULL;
}

static void
op_group_create(void)
{
    unsigned gs = next() % N_GROUPS;
    struct instance *in = pool_of(next());
    unsigned cfg = next(), t = next() % 4;
    crew_group_options o = {
        .policy = (crew_group_policy)(cfg % 4),
        .quorum = 1 + (cfg >> 2) % 4,
        .limit = (cfg >> 4) % 4,
        .timeout_ns = group_timeouts[t],
    };
    crew_group *g = (crew_group *)&ctx; /* must be overwritten */
    struct grp *gr;
    int r;

    if (in == NULL || ctx.group_slot[gs] >= 0 || ctx.ngroups >= MAX_GROUPS)
        return;
    if (cfg >> 6 == 3) {
        o.policy = (crew_group_policy)7;
        CHECK(crew_group_create(&g, in->pool, &o) == EINVAL && g == NULL);
        return;
    }
    if (cfg >> 6 == 2 && o.policy == CREW_GROUP_QUORUM) {
        o.quorum = 0;
        CHECK(crew_group_create(&g, in->pool, &o) == EINVAL && g == NULL);
        return;
    }
    gr = &ctx.groups[ctx.ngroups];
    gr->created_ns = now_ns();
    r = crew_group_create(&g, in->pool, &o);
    if (in->shut) {
        CHECK(r == ESHUTDOWN && g == NULL);
        return;
    }
    CHECK(r == 0 && g != NULL);
    gr->handle = g;
    gr->g = g;
    gr->inst = in;
    gr->pool = in->pool;
    gr->o = o;
    ctx.group_slot[gs] = ctx.ngroups++;
}

/* Close `gr` from the main thread, keeping its future and checking it
 * when it resolves. */
static void
group_close(struct grp *gr)
{
    crew_future *done = (crew_future *)gr; /* must be overwritten */

    if (gr->closed) {
        CHECK(crew_group_close(gr->g, &done) == EALREADY && done == NULL);
        return;
    }
    CHECK(crew_group_close(gr->g, &done) == 0 && done != NULL);
    gr->closed = true;
    gr->done = done;
    CHECK(crew_future_on_complete(done, group_checker, gr) == 0);
}

static void
op_group_submit(void)
{
    struct grp *gr = group_of(next());
    int kind = (int)(next() % G_COUNT);
    unsigned param = next(), dst = next() % 32, mode = next() % 4;
    unsigned flags = mode == 2 ? CREW_NONBLOCKING : mode == 3 ? 0x100 : 0;
    int r, slot;

    if (gr == NULL)
        return;
    if (gr->closed || mode == 3) {
        /* Refused: a record that must never run. */
        size_t index = 4242;
        crew_future *f = (crew_future *)gr;

        r = crew_group_submit(gr->g, gmember_fn, &ctx.never, gmember_free,
                              flags, &index, &f);
        CHECK(f == NULL && index == 4242);
        if (mode == 3)
            CHECK(r == EINVAL);
        else
            CHECK(r == ESHUTDOWN || r == ECANCELED);
        return;
    }
    r = group_add(gr, gr->g, kind, param, mode != 1, flags, &slot);
    if (r == -1)
        return;
    if (r != 0) {
        CHECK((r == ESHUTDOWN && gr->inst->shut) ||
              (r == ECANCELED &&
               (atomic_load(&gr->requested) || group_may_cancel_itself(gr))) ||
              (r == EAGAIN && flags == CREW_NONBLOCKING &&
               gr->inst->max_queued != 0));
        return;
    }
    CHECK(!gr->inst->shut);
    if (dst < N_SLOTS) {
        int node = node_new(N_GMEMBER);
        if (node < 0)
            return;
        ctx.nodes[node].group = (int)(gr - ctx.groups);
        ctx.nodes[node].gmember = slot;
        slot_set(dst, crew_future_retain(gr->m[slot].future), node);
    }
}

static void
op_group_cancel(void)
{
    struct grp *gr = group_of(next());
    unsigned how = next() % 4;

    if (how == 3) {
        crew_future *done = (crew_future *)&ctx;
        crew_error *e = (crew_error *)&ctx;
        crew_group *g = (crew_group *)&ctx;

        CHECK(crew_group_cancel(NULL) == EINVAL);
        CHECK(crew_group_close(NULL, &done) == EINVAL && done == NULL);
        CHECK(crew_group_wait(NULL, &e) == EINVAL && e == NULL);
        crew_group_destroy(NULL);
        CHECK(crew_task_group(NULL) == NULL);
        CHECK(crew_group_submit(NULL, gmember_fn, &ctx.never, NULL, 0, NULL,
                                NULL) == EINVAL);
        CHECK(crew_group_create(NULL, NULL, NULL) == EINVAL);
        CHECK(crew_group_create(&g, NULL, NULL) == EINVAL && g == NULL);
        if (gr != NULL)
            CHECK(crew_group_submit(gr->g, NULL, &ctx.never, gmember_free, 0,
                                    NULL, NULL) == EINVAL);
        return;
    }
    if (gr == NULL)
        return;
    atomic_store(&gr->requested, true);
    if (how == 1 && gr->done != NULL) {
        /* Cancelling its future cancels the group. */
        int r = crew_future_cancel(gr->done);
        CHECK(r == 0 ||
              (r == EALREADY && is_final(crew_future_state(gr->done))));
        return;
    }
    CHECK(crew_group_cancel(gr->g) == 0);
    if (how == 2)
        CHECK(crew_group_cancel(gr->g) == 0);
}

static void
op_group_close(void)
{
    struct grp *gr = group_of(next());
    unsigned dst = next() % 32;
    int node;

    if (gr == NULL)
        return;
    group_close(gr);
    if (dst >= N_SLOTS)
        return;
    node = node_new(N_GDONE);
    if (node < 0)
        return;
    ctx.nodes[node].group = (int)(gr - ctx.groups);
    ctx.nodes[node].weight = GROUP_MEMBERS;
    slot_set(dst, crew_future_retain(gr->done), node);
}

static void
op_group_wait(void)
{
    struct grp *gr = group_of(next());
    bool no_error = next() & 1;
    crew_error *e = (crew_error *)&ctx; /* must be overwritten */
    int r;

    if (gr == NULL)
        return;
    if (!gr->closed)
        group_close(gr);
    r = crew_group_wait(gr->g, no_error ? NULL : &e);
    check_code(gr->done, r);
    if (no_error)
        return;
    CHECK(r == 0 ? e == NULL : e == crew_future_error(gr->done));
    crew_error_release(e);
}

static void
group_destroy(unsigned gs)
{
    struct grp *gr = group_of(gs);

    if (gr == NULL)
        return;
    /* Destroying an unresolved group cancels it. */
    atomic_store(&gr->requested, true);
    crew_group_destroy(gr->g);
    gr->g = NULL;
    ctx.group_slot[gs % N_GROUPS] = -1;
    if (gr->done != NULL)
        CHECK(is_final(crew_future_state(gr->done)));
}

static void
op_group_destroy(void)
{
    unsigned gs = next();
    struct grp *gr = group_of(gs);

    if (gr == NULL)
        return;
    if (next() & 1)
        group_close(gr);
    group_destroy(gs);
}

/* Every group has gone: each member ran once or was cancelled, its
 * arg_free once; a refused one never ran; every group closed here was
 * checked once. */
static void
groups_finished(void)
{
    CHECK(atomic_load(&ctx.never.ran) == 0 &&
          atomic_load(&ctx.never.freed) == 0);
    for (int i = 0; i < ctx.ngroups; i++) {
        struct grp *gr = &ctx.groups[i];
        int n = atomic_load(&gr->used);

        CHECK(gr->g == NULL);
        for (int j = 0; j < n && j < GROUP_MEMBERS; j++) {
            struct gmember *m = &gr->m[j];
            if (!atomic_load(&m->accepted)) {
                CHECK(atomic_load(&m->ran) == 0 && atomic_load(&m->freed) == 0);
                continue;
            }
            check_gmember(m, m->future);
        }
        if (gr->done != NULL) {
            /* Its callback runs after its resolution, maybe still on a
             * worker or the timer's thread: give it time. */
            for (int k = 0; k < 100000 && atomic_load(&gr->checked) == 0; k++)
                pause_ns(0);
            CHECK(atomic_load(&gr->checked) == 1);
        }
    }
}

/* Drop the references the groups' records keep. */
static void
groups_release(void)
{
    for (int i = 0; i < ctx.ngroups; i++) {
        struct grp *gr = &ctx.groups[i];
        int n = atomic_load(&gr->used);

        for (int j = 0; j < n && j < GROUP_MEMBERS; j++)
            crew_future_release(gr->m[j].future);
        crew_future_release(gr->done);
    }
}

/* ------------------------------------------------------------------ */
/* Bad input                                                          */
/* ------------------------------------------------------------------ */

static void
op_bad_args(void)
{
    unsigned which = next() % 10, s = next() % N_SLOTS;
    crew_future *f = ctx.slots[s].f;
    crew_future *out = (crew_future *)&ctx; /* must be overwritten */
    crew_error *eout = (crew_error *)&ctx;
    crew_future *pair[2] = {f, NULL};
    struct instance *in = pool_of(s);
    size_t index = 4242, pos = 4242;
    char buf[8] = "unset";

    switch (which) {
    case 0:
        CHECK(crew_pool_create(NULL, NULL) == EINVAL);
        CHECK(crew_pool_shutdown(NULL, CREW_DRAIN) == EINVAL);
        crew_pool_destroy(NULL);
        CHECK(crew_pool_threads(NULL) == 0);
        break;
    case 1:
        CHECK(crew_submit(NULL, task_fn, NULL, &out) == EINVAL);
        CHECK(out == NULL);
        if (in != NULL) {
            /* A NULL function: arg_free must not run either. */
            out = (crew_future *)&ctx;
            CHECK(crew_submit_ex(in->pool, NULL, NULL, arg_free, 0, &out) ==
                  EINVAL);
            CHECK(out == NULL);
        }
        break;
    case 2:
        CHECK(crew_future_wait(NULL) == EINVAL);
        CHECK(crew_future_wait_for(NULL, 0) == EINVAL);
        CHECK(crew_future_cancel(NULL) == EINVAL);
        CHECK(crew_future_state(NULL) == CREW_PENDING);
        CHECK(crew_future_result(NULL) == NULL);
        CHECK(crew_future_error(NULL) == NULL);
        CHECK(crew_future_retain(NULL) == NULL);
        crew_future_release(NULL);
        break;
    case 3:
        CHECK(crew_future_on_complete(NULL, user_callback, NULL) == EINVAL);
        if (f != NULL)
            CHECK(crew_future_on_complete(f, NULL, NULL) == EINVAL);
        break;
    case 4:
        CHECK(crew_promise_create(NULL) == EINVAL);
        CHECK(crew_promise_resolve(NULL, NULL, NULL) == EINVAL);
        CHECK(crew_promise_fail(NULL, EIO, "x") == EINVAL);
        if (f != NULL) {
            bool promise = slot_is_promise(&ctx.slots[s]);
            crew_state before = crew_future_state(f);
            /* Code 0 is bad input, whatever the future. */
            CHECK(crew_promise_fail(f, 0, "zero") == EINVAL);
            if (!promise) {
                CHECK(crew_promise_resolve(f, NULL, NULL) == EINVAL);
                CHECK(crew_promise_fail(f, EIO, "x") == EINVAL);
            }
            if (is_final(before))
                CHECK(crew_future_state(f) == before);
        }
        break;
    case 5:
        CHECK(crew_when_all(NULL, 2, &out) == EINVAL && out == NULL);
        out = (crew_future *)&ctx;
        CHECK(crew_when_any(NULL, 1, &out) == EINVAL && out == NULL);
        out = (crew_future *)&ctx;
        CHECK(crew_when_all(pair, 2, &out) == EINVAL && out == NULL);
        out = (crew_future *)&ctx;
        CHECK(crew_when_any(pair, 2, &out) == EINVAL && out == NULL);
        out = (crew_future *)&ctx;
        CHECK(crew_when_any(pair, 0, &out) == EINVAL && out == NULL);
        CHECK(crew_when_all(pair, 0, NULL) == EINVAL);
        if (f != NULL) {
            CHECK(crew_when_all(pair, 1, NULL) == EINVAL);
            CHECK(crew_when_any(pair, 1, NULL) == EINVAL);
        }
        break;
    case 6:
        CHECK(crew_wait_all(NULL, 1, &eout) == EINVAL && eout == NULL);
        eout = (crew_error *)&ctx;
        CHECK(crew_wait_all(pair, 2, &eout) == EINVAL && eout == NULL);
        CHECK(crew_wait_any(NULL, 1, 0, &index) == EINVAL);
        CHECK(crew_wait_any(pair, 0, 0, &index) == EINVAL);
        CHECK(crew_wait_any(pair, 2, 0, &index) == EINVAL);
        CHECK(index == 4242);
        if (f != NULL)
            CHECK(crew_wait_any(pair, 1, 0, NULL) == EINVAL);
        break;
    case 7:
        CHECK(crew_error_code(NULL) == 0);
        CHECK(strcmp(crew_error_message(NULL), "") == 0);
        CHECK(crew_error_count(NULL) == 0);
        CHECK(crew_error_inner(NULL, 0, &pos) == NULL && pos == 4242);
        CHECK(crew_error_flatten(NULL) == NULL);
        CHECK(crew_error_format(NULL, buf, sizeof(buf)) == -1);
        CHECK(strcmp(buf, "unset") == 0);
        CHECK(crew_error_format(NULL, NULL, 0) == -1);
        CHECK(crew_error_retain(NULL) == NULL);
        crew_error_release(NULL);
        break;
    case 8:
        CHECK(crew_strerror(CREW_EAGGREGATE) != NULL);
        CHECK(crew_strerror(ESHUTDOWN) != NULL);
        CHECK(crew_strerror(-7) != NULL);
        CHECK(crew_strerror(123456) != NULL);
        CHECK(crew_strerror((int)(int8_t)s) != NULL);
        {
            char version[32];
            snprintf(version, sizeof(version), "%d.%d.%d", CREW_VERSION_MAJOR,
                     CREW_VERSION_MINOR, CREW_VERSION_PATCH);
            CHECK(strcmp(crew_version(), version) == 0);
        }
        break;
    default:
        crew_task_return(NULL, NULL, NULL);
        CHECK(crew_task_fail(NULL, EIO, "x") == EINVAL);
        CHECK(!crew_task_cancelled(NULL));
        CHECK(crew_task_pool(NULL) == NULL);
        if (in != NULL) {
            /* Bad input changes nothing: the pool still takes work. */
            CHECK(crew_pool_shutdown(in->pool, (crew_shutdown)2) == EINVAL);
            CHECK(crew_pool_threads(in->pool) == in->threads);
        }
        break;
    }
}

static void
op_state(void)
{
    unsigned s = next() % N_SLOTS;
    crew_future *f = ctx.slots[s].f;

    if (f == NULL)
        return;
    check_outcome_shape(f);
    /* crew_future_error() acquires the state: what it reports resolved
     * has published everything before its resolution. */
    if (crew_future_error(f) != NULL || crew_future_state(f) == CREW_SUCCEEDED)
        check_resolved(f, ctx.slots[s].node);
}

/* ------------------------------------------------------------------ */
/* Traces and the watchdog                                             */
/* ------------------------------------------------------------------ */

static void
op_trace(void)
{
    struct instance *in = pool_of(next());
    unsigned v = next();
    crew_latency latency;
    char *text = NULL;
    size_t size = 0;
    FILE *json;
    int r;

    if (in == NULL)
        return;
    if (v >= 250) {
        CHECK(crew_trace_start(NULL, 1) == EINVAL);
        CHECK(crew_trace_start(in->pool, 0) == EINVAL);
        CHECK(crew_trace_stop(NULL, NULL) == EINVAL);
        CHECK(crew_pool_latency_get(in->pool, NULL) == EINVAL);
        return;
    }
    switch (v % 4) {
    case 0:
        r = crew_trace_start(in->pool, 1 + (v >> 2) % 16);
        CHECK(r == (in->tracing ? EALREADY : 0));
        in->tracing = true;
        break;
    case 1:
        json = open_memstream(&text, &size);
        if (json == NULL)
            return;
        r = crew_trace_stop(in->pool, json);
        fclose(json);
        CHECK(r == (in->tracing ? 0 : EALREADY));
        CHECK(!in->tracing || (size > 2 && text[0] == '{' &&
                               strcmp(text + size - 3, "}}\n") == 0));
        free(text);
        in->tracing = false;
        break;
    case 2:
        CHECK(crew_trace_stop(in->pool, NULL) == (in->tracing ? 0 : EALREADY));
        in->tracing = false;
        break;
    default:
        CHECK(crew_pool_latency_get(in->pool, &latency) == 0);
        CHECK(latency.tasks >= in->timed);
        CHECK(latency.run_p50_ns <= latency.run_p99_ns &&
              latency.run_p99_ns <= latency.run_max_ns);
        CHECK(latency.wait_p50_ns <= latency.wait_p99_ns &&
              latency.wait_p99_ns <= latency.wait_max_ns);
        in->timed = latency.tasks;
        break;
    }
}

/* The watchdog's function: runs on the pool's monitor thread. */
static void
on_stuck(const crew_stuck *stuck, void *user)
{
    struct instance *in = user;

    if (stuck->worker >= in->threads || stuck->running_ns <= 1000000)
        atomic_fetch_add(&in->bad_stuck, 1);
    atomic_fetch_add(&in->stuck, 1);
}

static void
op_watchdog(void)
{
    struct instance *in = pool_of(next());
    unsigned v = next();

    if (in == NULL)
        return;
    if (v >= 250) {
        CHECK(crew_pool_watchdog(NULL, 1000000, on_stuck, in) == EINVAL);
        CHECK(crew_pool_watchdog(in->pool, 1000000, NULL, in) == EINVAL);
        return;
    }
    if (v % 3 == 2) {
        CHECK(crew_pool_watchdog(in->pool, 0, NULL, NULL) == 0);
        in->watch_ns = 0;
        return;
    }
    in->watch_ns = (v & 4) != 0 ? 2000000 : 1000000;
    CHECK(crew_pool_watchdog(in->pool, in->watch_ns, on_stuck, in) == 0);
}

static void
op_pause(void)
{
    static const long pauses[4] = {0, 10000, 100000, 500000};

    pause_ns(pauses[next() % 4]);
}

/* ------------------------------------------------------------------ */
/* One input                                                          */
/* ------------------------------------------------------------------ */

static void
reset(const uint8_t *data, size_t size)
{
    memset(&ctx, 0, sizeof(ctx));
    ctx.data = data;
    ctx.size = size;
    for (unsigned p = 0; p < N_POOLS; p++)
        ctx.pool_slot[p] = -1;
    for (unsigned s = 0; s < N_SLOTS; s++)
        ctx.slots[s].node = -1;
    for (unsigned g = 0; g < N_GROUPS; g++)
        ctx.group_slot[g] = -1;
}

static void
teardown(void)
{
    int n;

    /* No promise is left pending: every wait below then ends. */
    for (int i = 0; i < ctx.npromises; i++) {
        int r = crew_future_cancel(ctx.promises[i]);
        CHECK(r == 0 || r == EALREADY);
        CHECK(is_final(crew_future_state(ctx.promises[i])));
    }
    /* Each group still here is cancelled, if unresolved, and waited for:
     * its members finish on their own. */
    for (unsigned g = 0; g < N_GROUPS; g++)
        group_destroy(g);
    for (unsigned s = 0; s < N_SLOTS; s++) {
        crew_future *f = ctx.slots[s].f;
        if (f == NULL)
            continue;
        check_code(f, crew_future_wait(f));
        check_resolved(f, ctx.slots[s].node);
    }
    /* Joining the workers also waits for callbacks still running. */
    for (unsigned p = 0; p < N_POOLS; p++)
        pool_destroy(p);
    for (int i = 0; i < ctx.ninst; i++)
        CHECK(ctx.inst[i].pool == NULL);
    groups_finished();

    n = task_count();
    for (int i = 0; i < n; i++) {
        struct task *t = &ctx.tasks[i];
        if (!t->accepted) {
            CHECK(atomic_load(&t->ran) == 0);
            CHECK(atomic_load(&t->arg_freed) == 0);
            CHECK(atomic_load(&t->tracked) == 0);
            continue;
        }
        CHECK(atomic_load(&t->arg_freed) == (t->has_arg_free ? 1 : 0));
        if (t->has_future)
            CHECK(atomic_load(&t->tracked) == 1);
        else
            CHECK(atomic_load(&t->ran) == 1 ||
                  atomic_load(&t->inst->cancelled));
    }
    for (int i = 0; i < ctx.ncallbacks; i++)
        CHECK(atomic_load(&ctx.callbacks[i].calls) == 1);
    for (int i = 0; i < ctx.nnodes; i++) {
        const struct node *nd = &ctx.nodes[i];
        if (nd->kind == N_ALL || nd->kind == N_ANY || nd->kind == N_ALL_EX)
            CHECK(atomic_load(&nd->checked) == 1);
    }
    /* Every input has resolved and every pool is gone: each continuation
     * ran or was refused. */
    for (int i = 0; i < ctx.nthens; i++) {
        const struct then *c = &ctx.thens[i];
        CHECK(atomic_load(&c->freed) == (c->has_free ? 1 : 0));
        CHECK(atomic_load(&c->ran) <= 1);
    }
    for (int i = 0; i < ctx.nnodes; i++) {
        const struct node *nd = &ctx.nodes[i];
        if (nd->kind == N_THEN)
            CHECK(atomic_load(&ctx.thens[nd->then].tracked) == 1);
    }

    for (unsigned s = 0; s < N_SLOTS; s++)
        slot_set(s, NULL, -1);
    for (unsigned e = 0; e < N_ERRORS; e++)
        error_keep(e, NULL);
    for (int i = 0; i < ctx.npromises; i++)
        crew_future_release(ctx.promises[i]);
    groups_release();
    /* Every future is gone now, and every value with it. */
    CHECK(atomic_load(&ctx.values_made) == atomic_load(&ctx.values_freed));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset(data, size);
    for (int ops = 0; ops < MAX_OPS && ctx.pos < ctx.size; ops++) {
        switch (next() % OP_COUNT) {
        case OP_POOL_CREATE:
            op_pool_create();
            break;
        case OP_POOL_SHUTDOWN:
            op_pool_shutdown();
            break;
        case OP_POOL_DESTROY:
            pool_destroy(next() % N_POOLS);
            break;
        case OP_SUBMIT:
            op_submit();
            break;
        case OP_PROMISE_CREATE:
            op_promise_create();
            break;
        case OP_PROMISE_RESOLVE:
            op_promise_resolve();
            break;
        case OP_PROMISE_FAIL:
            op_promise_fail();
            break;
        case OP_CANCEL:
            op_cancel();
            break;
        case OP_WAIT_FOR:
            op_wait_for();
            break;
        case OP_WAIT:
            op_wait();
            break;
        case OP_RETAIN:
            op_retain();
            break;
        case OP_RELEASE:
            op_release();
            break;
        case OP_ON_COMPLETE:
            op_on_complete();
            break;
        case OP_WHEN_ALL:
            op_join(N_ALL);
            break;
        case OP_WHEN_ANY:
            op_join(N_ANY);
            break;
        case OP_WAIT_ALL:
            op_wait_all();
            break;
        case OP_WAIT_ANY:
            op_wait_any();
            break;
        case OP_ERROR_TAKE:
            op_error_take();
            break;
        case OP_ERROR_INSPECT:
            op_error_inspect();
            break;
        case OP_ERROR_RELEASE:
            op_error_release();
            break;
        case OP_BAD_ARGS:
            op_bad_args();
            break;
        case OP_STATE:
            op_state();
            break;
        case OP_WHEN_ALL_EX:
            op_join(N_ALL_EX);
            break;
        case OP_THEN:
            op_then();
            break;
        case OP_PARALLEL_FOR:
            op_parallel_for();
            break;
        case OP_STATS:
            op_stats();
            break;
        case OP_RESOLVE_COPY:
            op_resolve_copy();
            break;
        case OP_WAIT_ALL_FOR:
            op_wait_all_for();
            break;
        case OP_SUBMIT_EACH:
            op_submit_each();
            break;
        case OP_REDUCE:
            op_reduce();
            break;
        case OP_SPAWN:
            op_spawn();
            break;
        case OP_GROUP_CREATE:
            op_group_create();
            break;
        case OP_GROUP_SUBMIT:
            op_group_submit();
            break;
        case OP_GROUP_CANCEL:
            op_group_cancel();
            break;
        case OP_GROUP_CLOSE:
            op_group_close();
            break;
        case OP_GROUP_WAIT:
            op_group_wait();
            break;
        case OP_GROUP_DESTROY:
            op_group_destroy();
            break;
        case OP_TRACE:
            op_trace();
            break;
        case OP_WATCHDOG:
            op_watchdog();
            break;
        default:
            op_pause();
            break;
        }
    }
    teardown();
    return 0;
}
