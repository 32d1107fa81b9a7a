# all.sh: everything a cluster test of baton needs, sourced in order: TAP output, the test
# cluster, PostgreSQL, the gamesrv fixture and the baton helpers.
. tests/lib/tap.sh
. tests/lib/cluster.sh
. tests/lib/pg.sh
. tests/lib/gamesrv.sh
. tests/lib/baton.sh
. tests/lib/haproxy.sh
. tests/lib/nginx.sh
# An event or a field the event registry (coordinator/events/event_registry.c) lacks stops the
# coordinator: the test that reached it fails.
export BATON_EVENTS_STRICT=1
