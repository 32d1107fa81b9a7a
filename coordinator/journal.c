/* journal: see journal.h. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fsutil.h"
#include "names.h"

#define JOURNAL_LINE_MAX (1024 * 1024)

struct journal {
    int fd;     /* the journal, O_APPEND, locked */
    char *path; /* for messages */
};

char *journal_default_dir(void)
{
    char *dir = NULL;
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    const char *env = getenv("BATON_STATE_DIR");
    if (env && *env)
        dir = strdup(env);
    else if (geteuid() == 0)
        dir = strdup("/var/lib/baton");
    else if (xdg && *xdg == '/')
        (void)!asprintf(&dir, "%s/baton", xdg);
    else
        (void)!asprintf(&dir, "%s/.local/state/baton", home && *home ? home : ".");
    return dir;
}

static int journal_path(const char *state_dir, const char *rollout_id, char **ret, baton_err_t *err)
{
    if (!rollout_id_valid(rollout_id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", rollout_id);
    if (asprintf(ret, "%s/rollouts/%s.jsonl", state_dir, rollout_id) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

int journal_open(const char *state_dir, const char *rollout_id, journal_t **ret, baton_err_t *err)
{
    char *dir = NULL;
    if (asprintf(&dir, "%s/rollouts", state_dir) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    int r = fs_mkdir_p(dir, 0700, err);
    free(dir);
    if (r < 0)
        return r;
    journal_t *j = calloc(1, sizeof(*j));
    if (!j)
        return baton_err_set(err, -ENOMEM, "out of memory");
    if ((r = journal_path(state_dir, rollout_id, &j->path, err)) < 0) {
        free(j);
        return r;
    }
    j->fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        r = baton_err_set(err, -errno, "open %s: %s", j->path, strerror(errno));
        journal_close(&j);
        return r;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK
                ? baton_err_set(err, -EBUSY,
                                "rollout %s is driven by another coordinator (%s "
                                "is locked)",
                                rollout_id, j->path)
                : baton_err_set(err, -errno, "lock %s: %s", j->path, strerror(errno));
        journal_close(&j);
        return r;
    }
    *ret = j;
    return fs_fsync_parent(j->path, err);
}

int journal_append(journal_t *j, const char *line, baton_err_t *err)
{
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf)
        return baton_err_set(err, -ENOMEM, "out of memory");
    memcpy(buf, line, len);
    buf[len] = '\n';
    /* One write(2) per line: with O_APPEND a line is never interleaved or torn by another. */
    ssize_t n = write(j->fd, buf, len + 1);
    int e = errno;
    free(buf);
    if (n != (ssize_t)(len + 1))
        return baton_err_set(err, n < 0 ? -e : -EIO, "write %s: %s", j->path,
                             n < 0 ? strerror(e) : "short write");
    if (fdatasync(j->fd) < 0)
        return baton_err_set(err, -errno, "fsync %s: %s", j->path, strerror(errno));
    return 0;
}

void journal_close(journal_t **j_p)
{
    if (!j_p || !*j_p)
        return;
    if ((*j_p)->fd >= 0)
        close((*j_p)->fd); /* releases the lock */
    free((*j_p)->path);
    free(*j_p);
    *j_p = NULL;
}

void journal_record_clear(journal_record_t *rec)
{
    free(rec->file);
    free(rec->sha256);
    free(rec->outcome);
    free(rec->service);
    free(rec->version);
    free(rec->started_at);
    free(rec->last_event);
    json_decref(rec->plan);
    json_decref(rec->committed);
    memset(rec, 0, sizeof(*rec));
    rec->exit = -1;
}

int journal_replay_line(journal_record_t *rec, const char *line)
{
    json_t *o = json_loads(line, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -EBADMSG;
    }
    const char *ev = json_string_value(json_object_get(o, "event"));
    ev = ev ? ev : "";
    rec->lines++;
    if (!strcmp(ev, "start")) {
        const char *file = json_string_value(json_object_get(o, "file"));
        const char *sha = json_string_value(json_object_get(o, "sha256"));
        if (file && sha && !rec->file) {
            const char *svc = json_string_value(json_object_get(o, "service"));
            const char *ver = json_string_value(json_object_get(o, "version"));
            const char *at = json_string_value(json_object_get(o, "at"));
            rec->file = strdup(file);
            rec->sha256 = strdup(sha);
            rec->service = strdup(svc ? svc : "?");
            rec->version = strdup(ver ? ver : "?");
            rec->started_at = strdup(at ? at : "?");
        }
        rec->exit = -1; /* a resume starts again */
    } else if (!strcmp(ev, "plan")) {
        json_t *b = json_object_get(o, "batches");
        if (json_is_array(b) && !rec->plan)
            rec->plan = json_incref(b); /* the first plan stands: batch numbers stay stable */
    } else if (!strcmp(ev, "paused")) {
        json_int_t batch = json_integer_value(json_object_get(o, "batch"));
        size_t max = sizeof(rec->pauses_reached) / sizeof(rec->pauses_reached[0]);
        if (batch > 0 && batch <= UINT32_MAX && rec->n_pauses_reached < max)
            rec->pauses_reached[rec->n_pauses_reached++] = (uint32_t)batch;
        rec->waiting = true;
    } else if (!strcmp(ev, "aborted")) {
        rec->aborted = true;
    } else if (!strcmp(ev, "undone")) {
        rec->undone = true;
    } else if (!strcmp(ev, "step") && json_is_true(json_object_get(o, "ok")) &&
               !strcmp(json_string_value(json_object_get(o, "step")) ?: "", "commit")) {
        const char *node = json_string_value(json_object_get(o, "node"));
        bool seen = false;
        if (!rec->committed)
            rec->committed = json_array();
        for (size_t i = 0; node && i < json_array_size(rec->committed); i++)
            seen |= !strcmp(json_string_value(json_array_get(rec->committed, i)), node);
        if (node && !seen)
            json_array_append_new(rec->committed, json_string(node));
    } else if (!strcmp(ev, "continued")) {
        rec->waiting = false;
    } else if (!strcmp(ev, "summary")) {
        const char *msg = json_string_value(json_object_get(o, "message"));
        rec->exit = (int)json_integer_value(json_object_get(o, "exit"));
        rec->waiting = false;
        free(rec->outcome);
        rec->outcome = msg ? strdup(msg) : NULL;
    }
    free(rec->last_event);
    rec->last_event = strdup(ev);
    json_decref(o);
    return 0;
}

int journal_read(const char *state_dir, const char *rollout_id, journal_record_t *ret,
                 baton_err_t *err)
{
    char *path = NULL, *line = NULL;
    size_t cap = 0;
    memset(ret, 0, sizeof(*ret));
    ret->exit = -1;
    int r = journal_path(state_dir, rollout_id, &path, err);
    if (r < 0)
        return r;
    FILE *f = fopen(path, "re");
    if (!f) {
        r = baton_err_set(err, -errno, "no journal of rollout %s (%s: %s)", rollout_id, path,
                          strerror(errno));
        free(path);
        return r;
    }
    ssize_t n;
    unsigned lineno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (n >= JOURNAL_LINE_MAX || journal_replay_line(ret, line) < 0) {
            /* Only the last line can be torn by a crash; anything else is damage. */
            if (getline(&line, &cap, f) > 0) {
                r = baton_err_set(err, -EBADMSG, "%s:%u: not a journal event", path, lineno);
                break;
            }
        }
    }
    fclose(f);
    if (r == 0 && !ret->file)
        r = baton_err_set(err, -EBADMSG, "%s:1: not the start of a rollout", path);
    if (r == 0 && (!ret->file || !ret->sha256))
        r = baton_err_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        journal_record_clear(ret);
    free(line);
    free(path);
    return r;
}

static char *request_path(const char *state_dir, const char *rollout_id, const char *what)
{
    char *p = NULL;
    if (!rollout_id_valid(rollout_id) ||
        asprintf(&p, "%s/rollouts/%s.%s", state_dir, rollout_id, what) < 0)
        return NULL;
    return p;
}

int journal_request(const char *state_dir, const char *rollout_id, const char *what,
                    baton_err_t *err)
{
    char *p = request_path(state_dir, rollout_id, what);
    if (!p)
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", rollout_id);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int r = fd < 0 ? baton_err_set(err, -errno, "create %s: %s", p, strerror(errno)) : 0;
    if (fd >= 0)
        close(fd);
    free(p);
    return r;
}

bool journal_take(const char *state_dir, const char *rollout_id, const char *what)
{
    char *p = request_path(state_dir, rollout_id, what);
    bool there = p && unlink(p) == 0;
    free(p);
    return there;
}

int journal_probe_lock(const char *state_dir, const char *rollout_id, baton_err_t *err)
{
    char *path = NULL;
    int r = journal_path(state_dir, rollout_id, &path, err);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = baton_err_set(err, -errno, "no journal of rollout %s (%s: %s)", rollout_id, path,
                          strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY
                                 : baton_err_set(err, -errno, "lock %s: %s", path, strerror(errno));
    }
    if (fd >= 0)
        close(fd); /* releases a lock taken here */
    free(path);
    return r;
}

struct listed {
    char *id;
    struct timespec mtime;
};

static int newest_first(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(y->id, x->id);
}

int journal_list(const char *state_dir, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    char *dir = NULL;
    *ret_ids = NULL;
    *ret_n = 0;
    if (asprintf(&dir, "%s/rollouts", state_dir) < 0)
        return baton_err_set(err, -ENOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        int r = errno == ENOENT ? 0 : baton_err_set(err, -errno, "%s: %s", dir, strerror(errno));
        free(dir);
        return r;
    }
    struct listed *items = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 7 || strcmp(de->d_name + len - 6, ".jsonl"))
            continue;
        char *id = strndup(de->d_name, len - 6);
        struct stat sb;
        if (!id || !rollout_id_valid(id) || fstatat(dirfd(d), de->d_name, &sb, 0) < 0) {
            free(id);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct listed *bigger = realloc(items, ncap * sizeof(*items));
            if (!bigger) {
                free(id);
                r = baton_err_set(err, -ENOMEM, "out of memory");
                break;
            }
            items = bigger;
            cap = ncap;
        }
        items[n++] = (struct listed){.id = id, .mtime = sb.st_mtim};
    }
    closedir(d);
    free(dir);
    char **ids = r == 0 && n ? calloc(n, sizeof(char *)) : NULL;
    if (r == 0 && n && !ids)
        r = baton_err_set(err, -ENOMEM, "out of memory");
    if (r == 0 && n)
        qsort(items, n, sizeof(*items), newest_first);
    for (size_t i = 0; i < n; i++) {
        if (ids)
            ids[i] = items[i].id;
        else
            free(items[i].id);
    }
    free(items);
    if (r == 0) {
        *ret_ids = ids;
        *ret_n = ids ? n : 0;
    }
    return r;
}
