# tap.sh: Test Anything Protocol output for baton's shell tests, read by tests/run-tests.
#
#   ok DESC CMD...         passes when CMD exits 0
#   nok DESC CMD...        passes when CMD exits non-zero
#   is GOT WANT DESC       passes when the two strings are equal (shows both when not)
#   like GOT PATTERN DESC  passes when GOT contains PATTERN (a grep -E pattern)
#   diag MSG               a comment line
#   done_testing           prints the plan; call it last
# Command output goes to stderr (the log), so stdout holds only TAP.

TAP_N=0
TAP_FAILS=0

_tap_result() { # STATUS DESC
    TAP_N=$((TAP_N + 1))
    if [ "$1" = 0 ]; then
        echo "ok $TAP_N - $2"
    else
        echo "not ok $TAP_N - $2"
        TAP_FAILS=$((TAP_FAILS + 1))
    fi
}

ok() {
    local desc=$1
    shift
    "$@" >&2
    _tap_result $? "$desc"
}

nok() {
    local desc=$1
    shift
    if "$@" >&2; then _tap_result 1 "$desc"; else _tap_result 0 "$desc"; fi
}

is() {
    if [ "$1" = "$2" ]; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        printf '#   got:  %s\n#   want: %s\n' "$1" "$2"
    fi
}

like() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        printf '#   got:  %s\n#   want: /%s/\n' "$1" "$2" | head -20
    fi
}

unlike() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        _tap_result 1 "$3"
        printf '#   got:  %s\n#   must not match: /%s/\n' "$1" "$2" | head -20
    else
        _tap_result 0 "$3"
    fi
}

diag() { echo "# $*"; }

done_testing() { echo "1..$TAP_N"; }
