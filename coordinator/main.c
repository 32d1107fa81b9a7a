/* baton: the coordinator CLI.
 *
 *   baton rollout FILE.yml [--json]   upgrade the nodes of FILE, one at a time
 *   baton status FILE.yml [--json]    what each node runs, and where its last rollout got to
 *   baton rollback FILE.yml [--json]  undo every node's unfinished rollout (after a crash)
 *
 * Exit codes: 0 done, 1 usage or rollout-file error, 2 refused before any change, 3 a node
 * failed and was rolled back, 4 a node failed and its rollback failed too (needs attention). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "rollout.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: baton rollout FILE.yml [--json]\n"
               "       baton status FILE.yml [--json]\n"
               "       baton rollback FILE.yml [--json]\n"
               "exit codes: 0 done, 1 usage or file error, 2 refused before any change,\n"
               "            3 failed and rolled back, 4 failed and rollback failed\n");
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
    int code = !strcmp(cmd, "rollout")  ? rollout_run(rf, &opts)
               : !strcmp(cmd, "status") ? rollout_status(rf, &opts)
                                        : rollout_rollback(rf, &opts);
    rollout_file_destroy(&rf);
    return code;
}
