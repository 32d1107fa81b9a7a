/* init: see init.h.
 *
 * The template is a C string here rather than a YAML file embedded at build time: the
 * Makefile compiles every coordinator/ source as it is (the unit tests link the same library), so
 * there is no generated source to keep in step, and a reader of `baton init` finds what it
 * writes in the same file. tests/cluster/init.sh checks that the written file loads once its
 * placeholders are filled.
 *
 * Placeholders: the ones the loader cannot tell from real values (service, version, a node's
 * name and endpoint) are values that load, marked FILL IN. The node's public_key is left
 * invalid on purpose, so that `baton plan` on the untouched file stops at its line ("must be
 * the agent's Z85 public key") instead of trying agents with a made-up key; the coordinator's
 * key file and the artifact are then named by plan as missing, one at a time, each with its
 * line. CURVE, not `insecure: true`, is what the template shows: a first rollout file is
 * copied into production. */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char template[] =
    "# A baton rollout file, written by `baton init`. Fill in what says FILL IN, then\n"
    "#   baton plan THIS_FILE       a dry run: what each node would do; changes nothing\n"
    "#   baton rollout THIS_FILE    the upgrade\n"
    "# Each key is described in baton(1) and in the README's \"The rollout file\".\n"
    "\n"
    "service: myservice                  # FILL IN: the service name the agents know\n"
    "version: 1.0.0                      # FILL IN: what `myservice --version` prints afterwards\n"
    "artifact: ./myservice-1.0.0         # FILL IN: the new binary, relative to this file\n"
    "# sha256: ...                       # refuse unless the artifact has this digest (sha256sum)\n"
    "# Or a release catalog instead of artifact and sha256 (then version may be a range):\n"
    "# catalog: releases.yml\n"
    "\n"
    "# The coordinator's CURVE key, relative to this file: `mkdir -p keys && baton keygen\n"
    "# keys/coordinator` makes it, and keys/coordinator.pub goes into each agent's\n"
    "# authorized_keys file.\n"
    "curve:\n"
    "  secret_key: keys/coordinator.key\n"
    "\n"
    "# The nodes, upgraded in this order: the first one is the canary.\n"
    "nodes:\n"
    "  - name: node1                     # FILL IN: the agent's node name\n"
    "    endpoint: tcp://127.0.0.1:7400  # FILL IN: where its agent listens\n"
    "    # FILL IN: the public_key line `baton keygen` printed for this node's agent (quoted).\n"
    "    public_key: \"FILL IN: node1's agent public key\"\n"
    "  # - name: node2\n"
    "  #   endpoint: tcp://10.0.0.12:7400\n"
    "  #   public_key: \"...\"\n"
    "\n"
    "# Optional, shown with their defaults.\n"
    "# timeouts:\n"
    "#   connect: 5s                     # an agent must answer Hello within this\n"
    "#   step: 45m                       # the longest any one step may take\n"
    "# liveness: 45s                     # a node silent this long is LOST\n"
    "# min_healthy_time: 10s             # overrides every agent's (default: the agent's)\n"
    "# healthy_deadline: 60s             # overrides every agent's verify timeout (default: the\n"
    "#                                   # agent's)\n"
    "# progress_deadline: 10m            # halt when no node finished for this long (default:\n"
    "#                                   # none)\n"
    "\n"
    "# The strategy, shown with its defaults: one node at a time, halt on the first failure.\n"
    "# batches: 1                        # nodes per batch: a count, a percentage (\"25%\"), or a\n"
    "#                                   # list like [1, 2, \"25%\"]: the first is the canary,\n"
    "#                                   # the last repeats\n"
    "# max_unavailable: 1                # nodes between stop and verified at once (default: the\n"
    "#                                   # batch's size)\n"
    "# on_failure: halt                  # halt | rollback-all | continue\n"
    "# max_failures: 0                   # with on_failure: continue, more failures halt\n"
    "# pause_after: canary               # wait for `baton resume` after these batches (default:\n"
    "#                                   # never)\n"
    "# max_in_flight: 64                 # requests in flight at once during checks\n"
    "# restore_shared: refuse            # or stop-group: how a rollback restores a dump of a\n"
    "#                                   # database other nodes use\n"
    "# rehearse: false                   # true: migrate a scratch copy of each database first\n"
    "# notify: []                        # where events are POSTed as they happen, e.g.\n"
    "#                                   # [{url: \"https://hooks.example/baton\", format: slack,\n"
    "#                                   # on: [node_failed, rolled_back, finished]}]\n"
    "# webhooks: []                      # gates that must answer 2xx, e.g. [{url:\n"
    "#                                   # \"https://ci.example/gate\", at: [before_rollout,\n"
    "#                                   # before_batch], timeout: 10s, retries: 2}]\n"
    "# analysis:                         # Prometheus judges each node before its commit, e.g.\n"
    "#   prometheus: http://prometheus.example:9090\n"
    "#   checks: [{name: errors, query: 'sum(rate(errors_total{node=\"{{node}}\"}[1m]))', success: "
    "\"result < 1\"}]\n"
    "\n"
    "# For a lab only: `insecure: true` instead of curve (and no public_key) talks plain text\n"
    "# to agents that say insecure: true too; anyone on the network can pose as either side.\n";

const char *init_template(void)
{
    return template;
}

int init_write(const char *path, baton_err_t *err)
{
    /* O_EXCL: an operator's edited file is never replaced, even by a race. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return errno == EEXIST
                   ? baton_err_set(err, -EEXIST, "%s: exists, left as it is (name another file)",
                                   path)
                   : baton_err_set(err, -errno, "%s: %s", path, strerror(errno));
    size_t len = sizeof(template) - 1, done = 0;
    int r = 0;
    /* The umask may take bits away; the file is meant to be read by whoever runs baton. */
    if (fchmod(fd, 0644) < 0)
        r = baton_err_set(err, -errno, "chmod %s: %s", path, strerror(errno));
    while (r == 0 && done < len) {
        ssize_t n = write(fd, template + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = baton_err_set(err, -errno, "write %s: %s", path, strerror(errno));
        else
            done += (size_t)n;
    }
    if (close(fd) < 0 && r == 0)
        r = baton_err_set(err, -errno, "close %s: %s", path, strerror(errno));
    if (r < 0)
        unlink(path); /* ours: made above, so a half-written starter is not left behind */
    return r;
}

void init_next_steps(FILE *f, const char *path)
{
    /* The key path in the file is relative to the file's folder, so say it from here. */
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : ".";
    const char *sep = strcmp(dir, ".") ? "/" : "";
    if (!strcmp(dir, "."))
        dir = "";
    fprintf(f,
            "baton: wrote %s, a starter rollout file. Next:\n"
            "  1. in %s: service, version and artifact (the new binary)\n"
            "  2. the coordinator's key: mkdir -p %s%skeys && baton keygen %s%skeys/coordinator\n"
            "     then copy %s%skeys/coordinator.pub into each agent's authorized_keys file\n"
            "  3. in %s: each node's name, endpoint and public_key (baton keygen on the node\n"
            "     prints the line to paste)\n"
            "  4. baton plan %s: what each node would do, changing nothing\n",
            path, path, dir, sep, dir, sep, dir, sep, path, path);
    free(copy);
}
