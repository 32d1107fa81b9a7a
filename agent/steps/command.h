/* command: configured command templates turned into argv arrays, run with a deadline, and the
 * version probe. */
#ifndef BATON_AGENT_COMMAND_H
#define BATON_AGENT_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "step.h"

struct proc_result;

/* Splits a template on spaces and fills {binary} and {n}; the argv is the caller's. */
int command_argv(const char *tmpl, const char *binary, unsigned n, char ***ret_argv,
                 baton_err_t *err);
/* The same, also filling {database} (a conninfo: it stays one word) and {database_url} (the
 * same database as a postgres:// URL, conninfo.h). */
int command_argv_db(const char *tmpl, const char *binary, unsigned n, const char *database,
                    char ***ret_argv, baton_err_t *err);
void command_argv_free(char ***argv_p);
/* Runs argv (with the service's database environment when svc is given) and fails unless it
 * exited 0 within timeout_ms; the error reads "WHAT: exit code 1: <last line>". *ret_res
 * (may be NULL) gets the output tail. ctx gives the pidfile and the tick. */
int command_run(step_ctx_t *ctx, const svc_config_t *svc, const char *const *argv,
                uint64_t timeout_ms, const char *what, struct proc_result *ret_res,
                baton_err_t *err);
/* Runs the version command of `binary` and returns its first word (the caller's); the answer is
 * remembered by the file's identity (inode, size, mode, mtime, ctime) and reused until it changes.
 */
int command_version(step_ctx_t *ctx, const svc_config_t *svc, const char *binary,
                    char **ret_version, baton_err_t *err);
/* `copy` (now at copy_path) holds the very bytes of `original` (the swap copied them and checked
 * their digest): what the version and list_migrations commands said of the original holds for
 * the copy, and is not asked again of it. */
void command_remember_copy(const char *copy_path, const fs_ident_t *original,
                           const fs_ident_t *copy);
/* Runs the service's drain or undrain hook (`which`), if it has one, within timeouts.hook;
 * "drain failed: …" on failure. */
int command_hook(step_ctx_t *ctx, const char *which, baton_err_t *err);
/* The migration ids `binary` ships (the list_migrations command), sorted; -ENOTSUP when the
 * service has no such command. Every answer is remembered by the file's identity; with `reuse`
 * one remembered for this very file (or for the file it is a copy of: command_remember_copy)
 * is given instead of running the command again. */
int command_migrations(step_ctx_t *ctx, const svc_config_t *svc, const char *binary, bool reuse,
                       char ***ret_ids, size_t *ret_n, baton_err_t *err);
/* Refuses (-EPROTO, naming the ids) when the database holds a migration id `binary` does not
 * ship: a schema newer than the binary, which Nakama would only warn about and run on. The
 * start step's: the database is read now, the binary's list may be the one the pre-flight got
 * from the same bytes (command_remember_copy). Passes
 * when the service has no list_migrations command, and for ids of the rollout's own migration
 * on a shared database (ctx->st->expect_ids: the old binary of a node not yet upgraded, or
 * rolled back, runs on it until the migrating node's rollback undoes it). */
int command_schema_known(step_ctx_t *ctx, const char *binary, baton_err_t *err);
/* The service's `check` command against `binary` (the staged one), before anything stops:
 * 0 when it passes or none is configured; else the refusal with the command's own last line
 * ("check: exit code 1: ... plugin was built with a different version of package ..."). */
int command_check(step_ctx_t *ctx, const char *binary, baton_err_t *err);
/* The same against ids read already (the pre-flight's survey): no connection of its own. */
int command_schema_known_ids(step_ctx_t *ctx, const char *binary, char *const *ids, size_t n_ids,
                             baton_err_t *err);
/* The same for the binary that ran before the rollout (its rollback's start): the schema it ran
 * on when the pre-flight passed is known to work with it, whatever it ships (the mixed window
 * of an earlier rollout on a shared database). */
int command_schema_known_before(step_ctx_t *ctx, const char *binary, baton_err_t *err);
/* STATE_DIR/staging/SERVICE/SHA256: where a verified staged binary lives. */
int staged_path(const agent_config_t *cfg, const char *service, const char *sha256, char *buf,
                size_t len, baton_err_t *err);

#endif
