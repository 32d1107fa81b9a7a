/* version: see version.h. */
#include "version.h"

#include <errno.h>
#include <stdint.h>

#include "semver.h"

int version_skew_check(const char *theirs, const char *peer, const char *me, baton_err_t *err)
{
    semver_t a, b;
    baton_err_t perr = {0};
    if (!theirs || !*theirs)
        return baton_err_set(err, -EPROTONOSUPPORT,
                             "%s does not say its version (older than 0.3.0); this %s is %s: "
                             "outside the supported window (the same major version, at most one "
                             "minor apart): upgrade it",
                             peer, me, BATON_VERSION);
    if (semver_parse(BATON_VERSION, &a, &perr) < 0 || semver_parse(theirs, &b, &perr) < 0)
        return baton_err_set(err, -EPROTONOSUPPORT, "%s runs %s, not a version this %s (%s) reads",
                             peer, theirs, me, BATON_VERSION);
    uint64_t gap = a.minor > b.minor ? a.minor - b.minor : b.minor - a.minor;
    if (a.major != b.major || gap > 1)
        return baton_err_set(err, -EPROTONOSUPPORT,
                             "%s runs %s, this %s is %s: outside the supported window (the same "
                             "major version, at most one minor apart): upgrade the older one",
                             peer, theirs, me, BATON_VERSION);
    return 0;
}
