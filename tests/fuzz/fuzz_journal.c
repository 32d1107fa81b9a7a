/* fuzz_journal: libFuzzer target for the coordinator's journal reader, the file a killed or
 * crashed coordinator left (a torn last line, a full disk, a hostile edit). Every input must
 * end in a record or an error; nothing may crash, leak or hang. The same bytes are replayed
 * line by line too, as `baton resume` and `baton list` do. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "journal.h"

#define ID "r20261202T000000-f00d00"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[256], path[320];
    static journal_store_t *store;
    baton_err_t err = {0};
    if (!store) {
        fuzz_path(dir, sizeof(dir), "journal", "");
        snprintf(path, sizeof(path), "%s/rollouts", dir);
        mkdir(dir, 0700);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/rollouts/" ID ".jsonl", dir);
        if (journal_store_new(dir, NULL, &store, &err) < 0)
            abort();
    }
    if (fuzz_to_file(path, data, size) < 0)
        return 0;
    journal_record_t rec;
    memset(&rec, 0, sizeof(rec));
    if (journal_read(store, ID, &rec, &err) == 0)
        journal_record_clear(&rec);
    /* Line by line on one record, each line NUL-terminated as the reader hands it over. */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    memset(&rec, 0, sizeof(rec));
    rec.exit = -1;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        journal_replay_line(&rec, line);
    journal_record_clear(&rec);
    free(copy);
    return 0;
}
