/* The model tests' shared parts: see model_kit.h. */
#include "model_kit.h"

#include "harness.h"
#include "watchdog.h"

#include <stdatomic.h>
#include <stdio.h>

#define NS_PER_S 1000000000ull

static _Atomic(const char *) first_why; /* the first failure, or NULL */
static atomic_int first_line;

static const char *phase_name;
static uint64_t phase_t0;
static size_t phases_passed, phases_failed;

bool
model_fail(const char *why, int line)
{
    const char *expected = NULL;

    if (atomic_compare_exchange_strong(&first_why, &expected, why))
        atomic_store(&first_line, line);
    return false;
}

bool
model_failed(void)
{
    return atomic_load_explicit(&first_why, memory_order_relaxed) != NULL;
}

size_t
model_burst(uint64_t *rng, unsigned most)
{
    size_t r = scn_below(rng, 100);

    if (r < 70)
        return 1 + scn_below(rng, 4);
    if (r < 97)
        return 5 + scn_below(rng, 60);
    return 65 + scn_below(rng, most);
}

bool
model_phase_start(const char *name)
{
    if (model_failed())
        return false;
    watchdog_watch(name);
    phase_name = name;
    phase_t0 = scn_now_ns();
    return true;
}

void
model_phase_end(size_t done, const char *unit)
{
    double seconds = (double)(scn_now_ns() - phase_t0) / (double)NS_PER_S;

    if (model_failed()) {
        phases_failed++;
        printf("FAIL %s: %s (line %d; %.2f s)\n", phase_name,
               atomic_load(&first_why), atomic_load(&first_line), seconds);
    } else {
        phases_passed++;
        printf("PASS %s (%.2f s, %zu %s)\n", phase_name, seconds, done, unit);
    }
}

void
model_print_failure(const char *program, size_t phases)
{
    printf("%s: FAILED: %s (line %d); %zu phases passed, %zu failed, %zu "
           "not run\n",
           program, atomic_load(&first_why), atomic_load(&first_line),
           phases_passed, phases_failed,
           phases - phases_passed - phases_failed);
}

size_t
model_phases_passed(void)
{
    return phases_passed;
}
