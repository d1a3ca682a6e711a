# test_serve_load.sh: a load test of `hswarm serve` on loopback that stops by itself: 64
# concurrent streaming chat clients sharing a system message send 256 requests (hswarm bench
# serve on the shipped models/expr.gguf): no request fails, the KV blocks are back at the
# baseline afterwards, memory stays bounded, and the same requests through the library directly
# generate exactly the same number of tokens (same prompts, sampling and seeds).
. "$(dirname "$0")/lib.bash"
expect_status 0 "$HSWARM" bench serve -m "$SRC/models/expr.gguf" --clients 64 --requests 256 \
  --system-tokens 40 --gen 16 --json
expect_json
cat out.txt
jq -e '.http.failed == 0 and .library.failed == 0' out.txt >/dev/null || fail "requests failed"
jq -e '.kv_back_to_baseline == true' out.txt >/dev/null || fail "KV blocks were not back at the baseline"
jq -e '.http.tokens == .library.tokens and .http.tokens > 0' out.txt >/dev/null || fail "HTTP and library runs generated different tokens"
jq -e '.rss_growth_bytes < 256 * 1048576' out.txt >/dev/null || fail "memory grew by more than 256 MiB"
