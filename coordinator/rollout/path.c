/* path: how `baton rollout` takes the fleet from the versions it runs to the one asked for.
 *
 * The upgrade guides say "go one minor version at a time": with a catalog, an upgrade across
 * more than one minor goes through the newest release of each minor in between (1.0 -> 1.1.x
 * -> 1.2.0), each hop a whole rollout of its own (own rollout id, journal, verification), the
 * next one starting only when the last ended with every node on its version. `--jump` asks for
 * one jump instead, which then runs in maintenance style (every node of a database stopped
 * while the migrations of all the minors in between run at once). The path starts from the
 * lowest version any node runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "envelope.h"
#include "freeze.h"
#include "rollout.h"
#include "engine.h"
#include "run.h"
#include "node.h"
#include "semver.h"

#define PATH_HOPS_MAX 64

/* The lowest semver any reachable node runs; false when none runs one. */
static bool lowest_version(const rollout_file_t *rf, const struct rollout_opts *opts, semver_t *ret)
{
    struct run run = {.rf = rf, .opts = opts, .n = rf->n_nodes};
    baton_err_t err = {0};
    bool any = false;
    if (!(run.nodes = calloc(rf->n_nodes ? rf->n_nodes : 1, sizeof(*run.nodes))))
        return false;
    for (size_t i = 0; i < run.n; i++)
        run.nodes[i] = (node_t){.index = i, .def = &rf->nodes[i]};
    if (run_connect(&run, &err) == 0 && node_ask_all(&run) == 0) {
        for (size_t i = 0; i < run.n; i++) {
            semver_t v;
            const Baton__ServiceInfo *svc = node_asked_service(&run, &run.nodes[i], &err);
            if (svc && semver_parse(svc->version, &v, NULL) == 0 &&
                (!any || semver_compare(&v, ret) < 0)) {
                *ret = v;
                any = true;
            }
            baton_err_clear(&err);
        }
    }
    run_disconnect(&run);
    free(run.nodes);
    return any;
}

int rollout_path(const rollout_file_t *rf, const struct rollout_opts *opts)
{
    semver_t from, target;
    const release_t *hops[PATH_HOPS_MAX];
    char *frozen = NULL;
    int fr = freeze_refusal(opts->store, rf->service, &frozen);
    free(frozen);
    /* Frozen (or unknown): rollout_run refuses it before any node is asked anything. */
    if (fr != 0 || !rf->catalog || !rf->release || opts->jump ||
        semver_parse(rf->version, &target, NULL) < 0 || !lowest_version(rf, opts, &from) ||
        semver_compare(&from, &target) >= 0)
        return rollout_run(rf, opts);
    size_t n = catalog_hops(rf->catalog, &from, rf->release, hops, PATH_HOPS_MAX);
    if (n > PATH_HOPS_MAX) {
        fprintf(stderr,
                "baton: %zu hops from the lowest version to %s: more than %d; say --jump "
                "or upgrade part of the way first\n",
                n, rf->version, PATH_HOPS_MAX);
        return EXIT_REFUSED;
    }
    if (n == 1)
        return rollout_run(rf, opts);
    char lowest[SEMVER_MAX_LEN * 2];
    semver_format(&from, lowest, sizeof(lowest));
    printf("baton: %s -> %s goes one minor version at a time:", lowest, rf->version);
    for (size_t i = 0; i < n; i++)
        printf(" %s%s", hops[i]->version, i + 1 < n ? " ->" : "");
    printf(" (%zu rollouts; --jump for one, in maintenance style)\n", n);
    fflush(stdout);
    int code = EXIT_DONE;
    for (size_t i = 0; i < n && code == EXIT_DONE; i++) {
        /* The same file, aimed at this hop's release. */
        rollout_file_t hop = *rf;
        hop.release = hops[i];
        hop.version = hops[i]->version;
        hop.artifact = hops[i]->artifact;
        hop.sha256 = hops[i]->sha256;
        hop.maintenance = hops[i]->maintenance;
        printf("baton: hop %zu of %zu: %s\n", i + 1, n, hops[i]->version);
        fflush(stdout);
        code = rollout_run(&hop, opts);
        if (code != EXIT_DONE)
            printf("baton: stopped at hop %zu of %zu (%s): the fleet is on the versions the "
                   "summary above says; %s is not reached\n",
                   i + 1, n, hops[i]->version, rf->version);
    }
    return code;
}
