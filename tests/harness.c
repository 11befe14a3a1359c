/*
 * The CREW_STRESS factor, scaled counts and the clock (harness.h). The
 * factor is read from the environment at each call: the tests call it
 * once a test, never in a loop.
 */
#include "harness.h"

#include <stdlib.h>
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

uint64_t
scn_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
