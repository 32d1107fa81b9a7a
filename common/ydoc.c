/* ydoc: see ydoc.h. */
#include "ydoc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ydoc {
    char *path;          /* file name, for messages */
    yaml_document_t doc; /* libyaml's node tree */
};

int parse_duration_ms(const char *s, uint64_t *ret_ms)
{
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    uint64_t mult;
    if (!*end || !strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60 * 1000;
    else if (!strcmp(end, "h"))
        mult = 3600 * 1000;
    else
        return -EINVAL;
    if (v > UINT64_MAX / mult)
        return -ERANGE;
    *ret_ms = v * mult;
    return 0;
}

int ydoc_load(const char *path, ydoc_t **ret_doc, baton_err_t *err)
{
    struct stat st;
    FILE *f = fopen(path, "re");
    if (!f)
        return baton_err_set(err, -errno, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return baton_err_set(err, -EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size > YDOC_FILE_MAX) {
        fclose(f);
        return baton_err_set(err, -EFBIG, "%s: %lld bytes, more than the limit of %d", path,
                             (long long)st.st_size, YDOC_FILE_MAX);
    }
    ydoc_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(path))) {
        free(d);
        fclose(f);
        return baton_err_set(err, -ENOMEM, "%s: out of memory", path);
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &d->doc);
    int r = 0;
    if (!ok) {
        r = baton_err_set(err, -EINVAL, "%s:%zu: %s%s%s", path, parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "invalid YAML",
                          parser.context ? " " : "", parser.context ? parser.context : "");
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (r < 0) {
        free(d->path);
        free(d);
        return r;
    }
    *ret_doc = d;
    return 0;
}

void ydoc_destroy(ydoc_t **doc_p)
{
    if (!doc_p || !*doc_p)
        return;
    yaml_document_delete(&(*doc_p)->doc);
    free((*doc_p)->path);
    free(*doc_p);
    *doc_p = NULL;
}

const ynode_t *ydoc_root(ydoc_t *doc)
{
    return yaml_document_get_root_node(&doc->doc);
}

const char *ydoc_path(ydoc_t *doc)
{
    return doc->path;
}

unsigned ydoc_line(const ynode_t *node)
{
    return node ? (unsigned)node->start_mark.line + 1 : 0;
}

static const char *node_kind(const ynode_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "empty";
    }
}

/* "where.key", or "key" at the top level. */
static void key_path(char *buf, size_t len, const char *where, const char *key)
{
    snprintf(buf, len, "%s%s%s", where && *where ? where : "", where && *where ? "." : "", key);
}

int ydoc_expect_map(ydoc_t *doc, const ynode_t *node, const char *where, const char *const *allowed,
                    baton_err_t *err)
{
    if (!node)
        return baton_err_set(err, -EINVAL, "%s: %s: empty, expected a mapping", doc->path,
                             where && *where ? where : "file");
    if (node->type != YAML_MAPPING_NODE)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: expected a mapping, found %s", doc->path,
                             ydoc_line(node), where && *where ? where : "file", node_kind(node));
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        const ynode_t *k = yaml_document_get_node(&doc->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE)
            return baton_err_set(err, -EINVAL, "%s:%u: %s: keys must be plain names", doc->path,
                                 ydoc_line(k ? k : node), where && *where ? where : "file");
        const char *name = (const char *)k->data.scalar.value;
        bool known = false;
        for (const char *const *a = allowed; a && *a && !known; a++)
            known = !strcmp(*a, name);
        char kp[256];
        key_path(kp, sizeof(kp), where, name);
        if (!known)
            return baton_err_set(err, -EINVAL, "%s:%u: %s: unknown key", doc->path, ydoc_line(k),
                                 kp);
        /* Duplicate keys are a classic source of silent surprises. */
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            const ynode_t *k2 = yaml_document_get_node(&doc->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)k2->data.scalar.value, name))
                return baton_err_set(err, -EINVAL, "%s:%u: %s: duplicate key (first on line %u)",
                                     doc->path, ydoc_line(k), kp, ydoc_line(k2));
        }
    }
    return 0;
}

int ydoc_expect_seq(ydoc_t *doc, const ynode_t *node, const char *where, size_t max,
                    baton_err_t *err)
{
    if (!node || node->type != YAML_SEQUENCE_NODE)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: expected a list, found %s", doc->path,
                             ydoc_line(node), where, node ? node_kind(node) : "nothing");
    size_t n = ydoc_seq_len(node);
    if (n == 0)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: empty list", doc->path, ydoc_line(node),
                             where);
    if (n > max)
        return baton_err_set(err, -E2BIG, "%s:%u: %s: %zu items, at most %zu allowed", doc->path,
                             ydoc_line(node), where, n, max);
    return 0;
}

size_t ydoc_seq_len(const ynode_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

const ynode_t *ydoc_seq_item(ydoc_t *doc, const ynode_t *seq, size_t i)
{
    return yaml_document_get_node(&doc->doc, seq->data.sequence.items.start[i]);
}

const ynode_t *ydoc_get(ydoc_t *doc, const ynode_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const ynode_t *k = yaml_document_get_node(&doc->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(&doc->doc, p->value);
    }
    return NULL;
}

const char *ydoc_scalar(const ynode_t *v)
{
    if (!v || v->type != YAML_SCALAR_NODE || v->data.scalar.length > YDOC_STR_MAX ||
        strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
        return NULL;
    return (const char *)v->data.scalar.value;
}

/* The scalar at map[key]; 1 when found, 0 when absent, negative on error. */
static int get_scalar(ydoc_t *doc, const ynode_t *map, const char *where, const char *key,
                      bool required, const char **ret, const ynode_t **ret_node, baton_err_t *err)
{
    char kp[256];
    key_path(kp, sizeof(kp), where, key);
    const ynode_t *v = ydoc_get(doc, map, key);
    if (!v) {
        if (required)
            return baton_err_set(err, -EINVAL, "%s:%u: %s: required key missing", doc->path,
                                 ydoc_line(map), kp);
        return 0;
    }
    if (v->type != YAML_SCALAR_NODE)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: expected a value, found %s", doc->path,
                             ydoc_line(v), kp, node_kind(v));
    if (v->data.scalar.length > YDOC_STR_MAX)
        return baton_err_set(err, -E2BIG, "%s:%u: %s: longer than %d bytes", doc->path,
                             ydoc_line(v), kp, YDOC_STR_MAX);
    if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: contains a NUL byte", doc->path,
                             ydoc_line(v), kp);
    *ret = (const char *)v->data.scalar.value;
    *ret_node = v;
    return 1;
}

int ydoc_str(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool required,
             char **ret, baton_err_t *err)
{
    const char *s = NULL;
    const ynode_t *n = NULL;
    int r = get_scalar(doc, map, where, key, required, &s, &n, err);
    if (r <= 0)
        return r;
    char kp[256];
    key_path(kp, sizeof(kp), where, key);
    if (required && !*s)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: must not be empty", doc->path, ydoc_line(n),
                             kp);
    char *copy = strdup(s);
    if (!copy)
        return baton_err_set(err, -ENOMEM, "out of memory");
    free(*ret);
    *ret = copy;
    return 0;
}

int ydoc_uint(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool required,
              uint64_t min, uint64_t max, uint64_t *ret, baton_err_t *err)
{
    const char *s = NULL;
    const ynode_t *n = NULL;
    int r = get_scalar(doc, map, where, key, required, &s, &n, err);
    if (r <= 0)
        return r;
    char kp[256], *end = NULL;
    key_path(kp, sizeof(kp), where, key);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno)
        return baton_err_set(err, -EINVAL, "%s:%u: %s: '%s' is not a whole number", doc->path,
                             ydoc_line(n), kp, s);
    if (v < min || v > max)
        return baton_err_set(err, -ERANGE, "%s:%u: %s: %llu is not in %llu..%llu", doc->path,
                             ydoc_line(n), kp, v, (unsigned long long)min, (unsigned long long)max);
    *ret = v;
    return 0;
}

int ydoc_bool(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool *ret,
              baton_err_t *err)
{
    const char *s = NULL;
    const ynode_t *n = NULL;
    int r = get_scalar(doc, map, where, key, false, &s, &n, err);
    if (r <= 0)
        return r;
    char kp[256];
    key_path(kp, sizeof(kp), where, key);
    if (strcmp(s, "true") && strcmp(s, "false"))
        return baton_err_set(err, -EINVAL, "%s:%u: %s: '%s' is not true or false", doc->path,
                             ydoc_line(n), kp, s);
    *ret = !strcmp(s, "true");
    return 0;
}

int ydoc_duration_ms(ydoc_t *doc, const ynode_t *map, const char *where, const char *key,
                     bool required, uint64_t min_ms, uint64_t max_ms, uint64_t *ret,
                     baton_err_t *err)
{
    const char *s = NULL;
    const ynode_t *n = NULL;
    int r = get_scalar(doc, map, where, key, required, &s, &n, err);
    if (r <= 0)
        return r;
    char kp[256];
    key_path(kp, sizeof(kp), where, key);
    uint64_t ms = 0;
    if (parse_duration_ms(s, &ms) < 0)
        return baton_err_set(err, -EINVAL,
                             "%s:%u: %s: '%s' is not a duration (like 500ms, 30s, 5m, 1h)",
                             doc->path, ydoc_line(n), kp, s);
    if (ms < min_ms || ms > max_ms)
        return baton_err_set(err, -ERANGE, "%s:%u: %s: %s is not between %llums and %llums",
                             doc->path, ydoc_line(n), kp, s, (unsigned long long)min_ms,
                             (unsigned long long)max_ms);
    *ret = ms;
    return 0;
}
