/*
 * The Criterion front end of the concurrency scenarios (scenarios/): one
 * test per scenario, for the normal and the ASan builds. Under TSan,
 * where Criterion cannot start, crew_driver runs the same functions.
 *
 * The suite's timeout is generous: the stress scenarios run for tens of
 * seconds under ASan on two cores. A hang still becomes a named failure.
 */
#include "common.h"
#include "scenarios.h"

TestSuite(scenarios, .timeout = 300);

#define SCENARIO_TEST(name)                                \
    CREW_TEST(scenarios, name)                             \
    {                                                      \
        const char *why = crew_scenario_##name();          \
                                                           \
        cr_assert_null(why, "%s", why != NULL ? why : ""); \
    }

CREW_SCENARIO_LIST(SCENARIO_TEST)
