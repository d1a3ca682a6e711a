# lib.bash: helpers for the black-box CLI tests (sourced). Each test script gets the hswarm binary
# as $1 and the source tree as $2, works in a fresh temporary directory, and fails on the first
# unmet expectation with a message saying what was expected.
set -u
HSWARM=$1
SRC=$2
WORK=$(mktemp -d /tmp/hswarm-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_status CODE CMD...: runs CMD, keeps stdout in out.txt and stderr in err.txt
expect_status() {
  local want=$1; shift
  "$@" >out.txt 2>err.txt
  local got=$?
  [ "$got" -eq "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $got, expected $want"; }
}
# expect_in FILE TEXT: FILE contains TEXT (fixed string)
expect_in() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }
# expect_json: out.txt is exactly one JSON object
expect_json() {
  [ "$(wc -l < out.txt)" -eq 1 ] || fail "--json printed more than one line"
  jq -e 'type == "object"' out.txt >/dev/null || fail "--json output is not a JSON object"
}
