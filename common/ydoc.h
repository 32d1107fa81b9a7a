/* ydoc: a YAML file loaded whole (libyaml's document API), with typed getters whose errors name
 * the file, the line and the key: "agent.yml:12: services[0].timeouts.stop: not a duration".
 *
 * Both the agent's config and the coordinator's rollout file are read through it. Files over
 * YDOC_FILE_MAX are refused before parsing; unknown keys are errors (a typo must not be ignored
 * silently). Getters never modify the document; strings they return are the caller's. */
#ifndef BATON_YDOC_H
#define BATON_YDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "err.h"

#define YDOC_FILE_MAX (1024 * 1024)
#define YDOC_STR_MAX 4096

typedef struct ydoc ydoc_t;
typedef yaml_node_t ynode_t;

int ydoc_load(const char *path, ydoc_t **ret_doc, baton_err_t *err);
void ydoc_destroy(ydoc_t **doc_p);

/* The top-level node; NULL for an empty file. */
const ynode_t *ydoc_root(ydoc_t *doc);
const char *ydoc_path(ydoc_t *doc);
/* 1-based line where a node starts. */
unsigned ydoc_line(const ynode_t *node);

/* Checks that `node` is a mapping whose keys are all in `allowed` (NULL-terminated). `where`
 * names the mapping in messages ("services[0]"; "" for the top level). */
int ydoc_expect_map(ydoc_t *doc, const ynode_t *node, const char *where, const char *const *allowed,
                    baton_err_t *err);
/* Checks that `node` is a sequence with 1..max items. */
int ydoc_expect_seq(ydoc_t *doc, const ynode_t *node, const char *where, size_t max,
                    baton_err_t *err);
size_t ydoc_seq_len(const ynode_t *seq);
const ynode_t *ydoc_seq_item(ydoc_t *doc, const ynode_t *seq, size_t i);

/* The text of a scalar node (a list item), or NULL when it is no scalar, holds a NUL byte or
 * is longer than YDOC_STR_MAX. */
const char *ydoc_scalar(const ynode_t *node);

/* The value of `key` in mapping `map`, or NULL when absent. */
const ynode_t *ydoc_get(ydoc_t *doc, const ynode_t *map, const char *key);

/* Typed getters. When the key is absent: required -> error; otherwise *ret is left as is
 * (so callers set defaults first) and 0 is returned. */
int ydoc_str(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool required,
             char **ret, baton_err_t *err);
int ydoc_uint(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool required,
              uint64_t min, uint64_t max, uint64_t *ret, baton_err_t *err);
/* true or false (nothing else: "yes" is a typo waiting to happen); absent leaves *ret. */
int ydoc_bool(ydoc_t *doc, const ynode_t *map, const char *where, const char *key, bool *ret,
              baton_err_t *err);
/* Durations: "250ms", "30s", "5m", "1h" or a bare number of seconds; stored in milliseconds. */
int ydoc_duration_ms(ydoc_t *doc, const ynode_t *map, const char *where, const char *key,
                     bool required, uint64_t min_ms, uint64_t max_ms, uint64_t *ret,
                     baton_err_t *err);

/* Parses a duration as above; 0 or -EINVAL. Exposed for command-line flags. */
int parse_duration_ms(const char *s, uint64_t *ret_ms);

#endif
