/* prom: one Prometheus instant query, and what a check makes of its answer (analysis.h).
 *
 * A query is the check's text with the node's words put in ({{node}}, {{address}}, {{version}},
 * {{from_version}}), asked as GET PROMETHEUS/api/v1/query?query=… . Its answer must be one number:
 * a scalar, or a vector of exactly one sample. No sample, NaN, ±Inf, more than one series, an error
 * of Prometheus' or no answer at all is not a number to judge by: the measurement is inconclusive,
 * never taken as a pass or a failure. */
#ifndef BATON_PROM_H
#define BATON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define PROM_QUERY_MAX 4096           /* a query once expanded */
#define PROM_ANSWER_MAX (1024 * 1024) /* an answer's body */

/* A check's `success:`, "result < 0.01": how a number passes. */
typedef enum prom_cmp { PROM_LT, PROM_LE, PROM_GT, PROM_GE, PROM_EQ, PROM_NE } prom_cmp_t;

typedef struct prom_condition {
    prom_cmp_t cmp;
    double bound;
} prom_condition_t;

/* "result OP NUMBER" (OP one of < <= > >= == !=; spaces free; NUMBER finite) into *ret: 0, or -1
 * with why in `why`. */
int prom_condition_parse(const char *text, prom_condition_t *ret, char *why, size_t why_size);
bool prom_condition_met(const prom_condition_t *c, double value);
/* "< 0.01": the operator and bound, for messages. */
void prom_condition_str(const prom_condition_t *c, char *buf, size_t size);

/* The words a query may name: a node's check names the node, a bake's the batch. A NULL word
 * is not available where the query is asked (its check's scope). */
typedef struct prom_vars {
    const char *node;         /* {{node}}: its name in the rollout file */
    const char *address;      /* {{address}}: its agent's host, from its endpoint */
    const char *version;      /* {{version}}: the version rolled out */
    const char *from_version; /* {{from_version}}: what it ran before ("" when unknown) */
    const char *nodes;        /* {{nodes}}: a bake's nodes, as a regex: node1|node2 */
    const char *addresses;    /* {{addresses}}: their hosts, as a regex, dots escaped */
    const char *batch;        /* {{batch}}: the batch's number */
} prom_vars_t;

/* What a node's check may name, and a bake's: every word "", the others NULL (to check a query's
 * words when the file is read). */
extern const prom_vars_t prom_vars_node_scope, prom_vars_batch_scope;

/* The query `tmpl` with its {{words}} put in (*ret the caller's): 0; or -1 with why (an unknown
 * {{word}}, one not available in this scope, an unclosed one, longer than PROM_QUERY_MAX). */
int prom_expand(const char *tmpl, const prom_vars_t *vars, char **ret, char *why, size_t why_size);

/* The host of a tcp://HOST:PORT endpoint ("[::1]" without brackets), into buf. */
void prom_endpoint_host(const char *endpoint, char *buf, size_t size);

#define PROM_NO_NUMBER (-2) /* Prometheus answered the query, with no one number */

/* An answer's body (Prometheus' JSON) into its one number: 0; PROM_NO_NUMBER with why (no data,
 * NaN, several series, a range vector); -1 with why (Prometheus' error, not its shape). */
int prom_answer_value(const char *body, double *ret_value, char *why, size_t why_size);

/* Asks `query` of the Prometheus at `base` (http[s]://host:port[/prefix]) within limit_ms: 0 and
 * its number; PROM_NO_NUMBER or -1 (no answer, an error: the query refused) with why. `c` is
 * reset and reused; `stop(stop_data)` (may be NULL) ends it early (Ctrl-C). */
int prom_query(CURL *c, const char *base, const char *query, uint64_t limit_ms,
               bool (*stop)(void *), void *stop_data, double *ret_value, char *why,
               size_t why_size);

#endif
