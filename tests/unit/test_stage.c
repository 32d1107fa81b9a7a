/* Unit tests for the agent's staging (agent/artifact/stage.c): chunks in order, the question "what
 * do you hold", a transfer taken up from its partial file by a restarted agent, a chunk sent twice,
 * one out of order, a partial that is not the artifact, and the limits. The real transfer, with an
 * agent killed half-way, is tests/cluster/staging.sh. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "digest.h"
#include "envelope.h"
#include "stage.h"

#define SIZE (2 * BATON_CHUNK_MAX + BATON_CHUNK_MAX / 2) /* three chunks, the last short */

static char dir[64], cfg_path[PATH_MAX];
static agent_config_t *cfg;
static uint8_t *art;
static char sha[DIGEST_HEX_LEN + 1];

static int setup(void **state)
{
    (void)state;
    baton_err_t err = {0};
    assert_int_equal(digest_global_init(&err), 0);
    snprintf(dir, sizeof(dir), "/tmp/baton-test-stage-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cfg_path, sizeof(cfg_path), "%s/agent.yml", dir);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: node1\nlisten: tcp://127.0.0.1:7400\nstate_dir: %s/state\ninsecure: true\n"
            "services:\n  - name: gamesrv\n    unit: gamesrv.service\n"
            "    binary: /opt/gamesrv/bin/gamesrv\n    database: dbname=game\n"
            "    backup_dir: %s/backups\n    health:\n      tcp: 127.0.0.1:7350\n",
            dir, dir);
    fclose(f);
    assert_int_equal(agent_config_load(cfg_path, &cfg, &err), 0);
    art = malloc(SIZE);
    assert_non_null(art);
    for (size_t i = 0; i < SIZE; i++)
        art[i] = (uint8_t)(i * 2654435761u >> 13);
    /* A program for this machine: an ELF header like the test's own (what staging checks). */
    FILE *self = fopen("/proc/self/exe", "rb");
    assert_non_null(self);
    assert_int_equal(fread(art, 1, 64, self), 64);
    fclose(self);
    digest_t d;
    digest_init(&d);
    digest_update(&d, art, SIZE);
    digest_final_hex(&d, sha);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    agent_config_destroy(&cfg);
    free(art);
    return 0;
}

static void path_of(const char *digest, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%s/state/staging/gamesrv/%s%s", dir, digest, suffix);
}

static off_t file_size(const char *digest, const char *suffix)
{
    char p[PATH_MAX];
    struct stat sb;
    path_of(digest, suffix, p, sizeof(p));
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* Sends [off, off + len) of the artifact (len 0: the question) as announced with `digest`. */
static int chunk(struct staging *s, const char *digest, uint64_t off, size_t len, uint64_t *held,
                 baton_err_t *err)
{
    Baton__Stage st = BATON__STAGE__INIT;
    st.service = "gamesrv";
    st.version = "1.1.0";
    st.sha256 = (char *)digest;
    st.size = SIZE;
    st.offset = off;
    st.data.data = art + off;
    st.data.len = len;
    baton_err_clear(err);
    return stage_chunk(s, cfg, &st, held, err);
}

static void test_stage_resume_and_held(void **state)
{
    (void)state;
    struct staging s = {.fd = -1};
    baton_err_t err = {0};
    uint64_t held = 99;
    assert_int_equal(chunk(&s, sha, 0, 0, &held, &err), 0);
    assert_int_equal(held, 0); /* nothing yet */
    assert_int_equal(chunk(&s, sha, 0, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(held, BATON_CHUNK_MAX);
    /* Sent again (a rewind): acknowledged, not written twice. */
    assert_int_equal(chunk(&s, sha, 0, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(held, BATON_CHUNK_MAX);
    assert_int_equal(chunk(&s, sha, BATON_CHUNK_MAX, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(held, 2 * BATON_CHUNK_MAX);
    assert_int_equal(file_size(sha, ".partial"), 2 * BATON_CHUNK_MAX);

    /* The agent restarts: a fresh staging takes up the partial file from disk. */
    stage_reset(&s, NULL);
    struct staging again = {.fd = -1};
    assert_int_equal(chunk(&again, sha, 0, 0, &held, &err), 0);
    assert_int_equal(held, 2 * BATON_CHUNK_MAX);
    assert_int_equal(
        chunk(&again, sha, 2 * BATON_CHUNK_MAX, SIZE - 2 * BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(held, SIZE);
    assert_int_equal(file_size(sha, ""), SIZE);
    assert_int_equal(file_size(sha, ".partial"), -1);
    char p[PATH_MAX], hex[DIGEST_HEX_LEN + 1];
    path_of(sha, "", p, sizeof(p));
    assert_int_equal(digest_file(p, hex, NULL, &err), 0);
    assert_string_equal(hex, sha);

    /* Asked again, by anyone: held whole, nothing to send. */
    struct staging third = {.fd = -1};
    assert_int_equal(chunk(&third, sha, 0, 0, &held, &err), 0);
    assert_int_equal(held, SIZE);

    /* A second coordinator asked before the first one's transfer ended and starts from 0 when
     * the file is already kept (and maybe being run by a pre-flight): held whole, the kept
     * file not written again (the same inode), no partial file left. */
    struct stat before, after;
    assert_int_equal(stat(p, &before), 0);
    struct staging late = {.fd = -1};
    assert_int_equal(chunk(&late, sha, 0, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(held, SIZE);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(file_size(sha, ".partial"), -1);
    stage_reset(&again, NULL);
    stage_reset(&third, NULL);
    stage_reset(&late, NULL);
}

static void test_stage_refusals(void **state)
{
    (void)state;
    struct staging s = {.fd = -1};
    baton_err_t err = {0};
    uint64_t held = 99;
    /* Another digest: its own transfer. Out of order first: refused, saying where to go on. */
    const char *other = "1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(chunk(&s, other, BATON_CHUNK_MAX, BATON_CHUNK_MAX, &held, &err), -EPROTO);
    assert_int_equal(held, 0);
    assert_non_null(strstr(err.msg, "does not follow"));
    /* Every byte sent, but not the announced digest: refused, nothing kept. */
    assert_int_equal(chunk(&s, other, 0, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(chunk(&s, other, BATON_CHUNK_MAX, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(chunk(&s, other, 2 * BATON_CHUNK_MAX, SIZE - 2 * BATON_CHUNK_MAX, &held, &err),
                     -EBADMSG);
    assert_non_null(strstr(err.msg, "expected 1111"));
    assert_int_equal(file_size(other, ""), -1);
    assert_int_equal(file_size(other, ".partial"), -1);

    /* A partial file that does not end on a chunk boundary (a write cut short): not taken up. */
    const char *third = "2222222222222222222222222222222222222222222222222222222222222222";
    char p[PATH_MAX];
    path_of(third, ".partial", p, sizeof(p));
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(art, 1, 1000, f), 1000);
    fclose(f);
    assert_int_equal(chunk(&s, third, 0, 0, &held, &err), 0);
    assert_int_equal(held, 0);

    /* Limits: a chunk past the end, one larger than a chunk, a bad digest, an unknown service. */
    Baton__Stage st = BATON__STAGE__INIT;
    st.service = "gamesrv";
    st.version = "1.1.0";
    st.sha256 = (char *)sha;
    st.size = SIZE;
    st.offset = SIZE - 10;
    st.data.data = art;
    st.data.len = 20;
    assert_int_equal(stage_chunk(&s, cfg, &st, &held, &err), -EINVAL);
    st.offset = 0;
    st.data.len = BATON_CHUNK_MAX + 1;
    assert_int_equal(stage_chunk(&s, cfg, &st, &held, &err), -EINVAL);
    st.data.len = 10;
    st.size = 0;
    assert_int_equal(stage_chunk(&s, cfg, &st, &held, &err), -EFBIG);
    st.size = SIZE;
    st.sha256 = "not-hex";
    assert_int_equal(stage_chunk(&s, cfg, &st, &held, &err), -EINVAL);
    st.sha256 = (char *)sha;
    st.service = "other";
    assert_int_equal(stage_chunk(&s, cfg, &st, &held, &err), -ENOENT);
    stage_reset(&s, NULL);
}

/* Whole, with the right digest, but not a program: refused, and nothing of it kept. */
static void test_stage_not_a_program(void **state)
{
    (void)state;
    memset(art, 'x', 64); /* no ELF header, no #! */
    digest_t d;
    digest_init(&d);
    digest_update(&d, art, SIZE);
    char text_sha[DIGEST_HEX_LEN + 1];
    digest_final_hex(&d, text_sha);
    struct staging s = {.fd = -1};
    baton_err_t err = {0};
    uint64_t held = 0;
    for (uint64_t off = 0; off < 2 * BATON_CHUNK_MAX; off += BATON_CHUNK_MAX)
        assert_int_equal(chunk(&s, text_sha, off, BATON_CHUNK_MAX, &held, &err), 0);
    assert_int_equal(
        chunk(&s, text_sha, 2 * BATON_CHUNK_MAX, SIZE - 2 * BATON_CHUNK_MAX, &held, &err),
        -ENOEXEC);
    assert_non_null(strstr(err.msg, "the artifact is not a program"));
    assert_int_equal(held, 0);
    assert_int_equal(file_size(text_sha, ""), -1);
    assert_int_equal(file_size(text_sha, ".partial"), -1);
}

/* A file at the artifact's name that is not it (damage, a hand's copy) when a transfer ends:
 * replaced by the verified one, never taken for it. */
static void test_stage_replaces_what_is_not_it(void **state)
{
    (void)state;
    char p[PATH_MAX], hex[DIGEST_HEX_LEN + 1];
    path_of(sha, "", p, sizeof(p));
    unlink(p);
    struct staging s = {.fd = -1};
    baton_err_t err = {0};
    uint64_t held = 0;
    for (uint64_t off = 0; off < 2 * BATON_CHUNK_MAX; off += BATON_CHUNK_MAX)
        assert_int_equal(chunk(&s, sha, off, BATON_CHUNK_MAX, &held, &err), 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("not the artifact\n", f);
    fclose(f);
    assert_int_equal(chunk(&s, sha, 2 * BATON_CHUNK_MAX, SIZE - 2 * BATON_CHUNK_MAX, &held, &err),
                     0);
    assert_int_equal(held, SIZE);
    assert_int_equal(digest_file(p, hex, NULL, &err), 0);
    assert_string_equal(hex, sha);
    assert_int_equal(file_size(sha, ".partial"), -1);
    stage_reset(&s, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_resume_and_held), cmocka_unit_test(test_stage_refusals),
        cmocka_unit_test(test_stage_replaces_what_is_not_it),
        cmocka_unit_test(test_stage_not_a_program), /* last: it changes the artifact */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
