#!/usr/bin/env bash
# The main job: installs what is needed, builds hswarm (optimised), and runs a swarm of 10,000
# agents: a fan-out/fan-in tree of isolated Lua agents that sum squares and check the total, then
# teams of 10 light agents agreeing by vote. Add --log to keep an event log and replay it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/hswarm run examples/fanout.lua 10000 --log build/demo.log
./build/hswarm replay build/demo.log
./build/hswarm run examples/teams_vote.lua 1000 --seed 1
