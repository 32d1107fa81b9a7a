/* db_lock: the migration lock of one database, a PostgreSQL session advisory lock.
 *
 * A rollout's agent takes it before its dump (before its stop, when the coordinator knows the
 * dump will be the node's own: Step.lock) and holds it, on a connection of its own, until the
 * migration's Result is recorded (or the rollback that undoes it ended): while it is held, no
 * second rollout, on this node or any other, dumps or migrates the same database. A crashed
 * agent's connection closes and the server lets the lock go; its record (interrupted) then
 * says what to do, so a lock never outlives the process that knew why it was taken.
 *
 * Advisory locks are per database: the key is baton's own pair (classid, objid) below, held on
 * the very database the service uses. */
#ifndef BATON_AGENT_DB_LOCK_H
#define BATON_AGENT_DB_LOCK_H

#include <stdbool.h>

#include "config.h"
#include "err.h"

struct pg_conn;

/* The two int4 keys of pg_advisory_lock(int4, int4): "bato" (0x6261746f, in decimal: the
 * SQL text spells it) and 1 (migrations). */
#define DB_LOCK_CLASS 1650553967
#define DB_LOCK_OBJECT 1

/* Takes the lock on a new connection named "baton-agent NODE ROLLOUT" (its application_name,
 * so that whoever is refused learns who holds it), without waiting: -EBUSY when someone holds
 * it, err naming the holder. A holder that is this node's own earlier agent (gone in a power
 * cut, its session not yet dropped by the server) is ended first (db_lock_end_stale).
 * *ret_conn holds the lock until db_lock_release(). */
int db_lock_take(const svc_config_t *svc, const char *node, const char *rollout_id,
                 struct pg_conn **ret_conn, baton_err_t *err);
/* Ends the session holding the lock when it is named for `node` and is none of this process's
 * own: an earlier life of this node's agent, which nobody else could be. *ret_ended tells
 * whether one was ended. When the database role may not end it, -EPERM saying exactly what to
 * run, as whom. */
int db_lock_end_stale(const svc_config_t *svc, const char *node, bool *ret_ended, baton_err_t *err);
/* Closes the connection, which lets the lock go (NULL-safe; sets *conn_p to NULL). */
void db_lock_release(struct pg_conn **conn_p);
/* Lets the lock go but keeps the connection, moved to *ret_session for the step after the
 * migration to read on (a connection set up costs ~10-30 ms here, inside the downtime):
 * 0, or a negative errno when the server did not let it go, the connection then closed. */
int db_lock_unlock_keep(struct pg_conn **conn_p, struct pg_conn **ret_session);
/* -EBUSY, naming the holder, when someone holds the lock now (a rollout between its stop or
 * dump and its migration); 0 when it is free. */
int db_lock_check_free(const svc_config_t *svc, baton_err_t *err);
/* Who holds the lock now: *ret_holder is "" when nobody does, else "NAME (pid N, from ADDR,
 * since TIME)"; the caller's. */
int db_lock_holder(const svc_config_t *svc, char **ret_holder, baton_err_t *err);
/* The same on an open connection to the database. */
int db_lock_holder_on(struct pg_conn *c, char **ret_holder, baton_err_t *err);
/* -EBUSY naming `holder` (from db_lock_holder) unless it is "". */
int db_lock_refuse_held(const char *holder, baton_err_t *err);

#endif
