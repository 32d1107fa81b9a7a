/* command: configured command templates turned into argv arrays, and the version probe. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "command.h"
#include "conninfo.h"

#include "db.h"
#include "fsutil.h"
#include "proc.h"

#define ARGV_MAX 64

void command_argv_free(char ***argv_p)
{
    if (!argv_p || !*argv_p)
        return;
    for (char **p = *argv_p; *p; p++)
        free(*p);
    free(*argv_p);
    *argv_p = NULL;
}

/* Replaces every `key` in `word` by `value`; the result is the caller's. */
static char *substitute(const char *word, const char *key, const char *value)
{
    size_t kl = strlen(key), vl = strlen(value), count = 0;
    for (const char *p = strstr(word, key); p; p = strstr(p + kl, key))
        count++;
    char *out = malloc(strlen(word) + count * vl + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = word; *p;) {
        if (!strncmp(p, key, kl)) {
            memcpy(o, value, vl);
            o += vl;
            p += kl;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

int command_argv(const char *tmpl, const char *binary, unsigned n, char ***ret_argv,
                 baton_err_t *err)
{
    return command_argv_db(tmpl, binary, n, NULL, ret_argv, err);
}

int command_argv_db(const char *tmpl, const char *binary, unsigned n, const char *database,
                    char ***ret_argv, baton_err_t *err)
{
    char num[16];
    snprintf(num, sizeof(num), "%u", n);
    char *url = NULL;
    if (database && strstr(tmpl, "{database_url}")) {
        int r = conninfo_to_url(database, &url, err);
        if (r < 0)
            return r;
    }
    char **argv = calloc(ARGV_MAX + 1, sizeof(char *));
    char *copy = strdup(tmpl), *save = NULL;
    size_t argc = 0;
    if (!argv || !copy) {
        free(argv);
        free(copy);
        free(url);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (argc == ARGV_MAX) {
            free(copy);
            free(url);
            command_argv_free(&argv);
            return baton_err_set(err, -E2BIG, "command '%s': more than %d words", tmpl, ARGV_MAX);
        }
        char *a = substitute(w, "{binary}", binary), *b = a ? substitute(a, "{n}", num) : NULL;
        free(a);
        if (b && database) { /* one word, whatever spaces the conninfo holds */
            a = b;
            b = substitute(a, "{database}", database);
            free(a);
        }
        if (b && url) {
            a = b;
            b = substitute(a, "{database_url}", url);
            free(a);
        }
        if (!b) {
            free(copy);
            free(url);
            command_argv_free(&argv);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
        argv[argc++] = b;
    }
    free(copy);
    free(url);
    if (argc == 0) {
        command_argv_free(&argv);
        return baton_err_set(err, -EINVAL, "empty command");
    }
    *ret_argv = argv;
    return 0;
}

int command_run(step_ctx_t *ctx, const svc_config_t *svc, const char *const *argv,
                uint64_t timeout_ms, const char *what, struct proc_result *ret_res,
                baton_err_t *err)
{
    struct proc_result local, *res = ret_res ? ret_res : &local;
    struct proc_opts o = {.argv = argv,
                          .env_add = svc ? svc->pg_env : NULL,
                          .timeout_ms = timeout_ms,
                          .tick = ctx->on_tick ? step_tick : NULL,
                          .userdata = ctx,
                          .pidfile = ctx->pidfile};
    int r = proc_run(&o, res, err);
    if (r < 0)
        return r;
    if (res->exit_code != 0 || res->timed_out) {
        char why[PROC_TAIL_MAX + 64];
        proc_describe(res, timeout_ms, why, sizeof(why));
        return baton_err_set(err, -EIO, "%s: %s", what, why);
    }
    return 0;
}

/* What a binary file said its version was, by the file's identity: Hello, plan and status ask
 * every time and the answer only changes with the file (a swap renames a new inode in; chmod
 * changes ctime), so a fork and exec per question buys nothing. A few entries: the live binary
 * and a staged one or two per service. */
#define VERSION_CACHE 16
struct version_seen {
    char path[PATH_MAX];
    char command[256]; /* the version_command it ran */
    fs_ident_t file;
    char version[128];
    uint64_t used;
};
static struct version_seen seen[VERSION_CACHE];
static uint64_t seen_clock;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static char *version_recall(const char *binary, const char *cmd, const fs_ident_t *file)
{
    char *v = NULL;
    pthread_mutex_lock(&seen_lock);
    for (size_t i = 0; i < VERSION_CACHE && !v; i++)
        if (!strcmp(seen[i].path, binary) && !strcmp(seen[i].command, cmd) &&
            fs_ident_equal(&seen[i].file, file)) {
            seen[i].used = ++seen_clock;
            v = strdup(seen[i].version);
        }
    pthread_mutex_unlock(&seen_lock);
    return v;
}

static void version_remember(const char *binary, const char *cmd, const fs_ident_t *file,
                             const char *version)
{
    if (strlen(binary) >= PATH_MAX || strlen(cmd) >= 256 || strlen(version) >= 128)
        return;
    pthread_mutex_lock(&seen_lock);
    size_t k = 0;
    for (size_t i = 0; i < VERSION_CACHE; i++) {
        if (!strcmp(seen[i].path, binary) && !strcmp(seen[i].command, cmd)) {
            k = i; /* the same path changed: its old answer goes */
            break;
        }
        if (seen[i].used < seen[k].used)
            k = i;
    }
    struct version_seen *e = &seen[k];
    snprintf(e->path, sizeof(e->path), "%s", binary);
    snprintf(e->command, sizeof(e->command), "%s", cmd);
    snprintf(e->version, sizeof(e->version), "%s", version);
    e->file = *file;
    e->used = ++seen_clock;
    pthread_mutex_unlock(&seen_lock);
}

/* The migration ids a binary file ships, by the file's identity and the command that listed them:
 * the pre-flight lists the staged binary and the start step lists the same bytes again inside
 * the node's downtime (~15 ms of a fork, an exec and a Go runtime starting). The start still
 * reads the database's ids: only the binary's half of the check is remembered. A few entries:
 * a staged binary and its installed copy per service. */
#define IDS_CACHE 8
struct ids_seen {
    char command[256]; /* the list_migrations template it ran */
    fs_ident_t file;
    char **ids;
    size_t n_ids;
    uint64_t used;
};
static struct ids_seen ids_seen[IDS_CACHE];

static int ids_copy(char *const *ids, size_t n, char ***ret_ids, size_t *ret_n)
{
    char **out = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (svc_state_push(&out, &k, ids[i]) < 0) {
            svc_state_clear_list(&out, &k);
            return -ENOMEM;
        }
    *ret_ids = out;
    *ret_n = k;
    return 0;
}

/* 1 and a copy of the ids when this file's list is known, 0 when not. */
static int ids_recall(const char *cmd, const fs_ident_t *file, char ***ret_ids, size_t *ret_n)
{
    int found = 0;
    pthread_mutex_lock(&seen_lock);
    for (size_t i = 0; i < IDS_CACHE && !found; i++)
        if (ids_seen[i].used && !strcmp(ids_seen[i].command, cmd) &&
            fs_ident_equal(&ids_seen[i].file, file)) {
            ids_seen[i].used = ++seen_clock;
            found = ids_copy(ids_seen[i].ids, ids_seen[i].n_ids, ret_ids, ret_n) == 0;
        }
    pthread_mutex_unlock(&seen_lock);
    return found;
}

/* Under seen_lock. */
static void ids_remember_locked(const char *cmd, const fs_ident_t *file, char *const *ids, size_t n)
{
    if (strlen(cmd) >= sizeof(ids_seen[0].command))
        return;
    size_t k = 0;
    for (size_t i = 0; i < IDS_CACHE; i++) {
        if (ids_seen[i].used && !strcmp(ids_seen[i].command, cmd) &&
            fs_ident_equal(&ids_seen[i].file, file)) {
            k = i;
            break;
        }
        if (ids_seen[i].used < ids_seen[k].used)
            k = i;
    }
    struct ids_seen *e = &ids_seen[k];
    char **copy = NULL;
    size_t n_copy = 0;
    if (ids_copy(ids, n, &copy, &n_copy) < 0)
        return;
    svc_state_clear_list(&e->ids, &e->n_ids);
    snprintf(e->command, sizeof(e->command), "%s", cmd);
    e->file = *file;
    e->ids = copy;
    e->n_ids = n_copy;
    e->used = ++seen_clock;
}

void command_remember_copy(const char *copy_path, const fs_ident_t *original,
                           const fs_ident_t *copy)
{
    pthread_mutex_lock(&seen_lock);
    for (size_t i = 0; i < IDS_CACHE; i++)
        if (ids_seen[i].used && fs_ident_equal(&ids_seen[i].file, original) &&
            !fs_ident_equal(original, copy)) {
            /* An entry for the copy may take this very slot's place: copied out first. */
            char cmd[sizeof(ids_seen[0].command)], **ids = NULL;
            size_t n = 0;
            memcpy(cmd, ids_seen[i].command, sizeof(cmd));
            if (ids_copy(ids_seen[i].ids, ids_seen[i].n_ids, &ids, &n) < 0)
                continue;
            ids_remember_locked(cmd, copy, ids, n);
            svc_state_clear_list(&ids, &n);
        }
    struct version_seen found = {0};
    for (size_t i = 0; i < VERSION_CACHE && !*found.version; i++)
        if (*seen[i].path && fs_ident_equal(&seen[i].file, original))
            found = seen[i];
    pthread_mutex_unlock(&seen_lock);
    if (*found.version && !fs_ident_equal(original, copy))
        version_remember(copy_path, found.command, copy, found.version);
}

int command_version(step_ctx_t *ctx, const svc_config_t *svc, const char *binary,
                    char **ret_version, baton_err_t *err)
{
    struct stat sb;
    bool known = stat(binary, &sb) == 0 && S_ISREG(sb.st_mode);
    fs_ident_t before = known ? fs_ident(&sb) : (fs_ident_t){0};
    if (known && (*ret_version = version_recall(binary, svc->version_command, &before)))
        return 0;
    char **argv = NULL;
    int r = command_argv(svc->version_command, binary, 0, &argv, err);
    if (r < 0)
        return r;
    struct proc_result res;
    r = command_run(ctx, NULL, (const char *const *)argv, 10000, svc->version_command, &res, err);
    command_argv_free(&argv);
    if (r < 0)
        return r;
    /* The first word of the output: "1.1.0", "3.21.0+7d6b5c", "v2.0.0". */
    const char *p = res.tail + strspn(res.tail, " \t\n");
    size_t len = strcspn(p, " \t\n");
    if (len == 0 || len > 120)
        return baton_err_set(err, -EBADMSG, "%s printed no version", binary);
    char *v = strndup(p, len);
    if (!v)
        return baton_err_set(err, -ENOMEM, "out of memory");
    /* Remembered only if the file is still the one that ran (not replaced meanwhile). */
    if (known && stat(binary, &sb) == 0) {
        fs_ident_t after = fs_ident(&sb);
        if (fs_ident_equal(&before, &after))
            version_remember(binary, svc->version_command, &before, v);
    }
    *ret_version = v;
    return 0;
}

int staged_path(const agent_config_t *cfg, const char *service, const char *sha256, char *buf,
                size_t len, baton_err_t *err)
{
    if (snprintf(buf, len, "%s/staging/%s/%s", cfg->state_dir, service, sha256) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "staging path too long");
    return 0;
}

int command_hook(step_ctx_t *ctx, const char *which, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    const char *tmpl = !strcmp(which, "drain") ? svc->drain : svc->undrain;
    if (!tmpl)
        return 0;
    char **argv = NULL;
    int r = command_argv(tmpl, svc->binary, 0, &argv, err);
    if (r < 0)
        return r;
    step_progress(ctx, "%s: %s", which, tmpl);
    r = command_run(ctx, NULL, (const char *const *)argv, svc->timeout_hook_ms, tmpl, NULL, err);
    command_argv_free(&argv);
    if (r < 0)
        return baton_err_prefix(err, "%s failed", which);
    step_log(ctx, 6, "%s done", which);
    return 0;
}

/* Collects stdout, bounded: a migration list is small. */
struct out_buf {
    char *data; /* NUL-terminated */
    size_t len;
};
#define MIGRATION_LIST_MAX (1024 * 1024)

static int collect(const void *buf, size_t len, void *userdata)
{
    struct out_buf *o = userdata;
    if (o->len + len > MIGRATION_LIST_MAX)
        return -E2BIG;
    char *grown = realloc(o->data, o->len + len + 1);
    if (!grown)
        return -ENOMEM;
    memcpy(grown + o->len, buf, len);
    o->len += len;
    grown[o->len] = '\0';
    o->data = grown;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int command_migrations(step_ctx_t *ctx, const svc_config_t *svc, const char *binary, bool reuse,
                       char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    if (!svc->list_migrations)
        return -ENOTSUP;
    struct stat sb;
    bool known = stat(binary, &sb) == 0 && S_ISREG(sb.st_mode);
    fs_ident_t before = known ? fs_ident(&sb) : (fs_ident_t){0};
    if (reuse && known && ids_recall(svc->list_migrations, &before, ret_ids, ret_n))
        return 0;
    char **argv = NULL, **ids = NULL;
    size_t n = 0;
    int r = command_argv_db(svc->list_migrations, binary, 0, svc->database, &argv, err);
    if (r < 0)
        return r;
    struct out_buf out = {0};
    struct proc_opts o = {.argv = (const char *const *)argv,
                          .timeout_ms = 10000,
                          .on_stdout = collect,
                          .userdata = &out};
    struct proc_result res;
    r = proc_run(&o, &res, err);
    if (r == 0 && (res.exit_code != 0 || res.timed_out)) {
        char why[PROC_TAIL_MAX + 64];
        proc_describe(&res, o.timeout_ms, why, sizeof(why));
        r = baton_err_set(err, -EIO, "%s: %s", svc->list_migrations, why);
    } else if (r < 0) {
        baton_err_prefix(err, "%s", svc->list_migrations);
    }
    for (char *save = NULL, *line = r == 0 && out.data ? strtok_r(out.data, "\n", &save) : NULL;
         line && r == 0; line = strtok_r(NULL, "\n", &save)) {
        if (svc->list_migrations_pattern) {
            /* Only matching lines name ids: group 1, or the whole match. */
            regmatch_t m[2];
            if (regexec(&svc->list_migrations_re, line, 2, m, 0) != 0)
                continue;
            regmatch_t *g = m[1].rm_so >= 0 ? &m[1] : &m[0];
            line[g->rm_eo] = '\0';
            line += g->rm_so;
        }
        line += strspn(line, " \t\r");
        line[strcspn(line, " \t\r")] = '\0';
        if (*line && svc_state_push(&ids, &n, line) < 0)
            r = baton_err_set(err, -E2BIG, "%s: too many ids", svc->list_migrations);
    }
    (void)ctx;
    free(out.data);
    command_argv_free(&argv);
    if (r < 0) {
        svc_state_clear_list(&ids, &n);
        return r;
    }
    if (n)
        qsort(ids, n, sizeof(*ids), cmp_str);
    /* Remembered only if the file is still the one that ran (not replaced meanwhile). */
    if (known && stat(binary, &sb) == 0) {
        fs_ident_t after = fs_ident(&sb);
        if (fs_ident_equal(&before, &after)) {
            pthread_mutex_lock(&seen_lock);
            ids_remember_locked(svc->list_migrations, &before, ids, n);
            pthread_mutex_unlock(&seen_lock);
        }
    }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

static int schema_known(step_ctx_t *ctx, const char *binary, bool before, char *const *given,
                        size_t n_given, baton_err_t *err);

int command_check(step_ctx_t *ctx, const char *binary, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    if (!svc->check)
        return 0;
    /* {release}: the release folder `binary` is in (a check of a new release looks at its
     * modules, not the current ones); the binary's own folder without releases. */
    char release[PATH_MAX];
    size_t bl = strlen(binary), rl = svc->release_rel ? strlen(svc->release_rel) : 0;
    if (rl && bl > rl + 1 && !strcmp(binary + bl - rl, svc->release_rel) &&
        binary[bl - rl - 1] == '/')
        snprintf(release, sizeof(release), "%.*s", (int)(bl - rl - 1), binary);
    else {
        const char *slash = strrchr(binary, '/');
        snprintf(release, sizeof(release), "%.*s", slash ? (int)(slash - binary) : 0, binary);
    }
    char *tmpl = substitute(svc->check, "{release}", release);
    if (!tmpl)
        return baton_err_set(err, -ENOMEM, "out of memory");
    char **argv = NULL;
    int r = command_argv_db(tmpl, binary, 0, svc->database, &argv, err);
    free(tmpl);
    if (r < 0)
        return r;
    step_progress(ctx, "checking the new release: %s", svc->check);
    r = command_run(ctx, svc, (const char *const *)argv, svc->timeout_check_ms, "check", NULL, err);
    command_argv_free(&argv);
    return r;
}

int command_schema_known(step_ctx_t *ctx, const char *binary, baton_err_t *err)
{
    return schema_known(ctx, binary, false, NULL, 0, err);
}

int command_schema_known_ids(step_ctx_t *ctx, const char *binary, char *const *ids, size_t n_ids,
                             baton_err_t *err)
{
    return schema_known(ctx, binary, false, ids, n_ids, err);
}

int command_schema_known_before(step_ctx_t *ctx, const char *binary, baton_err_t *err)
{
    return schema_known(ctx, binary, true, NULL, 0, err);
}

/* `given` (n_given of them): the database's ids, read already; NULL: read them now. */
static int schema_known(step_ctx_t *ctx, const char *binary, bool before, char *const *given,
                        size_t n_given, baton_err_t *err)
{
    const svc_config_t *svc = ctx->svc;
    char **ships = NULL, **read = NULL;
    size_t n_ships = 0, n_read = 0;
    /* Only the start's check (the database read now, the binary the swap just put in place)
     * reuses what the pre-flight's list said of the same bytes. */
    int r = command_migrations(ctx, svc, binary, !given && !before, &ships, &n_ships, err);
    if (r == -ENOTSUP)
        return 0;
    if (r < 0 || (!given && (r = step_ids_now(ctx, &read, &n_read, err)) < 0))
        goto out;
    char *const *db = given ? given : read;
    size_t n_db = given ? n_given : n_read;
    char unknown[256] = "";
    size_t n_unknown = 0, used = 0;
    /* The one newer schema a binary may start on: this rollout's own, migrated by another node
     * of a shared database (the mixed-version window), which that node's rollback undoes. */
    const svc_state_t *st = ctx->st;
    bool shared = st && *st->shared_from;
    for (size_t i = 0; i < n_db; i++) {
        if (bsearch(&db[i], ships, n_ships, sizeof(*ships), cmp_str))
            continue;
        if ((shared && svc_state_has(st->expect_ids, st->n_expect_ids, db[i])) ||
            (before && st && svc_state_has(st->ids_preflight, st->n_ids_preflight, db[i])))
            continue;
        if (used + strlen(db[i]) + 8 < sizeof(unknown))
            used += (size_t)snprintf(unknown + used, sizeof(unknown) - used, "%s%s",
                                     n_unknown ? ", " : "", db[i]);
        n_unknown++;
    }
    if (n_unknown)
        r = baton_err_set(err, -EPROTO,
                          "the database holds %zu migration%s that %s does not ship (%s): a "
                          "schema newer than the binary; refusing to start it",
                          n_unknown, n_unknown == 1 ? "" : "s", binary, unknown);
out:
    svc_state_clear_list(&ships, &n_ships);
    svc_state_clear_list(&read, &n_read);
    return r;
}
