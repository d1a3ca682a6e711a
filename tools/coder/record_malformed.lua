-- record_malformed.lua: samples the coordinator's answer for a task without its JSON schema
-- (what the model writes when nothing constrains it) and prints the ones lua/codejob.lua's
-- parser refuses, one per line: the source of tests/data/coder/malformed.txt.
--   hswarm run tools/coder/record_malformed.lua SYSTEM COORDINATOR TASK N --repo DIR -m MODEL
-- (SYSTEM and COORDINATOR: the templates' texts.)
local job = require("codejob")
local code = require("code")
function main(ctx, args)
  local system, coord, task, n = args[1] .. "\n", args[2] .. "\n", args[3], tonumber(args[4])
  local map = code.map(ctx, task, 1024)
  local names = job.names_of(job.map_definitions(ctx, map.text))
  local prefix = ctx.llm.pin(job.render(system, {task = task, map = map.text, names = ""}))
  local prompt = job.render(coord, {task = task, map = map.text, names = table.concat(names, " ")})
  local function known(x) local d = code.sym(ctx, x) return d and #d > 0 end
  local out = {}
  for i = 1, n do
    local r, err = ctx.llm.generate{prompt = prompt, prefix = prefix, max_tokens = 300,
                               temperature = 1.2, seed = i}
    local text = r and r.text:gsub("\n$", "") or ""  -- no result: not UTF-8 text (err)
    if r and not text:find("\n") and not job.parse_items(text, known) then out[#out + 1] = text end
  end
  return table.concat(out, "\n")
end
