# test_serve_openai.sh: the official `openai` package from the npm registry (the version pinned in
# tests/node/package-lock.json, installed by tools/setup.sh), run with the machine's Node.js,
# against `hswarm serve` with an API key: tests/node/openai_client.mjs (chat, streaming, n > 1,
# completions, embeddings, a JSON-schema answer, a bad parameter, an authentication failure).
. "$(dirname "$0")/lib.bash"
command -v node >/dev/null || fail "node is not installed (tools/setup.sh installs it)"
[ -d "$SRC/tests/node/node_modules/openai" ] || fail "the openai package is not installed (tools/setup.sh: npm ci in tests/node)"
printf 'sk-node-test\n' > key.txt
"$HSWARM" serve -m "$SRC/models/expr.gguf" --port 0 --chat-template chatml --api-key-file key.txt \
  --model-name expr > port.txt 2> serve.err &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
[ -s port.txt ] || { cat serve.err; fail "the server did not start"; }
node "$SRC/tests/node/openai_client.mjs" "http://127.0.0.1:$(cat port.txt)/v1" sk-node-test expr \
  > client.txt 2>&1 || { cat client.txt serve.err; fail "the openai client's checks failed"; }
cat client.txt
expect_in client.txt "all client checks passed"
kill -TERM $PID
wait $PID || fail "the server exited $? after SIGTERM"
