#!/bin/sh
# test.sh: the tests of area.awk (the command verifier of examples/fix_team.lua runs this).
set -e
check() {
  got=$(echo "$1" | awk -f area.awk)
  if [ "$got" != "$2" ]; then echo "area of $1: expected $2, got $got"; exit 1; fi
}
check "2 3" 6
check "4 4" 16
check "10 0" 0
echo "all tests passed"
