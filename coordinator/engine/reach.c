/* reach: see reach.h. */
#include "reach.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool reach_tcp(const char *endpoint, unsigned timeout_ms, char *why, size_t len)
{
    if (strncmp(endpoint, "tcp://", 6))
        return true;
    char host[256], port[16];
    const char *hp = endpoint + 6, *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof(host) || strlen(colon + 1) >= sizeof(port))
        return true;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
    snprintf(port, sizeof(port), "%s", colon + 1);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) {
        snprintf(why, len, "%s does not resolve (%s)", host, gai_strerror(g));
        return false;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        e = errno;
        if (e == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, (int)timeout_ms);
            socklen_t sl = sizeof(e);
            if (n == 0)
                e = ETIMEDOUT;
            else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                e = errno;
        }
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    if (e == 0)
        return true;
    if (e == ECONNREFUSED)
        snprintf(why, len,
                 "nothing listens at %s:%s (connection refused): is baton-agent "
                 "running there, on that port?",
                 host, port);
    else if (e == ETIMEDOUT)
        snprintf(why, len,
                 "%s:%s does not answer TCP within %u ms: the node is down, or a "
                 "firewall drops the port",
                 host, port, timeout_ms);
    else
        snprintf(why, len, "%s:%s cannot be reached (%s)", host, port, strerror(e));
    return false;
}
