/* baton: the coordinator CLI.
 *
 *   baton rollout FILE.yml [--json]   upgrade the nodes of FILE, one at a time
 *   baton status FILE.yml [--json]    what each node runs, and where its last rollout got to
 *   baton rollback FILE.yml [--json]  undo every node's unfinished rollout (after a crash)
 *
 * Exit codes: 0 done, 1 usage or rollout-file error, 2 refused before any change, 3 a node
 * failed (or was interrupted) and was rolled back, 4 needs attention: a node's rollback failed,
 * it was lost, or the rollout was interrupted. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "interrupt.h"
#include "rollout.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: baton rollout FILE.yml [--json]\n"
            "       baton status FILE.yml [--json]\n"
            "       baton rollback FILE.yml [--json]\n"
            "exit codes:\n"
            "  0  done: every node runs the target version\n"
            "  1  usage error or a bad rollout file (file, line and key named)\n"
            "  2  refused before any change (nothing stopped, nothing left reserved)\n"
            "  3  a node failed, or Ctrl-C stopped the rollout, and that node was rolled back\n"
            "  4  needs attention: a rollback failed, a node was LOST, or the rollout was\n"
            "     interrupted; see baton status, then baton rollback or baton rollout again\n"
            "Ctrl-C once: finish the step in flight, settle that node, stop; twice: stop now.\n");
}

int main(int argc, char **argv)
{
    struct rollout_opts opts = {0};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        switch (o) {
        case 'j':
            opts.json = true;
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
    if (strcmp(cmd, "rollout") && strcmp(cmd, "status") && strcmp(cmd, "rollback")) {
        usage(stderr);
        return EXIT_USAGE;
    }
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    if (rollout_file_load(argv[optind + 1], &rf, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
        return EXIT_USAGE;
    }
    interrupt_install();
    int code = !strcmp(cmd, "rollout")  ? rollout_run(rf, &opts)
               : !strcmp(cmd, "status") ? rollout_status(rf, &opts)
                                        : rollout_rollback(rf, &opts);
    rollout_file_destroy(&rf);
    return code;
}
