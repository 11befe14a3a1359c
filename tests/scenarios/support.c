/*
 * Helpers every scenario file uses: the scale factor, the verdict, gates,
 * jitter, the clock, and the checks of a when_all outcome against its
 * inputs.
 *
 * The verdict is one atomic pointer that goes from NULL to the first
 * failure by compare-and-swap, so a task, a callback and the scenario's own
 * thread may all record into it. A gate's count only grows, under its lock.
 */
#include "scenarios.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double
crew_scenario_stress(void)
{
    const char *text = getenv("CREW_STRESS");
    char *end;
    double factor;

    if (text == NULL || *text == '\0')
        return 1.0;
    factor = strtod(text, &end);
    if (*end != '\0' || !(factor > 0.0) || factor > 1e6)
        return 1.0;
    return factor;
}

size_t
crew_scenario_scale(size_t normal, size_t tsan)
{
    double n = (double)(CREW_SCENARIO_TSAN ? tsan : normal);

    n *= crew_scenario_stress();
    return n < 1.0 ? 1 : (size_t)n;
}

bool
scn_fail(struct scn_verdict *verdict, const char *why)
{
    const char *expected = NULL;

    atomic_compare_exchange_strong(&verdict->why, &expected, why);
    return false;
}

bool
scn_failed(struct scn_verdict *verdict)
{
    return atomic_load(&verdict->why) != NULL;
}

const char *
scn_result(struct scn_verdict *verdict)
{
    return atomic_load(&verdict->why);
}

void
scn_gate_init(struct scn_gate *gate)
{
    pthread_mutex_init(&gate->lock, NULL);
    pthread_cond_init(&gate->cond, NULL);
    gate->count = 0;
}

void
scn_gate_destroy(struct scn_gate *gate)
{
    pthread_cond_destroy(&gate->cond);
    pthread_mutex_destroy(&gate->lock);
}

void
scn_gate_add(struct scn_gate *gate, size_t n)
{
    pthread_mutex_lock(&gate->lock);
    gate->count += n;
    pthread_cond_broadcast(&gate->cond);
    pthread_mutex_unlock(&gate->lock);
}

void
scn_gate_wait(struct scn_gate *gate, size_t target)
{
    pthread_mutex_lock(&gate->lock);
    while (gate->count < target)
        pthread_cond_wait(&gate->cond, &gate->lock);
    pthread_mutex_unlock(&gate->lock);
}

size_t
scn_gate_count(struct scn_gate *gate)
{
    size_t count;

    pthread_mutex_lock(&gate->lock);
    count = gate->count;
    pthread_mutex_unlock(&gate->lock);
    return count;
}

void
scn_spin(unsigned n)
{
    volatile unsigned sink = 0;

    for (unsigned i = 0; i < n; i++)
        sink = sink + i;
}

uint64_t
scn_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool
scn_wait_agrees(const crew_future *future, int err)
{
    switch (crew_future_state(future)) {
    case CREW_SUCCEEDED:
        return err == 0;
    case CREW_CANCELLED:
        return err == ECANCELED;
    case CREW_FAILED:
        return err != 0 && err == crew_error_code(crew_future_error(future));
    default:
        return false;
    }
}

/* Same code, message and inner count: the same failure, maybe shared. */
static bool
same_error(const crew_error *a, const crew_error *b)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL)
        return false;
    return crew_error_code(a) == crew_error_code(b) &&
           strcmp(crew_error_message(a), crew_error_message(b)) == 0 &&
           crew_error_count(a) == crew_error_count(b);
}

/*
 * Counts the failed and the cancelled inputs; NULL, or a complaint when
 * one has not resolved.
 */
static const char *
tally(crew_future *const *inputs, size_t n, size_t *failed, bool *cancelled)
{
    *failed = 0;
    *cancelled = false;
    for (size_t i = 0; i < n; i++) {
        crew_state state = crew_future_state(inputs[i]);

        if (!scn_resolved(state))
            return "a when_all resolved while one of its inputs had not";
        if (state == CREW_FAILED)
            (*failed)++;
        else if (state == CREW_CANCELLED)
            *cancelled = true;
    }
    return NULL;
}

static const char *
check_aggregate(const crew_error *error, crew_future *const *inputs, size_t n,
                size_t failed)
{
    size_t k = 0;
    size_t position = SIZE_MAX;

    if (error == NULL)
        return "a failed when_all has no error";
    if (crew_error_code(error) != CREW_EAGGREGATE)
        return "a when_all error's code is not CREW_EAGGREGATE";
    if (crew_error_count(error) != failed)
        return "a when_all aggregate has not one entry per failed position";
    for (size_t i = 0; i < n; i++) {
        const crew_error *inner;

        if (crew_future_state(inputs[i]) != CREW_FAILED)
            continue;
        inner = crew_error_inner(error, k, &position);
        if (inner == NULL)
            return "a when_all aggregate lacks an inner error";
        if (position != i)
            return "a when_all inner error has the wrong position";
        if (!same_error(inner, crew_future_error(inputs[i])))
            return "a when_all inner error differs from its input's error";
        k++;
    }
    if (crew_error_inner(error, k, &position) != NULL)
        return "a when_all aggregate has an entry past its count";
    return NULL;
}

const char *
scn_check_when_all(const crew_future *all, crew_future *const *inputs, size_t n)
{
    crew_state state = crew_future_state(all);
    size_t failed;
    bool cancelled;
    const char *why = tally(inputs, n, &failed, &cancelled);

    if (why != NULL)
        return why;
    if (failed > 0) {
        if (state != CREW_FAILED)
            return "a when_all with a failed input did not fail";
        if (crew_future_result(all) != NULL)
            return "a failed when_all has a result";
        return check_aggregate(crew_future_error(all), inputs, n, failed);
    }
    if (cancelled) {
        if (state != CREW_CANCELLED)
            return "a when_all with a cancelled input and no failure "
                   "was not cancelled";
        if (crew_error_code(crew_future_error(all)) != ECANCELED)
            return "a cancelled when_all's error code is not ECANCELED";
        return NULL;
    }
    if (state != CREW_SUCCEEDED)
        return "a when_all whose inputs all succeeded did not succeed";
    if (crew_future_result(all) != NULL || crew_future_error(all) != NULL)
        return "a succeeded when_all has a result or an error";
    return NULL;
}

const char *
scn_check_wait_all(int err, const crew_error *error, crew_future *const *inputs,
                   size_t n)
{
    size_t failed;
    bool cancelled;
    const char *why = tally(inputs, n, &failed, &cancelled);

    if (why != NULL)
        return "crew_wait_all returned before every input resolved";
    if (failed > 0) {
        if (err != CREW_EAGGREGATE)
            return "crew_wait_all with a failed input did not return "
                   "CREW_EAGGREGATE";
        return check_aggregate(error, inputs, n, failed);
    }
    if (cancelled) {
        if (err != ECANCELED)
            return "crew_wait_all with a cancelled input and no failure "
                   "did not return ECANCELED";
        if (error != NULL && crew_error_code(error) != ECANCELED)
            return "crew_wait_all's error for a cancellation is not "
                   "ECANCELED";
        return NULL;
    }
    if (err != 0 || error != NULL)
        return "crew_wait_all over succeeded inputs reported an error";
    return NULL;
}
