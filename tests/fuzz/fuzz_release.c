/* fuzz_release: libFuzzer target for the release archive unpacker (agent/artifact/release.c), which
 * reads, as root, an archive a coordinator sent. Every input must end in a whole release or in
 * a refusal that leaves nothing behind, and nothing may ever be written outside the release's
 * folder: after each input, the sandbox holds exactly what it held, plus the release when it
 * was accepted. Nothing may crash, leak or hang. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_file.h"
#include "release.h"

#define NAME "1.0.0-0a1b2c3d4e5f"

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

/* The names in `dir`, but "." and "..", joined by spaces. */
static void names(const char *dir, char *buf, size_t len)
{
    buf[0] = '\0';
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s ", e->d_name);
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[256], archive[320], release_dir[320], releases[340], binary[400], rel[400];
    static svc_config_t svc;
    if (!*dir) {
        fuzz_path(dir, sizeof(dir), "release", "");
        mkdir(dir, 0755);
        chmod(dir, 0755);
        snprintf(archive, sizeof(archive), "%s/in.tar", dir);
        snprintf(release_dir, sizeof(release_dir), "%s/rel", dir);
        snprintf(releases, sizeof(releases), "%s/releases", release_dir);
        snprintf(binary, sizeof(binary), "%s/current/bin/svc", release_dir);
        svc = (svc_config_t){
            .name = "svc", .binary = binary, .release_dir = release_dir, .release_rel = "bin/svc"};
    }
    if (fuzz_to_file(archive, data, size) < 0)
        return 0;
    baton_err_t err = {0};
    int r = release_unpack(&svc, archive, NAME, &err);
    char have[512], top[512];
    names(releases, have, sizeof(have));
    names(dir, top, sizeof(top));
    /* Accepted: the release and nothing else; refused: nothing at all. */
    if (strcmp(have, r == 0 ? NAME " " : "") ||
        (strcmp(top, "in.tar rel ") && strcmp(top, "rel in.tar "))) {
        fprintf(stderr, "fuzz_release: r=%d (%s), releases: '%s', sandbox: '%s'\n", r, err.msg,
                have, top);
        abort();
    }
    if (r == 0) {
        snprintf(rel, sizeof(rel), "%s/" NAME, releases);
        nftw(rel, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
