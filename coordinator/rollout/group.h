/* group: the nodes of a rollout that share one database.
 *
 * Agents report which database their service uses ("SYSTEM_IDENTIFIER/DBNAME", from the
 * server itself, not the conninfo text). Nodes with the same identity form a group; nodes whose
 * agent reports none are taken to share one database (the safe guess). Per group:
 *
 *  - the database turn: a node takes it before it stops and keeps it through its migration, or
 *    until it verified when its migration applied something, so no other node of the group
 *    stops, dumps or migrates on a schema that may still be rolled back under it;
 *  - one dump and one migration per rollout: the first node that reaches its dump dumps and
 *    migrates (the group's migrator); every later node checks that the bookkeeping ids equal
 *    what the migrator's migration left and skips both (the agent checks);
 *  - no restore under a serving node: the migrator's rollback is told no_restore while other
 *    nodes of the group are in the rollout; when only the dump can bring the schema back it
 *    stops and says so. With `restore_shared: stop-group` the coordinator then stops every
 *    other node of the group that is still reserved, restores, and starts them again on the old
 *    version; without it the rollout ends with exit 4, the dump's path and the command.
 *
 * Groups are built once the pre-flights (or, when resuming, the Hellos) answered; a resumed
 * rollout finds each group's migrator and its ids in the journal. */
#ifndef BATON_GROUP_H
#define BATON_GROUP_H

#include <stdbool.h>
#include <stddef.h>

struct run;
struct node;
struct engine_ops;

typedef enum group_restore {
    RESTORE_NONE = 0,   /* nothing going on */
    RESTORE_STOPPING,   /* stop-group: the other reserved nodes are being stopped */
    RESTORE_RUNNING,    /* the migrator's rollback may restore now */
    RESTORE_RESTARTING, /* the stopped nodes are being started on the old version */
} group_restore_t;

typedef struct group {
    char *database_id;     /* the identity, "" when the agents reported none */
    size_t n_nodes;        /* nodes of the rollout in it */
    bool turn_taken;       /* the database turn is held */
    struct node *migrator; /* the node that dumped it in this rollout (and migrates), or NULL */
    char **ids;            /* the bookkeeping ids after the migrator's migration */
    size_t n_ids;
    bool have_ids;           /* ids is set: later nodes skip their dump and migration */
    group_restore_t restore; /* stop-group progress */
    struct node *restoring;  /* the node whose rollback waits for the group to stop */
} group_t;

/* Puts every node into its group (run->groups); the journal's migrators when resuming. */
int group_build(struct run *run);
void group_free_all(struct run *run);
/* "2 databases: …" for the plan event; the caller's. */
char *group_describe(const struct run *run);

/* The node's dump request: shared (another node dumped and migrated its group's database) or
 * not; fills shared_from/expect_ids of the Step. Records the migrator when it is this node. */
void group_prepare_dump(struct run *run, struct node *nd, void *step);
/* Whether the node's dump, were it prepared now, would surely be its own (no other node of its
 * database is the migrator): its stop then takes the migration lock for it. Never in
 * maintenance style, where the nodes of a database stop together and the first to dump
 * migrates. */
bool group_dumps_own(const struct run *run, const struct node *nd);

/* The database turn (above): whether a node of nd's database (nd itself included) holds it; nd
 * takes it (before it stops); nd gives it back, if it holds it (its migration applied nothing, it
 * verified, or its rollback put the database back; a failed rollback keeps it: the database is in a
 * state no one knows). */
bool group_turn_held(const struct node *nd);
void group_turn_take(struct node *nd);
void group_turn_give(struct node *nd);
/* A migrate Result of the migrator: the ids later nodes must find. */
int group_migrated(struct run *run, struct node *nd, char **ids, size_t n_ids);
/* A node was rolled back: if it was its group's migrator the schema is back, the group has no
 * migrator any more. */
void group_rolled_back(struct run *run, struct node *nd);
/* True when the node's rollback must not restore the dump (others of its group may serve). */
bool group_no_restore(const struct run *run, const struct node *nd);
/* The migrator's rollback answered restore_needed: with stop-group, stop the group's reserved
 * nodes (true: the rollback goes on later); false: it stays failed. */
bool group_restore_needed(struct run *run, struct node *nd, const struct engine_ops *ops);
/* The result of a stop sent by group_restore_needed (nd->group_stop). */
void group_stop_result(struct run *run, struct node *nd, int r, const char *msg);
/* Moves the stop-group restores along; true while one is under way (nothing else may be
 * released meanwhile). */
bool group_schedule(struct run *run, const struct engine_ops *ops);
/* Maintenance style (a release that requires it, or --jump): every node of a database stops
 * before its first node (the migrator) dumps, migrates, starts and verifies; the others start
 * only once it verified. True when nd may send its dump now. */
bool group_maint_may_go(const struct run *run, const struct node *nd);
/* Moves parked nodes along: on, when they may; rolled back (started on the old version) when the
 * rollout halts and nothing of their database is in flight. */
void group_maint_schedule(struct run *run, const struct engine_ops *ops);

/* True while a node of nd's group is rolling back and may still need the group stopped: a
 * reserved node of it is not released yet. */
bool group_hold_release(const struct run *run, const struct node *nd);

#endif
