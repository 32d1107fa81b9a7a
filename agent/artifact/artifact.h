/* artifact: what a staged artifact is, checked before anything runs it.
 *
 * The agent runs the artifact as root (its version command in pre-flight and plan, then as the
 * service). It must be a program for this node: an ELF executable of this machine's class,
 * byte order and architecture, or, where the service's config allows scripts
 * (`artifact_scripts: true`), a file starting with `#!`. Anything else (a text file of shell
 * commands, a program for another machine, an archive) is refused naming what it is; the
 * kernel would refuse it too, and execvp's fallback would then hand it to /bin/sh. */
#ifndef BATON_AGENT_ARTIFACT_H
#define BATON_AGENT_ARTIFACT_H

#include <stdbool.h>

#include "err.h"

/* 0 when the file open at fd (path for messages) is a program this node may run;
 * -ENOEXEC with one line saying what it is otherwise; another negative errno when it cannot
 * be read. */
int artifact_check_fd(int fd, const char *path, bool scripts_allowed, baton_err_t *err);

/* The same for a file by name (opened O_NOFOLLOW: the staging store holds no links). */
int artifact_check(const char *path, bool scripts_allowed, baton_err_t *err);

#endif
