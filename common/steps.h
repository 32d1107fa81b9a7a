/* steps: the one table of a rollout's steps on a node, and the one function that decides
 * whether a command may run in a given state. The agent dispatches through it, the
 * coordinator sends commands and reads Hello through it; nothing else knows the rules.
 *
 * Names are the words on the wire and in state files: "preflight" .. "commit", "rollback".
 * What a state file records as the last completed step is the step's `done` word
 * ("committed" for commit, "rolled_back" / "rollback_failed" for rollback). */
#ifndef BATON_STEPS_H
#define BATON_STEPS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum step_id {
    STEP_NONE = 0,
    STEP_PREFLIGHT,
    STEP_STOP,
    STEP_DUMP,
    STEP_SWAP,
    STEP_MIGRATE,
    STEP_START,
    STEP_VERIFY,
    STEP_COMMIT,
    STEP_ROLLBACK,
    STEP__MAX,
} step_id_t;

typedef struct step_def {
    step_id_t id;      /* its place in the table */
    const char *name;  /* the command's name on the wire and in events */
    int body;          /* its Baton__Envelope__BodyCase */
    const char *done;  /* recorded as the last step when it succeeds */
    bool changes_live; /* it may change the service, binary or database */
} step_def_t;

/* The table entry of a step, or NULL (STEP_NONE and out of range). */
const step_def_t *step_get(step_id_t id);
/* By command name ("migrate") or by envelope body case; NULL when it is no step. */
const step_def_t *step_by_name(const char *name);
const step_def_t *step_by_body(int body);
/* The upgrade steps after pre-flight, in order (stop .. commit), for the coordinator. */
const step_def_t *const *step_upgrade_sequence(size_t *ret_n);

/* True when a service whose last recorded step is `step` and whose interrupted step is
 * `in_progress` ("" when none) has nothing half-done: no rollout yet, only a pre-flight (it
 * changes nothing live, even when a crash cut it short), committed, or rolled back. */
bool step_settled(const char *step, const char *in_progress);

/* True when the record holds nothing at all: no rollout, or a committed or rolled back one (a
 * reservation by a pre-flight, even an interrupted one, is held until released). */
bool step_finished(const char *step, const char *in_progress);

/* What the rules need to know about one service. */
typedef struct step_state {
    const char *rollout_id;  /* the rollout of the record, "" when none */
    const char *step;        /* last completed step as recorded ("" .. "committed") */
    const char *in_progress; /* step a crash cut short, "" when none */
    const char *running;     /* step running now in this agent, "" when none */
    unsigned recorded;       /* bit (1u << step id): that step's Result to this very request is on
                              * record (the asker lost the answer and asks again) */
    bool asker_started_it;   /* in_progress was started by this very request: its asker never
                              * heard back because the agent restarted in the middle */
    bool asks_down;          /* the command is a migrate down */
    bool undo_committed;     /* a rollback that asks to undo a committed rollout on purpose */
    bool stop_asked;         /* the stop step asked systemd to stop the unit: a stop that then
                              * failed may have stopped it, so a rollback is not a release */
} step_state_t;

typedef enum step_verdict {
    STEP_RUN,     /* run the step */
    STEP_ATTACH,  /* it is running now: the asker gets its progress and Result */
    STEP_REPLAY,  /* it already ran: answer with the recorded Result, run nothing */
    STEP_RELEASE, /* a rollout that changed nothing live ends here: restore the prior record
                   * (the answer is OK to a rollback, a failure to a pre-flight cut short) */
    STEP_REFUSE,  /* refused; see ret_busy and why */
} step_verdict_t;

/* Decides what to do with command `cmd` for `rollout_id` (non-empty, already validated) given
 * `st`. On STEP_REFUSE, *ret_busy says whether another rollout or step holds the service (the
 * answer is BUSY) rather than the command being out of order, and `why` (len bytes) one line. A
 * pure function: it reads nothing but its arguments. In steps.c its rules read by case: a step
 * running now, then decide_interrupted(), decide_preflight(), decide_rollback() and
 * decide_upgrade_step() (stop .. commit). */
step_verdict_t step_decide(const step_state_t *st, step_id_t cmd, const char *rollout_id,
                           bool *ret_busy, char *why, size_t len);

#endif
