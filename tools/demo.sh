#!/usr/bin/env bash
# The main job: installs what is needed, builds hswarm (optimised), and runs a swarm of 10,000
# agents: a fan-out/fan-in tree of isolated Lua agents that sum squares and check the total, then
# teams of 10 light agents agreeing by vote; then a synthetic model through the inference engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/hswarm run examples/fanout.lua 10000 --log build/demo.log
./build/hswarm replay build/demo.log
./build/hswarm run examples/teams_vote.lua 1000 --seed 1
# the inference engine: a model with random weights of bench-250m's shape and a vocabulary learned
# from the project's sources, a JSON answer constrained by a schema, and the engine's speed
./build/hswarm model synth --preset bench-250m --type q8_0 -o build/demo-250m.gguf
./build/hswarm generate -m build/demo-250m.gguf -p "int main(void) {" -n 300 --seed 1 \
  --json-schema examples/answer.schema.json
./build/hswarm bench engine -m build/demo-250m.gguf --prompt 128 --gen 32 --repeat 1
