#!/usr/bin/env bash
# swarm_vs_llamacpp.sh [LLAMA_BIN_DIR] [HSWARM]: issue 4's reference workload on both engines,
# back to back in one run on the same file: 64 sequences share a 2048-token prompt and each
# generates 32 tokens (2 threads), bench-250m in Q8_0.
#
#   ours    hswarm bench swarm --agents 64 --prefix 2048 --suffix 0 --gen 32 --ablations none
#   theirs  llama-batched-bench -npp 2048 -ntg 32 -npl 64 -pps -kvu -c 4096 -b 2048 -ub 512
#           (-pps: the prompt is computed once and shared, -kvu: one KV buffer for all sequences)
#
# ROUNDS (default 3) alternations; the medians of each side's end-to-end seconds and their ratio
# are printed. Not part of CI (llama.cpp is not a dependency of the project).
set -euo pipefail
LLAMA_BIN=${1:-/work/llamacpp/build/bin}
HSWARM=${2:-build/hswarm}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
work=$(mktemp -d /tmp/hswarm-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
model="$work/b250-q8_0.gguf"
"$HSWARM" model synth --preset bench-250m --type q8_0 --tokenizer bytes -o "$model" 2>/dev/null
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
: > "$work/ours"; : > "$work/theirs"
for _ in $(seq 1 "$ROUNDS"); do
  "$HSWARM" bench swarm -m "$model" --agents 64 --prefix 2048 --suffix 0 --gen 32 \
    --threads "$THREADS" --ablations none --json | jq -r '.runs[0].wall_seconds' >> "$work/ours"
  if [ -x "$LLAMA_BIN/llama-batched-bench" ]; then
    "$LLAMA_BIN/llama-batched-bench" -m "$model" -c 4096 -b 2048 -ub 512 -npp 2048 -ntg 32 \
      -npl 64 -pps -kvu -t "$THREADS" 2>/dev/null | awk -F'|' '/^\|  *2048/ {gsub(/ /, "", $10); print $10}' >> "$work/theirs"
  fi
done
ours=$(median < "$work/ours")
echo "hswarm bench swarm:   $ours s (median of $ROUNDS)"
if [ -s "$work/theirs" ]; then
  theirs=$(median < "$work/theirs")
  echo "llama-batched-bench:  $theirs s (median of $ROUNDS)"
  awk -v a="$theirs" -v b="$ours" 'BEGIN {printf "ratio: %.2fx\n", a / b}'
fi
