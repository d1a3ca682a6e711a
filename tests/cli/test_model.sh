# test_model.sh: the engine through the CLI on small synthetic models: `model synth` with learned
# vocabularies (BPE and SPM) and its errors, `model info`, `tokenize`/`detokenize` round trips,
# `generate` (greedy determinism, seeds, limits, stop strings, JSON-schema and grammar
# constraints, chat templates, context overruns), `bench engine --json` and `bench swarm --json`.
. "$(dirname "$0")/lib.bash"

printf 'def add(a, b):\n    return a + b\n\nThe quick brown fox jumps over the lazy dog.\n' > corpus.txt
for i in $(seq 1 40); do printf 'int value_%d = compute(%d, "text %d");\n' "$i" "$i" "$i" >> corpus.txt; done

# ---- synth ----
expect_status 0 "$HSWARM" model synth --preset tiny-llama3 --type f32 --corpus corpus.txt -o bpe.gguf --json
expect_json
[ "$(jq -r .tokenizer out.txt)" = bpe ] || fail "default tokenizer is not bpe"
[ "$(jq -r .pre out.txt)" = llama-bpe ] || fail "llama's default pre-tokenizer"
[ "$(jq -r .n_learned out.txt)" -gt 0 ] || fail "no token learned from the corpus"
[ "$(jq -r .n_vocab out.txt)" = 512 ] || fail "vocabulary size"
expect_status 0 "$HSWARM" model synth --preset tiny-qwen2 --type q8_0 --corpus corpus.txt -o qwen.gguf --json
[ "$(jq -r .pre out.txt)" = qwen2 ] || fail "qwen2's default pre-tokenizer"
expect_status 0 "$HSWARM" model synth --preset tiny-llama --tokenizer spm --corpus corpus.txt -o spm.gguf
expect_in err.txt "vocabulary: spm"
expect_status 0 "$HSWARM" model synth --preset tiny-llama --tokenizer bytes -o bytes.gguf
expect_status 0 "$HSWARM" model synth --arch llama --dim 64 --layers 1 --heads 4 --ffn 96 --vocab 300 \
  --rope-scaling llama3-tensor --corpus corpus.txt -o shape.gguf --json
[ "$(jq -r .rope_scaling out.txt)" = llama3-tensor ] || fail "rope scaling echoed"
expect_status 0 "$HSWARM" model info -m shape.gguf --json
[ "$(jq -r .rope.freqs_tensor out.txt)" = true ] || fail "model info shows rope_freqs.weight"

expect_status 2 "$HSWARM" model synth --preset tiny-llama --tokenizer wordpiece -o x.gguf
expect_in err.txt "unknown tokenizer 'wordpiece'"
expect_status 2 "$HSWARM" model synth --preset tiny-llama --tokenizer spm --pre qwen2 -o x.gguf
expect_in err.txt "--pre applies to --tokenizer bpe only"
expect_status 2 "$HSWARM" model synth --preset tiny-llama --pre klingon --corpus corpus.txt -o x.gguf
expect_in err.txt "klingon"
expect_status 3 "$HSWARM" model synth --preset tiny-llama --corpus no/such/dir -o x.gguf --json
expect_json
[ "$(jq -r .status out.txt)" = error ] || fail "--json error status"
expect_in err.txt "no/such/dir"
expect_status 2 "$HSWARM" model synth --preset tiny-llama --vocab 100 --corpus corpus.txt -o x.gguf
[ -e x.gguf ] && fail "a failed synth left a file"

# ---- info ----
expect_status 0 "$HSWARM" model info -m bpe.gguf --json
expect_json
[ "$(jq -r .architecture out.txt)" = llama ] || fail "model info architecture"

# ---- tokenize / detokenize ----
text='int value_7 = compute(7, "text 7"); // héllo 世界 🦊'
for m in bpe.gguf qwen.gguf spm.gguf bytes.gguf; do
  expect_status 0 "$HSWARM" tokenize -m "$m" "$text" --ids --no-bos
  ids=$(cat out.txt)
  [ -n "$ids" ] || fail "$m: no ids"
  # shellcheck disable=SC2086
  expect_status 0 "$HSWARM" detokenize -m "$m" $ids
  [ "$(cat out.txt)" = "$text" ] || fail "$m: detokenize(tokenize(x)) = '$(cat out.txt)', not x"
done
expect_status 0 "$HSWARM" tokenize -m bpe.gguf "value_7 value_7" --ids --no-bos
n_learned=$(wc -w < out.txt)
[ "$n_learned" -lt 15 ] || fail "the learned BPE vocabulary does not merge a frequent word ($n_learned ids)"
expect_status 0 "$HSWARM" tokenize -m bpe.gguf "hi<|eot_id|>" --json --special
expect_json
[ "$(jq -r '.pieces[-1]' out.txt)" = "<|eot_id|>" ] || fail "--special parses the special token"
expect_status 0 "$HSWARM" tokenize -m bpe.gguf "hi<|eot_id|>" --json
[ "$(jq -r '.pieces[-1]' out.txt)" = "<|eot_id|>" ] && fail "without --special the text is plain"
expect_status 0 "$HSWARM" tokenize -m bpe.gguf --ids --no-bos -- "-x --ids"
# shellcheck disable=SC2046
expect_status 0 "$HSWARM" detokenize -m bpe.gguf $(cat out.txt)
[ "$(cat out.txt)" = "-x --ids" ] || fail "text after -- is taken as text"
expect_status 2 "$HSWARM" detokenize -m bpe.gguf 12 abc
expect_in err.txt "'abc' is not a token id"
expect_status 3 "$HSWARM" detokenize -m bpe.gguf 1 99999 --json
expect_json
expect_in out.txt "99999"
expect_status 3 "$HSWARM" tokenize -m missing.gguf "x"
expect_in err.txt "missing.gguf"
head -c 1000 bpe.gguf > cut.gguf
expect_status 3 "$HSWARM" tokenize -m cut.gguf "x" --json
expect_json
[ "$(jq -r .status out.txt)" = error ] || fail "truncated file: error status"

# ---- generate ----
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "def add" -n 12 --temperature 0 --ignore-eos --ids
g1=$(grep '^ids:' out.txt)
[ "$(echo "$g1" | wc -w)" -eq 13 ] || fail "greedy did not give 12 ids: $g1"
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "def add" -n 12 --temperature 0 --ignore-eos --ids --threads 1
[ "$(grep '^ids:' out.txt)" = "$g1" ] || fail "greedy output depends on the thread count"
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "def add" -n 12 --seed 5 --temperature 1 --ignore-eos --json
expect_json
s1=$(jq -c .ids out.txt)
[ "$(jq -r .completion_tokens out.txt)" = 12 ] || fail "completion_tokens"
[ "$(jq -r .finish_reason out.txt)" = length ] || fail "finish_reason length"
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "def add" -n 12 --seed 5 --temperature 1 --ignore-eos --json
[ "$(jq -c .ids out.txt)" = "$s1" ] || fail "one seed gave two different samples"
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "def add" -n 12 --seed 6 --temperature 1 --ignore-eos --json
[ "$(jq -c .ids out.txt)" = "$s1" ] && fail "two seeds gave the same sample"
# a stop string: the text ends before it
expect_status 0 "$HSWARM" generate -m bytes.gguf -p "a" -n 64 --temperature 0 --ignore-eos --json
full=$(jq -r .text out.txt)
stop=${full:3:2}
if [ -n "$stop" ]; then
  expect_status 0 "$HSWARM" generate -m bytes.gguf -p "a" -n 64 --temperature 0 --ignore-eos --stop "$stop" --json
  [ "$(jq -r .finish_reason out.txt)" = stop ] || fail "stop string: finish_reason"
  case "$(jq -r .text out.txt)" in *"$stop"*) fail "the stop string was printed" ;; esac
fi
# constrained: every sample is valid JSON of the schema
printf '{"type":"object","properties":{"n":{"type":"integer"},"ok":{"type":"boolean"}},"required":["n","ok"]}' > schema.json
for seed in 1 2 3; do
  expect_status 0 "$HSWARM" generate -m qwen.gguf -p "x" -n 200 --seed $seed --json-schema schema.json --json
  jq -r .text out.txt > answer.json
  jq -e '(.n | type == "number") and (.ok | type == "boolean")' answer.json >/dev/null ||
    fail "seed $seed: output is not an object of the schema: $(cat answer.json)"
done
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "x" -n 50 --seed 4 --grammar-text 'root ::= ("yes" | "no") "!"' --json
case "$(jq -r .text out.txt)" in "yes!" | "no!") ;; *) fail "grammar output: $(jq -r .text out.txt)" ;; esac
[ "$(jq -r .finish_reason out.txt)" = stop ] || fail "a completed grammar stops"
expect_status 3 "$HSWARM" generate -m bpe.gguf -p "x" --grammar-text 'root ::= "a" (' --json
expect_json
expect_in out.txt "column"
printf '{"type":"object","required":["zz"]}' > bad_schema.json
expect_status 3 "$HSWARM" generate -m bpe.gguf -p "x" --json-schema bad_schema.json
expect_in err.txt "zz"
# chat: the template is found from the file's tokenizer.chat_template
expect_status 0 "$HSWARM" generate -m bpe.gguf --chat -p "hello" --system "be brief" -n 4 --ignore-eos --json
expect_json
[ "$(jq -r .prompt_tokens out.txt)" -gt 8 ] || fail "chat prompt is not rendered"
[ "$(jq -r .chat_template out.txt)" = llama3 ] || fail "llama3 chosen from the file"
expect_status 0 "$HSWARM" generate -m qwen.gguf --chat -p "hello" -n 4 --ignore-eos --json
[ "$(jq -r .chat_template out.txt)" = chatml ] || fail "chatml chosen from the file"
# a gemma3 file carries Gemma's turn template: found from it
expect_status 0 "$HSWARM" model synth --preset tiny-gemma3 --tokenizer spm --corpus corpus.txt -o gemma.gguf
expect_status 0 "$HSWARM" generate -m gemma.gguf --chat -p "hello" --system "be brief" -n 4 --ignore-eos --json
[ "$(jq -r .chat_template out.txt)" = gemma ] || fail "gemma chosen from the file"
expect_status 0 "$HSWARM" generate -m gemma.gguf -p "hello" -n 4 --ignore-eos --json
[ "$(jq -r .chat_template out.txt)" = null ] || fail "no chat template without --chat"
expect_status 3 "$HSWARM" generate -m bytes.gguf --chat -p "hello" -n 4
expect_in err.txt "chat_template"
expect_status 0 "$HSWARM" generate -m bytes.gguf --chat --chat-template chatml -p "hello" -n 4 --ignore-eos
# the context: a prompt that does not fit is an error; a generation that reaches it stops
long=$(printf 'word %.0s' $(seq 1 100))
expect_status 3 "$HSWARM" generate -m bpe.gguf -p "$long" --ctx 32 -n 4
expect_in err.txt "context"
expect_status 0 "$HSWARM" generate -m bpe.gguf -p "hi" --ctx 16 -n 100 --ignore-eos --json
[ "$(jq -r .finish_reason out.txt)" = length ] || fail "reaching the context: finish_reason"
[ "$(( $(jq -r .prompt_tokens out.txt) + $(jq -r .completion_tokens out.txt) ))" -le 16 ] ||
  fail "generation ran past the context"
expect_status 2 "$HSWARM" generate -m bpe.gguf -p "x" --temperature warm
expect_in err.txt "warm"
expect_status 3 "$HSWARM" generate -m cut.gguf -p "x" --json
expect_json

# ---- embed ----
expect_status 0 "$HSWARM" embed -m bpe.gguf "def add(a, b)" --json
expect_json
jq -e '(.embedding | length) == .dimensions and .dimensions == 64 and
       ([.embedding[] | . * .] | add | . > 0.9999 and . < 1.0001)' out.txt >/dev/null ||
  fail "embedding is not a unit vector of the model's width"
mean=$(jq -c .embedding out.txt)
expect_status 0 "$HSWARM" embed -m bpe.gguf "def add(a, b)" --pooling last --json
[ "$(jq -c .embedding out.txt)" = "$mean" ] && fail "last pooling equals mean pooling"
expect_status 0 "$HSWARM" embed -m bpe.gguf "def add(a, b)"
[ "$(wc -w < out.txt)" -eq 64 ] || fail "plain embed prints the numbers on one line"
expect_status 2 "$HSWARM" embed -m bpe.gguf "x" --pooling max
expect_in err.txt "unknown pooling 'max'"

# ---- bench engine ----
expect_status 0 "$HSWARM" bench engine -m bpe.gguf --prompt 16 --gen 4 --repeat 1 --json
expect_json
jq -e '.prefill_tokens_per_second > 0 and .decode_tokens_per_second > 0 and .decode_weight_gb_per_second > 0' out.txt >/dev/null ||
  fail "bench engine figures: $(cat out.txt)"

# ---- bench swarm ----
# 8 agents, a shared 64-token prefix, 8 own tokens, 4 generated each: every run generates all the
# tokens; the full run computes the shared prefix once; KV figures come from the block size the
# bench computed before opening the model
expect_status 0 "$HSWARM" bench swarm -m bpe.gguf --agents 8 --prefix 64 --suffix 8 --gen 4 \
  --ablations no-cache --json
expect_json
jq -e '[.runs[] | .generated_tokens == 32 and .prompt_tokens == 576] | all' out.txt >/dev/null ||
  fail "bench swarm token counts: $(cat out.txt)"
jq -e '.runs[0].name == "full" and .runs[0].prompt_tokens_reused > 0 and
       .runs[1].name == "no-cache" and .runs[1].prompt_tokens_reused == 0 and
       .runs[0].kv_bytes_per_agent > 0 and .runs[0].kv_peak_bytes > 0' out.txt >/dev/null ||
  fail "bench swarm figures: $(cat out.txt)"
expect_status 3 "$HSWARM" bench swarm -m no/such.gguf --agents 2
expect_in err.txt "no/such.gguf"
echo "ok"
