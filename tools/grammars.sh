#!/usr/bin/env bash
# Fetches the tree-sitter grammars the code-intelligence layer compiles in (src/code/), from the
# npm registry at pinned versions, each checked against its SHA-256, into .deps/grammars/ (ignored
# by git). Only the generated parser sources are kept (parser.c, the C scanner, their bundled
# tree_sitter/*.h); nothing of npm's is installed or run. Idempotent: a grammar already present at
# the right version is skipped. The versions are those DESIGN.md names (ABI 14, which Debian 12's
# libtree-sitter 0.20.7 accepts).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.deps/grammars
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

# package version sha256 (of the registry's .tgz)
GRAMMARS=(
  "tree-sitter-c 0.21.4 2c25cddaaa0410192b97e895cea6020f46bf8c19364c87231762d128a6078f74"
  "tree-sitter-python 0.21.0 787841ada211201c4d7b4f4c3115f31bd7e7ed97cc76986b0ef108035ffa7ef2"
  "tree-sitter-javascript 0.21.4 b1533b5e3e331d252fc40bd24965ca9da242d25418ff5113202840306eaad445"
  "tree-sitter-typescript 0.23.2 0fdf63c35930a75885145d75ee63cb879da2d49db9bfe454bd8e60b08ba778a1"
)

mkdir -p "$DEST"
for g in "${GRAMMARS[@]}"; do
  read -r pkg ver sum <<<"$g"
  dir="$DEST/$pkg"
  if [ -f "$dir/VERSION" ] && [ "$(cat "$dir/VERSION")" = "$ver" ]; then continue; fi
  echo "grammars: fetching $pkg@$ver" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$REGISTRY/$pkg/-/$pkg-$ver.tgz"
  echo "$sum  $tmp/pkg.tgz" | sha256sum -c --quiet - ||
    { echo "grammars: $pkg@$ver does not match its pinned SHA-256" >&2; exit 1; }
  tar -xzf "$tmp/pkg.tgz" -C "$tmp"
  rm -rf "$dir"
  mkdir -p "$dir"
  # keep the C sources only: src/ (c, python, javascript) or typescript/src, tsx/src and common/
  for part in src typescript/src tsx/src common; do
    if [ -d "$tmp/package/$part" ]; then
      mkdir -p "$dir/$(dirname "$part")"
      cp -r "$tmp/package/$part" "$dir/$part"
    fi
  done
  find "$dir" -type f ! -name '*.c' ! -name '*.h' -delete
  cp "$tmp/package/LICENSE" "$dir/LICENSE" 2>/dev/null || true
  echo "$ver" > "$dir/VERSION"
  rm -rf "$tmp"
  trap - EXIT
done
echo "grammars: ${#GRAMMARS[@]} grammars in $DEST" >&2
