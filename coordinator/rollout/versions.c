/* versions: see versions.h. */
#include "versions.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "semver.h"

static version_move_t refused(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static version_move_t refused(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && len)
        vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return MOVE_REFUSED;
}

version_move_t version_move(const version_facts_t *f, const char *target, char *why, size_t len)
{
    semver_t t, cur, high;
    if (why && len)
        why[0] = '\0';
    if (semver_parse(target, &t, NULL) < 0 || semver_parse(f->current, &cur, NULL) < 0)
        return strcmp(target, f->current) ? MOVE_UP : MOVE_SAME;
    int c = semver_compare(&t, &cur);
    if (c == 0)
        return MOVE_SAME;
    const release_t *rel = f->catalog ? catalog_find(f->catalog, &t) : NULL;
    if (c > 0) {
        if (rel && rel->has_min_from && semver_compare(&cur, &rel->min_from) < 0) {
            char min[SEMVER_MAX_LEN * 2];
            semver_format(&rel->min_from, min, sizeof(min));
            return refused(why, len,
                           "%s needs at least %s first (the catalog's min_upgrade_from); it "
                           "runs %s",
                           target, min, f->current);
        }
        return MOVE_UP;
    }
    /* Down. */
    if (f->restore_dump)
        return MOVE_DOWN; /* the agent checks the dump was taken at that very version */
    bool ran = false;
    for (size_t i = 0; i < f->n_ran && !ran; i++)
        ran = version_same(f->ran[i], target);
    if (!ran)
        return refused(why, len,
                       "no history of %s on this node (it runs %s): a downgrade goes only to "
                       "a version whose migrations it recorded",
                       target, f->current);
    const release_t *m = f->catalog ? catalog_maintenance_between(f->catalog, &t, &cur) : NULL;
    if (m)
        return refused(why, len,
                       "%s -> %s crosses %s, which requires maintenance: its schema change "
                       "cannot be rolled back in place (--restore-dump a dump taken at %s)",
                       f->current, target, m->version, target);
    if (!f->highest || !*f->highest || semver_parse(f->highest, &high, NULL) < 0 ||
        semver_compare(&high, &cur) < 0)
        high = cur;
    if (t.major == cur.major && t.minor == cur.minor)
        return MOVE_DOWN; /* a patch down within the minor */
    char h[SEMVER_MAX_LEN * 2];
    semver_format(&high, h, sizeof(h));
    if (t.major == high.major && t.minor + 1 == high.minor) {
        if (!f->allow_downgrade)
            return refused(why, len,
                           "%s -> %s is a minor version down: it runs the newer binary's "
                           "migrate down first; say --allow-downgrade",
                           f->current, target);
        return MOVE_DOWN;
    }
    return refused(why, len,
                   "%s is more than one minor version below %s, the highest version ever "
                   "deployed here: refused (--restore-dump a dump taken at %s)",
                   target, h, target);
}
