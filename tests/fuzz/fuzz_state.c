/* fuzz_state: libFuzzer target for the agent's state file loader: the record every command of a
 * service reads first, found after a crash, a full disk or a hand edit. Every input must load
 * within the limits or be refused with a message naming the file and field; nothing may crash,
 * leak or hang. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[256], path[320];
    if (!*dir) {
        fuzz_path(dir, sizeof(dir), "state", "");
        mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/gamesrv.json", dir);
    }
    if (fuzz_to_file(path, data, size) < 0)
        return 0;
    baton_err_t err = {0};
    svc_state_t *st = NULL;
    if (svc_state_load(dir, "gamesrv", &st, &err) == 0) {
        /* What loaded must save again (the same limits both ways). */
        baton_err_t serr = {0};
        if (svc_state_save(dir, st, &serr) < 0 && serr.code != -EFBIG) {
            fprintf(stderr, "fuzz_state: loaded, but the save failed: %s\n", serr.msg);
            abort();
        }
        svc_state_destroy(&st);
    }
    return 0;
}
