/* err: see err.h. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void utf8_trim_partial(char *s)
{
    size_t n = strlen(s), i = n, cont = 0;
    /* Walk back over continuation bytes (10xxxxxx) to the lead byte of the last sequence. */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && cont < 4)
        i--, cont++;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && cont < need)
        s[i - 1] = '\0';
}

int baton_err_set(baton_err_t *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    utf8_trim_partial(err->msg);
    err->code = code;
    return code;
}

int baton_err_prefix(baton_err_t *err, const char *fmt, ...)
{
    if (!err)
        return -EIO;
    char prefix[BATON_ERR_MSG_MAX], old[BATON_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) >= (int)sizeof(err->msg))
        utf8_trim_partial(err->msg); /* cut: never in the middle of a character */
    if (!err->code)
        err->code = -EIO;
    return err->code;
}

void baton_err_clear(baton_err_t *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}
