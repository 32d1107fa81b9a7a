/* semver: Semantic Versioning 2.0.0 versions, their order, and the ranges a rollout file may ask
 * for (resolved against a release catalog to the highest match).
 *
 * Versions: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], exactly as semver.org says: no leading
 * zeros in numeric parts, identifiers of [0-9A-Za-z-], none empty. No "v" prefix, no spaces.
 * Order: numbers, then a pre-release sorts before its release, identifiers compared left to
 * right (numeric ones as numbers and below alphanumeric ones); build metadata is ignored.
 *
 * Ranges, as operators write them in npm, Cargo or Composer:
 *   1.7.14  =1.7.14          exactly that version
 *   ~1.2.3  ~1.2  ~1         >=1.2.3 <1.3.0, >=1.2.0 <1.3.0, >=1.0.0 <2.0.0
 *   ^1.2.3  ^0.2.3  ^0.0.3   >=1.2.3 <2.0.0, >=0.2.3 <0.3.0, >=0.0.3 <0.0.4
 *   1.2.*  1.2.x  1.x        >=1.2.0 <1.3.0, >=1.0.0 <2.0.0
 *   >=1.2.0 <1.4.0           comparators (>=, >, <=, <, =) separated by spaces, all must hold
 * A pre-release matches a range only when one of the range's comparators names a pre-release
 * of the same MAJOR.MINOR.PATCH (npm's rule): `^1.2.0` never picks 1.3.0-rc.1 for production,
 * `>=1.3.0-rc.1 <1.3.0` does. Alias words (latest, stable, *, "") are refused with the reason:
 * a rollout pins what it installs. */
#ifndef BATON_SEMVER_H
#define BATON_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SEMVER_MAX_LEN 128  /* a version or one comparator, in bytes */
#define SEMVER_RANGE_MAX 8  /* comparators in one range */
#define SEMVER_RANGE_LEN 512

typedef struct semver {
    uint64_t major, minor, patch;
    char pre[SEMVER_MAX_LEN];   /* pre-release identifiers without the '-', "" for a release */
    char build[SEMVER_MAX_LEN]; /* build metadata without the '+', "" when none */
} semver_t;

typedef enum semver_op { SV_EQ, SV_LT, SV_LE, SV_GT, SV_GE } semver_op_t;

typedef struct semver_cmp {
    semver_op_t op;
    semver_t v;
} semver_comparator_t;

typedef struct semver_range {
    size_t n;                                 /* comparators, all must hold */
    semver_comparator_t c[SEMVER_RANGE_MAX * 2]; /* ~ ^ and x expand to two each */
} semver_range_t;

/* 0, or -EINVAL with err saying what is wrong with `text` (named as `what`). */
int semver_parse(const char *text, semver_t *ret, baton_err_t *err);
/* <0, 0, >0 by precedence (build metadata ignored). */
int semver_compare(const semver_t *a, const semver_t *b);
/* "1.2.3-rc.1+b5" */
void semver_format(const semver_t *v, char *buf, size_t len);

int semver_range_parse(const char *text, semver_range_t *ret, baton_err_t *err);
bool semver_range_match(const semver_range_t *r, const semver_t *v);
/* Version identity, as SemVer means it: the same version when both parse and compare equal,
 * build metadata ignored ("3.15.0+1783fad1" is 3.15.0, which a rollout file, a history or a
 * catalog may write without the "+…"); versions that are no semver (a service that prints
 * "2024.1") are the same only as the same text. */
bool version_same(const char *a, const char *b);
/* True when `reported` (the first word a binary's version command printed: "v1.1.0",
 * "3.21.0+7d6b5c") is `version`: the same as above after a leading "v"; for versions that are
 * no semver, `version` followed by the end, '+', '-' or a space. */
bool version_matches(const char *reported, const char *version);
/* True for words that name no version but float (latest, stable, *, x, ""). */
bool semver_is_alias(const char *text);
/* True when the range names one version exactly (1.2.3 or =1.2.3). */
bool semver_range_exact(const semver_range_t *r);

#endif
