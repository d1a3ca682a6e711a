#!/usr/bin/env bash
# The main job: installs what is needed, builds hswarm (optimised), and runs `hswarm demo`:
# 1,000 held-out tasks, each given to a micro-swarm of 10 agents on the shipped model
# (models/expr.gguf), graded against single attempts; then replays the first 100 tasks' event log
# without the model to show the run is deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/hswarm demo
./build/hswarm demo --tasks 100 --log build/demo.log >/dev/null
./build/hswarm replay build/demo.log
