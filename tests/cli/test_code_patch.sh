# test_code_patch.sh: `hswarm patch apply` (src/cli/code_patch.c): --dry-run prints the diff and
# writes nothing; applying writes the files; the diff printed applies with GNU patch to a copy of
# the original and gives the same files; a failing operation writes nothing (exit 1, the error
# naming the patch line); a malformed patch; standard input; --json.
. "$(dirname "$0")/lib.bash"
mkdir -p proj/src && cd proj
cat > src/geo.py <<'PY'
import math


class Circle:
    def __init__(self, r):
        self.r = r

    def area(self):
        return 0


def perimeter(c):
    return 0
PY
printf 'int one(void) { return 1; }\n\nint two(void) { return 2; }\n' > src/n.c
cp -r src ../orig
cat > ../p.patch <<'PATCH'
@@ replace Circle.area in src/geo.py
def area(self):
    return math.pi * self.r ** 2
@@ replace perimeter in src/geo.py
def perimeter(c):
    return 2 * math.pi * c.r
@@ add after two in src/n.c
int three(void) { return 3; }
PATCH
expect_status 0 "$HSWARM" patch apply ../p.patch --dry-run
cp out.txt ../dry.diff
expect_in out.txt "+++ b/src/geo.py"
expect_in out.txt "+        return math.pi * self.r ** 2"
expect_in out.txt "+int three(void) { return 3; }"
cmp -s src/geo.py ../orig/geo.py || fail "--dry-run wrote a file"
expect_status 0 "$HSWARM" patch apply ../p.patch
cmp -s out.txt ../dry.diff || fail "the diff differs between --dry-run and a real run"
grep -q "return 2 \* math.pi \* c.r" src/geo.py || fail "the patch was not written"
/usr/bin/python3 -c 'import ast,sys; ast.parse(open("src/geo.py").read())' || fail "result does not parse"
# GNU patch reproduces the result from the original with our diff
mkdir ../copy && cp -r ../orig ../copy/src
(cd ../copy && patch -s -p1 < ../dry.diff) || fail "GNU patch rejected the diff"
diff -r ../copy/src src >/dev/null || fail "GNU patch gave different files"

# a failing operation: nothing written, the error names its line
cp src/geo.py ../geo.before
printf '@@ replace perimeter in src/geo.py\ndef perimeter(c):\n    return 1\n@@ delete Square.side in src/geo.py\n' > ../bad.patch
expect_status 1 "$HSWARM" patch apply ../bad.patch
expect_in err.txt "line 4: no definition Square.side in src/geo.py"
expect_in err.txt "nothing written"
cmp -s src/geo.py ../geo.before || fail "a failing patch changed a file"
expect_status 1 "$HSWARM" patch apply ../bad.patch --json
expect_json
jq -e '(.applied | not) and (.written | not) and .status == "failed" and
       (.errors[0] | startswith("line 4: no definition Square.side in src/geo.py"))' out.txt \
  >/dev/null || fail "--json failure: $(cat out.txt)"
# malformed patch, from standard input
printf 'some words\n@@ replace f\n' > ../junk.patch
expect_status 1 "$HSWARM" patch apply - < ../junk.patch
expect_in err.txt "line 1: text outside an operation"
printf '@@ replace one\nint one(void) { return 11; }\n' | "$HSWARM" patch apply - --file src/n.c --json > out.txt
jq -e '.applied and .written and .files == ["src/n.c"]' out.txt >/dev/null || fail "stdin with --file: $(cat out.txt)"
grep -q "return 11" src/n.c || fail "stdin patch not written"
expect_status 2 "$HSWARM" patch apply
expect_status 2 "$HSWARM" patch frob x
echo "ok"
