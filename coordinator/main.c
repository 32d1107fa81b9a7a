/* baton: the coordinator CLI.
 *
 *   baton rollout FILE.yml            upgrade the nodes of FILE, in batches (journaled)
 *   baton plan FILE.yml               dry run: what each node would do, every refusal reason
 *   baton resume ROLLOUT_ID           continue a paused rollout, or one whose coordinator died
 *   baton abort ROLLOUT_ID            stop a rollout after its steps in flight, roll those back
 *   baton status FILE.yml|ROLLOUT_ID  what each node runs, where its last rollout got to
 *   baton list                        the rollouts of this state folder and how they ended
 *   baton rollback FILE.yml           undo every node's unfinished rollout (after a crash)
 *   baton rollback ROLLOUT_ID         undo that rollout everywhere, committed nodes too
 *
 * Exit codes: 0 done, 1 usage or rollout-file error, 2 refused before any change, 3 a node
 * failed (or was interrupted) and was rolled back, 4 needs attention: a node's rollback failed,
 * it was lost, or the rollout was interrupted. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "version.h"
#include "baton.pb-c.h"
#include "interrupt.h"
#include "journal.h"
#include "names.h"
#include "rollout.h"
#include "transport.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: baton rollout FILE.yml [--json] [--state-dir DIR | --journal CONNINFO]\n"
            "                     [--allow-downgrade] [--restore-dump /PATH] [--jump]\n"
            "       baton plan FILE.yml [--json] [--allow-downgrade] [--restore-dump /PATH] [--jump]\n"
            "       baton resume ROLLOUT_ID [--json] [--state-dir DIR]\n"
            "       baton abort ROLLOUT_ID [--state-dir DIR]\n"
            "       baton status FILE.yml|ROLLOUT_ID [--json] [--follow] [--state-dir DIR]\n"
            "       baton list [--json] [--state-dir DIR]\n"
            "       baton keygen NAME\n"
            "       baton rollback FILE.yml|ROLLOUT_ID [--restore-shared] [--json] [--state-dir DIR]\n"

            "  rollout   upgrade the nodes of FILE in batches (one at a time unless the file says\n"
            "            otherwise); every event is journaled in DIR/rollouts/ROLLOUT_ID.jsonl\n"
            "            (DIR: $BATON_STATE_DIR, else /var/lib/baton as root, else\n"
            "            $XDG_STATE_HOME/baton)\n"
            "  plan      dry run: what every node would do and every reason it would refuse;\n"
            "            changes nothing (exit 0: could run, 2: would be refused)\n"
            "  resume    let a paused rollout go on, or continue one whose coordinator died or\n"
            "            was stopped, from its journal and the agents' records: no step that\n"
            "            completed runs again\n"
            "  abort     stop a running rollout after its steps in flight and roll those nodes\n"
            "            back (as Ctrl-C); when no coordinator runs it, roll back what it left\n"
            "  status    what each node runs, and where its last rollout got to; given a rollout\n"
            "            id, also the journal's view (running, paused, done, died); --follow\n"
            "            repeats it every 2 s until the rollout ends\n"
            "  list      the rollouts in the state folder, newest first, and how each ended\n"
            "  keygen    a CURVE key pair: NAME.key (secret, 0600) and NAME.pub; never overwrites\n"
            "  rollback  FILE: undo every node's unfinished rollout, release reserved nodes;\n"
            "            ROLLOUT_ID: undo that rollout on every node it changed, committed ones\n"
            "            too (a downgrade), newest first\n"
            "--version: this coordinator's version, and the agents' it works with (the same major,\n"
            "  at most one minor apart; an agent outside that is refused at Hello)\n"
            "journals: --state-dir DIR (files, the default) or --journal CONNINFO (a PostgreSQL\n"
            "  database several controllers share; also $BATON_JOURNAL), for every command\n"
            "exit codes:\n"
            "  0  done: every node runs the target version\n"
            "  1  usage error or a bad rollout file (file, line and key named)\n"
            "  2  refused before any change (nothing stopped, nothing left reserved)\n"
            "  3  a node failed, or Ctrl-C stopped the rollout, and that node was rolled back\n"
            "  4  needs attention: a rollback failed, a node was LOST, or the rollout was\n"
            "     interrupted; see baton status, then baton rollback or baton resume\n"
            "Ctrl-C once: finish the step in flight, settle that node, stop; twice: stop now.\n");
}

/* `status` takes a rollout file or a rollout id: a path that exists is a file. */
static bool is_rollout_id(const char *arg)
{
    struct stat sb;
    return stat(arg, &sb) < 0 && rollout_id_valid(arg);
}

int main(int argc, char **argv)
{
    struct rollout_opts opts = {0};
    const char *state_dir = NULL, *journal = getenv("BATON_JOURNAL");
    bool follow = false;
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},   {"state-dir", required_argument, NULL, 's'},
        {"follow", no_argument, NULL, 'f'}, {"journal", required_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},   {"restore-shared", no_argument, NULL, 'R'},
        {"allow-downgrade", no_argument, NULL, 'D'}, {"restore-dump", required_argument, NULL, 'P'},
        {"jump", no_argument, NULL, 'X'},   {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "jfh", longopts, NULL)) != -1) {
        switch (o) {
        case 'j':
            opts.json = true;
            break;
        case 's':
            state_dir = optarg;
            break;
        case 'f':
            follow = true;
            break;
        case 'J':
            journal = optarg;
            break;
        case 'R':
            opts.restore_shared = true;
            break;
        case 'D':
            opts.allow_downgrade = true;
            break;
        case 'P':
            opts.restore_dump = optarg;
            break;
        case 'X':
            opts.jump = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_DONE;
        case 'V':
            printf("baton %s (protocol %d; works with agents %s and one minor older or newer)\n",
                   BATON_VERSION, BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT,
                   BATON_VERSION);
            return EXIT_DONE;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    int nargs = argc - optind;
    const char *cmd = nargs >= 1 ? argv[optind] : "", *arg = nargs == 2 ? argv[optind + 1] : NULL;
    static const char *const with_arg[] = {"rollout", "plan",     "resume", "abort",
                                           "status",  "rollback", NULL};
    if (nargs == 2 && !strcmp(cmd, "keygen")) {
        /* baton keygen NAME: NAME.key (secret, 0600) and NAME.pub; never overwrites. */
        baton_err_t kerr = {0};
        transport_key_t pub;
        char *pub_path = NULL, fp[17];
        if (transport_keygen(arg, &kerr) < 0 || asprintf(&pub_path, "%s.pub", arg) < 0 ||
            transport_read_public(pub_path, &pub, &kerr) < 0) {
            fprintf(stderr, "baton: keygen: %s\n", kerr.msg);
            free(pub_path);
            return EXIT_REFUSED;
        }
        transport_fingerprint(&pub, fp);
        printf("%s.key (secret, mode 0600) and %s (public key %s, fingerprint %s)\n", arg, pub_path,
               pub.z85, fp);
        /* Z85 keys hold $ % { > * [ ^: quoted, a key pastes as it is into YAML and shells. */
        printf("  an agent's key, for its node in a rollout file (keep the quotes):\n"
               "    public_key: \"%s\"\n"
               "  a coordinator's key: copy %s into each agent's authorized_keys file\n",
               pub.z85, pub_path);
        free(pub_path);
        return EXIT_DONE;
    }
    bool known = nargs == 1 && !strcmp(cmd, "list");
    for (size_t i = 0; with_arg[i] && !known; i++)
        known = nargs == 2 && !strcmp(cmd, with_arg[i]);
    bool versions_flags = opts.allow_downgrade || opts.restore_dump || opts.jump;
    if (!known || (follow && strcmp(cmd, "status")) ||
        (opts.restore_shared && strcmp(cmd, "rollback")) ||
        (versions_flags && strcmp(cmd, "rollout") && strcmp(cmd, "plan")) ||
        (opts.restore_dump && opts.restore_dump[0] != '/')) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char *default_dir = state_dir ? NULL : journal_default_dir();
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    char *file = NULL;
    const char *path = arg;
    int code = EXIT_USAGE;
    if ((!state_dir && !default_dir) ||
        journal_store_new(state_dir ? state_dir : default_dir, journal, &opts.store, &err) < 0) {
        fprintf(stderr, "baton: out of memory\n");
        goto out;
    }
    interrupt_install();
    if (!strcmp(cmd, "list")) {
        code = history_list(&opts);
        goto out;
    }
    if (!strcmp(cmd, "abort")) {
        code = history_abort(arg, &opts);
        goto out;
    }
    if (!strcmp(cmd, "rollback") && is_rollout_id(arg)) {
        code = history_undo(arg, &opts);
        goto out;
    }
    if (!strcmp(cmd, "status") && is_rollout_id(arg)) {
        code = history_status(arg, follow, &opts);
        goto out;
    }
    if (!strcmp(cmd, "resume")) {
        /* The journal names the rollout file and the artifact's digest. */
        opts.resume_id = arg;
        journal_record_t rec;
        if (journal_read(opts.store, opts.resume_id, &rec, &err) < 0) {
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
    if (rollout_file_load(path, &rf, &err) < 0 ||
        /* What a rollout sends must be there: said with the file's line, before any node is
         * asked anything (a rollback or a status does not need it). */
        ((!strcmp(cmd, "rollout") || !strcmp(cmd, "plan") || !strcmp(cmd, "resume")) &&
         rollout_file_check_artifact(rf, &err) < 0)) {
        fprintf(stderr, "baton: %s\n", err.msg);
        goto out;
    }
    if (rf->insecure)
        fprintf(stderr,
                "baton: warning: %s says insecure: true: plain text, and any machine at "
                "the endpoints can pose as an agent\n",
                rf->path);
    code = !strcmp(cmd, "rollout")                           ? rollout_path(rf, &opts)
           : !strcmp(cmd, "resume")                          ? rollout_run(rf, &opts)
           : !strcmp(cmd, "status")                          ? rollout_status(rf, &opts)
           : !strcmp(cmd, "plan")                            ? rollout_plan(rf, &opts)
                                                             : rollout_rollback(rf, &opts);
out:
    rollout_file_destroy(&rf);
    journal_store_destroy(&opts.store);
    free(default_dir);
    free(file);
    return code;
}
