/* The fork generation; see fork.h. */
#include "base/fork.h"

atomic_ulong crew__forks;
