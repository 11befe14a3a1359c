/*
 * checksum: the CRC-32 of each file, computed in parallel on a pool.
 *
 *     checksum FILE...
 *
 * Reads each file in its own task, all of them queued by one
 * crew_submit_each() call (task i reads argument i), and prints "crc32  size  path" lines in
 * the order of the arguments; the CRC is the one of zlib, PNG and
 * `cksum -a crc32b`. Every file that could not be read is reported on
 * standard error with its position among the arguments, taken from the
 * aggregate error of crew_wait_all().
 *
 * Exit status: 0 when every file was read, 1 when some could not be,
 * 2 on a usage error or when the pool itself failed.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct file {
    const char *path; /* an argument, borrowed from argv */
    uint32_t crc;     /* written by the task, read after the join */
    uint64_t size;    /* likewise */
};

/* Filled by main() before the first task is submitted, read-only after. */
static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t
crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

/* Fails the task with errno's code: "what: description". */
static int
fail_errno(crew_task *task, const char *what)
{
    int err = errno != 0 ? errno : EIO;

    return crew_task_fail(task, err, "%s: %s", what, crew_strerror(err));
}

static int
checksum_file(crew_task *task, size_t i, void *files)
{
    struct file *f = (struct file *)files + i;
    unsigned char buf[16384];
    uint32_t crc = 0xffffffffu;
    uint64_t size = 0;
    size_t n;
    FILE *stream;

    stream = fopen(f->path, "rb");
    if (stream == NULL)
        return fail_errno(task, "open");
    errno = 0; /* ISO C does not require fread to set it: no stale value */
    while ((n = fread(buf, 1, sizeof(buf), stream)) > 0) {
        crc = crc_update(crc, buf, n);
        size += n;
    }
    if (ferror(stream)) {
        int err = fail_errno(task, "read");
        fclose(stream);
        return err;
    }
    if (fclose(stream) != 0)
        return fail_errno(task, "close");
    f->crc = crc ^ 0xffffffffu;
    f->size = size;
    return 0;
}

/* Reports each failed file, in the order of the arguments. */
static void
report(const crew_error *error, const struct file *files, size_t count)
{
    for (size_t i = 0; i < crew_error_count(error); i++) {
        size_t input = count;
        const crew_error *inner = crew_error_inner(error, i, &input);

        if (inner != NULL && input < count)
            fprintf(stderr, "checksum: argument %zu (%s): %s\n", input + 1,
                    files[input].path, crew_error_message(inner));
    }
}

int
main(int argc, char **argv)
{
    size_t count = argc > 1 ? (size_t)argc - 1 : 0;
    struct file *files;
    crew_future **futures;
    crew_error *error = NULL;
    crew_pool *pool = NULL;
    int err, status = 2;

    if (count == 0) {
        fprintf(stderr, "usage: checksum FILE...\n");
        return 2;
    }
    files = calloc(count, sizeof(*files));
    futures = calloc(count, sizeof(*futures));
    if (files == NULL || futures == NULL) {
        fprintf(stderr, "checksum: out of memory\n");
        goto out_free;
    }
    for (size_t i = 0; i < count; i++)
        files[i].path = argv[i + 1];
    crc_init();

    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "checksum: crew_pool_create: %s\n", crew_strerror(err));
        goto out_free;
    }
    /* All or nothing: on error no file is read and every slot is NULL. */
    err = crew_submit_each(pool, count, checksum_file, files, NULL, 0,
                           futures);
    if (err != 0) {
        fprintf(stderr, "checksum: crew_submit_each: %s\n",
                crew_strerror(err));
        goto out_release;
    }

    err = crew_wait_all(futures, count, &error);
    if (err != 0 && err != CREW_EAGGREGATE) {
        fprintf(stderr, "checksum: crew_wait_all: %s\n", crew_strerror(err));
        goto out_release;
    }
    for (size_t i = 0; i < count; i++) {
        if (crew_future_state(futures[i]) == CREW_SUCCEEDED)
            printf("%08" PRIx32 "  %" PRIu64 "  %s\n", files[i].crc,
                   files[i].size, files[i].path);
    }
    /* Lets the lines above come first when both streams share a pipe. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("checksum: standard output");
        goto out_release;
    }
    report(error, files, count);
    status = err == 0 ? 0 : 1;

out_release:
    crew_error_release(error);
    crew_future_release_all(futures, count);
    /* Drains: no task may still use files when it is freed below. */
    crew_pool_destroy(pool);
out_free:
    free(futures);
    free(files);
    return status;
}
