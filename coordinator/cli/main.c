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

/* What the command line says. */
struct args {
    struct rollout_opts opts;
    const char *state_dir, *journal, *reason;
    const char *cmd, *arg; /* the command and its one argument, or NULL */
    const cli_command_t *c;
    int nargs;     /* words after the options */
    unsigned used; /* CLI_* flags given, checked against the command */
    bool follow, want_help, journal_arg;
};

/* The options, by cli.c's table (so that completion offers exactly what is parsed here).
 * Returns -1 to go on, else the exit code (--version, a bad option). */
static int parse_options(int argc, char **argv, struct args *a)
{
    size_t n_options;
    const cli_option_t *options = cli_options(&n_options);
    struct option longopts[n_options + 1];
    for (size_t i = 0; i < n_options; i++)
        longopts[i] =
            (struct option){options[i].name, options[i].value ? required_argument : no_argument,
                            NULL, options[i].val};
    longopts[n_options] = (struct option){NULL, 0, NULL, 0};
    int o;
    opterr = 0; /* an unknown option is named below, with the command's line */
    while ((o = getopt_long(argc, argv, "jfh", longopts, NULL)) != -1) {
        switch (o) {
        case 'j':
            a->opts.json = true;
            a->used |= CLI_JSON;
            break;
        case 's':
            a->state_dir = optarg;
            a->used |= CLI_JOURNAL;
            break;
        case 'f':
            a->follow = true;
            a->used |= CLI_FOLLOW;
            break;
        case 'J':
            a->journal = optarg;
            a->journal_arg = true;
            a->used |= CLI_JOURNAL;
            break;
        case 'R':
            a->opts.restore_shared = true;
            a->used |= CLI_RESTORE_SHARED;
            break;
        case 'D':
            a->opts.allow_downgrade = true;
            a->used |= CLI_VERSIONS;
            break;
        case 'P':
            a->opts.restore_dump = optarg;
            a->used |= CLI_VERSIONS;
            break;
        case 'X':
            a->opts.jump = true;
            a->used |= CLI_VERSIONS;
            break;
        case 'r':
            a->reason = optarg;
            a->used |= CLI_REASON;
            break;
        case 'h':
            a->want_help = true;
            break;
        case 'V':
            printf("baton %s (protocol %d; works with agents %s and one minor older or newer)\n",
                   BATON_VERSION, BATON__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT, BATON_VERSION);
            return EXIT_DONE;
        default:
            return cli_usage_error(NULL, "%s: unknown option, or its argument is missing",
                                   argv[optind - 1]);
        }
    }
    a->nargs = argc - optind;
    a->cmd = a->nargs >= 1 ? argv[optind] : NULL;
    a->arg = a->nargs >= 2 ? argv[optind + 1] : NULL;
    a->c = cli_find(a->cmd);
    return -1;
}

/* Help, and every rule of which words and flags a command takes. Returns -1 to go on, else the
 * exit code. `extra` is the first word past the command's argument. */
static int check_usage(const struct args *a, const char *extra)
{
    const cli_command_t *c = a->c;
    if (a->want_help || (c && !strcmp(c->name, "help"))) {
        const cli_command_t *about = c && strcmp(c->name, "help") ? c : cli_find(a->arg);
        if (!about && c && !strcmp(c->name, "help") && a->arg)
            return cli_usage_error(NULL, "no command '%s'", a->arg);
        if (about)
            cli_command_help(stdout, about);
        else
            cli_usage(stdout);
        return EXIT_DONE;
    }
    if (!a->cmd)
        return cli_usage_error(NULL, "which command?");
    if (!c)
        return cli_usage_error(NULL, "no command '%s'", a->cmd);
    if (c->arity == CLI_ONE_ARG && a->nargs < 2)
        return cli_usage_error(c, "%s needs %s", c->name, c->arg);
    if (a->nargs > (c->arity != CLI_NO_ARG ? 2 : 1))
        return cli_usage_error(c, "%s: unexpected '%s'", c->name, extra);
    const char *flag = cli_flag_refused(c, a->used);
    if (flag)
        return cli_usage_error(c, "%s does not apply to %s", flag, c->name);
    if (a->opts.restore_dump && a->opts.restore_dump[0] != '/')
        return cli_usage_error(c, "--restore-dump needs an absolute path, not '%s'",
                               a->opts.restore_dump);
    if (a->journal_arg && conninfo_password(a->journal))
        return cli_usage_error(c, "--journal holds a password, which every user on this machine "
                                  "can read (ps): put it in ~/.pgpass or $PGPASSFILE");
    if (a->follow && !is_rollout_id(a->arg))
        return cli_usage_error(c, "--follow follows a rollout by its id, not %s", a->arg);
    return -1;
}

/* baton init [FILE]: a commented starter rollout file; never overwrites. */
static int init_command(const char *arg)
{
    baton_err_t err = {0};
    const char *out = arg ? arg : INIT_DEFAULT_FILE;
    if (init_write(out, &err) < 0) {
        fprintf(stderr, "baton: init: %s\n", err.msg);
        return EXIT_USAGE;
    }
    init_next_steps(stdout, out);
    return EXIT_DONE;
}

/* baton keygen NAME: NAME.key (secret, 0600) and NAME.pub; never overwrites. */
static int keygen_command(const char *name)
{
    baton_err_t err = {0};
    transport_key_t pub;
    char *pub_path = NULL, fp[17];
    if (transport_keygen(name, &err) < 0 || asprintf(&pub_path, "%s.pub", name) < 0 ||
        transport_read_public(pub_path, &pub, &err) < 0) {
        fprintf(stderr, "baton: keygen: %s\n", err.msg);
        free(pub_path);
        return EXIT_REFUSED;
    }
    transport_fingerprint(&pub, fp);
    printf("%s.key (secret, mode 0600) and %s (public key %s, fingerprint %s)\n", name, pub_path,
           pub.z85, fp);
    /* Z85 keys hold $ % { > * [ ^: quoted, a key pastes as it is into YAML and shells. */
    printf("  an agent's key, for its node in a rollout file (keep the quotes):\n"
           "    public_key: \"%s\"\n"
           "  a coordinator's key: copy %s into each agent's authorized_keys file\n",
           pub.z85, pub_path);
    free(pub_path);
    return EXIT_DONE;
}

/* The commands that read the journal only (no rollout file). Returns -1 for the others. */
static int journal_command(struct args *a)
{
    const char *cmd = a->cmd, *arg = a->arg;
    if (!strcmp(cmd, "list"))
        return history_list(&a->opts);
    if (!strcmp(cmd, "freeze"))
        return freeze_command(a->opts.store, arg, a->reason);
    if (!strcmp(cmd, "unfreeze"))
        return unfreeze_command(a->opts.store, arg);
    if (!strcmp(cmd, "abort"))
        return history_abort(arg, &a->opts);
    if (!strcmp(cmd, "rollback") && is_rollout_id(arg))
        return history_undo(arg, &a->opts);
    if (!strcmp(cmd, "status") && is_rollout_id(arg))
        return history_status(arg, a->follow, &a->opts);
    return -1;
}

/* baton resume ID: the rollout file the journal names (*ret_file, allocated), if the rollout
 * may go on. Done or refused: nothing to continue; stopped (3, 4) or killed (no summary): go on. */
static int resume_file(struct args *a, char **ret_file)
{
    baton_err_t err = {0};
    journal_record_t rec;
    a->opts.resume_id = a->arg;
    if (journal_read(a->opts.store, a->opts.resume_id, &rec, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
        return EXIT_REFUSED;
    }
    if (rec.exit >= 0 && rec.exit <= 2) {
        fprintf(stderr, "baton: rollout %s has ended (exit %d): %s\n", a->opts.resume_id, rec.exit,
                rec.outcome ? rec.outcome : "");
        journal_record_clear(&rec);
        return EXIT_REFUSED;
    }
    *ret_file = rec.file;
    rec.file = NULL;
    journal_record_clear(&rec);
    return -1;
}

/* The commands of a rollout file: rollout, resume, status, plan, rollback. */
static int file_command(struct args *a, const char *path)
{
    const char *cmd = a->cmd;
    rollout_file_t *rf = NULL;
    baton_err_t err = {0};
    if (rollout_file_load(path, &rf, &err) < 0 ||
        /* What a rollout sends must be there: said with the file's line, before any node is
         * asked anything (a rollback or a status does not need it). */
        ((!strcmp(cmd, "rollout") || !strcmp(cmd, "plan") || !strcmp(cmd, "resume")) &&
         rollout_file_check_artifact(rf, &err) < 0)) {
        fprintf(stderr, "baton: %s\n", err.msg);
        rollout_file_destroy(&rf);
        return EXIT_USAGE;
    }
    if (rf->insecure)
        fprintf(stderr,
                "baton: warning: %s says insecure: true: plain text, and any machine at "
                "the endpoints can pose as an agent\n",
                rf->path);
    int code = !strcmp(cmd, "rollout")  ? rollout_path(rf, &a->opts)
               : !strcmp(cmd, "resume") ? rollout_run(rf, &a->opts)
               : !strcmp(cmd, "status") ? rollout_status(rf, &a->opts)
               : !strcmp(cmd, "plan")   ? rollout_plan(rf, &a->opts)
                                        : rollout_rollback(rf, &a->opts);
    rollout_file_destroy(&rf);
    return code;
}

int main(int argc, char **argv)
{
    struct args a = {.journal = getenv("BATON_JOURNAL")};
    int code = parse_options(argc, argv, &a);
    if (code >= 0)
        return code;
    int extra = optind + (a.c && a.c->arity != CLI_NO_ARG ? 2 : 1);
    if ((code = check_usage(&a, extra < argc ? argv[extra] : NULL)) >= 0)
        return code;
    if (!strcmp(a.cmd, "completion")) {
        if (completion_print(stdout, a.arg) < 0)
            return cli_usage_error(a.c, "no completion for '%s'", a.arg);
        return EXIT_DONE;
    }
    if (!strcmp(a.cmd, "init"))
        return init_command(a.arg);
    if (!strcmp(a.cmd, "keygen"))
        return keygen_command(a.arg);

    char *default_dir = a.state_dir ? NULL : journal_default_dir(), *file = NULL;
    baton_err_t err = {0};
    code = EXIT_USAGE;
    if ((!a.state_dir && !default_dir) || journal_store_new(a.state_dir ? a.state_dir : default_dir,
                                                            a.journal, &a.opts.store, &err) < 0) {
        fprintf(stderr, "baton: out of memory\n");
        goto out;
    }
    interrupt_install();
    if ((code = journal_command(&a)) >= 0)
        goto out;
    if (!strcmp(a.cmd, "resume") && (code = resume_file(&a, &file)) >= 0)
        goto out;
    code = file_command(&a, file ? file : a.arg);
out:
    journal_store_destroy(&a.opts.store);
    free(default_dir);
    free(file);
    return code;
}
