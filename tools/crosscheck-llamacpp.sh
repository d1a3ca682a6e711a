#!/usr/bin/env bash
# crosscheck-llamacpp.sh [LLAMA_BIN_DIR] [HSWARM]: checks Hyper-Swarm against llama.cpp, the
# ecosystem's reference engine, on synthetic GGUF files that both load.
#
#   LLAMA_BIN_DIR  a llama.cpp build's bin folder (default /work/llamacpp/build/bin): it needs
#                  llama-tokenize and libllama; llama.h is looked for in ../../src/include and
#                  ../../src/ggml/include (or set LLAMA_INCLUDE to "DIR1 DIR2")
#   HSWARM         the hswarm program (default build/hswarm); libhswarm.so must sit beside it
#
# Not part of CI: llama.cpp is no dependency of the project. Exits 1 on any difference that is not
# a verified near-tie (2 on a setup problem) and prints a summary table.
#
# What it checks:
#  1. Tokenization: the same ids from `hswarm tokenize` and `llama-tokenize`, for byte-level BPE
#     vocabularies with the llama-bpe, qwen2 and default pre-tokenizers and for an SPM vocabulary,
#     each with 512 tokens (learned from the project's src/) and 32000 tokens (learned from
#     src/ + include/ + docs/ + tests/), over every line of tests/data/crosscheck/lines.txt, every
#     whole file there, a few of the project's files and 40 random texts (fixed seed); with and
#     without BOS, with and without special-token parsing.
#  2. Detokenization of those ids: `hswarm detokenize --keep-space-prefix` against llama.cpp's
#     token_to_piece concatenated ("pieces", what streaming shows), and `hswarm detokenize`
#     against llama_detokenize(remove_special=false) ("api") for the ids without BOS of the
#     vocabularies llama.cpp does not "clean" (SPM, qwen2). For llama-bpe and default llama.cpp's
#     llama_detokenize also removes spaces before punctuation and in contractions
#     (clean_spaces), which Hyper-Swarm does not do by design (include/hswarm/tokenizer.h):
#     those differences are counted as information only.
#  3. Greedy generation of XC_N (48) tokens from two prompts for tiny-llama3 and small-llama3
#     (llama3 rope scaling as the rope_freqs tensor), tiny-qwen2, small-qwen2, tiny-llama (tied
#     embeddings), an SPM-vocabulary tiny-llama, tiny-qwen3, tiny-gemma3 (a 16-position window)
#     and small-gemma3 (640 wide); files from `hswarm model synth --type` of every type, and from
#     llama-quantize applied to the synth F32 file with every preset of F16, BF16, Q8_0, Q4_0,
#     Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K (llama.cpp's
#     own quantizer and tensor mixes).
#     The prompt ids must agree; then `hswarm generate --temperature 0` is compared with a
#     pure-argmax decode through libllama (f32 KV cache, flash attention off, so that llama.cpp
#     rounds nothing in attention that our engine does not).
#     Quantized (and F16/BF16) types may differ legitimately: the engines round activations
#     differently (llama.cpp: Q8_0/Q4_0 activations with an fp16 block scale, F16/BF16 weights
#     meet activations rounded to F16/BF16; Hyper-Swarm: f32 scales, f32 activations), and a
#     random-weight model amplifies a small change into a different pick where two logits are
#     close. So at the first differing step both engines' logits are read on the same prefix: the
#     step is a near-tie when each engine's pick leads the other's by no more than the two
#     engines' noise at that step explains (sum of the two leads <= 8 x the rms over the
#     vocabulary of the logits' difference) and that noise is within the type's limit
#     (noise_limit below: F32 1e-5 of the logits' spread). Both engines then continue from
#     llama.cpp's pick; a 5th divergence, or anything else, is a difference. XC_STRICT=1 counts
#     near-ties as differences too. A file one engine cannot run is "n/a".
#  4. A long prompt (README's first 2000 bytes, ~400 tokens) computed at once on 2 threads,
#     five times: the logits must match llama.cpp's (F32, rel 1e-5) every time.
#
# Other settings: XC_ONLY=tok|gen|real|realtok (one part only), XC_QUICK=1 (512-token vocabularies and fewer
# types), XC_MODELS / XC_TYPES (space-separated names: only those models / types in part 3), XC_KEEP=1 (keep the work folder), XC_VERBOSE=1 (print every failing case, not the
# first 5 per row).
#
# Two small helpers are compiled into the work folder: xc_llama (on llama.h's public API: greedy
# decode, logits, detokenization of id lists) and xc_hswarm (on hswarm/engine.h: greedy decode
# and logits, on one thread unless told).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LLAMA_BIN=$(cd "${1:-/work/llamacpp/build/bin}" 2>/dev/null && pwd) || {
  echo "crosscheck: no llama.cpp bin folder ${1:-/work/llamacpp/build/bin}" >&2
  exit 2
}
HSWARM=${2:-$ROOT/build/hswarm}
[[ $HSWARM = /* ]] || HSWARM=$PWD/$HSWARM
HS_BUILD=$(dirname "$HSWARM")
DATA=$ROOT/tests/data/crosscheck
N_GEN=${XC_N:-48}
QUICK=${XC_QUICK:-0}
STRICT=${XC_STRICT:-0}
VERBOSE=${XC_VERBOSE:-0}
LLAMA_INCLUDE=${LLAMA_INCLUDE:-"$LLAMA_BIN/../../src/include $LLAMA_BIN/../../src/ggml/include"}

for f in "$HSWARM" "$LLAMA_BIN/llama-tokenize"; do
  [[ -x $f ]] || { echo "crosscheck: $f is missing (build it first)" >&2; exit 2; }
done
[[ -e $HS_BUILD/libhswarm.so ]] || { echo "crosscheck: no libhswarm.so beside $HSWARM" >&2; exit 2; }

W=$(mktemp -d /tmp/hs-crosscheck.XXXXXX)
if [[ ${XC_KEEP:-0} = 1 ]]; then echo "work folder: $W"; else trap 'rm -rf "$W"' EXIT; fi
START=$SECONDS
FAILED=0
TABLE=()
row() { TABLE+=("$(printf '%-10s %-20s %-14s %6s  %s' "$@")"); }
note() { printf '%s\n' "$*" >&2; }

# ---- helpers ------------------------------------------------------------------------------
cat > "$W/xc_llama.cpp" <<'EOF'
// xc_llama: the llama.cpp side of tools/crosscheck-llamacpp.sh, on llama.h's public API only.
//   xc_llama gen MODEL N KV IDS  greedy decode (first index wins ties) of N tokens after the
//                                prompt ids "1 2 3"; KV f32|f16 is the cache type; flash attention
//                                off. One line per step: "id second margin" (top-two logits).
//   xc_llama logits MODEL IDS [FORCED]  the logits after the prompt ids and then the FORCED ids
//                                fed one at a time, as gen feeds its picks; one per line
//   xc_llama detok MODEL MODE    stdin: one id list per line; stdout: one hex line per list.
//                                MODE pieces|pieces-special: token_to_piece concatenated;
//                                api|api-special: llama_detokenize(remove_special = false).
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void quiet(ggml_log_level level, const char *text, void *) {
  if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static std::vector<llama_token> parse(const char *s) {
  std::vector<llama_token> v;
  char *end;
  while (*s) {
    if (*s >= '0' && *s <= '9') {
      v.push_back((llama_token)strtol(s, &end, 10));
      s = end;
    } else {
      s++;
    }
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  std::string cmd = argv[1];
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.vocab_only = cmd == "detok";
  mp.progress_callback = [](float, void *) { return true; };
  llama_model *model = llama_model_load_from_file(argv[2], mp);
  if (!model) {
    fprintf(stderr, "xc_llama: cannot load %s\n", argv[2]);
    return 1;
  }
  const llama_vocab *vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  if (cmd == "detok") {
    std::string mode = argv[3];
    bool special = mode.find("special") != std::string::npos, api = mode.rfind("api", 0) == 0;
    static char buf[1 << 20];
    while (fgets(buf, sizeof buf, stdin)) {
      std::vector<llama_token> ids = parse(buf);
      std::string out;
      if (api) {
        std::vector<char> t(ids.size() * 256 + 64);
        int n = llama_detokenize(vocab, ids.data(), (int)ids.size(), t.data(), (int)t.size(), false,
                                 special);
        if (n < 0) return 1;
        out.assign(t.data(), n);
      } else {
        for (llama_token id : ids) {
          char p[1024];
          int n = llama_token_to_piece(vocab, id, p, sizeof p, 0, special);
          if (n < 0) return 1;
          out.append(p, n);
        }
      }
      for (unsigned char c : out) printf("%02x", c);
      printf("\n");
    }
  } else if ((cmd == "gen" && argc >= 6) || cmd == "logits") {
    bool dump = cmd == "logits";
    int n_gen = dump ? 1 : atoi(argv[3]);
    std::string kv = dump ? "f32" : argv[4];
    std::vector<llama_token> toks = parse(argv[dump ? 3 : 5]);
    if (toks.empty()) return 1;
    for (llama_token t : toks)
      if (t >= n_vocab) return 1;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(toks.size() + n_gen + 8 + (dump && argc > 4 ? parse(argv[4]).size() : 0));
    cp.n_batch = cp.n_ubatch = cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = kv == "f16" ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    if (llama_decode(ctx, llama_batch_get_one(toks.data(), (int32_t)toks.size()))) return 1;
    if (dump && argc > 4) {
      for (llama_token t : parse(argv[4]))
        if (t >= n_vocab || llama_decode(ctx, llama_batch_get_one(&t, 1))) return 1;
    }
    for (int i = 0; i < n_gen; i++) {
      const float *l = llama_get_logits_ith(ctx, -1);
      if (dump) {
        for (int v = 0; v < n_vocab; v++) printf("%.9g\n", (double)l[v]);
        break;
      }
      int a = 0, b = 1;
      if (l[1] > l[0]) a = 1, b = 0;
      for (int v = 2; v < n_vocab; v++) {
        if (l[v] > l[a]) {
          b = a;
          a = v;
        } else if (l[v] > l[b]) {
          b = v;
        }
      }
      printf("%d %d %.6g\n", a, b, (double)(l[a] - l[b]));
      llama_token cur = a;
      if (i + 1 < n_gen && llama_decode(ctx, llama_batch_get_one(&cur, 1))) return 1;
    }
    llama_free(ctx);
  } else {
    return 2;
  }
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
EOF
cat > "$W/xc_hswarm.c" <<'EOF'
/* xc_hswarm: the Hyper-Swarm side of tools/crosscheck-llamacpp.sh's near-tie analysis, on
 * hswarm/engine.h. One thread: then a prompt of any length is computed as `hswarm generate`
 * computes it (bit for bit, per engine.h), whatever the thread pool does.
 *   xc_hswarm gen MODEL N IDS     greedy decode of N tokens after the prompt ids "1 2 3", one line
 *                                 per step: "id second margin", as xc_llama gen prints
 *   xc_hswarm logits MODEL IDS [FORCED [THREADS]]   the logits after the prompt ids and then the
 *                                 FORCED ids fed one at a time; one per line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/engine.h"

static size_t parse(char *s, int32_t *ids) {
  size_t n = 0;
  for (char *end; *s && n < (1 << 16);) {
    if (*s >= '0' && *s <= '9') {
      ids[n++] = (int32_t)strtol(s, &end, 10);
      s = end;
    } else {
      s++;
    }
  }
  return n;
}

int main(int argc, char **argv) {
  int dump = argc >= 4 && !strcmp(argv[1], "logits");
  if (!dump && !(argc == 5 && !strcmp(argv[1], "gen"))) return 2;
  int n_gen = dump ? 1 : atoi(argv[3]);
  static int32_t ids[1 << 16], forced[1 << 16];
  size_t n = parse(argv[dump ? 3 : 4], ids), n_forced = dump && argc > 4 ? parse(argv[4], forced) : 0;
  hs_model_opts o = {.n_threads = dump && argc > 5 ? (unsigned)atoi(argv[5]) : 1};
  hs_model *m = NULL;
  hs_seq *seq = NULL;
  if (n == 0 || n_gen < 1 || hs_model_open(argv[2], &o, &m) ||
      hs_seq_create(m, (uint32_t)(n + n_forced + (size_t)n_gen + 8), &seq)) {
    fprintf(stderr, "xc_hswarm: %s\n", hs_engine_last_error());
    return 1;
  }
  uint32_t nv = hs_model_get_params(m)->n_vocab;
  float *logits = malloc(sizeof(float) * nv);
  hs_batch_item *items = malloc(sizeof(hs_batch_item) * n);
  if (!logits || !items) return 1;
  for (size_t i = 0; i < n; i++) items[i] = (hs_batch_item){seq, ids[i], i + 1 == n};
  if (hs_model_forward(m, items, n, logits, NULL)) return 1;
  for (size_t i = 0; i < n_forced; i++) {
    hs_batch_item it = {seq, forced[i], true};
    if (forced[i] < 0 || (uint32_t)forced[i] >= hs_model_get_params(m)->n_vocab ||
        hs_model_forward(m, &it, 1, logits, NULL))
      return 1;
  }
  for (int step = 0; step < n_gen; step++) {
    if (dump) {
      for (uint32_t v = 0; v < nv; v++) printf("%.9g\n", (double)logits[v]);
      break;
    }
    uint32_t a = 0, b = 1;
    if (logits[1] > logits[0]) a = 1, b = 0;
    for (uint32_t v = 2; v < nv; v++) {
      if (logits[v] > logits[a]) b = a, a = v;
      else if (logits[v] > logits[b]) b = v;
    }
    printf("%u %u %.6g\n", a, b, (double)(logits[a] - logits[b]));
    hs_batch_item it = {seq, (int32_t)a, true};
    if (step + 1 < n_gen && hs_model_forward(m, &it, 1, logits, NULL)) return 1;
  }
  free(items);
  free(logits);
  hs_seq_destroy(seq);
  hs_model_close(m);
  return 0;
}
EOF
inc=()
for d in $LLAMA_INCLUDE; do inc+=("-I$d"); done
if ! g++ -O2 -std=c++17 "${inc[@]}" "$W/xc_llama.cpp" -o "$W/xc_llama" -L"$LLAMA_BIN" -lllama \
    -lggml -lggml-base -Wl,-rpath,"$LLAMA_BIN" 2> "$W/xc_llama.log"; then
  cat "$W/xc_llama.log" >&2
  echo "crosscheck: cannot build the llama.cpp helper (set LLAMA_INCLUDE to llama.h's folders)" >&2
  exit 2
fi
if ! cc -O2 -std=c11 -I"$ROOT/include" "$W/xc_hswarm.c" -o "$W/xc_hswarm" -L"$HS_BUILD" -lhswarm \
    -Wl,-rpath,"$HS_BUILD" 2> "$W/xc_hswarm.log"; then
  cat "$W/xc_hswarm.log" >&2
  echo "crosscheck: cannot build the hswarm helper" >&2
  exit 2
fi
XL=$W/xc_llama
XH=$W/xc_hswarm

ids_of() { tr -d '[],' | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; } # "[1, 2]" or "1 2" -> "1 2"
hex_of() { od -An -v -tx1 | tr -d ' \n'; }

# ---- texts --------------------------------------------------------------------------------
mkdir -p "$W/texts"
i=0
while IFS= read -r line || [[ -n $line ]]; do
  printf '%s' "$line" > "$W/texts/line$(printf '%03d' $i)"
  i=$((i + 1))
done < "$DATA/lines.txt"
N_LINES=$i
for f in "$DATA"/*; do cp "$f" "$W/texts/file-$(basename "$f")"; done
for f in README.md src/engine/tokenizer_pretok.c tests/engine/tokenizer_ref.py lua/swarm.lua; do
  [[ -f $ROOT/$f ]] && cp "$ROOT/$f" "$W/texts/proj-$(basename "$f")"
done
# 40 random texts (fixed seed) drawn from pieces that stress the pre-tokenizers and the
# special-token split: mixed scripts, marks, emoji parts, odd spaces, digits, contractions
if [[ -x /usr/bin/python3 ]]; then
  /usr/bin/python3 - "$W/texts" <<'PY'
import random, sys
random.seed(20240601)
pool = (list("aAzZ09 \t\n\r'\"-_.,;:!?()[]{}<>|/\\@#$%^&*+=~`")
        + ["'s", "'T", "'re", "'VE", "'ll", "'D", "'m", "\u2019s", "  ", "\n\n", " \n", "\t\t",
           "123", "4567", "\u4f60", "\u4e16\u754c", "\u0627", "\u0644", "\u0439", "e\u0301",
           "\u0301", "\u0308", "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469",
           "\u200d", "\u200b", "\ufeff", "\u00a0", "\u2003", "\u3000", "\u0085", "\u2028",
           "\u000b", "\u000c", "\u00b2", "\u00bd", "\u0663", "\u216b", "\u2460",
           "\U0001D518", "\U0001F1EB\U0001F1F7", "<|eot_id|>", "<|im_start|>", "<s>", "</s>",
           "<unk>", "<0x41>", "\u2581", "\u0120", "\u010a", "\ufb01", "\u00df", "\u0130",
           "\u01c5", "\ue000", "\U0010FFFD", "\ufffd"])
for i in range(40):
    t = "".join(random.choice(pool) for _ in range(random.randint(1, 30)))
    if t.startswith("-"):
        t = "x" + t
    with open(f"{sys.argv[1]}/rand{i:03d}", "w", encoding="utf-8", newline="") as f:
        f.write(t)
PY
fi
TEXTS=("$W"/texts/*)
find "$ROOT/src" "$ROOT/include" "$ROOT/docs" "$ROOT/tests" -type f \
     \( -name '*.c' -o -name '*.h' -o -name '*.md' -o -name '*.py' \) -print0 2>/dev/null \
  | sort -z | xargs -0 cat > "$W/corpus-large.txt"

# ---- 1+2. tokenization and detokenization -------------------------------------------------
VOCABS=("bpe-llama-bpe|--tokenizer bpe --pre llama-bpe|pieces"
        "bpe-qwen2|--tokenizer bpe --pre qwen2|api"
        "bpe-default|--tokenizer bpe --pre default|pieces"
        "spm|--tokenizer spm|api")
SIZES=(512 32000)
[[ $QUICK = 1 ]] && SIZES=(512)

tokenize_check() { # name model
  local name=$1 m=$2 bad=0 n=0 shown=0 skipped=0 text ours theirs hflags lflags label dd
  : > "$W/$name.detok-bos" ; : > "$W/$name.detok-nobos"
  dd=()  # a TEXT that begins with '-' needs "--" before it, where hswarm takes that
  "$HSWARM" tokenize -m "$m" --ids -- -x > /dev/null 2>&1 && dd=(--)
  for text in "${TEXTS[@]}"; do
    local t
    t=$(cat "$text"; printf x)
    t=${t%x}
    if [[ $t = -* && ${#dd[@]} = 0 ]]; then
      skipped=$((skipped + 4))
      continue
    fi
    for label in "bos+special" "bos" "nobos+special" "nobos"; do
      hflags=() lflags=()
      [[ $label = *special* ]] && hflags+=(--special) || lflags+=(--no-parse-special)
      [[ $label = nobos* ]] && { hflags+=(--no-bos); lflags+=(--no-bos); }
      ours=$("$HSWARM" tokenize -m "$m" --ids "${hflags[@]}" "${dd[@]}" "$t" 2>&1 | ids_of)
      theirs=$("$LLAMA_BIN/llama-tokenize" -m "$m" -f "$text" --ids --no-escape --log-disable \
               "${lflags[@]}" 2>&1 | ids_of)
      n=$((n + 1))
      if [[ $ours != "$theirs" ]]; then
        bad=$((bad + 1))
        if [[ $VERBOSE = 1 || $shown -lt 5 ]]; then
          shown=$((shown + 1))
          note "TOKENIZE DIFF [$name] $(basename "$text") ($label)"
          note "  text:  $(head -c 200 "$text" | od -c | head -3 | tr -s ' ' | tr '\n' '|')"
          note "  ours:  ${ours:0:400}"
          note "  llama: ${theirs:0:400}"
        fi
      elif [[ -n $ours ]]; then
        case $label in
          bos*) echo "$ours" >> "$W/$name.detok-bos" ;;
          *) echo "$ours" >> "$W/$name.detok-nobos" ;;
        esac
      fi
    done
  done
  local res
  res=$([[ $bad = 0 ]] && echo ok || echo "DIFF $bad")
  [[ $skipped = 0 ]] || res="$res; $skipped skipped (text begins with '-', hswarm tokenize has no '--')"
  row tokenize "$name" - "$n" "$res"
  [[ $bad = 0 ]] || FAILED=1
}

detok_check() { # name model api|pieces
  local name=$1 m=$2 api=$3 mode hflags bad n shown ours theirs ids k
  for mode in pieces pieces-special api api-special; do
    hflags=()
    [[ $mode = *special ]] && hflags+=(--special)
    if [[ $mode = pieces* ]]; then
      hflags+=(--keep-space-prefix)
      cat "$W/$name.detok-bos" "$W/$name.detok-nobos" > "$W/$name.ids"
    elif [[ $name = spm* ]]; then
      # SentencePiece: Hyper-Swarm removes the space the encoder added after a leading BOS too,
      # llama_detokenize does not (by design, include/hswarm/tokenizer.h): lists beginning with
      # BOS (here: "<s>" parsed from the text) are left out of the "api" comparison
      grep -v "^$BOS_ID\( \|\$\)" "$W/$name.detok-nobos" > "$W/$name.ids"
    else
      cp "$W/$name.detok-nobos" "$W/$name.ids"
    fi
    "$XL" detok "$m" "$mode" < "$W/$name.ids" > "$W/$name.hex-llama" || {
      row detokenize "$name" "$mode" - "ERROR (xc_llama)"; FAILED=1; continue; }
    bad=0 n=0 shown=0 k=0
    while IFS= read -r ids; do
      k=$((k + 1))
      theirs=$(sed -n "${k}p" "$W/$name.hex-llama")
      # shellcheck disable=SC2086
      ours=$("$HSWARM" detokenize -m "$m" $ids "${hflags[@]}" | hex_of)
      ours=${ours%0a}
      n=$((n + 1))
      if [[ $ours != "$theirs" ]]; then
        bad=$((bad + 1))
        if [[ $api = pieces && $mode = api* ]]; then continue; fi
        if [[ $VERBOSE = 1 || $shown -lt 5 ]]; then
          shown=$((shown + 1))
          note "DETOKENIZE DIFF [$name] ($mode) ids: ${ids:0:200}"
          note "  ours:  $(printf '%s' "$ours" | head -c 300)"
          note "  llama: $(printf '%s' "$theirs" | head -c 300)"
        fi
      fi
    done < "$W/$name.ids"
    if [[ $api = pieces && $mode = api* ]]; then
      row detokenize "$name" "$mode" "$n" "info: $bad differ (llama.cpp clean_spaces, by design)"
    else
      row detokenize "$name" "$mode" "$n" "$([[ $bad = 0 ]] && echo ok || echo "DIFF $bad")"
      [[ $bad = 0 ]] || FAILED=1
    fi
  done
}

[[ ${XC_ONLY:-} = gen || ${XC_ONLY:-} = real || ${XC_ONLY:-} = realtok ]] && SIZES=()
n_rand=0 n_files=0
for t in "${TEXTS[@]}"; do
  case ${t##*/} in rand*) n_rand=$((n_rand + 1)) ;; file-* | proj-*) n_files=$((n_files + 1)) ;; esac
done
echo "== tokenization and detokenization ($N_LINES lines, $n_rand random texts, $n_files files)"
for size in "${SIZES[@]}"; do
  for v in "${VOCABS[@]}"; do
    IFS='|' read -r vname vargs vapi <<< "$v"
    name=$vname-$size
    corpus=()
    [[ $size = 512 ]] || corpus=(--corpus "$W/corpus-large.txt")
    # shellcheck disable=SC2086
    if ! "$HSWARM" model synth --preset tiny-llama --vocab "$size" --type f32 $vargs "${corpus[@]}" \
        -o "$W/$name.gguf" > "$W/$name.synth" 2>&1; then
      cat "$W/$name.synth" >&2
      row tokenize "$name" - - "ERROR (synth)"
      FAILED=1
      continue
    fi
    note "  $name"
    BOS_ID=$("$HSWARM" tokenize -m "$W/$name.gguf" --ids x | cut -d' ' -f1)
    tokenize_check "$name" "$W/$name.gguf"
    detok_check "$name" "$W/$name.gguf" "$vapi"
  done
done

# ---- 3. greedy generation -----------------------------------------------------------------
MODELS=("tiny-llama3|--preset tiny-llama3 --rope-scaling llama3-tensor"
        "tiny-qwen2|--preset tiny-qwen2"
        "tiny-llama|--preset tiny-llama"
        "small-llama3|--preset small-llama3 --rope-scaling llama3-tensor"
        "small-qwen2|--preset small-qwen2"
        "tiny-llama-spm|--preset tiny-llama --tokenizer spm"
        "tiny-qwen3|--preset tiny-qwen3"
        "tiny-gemma3|--preset tiny-gemma3"
        "small-gemma3|--preset small-gemma3")
# synth:T is `hswarm model synth --type T`; lq:T is llama-quantize's T made from the synth F32 file
# (every preset of the published-models issue: on small-llama3, 256 wide, the K types fit; on
# small-gemma3, 640 wide, llama-quantize falls back to the 32-element types)
TYPES=(synth:f32 synth:f16 synth:bf16 synth:q8_0 synth:q4_0 synth:q4_k_m synth:q6_k
       synth:q4_1 synth:q5_0 synth:q5_1 synth:iq4_nl synth:q2_k synth:q3_k synth:q5_k synth:iq4_xs
       lq:F16 lq:BF16 lq:Q8_0 lq:Q4_0 lq:Q4_1 lq:Q5_0 lq:Q5_1 lq:IQ4_NL lq:IQ4_XS lq:Q2_K
       lq:Q3_K_S lq:Q3_K_M lq:Q3_K_L lq:Q4_K_S lq:Q4_K_M lq:Q5_K_S lq:Q5_K_M lq:Q6_K)
[[ $QUICK = 1 ]] && TYPES=(synth:f32 synth:q8_0 synth:q4_k_m lq:F16)
# XC_MODELS="name1 name2" / XC_TYPES="synth:f32 lq:Q4_1": only those
if [[ -n ${XC_MODELS:-} ]]; then
  keep=()
  for mdl in "${MODELS[@]}"; do
    for w in $XC_MODELS; do [[ ${mdl%%|*} = "$w" ]] && keep+=("$mdl"); done
  done
  MODELS=("${keep[@]}")
fi
[[ -n ${XC_TYPES:-} ]] && read -r -a TYPES <<< "$XC_TYPES"
PROMPTS=("The quick brown fox jumps over the lazy dog. It's a test of 1234 tokens:"
         $'static int add(int a, int b) {\n\treturn a + b; // sum\n}\n')
# The largest inter-engine noise accepted, relative: rms over the vocabulary of the difference
# of the two engines' logits (less its mean) over the spread (standard deviation) of llama.cpp's.
# Measured on these models: F32 ~1e-6, F16 ~1e-3 and BF16 ~5e-3 (llama.cpp rounds activations
# to the weight type, Hyper-Swarm keeps them f32), 8-bit activations ~1-3%.
noise_limit() {
  case ${1,,} in
    f32) echo 1e-5 ;;
    f16) echo 5e-3 ;;
    bf16) echo 2e-2 ;;
    *) echo 6e-2 ;;
  esac
}

# analyze MODEL PROMPT FORCED A B: both engines' logits after PROMPT (at once) and FORCED (one
# token at a time, as the greedy runs fed them) -> "mh ml rms rel": ours
# logit[A]-logit[B], llama.cpp's logit[B]-logit[A], the rms of the centred difference, rms/std.
analyze() {
  "$XH" logits "$1" "$2" "$3" > "$W/lg.h" && "$XL" logits "$1" "$2" "$3" > "$W/lg.l" || return 1
  paste "$W/lg.h" "$W/lg.l" | awk -v a="$4" -v b="$5" '
    { h[NR - 1] = $1; l[NR - 1] = $2; sd += $1 - $2; sl += $2; n++ }
    END {
      md = sd / n; ml = sl / n
      for (i = 0; i < n; i++) { d = h[i] - l[i] - md; s2 += d * d; v2 += (l[i] - ml) ^ 2 }
      rms = sqrt(s2 / n); sdl = sqrt(v2 / n)
      printf "%.4g %.4g %.3g %.3g\n", h[a] - h[b], l[b] - l[a], rms, (sdl > 0 ? rms / sdl : 1)
    }'
}

# gen_check MODEL TYPE PROMPT_INDEX: sets GEN_RESULT; 0: same tokens (or near-ties only)
gen_check() {
  local m=$1 type=$2 prompt=${PROMPTS[$3]} ours theirs pids lpids limit
  limit=$(noise_limit "$type")
  pids=$("$HSWARM" tokenize -m "$m" --ids "$prompt" 2>&1 | ids_of)
  lpids=$("$LLAMA_BIN/llama-tokenize" -m "$m" -p "$prompt" --ids --no-escape --log-disable \
          --no-parse-special 2>&1 | ids_of)
  if [[ $pids != "$lpids" ]]; then
    GEN_RESULT="DIFF prompt ids: ours [$pids] llama [$lpids]"
    return 1
  fi
  # (in a subshell that waits, so that an abort is reported to /dev/null, not to the terminal)
  if ! ( "$XL" gen "$m" "$N_GEN" f32 "$pids" > "$W/gen.llama" 2> "$W/gen.llama.err"; exit $? ) 2> /dev/null; then
    if grep -q "unsupported types" "$W/gen.llama.err"; then
      GEN_RESULT="n/a: llama.cpp cannot run the file ($(grep -o 'unsupported types.*' "$W/gen.llama.err" | head -1))"
      return 2
    fi
    GEN_RESULT="ERROR (xc_llama gen: $(head -c 200 "$W/gen.llama.err"))"
    return 1
  fi
  ours=$("$HSWARM" generate -m "$m" -p "$prompt" -n "$N_GEN" --temperature 0 --ignore-eos --ids \
         --threads 2 2> "$W/gen.err" | sed -n 's/^ids: //p' | tail -1)
  if [[ -z $ours ]]; then
    GEN_RESULT="ERROR (hswarm generate: $(head -c 200 "$W/gen.err"))"
    return 1
  fi
  theirs=$(cut -d' ' -f1 "$W/gen.llama" | tr '\n' ' ' | sed 's/ $//')
  if [[ $ours = "$theirs" ]]; then
    GEN_RESULT=ok
    return 0
  fi
  # At the first differing step both engines' logits are read on the same prefix. A near-tie:
  # each engine's pick leads the other's by little, and by no more than the two engines' noise
  # at that step explains (the sum of the two leads is the pair's share of that noise: at most
  # 8 rms), and the noise is within the type's limit. Then both engines continue from
  # llama.cpp's pick; at most 4 near-ties.
  local prefix=$pids ties=() a b k pre mh ml rms rel rest step
  read -r -a a <<< "$ours"
  read -r -a b <<< "$theirs"
  for round in 1 2 3 4 5; do
    k=0
    while [[ $k -lt ${#b[@]} && ${a[$k]:-} = "${b[$k]}" ]]; do k=$((k + 1)); done
    if [[ $k -ge ${#b[@]} ]]; then
      GEN_RESULT="near-tie x${#ties[@]}: $(IFS=';'; echo "${ties[*]}")"
      [[ $STRICT = 1 ]] && return 1
      return 0
    fi
    step=$((N_GEN - ${#b[@]} + k))
    if [[ $round = 5 ]]; then
      GEN_RESULT="DIFF: a 5th divergence at step $step ($(IFS=';'; echo "${ties[*]}"))"
      return 1
    fi
    pre="$prefix ${b[*]:0:$k}"
    read -r mh ml rms rel <<< "$(analyze "$m" "$prefix" "${b[*]:0:$k}" "${a[$k]}" "${b[$k]}")" || {
      GEN_RESULT="ERROR (logits)"; return 1; }
    local what="step $step: ours ${a[$k]} leads by $mh, llama ${b[$k]} leads by $ml; noise rms $rms (rel $rel)"
    if awk -v mh="$mh" -v ml="$ml" -v rms="$rms" -v rel="$rel" -v lim="$limit" \
         'BEGIN { exit !(mh >= 0 && ml >= 0 && mh + ml <= 8 * rms && rel <= lim) }'; then
      ties+=("$what")
    else
      GEN_RESULT="DIFF at $what, limit rel $limit"
      return 1
    fi
    prefix="$pre ${b[$k]}"
    rest=$((${#b[@]} - k - 1))
    if [[ $rest -le 0 ]]; then
      GEN_RESULT="near-tie x${#ties[@]}: $(IFS=';'; echo "${ties[*]}")"
      [[ $STRICT = 1 ]] && return 1
      return 0
    fi
    "$XL" gen "$m" "$rest" f32 "$prefix" > "$W/gen.llama" || { GEN_RESULT="ERROR (xc_llama gen)"; return 1; }
    read -r -a b <<< "$(cut -d' ' -f1 "$W/gen.llama" | tr '\n' ' ')"
    read -r -a a <<< "$("$XH" gen "$m" "$rest" "$prefix" | cut -d' ' -f1 | tr '\n' ' ')"
  done
}

[[ ${XC_ONLY:-} = tok || ${XC_ONLY:-} = real || ${XC_ONLY:-} = realtok ]] && MODELS=()
echo "== greedy generation ($N_GEN tokens, ${#PROMPTS[@]} prompts)"
for mdl in "${MODELS[@]}"; do
  IFS='|' read -r mname margs <<< "$mdl"
  base=$W/gen-$mname-f32.gguf
  # shellcheck disable=SC2086
  "$HSWARM" model synth $margs --type f32 -o "$base" > "$W/synth.log" 2>&1 || {
    row generate "$mname" - - "ERROR (synth: $(head -c 200 "$W/synth.log"))"; FAILED=1; continue; }
  for st in "${TYPES[@]}"; do
    src=${st%%:*} type=${st#*:}
    f=$W/gen-$mname-$src-$type.gguf
    if [[ $src = lq ]]; then
      "$LLAMA_BIN/llama-quantize" "$base" "$f" "$type" 2 > "$W/synth.log" 2>&1
    elif [[ $type = f32 ]]; then
      cp "$base" "$f"
    else
      # shellcheck disable=SC2086
      "$HSWARM" model synth $margs --type "$type" -o "$f" > "$W/synth.log" 2>&1
    fi || { row generate "$mname" "$st" - "ERROR (making the file: $(tail -c 200 "$W/synth.log"))"
            FAILED=1; continue; }
    if ! "$HSWARM" model info -m "$f" > "$W/info.log" 2>&1; then
      row generate "$mname" "$st" - "n/a: hswarm cannot load llama-quantize's file: $(head -c 160 "$W/info.log")"
      continue
    fi
    results=() bad=0 na=0
    for pi in "${!PROMPTS[@]}"; do
      gen_check "$f" "$type" "$pi"
      case $? in 0) ;; 2) na=1 ;; *) bad=1 ;; esac
      results+=("p$pi: $GEN_RESULT")
    done
    note "  $mname $st: ${results[*]}"
    if [[ ${results[*]} = "p0: ok p1: ok" ]]; then
      row generate "$mname" "$st" "$((N_GEN * ${#PROMPTS[@]}))" ok
    elif [[ $na = 1 && $bad = 0 ]]; then
      row generate "$mname" "$st" - "${results[0]#p0: }"
    else
      row generate "$mname" "$st" "$((N_GEN * ${#PROMPTS[@]}))" "$(IFS='|'; echo "${results[*]}")"
    fi
    [[ $bad = 0 ]] || FAILED=1
    rm -f "$f"
  done
done

# ---- 4. a long prompt at once, on two threads ----------------------------------------------
# hs_model_forward over a whole prompt of README's first 2000 bytes, on 2 threads, five times:
# each time the last position's logits must match llama.cpp's (F32: rel 1e-5) and each other.
if [[ ${XC_ONLY:-} != tok && ${XC_ONLY:-} != real && ${XC_ONLY:-} != realtok ]]; then
  echo "== long prompt at once"
  for mdl in "small-llama3|--preset small-llama3 --rope-scaling llama3-tensor" "small-qwen2|--preset small-qwen2"; do
    IFS='|' read -r mname margs <<< "$mdl"
    f=$W/long-$mname.gguf
    # shellcheck disable=SC2086
    "$HSWARM" model synth $margs --type f32 -o "$f" > /dev/null 2>&1
    head -c 2000 "$ROOT/README.md" > "$W/long.txt"
    lids=$("$LLAMA_BIN/llama-tokenize" -m "$f" -f "$W/long.txt" --ids --no-escape --log-disable | ids_of)
    "$XL" logits "$f" "$lids" > "$W/lg.l"
    worst=0 hashes=()
    for _ in 1 2 3 4 5; do
      "$XH" logits "$f" "$lids" "" 2 > "$W/lg.h"
      hashes+=("$(md5sum < "$W/lg.h" | cut -c1-8)")
      rel=$(paste "$W/lg.h" "$W/lg.l" | awk '{ d = $1 - $2; sd += d; s2 += d * d; sl += $2; sll += $2 * $2; n++ }
        END { m = sd / n; ml = sl / n; printf "%.3g\n", sqrt(s2 / n - m * m) / sqrt(sll / n - ml * ml) }')
      worst=$(awk -v a="$worst" -v b="$rel" 'BEGIN { print (b > a ? b : a) }')
    done
    n_distinct=$(printf '%s\n' "${hashes[@]}" | sort -u | wc -l)
    res="rel noise max $worst over 5 runs, $n_distinct distinct result(s)"
    if [[ $n_distinct != 1 ]] || awk -v r="$worst" 'BEGIN { exit !(r > 1e-5) }'; then
      res="DIFF: $res"
      FAILED=1
    else
      res="ok ($res)"
    fi
    row prefill "$mname" f32 "$(echo "$lids" | wc -w)" "$res"
  done
fi

# ---- 5. the published models ----------------------------------------------------------------
# With XC_REAL=1 (or XC_ONLY=real): greedy generation of XC_REAL_N (128) tokens from each of the
# 20 prompts of tests/data/crosscheck/real_prompts.txt (code, prose, chat, several languages;
# "\n" stands for a newline) on the published models tools/models.sh fetched, judged as part 3
# judges quantized files (near-ties verified on both engines' logits at every divergence).
if [[ ${XC_REAL:-0} = 1 || ${XC_ONLY:-} = real ]]; then
  N_GEN=${XC_REAL_N:-128}
  PROMPTS=()
  while IFS= read -r line; do PROMPTS+=("$(printf '%b' "$line")"); done < "$DATA/real_prompts.txt"
  echo "== published models ($N_GEN tokens, ${#PROMPTS[@]} prompts)"
  for mdl in "smollm2-135m-instruct|q4_1" "gemma3-270m|q4_k_m"; do
    IFS='|' read -r mname mtype <<< "$mdl"
    f=${HS_MODELS_DIR:-$ROOT/.deps/models}/$mname.gguf
    [[ -r $f ]] || { row real "$mname" - - "n/a: $f is missing (tools/models.sh)"; FAILED=1; continue; }
    n_ok=0 n_tie=0 n_bad=0
    for pi in "${!PROMPTS[@]}"; do
      gen_check "$f" "$mtype" "$pi"
      case $? in
        0) if [[ $GEN_RESULT = ok ]]; then n_ok=$((n_ok + 1)); else n_tie=$((n_tie + 1)); fi ;;
        *) n_bad=$((n_bad + 1)) ;;
      esac
      note "  $mname prompt $pi: $GEN_RESULT"
    done
    res="identical $n_ok, near-ties only $n_tie, different $n_bad"
    [[ $n_bad = 0 ]] || { res="DIFF: $res"; FAILED=1; }
    row real "$mname" "$mtype" "$((N_GEN * ${#PROMPTS[@]}))" "$res"
  done
fi

# ---- 6. the published models' tokenizers on 13 MB of text -----------------------------------
# With XC_REALTOK=1 (or XC_ONLY=realtok): tools/make_tokenizer_corpus.py writes the Python
# standard library's sources (about 11 MB here, in pieces of 1 MB) and 2 MB of generated text in
# many scripts with emoji, whitespace runs and digits; each piece is tokenized whole by
# `hswarm tokenize -f` and `llama-tokenize -f --no-escape`, without BOS or special tokens, and
# the id sequences must be equal.
if [[ ${XC_REALTOK:-0} = 1 || ${XC_ONLY:-} = realtok ]]; then
  echo "== published models' tokenizers"
  /usr/bin/python3 "$ROOT/tools/make_tokenizer_corpus.py" "$W/corpus" >&2 || FAILED=1
  for mname in smollm2-135m-instruct gemma3-270m; do
    f=${HS_MODELS_DIR:-$ROOT/.deps/models}/$mname.gguf
    [[ -r $f ]] || { row realtok "$mname" - - "n/a: $f is missing (tools/models.sh)"; FAILED=1; continue; }
    bytes=0 n_ids=0 bad=()
    for t in "$W"/corpus/*.txt; do
      "$HSWARM" tokenize -m "$f" -f "$t" --ids --no-bos > "$W/t.h" 2> "$W/t.err" || { bad+=("$(basename "$t"): hswarm failed"); continue; }
      "$LLAMA_BIN/llama-tokenize" -m "$f" -f "$t" --ids --log-disable --no-parse-special --no-bos \
        --no-escape 2> /dev/null | ids_of > "$W/t.l"
      bytes=$((bytes + $(stat -c %s "$t")))
      n_ids=$((n_ids + $(wc -w < "$W/t.h")))
      local_bad=""
      if ! cmp -s <(ids_of < "$W/t.h") "$W/t.l"; then
        local_bad=1
        bad+=("$(basename "$t"): $(paste -d' ' <(tr ' ' '\n' < "$W/t.h") <(tr ' ' '\n' < "$W/t.l") | awk '$1 != $2 { print "first difference at id " NR ": ours " $1 ", llama " $2; exit }')")
      fi
      note "  $mname $(basename "$t"): $([[ -n $local_bad ]] && echo "${bad[${#bad[@]}-1]}" || echo ok)"
    done
    if [[ ${#bad[@]} = 0 ]]; then
      row realtok "$mname" "$((bytes / 1024)) KiB" "$n_ids" "ok: the same ids"
    else
      row realtok "$mname" "$((bytes / 1024)) KiB" "$n_ids" "DIFF: ${bad[*]}"
      FAILED=1
    fi
  done
fi

# ---- summary ------------------------------------------------------------------------------
echo
echo "== summary (llama.cpp: $LLAMA_BIN; hswarm: $HSWARM)"
printf '%-10s %-20s %-14s %6s  %s\n' check vocabulary/model mode/type cases result
for r in "${TABLE[@]}"; do echo "$r"; done
echo "time: $((SECONDS - START)) s"
if [[ $FAILED = 0 ]]; then echo "crosscheck: PASS"; else echo "crosscheck: FAIL"; fi
exit $FAILED
