/* metrics: see metrics.h. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "step.h"
#include "textfile.h"

void metrics_steps_init(metrics_steps_t *m)
{
    memset(m, 0, sizeof(*m));
    memset(m->ok, -1, sizeof(m->ok));
}

void metrics_steps_record(metrics_steps_t *m, step_id_t id, uint64_t ms, bool ok)
{
    if (id <= STEP_NONE || id >= STEP__MAX)
        return;
    m->ms[id] = ms;
    m->ok[id] = ok;
    m->end[id] = (uint64_t)time(NULL);
}

/* Files in `dir` that `keep` accepts (NULL: all regular files): how many, how many bytes. */
static void count_files(const char *dir, const char *service,
                        bool (*keep)(const char *service, const char *name), uint64_t *ret_n,
                        uint64_t *ret_bytes)
{
    *ret_n = *ret_bytes = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    struct stat sb;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!keep || keep(service, e->d_name)) &&
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
            (*ret_n)++;
            *ret_bytes += (uint64_t)sb.st_size;
        }
    closedir(d);
}

/* The version baton left the service on: the target once committed, else the one it had (a
 * rollback put it back; mid-rollout, the node is not on the target yet by baton's account). */
static const char *left_version(const svc_state_t *st)
{
    if (!strcmp(st->step, "committed") || !*st->previous_version)
        return st->target_version;
    return st->previous_version;
}

char *metrics_text(const agent_config_t *cfg, const svc_config_t *svc, const svc_state_t *st,
                   const metrics_steps_t *m)
{
    char *buf = NULL, dir[PATH_MAX];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fputs("# HELP baton_service_info What baton last did to the service on this node: the "
          "version it left it on, the last rollout, its last completed step and the step under "
          "way.\n# TYPE baton_service_info gauge\nbaton_service_info{",
          f);
    /* In the order node_exporter prints them (sorted), so the file reads as a scrape does. */
    textfile_label(f, "in_progress", st->in_progress, true);
    textfile_label(f, "rollout_id", st->rollout_id, false);
    textfile_label(f, "service", svc->name, false);
    textfile_label(f, "step", st->step, false);
    textfile_label(f, "version", left_version(st), false);
    fputs("} 1\n", f);

    /* The per-step metrics: one family each, a sample per step run since the agent started. */
    static const struct {
        const char *name, *help;
    } families[] = {
        {"baton_step_duration_seconds",
         "How long the last run of each step took (since the agent started)."},
        {"baton_step_success", "1 when the last run of the step succeeded, 0 when it failed."},
        {"baton_step_end_timestamp_seconds", "When the last run of the step ended."},
    };
    for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", families[k].name, families[k].help,
                families[k].name);
        for (int id = STEP_NONE + 1; id < STEP__MAX; id++) {
            if (m->ok[id] < 0)
                continue;
            fprintf(f, "%s{", families[k].name);
            textfile_label(f, "service", svc->name, true);
            textfile_label(f, "step", step_get(id)->name, false);
            if (k == 0)
                fprintf(f, "} %.3f\n", (double)m->ms[id] / 1000.0);
            else if (k == 1)
                fprintf(f, "} %d\n", m->ok[id]);
            else
                fprintf(f, "} %llu\n", (unsigned long long)m->end[id]);
        }
    }

    uint64_t n, bytes;
    count_files(svc->backup_dir, svc->name, step_backup_name, &n, &bytes);
    fputs("# HELP baton_backups Verified dumps of the service kept in its backup folder.\n"
          "# TYPE baton_backups gauge\nbaton_backups{",
          f);
    textfile_label(f, "service", svc->name, true);
    fprintf(f, "} %llu\n", (unsigned long long)n);
    fputs("# HELP baton_backup_bytes Their size.\n# TYPE baton_backup_bytes gauge\n"
          "baton_backup_bytes{",
          f);
    textfile_label(f, "service", svc->name, true);
    fprintf(f, "} %llu\n", (unsigned long long)bytes);

    snprintf(dir, sizeof(dir), "%s/staging/%s", cfg->state_dir, svc->name);
    count_files(dir, svc->name, NULL, &n, &bytes);
    fputs("# HELP baton_staged_bytes Bytes of artifacts staged for the service (kept under their "
          "digest, or arriving).\n# TYPE baton_staged_bytes gauge\nbaton_staged_bytes{",
          f);
    textfile_label(f, "service", svc->name, true);
    fprintf(f, "} %llu\n", (unsigned long long)bytes);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int metrics_write(const agent_config_t *cfg, const svc_config_t *svc, const svc_state_t *st,
                  const metrics_steps_t *m, baton_err_t *err)
{
    if (!cfg->metrics_dir)
        return 0;
    char name[NAME_MAX + 1];
    if (snprintf(name, sizeof(name), "baton-%s.prom", svc->name) >= (int)sizeof(name) - 4)
        return baton_err_set(err, -ENAMETOOLONG, "metrics: service name too long");
    char *text = metrics_text(cfg, svc, st, m);
    if (!text)
        return baton_err_set(err, -ENOMEM, "metrics: out of memory");
    int r = textfile_write(cfg->metrics_dir, name, text, "metrics_dir", err);
    free(text);
    return r;
}
