/* prom: see prom.h. */
#include "prom.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_post.h"

static const char *const cmp_text[] = {
    [PROM_LT] = "<",  [PROM_LE] = "<=", [PROM_GT] = ">",
    [PROM_GE] = ">=", [PROM_EQ] = "==", [PROM_NE] = "!=",
};

int prom_condition_parse(const char *text, prom_condition_t *ret, char *why, size_t why_size)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    if (strncmp(p, "result", 6)) {
        snprintf(why, why_size, "must read \"result OP NUMBER\" (OP one of < <= > >= == !=)");
        return -1;
    }
    p += 6;
    while (*p == ' ')
        p++;
    /* The two-character operators first: "<=" is not "<" followed by "=0.5". */
    static const prom_cmp_t order[] = {PROM_LE, PROM_GE, PROM_EQ, PROM_NE, PROM_LT, PROM_GT};
    size_t k = 0;
    for (; k < sizeof(order) / sizeof(order[0]); k++)
        if (!strncmp(p, cmp_text[order[k]], strlen(cmp_text[order[k]])))
            break;
    if (k == sizeof(order) / sizeof(order[0])) {
        snprintf(why, why_size, "needs an operator after result: one of < <= > >= == !=");
        return -1;
    }
    ret->cmp = order[k];
    p += strlen(cmp_text[order[k]]);
    while (*p == ' ')
        p++;
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    while (end && *end == ' ')
        end++;
    if (end == p || !end || *end || errno || !isfinite(v)) {
        snprintf(why, why_size, "needs a finite number after the operator (\"result < 0.01\")");
        return -1;
    }
    ret->bound = v;
    return 0;
}

bool prom_condition_met(const prom_condition_t *c, double v)
{
    switch (c->cmp) {
    case PROM_LT:
        return v < c->bound;
    case PROM_LE:
        return v <= c->bound;
    case PROM_GT:
        return v > c->bound;
    case PROM_GE:
        return v >= c->bound;
    case PROM_EQ:
        return v == c->bound;
    case PROM_NE:
        return v != c->bound;
    }
    return false;
}

void prom_condition_str(const prom_condition_t *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s %g", cmp_text[c->cmp], c->bound);
}

const prom_vars_t prom_vars_node_scope = {"", "", "", "", NULL, NULL, NULL};
const prom_vars_t prom_vars_batch_scope = {NULL, NULL, "", NULL, "", "", ""};

static const char *const var_names[] = {"node",  "address",   "version", "from_version",
                                        "nodes", "addresses", "batch"};

/* The word's index, or -1. */
static int var_index(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(var_names) / sizeof(var_names[0]); i++)
        if (strlen(var_names[i]) == len && !strncmp(name, var_names[i], len))
            return (int)i;
    return -1;
}

static const char *var_value(const prom_vars_t *v, int i)
{
    const char *vals[] = {v->node,  v->address,   v->version, v->from_version,
                          v->nodes, v->addresses, v->batch};
    return vals[i];
}

int prom_expand(const char *tmpl, const prom_vars_t *vars, char **ret, char *why, size_t why_size)
{
    *ret = NULL;
    char *out = malloc(PROM_QUERY_MAX + 1);
    if (!out) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (const char *p = tmpl; *p;) {
        const char *add = p;
        size_t len = 1;
        if (!strncmp(p, "{{", 2)) {
            const char *close = strstr(p + 2, "}}");
            if (!close) {
                snprintf(why, why_size, "a {{ without its }}");
                free(out);
                return -1;
            }
            const char *name = p + 2;
            size_t nlen = (size_t)(close - name);
            while (nlen && *name == ' ')
                name++, nlen--;
            while (nlen && name[nlen - 1] == ' ')
                nlen--;
            int k = var_index(name, nlen);
            if (k < 0 || !(add = var_value(vars, k))) {
                if (k < 0)
                    snprintf(why, why_size,
                             "{{%.*s}} is not a word it knows (a node's check: node, address, "
                             "version, from_version; a bake: nodes, addresses, version, batch)",
                             (int)(nlen > 40 ? 40 : nlen), name);
                else
                    snprintf(why, why_size, "{{%s}} means nothing in a %s", var_names[k],
                             vars->node ? "node's check (a bake's word)"
                                        : "bake (a node's word: use {{nodes}}, {{addresses}})");
                free(out);
                return -1;
            }
            len = strlen(add);
            p = close + 2;
        } else {
            p++;
        }
        if (len > PROM_QUERY_MAX - n) {
            snprintf(why, why_size, "the query is longer than %d bytes", PROM_QUERY_MAX);
            free(out);
            return -1;
        }
        memcpy(out + n, add, len);
        n += len;
    }
    out[n] = '\0';
    *ret = out;
    return 0;
}

void prom_endpoint_host(const char *endpoint, char *buf, size_t size)
{
    const char *h = strstr(endpoint, "://");
    h = h ? h + 3 : endpoint;
    size_t len;
    if (*h == '[') {
        h++;
        len = strcspn(h, "]");
    } else {
        const char *colon = strrchr(h, ':');
        len = colon ? (size_t)(colon - h) : strlen(h);
    }
    snprintf(buf, size, "%.*s", (int)len, h);
}

/* Prometheus' own words, as printable ASCII of bounded length (they come from the network; cut
 * anywhere, a multi-byte character would be no UTF-8, and no event could carry it). */
static void said(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(text ? text : "?"); *p && n + 1 < size;
         p++)
        buf[n++] = *p < 0x20 || *p >= 0x7f ? '?' : (char)*p;
    buf[n] = '\0';
}

static int sample_value(const json_t *pair, double *ret, char *why, size_t why_size)
{
    const char *s = json_string_value(json_array_get(pair, 1));
    if (!json_is_array(pair) || json_array_size(pair) != 2 || !s)
        return snprintf(why, why_size,
                        "the answer is not Prometheus' shape (a sample without "
                        "its [time, \"value\"])"),
               -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == EINVAL)
        return snprintf(why, why_size, "the value is not a number"), -1;
    if (isnan(v))
        return snprintf(why, why_size, "no data: the value is NaN (nothing to divide by yet?)"),
               PROM_NO_NUMBER;
    if (isinf(v)) /* x/0: no measure of anything; -Inf would pass "< 0.01" */
        return snprintf(why, why_size, "the value is %s (a division by zero?)",
                        v > 0 ? "+Inf" : "-Inf"),
               PROM_NO_NUMBER;
    *ret = v;
    return 0;
}

int prom_answer_value(const char *body, double *ret_value, char *why, size_t why_size)
{
    json_error_t jerr;
    json_t *a = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
    int r = -1;
    if (!json_is_object(a)) {
        snprintf(why, why_size, "the answer is not Prometheus' JSON");
        goto out;
    }
    const char *status = json_string_value(json_object_get(a, "status"));
    if (!status || strcmp(status, "success")) {
        char type[64], text[256];
        said(json_string_value(json_object_get(a, "errorType")), type, sizeof(type));
        said(json_string_value(json_object_get(a, "error")), text, sizeof(text));
        snprintf(why, why_size, "Prometheus: %s: %s", type, text);
        goto out;
    }
    json_t *data = json_object_get(a, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    json_t *result = json_object_get(data, "result");
    if (!type || !result) {
        snprintf(why, why_size, "the answer is not Prometheus' shape (no data.resultType)");
    } else if (!strcmp(type, "scalar")) {
        r = sample_value(result, ret_value, why, why_size);
    } else if (!strcmp(type, "vector") && json_is_array(result)) {
        size_t n = json_array_size(result);
        r = PROM_NO_NUMBER;
        if (n == 0)
            snprintf(why, why_size, "no data: the query returned no series");
        else if (n > 1)
            snprintf(why, why_size,
                     "the query returned %zu series, not one number (aggregate it: sum(), max())",
                     n);
        else
            r = sample_value(json_object_get(json_array_get(result, 0), "value"), ret_value, why,
                             why_size);
    } else {
        char t[32];
        said(type, t, sizeof(t));
        snprintf(why, why_size, "the query returned a %s, not one number", t);
        r = PROM_NO_NUMBER;
    }
out:
    json_decref(a);
    return r;
}

int prom_query(CURL *c, const char *base, const char *query, uint64_t limit_ms,
               bool (*stop)(void *), void *stop_data, double *ret_value, char *why, size_t why_size)
{
    char *q = curl_easy_escape(c, query, 0);
    char *url = NULL;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    if (!q || asprintf(&url, "%.*s/api/v1/query?query=%s", (int)blen, base, q) < 0) {
        curl_free(q);
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    curl_free(q);
    char *body = NULL, error[CURL_ERROR_SIZE + 64];
    long code = 0;
    int r = http_get(c, url, limit_ms, PROM_ANSWER_MAX, stop, stop_data, &body, &code, error,
                     sizeof(error));
    free(url);
    if (r < 0) {
        snprintf(why, why_size, "Prometheus did not answer: %s", error);
        return -1;
    }
    /* Its errors (400, 422, 503) carry their JSON, which says more than their status; any other
     * answer but a 200 is said by its status. */
    if (code == 200 || *body == '{')
        r = prom_answer_value(body, ret_value, why, why_size);
    if (code != 200 && r != -1) {
        snprintf(why, why_size, "Prometheus answered HTTP %ld", code);
        r = -1;
    }
    free(body);
    return r;
}
