# test_run.sh: `hswarm run` on the examples, the summary, --json, and the exit codes.
. "$(dirname "$0")/lib.bash"

expect_status 0 "$HSWARM" run "$SRC/examples/pingpong.lua" 20
expect_in out.txt "result: 20 round trips"
expect_in err.txt "ponger said: ponger done"

expect_status 0 "$HSWARM" run "$SRC/examples/teams_vote.lua" 30 --seed 4 --json --quiet
expect_json
[ "$(jq -r .status out.txt)" = ok ] || fail "status not ok"
[ "$(jq -r .agents.spawned out.txt)" = 331 ] || fail "teams_vote should spawn 331 agents"
[ "$(jq -r .agents.failed out.txt)" = 0 ] || fail "no agent should fail"

expect_status 0 "$HSWARM" run "$SRC/examples/fanout.lua" 2001 20 light --mode free --json --quiet
expect_json
[ "$(jq -r .agents.exited out.txt)" = 2001 ] || fail "fanout should end 2001 agents"
[ "$(jq -r .mode out.txt)" = free ] || fail "mode should be free"

# usage errors: exit 2 with a message
expect_status 2 "$HSWARM" run
expect_in err.txt "no script given"
expect_status 2 "$HSWARM" run x.lua --mode sideways
expect_in err.txt "--mode must be lockstep or free"
expect_status 2 "$HSWARM" run x.lua --seed banana
expect_in err.txt "--seed needs a non-negative number"
expect_status 2 "$HSWARM" frobnicate
expect_in err.txt "unknown command 'frobnicate'"

# a missing script: exit 3, the path named; with --json, one error object
expect_status 3 "$HSWARM" run nowhere.lua
expect_in err.txt "cannot read script nowhere.lua"
expect_status 3 "$HSWARM" run nowhere.lua --json
expect_json
[ "$(jq -r .status out.txt)" = error ] || fail "a failed start should say status error"
jq -r .error out.txt | grep -qF "cannot read script nowhere.lua" || fail "the error should name the script"

# a failing main agent: exit 1, the failure named with agent, file and line
printf 'function main(ctx)\n  error("kaboom")\nend\n' > bad.lua
expect_status 1 "$HSWARM" run bad.lua
expect_in out.txt "failed: agent 1 (bad.lua): bad.lua:2: kaboom"

# a syntax error in a child fails the child only
printf 'function main(ctx)\n  local c = ctx.spawn("child.lua")\n  local r, err = ctx.join(c)\n  return "child said: " .. err\nend\n' > parent.lua
printf 'function main(ctx) return ) end\n' > child.lua
expect_status 0 "$HSWARM" run parent.lua
expect_in out.txt "result: child said: child.lua:1:"
expect_in out.txt "1 failed"

# an infinite loop and a memory bomb, with small limits
printf 'function main(ctx) while true do end end\n' > loop.lua
expect_status 1 "$HSWARM" run loop.lua --budget 100000
expect_in out.txt "instruction budget of 100000 per activation exceeded"
printf 'function main(ctx) local t = {} while true do t[#t+1] = string.rep("x", 4096) .. #t end end\n' > bomb.lua
expect_status 1 "$HSWARM" run bomb.lua --agent-memory 2M
expect_in out.txt "memory limit of 2097152 bytes exceeded"
# the first agent waiting forever: exit 1, said plainly; cut by --max-steps: exit 0, "stopped"
printf 'function main(ctx) ctx.recv() end\n' > wait.lua
expect_status 1 "$HSWARM" run wait.lua
expect_in out.txt "ended with the first agent blocked"
expect_status 1 "$HSWARM" run wait.lua --max-steps 3 --json
[ "$(jq -r .status out.txt)" = blocked ] || fail "a waiting agent with no timer ends the run before step 3: blocked"
printf 'function main(ctx) while true do ctx.sleep(1) end end\n' > tick.lua
expect_status 0 "$HSWARM" run tick.lua --max-steps 5 --json
[ "$(jq -r .status out.txt)" = stopped ] || fail "status should be stopped"
[ "$(jq -r .steps out.txt)" = 5 ] || fail "should stop at step 5"
echo "test_run: ok"
