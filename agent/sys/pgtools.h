/* pgtools: the PostgreSQL client programs (pg_dump, pg_restore, psql) a service's steps run,
 * resolved once per server major version and called directly.
 *
 * Debian's /usr/bin/pg_dump is a Perl wrapper (pg_wrapper) that costs ~35 ms a call and picks a
 * version by its own rules; the real programs live in /usr/lib/postgresql/MAJOR/bin. A pg_dump
 * older than the server refuses to dump it, so the choice is a correctness check as much as a
 * saving: the pre-flight refuses a program older than the server, naming both versions. */
#ifndef BATON_AGENT_PGTOOLS_H
#define BATON_AGENT_PGTOOLS_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "step.h"

typedef enum { PGTOOL_DUMP, PGTOOL_RESTORE, PGTOOL_PSQL, PGTOOL_N } pgtool_t;

/* Resolves the service's three programs for a server of `server_major` (a configured path with
 * a '/' is used as it is; a bare name is looked up in /usr/lib/postgresql/MAJOR/bin, the
 * server's major first, then newer ones, then PATH) and checks that each runs and that pg_dump
 * and pg_restore are not older than the server. `--version` runs only when a program's file
 * changed since the last check (fs_ident: inode, size, mode, times). */
int pgtools_check(step_ctx_t *ctx, const svc_config_t *svc, int server_major, baton_err_t *err);
/* The program to run, copied into buf: the one the last pgtools_check() resolved for this
 * service, else the configured name (an agent restarted between the pre-flight and a later
 * step: Debian's wrapper then picks). Returns buf. */
const char *pgtools_path(const svc_config_t *svc, pgtool_t tool, char *buf, size_t len);

#endif
