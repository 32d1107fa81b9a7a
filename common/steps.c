/* steps: see steps.h. */
#include "steps.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "baton.pb-c.h"

/* In rollout order: a step may run when the one before it is the last completed. */
static const step_def_t table[STEP__MAX] = {
    [STEP_PREFLIGHT] = {STEP_PREFLIGHT, "preflight", BATON__ENVELOPE__BODY_PREFLIGHT, "preflight",
                        false},
    [STEP_STOP] = {STEP_STOP, "stop", BATON__ENVELOPE__BODY_STOP, "stop", true},
    [STEP_DUMP] = {STEP_DUMP, "dump", BATON__ENVELOPE__BODY_DUMP, "dump", true},
    [STEP_SWAP] = {STEP_SWAP, "swap", BATON__ENVELOPE__BODY_SWAP, "swap", true},
    [STEP_MIGRATE] = {STEP_MIGRATE, "migrate", BATON__ENVELOPE__BODY_MIGRATE, "migrate", true},
    [STEP_START] = {STEP_START, "start", BATON__ENVELOPE__BODY_START, "start", true},
    [STEP_VERIFY] = {STEP_VERIFY, "verify", BATON__ENVELOPE__BODY_VERIFY, "verify", true},
    [STEP_COMMIT] = {STEP_COMMIT, "commit", BATON__ENVELOPE__BODY_COMMIT, "committed", true},
    [STEP_ROLLBACK] = {STEP_ROLLBACK, "rollback", BATON__ENVELOPE__BODY_ROLLBACK, "rolled_back",
                       true},
};

#define ROLLED_BACK "rolled_back"
#define ROLLBACK_FAILED "rollback_failed"
#define COMMITTED "committed"

const step_def_t *step_get(step_id_t id)
{
    return id > STEP_NONE && id < STEP__MAX ? &table[id] : NULL;
}

const step_def_t *step_by_name(const char *name)
{
    for (int i = STEP_NONE + 1; name && i < STEP__MAX; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

const step_def_t *step_by_body(int body)
{
    for (int i = STEP_NONE + 1; i < STEP__MAX; i++)
        if (table[i].body == body)
            return &table[i];
    return NULL;
}

const step_def_t *const *step_upgrade_sequence(size_t *ret_n)
{
    static const step_def_t *const seq[] = {
        &table[STEP_STOP],  &table[STEP_DUMP],   &table[STEP_SWAP],  &table[STEP_MIGRATE],
        &table[STEP_START], &table[STEP_VERIFY], &table[STEP_COMMIT]};
    *ret_n = sizeof(seq) / sizeof(seq[0]);
    return seq;
}

/* The order of a recorded last step: 0 for none, the step's id for preflight .. commit, -1 for
 * the rollback words and anything unknown. */
static int recorded_order(const char *step)
{
    if (!*step)
        return 0;
    for (int i = STEP_PREFLIGHT; i <= STEP_COMMIT; i++)
        if (!strcmp(table[i].done, step))
            return i;
    return -1;
}

bool step_settled(const char *step, const char *in_progress)
{
    if (*in_progress && strcmp(in_progress, "preflight"))
        return false;
    return !*step || !strcmp(step, "preflight") || !strcmp(step, COMMITTED) ||
           !strcmp(step, ROLLED_BACK);
}

bool step_finished(const char *step, const char *in_progress)
{
    return !*in_progress && (!*step || !strcmp(step, COMMITTED) || !strcmp(step, ROLLED_BACK));
}

static step_verdict_t refuse(bool busy, bool *ret_busy, char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static step_verdict_t refuse(bool busy, bool *ret_busy, char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && len)
        vsnprintf(why, len, fmt, ap);
    va_end(ap);
    if (ret_busy)
        *ret_busy = busy;
    return STEP_REFUSE;
}

/* Where a record stands, in words: "at migrate", "interrupted in dump". */
static const char *where(const step_state_t *st, char *buf, size_t len)
{
    if (*st->in_progress)
        snprintf(buf, len, "interrupted in %s", st->in_progress);
    else
        snprintf(buf, len, "at %s", *st->step ? st->step : "nothing");
    return buf;
}

/* A record with a step a crash cut short: a pre-flight (it changed nothing live: the record is
 * reserved for its rollout, which may run it again or release it), or a step that changes
 * things (it may run again, each step checks the real state first, or be rolled back). */
static step_verdict_t decide_interrupted(const step_state_t *st, const step_def_t *def, bool same,
                                         const char *rollout_id, bool *ret_busy, char *why,
                                         size_t len)
{
    char at[96];
    if (!strcmp(st->in_progress, "preflight")) {
        if (!same)
            return refuse(true, ret_busy, why, len,
                          "reserved by rollout %s (its pre-flight was interrupted); baton "
                          "rollback releases it",
                          st->rollout_id);
        /* Its own asker asking again after an agent restart is told it failed, and the
         * reservation goes: a refused rollout leaves nothing held. */
        if (def->id == STEP_PREFLIGHT)
            return st->asker_started_it ? STEP_RELEASE : STEP_RUN;
        if (def->id == STEP_ROLLBACK)
            return STEP_RELEASE;
        return refuse(false, ret_busy, why, len,
                      "the pre-flight of rollout %s was interrupted: run it again", rollout_id);
    }
    if (!same)
        return refuse(true, ret_busy, why, len, "in rollout %s (%s); roll it back first",
                      st->rollout_id, where(st, at, sizeof(at)));
    if (def->id == STEP_ROLLBACK)
        return STEP_RUN;
    if (!strcmp(st->in_progress, def->name)) {
        /* Its own asker, asking again: tell it (it rolls back) rather than run the step again
         * behind its back. A new request is an operator's deliberate retry. */
        if (st->asker_started_it)
            return refuse(false, ret_busy, why, len,
                          "%s was interrupted: the agent restarted while it ran; run it again or "
                          "roll back",
                          def->name);
        return STEP_RUN;
    }
    return refuse(false, ret_busy, why, len,
                  "step %s of rollout %s was interrupted: run it again or roll back",
                  st->in_progress, rollout_id);
}

/* A pre-flight, on a record with nothing interrupted: it reserves a settled service for its
 * rollout, and runs again (or answers again) only before that rollout stopped anything. */
static step_verdict_t decide_preflight(const step_state_t *st, bool same, const char *rollout_id,
                                       bool *ret_busy, char *why, size_t len)
{
    char at[96];
    bool reserved = !strcmp(st->step, "preflight");
    if (!same) {
        if (reserved)
            return refuse(true, ret_busy, why, len,
                          "reserved by rollout %s (its pre-flight passed); baton rollback "
                          "releases it",
                          st->rollout_id);
        if (!step_settled(st->step, ""))
            return refuse(true, ret_busy, why, len, "in rollout %s (%s); roll it back first",
                          st->rollout_id, where(st, at, sizeof(at)));
        return STEP_RUN;
    }
    if (reserved)
        return (st->recorded & (1u << STEP_PREFLIGHT)) ? STEP_REPLAY : STEP_RUN;
    if (!*st->step)
        return STEP_RUN;
    return refuse(false, ret_busy, why, len,
                  "rollout %s is past its pre-flight (%s): a pre-flight now would change its "
                  "record",
                  rollout_id, where(st, at, sizeof(at)));
}

/* A rollback, on a record with nothing interrupted: only of its own rollout; a committed one
 * only on purpose; one that changed nothing live is a release. */
static step_verdict_t decide_rollback(const step_state_t *st, bool same, const char *rollout_id,
                                      bool *ret_busy, char *why, size_t len)
{
    if (!same)
        return refuse(false, ret_busy, why, len, "no rollout %s to roll back (last: %s)",
                      rollout_id, *st->rollout_id ? st->rollout_id : "none");
    if (!strcmp(st->step, ROLLED_BACK))
        return STEP_REPLAY;
    /* A committed rollout is undone only when asked for by name (baton rollback ROLLOUT_ID),
     * never by a rollback after a crash or a failure. */
    if (!strcmp(st->step, COMMITTED))
        return st->undo_committed
                   ? STEP_RUN
                   : refuse(false, ret_busy, why, len,
                            "rollout %s is committed: a committed rollout is never rolled back "
                            "(baton rollback %s undoes it on purpose)",
                            rollout_id, rollout_id);
    if (recorded_order(st->step) == 0 || (!strcmp(st->step, "preflight") && !st->stop_asked))
        return STEP_RELEASE;
    return STEP_RUN; /* mid-rollout, or a rollback that failed and is tried again */
}

/* stop .. commit, on a record with nothing interrupted: each after the one before it, of the
 * same rollout; a completed one answers again, never runs twice. */
static step_verdict_t decide_upgrade_step(const step_state_t *st, const step_def_t *def, bool same,
                                          const char *rollout_id, bool *ret_busy, char *why,
                                          size_t len)
{
    char at[96];
    step_id_t cmd = def->id;
    if (!same) {
        if (!strcmp(st->step, "preflight"))
            return refuse(true, ret_busy, why, len, "reserved by rollout %s, not %s",
                          st->rollout_id, rollout_id);
        if (!step_settled(st->step, ""))
            return refuse(true, ret_busy, why, len, "in rollout %s (%s)", st->rollout_id,
                          where(st, at, sizeof(at)));
        return refuse(false, ret_busy, why, len, "no pre-flight for rollout %s (last: %s)",
                      rollout_id, *st->rollout_id ? st->rollout_id : "none");
    }
    int have = recorded_order(st->step);
    if (have < 0)
        return refuse(false, ret_busy, why, len, "rollout %s was rolled back", rollout_id);
    if (have == (int)cmd) {
        /* A completed migrate answers its own request again, not a new one that asks to go
         * down: undoing it is the rollback's work, with the rollback's checks. */
        if (cmd == STEP_MIGRATE && st->asks_down && !(st->recorded & (1u << cmd)))
            return refuse(false, ret_busy, why, len,
                          "migrate of rollout %s already ran: baton rollback undoes it",
                          rollout_id);
        return STEP_REPLAY; /* completed: never run twice */
    }
    if (have == (int)cmd - 1)
        return (st->recorded & (1u << cmd)) ? STEP_REPLAY : STEP_RUN;
    return refuse(false, ret_busy, why, len, "%s cannot follow %s", def->name,
                  *st->step ? st->step : "nothing");
}

step_verdict_t step_decide(const step_state_t *st, step_id_t cmd, const char *rollout_id,
                           bool *ret_busy, char *why, size_t len)
{
    const step_def_t *def = step_get(cmd);
    bool same = !strcmp(st->rollout_id, rollout_id);
    if (ret_busy)
        *ret_busy = false;
    if (!def)
        return refuse(false, ret_busy, why, len, "not a step");

    /* One step at a time: the same step of the same rollout asked again is its asker
     * reconnecting; anything else waits its turn. */
    if (*st->running) {
        if (same && !strcmp(st->running, def->name))
            return STEP_ATTACH;
        return refuse(true, ret_busy, why, len, "busy: rollout %s is running %s", st->rollout_id,
                      st->running);
    }
    if (*st->in_progress)
        return decide_interrupted(st, def, same, rollout_id, ret_busy, why, len);
    if (cmd == STEP_PREFLIGHT)
        return decide_preflight(st, same, rollout_id, ret_busy, why, len);
    if (cmd == STEP_ROLLBACK)
        return decide_rollback(st, same, rollout_id, ret_busy, why, len);
    return decide_upgrade_step(st, def, same, rollout_id, ret_busy, why, len);
}
