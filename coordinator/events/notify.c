/* notify: see notify.h. */
#include "notify.h"
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "http_post.h"

#define NOTIFY_TRIES 6
#define NOTIFY_TRY_MS 5000
#define NOTIFY_QUEUE_MAX 10000 /* per target: beyond, new events are dropped (said once) */

static const struct {
    const char *name;
    unsigned bit;
} kinds[] = {
    {"started", NOTIFY_STARTED},         {"paused", NOTIFY_PAUSED},
    {"node_failed", NOTIFY_NODE_FAILED}, {"rolled_back", NOTIFY_ROLLED_BACK},
    {"halted", NOTIFY_HALTED},           {"finished", NOTIFY_FINISHED},
};

unsigned notify_kind_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kinds[i].name, name))
            return kinds[i].bit;
    return 0;
}

const char *notify_kind_names(void)
{
    return "started, paused, node_failed, rolled_back, halted, finished";
}

static const char *str(json_t *e, const char *key)
{
    const char *s = json_string_value(json_object_get(e, key));
    return s ? s : "";
}

unsigned notify_kind_of(json_t *e)
{
    const char *ev = str(e, "event");
    if (!strcmp(ev, "start"))
        return NOTIFY_STARTED;
    if (!strcmp(ev, "paused"))
        return NOTIFY_PAUSED;
    if (!strcmp(ev, "step") && json_is_false(json_object_get(e, "ok")))
        return NOTIFY_NODE_FAILED;
    if (!strcmp(ev, "rollback"))
        return NOTIFY_ROLLED_BACK;
    if (!strcmp(ev, "halt"))
        return NOTIFY_HALTED;
    if (!strcmp(ev, "summary"))
        return NOTIFY_FINISHED;
    return 0;
}

char *notify_sentence(json_t *e, const char *service)
{
    char *s = NULL;
    const char *id = str(e, "rollout"), *node = str(e, "node"), *msg = str(e, "message");
    int n = -1;
    switch (notify_kind_of(e)) {
    case NOTIFY_STARTED:
        n = asprintf(&s, "baton: rollout %s %s: %s -> %s on %zu nodes", id,
                     json_is_true(json_object_get(e, "resumed")) ? "resumed" : "started", service,
                     str(e, "version"), json_array_size(json_object_get(e, "nodes")));
        break;
    case NOTIFY_PAUSED:
        n = asprintf(&s, "baton: rollout %s of %s paused %s batch %lld of %lld: %s", id, service,
                     json_object_get(e, "node") ? "in" : "after",
                     json_integer_value(json_object_get(e, "batch")),
                     json_integer_value(json_object_get(e, "of")), msg);
        break;
    case NOTIFY_NODE_FAILED:
        n = asprintf(&s, "baton: rollout %s of %s: %s FAILED at %s: %s", id, service, node,
                     str(e, "step"), msg);
        break;
    case NOTIFY_ROLLED_BACK:
        n = json_is_true(json_object_get(e, "ok"))
                ? asprintf(&s, "baton: rollout %s of %s: %s rolled back: %s", id, service, node,
                           msg)
                : asprintf(&s, "baton: rollout %s of %s: %s ROLLBACK FAILED (needs attention): %s",
                           id, service, node, msg);
        break;
    case NOTIFY_HALTED:
        n = asprintf(&s, "baton: rollout %s of %s halted: %s", id, service, msg);
        break;
    case NOTIFY_FINISHED:
        n = asprintf(&s, "baton: rollout %s of %s ended (exit %lld): %s", id, service,
                     json_integer_value(json_object_get(e, "exit")), msg);
        break;
    }
    return n < 0 ? NULL : s;
}

struct item {
    struct item *next;
    char *body;
    char what[16];   /* the event's name, for a message */
    unsigned tries;  /* made so far */
    uint64_t due_ms; /* not tried again before */
};

struct notifier;

/* One target: its queue and its own sending thread, so that a target that never answers holds
 * only its own events. Everything but `t` and `origin` is under the notifier's lock. */
struct queue {
    struct notifier *nt;
    notify_target_t t;
    char origin[160]; /* scheme://host:port: what messages name (a URL may hold a token) */
    pthread_t thread;
    bool started;
    struct item *head, *tail;
    size_t len;
    size_t given_up; /* events tried NOTIFY_TRIES times */
    size_t refused;  /* events not queued (the queue full, or out of memory) */
    char error[160]; /* the last failure */
};

struct notifier {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    _Atomic uint64_t stop_by_ms; /* 0 until stopping; read by a try in flight, unlocked */
    char *service;
    struct queue q[NOTIFY_TARGETS_MAX];
    size_t n;
};

static void pop(struct queue *q)
{
    struct item *it = q->head;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    q->len--;
    free(it->body);
    free(it);
}

/* A try in flight ends when the grace after the rollout is over. */
static bool past_grace(void *userdata)
{
    struct notifier *nt = userdata;
    uint64_t by = atomic_load(&nt->stop_by_ms);
    return by && mono_ms() >= by;
}

static void *sender(void *arg)
{
    struct queue *q = arg;
    struct notifier *nt = q->nt;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&nt->mu);
    for (;;) {
        uint64_t now = mono_ms(), stop_by = atomic_load(&nt->stop_by_ms);
        if (nt->stopping && (now >= stop_by || !q->head))
            break;
        struct item *it = q->head;
        if (!it || it->due_ms > now) {
            uint64_t wake = it ? it->due_ms : UINT64_MAX;
            if (nt->stopping && stop_by < wake)
                wake = stop_by;
            if (wake == UINT64_MAX) {
                pthread_cond_wait(&nt->cond, &nt->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000000ull;
                ts.tv_sec += (time_t)(ns / 1000000000ull);
                ts.tv_nsec = (long)(ns % 1000000000ull);
                pthread_cond_timedwait(&nt->cond, &nt->mu, &ts);
            }
            continue;
        }
        /* Only this thread removes this queue's items: its head stays valid unlocked. */
        char error[sizeof(q->error)];
        pthread_mutex_unlock(&nt->mu);
        int r = c ? http_post_json(c, q->t.url, it->body, NOTIFY_TRY_MS, past_grace, nt, error,
                                   sizeof(error))
                  : (snprintf(error, sizeof(error), "libcurl: cannot start"), -1);
        pthread_mutex_lock(&nt->mu);
        if (r == 0) {
            pop(q);
            continue;
        }
        snprintf(q->error, sizeof(q->error), "%s",
                 past_grace(nt) ? "no answer before the rollout's end plus its grace" : error);
        if (++it->tries >= NOTIFY_TRIES) {
            fprintf(stderr, "baton: notify %s: gave up on the %s event after %u tries: %s\n",
                    q->origin, it->what, it->tries, error);
            q->given_up++;
            pop(q);
            continue;
        }
        uint64_t backoff = 500ull << (it->tries - 1);
        it->due_ms = mono_ms() + (backoff > 8000 ? 8000 : backoff);
    }
    if (q->len)
        fprintf(stderr, "baton: notify %s: %zu event%s not delivered (%s)\n", q->origin, q->len,
                q->len == 1 ? "" : "s", *q->error ? q->error : "the rollout ended first");
    pthread_mutex_unlock(&nt->mu);
    if (c)
        curl_easy_cleanup(c);
    return NULL;
}

int notifier_new(const notify_target_t *targets, size_t n, const char *service, notifier_t **ret,
                 baton_err_t *err)
{
    *ret = NULL;
    if (n > NOTIFY_TARGETS_MAX)
        return baton_err_set(err, -E2BIG, "notify: more than %d targets", NOTIFY_TARGETS_MAX);
    struct notifier *nt = calloc(1, sizeof(*nt));
    if (!nt || !(nt->service = strdup(service))) {
        free(nt);
        return baton_err_set(err, -ENOMEM, "out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&nt->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&nt->mu, NULL);
    for (size_t i = 0; i < n; i++) {
        struct queue *q = &nt->q[i];
        q->nt = nt;
        q->t = targets[i];
        http_post_url_origin(targets[i].url, q->origin, sizeof(q->origin));
        nt->n = i + 1;
        if (!(q->t.url = strdup(targets[i].url))) {
            notifier_destroy(&nt);
            return baton_err_set(err, -ENOMEM, "out of memory");
        }
    }
    /* Before the threads: curl_global_init is not thread-safe. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        notifier_destroy(&nt);
        return baton_err_set(err, -EIO, "notify: libcurl cannot start");
    }
    for (size_t i = 0; i < n; i++) {
        int r = pthread_create(&nt->q[i].thread, NULL, sender, &nt->q[i]);
        if (r) {
            notifier_destroy(&nt);
            return baton_err_set(err, -r, "notify: start its thread: %s", strerror(r));
        }
        nt->q[i].started = true;
    }
    *ret = nt;
    return 0;
}

/* Slack reads <…> as links and mentions (<!channel>) and & as an entity: escaped as it asks. */
char *notify_slack_escape(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
    char *out = malloc(n + 1), *o = out;
    for (const char *p = text; out && *p; p++)
        o = *p == '&'   ? stpcpy(o, "&amp;")
            : *p == '<' ? stpcpy(o, "&lt;")
            : *p == '>' ? stpcpy(o, "&gt;")
                        : (*o = *p, o + 1);
    if (out)
        *o = '\0';
    return out;
}

void notifier_event(notifier_t *nt, json_t *e)
{
    unsigned kind = nt ? notify_kind_of(e) : 0;
    if (!kind)
        return;
    char *json = NULL, *text = NULL;
    pthread_mutex_lock(&nt->mu);
    for (size_t i = 0; i < nt->n; i++) {
        struct queue *q = &nt->q[i];
        if (!(q->t.on & kind))
            continue;
        char *body = NULL;
        if (q->t.format == NOTIFY_SLACK) {
            if (!text) {
                char *plain = notify_sentence(e, nt->service);
                text = plain ? notify_slack_escape(plain) : NULL;
                free(plain);
            }
            json_t *o = text ? json_pack("{s:s}", "text", text) : NULL;
            body = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
        } else {
            if (!json)
                json = json_dumps(e, JSON_COMPACT);
            body = json ? strdup(json) : NULL;
        }
        /* A full queue (a receiver away for thousands of events) takes no more: the head may
         * be in flight, so nothing queued is freed here. */
        struct item *it = body && q->len < NOTIFY_QUEUE_MAX ? calloc(1, sizeof(*it)) : NULL;
        if (!it) {
            if (!q->refused++)
                fprintf(stderr, "baton: notify %s: events dropped (%s)\n", q->origin,
                        body ? "10,000 waiting already" : "out of memory");
            free(body);
            continue;
        }
        it->body = body;
        snprintf(it->what, sizeof(it->what), "%s", str(e, "event"));
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
        q->len++;
    }
    pthread_cond_broadcast(&nt->cond);
    pthread_mutex_unlock(&nt->mu);
    free(json);
    free(text);
}

void notifier_destroy(notifier_t **nt_p)
{
    if (!nt_p || !*nt_p)
        return;
    struct notifier *nt = *nt_p;
    pthread_mutex_lock(&nt->mu);
    nt->stopping = true;
    atomic_store(&nt->stop_by_ms, mono_ms() + NOTIFY_GRACE_MS);
    pthread_cond_broadcast(&nt->cond);
    pthread_mutex_unlock(&nt->mu);
    for (size_t i = 0; i < nt->n; i++)
        if (nt->q[i].started)
            pthread_join(nt->q[i].thread, NULL);
    for (size_t i = 0; i < nt->n; i++) {
        while (nt->q[i].head)
            pop(&nt->q[i]);
        free(nt->q[i].t.url);
    }
    pthread_cond_destroy(&nt->cond);
    pthread_mutex_destroy(&nt->mu);
    free(nt->service);
    free(nt);
    *nt_p = NULL;
}
