/* fuzz_file: the fuzz targets that read files (YAML, a journal, a state file) get their input
 * written to a file of their own, in /tmp, named once per process. */
#ifndef BATON_FUZZ_FILE_H
#define BATON_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* Writes the input to `path` (a buffer of `len` bytes, filled from `fmt` and the pid on the
 * first call); 0, or -1 when the file cannot be written (the input is then skipped). */
static inline int fuzz_to_file(char *path, size_t len, const char *fmt, const uint8_t *data,
                               size_t size)
{
    if (!*path)
        snprintf(path, len, fmt, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fwrite(data, 1, size, f);
    return fclose(f) == 0 ? 0 : -1;
}

#endif
