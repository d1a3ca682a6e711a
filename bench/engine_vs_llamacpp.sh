#!/usr/bin/env bash
# engine_vs_llamacpp.sh [LLAMA_BIN_DIR] [HSWARM]: the engine's figures of BENCHMARKS.md next to
# llama.cpp's, measured back to back in one run on the same files.
#
#   LLAMA_BIN_DIR  a llama.cpp build's bin folder with llama-bench (default
#                  /work/llamacpp/build/bin); without one only our figures are printed
#   HSWARM         the hswarm program (default build/hswarm)
#
# For each type (F32, Q8_0, Q4_K_M, Q4_K by default; TYPES="..." to choose) it writes bench-250m
# in that type, then alternates ROUNDS (default 3) times: `hswarm bench engine` (512-token prompt,
# 128 decoded tokens, 2 threads) and `llama-bench -p 512 -n 128 -t 2`. Each figure printed is the
# median over the rounds of each engine's own median. Not part of CI (llama.cpp is not a
# dependency of the project, and timings belong in benchmarks, not tests).
set -euo pipefail
LLAMA_BIN=${1:-/work/llamacpp/build/bin}
HSWARM=${2:-build/hswarm}
TYPES=${TYPES:-"f32 q8_0 q4_k_m q4_k"}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
work=$(mktemp -d /tmp/hswarm-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
have_llama=0
[ -x "$LLAMA_BIN/llama-bench" ] && have_llama=1

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

printf '%-8s %10s %10s %8s %10s %10s %9s %9s\n' type "pp512" "tg128" "GB/s" "llama pp" "llama tg" "pp ratio" "tg ratio"
for type in $TYPES; do
  model="$work/b250-$type.gguf"
  "$HSWARM" model synth --preset bench-250m --type "$type" --tokenizer bytes -o "$model" 2>/dev/null
  : > "$work/ours" ; : > "$work/theirs"
  for _ in $(seq 1 "$ROUNDS"); do
    "$HSWARM" bench engine -m "$model" --prompt 512 --gen 128 --batch 0 --repeat 1 \
      --threads "$THREADS" --json 2>/dev/null |
      jq -r '"\(.prefill_tokens_per_second) \(.decode_tokens_per_second) \(.decode_weight_gb_per_second)"' >> "$work/ours"
    if [ $have_llama = 1 ]; then
      "$LLAMA_BIN/llama-bench" -m "$model" -p 512 -n 128 -t "$THREADS" -r 1 -o json 2>/dev/null |
        jq -r '[.[] | select(.n_prompt > 0) | .avg_ts][0] as $pp | [.[] | select(.n_gen > 0) | .avg_ts][0] as $tg | "\($pp) \($tg)"' >> "$work/theirs"
    fi
  done
  pp=$(cut -d' ' -f1 "$work/ours" | median); tg=$(cut -d' ' -f2 "$work/ours" | median)
  gbs=$(cut -d' ' -f3 "$work/ours" | median)
  if [ $have_llama = 1 ]; then
    lpp=$(cut -d' ' -f1 "$work/theirs" | median); ltg=$(cut -d' ' -f2 "$work/theirs" | median)
    printf '%-8s %10.1f %10.1f %8.1f %10.1f %10.1f %9.2f %9.2f\n' "$type" "$pp" "$tg" "$gbs" "$lpp" "$ltg" \
      "$(awk -v a="$pp" -v b="$lpp" 'BEGIN {print a / b}')" \
      "$(awk -v a="$tg" -v b="$ltg" 'BEGIN {print a / b}')"
  else
    printf '%-8s %10.1f %10.1f %8.1f %10s %10s %9s %9s\n' "$type" "$pp" "$tg" "$gbs" - - - -
  fi
  rm -f "$model"
done
