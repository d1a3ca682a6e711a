# test_code_job.sh: `hswarm code` end to end with the shipped model (models/coder.gguf) on the
# example repository (examples/pricing): the coordinator asks the model about each definition of
# the repository map (templates/code/tiny/coordinator_each.txt, answers under a JSON schema) and
# must choose exactly the four stubs; one micro-swarm per item under the member grammar,
# verification in private copies, the merge and the final verification; after --apply every test
# passes and only the four stubs' code changed (their docstrings kept). The same with the work
# items from a file (items.json). The coordinator listing items in one call (coordinator.txt):
# its answers checked (the shipped model does not pick the right ones that way). The repository untouched: after a failed run, after an
# interrupted run (SIGINT: exit 130), after a run whose final verification fails, after a bad
# items file; --out written only for a verified result.
# label: slow
. "$(dirname "$0")/lib.bash"
export XDG_CACHE_HOME="$WORK/cache"
TASK="write shipping, loyalty_points, bulk_price and tiles in pricing.py"
ALL="python3 -m unittest -q test_pricing"
ONE="python3 -m unittest -q test_pricing -k {name}"
fresh() { rm -rf repo && cp -r "$SRC/examples/pricing" repo && (cd repo && sha256sum *.py > ../before.sum); }
untouched() { (cd repo && sha256sum -c --quiet ../before.sum) || fail "the repository changed: $1"; \
              [ "$(ls repo | sort | tr '\n' ' ')" = "items.json pricing.py test_pricing.py " ] || fail "files appeared in the repository: $1"; }

# 1. the example, from the task: the coordinator's items, solved and applied
fresh
(cd repo && python3 -m unittest -q test_pricing >/dev/null 2>&1) && fail "the example's tests pass before the run"
expect_status 0 "$HSWARM" code --repo repo --task "implement the missing functions" --verify "$ALL" \
  --verify-item "$ONE" --team-size 16 --apply --log run.log --quiet
cat out.txt
expect_in out.txt "definitions asked, 4 to change: shipping loyalty_points bulk_price tiles"
expect_in out.txt "work items: 4 (from the coordinator)"
expect_in out.txt "final verification: passed"
expect_in out.txt "applied the patch to"
(cd repo && python3 -m unittest -q test_pricing) || fail "the tests fail after --apply"
# only the four stubs changed: base_price and receipt, the docstring of the module, all as before
python3 - "$SRC/examples/pricing/pricing.py" repo/pricing.py <<'PY' || fail "the patch touched more than the four functions"
import ast, sys
before, after = (ast.parse(open(p).read()) for p in sys.argv[1:])
def defs(t): return {d.name: ast.dump(d) for d in t.body if isinstance(d, ast.FunctionDef)}
b, a = defs(before), defs(after)
assert set(a) == set(b), (set(a), set(b))
changed = {n for n in b if a[n] != b[n]}
assert changed == {"shipping", "loyalty_points", "bulk_price", "tiles"}, changed
assert ast.get_docstring(before) == ast.get_docstring(after)
for n in b:  # every function keeps its docstring
    fb = next(d for d in before.body if getattr(d, "name", "") == n)
    fa = next(d for d in after.body if getattr(d, "name", "") == n)
    assert ast.get_docstring(fb) == ast.get_docstring(fa), n
PY
cmp -s "$SRC/examples/pricing/test_pricing.py" repo/test_pricing.py || fail "the tests were changed"
expect_status 0 "$HSWARM" replay run.log
expect_in out.txt "replay identical"

# 2. the work items from a file, --out: the diff, applicable with GNU patch; the repository
# itself untouched
fresh
expect_status 0 "$HSWARM" code --repo repo --items repo/items.json --verify "$ALL" --verify-item "$ONE" --team-size 16 \
  --out fix.patch --quiet --json
expect_json
[ "$(jq -r '.ok' out.txt)" = true ] || fail "--json: ok is not true"
[ "$(jq -r '.report.coordinator.source' out.txt)" = file ] || fail "--json: the items did not come from the file"
jq -e '.report.items | length == 4' out.txt >/dev/null || fail "--json: not 4 items"
untouched "--out"
(cd repo && patch -p1 --dry-run < ../fix.patch >/dev/null) || fail "fix.patch does not apply"

# 3. a failed run: no candidate can pass
fresh
expect_status 1 "$HSWARM" code --repo repo --items repo/items.json --verify "$ALL" --verify-item "false" \
  --rounds 1 --team-size 2 --out never.patch --quiet
expect_in out.txt "nothing was written"
untouched "failed run"
[ -e never.patch ] && fail "--out was written for a failed run"

# 4. the final verification fails (each item passes alone)
fresh
expect_status 1 "$HSWARM" code --repo repo --items repo/items.json --verify "exit 1" --verify-item "$ONE" \
  --apply --quiet
expect_in out.txt "final verification: FAILED"
expect_in out.txt "the final verification failed; nothing was written"
untouched "final verification failed"

# 5. interrupted: SIGINT while the teams work (verifications made slow)
fresh
"$HSWARM" code --repo repo --items repo/items.json --verify "$ALL" --verify-item "sleep 5; $ONE" \
  --apply --quiet >out.txt 2>err.txt &
pid=$!
sleep 3
kill -INT $pid
wait $pid
st=$?
[ $st = 130 ] || { cat out.txt err.txt; fail "an interrupted run exited $st, expected 130"; }
expect_in err.txt "interrupted after"
expect_in err.txt "the repository is untouched"
untouched "interrupted run"
sleep 1
for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f" 2>/dev/null; echo; done | grep -q "^sleep 5 " && \
  fail "verifications outlived the interrupted run"

# 6. bad work items: a clear error, nothing written
fresh
echo '[{"name":"no_such_function","why":"x"}]' > items.json
expect_status 1 "$HSWARM" code --repo repo --items items.json --verify "$ALL" --apply --quiet
expect_in out.txt "the work items file: item 1: no definition named no_such_function"
untouched "bad items file"
echo '[{"name": "tiles"' > items.json
expect_status 1 "$HSWARM" code --repo repo --items items.json --verify "$ALL" --apply --quiet
expect_in out.txt "not JSON"
expect_status 2 "$HSWARM" code --repo repo --task "$TASK"
expect_in err.txt "--verify is required"
untouched "bad command lines"

# 7. the coordinator listing the items in one call (a template set with coordinator.txt, the
# format of the shipped model's first training stages): its answers to the task, generated
# under the schema, are parsed and checked: one taken is valid JSON of the schema naming
# definitions of the repository (whatever it picks), one refused (cut short by the model's
# context, or naming a definition twice) is recorded with why; nothing written unless verified
fresh
cp -r "$SRC/templates/code/tiny" listing && rm listing/coordinator_each.txt
printf 'Task: {task}\nNames: {names}\nItems:\n' > listing/coordinator.txt
"$HSWARM" code --repo repo --task "$TASK" --verify "$ALL" --verify-item "$ONE" --rounds 1 \
  --team-size 2 --templates listing --apply --quiet --json >out.txt 2>err.txt
st=$?
[ $st = 0 ] || [ $st = 1 ] || { cat out.txt err.txt; fail "the coordinator run exited $st"; }
expect_json
[ "$(jq -r '.report.coordinator.source' out.txt)" = model ] || fail "the coordinator did not run"
jq -e '.report.coordinator.attempts | length >= 1' out.txt >/dev/null || fail "no coordinator attempt recorded"
names=$(cd repo && python3 -c "import ast; print(' '.join(n.name for f in ('pricing.py', 'test_pricing.py') for n in ast.walk(ast.parse(open(f).read())) if isinstance(n, (ast.FunctionDef, ast.ClassDef))))")
# an answer taken is valid JSON of the schema; one refused (cut by the model's context, say) is not
python3 - "$names" out.txt <<'PY' || fail "the coordinator's answers were not checked as they should"
import json, sys
names = set(sys.argv[1].split())
def valid(text):
    try:
        items = json.loads(text)
    except ValueError:
        return False
    return isinstance(items, list) and 1 <= len(items) <= 16 and all(
        (set(it) == {"name", "why"} or set(it) == {"add", "after", "why"}) and
        it.get("name", it.get("after")) in names for it in items)
for a in json.load(open(sys.argv[2]))["report"]["coordinator"]["attempts"]:
    assert "output" in a, a
    assert valid(a["output"]) == ("error" not in a) or "named twice" in a.get("error", ""), a
PY
if [ $st = 1 ]; then untouched "coordinator run"; fi

# 8. a template set without any coordinator template: a clear error unless the items are given
rm listing/coordinator.txt
expect_status 3 "$HSWARM" code --repo repo --task "$TASK" --verify "$ALL" --templates listing
expect_in err.txt "has neither coordinator.txt nor coordinator_each.txt"
