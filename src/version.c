/* The library's version, from the numbers in crew.h. */
#include "crew.h"

#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

const char *
crew_version(void)
{
    return TO_STRING(CREW_VERSION_MAJOR) "." TO_STRING(
        CREW_VERSION_MINOR) "." TO_STRING(CREW_VERSION_PATCH);
}
