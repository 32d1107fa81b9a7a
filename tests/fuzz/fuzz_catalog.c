/* fuzz_catalog: libFuzzer target for the release catalog (releases.yml), the YAML an operator
 * keeps beside rollout files. Every input must load or fail naming file, line and key; nothing
 * may crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "catalog.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!*path)
        fuzz_path(path, sizeof(path), "catalog", ".yml");
    if (fuzz_to_file(path, data, size) < 0)
        return 0;
    baton_err_t err = {0};
    catalog_t *c = NULL;
    if (catalog_load(path, &c, &err) == 0)
        catalog_destroy(&c);
    return 0;
}
