/* fuzz_file: the fuzz targets that read files (YAML, a journal, a state file) get their input
 * written to a file of their own, named once per process, under $TMPDIR (else /tmp). `make fuzz`
 * points TMPDIR at /dev/shm: the state file's save fsyncs, which on a disk costs five times the
 * parsing it is there to exercise. */
#ifndef BATON_FUZZ_FILE_H
#define BATON_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Fills `path` with "$TMPDIR/baton-fuzz-NAME-PID" followed by `suffix`. */
static inline void fuzz_path(char *path, size_t len, const char *name, const char *suffix)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, len, "%s/baton-fuzz-%s-%d%s", tmp && *tmp ? tmp : "/tmp", name, (int)getpid(),
             suffix);
}

/* Writes the input to `path`; 0, or -1 when the file cannot be written (the input is then
 * skipped). */
static inline int fuzz_to_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fwrite(data, 1, size, f);
    return fclose(f) == 0 ? 0 : -1;
}

#endif
