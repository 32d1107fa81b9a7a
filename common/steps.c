/* steps: see steps.h. */
#include "steps.h"

#include <string.h>

bool step_settled(const char *step)
{
    static const char *const settled[] = {"", "preflight", "committed", "rolled_back"};
    for (size_t i = 0; i < sizeof(settled) / sizeof(settled[0]); i++)
        if (!strcmp(step, settled[i]))
            return true;
    return false;
}
