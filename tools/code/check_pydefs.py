#!/usr/bin/python3
"""check_pydefs.py: checks the function and class definitions `hswarm defs` finds in Python files
against an independent extractor, Python's own ast module.

    /usr/bin/python3 tools/code/check_pydefs.py HSWARM ROOT [--limit N] [--show K]

Every .py file under ROOT that ast parses (files that ast rejects, such as Python 2 test data, are
counted and skipped) is given to `HSWARM defs --json`. A definition is keyed by its file, its
qualified name (the names of the enclosing functions and classes joined with ".", as hswarm
writes it) and whether it is a class; each side is a multiset of keys (a name defined twice in
one scope counts twice). Prints one JSON object: files, definitions on each side, recall (ast's
found by hswarm), precision (hswarm's found by ast), and up to K examples of each difference.
"""
import ast
import json
import os
import subprocess
import sys
from collections import Counter


def ast_defs(tree):
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = prefix + child.name
                out.append((q, isinstance(child, ast.ClassDef)))
                walk(child, q + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def main(argv):
    hswarm, root = argv[1], argv[2]
    limit = int(argv[argv.index("--limit") + 1]) if "--limit" in argv else 0
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 5
    files, skipped = [], 0
    truth = Counter()
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            if not n.endswith(".py"):
                continue
            p = os.path.join(d, n)
            if os.path.islink(p):
                continue
            try:
                with open(p, "rb") as f:
                    tree = ast.parse(f.read(), filename=p)
            except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
                skipped += 1
                continue
            files.append(p)
            for q, is_class in ast_defs(tree):
                truth[(p, q, is_class)] += 1
            if limit and len(files) >= limit:
                break
        if limit and len(files) >= limit:
            break
    found = Counter()
    for i in range(0, len(files), 200):
        batch = files[i:i + 200]
        r = subprocess.run([hswarm, "defs", "--json"] + batch, capture_output=True, check=False)
        if r.returncode != 0:
            sys.stderr.write(r.stderr.decode(errors="replace"))
            sys.exit("check_pydefs: hswarm defs failed on a batch")
        for f in json.loads(r.stdout)["files"]:
            for d in f["definitions"]:
                if d["kind"] in ("function", "method", "class"):
                    found[(f["path"], d["qname"], d["kind"] == "class")] += 1
    common = sum((truth & found).values())
    missing = list((truth - found).elements())[:show]
    extra = list((found - truth).elements())[:show]
    print(json.dumps({
        "files": len(files), "skipped_unparsable": skipped,
        "ast_definitions": sum(truth.values()), "hswarm_definitions": sum(found.values()),
        "recall": round(common / max(1, sum(truth.values())), 5),
        "precision": round(common / max(1, sum(found.values())), 5),
        "missing": missing, "extra": extra}))


if __name__ == "__main__":
    main(sys.argv)
