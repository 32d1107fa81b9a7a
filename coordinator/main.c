/* baton: the coordinator CLI.
 *
 *   baton rollout FILE.yml [--json]   upgrade the nodes of FILE, one at a time (journaled)
 *   baton resume ROLLOUT_ID [--json]  continue a rollout whose coordinator died
 *   baton plan FILE.yml [--json]      dry run: what each node would do, every refusal reason
 *   baton status FILE.yml [--json]    what each node runs, and where its last rollout got to
 *   baton rollback FILE.yml [--json]  undo every node's unfinished rollout (after a crash)
 *
 * Exit codes: 0 done, 1 usage or rollout-file error, 2 refused before any change, 3 a node
 * failed (or was interrupted) and was rolled back, 4 needs attention: a node's rollback failed,
 * it was lost, or the rollout was interrupted. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interrupt.h"
#include "journal.h"
#include "rollout.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: baton rollout FILE.yml [--json] [--state-dir DIR]\n"
            "       baton resume ROLLOUT_ID [--json] [--state-dir DIR]\n"
            "       baton plan FILE.yml [--json]\n"
            "       baton status FILE.yml [--json]\n"
            "       baton rollback FILE.yml [--json]\n"
            "  rollout   upgrade the nodes of FILE, one at a time; every event is journaled in\n"
            "            DIR/rollouts/ROLLOUT_ID.jsonl (DIR: /var/lib/baton as root, else\n"
            "            $XDG_STATE_HOME/baton)\n"
            "  resume    continue a rollout whose coordinator died, from its journal and the\n"
            "            agents' records: no step that completed runs again\n"
            "  plan      dry run: what every node would do and every reason it would refuse;\n"
            "            changes nothing (exit 0: could run, 2: would be refused)\n"
            "  status    what each node runs, and where its last rollout got to\n"
            "  rollback  undo every node's unfinished rollout, release reserved nodes\n"
            "exit codes:\n"
            "  0  done: every node runs the target version\n"
            "  1  usage error or a bad rollout file (file, line and key named)\n"
            "  2  refused before any change (nothing stopped, nothing left reserved)\n"
            "  3  a node failed, or Ctrl-C stopped the rollout, and that node was rolled back\n"
            "  4  needs attention: a rollback failed, a node was LOST, or the rollout was\n"
            "     interrupted; see baton status, then baton rollback or baton resume\n"
            "Ctrl-C once: finish the step in flight, settle that node, stop; twice: stop now.\n");
}

int main(int argc, char **argv)
{
    struct rollout_opts opts = {0};
    const char *state_dir = NULL;
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"state-dir", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        switch (o) {
        case 'j':
            opts.json = true;
            break;
        case 's':
            state_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_DONE;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    const char *cmd = argc - optind == 2 ? argv[optind] : "";
    if (strcmp(cmd, "rollout") && strcmp(cmd, "status") && strcmp(cmd, "rollback") &&
        strcmp(cmd, "resume") && strcmp(cmd, "plan")) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char *default_dir = state_dir ? NULL : journal_default_dir();
    opts.state_dir = state_dir ? state_dir : default_dir;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    char *file = NULL;
    const char *path = argv[optind + 1];
    int code = EXIT_USAGE;
    if (!opts.state_dir) {
        fprintf(stderr, "baton: out of memory\n");
        goto out;
    }
    if (!strcmp(cmd, "resume")) {
        /* The journal names the rollout file and the artifact's digest. */
        opts.resume_id = argv[optind + 1];
        journal_record_t rec;
        if (journal_read(opts.state_dir, opts.resume_id, &rec, &err) < 0) {
            fprintf(stderr, "baton: %s\n", err.msg);
            code = EXIT_REFUSED;
            goto out;
        }
        /* Done or refused: nothing to continue. Stopped (3, 4) or killed (no summary): go on. */
        if (rec.exit >= 0 && rec.exit <= 2) {
            fprintf(stderr, "baton: rollout %s has ended (exit %d): %s\n", opts.resume_id, rec.exit,
                    rec.outcome ? rec.outcome : "");
            journal_record_clear(&rec);
            code = EXIT_REFUSED;
            goto out;
        }
        file = rec.file;
        rec.file = NULL;
        journal_record_clear(&rec);
        path = file;
    }
    if (rollout_file_load(path, &rf, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
        goto out;
    }
    interrupt_install();
    code = !strcmp(cmd, "rollout") || !strcmp(cmd, "resume") ? rollout_run(rf, &opts)
           : !strcmp(cmd, "status")                          ? rollout_status(rf, &opts)
           : !strcmp(cmd, "plan")                            ? rollout_plan(rf, &opts)
                                                             : rollout_rollback(rf, &opts);
out:
    rollout_file_destroy(&rf);
    free(default_dir);
    free(file);
    return code;
}
