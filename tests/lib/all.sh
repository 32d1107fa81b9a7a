# all.sh: everything a cluster test of baton needs, sourced in order: TAP output, the test
# cluster, PostgreSQL, the gamesrv fixture and the baton helpers.
. tests/lib/tap.sh
. tests/lib/cluster.sh
. tests/lib/pg.sh
. tests/lib/gamesrv.sh
. tests/lib/baton.sh
