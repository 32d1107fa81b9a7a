/* thread: see thread.h. */
#include "thread.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

int agent_thread_start(agent_thread_t *t, void *zctx, const void *owner, void *(*fn)(void *),
                       void *arg, const char *what, baton_err_t *err)
{
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "inproc://baton-%s-%p", what, owner);
    t->main_end = zmq_socket(zctx, ZMQ_PAIR);
    t->thread_end = zmq_socket(zctx, ZMQ_PAIR);
    int linger = 0;
    if (!t->main_end || !t->thread_end ||
        zmq_setsockopt(t->main_end, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_setsockopt(t->thread_end, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_bind(t->main_end, endpoint) < 0 || zmq_connect(t->thread_end, endpoint) < 0) {
        int e = errno;
        agent_thread_stop(t);
        return baton_err_set(err, -e, "%s socket: %s", what, zmq_strerror(e));
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&t->thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        agent_thread_stop(t);
        return baton_err_set(err, -r, "%s thread: %s", what, strerror(r));
    }
    t->started = true;
    return 0;
}

void agent_thread_stop(agent_thread_t *t)
{
    if (t->started) {
        void *none = NULL;
        zmq_send(t->main_end, &none, sizeof(none), 0);
        pthread_join(t->thread, NULL);
        t->started = false;
    }
    if (t->main_end)
        zmq_close(t->main_end);
    if (t->thread_end)
        zmq_close(t->thread_end);
    t->main_end = t->thread_end = NULL;
}

void *agent_thread_next(agent_thread_t *t)
{
    for (;;) {
        void *job = NULL;
        int n = zmq_recv(t->thread_end, &job, sizeof(job), 0);
        if (n < 0 && errno == EINTR)
            continue;
        return n == sizeof(job) ? job : NULL;
    }
}
