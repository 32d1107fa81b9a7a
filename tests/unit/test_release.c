/* Unit tests for releases side by side (agent/artifact/release.c): an archive unpacked whole or not
 * at all, every hostile member refused by name with nothing left behind, the `current` link
 * switched and read back, an old install taken over, old releases pruned. Archives are written
 * here with libarchive itself. The agent creates releases as root in root-only folders, so
 * these tests need root (make test runs as root); without it they are skipped. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "release.h"

static char root[64], archive_path[128];
static char release_dir[128], binary[192];
static svc_config_t svc;

/* One member of a test archive: type 'f' file, 'd' folder, 'l' symlink, 'h' hard link,
 * 'c' character device; `data` is a file's content or a link's target. */
struct member {
    char type;
    const char *name;
    const char *data;
    mode_t perm;
};

/* layers: 0 a plain tar, 1 gzip, 2 gzip inside xz */
static const char *write_archive(const struct member *m, size_t n, int layers)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (layers >= 1)
        archive_write_add_filter_gzip(a);
    if (layers >= 2)
        archive_write_add_filter_xz(a);
    assert_int_equal(archive_write_open_filename(a, archive_path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        mode_t perm = m[i].perm ? m[i].perm : (m[i].type == 'd' ? 0755 : 0644);
        archive_entry_set_perm(e, perm);
        size_t len = 0;
        switch (m[i].type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            len = strlen(m[i].data);
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].data);
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, makedev(1, 3));
            break;
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len)
            assert_int_equal(archive_write_data(a, m[i].data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return archive_path;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    snprintf(root, sizeof(root), "/tmp/baton-test-release-XXXXXX");
    assert_non_null(mkdtemp(root));
    chmod(root, 0755);
    snprintf(archive_path, sizeof(archive_path), "%s/release.tar", root);
    snprintf(release_dir, sizeof(release_dir), "%s/nakama", root);
    snprintf(binary, sizeof(binary), "%s/current/nakama", release_dir);
    svc = (svc_config_t){.name = "nakama",
                         .unit = "nakama.service",
                         .binary = binary,
                         .release_dir = release_dir,
                         .release_rel = "nakama",
                         .keep_releases = 2};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!*root)
        return 0;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *fmt, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof(path), fmt, release_dir, name);
    return lstat(path, &sb) == 0;
}

/* Nothing of a refused release is left: neither it nor its hidden folder. */
static size_t releases_count(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "ls -A %s/releases 2>/dev/null | wc -l", release_dir);
    FILE *p = popen(path, "r");
    size_t n = 0;
    if (p) {
        if (fscanf(p, "%zu", &n) != 1)
            n = 999;
        pclose(p);
    }
    return n;
}

static void test_unpack_good(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    const struct member m[] = {
        {'d', "./", NULL, 0},
        {'f', "./nakama", "#!/bin/sh\necho 3.15.0+1783fad1\n", 0755},
        {'d', "data/modules", NULL, 0},
        {'f', "data/modules/sample.so", "plugin", 0644},
        {'l', "data/modules/latest.so", "sample.so", 0},
        {'l', "data/top", "../nakama", 0},
        {'f', "systemd/unit.conf", "[Service]\nEnvironment=A=1\n", 0664},
    };
    baton_err_t err = {0};
    char name[RELEASE_NAME_MAX + 1], bin[PATH_MAX];
    write_archive(m, sizeof(m) / sizeof(m[0]), 1);
    svc.artifact_scripts = true;
    if (release_prepare(&svc, archive_path, "3.15.0+1783fad1",
                        "0a1b2c3d4e5f66778899aabbccddeeff0a1b2c3d4e5f66778899aabbccddeeff", name,
                        sizeof(name), bin, sizeof(bin), &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(name, "3.15.0+1783fad1-0a1b2c3d4e5f");
    assert_true(exists("%s/releases/%s/data/modules/sample.so", name));
    struct stat sb;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/releases/%s/systemd/unit.conf", release_dir, name);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644); /* group write dropped */
    assert_int_equal(sb.st_uid, 0);
    /* Unpacked once: a second prepare finds it whole and reads nothing. */
    unlink(archive_path);
    write_archive(m, 1, 0);
    assert_int_equal(
        release_prepare(&svc, archive_path, "3.15.0+1783fad1",
                        "0a1b2c3d4e5f66778899aabbccddeeff0a1b2c3d4e5f66778899aabbccddeeff", name,
                        sizeof(name), bin, sizeof(bin), &err),
        0);
    /* A single program for a service with releases, an archive for one without: refused. */
    const svc_config_t plain = {.name = "gamesrv", .binary = "/opt/gamesrv/bin/gamesrv"};
    write_archive(m, 2, 0);
    assert_int_equal(release_prepare(&plain, archive_path, "1.0.0", "00000000000000000000", name,
                                     sizeof(name), bin, sizeof(bin), &err),
                     -ENOEXEC);
    assert_non_null(strstr(err.msg, "gives gamesrv no release_dir"));
    assert_int_equal(release_prepare(&svc, "/bin/true", "1.0.0", "00000000000000000000", name,
                                     sizeof(name), bin, sizeof(bin), &err),
                     -ENOEXEC);
    assert_non_null(strstr(err.msg, "is no release archive"));
    assert_int_equal(release_name("../etc", "0a1b2c3d4e5f", name, sizeof(name), &err), -EINVAL);
}

static void expect_refused(const struct member *m, size_t n, const char *want)
{
    baton_err_t err = {0};
    size_t before = releases_count();
    write_archive(m, n, n % 2 == 0 ? 1 : 0);
    int r = release_unpack(&svc, archive_path, "9.9.9-bad", &err);
    if (r >= 0 || !strstr(err.msg, want))
        fail_msg("want '%s', got %d '%s'", want, r, err.msg);
    assert_false(exists("%s/releases/%s", "9.9.9-bad"));
    assert_int_equal(releases_count(), before); /* not even its hidden folder */
}

static void test_unpack_hostile(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    const struct member abs[] = {{'f', "nakama", "x", 0}, {'f', "/etc/cron.d/evil", "x", 0}};
    expect_refused(abs, 2, "member '/etc/cron.d/evil' refused: its name is an absolute path");
    const struct member up[] = {{'f', "data/../../evil", "x", 0}};
    expect_refused(up, 1, "member 'data/../../evil' refused: its name goes up a folder");
    const struct member out[] = {{'l', "data/etc", "../../../etc", 0}};
    expect_refused(out, 1, "member 'data/etc' refused: it is a link pointing out of the release");
    const struct member absl[] = {{'l', "etc", "/etc", 0}};
    expect_refused(absl, 1, "member 'etc' refused: it is a link to an absolute path");
    const struct member zig[] = {{'l', "a/b", "../x/../../etc", 0}};
    expect_refused(zig, 1, "refused: it is a link whose target goes up after a name");
    /* A link inside, then a member written through it: refused, not written outside. */
    const struct member via[] = {{'l', "data", ".", 0}, {'f', "data/nakama", "x", 0}};
    expect_refused(via, 2,
                   "member 'data/nakama': Not a directory (its folder is a link or a file)");
    const struct member hard[] = {{'f', "nakama", "x", 0}, {'h', "copy", "nakama", 0}};
    expect_refused(hard, 2, "member 'copy' refused: it is a hard link");
    const struct member dev[] = {{'c', "null", NULL, 0}};
    expect_refused(dev, 1, "member 'null' refused: it is a device, FIFO or socket");
    const struct member suid[] = {{'f', "nakama", "x", 04755}};
    expect_refused(suid, 1, "member 'nakama' refused: it has the setuid, setgid or sticky bit");
    const struct member twice[] = {{'f', "nakama", "x", 0}, {'f', "./nakama", "y", 0}};
    expect_refused(twice, 2, "member './nakama' refused: listed twice");
    /* Compressed twice: libarchive would go on, running an outside program for some layers. */
    baton_err_t terr = {0};
    write_archive(twice, 1, 2);
    assert_int_equal(release_unpack(&svc, archive_path, "9.9.9-bad", &terr), -EBADMSG);
    if (!strstr(terr.msg, "is compressed twice"))
        fail_msg("%s", terr.msg);
    assert_false(exists("%s/releases/%s", "9.9.9-bad"));
    /* Not an archive at all. */
    baton_err_t err = {0};
    FILE *f = fopen(archive_path, "w");
    fputs("plain text, no archive", f);
    fclose(f);
    assert_true(release_unpack(&svc, archive_path, "9.9.9-bad", &err) < 0);
    assert_false(exists("%s/releases/%s", "9.9.9-bad"));
}

static void test_unpack_too_many(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    size_t n = RELEASE_MEMBERS_MAX + 1;
    struct member *m = calloc(n, sizeof(*m));
    char(*names)[16] = calloc(n, 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 16, "f%zu", i);
        m[i] = (struct member){'f', names[i], "x", 0};
    }
    expect_refused(m, n, "has more than 20000 members");
    free(m);
    free(names);
}

static void make_release(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "mkdir -p %s/releases/%s && touch %s/releases/%s/nakama",
             release_dir, name, release_dir, name);
    assert_int_equal(system(path), 0);
}

static void test_switch_and_prune(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    baton_err_t err = {0};
    char cur[RELEASE_NAME_MAX + 1], path[PATH_MAX];
    /* An install from before releases: `current` a folder of its own. */
    snprintf(path, sizeof(path), "%s/current", release_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), 0);
    assert_string_equal(cur, "");
    make_release("3.15.0-aaaaaaaaaaaa");
    assert_int_equal(release_switch(&svc, "3.15.0-aaaaaaaaaaaa", NULL, &err), -EEXIST);
    assert_int_equal(release_switch(&svc, "3.15.0-aaaaaaaaaaaa", "3.14.0-adopted", &err), 0);
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), 0);
    assert_string_equal(cur, "3.15.0-aaaaaaaaaaaa");
    assert_true(exists("%s/releases/%s", "3.14.0-adopted"));
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "releases/3.15.0-aaaaaaaaaaaa"); /* relative: the folder moves */
    /* Back, and to a release that is not there. */
    assert_int_equal(release_switch(&svc, "3.14.0-adopted", NULL, &err), 0);
    assert_int_equal(release_switch(&svc, "9.9.9-none", NULL, &err), -ENOENT);
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), 0);
    assert_string_equal(cur, "3.14.0-adopted");
    /* Prune: the newest 2 stay (the current one among them), and the one named however old. */
    make_release("3.16.0-bbbbbbbbbbbb");
    make_release("3.17.0-cccccccccccc");
    assert_int_equal(release_switch(&svc, "3.17.0-cccccccccccc", NULL, &err), 0);
    assert_int_equal(release_prune(&svc, 2, "3.14.0-adopted", &err), 0);
    assert_true(exists("%s/releases/%s", "3.17.0-cccccccccccc"));
    assert_true(exists("%s/releases/%s", "3.16.0-bbbbbbbbbbbb"));
    assert_true(exists("%s/releases/%s", "3.14.0-adopted"));
    assert_false(exists("%s/releases/%s", "3.15.0-aaaaaaaaaaaa"));
    /* Leftovers of a crash go, an adopted install stays whatever its age. */
    make_release(".3.18.0-dddddddddddd.tmp");
    make_release(".3.15.0-aaaaaaaaaaaa.del");
    assert_int_equal(release_prune(&svc, 2, NULL, &err), 0);
    assert_false(exists("%s/releases/%s", ".3.18.0-dddddddddddd.tmp"));
    assert_false(exists("%s/releases/%s", ".3.15.0-aaaaaaaaaaaa.del"));
    assert_true(exists("%s/releases/%s", "3.14.0-adopted"));
    /* A take-over cut short after the exchange: `current` names the new release, the old
     * install waits at .current.tmp; a switch back finishes it first. */
    char tmpdir[PATH_MAX];
    snprintf(tmpdir, sizeof(tmpdir), "%s/.current.tmp", release_dir);
    assert_int_equal(mkdir(tmpdir, 0755), 0);
    assert_int_equal(release_switch(&svc, "2.0.0-adopted", NULL, &err), 0);
    assert_true(exists("%s/releases/%s", "2.0.0-adopted"));
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), 0);
    assert_string_equal(cur, "2.0.0-adopted");
    /* A link not made by baton is not taken for a release. */
    unlink(path);
    assert_int_equal(symlink("/etc", path), 0);
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), -EINVAL);
    unlink(path);
    assert_int_equal(release_current(&svc, cur, sizeof(cur), &err), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unpack_good),
        cmocka_unit_test(test_unpack_hostile),
        cmocka_unit_test(test_unpack_too_many),
        cmocka_unit_test(test_switch_and_prune),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
