#!/usr/bin/python3
"""eval_coordinator.py: how well `hswarm code`'s coordinator picks its work items, on repositories
it has never seen: each a Python module of 3 to 8 functions, some stubs (`raise
NotImplementedError`, `pass`, ...) with `f(0)=V` docstrings from the held-out split of the
expression family, the others implemented, plus a unittest file with a helper and one test per
function (tests/cli/test_code_job.sh's example has the same shape). For each repository
`hswarm code --task TASK` runs with one-member teams and one round (only the coordinator's
choice is measured), and its report's decisions are compared with the stubs.

    /usr/bin/python3 tools/coder/eval_coordinator.py [--repos N] [--seed S] [--hswarm PATH]
        [-m MODEL] [--templates DIR]

Prints, per definition asked: right / asked, the stubs found (recall), the items that were stubs
(precision), and the repositories whose items were exactly their stubs.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coder_tasks  # noqa: E402
import tasks as expr  # noqa: E402  (tools/expr, put on the path by coder_tasks)

STUBS = ("raise NotImplementedError", "pass", "...", "raise NotImplementedError(\"TODO\")")
TASKS = ("implement the missing functions", "make the tests pass", "finish the module")


def make_repo(rng, root):
    names, stubs, bodies = [], set(), {}
    n = rng.randint(3, 8)
    while len(names) < n:
        name = coder_tasks.identifier(rng)
        if name not in names and not name.startswith("test"):
            names.append(name)
    src = ['"""model.py: functions of n."""\n']
    tests = ["import unittest\n", "from model import %s\n" % ", ".join(names), "",
             "class TestModel(unittest.TestCase):",
             "    def check(self, f, cases):",
             "        for n, want in cases:",
             "            self.assertEqual(f(n), want)", ""]
    for i, name in enumerate(names):
        t = coder_tasks.draw_member(rng, heldout=True)
        stub = i == 0 or rng.random() < 0.5
        body = rng.choice(STUBS) if stub else "return " + expr.canonical(*t["poly"])
        bodies[name] = (t["line"], body)
        if stub:
            stubs.add(name)
        src.append('\ndef %s(x):\n    """%s"""\n    %s\n' % (name, t["line"], body))
        cases = ", ".join("(%d, %d)" % (x, expr.value(*t["poly"], x)) for x in t["xs"])
        tests += ["    def test_%s(self):" % name, "        self.check(%s, [%s])" % (name, cases), ""]
    with open(os.path.join(root, "model.py"), "w") as f:
        f.write("\n".join(src))
    with open(os.path.join(root, "test_model.py"), "w") as f:
        f.write("\n".join(tests) + "\n")
    return stubs, bodies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hswarm", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "hswarm"))
    ap.add_argument("-m", "--model")
    ap.add_argument("--templates")
    ap.add_argument("--show-wrong", action="store_true", help="print each wrong answer")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    asked = right = found = stubs_total = items_total = items_right = exact = 0
    for r in range(args.repos):
        with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as index:
            stubs, bodies = make_repo(rng, root)
            cmd = [args.hswarm, "code", "--repo", root, "--task", rng.choice(TASKS),
                   "--verify", "true", "--team-size", "1", "--rounds", "1", "--json",
                   "--quiet", "--seed", str(r + 1), "--index", index]
            if args.model:
                cmd += ["-m", args.model]
            if args.templates:
                cmd += ["--templates", args.templates]
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            try:
                rep = json.loads(out)["report"]
                decisions = rep["coordinator"]["attempts"][0]["decisions"]
            except (ValueError, KeyError, IndexError):
                sys.stderr.write("repository %d: no coordinator decisions:\n%s\n" % (r, out[-2000:]))
                return 1
            chosen = set()
            for d in decisions:
                want = d.get("file") == "model.py" and d["name"] in stubs
                asked += 1
                right += bool(d.get("change")) == want
                if bool(d.get("change")) != want and args.show_wrong:
                    print("wrong: %s %s %s -> %s" % (d["file"], d["name"], bodies.get(d["name"]),
                                                     d.get("output")))
                if d.get("change"):
                    chosen.add(d["name"])
            stubs_total += len(stubs)
            found += len(chosen & stubs)
            items_total += len(chosen)
            items_right += len(chosen & stubs)
            exact += chosen == stubs
    print("definitions asked: %d, answered right: %d (%.1f%%)" % (asked, right, 100.0 * right / asked))
    print("stubs found: %d of %d (recall %.1f%%)" % (found, stubs_total, 100.0 * found / stubs_total))
    print("items that were stubs: %d of %d (precision %.1f%%)" % (
        items_right, items_total, 100.0 * items_right / max(1, items_total)))
    print("repositories whose items were exactly their stubs: %d of %d" % (exact, args.repos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
