#!/bin/sh
# checklist.sh NEW-BINARY DUMP-FILE: the floor, one node's upgrade as an operator types it, run
# inside the node: stop, pg_dump -Fc, copy + rename the binary, migrate up, start, poll the
# health check every 20 ms. The same steps baton's agent and the Ansible playbook take.
set -e
db=$(sed -n "s/^GAMESRV_DATABASE=//p" /etc/gamesrv/gamesrv.conf)
systemctl stop gamesrv
/usr/lib/postgresql/15/bin/pg_dump -Fc -d "$db" -f "$2"
cp "$1" /opt/gamesrv/bin/gamesrv.new
mv /opt/gamesrv/bin/gamesrv.new /opt/gamesrv/bin/gamesrv
/opt/gamesrv/bin/gamesrv migrate up >/dev/null
systemctl start gamesrv
until curl -sf -o /dev/null http://127.0.0.1:7350/healthcheck; do sleep 0.02; done
