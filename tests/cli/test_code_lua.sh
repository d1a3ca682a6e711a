# test_code_lua.sh: swarm scripts reach the code-intelligence layer (lua/code.lua over the code.*
# operations of `hswarm run --repo`): lookups, callers, search, slices, a function-level patch
# tried then written; the run's log replays without the repository. Also lua/json.lua: decoding
# (escapes, surrogate pairs, nesting, null), encoding (sorted keys, arrays), and its errors.
. "$(dirname "$0")/lib.bash"
export XDG_CACHE_HOME="$WORK/cache"
mkdir -p repo && cat > repo/calc.py <<'PY'
def square(x):
    return x * x


def area(side):
    """The area of a square."""
    return square(side)
PY
cat > agent.lua <<'LUA'
local code = require("code")
local json = require("json")
function main(ctx)
  local out = {}
  local d = code.sym(ctx, "area")
  out[#out + 1] = d[1].path .. ":" .. d[1].start_line .. " " .. d[1].kind .. " " .. d[1].doc
  local c = code.callers(ctx, "square")
  out[#out + 1] = "caller " .. c[1].from.qname
  local s = code.slice(ctx, "area")
  out[#out + 1] = "slice " .. (s.text:find("def square%(x%):") and "has-callee" or "no-callee")
  local f = code.search(ctx, "area of a square")
  out[#out + 1] = "search " .. f.hits[1].definition.qname
  local m = code.map(ctx, "compute the area", 64)
  out[#out + 1] = "map " .. (m.text:find("^calc.py:\n") and "ok" or m.text) .. " " ..
                  tostring(m.tokens <= 64 and m.personalized > 0)
  local none, err = code.sym(ctx, "")
  out[#out + 1] = "empty " .. tostring(none and #none)
  local p = "@@ replace square in calc.py\ndef square(x):\n    return x ** 2\n"
  local tried = code.patch(ctx, p)
  out[#out + 1] = "tried " .. tostring(tried.ok) .. " " .. tostring(tried.written)
  local bad = code.patch(ctx, "@@ replace cube in calc.py\ndef cube(x):\n    return 1\n")
  out[#out + 1] = "bad " .. tostring(bad.ok) .. " " .. bad.errors[1]
  local done = code.patch(ctx, p, {write = true})
  out[#out + 1] = "written " .. tostring(done.written)
  return table.concat(out, "|")
end
LUA
expect_status 0 "$HSWARM" run agent.lua --repo repo --quiet --log run.log
expect_in out.txt "calc.py:5 function The area of a square."
expect_in out.txt "|caller area|"
expect_in out.txt "|slice has-callee|"
expect_in out.txt "|search area|"
expect_in out.txt "|map ok true|"
expect_in out.txt "|tried true false|"
expect_in out.txt "|bad false line 1: no definition cube in calc.py"
expect_in out.txt "|written true"
grep -q "return x \*\* 2" repo/calc.py || fail "the patch was not written"
mv repo elsewhere   # the replay needs no repository
expect_status 0 "$HSWARM" replay run.log
expect_in out.txt "replay identical"
mv elsewhere repo
expect_status 3 "$HSWARM" run agent.lua --repo no/such/dir --quiet
expect_in err.txt "--repo no/such/dir"

cat > json.lua <<'LUA'
local json = require("json")
function main(ctx)
  local v = json.decode(' {"a": [1, 2.5, "x\\n\\u00e9\\ud83d\\ude00", true, null, -3e2],' ..
                        ' "b": {"c": {}}, "e": []} ')
  assert(v.a[1] == 1 and math.type(v.a[1]) == "integer" and v.a[2] == 2.5)
  assert(v.a[3] == "x\n\u{e9}\u{1F600}", v.a[3])
  assert(v.a[4] == true and v.a[5] == json.null and v.a[6] == -300 and #v.a == 6)
  assert(next(v.b.c) == nil and #v.e == 0)
  assert(json.encode({b = 1, a = {1, 2, "q\""}, c = json.null}) == '{"a":[1,2,"q\\""],"b":1,"c":null}')
  assert(json.decode(json.encode({s = "tab\there"})).s == "tab\there")
  local bad = {'{"a" 1}', '[1, 2', '"unterminated', '{"a": tru}', '[1] 2', '"\\x"', ''}
  for _, t in ipairs(bad) do
    local ok, err = pcall(json.decode, t)
    assert(not ok and tostring(err):find("^json: "), t)
  end
  local deep = string.rep("[", 300) .. string.rep("]", 300)
  assert(not pcall(json.decode, deep))
  return "json ok"
end
LUA
expect_status 0 "$HSWARM" run json.lua --quiet
expect_in out.txt "result: json ok"
echo "ok"
