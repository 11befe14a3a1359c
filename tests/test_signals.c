/*
 * Signals: a program's handlers run on its own threads, never on crew's.
 *
 * RELIABILITY.md, "Processes": workers block every asynchronous signal, so
 * the handlers a program installs for SIGINT, SIGTERM, SIGCHLD, SIGPIPE,
 * SIGUSR1 and the like run on the program's threads; the thread that
 * creates a pool keeps its mask. tests/test_pool.c reads the workers' mask
 * and the creator's mask after a successful crew_pool_create; the tests
 * here watch where the kernel actually delivers process-directed signals.
 *
 * How a test can fail. Linux gives a process-directed signal to the
 * thread it is addressed to (for kill(getpid(), ...) the main thread,
 * which runs the test; for SIGCHLD the thread that forked the child) when
 * that thread has it unblocked and none pending; otherwise it looks round
 * the process's other threads for one that has it unblocked. So the
 * signals go in bursts of one of each kind: while the first is still
 * pending on the test thread, the next must find another thread, and a
 * worker that had them open would take some. Where the test thread blocks
 * them, every one must find another thread. The pool is always created
 * while the test thread has them open, so a library that forgot to block
 * them would hand that open mask to its workers. Criterion's own helper
 * thread blocks them all (only SIGKILL, SIGSTOP and glibc's two internal
 * signals are open there, checked by hand). Against a build whose workers
 * block nothing, every test below that watches deliveries fails.
 *
 * The handler is async-signal-safe: it stores pthread_self() and the
 * signal number into lock-free atomics, then writes one byte to a pipe.
 * The sender reads one byte a signal (poll() with a time limit) before the
 * next burst, so standard signals never merge, every one sent is counted
 * once, and a lost delivery fails the test instead of hanging it.
 * The test thread checks what was recorded once the storm is over; nothing
 * asserts from another thread. Each test restores the handlers and the
 * mask it found.
 */
#include "common.h"
#include "testkit.h"

#include <crew.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The library's fault-injection hook (tests/fault.h), present only when it
 * was built with CREW_TEST_HOOKS. Declared weak, so that the test can ask
 * at run time whether it is there: NULL when it is not.
 */
__attribute__((weak)) void crew_test_fail_thread(long k);
__attribute__((weak)) bool crew_test_fault_fired(void);

#define WORKERS     3    /* more workers than the machine's two cores */
#define ROUNDS      60   /* signals of each kind sent by one storm */
#define CHILDREN    40   /* children forked by one SIGCHLD test */
#define MAX_RECORDS 4096 /* deliveries one test can record */

/* The signals of RELIABILITY.md first, then more asynchronous ones, so
 * that a burst is long. */
static const int caught[] = {SIGINT,  SIGTERM, SIGCHLD, SIGPIPE,  SIGUSR1,
                             SIGUSR2, SIGHUP,  SIGALRM, SIGWINCH, SIGURG};
#define CAUGHT (sizeof(caught) / sizeof(caught[0]))

/* pthread_t is an integer on Linux; the handler stores it in an atomic. */
_Static_assert(sizeof(pthread_t) <= sizeof(uintptr_t),
               "pthread_t does not fit in an atomic uintptr_t");

static uintptr_t
thread_id(pthread_t thread)
{
    return (uintptr_t)thread;
}

/* What the handlers saw: which thread ran each delivery, of what. */
static struct {
    atomic_uintptr_t thread[MAX_RECORDS];
    atomic_int sig[MAX_RECORDS];
    atomic_uint count; /* deliveries, recorded or not */
    int pipe_read;
    int pipe_write; /* the handler writes one byte a delivery */
    int watched[CAUGHT];
    size_t nwatched;
    struct sigaction saved[CAUGHT];
    sigset_t saved_mask;
} rec;

static void
record_signal(int sig)
{
    int saved_errno = errno;
    unsigned i = atomic_fetch_add(&rec.count, 1);
    unsigned char byte = (unsigned char)sig;
    ssize_t written;

    if (i < MAX_RECORDS) {
        atomic_store(&rec.thread[i], thread_id(pthread_self()));
        atomic_store(&rec.sig[i], sig);
    }
    written = write(rec.pipe_write, &byte, 1);
    (void)written;
    errno = saved_errno;
}

/* The set of the @p n signals @p sigs. */
static sigset_t
set_of(const int *sigs, size_t n)
{
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < n; i++)
        sigaddset(&set, sigs[i]);
    return set;
}

/*
 * Installs the recording handler for the @p n signals @p sigs, saving the
 * actions and the calling thread's mask it replaces; the signals are left
 * unblocked on the calling thread.
 */
static void
install(const int *sigs, size_t n)
{
    int fds[2];
    sigset_t open = set_of(sigs, n);

    cr_assert(atomic_is_lock_free(&rec.count), "atomic_uint is not lock-free");
    cr_assert(atomic_is_lock_free(&rec.thread[0]),
              "atomic_uintptr_t is not lock-free");
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    rec.pipe_read = fds[0];
    rec.pipe_write = fds[1];
    cr_assert_eq(pthread_sigmask(SIG_UNBLOCK, &open, &rec.saved_mask), 0);
    rec.nwatched = n;
    for (size_t i = 0; i < n; i++) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = record_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        rec.watched[i] = sigs[i];
        cr_assert_eq(sigaction(sigs[i], &sa, &rec.saved[i]), 0);
    }
}

/* Puts back the actions and the mask install() replaced. */
static void
uninstall(void)
{
    for (size_t i = 0; i < rec.nwatched; i++)
        sigaction(rec.watched[i], &rec.saved[i], NULL);
    rec.nwatched = 0;
    pthread_sigmask(SIG_SETMASK, &rec.saved_mask, NULL);
    close(rec.pipe_read);
    close(rec.pipe_write);
}

/* Blocks or unblocks the caught signals on the calling thread. */
static void
mask_caught(int how)
{
    sigset_t set = set_of(caught, CAUGHT);

    pthread_sigmask(how, &set, NULL);
}

/*
 * Waits at most SCN_PATIENCE_MS for the next delivery's byte; returns the
 * signal delivered, or 0 if none came in time.
 */
static int
await_delivery(void)
{
    struct pollfd p = {.fd = rec.pipe_read, .events = POLLIN};
    unsigned char byte;
    int n;

    do
        n = poll(&p, 1, (int)SCN_PATIENCE_MS);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        return 0;
    while (read(rec.pipe_read, &byte, 1) != 1) {
        if (errno != EINTR)
            return 0;
    }
    return byte;
}

/* What one sender did; only it writes, the test reads after joining. */
struct storm {
    unsigned sent;
    unsigned delivered; /* deliveries it saw, one per signal sent */
    unsigned wrong;     /* deliveries of a signal not sent, or twice */
    int kill_errno;
};

/*
 * Sends ROUNDS bursts to the process, each burst every caught signal once,
 * back to back, then waits for each one's delivery. Within a burst the
 * thread that took the first signal still has it pending when the next is
 * sent, so the kernel looks for another thread with it unblocked: a worker
 * that had it open would take some. The calling thread must block them.
 */
static void
send_storm(struct storm *s)
{
    for (unsigned r = 0; r < ROUNDS; r++) {
        bool seen[CAUGHT] = {false};

        for (size_t i = 0; i < CAUGHT; i++) {
            if (kill(getpid(), caught[i]) != 0) {
                s->kill_errno = errno;
                return;
            }
            s->sent++;
        }
        for (size_t n = 0; n < CAUGHT; n++) {
            int got = await_delivery();
            size_t i = 0;

            if (got == 0)
                return;
            s->delivered++;
            while (i < CAUGHT && caught[i] != got)
                i++;
            if (i == CAUGHT || seen[i])
                s->wrong++;
            else
                seen[i] = true;
        }
    }
}

/* A helper thread that blocks the caught signals and sends a storm. */
static void *
sender_main(void *arg)
{
    mask_caught(SIG_BLOCK);
    send_storm(arg);
    return NULL;
}

static void
assert_storm_delivered(const struct storm *s)
{
    cr_assert_eq(s->kill_errno, 0, "kill() failed: %s",
                 strerror(s->kill_errno));
    cr_assert_eq(s->sent, ROUNDS * CAUGHT, "only %u signals were sent",
                 s->sent);
    cr_assert_eq(s->delivered, s->sent,
                 "%u of %u signals sent were never handled",
                 s->sent - s->delivered, s->sent);
    cr_assert_eq(s->wrong, 0, "%u deliveries were of another signal", s->wrong);
}

/* The workers of the pool under test, as their start hook saw them. */
static struct {
    atomic_uintptr_t id[WORKERS];
    struct scn_gate started;
} crew_threads = {.started = SCN_GATE_INIT};

static void
note_worker(crew_pool *pool, unsigned worker, void *user)
{
    (void)pool;
    (void)user;
    if (worker < WORKERS)
        atomic_store(&crew_threads.id[worker], thread_id(pthread_self()));
    scn_gate_add(&crew_threads.started, 1);
}

/* A pool of WORKERS threads whose ids are known once this returns. */
static crew_pool *
watched_pool(void)
{
    crew_pool_options o = {.threads = WORKERS, .on_thread_start = note_worker};
    crew_pool *pool = NULL;

    cr_assert_eq(crew_pool_create(&pool, &o), 0);
    cr_assert(scn_gate_reaches(&crew_threads.started, WORKERS),
              "the workers never started");
    return pool;
}

/*
 * Every delivery recorded ran on @p expected, and none on a worker;
 * @p total deliveries in all, ROUNDS of each signal in @p sigs.
 */
static void
assert_handled_on(pthread_t expected, unsigned total, const int *sigs,
                  size_t nsigs)
{
    unsigned count = atomic_load(&rec.count);

    cr_assert_eq(count, total, "%u deliveries, %u expected", count, total);
    cr_assert_leq(count, MAX_RECORDS);
    for (unsigned i = 0; i < count; i++) {
        uintptr_t t = atomic_load(&rec.thread[i]);
        int sig = atomic_load(&rec.sig[i]);

        for (unsigned w = 0; w < WORKERS; w++)
            cr_assert_neq(t, atomic_load(&crew_threads.id[w]),
                          "signal %d (%s) was handled on worker %u", sig,
                          strsignal(sig), w);
        cr_assert_eq(t, thread_id(expected),
                     "signal %d (%s) was handled on a thread other than "
                     "the one left open to it",
                     sig, strsignal(sig));
    }
    for (size_t k = 0; k < nsigs; k++) {
        unsigned n = 0;

        for (unsigned i = 0; i < count; i++)
            n += atomic_load(&rec.sig[i]) == sigs[k];
        cr_assert_eq(n, total / nsigs, "signal %d handled %u times", sigs[k],
                     n);
    }
}

/* ------------------------------------------------------------------ */
/* Keeping every worker busy                                          */
/* ------------------------------------------------------------------ */

enum occupation {
    IDLE,    /* parked in the kernel, no task */
    HELD,    /* each inside a task, blocked on a gate */
    SPINNING /* each inside a task, running (runnable, never blocked) */
};

struct occupied {
    struct scn_hold hold;
    struct scn_gate spinning; /* one a spinning task that has started */
    atomic_bool release;      /* lets the spinning tasks return */
    crew_future *futures[WORKERS];
};

/*
 * Runs until released, never blocking: ETIMEDOUT if never released. It
 * yields between spins, so that under valgrind, which runs one thread at
 * a time, the other threads get their turn.
 */
static int
spin_task(crew_task *task, void *arg)
{
    struct occupied *o = arg;
    uint64_t deadline = scn_now_ns() + 2 * SCN_PATIENCE_MS * 1000000ull;

    (void)task;
    scn_gate_add(&o->spinning, 1);
    while (!atomic_load(&o->release)) {
        if (scn_now_ns() > deadline)
            return ETIMEDOUT;
        for (volatile int i = 0; i < 1000; i++)
            continue;
        sched_yield();
    }
    return 0;
}

/* Occupies @p n of the pool's workers as @p how says. */
static void
occupy(crew_pool *pool, struct occupied *o, enum occupation how, unsigned n)
{
    scn_hold_init(&o->hold);
    scn_gate_init(&o->spinning);
    atomic_init(&o->release, false);
    for (unsigned i = 0; i < WORKERS; i++)
        o->futures[i] = NULL;
    for (unsigned i = 0; i < n && how != IDLE; i++) {
        if (how == HELD) {
            cr_assert_eq(scn_hold_worker(pool, &o->hold, i + 1, &o->futures[i]),
                         0, "the holding task never ran");
        } else {
            cr_assert_eq(crew_submit(pool, spin_task, o, &o->futures[i]), 0);
            cr_assert(scn_gate_reaches(&o->spinning, i + 1),
                      "the spinning task never ran");
        }
    }
}

static void
vacate(struct occupied *o)
{
    scn_hold_open(&o->hold);
    atomic_store(&o->release, true);
    for (unsigned i = 0; i < WORKERS; i++) {
        if (o->futures[i] != NULL)
            cr_assert_eq(scn_wait_and_release(o->futures[i]), 0);
        o->futures[i] = NULL;
    }
    scn_gate_destroy(&o->spinning);
    scn_hold_destroy(&o->hold);
}

/* ------------------------------------------------------------------ */
/* Storms sent to the process, the test thread left open              */
/* ------------------------------------------------------------------ */

/*
 * A helper thread that blocks the signals sends a storm to the process
 * while the test thread, which has them open, waits in pthread_join(). The
 * pool was created with them open; its workers are @p how.
 */
static void
storm_while_workers(enum occupation how)
{
    static struct occupied o;
    struct storm s = {0};
    pthread_t sender;
    crew_pool *pool;

    install(caught, CAUGHT);
    pool = watched_pool();
    occupy(pool, &o, how, WORKERS);

    cr_assert_eq(pthread_create(&sender, NULL, sender_main, &s), 0);
    pthread_join(sender, NULL);

    vacate(&o);
    crew_pool_destroy(pool);
    uninstall();
    assert_storm_delivered(&s);
    assert_handled_on(pthread_self(), ROUNDS * CAUGHT, caught, CAUGHT);
}

TestSuite(signals, CREW_SUITE);

CREW_TEST(signals, handlers_run_on_the_test_thread_never_on_idle_workers)
{
    storm_while_workers(IDLE);
}

CREW_TEST(signals, handlers_run_on_the_test_thread_never_on_workers_in_tasks)
{
    storm_while_workers(HELD);
}

CREW_TEST(signals, handlers_run_on_the_test_thread_never_on_running_workers)
{
    storm_while_workers(SPINNING);
}

/* Sends a storm from inside a task: from a worker, which blocks them. */
static int
storm_task(crew_task *task, void *arg)
{
    (void)task;
    send_storm(arg);
    return 0;
}

CREW_TEST(signals, a_signal_sent_from_a_task_is_handled_off_the_pool)
{
    static struct occupied o;
    struct storm s = {0};
    crew_future *f;
    crew_pool *pool;

    install(caught, CAUGHT);
    pool = watched_pool();
    /* The other workers are held in tasks; the storm runs on the last. */
    occupy(pool, &o, HELD, WORKERS - 1);
    cr_assert_eq(crew_submit(pool, storm_task, &s, &f), 0);
    /* The test thread takes the signals while it waits in crew. */
    cr_assert_eq(crew_future_wait(f), 0);
    cr_assert_eq(crew_future_state(f), CREW_SUCCEEDED);
    crew_future_release(f);
    vacate(&o);
    crew_pool_destroy(pool);
    uninstall();
    assert_storm_delivered(&s);
    assert_handled_on(pthread_self(), ROUNDS * CAUGHT, caught, CAUGHT);
}

/* ------------------------------------------------------------------ */
/* One dedicated thread left open                                     */
/* ------------------------------------------------------------------ */

/* A thread of the program's own that takes the signals until told to quit. */
struct catcher {
    struct scn_gate ready;
    struct scn_gate quit;
};

static void *
catcher_main(void *arg)
{
    struct catcher *c = arg;

    mask_caught(SIG_UNBLOCK);
    scn_gate_add(&c->ready, 1);
    scn_gate_wait(&c->quit, 1);
    return NULL;
}

static pthread_t
start_catcher(struct catcher *c)
{
    pthread_t thread;

    scn_gate_init(&c->ready);
    scn_gate_init(&c->quit);
    cr_assert_eq(pthread_create(&thread, NULL, catcher_main, c), 0);
    cr_assert(scn_gate_reaches(&c->ready, 1), "the catcher never started");
    return thread;
}

static void
stop_catcher(struct catcher *c, pthread_t thread)
{
    scn_gate_add(&c->quit, 1);
    pthread_join(thread, NULL);
    scn_gate_destroy(&c->quit);
    scn_gate_destroy(&c->ready);
}

CREW_TEST(signals,
          with_the_test_thread_blocked_every_signal_goes_to_the_open_one)
{
    static const enum occupation phases[] = {IDLE, HELD, SPINNING};
    static struct occupied o;
    struct storm s[3] = {{0}, {0}, {0}};
    struct catcher c;
    pthread_t catcher;
    crew_pool *pool;

    install(caught, CAUGHT);
    /* Created while the test thread has the signals open. */
    pool = watched_pool();
    catcher = start_catcher(&c);
    mask_caught(SIG_BLOCK);
    for (size_t i = 0; i < 3; i++) {
        occupy(pool, &o, phases[i], WORKERS);
        send_storm(&s[i]);
        vacate(&o);
    }
    crew_pool_destroy(pool);
    stop_catcher(&c, catcher);
    uninstall();
    for (size_t i = 0; i < 3; i++)
        assert_storm_delivered(&s[i]);
    assert_handled_on(catcher, 3 * ROUNDS * CAUGHT, caught, CAUGHT);
}

/* ------------------------------------------------------------------ */
/* SIGCHLD from children that exit                                    */
/* ------------------------------------------------------------------ */

/* What forking children and reaping them found. */
struct brood {
    unsigned forked;
    unsigned handled; /* SIGCHLD deliveries seen, one a child */
    unsigned reaped;  /* children that exited with status 0 */
    int fork_errno;
};

/*
 * Forks CHILDREN children one after another, each exiting at once; waits
 * for each one's SIGCHLD to be handled, then reaps it. The calling thread
 * must block SIGCHLD, so that the kernel looks for another thread.
 */
static void
raise_children(struct brood *b)
{
    for (unsigned i = 0; i < CHILDREN; i++) {
        int status;
        pid_t child = fork();

        if (child < 0) {
            b->fork_errno = errno;
            return;
        }
        if (child == 0)
            _exit(0);
        b->forked++;
        if (await_delivery() == SIGCHLD)
            b->handled++;
        if (waitpid(child, &status, 0) == child && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            b->reaped++;
    }
}

static int
fork_task(crew_task *task, void *arg)
{
    (void)task;
    raise_children(arg);
    return 0;
}

static void
assert_brood(const struct brood *b)
{
    cr_assert_eq(b->fork_errno, 0, "fork() failed: %s",
                 strerror(b->fork_errno));
    cr_assert_eq(b->forked, CHILDREN);
    cr_assert_eq(b->handled, CHILDREN, "%u SIGCHLD never handled",
                 CHILDREN - b->handled);
    cr_assert_eq(b->reaped, CHILDREN);
}

static const int sigchld_only[] = {SIGCHLD};

CREW_TEST(signals, sigchld_from_a_child_a_task_forked_is_handled_off_the_pool)
{
    static struct occupied o;
    struct brood b = {0};
    crew_future *f;
    crew_pool *pool;

    install(sigchld_only, 1);
    pool = watched_pool();
    /* A task forks, as one running a subprocess does; the kernel tells
     * the parent thread first, and that worker blocks SIGCHLD. */
    occupy(pool, &o, HELD, WORKERS - 1);
    cr_assert_eq(crew_submit(pool, fork_task, &b, &f), 0);
    cr_assert_eq(crew_future_wait(f), 0);
    crew_future_release(f);
    vacate(&o);
    crew_pool_destroy(pool);
    uninstall();
    assert_brood(&b);
    assert_handled_on(pthread_self(), CHILDREN, sigchld_only, 1);
}

CREW_TEST(signals, sigchld_from_an_exiting_child_goes_to_the_open_thread)
{
    static struct occupied o;
    struct brood idle = {0}, held = {0};
    struct catcher c;
    pthread_t catcher;
    crew_pool *pool;

    install(sigchld_only, 1);
    pool = watched_pool();
    catcher = start_catcher(&c);
    mask_caught(SIG_BLOCK);
    raise_children(&idle);
    occupy(pool, &o, HELD, WORKERS);
    raise_children(&held);
    vacate(&o);
    crew_pool_destroy(pool);
    stop_catcher(&c, catcher);
    uninstall();
    assert_brood(&idle);
    assert_brood(&held);
    assert_handled_on(catcher, 2 * CHILDREN, sigchld_only, 1);
}

/* ------------------------------------------------------------------ */
/* Waits interrupted by handlers                                      */
/* ------------------------------------------------------------------ */

/* Storms the process, then settles the promise: what a wait must outlast. */
struct interrupter {
    struct storm storm;
    crew_future *promise; /* resolved after the storm, when not NULL */
    atomic_bool stop;     /* ends a storm sent until the waiter is done */
    unsigned extra;       /* signals sent while waiting for `stop` */
};

static void *
interrupter_main(void *arg)
{
    struct interrupter *in = arg;

    mask_caught(SIG_BLOCK);
    send_storm(&in->storm);
    if (in->promise != NULL) {
        crew_promise_resolve(in->promise, &in->storm, NULL);
        return NULL;
    }
    /* Keep interrupting until the timed wait has returned. */
    while (!atomic_load(&in->stop) && in->extra < 100000u) {
        if (kill(getpid(), SIGUSR1) != 0 || await_delivery() != SIGUSR1)
            break;
        in->extra++;
    }
    return NULL;
}

CREW_TEST(signals, waits_interrupted_by_handlers_return_only_when_they_should)
{
    static const uint64_t timeout_ns = 200000000u; /* 200 ms */
    struct interrupter a = {.storm = {0}}, b = {.storm = {0}};
    crew_future *promise, *never;
    pthread_t thread;
    uint64_t t0, waited;
    int err;

    install(caught, CAUGHT);
    cr_assert_eq(crew_promise_create(&promise), 0);
    cr_assert_eq(crew_promise_create(&never), 0);

    /* An untimed wait, interrupted ROUNDS * CAUGHT times. */
    a.promise = promise;
    cr_assert_eq(pthread_create(&thread, NULL, interrupter_main, &a), 0);
    err = crew_future_wait(promise);
    pthread_join(thread, NULL);
    cr_assert_eq(err, 0, "the wait returned %d (%s)", err, strerror(err));
    cr_assert_eq(crew_future_result(promise), (void *)&a.storm,
                 "the wait returned before the promise was resolved");

    /* A timed wait: never ETIMEDOUT early, never EINTR. */
    b.promise = NULL;
    atomic_init(&b.stop, false);
    cr_assert_eq(pthread_create(&thread, NULL, interrupter_main, &b), 0);
    t0 = scn_now_ns();
    err = crew_future_wait_for(never, timeout_ns);
    waited = scn_now_ns() - t0;
    atomic_store(&b.stop, true);
    pthread_join(thread, NULL);
    cr_assert_eq(err, ETIMEDOUT, "the timed wait returned %d (%s)", err,
                 strerror(err));
    cr_assert_geq(waited, timeout_ns, "ETIMEDOUT after %llu ns",
                  (unsigned long long)waited);
    cr_assert_eq(crew_future_state(never), CREW_PENDING);

    crew_future_release(promise);
    crew_future_cancel(never);
    crew_future_release(never);
    uninstall();
    assert_storm_delivered(&a.storm);
    assert_storm_delivered(&b.storm);
    cr_assert_eq(atomic_load(&rec.count), 2 * ROUNDS * CAUGHT + b.extra);
}

/* ------------------------------------------------------------------ */
/* The creator's mask when crew_pool_create fails                     */
/* ------------------------------------------------------------------ */

static bool
same_mask(const sigset_t *a, const sigset_t *b)
{
    for (int sig = 1; sig < SIGRTMAX; sig++)
        if (sigismember(a, sig) != sigismember(b, sig))
            return false;
    return true;
}

/*
 * test_pool.c checks the creator's mask after a pool starts. The failure
 * paths change the mask too (the workers are started under a full mask):
 * a pool that cannot start must give the creator its mask back.
 */
CREW_TEST(signals, a_failed_pool_create_leaves_the_creators_mask_as_it_was)
{
    sigset_t saved, before, after;
    crew_pool_options o = {.threads = 3, .stack_size = 1};
    crew_pool *pool = NULL;

    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &saved), 0);
    before = saved;
    for (size_t i = 0; i < CAUGHT; i++)
        sigdelset(&before, caught[i]);
    sigaddset(&before, SIGUSR2);
    sigaddset(&before, SIGHUP);
    cr_assert_eq(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);

    /* A stack below the minimum: EINVAL. */
    cr_assert_eq(crew_pool_create(&pool, &o), EINVAL);
    cr_assert_null(pool);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    cr_assert(same_mask(&before, &after), "EINVAL changed the mask");

    /* The k-th thread failing to start: EAGAIN, where the hook exists. */
    if (crew_test_fail_thread == NULL || crew_test_fault_fired == NULL) {
        cr_log_info("crew built without CREW_TEST_HOOKS: the EAGAIN path "
                    "is not checked here");
    } else {
        o.stack_size = 0;
        for (long k = 0; k < 3; k++) {
            bool fired;
            int err;

            crew_test_fail_thread(k);
            err = crew_pool_create(&pool, &o);
            fired = crew_test_fault_fired();
            crew_test_fail_thread(-1);
            cr_assert(fired, "thread %ld: the fault did not fire", k);
            cr_assert_eq(err, EAGAIN);
            cr_assert_null(pool);
            cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
            cr_assert(same_mask(&before, &after),
                      "a failed start of thread %ld changed the mask", k);
        }
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}
