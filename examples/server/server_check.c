/*
 * server_check: the test of the server example.
 *
 *     server_check PATH_TO_SERVER
 *
 * Starts `server -p 0 -t 2 -v -T FILE`, reads the port it prints and the
 * requests it logs, and checks over 127.0.0.1:
 *   - /ping, and /work digests against work_digest() computed here;
 *   - a task's failure as a 500 carrying the task's message; 400, 404,
 *     405 and 431 for what the server refuses;
 *   - keep-alive, HTTP/1.0 and "Connection: close";
 *   - pipelined requests answered in order, a slow one first;
 *   - clients resetting their connections with work in flight, after
 *     which the server still answers;
 *   - CLIENTS threads of ROUNDS requests each at once, every answer
 *     checked;
 *   - /stats: a JSON object (parsed by cJSON) with every counter, their
 *     values against the requests made, and the tasks timed;
 *   - SIGTERM with work in flight: that work is answered and its
 *     connections closed, an idle connection is closed, and the server
 *     exits 0 (under AddressSanitizer, also without a leak); the trace
 *     it wrote to FILE is JSON with an event for each task's run, named;
 *   - a second server, with -l: a task sleeping 2.5 s (/slow) is logged
 *     by the watchdog, once, by its name, and /stats timed it;
 *   - a third, idle and not timing tasks, reports no task timed in
 *     /stats, cancels a /slow task whose client resets, and exits 0 when
 *     stopped by SIGINT;
 *   - a fourth, with -i, computes /work on its loop and reports no pool.
 * The servers' standard error is copied to this program's.
 * Prints each failed check; exits 0 when every check passed, 1 otherwise.
 * A watchdog turns a hang into a failure after WATCHDOG_S seconds.
 */
#include "work.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_S 240
#define CLIENTS    16
#define ROUNDS     40

static atomic_int failures;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (!(cond))                                    \
            check_failed(__LINE__, #cond, __VA_ARGS__); \
    } while (0)

static void
check_failed(int line, const char *cond, const char *format, ...)
{
    va_list ap;

    flockfile(stderr);
    fprintf(stderr, "server_check:%d: failed: %s: ", line, cond);
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    atomic_fetch_add(&failures, 1);
}

/* ------------------------------------------------------------------ */
/* The server process and its log                                     */
/* ------------------------------------------------------------------ */

/* What a server printed on one of its streams. */
struct log {
    FILE *in;
    bool echo; /* also copied, line by line, to our standard error */
    pthread_t reader;
    struct server *server; /* whose lock guards the fields below */
    char *text;            /* every line read */
    size_t len;
    bool done; /* the end of the stream was read */
};

struct server {
    pid_t pid;
    unsigned port;
    pthread_mutex_t lock;
    pthread_cond_t grew; /* a log grew, or ended */
    struct log out;      /* standard output, after "listening on" */
    struct log err;      /* standard error, echoed (sanitizers report there) */
};

/* The server being tested, for the watchdog to kill. */
static volatile sig_atomic_t watched_pid;

static void
watchdog(int sig)
{
    static const char msg[] = "server_check: watchdog: a check hung\n";

    (void)sig;
    if (watched_pid > 0)
        kill((pid_t)watched_pid, SIGKILL);
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(1);
}

static void *
log_read(void *arg)
{
    struct log *log = arg;
    struct server *s = log->server;
    char line[1024];

    while (fgets(line, sizeof(line), log->in) != NULL) {
        size_t n = strlen(line);
        if (log->echo)
            fputs(line, stderr);
        pthread_mutex_lock(&s->lock);
        char *grown = realloc(log->text, log->len + n + 1);
        if (grown != NULL) {
            memcpy(grown + log->len, line, n + 1);
            log->text = grown;
            log->len += n;
        }
        pthread_cond_broadcast(&s->grew);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    log->done = true;
    pthread_cond_broadcast(&s->grew);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Waits until the server has logged `text`; false if it never does. */
static bool
log_wait(struct server *s, const char *text)
{
    struct timespec deadline;
    bool found = false;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        found = s->out.text != NULL && strstr(s->out.text, text) != NULL;
        if (found || s->out.done ||
            pthread_cond_timedwait(&s->grew, &s->lock, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* Kills a server that did not start; false. */
static bool
server_abandon(struct server *s)
{
    fprintf(stderr, "server_check: the server did not start\n");
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    watched_pid = 0;
    return false;
}

/*
 * Starts the server at `path` with the options every check uses, then
 * those given, up to a NULL.
 */
static bool server_start(struct server *s, const char *path, ...)
    __attribute__((sentinel));

static bool
server_start(struct server *s, const char *path, ...)
{
    const char *args[16] = {path, "-p", "0", "-t", "2", "-v"};
    size_t n = 6;
    va_list ap;
    int out[2], err[2];
    char line[128];

    va_start(ap, path);
    while (n < sizeof(args) / sizeof(args[0]) - 1 &&
           (args[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    args[n] = NULL;
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->grew, NULL);
    s->out.server = s->err.server = s;
    s->err.echo = true;
    if (pipe(out) != 0 || pipe(err) != 0)
        return false;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        execv(path, (char *const *)args);
        perror(path);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (s->pid < 0) {
        close(out[0]);
        close(err[0]);
        return false;
    }
    watched_pid = s->pid;
    s->out.in = fdopen(out[0], "r");
    s->err.in = fdopen(err[0], "r");
    /* Standard error first: what a server that fails to start says. */
    if (s->out.in == NULL || s->err.in == NULL ||
        pthread_create(&s->err.reader, NULL, log_read, &s->err) != 0)
        return server_abandon(s);
    if (fgets(line, sizeof(line), s->out.in) == NULL ||
        sscanf(line, "listening on 127.0.0.1:%u", &s->port) != 1) {
        server_abandon(s);
        pthread_join(s->err.reader, NULL);
        return false;
    }
    if (pthread_create(&s->out.reader, NULL, log_read, &s->out) != 0)
        return server_abandon(s);
    return true;
}

/*
 * Signals the server, then returns its exit status, or -1 if it crashed.
 * Its logs are whole then, until server_free().
 */
static int
server_stop(struct server *s, int sig)
{
    int status;

    kill(s->pid, sig);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        continue;
    watched_pid = 0;
    pthread_join(s->out.reader, NULL);
    pthread_join(s->err.reader, NULL);
    fclose(s->out.in);
    fclose(s->err.in);
    if (WIFSIGNALED(status))
        fprintf(stderr, "server_check: the server died of signal %d\n",
                WTERMSIG(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
server_free(struct server *s)
{
    free(s->out.text);
    free(s->err.text);
    pthread_cond_destroy(&s->grew);
    pthread_mutex_destroy(&s->lock);
}

/* ------------------------------------------------------------------ */
/* HTTP, the client's side                                            */
/* ------------------------------------------------------------------ */

struct client {
    int fd;
    size_t len; /* bytes read and not parsed yet */
    char buf[4096];
};

struct response {
    int status;
    bool close;    /* "Connection: close" */
    char type[64]; /* Content-Type */
    char body[2048];
};

static bool
client_open(struct client *c, unsigned port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 60};

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    /* A server that never answers fails the check instead of hanging. */
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) !=
            0 ||
        connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(c->fd);
        return false;
    }
    return true;
}

/* Closes with a reset instead of an orderly shutdown. */
static void
client_reset(struct client *c)
{
    struct linger linger = {.l_onoff = 1, .l_linger = 0};

    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    close(c->fd);
}

static bool
client_send(struct client *c, const char *text)
{
    size_t len = strlen(text), sent = 0;

    while (sent < len) {
        ssize_t n = send(c->fd, text + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0)
            sent += (size_t)n;
    }
    return true;
}

/* Reads more; false at the end of the stream, an error, or a timeout. */
static bool
client_fill(struct client *c)
{
    ssize_t n;

    if (c->len == sizeof(c->buf))
        return false;
    do
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

/* Whether the server closed the connection (without sending more). */
static bool
client_closed(struct client *c)
{
    return c->len == 0 && !client_fill(c);
}

/* Reads one response; false if none came whole. */
static bool
client_receive(struct client *c, struct response *r)
{
    char *end, *header, *length, *type;
    size_t head, body;

    for (;;) {
        c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (end != NULL)
            break;
        if (!client_fill(c))
            return false;
    }
    head = (size_t)(end + 4 - c->buf);
    *end = '\0';
    if (sscanf(c->buf, "HTTP/1.1 %d ", &r->status) != 1)
        return false;
    length = strstr(c->buf, "Content-Length: ");
    header = strstr(c->buf, "Connection: ");
    type = strstr(c->buf, "Content-Type: ");
    if (length == NULL || header == NULL || type == NULL)
        return false;
    body = strtoul(length + 16, NULL, 10);
    r->close = strncmp(header + 12, "close", 5) == 0;
    type += 14;
    snprintf(r->type, sizeof(r->type), "%.*s", (int)strcspn(type, "\r"), type);
    if (body >= sizeof(r->body) || head + body > sizeof(c->buf))
        return false;
    while (c->len < head + body) {
        if (!client_fill(c))
            return false;
    }
    memcpy(r->body, c->buf + head, body);
    r->body[body] = '\0';
    c->len -= head + body;
    memmove(c->buf, c->buf + head + body, c->len);
    return true;
}

/* Sends `request` on a new connection and reads the response. */
static bool
exchange(unsigned port, const char *request, struct response *r,
         bool *closed_after)
{
    struct client c;
    bool ok;

    if (!client_open(&c, port))
        return false;
    ok = client_send(&c, request) && client_receive(&c, r);
    if (ok && closed_after != NULL)
        *closed_after = client_closed(&c);
    close(c.fd);
    return ok;
}

static bool
get(unsigned port, const char *target, struct response *r)
{
    char request[256];

    snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
             target);
    return exchange(port, request, r, NULL);
}

/*
 * The body the server must answer /work?n=rounds&seed=seed with (for
 * rounds in range; else the reason they are not, which no answer equals).
 */
static void
expected_digest(uint64_t seed, uint64_t rounds, char *body, size_t size)
{
    uint64_t digest;

    if (work_digest(seed, rounds, &digest, body, size) == 0)
        snprintf(body, size, "%016" PRIx64 "\n", digest);
}

/* ------------------------------------------------------------------ */
/* The checks                                                         */
/* ------------------------------------------------------------------ */

static void
check_routes(unsigned port)
{
    struct response r;
    char want[64];
    bool closed;

    CHECK(get(port, "/ping", &r), "/ping: no response");
    CHECK(r.status == 200 && strcmp(r.body, "pong\n") == 0 && !r.close,
          "/ping: %d %s", r.status, r.body);

    expected_digest(7, 10, want, sizeof(want));
    CHECK(get(port, "/work?n=10&seed=7", &r), "/work: no response");
    CHECK(r.status == 200 && strcmp(r.body, want) == 0,
          "/work?n=10&seed=7: %d %s, expected %s", r.status, r.body, want);
    expected_digest(0, 3, want, sizeof(want));
    CHECK(get(port, "/work?n=3", &r), "/work: no response");
    CHECK(r.status == 200 && strcmp(r.body, want) == 0,
          "/work?n=3: %d %s, expected %s", r.status, r.body, want);

    /* Out of range is the task's failure, answered with its message. */
    CHECK(get(port, "/work?n=0", &r), "/work?n=0: no response");
    CHECK(r.status == 500 &&
              strcmp(r.body, "n=0: rounds must be 1 to 100000\n") == 0,
          "/work?n=0: %d %s", r.status, r.body);
    CHECK(get(port, "/work?seed=1&n=100001", &r), "n=100001: no response");
    CHECK(r.status == 500 && strstr(r.body, "n=100001: rounds") == r.body,
          "/work?n=100001: %d %s", r.status, r.body);

    CHECK(get(port, "/work", &r) && r.status == 400, "/work: %d", r.status);
    CHECK(get(port, "/work?n=1x", &r) && r.status == 400, "n=1x: %d", r.status);
    CHECK(get(port, "/work?n=99999999999999999999", &r) && r.status == 400,
          "n over 2^64: %d", r.status);
    CHECK(get(port, "/work?n=2&seed=", &r) && r.status == 400, "empty seed: %d",
          r.status);
    CHECK(get(port, "/slow", &r) && r.status == 400, "/slow: %d", r.status);
    CHECK(get(port, "/slow?ms=10001", &r) && r.status == 400,
          "/slow?ms=10001: %d", r.status);
    CHECK(get(port, "/workshop", &r) && r.status == 404, "/workshop: %d",
          r.status);
    CHECK(get(port, "/", &r) && r.status == 404, "/: %d", r.status);
    CHECK(exchange(port, "POST /ping HTTP/1.1\r\nHost: t\r\n\r\n", &r, NULL) &&
              r.status == 405 && !r.close,
          "POST: %d", r.status);

    /* Refused outright: answered, then the connection closes. */
    CHECK(exchange(port, "nonsense\r\n\r\n", &r, &closed) && r.status == 400 &&
              r.close && closed,
          "malformed: %d", r.status);
    CHECK(exchange(port, "GET /ping HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                   &r, &closed) &&
              r.status == 400 && closed,
          "a body: %d", r.status);
    CHECK(exchange(port, "GET /ping HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r,
                   NULL) &&
              r.status == 200,
          "Content-Length 0: %d", r.status);

    /*
     * Exactly the server's limit, unfinished: it reads all of it before
     * it answers, so it closes with nothing unread (which would reset the
     * connection, and might discard the answer before it is read).
     */
    static char big[8192 + 1];
    memcpy(big, "GET /ping HTTP/1.1\r\nX: ", 23);
    memset(big + 23, 'x', sizeof(big) - 24);
    CHECK(exchange(port, big, &r, &closed) && r.status == 431 && closed,
          "oversized: %d", r.status);
}

static void
check_connections(unsigned port)
{
    struct client c;
    struct response r;
    char want[3][64];
    bool closed;

    CHECK(client_open(&c, port), "connect");
    for (int i = 0; i < 3; i++) {
        CHECK(client_send(&c, "GET /ping HTTP/1.1\r\n\r\n") &&
                  client_receive(&c, &r) && r.status == 200 && !r.close,
              "keep-alive request %d: %d", i, r.status);
    }
    close(c.fd);

    CHECK(exchange(port, "GET /ping HTTP/1.0\r\n\r\n", &r, &closed) &&
              r.status == 200 && r.close && closed,
          "HTTP/1.0: %d close=%d", r.status, r.close);
    CHECK(exchange(port, "GET /ping HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                   &r, NULL) &&
              r.status == 200 && !r.close,
          "HTTP/1.0 keep-alive: %d close=%d", r.status, r.close);
    CHECK(exchange(port, "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n", &r,
                   &closed) &&
              r.status == 200 && r.close && closed,
          "Connection: close: %d close=%d", r.status, r.close);

    /* Pipelined: the slow request's answer still comes first. */
    expected_digest(1, 400, want[0], sizeof(want[0]));
    expected_digest(2, 1, want[2], sizeof(want[2]));
    CHECK(client_open(&c, port), "connect");
    CHECK(client_send(&c, "GET /work?n=400&seed=1 HTTP/1.1\r\n\r\n"
                          "GET /ping HTTP/1.1\r\n\r\n"
                          "GET /work?n=1&seed=2 HTTP/1.1\r\n\r\n"),
          "send");
    CHECK(client_receive(&c, &r) && strcmp(r.body, want[0]) == 0,
          "pipelined 1: %s", r.body);
    CHECK(client_receive(&c, &r) && strcmp(r.body, "pong\n") == 0,
          "pipelined 2: %s", r.body);
    CHECK(client_receive(&c, &r) && strcmp(r.body, want[2]) == 0,
          "pipelined 3: %s", r.body);
    close(c.fd);
}

/*
 * Clients that leave while their work runs or waits on the pool: the
 * server cancels the work and frees the connection when the future is
 * delivered (a leak there fails the check under ASan and valgrind). Each
 * job takes about 100 ms, the resets come microseconds after the last
 * request is read: the jobs are still in flight then, unless the loop is
 * starved (valgrind runs one thread at a time), when some are answered
 * first and the path is only partly taken.
 */
static void
check_hang_ups(struct server *s)
{
    struct client c[6];
    struct response r;
    char want[64];

    for (int i = 0; i < 6; i++) {
        char request[96];
        snprintf(request, sizeof(request),
                 "GET /work?n=5000&seed=%d HTTP/1.1\r\n\r\n", 500 + i);
        CHECK(client_open(&c[i], s->port) && client_send(&c[i], request),
              "hang-up client %d", i);
        snprintf(request, sizeof(request), "GET /work?n=5000&seed=%d", 500 + i);
        CHECK(log_wait(s, request), "the server never read %s", request);
    }
    for (int i = 0; i < 6; i++) {
        if (i % 2 == 0)
            client_reset(&c[i]);
        else
            close(c[i].fd);
    }
    expected_digest(3, 5, want, sizeof(want));
    CHECK(get(s->port, "/work?n=5&seed=3", &r) && strcmp(r.body, want) == 0,
          "after hang-ups: %d %s", r.status, r.body);
}

static unsigned load_port;
static atomic_int load_answered; /* answers checked, /ping and /work */
static atomic_int load_worked;   /* of them, /work */

static void *
load_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    struct client c;
    struct response r;
    char request[128], want[64];

    if (!client_open(&c, load_port)) {
        CHECK(false, "client %d: connect", id);
        return NULL;
    }
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t rounds = 1 + (uint64_t)(i * 7 + id) % 60;
        uint64_t seed = (uint64_t)id * 1000 + (uint64_t)i;

        if (i % 3 == 2) {
            snprintf(request, sizeof(request), "GET /ping HTTP/1.1\r\n\r\n");
            snprintf(want, sizeof(want), "pong\n");
        } else {
            snprintf(request, sizeof(request),
                     "GET /work?n=%" PRIu64 "&seed=%" PRIu64
                     " HTTP/1.1\r\n\r\n",
                     rounds, seed);
            expected_digest(seed, rounds, want, sizeof(want));
        }
        if (!client_send(&c, request) || !client_receive(&c, &r)) {
            CHECK(false, "client %d request %d: no response", id, i);
            break;
        }
        CHECK(r.status == 200 && strcmp(r.body, want) == 0,
              "client %d request %d: %d %s, expected %s", id, i, r.status,
              r.body, want);
        if (r.status == 200 && strcmp(r.body, want) == 0) {
            atomic_fetch_add(&load_answered, 1);
            if (i % 3 != 2)
                atomic_fetch_add(&load_worked, 1);
        }
    }
    close(c.fd);
    return NULL;
}

static void
check_load(unsigned port)
{
    pthread_t threads[CLIENTS];
    int started = 0;

    load_port = port;
    for (; started < CLIENTS; started++) {
        if (pthread_create(&threads[started], NULL, load_client,
                           (void *)(intptr_t)started) != 0)
            break;
    }
    CHECK(started == CLIENTS, "started %d clients", started);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* ------------------------------------------------------------------ */
/* /stats and the trace, read by cJSON                                */
/* ------------------------------------------------------------------ */

/* The statuses /stats counts answers of, in its order. */
static const char *const statuses[] = {"200", "400", "404", "405",
                                       "431", "500", "503"};
#define STATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* What /stats answered. */
struct stats {
    uint64_t accepted, connections, requests, jobs;
    uint64_t answers[STATUSES];
    bool pool; /* false: "pool" and "latency" were null */
    uint64_t threads, busy, queued, submitted, succeeded, failed, cancelled,
        stolen;
    bool timed;
    uint64_t tasks, wait[3], run[3]; /* p50, p99, max */
};

/*
 * The member `name` of `object`, which must be a whole number of at least
 * 0 (a failed check if it is not, naming it in `where`).
 */
static uint64_t
json_count(const cJSON *object, const char *where, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    bool ok = cJSON_IsNumber(item) && item->valuedouble >= 0 &&
              item->valuedouble < 0x1p63 &&
              (double)(uint64_t)item->valuedouble == item->valuedouble;

    CHECK(ok, "%s: \"%s\" is not a count", where, name);
    return ok ? (uint64_t)item->valuedouble : 0;
}

/* A percentile object of "latency": p50, p99 and max, in that order. */
static void
json_percentiles(const cJSON *latency, const char *name, uint64_t out[3])
{
    const cJSON *object = cJSON_GetObjectItemCaseSensitive(latency, name);

    CHECK(cJSON_IsObject(object), "/stats: latency.%s is not an object", name);
    out[0] = json_count(object, name, "p50");
    out[1] = json_count(object, name, "p99");
    out[2] = json_count(object, name, "max");
    CHECK(out[0] <= out[1] && out[1] <= out[2],
          "/stats: %s: p50 %" PRIu64 ", p99 %" PRIu64 ", max %" PRIu64, name,
          out[0], out[1], out[2]);
}

/*
 * Asks /stats, checks that it is one JSON object with every member of the
 * right type, and fills st; false if there was nothing to read.
 */
static bool
stats_get(unsigned port, struct stats *st)
{
    struct response r;
    const cJSON *server, *answers, *pool, *latency, *timed;
    cJSON *root;

    memset(st, 0, sizeof(*st));
    if (!get(port, "/stats", &r)) {
        CHECK(false, "/stats: no response");
        return false;
    }
    CHECK(r.status == 200 && strcmp(r.type, "application/json") == 0,
          "/stats: %d, %s", r.status, r.type);
    /* The whole body is one value: nothing but blanks may follow it. */
    root = cJSON_ParseWithOpts(r.body, NULL, true);
    if (!cJSON_IsObject(root)) {
        CHECK(false, "/stats: not a JSON object: %s", r.body);
        cJSON_Delete(root);
        return false;
    }
    server = cJSON_GetObjectItemCaseSensitive(root, "server");
    answers = cJSON_GetObjectItemCaseSensitive(server, "answers");
    CHECK(cJSON_IsObject(server) && cJSON_IsObject(answers),
          "/stats: no server object with answers: %s", r.body);
    st->accepted = json_count(server, "server", "accepted");
    st->connections = json_count(server, "server", "connections");
    st->requests = json_count(server, "server", "requests");
    st->jobs = json_count(server, "server", "jobs");
    for (size_t i = 0; i < STATUSES; i++)
        st->answers[i] = json_count(answers, "answers", statuses[i]);

    pool = cJSON_GetObjectItemCaseSensitive(root, "pool");
    latency = cJSON_GetObjectItemCaseSensitive(root, "latency");
    st->pool = cJSON_IsObject(pool);
    if (!st->pool) {
        CHECK(cJSON_IsNull(pool) && cJSON_IsNull(latency),
              "/stats: pool and latency neither objects nor null: %s", r.body);
        cJSON_Delete(root);
        return true;
    }
    st->threads = json_count(pool, "pool", "threads");
    st->busy = json_count(pool, "pool", "busy");
    st->queued = json_count(pool, "pool", "queued");
    st->submitted = json_count(pool, "pool", "submitted");
    st->succeeded = json_count(pool, "pool", "succeeded");
    st->failed = json_count(pool, "pool", "failed");
    st->cancelled = json_count(pool, "pool", "cancelled");
    st->stolen = json_count(pool, "pool", "stolen");
    timed = cJSON_GetObjectItemCaseSensitive(latency, "timed");
    CHECK(cJSON_IsObject(latency) && cJSON_IsBool(timed),
          "/stats: no latency object saying whether tasks are timed: %s",
          r.body);
    st->timed = cJSON_IsTrue(timed);
    st->tasks = json_count(latency, "latency", "tasks");
    json_percentiles(latency, "wait_ns", st->wait);
    json_percentiles(latency, "run_ns", st->run);
    cJSON_Delete(root);
    return true;
}

/* The number of answers /stats counted with `status`. */
static uint64_t
answered(const struct stats *st, const char *status)
{
    for (size_t i = 0; i < STATUSES; i++) {
        if (strcmp(statuses[i], status) == 0)
            return st->answers[i];
    }
    return 0;
}

/*
 * After every check before it, on the server timing its tasks: the
 * counters against the requests those checks made.
 */
static void
check_stats(unsigned port)
{
    struct stats st;
    uint64_t answers = 0;

    if (!stats_get(port, &st))
        return;
    for (size_t i = 0; i < STATUSES; i++)
        answers += st.answers[i];
    /* This request is read, and not answered yet. */
    CHECK(st.requests >= answers + 1,
          "/stats: %" PRIu64 " requests, %" PRIu64 " answers", st.requests,
          answers);
    CHECK(st.accepted >= CLIENTS && st.connections >= 1,
          "/stats: %" PRIu64 " connections accepted, %" PRIu64 " open",
          st.accepted, st.connections);
    /* The refusals of check_routes(), exactly; 200 for all the load. */
    CHECK(answered(&st, "400") == 8 && answered(&st, "404") == 2 &&
              answered(&st, "405") == 1 && answered(&st, "431") == 1 &&
              answered(&st, "500") == 2 && answered(&st, "503") == 0,
          "/stats: refusals 400 %" PRIu64 ", 404 %" PRIu64 ", 405 %" PRIu64
          ", 431 %" PRIu64 ", 500 %" PRIu64 ", 503 %" PRIu64,
          answered(&st, "400"), answered(&st, "404"), answered(&st, "405"),
          answered(&st, "431"), answered(&st, "500"), answered(&st, "503"));
    CHECK(answered(&st, "200") >= (uint64_t)atomic_load(&load_answered),
          "/stats: %" PRIu64 " answers 200, the load alone had %d",
          answered(&st, "200"), atomic_load(&load_answered));

    CHECK(st.pool && st.threads == 2 && st.busy <= st.threads,
          "/stats: pool of %" PRIu64 ", %" PRIu64 " busy", st.threads, st.busy);
    CHECK(st.failed == 2, "/stats: %" PRIu64 " tasks failed, not 2", st.failed);
    CHECK(st.succeeded >= (uint64_t)atomic_load(&load_worked) &&
              st.submitted >= st.succeeded + st.failed + st.cancelled,
          "/stats: %" PRIu64 " submitted, %" PRIu64 " succeeded (the load "
          "alone: %d), %" PRIu64 " failed, %" PRIu64 " cancelled",
          st.submitted, st.succeeded, atomic_load(&load_worked), st.failed,
          st.cancelled);
    /* Timed from the start: every task that ran to an answer. */
    CHECK(st.timed && st.tasks >= st.succeeded + st.failed &&
              st.tasks <= st.submitted && st.run[2] > 0,
          "/stats: timed %d, %" PRIu64 " tasks timed, run max %" PRIu64 " ns",
          st.timed, st.tasks, st.run[2]);
}

/* Reads the whole file at path into a string; NULL if it cannot. */
static char *
file_read(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, size = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (size - len < 4096) {
            char *grown = realloc(text, size * 2 + 4096);
            if (grown == NULL)
                break;
            text = grown;
            size = size * 2 + 4096;
        }
        size_t n = fread(text + len, 1, size - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    if (text != NULL)
        text[len] = '\0';
    return text;
}

/*
 * The trace the first server wrote as it stopped: Chrome Trace Event JSON,
 * with an event for each /work task that ran, its function named (the
 * server exports its symbols): the two failures of check_routes(), and
 * successes.
 */
static void
check_trace(const char *path)
{
    char *text = file_read(path);
    cJSON *root = text != NULL ? cJSON_Parse(text) : NULL;
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    const cJSON *event;
    int succeeded = 0, failed = 0;

    CHECK(cJSON_IsArray(events), "the trace %s is not JSON with traceEvents",
          path);
    cJSON_ArrayForEach(event, events)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(event, "name");
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(event, "ph");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(event, "args");
        const cJSON *outcome =
            cJSON_GetObjectItemCaseSensitive(args, "outcome");

        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") != 0)
            continue;
        CHECK(cJSON_IsString(name) &&
                  strcmp(name->valuestring, "job_run") == 0 &&
                  cJSON_IsString(outcome),
              "trace: an event of %s",
              cJSON_IsString(name) ? name->valuestring : "no name");
        if (cJSON_IsString(outcome)) {
            succeeded += strcmp(outcome->valuestring, "succeeded") == 0;
            failed += strcmp(outcome->valuestring, "failed") == 0;
        }
    }
    CHECK(succeeded >= atomic_load(&load_worked) && failed == 2,
          "trace: %d tasks succeeded (the load alone: %d), %d failed",
          succeeded, atomic_load(&load_worked), failed);
    cJSON_Delete(root);
    free(text);
}

/*
 * Checks the form of each line the watchdog logged on the server's
 * standard error (whole: the server has stopped) and returns how many
 * there are; *named, how many name the function `fn`.
 */
static int
stuck_lines(const struct server *s, const char *fn, int *named)
{
    const char *text = s->err.text != NULL ? s->err.text : "";
    int lines = 0;

    *named = 0;
    for (const char *line = strstr(text, " stuck on worker "); line != NULL;
         line = strstr(line + 1, " stuck on worker ")) {
        const char *start = line;
        char name[64];
        unsigned worker;
        double seconds;

        while (start > text && start[-1] != '\n')
            start--;
        lines++;
        CHECK(sscanf(start, "server: task %63s stuck on worker %u for %lf s",
                     name, &worker, &seconds) == 3 &&
                  worker < 2 && seconds >= 1.0,
              "a watchdog line: %.*s", (int)strcspn(start, "\n"), start);
        *named += strcmp(name, fn) == 0;
    }
    return lines;
}

/*
 * The watchdog, on a server timing its tasks: a task sleeping 2.5 s is
 * logged once, by name, as stuck past 1 s; /stats timed it.
 */
static void
check_watchdog(struct server *s)
{
    struct response r;
    struct stats st;
    int lines, named;

    CHECK(get(s->port, "/slow?ms=2500", &r) && r.status == 200 &&
              strcmp(r.body, "slept 2500 ms\n") == 0,
          "/slow?ms=2500: %d %s", r.status, r.body);
    /* The maximum is exact, but a tick's rate is an estimate. */
    if (stats_get(s->port, &st))
        CHECK(st.timed && st.tasks == 1 && st.succeeded == 1 &&
                  st.run[2] >= 2400000000u,
              "/stats after /slow: %" PRIu64 " tasks timed, %" PRIu64
              " succeeded, run max %" PRIu64 " ns",
              st.tasks, st.succeeded, st.run[2]);
    CHECK(server_stop(s, SIGINT) == 0, "exit status after SIGINT");
    lines = stuck_lines(s, "slow_run", &named);
    CHECK(lines == 1 && named == 1,
          "%d watchdog lines, %d of slow_run; expected one:\n%s", lines, named,
          s->err.text != NULL ? s->err.text : "");
    server_free(s);
}

static bool
is_running(const struct stats *st)
{
    return st->busy == 1;
}

/*
 * Done with the job, and its outcome counted: a task cancelled in its
 * queue resolves at once, but is counted once a worker takes it out.
 */
static bool
is_done(const struct stats *st)
{
    return st->jobs == 0 && st->cancelled + st->succeeded == st->submitted;
}

/*
 * Asks /stats until `done` holds of what it answers, for 30 s at most;
 * false if it never did.
 */
static bool
stats_poll(unsigned port, struct stats *st, bool (*done)(const struct stats *))
{
    const struct timespec pause = {.tv_nsec = 20000000};
    struct timespec deadline, now;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 30;
    while (stats_get(port, st)) {
        if (done(st))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec)
            break;
        nanosleep(&pause, NULL);
    }
    return false;
}

/*
 * A /slow request whose client resets once its task runs is cancelled:
 * the task stops within a slice of its sleep, long before the 10 s it
 * asked for.
 */
static void
check_slow_hang_up(struct server *s)
{
    struct client c;
    struct stats st;

    CHECK(client_open(&c, s->port) &&
              client_send(&c, "GET /slow?ms=10000 HTTP/1.1\r\n\r\n"),
          "the /slow client");
    CHECK(stats_poll(s->port, &st, is_running), "/slow never ran");
    client_reset(&c);
    CHECK(stats_poll(s->port, &st, is_done) && st.cancelled == 1 &&
              st.succeeded == 0,
          "/slow hung up: %" PRIu64 " jobs, %" PRIu64 " submitted, %" PRIu64
          " cancelled, %" PRIu64 " succeeded",
          st.jobs, st.submitted, st.cancelled, st.succeeded);
}

/* SIGTERM with work in flight: answered, then a clean exit. */
static void
check_drain(struct server *s)
{
    struct client idle, busy[3];
    struct response r;
    char want[64];
    int status;

    CHECK(client_open(&idle, s->port), "connect");
    CHECK(client_send(&idle, "GET /ping HTTP/1.1\r\n\r\n") &&
              client_receive(&idle, &r),
          "idle client's first request");
    for (int i = 0; i < 3; i++) {
        char request[96];
        snprintf(request, sizeof(request),
                 "GET /work?n=5000&seed=%d HTTP/1.1\r\n\r\n", 900 + i);
        CHECK(client_open(&busy[i], s->port) && client_send(&busy[i], request),
              "drain client %d", i);
        snprintf(request, sizeof(request), "GET /work?n=5000&seed=%d", 900 + i);
        CHECK(log_wait(s, request), "the server never read %s", request);
    }
    status = server_stop(s, SIGTERM);
    for (int i = 0; i < 3; i++) {
        expected_digest(900 + (uint64_t)i, 5000, want, sizeof(want));
        /*
         * The answer says "Connection: close" if the drain began before
         * the work was done; a slow machine may finish the work first
         * (the server reads the signal on its loop, after the delivery).
         * Either way the connection must close once answered.
         */
        CHECK(client_receive(&busy[i], &r) && r.status == 200 &&
                  strcmp(r.body, want) == 0,
              "drained request %d: %d %s", i, r.status, r.body);
        CHECK(client_closed(&busy[i]), "drained connection %d left open", i);
        close(busy[i].fd);
    }
    CHECK(client_closed(&idle), "the idle connection was left open");
    close(idle.fd);
    CHECK(status == 0, "exit status %d after SIGTERM", status);
}

int
main(int argc, char **argv)
{
    struct server s;
    struct response r;
    struct stats st;
    char trace[64], want[64];
    int fd;

    if (argc != 2) {
        fprintf(stderr, "usage: server_check PATH_TO_SERVER\n");
        return 2;
    }
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG_S);

    snprintf(trace, sizeof(trace), "/tmp/server_check.XXXXXX");
    if ((fd = mkstemp(trace)) < 0) {
        perror("server_check: mkstemp");
        return 1;
    }
    close(fd);
    if (!server_start(&s, argv[1], "-T", trace, (char *)NULL)) {
        unlink(trace);
        return 1;
    }
    check_routes(s.port);
    check_connections(s.port);
    check_hang_ups(&s);
    check_load(s.port);
    check_stats(s.port);
    check_drain(&s);
    server_free(&s);
    check_trace(trace);
    unlink(trace);

    if (!server_start(&s, argv[1], "-l", (char *)NULL))
        return 1;
    check_watchdog(&s);

    /* Idle, not timing tasks. */
    if (!server_start(&s, argv[1], (char *)NULL))
        return 1;
    CHECK(get(s.port, "/ping", &r) && r.status == 200, "second server");
    if (stats_get(s.port, &st)) {
        CHECK(st.requests == 2 && answered(&st, "200") == 1 && st.accepted == 2,
              "idle /stats: %" PRIu64 " requests, %" PRIu64
              " answers 200, %" PRIu64 " connections",
              st.requests, answered(&st, "200"), st.accepted);
        CHECK(st.pool && st.submitted == 0 && !st.timed && st.tasks == 0 &&
                  st.wait[2] == 0 && st.run[2] == 0,
              "idle /stats: %" PRIu64 " submitted, timed %d, %" PRIu64
              " tasks timed",
              st.submitted, st.timed, st.tasks);
    }
    check_slow_hang_up(&s);
    CHECK(server_stop(&s, SIGINT) == 0, "exit status after SIGINT");
    server_free(&s);

    /* Inline: no pool to report. */
    if (!server_start(&s, argv[1], "-i", (char *)NULL))
        return 1;
    expected_digest(4, 3, want, sizeof(want));
    CHECK(get(s.port, "/work?n=3&seed=4", &r) && strcmp(r.body, want) == 0,
          "inline /work: %d %s", r.status, r.body);
    if (stats_get(s.port, &st))
        CHECK(!st.pool && answered(&st, "200") == 1,
              "inline /stats: pool %d, %" PRIu64 " answers 200", st.pool,
              answered(&st, "200"));
    CHECK(server_stop(&s, SIGTERM) == 0, "inline: exit status after SIGTERM");
    server_free(&s);

    if (atomic_load(&failures) != 0) {
        fprintf(stderr, "server_check: %d checks failed\n",
                atomic_load(&failures));
        return 1;
    }
    puts("server_check: every check passed");
    return 0;
}
