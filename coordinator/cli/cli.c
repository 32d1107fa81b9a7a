/* cli: see cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

#define JOURNALS "[--state-dir DIR | --journal CONNINFO]"

static const cli_command_t commands[] = {
    {"rollout",
     "rollout FILE.yml [--json] " JOURNALS "\n"
     "                     [--allow-downgrade] [--restore-dump /PATH] [--jump]",
     CLI_ONE_ARG, "FILE.yml", CLI_ARG_ROLLOUT_FILE, CLI_JSON | CLI_JOURNAL | CLI_VERSIONS,
     "upgrade the nodes of a rollout file",
     "            upgrade the nodes of FILE in batches (one at a time unless the file says\n"
     "            otherwise); every event is journaled in DIR/rollouts/ROLLOUT_ID.jsonl\n"
     "            (DIR: $BATON_STATE_DIR, else /var/lib/baton as root, else\n"
     "            $XDG_STATE_HOME/baton)\n"},
    {"plan", "plan FILE.yml [--json] [--allow-downgrade] [--restore-dump /PATH] [--jump]",
     CLI_ONE_ARG, "FILE.yml", CLI_ARG_ROLLOUT_FILE, CLI_JSON | CLI_JOURNAL | CLI_VERSIONS,
     "dry run: what every node would do",
     "            dry run: what every node would do and every reason it would refuse;\n"
     "            changes nothing (exit 0: could run, 2: would be refused)\n"},
    {"resume", "resume ROLLOUT_ID [--json] [--state-dir DIR]", CLI_ONE_ARG, "ROLLOUT_ID",
     CLI_ARG_ROLLOUT_ID, CLI_JSON | CLI_JOURNAL, "continue a paused, stopped or dead rollout",
     "            let a paused rollout go on, or continue one whose coordinator died or\n"
     "            was stopped, from its journal and the agents' records: no step that\n"
     "            completed runs again\n"},
    {"abort", "abort ROLLOUT_ID [--state-dir DIR]", CLI_ONE_ARG, "ROLLOUT_ID", CLI_ARG_ROLLOUT_ID,
     CLI_JOURNAL, "stop a rollout, roll back its steps in flight",
     "            stop a running rollout after its steps in flight and roll those nodes\n"
     "            back (as Ctrl-C); when no coordinator runs it, roll back what it left\n"},
    {"status", "status FILE.yml|ROLLOUT_ID [--json] [--follow] [--state-dir DIR]", CLI_ONE_ARG,
     "FILE.yml or ROLLOUT_ID", CLI_ARG_ROLLOUT_FILE | CLI_ARG_ROLLOUT_ID,
     CLI_JSON | CLI_JOURNAL | CLI_FOLLOW, "what each node runs, where its rollout got to",
     "            what each node runs, and where its last rollout got to; given a rollout\n"
     "            id, also the journal's view (running, paused, done, died); --follow\n"
     "            (with a rollout id) repeats it every 2 s until the rollout ends;\n"
     "            exit 2 when a node did not answer (said under its line)\n"},
    {"list", "list [--json] [--state-dir DIR]", CLI_NO_ARG, NULL, 0, CLI_JSON | CLI_JOURNAL,
     "the rollouts of the state folder",
     "            the rollouts in the state folder, newest first, and how each ended\n"},
    {"keygen", "keygen NAME", CLI_ONE_ARG, "NAME", CLI_ARG_PATH, 0,
     "make a CURVE key pair NAME.key, NAME.pub",
     "            a CURVE key pair: NAME.key (secret, 0600) and NAME.pub; never overwrites;\n"
     "            prints the public_key line to paste into a rollout file\n"},
    {"init", "init [FILE]", CLI_OPTIONAL_ARG, "FILE", CLI_ARG_PATH, 0,
     "write a commented starter rollout file",
     "            write a commented starter rollout file to FILE (default rollout.yml;\n"
     "            never overwrites) and say what to fill in before baton plan FILE\n"},
    {"rollback", "rollback FILE.yml|ROLLOUT_ID [--restore-shared] [--json] [--state-dir DIR]",
     CLI_ONE_ARG, "FILE.yml or ROLLOUT_ID", CLI_ARG_ROLLOUT_FILE | CLI_ARG_ROLLOUT_ID,
     CLI_JSON | CLI_JOURNAL | CLI_RESTORE_SHARED, "undo a rollout",
     "            FILE: undo every node's unfinished rollout, release reserved nodes;\n"
     "            ROLLOUT_ID: undo that rollout on every node it changed, committed ones\n"
     "            too (a downgrade), newest first\n"},
    {"freeze", "freeze SERVICE --reason TEXT [--state-dir DIR | --journal CONNINFO]", CLI_ONE_ARG,
     "SERVICE", CLI_ARG_SERVICE, CLI_JOURNAL | CLI_REASON, "refuse the rollouts of a service",
     "            refuse every rollout and resume of SERVICE, here and on every controller\n"
     "            sharing the journals, until baton unfreeze SERVICE; plan says why, since\n"
     "            when and by whom (a rollout running now goes on: baton abort stops it)\n"},
    {"unfreeze", "unfreeze SERVICE [--state-dir DIR | --journal CONNINFO]", CLI_ONE_ARG, "SERVICE",
     CLI_ARG_SERVICE, CLI_JOURNAL, "let a frozen service's rollouts run again",
     "            lift baton freeze SERVICE, and say who froze it, when and why\n"},
    {"help", "help [COMMAND]", CLI_OPTIONAL_ARG, "COMMAND", CLI_ARG_COMMAND, 0,
     "this text, or one command's", "            this text, or one command's\n"},
    {"completion", "completion bash|zsh|fish", CLI_ONE_ARG, "a shell (bash, zsh or fish)",
     CLI_ARG_SHELL, 0, "print the completion script for a shell",
     "            the completion script for that shell, made from this table (make install\n"
     "            installs all three; or: source <(baton completion bash))\n"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Short options (-j, -f, -h) are main()'s own; these are the long ones. */
static const cli_option_t options[] = {
    {"json", 'j', CLI_VALUE_NONE, NULL, CLI_JSON, "print events as JSON, one object a line"},
    {"state-dir", 's', CLI_VALUE_DIR, "DIR", CLI_JOURNAL, "the folder of the journals"},
    {"journal", 'J', CLI_VALUE_TEXT, "CONNINFO", CLI_JOURNAL,
     "journals in this PostgreSQL database"},
    {"follow", 'f', CLI_VALUE_NONE, NULL, CLI_FOLLOW, "repeat every 2 s until the rollout ends"},
    {"restore-shared", 'R', CLI_VALUE_NONE, NULL, CLI_RESTORE_SHARED,
     "restore a dump into a database others use"},
    {"allow-downgrade", 'D', CLI_VALUE_NONE, NULL, CLI_VERSIONS, "roll to an older version"},
    {"restore-dump", 'P', CLI_VALUE_DUMP, "/PATH", CLI_VERSIONS,
     "restore this dump on a downgrade"},
    {"jump", 'X', CLI_VALUE_NONE, NULL, CLI_VERSIONS,
     "one rollout across minors, in maintenance style"},
    {"reason", 'r', CLI_VALUE_TEXT, "TEXT", CLI_REASON, "why the service is frozen"},
    {"help", 'h', CLI_VALUE_NONE, NULL, 0, "what the command does"},
    {"version", 'V', CLI_VALUE_NONE, NULL, CLI_NO_COMMAND,
     "this version, and the agents' it works with"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const cli_command_t *cli_commands(size_t *ret_n)
{
    *ret_n = N_COMMANDS;
    return commands;
}

const cli_option_t *cli_options(size_t *ret_n)
{
    *ret_n = N_OPTIONS;
    return options;
}

const cli_command_t *cli_find(const char *name)
{
    for (size_t i = 0; name && i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

void cli_command_help(FILE *f, const cli_command_t *c)
{
    fprintf(f, "usage: baton %s\n%s", c->synopsis, c->help);
}

void cli_usage(FILE *f)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "%s baton %s\n", i ? "      " : "usage:", commands[i].synopsis);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        /* The help's first line goes beside a short name, under a long one. */
        if (strlen(commands[i].name) < 10)
            fprintf(f, "  %-9s %s", commands[i].name, commands[i].help + 12);
        else
            fprintf(f, "  %s\n%s", commands[i].name, commands[i].help);
    }
    fputs("--version: this coordinator's version, and the agents' it works with (the same major,\n"
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
          "Ctrl-C once: finish the step in flight, settle that node, stop; twice: stop now.\n",
          f);
}

int cli_usage_error(const cli_command_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("baton: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c) {
        fprintf(stderr, "usage: baton %s\n", c->synopsis);
    } else {
        fputs("commands:", stderr);
        for (size_t i = 0; i < N_COMMANDS; i++)
            fprintf(stderr, " %s", commands[i].name);
        fputc('\n', stderr);
    }
    fputs("(baton help COMMAND, or baton --help, says more)\n", stderr);
    return 1;
}

const char *cli_flag_refused(const cli_command_t *c, unsigned used)
{
    static char names[128];
    unsigned refused = used & ~c->flags;
    if (!refused)
        return NULL;
    unsigned bit = refused & -refused; /* the lowest: the table's order */
    names[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].flag == bit)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s--%s",
                     names[0] ? "/" : "", options[i].name);
    return names;
}
