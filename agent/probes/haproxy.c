/* haproxy: a server of an haproxy backend through its runtime API (haproxy.h). */
#include "haproxy.h"
#include "clock.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX (1024 * 1024) /* `show stat` of every server of a big haproxy fits */
#define STAT_COLUMNS_MAX 512

static int connect_api(const char *api, uint64_t timeout_ms, baton_err_t *err)
{
    struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
    if (api[0] == '/') {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(api) >= sizeof(sa.sun_path))
            return baton_err_set(err, -ENAMETOOLONG, "haproxy runtime API %s: path too long", api);
        memcpy(sa.sun_path, api, strlen(api) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return baton_err_set(err, -errno, "socket: %s", strerror(errno));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            /* EAGAIN: haproxy's backlog is full and stayed full for the timeout. */
            int e = errno == EAGAIN ? ETIMEDOUT : errno;
            int r = baton_err_set(err, -e, "haproxy runtime API %s: %s", api, strerror(e));
            close(fd);
            return r;
        }
        return fd;
    }
    /* host:port, [v6]:port */
    char host[256];
    const char *colon = strrchr(api, ':');
    size_t hl = colon ? (size_t)(colon - api) : 0;
    if (!colon || !hl || hl >= sizeof(host) || !colon[1])
        return baton_err_set(err, -EINVAL, "haproxy runtime API %s: not a path nor host:port", api);
    const char *h = api;
    if (h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res = NULL;
    int g = getaddrinfo(host, colon + 1, &hints, &res);
    if (g != 0)
        return baton_err_set(err, -EHOSTUNREACH, "haproxy runtime API %s: %s", api,
                             gai_strerror(g));
    int fd = -1, r = -EHOSTUNREACH;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        /* A blocking connect gives up after SO_SNDTIMEO on Linux: a host that is dark does not
         * hold the step for the kernel's two minutes. */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            r = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return baton_err_set(err, r, "haproxy runtime API %s: %s", api, strerror(-r));
    return fd;
}

int haproxy_command(const char *runtime_api, const char *command, uint64_t timeout_ms,
                    char **ret_answer, baton_err_t *err)
{
    *ret_answer = NULL;
    int fd = connect_api(runtime_api, timeout_ms, err);
    if (fd < 0)
        return fd;
    char line[512];
    int n = snprintf(line, sizeof(line), "%s\n", command);
    int r = 0;
    if (n < 0 || (size_t)n >= sizeof(line))
        r = baton_err_set(err, -E2BIG, "haproxy command too long");
    for (size_t off = 0; r == 0 && off < (size_t)n;) {
        ssize_t w = send(fd, line + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            r = baton_err_set(err, errno == EAGAIN ? -ETIMEDOUT : -errno,
                              "haproxy runtime API %s: send: %s", runtime_api,
                              strerror(errno == EAGAIN ? ETIMEDOUT : errno));
        else
            off += (size_t)w;
    }
    char *buf = NULL;
    size_t len = 0;
    /* One deadline for the whole answer: a peer that trickles a byte at a time does not hold
     * the step for longer than timeout_ms. */
    uint64_t deadline = mono_ms() + timeout_ms;
    while (r == 0) {
        char *grown = realloc(buf, len + 4097);
        if (!grown) {
            r = baton_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        buf = grown;
        uint64_t now = mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        ssize_t got = ready > 0 ? recv(fd, buf + len, 4096, MSG_DONTWAIT) : -1;
        if (got < 0 && (errno == EINTR || (ready > 0 && errno == EAGAIN)))
            continue;
        if (got < 0) {
            r = baton_err_set(err, ready <= 0 ? -ETIMEDOUT : -errno,
                              "haproxy runtime API %s: no whole answer to '%s' within %llu ms%s%s",
                              runtime_api, command, (unsigned long long)timeout_ms,
                              ready > 0 ? ": " : "", ready > 0 ? strerror(errno) : "");
            break;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len > ANSWER_MAX)
            r = baton_err_set(err, -E2BIG, "haproxy runtime API %s: answer over %d bytes",
                              runtime_api, ANSWER_MAX);
    }
    close(fd);
    if (r < 0) {
        free(buf);
        return r;
    }
    if (!buf && !(buf = malloc(1)))
        return baton_err_set(err, -ENOMEM, "out of memory");
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return baton_err_set(err, -EBADMSG, "haproxy runtime API %s: a NUL byte in the answer",
                             runtime_api);
    }
    *ret_answer = buf;
    return 0;
}

/* The next field of a CSV line (no quoting: haproxy writes none in these columns). */
static char *field(char **p)
{
    char *f = *p;
    if (!f)
        return NULL;
    char *c = strchr(f, ',');
    if (c) {
        *c = '\0';
        *p = c + 1;
    } else {
        *p = NULL;
    }
    return f;
}

static int parse_u64(const char *s, uint64_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return -1;
    *ret = v;
    return 0;
}

int haproxy_stat_parse(const char *csv, const char *backend, const char *server,
                       haproxy_server_stat_t *ret, baton_err_t *err)
{
    memset(ret, 0, sizeof(*ret));
    if (strncmp(csv, "# ", 2))
        return baton_err_set(err, -EBADMSG, "haproxy: not the CSV of show stat: %.80s", csv);
    char *copy = strdup(csv + 2);
    if (!copy)
        return baton_err_set(err, -ENOMEM, "out of memory");
    enum { PX, SV, QCUR, SCUR, STATUS, NCOL };
    static const char *const names[NCOL] = {"pxname", "svname", "qcur", "scur", "status"};
    int col[NCOL] = {-1, -1, -1, -1, -1}, last = 0, r = -ENOENT;
    char *save = NULL, *line = strtok_r(copy, "\n", &save);
    char *p = line;
    for (int i = 0; p && i < STAT_COLUMNS_MAX; i++) {
        char *f = field(&p);
        for (int k = 0; k < NCOL; k++)
            if (!strcmp(f, names[k]) && col[k] < 0) {
                col[k] = i;
                last = i > last ? i : last;
            }
    }
    for (int k = 0; k < NCOL; k++)
        if (col[k] < 0) {
            r = baton_err_set(err, -EBADMSG, "haproxy: show stat has no column %s", names[k]);
            goto out;
        }
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *v[NCOL] = {0};
        p = line;
        for (int i = 0; p && i <= last; i++) {
            char *f = field(&p);
            for (int k = 0; k < NCOL; k++)
                if (col[k] == i)
                    v[k] = f;
        }
        bool whole = true;
        for (int k = 0; k < NCOL; k++)
            whole = whole && v[k];
        if (!whole || strcmp(v[PX], backend) || strcmp(v[SV], server))
            continue; /* a line cut short is no server's */
        if (parse_u64(v[QCUR], &ret->queued) < 0 || parse_u64(v[SCUR], &ret->sessions) < 0 ||
            strlen(v[STATUS]) >= sizeof(ret->status)) {
            r = baton_err_set(err, -EBADMSG,
                              "haproxy: %s/%s: a line of show stat that does not "
                              "read (qcur '%s', scur '%s')",
                              backend, server, v[QCUR], v[SCUR]);
            goto out;
        }
        snprintf(ret->status, sizeof(ret->status), "%s", v[STATUS]);
        r = 0;
        goto out;
    }
    r = baton_err_set(err, -ENOENT, "haproxy has no server %s/%s", backend, server);
out:
    free(copy);
    return r;
}

bool haproxy_status_up(const char *status)
{
    /* "UP 1/3" is going down (a check failed); "no check": none configured, haproxy sends it
     * traffic as it is. */
    return !strcmp(status, "UP") || !strcmp(status, "no check");
}

#define COMMAND_TIMEOUT_MS 5000

int haproxy_set_state(const haproxy_target_t *t, const char *state, baton_err_t *err)
{
    char cmd[300], *answer = NULL;
    snprintf(cmd, sizeof(cmd), "set server %s/%s state %s", t->backend, t->server, state);
    int r = haproxy_command(t->runtime_api, cmd, COMMAND_TIMEOUT_MS, &answer, err);
    if (r < 0)
        return r;
    /* Success is an empty answer; anything else is haproxy's refusal, in its words. */
    size_t n = strlen(answer);
    while (n && (answer[n - 1] == '\n' || answer[n - 1] == ' '))
        answer[--n] = '\0';
    if (n)
        r = baton_err_set(err, -EREMOTEIO, "haproxy (%s): %s: %.200s", t->runtime_api, cmd, answer);
    free(answer);
    return r;
}

int haproxy_server_stat(const haproxy_target_t *t, haproxy_server_stat_t *ret, baton_err_t *err)
{
    char *answer = NULL;
    /* -1 4 -1: every backend's servers (by name is not in every haproxy), filtered here. */
    int r = haproxy_command(t->runtime_api, "show stat -1 4 -1", COMMAND_TIMEOUT_MS, &answer, err);
    if (r == 0)
        r = haproxy_stat_parse(answer, t->backend, t->server, ret, err);
    free(answer);
    return r;
}
