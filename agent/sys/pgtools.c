/* pgtools: see pgtools.h. */
#include "pgtools.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "fsutil.h"
#include "proc.h"

#define PG_LIBDIR "/usr/lib/postgresql"

static const char *const tool_names[PGTOOL_N] = {"pg_dump", "pg_restore", "psql"};

/* One resolved program of one service. Both threads (the main loop's plan, the worker's steps)
 * read and write the table, so it sits behind one lock and paths are copied out. */
struct resolved {
    char service[128];
    char configured[PATH_MAX]; /* what the config said, to notice a reload */
    char path[PATH_MAX];       /* "" until resolved */
    int server_major;          /* the server it was resolved for */
    int major;                 /* what --version printed */
    fs_ident_t file;           /* the file when --version ran */
};

static struct resolved table[AGENT_SERVICES_MAX][PGTOOL_N];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *configured(const svc_config_t *svc, pgtool_t t)
{
    return t == PGTOOL_DUMP ? svc->pg_dump : t == PGTOOL_RESTORE ? svc->pg_restore : svc->psql;
}

/* The service's row, by name (configs are reloaded, pointers do not last); a free one when new. */
static struct resolved *row(const svc_config_t *svc)
{
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        if (!strcmp(table[i][0].service, svc->name))
            return table[i];
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        if (!table[i][0].service[0]) {
            snprintf(table[i][0].service, sizeof(table[i][0].service), "%s", svc->name);
            return table[i];
        }
    return NULL;
}

static bool executable(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* MAJOR/bin/NAME under PG_LIBDIR: the server's major, else the lowest newer one. */
static bool find_in_libdir(const char *name, int server_major, char *buf, size_t len)
{
    snprintf(buf, len, PG_LIBDIR "/%d/bin/%s", server_major, name);
    if (executable(buf))
        return true;
    DIR *d = opendir(PG_LIBDIR);
    if (!d)
        return false;
    int best = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end = NULL;
        long m = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end || m <= server_major || m > 1000 || (best && m >= best))
            continue;
        snprintf(buf, len, PG_LIBDIR "/%ld/bin/%s", m, name);
        if (executable(buf))
            best = (int)m;
    }
    closedir(d);
    if (best)
        snprintf(buf, len, PG_LIBDIR "/%d/bin/%s", best, name);
    return best != 0;
}

static bool find_in_path(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        if (n && snprintf(buf, len, "%.*s/%s", (int)n, p, name) < (int)len && executable(buf))
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> 15; "9.6.24" -> 9. */
static int parse_major(const char *out)
{
    const char *p = strstr(out, ") ");
    p = p ? p + 2 : out;
    while (*p && (*p < '0' || *p > '9'))
        p++;
    return *p ? atoi(p) : 0;
}

static int check_one(step_ctx_t *ctx, struct resolved *e, const char *conf, pgtool_t t,
                     int server_major, baton_err_t *err)
{
    const char *name = tool_names[t];
    char path[PATH_MAX];
    if (strchr(conf, '/'))
        snprintf(path, sizeof(path), "%s", conf);
    else if (!(strcmp(conf, name) == 0 && find_in_libdir(name, server_major, path, sizeof(path))) &&
             !find_in_path(conf, path, sizeof(path)))
        return baton_err_set(err, -ENOENT,
                             "%s not found (for a PostgreSQL %d server: looked in " PG_LIBDIR
                             "/%d/bin and newer, and PATH)",
                             conf, server_major, server_major);
    struct stat sb;
    if (stat(path, &sb) < 0)
        return baton_err_set(err, -errno, "%s: %s", path, strerror(errno));

    pthread_mutex_lock(&table_lock);
    fs_ident_t now = fs_ident(&sb);
    bool same = !strcmp(e->path, path) && !strcmp(e->configured, conf) &&
                e->server_major == server_major && fs_ident_equal(&e->file, &now);
    pthread_mutex_unlock(&table_lock);
    if (same)
        return 0;

    const char *argv[] = {path, "--version", NULL};
    struct proc_result res;
    int r = command_run(ctx, NULL, argv, 10000, "--version", &res, err);
    if (r < 0)
        return baton_err_prefix(err, "%s does not run", path);
    int major = parse_major(res.tail);
    if (t != PGTOOL_PSQL && major < server_major)
        return baton_err_set(err, -EPROTO,
                             "%s is PostgreSQL %d, older than the server (%d): it cannot %s "
                             "it; install postgresql-client-%d or set %s in the agent config",
                             path, major, server_major, t == PGTOOL_DUMP ? "dump" : "restore",
                             server_major, name);
    pthread_mutex_lock(&table_lock);
    snprintf(e->configured, sizeof(e->configured), "%s", conf);
    snprintf(e->path, sizeof(e->path), "%s", path);
    e->server_major = server_major;
    e->major = major;
    e->file = now;
    pthread_mutex_unlock(&table_lock);
    return 0;
}

int pgtools_check(step_ctx_t *ctx, const svc_config_t *svc, int server_major, baton_err_t *err)
{
    pthread_mutex_lock(&table_lock);
    struct resolved *rw = row(svc);
    pthread_mutex_unlock(&table_lock);
    if (!rw)
        return baton_err_set(err, -ENOSPC, "pgtools: more than %d services", AGENT_SERVICES_MAX);
    for (int t = 0; t < PGTOOL_N; t++) {
        int r =
            check_one(ctx, &rw[t], configured(svc, (pgtool_t)t), (pgtool_t)t, server_major, err);
        if (r < 0) {
            pthread_mutex_lock(&table_lock);
            rw[t].path[0] = '\0'; /* steps fall back to the configured name */
            pthread_mutex_unlock(&table_lock);
            return r;
        }
    }
    return 0;
}

const char *pgtools_path(const svc_config_t *svc, pgtool_t tool, char *buf, size_t len)
{
    const char *conf = configured(svc, tool);
    snprintf(buf, len, "%s", conf);
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < AGENT_SERVICES_MAX; i++)
        if (!strcmp(table[i][0].service, svc->name)) {
            const struct resolved *e = &table[i][tool];
            if (e->path[0] && !strcmp(e->configured, conf))
                snprintf(buf, len, "%s", e->path);
            break;
        }
    pthread_mutex_unlock(&table_lock);
    return buf;
}
