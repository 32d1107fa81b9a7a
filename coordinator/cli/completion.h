/* completion: baton's shell completion scripts (bash, zsh, fish), written from cli.c's tables
 * of commands and options by `baton completion SHELL`, so that a command or an option added
 * there is completed in every shell without a second list to keep in step.
 *
 * What each script offers: the commands (with their one-line description where the shell
 * shows one); after a command, the options its flags allow (--state-dir takes a folder,
 * --restore-dump a *.dump file, --journal free text) and --help; its argument: rollout files
 * (*.yml, *.yaml), rollout ids (the first column of `baton list`, asked of the journals the
 * command line names), a command (help) or a shell (completion); nothing once it is given. */
#ifndef BATON_COMPLETION_H
#define BATON_COMPLETION_H

#include <stdio.h>

/* The shells a script can be written for, NULL-terminated. */
const char *const *completion_shells(void);

/* Writes the completion script for `shell` ("bash", "zsh" or "fish") to f: 0, or -EINVAL
 * when there is none for that shell (NULL included). */
int completion_print(FILE *f, const char *shell);

#endif
