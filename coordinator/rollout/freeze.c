/* freeze: see freeze.h. */
#include "freeze.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "names.h"
#include "rollout.h"

void freeze_clear(freeze_t *f)
{
    free(f->reason);
    free(f->by);
    free(f->since);
    *f = (freeze_t){0};
}

const char *freeze_reason_problem(const char *reason)
{
    size_t n = strlen(reason);
    if (n == 0)
        return "is empty: say why (it is what other operators will read)";
    if (n > FREEZE_REASON_MAX)
        return "is longer than 1000 bytes";
    for (const unsigned char *p = (const unsigned char *)reason; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return "holds a control character (a newline, a tab or an escape)";
    json_t *probe = json_string(reason); /* NULL when not valid UTF-8 */
    json_decref(probe);
    return probe ? NULL : "is not valid UTF-8";
}

/* A record read back: hostile like any file (a hand edit, a newer baton, a damaged disk). */
static int parse_record(const char *service, const char *text, freeze_t *ret, baton_err_t *err)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    const char *reason = NULL, *by = NULL, *since = NULL;
    int r = 0;
    /* Every field is printed to other operators' terminals: checked as a reason is. */
    if (!o || strlen(text) > FREEZE_RECORD_MAX ||
        json_unpack(o, "{s:s, s:s, s:s}", "reason", &reason, "by", &by, "since", &since) ||
        freeze_reason_problem(reason) || freeze_reason_problem(by) ||
        freeze_reason_problem(since) || strlen(by) > FREEZE_BY_MAX || strlen(since) > 64)
        r = baton_err_set(err, -EBADMSG,
                          "the freeze record of %s cannot be read (%s); baton unfreeze %s "
                          "removes it",
                          service, o ? "a field is missing, or not what it should be" : je.text,
                          service);
    else if (!(ret->reason = strdup(reason)) || !(ret->by = strdup(by)) ||
             !(ret->since = strdup(since)))
        r = baton_err_set(err, -ENOMEM, "out of memory");
    json_decref(o);
    if (r < 0)
        freeze_clear(ret);
    return r;
}

int freeze_get(journal_store_t *s, const char *service, freeze_t *ret, baton_err_t *err)
{
    *ret = (freeze_t){0};
    char *text = NULL;
    int r = journal_freeze_get(s, service, &text, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return baton_err_prefix(err, "is %s frozen? (%s)", service, journal_store_where(s));
    r = parse_record(service, text, ret, err);
    free(text);
    return r < 0 ? r : 1;
}

int freeze_refusal(journal_store_t *s, const char *service, char **ret_why)
{
    freeze_t f;
    baton_err_t err = {0};
    *ret_why = NULL;
    int r = freeze_get(s, service, &f, &err);
    if (r > 0 &&
        asprintf(ret_why, "%s is frozen since %s by %s: %s (baton unfreeze %s lets it roll)",
                 service, f.since, f.by, f.reason, service) < 0)
        *ret_why = NULL;
    else if (r < 0 && asprintf(ret_why, "%s", err.msg) < 0)
        *ret_why = NULL;
    freeze_clear(&f);
    return r;
}

/* Who froze it: the user (and the one behind sudo) and the machine. */
static void who(char *buf, size_t size)
{
    const struct passwd *pw = getpwuid(geteuid());
    const char *user = pw ? pw->pw_name : "?", *sudo = getenv("SUDO_USER");
    char host[256] = "?";
    if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "?");
    if (sudo && *sudo && name_valid(sudo, NAME_MAX_LEN) && strcmp(sudo, user))
        snprintf(buf, size, "%s (sudo %s)@%s", sudo, user, host);
    else
        snprintf(buf, size, "%s@%s", user, host);
}

static void say_there(const char *service, const char *text)
{
    freeze_t f = {0};
    baton_err_t err = {0};
    if (text && parse_record(service, text, &f, &err) == 0)
        fprintf(stderr, "  frozen since %s by %s: %s\n", f.since, f.by, f.reason);
    else
        fprintf(stderr, "  %s\n",
                text ? err.msg : "(its record cannot be read, or was removed meanwhile)");
    freeze_clear(&f);
}

int freeze_command(journal_store_t *s, const char *service, const char *reason)
{
    if (!name_valid(service, NAME_MAX_LEN)) {
        fprintf(stderr, "baton: freeze: '%s' is not a service name\n", service);
        return EXIT_USAGE;
    }
    const char *problem = reason ? freeze_reason_problem(reason) : "is missing";
    if (problem) {
        fprintf(stderr, "baton: freeze: --reason %s; nothing was changed\n", problem);
        return EXIT_USAGE;
    }
    char by[FREEZE_BY_MAX + 1], since[32];
    who(by, sizeof(by));
    time_t now = time(NULL);
    struct tm tm;
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "service", service, "reason", reason, "by", by,
                          "since", since);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    char *there = NULL;
    baton_err_t err = {0};
    int r = text ? journal_freeze_put(s, service, text, &there, &err)
                 : baton_err_set(&err, -ENOMEM, "out of memory");
    int code = EXIT_DONE;
    if (r == -EEXIST) {
        fprintf(stderr,
                "baton: freeze: %s is frozen already; nothing was changed (baton unfreeze "
                "%s first, to give another reason)\n",
                service, service);
        say_there(service, there);
        code = EXIT_REFUSED;
    } else if (r < 0) {
        fprintf(stderr, "baton: freeze: %s; nothing was changed\n", err.msg);
        code = EXIT_REFUSED;
    } else {
        printf("baton: %s is frozen (%s, by %s): %s\n"
               "  its rollouts and resumes are refused, here and on every controller sharing %s,\n"
               "  until baton unfreeze %s; a rollout running now goes on (baton abort stops it)\n",
               service, since, by, reason, journal_store_where(s), service);
    }
    free(there);
    free(text);
    return code;
}

int unfreeze_command(journal_store_t *s, const char *service)
{
    if (!name_valid(service, NAME_MAX_LEN)) {
        fprintf(stderr, "baton: unfreeze: '%s' is not a service name\n", service);
        return EXIT_USAGE;
    }
    char *there = NULL;
    baton_err_t err = {0};
    int r = journal_freeze_del(s, service, &there, &err);
    if (r == -ENOENT) {
        printf("baton: %s was not frozen; nothing was changed\n", service);
        return EXIT_DONE;
    }
    if (r < 0) {
        fprintf(stderr, "baton: unfreeze: %s; nothing was changed\n", err.msg);
        free(there);
        return EXIT_REFUSED;
    }
    freeze_t f = {0};
    if (there && parse_record(service, there, &f, &err) == 0)
        printf("baton: %s is unfrozen (it was frozen since %s by %s: %s)\n", service, f.since, f.by,
               f.reason);
    else
        printf("baton: %s is unfrozen (its record could not be read, and is gone)\n", service);
    freeze_clear(&f);
    free(there);
    return EXIT_DONE;
}
