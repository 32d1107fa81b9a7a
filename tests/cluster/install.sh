#!/bin/bash
# install.sh: what an operator installs. `make install DESTDIR=…` writes exactly the expected
# files (binaries, unit with the installed path, man pages, example config, shell completion)
# and `make uninstall` takes exactly those away; the man pages render and list the commands
# `baton --help` lists; `make deb` builds both packages, lintian-clean, with the expected
# contents; and the agent package, installed with dpkg into a test node (its own overlay over
# /usr: the host's files stay untouched), is enabled but waits for a config, then runs from the
# packaged unit and a real rollout goes through it; `dpkg -i` again mid-migration restarts the
# agent after the migration, which runs once, and the rollout ends exit 0.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BUILD=${BUILD:-build}
BATON=$BUILD/baton
tree() { (cd "$1" && find . -mindepth 1 | sort | sed 's|^\./||'); }

# --- make install / uninstall ------------------------------------------------------------------
dest=$(mktemp -d)
make -s install DESTDIR="$dest" PREFIX=/usr/local UNITDIR=/lib/systemd/system BUILD="$BUILD" >/dev/null
is "$?" 0 "make install DESTDIR=… exits 0"
is "$(tree "$dest" | grep -v '/$' | while read -r p; do [ -f "$dest/$p" ] && echo "$(stat -c %a "$dest/$p") $p"; done | tr '\n' ';')" \
    "644 lib/systemd/system/baton-agent.service;755 usr/local/bin/baton;755 usr/local/sbin/baton-agent;644 usr/local/share/bash-completion/completions/baton;644 usr/local/share/doc/baton/agent.yml.example;644 usr/local/share/fish/vendor_completions.d/baton.fish;644 usr/local/share/man/man1/baton.1;644 usr/local/share/man/man8/baton-agent.8;644 usr/local/share/zsh/vendor-completions/_baton;" \
    "the installed files and their modes match the manifest"
like "$(grep '^ExecStart=' "$dest/lib/systemd/system/baton-agent.service")" \
    "^ExecStart=/usr/local/sbin/baton-agent --config /etc/baton/agent.yml$" "the unit starts the installed agent"
like "$("$dest/usr/local/sbin/baton-agent" --config /nonexistent/agent.yml 2>&1)" \
    "no configuration at /nonexistent/agent.yml; an annotated example is /usr/local/share/doc/baton/agent.yml.example" \
    "without a config the agent says where the example is"
"$BATON" keygen "$dest/agent" >/dev/null && "$BATON" keygen "$dest/coordinator" >/dev/null
sed -e "s|/etc/baton/agent.key|$dest/agent.key|" -e "s|/etc/baton/coordinators|$dest/coordinator.pub|" \
    "$dest/usr/local/share/doc/baton/agent.yml.example" >"$dest/agent.yml"
like "$("$BUILD/baton-agent" --config "$dest/agent.yml" --check-config 2>&1)" "ok \(1 services\)" \
    "the example config is valid as it stands (given its key files)"
rm -f "$dest/agent.yml" "$dest"/agent.* "$dest"/coordinator.*
make -s uninstall DESTDIR="$dest" PREFIX=/usr/local UNITDIR=/lib/systemd/system BUILD="$BUILD" >/dev/null
is "$(tree "$dest" | wc -l)" 0 "make uninstall leaves the tree empty"
rmdir "$dest" 2>/dev/null

# --- the Ansible role's unit is the agent's own unit, with the role's paths ---------------------
role_unit=$(mktemp)
make -s -B role-unit ROLE_UNIT="$role_unit" >/dev/null 2>&1
is "$(diff "$role_unit" ansible/roles/agent/templates/baton-agent.service.j2 >&2 && echo same)" same \
    "the role's unit template is what make role-unit makes of agent/baton-agent.service"
rm -f "$role_unit"

# --- man pages, --help, completion: the same commands -------------------------------------------
page=$(MANWIDTH=100 man -l doc/baton.1 2>&1)
like "$page" "^BATON\(1\)" "man -l renders baton(1)"
like "$(MANWIDTH=100 man -l doc/baton-agent.8 2>&1)" "^BATON-AGENT\(8\)" "man -l renders baton-agent(8)"
is "$(MANWIDTH=100 man -l doc/baton-agent.8 2>&1 | grep -ci 'warning')" 0 "without warnings"
help_cmds=$("$BATON" --help | sed -n 's/^\(usage:\)\? *baton \([a-z]*\).*/\2/p' | sort -u | tr '\n' ' ')
man_cmds=$(printf '%s\n' "$page" | sed -n '/^SYNOPSIS/,/^DESCRIPTION/s/^ *baton \([a-z]*\).*/\1/p' | sort -u | tr '\n' ' ')
is "$man_cmds" "$help_cmds" "baton(1) and baton --help list the same commands ($help_cmds)"
out=$("$BATON" keygen 2>&1)
is "$?" 1 "a usage error exits 1"
like "$out" "^baton: keygen needs NAME
usage: baton keygen NAME" "and names what is wrong with the command's own line, not the whole usage"
like "$("$BATON" list --follow 2>&1)" "^baton: --follow does not apply to list" "a flag a command does not take is named"
like "$("$BATON" frobnicate 2>&1)" "^baton: no command 'frobnicate'
commands: rollout plan" "an unknown command, with the list of commands"
is "$("$BATON" help rollout | head -1)" "$("$BATON" rollout --help | head -1)" "baton help rollout is baton rollout --help"
like "$("$BATON" help rollout)" "^usage: baton rollout FILE.yml" "one command's help"

# --- make deb ---------------------------------------------------------------------------------------
rm -rf "$BUILD/deb"
make -s deb BUILD="$BUILD" >"$BUILD/deb.log" 2>&1
is "$?" 0 "make deb builds (dpkg-buildpackage)"
deb_agent=$(ls "$BUILD"/deb/baton-agent_*_*.deb 2>/dev/null | grep -v dbgsym)
deb_baton=$(ls "$BUILD"/deb/baton_*_*.deb 2>/dev/null | grep -v dbgsym)
ok "both packages are there" [ -f "$deb_agent" ] && [ -f "$deb_baton" ]
is "$(lintian "$deb_agent" "$deb_baton" 2>&1 | grep -c '^E:')" 0 "lintian reports no error"
contents() { dpkg-deb --contents "$1" | awk '{print $6}' | grep -v '/$' | tr '\n' ';'; }
is "$(contents "$deb_baton")" \
    "./usr/bin/baton;./usr/share/bash-completion/completions/baton;./usr/share/doc/baton/changelog.gz;./usr/share/doc/baton/copyright;./usr/share/fish/vendor_completions.d/baton.fish;./usr/share/man/man1/baton.1.gz;./usr/share/zsh/vendor-completions/_baton;" \
    "baton: the coordinator, its man page and completion for bash, zsh and fish"
is "$(contents "$deb_agent")" \
    "./lib/systemd/system/baton-agent.service;./usr/sbin/baton-agent;./usr/share/doc/baton-agent/agent.yml.example;./usr/share/doc/baton-agent/changelog.gz;./usr/share/doc/baton-agent/copyright;./usr/share/man/man8/baton-agent.8.gz;" \
    "baton-agent: the agent, its unit, man page and example config"
like "$(dpkg-deb -f "$deb_agent" Depends)" "libzmq5.*postgresql-client" \
    "the agent depends on its shared libraries and postgresql-client"
is "$(git status --porcelain debian | wc -l)" 0 "the build left the source tree clean"

# --- the agent package on a node -------------------------------------------------------------------
cluster_sweep
cluster_trap
CLUSTER_OVERLAY_USR=1 BATON_CLUSTER_AGENTS=0 baton_cluster pkg 1 1.0.0 ||
    { done_testing; exit 1; }
node_push node1 "$deb_agent" /root/baton-agent.deb
out=$(node_exec node1 dpkg -i /root/baton-agent.deb 2>&1)
is "$?" 0 "dpkg -i installs the agent package in the node"
printf '%s\n' "$out" >&2
is "$(node_exec node1 systemctl is-enabled baton-agent)" enabled "the unit is enabled on install"
is "$(node_exec node1 systemctl is-active baton-agent)" inactive "and not running: no config yet"
is "$(node_exec node1 systemctl show -p ConditionResult --value baton-agent)" no \
    "its start was skipped on ConditionPathExists"
ok "the host's /usr is untouched" [ ! -e /usr/sbin/baton-agent ]
cfg=$(mktemp)
agent_config node1 >"$cfg"
agent_keys node1
node_push node1 "$cfg" /etc/baton/agent.yml 0600
rm -f "$cfg"
node_exec node1 systemctl start baton-agent
is "$(node_exec node1 systemctl is-active baton-agent)" active "with a config, systemd starts it"
like "$(node_exec node1 systemctl show -p ExecStart --value baton-agent)" "path=/usr/sbin/baton-agent" \
    "from the packaged unit and binary"
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.0)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "a real rollout goes through the packaged agent"
printf '%s\n' "$out" >&2
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "node1 runs 1.1.0"
exposure=$(node_exec node1 systemd-analyze security baton-agent.service 2>/dev/null | sed -n 's/.*Overall exposure level for baton-agent.service: \([0-9.]*\).*/\1/p')
diag "systemd-analyze security baton-agent.service: exposure $exposure"
ok "systemd-analyze rates the hardened unit ($exposure) below 9.6, root's unhardened default" \
    awk -v e="$exposure" 'BEGIN { exit !(e != "" && e < 9.6) }'
# dpkg -i of the package again in the middle of a migration: its postinst restarts the agent
# (debhelper's restart after upgrade), and the restart waits for the migration (the faults
# issue's sixth case). This machine's image forbids starts from maintainer scripts
# (policy-rc.d); the node, like a real machine, does not.
node_exec node1 rm -f /usr/sbin/policy-rc.d
cfg=$(mktemp)
BATON_TEST_KNOBS=1 agent_config node1 >"$cfg"
node_push node1 "$cfg" /etc/baton/agent.yml 0600 &&
    node_push node1 tests/fixtures/knobs/slow /opt/baton-test/slow 0755 &&
    node_push node1 tests/fixtures/knobs/pg_dump /opt/baton-test/pg_dump 0755
rm -f "$cfg"
node_exec node1 systemctl restart baton-agent
slow_step node1 migrate 6
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.2.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/upgrade.out" 2>&1 &
pid=$!
ok "node1's migration is running" wait_for 60 tool_running node1 migrate
before=$(node_exec node1 systemctl show -p MainPID --value baton-agent)
# A newer build of the package: the same files under a higher version (an upgrade, as apt does).
newer=$(mktemp -d)
dpkg-deb -R "$deb_agent" "$newer/pkg" &&
    sed -i 's/^Version: \(.*\)$/Version: \1+1/' "$newer/pkg/DEBIAN/control" &&
    dpkg-deb -b "$newer/pkg" "$newer/baton-agent-newer.deb" >/dev/null
node_push node1 "$newer/baton-agent-newer.deb" /root/baton-agent-newer.deb
rm -rf "$newer"
out=$(node_exec node1 dpkg -i /root/baton-agent-newer.deb 2>&1)
is "$?" 0 "dpkg -i of a newer agent package mid-migration succeeds (an upgrade)"
printf '%s\n' "$out" >&2
isnt() { [ "$1" != "$2" ]; }
ok "its postinst restarted the agent" isnt "$(node_exec node1 systemctl show -p MainPID --value baton-agent)" "$before"
nok "and the restart waited for the migration to end" tool_running node1 migrate
wait "$pid"
code=$?
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/upgrade.out")
printf '%s\n' "$out" >&2
is "$code" 0 "the rollout through the upgrade ends exit 0"
id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
is "$(node_exec node1 journalctl -u baton-agent BATON_ROLLOUT_ID="$id" BATON_STEP=migrate -o cat --no-pager | grep -c '^migrate up (')" \
    1 "the migration ran once"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "node1 runs 1.2.0"

node_exec node1 dpkg -r baton-agent >/dev/null 2>&1
is "$?" 0 "dpkg -r removes it"
is "$(node_exec node1 sh -c 'ls /usr/sbin/baton-agent /lib/systemd/system/baton-agent.service 2>/dev/null | wc -l')" 0 \
    "with its files"
done_testing
