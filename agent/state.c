/* state: see state.h. */
#include "semver.h"
#include "state.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "fsutil.h"
#include "steps.h"


int svc_state_set(char **field, const char *value)
{
    char *copy = strdup(value ? value : "");
    if (!copy)
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

void svc_state_clear_list(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

bool svc_state_has(char *const *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], id))
            return true;
    return false;
}

int svc_state_push(char ***list, size_t *n, const char *id)
{
    if (*n >= STATE_IDS_MAX || strlen(id) > STATE_STR_MAX)
        return -E2BIG;
    char **grown = realloc(*list, (*n + 1) * sizeof(char *));
    if (!grown)
        return -ENOMEM;
    *list = grown;
    if (!(grown[*n] = strdup(id)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

/* The string fields, by their JSON names, in the order of str_field_at(). */
static const char *const str_names[] = {"service",          "rollout_id",       "step",
                                        "in_progress",      "target_version",   "target_sha256",
                                        "previous_version", "previous_sha256",  "dump_path",
                                        "dump_sha256",      "prior_rollout_id", "prior_step",
                                        "database_id",      "shared_from",
                                        "restore_dump",     "highest_version",
                                        "target_release",   "previous_release"};
/* Fields from N_STR_REQUIRED on were added later: a state file without them reads as "". */
#define N_STR_REQUIRED 10
#define N_STR (sizeof(str_names) / sizeof(str_names[0]))

/* The address of string field i (see str_names). */
static char **str_field_at(svc_state_t *st, size_t i)
{
    char **f[] = {&st->service,          &st->rollout_id,       &st->step,
                  &st->in_progress,      &st->target_version,   &st->target_sha256,
                  &st->previous_version, &st->previous_sha256,  &st->dump_path,
                  &st->dump_sha256,      &st->prior_rollout_id, &st->prior_step,
                  &st->database_id,      &st->shared_from,
                  &st->restore_dump,     &st->highest_version,
                  &st->target_release,   &st->previous_release};
    return f[i];
}

svc_state_t *svc_state_new(const char *service)
{
    svc_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    for (size_t i = 0; i < N_STR; i++)
        if (svc_state_set(str_field_at(st, i), "") < 0) {
            svc_state_destroy(&st);
            return NULL;
        }
    if (svc_state_set(&st->service, service) < 0)
        svc_state_destroy(&st);
    return st;
}

static void history_free(svc_state_t *st)
{
    for (size_t i = 0; i < st->n_history; i++) {
        free(st->history[i].version);
        svc_state_clear_list(&st->history[i].ids, &st->history[i].n_ids);
        free(st->history[i].dump);
    }
    free(st->history);
    st->history = NULL;
    st->n_history = 0;
}

int svc_state_history_add(svc_state_t *st, const char *version, char **ids, size_t n_ids,
                          const char *dump)
{
    version_record_t *last = st->n_history ? &st->history[st->n_history - 1] : NULL;
    if (!last || !version_same(last->version, version)) {
        if (st->n_history == STATE_HISTORY_MAX) { /* the oldest goes */
            free(st->history[0].version);
            svc_state_clear_list(&st->history[0].ids, &st->history[0].n_ids);
            free(st->history[0].dump);
            memmove(st->history, st->history + 1, (st->n_history - 1) * sizeof(*st->history));
            st->n_history--;
        }
        version_record_t *grown = realloc(st->history, (st->n_history + 1) * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        st->history = grown;
        last = &grown[st->n_history++];
        *last = (version_record_t){0};
        if (!(last->version = strdup(version)) || !(last->dump = strdup("")))
            return -ENOMEM;
    }
    svc_state_clear_list(&last->ids, &last->n_ids);
    for (size_t i = 0; i < n_ids; i++)
        if (svc_state_push(&last->ids, &last->n_ids, ids[i]) < 0)
            return -ENOMEM;
    if (dump && svc_state_set(&last->dump, dump) < 0)
        return -ENOMEM;
    return 0;
}

const version_record_t *svc_state_history_find(const svc_state_t *st, const char *version)
{
    for (size_t i = st->n_history; i-- > 0;)
        if (version_same(st->history[i].version, version))
            return &st->history[i];
    return NULL;
}

void svc_state_destroy(svc_state_t **st_p)
{
    if (!st_p || !*st_p)
        return;
    svc_state_t *st = *st_p;
    history_free(st);
    for (size_t i = 0; i < N_STR; i++)
        free(*str_field_at(st, i));
    svc_state_clear_list(&st->ids_before, &st->n_ids_before);
    svc_state_clear_list(&st->applied, &st->n_applied);
    svc_state_clear_list(&st->expect_ids, &st->n_expect_ids);
    svc_state_clear_list(&st->ids_after, &st->n_ids_after);
    svc_state_clear_list(&st->ids_preflight, &st->n_ids_preflight);
    for (int i = 0; i < STEP__MAX; i++)
        free(st->results[i]);
    free(st);
    *st_p = NULL;
}

/* Clears every field but the service name, the prior record and the database's identity (a
 * fact about the service, not about one rollout). */
static int clear_rollout(svc_state_t *st)
{
    for (size_t i = 1; i < N_STR; i++)
        if (str_field_at(st, i) != &st->prior_rollout_id &&
            str_field_at(st, i) != &st->prior_step && str_field_at(st, i) != &st->database_id &&
            str_field_at(st, i) != &st->highest_version &&
            svc_state_set(str_field_at(st, i), "") < 0)
            return -ENOMEM;
    st->was_active = st->stopped = st->swapped = st->have_ids_before = st->downgrade = false;
    st->stop_asked = false;
    st->dump_size = st->down_limit = st->unit_started_usec = 0;
    svc_state_clear_list(&st->ids_before, &st->n_ids_before);
    svc_state_clear_list(&st->applied, &st->n_applied);
    svc_state_clear_list(&st->expect_ids, &st->n_expect_ids);
    svc_state_clear_list(&st->ids_after, &st->n_ids_after);
    svc_state_clear_list(&st->ids_preflight, &st->n_ids_preflight);
    for (int i = 0; i < STEP__MAX; i++) {
        free(st->results[i]);
        st->results[i] = NULL;
        st->result_requests[i] = 0;
    }
    return 0;
}

int svc_state_begin(svc_state_t *st, const char *rollout_id)
{
    /* A pre-flight run again by the same rollout keeps the record it replaced first. */
    if (strcmp(st->rollout_id, rollout_id) &&
        (svc_state_set(&st->prior_rollout_id, st->rollout_id) < 0 ||
         svc_state_set(&st->prior_step, st->step) < 0))
        return -ENOMEM;
    if (clear_rollout(st) < 0)
        return -ENOMEM;
    return svc_state_set(&st->rollout_id, rollout_id);
}

int svc_state_release(svc_state_t *st)
{
    char *rid = strdup(st->prior_rollout_id), *step = strdup(st->prior_step);
    int r = -ENOMEM;
    if (rid && step && clear_rollout(st) == 0 && svc_state_set(&st->rollout_id, rid) == 0 &&
        svc_state_set(&st->step, step) == 0 && svc_state_set(&st->prior_rollout_id, "") == 0 &&
        svc_state_set(&st->prior_step, "") == 0)
        r = 0;
    free(rid);
    free(step);
    return r;
}

int svc_state_set_result(svc_state_t *st, step_id_t step, uint64_t request_id, const void *packed,
                         size_t len)
{
    if (!step_get(step))
        return -EINVAL;
    size_t b64_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    if (b64_len > STATE_RESULT_MAX)
        return -E2BIG;
    char *b64 = malloc(b64_len);
    if (!b64)
        return -ENOMEM;
    sodium_bin2base64(b64, b64_len, packed, len, sodium_base64_VARIANT_ORIGINAL);
    free(st->results[step]);
    st->results[step] = b64;
    st->result_requests[step] = request_id;
    return 0;
}

int svc_state_get_result(const svc_state_t *st, step_id_t step, uint8_t **ret_buf, size_t *ret_len)
{
    if (!step_get(step) || !st->results[step])
        return -ENOENT;
    size_t cap = strlen(st->results[step]) / 4 * 3 + 3, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    if (sodium_base642bin(buf, cap, st->results[step], strlen(st->results[step]), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) < 0) {
        free(buf);
        return -EBADMSG;
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

unsigned svc_state_recorded(const svc_state_t *st, uint64_t request_id)
{
    unsigned bits = 0;
    for (int i = 0; i < STEP__MAX; i++)
        if (st->results[i] && (!request_id || st->result_requests[i] == request_id))
            bits |= 1u << i;
    return bits;
}

static int state_path(const char *dir, const char *service, char *buf, size_t len, baton_err_t *err)
{
    if (snprintf(buf, len, "%s/%s.json", dir, service) >= (int)len)
        return baton_err_set(err, -ENAMETOOLONG, "%s/%s.json: path too long", dir, service);
    return 0;
}

/* Request ids are any uint64 a coordinator chose: JSON integers are signed, so they are kept
 * as decimal text. */
static json_t *id_to_json(uint64_t id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)id);
    return json_string(buf);
}

static bool id_from_json(json_t *v, uint64_t *ret)
{
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    unsigned long long id = strtoull(s, NULL, 10);
    if (errno)
        return false;
    *ret = id;
    return true;
}

static json_t *list_to_json(char **list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

int svc_state_save(const char *state_dir, const svc_state_t *st, baton_err_t *err)
{
    char path[PATH_MAX];
    int r = state_path(state_dir, st->service, path, sizeof(path), err);
    if (r < 0)
        return r;
    json_t *o = json_object();
    for (size_t i = 0; i < N_STR; i++)
        json_object_set_new(o, str_names[i], json_string(*str_field_at((svc_state_t *)st, i)));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "was_active", json_boolean(st->was_active));
    json_object_set_new(o, "stopped", json_boolean(st->stopped));
    json_object_set_new(o, "stop_asked", json_boolean(st->stop_asked));
    json_object_set_new(o, "swapped", json_boolean(st->swapped));
    json_object_set_new(o, "have_ids_before", json_boolean(st->have_ids_before));
    json_object_set_new(o, "ids_before", list_to_json(st->ids_before, st->n_ids_before));
    json_object_set_new(o, "applied", list_to_json(st->applied, st->n_applied));
    json_object_set_new(o, "expect_ids", list_to_json(st->expect_ids, st->n_expect_ids));
    json_object_set_new(o, "ids_after", list_to_json(st->ids_after, st->n_ids_after));
    json_object_set_new(o, "ids_preflight", list_to_json(st->ids_preflight, st->n_ids_preflight));
    json_object_set_new(o, "downgrade", json_boolean(st->downgrade));
    json_object_set_new(o, "down_limit", json_integer((json_int_t)st->down_limit));
    json_t *history = json_array();
    for (size_t i = 0; i < st->n_history; i++)
        json_array_append_new(history,
                              json_pack("{s:s, s:o, s:s}", "version", st->history[i].version,
                                        "ids", list_to_json(st->history[i].ids,
                                                            st->history[i].n_ids),
                                        "dump", st->history[i].dump));
    json_object_set_new(o, "history", history);
    json_object_set_new(o, "dump_size", json_integer((json_int_t)st->dump_size));
    json_object_set_new(o, "unit_started_usec", json_integer((json_int_t)st->unit_started_usec));
    json_object_set_new(o, "in_progress_request", id_to_json(st->in_progress_request));
    json_t *results = json_object();
    for (int i = 0; i < STEP__MAX; i++)
        if (st->results[i])
            json_object_set_new(results, step_get(i)->name,
                                json_pack("{s:s, s:o}", "result", st->results[i], "request",
                                          id_to_json(st->result_requests[i])));
    json_object_set_new(o, "results", results);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return baton_err_set(err, -ENOMEM, "%s: out of memory", path);
    /* Never write what the loader would refuse: every later command, the rollback's too,
     * would fail on it. The step that made it so fails instead, with the file as it was. */
    if (strlen(text) > STATE_FILE_MAX) {
        r = baton_err_set(err, -EFBIG,
                          "%s: the record of %s would be %zu bytes, over the limit of %d; "
                          "nothing was written",
                          path, st->service, strlen(text), STATE_FILE_MAX);
        free(text);
        return r;
    }
    r = fs_write_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return r;
}

static int load_list(json_t *o, const char *key, const char *path, char ***list, size_t *n,
                     baton_err_t *err)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a))
        return baton_err_set(err, -EBADMSG, "%s: field %s: expected a list", path, key);
    if (json_array_size(a) > STATE_IDS_MAX)
        return baton_err_set(err, -E2BIG, "%s: field %s: more than %d ids", path, key,
                             STATE_IDS_MAX);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) > STATE_STR_MAX)
            return baton_err_set(err, -EBADMSG, "%s: field %s[%zu]: expected a short string", path,
                                 key, i);
        if (svc_state_push(list, n, json_string_value(v)) < 0)
            return baton_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* "history": [{"version", "ids", "dump"}, ...] and the downgrade fields; optional (added
 * later). */
static int load_history(json_t *o, const char *path, svc_state_t *st, baton_err_t *err)
{
    json_t *dg = json_object_get(o, "downgrade"), *dl = json_object_get(o, "down_limit");
    if (dg && !json_is_boolean(dg))
        return baton_err_set(err, -EBADMSG, "%s: field downgrade: expected true or false", path);
    st->downgrade = json_is_true(dg);
    if (dl && (!json_is_integer(dl) || json_integer_value(dl) < 0 ||
               json_integer_value(dl) > STATE_IDS_MAX))
        return baton_err_set(err, -EBADMSG, "%s: field down_limit: expected a count", path);
    st->down_limit = dl ? (uint64_t)json_integer_value(dl) : 0;
    json_t *h = json_object_get(o, "history");
    if (!h)
        return 0;
    if (!json_is_array(h) || json_array_size(h) > STATE_HISTORY_MAX)
        return baton_err_set(err, -EBADMSG, "%s: field history: expected a list of at most %d",
                             path, STATE_HISTORY_MAX);
    size_t i;
    json_t *e;
    json_array_foreach(h, i, e)
    {
        json_t *v = json_object_get(e, "version"), *d = json_object_get(e, "dump");
        char **ids = NULL;
        size_t n = 0;
        char key[48];
        snprintf(key, sizeof(key), "history[%zu].ids", i);
        if (!json_is_object(e) || !json_is_string(v) || json_string_length(v) > STATE_STR_MAX ||
            !json_is_string(d) || json_string_length(d) > STATE_STR_MAX ||
            !json_object_get(e, "ids"))
            return baton_err_set(err, -EBADMSG, "%s: field history[%zu]: expected a version, "
                                 "ids and a dump", path, i);
        json_t *wrap = json_pack("{s:O}", key, json_object_get(e, "ids"));
        int r = wrap ? load_list(wrap, key, path, &ids, &n, err) : -ENOMEM;
        json_decref(wrap);
        if (r == 0 && svc_state_history_add(st, json_string_value(v), ids, n,
                                            json_string_value(d)) < 0)
            r = baton_err_set(err, -ENOMEM, "out of memory");
        svc_state_clear_list(&ids, &n);
        if (r < 0)
            return r;
    }
    return 0;
}

/* "results": {"stop": {"result": "<base64>", "request": N}, ...}; optional (older state files
 * have none). */
static int load_results(json_t *o, const char *path, svc_state_t *st, baton_err_t *err)
{
    json_t *res = json_object_get(o, "results");
    if (!res)
        return 0;
    if (!json_is_object(res))
        return baton_err_set(err, -EBADMSG, "%s: field results: expected an object", path);
    const char *key;
    json_t *v;
    json_object_foreach(res, key, v)
    {
        const step_def_t *def = step_by_name(key);
        if (!def)
            return baton_err_set(err, -EBADMSG, "%s: field results.%s: not a step", path, key);
        json_t *text = json_object_get(v, "result");
        uint64_t req = 0;
        if (!json_is_string(text) || json_string_length(text) > STATE_RESULT_MAX ||
            !id_from_json(json_object_get(v, "request"), &req))
            return baton_err_set(err, -EBADMSG,
                                 "%s: field results.%s: expected {result: base64, request: id}",
                                 path, key);
        free(st->results[def->id]);
        if (!(st->results[def->id] = strdup(json_string_value(text))))
            return baton_err_set(err, -ENOMEM, "out of memory");
        st->result_requests[def->id] = req;
    }
    return 0;
}

int svc_state_load(const char *state_dir, const char *service, svc_state_t **ret_st,
                   baton_err_t *err)
{
    char path[PATH_MAX];
    int r = state_path(state_dir, service, path, sizeof(path), err);
    if (r < 0)
        return r;
    svc_state_t *st = svc_state_new(service);
    if (!st)
        return baton_err_set(err, -ENOMEM, "out of memory");
    char *text = NULL;
    baton_err_t rerr = {0};
    r = fs_read_all(path, STATE_FILE_MAX, &text, NULL, &rerr);
    if (r == -ENOENT) {
        *ret_st = st;
        return 0;
    }
    if (r < 0) {
        svc_state_destroy(&st);
        return baton_err_set(err, r, "%s", rerr.msg);
    }
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!json_is_object(o)) {
        r = baton_err_set(err, -EBADMSG, "%s:%d: %s", path, jerr.line,
                          o ? "not a JSON object" : jerr.text);
        goto out;
    }
    for (size_t i = 0; i < N_STR; i++) {
        json_t *v = json_object_get(o, str_names[i]);
        if (!v && i >= N_STR_REQUIRED)
            continue;
        if (!json_is_string(v) || json_string_length(v) > STATE_STR_MAX) {
            r = baton_err_set(err, -EBADMSG, "%s: field %s: expected a string", path, str_names[i]);
            goto out;
        }
        if (svc_state_set(str_field_at(st, i), json_string_value(v)) < 0) {
            r = baton_err_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    }
    if (strcmp(st->service, service)) {
        r = baton_err_set(err, -EBADMSG, "%s: field service: '%s', expected '%s'", path,
                          st->service, service);
        goto out;
    }
    static const char *bools[] = {"was_active", "stopped", "swapped", "have_ids_before"};
    bool *bool_fields[] = {&st->was_active, &st->stopped, &st->swapped, &st->have_ids_before};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(o, bools[i]);
        if (!json_is_boolean(v)) {
            r = baton_err_set(err, -EBADMSG, "%s: field %s: expected true or false", path,
                              bools[i]);
            goto out;
        }
        *bool_fields[i] = json_is_true(v);
    }
    json_t *size = json_object_get(o, "dump_size");
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
        r = baton_err_set(err, -EBADMSG, "%s: field dump_size: expected a size", path);
        goto out;
    }
    st->dump_size = (uint64_t)json_integer_value(size);
    json_t *started = json_object_get(o, "unit_started_usec"); /* optional: added later */
    if (started && (!json_is_integer(started) || json_integer_value(started) < 0)) {
        r = baton_err_set(err, -EBADMSG, "%s: field unit_started_usec: expected a time", path);
        goto out;
    }
    st->unit_started_usec = started ? (uint64_t)json_integer_value(started) : 0;
    /* Added later: a state without it may have asked for a stop (the safe side). */
    json_t *asked = json_object_get(o, "stop_asked");
    if (asked && !json_is_boolean(asked)) {
        r = baton_err_set(err, -EBADMSG, "%s: field stop_asked: expected true or false", path);
        goto out;
    }
    st->stop_asked = asked ? json_is_true(asked) : true;
    json_t *ipr = json_object_get(o, "in_progress_request"); /* optional: added later */
    st->in_progress_request = 0;
    if (ipr && !id_from_json(ipr, &st->in_progress_request)) {
        r = baton_err_set(err, -EBADMSG, "%s: field in_progress_request: expected an id", path);
        goto out;
    }
    if ((r = load_list(o, "ids_before", path, &st->ids_before, &st->n_ids_before, err)) < 0 ||
        (r = load_list(o, "applied", path, &st->applied, &st->n_applied, err)) < 0 ||
        /* added later: older state files have none */
        (json_object_get(o, "expect_ids") &&
         (r = load_list(o, "expect_ids", path, &st->expect_ids, &st->n_expect_ids, err)) < 0) ||
        (json_object_get(o, "ids_after") &&
         (r = load_list(o, "ids_after", path, &st->ids_after, &st->n_ids_after, err)) < 0) ||
        (json_object_get(o, "ids_preflight") &&
         (r = load_list(o, "ids_preflight", path, &st->ids_preflight, &st->n_ids_preflight,
                        err)) < 0) ||
        (r = load_history(o, path, st, err)) < 0)
        goto out;
    if ((r = load_results(o, path, st, err)) < 0)
        goto out;
    *ret_st = st;
    st = NULL;
    r = 0;
out:
    json_decref(o);
    svc_state_destroy(&st);
    return r;
}
