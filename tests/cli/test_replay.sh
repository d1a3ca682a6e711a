# test_replay.sh: event logs through the CLI: identical logs for identical runs, replay, a changed
# script caught, corrupt and truncated logs, `hswarm log`.
. "$(dirname "$0")/lib.bash"

cp "$SRC/examples/teams_vote.lua" .
expect_status 0 "$HSWARM" run teams_vote.lua 40 --seed 9 --log a.log --quiet
expect_status 0 "$HSWARM" run teams_vote.lua 40 --seed 9 --log b.log --quiet
cmp -s a.log b.log || fail "two lockstep runs with one seed gave different logs"
expect_status 0 "$HSWARM" run teams_vote.lua 40 --seed 10 --log c.log --quiet
cmp -s a.log c.log && fail "another seed gave the same log"

expect_status 0 "$HSWARM" replay a.log
expect_in out.txt "replay identical"
expect_status 0 "$HSWARM" replay a.log --json
expect_json
[ "$(jq -r .status out.txt)" = identical ] || fail "replay status"

# free-running mode logs replay too
expect_status 0 "$HSWARM" run teams_vote.lua 10 --mode free --log f.log --quiet
expect_status 0 "$HSWARM" replay f.log
expect_in out.txt "replay identical"

# a run stopped by --max-steps replays identically (the limit is in the log)
printf 'function main(ctx) while true do ctx.sleep(2) ctx.log(ctx.now()) end end\n' > forever.lua
expect_status 0 "$HSWARM" run forever.lua --max-steps 9 --log m.log --quiet
expect_in out.txt "9 steps"
expect_status 0 "$HSWARM" replay m.log
expect_in out.txt "replay identical"
expect_status 0 "$HSWARM" log m.log
expect_in out.txt "max_steps=9"

# a changed script is a divergence naming the record and the agent
sed -i 's/math.random(1, 4)/math.random(2, 4)/' teams_vote.lua
expect_status 1 "$HSWARM" replay a.log
expect_in out.txt "replay diverged at record"
expect_in out.txt "(agent 1)"
expect_in out.txt "the main script changed"

# hswarm log prints one line per record, header first
expect_status 0 "$HSWARM" log b.log
head -1 out.txt | grep -q '^0 header seed=9' || fail "log should start with the header"
expect_in out.txt "end step="

# truncated: readable up to the last whole record, and said so
size=$(stat -c %s b.log)
head -c $((size - 5)) b.log > cut.log
expect_status 0 "$HSWARM" log cut.log
expect_in out.txt "(truncated: the log ends inside a record)"
cp "$SRC/examples/teams_vote.lua" .
expect_status 1 "$HSWARM" replay cut.log
expect_in out.txt "partial record"

# corrupt: a flipped byte is an error naming the record and offset
cp b.log bad.log
printf '\xff' | dd of=bad.log bs=1 seek=$((size / 2)) conv=notrunc status=none
"$HSWARM" log bad.log >out.txt 2>err.txt && fail "a corrupt log should not print cleanly"
grep -qE "record [0-9]+ at offset [0-9]+" err.txt || { cat err.txt; fail "no record/offset in the error"; }

# not a log
echo "just text" > text.log
expect_status 3 "$HSWARM" replay text.log
expect_in err.txt "not an hswarm event log"
echo "test_replay: ok"
