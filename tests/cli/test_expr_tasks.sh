# test_expr_tasks.sh: the demo's task family (tools/expr/tasks.py, Debian's /usr/bin/python3):
# lua/expr_tasks.lua is exactly what the generator writes; training never draws a held-out line;
# every demo task is held out and its answer gives its shown and hidden values; the model's
# working ends in the answer; the longest prompt with three rejected answers and the longest
# completion fit the shipped model's context (192 tokens).
. "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY is missing (tools/setup.sh installs python3)"

"$PY" "$SRC/tools/expr/tasks.py" heldout 2000 2026 > generated.lua || fail "tasks.py failed"
cmp -s generated.lua "$SRC/lua/expr_tasks.lua" ||
  fail "lua/expr_tasks.lua is not what 'tools/expr/tasks.py heldout 2000 2026' writes"

"$PY" - "$SRC/tools/expr" <<'EOF' || fail "the task family's checks failed (above)"
import random
import sys
sys.path.insert(0, sys.argv[1])
import tasks

rng = random.Random(7)
for _ in range(20000):
    p, completion = tasks.training_example(rng)
    line = p.split("\n")[1]
    assert not tasks.is_heldout(line), "training drew a held-out line: " + line
    answer = tasks.answer_of(completion)
    assert completion.endswith(";" + answer), completion

worst_prompt, worst_completion = 0, 0
for a in range(0, tasks.A_MAX + 1):
    for b in range(-tasks.B_MAX, tasks.B_MAX + 1):
        for c in range(-tasks.C_MAX, tasks.C_MAX + 1):
            for k in (2, 3, 4):
                xs = list(range(k))
                ans = tasks.canonical(a, b, c)
                worst_prompt = max(worst_prompt, len(tasks.prompt(
                    tasks.example_line((a, b, c), xs), [ans] * 3)))
                worst_completion = max(worst_completion,
                                       len(tasks.working((a, b, c), xs) + ans))
# BOS + prompt + completion + EOS within the context
assert 1 + worst_prompt + worst_completion + 1 <= 192, (worst_prompt, worst_completion)

for t in tasks.heldout_tasks(2000, 2026):
    assert tasks.is_heldout(t["line"])
    for x in list(t["xs"]) + list(tasks.HIDDEN_X):
        assert eval(t["answer"], {"x": x}) == tasks.value(*t["poly"], x), t
print("ok: prompt <= %d bytes, completion <= %d" % (worst_prompt, worst_completion))
EOF
echo ok
