/* semver: see semver.h. */
#include "semver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric part: digits, no leading zero, no overflow. */
static int parse_number(const char **p, uint64_t *ret, const char *text, baton_err_t *err)
{
    const char *s = *p;
    if (!is_digit(*s))
        return baton_err_set(err, -EINVAL, "'%s': expected a number at '%s'", text, s);
    if (*s == '0' && is_digit(s[1]))
        return baton_err_set(err, -EINVAL, "'%s': a numeric part has a leading zero", text);
    uint64_t v = 0;
    for (; is_digit(*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return baton_err_set(err, -EINVAL, "'%s': a numeric part is too large", text);
        v = v * 10 + d;
    }
    *ret = v;
    *p = s;
    return 0;
}

/* Dot-separated identifiers up to the end or `stop` ('+' after a pre-release), into out. */
static int parse_idents(const char **p, char stop, bool numeric_strict, char *out, size_t len,
                        const char *text, const char *what, baton_err_t *err)
{
    const char *s = *p, *start = s;
    for (;;) {
        const char *id = s;
        bool all_digits = true;
        for (; is_ident_char(*s); s++)
            all_digits &= is_digit(*s);
        if (s == id && *s && *s != '.' && *s != stop)
            return baton_err_set(err, -EINVAL, "'%s': a character not allowed in a %s", text,
                                 what);
        if (s == id)
            return baton_err_set(err, -EINVAL, "'%s': an empty %s identifier", text, what);
        if (numeric_strict && all_digits && *id == '0' && s - id > 1)
            return baton_err_set(err, -EINVAL,
                                 "'%s': numeric %s identifier '%.*s' has a leading zero", text,
                                 what, (int)(s - id), id);
        if (*s != '.')
            break;
        s++;
    }
    if (*s && *s != stop)
        return baton_err_set(err, -EINVAL, "'%s': '%c' is not allowed in a %s", text, *s, what);
    if ((size_t)(s - start) >= len)
        return baton_err_set(err, -EINVAL, "'%s': %s too long", text, what);
    memcpy(out, start, (size_t)(s - start));
    out[s - start] = '\0';
    *p = s;
    return 0;
}

/* X[.Y[.Z]][-PRE][+BUILD] where a missing or x, X or * part ends the numbers: *ret_parts says how
 * many numbers were given (3 for a full version). Pre-release and build only after three. */
static int parse_partial(const char *text, semver_t *v, int *ret_parts, baton_err_t *err)
{
    memset(v, 0, sizeof(*v));
    if (strlen(text) >= SEMVER_MAX_LEN)
        return baton_err_set(err, -EINVAL, "'%.32s…': longer than %d bytes", text,
                             SEMVER_MAX_LEN - 1);
    const char *s = text;
    uint64_t *nums[] = {&v->major, &v->minor, &v->patch};
    int parts = 0;
    for (int i = 0; i < 3; i++) {
        if (*s == 'x' || *s == 'X' || *s == '*') {
            s++;
            if (*s == '.' && (s[1] == 'x' || s[1] == 'X' || s[1] == '*'))
                s += 2; /* 1.x.x */
            if (*s == '.' && (s[1] == 'x' || s[1] == 'X' || s[1] == '*'))
                s += 2;
            if (*s)
                return baton_err_set(err, -EINVAL, "'%s': nothing may follow a wildcard", text);
            break;
        }
        int r = parse_number(&s, nums[i], text, err);
        if (r < 0)
            return r;
        parts++;
        if (i < 2) {
            if (!*s)
                break;
            if (*s != '.')
                return baton_err_set(err, -EINVAL, "'%s': expected '.' after %llu", text,
                                     (unsigned long long)*nums[i]);
            s++;
        }
    }
    if (parts == 3 && *s == '-') {
        s++;
        int r = parse_idents(&s, '+', true, v->pre, sizeof(v->pre), text, "pre-release", err);
        if (r < 0)
            return r;
    }
    if (parts == 3 && *s == '+') {
        s++;
        int r = parse_idents(&s, '\0', false, v->build, sizeof(v->build), text, "build", err);
        if (r < 0)
            return r;
    }
    if (*s)
        return baton_err_set(err, -EINVAL, "'%s': unexpected '%s'", text, s);
    *ret_parts = parts;
    return 0;
}

int semver_parse(const char *text, semver_t *ret, baton_err_t *err)
{
    semver_t v;
    int parts = 0;
    if (!text || !*text)
        return baton_err_set(err, -EINVAL, "an empty version");
    if (*text == 'v' || *text == 'V')
        return baton_err_set(err, -EINVAL, "'%s': write the version without a 'v'", text);
    int r = parse_partial(text, &v, &parts, err);
    if (r < 0)
        return r;
    if (parts != 3)
        return baton_err_set(err, -EINVAL, "'%s': a version is MAJOR.MINOR.PATCH", text);
    *ret = v;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int compare_pre(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b ? 0 : (!*a ? 1 : -1); /* a release sorts after its pre-releases */
    while (*a && *b) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = strspn(a, "0123456789") == la, nb = strspn(b, "0123456789") == lb;
        int c;
        if (na && nb) /* no leading zeros: the longer number is the larger */
            c = la != lb ? (la < lb ? -1 : 1) : strncmp(a, b, la);
        else if (na != nb)
            c = na ? -1 : 1; /* numeric identifiers sort below alphanumeric ones */
        else {
            c = strncmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return *a ? 1 : *b ? -1 : 0; /* more identifiers sort higher */
}

int semver_compare(const semver_t *a, const semver_t *b)
{
    int c = cmp_u64(a->major, b->major);
    if (!c)
        c = cmp_u64(a->minor, b->minor);
    if (!c)
        c = cmp_u64(a->patch, b->patch);
    return c ? c : compare_pre(a->pre, b->pre);
}

void semver_format(const semver_t *v, char *buf, size_t len)
{
    snprintf(buf, len, "%llu.%llu.%llu%s%s%s%s", (unsigned long long)v->major,
             (unsigned long long)v->minor, (unsigned long long)v->patch, *v->pre ? "-" : "",
             v->pre, *v->build ? "+" : "", v->build);
}

bool version_same(const char *a, const char *b)
{
    semver_t va, vb;
    if (semver_parse(a, &va, NULL) == 0 && semver_parse(b, &vb, NULL) == 0)
        return semver_compare(&va, &vb) == 0;
    return !strcmp(a, b);
}

bool version_matches(const char *reported, const char *version)
{
    if (reported[0] == 'v' && reported[1] >= '0' && reported[1] <= '9')
        reported++;
    semver_t vr, vv;
    if (semver_parse(reported, &vr, NULL) == 0 && semver_parse(version, &vv, NULL) == 0)
        return semver_compare(&vr, &vv) == 0;
    size_t n = strlen(version);
    if (strncmp(reported, version, n))
        return false;
    char c = reported[n];
    return c == '\0' || c == '+' || c == '-' || c == ' ';
}

static int add(semver_range_t *r, semver_op_t op, const semver_t *v)
{
    if (r->n >= sizeof(r->c) / sizeof(r->c[0]))
        return -E2BIG;
    r->c[r->n].op = op;
    r->c[r->n].v = *v;
    r->c[r->n].v.build[0] = '\0';
    r->n++;
    return 0;
}

/* The version just above every X (parts 1) or X.Y (parts 2): the bound of a range. */
static int bump(semver_t *v, int parts, const char *text, baton_err_t *err)
{
    uint64_t *n = parts <= 1 ? &v->major : parts == 2 ? &v->minor : &v->patch;
    if (*n == UINT64_MAX)
        return baton_err_set(err, -EINVAL, "'%s': no version above it", text);
    (*n)++;
    if (parts <= 1)
        v->minor = 0;
    if (parts <= 2)
        v->patch = 0;
    v->pre[0] = '\0';
    return 0;
}

static int parse_token(const char *tok, semver_range_t *r, baton_err_t *err)
{
    const char *s = tok;
    char op[3] = "";
    if (!strncmp(s, ">=", 2) || !strncmp(s, "<=", 2))
        memcpy(op, s, 2), s += 2;
    else if (*s == '>' || *s == '<' || *s == '=' || *s == '~' || *s == '^')
        op[0] = *s++;
    if (*s == 'v' || *s == 'V')
        return baton_err_set(err, -EINVAL, "'%s': write the version without a 'v'", tok);
    semver_t v, hi;
    int parts = 0;
    int rr = parse_partial(s, &v, &parts, err);
    if (rr < 0)
        return rr;
    if (parts == 0)
        return baton_err_set(err, -EINVAL,
                             "'%s' matches every version: a rollout pins what it installs "
                             "(name a version or a bounded range)",
                             tok);
    bool wildcard = parts < 3;
    hi = v;
    int e = 0;
    if (!*op || !strcmp(op, "=")) {
        if (!wildcard)
            return add(r, SV_EQ, &v);
        if (*op)
            return baton_err_set(err, -EINVAL, "'%s': '=' needs a whole version", tok);
        if ((e = bump(&hi, parts, tok, err)) < 0)
            return e;
        if (add(r, SV_GE, &v) < 0 || add(r, SV_LT, &hi) < 0)
            goto big;
        return 0;
    }
    if (!strcmp(op, "~")) {
        if ((e = bump(&hi, parts >= 2 ? 2 : 1, tok, err)) < 0)
            return e;
    } else if (!strcmp(op, "^")) {
        /* The left-most non-zero part given is the one that may not change. */
        int keep = (v.major || parts == 1) ? 1 : (v.minor || parts == 2) ? 2 : 3;
        if ((e = bump(&hi, keep, tok, err)) < 0)
            return e;
    } else {
        semver_op_t o = !strcmp(op, ">=") ? SV_GE : !strcmp(op, ">") ? SV_GT
                      : !strcmp(op, "<=") ? SV_LE : SV_LT;
        if (wildcard) {
            /* >1.2 is >=1.3.0 and <=1.2 is <1.3.0; >=1.2 and <1.2 pad with zeros. */
            if (o == SV_GT || o == SV_LE) {
                if ((e = bump(&hi, parts, tok, err)) < 0)
                    return e;
                return add(r, o == SV_GT ? SV_GE : SV_LT, &hi) < 0 ? -E2BIG : 0;
            }
        }
        return add(r, o, &v) < 0 ? -E2BIG : 0;
    }
    if (add(r, SV_GE, &v) < 0 || add(r, SV_LT, &hi) < 0)
        goto big;
    return 0;
big:
    return baton_err_set(err, -E2BIG, "more than %d comparators", SEMVER_RANGE_MAX);
}

static const char *const aliases[] = {"latest", "stable", "current", "newest", "lts",
                                      "next",   "edge",   "head",    NULL};

bool semver_is_alias(const char *text)
{
    if (!text)
        return true;
    text += strspn(text, " \t");
    size_t len = strcspn(text, " \t");
    if (len == 0 || (len == 1 && strchr("*xX", *text)))
        return true;
    for (size_t i = 0; aliases[i]; i++)
        if (strlen(aliases[i]) == len && !strncasecmp(text, aliases[i], len))
            return true;
    return false;
}

int semver_range_parse(const char *text, semver_range_t *ret, baton_err_t *err)
{
    semver_range_t r = {0};
    if (!text)
        text = "";
    size_t len = strlen(text);
    if (len >= SEMVER_RANGE_LEN)
        return baton_err_set(err, -EINVAL, "version range longer than %d bytes",
                             SEMVER_RANGE_LEN - 1);
    char buf[SEMVER_RANGE_LEN];
    memcpy(buf, text, len + 1);
    char *save = NULL, *tok;
    size_t n = 0;
    for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        for (size_t i = 0; aliases[i]; i++)
            if (!strcasecmp(tok, aliases[i]))
                return baton_err_set(err, -EINVAL,
                                     "'%s' is an alias, not a version: pin versions in "
                                     "production (name one, or a range such as ~1.2.0)",
                                     tok);
        if (!strcmp(tok, "||"))
            return baton_err_set(err, -EINVAL,
                                 "'%s': alternatives (||) are not supported: name one range",
                                 text);
        if (++n > SEMVER_RANGE_MAX)
            return baton_err_set(err, -E2BIG, "'%s': more than %d comparators", text,
                                 SEMVER_RANGE_MAX);
        int e = parse_token(tok, &r, err);
        if (e < 0)
            return e;
    }
    if (n == 0)
        return baton_err_set(err, -EINVAL,
                             "an empty version: a rollout pins what it installs (name a version "
                             "or a bounded range)");
    if (n > 1)
        for (size_t i = 0; i < r.n; i++)
            if (r.c[i].op == SV_EQ)
                return baton_err_set(err, -EINVAL,
                                     "'%s': an exact version cannot be combined with other "
                                     "comparators",
                                     text);
    *ret = r;
    return 0;
}

static bool holds(const semver_comparator_t *c, const semver_t *v)
{
    int k = semver_compare(v, &c->v);
    switch (c->op) {
    case SV_EQ:
        return k == 0;
    case SV_LT:
        return k < 0;
    case SV_LE:
        return k <= 0;
    case SV_GT:
        return k > 0;
    case SV_GE:
        return k >= 0;
    }
    return false;
}

bool semver_range_match(const semver_range_t *r, const semver_t *v)
{
    if (!r->n)
        return false;
    for (size_t i = 0; i < r->n; i++)
        if (!holds(&r->c[i], v))
            return false;
    if (!*v->pre)
        return true;
    /* A pre-release only where the range asks for a pre-release of that very release. */
    for (size_t i = 0; i < r->n; i++) {
        const semver_t *c = &r->c[i].v;
        if (*c->pre && c->major == v->major && c->minor == v->minor && c->patch == v->patch)
            return true;
    }
    return false;
}

bool semver_range_exact(const semver_range_t *r)
{
    return r->n == 1 && r->c[0].op == SV_EQ;
}
