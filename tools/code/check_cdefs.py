#!/usr/bin/python3
"""check_cdefs.py: checks the C definitions `hswarm defs` finds against an independent extractor,
Universal Ctags (Debian's universal-ctags package).

    /usr/bin/python3 tools/code/check_cdefs.py HSWARM ROOT... [--show K]

Every .c and .h file under each ROOT goes to both. Compared, as multisets of (file, name, kind):
function definitions (ctags kind function, ours function), structs, unions, enums and typedefs
(ours struct, union, enum, type). Anonymous types (ctags names them __anon...) are left out, as
are files ctags cannot read. Prints one JSON object with recall (ctags' found by hswarm),
precision (hswarm's found by ctags) per kind and overall, and up to K examples of differences.
"""
import json
import os
import subprocess
import sys
from collections import Counter

KINDS = {"function": "function", "struct": "struct", "union": "union", "enum": "enum",
         "typedef": "type"}


def main(argv):
    show = int(argv[argv.index("--show") + 1]) if "--show" in argv else 5
    args = [a for i, a in enumerate(argv[1:], 1)
            if not a.startswith("--") and argv[i - 1] != "--show"]
    hswarm, roots = args[0], args[1:]
    files = []
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs.sort()
            files += [os.path.join(d, n) for n in sorted(names)
                      if n.endswith((".c", ".h")) and not os.path.islink(os.path.join(d, n))]
    truth, found = Counter(), Counter()
    for i in range(0, len(files), 200):
        batch = files[i:i + 200]
        r = subprocess.run(["ctags", "-x", "--c-kinds=fsugt", "--language-force=C",
                            "--_xformat=%N\t%K\t%F"] + batch, capture_output=True, check=False)
        for line in r.stdout.decode(errors="replace").splitlines():
            name, kind, path = line.split("\t")
            if kind in KINDS and not name.startswith("__anon"):
                truth[(path, name, KINDS[kind])] += 1
        r = subprocess.run([hswarm, "defs", "--json"] + batch, capture_output=True, check=False)
        for f in json.loads(r.stdout)["files"]:
            for d in f["definitions"]:
                if d["kind"] in KINDS.values():
                    found[(f["path"], d["name"], d["kind"])] += 1
    out = {"files": len(files), "ctags_definitions": sum(truth.values()),
           "hswarm_definitions": sum(found.values())}
    common = truth & found
    out["recall"] = round(sum(common.values()) / max(1, sum(truth.values())), 5)
    out["precision"] = round(sum(common.values()) / max(1, sum(found.values())), 5)
    for k in sorted(set(KINDS.values())):
        t = sum(v for key, v in truth.items() if key[2] == k)
        f = sum(v for key, v in found.items() if key[2] == k)
        c = sum(v for key, v in common.items() if key[2] == k)
        out[k] = {"ctags": t, "hswarm": f, "recall": round(c / max(1, t), 4),
                  "precision": round(c / max(1, f), 4)}
    out["missing"] = list((truth - found).elements())[:show]
    out["extra"] = list((found - truth).elements())[:show]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
