#!/usr/bin/python3
"""tasks.py: the "write the expression f(x)" task family of the shipped model (the specification).

A task shows a few input/output examples of an integer function and asks for its expression:

    Write f(x) to fit the examples
    f(0)=3 f(1)=5 f(2)=7
    f(x)=                                  completion: 2 2;0;0 2 3;2*x+3

The model writes its working before the answer (working() below): the first differences of the
shown values, ";", the second differences, ";", the coefficients A B C, ";", then the expression;
the answer is what follows the last ";" (answer_of()). Trained without the working, the model
learned the lines it saw rather than the method: 25% greedy on held-out tasks, and a tenth of
them never answered right in 100 sampled attempts. With it the same model and budget generalise.

The functions are the quadratics f(x) = A*x*x + B*x + C with A in {0, 1, 2}, B in [-24, 24] and
C in [-49, 49] (A_MAX, B_MAX, C_MAX), written in one canonical form (terms x*x, x, constant in
that order; no term with a zero coefficient; coefficient 1 omitted; "-" joins negative terms; "0"
for the zero function): for example "x*x-3*x+2", "-x+4", "2*x*x+7", "5".

Difficulty levels, drawn with these probabilities:
  level 1 (25%): A = 0 and either B = 1 or C = 0, B > 0           x+4, x-2, 6*x
  level 2 (35%): A = 0, B not in {0, 1}, C != 0                   3*x-7, -2*x+5
  level 3 (20%): A > 0 and (B = 0 or C = 0)                       x*x+3, 2*x*x-x
  level 4 (20%): A > 0, B != 0, C != 0                            x*x-4*x+3

Examples are shown at the inputs 0, 1, ..., k-1: k = 3 for levels 1 and 2, 4 for levels 3 and 4.
So the constant term is shown and the rest follows from differences: a family a model of a few
MB learns within an hour of CPU training, yet gets wrong often enough for teams to matter (with
inputs at random or shifted points it stayed at 4% greedy after 600 steps; with B in [-9, 9] and
C in [-19, 19] a single sampled attempt was right 80% to 90% of the time; how often it is right
depends on the training as much as on the width: 73% with B in [-19, 19], C in [-39, 39] and
with this family after 1,600 steps, 54% with this family after the 1,200 steps of train.py's
default, 56% with B in [-29, 29], C in [-59, 59] after 1,600; BENCHMARKS.md compares them). Some tasks are deliberately under-determined: with probability 12%
(levels 1-2) or 5% (levels 3-4) only 2 examples are shown, so that several functions of the
family fit them; passing a check against the shown examples is then not the same as being right.

Grading uses hidden inputs the agents never see: HIDDEN_X below (none of them shown). An answer
is right when it gives the task's values at every shown input and every hidden input (two
polynomials of degree at most 3 that agree on 9 points or more are the same polynomial).

Retry feedback: a prompt may carry a line of rejected answers after the examples,
    f(0)=3 f(1)=5 f(2)=7
    not 2*x+4 x+5
    f(x)=
telling the model which answers already failed. Training shows such lines on RETRY_P (20%) of
prompts, with 1 to 3 wrong answers, near misses of the true one.

Splits: a task belongs to the held-out split when the first byte of the SHA-256 of its example
line (e.g. b"f(0)=3 f(1)=5 f(2)=7") is below 26 (about 10% of lines). Training never sees a
held-out example line; the demo draws its tasks from the held-out split only. The family has
about 19,500 distinct example lines (about 1,950 of them held out); 2,000 held-out draws hold
839, so the demo's tasks repeat lines (each task is still solved by its own team from scratch).

    python3 tasks.py heldout N SEED   writes the first N held-out tasks drawn from SEED as a Lua
                                       module (lua/expr_tasks.lua's format) on stdout
"""
import hashlib
import random
import sys

# Every prompt starts with this line: with BOS, exactly one KV block of 32 tokens, which a swarm
# pins once and every agent shares.
HEADER = "Write f(x) to fit the examples\n"
HIDDEN_X = (-7, -3, -1, 10, 11, 13, 17)
LEVEL_P = ((1, 0.25), (2, 0.35), (3, 0.20), (4, 0.20))
FEW_P = {1: 0.12, 2: 0.12, 3: 0.05, 4: 0.05}
HELDOUT_BELOW = 26
RETRY_P = 0.20
A_MAX = 2    # A in 0..A_MAX
B_MAX = 24   # B in [-B_MAX, B_MAX]
C_MAX = 49   # C in [-C_MAX, C_MAX]


def canonical(a, b, c):
    """The canonical text of a*x*x + b*x + c."""
    out = ""
    for coef, var in ((a, "x*x"), (b, "x"), (c, "")):
        if coef == 0:
            continue
        sign = "-" if coef < 0 else ("+" if out else "")
        mag = abs(coef)
        if var:
            term = var if mag == 1 else "%d*%s" % (mag, var)
        else:
            term = str(mag)
        out += sign + term
    return out or "0"


def value(a, b, c, x):
    return a * x * x + b * x + c


def draw_poly(rng):
    r, level = rng.random(), 4
    acc = 0.0
    for lv, p in LEVEL_P:
        acc += p
        if r < acc:
            level = lv
            break
    nz = [v for v in range(-B_MAX, B_MAX + 1) if v != 0]      # B
    nzc = [v for v in range(-C_MAX, C_MAX + 1) if v != 0]     # C
    if level == 1:
        if rng.random() < 0.5:
            a, b, c = 0, 1, rng.choice(nzc)
        else:
            a, b, c = 0, rng.randint(2, B_MAX), 0
    elif level == 2:
        a, b, c = 0, rng.choice([v for v in nz if v != 1]), rng.choice(nzc)
    elif level == 3:
        a = rng.randint(1, A_MAX)
        if rng.random() < 0.5:
            b, c = 0, rng.choice(nzc)
        else:
            b, c = rng.choice(nz), 0
    else:
        a, b, c = rng.randint(1, A_MAX), rng.choice(nz), rng.choice(nzc)
    return level, (a, b, c)


def example_line(poly, xs):
    return " ".join("f(%d)=%d" % (x, value(*poly, x)) for x in xs)


def is_heldout(line):
    return hashlib.sha256(line.encode()).digest()[0] < HELDOUT_BELOW


def draw_task(rng):
    """One task: dict(level, poly, xs, line, answer)."""
    level, poly = draw_poly(rng)
    k = 2 if rng.random() < FEW_P[level] else (3 if level <= 2 else 4)
    xs = list(range(k))
    line = example_line(poly, xs)
    return {"level": level, "poly": poly, "xs": xs, "line": line, "answer": canonical(*poly)}


def near_misses(rng, poly, xs, n):
    """n distinct wrong answers close to poly that fail at least one shown example."""
    a, b, c = poly
    out, tries = [], 0
    while len(out) < n and tries < 100:
        tries += 1
        da, db, dc = rng.choice(((0, 0, 1), (0, 0, -1), (0, 1, 0), (0, -1, 0), (0, 1, -1),
                                 (0, -1, 1), (1, 0, 0), (-1, 0, 0), (0, 0, 2), (0, 0, -2)))
        q = (min(A_MAX, max(0, a + da)), b + db, c + dc)
        if q == poly or all(value(*q, x) == value(*poly, x) for x in xs):
            continue
        t = canonical(*q)
        if t not in out:
            out.append(t)
    return out


def working(poly, xs):
    """The working the model writes before its answer: the first differences of the shown values,
    ";", the second differences, ";", the coefficients A B C read from them, ";" (then the
    answer). For 3*x+2 shown at 0, 1, 2: "3 3;0;0 3 2;". With two examples shown there is no
    second difference and A is 0: the linear reading."""
    ys = [value(*poly, x) for x in xs]
    d1 = [ys[i + 1] - ys[i] for i in range(len(ys) - 1)]
    d2 = [d1[i + 1] - d1[i] for i in range(len(d1) - 1)]
    a = d2[0] // 2 if d2 else 0
    return "%s;%s;%d %d %d;" % (" ".join(map(str, d1)), " ".join(map(str, d2)), a, d1[0] - a,
                                ys[0])


def answer_of(text):
    """The answer in a completion: what follows the working's last ";"."""
    return text.split(";")[-1].strip()


def prompt(line, rejected=()):
    """The prompt text (BOS, added by the tokenizer, comes before it)."""
    mid = ("not " + " ".join(rejected) + "\n") if rejected else ""
    return HEADER + line + "\n" + mid + "f(x)="


def training_example(rng):
    """(prompt, answer) for training: never a held-out example line."""
    while True:
        t = draw_task(rng)
        if not is_heldout(t["line"]):
            break
    rejected = ()
    if rng.random() < RETRY_P:
        rejected = near_misses(rng, t["poly"], t["xs"], rng.randint(1, 3))
    return prompt(t["line"], rejected), working(t["poly"], t["xs"]) + t["answer"]


def heldout_tasks(n, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        t = draw_task(rng)
        if is_heldout(t["line"]):
            out.append(t)
    return out


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_module(tasks, seed):
    lines = ["-- expr_tasks.lua: the held-out split of the expression task family (generated by",
             "-- tools/expr/tasks.py heldout %d %d; do not edit). Each task: level, the examples"
             % (len(tasks), seed),
             "-- shown (xs, ys), the hidden inputs' values (hidden_ys at hidden_xs) and the answer.",
             "-- Agents must be given only xs and ys; the rest is for grading.",
             "return {",
             "  header = %s," % lua_string(HEADER),
             "  hidden_xs = {%s}," % ", ".join(str(x) for x in HIDDEN_X),
             "  tasks = {"]
    for t in tasks:
        ys = [value(*t["poly"], x) for x in t["xs"]]
        hy = [value(*t["poly"], x) for x in HIDDEN_X]
        lines.append('    {level = %d, xs = {%s}, ys = {%s}, hidden_ys = {%s}, answer = "%s"},'
                     % (t["level"], ", ".join(map(str, t["xs"])), ", ".join(map(str, ys)),
                        ", ".join(map(str, hy)), t["answer"]))
    lines += ["  },", "}", ""]
    return "\n".join(lines)


def main(argv):
    if len(argv) == 4 and argv[1] == "heldout":
        n, seed = int(argv[2]), int(argv[3])
        sys.stdout.write(lua_module(heldout_tasks(n, seed), seed))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
