# test_code_kb.sh: `hswarm index`, `sym`, `callers`, `callees` (src/cli/code_kb.c) on a git
# repository made here: ignored files left out (git ls-files), the repository found from a
# subdirectory, the index kept outside it (--index, or the cache directory), incremental
# re-indexing, transitive callers, --json, and the errors (no index yet, an unknown name).
. "$(dirname "$0")/lib.bash"
export XDG_CACHE_HOME="$WORK/cache"
mkdir -p repo/pkg repo/gen && cd repo
git init -q .
printf 'gen/\n' > .gitignore
cat > pkg/calc.py <<'PY'
def square(x):
    return x * x


def area(side):
    return square(side)


class Report:
    def show(self, side):
        return "area %d" % area(side)
PY
printf 'def generated():\n    return 1\n' > gen/out.py
cd pkg
expect_status 3 "$HSWARM" sym square
expect_in err.txt "run \`hswarm index"
expect_status 0 "$HSWARM" index --json
expect_json
jq -e '.files == 1 and .parsed == 1 and .definitions == 4' out.txt >/dev/null ||
  fail "index: $(cat out.txt)"   # gen/ is ignored by git
index_dir=$(jq -r .index out.txt)
case "$index_dir" in "$XDG_CACHE_HOME"/hswarm/index/repo-*) ;; *) fail "index in $index_dir" ;; esac
[ -z "$(find .. -name '*.mdb')" ] || fail "the index was written inside the repository"
expect_status 0 "$HSWARM" sym area
expect_in out.txt "pkg/calc.py:5-6 function area  def area(side):"
expect_status 0 "$HSWARM" sym Report.show --json
[ "$(jq -r '.definitions[0].kind' out.txt)" = method ] || fail "sym --json: $(cat out.txt)"
expect_status 1 "$HSWARM" sym nothing_here
expect_in err.txt "no definition named nothing_here"
expect_status 0 "$HSWARM" callers square --depth 3
expect_in out.txt "pkg/calc.py:6 area calls square"
expect_in out.txt "  pkg/calc.py:11 Report.show calls area"
expect_status 0 "$HSWARM" callees Report.show --json
[ "$(jq -r '.edges[0].to.qname' out.txt)" = area ] || fail "callees --json: $(cat out.txt)"
expect_status 0 "$HSWARM" search "report show" --json
jq -e '.semantic == false and .method == "full text (BM25)" and
       .hits[0].definition.qname == "Report.show"' out.txt >/dev/null || fail "search: $(cat out.txt)"
expect_status 0 "$HSWARM" search squareArea     # identifiers are split into words
expect_in out.txt "full text only (no semantic search without a model: -m)"
expect_in out.txt "function square"
# with a model: vectors for every definition, then hybrid search (the shipped model's
# embeddings mean little for code, but every part runs: embedding, HNSW, fusion)
expect_status 3 "$HSWARM" search "report" -m "$SRC/models/expr.gguf"
expect_in err.txt "no vectors of this model in the index"
expect_status 0 "$HSWARM" index -m "$SRC/models/expr.gguf" --json
jq -e '.vectors.embedded == 4 and .vectors.total == 4' out.txt >/dev/null ||
  fail "index -m: $(cat out.txt)"
expect_status 0 "$HSWARM" search "report show" -m "$SRC/models/expr.gguf" --json
jq -e '.semantic and (.method | startswith("hybrid")) and (.hits | length) == 4 and
       ([.hits[0:2][].definition.qname] | index("Report.show")) != null' out.txt >/dev/null ||
  fail "hybrid search: $(cat out.txt)"
expect_status 0 "$HSWARM" index -m "$SRC/models/expr.gguf" --json
jq -e '.vectors.embedded == 0 and .vectors.kept == 4' out.txt >/dev/null ||
  fail "index -m again: $(cat out.txt)"
expect_status 1 "$HSWARM" search "zebra giraffe"
expect_in err.txt "nothing matches"
expect_status 3 "$HSWARM" search "+++ ..."
expect_in err.txt "has no words to search"
# the function slice: the definition, what it calls, what calls it; tokens against whole files
expect_status 0 "$HSWARM" slice area
expect_in out.txt "# pkg/calc.py, lines 5-6"
expect_in out.txt "def area(side):"
expect_in out.txt "# what it calls:"
expect_in out.txt "def square(x):  # pkg/calc.py:1"
expect_in out.txt "# what calls it:"
expect_in out.txt "def show(self, side):  # pkg/calc.py:11"
expect_in err.txt "(approximate counts: no -m)"
expect_status 0 "$HSWARM" slice area --json -m "$SRC/models/expr.gguf"
jq -e '.tokenizer == "model" and .tokens > 0 and .whole_file_tokens > 0 and .files == 1 and
       .callees == 1 and .callers == 1' out.txt >/dev/null || fail "slice --json: $(cat out.txt)"
expect_status 3 "$HSWARM" slice nothing_here
expect_in err.txt "no definition named nothing_here"
cp calc.py calc.bak
sed -i 's/return square(side)/return square(2 * side)/' calc.py
expect_status 3 "$HSWARM" slice area
expect_in err.txt "pkg/calc.py changed since it was indexed: run \`hswarm index\`"
mv calc.bak calc.py
# incremental: one changed file parsed, the others not
printf 'def cube(x):\n    return x ** 3\n' > extra.py
expect_status 0 "$HSWARM" index --json
jq -e '.files == 2 and .parsed == 1 and .unchanged == 1' out.txt >/dev/null ||
  fail "re-index: $(cat out.txt)"
expect_status 0 "$HSWARM" index .. --rebuild --json
jq -e '.parsed == 2' out.txt >/dev/null || fail "--rebuild: $(cat out.txt)"
# --index and --repo from elsewhere
cd "$WORK"
expect_status 0 "$HSWARM" index repo --index "$WORK/idx"
expect_in out.txt "into $WORK/idx"
expect_status 0 "$HSWARM" sym cube --repo repo --index "$WORK/idx"
expect_in out.txt "pkg/extra.py:1-2 function cube"
# the repo map: personalised towards the task, within the budget
cd repo
expect_status 0 "$HSWARM" map --task "the Report shows an area" --budget 40 --json
jq -e '.tokens <= 40 and .personalized >= 2 and .definitions >= 1 and
       (.text | startswith("pkg/calc.py:\n"))' out.txt >/dev/null || fail "map: $(cat out.txt)"
expect_status 0 "$HSWARM" map --task "nothing known here" --budget 16
expect_in err.txt "not personalised"
expect_status 2 "$HSWARM" map --task x --budget 3
cd "$WORK"
# the benchmark command, small
expect_status 0 "$HSWARM" bench code repo --functions 3 --queries 20 --json
expect_json
jq -e '.index.files == 2 and .index.definitions == 5 and .slices.functions == 3 and
       .lookup_us.p50 > 0 and .slices.saved_percent_vs_own_file != null' out.txt >/dev/null ||
  fail "bench code: $(cat out.txt)"
expect_status 2 "$HSWARM" callers square --depth 40 --repo repo
expect_status 2 "$HSWARM" sym
echo "ok"
