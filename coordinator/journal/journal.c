/* journal: see journal.h. The store dispatches to its backend (journal_file.c, journal_pg.c);
 * replaying events into a record is the same for both. */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal_backend.h"
#include "names.h"

int journal_store_new(const char *state_dir, const char *conninfo, journal_store_t **ret,
                      baton_err_t *err)
{
    journal_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return baton_err_set(err, -ENOMEM, "out of memory");
    int n;
    if (conninfo && *conninfo) {
        s->be = &journal_pg_backend;
        /* An unreachable journal database must fail an append in seconds, not after TCP's
         * minutes: the rollout then stops after its steps in flight. */
        setenv("PGCONNECT_TIMEOUT", "5", 0);
        s->conninfo = strdup(conninfo);
        s->spool_dir = strdup(state_dir); /* where lines wait while the database is away */
        /* Never print a password that a URI may carry: the database's name is enough. */
        n = asprintf(&s->where, "the journal database");
    } else {
        s->be = &journal_file_backend;
        s->dir = strdup(state_dir);
        n = asprintf(&s->where, "folder %s", state_dir);
    }
    if (n < 0 || (!s->conninfo && !s->dir)) {
        journal_store_destroy(&s);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    *ret = s;
    return 0;
}

void journal_store_destroy(journal_store_t **s_p)
{
    journal_store_t *s = *s_p;
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    free(s->where);
    free(s->dir);
    free(s->conninfo);
    free(s->spool_dir);
    free(s);
    *s_p = NULL;
}

const char *journal_store_where(const journal_store_t *s)
{
    return s->where;
}

int journal_open(journal_store_t *s, const char *rollout_id, journal_t **ret, baton_err_t *err)
{
    journal_t *j = calloc(1, sizeof(*j));
    if (!j || !(j->id = strdup(rollout_id))) {
        free(j);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    j->be = s->be;
    j->fd = -1;
    j->store = s;
    int r = s->be->open(s, rollout_id, j, err);
    if (r < 0) {
        journal_close(&j);
        return r;
    }
    *ret = j;
    return 0;
}

int journal_append(journal_t *j, const char *line, baton_err_t *err)
{
    return j->be->append(j, line, err);
}

int journal_sync(journal_t *j, baton_err_t *err)
{
    return j->be->sync ? j->be->sync(j, err) : 0;
}

int journal_tick(journal_t *j, baton_err_t *err)
{
    return j->be->tick ? j->be->tick(j, err) : 0;
}

void journal_close(journal_t **j_p)
{
    if (!j_p || !*j_p)
        return;
    (*j_p)->be->close(*j_p);
    free((*j_p)->id);
    free(*j_p);
    *j_p = NULL;
}

struct replay {
    journal_record_t *rec;
    size_t lines, bad, last_bad; /* 1-based line numbers */
};

static int replay_one(const char *line, size_t len, void *userdata)
{
    struct replay *rp = userdata;
    rp->lines++;
    if (len == 0 || journal_replay_line(rp->rec, line) < 0) {
        rp->bad++;
        rp->last_bad = rp->lines;
    }
    return 0;
}

int journal_read(journal_store_t *s, const char *rollout_id, journal_record_t *ret,
                 baton_err_t *err)
{
    memset(ret, 0, sizeof(*ret));
    ret->exit = -1;
    if (!rollout_id_valid(rollout_id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", rollout_id);
    struct replay rp = {.rec = ret};
    int r = s->be->each_line(s, rollout_id, replay_one, &rp, err);
    /* Only the last line can be torn by a crash; anything else is damage. */
    if (r == 0 && rp.bad && (rp.bad > 1 || rp.last_bad != rp.lines))
        r = baton_err_set(err, -EBADMSG, "journal of %s (%s): line %zu is not a journal event",
                          rollout_id, s->where, rp.last_bad);
    if (r == 0 && !ret->file)
        r = baton_err_set(err, -EBADMSG, "journal of %s (%s): not the start of a rollout",
                          rollout_id, s->where);
    if (r == 0 && (!ret->sha256 || !ret->service || !ret->version || !ret->started_at))
        r = baton_err_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        journal_record_clear(ret);
    return r;
}

int journal_request(journal_store_t *s, const char *rollout_id, const char *what, baton_err_t *err)
{
    if (!rollout_id_valid(rollout_id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", rollout_id);
    return s->be->request(s, rollout_id, what, err);
}

bool journal_take(journal_store_t *s, const char *rollout_id, const char *what)
{
    return rollout_id_valid(rollout_id) && s->be->take(s, rollout_id, what);
}

int journal_freeze_put(journal_store_t *s, const char *service, const char *record,
                       char **ret_there, baton_err_t *err)
{
    *ret_there = NULL;
    if (!name_valid(service, NAME_MAX_LEN))
        return baton_err_set(err, -EINVAL, "'%s' is not a service name", service);
    return s->be->freeze_put(s, service, record, ret_there, err);
}

int journal_freeze_get(journal_store_t *s, const char *service, char **ret_record, baton_err_t *err)
{
    *ret_record = NULL;
    if (!name_valid(service, NAME_MAX_LEN))
        return baton_err_set(err, -EINVAL, "'%s' is not a service name", service);
    return s->be->freeze_get(s, service, ret_record, err);
}

int journal_freeze_del(journal_store_t *s, const char *service, char **ret_there, baton_err_t *err)
{
    *ret_there = NULL;
    if (!name_valid(service, NAME_MAX_LEN))
        return baton_err_set(err, -EINVAL, "'%s' is not a service name", service);
    return s->be->freeze_del(s, service, ret_there, err);
}

int journal_list(journal_store_t *s, char ***ret_ids, size_t *ret_n, baton_err_t *err)
{
    *ret_ids = NULL;
    *ret_n = 0;
    return s->be->list(s, ret_ids, ret_n, err);
}

int journal_probe_lock(journal_store_t *s, const char *rollout_id, baton_err_t *err)
{
    if (!rollout_id_valid(rollout_id))
        return baton_err_set(err, -EINVAL, "'%s' is not a rollout id", rollout_id);
    return s->be->probe_lock(s, rollout_id, err);
}

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
    json_decref(rec->groups);
    memset(rec, 0, sizeof(*rec));
    rec->exit = -1;
}

/* Who dumped and migrated each database (see journal_record_t.groups). */
static void replay_group(journal_record_t *rec, json_t *o, const char *ev)
{
    const char *node = json_string_value(json_object_get(o, "node"));
    const char *step = json_string_value(json_object_get(o, "step"));
    const char *db = json_string_value(json_object_get(o, "database"));
    bool ok = json_is_true(json_object_get(o, "ok"));
    if (!node || !step || !ok)
        return;
    if (!rec->groups && !(rec->groups = json_object()))
        return;
    if (!strcmp(ev, "rollback")) { /* the schema is back where it was: no migrator */
        const char *key;
        json_t *g, *tmp;
        json_object_foreach_safe(rec->groups, tmp, key, g)
        {
            if (!strcmp(json_string_value(json_object_get(g, "migrator")) ?: "", node))
                json_object_del(rec->groups, key);
        }
        return;
    }
    if (!db || json_is_true(json_object_get(o, "shared")))
        return;
    if (!strcmp(step, "dump")) {
        json_object_set_new(rec->groups, db, json_pack("{s:s}", "migrator", node));
    } else if (!strcmp(step, "migrate")) {
        json_t *g = json_object_get(rec->groups, db);
        json_t *ids = json_object_get(o, "ids");
        if (g && json_is_array(ids) &&
            !strcmp(json_string_value(json_object_get(g, "migrator")) ?: "", node))
            json_object_set(g, "ids", ids);
    }
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
        /* A pause on a node's analysis (it names the node) is no pause_after reached. */
        if (batch > 0 && batch <= UINT32_MAX && rec->n_pauses_reached < max &&
            !json_object_get(o, "node"))
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
    } else if (!strcmp(ev, "step") || !strcmp(ev, "rollback")) {
        replay_group(rec, o, ev);
    } else if (!strcmp(ev, "continued")) {
        rec->waiting = false;
    } else if (!strcmp(ev, "summary")) {
        const char *msg = json_string_value(json_object_get(o, "message"));
        /* An exit code that is no number is none (-1), never 0 (done). */
        json_t *x = json_object_get(o, "exit");
        rec->exit = json_is_integer(x) && json_integer_value(x) >= 0 && json_integer_value(x) <= 255
                        ? (int)json_integer_value(x)
                        : -1;
        rec->waiting = false;
        free(rec->outcome);
        rec->outcome = NULL;
        /* The whole summary as printed: its line, then its details (schema 2 on). */
        size_t len = 0;
        FILE *f = msg ? open_memstream(&rec->outcome, &len) : NULL;
        if (f) {
            fputs(msg, f);
            json_t *details = json_object_get(o, "details");
            for (size_t i = 0; i < json_array_size(details); i++)
                if (json_is_string(json_array_get(details, i)))
                    fprintf(f, "\n  %s", json_string_value(json_array_get(details, i)));
            fclose(f);
        }
    }
    free(rec->last_event);
    rec->last_event = strdup(ev);
    json_decref(o);
    return 0;
}
