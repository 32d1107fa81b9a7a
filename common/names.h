/* names: the one check of the names that travel between files, the wire and paths: service,
 * node and version names, and rollout ids. A name that passes can be used as a path component
 * and printed as it is. */
#ifndef BATON_NAMES_H
#define BATON_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 64
#define ROLLOUT_ID_MAX_LEN 64

/* 1..max of [A-Za-z0-9_.-@], not starting with '.' or '-' (never "..", never an option). */
bool name_valid(const char *s, size_t max);
/* A version as written or printed: a name that may also carry SemVer build metadata
 * ("3.15.0+1783fad1"); 1..64 of [A-Za-z0-9_.-@+], not starting with '.', '-' or '+'. */
bool version_name_valid(const char *s);
/* A rollout id: 1..64 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool rollout_id_valid(const char *s);

#define ARTIFACT_URL_MAX 2048
#define ARTIFACT_URL_RULE                                                                          \
    "a URL must be http:// or https://, name a host (no user or password: it is printed in "       \
    "events and logs), and be at most 2048 printable characters without spaces"
/* An artifact's URL as an agent pulls it: http:// or https://, a host without a user or
 * password, printable ASCII without spaces, at most ARTIFACT_URL_MAX characters. */
bool artifact_url_valid(const char *s);
/* True when s begins as a URL does (http:// or https://): a URL, valid or not, not a path. */
bool artifact_is_url(const char *s);

#endif
