/*
 * mandelbrot: a parallel loop over the rows of a picture.
 *
 *     mandelbrot [-w WIDTH] [-h HEIGHT] [-g GRAIN] [-t THREADS] [-o FILE]
 *                [-T TRACE]
 *
 * Renders the Mandelbrot set, 800 x 600 pixels by default, with
 * crew_parallel_for() over the rows: chunks of at most GRAIN rows, or with
 * GRAIN 0 (the default) chunks the library chooses, run on a pool of
 * THREADS workers (default: one per CPU) and on the calling thread. Writes
 * the picture as a binary PGM (P5) to FILE (default mandelbrot.pgm) and
 * prints the number of chunks, then the FNV-1a hash of the pixels.
 *
 * With -T, the loop is traced (crew_trace_start()) and the trace written to
 * TRACE in the Chrome Trace Event Format, one event a chunk on the track of
 * the thread that drew it: open it in https://ui.perfetto.dev, or draw it
 * with tools/trace-plot. The program is linked with -rdynamic, so the
 * chunks are named after render_rows(), which has external linkage for
 * that; the latency of the chunks goes to standard error.
 *
 * The picture does not depend on the scheduling: each pixel is computed
 * from its own coordinates, in fixed point, so any grain and any number of
 * threads give the same bytes, on any machine and compiler, and the same
 * hash.
 *
 * Exit status: 0 when the picture was written, 1 when it could not be (or
 * the pool failed), 2 on a usage error.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_SIDE 16384 /* pixels; keeps every product below in range */
#define MAX_ITER 256

/* Fixed point, 28 fraction bits: |c| < 3 and, until it escapes, |z| < 7,
 * so a product of two coordinates stays below 2^62. */
#define FRACTION 28
#define ONE      ((int64_t)1 << FRACTION)

/* The view: real parts [-2.5, 1), imaginary parts [-1.3125, 1.3125),
 * 4:3 like the default size. */
#define RE_MIN  (-ONE * 5 / 2)
#define RE_SPAN (ONE * 7 / 2)
#define IM_MIN  (-ONE * 21 / 16)
#define IM_SPAN (ONE * 21 / 8)

struct image {
    size_t width;
    size_t height;
    unsigned char *pixels; /* rows top to bottom; each row one chunk's */
};

static int64_t
mul(int64_t a, int64_t b)
{
    return a * b / ONE;
}

/* The pixel at (x, y): black inside the set, and outside lighter the longer
 * its point takes to escape, so that the set's edge glows. Its point is
 * computed from x and y alone, never by adding a step from row to row: a row's
 * pixels cannot depend on where its chunk began. */
static unsigned char
shade(const struct image *img, size_t x, size_t y)
{
    int64_t cr =
        RE_MIN + (int64_t)(2 * x + 1) * RE_SPAN / (int64_t)(2 * img->width);
    int64_t ci =
        IM_MIN + (int64_t)(2 * y + 1) * IM_SPAN / (int64_t)(2 * img->height);
    int64_t zr = 0, zi = 0;
    int i;

    for (i = 0; i < MAX_ITER; i++) {
        int64_t zr2 = mul(zr, zr), zi2 = mul(zi, zi);

        if (zr2 + zi2 > 4 * ONE)
            break;
        zi = 2 * mul(zr, zi) + ci;
        zr = zr2 - zi2 + cr;
    }
    return i == MAX_ITER ? 0 : (unsigned char)(255 * i / (i + 8));
}

/* The loop's body: rows [begin, end). Chunks never share a row, so they
 * write disjoint bytes. Exported, for the trace to name it. */
int render_rows(crew_task *task, size_t begin, size_t end, void *arg);

int
render_rows(crew_task *task, size_t begin, size_t end, void *arg)
{
    const struct image *img = arg;

    (void)task;
    for (size_t y = begin; y < end; y++) {
        unsigned char *row = img->pixels + y * img->width;

        for (size_t x = 0; x < img->width; x++)
            row[x] = shade(img, x, y);
    }
    return 0;
}

static uint64_t
fnv1a(const unsigned char *p, size_t n)
{
    uint64_t hash = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < n; i++)
        hash = (hash ^ p[i]) * UINT64_C(0x100000001b3);
    return hash;
}

/* Returns 0 or an errno value. */
static int
write_pgm(const char *path, const struct image *img)
{
    size_t size = img->width * img->height;
    FILE *out;
    int err;

    out = fopen(path, "wb");
    if (out == NULL)
        return errno;
    errno = 0; /* ISO C does not require fwrite to set it: no stale value */
    if (fprintf(out, "P5\n%zu %zu\n255\n", img->width, img->height) < 0 ||
        fwrite(img->pixels, 1, size, out) != size) {
        err = errno != 0 ? errno : EIO;
        fclose(out);
        return err;
    }
    /* Where a full disk shows up, the buffer being written here. */
    if (fclose(out) != 0)
        return errno != 0 ? errno : EIO;
    return 0;
}

/* Stop the pool's trace into the file at `path`, and say how long the
 * chunks waited and ran. Returns 0 or an errno value, said. */
static int
write_trace(crew_pool *pool, const char *path)
{
    crew_latency latency;
    FILE *out = fopen(path, "w");
    int err = out == NULL ? errno : 0;
    /* Stopped even when the file could not be opened (NULL discards). */
    int stopped = crew_trace_stop(pool, out);

    if (err == 0)
        err = stopped;
    if (err != 0) {
        fprintf(stderr, "mandelbrot: %s: %s\n", path, crew_strerror(err));
        if (out != NULL)
            fclose(out);
        return err;
    }
    if (fclose(out) != 0) {
        err = errno;
        fprintf(stderr, "mandelbrot: %s: %s\n", path, crew_strerror(err));
        return err;
    }
    crew_pool_latency_get(pool, &latency);
    fprintf(stderr,
            "trace: %s, %" PRIu64 " chunks; waited p50 %.3f ms, max %.3f ms; "
            "ran p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
            path, latency.tasks, latency.wait_p50_ns / 1e6,
            latency.wait_max_ns / 1e6, latency.run_p50_ns / 1e6,
            latency.run_p99_ns / 1e6, latency.run_max_ns / 1e6);
    return 0;
}

struct options {
    size_t width, height, grain;
    unsigned threads; /* 0: one per CPU */
    const char *path;
    const char *trace; /* NULL: no trace */
};

/* A whole decimal number in [min, max]. */
static bool
parse_number(const char *s, unsigned long long min, unsigned long long max,
             unsigned long long *value)
{
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *value = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0' && *value >= min && *value <= max;
}

static bool
parse(int argc, char **argv, struct options *o)
{
    unsigned long long v;
    int c;

    *o =
        (struct options){.width = 800, .height = 600, .path = "mandelbrot.pgm"};
    while ((c = getopt(argc, argv, "w:h:g:t:o:T:")) != -1) {
        switch (c) {
        case 'w':
            if (!parse_number(optarg, 1, MAX_SIDE, &v))
                return false;
            o->width = (size_t)v;
            break;
        case 'h':
            if (!parse_number(optarg, 1, MAX_SIDE, &v))
                return false;
            o->height = (size_t)v;
            break;
        case 'g':
            if (!parse_number(optarg, 0, SIZE_MAX, &v))
                return false;
            o->grain = (size_t)v;
            break;
        case 't':
            if (!parse_number(optarg, 1, 1024, &v))
                return false;
            o->threads = (unsigned)v;
            break;
        case 'o':
            o->path = optarg;
            break;
        case 'T':
            o->trace = optarg;
            break;
        default:
            return false;
        }
    }
    return optind == argc;
}

int
main(int argc, char **argv)
{
    struct options o;
    struct image img;
    crew_pool_options po = {0};
    crew_pool_stats stats;
    crew_error *error = NULL;
    crew_pool *pool = NULL;
    int err, status = EXIT_FAILURE;

    if (!parse(argc, argv, &o)) {
        fprintf(stderr,
                "usage: mandelbrot [-w WIDTH] [-h HEIGHT] [-g GRAIN] "
                "[-t THREADS] [-o FILE] [-T TRACE]\n"
                "  WIDTH, HEIGHT: 1 to %d; THREADS: 1 to 1024\n",
                MAX_SIDE);
        return 2;
    }
    img = (struct image){o.width, o.height, malloc(o.width * o.height)};
    if (img.pixels == NULL) {
        fprintf(stderr, "mandelbrot: out of memory\n");
        return EXIT_FAILURE;
    }
    po.threads = o.threads;
    err = crew_pool_create(&pool, &po);
    if (err != 0) {
        fprintf(stderr, "mandelbrot: crew_pool_create: %s\n",
                crew_strerror(err));
        goto out_free;
    }

    if (o.trace != NULL) {
        /* A record a chunk, at most 100,000 kept a thread. */
        err = crew_trace_start(pool, 100000);
        if (err != 0) {
            fprintf(stderr, "mandelbrot: crew_trace_start: %s\n",
                    crew_strerror(err));
            goto out_destroy;
        }
    }
    err = crew_parallel_for(pool, 0, img.height, o.grain, render_rows, &img,
                            &error);
    if (o.trace != NULL && write_trace(pool, o.trace) != 0)
        goto out_destroy;
    if (err != 0) {
        /* render_rows() never fails: only the loop itself can. */
        fprintf(stderr, "mandelbrot: crew_parallel_for: %s\n",
                error != NULL ? crew_error_message(error) : crew_strerror(err));
        goto out_destroy;
    }
    /* The loop is the pool's only work: its chunks are all the tasks. */
    err = crew_pool_stats_get(pool, &stats);
    if (err != 0) {
        fprintf(stderr, "mandelbrot: crew_pool_stats_get: %s\n",
                crew_strerror(err));
        goto out_destroy;
    }
    err = write_pgm(o.path, &img);
    if (err != 0) {
        fprintf(stderr, "mandelbrot: %s: %s\n", o.path, crew_strerror(err));
        goto out_destroy;
    }
    printf("%s: %zu x %zu, grain %zu: %" PRIu64 " chunks, workers: %u\n",
           o.path, img.width, img.height, o.grain, stats.succeeded,
           crew_pool_threads(pool));
    printf("fnv-1a %016" PRIx64 "\n",
           fnv1a(img.pixels, img.width * img.height));
    if (fflush(stdout) != 0 || ferror(stdout))
        perror("mandelbrot: standard output");
    else
        status = EXIT_SUCCESS;

out_destroy:
    crew_error_release(error);
    crew_pool_destroy(pool);
out_free:
    free(img.pixels);
    return status;
}
