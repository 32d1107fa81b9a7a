/* fuzz_config: libFuzzer target for the two YAML parsers an operator feeds: the agent's config
 * and the rollout file (the same bytes go to both). Every input must end in a loaded file or an
 * error naming file, line and key; nothing may crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_file.h"
#include "rollout_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!*path)
        fuzz_path(path, sizeof(path), "config", ".yml");
    if (fuzz_to_file(path, data, size) < 0)
        return 0;
    baton_err_t err = {0};
    agent_config_t *c = NULL;
    if (agent_config_load(path, &c, &err) == 0)
        agent_config_destroy(&c);
    rollout_file_t *rf = NULL;
    baton_err_clear(&err);
    if (rollout_file_load(path, &rf, &err) == 0)
        rollout_file_destroy(&rf);
    return 0;
}
