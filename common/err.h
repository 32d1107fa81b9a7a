/* err: one precise error message travelling up to the caller that prints it.
 *
 * Library-like code never logs. A function that can fail returns 0 or a negative errno and,
 * when the caller passed a baton_err_t, fills it with one line naming the failing call and the
 * object ("rename /a -> /b: Permission denied"). The top level prints err.msg once. */
#ifndef BATON_ERR_H
#define BATON_ERR_H

#include <stddef.h>

#define BATON_ERR_MSG_MAX 512

typedef struct baton_err {
    int code;                    /* negative errno of the failure, 0 when none */
    char msg[BATON_ERR_MSG_MAX]; /* the message, NUL-terminated, truncated if too long */
} baton_err_t;

/* Records `code` and the formatted message in `err` (which may be NULL) and returns `code`, so
 * that a failure path reads `return baton_err_set(err, -EINVAL, "...", ...);`. */
int baton_err_set(baton_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "PREFIX: " before the message already in `err` (which may be NULL) and returns its code.
 * Use this, never baton_err_set(err, ..., err->msg): a buffer must not be both the source and
 * the destination of one formatting call. */
int baton_err_prefix(baton_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Cuts `s` (NUL-terminated) so that it holds no incomplete UTF-8 sequence at its end; a message
 * truncated in the middle of a character would make JSON encoders drop it whole. */
void utf8_trim_partial(char *s);

/* Clears `err` (which may be NULL). */
void baton_err_clear(baton_err_t *err);

#endif
