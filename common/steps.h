/* steps: the names of a rollout's last step on a node, as the agent records them and the
 * coordinator reads them in Hello. One list, so that both sides agree on what is finished. */
#ifndef BATON_STEPS_H
#define BATON_STEPS_H

#include <stdbool.h>

/* True when a service whose last recorded step is `step` has nothing half-done: no rollout yet
 * (""), only a pre-flight (which changes nothing live), committed, or rolled back. */
bool step_settled(const char *step);

#endif
