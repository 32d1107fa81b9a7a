/* conninfo: the one database setting of a service (a libpq key=value string, agent.yml's
 * `database`) in the forms commands need: as written ({database}), as a postgres:// URL
 * ({database_url}: Nakama's --database.address takes only that), or pointing at another
 * database on the same server (the rehearsal's scratch copy). Parsed by libpq itself, never by
 * hand. */
#ifndef BATON_CONNINFO_H
#define BATON_CONNINFO_H

#include <stdbool.h>

#include "err.h"

/* True when libpq parses it. */
bool conninfo_parses(const char *conninfo);
/* True when it holds a password (those belong in a passfile). */
bool conninfo_has_password(const char *conninfo);
/* The same settings with dbname replaced; NULL when it does not parse or out of memory. The
 * caller's. */
char *conninfo_with_db(const char *conninfo, const char *dbname);
/* postgres://[user@]host[:port]/dbname[?key=value&...], every part percent-encoded; the
 * settings a URL has no place for (sslmode, connect_timeout, ...) as query parameters, a
 * socket folder as ?host=/run/postgresql. 0, or -EINVAL naming what does not parse. */
int conninfo_to_url(const char *conninfo, char **ret_url, baton_err_t *err);

/* Writes STATE_DIR/SERVICE.env for the service's unit (EnvironmentFile=): BATON_DATABASE (the
 * conninfo) and BATON_DATABASE_URL, quoted as systemd reads them, so that the unit names its
 * database the way the agent's config does, written once. Replaced whole (write, rename). */
int conninfo_env_file(const char *state_dir, const char *service, const char *conninfo,
                      baton_err_t *err);

#endif
