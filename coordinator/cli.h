/* cli: baton's commands, as one table: what each takes, which flags apply, its help. `baton
 * --help`, `baton help COMMAND`, `baton COMMAND --help` and every usage error come from it, so
 * that a mistake is named ("--follow applies to status only") with the command's own line, not
 * answered with the whole usage. */
#ifndef BATON_CLI_H
#define BATON_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Flags a command may take (main.c's options). */
enum {
    CLI_JSON = 1 << 0,           /* --json */
    CLI_JOURNAL = 1 << 1,        /* --state-dir, --journal */
    CLI_FOLLOW = 1 << 2,         /* --follow */
    CLI_RESTORE_SHARED = 1 << 3, /* --restore-shared */
    CLI_VERSIONS = 1 << 4,       /* --allow-downgrade, --restore-dump, --jump */
};

typedef struct cli_command {
    const char *name;
    const char *synopsis; /* "rollout FILE.yml [--json] ..." */
    bool takes_arg;       /* one argument (FILE.yml, ROLLOUT_ID or NAME), else none */
    const char *arg;      /* what it is called, for a message */
    unsigned flags;       /* CLI_* it accepts */
    const char *help;     /* what it does, lines indented by 12 */
} cli_command_t;

/* The command called `name`, or NULL. */
const cli_command_t *cli_find(const char *name);
/* The whole usage: every command's synopsis and help, the flags, the exit codes. */
void cli_usage(FILE *f);
/* One command's synopsis and help. */
void cli_command_help(FILE *f, const cli_command_t *c);
/* A usage error: "baton: WHAT", then the command's synopsis (or the list of commands), on
 * stderr. Returns the exit code for it (1). */
int cli_usage_error(const cli_command_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The first flag among `used` (CLI_*) that `c` does not take: its name ("--follow"), or NULL. */
const char *cli_flag_refused(const cli_command_t *c, unsigned used);

#endif
