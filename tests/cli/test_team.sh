# test_team.sh: the micro-swarm library (lua/team.lua) through `hswarm run`: selection rules,
# retries with feedback, a failing team not stopping the others, a member that raises; the
# coordinator (lua/coordinator.lua), flat and grouped, with a failing item; and the
# code-fixing skeleton (examples/fix_team.lua) with its command verifier, leaving the original
# directory untouched.
. "$(dirname "$0")/lib.bash"

cat > teams.lua <<'LUA'
local team = require("team")
local function run_team(ctx, kind)
  if kind == "retry" then
    -- candidates 1..5 (member i proposes round + i - 1); only 7 verifies: found in round 3
    return team.run(ctx, {size = 5, rounds = 4, task = 7,
      propose = function(c, task, fb, round) return tostring(round + (c.id % 5)) end,
      verify = function(x, task) return tonumber(x) == task, 0, "not " .. x end})
  elseif kind == "never" then
    return team.run(ctx, {size = 3, rounds = 2, task = 0,
      propose = function() return "a" end, verify = function() return false, 0, "no" end})
  elseif kind == "raises" then
    return team.run(ctx, {size = 4, rounds = 1, select = "vote",
      propose = function(c) if c.id % 2 == 0 then error("broken member") end return "b" end})
  elseif kind == "majority" then
    local votes = {"x", "y", "y", "z", "y", "x"}
    return team.run(ctx, {size = 6, rounds = 1,
      propose = function(c) return votes[(c.id % 6) + 1] end,
      verify = function(v) return v ~= "y", v == "x" and 2 or 1 end})
  elseif kind == "best" then
    local votes = {"x", "y", "y", "z", "y", "x"}
    return team.run(ctx, {size = 6, rounds = 1, select = "best-score",
      propose = function(c) return votes[(c.id % 6) + 1] end,
      verify = function(v) return true, v == "z" and 5 or 1 end})
  end
end
function main(ctx)
  local kinds = {"retry", "never", "raises", "majority", "best"}
  local ids = {}
  for i, k in ipairs(kinds) do
    ids[i] = ctx.spawn(function(c)
      local r = run_team(c, k)
      local fb = r.rounds_log[#r.rounds_log].feedback
      return string.format("%s:%s:%s:%d", k, tostring(r.ok), tostring(r.answer), r.round)
    end, nil, {team = i + 1})
  end
  local out = {}
  for i = 1, #ids do out[i] = tostring(ctx.join(ids[i])) end
  return table.concat(out, " ")
end
LUA
expect_status 0 "$HSWARM" run teams.lua --quiet
expect_in out.txt "retry:true:7:3"
expect_in out.txt "never:false:nil:2"
expect_in out.txt "raises:true:b:1"
expect_in out.txt "majority:true:x:1"   # y does not verify; x (2 votes) beats z (1)
expect_in out.txt "best:true:z:1"

cat > coord.lua <<'LUA'
local coordinator = require("coordinator")
function main(ctx)
  local seen = {}
  local flat = coordinator.run(ctx, {task = 4,
    decompose = function(n) local t = {} for i = 1, n do t[i] = i * 10 end return t end,
    run = function(c, item, i) return tostring(item + i) end,
    merge = function(results) return table.concat(results, ",") end})
  local grouped = coordinator.run(ctx, {task = 7, group = 3, team_base = 100,
    decompose = function(n) local t = {} for i = 1, n do t[i] = i end return t end,
    run = function(c, item, i)
      if item == 5 then error("item five fails") end
      return item .. "@" .. c.team
    end,
    on_result = function(i, r) seen[#seen + 1] = i end,
    merge = function(results)
      local out = {}
      for i = 1, 7 do out[i] = results[i] or "nil" end
      return table.concat(out, ",")
    end})
  return flat .. " | " .. grouped .. " | " .. table.concat(seen, ",")
end
LUA
expect_status 0 "$HSWARM" run coord.lua --quiet
expect_in out.txt "result: 11,22,33,44 | 1@100,2@101,3@102,4@103,nil,6@105,7@106 | 1,2,3,4,5,6,7"

cp -r "$SRC/examples/area_project" project
before=$(md5sum project/area.awk)
expect_status 0 "$HSWARM" run "$SRC/examples/fix_team.lua" "$WORK/project" --seed 5
expect_in out.txt "result: return w * h"
[ "$(md5sum project/area.awk)" = "$before" ] || fail "the verifier changed the original directory"
# command verifiers of a team's members run at the same time: each candidate's command marks a
# shared directory and passes only once every member's mark is there (a barrier), which cannot
# happen if the commands run one after another; lockstep runs with them replay identically
BARRIER=$(mktemp -d /tmp/hswarm-barrier-XXXXXX)
trap 'rm -rf "$WORK" "$BARRIER"' EXIT
chmod 1777 "$BARRIER"  # as root the commands run as nobody
cat > par.lua <<'LUA'
local team = require("team")
local verify = require("verify")
function main(ctx, args)
  local dir, n, tries = args[1], tonumber(args[2]), tonumber(args[3])
  local cmd = "touch " .. dir .. "/$(cat id); i=0; while [ $(ls " .. dir .. " | wc -l) -lt " .. n ..
              " ]; do i=$((i+1)); [ $i -gt " .. tries .. " ] && exit 1; sleep 0.05; done"
  local r = team.run(ctx, {size = n, rounds = 1,
    propose = function(c) return "m" .. c.id end,
    verify = verify.checker(ctx, {cmd = cmd, time_limit = 30},
                            function(id) return {id = id} end)})
  local passed = 0
  for _, v in ipairs(r.rounds_log[1].verified) do passed = passed + (v and 1 or 0) end
  return "passed " .. passed .. " of " .. n
end
LUA
mkdir "$BARRIER/b" "$BARRIER/c" "$BARRIER/d" && chmod 1777 "$BARRIER"/*
expect_status 0 "$HSWARM" run par.lua "$BARRIER/b" 4 200 --verify-jobs 4 --quiet --log par.log
expect_in out.txt "result: passed 4 of 4"
expect_status 0 "$HSWARM" replay par.log
expect_in out.txt "replay identical"
expect_status 0 "$HSWARM" run par.lua "$BARRIER/c" 4 200 --verify-jobs 4 --quiet --mode free
expect_in out.txt "result: passed 4 of 4"
# one command at a time: the first gives up alone, only the second finds two marks (the check can
# fail)
expect_status 0 "$HSWARM" run par.lua "$BARRIER/d" 2 20 --verify-jobs 1 --quiet
expect_in out.txt "result: passed 1 of 2"
echo "ok"
