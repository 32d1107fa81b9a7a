/* thread: one of the agent's threads beside its main loop (a service's worker, a front), and
 * the inproc PAIR between them. The main loop hands jobs over as pointers on `main_end`; the
 * thread reads them on `thread_end` and sends its answers back the same way; a NULL job tells
 * it to stop. Only the main loop touches the agent's ROUTER. */
#ifndef BATON_AGENT_THREAD_H
#define BATON_AGENT_THREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "err.h"

typedef struct agent_thread {
    void *main_end;   /* PAIR the main loop writes jobs to and reads answers from */
    void *thread_end; /* PAIR the thread reads jobs from and writes answers to */
    pthread_t thread; /* the thread */
    bool started;     /* it runs */
} agent_thread_t;

/* Makes the PAIR (named after `owner`, unique in the process) and starts fn(arg) with every
 * signal blocked (they are the main loop's). On failure nothing is left to stop. */
int agent_thread_start(agent_thread_t *t, void *zctx, const void *owner, void *(*fn)(void *),
                       void *arg, const char *what, baton_err_t *err);
/* Tells the thread to stop (after its current job), waits for it, closes the PAIR. */
void agent_thread_stop(agent_thread_t *t);
/* The thread's next job: a pointer sent by the main loop; NULL when told to stop or when the
 * context is going away. */
void *agent_thread_next(agent_thread_t *t);

#endif
