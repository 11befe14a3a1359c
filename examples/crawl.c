/*
 * crawl: the CRC-32 of every file under a directory, a task group a
 * directory.
 *
 *     crawl [-t SECONDS] [-s MILLISECONDS] DIR
 *
 * The member that lists a directory creates the directory's group, adds a
 * member per entry (a listing for a subdirectory, a checksum for anything
 * else) and waits for it. Created inside a member, the group is a child of
 * the member's group: cancelling a group cancels everything beneath it.
 * Each group runs LIMIT members at once and is CREW_GROUP_CANCEL_ON_FAILURE:
 * an unreadable entry cancels its siblings; its listing then fails with its
 * failure, which cancels the parent's members, and so on up to the root
 * group, made by main(), which holds the deadline (-t, default 10 s). -s
 * makes each file take that long to read, as slow storage would.
 *
 * Prints "crc32  size  path" for each file, as it is read (the CRC of zlib
 * and `cksum -a crc32b`), a summary, and on standard error every failure
 * kept. An entry that is neither a directory nor a regular file (a FIFO, a
 * socket) is unreadable. A symbolic link is read as the file it names; one
 * that names nothing, or a directory (the walk follows no link, so it never
 * loops), is unreadable too.
 *
 * Exit status: 0 when every file was read, 1 when the walk failed or ran out
 * of time, 2 on a usage error or when the pool itself failed.
 */
#include <crew.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIMIT 4 /* members of a group queued or running at once */

/* Members count here; main() reads the counts once the walk is over. The
 * rest is set by main() before the walk. */
static struct {
    atomic_size_t files;     /* files read */
    _Atomic(uint64_t) bytes; /* in them */
    atomic_size_t dirs;      /* directories listed */
    uint64_t delay_ns;       /* -s */
    uint32_t crc_table[256];
} crawl;

static const crew_group_options dir_options = {
    .policy = CREW_GROUP_CANCEL_ON_FAILURE,
    .limit = LIMIT,
};

/* Fails the task with errno's code: "path: what: description". */
static int
fail_errno(crew_task *task, const char *path, const char *what)
{
    int err = errno != 0 ? errno : EIO;

    return crew_task_fail(task, err, "%s: %s: %s", path, what,
                          crew_strerror(err));
}

static int
checksum_file(crew_task *task, void *arg)
{
    const struct timespec ms = {0, 1000000};
    const char *path = arg;
    unsigned char buf[16384];
    uint32_t crc = 0xffffffffu;
    uint64_t size = 0;
    struct stat st;
    ssize_t n = 0;
    int fd, err = 0;

    for (uint64_t t = 0; t < crawl.delay_ns; t += 1000000) { /* -s */
        if (crew_task_cancelled(task))
            return ECANCELED;
        nanosleep(&ms, NULL);
    }
    fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO: wait for no writer */
    if (fd < 0)
        return fail_errno(task, path, "open");
    if (fstat(fd, &st) != 0)
        err = fail_errno(task, path, "fstat");
    else if (!S_ISREG(st.st_mode))
        err = crew_task_fail(task, EINVAL, "%s: not a regular file", path);
    while (err == 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            crc = crawl.crc_table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
        size += (uint64_t)n;
    }
    if (err == 0 && n < 0)
        err = fail_errno(task, path, "read");
    if (close(fd) != 0 && err == 0)
        err = fail_errno(task, path, "close");
    if (err != 0)
        return err;
    /* In the order the files are read (sort(1) makes it stable); each
     * printf() call writes its line whole. */
    printf("%08" PRIx32 "  %" PRIu64 "  %s\n", crc ^ 0xffffffffu, size, path);
    /* Relaxed: main() reads the counts after crew_group_wait() has returned,
     * which publishes everything the members wrote. */
    atomic_fetch_add_explicit(&crawl.files, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&crawl.bytes, size, memory_order_relaxed);
    return 0;
}

static int walk_dir(crew_task *task, void *arg);

/* Adds to group a member for entry name of directory path: a listing for a
 * subdirectory, a checksum for anything else. Returns 0 or an errno. */
static int
add_entry(crew_group *group, const char *path, const char *name)
{
    char *child = malloc(strlen(path) + strlen(name) + 2);
    struct stat st;
    int err;

    if (child == NULL)
        return ENOMEM;
    sprintf(child, "%s/%s", path, name);
    /* lstat: a link is read as a file (a link to a directory fails there);
     * so does an entry lstat cannot see, and open() says why. */
    if (lstat(child, &st) != 0)
        st.st_mode = 0;
    err =
        crew_group_submit(group, S_ISDIR(st.st_mode) ? walk_dir : checksum_file,
                          child, free, 0, NULL, NULL);
    if (err != 0)
        free(child); /* else the group frees it (arg_free) */
    return err;
}

/* Adds to group a member for each entry of directory path. Returns 0;
 * ECANCELED when the group is cancelled (its outcome says why); or an errno,
 * and then why says what failed. */
static int
list_dir(crew_group *group, const char *path, char *why, size_t size)
{
    DIR *dir = opendir(path);
    const char *what = dir != NULL ? "readdir" : "opendir";
    struct dirent *entry;
    int err = dir != NULL ? 0 : errno;

    while (err == 0) {
        errno = 0; /* readdir() leaves it alone at the end */
        entry = readdir(dir);
        if (entry == NULL) {
            err = errno;
            break;
        }
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        err = add_entry(group, path, entry->d_name);
        what = "crew_group_submit";
    }
    if (dir != NULL) {
        closedir(dir);
        atomic_fetch_add_explicit(&crawl.dirs, 1, memory_order_relaxed);
    }
    if (err != 0 && err != ECANCELED)
        snprintf(why, size, "%s: %s: %s", path, what, crew_strerror(err));
    return err;
}

/* Fails the listing with its own failure (own, unless NULL) and then every
 * failure its group kept, one a line, each naming its file, under the code
 * of the first: a code and a message are all a member can hand up. */
static int
pass_up(crew_task *task, int code, const char *own, const crew_error *error)
{
    const crew_error *inner = crew_error_inner(error, 0, NULL);
    const char *first = own != NULL ? own : crew_error_message(inner);
    bool whole = false;
    size_t len = 0;
    char *text = NULL;
    FILE *m = open_memstream(&text, &len);

    if (own == NULL)
        code = crew_error_code(inner);
    if (m != NULL) {
        fputs(first, m);
        for (size_t i = own != NULL ? 0 : 1; i < crew_error_count(error); i++)
            fprintf(m, "\n%s",
                    crew_error_message(crew_error_inner(error, i, NULL)));
        whole = fclose(m) == 0;
    }
    crew_task_fail(task, code, "%s", whole ? text : first); /* or the first */
    free(text);
    return code;
}

static int
walk_dir(crew_task *task, void *arg)
{
    const char *path = arg;
    const char *own;
    crew_group *group;
    crew_error *error = NULL;
    char why[512];
    int err, outcome;

    /* Inside a member: the new group is a child of this member's group. */
    err = crew_group_create(&group, crew_task_pool(task), &dir_options);
    if (err != 0)
        return crew_task_fail(task, err, "%s: crew_group_create: %s", path,
                              crew_strerror(err));
    err = list_dir(group, path, why, sizeof(why));
    own = err != 0 && err != ECANCELED ? why : NULL;
    if (own != NULL)
        crew_group_cancel(group);

    /* Not a member of its own group: this wait is allowed, and helps. */
    outcome = crew_group_wait(group, &error);
    if (outcome == 0 && own == NULL)
        err = 0;
    else if (outcome == CREW_EAGGREGATE || own != NULL)
        err = pass_up(task, err, own, error);
    else if (crew_task_cancelled(task)) /* from above, or the deadline */
        err = ECANCELED;
    else /* the deadline it inherited, before the root's reached this task */
        err = crew_task_fail(task, outcome, "%s: stopped: %s", path,
                             outcome == ETIMEDOUT ? "the deadline passed"
                                                  : crew_strerror(outcome));
    crew_error_release(error);
    crew_group_destroy(group);
    return err;
}

/* Prints every failure the walk kept: each line of each inner error. */
static void
report(const crew_error *error)
{
    for (size_t i = 0; i < crew_error_count(error); i++) {
        const char *s = crew_error_message(crew_error_inner(error, i, NULL));

        for (size_t n; *s != '\0'; s += n + (s[n] != '\0')) {
            n = strcspn(s, "\n");
            fprintf(stderr, "crawl: %.*s\n", (int)n, s);
        }
    }
}

static bool
parse_number(const char *s, double max, double *value)
{
    char *end;

    errno = 0;
    *value = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && *value >= 0 &&
           *value <= max;
}

int
main(int argc, char **argv)
{
    crew_group_options root_options = dir_options;
    double seconds = 10, delay_ms = 0;
    crew_error *error = NULL;
    crew_group *root = NULL;
    crew_pool *pool = NULL;
    bool usage_ok = true;
    int opt, err, status = 2;

    while ((opt = getopt(argc, argv, "t:s:")) != -1 && usage_ok)
        usage_ok = (opt == 't' && parse_number(optarg, 1e9, &seconds) &&
                    seconds > 0) ||
                   (opt == 's' && parse_number(optarg, 1e6, &delay_ms));
    if (!usage_ok || optind != argc - 1) {
        fprintf(stderr, "usage: crawl [-t SECONDS] [-s MILLISECONDS] DIR\n");
        return 2;
    }
    root_options.timeout_ns = (uint64_t)(seconds * 1e9);
    crawl.delay_ns = (uint64_t)(delay_ms * 1e6);
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crawl.crc_table[i] = c;
    }

    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "crawl: crew_pool_create: %s\n", crew_strerror(err));
        return 2;
    }
    /* The root group holds the walk and its deadline; each directory's group
     * is created beneath it and inherits the deadline. */
    err = crew_group_create(&root, pool, &root_options);
    if (err != 0) {
        fprintf(stderr, "crawl: crew_group_create: %s\n", crew_strerror(err));
        goto out_destroy_pool;
    }
    /* argv outlives the walk: the member borrows its path (no arg_free). */
    err = crew_group_submit(root, walk_dir, argv[optind], NULL, 0, NULL, NULL);
    if (err != 0) {
        fprintf(stderr, "crawl: crew_group_submit: %s\n", crew_strerror(err));
        goto out_destroy_group;
    }

    err = crew_group_wait(root, &error);
    printf("crawl: %zu files, %" PRIu64 " bytes, %zu directories\n",
           atomic_load_explicit(&crawl.files, memory_order_relaxed),
           atomic_load_explicit(&crawl.bytes, memory_order_relaxed),
           atomic_load_explicit(&crawl.dirs, memory_order_relaxed));
    /* Lets the lines above come first when both streams share a pipe. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("crawl: standard output");
        goto out_destroy_group;
    }
    status = err == 0 ? 0 : 1;
    if (err == CREW_EAGGREGATE)
        report(error);
    else if (err == ETIMEDOUT)
        fprintf(stderr, "crawl: stopped: the deadline (%g s) passed\n",
                seconds);
    else if (err != 0)
        fprintf(stderr, "crawl: crew_group_wait: %s\n", crew_strerror(err));

out_destroy_group:
    crew_error_release(error);
    crew_group_destroy(root);
out_destroy_pool:
    crew_pool_destroy(pool);
    return status;
}
