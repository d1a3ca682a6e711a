# test_code_job_parts.sh: the pieces of the coding swarm's job (lua/codejob.lua), through
# `hswarm run`: templates (variables, lines left out, unknown variables refused), the work-item
# parser on good outputs, on malformed ones recorded from real runs of the shipped model without
# its schema (tests/data/coder/malformed.txt) and on 3,000 random mutations of a good one (it
# must answer items or a message, never raise), the items schema, and the extraction of a
# member's patch (text around it, fences, operations outside the item, no "@@ end") and the
# rejected answers as the shipped templates show them; definitions in parts and docstrings kept
# (coordinator_each), the one-definition answer's parser, and the merge with a conflict sent back.
. "$(dirname "$0")/lib.bash"
cp "$SRC/tests/data/coder/malformed.txt" malformed.txt
cat > parts.lua <<'LUA'
local job = require("codejob")
local json = require("json")
local function known(n) return n == "shipping" or n == "tiles" or n == "receipt" end
local out = {}
local function say(s) out[#out + 1] = s end
function main(ctx, args)
  -- templates
  say("render " .. job.render("A {x}\nnot {r}\nB {x} {r}\n", {x = "1", r = ""}))
  say("render2 " .. job.render("{slice}\nnot {r}\nP:\n", {slice = "S", r = "u | v"}))
  local ok, err = pcall(job.render, "{nope}\n", {}, "member")
  say("unknown " .. tostring(ok) .. " " .. err)
  say("braces " .. job.render('{"name": 1}\n', {}))
  -- good items
  local items = job.parse_items('[{"name":"shipping","why":"w"},{"add":"g","after":"tiles","why":"new"}]', known)
  say(string.format("good %d %s %s %s %s", #items, items[1].kind, items[1].name, items[2].kind,
                    items[2].after))
  local file = job.parse_items('[{"name":"tiles","file":"p.py"}]', known)
  say("file " .. file[1].file .. " why=" .. file[1].why)
  -- malformed: each line of the recorded file is one output
  local n, refused = 0, 0
  for line in (args[1] .. "\n"):gmatch("([^\n]*)\n") do
    if line ~= "" and line:sub(1, 1) ~= "#" then
      n = n + 1
      local it, why = job.parse_items(line, known)
      if not it then refused = refused + 1 ctx.log("refused: " .. why) end
    end
  end
  say(string.format("recorded %d refused %d", n, refused))
  for _, case in ipairs({{"", "empty"}, {"[]", "non%-empty"}, {"{}", "non%-empty"},
                         {'[{"name":"nope","why":"w"}]', "no definition named nope"},
                         {'[{"name":"tiles"},{"name":"tiles"}]', "named twice"},
                         {'[{"name":"tiles","why":3}]', "not a string"},
                         {'[{"add":"g"}]', "needs \"after\""},
                         {'[{"name":"tiles"', "not JSON"},
                         {'[1]', "not an object"}}) do
    local it, why = job.parse_items(case[1], known)
    say((it == nil and why:find(case[2]) ~= nil) and "bad-ok" or ("bad-WRONG " .. case[1] .. " " .. tostring(why)))
  end
  -- random mutations never raise
  local good = '[{"name":"shipping","why":"named in the task"},{"name":"tiles","why":"named in the task"}]'
  local raised = 0
  for i = 1, 3000 do
    local s = good
    for _ = 1, math.random(1, 4) do
      if #s == 0 then break end
      local p = math.random(1, #s)
      local r = math.random(3)
      if r == 1 then s = s:sub(1, p - 1) .. s:sub(p + 1)
      elseif r == 2 then s = s:sub(1, p - 1) .. string.char(math.random(0, 255)) .. s:sub(p + 1)
      else s = s:sub(1, p) end
    end
    local fine, a, b = pcall(job.parse_items, s, known)
    if not fine or (a == nil and type(b) ~= "string") then raised = raised + 1 ctx.log(tostring(a)) end
  end
  say("mutations raised " .. raised)
  -- the schema
  local schema = json.decode(job.items_schema({"shipping", "tiles"}))
  say("schema " .. schema.type .. " " .. schema.items.anyOf[1].properties.name.enum[2])
  -- patches
  local item = {kind = "replace", name = "shipping", path = "pricing.py"}
  local p = job.extract_patch("13 13;0;0 13 22;13*x+22\n@@ replace shipping\ndef shipping(n):\n    return 13*n+22\n@@ end\ntrailing", item)
  say("patch " .. p:gsub("\n", "/"))
  say("body " .. job.body_of(p))
  say("returned " .. job.returned({"return 13*n+22", "x = 1 return x", "return  x*x-1"}) .. ".")
  p = job.extract_patch("```\n@@ replace shipping in pricing.py\ndef shipping(n):\n    return 1\n@@ end\n```", item)
  say("fenced " .. tostring(p ~= nil))
  for _, case in ipairs({{"no patch here", "no patch operation"},
                         {"@@ replace tiles\ndef tiles(n):\n  return 1\n@@ end\n", "outside the work item"},
                         {"@@ replace shipping in other.py\nx\n@@ end\n", "outside the work item's file"},
                         {"@@ replace shipping\ndef shipping(n):\n    return 1\n", "does not end"},
                         {"@@ add after shipping\ndef g():\n  pass\n@@ end\n", "outside the work item"},
                         {"@@\n@@ end\n", "malformed operation"}}) do
    local got, why = job.extract_patch(case[1], item)
    say((got == nil and why:find(case[2], 1, true) ~= nil) and "xbad-ok" or ("xbad-WRONG " .. tostring(why)))
  end
  local add = job.extract_patch("@@ add after tiles\ndef g(n):\n    return n\n@@ end\n",
                                {kind = "add", name = "g", after = "tiles", path = "p.py"})
  say("add " .. add:match("^[^\n]*"))
  -- definitions in parts (the coordinator_each template's {signature} and {body})
  local slice = '# p.py, lines 3-8\nclass A:\n    def f(self, x):\n        """Two\n        lines."""\n' ..
                '        # TODO\n        raise NotImplementedError\n\n# what calls it:\ndef g():  # p.py:9\n'
  local d = job.definition_lines(slice)
  say("deflines " .. #d .. " " .. d[1])
  local parts = job.definition_parts('# p.py, lines 1-5\n    def f(self, x):\n        """Two\n' ..
    '        lines."""\n        # TODO\n        raise NotImplementedError\n\n# what calls it:\n', 3)
  say("parts " .. parts.signature .. "|" .. table.concat(parts.body, "/"))
  parts = job.definition_parts("# p.py, lines 1-2\ndef h(x): return x\n  \n", 3)
  say("parts2 " .. parts.signature .. "|" .. #parts.body)
  -- a dropped docstring comes back, at the new body's indentation; a kept one is left alone
  local orig = {"    def f(self, x):", '        """Two', '        lines."""', "        pass"}
  local mitem = {kind = "replace", name = "f", path = "p.py"}
  local kept = job.keep_docstring("@@ replace f in p.py\ndef f(self, x):\n    return x\n@@ end\n", mitem, orig)
  say("kept " .. kept:gsub("\n", "/"))
  say("bodykept " .. job.body_of(kept))
  local own = "@@ replace f in p.py\ndef f(self, x):\n    'one'\n    return x\n@@ end\n"
  say("own " .. tostring(job.keep_docstring(own, mitem, orig) == own))
  local c = "@@ replace f in p.c\nint f(void) {\n  return 1;\n}\n@@ end\n"
  say("notpy " .. tostring(job.keep_docstring(c, {kind = "replace", name = "f", path = "p.c"}, orig) == c))
  -- one definition's answer
  local ch, why = job.parse_change('{"change":true,"why":"not written yet"}')
  say("change " .. tostring(ch) .. " " .. why)
  for _, case in ipairs({{"", "empty"}, {"{", "not JSON"}, {'{"change":"yes"}', "boolean"},
                         {"[true]", "boolean"}, {'{"change":false,"why":1}', "not a string"}}) do
    local got, err = job.parse_change(case[1])
    say((got == nil and err:find(case[2], 1, true) ~= nil) and "cbad-ok" or ("cbad-WRONG " .. case[1]))
  end
  say("cschema " .. json.decode(job.change_schema).properties.change.type)
  return table.concat(out, "\n")
end
LUA
expect_status 0 "$HSWARM" run parts.lua "$(cat malformed.txt)" --quiet
expect_in out.txt "render A 1"
grep -q "^B 1 $" out.txt || fail "a line with a variable set was left out"
grep -q "^not $" out.txt && fail "a line whose only variable is empty was kept"
expect_in out.txt "render2 S"
expect_in out.txt "not u | v"
expect_in out.txt "unknown false template member: unknown variable {nope}"
expect_in out.txt 'braces {"name": 1}'
expect_in out.txt "good 2 replace shipping add tiles"
expect_in out.txt "file p.py why="
grep -q "bad-WRONG\|xbad-WRONG" out.txt && fail "a bad input was not refused as it should: $(grep WRONG out.txt)"
[ "$(grep -c '^bad-ok' out.txt)" = 9 ] || fail "not every bad item list was refused"
[ "$(grep -c '^xbad-ok' out.txt)" = 6 ] || fail "not every bad patch was refused"
expect_in out.txt "mutations raised 0"
expect_in out.txt "schema array tiles"
expect_in out.txt "patch @@ replace shipping in pricing.py/def shipping(n):/    return 13*n+22/@@ end/"
expect_in out.txt "body return 13*n+22"
expect_in out.txt "returned 13*n+22 x*x-1."
expect_in out.txt "fenced true"
expect_in out.txt "add @@ add after tiles in p.py"
n=$(grep -c -v '^#\|^$' malformed.txt)
expect_in out.txt "recorded $n refused $n"
expect_in out.txt "deflines 6 class A:"
expect_in out.txt "parts def f(self, x):|# TODO/raise NotImplementedError"
expect_in out.txt "parts2 def h(x): return x|0"
expect_in out.txt 'kept @@ replace f in p.py/def f(self, x):/    """Two/    lines."""/    return x/@@ end/'
expect_in out.txt "bodykept return x"
expect_in out.txt "own true"
expect_in out.txt "notpy true"
expect_in out.txt "change true not written yet"
grep -q "cbad-WRONG" out.txt && fail "a bad coordinator answer was not refused: $(grep cbad-WRONG out.txt)"
[ "$(grep -c '^cbad-ok' out.txt)" = 5 ] || fail "not every bad coordinator answer was refused"
expect_in out.txt "cschema boolean"

# the merge: a patch that does not apply on top of the ones before it goes back to its team
# (rerun with the merged patch and the reason), and the team's new answer is merged
mkdir -p mrepo && printf 'def f(x):\n    return 0\n\n\ndef g(x):\n    return 1\n' > mrepo/m.py
cat > merge.lua <<'LUA'
local job = require("codejob")
local code = require("code")
function main(ctx)
  local fa = "@@ replace f in m.py\ndef f(x):\n    return 10\n@@ end\n"
  local fb = "@@ replace f in m.py\ndef f(x):\n    return 20\n@@ end\n"
  local gg = "@@ replace g in m.py\ndef g(x):\n    return 30\n@@ end\n"
  local out = {}
  for _, again_ok in ipairs({true, false}) do
    local reports = {{status = "verified"}, {status = "verified"}, {status = "verified"}}
    local calls = {}
    local merged = job.merge(ctx, {fa, fb, nil}, 3, reports, function(i, base, note)
      calls[#calls + 1] = string.format("rerun %d base=%s note=%s", i, tostring(base == fa),
                                        note:match("^conflict with the other work items: .+") and "ok" or note)
      return {ok = again_ok, answer = again_ok and gg or nil}
    end)
    local r = code.patch(ctx, merged, {})
    out[#out + 1] = string.format("%s | %s | %s %s | applies=%s | %s", tostring(again_ok),
      table.concat(calls, ";"), reports[2].status, reports[2].conflict and "why" or "-",
      tostring(r and r.ok), (merged:gsub("\n", "/")))
  end
  return table.concat(out, "\n")
end
LUA
expect_status 0 "$HSWARM" run merge.lua --repo mrepo --quiet
cat out.txt
expect_in out.txt "true | rerun 2 base=true note=ok | verified after a conflict why | applies=true | @@ replace f in m.py/def f(x):/    return 10/@@ end/@@ replace g in m.py/def g(x):/    return 30/@@ end/"
expect_in out.txt "false | rerun 2 base=true note=ok | failed after a conflict why | applies=true | @@ replace f in m.py/def f(x):/    return 10/@@ end/"
