/* http_post: one HTTP POST of a JSON body (libcurl), for notifications (notify.c) and webhook
 * gates (webhook.c), and one GET for Prometheus' queries (prom.c): http:// and https:// only,
 * redirects not followed, 2 s to connect, the whole try bounded, and stopped at once when `stop`
 * says so (Ctrl-C). */
#ifndef BATON_HTTP_POST_H
#define BATON_HTTP_POST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define HTTP_POST_URL_MAX 2048

/* NULL when `url` may be posted to (http:// or https://, at most HTTP_POST_URL_MAX bytes, no space
 * or control character), else why not. */
const char *http_post_url_problem(const char *url);

/* What a message may name of a URL: scheme://host[:port], without the path, the query or a
 * user:password (a webhook's URL often holds its token). */
void http_post_url_origin(const char *url, char *buf, size_t size);

/* 0 on a 2xx answer; else -1 with `error` saying why ("HTTP 500", curl's words). `c` is reset
 * and reused (its connections kept); `stop(stop_data)` (stop may be NULL) is asked while the try
 * runs, and ends it ("interrupted"). */
int http_post_json(CURL *c, const char *url, const char *body, uint64_t limit_ms,
                   bool (*stop)(void *), void *stop_data, char *error, size_t error_size);

/* A GET of `url`: 0 once an answer came (its status in *ret_code, its body, NUL-terminated, in
 * *ret_body, the caller's to free); -1 with `error` when none came, it was longer than max_bytes,
 * or `stop` (may be NULL) ended it. */
int http_get(CURL *c, const char *url, uint64_t limit_ms, size_t max_bytes, bool (*stop)(void *),
             void *stop_data, char **ret_body, long *ret_code, char *error, size_t error_size);

#endif
