/* names: see names.h. */
#include "names.h"

#include <string.h>

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static bool plain(const char *s, size_t max, const char *allowed)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    return n >= 1 && n <= max && strspn(s, allowed) == n && s[0] != '.' && s[0] != '-';
}

bool name_valid(const char *s, size_t max)
{
    return plain(s, max, ALNUM "_.-@");
}

bool version_name_valid(const char *s)
{
    return plain(s, NAME_MAX_LEN, ALNUM "_.-@+") && s[0] != '+';
}

bool rollout_id_valid(const char *s)
{
    return plain(s, ROLLOUT_ID_MAX_LEN, ALNUM "_.-");
}
