/*
 * trace_check: read a trace that crew_trace_stop() wrote, with a real
 * JSON parser (cJSON), and check its shape.
 *
 *     trace_check TRACE NAME MIN
 *
 * The file must be one JSON object whose "traceEvents" array holds
 * metadata events ("ph":"M") naming each track, and complete events
 * ("ph":"X") each with a name, a thread id that some thread_name event
 * names, "ts" and "dur" numbers (dur not negative), and an "outcome"
 * among its arguments; at least MIN of the complete events must be named
 * NAME. Prints the counts. Exit status: 0 when all holds, 1 when not,
 * 2 for bad usage.
 */
#include <cjson/cJSON.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACKS 256

static char *
slurp(const char *path)
{
    FILE *in = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (in == NULL || fseek(in, 0, SEEK_END) != 0 || (size = ftell(in)) < 0 ||
        fseek(in, 0, SEEK_SET) != 0 ||
        (text = malloc((size_t)size + 1)) == NULL ||
        fread(text, 1, (size_t)size, in) != (size_t)size) {
        perror(path);
        free(text);
        text = NULL;
    } else {
        text[size] = '\0';
    }
    if (in != NULL)
        fclose(in);
    return text;
}

static bool
number(const cJSON *object, const char *key, double *value)
{
    const cJSON *item = cJSON_GetObjectItem(object, key);

    if (!cJSON_IsNumber(item))
        return false;
    *value = item->valuedouble;
    return true;
}

int
main(int argc, char **argv)
{
    int named_tids[TRACKS], tracks = 0;
    long events = 0, named = 0;
    const cJSON *event;
    cJSON *json;
    char *text;
    long min;

    if (argc != 4 || (min = strtol(argv[3], NULL, 10)) < 0) {
        fprintf(stderr, "usage: trace_check TRACE NAME MIN\n");
        return 2;
    }
    text = slurp(argv[1]);
    if (text == NULL)
        return 1;
    json = cJSON_Parse(text);
    free(text);
    if (json == NULL ||
        !cJSON_IsArray(cJSON_GetObjectItem(json, "traceEvents"))) {
        fprintf(stderr, "%s: not a trace (JSON with traceEvents)\n", argv[1]);
        cJSON_Delete(json);
        return 1;
    }
    cJSON_ArrayForEach(event, cJSON_GetObjectItem(json, "traceEvents"))
    {
        const cJSON *name = cJSON_GetObjectItem(event, "name");
        const cJSON *ph = cJSON_GetObjectItem(event, "ph");
        double tid;

        if (!cJSON_IsString(name) || !cJSON_IsString(ph) ||
            !number(event, "tid", &tid)) {
            fprintf(stderr, "%s: an event without name, ph or tid\n", argv[1]);
            goto fail;
        }
        if (strcmp(ph->valuestring, "M") == 0 &&
            strcmp(name->valuestring, "thread_name") == 0 && tracks < TRACKS)
            named_tids[tracks++] = (int)tid;
    }
    cJSON_ArrayForEach(event, cJSON_GetObjectItem(json, "traceEvents"))
    {
        const cJSON *args = cJSON_GetObjectItem(event, "args");
        double ts, dur, tid;
        bool track = false;

        if (strcmp(cJSON_GetObjectItem(event, "ph")->valuestring, "X") != 0)
            continue;
        events++;
        number(event, "tid", &tid);
        for (int i = 0; i < tracks; i++)
            track = track || named_tids[i] == (int)tid;
        if (!track || !number(event, "ts", &ts) ||
            !number(event, "dur", &dur) || dur < 0 ||
            !cJSON_IsString(cJSON_GetObjectItem(args, "outcome"))) {
            fprintf(stderr, "%s: event %ld is not a whole task\n", argv[1],
                    events);
            goto fail;
        }
        named += strcmp(cJSON_GetObjectItem(event, "name")->valuestring,
                        argv[2]) == 0;
    }
    printf("%s: %d tracks, %ld tasks, %ld named %s\n", argv[1], tracks, events,
           named, argv[2]);
    cJSON_Delete(json);
    return named >= min ? 0 : 1;

fail:
    cJSON_Delete(json);
    return 1;
}
