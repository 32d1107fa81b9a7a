/* db: the agent's few queries, through libpq with parameters, never SQL built from input. */
#ifndef BATON_AGENT_DB_H
#define BATON_AGENT_DB_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct pg_conn;
struct pg_result;

/* libpq's error message of `res`, on one line (libpq ends it, and a detail, with newlines). */
const char *db_message(const struct pg_result *res, char *buf, size_t len);

/* Connects with the service's conninfo and passfile. The connection is the caller's. */
int db_connect(const svc_config_t *svc, struct pg_conn **ret_conn, baton_err_t *err);
/* The same, naming the connection (pg_stat_activity.application_name), NULL for libpq's. */
int db_connect_as(const svc_config_t *svc, const char *application_name, struct pg_conn **ret_conn,
                  baton_err_t *err);
/* The bookkeeping table's ids, sorted; a missing table gives an empty list. */
int db_migration_ids(const svc_config_t *svc, char ***ret_ids, size_t *ret_n, baton_err_t *err);
/* The same on an open connection to the service's database. */
int db_migration_ids_on(struct pg_conn *c, const svc_config_t *svc, char ***ret_ids, size_t *ret_n,
                        baton_err_t *err);

/* -EBUSY, naming them, when clients other than baton's agents are connected to the service's
 * database (a node serving from it, a psql, a cron job): a restore under them would lose every
 * write they make. 0 when the server shows none. The agent asks before every restore, whatever
 * the coordinator said: data safety does not rest on the coordinator's version. */
int db_refuse_other_clients(const svc_config_t *svc, baton_err_t *err);

/* What the pre-flight and the plan read, on one connection instead of one per question. */
typedef struct db_survey {
    int server_major; /* PQserverVersion()'s major: which client programs fit (pgtools) */
    uint64_t bytes;   /* pg_database_size() */
    char **ids;       /* the bookkeeping table's ids, sorted */
    size_t n_ids;
    char *identity;    /* "SYSTEM_IDENTIFIER/DBNAME": the same for every node whose service uses
                        * this very database, whatever conninfo reaches it */
    char *lock_holder; /* as db_lock_holder(): "" when the migration lock is free */
} db_survey_t;
/* Fills *ret (cleared on failure; the caller's, free with db_survey_clear()). */
int db_survey(const svc_config_t *svc, db_survey_t *ret, baton_err_t *err);
void db_survey_clear(db_survey_t *s);

#endif
