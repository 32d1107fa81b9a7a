/* webhook: see webhook.h. */
#include "webhook.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "http_post.h"
#include "interrupt.h"

/* `at:`'s names, in the order a rollout reaches them. */
static const struct {
    unsigned bit;
    const char *name;
} at_names[] = {
    {WEBHOOK_BEFORE_ROLLOUT, "before_rollout"},
    {WEBHOOK_BEFORE_BATCH, "before_batch"},
    {WEBHOOK_BEFORE_COMMIT, "before_commit"},
};

unsigned webhook_at_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(at_names) / sizeof(at_names[0]); i++)
        if (!strcmp(name, at_names[i].name))
            return at_names[i].bit;
    return 0;
}

const char *webhook_at_name(unsigned at)
{
    for (size_t i = 0; i < sizeof(at_names) / sizeof(at_names[0]); i++)
        if (at == at_names[i].bit)
            return at_names[i].name;
    return "?";
}

const char *webhook_at_names(void)
{
    return "before_rollout, before_batch, before_commit";
}

static bool interrupted(void)
{
    return interrupt_count() > 0;
}

static bool interrupted_cb(void *unused)
{
    (void)unused;
    return interrupted();
}

/* Sleeps `ms`, a tenth of a second at a time: false when Ctrl-C came meanwhile. */
static bool pause_ms(uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 100) {
        if (interrupted())
            return false;
        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000L}, NULL);
    }
    return !interrupted();
}

int webhook_gate(const webhook_t *hooks, size_t n, unsigned at, json_t *state, char **ret_why)
{
    *ret_why = NULL;
    char *body = NULL;
    CURL *c = NULL;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const webhook_t *h = &hooks[i];
        if (!(h->at & at))
            continue;
        if (!body && !(body = json_dumps(state, JSON_COMPACT))) {
            r = -1;
            *ret_why = strdup("webhook: out of memory");
            break;
        }
        if (!c) {
            /* The coordinator is single-threaded here, and notify.c's thread, when there is
             * one, initialized libcurl before it started. */
            curl_global_init(CURL_GLOBAL_DEFAULT);
            if (!(c = curl_easy_init())) {
                r = -1;
                *ret_why = strdup("webhook: libcurl cannot start");
                break;
            }
        }
        char error[160] = "";
        unsigned tries = 0;
        bool ok = false;
        while (!ok && tries <= h->retries) {
            if (tries && !pause_ms(1000ull << (tries - 1 > 3 ? 3 : tries - 1)))
                break;
            tries++;
            ok = http_post_json(c, h->url, body, h->timeout_ms, interrupted_cb, NULL, error,
                                sizeof(error)) == 0;
            if (interrupted())
                break;
        }
        if (!ok) {
            r = -1;
            char where[48] = "before the rollout";
            if (at == WEBHOOK_BEFORE_COMMIT)
                snprintf(where, sizeof(where), "before the commit");
            else if (at == WEBHOOK_BEFORE_BATCH)
                snprintf(where, sizeof(where), "before batch %lld",
                         (long long)json_integer_value(json_object_get(state, "batch")));
            char origin[160];
            http_post_url_origin(h->url, origin, sizeof(origin));
            if (asprintf(ret_why, "webhook %s %s: %s after %u tr%s", origin, where,
                         interrupted() ? "interrupted" : error, tries,
                         tries == 1 ? "y" : "ies") < 0)
                *ret_why = NULL;
        }
    }
    if (c)
        curl_easy_cleanup(c);
    free(body);
    return r;
}
