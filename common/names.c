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

bool artifact_is_url(const char *s)
{
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

bool artifact_url_valid(const char *s)
{
    size_t n = strlen(s);
    if (n > ARTIFACT_URL_MAX || !artifact_is_url(s))
        return false;
    size_t host = s[4] == 's' ? 8 : 7;
    if (n == host || s[host] == '/' || s[host] == '?' || s[host] == '#')
        return false; /* no host */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    /* No user or password in the host part: a URL is printed in events, logs and errors. */
    size_t authority = strcspn(s + host, "/?#");
    return !memchr(s + host, '@', authority);
}
