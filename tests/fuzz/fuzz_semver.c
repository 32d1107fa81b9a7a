/* fuzz_semver: libFuzzer target for versions and version ranges (rollout files, catalogs, what
 * a binary prints). The input is split at its first newline into a version and a range; each
 * must parse or be refused, and a parsed pair must compare and match without crashing, with
 * compare antisymmetric and a version equal to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "semver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *range = strchr(text, '\n');
    if (range)
        *range++ = '\0';
    else
        range = text;
    baton_err_t err = {0};
    semver_t v, w;
    semver_range_t r;
    bool have_v = semver_parse(text, &v, &err) == 0;
    bool have_w = semver_parse(range, &w, &err) == 0;
    bool have_r = semver_range_parse(range, &r, &err) == 0;
    if (have_v) {
        char buf[512];
        semver_format(&v, buf, sizeof(buf));
        if (semver_compare(&v, &v) != 0)
            abort();
    }
    if (have_v && have_w) {
        int a = semver_compare(&v, &w), b = semver_compare(&w, &v);
        if ((a > 0) != (b < 0) || (a == 0) != (b == 0))
            abort();
    }
    if (have_v && have_r)
        (void)semver_range_match(&r, &v);
    if (have_r)
        (void)semver_range_exact(&r);
    (void)semver_is_alias(text);
    free(text);
    return 0;
}
