/*
 * Every scenario, in the order of CREW_SCENARIO_LIST: the driver runs them
 * from this table, by name or all of them.
 */
#include "scenarios.h"

#define CREW_SCENARIO_ENTRY(name) {#name, crew_scenario_##name},

const struct crew_scenario crew_scenarios[] = {
    CREW_SCENARIO_LIST(CREW_SCENARIO_ENTRY)};

const size_t crew_scenario_count =
    sizeof(crew_scenarios) / sizeof(crew_scenarios[0]);
