/* rollout_tail.h: for the unit tests of a rollout file's parts (test_webhook, test_analysis): a
 * file of one node in a scratch folder, with the part under test appended, loaded as `baton`
 * loads it. Its seven lines put the tail's first line at line 8 ("r.yml:8: ..."). Include it
 * after cmocka.h and rollout_file.h; run the group with rollout_tail_setup and _teardown. */
#ifndef BATON_TEST_ROLLOUT_TAIL_H
#define BATON_TEST_ROLLOUT_TAIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char rollout_tail_dir[64];
static char rollout_tail_path[128];

static int rollout_tail_setup(void **state)
{
    (void)state;
    snprintf(rollout_tail_dir, sizeof(rollout_tail_dir), "/tmp/baton-test-rollout-XXXXXX");
    if (!mkdtemp(rollout_tail_dir))
        return -1;
    snprintf(rollout_tail_path, sizeof(rollout_tail_path), "%s/r.yml", rollout_tail_dir);
    return 0;
}

static int rollout_tail_teardown(void **state)
{
    (void)state;
    unlink(rollout_tail_path);
    return rmdir(rollout_tail_dir);
}

/* 0, or the loader's error (its message in err; *rf NULL). */
static int rollout_tail_load(const char *tail, rollout_file_t **rf, baton_err_t *err)
{
    FILE *f = fopen(rollout_tail_path, "w");
    assert_non_null(f);
    fprintf(f,
            "insecure: true\n"
            "service: gamesrv\n"
            "version: 1.1.0\n"
            "artifact: a\n"
            "nodes:\n"
            "  - name: node1\n"
            "    endpoint: tcp://10.0.0.1:7400\n"
            "%s",
            tail);
    fclose(f);
    baton_err_clear(err);
    *rf = NULL;
    return rollout_file_load(rollout_tail_path, rf, err);
}

#endif
