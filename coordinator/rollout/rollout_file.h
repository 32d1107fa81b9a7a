/* rollout_file: what `baton rollout FILE.yml` reads: the service, the target version, the
 * artifact (a binary on this machine) and the nodes in the order they are upgraded.
 *
 *   service: gamesrv
 *   version: 1.1.0
 *   artifact: ./gamesrv-1.1.0        # relative to this file's folder
 *   sha256: 5f0c...                   # optional: refused when the artifact differs
 *   catalog: ./releases.yml           # instead of artifact and sha256: version may then be a
 *                                     # range (~1.1.0), resolved to the highest release
 *   nodes:
 *     - name: node1
 *       endpoint: tcp://10.213.0.11:7400
 *   timeouts:                         # optional
 *     connect: 5s                     # an agent must answer Hello within this
 *     step: 45m                       # the longest any one step may take
 *   liveness: 30s                     # optional: silence after which a node is lost
 *   min_healthy_time: 10s             # optional: overrides every agent's setting
 *   healthy_deadline: 60s             # optional: overrides every agent's verify timeout
 *   progress_deadline: 10m            # optional: halt when no node finishes for this long
 *   batches / max_unavailable / on_failure / max_failures / pause_after / max_in_flight
 *   restore_shared: refuse            # or stop-group (strategy.h)
 *   notify: [{url, format, on}]       # optional: events sent to URLs (notify.h)
 *   webhooks: [{url, at, timeout, retries}]   # optional: gates (webhook.h)
 *   analysis: {prometheus, timeout, checks}   # optional: Prometheus checks (analysis.h)
 *                                     # optional: the strategy (strategy.h)
 */
#ifndef BATON_ROLLOUT_FILE_H
#define BATON_ROLLOUT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"
#include "catalog.h"
#include "err.h"
#include "notify.h"
#include "webhook.h"
#include "strategy.h"
#include "transport.h"

#define ROLLOUT_NODES_MAX 1000

typedef struct rollout_node {
    char *name;                 /* node name, as its agent reports it */
    char *endpoint;             /* ZeroMQ endpoint of its agent */
    transport_key_t public_key; /* its agent's CURVE public key ("" when insecure) */
} rollout_node_t;

typedef struct rollout_file {
    char *path;          /* the file */
    char *service;       /* service to upgrade */
    char *version;       /* target version (with a catalog: the release the range resolved to) */
    char *version_asked; /* what the file says: a version, or a range with a catalog */
    catalog_t *catalog;  /* `catalog:`, or NULL */
    const release_t *release; /* the catalog's release rolled out, or NULL */
    bool maintenance;         /* roll in maintenance style (requires: maintenance, --jump) */
    bool rehearse;            /* rehearse: true: migrate a copy of each database first */
    char *artifact;           /* path of the new binary, resolved against the file's folder */
    char artifact_where[320]; /* where it is written: "FILE:LINE: artifact", or the catalog's */
    char *sha256;             /* declared digest, or NULL */
    size_t n_nodes;
    rollout_node_t *nodes;         /* in rollout order */
    uint64_t connect_timeout_ms;   /* Hello deadline */
    uint64_t step_timeout_ms;      /* deadline of any one step */
    uint64_t liveness_ms;          /* silence after which a node is lost */
    bool min_healthy_set;          /* min_healthy_time was given */
    uint64_t min_healthy_ms;       /* how long verify watches a service stay healthy */
    bool healthy_deadline_set;     /* healthy_deadline was given */
    uint64_t healthy_deadline_ms;  /* how long a started service has to turn healthy */
    uint64_t progress_deadline_ms; /* 0: none */
    strategy_t strategy;
    bool insecure;              /* plain text (insecure: true), warned about */
    transport_key_t secret_key; /* the coordinator's CURVE secret key (curve.secret_key) */
    transport_key_t public_key; /* and its public key, derived */
    notify_target_t *notify;    /* `notify:`: where events are sent (notify.h) */
    size_t n_notify;
    webhook_t *webhooks; /* `webhooks:`: gates the rollout waits on (webhook.h) */
    size_t n_webhooks;
    analysis_t *analysis; /* `analysis:` (analysis.h), or NULL */
} rollout_file_t;

int rollout_file_load(const char *path, rollout_file_t **ret, baton_err_t *err);
/* For a rollout or plan (a rollback or status does not need it): the artifact is a readable
 * file, or -ENOENT etc. naming where the file wrote it ("r.yml:3: artifact: PATH: No such file
 * or directory"). */
int rollout_file_check_artifact(const rollout_file_t *rf, baton_err_t *err);
void rollout_file_destroy(rollout_file_t **rf_p);

#endif
