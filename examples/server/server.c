/*
 * server: an HTTP/1.1 server whose event loop stays responsive while
 * CPU-heavy requests run on a crew pool.
 *
 *     server [-p PORT] [-t THREADS] [-i] [-l] [-T FILE] [-v]
 *
 * One thread runs an epoll loop over the listening socket, the clients'
 * sockets, a signalfd for SIGINT and SIGTERM, and the descriptor of a crew
 * inbox. It answers
 *
 *   GET /ping               "pong", on the loop, at once;
 *   GET /work?n=N[&seed=S]  N rounds of hashing (work.h), submitted to the
 *                           pool; the inbox hands the resolved future back
 *                           to the loop, which answers 200 with the digest,
 *                           or 500 with the task's error message (N out of
 *                           range is the task's failure, not the loop's);
 *   GET /slow?ms=MS         a task that sleeps MS milliseconds (0 to
 *                           SLOW_MAX_MS), as one blocked on a disk or a
 *                           lock would, then answers 200: what the
 *                           watchdog is for;
 *   GET /stats              a JSON object, on the loop, at once: the
 *                           server's counters, the pool's
 *                           (crew_pool_stats_get()) and the tasks' queue
 *                           wait and run time (crew_pool_latency_get()).
 *
 * With -i the loop computes /work itself: the baseline of bench/server.sh,
 * in which every /ping waits behind the heavy requests read before it
 * (/slow sleeps on the loop too); /stats then has no pool to report
 * ("pool" and "latency" are null).
 *
 * A watchdog (crew_pool_watchdog()) logs each task still running STUCK_MS
 * after it started, once, on standard error:
 *
 *     server: task slow_run stuck on worker 1 for 1.27 s
 *
 * naming the task's function when the program exports it (it is linked
 * with -rdynamic), else giving its address.
 *
 * Tasks are timed only while a trace records: -l starts one that keeps a
 * single record a thread (only its latency figures are read), and -T FILE
 * one that keeps each thread's newest TRACE_EVENTS records and writes them
 * to FILE at exit, a timeline that Perfetto (ui.perfetto.dev) opens.
 * Either costs each task three reads of the task clock and a 40-byte
 * record (crew_trace_start()); without them /stats reports no task timed.
 *
 * It listens on 127.0.0.1 only, port 8080 unless -p says otherwise (0: any
 * free port), and prints "listening on 127.0.0.1:PORT" once ready. -t sets
 * the pool's threads (default: one per CPU). -v prints each request as it
 * is read ("GET /work?n=5").
 *
 * SIGINT or SIGTERM drains: the listener closes, idle connections close,
 * every request already read is answered (with "Connection: close"), then
 * the pool shuts down and everything is freed. A client that has not read
 * its answer DRAIN_MS after the signal, or after a second signal, is
 * dropped. Exit status: 0 after a drain, 1 when an error stopped the
 * server, 2 on a usage error.
 *
 * Linux only (epoll, signalfd, accept4). One request per connection is
 * worked on at a time: pipelined requests are answered in order.
 */
#include "work.h"

#include <crew.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX    8192  /* bytes of request line and headers */
#define RESPONSE_MAX   2048  /* bytes of an answer, headers included */
#define EVENTS_MAX     64    /* epoll events taken per wait */
#define DELIVERIES_MAX 64    /* inbox deliveries taken per call */
#define DRAIN_MS       5000  /* how long a drain waits for slow readers */
#define TRACE_EVENTS   65536 /* records a thread keeps for -T (2.5 MiB) */
#define STUCK_MS       1000  /* a task running longer is logged */
#define SLOW_MAX_MS    10000 /* the longest sleep /slow asks for */
#define SLICE_MS       10    /* /slow's task looks for a cancel this often */

/* The most bytes of an answer's body: its headers take fewer than 256. */
#define BODY_MAX (RESPONSE_MAX - 256)

/* The statuses the server answers with, in the order /stats lists them. */
static const int statuses[] = {200, 400, 404, 405, 431, 500, 503};
#define STATUSES (sizeof(statuses) / sizeof(statuses[0]))

/*
 * What an epoll event points at: every watched object starts with its
 * kind, so the loop can tell a client from the listener.
 */
enum source { SOURCE_LISTENER, SOURCE_SIGNALS, SOURCE_INBOX, SOURCE_CLIENT };

struct endpoint {
    enum source source;
    int fd;
};

/* A /work or /slow request: the task's argument, inside its connection. */
struct job {
    bool slow;   /* /slow: sleep `ms`; else /work: hash */
    uint64_t ms; /* /slow's */
    uint64_t seed;
    uint64_t rounds;
    uint64_t digest; /* written by the task, read once delivered */
};

struct conn {
    enum source source;  /* SOURCE_CLIENT */
    int fd;              /* -1 once closed with its job still running */
    uint32_t events;     /* the epoll interest set now */
    bool eof;            /* the client has sent its last byte */
    bool close_after;    /* close once the output is written */
    crew_future *future; /* the job in flight, or NULL */
    struct job job;
    size_t in_len, out_len, out_sent;
    char in[REQUEST_MAX];
    char out[RESPONSE_MAX];
    struct conn *prev, *next; /* the server's open connections */
};

struct server {
    crew_pool *pool; /* NULL with -i: the loop works inline */
    crew_inbox *inbox;
    int epoll;
    struct endpoint listener, signals, deliveries;
    struct conn *conns;  /* open connections */
    struct conn *closed; /* closed in this batch of events, freed after it */
    int reserve;         /* a spare descriptor, for accept to shed with */
    size_t jobs;         /* submitted and not delivered yet */
    size_t open;         /* connections on the list */
    bool timed;          /* a trace records: tasks are timed */
    bool verbose;
    bool draining;
    struct timespec drain_deadline;
    /* Counted for /stats, by the loop: */
    uint64_t accepted;          /* connections */
    uint64_t requests;          /* read whole, refused ones included */
    uint64_t answers[STATUSES]; /* put in an output, by status */
};

struct request {
    const char *method, *target;
    size_t method_len, target_len;
    bool keep_alive;
};

static void client_run(struct server *s, struct conn *c);
static void respond(struct server *s, struct conn *c, int status,
                    const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

/* Sets the epoll interest of c to `events`, if it is not that already. */
static int
conn_want(struct server *s, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (c->events == events)
        return 0;
    if (epoll_ctl(s->epoll, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return -1;
    c->events = events;
    return 0;
}

/*
 * Frees c once the current batch of events is done: an event later in the
 * batch may still point at it.
 */
static void
conn_free_later(struct server *s, struct conn *c)
{
    c->next = s->closed;
    s->closed = c;
}

static void
conns_free_closed(struct server *s)
{
    while (s->closed != NULL) {
        struct conn *c = s->closed;
        s->closed = c->next;
        free(c);
    }
}

/*
 * Closes c's socket. Its memory goes after this batch of events, or, while
 * its job runs, once the inbox delivers the job: the task writes into
 * c->job until then.
 */
static void
conn_close(struct server *s, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->open--;
    close(c->fd); /* also takes it out of the epoll set */
    c->fd = -1;
    if (c->future != NULL) {
        /* Nobody will read the answer: skip the work if it has not begun. */
        crew_future_cancel(c->future);
        return;
    }
    conn_free_later(s, c);
}

/*
 * Out of descriptors, a pending connection cannot be accepted and keeps
 * the listener readable: the loop would spin. Give up the spare
 * descriptor, accept the connection with it and close it at once (the
 * client sees a reset, not a hang), then take the spare back (libuv does
 * the same).
 */
static void
listener_shed(struct server *s)
{
    int fd;

    if (s->reserve < 0)
        return;
    close(s->reserve);
    fd = accept4(s->listener.fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    s->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
listener_accept(struct server *s)
{
    for (;;) {
        int one = 1;
        struct conn *c;
        struct epoll_event ev;
        int fd =
            accept4(s->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                listener_shed(s);
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "server: accept: %s\n", strerror(errno));
            return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->source = SOURCE_CLIENT;
        c->fd = fd;
        c->events = EPOLLIN;
        /*
         * Each answer goes out in one send: nothing to gain from Nagle.
         * Best effort: without it answers are only later.
         */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ev = (struct epoll_event){.events = c->events, .data.ptr = c};
        if (epoll_ctl(s->epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
        s->open++;
        s->accepted++;
    }
}

/* Reads what fits; returns -1 if the connection broke. */
static int
client_read(struct conn *c)
{
    while (c->in_len < sizeof(c->in)) {
        ssize_t n =
            recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n == 0) {
            c->eof = true;
            return 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* Writes what the socket takes: 1 when all is out, 0 if blocked, -1. */
static int
client_write(struct conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                         MSG_NOSIGNAL);

        if (n >= 0)
            c->out_sent += (size_t)n;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        else if (errno != EINTR)
            return -1;
    }
    c->out_len = c->out_sent = 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                               */
/* ------------------------------------------------------------------ */

static const char *
status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Service Unavailable";
    }
}

/* The index of `status` in statuses[]. */
static size_t
status_index(int status)
{
    size_t i = 0;

    while (i < STATUSES - 1 && statuses[i] != status)
        i++;
    return i;
}

/*
 * Puts an answer in c's output, with the `len` bytes at body (at most
 * BODY_MAX) as its content; it goes out on the next client_run().
 */
static void
answer(struct server *s, struct conn *c, int status, const char *type,
       const char *body, size_t len)
{
    int n;

    if (s->draining)
        c->close_after = true;
    n = snprintf(c->out, sizeof(c->out),
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s"
                 "Connection: %s\r\n"
                 "\r\n"
                 "%.*s",
                 status, status_reason(status), type, len,
                 status == 405 ? "Allow: GET\r\n" : "",
                 c->close_after ? "close" : "keep-alive", (int)len, body);
    /* Headers are under 256 bytes and the body at most BODY_MAX. */
    c->out_len = (size_t)n;
    c->out_sent = 0;
    s->answers[status_index(status)]++;
}

/* Answers with a printf-formatted text, cut short if it is too long. */
static void
respond(struct server *s, struct conn *c, int status, const char *format, ...)
{
    char body[BODY_MAX];
    va_list ap;
    int len;

    va_start(ap, format);
    len = vsnprintf(body, sizeof(body), format, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    else if ((size_t)len >= sizeof(body))
        len = (int)sizeof(body) - 1;
    answer(s, c, status, "text/plain", body, (size_t)len);
}

/* The length of the request at the head of buf, or 0 if it is not whole. */
static size_t
request_length(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return i + 1;
    }
    return 0;
}

/*
 * If the header line [line, line + len) is `name: value`, points *value at
 * the value without the spaces around it and returns its length; else
 * returns -1.
 */
static long
header_value(const char *line, size_t len, const char *name, const char **value)
{
    size_t name_len = strlen(name);
    const char *end = line + len;
    const char *v = line + name_len + 1;

    if (len <= name_len || strncasecmp(line, name, name_len) != 0 ||
        line[name_len] != ':')
        return -1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    return end - v;
}

/* Whether `word` occurs in [text, text + len), ignoring case. */
static bool
contains(const char *text, long len, const char *word)
{
    long word_len = (long)strlen(word);

    for (long i = 0; i + word_len <= len; i++) {
        if (strncasecmp(text + i, word, (size_t)word_len) == 0)
            return true;
    }
    return false;
}

/*
 * Parses the request of `len` bytes at buf (request_length() found its
 * end). Returns 0, or the status to answer a request it refuses with.
 */
static int
request_parse(const char *buf, size_t len, struct request *req)
{
    const char *end = buf + len - 2; /* the CRLF of the empty line */
    const char *eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    const char *sp2 =
        sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    const char *version, *value;
    long value_len;
    bool close = false, keep_alive = false;

    if (sp1 == NULL || sp2 == NULL || sp1 == buf || sp2 == sp1 + 1 ||
        eol[1] != '\n')
        return 400;
    version = sp2 + 1;
    if (eol - version != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
        (version[7] != '0' && version[7] != '1'))
        return 400;
    req->method = buf;
    req->method_len = (size_t)(sp1 - buf);
    req->target = sp1 + 1;
    req->target_len = (size_t)(sp2 - sp1 - 1);

    for (const char *line = eol + 2; line < end; line = eol + 2) {
        size_t n;

        eol = memchr(line, '\r', (size_t)(end - line) + 1);
        if (eol[1] != '\n')
            return 400;
        n = (size_t)(eol - line);
        if ((value_len = header_value(line, n, "Connection", &value)) >= 0) {
            close |= contains(value, value_len, "close");
            keep_alive |= contains(value, value_len, "keep-alive");
        }
        /* A body would have to be read and skipped: none is accepted. */
        if (header_value(line, n, "Transfer-Encoding", &value) >= 0)
            return 400;
        value_len = header_value(line, n, "Content-Length", &value);
        if (value_len >= 0 && (value_len != 1 || *value != '0'))
            return 400;
    }
    req->keep_alive = version[7] == '1' ? !close : keep_alive;
    return 0;
}

/*
 * Parses the decimal value of parameter `name` in the query
 * [query, query + len) into *value. Returns 1 if found, 0 if absent,
 * -1 if it is not a number below 2^64.
 */
static int
query_number(const char *query, size_t len, const char *name, uint64_t *value)
{
    size_t name_len = strlen(name);
    const char *end = query + len;

    for (const char *p = query; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;

        if ((size_t)(stop - p) > name_len && memcmp(p, name, name_len) == 0 &&
            p[name_len] == '=') {
            uint64_t v = 0;
            const char *digit = p + name_len + 1;

            if (digit == stop)
                return -1;
            for (; digit < stop; digit++) {
                unsigned d = (unsigned)(*digit - '0');
                if (d > 9 || v > (UINT64_MAX - d) / 10)
                    return -1;
                v = v * 10 + d;
            }
            *value = v;
            return 1;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The work                                                           */
/* ------------------------------------------------------------------ */

/*
 * A /work request's task. Not static: the server exports its symbols
 * (-rdynamic), so that a trace and the watchdog name the task's function.
 */
int
job_run(crew_task *task, void *arg)
{
    struct job *job = arg;
    char why[128];
    int err =
        work_digest(job->seed, job->rounds, &job->digest, why, sizeof(why));

    return err != 0 ? crew_task_fail(task, err, "%s", why) : 0;
}

static void
sleep_ms(uint64_t ms)
{
    struct timespec left = {.tv_sec = (time_t)(ms / 1000),
                            .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        continue;
}

/*
 * A /slow request's task: sleeps in slices, so that a client's hang-up,
 * which cancels it, ends it within one. Not static, as job_run().
 */
int
slow_run(crew_task *task, void *arg)
{
    const struct job *job = arg;

    for (uint64_t slept = 0; slept < job->ms; slept += SLICE_MS) {
        if (crew_task_cancelled(task))
            return ECANCELED;
        sleep_ms(job->ms - slept < SLICE_MS ? job->ms - slept : SLICE_MS);
    }
    return 0;
}

/*
 * The watchdog's report, on the pool's monitor thread, of a task running
 * past STUCK_MS: one line on standard error, which its stdio lock keeps
 * whole among the loop's own.
 */
static void
stuck_log(const crew_stuck *stuck, void *user)
{
    double seconds = (double)stuck->running_ns / 1e9;
    void *address;

    (void)user;
    if (stuck->name != NULL) {
        fprintf(stderr, "server: task %s stuck on worker %u for %.2f s\n",
                stuck->name, stuck->worker, seconds);
        return;
    }
    /* ISO C has no conversion from a function pointer to void *; POSIX
     * requires them to be alike (dlsym() returns functions as void *). */
    memcpy(&address, &stuck->fn, sizeof(address));
    fprintf(stderr, "server: task %p stuck on worker %u for %.2f s\n", address,
            stuck->worker, seconds);
}

/*
 * Starts the job of c on the pool, to be answered when the inbox delivers
 * it; or, on failure, answers 503 now.
 */
static void
job_submit(struct server *s, struct conn *c)
{
    int err = crew_submit(s->pool, c->job.slow ? slow_run : job_run, &c->job,
                          &c->future);

    if (err == 0) {
        err = crew_inbox_watch(s->inbox, c->future, c);
        if (err != 0) {
            /*
             * Nothing will say when the task is done with c->job: wait for
             * it here (a stall of the loop, on an out-of-memory path only).
             */
            crew_future_cancel(c->future);
            crew_future_wait(c->future);
            crew_future_release(c->future);
            c->future = NULL;
        }
    }
    if (err != 0) {
        respond(s, c, 503, "pool: %s\n", crew_strerror(err));
        return;
    }
    s->jobs++;
}

/* Answers c's job, which the inbox delivered as `done`. */
static void
job_done(struct server *s, struct conn *c, crew_future *done)
{
    crew_future_release(c->future);
    c->future = NULL;
    s->jobs--;
    if (c->fd < 0) { /* the client left */
        conn_free_later(s, c);
        return;
    }
    switch (crew_future_state(done)) {
    case CREW_SUCCEEDED:
        if (c->job.slow)
            respond(s, c, 200, "slept %" PRIu64 " ms\n", c->job.ms);
        else
            respond(s, c, 200, "%016" PRIx64 "\n", c->job.digest);
        break;
    case CREW_FAILED:
        respond(s, c, 500, "%s\n", crew_error_message(crew_future_error(done)));
        break;
    default:
        respond(s, c, 503, "cancelled\n");
        break;
    }
    client_run(s, c);
}

static void
deliveries_take(struct server *s)
{
    crew_future *done[DELIVERIES_MAX];
    void *users[DELIVERIES_MAX];
    size_t n;

    while ((n = crew_inbox_take(s->inbox, done, users, DELIVERIES_MAX)) > 0) {
        for (size_t i = 0; i < n; i++) {
            job_done(s, users[i], done[i]);
            crew_future_release(done[i]);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Statistics                                                         */
/* ------------------------------------------------------------------ */

static void add(char *body, size_t size, size_t *len, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Appends to the text of *len bytes at body; once it no longer fits in
 * `size`, *len still grows, and nothing is written.
 */
static void
add(char *body, size_t size, size_t *len, const char *format, ...)
{
    va_list ap;
    int n;

    va_start(ap, format);
    n = vsnprintf(*len < size ? body + *len : NULL,
                  *len < size ? size - *len : 0, format, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

/*
 * Writes what /stats answers into body, its length into *len. Returns 0,
 * ENOBUFS if it did not fit (26 numbers of up to 20 digits and their
 * names take under 1200 bytes: it does), or the error of a crew call.
 */
static int
stats_write(const struct server *s, char *body, size_t size, size_t *len)
{
    crew_pool_stats pool;
    crew_latency latency;
    int err;

    *len = 0;
    add(body, size, len,
        "{\n  \"server\": {\"accepted\": %" PRIu64 ", \"connections\": %zu, "
        "\"requests\": %" PRIu64 ", \"jobs\": %zu, \"answers\": {",
        s->accepted, s->open, s->requests, s->jobs);
    for (size_t i = 0; i < STATUSES; i++)
        add(body, size, len, "%s\"%d\": %" PRIu64, i > 0 ? ", " : "",
            statuses[i], s->answers[i]);
    add(body, size, len, "}},\n");
    if (s->pool == NULL) {
        add(body, size, len, "  \"pool\": null,\n  \"latency\": null\n}\n");
        return *len < size ? 0 : ENOBUFS;
    }
    if ((err = crew_pool_stats_get(s->pool, &pool)) != 0 ||
        (err = crew_pool_latency_get(s->pool, &latency)) != 0)
        return err;
    add(body, size, len,
        "  \"pool\": {\"threads\": %u, \"busy\": %u, \"queued\": %zu, "
        "\"submitted\": %" PRIu64 ", \"succeeded\": %" PRIu64
        ", \"failed\": %" PRIu64 ", \"cancelled\": %" PRIu64
        ", \"stolen\": %" PRIu64 "},\n",
        pool.threads, pool.busy, pool.queued, pool.submitted, pool.succeeded,
        pool.failed, pool.cancelled, pool.stolen);
    add(body, size, len,
        "  \"latency\": {\"timed\": %s, \"tasks\": %" PRIu64 ", "
        "\"wait_ns\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64
        ", \"max\": %" PRIu64 "}, "
        "\"run_ns\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64
        ", \"max\": %" PRIu64 "}}\n}\n",
        s->timed ? "true" : "false", latency.tasks, latency.wait_p50_ns,
        latency.wait_p99_ns, latency.wait_max_ns, latency.run_p50_ns,
        latency.run_p99_ns, latency.run_max_ns);
    return *len < size ? 0 : ENOBUFS;
}

/* Answers /stats, on the loop: reading the counters costs the pool nothing. */
static void
stats_answer(struct server *s, struct conn *c)
{
    char body[BODY_MAX];
    size_t len;
    int err = stats_write(s, body, sizeof(body), &len);

    if (err != 0)
        respond(s, c, 500, "stats: %s\n", crew_strerror(err));
    else
        answer(s, c, 200, "application/json", body, len);
}

/* ------------------------------------------------------------------ */
/* Serving                                                            */
/* ------------------------------------------------------------------ */

/*
 * Whether the target [target, target + len) is `path`, alone or with a
 * query, which *query then points at (after the '?').
 */
static bool
target_is(const char *target, size_t len, const char *path, const char **query,
          size_t *query_len)
{
    size_t n = strlen(path);

    if (len < n || memcmp(target, path, n) != 0 ||
        (len > n && target[n] != '?'))
        return false;
    *query = target + n + (len > n);
    *query_len = len > n ? len - n - 1 : 0;
    return true;
}

/* Answers, or starts answering, one request of c's. */
static void
client_serve(struct server *s, struct conn *c, const struct request *req)
{
    const char *target = req->target, *query;
    size_t len = req->target_len, query_len;
    uint64_t n = 0, seed = 0, ms = 0;

    c->close_after = !req->keep_alive;
    if (s->verbose)
        printf("%.*s %.*s\n", (int)req->method_len, req->method, (int)len,
               target);
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0) {
        respond(s, c, 405, "only GET is served\n");
    } else if (len == 5 && memcmp(target, "/ping", 5) == 0) {
        respond(s, c, 200, "pong\n");
    } else if (len == 6 && memcmp(target, "/stats", 6) == 0) {
        stats_answer(s, c);
    } else if (target_is(target, len, "/work", &query, &query_len)) {
        if (query_number(query, query_len, "n", &n) != 1 ||
            query_number(query, query_len, "seed", &seed) < 0) {
            respond(s, c, 400, "usage: /work?n=ROUNDS[&seed=SEED]\n");
        } else if (s->pool != NULL) {
            c->job = (struct job){.seed = seed, .rounds = n};
            job_submit(s, c);
        } else {
            char why[128];
            uint64_t digest;

            if (work_digest(seed, n, &digest, why, sizeof(why)) == 0)
                respond(s, c, 200, "%016" PRIx64 "\n", digest);
            else
                respond(s, c, 500, "%s\n", why);
        }
    } else if (target_is(target, len, "/slow", &query, &query_len)) {
        if (query_number(query, query_len, "ms", &ms) != 1 ||
            ms > SLOW_MAX_MS) {
            respond(s, c, 400, "usage: /slow?ms=0..%d\n", SLOW_MAX_MS);
        } else if (s->pool != NULL) {
            c->job = (struct job){.slow = true, .ms = ms};
            job_submit(s, c);
        } else {
            sleep_ms(ms);
            respond(s, c, 200, "slept %" PRIu64 " ms\n", ms);
        }
    } else {
        respond(s, c, 404, "no such page\n");
    }
    if (s->verbose)
        fflush(stdout);
}

/*
 * Takes the request at the head of c's input and answers or starts it.
 * Returns false if no whole request is there.
 */
static bool
client_next(struct server *s, struct conn *c)
{
    size_t len = request_length(c->in, c->in_len);
    struct request req;
    int status;

    if (len == 0) {
        if (c->in_len < sizeof(c->in))
            return false;
        c->close_after = true;
        s->requests++;
        respond(s, c, 431, "request over %d bytes\n", REQUEST_MAX);
        c->in_len = 0;
        return true;
    }
    s->requests++;
    status = request_parse(c->in, len, &req);
    if (status != 0) {
        /* What follows a request we could not read cannot be trusted. */
        c->close_after = true;
        respond(s, c, status, "malformed request\n");
    } else {
        client_serve(s, c, &req); /* copies what it needs from c->in */
    }
    c->in_len -= len;
    memmove(c->in, c->in + len, c->in_len);
    return true;
}

/*
 * Moves c on as far as it goes without blocking: writes the pending
 * answer, answers the requests read, and sets the interest for what it
 * waits for next. May close, and free, c.
 */
static void
client_run(struct server *s, struct conn *c)
{
    for (;;) {
        uint32_t want;

        if (c->out_len > 0) {
            int written = client_write(c);
            if (written < 0)
                break;
            if (written == 0) {
                want = EPOLLOUT;
                goto wait;
            }
        }
        if (c->future != NULL) {
            want = 0; /* until the inbox delivers: read nothing meanwhile */
            goto wait;
        }
        if (c->close_after)
            break;
        if (!client_next(s, c)) {
            if (c->eof || s->draining)
                break;
            want = EPOLLIN;
            goto wait;
        }
        continue;
wait:
        if (conn_want(s, c, want) != 0)
            break;
        return;
    }
    conn_close(s, c);
}

static void
client_event(struct server *s, struct conn *c, uint32_t events)
{
    if (c->fd < 0) /* closed earlier in this batch */
        return;
    /*
     * Both directions are gone (or the client reset): nothing can be
     * answered, and level-triggered epoll would report it again and again.
     */
    if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
        conn_close(s, c);
        return;
    }
    if ((events & EPOLLIN) != 0 && client_read(c) != 0) {
        conn_close(s, c);
        return;
    }
    client_run(s, c);
}

/* ------------------------------------------------------------------ */
/* Draining                                                           */
/* ------------------------------------------------------------------ */

static void
drain_start(struct server *s)
{
    struct signalfd_siginfo info;

    while (read(s->signals.fd, &info, sizeof(info)) == sizeof(info))
        continue;
    if (s->draining) {
        /* A second signal: stop waiting for slow readers. */
        s->drain_deadline = (struct timespec){0};
        return;
    }
    s->draining = true;
    close(s->listener.fd);
    s->listener.fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &s->drain_deadline);
    s->drain_deadline.tv_sec += DRAIN_MS / 1000;
    /* Idle connections close; the others close once answered. */
    for (struct conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        client_run(s, c);
    }
}

/* Milliseconds until the drain deadline, 0 once it has passed. */
static int
drain_wait_ms(const struct server *s)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(s->drain_deadline.tv_sec - now.tv_sec) * 1000 +
         (s->drain_deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? (int)ms : 0;
}

/* ------------------------------------------------------------------ */
/* Setting up                                                         */
/* ------------------------------------------------------------------ */

static int
endpoint_add(struct server *s, struct endpoint *e)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = e};

    return epoll_ctl(s->epoll, EPOLL_CTL_ADD, e->fd, &ev);
}

static int
listener_open(struct server *s, unsigned port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    s->listener = (struct endpoint){SOURCE_LISTENER, fd};
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0 ||
        endpoint_add(s, &s->listener) != 0)
        return -1;
    printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    return fflush(stdout) == 0 ? 0 : -1;
}

/*
 * SIGINT and SIGTERM are read from a descriptor, on the loop, instead of
 * interrupting it; the pool's workers block every signal themselves.
 */
static int
signals_open(struct server *s)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    s->signals = (struct endpoint){
        SOURCE_SIGNALS, signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)};
    return s->signals.fd >= 0 ? endpoint_add(s, &s->signals) : -1;
}

/* Parses a decimal option argument in [min, max]; -1 if it is not one. */
static long
option_number(const char *text, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

static int
usage(void)
{
    fputs("usage: server [-p PORT] [-t THREADS] [-i] [-l] [-T FILE] [-v]\n",
          stderr);
    return 2;
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */
/* ------------------------------------------------------------------ */

static int
serve(struct server *s)
{
    struct epoll_event events[EVENTS_MAX];

    while (!s->draining || s->conns != NULL || s->jobs > 0) {
        int timeout = -1;
        int n;

        if (s->draining && s->conns != NULL) {
            timeout = drain_wait_ms(s);
            if (timeout == 0) {
                while (s->conns != NULL)
                    conn_close(s, s->conns);
                conns_free_closed(s);
                continue;
            }
        }
        n = epoll_wait(s->epoll, events, EVENTS_MAX, timeout);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "server: epoll_wait: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            enum source *source = events[i].data.ptr;

            switch (*source) {
            case SOURCE_LISTENER:
                listener_accept(s);
                break;
            case SOURCE_SIGNALS:
                drain_start(s);
                break;
            case SOURCE_INBOX:
                deliveries_take(s);
                break;
            case SOURCE_CLIENT:
                client_event(s, (struct conn *)source, events[i].events);
                break;
            }
        }
        conns_free_closed(s);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct server s = {.epoll = -1,
                       .listener = {SOURCE_LISTENER, -1},
                       .signals = {SOURCE_SIGNALS, -1},
                       .deliveries = {SOURCE_INBOX, -1},
                       .reserve = -1};
    crew_pool_options options = {.name = "server"};
    bool inline_work = false, time_tasks = false;
    const char *trace_path = NULL;
    FILE *trace = NULL;
    long port = 8080, threads = 0;
    int opt, err, status = 1;

    while ((opt = getopt(argc, argv, "p:t:ilT:v")) != -1) {
        switch (opt) {
        case 'p':
            if ((port = option_number(optarg, 0, 65535)) < 0)
                return usage();
            break;
        case 't':
            if ((threads = option_number(optarg, 1, 1024)) < 0)
                return usage();
            break;
        case 'i':
            inline_work = true;
            break;
        case 'l':
            time_tasks = true;
            break;
        case 'T':
            trace_path = optarg;
            time_tasks = true;
            break;
        case 'v':
            s.verbose = true;
            break;
        default:
            return usage();
        }
    }
    /* Inline, no task runs: there is nothing to time. */
    if (optind != argc || (inline_work && time_tasks))
        return usage();

    s.epoll = epoll_create1(EPOLL_CLOEXEC);
    s.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s.epoll < 0 || s.reserve < 0 || signals_open(&s) != 0) {
        fprintf(stderr, "server: setting up: %s\n", strerror(errno));
        goto out;
    }
    if (trace_path != NULL && (trace = fopen(trace_path, "w")) == NULL) {
        fprintf(stderr, "server: %s: %s\n", trace_path, strerror(errno));
        goto out;
    }
    options.threads = (unsigned)threads;
    if (!inline_work) {
        err = crew_pool_create(&s.pool, &options);
        if (err == 0)
            err = crew_inbox_create(&s.inbox);
        if (err == 0)
            err = crew_pool_watchdog(s.pool, (uint64_t)STUCK_MS * 1000000,
                                     stuck_log, NULL);
        /* -l reads only the latency figures: one record a thread will do. */
        if (err == 0 && time_tasks)
            err = crew_trace_start(s.pool, trace != NULL ? TRACE_EVENTS : 1);
        if (err != 0) {
            fprintf(stderr, "server: %s\n", crew_strerror(err));
            goto out;
        }
        s.timed = time_tasks;
        s.deliveries.fd = crew_inbox_fd(s.inbox);
        if (endpoint_add(&s, &s.deliveries) != 0) {
            fprintf(stderr, "server: epoll: %s\n", strerror(errno));
            goto out;
        }
    }
    if (listener_open(&s, (unsigned)port) != 0) {
        fprintf(stderr, "server: 127.0.0.1:%ld: %s\n", port, strerror(errno));
        goto out;
    }
    if (serve(&s) == 0)
        status = 0;
out:
    while (s.conns != NULL)
        conn_close(&s, s.conns);
    /*
     * After a drain every task has ended: the trace holds them all. After
     * an error, tasks still running are left out of it.
     */
    if (s.timed && (err = crew_trace_stop(s.pool, trace)) != 0) {
        fprintf(stderr, "server: trace: %s\n", crew_strerror(err));
        status = 1;
    }
    if (trace != NULL && fclose(trace) != 0) {
        fprintf(stderr, "server: %s: %s\n", trace_path, strerror(errno));
        status = 1;
    }
    /*
     * crew_pool_destroy removes the watchdog first, joining its thread:
     * nothing is logged after it starts. After an error, jobs may still
     * run: its drain waits for them, and crew_inbox_destroy then frees
     * their deliveries; their connections, kept for the task to write
     * into, go with them.
     */
    crew_pool_destroy(s.pool);
    if (s.jobs > 0)
        deliveries_take(&s);
    conns_free_closed(&s);
    crew_inbox_destroy(s.inbox);
    if (s.reserve >= 0)
        close(s.reserve);
    if (s.listener.fd >= 0)
        close(s.listener.fd);
    if (s.signals.fd >= 0)
        close(s.signals.fd);
    if (s.epoll >= 0)
        close(s.epoll);
    return status;
}
