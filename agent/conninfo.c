/* conninfo: see conninfo.h. */
#include "conninfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "fsutil.h"

bool conninfo_parses(const char *conninfo)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    PQfreemem(msg);
    PQconninfoFree(opts);
    return opts != NULL;
}

bool conninfo_has_password(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    bool found = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            found = true;
    PQconninfoFree(opts);
    return found;
}

char *conninfo_with_db(const char *conninfo, const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (PQconninfoOption *o = opts; f && o->keyword; o++) {
        const char *v = !strcmp(o->keyword, "dbname") ? dbname : o->val;
        if (!v)
            continue;
        fprintf(f, "%s%s='", ftell(f) ? " " : "", o->keyword);
        for (const char *p = v; *p; p++) /* libpq's quoting: backslash before ' and \ */
            fprintf(f, "%s%c", *p == '\'' || *p == '\\' ? "\\" : "", *p);
        fputc('\'', f);
    }
    if (f)
        fclose(f);
    PQconninfoFree(opts);
    return buf;
}

/* RFC 3986's unreserved characters stay; every other byte is %XX. */
static void put_encoded(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* A value in double quotes, as systemd's EnvironmentFile= reads it: \\, \" and no newline. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r')
            continue;
        if (*s == '"' || *s == '\\' || *s == '$' || *s == '`')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int conninfo_env_file(const char *state_dir, const char *service, const char *conninfo,
                      baton_err_t *err)
{
    char *url = NULL, *buf = NULL, path[4096];
    size_t len = 0;
    int r = conninfo_to_url(conninfo, &url, err);
    if (r < 0)
        return r;
    if (snprintf(path, sizeof(path), "%s/%s.env", state_dir, service) >= (int)sizeof(path)) {
        free(url);
        return baton_err_set(err, -ENAMETOOLONG, "path too long");
    }
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(url);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    fputs("# Written by baton-agent from its config; for the unit's EnvironmentFile=.\n", f);
    fputs("BATON_DATABASE=", f);
    put_quoted(f, conninfo);
    fputs("\nBATON_DATABASE_URL=", f);
    put_quoted(f, url);
    fputc('\n', f);
    free(url);
    if (fclose(f) != 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    r = fs_write_atomic(path, buf, len, 0600, err);
    free(buf);
    return r;
}

int conninfo_to_url(const char *conninfo, char **ret_url, baton_err_t *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (!opts) {
        int r = baton_err_set(err, -EINVAL, "database '%s' does not parse: %s", conninfo,
                              msg ? msg : "out of memory");
        PQfreemem(msg);
        return r;
    }
    const char *user = NULL, *host = NULL, *port = NULL, *dbname = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "user"))
            user = o->val;
        else if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            dbname = o->val;
    }
    /* A socket folder (or several hosts) has no place in the authority: a query parameter,
     * as libpq's own URIs write it. */
    bool host_in_query = host && (host[0] == '/' || strchr(host, ','));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        PQconninfoFree(opts);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    fputs("postgres://", f);
    if (user) {
        put_encoded(f, user);
        fputc('@', f);
    }
    if (host && !host_in_query) {
        bool v6 = strchr(host, ':') != NULL;
        if (v6) { /* [fe80::1%25eth0]: a zone's '%' encoded, the rest as it is */
            fputc('[', f);
            for (const char *p = host; *p; p++)
                fputs(*p == '%' ? "%25" : (char[]){*p, 0}, f);
            fputc(']', f);
        } else {
            put_encoded(f, host);
        }
    }
    if (port && !host_in_query) {
        fputc(':', f);
        put_encoded(f, port);
    }
    fputc('/', f);
    if (dbname)
        put_encoded(f, dbname);
    char sep = '?';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val || !strcmp(o->keyword, "user") || !strcmp(o->keyword, "dbname") ||
            (!host_in_query && (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "port"))))
            continue;
        fputc(sep, f);
        sep = '&';
        put_encoded(f, o->keyword);
        fputc('=', f);
        put_encoded(f, o->val);
    }
    PQconninfoFree(opts);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    *ret_url = buf;
    return 0;
}
