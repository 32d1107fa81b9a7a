/* completion: see completion.h. Each writer walks cli.c's two tables; what differs between the
 * shells is only how they say "offer these words here". */
#include "completion.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"

/* Whether command `c` takes option `o`; c NULL: the line has no command yet. */

/* The words a CLI_ARG_COMMAND or CLI_ARG_SHELL argument may be, separated by spaces: the one
 * list each shell's script spells in its own syntax. */
static void word_list(FILE *f, unsigned kind)
{
    size_t n = 0;
    const cli_command_t *cmds = cli_commands(&n);
    if (kind == CLI_ARG_COMMAND) {
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? " " : "", cmds[i].name);
    } else {
        for (const char *const *s = completion_shells(); *s; s++)
            fprintf(f, "%s%s", s == completion_shells() ? "" : " ", *s);
    }
}
static bool takes(const cli_command_t *c, const cli_option_t *o)
{
    if (!c)
        return o->flag == 0 || o->flag == CLI_NO_COMMAND;
    return o->flag == 0 || (o->flag & c->flags & ~CLI_NO_COMMAND);
}

/* s in single quotes for sh (bash and zsh): a quote becomes '\''. */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        fputs(*s == '\'' ? "'\\''" : (char[]){*s, 0}, f);
    fputc('\'', f);
}

/* s in single quotes for fish, where a backslash escapes a quote and a backslash. */
static void fish_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The names of the options that take a value and satisfy `journal` (they name the journals,
 * so `baton list` is asked with them), separated by `sep`, each with `prefix`. */
static void valued(FILE *f, bool journal, const char *prefix, const char *sep)
{
    size_t n_opts;
    const cli_option_t *opts = cli_options(&n_opts);
    bool first = true;
    for (size_t i = 0; i < n_opts; i++)
        if (opts[i].value != CLI_VALUE_NONE && (opts[i].flag == CLI_JOURNAL) == journal) {
            fprintf(f, "%s%s%s", first ? "" : sep, prefix, opts[i].name);
            first = false;
        }
}

/* --- bash ------------------------------------------------------------------------------------ */

/* The options command c takes (NULL: before a command), "--json --state-dir ...". */
static void bash_options(FILE *f, const cli_command_t *c)
{
    size_t n_opts;
    const cli_option_t *opts = cli_options(&n_opts);
    bool first = true;
    for (size_t i = 0; i < n_opts; i++)
        if (takes(c, &opts[i])) {
            fprintf(f, "%s--%s", first ? "" : " ", opts[i].name);
            first = false;
        }
}

static void bash_value(FILE *f, const cli_option_t *o)
{
    fprintf(f, "    --%s) ", o->name);
    switch (o->value) {
    case CLI_VALUE_DIR:
        fputs(
            "compopt -o filenames 2>/dev/null; _baton_add < <(compgen -d -- \"$cur\"); return ;;\n",
            f);
        break;
    case CLI_VALUE_DUMP:
        fputs("_baton_files '*.dump'; return ;;\n", f);
        break;
    default:
        fputs("return ;;\n", f); /* free text: nothing to offer, and no option either */
    }
}

static void bash_words(FILE *f, const char *sep, const char *word)
{
    fprintf(f, "%s%s", sep, word);
}

static void bash_argument(FILE *f, const cli_command_t *c)
{
    const char *sep = " ";
    fprintf(f, "    %s)", c->name);
    if (c->arg_kinds & CLI_ARG_ROLLOUT_ID) {
        bash_words(f, sep, "_baton_ids");
        sep = "; ";
    }
    if (c->arg_kinds & CLI_ARG_ROLLOUT_FILE) {
        bash_words(f, sep, "_baton_files '*.yml' '*.yaml'");
        sep = "; ";
    }
    if (c->arg_kinds & CLI_ARG_PATH) {
        bash_words(f, sep, "_baton_files");
        sep = "; ";
    }
    for (unsigned kind = CLI_ARG_COMMAND; kind <= CLI_ARG_SHELL; kind <<= 1) {
        if (!(c->arg_kinds & kind))
            continue;
        fprintf(f, "%s_baton_add < <(compgen -W '", sep);
        word_list(f, kind);
        fputs("' -- \"$cur\")", f);
        sep = "; ";
    }
    fputs(" ;;\n", f);
}

static void bash(FILE *f)
{
    size_t n_cmds, n_opts;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    const cli_option_t *opts = cli_options(&n_opts);
    fputs(
        "# bash completion for baton, written by `baton completion bash` from baton's own tables\n"
        "# of commands and options (coordinator/cli/cli.c): regenerate it rather than edit it.\n"
        "\n"
        "# Adds each line of the input to COMPREPLY (a file name may hold a space).\n"
        "_baton_add() {\n"
        "    local w\n"
        "    while IFS= read -r w; do\n"
        "        COMPREPLY+=(\"$w\")\n"
        "    done\n"
        "}\n"
        "\n"
        "# The files matching one of the patterns and the folders, or with none every file.\n"
        "_baton_files() {\n"
        "    local p\n"
        "    compopt -o filenames 2>/dev/null\n"
        "    if [ $# -eq 0 ]; then\n"
        "        _baton_add < <(compgen -f -- \"$cur\")\n"
        "        return\n"
        "    fi\n"
        "    for p in \"$@\"; do\n"
        "        _baton_add < <(compgen -f -X \"!$p\" -- \"$cur\")\n"
        "    done\n"
        "    _baton_add < <(compgen -d -- \"$cur\")\n"
        "}\n"
        "\n"
        "# The rollout ids `baton list` shows (its first column, after the header), asked of the\n"
        "# journals the line names.\n"
        "_baton_ids() {\n"
        "    _baton_add < <(compgen -W \"$(baton \"${journal[@]}\" list 2>/dev/null |\n"
        "        awk 'NR > 1 { print $1 }')\" -- \"$cur\")\n"
        "}\n"
        "\n"
        "_baton() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
        "    local cmd= nargs=0 i v w\n"
        "    local -a journal=()\n"
        "    COMPREPLY=()\n"
        "    # --opt=VALUE comes as three words (= breaks words): the option is before the =.\n"
        "    if [ \"$prev\" = = ] && [ \"$COMP_CWORD\" -ge 2 ]; then\n"
        "        prev=${COMP_WORDS[COMP_CWORD - 2]}\n"
        "    elif [ \"$cur\" = = ]; then\n"
        "        cur=\n"
        "    fi\n"
        "    # The command is the first word that is neither an option nor an option's value.\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        w=${COMP_WORDS[i]}\n"
        "        v=$((i + 1))\n"
        "        [ \"${COMP_WORDS[v]}\" = = ] && v=$((v + 1))\n"
        "        case $w in\n"
        "        ",
        f);
    valued(f, true, "--", " | ");
    fputs(")\n"
          "            journal+=(\"$w\" \"${COMP_WORDS[v]}\")\n"
          "            i=$v\n"
          "            ;;\n"
          "        ",
          f);
    valued(f, false, "--", " | ");
    fputs(") i=$v ;;\n"
          "        -*) ;;\n"
          "        *) if [ -z \"$cmd\" ]; then cmd=$w; else nargs=$((nargs + 1)); fi ;;\n"
          "        esac\n"
          "    done\n"
          "    case $prev in\n",
          f);
    for (size_t i = 0; i < n_opts; i++)
        if (opts[i].value != CLI_VALUE_NONE)
            bash_value(f, &opts[i]);
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        case $cmd in\n"
          "        '') w='",
          f);
    bash_options(f, NULL);
    fputs("' ;;\n", f);
    for (size_t i = 0; i < n_cmds; i++) {
        fprintf(f, "        %s) w='", cmds[i].name);
        bash_options(f, &cmds[i]);
        fputs("' ;;\n", f);
    }
    fputs("        *) w=--help ;;\n"
          "        esac\n"
          "        _baton_add < <(compgen -W \"$w\" -- \"$cur\")\n"
          "        return\n"
          "    fi\n"
          "    if [ -z \"$cmd\" ]; then\n"
          "        _baton_add < <(compgen -W '",
          f);
    word_list(f, CLI_ARG_COMMAND);
    fputs("' -- \"$cur\")\n"
          "        return\n"
          "    fi\n"
          "    # One argument at most: once it is there, only options are left.\n"
          "    [ \"$nargs\" -eq 0 ] || return\n"
          "    case $cmd in\n",
          f);
    for (size_t i = 0; i < n_cmds; i++)
        if (cmds[i].arity != CLI_NO_ARG && cmds[i].arg_kinds)
            bash_argument(f, &cmds[i]);
    fputs("    esac\n"
          "}\n"
          "complete -F _baton baton\n",
          f);
}

/* --- zsh ------------------------------------------------------------------------------------- */

/* s for inside an _arguments spec: ] and : and \ escaped (quoted later as a whole). */
static void zsh_spec_text(char *buf, size_t len, const char *s)
{
    size_t j = 0;
    for (; *s && j + 3 < len; s++) {
        if (*s == ']' || *s == '[' || *s == ':' || *s == '\\')
            buf[j++] = '\\';
        buf[j++] = *s;
    }
    buf[j] = '\0';
}

static void zsh_option(FILE *f, const cli_option_t *o)
{
    char help[256], what[64], spec[512];
    zsh_spec_text(help, sizeof(help), o->help);
    zsh_spec_text(what, sizeof(what), o->what ? o->what : "");
    const char *action = o->value == CLI_VALUE_DIR    ? "_files -/"
                         : o->value == CLI_VALUE_DUMP ? "_files -g \"*.dump(-.)\""
                                                      : " ";
    if (o->value == CLI_VALUE_NONE)
        snprintf(spec, sizeof(spec), "--%s[%s]", o->name, help);
    else
        snprintf(spec, sizeof(spec), "--%s=[%s]:%s:%s", o->name, help, what, action);
    fputs(" \\\n                ", f);
    sh_quote(f, spec);
}

static void zsh_command(FILE *f, const cli_command_t *c)
{
    size_t n_opts;
    const cli_option_t *opts = cli_options(&n_opts);
    fprintf(f, "        (%s)\n            _arguments -S", c->name);
    for (size_t i = 0; i < n_opts; i++)
        if (takes(c, &opts[i]))
            zsh_option(f, &opts[i]);
    if (c->arity != CLI_NO_ARG && c->arg_kinds) {
        char what[128], spec[1024];
        size_t used = 0;
        zsh_spec_text(what, sizeof(what), c->arg);
        used +=
            snprintf(spec, sizeof(spec), "1%s%s:", c->arity == CLI_OPTIONAL_ARG ? "::" : ":", what);
        if (c->arg_kinds == (CLI_ARG_ROLLOUT_FILE | CLI_ARG_ROLLOUT_ID))
            used += snprintf(spec + used, sizeof(spec) - used, "_baton_file_or_id");
        else if (c->arg_kinds & CLI_ARG_ROLLOUT_FILE)
            used += snprintf(spec + used, sizeof(spec) - used, "_baton_rollout_files");
        else if (c->arg_kinds & CLI_ARG_ROLLOUT_ID)
            used += snprintf(spec + used, sizeof(spec) - used, "_baton_ids");
        else if (c->arg_kinds & CLI_ARG_PATH)
            used += snprintf(spec + used, sizeof(spec) - used, "_files");
        else if (c->arg_kinds & (CLI_ARG_COMMAND | CLI_ARG_SHELL)) {
            FILE *w = used < sizeof(spec) ? fmemopen(spec + used, sizeof(spec) - used, "w") : NULL;
            if (w) {
                fputc('(', w);
                word_list(w, c->arg_kinds & CLI_ARG_COMMAND ? CLI_ARG_COMMAND : CLI_ARG_SHELL);
                fputc(')', w);
                fclose(w);
            }
        }
        fputs(" \\\n                ", f);
        sh_quote(f, spec);
    }
    fputs(" && ret=0\n            ;;\n", f);
}

static void zsh(FILE *f)
{
    size_t n_cmds, n_opts;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    const cli_option_t *opts = cli_options(&n_opts);
    fputs(
        "#compdef baton\n"
        "# zsh completion for baton, written by `baton completion zsh` from baton's own tables\n"
        "# of commands and options (coordinator/cli/cli.c): regenerate it rather than edit it.\n"
        "\n"
        "# The rollout ids `baton list` shows (its first column, after the header), asked of the\n"
        "# journals the line names.\n"
        "_baton_ids() {\n"
        "    local -a journal lines ids\n"
        "    local i\n"
        "    for ((i = 1; i < CURRENT; i++)); do\n"
        "        case ${words[i]} in\n"
        "        (",
        f);
    valued(f, true, "--", "|");
    fputs(") journal+=(${words[i]} ${words[i+1]}) ;;\n"
          "        (",
          f);
    valued(f, true, "--", "=*|");
    fputs("=*) journal+=(${words[i]}) ;;\n"
          "        esac\n"
          "    done\n"
          "    lines=(${(f)\"$(baton $journal list 2>/dev/null)\"})\n"
          "    ids=(${lines[2,-1]%% *})\n"
          "    _wanted rollout-ids expl 'rollout id' compadd -a ids\n"
          "}\n"
          "\n"
          "_baton_rollout_files() {\n"
          "    _files -g '*.(yml|yaml)(-.)'\n"
          "}\n"
          "\n"
          "_baton_file_or_id() {\n"
          "    _alternative 'rollout-ids:rollout id:_baton_ids' \\\n"
          "        'rollout-files:rollout file:_baton_rollout_files'\n"
          "}\n"
          "\n"
          "_baton() {\n"
          "    local curcontext=$curcontext state state_descr line ret=1\n"
          "    local -a commands\n"
          "    local -A opt_args\n"
          "    _arguments -C",
          f);
    for (size_t i = 0; i < n_opts; i++)
        if (takes(NULL, &opts[i])) {
            char help[256], spec[512];
            zsh_spec_text(help, sizeof(help), opts[i].help);
            snprintf(spec, sizeof(spec), "(- *)--%s[%s]", opts[i].name, help);
            fputs(" \\\n        ", f);
            sh_quote(f, spec);
        }
    fputs(" \\\n        '1:command:->command' \\\n"
          "        '*::argument:->argument' && ret=0\n"
          "    case $state in\n"
          "    (command)\n"
          "        commands=(",
          f);
    for (size_t i = 0; i < n_cmds; i++) {
        char spec[256];
        snprintf(spec, sizeof(spec), "%s:%s", cmds[i].name, cmds[i].brief);
        fputs("\n            ", f);
        sh_quote(f, spec);
    }
    fputs("\n        )\n"
          "        _describe -t commands 'baton command' commands && ret=0\n"
          "        ;;\n"
          "    (argument)\n"
          "        curcontext=${curcontext%:*:*}:baton-$words[1]:\n"
          "        case $words[1] in\n",
          f);
    for (size_t i = 0; i < n_cmds; i++)
        zsh_command(f, &cmds[i]);
    fputs("        esac\n"
          "        ;;\n"
          "    esac\n"
          "    return ret\n"
          "}\n"
          "\n"
          "# Autoloaded from fpath (as _baton), or sourced: source <(baton completion zsh).\n"
          "if [ \"$funcstack[1]\" = _baton ]; then\n"
          "    _baton \"$@\"\n"
          "else\n"
          "    compdef _baton baton\n"
          "fi\n",
          f);
}

/* --- fish ------------------------------------------------------------------------------------ */

static void fish_command_list(FILE *f, unsigned arg_kinds, bool with_arg)
{
    size_t n_cmds;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    for (size_t i = 0; i < n_cmds; i++)
        if ((!with_arg || cmds[i].arity != CLI_NO_ARG) && (cmds[i].arg_kinds & arg_kinds))
            fprintf(f, " %s", cmds[i].name);
}

static void fish(FILE *f)
{
    size_t n_cmds, n_opts;
    const cli_command_t *cmds = cli_commands(&n_cmds);
    const cli_option_t *opts = cli_options(&n_opts);
    fputs(
        "# fish completion for baton, written by `baton completion fish` from baton's own tables\n"
        "# of commands and options (coordinator/cli/cli.c): regenerate it rather than edit it.\n"
        "\n"
        "function __baton_words --description 'the command and its argument on the line'\n"
        "    set -l words (commandline -opc)\n"
        "    set -e words[1]\n"
        "    set -l skip 0\n"
        "    for w in $words\n"
        "        if test $skip = 1\n"
        "            set skip 0\n"
        "            continue\n"
        "        end\n"
        "        switch $w\n"
        "            case",
        f);
    valued(f, true, " --", "");
    valued(f, false, " --", "");
    fputs(
        "\n"
        "                set skip 1\n"
        "            case '-*'\n"
        "            case '*'\n"
        "                echo $w\n"
        "        end\n"
        "    end\n"
        "end\n"
        "\n"
        "# N CMD...: the line has N words besides options, the first of them one of CMD.\n"
        "function __baton_at --argument-names n\n"
        "    set -e argv[1]\n"
        "    set -l words (__baton_words)\n"
        "    test (count $words) -eq $n; or return 1\n"
        "    test $n -eq 0; or contains -- $words[1] $argv\n"
        "end\n"
        "\n"
        "# CMD...: the line's command is one of CMD.\n"
        "function __baton_using\n"
        "    set -l words (__baton_words)\n"
        "    set -q words[1]; and contains -- $words[1] $argv\n"
        "end\n"
        "\n"
        "# The rollout ids `baton list` shows (its first column, after the header), asked of the\n"
        "# journals the line names.\n"
        "function __baton_ids\n"
        "    set -l words (commandline -opc)\n"
        "    set -l journal\n"
        "    for i in (seq 2 (count $words))\n"
        "        switch $words[$i]\n"
        "            case",
        f);
    valued(f, true, " --", "");
    fputs("\n"
          "                set -q words[(math $i + 1)]; and set -a journal $words[$i] $words[(math "
          "$i + 1)]\n"
          "            case",
          f);
    valued(f, true, " '--", "=*'");
    fputs("=*'\n"
          "                set -a journal $words[$i]\n"
          "        end\n"
          "    end\n"
          "    baton $journal list 2>/dev/null | awk 'NR > 1 { print $1 }'\n"
          "end\n"
          "\n"
          "# SUFFIX...: the files ending so under the word being completed, and the folders.\n"
          "# (__fish_complete_suffix only puts them first, with every other file after.)\n"
          "function __baton_files\n"
          "    set -l cur (commandline -ct)\n"
          "    for f in $cur*\n"
          "        if test -d $f\n"
          "            echo $f/\n"
          "        else if string match -q -r -- '('(string join '|' (string escape --style=regex "
          "$argv))')$' $f\n"
          "            echo $f\n"
          "        end\n"
          "    end\n"
          "end\n"
          "\n"
          "complete -c baton -f\n",
          f);
    for (size_t i = 0; i < n_cmds; i++) {
        fprintf(f, "complete -c baton -n '__baton_at 0' -a %s -d ", cmds[i].name);
        fish_quote(f, cmds[i].brief);
        fputc('\n', f);
    }
    for (size_t i = 0; i < n_opts; i++) {
        const cli_option_t *o = &opts[i];
        fputs("complete -c baton", f);
        if (o->flag == CLI_NO_COMMAND) {
            fputs(" -n '__baton_at 0'", f);
        } else if (o->flag) {
            fputs(" -n '__baton_using", f);
            for (size_t j = 0; j < n_cmds; j++)
                if (takes(&cmds[j], o))
                    fprintf(f, " %s", cmds[j].name);
            fputc('\'', f);
        }
        fprintf(f, " -l %s", o->name);
        if (o->value == CLI_VALUE_DIR)
            fputs(" -x -a '(__fish_complete_directories (commandline -ct))'", f);
        else if (o->value == CLI_VALUE_DUMP)
            fputs(" -x -a '(__baton_files .dump)'", f);
        else if (o->value != CLI_VALUE_NONE)
            fputs(" -x", f);
        fputs(" -d ", f);
        fish_quote(f, o->help);
        fputc('\n', f);
    }
    fputs("complete -c baton -n '__baton_at 1", f);
    fish_command_list(f, CLI_ARG_ROLLOUT_FILE, true);
    fputs("' -a '(__baton_files .yml .yaml)'\n"
          "complete -c baton -n '__baton_at 1",
          f);
    fish_command_list(f, CLI_ARG_ROLLOUT_ID, true);
    fputs("' -a '(__baton_ids)' -d 'rollout id'\n"
          "complete -c baton -n '__baton_at 1",
          f);
    fish_command_list(f, CLI_ARG_PATH, true);
    fputs("' -F\n"
          "complete -c baton -n '__baton_at 1",
          f);
    fish_command_list(f, CLI_ARG_COMMAND, true);
    fputs("' -a '", f);
    word_list(f, CLI_ARG_COMMAND);
    fputs("'\ncomplete -c baton -n '__baton_at 1", f);
    fish_command_list(f, CLI_ARG_SHELL, true);
    fputs("' -a '", f);
    word_list(f, CLI_ARG_SHELL);
    fputs("'\n", f);
}

/* --- the shells ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    void (*write)(FILE *f);
} shells[] = {{"bash", bash}, {"zsh", zsh}, {"fish", fish}};
#define N_SHELLS (sizeof(shells) / sizeof(shells[0]))

const char *const *completion_shells(void)
{
    static const char *names[N_SHELLS + 1];
    for (size_t i = 0; i < N_SHELLS; i++)
        names[i] = shells[i].name;
    return names;
}

int completion_print(FILE *f, const char *shell)
{
    for (size_t i = 0; shell && i < N_SHELLS; i++)
        if (!strcmp(shell, shells[i].name)) {
            shells[i].write(f);
            return 0;
        }
    return -EINVAL;
}
