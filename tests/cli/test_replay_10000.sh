# test_replay_10000.sh: a 10,000-agent run of isolated agents, logged twice and replayed.
# label: slow
. "$(dirname "$0")/lib.bash"
cp "$SRC/examples/fanout.lua" .
expect_status 0 "$HSWARM" run fanout.lua 10000 --log a.log --quiet --json
expect_json
[ "$(jq -r .agents.exited out.txt)" = 10000 ] || fail "10,000 agents should end"
expect_status 0 "$HSWARM" run fanout.lua 10000 --log b.log --quiet
cmp -s a.log b.log || fail "logs differ"
expect_status 0 "$HSWARM" replay a.log
expect_in out.txt "replay identical"
echo "test_replay_10000: ok"
