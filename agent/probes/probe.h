/* probe: one health probe of a service (an HTTP GET or a TCP connect), and the schedule the
 * verify step probes by. */
#ifndef BATON_PROBE_H
#define BATON_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PROBE_TIMEOUT_MS 2000

/* Pauses between probes while the service is not healthy yet (probe_next_pause): while the
 * port refuses (the kernel answers, the service never sees it), and the first one after an
 * answer that is not healthy yet (doubling from there; 20 ms after a refused probe, as it
 * doubles the last pause). */
#define PROBE_REFUSED_PAUSE_MS 10
#define PROBE_FIRST_PAUSE_MS 10

/* One probe of svc's health check (health_http if set, else health_tcp). 0: healthy;
 * -ECONNREFUSED: the host refused the connection (nothing listens there yet); another negative
 * errno: anything else (an answer that is not 2xx, none in PROBE_TIMEOUT_MS, a host that cannot
 * be reached or resolved). `why` says what happened, one line, valid UTF-8. */
int probe(const svc_config_t *svc, char *why, size_t len);

/* The pause before the next probe after one that failed with `result` (probe's), the last
 * pause having been `prev_ms` (0 before the first). A refused connect costs the service
 * nothing (the kernel answers for a port no one listens on), so while nothing listens it is
 * tried every PROBE_REFUSED_PAUSE_MS: a service that starts listening healthy is seen within
 * ~10 ms. One that answers runs code for each probe: the pauses then double (from
 * PROBE_FIRST_PAUSE_MS, or from the last pause) up to interval_ms. */
uint64_t probe_next_pause(int result, uint64_t prev_ms, uint64_t interval_ms);

/* libcurl's global set-up, once per process, for every thread that uses libcurl (probes and
 * pulls): not before the first use (an idle agent does not carry OpenSSL's ~2 MiB). */
void probe_curl_setup(void);

#endif
