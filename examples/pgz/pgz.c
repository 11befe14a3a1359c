/*
 * pgz: parallel gzip, pigz's way, on a crew pool.
 *
 *     pgz [-p THREADS] [-b BLOCK_KIB] [-l LEVEL] [-o OUTPUT] [FILE]
 *
 * Compresses FILE (standard input when FILE is "-" or absent) into ONE
 * gzip member (RFC 1952), written to OUTPUT or to standard output. Any
 * gunzip reads it as it reads gzip's own. THREADS defaults to the number
 * of online CPUs, BLOCK_KIB to 128, LEVEL to 6.
 *
 * The format. A deflate stream (RFC 1951) is a sequence of deflate blocks,
 * and it may be cut wherever a block ends on a byte boundary. So the input
 * is split into blocks of BLOCK_KIB, each compressed by its own task as
 * raw deflate, and the pieces are written in order between a single gzip
 * header and a single trailer. Three things make the pieces one stream:
 * - every piece but the last ends with Z_SYNC_FLUSH, which ends the
 *   current deflate block and byte-aligns the output with an empty stored
 *   block; the last piece ends with Z_FINISH, which alone marks its block
 *   final;
 * - every piece is compressed with the 32 KiB of input before its block
 *   as its dictionary (deflateSetDictionary), so its matches may reach
 *   back into the previous block as one deflate's would, and the ratio
 *   stays close to gzip's;
 * - every task also takes the CRC-32 of its block: the trailer's CRC is
 *   crc32_combine() of them in order, its size the input's length mod
 *   2^32.
 * A block's output depends on the input alone, never on scheduling: any
 * THREADS gives the same bytes. The header holds no name and no time (as
 * gzip -n does), so equal inputs give equal outputs.
 *
 * Reading. For a regular file each task reads its block, and the 32 KiB
 * before it, with pread(): a read error is a failed task like any other.
 * The file must keep the size it had when opened: the last block checks
 * that it ends there. A pipe or a terminal cannot be read at an offset,
 * so there the main thread reads each window's blocks into a buffer that
 * the tasks compress from.
 *
 * Memory is bounded however long the input: blocks go to the pool in
 * windows of 4 per thread, at most two windows at a time. While the older
 * one is joined with crew_wait_all() and written out, the workers go on
 * with the newer one.
 *
 * Failures. Each failed block of a window is reported from the aggregate
 * error of crew_wait_all(), "pgz: FILE: block K (offset O): message", and
 * the blocks not yet compressed are cancelled. No partial output is left:
 * OUTPUT is written under a temporary name in its directory and renamed
 * over OUTPUT once complete. Standard output cannot be taken back: there
 * the exit status alone says that what was written is not a whole stream.
 *
 * Exit status: 0 on success; 1 when the input could not be read or
 * compressed, or the output not written; 2 on a usage error, or when the
 * pool itself failed.
 */
#define ZLIB_CONST /* zlib's next_in: const, as the input is */

#include <crew.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

/* How far back a deflate match may reach: the dictionary's length. */
#define DICT_SIZE 32768u
/* Blocks per thread in a window: enough to keep every worker busy. */
#define BLOCKS_PER_THREAD 4u
#define MAX_THREADS       1024ul
/* 64 MiB: a block's length must fit zlib's uInt counts. */
#define MAX_BLOCK_KIB 65536ul

/* What every task reads: set before the first submission, then fixed. */
struct input {
    const char *name; /* for messages */
    int fd;
    bool positional; /* tasks pread() their blocks; else main reads them */
    off_t start;     /* offset of the first byte: stdin need not be at 0 */
    int level;       /* zlib's compression level */
};

struct block {
    const struct input *in;
    uint64_t index;  /* the block's number in the input */
    uint64_t offset; /* of its first byte, from in->start */
    size_t len;      /* its length: the block size, or less if last */
    size_t dict_len; /* bytes of input before it used as dictionary */
    /* Read by the main thread: the dictionary, then the block, in a
     * window's buffer; NULL when the task reads them itself. */
    const unsigned char *mem;
    bool last;      /* ends the stream: Z_FINISH, and the input must end */
    size_t out_len; /* written by the task, read after the join */
    uint32_t crc;   /* likewise: the block's CRC-32 */
};

struct window {
    struct block *blocks;  /* room for pgz.cap blocks */
    crew_future **futures; /* the first n are submitted and ours */
    size_t n;
    /* Main-read input only: DICT_SIZE bytes for the dictionary, of which
     * the last dict_len are valid, then data_len bytes of input. */
    unsigned char *buf;
    size_t dict_len;
    size_t data_len;
};

struct pgz {
    struct input in;
    size_t block_size;
    size_t cap;       /* blocks in a window */
    uint64_t size;    /* positional input: its length from in.start */
    uint64_t nblocks; /* positional input: blocks in all, at least 1 */
    uint64_t next;    /* index of the next block to submit */
    bool done;        /* the last block has been submitted */
    int carry;        /* main-read input: the byte read past the last
                         window, to begin the next one; -1 if none */
    crew_pool *pool;
    struct window win[2];
    const char *out_name; /* for messages */
    int out_fd;
    uint32_t crc;   /* of the blocks written so far */
    uint64_t total; /* their length */
};

static void
usage(void)
{
    fprintf(stderr, "usage: pgz [-p THREADS] [-b BLOCK_KIB] [-l LEVEL] "
                    "[-o OUTPUT] [FILE]\n");
}

/* Parses a decimal count in [min, max]; false if it is not one. */
static bool
parse_count(const char *s, unsigned long min, unsigned long max,
            unsigned long *value)
{
    char *end;
    unsigned long v;

    /* strtoul() would take "-1" as ULONG_MAX and skip leading space. */
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *value = v;
    return true;
}

/* pread() until n bytes or the end of the file; *got says how many. */
static int
read_at(int fd, unsigned char *buf, size_t n, off_t offset, size_t *got)
{
    size_t done = 0;
    int err = 0;

    while (done < n) {
        ssize_t r = pread(fd, buf + done, n - done, offset + (off_t)done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return err;
}

/* read() until n bytes or the end of the input; *got says how many. */
static int
read_full(int fd, unsigned char *buf, size_t n, size_t *got)
{
    size_t done = 0;
    int err = 0;

    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return err;
}

static int
write_all(int fd, const unsigned char *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, buf, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Fails the task with zlib's account of ret. */
static int
fail_zlib(crew_task *task, const z_stream *strm, const char *what, int ret)
{
    int err = ret == Z_MEM_ERROR ? ENOMEM : EIO;

    return crew_task_fail(task, err, "%s: %s", what,
                          strm->msg != NULL ? strm->msg : zError(ret));
}

/*
 * Deflates the block, after src's dict_len bytes of dictionary, into a
 * buffer that becomes the task's value, freed with its future.
 */
static int
deflate_block(crew_task *task, struct block *b, const unsigned char *src)
{
    int flush = b->last ? Z_FINISH : Z_SYNC_FLUSH;
    unsigned char *out, *grown;
    z_stream strm;
    size_t cap;
    int ret;

    memset(&strm, 0, sizeof(strm)); /* Z_NULL allocators: malloc, free */
    ret = deflateInit2(&strm, b->in->level, Z_DEFLATED, -15, 8,
                       Z_DEFAULT_STRATEGY);
    if (ret != Z_OK)
        return fail_zlib(task, &strm, "deflateInit2", ret);
    if (b->dict_len > 0) {
        ret = deflateSetDictionary(&strm, src, (uInt)b->dict_len);
        if (ret != Z_OK) {
            ret = fail_zlib(task, &strm, "deflateSetDictionary", ret);
            goto out_end;
        }
    }
    /* The bound is for Z_FINISH; a sync flush adds its empty stored
     * block, at most 5 bytes. Should it still fall short, the loop below
     * grows the buffer, as zlib's contract allows. */
    cap = deflateBound(&strm, (uLong)b->len) + 16;
    out = malloc(cap);
    if (out == NULL) {
        ret = crew_task_fail(task, ENOMEM, "deflate: out of memory");
        goto out_end;
    }
    strm.next_in = src + b->dict_len;
    strm.avail_in = (uInt)b->len;
    strm.next_out = out;
    strm.avail_out = (uInt)cap;
    for (;;) {
        size_t used;

        ret = deflate(&strm, flush);
        if (ret != Z_OK && ret != Z_STREAM_END) {
            ret = fail_zlib(task, &strm, "deflate", ret);
            goto out_free;
        }
        /* A sync flush is complete when deflate() left room unused. */
        if (flush == Z_FINISH ? ret == Z_STREAM_END : strm.avail_out > 0)
            break;
        used = cap - strm.avail_out;
        cap *= 2;
        grown = realloc(out, cap);
        if (grown == NULL) {
            ret = crew_task_fail(task, ENOMEM, "deflate: out of memory");
            goto out_free;
        }
        out = grown;
        strm.next_out = out + used;
        strm.avail_out = (uInt)(cap - used);
    }
    b->out_len = cap - strm.avail_out;
    b->crc =
        (uint32_t)crc32(crc32(0, Z_NULL, 0), src + b->dict_len, (uInt)b->len);
    crew_task_return(task, out, free);
    out = NULL;
    ret = 0;

out_free:
    free(out);
out_end:
    /* It only frees: its Z_DATA_ERROR says that the stream was left
     * unfinished, as every block's but the last is meant to be. */
    (void)deflateEnd(&strm);
    return ret;
}

/*
 * Reads the block, after its dictionary, into buf. Fails the task if it
 * cannot, or if the file no longer has the size fstat() gave.
 */
static int
read_block(crew_task *task, const struct block *b, unsigned char *buf)
{
    const struct input *in = b->in;
    size_t want = b->dict_len + b->len, got;
    unsigned char probe;
    int err;

    err = read_at(in->fd, buf, want,
                  in->start + (off_t)(b->offset - b->dict_len), &got);
    if (err != 0)
        return crew_task_fail(task, err, "read: %s", crew_strerror(err));
    if (got < want)
        return crew_task_fail(task, EIO, "read: the file shrank");
    if (!b->last)
        return 0;
    /* Data past the size fstat() gave would be left out, silently. */
    err = read_at(in->fd, &probe, 1, in->start + (off_t)(b->offset + b->len),
                  &got);
    if (err != 0)
        return crew_task_fail(task, err, "read: %s", crew_strerror(err));
    if (got > 0)
        return crew_task_fail(task, EIO, "read: the file grew");
    return 0;
}

static int
compress_block(crew_task *task, void *arg)
{
    struct block *b = arg;
    unsigned char *buf;
    int err;

    if (b->mem != NULL)
        return deflate_block(task, b, b->mem);
    buf = malloc(b->dict_len + b->len > 0 ? b->dict_len + b->len : 1);
    if (buf == NULL)
        return crew_task_fail(task, ENOMEM, "read: out of memory");
    err = read_block(task, b, buf);
    if (err == 0)
        err = deflate_block(task, b, buf);
    free(buf);
    return err;
}

/*
 * Reads the next window of main-read input into w, after the last
 * DICT_SIZE bytes before it, taken from prev, the window read last.
 * Returns 0, or 1 after reporting a read error.
 */
static int
read_window(struct pgz *z, struct window *w, const struct window *prev)
{
    unsigned char *data = w->buf + DICT_SIZE;
    size_t want = z->cap * z->block_size, got = 0, n;
    size_t dict = prev->dict_len + prev->data_len;
    int err;

    if (dict > DICT_SIZE)
        dict = DICT_SIZE;
    /* prev's tasks may be running: they only read its buffer too. */
    memcpy(data - dict, prev->buf + DICT_SIZE + prev->data_len - dict, dict);
    w->dict_len = dict;
    if (z->carry >= 0) {
        data[0] = (unsigned char)z->carry;
        got = 1;
    }
    /* One byte more than the window holds: it tells whether the window's
     * last block is the input's last. */
    err = read_full(z->in.fd, data + got, want + 1 - got, &n);
    if (err != 0) {
        fprintf(stderr, "pgz: %s: read: %s\n", z->in.name, crew_strerror(err));
        return 1;
    }
    got += n;
    if (got > want) {
        z->carry = data[want];
        got = want;
    } else {
        z->carry = -1;
    }
    w->data_len = got;
    return 0;
}

/*
 * Describes the window's blocks and submits them; w's earlier blocks have
 * been written and released. Returns 0, 1 after a read error, or 2 when
 * the pool failed; the blocks submitted are counted in w->n either way.
 */
static int
start_window(struct pgz *z, struct window *w, const struct window *prev)
{
    size_t count, i;
    int err;

    if (z->in.positional) {
        uint64_t left = z->nblocks - z->next;

        count = left < z->cap ? (size_t)left : z->cap;
    } else {
        int status = read_window(z, w, prev);

        if (status != 0)
            return status;
        /* Only an empty input leaves a window empty: a window is read
         * only when the one before left a byte carried over. */
        count = (w->data_len + z->block_size - 1) / z->block_size;
        if (count == 0)
            count = 1;
    }
    for (i = 0; i < count; i++) {
        struct block *b = &w->blocks[i];
        uint64_t offset = z->next * z->block_size;

        memset(b, 0, sizeof(*b));
        b->in = &z->in;
        b->index = z->next;
        b->offset = offset;
        b->len = z->block_size;
        b->dict_len = offset < DICT_SIZE ? (size_t)offset : DICT_SIZE;
        if (z->in.positional) {
            if (z->size - offset < z->block_size)
                b->len = (size_t)(z->size - offset);
            b->last = z->next + 1 == z->nblocks;
        } else {
            size_t at = i * z->block_size;

            if (w->data_len - at < z->block_size)
                b->len = w->data_len - at;
            b->mem = w->buf + DICT_SIZE + at - b->dict_len;
            b->last = i + 1 == count && z->carry < 0;
        }
        z->next++;
    }
    z->done = w->blocks[count - 1].last;

    for (w->n = 0; w->n < count; w->n++) {
        err = crew_submit(z->pool, compress_block, &w->blocks[w->n],
                          &w->futures[w->n]);
        if (err != 0) {
            fprintf(stderr, "pgz: crew_submit: %s\n", crew_strerror(err));
            return 2;
        }
    }
    return 0;
}

/* Reports each failed block of the window, in input order. */
static void
report(const struct pgz *z, const struct window *w, const crew_error *error)
{
    for (size_t i = 0; i < crew_error_count(error); i++) {
        size_t input = w->n;
        const crew_error *inner = crew_error_inner(error, i, &input);

        if (inner != NULL && input < w->n)
            fprintf(stderr,
                    "pgz: %s: block %" PRIu64 " (offset %" PRIu64 "): %s\n",
                    z->in.name, w->blocks[input].index, w->blocks[input].offset,
                    crew_error_message(inner));
    }
}

static void
release_window(struct window *w)
{
    while (w->n > 0)
        crew_future_release(w->futures[--w->n]);
}

/*
 * Waits for the window's blocks, writes them out in order and releases
 * them. Returns 0, 1 when a block failed or a write did, or 2 when the
 * wait itself failed.
 */
static int
finish_window(struct pgz *z, struct window *w)
{
    crew_error *error = NULL;
    int err;

    err = crew_wait_all(w->futures, w->n, &error);
    if (err == CREW_EAGGREGATE) {
        report(z, w, error);
        crew_error_release(error);
        return 1;
    }
    if (err != 0) {
        fprintf(stderr, "pgz: crew_wait_all: %s\n", crew_strerror(err));
        return 2;
    }
    for (size_t i = 0; i < w->n; i++) {
        const struct block *b = &w->blocks[i];

        err =
            write_all(z->out_fd, crew_future_result(w->futures[i]), b->out_len);
        if (err != 0) {
            fprintf(stderr, "pgz: %s: write: %s\n", z->out_name,
                    crew_strerror(err));
            return 1;
        }
        z->crc = (uint32_t)crc32_combine(z->crc, b->crc, (z_off_t)b->len);
        z->total += b->len;
    }
    release_window(w);
    return 0;
}

/*
 * Compresses the whole input between the header and the trailer. Two
 * windows are in flight: the workers compress one while the main thread
 * writes out the other. Returns an exit status.
 */
static int
compress_all(struct pgz *z)
{
    /* ID1 ID2, CM deflate, no flags, no time, XFL, OS Unix. */
    unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    unsigned char trailer[8];
    int cur = 0, status, err;

    header[8] = z->in.level == 9 ? 2 : z->in.level == 1 ? 4 : 0;
    err = write_all(z->out_fd, header, sizeof(header));
    if (err != 0) {
        fprintf(stderr, "pgz: %s: write: %s\n", z->out_name,
                crew_strerror(err));
        return 1;
    }
    z->crc = (uint32_t)crc32(0, Z_NULL, 0);
    status = start_window(z, &z->win[0], &z->win[1]);
    if (status == 0 && !z->done)
        status = start_window(z, &z->win[1], &z->win[0]);
    while (status == 0 && z->win[cur].n > 0) {
        status = finish_window(z, &z->win[cur]);
        if (status == 0 && !z->done)
            status = start_window(z, &z->win[cur], &z->win[cur ^ 1]);
        cur ^= 1;
    }
    if (status != 0)
        return status;

    /* CRC-32 and ISIZE, the length mod 2^32, both little-endian. */
    for (int i = 0; i < 4; i++) {
        trailer[i] = (unsigned char)(z->crc >> (8 * i));
        trailer[4 + i] = (unsigned char)(z->total >> (8 * i));
    }
    err = write_all(z->out_fd, trailer, sizeof(trailer));
    if (err != 0) {
        fprintf(stderr, "pgz: %s: write: %s\n", z->out_name,
                crew_strerror(err));
        return 1;
    }
    return 0;
}

/* Opens the input and decides how it is read. Returns an exit status. */
static int
open_input(struct pgz *z, const char *path)
{
    struct stat st;
    off_t start;

    if (path == NULL || strcmp(path, "-") == 0) {
        z->in.name = "stdin";
        z->in.fd = STDIN_FILENO;
    } else {
        z->in.name = path;
        z->in.fd = open(path, O_RDONLY);
        if (z->in.fd < 0) {
            fprintf(stderr, "pgz: %s: open: %s\n", path, crew_strerror(errno));
            return 1;
        }
    }
    if (fstat(z->in.fd, &st) != 0) {
        fprintf(stderr, "pgz: %s: fstat: %s\n", z->in.name,
                crew_strerror(errno));
        return 1;
    }
    /* A regular file whose size is 0 may be empty, or a /proc file whose
     * size is only known once read: reading it whole tells. A directory
     * is read at offsets: its read then fails in block 0's task, and is
     * reported as any failed block is. */
    z->in.positional =
        (S_ISREG(st.st_mode) && st.st_size > 0) || S_ISDIR(st.st_mode);
    if (!z->in.positional)
        return 0;
    /* Standard input may be a file already partly read: start there. */
    start = lseek(z->in.fd, 0, SEEK_CUR);
    if (start < 0) {
        fprintf(stderr, "pgz: %s: lseek: %s\n", z->in.name,
                crew_strerror(errno));
        return 1;
    }
    z->in.start = start;
    z->size = st.st_size > start ? (uint64_t)(st.st_size - start) : 0;
    z->nblocks = (z->size + z->block_size - 1) / z->block_size;
    /* An empty input still has one block: the final, empty one. */
    if (z->nblocks == 0)
        z->nblocks = 1;
    return 0;
}

/*
 * Creates the temporary file beside output, *tmp its name (to free).
 * Returns an exit status.
 */
static int
open_output(struct pgz *z, const char *output, char **tmp)
{
    size_t len = strlen(output);
    mode_t mask;

    *tmp = malloc(len + sizeof(".XXXXXX"));
    if (*tmp == NULL) {
        fprintf(stderr, "pgz: out of memory\n");
        return 2;
    }
    memcpy(*tmp, output, len);
    memcpy(*tmp + len, ".XXXXXX", sizeof(".XXXXXX"));
    z->out_fd = mkstemp(*tmp);
    if (z->out_fd < 0) {
        fprintf(stderr, "pgz: %s: temporary file: %s\n", output,
                crew_strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return 1;
    }
    /* mkstemp() makes it 0600; give it the mode a new file would get.
     * umask() alone can read the mask: it is set back at once, and the
     * pool has not started, so no other thread creates a file between. */
    mask = umask(0);
    umask(mask);
    if (fchmod(z->out_fd, 0666 & ~mask) != 0) {
        fprintf(stderr, "pgz: %s: fchmod: %s\n", *tmp, crew_strerror(errno));
        return 1;
    }
    return 0;
}

/* Makes the windows' arrays and, for main-read input, their buffers. */
static int
alloc_windows(struct pgz *z)
{
    for (int i = 0; i < 2; i++) {
        struct window *w = &z->win[i];

        w->blocks = calloc(z->cap, sizeof(*w->blocks));
        w->futures = calloc(z->cap, sizeof(*w->futures));
        if (w->blocks == NULL || w->futures == NULL)
            return ENOMEM;
        if (z->in.positional)
            continue;
        if (z->cap > (SIZE_MAX - DICT_SIZE - 1) / z->block_size)
            return ENOMEM;
        w->buf = malloc(DICT_SIZE + z->cap * z->block_size + 1);
        if (w->buf == NULL)
            return ENOMEM;
    }
    return 0;
}

/*
 * After a failure: cancels the blocks not yet run, so that destroying the
 * pool does not wait for blocks whose output nobody will write.
 */
static void
cancel_windows(struct pgz *z)
{
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < z->win[i].n; k++) {
            /* EALREADY for a block already done: nothing to undo. */
            (void)crew_future_cancel(z->win[i].futures[k]);
        }
    }
}

static void
free_windows(struct pgz *z)
{
    for (int i = 0; i < 2; i++) {
        release_window(&z->win[i]);
        free(z->win[i].buf);
        free(z->win[i].futures);
        free(z->win[i].blocks);
    }
}

/*
 * Ends the output: on success closes it and renames the temporary file
 * over output; on failure removes the temporary file. Standard output is
 * written with write(2) alone, so stdio holds nothing of it; closing it
 * still reports a write error the system had deferred. Returns the exit
 * status.
 */
static int
end_output(struct pgz *z, const char *output, const char *tmp, int status)
{
    if (z->out_fd < 0)
        return status;
    /* On failure the data is discarded anyway: its close cannot matter. */
    if (close(z->out_fd) != 0 && status == 0) {
        fprintf(stderr, "pgz: %s: close: %s\n", z->out_name,
                crew_strerror(errno));
        status = 1;
    }
    z->out_fd = -1;
    if (tmp == NULL)
        return status;
    if (status == 0 && rename(tmp, output) != 0) {
        fprintf(stderr, "pgz: %s: rename to %s: %s\n", tmp, output,
                crew_strerror(errno));
        status = 1;
    }
    if (status != 0 && unlink(tmp) != 0)
        fprintf(stderr, "pgz: %s: unlink: %s\n", tmp, crew_strerror(errno));
    return status;
}

int
main(int argc, char **argv)
{
    struct pgz z = {.in = {.fd = -1}, .carry = -1, .out_fd = -1};
    crew_pool_options options = {.name = "pgz"};
    unsigned long threads = 0, block_kib = 128, level = 6;
    const char *output = NULL;
    char *tmp = NULL;
    int opt, err, status;

    opterr = 0; /* our own messages, without argv[0]'s path */
    while ((opt = getopt(argc, argv, "p:b:l:o:")) != -1) {
        switch (opt) {
        case 'p':
            if (!parse_count(optarg, 1, MAX_THREADS, &threads)) {
                fprintf(stderr, "pgz: -p: threads from 1 to %lu\n",
                        MAX_THREADS);
                return 2;
            }
            break;
        case 'b':
            if (!parse_count(optarg, 1, MAX_BLOCK_KIB, &block_kib)) {
                fprintf(stderr, "pgz: -b: block size from 1 to %lu KiB\n",
                        MAX_BLOCK_KIB);
                return 2;
            }
            break;
        case 'l':
            if (!parse_count(optarg, 0, 9, &level)) {
                fprintf(stderr, "pgz: -l: level from 0 to 9\n");
                return 2;
            }
            break;
        case 'o':
            output = optarg;
            break;
        default:
            if (optopt == 'p' || optopt == 'b' || optopt == 'l' ||
                optopt == 'o')
                fprintf(stderr, "pgz: -%c needs a value\n", optopt);
            else
                fprintf(stderr, "pgz: unknown option -%c\n", optopt);
            usage();
            return 2;
        }
    }
    if (argc - optind > 1) {
        usage();
        return 2;
    }
    if (output == NULL && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "pgz: compressed data not written to a terminal "
                        "(use -o OUTPUT, or redirect)\n");
        return 2;
    }
    z.in.level = (int)level;
    z.block_size = (size_t)block_kib * 1024;
    options.threads = (unsigned)threads;

    status = open_input(&z, optind < argc ? argv[optind] : NULL);
    if (status != 0)
        goto out_close_input;
    if (output != NULL) {
        z.out_name = output;
        status = open_output(&z, output, &tmp);
        if (status != 0)
            goto out_end_output;
    } else {
        z.out_name = "standard output";
        z.out_fd = STDOUT_FILENO;
    }

    err = crew_pool_create(&z.pool, &options);
    if (err != 0) {
        fprintf(stderr, "pgz: crew_pool_create: %s\n", crew_strerror(err));
        status = 2;
        goto out_end_output;
    }
    z.cap = BLOCKS_PER_THREAD * crew_pool_threads(z.pool);
    if (alloc_windows(&z) != 0) {
        fprintf(stderr, "pgz: out of memory\n");
        status = 2;
        goto out_destroy_pool;
    }
    status = compress_all(&z);
    if (status != 0)
        cancel_windows(&z);

out_destroy_pool:
    /* Drains: no task may still read a block or a buffer freed below. */
    crew_pool_destroy(z.pool);
    free_windows(&z);
out_end_output:
    status = end_output(&z, output, tmp, status);
    free(tmp);
out_close_input:
    if (z.in.fd > STDIN_FILENO && close(z.in.fd) != 0 && status == 0) {
        fprintf(stderr, "pgz: %s: close: %s\n", z.in.name,
                crew_strerror(errno));
        status = 1;
    }
    return status;
}
