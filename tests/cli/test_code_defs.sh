# test_code_defs.sh: `hswarm defs` (src/cli/code_defs.c): definitions of the Python standard
# library checked against Python's own ast module (tools/code/check_pydefs.py: recall and
# precision of function and class definitions at 99% or more), and the C definitions of the
# project's sources against Universal Ctags (tools/code/check_cdefs.py); the errors (unknown
# language, missing file: the other files are still reported), --lang, --refs, --json.
. "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3
STDLIB=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
expect_status 0 $PY "$SRC/tools/code/check_pydefs.py" "$HSWARM" "$STDLIB"
cat out.txt
jq -e '.files >= 300 and .ast_definitions >= 5000 and .recall >= 0.99 and .precision >= 0.99' \
  out.txt >/dev/null || fail "definitions against ast: $(cat out.txt)"

# C: the project's own sources against Universal Ctags (tools/code/check_cdefs.py; macro
# invocations ctags takes for functions, such as EXACT_GETTER(...), are its few differences)
expect_status 0 $PY "$SRC/tools/code/check_cdefs.py" "$HSWARM" "$SRC/src" "$SRC/include"
cat out.txt
jq -e '.ctags_definitions >= 1000 and .recall >= 0.99 and .precision >= 0.99' out.txt >/dev/null ||
  fail "C definitions against ctags: $(cat out.txt)"

printf 'int twice(int x) { return helper(x) * 2; }\n' > a.c
printf 'def f():\n    return g()\n' > script
expect_status 0 "$HSWARM" defs a.c --refs
expect_in out.txt "a.c:1-1 function twice  int twice(int x)"
expect_in out.txt "a.c:1 call helper (in twice)"
expect_status 3 "$HSWARM" defs script a.c
expect_in err.txt "script: unknown language (use --lang)"
expect_in out.txt "function twice"      # the other file is still reported
expect_status 0 "$HSWARM" defs script --lang python --json
expect_json
[ "$(jq -r '.files[0].definitions[0].qname' out.txt)" = f ] || fail "--lang python"
expect_status 3 "$HSWARM" defs no/such/file.c --json
[ "$(jq -r .status out.txt)" = error ] || fail "a missing file is an error"
expect_in err.txt "no/such/file.c: No such file or directory"
expect_status 2 "$HSWARM" defs a.c --lang cobol
expect_in err.txt "unknown language 'cobol'"
expect_status 2 "$HSWARM" defs
echo "ok"
