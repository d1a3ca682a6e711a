#!/usr/bin/python3
"""coder_tasks.py: the code work-item family of the shipped coding model (models/coder.gguf): the
specification of what `hswarm code`'s agents are asked, in the shipped templates' exact format
(templates/code/tiny/*.txt; the job, lua/codejob.lua, fills them).

Both kinds of prompt come after the pinned system line HEADER, the expression family's header
(tools/expr/tasks.py): the model starts from models/expr.gguf and keeps its arithmetic.

Member: write a Python function from the examples in its docstring. The prompt is the
definition's signature and doc comment (from the function slice), an optional line of rejected
answers (the expressions earlier candidates returned), then "f(x)=":

    def shipping(x):
    f(0)=22 f(1)=35 f(2)=48
    not 13*x+23 12*x+22
    f(x)=

and the completion is the expression family's working and answer, then a function-level patch
in hswarm's patch format, the signature copied from the prompt:

    13 13;0;13 22;13*x+22            (the working as tools/expr/tasks.py writes it)
    @@ replace shipping
    def shipping(x):
        return 13*x+22
    @@ end

The functions are the expression family's (same ranges, same held-out rule on the example line,
so the example repository's functions can be drawn from the split training never saw).

Coordinator: turn a task naming functions into work items, a JSON array (produced at inference
under a JSON-schema constraint whose names are the repository's definitions):

    Task: write shipping, discount and tax in pricing.py
    Names: base_price shipping discount tax receipt test_tax
    Items:
    [{"name":"shipping","why":"named in the task"},{"name":"discount","why":"named in the task"}]

The coordinator one definition at a time (templates/code/tiny/coordinator_each.txt; what the
shipped model does since its third stage, train.py --coordinator each): for each definition of
the repository map, the task, the definition's signature, doc comment and first body lines, and
whether it needs a change, under the schema {"change": boolean, "why": string}:

    Task: implement the missing functions
    def shipping(x):
    f(0)=22 f(1)=35 f(2)=48
    raise NotImplementedError
    Change:
    {"change":true,"why":"not written yet"}

    python3 coder_tasks.py sample N SEED     prints N training examples (prompt, then completion)
    python3 coder_tasks.py heldout N SEED    prints N held-out member tasks: level and line
"""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "expr"))
import tasks as expr  # noqa: E402

HEADER = expr.HEADER  # with BOS one KV block of 32 tokens, as for models/expr.gguf
WHY = "named in the task"
COORD_P = 0.25      # share of coordinator prompts in training
RETRY_P = 0.20      # share of member prompts with rejected bodies
WORDS = ("price", "tax", "ship", "shipping", "total", "fee", "cost", "rate", "score", "area",
         "bonus", "margin", "weight", "volume", "budget", "rent", "wage", "count", "step",
         "level", "speed", "discount", "refund", "toll", "fare", "stock", "order",
         "points", "size", "width", "height", "depth", "load", "fuel", "power", "credit", "debt",
         "salary", "interest", "deposit", "charge", "penalty", "reward", "quota", "limit")
PREFIXES = ("", "", "", "get_", "calc_", "compute_", "base_", "net_", "max_", "min_")
FILES = ("pricing.py", "shop.py", "calc.py", "billing.py", "rates.py", "model.py", "core.py",
         "util.py", "fees.py", "payroll.py")
VERBS = ("write", "implement", "fill in", "complete", "add the bodies of", "make work")


RANDOM_NAME_P = 0.5  # share of names made of random letters (train.py --random-names)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def identifier(rng):
    """A function name: words from WORDS, or (RANDOM_NAME_P) random letters, so that the model
    must copy names rather than guess them from a vocabulary it learned."""
    if rng.random() < RANDOM_NAME_P:
        parts = [("".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 7))))
                 for _ in range(rng.randint(1, 2))]
        return "_".join(parts)
    w = rng.choice(WORDS)
    if rng.random() < 0.3:
        w += "_" + rng.choice(WORDS)
    return rng.choice(PREFIXES) + w


def member_prompt(name, line, rejected=()):
    mid = ("not " + " ".join(rejected) + "\n") if rejected else ""
    return HEADER + "def %s(x):\n" % name + line + "\n" + mid + "f(x)="


def member_completion(name, poly, xs):
    answer = expr.canonical(*poly)
    return "%s%s\n@@ replace %s\ndef %s(x):\n    return %s\n@@ end\n" % (
        expr.working(poly, xs), answer, name, name, answer)


def draw_member(rng, heldout=False):
    """dict(name, param, poly, xs, line, level) from the wanted split."""
    while True:
        level, poly = expr.draw_poly(rng)
        xs = list(range(3 if level <= 2 else 4))
        line = expr.example_line(poly, xs)
        if expr.is_heldout(line) == heldout:
            break
    return {"name": identifier(rng), "poly": poly, "xs": xs, "line": line, "level": level}


def member_example(rng):
    t = draw_member(rng)
    rejected = ()
    if rng.random() < RETRY_P:
        rejected = expr.near_misses(rng, t["poly"], t["xs"], rng.randint(1, 3))
    return (member_prompt(t["name"], t["line"], rejected),
            member_completion(t["name"], t["poly"], t["xs"]))


def task_text(rng, targets, path):
    if len(targets) == 1:
        named = targets[0]
    else:
        named = ", ".join(targets[:-1]) + " and " + targets[-1]
    where = (" in " + path) if rng.random() < 0.5 else ""
    return rng.choice(VERBS) + " " + named + where


def coordinator_prompt(task, names):
    return HEADER + "Task: " + task + "\nNames: " + " ".join(names) + "\nItems:\n"


def coordinator_completion(targets):
    return "[" + ",".join('{"name":"%s","why":"%s"}' % (t, WHY) for t in targets) + "]\n"


MAX_BYTES = 470  # an example, prompt and completion, fits the context (512) with BOS and EOS


def coordinator_example(rng):
    while True:
        prompt, completion = draw_coordinator(rng)
        if len(prompt) + len(completion) <= MAX_BYTES:
            return prompt, completion


def draw_coordinator(rng):
    names, want = [], rng.randint(3, 9)
    while len(names) < want:
        n = identifier(rng)
        if n not in names:
            names.append(n)
    if rng.random() < 0.4:
        names += ["test_" + n for n in rng.sample(names, min(2, len(names)))]
    if rng.random() < 0.3:
        names += ["Test" + rng.choice(WORDS).capitalize(), rng.choice(("check", "setUp", "main"))]
    pool = [n for n in names if not n.startswith("test_") and n[0].islower() and
            n not in ("check", "main")]
    targets = rng.sample(pool, rng.randint(1, min(4, len(pool))))
    rng.shuffle(names)
    return (coordinator_prompt(task_text(rng, targets, rng.choice(FILES)), names),
            coordinator_completion(targets))


# The coordinator one definition at a time (templates/code/tiny/coordinator_each.txt): the job
# asks, for each definition of the repository map, whether the task needs it changed; the answer
# is generated under the schema {"change": boolean, "why": string}. The model sees the task, the
# definition's signature, its doc comment and the first lines of its body (dedented), and learns
# that a body which is only a placeholder needs writing and a body that does work does not.
CHANGE_WHY = {True: "not written yet", False: "already written"}
GENERIC_TASKS = ("make the tests pass", "implement the missing functions", "finish the module",
                 "write the unfinished functions", "fill in the stubs", "complete the code",
                 "make test_%s pass", "implement %s", "finish %s")
STUB_BODIES = (("raise NotImplementedError",), ("pass",), ("...",), ("return None",),
               ("raise NotImplementedError()",), ('raise NotImplementedError("TODO")',),
               ("# TODO", "pass"), ("# TODO: write this", "raise NotImplementedError"))
PROSE_DOCS = ("The total of an order.", "The price of n items.", "How many are left.",
              "The fee for one order.", "Compute the value.", "The score of a round.")
PARAMS = ("x", "x", "x", "n", "n", "count", "self, x", "a, b", "order, n")


def coordinator_each_prompt(task, signature, doc, body):
    lines = ["Task: " + task, signature] + ([doc] if doc else []) + list(body) + ["Change:"]
    return HEADER + "\n".join(lines) + "\n"


def coordinator_each_completion(change):
    return '{"change":%s,"why":"%s"}\n' % ("true" if change else "false", CHANGE_WHY[change])


def spaced(text):
    """An expression as people write it: "2*x+3" -> "2 * x + 3"."""
    out = ""
    for i, ch in enumerate(text):
        out += " %s " % ch if ch in "*+-" and i > 0 else ch
    return out


def written_body(rng, poly, params):
    """Lines of a body that does work: most often the expression its doc's examples come from
    (as the members write it, or spaced), else a call, a loop, a test's check, a guard."""
    first = params.split(",")[-1].strip()
    answer = expr.canonical(*poly).replace("x", first)
    if rng.random() < 0.5:
        return ("return " + (spaced(answer) if rng.random() < 0.4 else answer),)
    kind = rng.randrange(5)
    other = identifier(rng)
    if kind == 0:
        return ("return %s(%s) + %s(%s)" % (other, first, identifier(rng), first),)
    if kind == 1:
        return ("total = 0", "for i in range(%s):" % first, "total += %s(i)" % other)
    if kind == 2:
        cases = ", ".join("(%d, %d)" % (x, expr.value(*poly, x)) for x in range(rng.randint(2, 4)))
        return ("self.check(%s, [%s])" % (other, cases),)
    if kind == 3:
        return ("for n, want in cases:", "self.assertEqual(f(n), want)")
    return ("if %s < 0:" % first, 'raise ValueError("negative")', "return %s * %d" % (
        first, rng.randint(2, 9)))


def draw_coordinator_each(rng):
    name = identifier(rng)
    change = rng.random() < 0.5
    kind = rng.random()
    _, poly = expr.draw_poly(rng)
    if kind < 0.1 and not change:   # a class: its body starts with a method
        sig = "class Test%s(unittest.TestCase):" % name.title().replace("_", "")
        body = ("def check(self, f, cases):", "for n, want in cases:")
        doc = ""
    else:
        if kind < 0.25:
            name = "test_" + name
            params = "self"
        else:
            params = rng.choice(PARAMS)
        sig = "def %s(%s):" % (name, params)
        r = rng.random()
        if r < 0.7 and not name.startswith("test_"):
            doc = expr.example_line(poly, list(range(rng.randint(3, 4))))
        elif r < 0.85:
            doc = rng.choice(PROSE_DOCS)
        else:
            doc = ""
        body = rng.choice(STUB_BODIES) if change else written_body(rng, poly, params)
    task = rng.choice(GENERIC_TASKS)
    if "%s" in task:
        task = task % identifier(rng)
    return coordinator_each_prompt(task, sig, doc, body), coordinator_each_completion(change)


COORDINATOR = "list"  # "list": one call listing items (stages 1-2); "each": one per definition


def training_example(rng):
    """(prompt, completion); the prompt starts with HEADER."""
    if rng.random() < COORD_P:
        if COORDINATOR == "each":
            return draw_coordinator_each(rng)
        return coordinator_example(rng)
    return member_example(rng)


def answer_of(text):
    """The expression a member completion writes in its patch's return line."""
    for line in text.split("\n"):
        if line.strip().startswith("return "):
            return line.strip()[len("return "):]
    return ""


def main(argv):
    if len(argv) == 4 and argv[1] == "sample":
        rng = random.Random(int(argv[3]))
        for _ in range(int(argv[2])):
            p, c = training_example(rng)
            sys.stdout.write(p + c + "-----\n")
        return 0
    if len(argv) == 4 and argv[1] == "heldout":
        rng = random.Random(int(argv[3]))
        for _ in range(int(argv[2])):
            t = draw_member(rng, heldout=True)
            sys.stdout.write("%d %s\n" % (t["level"], t["line"]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
