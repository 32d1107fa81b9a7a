#!/bin/bash
# resume-pg.sh: resume.sh with the journal in PostgreSQL (`--journal`, here $BATON_JOURNAL):
# the coordinator SIGKILLed after each step of a node, then `baton resume` from a second
# controller with a state folder of its own finishes the rollout, exactly one dump and one
# migration per node; the lock that keeps one coordinator per rollout is an advisory lock.
BATON_TEST_PG_JOURNAL=1 exec "$(dirname "$0")/resume.sh"
