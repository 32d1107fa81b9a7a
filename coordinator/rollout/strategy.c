/* strategy: see strategy.h. */
#include "strategy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strategy_init(strategy_t *s)
{
    memset(s, 0, sizeof(*s));
    s->n_batches = 1;
    s->batches[0] = (amount_t){.percent = false, .value = 1};
    s->on_failure = ON_FAILURE_HALT;
    s->max_in_flight = 64;
}

int amount_parse(const char *text, uint32_t min_count, amount_t *ret)
{
    if (!text || !*text)
        return -EINVAL;
    size_t len = strlen(text);
    bool percent = text[len - 1] == '%';
    size_t digits = percent ? len - 1 : len;
    if (digits == 0 || digits > 7)
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint32_t)(text[i] - '0');
    }
    if (percent ? (v < 1 || v > 100) : v < min_count)
        return -EINVAL;
    *ret = (amount_t){.percent = percent, .value = v};
    return 0;
}

size_t amount_resolve(amount_t a, size_t total, size_t at_least)
{
    size_t n = a.percent ? total * a.value / 100 : a.value;
    if (n < at_least)
        n = at_least;
    return n > total ? total : n;
}

const char *amount_str(amount_t a, char *buf, size_t len)
{
    snprintf(buf, len, "%u%s", a.value, a.percent ? "%" : "");
    return buf;
}

int on_failure_parse(const char *text, on_failure_t *ret)
{
    static const char *const names[] = {"halt", "rollback-all", "continue"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (text && !strcmp(text, names[i])) {
            *ret = (on_failure_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *on_failure_str(on_failure_t f)
{
    return f == ON_FAILURE_ROLLBACK_ALL ? "rollback-all"
           : f == ON_FAILURE_CONTINUE   ? "continue"
                                        : "halt";
}

size_t strategy_batches(const strategy_t *s, size_t total, size_t *ret_sizes)
{
    size_t n = 0, left = total;
    while (left > 0) {
        amount_t a = s->batches[n < s->n_batches ? n : s->n_batches - 1];
        size_t size = amount_resolve(a, total, 1);
        if (size > left)
            size = left;
        ret_sizes[n++] = size;
        left -= size;
    }
    return n;
}

bool strategy_pauses_after(const strategy_t *s, size_t batch)
{
    for (size_t i = 0; i < s->n_pauses; i++)
        if (s->pause_after[i] == batch)
            return true;
    return false;
}
