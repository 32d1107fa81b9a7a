/* history: what the journals in the state folder say about rollouts, for operators who were
 * not at the terminal that ran them: `baton list`, `baton status ROLLOUT_ID [--follow]` and
 * `baton abort ROLLOUT_ID`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "event_registry.h"
#include "interrupt.h"
#include "journal.h"
#include "rollout.h"

/* Prints one event as a JSON line, with what every event carries, and frees it. */
static void print_json(json_t *o, const char *rollout_id)
{
    if (o) {
        event_stamp(o, rollout_id);
        event_check_strict(o);
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* Reads a rollout's journal, or says on stderr why it cannot. */
static int read_or_say(const struct rollout_opts *opts, const char *id, journal_record_t *rec)
{
    baton_err_t err = {0};
    int r = journal_read(opts->store, id, rec, &err);
    if (r < 0)
        fprintf(stderr, "baton: %s\n", err.msg);
    return r;
}

/* One word for where a rollout is, from its journal and its lock. */
static const char *state_of(journal_store_t *store, const char *id, const journal_record_t *rec)
{
    baton_err_t err = {0};
    bool driven = journal_probe_lock(store, id, &err) == -EBUSY;
    if (driven)
        return rec->waiting ? "paused" : "running";
    if (rec->undone)
        return "undone";
    if (rec->aborted)
        return "aborted";
    if (rec->exit == 0)
        return "done";
    if (rec->exit == 2)
        return "refused";
    if (rec->exit == 3)
        return "rolled-back";
    if (rec->exit >= 0)
        return "needs-care";
    return rec->waiting ? "paused-died" : "died";
}

/* The first line of a summary (the rest names nodes); the caller's. */
static char *first_line(const char *s)
{
    s = s ? s : "";
    return strndup(s, strcspn(s, "\n"));
}

int history_list(const struct rollout_opts *opts)
{
    char **ids = NULL;
    size_t n = 0;
    baton_err_t err = {0};
    if (journal_list(opts->store, &ids, &n, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
        return EXIT_REFUSED;
    }
    if (!opts->json)
        printf("%-26s %-12s %-24s %-10s %-10s %s\n", "ROLLOUT", "STATE", "STARTED", "SERVICE",
               "VERSION", "OUTCOME");
    for (size_t i = 0; i < n; i++) {
        journal_record_t rec;
        baton_err_clear(&err);
        int r = journal_read(opts->store, ids[i], &rec, &err);
        const char *state = r < 0 ? "unreadable" : state_of(opts->store, ids[i], &rec);
        char *line = first_line(r < 0 ? err.msg : rec.outcome);
        if (opts->json) {
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "event", "rollout", "rollout",
                          ids[i], "state", state, "started_at", r < 0 ? "" : rec.started_at,
                          "service", r < 0 ? "" : rec.service, "version", r < 0 ? "" : rec.version,
                          "outcome", line ? line : "", "exit", r < 0 ? -1 : rec.exit);
            print_json(o, ids[i]);
        } else {
            printf("%-26s %-12s %-24s %-10s %-10s %s\n", ids[i], state,
                   r < 0 ? "?" : rec.started_at, r < 0 ? "?" : rec.service,
                   r < 0 ? "?" : rec.version, line ? line : "");
        }
        if (r == 0)
            journal_record_clear(&rec);
        free(line);
        free(ids[i]);
    }
    free(ids);
    return EXIT_DONE;
}

int history_status(const char *rollout_id, bool follow, const struct rollout_opts *opts)
{
    for (;;) {
        journal_record_t rec;
        baton_err_t err = {0};
        if (journal_read(opts->store, rollout_id, &rec, &err) < 0) {
            fprintf(stderr, "baton: %s\n", err.msg);
            return EXIT_REFUSED;
        }
        const char *state = state_of(opts->store, rollout_id, &rec);
        char *line = first_line(rec.outcome);
        if (opts->json) {
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "event", "rollout",
                          "rollout", rollout_id, "state", state, "started_at", rec.started_at,
                          "service", rec.service, "version", rec.version, "file", rec.file,
                          "last_event", rec.last_event ? rec.last_event : "", "exit", rec.exit);
            print_json(o, rollout_id);
        } else {
            printf("rollout %s: %s (%s -> %s, started %s, file %s)%s%s\n", rollout_id, state,
                   rec.service, rec.version, rec.started_at, rec.file, line && *line ? "\n  " : "",
                   line ? line : "");
        }
        free(line);
        fflush(stdout);
        rollout_file_t *rf = NULL;
        int code;
        if (rollout_file_load(rec.file, &rf, &err) < 0) {
            fprintf(stderr, "baton: %s\n", err.msg);
            code = EXIT_REFUSED;
        } else {
            code = rollout_status(rf, opts);
        }
        rollout_file_destroy(&rf);
        bool ended = rec.exit >= 0 || !strcmp(state, "died") || !strcmp(state, "paused-died");
        journal_record_clear(&rec);
        if (!follow || ended || interrupt_count())
            return code;
        sleep(2);
        if (interrupt_count())
            return code;
        if (!opts->json)
            printf("\n");
    }
}

int history_abort(const char *rollout_id, const struct rollout_opts *opts)
{
    journal_record_t rec;
    baton_err_t err = {0};
    if (read_or_say(opts, rollout_id, &rec) < 0)
        return EXIT_REFUSED;
    int code = EXIT_REFUSED;
    if (journal_probe_lock(opts->store, rollout_id, &err) == -EBUSY) {
        /* Its coordinator stops after the steps in flight, rolls those nodes back and writes
         * its summary: wait for it and pass it on. */
        if (journal_request(opts->store, rollout_id, "abort", &err) < 0) {
            fprintf(stderr, "baton: %s\n", err.msg);
            goto out;
        }
        printf("baton: asked the coordinator of %s to stop after the steps in flight\n",
               rollout_id);
        fflush(stdout);
        for (;;) {
            journal_record_clear(&rec);
            if (journal_read(opts->store, rollout_id, &rec, &err) < 0) {
                fprintf(stderr, "baton: %s\n", err.msg);
                goto out;
            }
            bool driven = journal_probe_lock(opts->store, rollout_id, &err) == -EBUSY;
            if (rec.exit >= 0 || !driven || interrupt_count())
                break;
            usleep(200 * 1000);
        }
        printf("%s\n", rec.outcome ? rec.outcome : "the coordinator stopped without a summary");
        code = rec.exit >= 0 ? rec.exit : EXIT_NEEDS_CARE;
        goto out;
    }
    if (rec.exit == 0 || rec.exit == 2) {
        printf("baton: rollout %s has ended (exit %d): nothing to abort\n", rollout_id, rec.exit);
        code = EXIT_DONE;
        goto out;
    }
    /* No coordinator: undo what this rollout left unfinished, node by node. */
    rollout_file_t *rf = NULL;
    if (rollout_file_load(rec.file, &rf, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
        goto out;
    }
    struct rollout_opts o = *opts;
    o.only_rollout = rollout_id;
    code = rollout_rollback(rf, &o);
    rollout_file_destroy(&rf);
out:
    journal_record_clear(&rec);
    return code;
}

int history_undo(const char *rollout_id, const struct rollout_opts *opts)
{
    journal_record_t rec;
    baton_err_t err = {0};
    if (read_or_say(opts, rollout_id, &rec) < 0)
        return EXIT_REFUSED;
    rollout_file_t *rf = NULL;
    size_t n = json_array_size(rec.committed);
    const char **names = calloc(n ? n : 1, sizeof(*names));
    int code = EXIT_REFUSED;
    if (!names) {
        fprintf(stderr, "baton: out of memory\n");
    } else if (rollout_file_load(rec.file, &rf, &err) < 0) {
        fprintf(stderr, "baton: %s\n", err.msg);
    } else {
        for (size_t i = 0; i < n; i++) /* newest first */
            names[i] = json_string_value(json_array_get(rec.committed, n - 1 - i));
        code = rollout_undo(rf, opts, rollout_id, names, n);
    }
    rollout_file_destroy(&rf);
    free(names);
    journal_record_clear(&rec);
    return code;
}
