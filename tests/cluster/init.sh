#!/bin/bash
# init.sh: `baton init` writes a commented starter rollout file (mode 0644) and says what to fill
# in; a second init, or an init over any existing file, refuses (exit 1) and leaves the file as
# it was; the untouched file stops `baton plan` at the node's public_key line; filled in (keys
# from baton keygen, an artifact, an endpoint where nothing listens) it loads, and plan reaches
# the node ("nothing listens", exit 2) instead of a file error (exit 1); so it does with every
# optional key of the template uncommented at its default. Needs no cluster.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
BATON=$PWD/$BUILD/baton

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

out=$("$BATON" init 2>&1)
is "$?" 0 "baton init exits 0"
ok "it wrote rollout.yml" [ -f rollout.yml ]
is "$(stat -c %a rollout.yml)" 644 "mode 0644"
like "$out" "^baton: wrote rollout.yml" "it says what it wrote"
like "$out" "mkdir -p keys && baton keygen keys/coordinator" "and how to make the coordinator's key"
like "$out" "baton plan rollout.yml" "and what to run next"
like "$(head -1 rollout.yml)" "^# A baton rollout file" "the file opens with a comment"
is "$(for key in service version artifact sha256 catalog curve nodes timeouts liveness \
    min_healthy_time healthy_deadline progress_deadline batches max_unavailable on_failure \
    max_failures pause_after max_in_flight restore_shared rehearse notify webhooks analysis insecure; do
    grep -Eq "^#? ?$key:|$key: true" rollout.yml || echo "$key"; done | tr '\n' ' ')" "" \
    "every top-level key the loader knows is in the template"

echo "edited" >>rollout.yml
sum=$(sha256sum rollout.yml)
out=$("$BATON" init 2>&1)
is "$?" 1 "a second baton init exits 1"
like "$out" "^baton: init: rollout.yml: exists, left as it is" "naming the file"
is "$(sha256sum rollout.yml)" "$sum" "and leaves the edited file unchanged"
ln -s nowhere link.yml
"$BATON" init link.yml >/dev/null 2>&1
is "$?" 1 "an init over a dangling symlink refuses too"
ok "and writes nothing through it" [ ! -e nowhere ]
out=$("$BATON" init other.yml 2>&1)
is "$?" 0 "baton init FILE writes another name"
like "$out" "^baton: wrote other.yml" "and says so"
"$BATON" init no/such/dir.yml >/dev/null 2>&1
is "$?" 1 "init into a folder that is not there exits 1"

# The untouched template: plan stops at the placeholder the loader can tell from a key.
out=$("$BATON" plan other.yml --state-dir "$dir/state" 2>&1)
is "$?" 1 "plan on the untouched template is a file error (exit 1)"
line=$(grep -n 'public_key: "FILL IN' other.yml | cut -d: -f1)
like "$out" "^baton: other.yml:$line: nodes\[0\]\.public_key: must be the agent's Z85 public key" \
    "naming the node's public_key line ($line)"

# Filled in: the keys, an artifact, an endpoint where nothing listens.
port=47411
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
mkdir keys
"$BATON" keygen keys/coordinator >/dev/null && "$BATON" keygen agent >/dev/null
key=$(cat agent.pub)
# Z85 has & (sed's "the match") and the key goes into a sed replacement: escaped, or one key
# in a few would turn into a broken line.
key_sed=$(printf '%s' "$key" | sed 's/[&\\|]/\\&/g')
printf '#!/bin/sh\necho 1.0.0\n' >myservice-1.0.0
fill() { sed -e "s|public_key: \"FILL IN[^\"]*\"|public_key: \"$key_sed\"|" \
    -e "s|tcp://127.0.0.1:7400|tcp://127.0.0.1:$port|" "$1"; }
fill other.yml >filled.yml
out=$("$BATON" plan filled.yml --state-dir "$dir/state" 2>&1)
is "$?" 2 "filled in, plan gets to the node: refused (exit 2), not a file error"
like "$out" "nothing listens at 127.0.0.1:$port" "with the node's own reason: nothing listens"

# Every optional key uncommented at the value shown loads too (max_failures needs
# on_failure: continue; sha256 and catalog are alternatives to fill in).
fill other.yml | sed -E -e '/^# (sha256|catalog|max_failures):/b' -e 's/^# ([a-z_]+:( |$))/\1/' \
    -e 's/^#   ([a-z_]+: )/  \1/' >all.yml
is "$(grep -cE '^(timeouts|  connect|  step|liveness|min_healthy_time|healthy_deadline|progress_deadline|batches|max_unavailable|on_failure|pause_after|max_in_flight|restore_shared|rehearse|notify|webhooks|analysis|  prometheus|  checks):' all.yml)" \
    19 "with the 19 optional keys shown uncommented (analysis with its prometheus and checks)"
out=$("$BATON" plan all.yml --state-dir "$dir/state" 2>&1)
is "$?" 2 "plan loads it and gets to the node (exit 2)"
like "$out" "nothing listens at 127.0.0.1:$port" "the same reason"
done_testing
