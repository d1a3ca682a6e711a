-- fix_team.lua: a code-fixing team skeleton with a command verifier.
-- Five members each propose a new body for area() in examples/area_project/area.awk; every candidate is
-- written over a private copy of the directory and checked by running its test suite (test.sh)
-- in a sandbox; the team keeps a candidate whose tests pass, and feeds the failing tests' output
-- back to the next round. Here the members draw from a few canned bodies (math.random, seeded);
-- with a model (hswarm run examples/fix_team.lua [DIR] -m FILE) they ask it first, given the
-- function and the feedback. Usage: hswarm run examples/fix_team.lua [DIR] [--seed S] [-m FILE]
local team = require("team")
local verify = require("verify")

local CANNED = {"return w + h", "return w * w", "return w - h", "return w * h", "return h * h"}

local function source(body)
  return "function area(w, h) {\n  " .. body .. "\n}\n{ print area($1, $2) }\n"
end

function main(ctx, args)
  local dir = args[1] or "examples/area_project"
  local r = team.run(ctx, {
    size = 5, rounds = 4, task = "area(w, h) returns the area of a w by h rectangle",
    select = "verified-majority",
    propose = function(mctx, task, feedback)
      local ok, res = pcall(mctx.llm.generate, {
        prompt = "Fix this awk function. " .. task .. "\n" .. table.concat(feedback, "\n") ..
                 "\nfunction area(w, h) {\n  ", max_tokens = 16, stop = {"\n"}})
      if ok and res and res.text and res.text:find("return") then return res.text end
      return CANNED[math.random(#CANNED)]
    end,
    verify = verify.checker(ctx, {cmd = "sh test.sh", workdir = dir, time_limit = 10},
                            function(body) return {["area.awk"] = source(body)} end),
  })
  ctx.log(string.format("team: %s after %d round(s): %s", r.ok and "verified" or "no candidate passed",
                        r.round, tostring(r.answer)))
  return r.ok and r.answer or "none"
end
