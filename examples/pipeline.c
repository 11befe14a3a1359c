/*
 * pipeline: stages chained with crew_then(), each running once its input
 * has resolved, and a failure flowing down to the end.
 *
 *     pipeline [-c]
 *
 * Stage 1, a task, generates a text of 50,000 words (always the same one).
 * Stage 2, a continuation of stage 1, counts its words. Stages 3 and 4, two
 * continuations of stage 2, run side by side: one picks the three most
 * frequent words, the other computes a checksum (FNV-1a) of the table of
 * counts. Stage 5, a continuation of crew_when_all() of stages 3 and 4,
 * formats the report, which the main thread prints. No worker waits for a
 * stage: each is queued on the pool when its input resolves, and the main
 * thread waits once, for the last. Each stage returns its result with
 * crew_task_return() and reads its input's with crew_future_result(),
 * borrowed.
 *
 * A continuation runs whatever its input's outcome. With -c, stage 1 puts a
 * byte that is not text in the middle of the text; stage 2 fails on it with
 * EILSEQ, and each later stage, finding its input failed, fails in turn with
 * the same code and message, which the main thread prints.
 *
 * Exit status: 0 when the outcome is the one asked for (the report, or with
 * -c stage 2's failure at the end of the pipeline), 1 otherwise, 2 on a
 * usage error.
 */
#include <crew.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS      50000
#define CORRUPT_AT 100000 /* with -c, the byte of the text that is not text */
#define TOP        3

struct text {
    size_t length;
    char bytes[]; /* not NUL-terminated */
};

struct entry {
    const char *word; /* in the same block as the entry */
    size_t count;
};

/* Stage 2's result: the distinct words in byte order, with their counts,
 * in one block (entries, then the words they point to). */
struct counts {
    size_t total;    /* words in the text */
    size_t distinct; /* entries */
    struct entry entries[];
};

/* Stage 3's result, in one block: the words follow the struct. */
struct top {
    size_t n;
    struct entry best[TOP]; /* most frequent first */
};

/* Stage 5's argument: references to the stages whose results it reads. Its
 * input, the join of stages 3 and 4, has a NULL result of its own. */
struct sources {
    crew_future *counts;
    crew_future *top;
    crew_future *sum;
};

static const char *const vocabulary[] = {
    "the",  "of",   "and",   "to",    "a",     "in",    "is",    "it",
    "that", "was",  "for",   "on",    "with",  "as",    "he",    "be",
    "at",   "by",   "this",  "had",   "not",   "but",   "from",  "or",
    "have", "an",   "they",  "which", "one",   "you",   "were",  "her",
    "all",  "she",  "there", "would", "their", "we",    "him",   "been",
    "has",  "when", "who",   "will",  "more",  "no",    "if",    "out",
    "so",   "said", "what",  "up",    "its",   "about", "into",  "than",
    "them", "can",  "only",  "other", "new",   "some",  "could", "time",
};

#define VOCABULARY (sizeof(vocabulary) / sizeof(vocabulary[0]))

/* xorshift64: the same text on every run and every machine. */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static bool
is_letter(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\n';
}

/* Passes on the failure of a stage's input: a task's error as it is, a
 * join's as the first failure it holds, so that the end of the pipeline
 * reports the cause, not "2 of 2 inputs failed". A cancelled input would
 * pass on as a failure with code ECANCELED: a continuation that was not
 * itself asked to stop cannot resolve cancelled. */
static int
pass_on(crew_task *task, const crew_future *input)
{
    const crew_error *error = crew_future_error(input);

    while (crew_error_count(error) > 0)
        error = crew_error_inner(error, 0, NULL);
    if (error == NULL) /* not resolved: crew_then() promises it is */
        return crew_task_fail(task, EINVAL, "input not resolved");
    return crew_task_fail(task, crew_error_code(error), "%s",
                          crew_error_message(error));
}

/* Stage 1. Words are drawn as the least of three uniform draws: the first
 * words of the vocabulary come out most often, as in real text. */
static int
generate(crew_task *task, void *arg)
{
    bool corrupt = *(const bool *)arg;
    size_t longest = 0, length = 0;
    uint64_t state = UINT64_C(0x2545f4914f6cdd1d);
    struct text *text;

    for (size_t i = 0; i < VOCABULARY; i++) {
        if (strlen(vocabulary[i]) > longest)
            longest = strlen(vocabulary[i]);
    }
    text = malloc(sizeof(*text) + WORDS * (longest + 1));
    if (text == NULL)
        return crew_task_fail(task, ENOMEM, "generate: out of memory");
    for (size_t i = 0; i < WORDS; i++) {
        size_t w = VOCABULARY, n;

        for (int k = 0; k < 3; k++) {
            size_t draw = (size_t)(next_random(&state) % VOCABULARY);
            if (draw < w)
                w = draw;
        }
        n = strlen(vocabulary[w]);
        memcpy(text->bytes + length, vocabulary[w], n);
        length += n;
        text->bytes[length++] = i % 12 == 11 ? '\n' : ' ';
    }
    text->length = length;
    if (corrupt && CORRUPT_AT < length)
        text->bytes[CORRUPT_AT] = '\x7f';
    crew_task_return(task, text, free);
    return 0;
}

struct word {
    const char *start;
    size_t length;
};

static int
compare_words(const void *a, const void *b)
{
    const struct word *x = a, *y = b;
    int c = memcmp(x->start, y->start,
                   x->length < y->length ? x->length : y->length);

    if (c != 0)
        return c;
    return (x->length > y->length) - (x->length < y->length);
}

static bool
same_word(const struct word *x, const struct word *y)
{
    return x->length == y->length && memcmp(x->start, y->start, x->length) == 0;
}

/* Stage 2: the text's words, sorted, then counted in runs of equal ones. */
static int
count_words(crew_task *task, crew_future *input, void *arg)
{
    const struct text *text = crew_future_result(input);
    struct word *words;
    struct counts *counts;
    size_t n = 0, distinct = 0, letters = 0;
    char *at;

    (void)arg;
    if (crew_future_state(input) != CREW_SUCCEEDED)
        return pass_on(task, input);
    for (size_t i = 0; i < text->length; i++) {
        char c = text->bytes[i];

        if (!is_letter(c) && !is_space(c))
            return crew_task_fail(task, EILSEQ,
                                  "count words: byte 0x%02x at offset %zu is "
                                  "not text",
                                  (unsigned)(unsigned char)c, i);
        n += is_letter(c) && (i == 0 || !is_letter(text->bytes[i - 1]));
    }
    words = malloc((n > 0 ? n : 1) * sizeof(*words));
    if (words == NULL)
        return crew_task_fail(task, ENOMEM, "count words: out of memory");
    n = 0;
    for (size_t i = 0; i < text->length; i++) {
        if (!is_letter(text->bytes[i]))
            continue;
        if (i == 0 || !is_letter(text->bytes[i - 1]))
            words[n++] = (struct word){text->bytes + i, 0};
        words[n - 1].length++;
    }
    qsort(words, n, sizeof(*words), compare_words);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || !same_word(&words[i], &words[i - 1])) {
            distinct++;
            letters += words[i].length + 1;
        }
    }

    counts = malloc(sizeof(*counts) + distinct * sizeof(counts->entries[0]) +
                    letters);
    if (counts == NULL) {
        free(words);
        return crew_task_fail(task, ENOMEM, "count words: out of memory");
    }
    counts->total = n;
    counts->distinct = 0;
    at = (char *)&counts->entries[distinct];
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && same_word(&words[i], &words[i - 1])) {
            counts->entries[counts->distinct - 1].count++;
            continue;
        }
        memcpy(at, words[i].start, words[i].length);
        at[words[i].length] = '\0';
        counts->entries[counts->distinct++] = (struct entry){at, 1};
        at += words[i].length + 1;
    }
    free(words);
    crew_task_return(task, counts, free);
    return 0;
}

/* Whether entry a comes before entry b: more frequent, or on a tie, first
 * in byte order. */
static bool
ranks_before(const struct entry *a, const struct entry *b)
{
    return a->count > b->count ||
           (a->count == b->count && strcmp(a->word, b->word) < 0);
}

/* Stage 3: the TOP most frequent words, copied: the result must not
 * borrow from stage 2's. */
static int
top_words(crew_task *task, crew_future *input, void *arg)
{
    const struct counts *counts = crew_future_result(input);
    const struct entry *best[TOP];
    size_t n = 0, letters = 0;
    struct top *top;
    char *at;

    (void)arg;
    if (crew_future_state(input) != CREW_SUCCEEDED)
        return pass_on(task, input);
    for (size_t i = 0; i < counts->distinct; i++) {
        const struct entry *e = &counts->entries[i];
        size_t j = n < TOP ? n++ : TOP;

        /* Insertion into best[0 .. n), dropping whatever falls off. */
        for (; j > 0 && ranks_before(e, best[j - 1]); j--) {
            if (j < TOP)
                best[j] = best[j - 1];
        }
        if (j < TOP)
            best[j] = e;
    }
    for (size_t i = 0; i < n; i++)
        letters += strlen(best[i]->word) + 1;
    top = malloc(sizeof(*top) + letters);
    if (top == NULL)
        return crew_task_fail(task, ENOMEM, "top words: out of memory");
    top->n = n;
    at = (char *)(top + 1);
    for (size_t i = 0; i < n; i++) {
        size_t size = strlen(best[i]->word) + 1;

        memcpy(at, best[i]->word, size);
        top->best[i] = (struct entry){at, best[i]->count};
        at += size;
    }
    crew_task_return(task, top, free);
    return 0;
}

static uint64_t
fnv1a(uint64_t hash, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        hash = (hash ^ b[i]) * UINT64_C(0x100000001b3);
    return hash;
}

/* Stage 4: FNV-1a of the table of counts, as "word count\n" lines. */
static int
checksum(crew_task *task, crew_future *input, void *arg)
{
    const struct counts *counts = crew_future_result(input);
    uint64_t *sum;

    (void)arg;
    if (crew_future_state(input) != CREW_SUCCEEDED)
        return pass_on(task, input);
    sum = malloc(sizeof(*sum));
    if (sum == NULL)
        return crew_task_fail(task, ENOMEM, "checksum: out of memory");
    *sum = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < counts->distinct; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%s %zu\n",
                         counts->entries[i].word, counts->entries[i].count);

        if (n < 0 || (size_t)n >= sizeof(line)) {
            free(sum);
            return crew_task_fail(task, ERANGE, "checksum: word too long");
        }
        *sum = fnv1a(*sum, line, (size_t)n);
    }
    crew_task_return(task, sum, free);
    return 0;
}

/* Stage 5. Its input, the join, has succeeded only if stages 3 and 4 have:
 * then their results, and stage 2's, are there to read. */
static int
report(crew_task *task, crew_future *input, void *arg)
{
    const struct sources *from = arg;
    const struct counts *counts;
    const struct top *top;
    char *text = NULL;
    size_t size = 0;
    bool failed;
    FILE *out;

    if (crew_future_state(input) != CREW_SUCCEEDED)
        return pass_on(task, input);
    counts = crew_future_result(from->counts);
    top = crew_future_result(from->top);
    out = open_memstream(&text, &size);
    if (out == NULL)
        return crew_task_fail(task, ENOMEM, "report: out of memory");
    fprintf(out, "words: %zu, distinct: %zu\ntop %zu:", counts->total,
            counts->distinct, top->n);
    for (size_t i = 0; i < top->n; i++)
        fprintf(out, " %s (%zu)", top->best[i].word, top->best[i].count);
    fprintf(out, "\nchecksum: %016" PRIx64 "\n",
            *(const uint64_t *)crew_future_result(from->sum));
    failed = ferror(out) != 0;
    /* Even when it fails, fclose() may have left a buffer to free. */
    if (fclose(out) != 0 || failed) {
        free(text);
        return crew_task_fail(task, ENOMEM, "report: out of memory");
    }
    crew_task_return(task, text, free);
    return 0;
}

static void
sources_free(void *p)
{
    struct sources *from = p;

    crew_future_release(from->counts);
    crew_future_release(from->top);
    crew_future_release(from->sum);
    free(from);
}

/* Stages 3 and 4, their join, and stage 5 on it: returns stage 5. */
static int
chain_tail(crew_pool *pool, crew_future *counts, crew_future **stages)
{
    crew_future *pair[2], *join;
    struct sources *from;
    int err;

    err = crew_then(pool, counts, top_words, NULL, NULL, &stages[0]);
    if (err != 0)
        return err;
    err = crew_then(pool, counts, checksum, NULL, NULL, &stages[1]);
    if (err != 0)
        return err;
    pair[0] = stages[0];
    pair[1] = stages[1];
    err = crew_when_all(pair, 2, &join);
    if (err != 0)
        return err;
    from = malloc(sizeof(*from));
    if (from == NULL) {
        crew_future_release(join);
        return ENOMEM;
    }
    from->counts = crew_future_retain(counts);
    from->top = crew_future_retain(stages[0]);
    from->sum = crew_future_retain(stages[1]);
    err = crew_then(pool, join, report, from, sources_free, &stages[2]);
    /* Stage 5 holds the join until it goes: the caller needs no reference. */
    crew_future_release(join);
    if (err != 0)
        sources_free(from);
    return err;
}

/* With -c: the stages from 2 on failed with stage 2's error, and the
 * end of the pipeline says so. */
static bool
failed_as_designed(crew_future *const *stages, size_t n)
{
    char expected[64];
    int len =
        snprintf(expected, sizeof(expected),
                 "count words: byte 0x7f at offset %d is not text", CORRUPT_AT);

    if (len < 0 || (size_t)len >= sizeof(expected) ||
        crew_future_state(stages[0]) != CREW_SUCCEEDED)
        return false;
    for (size_t i = 1; i < n; i++) {
        const crew_error *error = crew_future_error(stages[i]);

        if (crew_future_state(stages[i]) != CREW_FAILED ||
            crew_error_code(error) != EILSEQ ||
            strcmp(crew_error_message(error), expected) != 0)
            return false;
    }
    return true;
}

int
main(int argc, char **argv)
{
    crew_future *stages[5] = {NULL}; /* stages 1 to 5 */
    crew_future *last;
    crew_pool *pool;
    /* Stage 1's argument: lives until the pool is gone. */
    bool corrupt = argc == 2 && strcmp(argv[1], "-c") == 0;
    int err, status = EXIT_FAILURE;

    if (argc > 2 || (argc == 2 && !corrupt)) {
        fprintf(stderr, "usage: pipeline [-c]\n");
        return 2;
    }
    err = crew_pool_create(&pool, NULL);
    if (err != 0) {
        fprintf(stderr, "pipeline: crew_pool_create: %s\n", crew_strerror(err));
        return EXIT_FAILURE;
    }
    err = crew_submit(pool, generate, &corrupt, &stages[0]);
    if (err == 0)
        err = crew_then(pool, stages[0], count_words, NULL, NULL, &stages[1]);
    if (err == 0)
        err = chain_tail(pool, stages[1], &stages[2]);
    if (err != 0) {
        fprintf(stderr, "pipeline: building the pipeline: %s\n",
                crew_strerror(err));
        goto out_release;
    }

    /* The only wait: once the last stage has resolved, every stage has. */
    last = stages[4];
    err = crew_future_wait(last);
    if (err == 0) {
        fputs(crew_future_result(last), stdout);
        if (corrupt)
            fprintf(stderr, "pipeline: the corrupt text went through\n");
        else
            status = EXIT_SUCCESS;
    } else {
        const crew_error *error = crew_future_error(last);

        printf("pipeline failed: %s (%s)\n", crew_error_message(error),
               crew_strerror(crew_error_code(error)));
        if (corrupt && failed_as_designed(stages, 5))
            status = EXIT_SUCCESS;
        else
            fprintf(stderr, "pipeline: not the failure expected\n");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("pipeline: standard output");
        status = EXIT_FAILURE;
    }

out_release:
    for (size_t i = 0; i < 5; i++)
        crew_future_release(stages[i]);
    /* Drains: the stages queued before a failure to build the rest still
     * read `corrupt`. */
    crew_pool_destroy(pool);
    return status;
}
