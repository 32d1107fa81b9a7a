/* freeze: `baton freeze SERVICE --reason TEXT` and `baton unfreeze SERVICE`. A frozen service's
 * rollouts (and resumes) are refused, and plan says why, since when and by whom, until it is
 * unfrozen. The record is kept with the journals (journal.h: a file in the state folder, or a
 * row of the shared database), so every controller sharing them sees it. A rollout already
 * running is not stopped by a freeze (baton abort does that); rollbacks are never refused. */
#ifndef BATON_FREEZE_H
#define BATON_FREEZE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "journal.h"

#define FREEZE_REASON_MAX 1000
#define FREEZE_BY_MAX 400 /* user (sudo user)@host */
#define FREEZE_RECORD_MAX (64 * 1024)

typedef struct freeze {
    char *reason; /* as the operator wrote it */
    char *by;     /* user@host ("alice (sudo root)@ctl1") */
    char *since;  /* UTC, ISO 8601 */
} freeze_t;

/* 1 with *ret filled when `service` is frozen, 0 when it is not, a negative errno (err says
 * why) when the store cannot say, or holds a record that cannot be read: either way a rollout
 * does not go on. */
int freeze_get(journal_store_t *s, const char *service, freeze_t *ret, baton_err_t *err);
void freeze_clear(freeze_t *f);

/* The one check plan and rollout (and resume) make: 0 when `service` may roll; otherwise a
 * negative errno or 1 (frozen), with *ret_why saying it in a sentence ("gamesrv is frozen since
 * … by …: REASON (baton unfreeze gamesrv lets it roll)"), the caller's to free. */
int freeze_refusal(journal_store_t *s, const char *service, char **ret_why);

/* The reason an operator gave, checked: 1..FREEZE_REASON_MAX bytes of UTF-8 without control
 * characters, C1 ones included (it is printed to other operators' terminals). NULL when fine,
 * else why not. A record's other fields are checked the same way when read. */
const char *freeze_reason_problem(const char *reason);

/* The commands: exit codes as rollout.h's (0 done, 1 usage, 2 refused, nothing changed). */
int freeze_command(journal_store_t *s, const char *service, const char *reason);
int unfreeze_command(journal_store_t *s, const char *service);

#endif
