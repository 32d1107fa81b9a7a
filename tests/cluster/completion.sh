#!/bin/bash
# completion.sh: the scripts `baton completion bash|zsh|fish` writes from baton's table of
# commands, asked for completions the way each shell asks them: bash through COMP_WORDS and the
# function it registered, fish through `complete -C`, zsh in a real interactive zsh (zpty) with
# compinit, a Tab, and a compadd that prints what it is given to offer. The same lines in all
# three: commands, each command's own options and none of another's, rollout files (and not
# other files), dump files after --restore-dump, rollout ids from `baton list` of the journals
# the line names, commands after help, shells after completion. Needs no cluster.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
BUILD=${BUILD:-build}
BATON=$PWD/$BUILD/baton
export PATH=$PWD/$BUILD:$PATH # the scripts run `baton list` for rollout ids

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for s in bash zsh fish; do
    "$BATON" completion $s >"$dir/$s.out"
    is "$?" 0 "baton completion $s exits 0"
done
like "$("$BATON" completion tcsh 2>&1)" "^baton: no completion for 'tcsh'
usage: baton completion bash\|zsh\|fish" "an unknown shell is a usage error naming it"
"$BATON" completion tcsh >/dev/null 2>&1
is "$?" 1 "and exits 1"
ok "bash reads the bash script" bash -n "$dir/bash.out"
ok "zsh reads the zsh script" zsh -n "$dir/zsh.out"
ok "fish reads the fish script" fish -n "$dir/fish.out"

# A folder to complete in: two rollout files, other files, a folder, a dump, a state folder with
# one journal (unreadable, but `baton list` lists it, which is all completion needs).
work=$dir/work
mkdir -p "$work/sub" "$work/st/rollouts"
touch "$work/a.yml" "$work/b.yaml" "$work/c.txt" "$work/x.dump"
id=20240101T000000Z-abcdef
touch "$work/st/rollouts/$id.jsonl"
like "$("$BATON" list --state-dir "$work/st")" "^$id " "baton list shows the journal's id"

sorted() { tr ' ' '\n' | sed -e 's|/$||' -e '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'; }

# bash: the words as readline splits them (a trailing space: an empty word to complete).
bash_complete() { # LINE
    (cd "$work" && bash --norc --noprofile -c '
        . "$1"
        read -ra COMP_WORDS <<<"$2"
        case $2 in *" ") COMP_WORDS+=("") ;; esac
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE=$2 COMP_POINT=${#2}
        _baton baton "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$dir/bash.out" "$1") | sorted
}
fish_complete() { # LINE
    (cd "$work" && fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$dir/fish.out" "$1") |
        cut -f1 | sorted
}
# zsh: a real interactive zsh in a pseudo-terminal, compinit over a folder holding _baton, the
# line typed and a Tab; the compadd wrapper prints each match it is given (as
# zsh-capture-completion does), between two markers printed around the completion.
mkdir -p "$dir/fpath" && cp "$dir/zsh.out" "$dir/fpath/_baton"
cat >"$dir/capture.zsh" <<'EOF'
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1= PROMPT= RPROMPT=; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" insert-tab false'
zpty -w z 'bindkey "^I" complete-word; _zc_mark() { print -r -- "@ZC@" }; compprefuncs=(_zc_mark); comppostfuncs=(_zc_mark exit)'
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a __hits; builtin compadd -O __hits "$@"; local h; for h in $__hits; do print -r -- "@M@$h"; done; builtin compadd "$@"; }'
zpty -w z 'print -r -- "@READY@"'
out= ; integer n=0
until [[ $out == *'@READY@'* ]] || (( ++n > 400 )); do sleep 0.05; while zpty -r -t z chunk; do out+=$chunk; done; done
zpty -n -w z "$2"$'\t'
out= ; n=0
until [[ $out == *'@ZC@'*'@ZC@'* ]] || (( ++n > 400 )); do sleep 0.05; while zpty -r -t z chunk; do out+=$chunk; done; done
zpty -d z
[[ $out == *'@ZC@'*'@ZC@'* ]] || { print -r -- "no completion ran: $out" >&2; exit 2; }
print -r -- "$out" | tr -d '\r' | sed -n 's/^@M@//p'
EOF
zsh_complete() { # LINE
    (cd "$work" && timeout 30 zsh -f "$dir/capture.zsh" "$dir/fpath" "$1") | sorted
}

commands=$("$BATON" --help | sed -n 's/^\(usage:\)\? *baton \([a-z]*\).*/\2/p' | sorted)
# LINE|WANT: what each shell offers for LINE (sorted).
cases="baton |$commands
baton ro|rollback rollout
baton -|--help --version
baton status --f|--follow
baton list --f|
baton rollout --fo|
baton rollout --re|--restore-dump
baton rollout |a.yml b.yaml st sub
baton plan --restore-dump |st sub x.dump
baton status --state-dir st |$id a.yml b.yaml st sub
baton abort --state-dir st 2|$id
baton help ro|rollback rollout
baton completion |bash fish zsh
baton init c|c.txt"
# After the argument, bash and fish offer nothing; zsh, as its own commands do, the options.
after_arg="baton rollout a.yml |"

for sh in bash fish zsh; do
    while IFS='|' read -r line want; do
        is "$("${sh}_complete" "$line")" "$want" "$sh: '$line' offers: ${want:-nothing}"
    done <<<"$cases"
done
for sh in bash fish; do
    is "$("${sh}_complete" "${after_arg%|*}")" "" "$sh: '${after_arg%|*}' offers nothing more"
done
unlike "$(zsh_complete "${after_arg%|*}")" "yml" "zsh: '${after_arg%|*}' offers no second file"

# bash splits --opt=VALUE at the = (COMP_WORDBREAKS): the option is still found.
got=$(cd "$work" && bash --norc --noprofile -c '. "$1"; COMP_WORDS=(baton status --state-dir = st "");
    COMP_CWORD=5; _baton; printf "%s\n" "${COMPREPLY[@]}"' _ "$dir/bash.out" | sorted)
is "$got" "$id a.yml b.yaml st sub" "bash: 'baton status --state-dir=st ' asks that folder's journals"

# The Makefile's copies are what the binary writes (make install installs those).
make -s "$BUILD/completion/baton.bash" "$BUILD/completion/_baton" "$BUILD/completion/baton.fish" \
    BUILD="$BUILD" >/dev/null
ok "make's baton.bash is baton completion bash" cmp "$BUILD/completion/baton.bash" "$dir/bash.out"
ok "make's _baton is baton completion zsh" cmp "$BUILD/completion/_baton" "$dir/zsh.out"
ok "make's baton.fish is baton completion fish" cmp "$BUILD/completion/baton.fish" "$dir/fish.out"
done_testing
