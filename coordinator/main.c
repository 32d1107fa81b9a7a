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
 *   baton freeze SERVICE --reason T   refuse the service's rollouts until unfreeze
 *   baton unfreeze SERVICE            let them run again
 *   baton init [FILE]                 write a commented starter rollout file
 *   baton completion bash|zsh|fish    the shell's completion script, made from cli.c's tables
 *
 * Exit codes: 0 done, 1 usage or rollout-file error, 2 refused before any change, 3 a node
 * failed (or was interrupted) and was rolled back, 4 needs attention: a node's rollback failed,
 * it was lost, or the rollout was interrupted. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libpq-fe.h>

#include "version.h"
#include "baton.pb-c.h"
#include "interrupt.h"
#include "journal.h"
#include "names.h"
#include "cli.h"
#include "completion.h"
#include "freeze.h"
#include "init.h"
#include "rollout.h"
#include "transport.h"

/* True when a conninfo (or URI) holds a password. */
static bool conninfo_password(const char *conninfo)
{
    PQconninfoOption *o = PQconninfoParse(conninfo, NULL), *p = o;
    bool found = false;
    for (; p && p->keyword; p++)
        found |= !strcmp(p->keyword, "password") && p->val && *p->val;
    PQconninfoFree(o);
    return found;
}

/* `status` takes a rollout file or a rollout id: a path that exists is a file. */
static bool is_rollout_id(const char *arg)
{
    struct stat sb;
    size_t n = strlen(arg);
    /* A name that reads as a file is one, even when it is missing: said as a missing file,
     * not as a rollout without a journal. */
    bool file_like = strchr(arg, '/') || (n > 4 && !strcmp(arg + n - 4, ".yml")) ||
                     (n > 5 && !strcmp(arg + n - 5, ".yaml"));
    return !file_like && stat(arg, &sb) < 0 && rollout_id_valid(arg);
}

int main(int argc, char **argv)
{
    struct rollout_opts opts = {0};
    const char *state_dir = NULL, *journal = getenv("BATON_JOURNAL"), *reason = NULL;
    bool follow = false;
    /* getopt's table is cli.c's, so that completion offers exactly what is parsed here. */
    size_t n_options;
    const cli_option_t *options = cli_options(&n_options);
    struct option longopts[n_options + 1];
    for (size_t i = 0; i < n_options; i++)
        longopts[i] = (struct option){options[i].name,
                                      options[i].value ? required_argument : no_argument, NULL,
                                      options[i].val};
    longopts[n_options] = (struct option){NULL, 0, NULL, 0};
    int o;
    unsigned used = 0; /* CLI_* flags given, checked against the command below */
    bool want_help = false, journal_arg = false;
    opterr = 0; /* an unknown option is named below, with the command's line */
    while ((o = getopt_long(argc, argv, "jfh", longopts, NULL)) != -1) {
        switch (o) {
        case 'j':
            opts.json = true;
            used |= CLI_JSON;
            break;
        case 's':
            state_dir = optarg;
            used |= CLI_JOURNAL;
            break;
        case 'f':
            follow = true;
            used |= CLI_FOLLOW;
            break;
        case 'J':
            journal = optarg;
            journal_arg = true;
            used |= CLI_JOURNAL;
            break;
        case 'R':
            opts.restore_shared = true;
            used |= CLI_RESTORE_SHARED;
            break;
        case 'D':
            opts.allow_downgrade = true;
            used |= CLI_VERSIONS;
            break;
        case 'P':
            opts.restore_dump = optarg;
            used |= CLI_VERSIONS;
            break;
        case 'X':
            opts.jump = true;
            used |= CLI_VERSIONS;
            break;
        case 'r':
            reason = optarg;
            used |= CLI_REASON;
            break;
        case 'h':
            want_help = true;
            break;
        case 'V':
            printf("baton %s (protocol %d; works with agents %s and one minor older or newer)\n",
                   BATON_VERSION, BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT,
                   BATON_VERSION);
            return EXIT_DONE;
        default:
            return cli_usage_error(
                NULL, "%s: unknown option, or its argument is missing",
                argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    const char *cmd = nargs >= 1 ? argv[optind] : NULL, *arg = nargs >= 2 ? argv[optind + 1] : NULL;
    const cli_command_t *c = cli_find(cmd);
    if (want_help || (c && !strcmp(c->name, "help"))) {
        const cli_command_t *about = c && strcmp(c->name, "help") ? c : cli_find(arg);
        if (!about && c && !strcmp(c->name, "help") && arg)
            return cli_usage_error(NULL, "no command '%s'", arg);
        if (about)
            cli_command_help(stdout, about);
        else
            cli_usage(stdout);
        return EXIT_DONE;
    }
    if (!cmd)
        return cli_usage_error(NULL, "which command?");
    if (!c)
        return cli_usage_error(NULL, "no command '%s'", cmd);
    if (c->arity == CLI_ONE_ARG && nargs < 2)
        return cli_usage_error(c, "%s needs %s", c->name, c->arg);
    if (nargs > (c->arity != CLI_NO_ARG ? 2 : 1))
        return cli_usage_error(c, "%s: unexpected '%s'", c->name,
                               argv[optind + (c->arity != CLI_NO_ARG ? 2 : 1)]);
    const char *flag = cli_flag_refused(c, used);
    if (flag)
        return cli_usage_error(c, "%s does not apply to %s", flag, c->name);
    if (opts.restore_dump && opts.restore_dump[0] != '/')
        return cli_usage_error(c, "--restore-dump needs an absolute path, not '%s'",
                               opts.restore_dump);
    if (journal_arg && conninfo_password(journal))
        return cli_usage_error(c, "--journal holds a password, which every user on this machine "
                                  "can read (ps): put it in ~/.pgpass or $PGPASSFILE");
    if (follow && !is_rollout_id(arg))
        return cli_usage_error(c, "--follow follows a rollout by its id, not %s", arg);
    if (!strcmp(cmd, "completion")) {
        if (completion_print(stdout, arg) < 0)
            return cli_usage_error(c, "no completion for '%s'", arg);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "init")) {
        /* baton init [FILE]: a commented starter rollout file; never overwrites. */
        baton_err_t ierr = {0};
        const char *out = arg ? arg : INIT_DEFAULT_FILE;
        if (init_write(out, &ierr) < 0) {
            fprintf(stderr, "baton: init: %s\n", ierr.msg);
            return EXIT_USAGE;
        }
        init_next_steps(stdout, out);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "keygen")) {
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
    if (!strcmp(cmd, "freeze")) {
        code = freeze_command(opts.store, arg, reason);
        goto out;
    }
    if (!strcmp(cmd, "unfreeze")) {
        code = unfreeze_command(opts.store, arg);
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
