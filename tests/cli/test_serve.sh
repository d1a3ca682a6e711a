# test_serve.sh: `hswarm serve` with curl, on the shipped models/expr.gguf (ChatML for chat):
# every endpoint's answer in the OpenAI shapes; a streamed completion equals the same greedy
# completion unstreamed (stop strings held back and cut the same way); n > 1 shares the
# prompt's KV; log-probabilities (greedy tokens are the most likely); pinned prefixes; response_format under a JSON schema; embeddings equal `hswarm embed`'s; bad
# input answered with the right status and an OpenAI-style error naming the problem (bad JSON,
# wrong types, unknown model, unknown fields, huge bodies, header floods, wrong API key); a
# client that disconnects mid-stream has its sequence cancelled and the KV blocks come back; a
# slow client is cut off; SIGTERM stops the server cleanly.
. "$(dirname "$0")/lib.bash"
MODEL="$SRC/models/expr.gguf"
PROMPT='Write f(x) to fit the examples\nf(0)=3 f(1)=5 f(2)=7\nf(x)='

start() { # start ARGS...: a server on a free port; $URL, $PID
  "$HSWARM" serve -m "$MODEL" --port 0 --chat-template chatml "$@" > port.txt 2> serve.err &
  PID=$!
  for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
  [ -s port.txt ] || { cat serve.err; fail "the server did not start"; }
  URL="http://127.0.0.1:$(cat port.txt)"
}
stop() {
  kill -TERM "$PID"
  wait "$PID" || fail "the server exited $? after SIGTERM"
  expect_in serve.err "terminated: stopping"
}
# call METHOD PATH [BODY]: the status in code.txt, the body in body.txt
call() {
  local args=(-s -o body.txt -w '%{http_code}' -X "$1" "$URL$2" ${AUTH:+-H "Authorization: Bearer $AUTH"})
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" > code.txt || fail "curl failed on $1 $2"
}
expect_code() { [ "$(cat code.txt)" = "$1" ] || { cat body.txt; fail "status $(cat code.txt), expected $1"; }; }
error_says() { # error_says PARAM TEXT: an OpenAI-style error naming PARAM, its message with TEXT
  jq -e --arg p "$1" '.error.param == (if $p == "" then null else $p end) and (.error.type | type == "string")' body.txt >/dev/null \
    || { cat body.txt; fail "not an OpenAI-style error naming '$1'"; }
  jq -r .error.message body.txt | grep -qF -- "$2" || { cat body.txt; fail "the error lacks '$2'"; }
}
kv_used() { curl -s "$URL/metrics" ${AUTH:+-H "Authorization: Bearer $AUTH"} | awk '/^hswarm_kv_blocks\{state="used"\}/ {print $2}'; }

start
# 1. health, models, metrics
call GET /health; expect_code 200; jq -e '.status == "ok"' body.txt >/dev/null || fail "/health"
call GET /v1/models; expect_code 200
jq -e '.object == "list" and .data[0].id == "expr.gguf" and .data[0].object == "model"' body.txt >/dev/null || fail "/v1/models"
call GET /v1/models/expr.gguf; expect_code 200
call GET /v1/models/gpt-4; expect_code 404; error_says model "does not exist"
call GET /metrics; expect_code 200
grep -q '^# TYPE hswarm_kv_blocks gauge$' body.txt || fail "/metrics is not Prometheus text"
grep -q '^hswarm_requests_total{outcome="submitted"} 0$' body.txt || fail "/metrics: submitted"

# 2. a completion; the same one streamed gives the same text, with a stop string cut alike
BODY="{\"prompt\":\"$PROMPT\",\"max_tokens\":60,\"temperature\":0,\"stop\":[\";2\"]}"
call POST /v1/completions "$BODY"; expect_code 200
jq -e '.object == "text_completion" and (.id | startswith("cmpl-")) and .choices[0].finish_reason == "stop" and .usage.prompt_tokens > 0 and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens' body.txt >/dev/null || { cat body.txt; fail "completion shape"; }
whole=$(jq -r '.choices[0].text' body.txt)
[ -n "$whole" ] || fail "an empty completion"
case "$whole" in *";2"*) fail "the stop string was not cut: $whole";; esac
curl -sN "$URL/v1/completions" -d "${BODY%\}},\"stream\":true,\"stream_options\":{\"include_usage\":true}}" > stream.txt
[ "$(tail -n 2 stream.txt | head -n 1)" = "data: [DONE]" ] || { cat stream.txt; fail "the stream does not end with [DONE]"; }
streamed=$(grep '^data: {' stream.txt | sed 's/^data: //' | jq -j '.choices[0].text // empty')
[ "$streamed" = "$whole" ] || fail "streamed '$streamed' differs from '$whole'"
grep '^data: {' stream.txt | tail -n 1 | sed 's/^data: //' | jq -e '.choices == [] and .usage.completion_tokens > 0' >/dev/null || fail "no usage chunk"
grep '^data: {' stream.txt | sed 's/^data: //' | jq -se 'map(select(.choices[0].finish_reason == "stop")) | length == 1' >/dev/null || fail "not one finish_reason in the stream"

# 3. n > 1 with a seed: n choices, the prompt's KV shared; the same seed gives the same choices
BODY="{\"prompt\":\"$PROMPT\",\"max_tokens\":30,\"temperature\":1,\"n\":3,\"seed\":7}"
call POST /v1/completions "$BODY"; expect_code 200
jq -e '(.choices | length) == 3 and ([.choices[].index] == [0,1,2]) and .usage.prompt_tokens_details.cached_tokens >= 32' body.txt >/dev/null || { cat body.txt; fail "n = 3"; }
jq -c '[.choices[].text]' body.txt > first.txt
call POST /v1/completions "$BODY"; jq -c '[.choices[].text]' body.txt > second.txt
cmp -s first.txt second.txt || fail "the same seed gave different choices"

# 3b. log-probabilities: greedy tokens are the most likely ones; alternatives sorted, each <= 0
call POST /v1/completions "{\"prompt\":\"$PROMPT\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":3}"
expect_code 200
jq -e '.choices[0].logprobs as $l | ($l.tokens | length) == 6 and ($l.tokens | join("")) == .choices[0].text and ([range(6)] | all(. as $i | ($l.top_logprobs[$i] | to_entries | max_by(.value) | .key) == $l.tokens[$i] and ($l.token_logprobs[$i] <= 0)))' body.txt >/dev/null || { cat body.txt; fail "completions logprobs"; }
call POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":3,"temperature":0,"logprobs":true,"top_logprobs":4}'
expect_code 200
jq -e '.choices[0].logprobs.content | length == 3 and all(.top_logprobs | length == 4 and .[0].logprob >= .[1].logprob and .[1].logprob >= .[2].logprob and ([.[].logprob | exp] | add) <= 1.0001) and all(.token == .top_logprobs[0].token and .logprob == .top_logprobs[0].logprob)' body.txt >/dev/null || { cat body.txt; fail "chat logprobs"; }
call POST /v1/completions "{\"prompt\":\"x\",\"logprobs\":1,\"echo\":true}"; expect_code 400; error_says echo "echo with logprobs"

# 4. chat, streamed chat (role first, then content), response_format under a schema
call POST /v1/chat/completions '{"model":"expr.gguf","messages":[{"role":"system","content":"s"},{"role":"user","content":"f(0)=1"}],"max_tokens":8,"temperature":0}'
expect_code 200
jq -e '.object == "chat.completion" and .choices[0].message.role == "assistant" and (.choices[0].message.content | type == "string")' body.txt >/dev/null || { cat body.txt; fail "chat shape"; }
curl -sN "$URL/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}' > chat.txt
grep '^data: {' chat.txt | head -n 1 | sed 's/^data: //' | jq -e '.object == "chat.completion.chunk" and .choices[0].delta.role == "assistant"' >/dev/null || { cat chat.txt; fail "the first chat chunk"; }
call POST /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":40,"response_format":{"type":"json_schema","json_schema":{"name":"pick","schema":{"type":"object","properties":{"a":{"enum":["yes","no"]}},"required":["a"]}}}}'
expect_code 200
jq -r '.choices[0].message.content' body.txt | jq -e '.a == "yes" or .a == "no"' >/dev/null || { cat body.txt; fail "the answer is not JSON of the schema"; }

# 4b. pinned prefixes (an extension): pin a system prompt, list, use (its blocks reused), unpin
SYS="You are a careful assistant who writes f(x) from examples of its values at small integers."
call POST /v1/prefixes "{\"messages\":[{\"role\":\"system\",\"content\":\"$SYS\"}]}"; expect_code 200
jq -e '.object == "prefix" and .id == "pfx-1" and .pinned_tokens >= 32 and .pinned_tokens % 32 == 0 and .pinned_tokens <= .tokens' body.txt >/dev/null || { cat body.txt; fail "pin"; }
pinned=$(jq .pinned_tokens body.txt)
call GET /v1/prefixes; expect_code 200; jq -e '.data | length == 1 and .[0].id == "pfx-1"' body.txt >/dev/null || fail "list of prefixes"
curl -s "$URL/metrics" | grep -q "^hswarm_kv_blocks{state=\"pinned\"} $((pinned / 32))$" || fail "the pinned blocks are not in /metrics"
call POST /v1/chat/completions "{\"messages\":[{\"role\":\"system\",\"content\":\"$SYS\"},{\"role\":\"user\",\"content\":\"f(0)=1\"}],\"max_tokens\":3}"
expect_code 200; jq -e --argjson p "$pinned" '.usage.prompt_tokens_details.cached_tokens >= $p' body.txt >/dev/null || { cat body.txt; fail "the pinned prefix was not reused"; }
call POST /v1/prefixes '{"prompt":"ab"}'; expect_code 400; error_says prompt "at least 32 tokens"
call POST /v1/prefixes '{"prompt":"ab","messages":[{"role":"user","content":"x"}]}'; expect_code 400; error_says messages "not both"
call DELETE /v1/prefixes/pfx-1; expect_code 200; jq -e '.deleted == true' body.txt >/dev/null || fail "unpin"
call DELETE /v1/prefixes/pfx-1; expect_code 404; error_says id "no such pinned prefix"
call GET /v1/prefixes; jq -e '.data == []' body.txt >/dev/null || fail "a prefix is still listed"
curl -s "$URL/metrics" | grep -q '^hswarm_kv_blocks{state="pinned"} 0$' || fail "blocks still pinned after unpinning"

# 5. embeddings: as `hswarm embed` computes them, floats or base64
call POST /v1/embeddings '{"input":["f(0)=3","x"]}'; expect_code 200
jq -e '.object == "list" and (.data | length) == 2 and (.data[0].embedding | length) == 192 and .usage.prompt_tokens > 0' body.txt >/dev/null || { cat body.txt; fail "embeddings shape"; }
jq -c '.data[0].embedding' body.txt > served.json
"$HSWARM" embed -m "$MODEL" "f(0)=3" --json > direct.json 2>/dev/null || fail "hswarm embed failed"
python3 - served.json direct.json <<'PY' || fail "the served embedding differs from hswarm embed's"
import json, sys
a = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
b = d.get("embedding") or d.get("embeddings", [None])[0]
assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (a[:3], b[:3])
PY
call POST /v1/embeddings '{"input":"f(0)=3","encoding_format":"base64"}'; expect_code 200
jq -r '.data[0].embedding' body.txt | base64 -d | wc -c | grep -qx 768 || fail "base64: not 192 floats"

# 6. bad input
call POST /v1/completions '{"prompt":'; expect_code 400; error_says "" "not valid JSON"
call POST /v1/completions '{"prompt":"x","temperature":"hot"}'; expect_code 400; error_says temperature "must be a number"
call POST /v1/completions '{"prompt":"x","n":99}'; expect_code 400; error_says n "between 1 and 16"
call POST /v1/completions '{"prompt":"x","tools":[]}'; expect_code 400; error_says tools "unrecognized request argument"
call POST /v1/completions '{"prompt":"x","model":"gpt-4"}'; expect_code 404; error_says model "does not exist"
call POST /v1/completions '{"prompt":"x","max_tokens":500}'; expect_code 400; error_says max_tokens "exceed the context"
call POST /v1/completions '{"prompt":[1,99999]}'; expect_code 400; error_says prompt "not in the vocabulary"
call POST /v1/completions '{"prompt":"x","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"nope"}}}}'; expect_code 400; error_says response_format "JSON schema"
call GET /v1/completions; expect_code 405
call GET /nope; expect_code 404; error_says "" "no such endpoint"
head -c 1100000 /dev/zero | tr '\0' ' ' > big.json
curl -s -o body.txt -w '%{http_code}' "$URL/v1/completions" --data-binary @big.json > code.txt
expect_code 413; error_says "" "larger than"
curl -s -o /dev/null -w '%{http_code}' "$URL/health" -H "X-Flood: $(head -c 40000 /dev/zero | tr '\0' a)" > code.txt
expect_code 431
call GET /health; expect_code 200

# 7. a client that goes away mid-stream: its sequence is cancelled, the KV blocks come back
base=$(kv_used)
for i in 1 2 3; do
  timeout 0.5 curl -sN "$URL/v1/completions" -d "{\"prompt\":\"$PROMPT\",\"max_tokens\":120,\"temperature\":1.5,\"stream\":true}" > /dev/null
done
for _ in $(seq 30); do [ "$(kv_used)" = "$base" ] && break; sleep 0.2; done
[ "$(kv_used)" = "$base" ] || fail "KV blocks in use after the clients left: $(kv_used), baseline $base"
curl -s "$URL/metrics" | grep -q '^hswarm_requests_running 0$' || fail "requests still running"
curl -s "$URL/metrics" | awk '/outcome="cancelled"/ {exit !($2 >= 1)}' || fail "no request was cancelled"
stop

# 8. the API key; a slow client is cut off
printf 'sk-test-123\n' > key.txt
start --api-key-file key.txt --timeout 2
call GET /health; expect_code 200
call GET /v1/models; expect_code 401; error_says "" "API key"
AUTH=sk-test-124; call GET /v1/models; expect_code 401
AUTH=sk-test-12; call GET /v1/models; expect_code 401
AUTH=sk-test-123; call GET /v1/models; expect_code 200
call POST /v1/completions '{"prompt":"f(0)=1","max_tokens":3}'; expect_code 200
grep -q "sk-test" serve.err && fail "the key was logged"
exec 3<>"/dev/tcp/127.0.0.1/$(cat port.txt)"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s)
timeout 10 cat <&3 > /dev/null
[ $(( $(date +%s) - t0 )) -le 6 ] || fail "a slow client was not cut off"
exec 3<&-
AUTH=
stop
