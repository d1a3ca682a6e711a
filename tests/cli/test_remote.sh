# test_remote.sh: remote model backends (--backend URL): `hswarm run` through `hswarm serve` gives
# the same results as the built-in engine, and its log replays without the server; `hswarm code`
# solves the example repository and `hswarm demo` runs through it; against a scripted server
# (tests/data/remote/fake_openai.py): 429 and 5xx are retried (Retry-After honoured) and a 400 is
# not, with the server's message in the error; at most 16 requests at once; requests sharing a
# pinned prefix are sent together (those waiting in the queue); the model name comes from the
# server's list.
. "$(dirname "$0")/lib.bash"
cat > gen.lua <<'LUA'
function main(ctx, args)
  local p = ctx.llm.pin("Write f(x) to fit the examples\n")
  local out = {}
  for _, line in ipairs({"f(0)=3 f(1)=5 f(2)=7", "f(0)=1 f(1)=2 f(2)=3", "f(0)=0 f(1)=1 f(2)=4"}) do
    local r, err = ctx.llm.generate{prompt = line .. "\nf(x)=", prefix = p, max_tokens = 40,
                                    temperature = 0, stop = {"\n"}}
    if not r then error(err) end
    out[#out + 1] = r.text .. "|" .. r.finish_reason .. "|" .. r.usage.prompt .. "|" .. r.usage.completion
  end
  return table.concat(out, " ; ")
end
LUA
serve() { # serve MODEL: hswarm serve on a free port; $URL, $SPID
  # (the old port file goes first: the new server's redirection truncates it only once that
  # process starts, so the wait below could read the previous server's port, then an empty file)
  rm -f port.txt
  "$HSWARM" serve -m "$1" --port 0 > port.txt 2> serve.err &
  SPID=$!
  for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
  [ -s port.txt ] || { cat serve.err; fail "the server did not start"; }
  URL="http://127.0.0.1:$(cat port.txt)/v1"
}
SPID= FPID=
trap 'kill $SPID $FPID 2>/dev/null; rm -rf "$WORK"' EXIT

# 1. hswarm serve as the backend: the built-in engine's results, a replay without the server
serve "$SRC/models/expr.gguf"
expect_status 0 "$HSWARM" run gen.lua -m "$SRC/models/expr.gguf"
grep '^result:' out.txt > local.txt
expect_status 0 "$HSWARM" run gen.lua --backend "$URL" --log remote.log
grep '^result:' out.txt > remote.txt
cmp -s local.txt remote.txt || { cat local.txt remote.txt; fail "the remote results differ from the built-in engine's"; }
kill -TERM $SPID; wait $SPID
expect_status 0 "$HSWARM" replay remote.log
expect_in out.txt "replay identical"
expect_status 3 "$HSWARM" run gen.lua --backend "$URL"
expect_in err.txt "Couldn't connect"
expect_status 2 "$HSWARM" run gen.lua -m "$SRC/models/expr.gguf" --backend "$URL"

# 2. hswarm code through hswarm serve (the coder model): the example solved from the task
serve "$SRC/models/coder.gguf"
cp -r "$SRC/examples/pricing" repo
expect_status 0 "$HSWARM" code --repo repo --task "implement the missing functions" --backend "$URL" \
  --verify "python3 -m unittest -q test_pricing" --verify-item "python3 -m unittest -q test_pricing -k {name}" \
  --team-size 16 --apply --quiet
expect_in out.txt "4 to change: shipping loyalty_points bulk_price tiles"
expect_in out.txt "final verification: passed"
(cd repo && python3 -m unittest -q test_pricing) || fail "the tests fail after the remote run"
kill -TERM $SPID; wait $SPID

# 3. hswarm demo through hswarm serve
serve "$SRC/models/expr.gguf"
expect_status 0 "$HSWARM" demo --tasks 10 --backend "$URL"
expect_in out.txt "team of"
kill -TERM $SPID; wait $SPID

# 4. a scripted server: retries, refusals, concurrency, grouping
fake() { # fake MODE
  rm -f fport.txt stats.json
  python3 "$SRC/tests/data/remote/fake_openai.py" fport.txt stats.json "$1" &
  FPID=$!
  for _ in $(seq 50); do [ -s fport.txt ] && break; sleep 0.1; done
  FURL="http://127.0.0.1:$(cat fport.txt)/v1"
}
cat > one.lua <<'LUA'
function main(ctx) local r, err = ctx.llm.generate{prompt = "abcxyz", max_tokens = 4}
  if not r then error(err) end return r.text end
LUA
fake 429x2
expect_status 0 "$HSWARM" run one.lua --backend "$FURL"
expect_in out.txt "result: ok:xyz"
jq -e '.requests == 3' stats.json >/dev/null || { cat stats.json; fail "429 was not retried twice"; }
kill $FPID; wait $FPID 2>/dev/null
fake 400
expect_status 1 "$HSWARM" run one.lua --backend "$FURL"
expect_in out.txt "HTTP 400: the fake refuses this"
jq -e '.requests == 1' stats.json >/dev/null || fail "a 400 was retried"
kill $FPID; wait $FPID 2>/dev/null
fake 500
expect_status 1 "$HSWARM" run one.lua --backend "$FURL"
expect_in out.txt "HTTP 500"
jq -e '.requests == 5' stats.json >/dev/null || { cat stats.json; fail "a 500 was not tried 5 times"; }
kill $FPID; wait $FPID 2>/dev/null
cat > many.lua <<'LUA'
function main(ctx)
  local a = ctx.llm.pin("AAAA shared prefix ")
  local b = ctx.llm.pin("BBBB shared prefix ")
  local ids = {}
  for i = 1, 40 do
    ids[i] = ctx.spawn(function(c)
      local r, err = c.llm.generate{prompt = string.format("%03d", i), prefix = i % 2 == 1 and a or b}
      if not r then error(err) end
      return r.text
    end)
  end
  local n = 0
  for i = 1, 40 do if tostring(ctx.join(ids[i])) == string.format("ok:%03d", i) then n = n + 1 end end
  return n
end
LUA
fake slow
expect_status 0 "$HSWARM" run many.lua --backend "$FURL"
expect_in out.txt "result: 40"
jq -e '.requests == 40 and .max_at_once <= 16 and .max_at_once >= 8' stats.json >/dev/null || { cat stats.json; fail "not at most 16 requests at once"; }
kill $FPID; wait $FPID 2>/dev/null
# one at a time: while the first is answered (0.2 s) the other 39, submitted alternately A, B,
# A, B..., wait in the queue, kept together by prefix: the server sees A, then the B's, then the
# A's (2 switches; in submission order it would be 39)
fake ok
expect_status 0 "$HSWARM" run many.lua --backend "$FURL" --backend-concurrency 1
expect_in out.txt "result: 40"
jq -e '.max_at_once == 1' stats.json >/dev/null || fail "--backend-concurrency 1 sent more than one at once"
switches=$(jq '[.prompts[] | .[0:4]] as $p | [range(1; $p | length) | select($p[.] != $p[. - 1])] | length' stats.json)
[ "$switches" -le 2 ] || { jq -c '.prompts' stats.json; fail "requests sharing a prefix were not sent together ($switches switches)"; }
kill $FPID; wait $FPID 2>/dev/null || true
