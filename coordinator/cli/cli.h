/* cli: baton's commands and options, as two tables: what each command takes, which options
 * apply, their help. `baton --help`, `baton help COMMAND`, `baton COMMAND --help`, every usage
 * error, main()'s getopt and the shell completion scripts (completion.h) come from them, so
 * that a mistake is named ("--follow applies to status only") with the command's own line, and
 * a new command or option needs one line here and nowhere else. */
#ifndef BATON_CLI_H
#define BATON_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Flags a command may take (main.c's options). */
enum {
    CLI_JSON = 1 << 0,           /* --json */
    CLI_JOURNAL = 1 << 1,        /* --state-dir, --journal */
    CLI_FOLLOW = 1 << 2,         /* --follow */
    CLI_RESTORE_SHARED = 1 << 3, /* --restore-shared */
    CLI_VERSIONS = 1 << 4,       /* --allow-downgrade, --restore-dump, --jump */
    CLI_REASON = 1 << 5,         /* --reason */
    CLI_NO_COMMAND = 1 << 8,     /* an option given without a command (--version) */
};

/* How many arguments a command takes. */
typedef enum cli_arity {
    CLI_NO_ARG = 0,   /* none */
    CLI_ONE_ARG,      /* exactly one */
    CLI_OPTIONAL_ARG, /* one or none */
} cli_arity_t;

/* What a command's argument is, for the shell completion (an OR of these). */
enum {
    CLI_ARG_ROLLOUT_FILE = 1 << 0, /* a rollout file: *.yml, *.yaml */
    CLI_ARG_ROLLOUT_ID = 1 << 1,   /* a rollout id: the first column of `baton list` */
    CLI_ARG_PATH = 1 << 2,         /* any path (a file to be made) */
    CLI_ARG_COMMAND = 1 << 3,      /* one of baton's commands */
    CLI_ARG_SHELL = 1 << 4,        /* a shell completion.h knows */
    CLI_ARG_SERVICE = 1 << 5,      /* a service name: nothing to offer */
};

/* What an option's value is, for the shell completion. */
typedef enum cli_value {
    CLI_VALUE_NONE = 0, /* the option takes no value */
    CLI_VALUE_TEXT,     /* free text, nothing to offer */
    CLI_VALUE_DIR,      /* a folder */
    CLI_VALUE_DUMP,     /* a dump file: *.dump */
} cli_value_t;

typedef struct cli_option {
    const char *name;  /* "state-dir": --state-dir */
    int val;           /* what getopt_long returns for it */
    cli_value_t value; /* what its value is; CLI_VALUE_NONE: it takes none */
    const char *what;  /* its value's name ("DIR"), or NULL */
    unsigned flag;     /* the CLI_* flag of the commands that take it; 0: every command */
    const char *help;  /* one short line, for completion menus */
} cli_option_t;

typedef struct cli_command {
    const char *name;
    const char *synopsis; /* "rollout FILE.yml [--json] ..." */
    cli_arity_t arity;    /* how many arguments it takes */
    const char *arg;      /* what its argument is called, for a message, or NULL */
    unsigned arg_kinds;   /* CLI_ARG_*: what its argument may be, for completion */
    unsigned flags;       /* CLI_* it accepts */
    const char *brief;    /* what it does, in a few words (completion menus) */
    const char *help;     /* what it does, lines indented by 12 */
} cli_command_t;

/* The table of commands, in the order --help lists them; `*ret_n` is set to their number. */
const cli_command_t *cli_commands(size_t *ret_n);
/* The table of long options (main()'s getopt is made from it); `*ret_n`: their number. */
const cli_option_t *cli_options(size_t *ret_n);

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
/* The first flag among `used` (CLI_*) that `c` does not take: its options' names ("--follow",
 * "--state-dir/--journal", in a static buffer valid until the next call), or NULL. */
const char *cli_flag_refused(const cli_command_t *c, unsigned used);

#endif
