/* unit: see unit.h. */
#include "unit.h"

#include <systemd/sd-journal.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

int unit_bus_open(sd_bus **ret_bus, baton_err_t *err)
{
    sd_bus *bus = NULL;
    int r;
    if (geteuid() == 0 && access("/run/systemd/private", F_OK) == 0) {
        if ((r = sd_bus_new(&bus)) < 0 ||
            (r = sd_bus_set_address(bus, "unix:path=/run/systemd/private")) < 0 ||
            (r = sd_bus_start(bus)) < 0) {
            sd_bus_unref(bus);
            return baton_err_set(err, r, "connect to systemd (/run/systemd/private): %s",
                                 strerror(-r));
        }
    } else if ((r = sd_bus_open_system(&bus)) < 0) {
        return baton_err_set(err, r, "connect to the system bus: %s", strerror(-r));
    }
    *ret_bus = bus;
    return 0;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct job_wait {
    const char *path; /* the job we wait for */
    char *result;     /* its result once JobRemoved arrived */
};

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    (void)ret_error;
    struct job_wait *w = userdata;
    uint32_t id;
    const char *path, *unit, *result;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
        return 0;
    if (w->path && !strcmp(path, w->path) && !w->result)
        w->result = strdup(result);
    return 0;
}

/* The object path of `unit` (the caller's). GetUnit fails for units not loaded; LoadUnit loads
 * them so that LoadState can say "not-found" instead of an error. */
static int unit_path(sd_bus *bus, const char *unit, char **ret_path, baton_err_t *err)
{
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    const char *obj = NULL;
    int r =
        sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", &e, &reply, "s", unit);
    if (r < 0)
        r = baton_err_set(err, r, "load %s: %s", unit, e.message ? e.message : strerror(-r));
    else if ((r = sd_bus_message_read(reply, "o", &obj)) < 0 || !(*ret_path = strdup(obj)))
        r = baton_err_set(err, r < 0 ? r : -ENOMEM, "load %s: bad reply", unit);
    else
        r = 0;
    sd_bus_message_unref(reply);
    sd_bus_error_free(&e);
    return r;
}

int unit_daemon_reload(sd_bus *bus, baton_err_t *err)
{
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Reload", &e, NULL, "");
    if (r < 0)
        r = baton_err_set(err, r, "daemon-reload: %s", e.message ? e.message : strerror(-r));
    sd_bus_error_free(&e);
    return r < 0 ? r : 0;
}

/* One property of the unit's object: a string (type 's': *(char **)ret, the caller's to free)
 * or a trivial type (a uint32_t for 'u'); *ret is written only on success. */
static int read_property(sd_bus *bus, const char *unit, const char *iface, const char *property,
                         char type, void *ret, baton_err_t *err)
{
    sd_bus_error e = SD_BUS_ERROR_NULL;
    char *path = NULL;
    int r = unit_path(bus, unit, &path, err);
    if (r < 0)
        goto out;
    char ifname[128];
    snprintf(ifname, sizeof(ifname), "org.freedesktop.systemd1.%s", iface);
    r = type == 's'
            ? sd_bus_get_property_string(bus, SD_DEST, path, ifname, property, &e, (char **)ret)
            : sd_bus_get_property_trivial(bus, SD_DEST, path, ifname, property, &e, type, ret);
    if (r < 0)
        r = baton_err_set(err, r, "read %s of %s: %s", property, unit,
                          e.message ? e.message : strerror(-r));
    else
        r = 0;
out:
    free(path);
    sd_bus_error_free(&e);
    return r;
}

int unit_property(sd_bus *bus, const char *unit, const char *iface, const char *property,
                  char **ret, baton_err_t *err)
{
    return read_property(bus, unit, iface, property, 's', ret, err);
}

int unit_property_u32(sd_bus *bus, const char *unit, const char *iface, const char *property,
                      uint32_t *ret, baton_err_t *err)
{
    return read_property(bus, unit, iface, property, 'u', ret, err);
}

void unit_why_failed(sd_bus *bus, const char *unit, char *buf, size_t len)
{
    char *result = NULL, *path = NULL;
    if (unit_property(bus, unit, "Service", "Result", &result, NULL) < 0) {
        snprintf(buf, len, "?");
        return;
    }
    /* How the main process ended (si_code and si_status of its SIGCHLD, as systemd kept
     * them): which signal, or which exit status; 203 is systemd's own "could not execute",
     * which the service never logs. */
    int32_t code = 0, status = 0;
    if (unit_path(bus, unit, &path, NULL) < 0 ||
        sd_bus_get_property_trivial(bus, SD_DEST, path, "org.freedesktop.systemd1.Service",
                                    "ExecMainCode", NULL, 'i', &code) < 0 ||
        sd_bus_get_property_trivial(bus, SD_DEST, path, "org.freedesktop.systemd1.Service",
                                    "ExecMainStatus", NULL, 'i', &status) < 0)
        code = 0;
    /* Only where the Result is about the process: after a clean stop systemd keeps "killed by
     * SIGTERM" too, and "success" must stay "success". */
    bool by_signal = !strcmp(result, "signal") || !strcmp(result, "core-dump");
    const char *sig = by_signal && code >= CLD_KILLED && status > 0 ? sigabbrev_np(status) : NULL;
    if (sig)
        snprintf(buf, len, "%s (killed by SIG%s%s)", result, sig,
                 code == CLD_DUMPED ? ", core dumped" : "");
    else if (!strcmp(result, "exit-code") && code == CLD_EXITED && status)
        snprintf(buf, len, "%s (status %d%s)", result, status,
                 status == 203 ? ": systemd could not execute the binary" : "");
    else
        snprintf(buf, len, "%s", result);
    free(path);
    free(result);
}

/* Makes `s` printable UTF-8 in place: control characters become spaces, a byte that starts no
 * whole UTF-8 sequence (a message cut at a buffer's end, or in another encoding) becomes '?'.
 * The lines travel in protobuf strings and JSON, which take UTF-8 only. */
static void printable_utf8(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xe0) == 0xc0 ? 2
                   : (*p & 0xf0) == 0xe0 ? 3
                   : (*p & 0xf8) == 0xf0 ? 4
                                         : 0;
        bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3) /* no overlong forms, no surrogates */
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        if (n == 1 && *p < 0x20)
            *p = ' ';
        p += n;
    }
}

/* One journal entry as `systemctl status` prints it, without the date and host. */
static char *entry_line(sd_journal *j)
{
    const void *d;
    size_t l;
    char ident[64] = "", pid[16] = "", msg[512] = "";
    struct {
        const char *field;
        char *buf;
        size_t len;
    } want[] = {{"SYSLOG_IDENTIFIER=", ident, sizeof(ident)},
                {"_PID=", pid, sizeof(pid)},
                {"MESSAGE=", msg, sizeof(msg)}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t fl = strlen(want[i].field);
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(fl - 1), want[i].field);
        if (sd_journal_get_data(j, name, &d, &l) >= 0 && l > fl)
            snprintf(want[i].buf, want[i].len, "%.*s", (int)(l - fl), (const char *)d + fl);
    }
    /* Control characters (a colour code, a carriage return) are no business of a report. */
    printable_utf8(ident);
    printable_utf8(msg);
    uint64_t usec = 0;
    sd_journal_get_realtime_usec(j, &usec);
    time_t t = (time_t)(usec / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    char *line = NULL;
    if (asprintf(&line, "%02d:%02d:%02d %s[%s]: %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
                 *ident ? ident : "?", *pid ? pid : "?", msg) < 0)
        return NULL;
    return line;
}

uint64_t realtime_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int unit_journal_tail(sd_bus *bus, const char *unit, uint64_t since_usec, size_t max,
                      char ***ret_lines, size_t *ret_n)
{
    enum { HEAD = 3 };
    *ret_lines = NULL;
    *ret_n = 0;
    if (max < HEAD + 2)
        return 0;
    /* Since baton started it (a unit that restarts itself leaves "inactive" again and again),
     * else since it last left "inactive". */
    char *path = NULL;
    uint64_t since = since_usec;
    if (!since && unit_path(bus, unit, &path, NULL) == 0)
        sd_bus_get_property_trivial(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
                                    "InactiveExitTimestamp", NULL, 't', &since);
    free(path);
    sd_journal *j = NULL;
    if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM) < 0)
        return 0;
    char m1[300], m2[300];
    snprintf(m1, sizeof(m1), "_SYSTEMD_UNIT=%s", unit);
    snprintf(m2, sizeof(m2), "UNIT=%s", unit);
    /* The first lines since the start (where a bad flag or config says so, before a usage
     * text) and the last ones (where a crash says so): a ring of the last `max`. */
    char *head[HEAD] = {0}, **ring = calloc(max, sizeof(char *));
    size_t count = 0;
    bool ok = ring && sd_journal_add_match(j, m1, 0) >= 0 && sd_journal_add_disjunction(j) >= 0 &&
              sd_journal_add_match(j, m2, 0) >= 0 && sd_journal_add_match(j, "_PID=1", 0) >= 0;
    if (ok && since)
        ok = sd_journal_seek_realtime_usec(j, since) >= 0;
    else if (ok) { /* no start known: the last `max` lines (next() below reads the first) */
        int k = sd_journal_seek_tail(j) >= 0 ? sd_journal_previous_skip(j, max + 1) : -1;
        ok = k >= 0 && ((size_t)k == max + 1 || sd_journal_seek_head(j) >= 0);
    }
    /* journald takes a moment to write what a process printed just before it died: read to
     * the end, then wait for more until it is quiet for 300 ms (2 s at most). */
    uint64_t deadline = now_usec() + 2000000;
    while (ok && count < 100000) {
        int r = sd_journal_next(j);
        if (r > 0) {
            char *line = entry_line(j);
            if (!line)
                break;
            if (count < HEAD)
                head[count] = strdup(line);
            free(ring[count % max]);
            ring[count % max] = line;
            count++;
            continue;
        }
        if (r < 0 || now_usec() >= deadline)
            break;
        int w = sd_journal_wait(j, 300000);
        if (w < 0 || (w == SD_JOURNAL_NOP && count > 0))
            break;
    }
    sd_journal_close(j);
    char **lines = count ? calloc(max, sizeof(char *)) : NULL;
    size_t n = 0;
    if (lines && count <= max) {
        for (size_t i = 0; i < count; i++)
            lines[n++] = ring[i], ring[i] = NULL;
    } else if (lines) {
        size_t tail = max - HEAD - 1;
        for (size_t i = 0; i < HEAD; i++)
            if (head[i])
                lines[n++] = head[i], head[i] = NULL;
        if (asprintf(&lines[n], "... (%zu lines) ...", count - HEAD - tail) >= 0)
            n++;
        for (size_t i = count - tail; i < count; i++)
            lines[n++] = ring[i % max], ring[i % max] = NULL;
    }
    for (size_t i = 0; ring && i < max; i++)
        free(ring[i]);
    for (size_t i = 0; i < HEAD; i++)
        free(head[i]);
    free(ring);
    if (!n) {
        free(lines);
        lines = NULL;
    }
    *ret_lines = lines;
    *ret_n = n;
    return 0;
}

static int run_job(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_ms,
                   void (*tick)(void *), void *userdata, baton_err_t *err)
{
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    sd_bus_slot *slot = NULL;
    char *job = NULL, *state = NULL;
    const char *verb = !strcmp(method, "StartUnit") ? "start" : "stop";
    struct job_wait w = {0};

    /* Match first, so that a job finishing at once is not missed. Subscribe() is cheap
     * insurance: without it older managers do not emit JobRemoved to us. */
    int r = sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
    if (r < 0) {
        r = baton_err_set(err, r, "%s of %s: add match: %s", verb, unit, strerror(-r));
        goto out;
    }
    sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, "");

    /* A start baton decided on (a rollback after a failed start, say) must not be refused by
     * the start rate limit meant for crash loops: clear it, as `systemctl reset-failed` does.
     * It fails harmlessly when the unit is not failed. */
    if (!strcmp(method, "StartUnit"))
        sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", NULL, NULL, "s",
                           unit);
    r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply, "ss", unit,
                           "replace");
    if (r < 0) {
        r = baton_err_set(err, r, "%s of %s: %s", verb, unit, e.message ? e.message : strerror(-r));
        goto out;
    }
    const char *path = NULL;
    if ((r = sd_bus_message_read(reply, "o", &path)) < 0 || !(job = strdup(path))) {
        r = baton_err_set(err, r < 0 ? r : -ENOMEM, "%s of %s: bad reply", verb, unit);
        goto out;
    }
    w.path = job;

    uint64_t deadline = now_usec() + timeout_ms * 1000;
    while (!w.result) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            r = baton_err_set(err, r, "%s of %s: bus: %s", verb, unit, strerror(-r));
            goto out;
        }
        if (r > 0)
            continue;
        uint64_t now = now_usec();
        if (now >= deadline) {
            r = baton_err_set(err, -ETIMEDOUT, "%s of %s: no result after %llu s", verb, unit,
                              (unsigned long long)(timeout_ms / 1000));
            goto out;
        }
        uint64_t wait = deadline - now;
        if (wait > 1000000)
            wait = 1000000; /* wake at least once a second for the watchdog */
        r = sd_bus_wait(bus, wait);
        if (r < 0 && r != -EINTR) {
            r = baton_err_set(err, r, "%s of %s: bus: %s", verb, unit, strerror(-r));
            goto out;
        }
        if (tick)
            tick(userdata);
    }
    if (strcmp(w.result, "done")) {
        /* The job failed: the unit's own Result says why (exit-code, signal, timeout...). */
        char why[160];
        unit_why_failed(bus, unit, why, sizeof(why));
        if (strcmp(why, "success") && strcmp(why, "?"))
            r = baton_err_set(err, -EIO, "%s of %s failed: %s", verb, unit, why);
        else
            r = baton_err_set(err, -EIO, "%s of %s failed: job %s", verb, unit, w.result);
        goto out;
    }
    if ((r = unit_property(bus, unit, "Unit", "ActiveState", &state, err)) < 0)
        goto out;
    bool want_active = !strcmp(method, "StartUnit");
    r = 0;
    if (want_active ? strcmp(state, "active") : !strcmp(state, "active"))
        r = baton_err_set(err, -EIO, "%s of %s: unit is %s afterwards", verb, unit, state);
out:
    /* The match goes first: its callback writes into w. */
    sd_bus_slot_unref(slot);
    free(w.result);
    free(job);
    free(state);
    sd_bus_message_unref(reply);
    sd_bus_error_free(&e);
    return r;
}

int unit_start(sd_bus *bus, const char *unit, uint64_t timeout_ms, void (*tick)(void *),
               void *userdata, baton_err_t *err)
{
    return run_job(bus, "StartUnit", unit, timeout_ms, tick, userdata, err);
}

int unit_stop(sd_bus *bus, const char *unit, uint64_t timeout_ms, void (*tick)(void *),
              void *userdata, baton_err_t *err)
{
    return run_job(bus, "StopUnit", unit, timeout_ms, tick, userdata, err);
}

int unit_check_loaded(sd_bus *bus, const char *unit, char **ret_active, baton_err_t *err)
{
    char *load = NULL;
    int r = unit_property(bus, unit, "Unit", "LoadState", &load, err);
    if (r < 0)
        return r;
    if (strcmp(load, "loaded"))
        r = baton_err_set(err, -ENOENT, "unit %s not found (LoadState %s)", unit, load);
    else
        r = unit_property(bus, unit, "Unit", "ActiveState", ret_active, err);
    free(load);
    return r;
}
