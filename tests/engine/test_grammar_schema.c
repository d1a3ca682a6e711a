/* test_grammar_schema.c: JSON schema to grammar (src/engine/grammar_schema.c).
 *
 * For each supported keyword, generated grammars accept valid instances and refuse invalid ones
 * (a missing required property, a wrong type, an extra property, a value outside an enum, the
 * wrong order, lengths and counts out of bounds); every combination of present and absent
 * properties against the required set; $ref to $defs, definitions and the root, recursive;
 * every refused keyword and malformed schema, with the JSON pointer in the message; the exact
 * GBNF text of a small schema (the format users see); and out-of-memory on every allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/counting_alloc.h"

#include "engine/grammar_testlib.h"

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_gschema");
}

static int group_teardown(void **state) { return remove_tmpdir_and_hooks(); }


static hs_grammar *sparse(const char *schema) {
  hs_grammar *g = NULL;
  int rc = hs_grammar_from_json_schema(schema, strlen(schema), &g);
  if (rc) fail_msg("schema refused (%d): %s\n%s", rc, hs_grammar_last_error(), schema);
  return g;
}

static void sparse_fails(const char *schema, const char *part) {
  hs_grammar *g = (hs_grammar *)1;
  int rc = hs_grammar_from_json_schema(schema, strlen(schema), &g);
  if (rc == 0) fail_msg("schema accepted, expected \"%s\": %s", part, schema);
  assert_int_equal(rc, HS_EINVAL);
  assert_null(g);
  assert_msg_has(hs_grammar_last_error(), part);
  char *text = (char *)1;
  assert_int_equal(hs_grammar_json_schema_to_gbnf(schema, strlen(schema), &text), HS_EINVAL);
  assert_null(text);
}

typedef struct scase {
  const char *schema;
  const char *yes[8];
  const char *no[10];
} scase;

static void run_cases(const scase *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    hs_grammar *g = sparse(cases[i].schema);
    for (size_t k = 0; k < 8 && cases[i].yes[k]; k++)
      if (!gmatch(g, cases[i].yes[k]))
        fail_msg("schema %s refuses %s (%s)", cases[i].schema, cases[i].yes[k], hs_grammar_last_error());
    for (size_t k = 0; k < 10 && cases[i].no[k]; k++)
      if (gmatch(g, cases[i].no[k])) fail_msg("schema %s accepts %s", cases[i].schema, cases[i].no[k]);
    hs_grammar_destroy(g);
  }
}

static void test_objects(void **state) {
  static const scase cases[] = {
      {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"}},"
       "\"required\":[\"name\",\"age\"]}",
       {"{\"name\":\"Bob\",\"age\":42}", "{ \"name\": \"\", \"age\": -1 }",
        "{\n  \"name\": \"é\\n\",\n  \"age\": 0\n}"},
       {"{\"name\":\"Bob\"}",                       /* missing required */
        "{\"age\":42,\"name\":\"Bob\"}",            /* wrong order */
        "{\"name\":\"Bob\",\"age\":\"42\"}",        /* wrong type */
        "{\"name\":\"Bob\",\"age\":4.2}",           /* not an integer */
        "{\"name\":\"Bob\",\"age\":42,\"x\":1}",    /* extra property */
        "{\"name\":null,\"age\":42}", "{}", "[]", " {\"name\":\"a\",\"age\":1}"}},
      /* optional properties keep their order and may each be left out */
      {"{\"properties\":{\"a\":{\"type\":\"boolean\"},\"b\":{\"type\":\"null\"},\"c\":{\"type\":\"number\"}}}",
       {"{}", "{\"a\":true}", "{\"b\":null}", "{\"c\":1.5e3}", "{\"a\":false,\"c\":0}",
        "{\"a\":true,\"b\":null,\"c\":-2}", "{\"b\":null,\"c\":1}"},
       {"{\"c\":1,\"a\":true}", "{\"a\":1}", "{\"b\":0}", "{,\"a\":true}", "{\"a\":true,}",
        "{\"d\":1}"}},
      /* nested objects, additionalProperties false with no properties */
      {"{\"type\":\"object\",\"properties\":{\"in\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},"
       "\"required\":[\"x\"]},\"none\":{\"type\":\"object\",\"additionalProperties\":false}},\"required\":[\"in\"]}",
       {"{\"in\":{\"x\":1}}", "{\"in\":{\"x\":1},\"none\":{}}", "{\"in\":{ \"x\" : 1 } , \"none\" : { } }"},
       {"{\"in\":{}}", "{\"in\":{\"x\":1},\"none\":{\"a\":1}}", "{\"none\":{}}"}},
      /* an object schema without properties takes any object */
      {"{\"type\":\"object\"}",
       {"{}", "{\"any\":[1,{\"thing\":null}]}"},
       {"[]", "1", "{\"a\"}"}},
      /* an optional property whose schema is false is simply never written */
      {"{\"properties\":{\"a\":false,\"b\":{\"const\":1}},\"required\":[\"b\"]}",
       {"{\"b\":1}"},
       {"{\"a\":1,\"b\":1}", "{}"}},
  };
  run_cases(cases, sizeof cases / sizeof *cases);
}

/* Every subset of 4 properties, with each set of required ones: a subset written in schema
 * order is accepted exactly when it includes every required property. */
static void test_required_combinations(void **state) {
  const char *names[4] = {"p", "q", "r", "s"};
  for (unsigned req = 0; req < 16; req++) {
    char schema[512];
    size_t n = (size_t)snprintf(schema, sizeof schema,
                                "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"integer\"},"
                                "\"q\":{\"type\":\"integer\"},\"r\":{\"type\":\"integer\"},"
                                "\"s\":{\"type\":\"integer\"}},\"required\":[");
    bool first = true;
    for (int k = 0; k < 4; k++)
      if (req & (1u << k)) {
        n += (size_t)snprintf(schema + n, sizeof schema - n, "%s\"%s\"", first ? "" : ",", names[k]);
        first = false;
      }
    snprintf(schema + n, sizeof schema - n, "]}");
    hs_grammar *g = sparse(schema);
    for (unsigned present = 0; present < 16; present++) {
      char inst[128];
      size_t m = (size_t)snprintf(inst, sizeof inst, "{");
      first = true;
      for (int k = 0; k < 4; k++)
        if (present & (1u << k)) {
          m += (size_t)snprintf(inst + m, sizeof inst - m, "%s\"%s\":%d", first ? "" : ",", names[k], k);
          first = false;
        }
      snprintf(inst + m, sizeof inst - m, "}");
      bool want = (present & req) == req;
      if (gmatch(g, inst) != want) fail_msg("required %x, instance %s: expected %d", req, inst, want);
    }
    hs_grammar_destroy(g);
  }
}

static void test_values(void **state) {
  static const scase cases[] = {
      {"{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}",
       {"[1,2]", "[1, 2, 3]", "[ 1 , 2 ]"},
       {"[]", "[1]", "[1,2,3,4]", "[1,\"2\"]", "[1,2,]"}},
      {"{\"type\":\"array\",\"items\":{\"type\":\"string\"}}",
       {"[]", "[\"a\"]", "[\"a\", \"b\", \"c\", \"d\", \"e\"]"},
       {"[1]", "[\"a\",]", "[,]"}},
      {"{\"type\":\"array\",\"maxItems\":0}", {"[]", "[ ]"}, {"[1]"}},
      {"{\"type\":\"array\",\"minItems\":1}", {"[null]", "[1,{},[]]"}, {"[]"}},
      {"{\"type\":\"array\",\"minItems\":1,\"maxItems\":1,\"items\":{\"type\":\"boolean\"}}",
       {"[true]"}, {"[]", "[true,false]"}},
      {"{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":2}}",
       {"[[1,2],[],[3]]"}, {"[[1,2,3]]", "[1]"}},
      {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":4}",
       {"\"ab\"", "\"abcd\"", "\"é😀\"", "\"\\n\\u00e9\"", "\"\\ud83d\\ude00x\""},
       {"\"a\"", "\"abcde\"", "\"\"", "\"\\n\""}},
      {"{\"type\":\"string\",\"maxLength\":0}", {"\"\""}, {"\"a\""}},
      {"{\"type\":\"string\",\"minLength\":3}", {"\"abc\"", "\"abcdefgh\""}, {"\"ab\""}},
      {"{\"type\":\"number\"}", {"0", "-1.5", "2e10", "3E-2", "1234567890123456"},
       {"01", "1.", ".1", "+1", "NaN", "\"1\""}},
      {"{\"type\":\"integer\"}", {"0", "-7", "1234567890123456"}, {"1.0", "1e2", "-", "-01"}},
      {"{\"type\":\"boolean\"}", {"true", "false"}, {"True", "1", "null"}},
      {"{\"type\":\"null\"}", {"null"}, {"nil", "0"}},
      {"{\"type\":[\"string\",\"null\"]}", {"\"x\"", "null"}, {"1", "false"}},
      {"{\"type\":[\"integer\",\"array\"],\"items\":{\"type\":\"integer\"}}", {"1", "[1,2]"}, {"[\"a\"]", "1.5"}},
      {"{\"enum\":[\"red\",\"green\",1,null,true,{\"a\":[1,2]},[]]}",
       {"\"red\"", "\"green\"", "1", "null", "true", "{\"a\":[1,2]}", "[]"},
       {"\"blue\"", "\"Red\"", "2", "false", "{\"a\":[1]}", "[1]"}},
      {"{\"type\":\"string\",\"enum\":[\"a\",1,\"b\"]}", {"\"a\"", "\"b\""}, {"1"}},
      {"{\"const\":\"only\"}", {"\"only\""}, {"\"other\"", "\"onl\""}},
      {"{\"enum\":[\"quote\\\"d\",\"back\\\\slash\",\"é\"]}",
       {"\"quote\\\"d\"", "\"back\\\\slash\"", "\"é\""}, {"\"quoted\""}},
      {"{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":1}]}",
       {"5", "\"a\""}, {"\"ab\"", "null"}},
      {"{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"k\":{\"const\":1}},\"required\":[\"k\"]},{\"type\":\"null\"}]}",
       {"{\"k\":1}", "null"}, {"{}", "{\"k\":2}"}},
      {"{}", {"1", "\"s\"", "[true,{\"a\":null}]", "{}"}, {"", "tru"}},
      {"true", {"null", "[[]]"}, {"[[]"}},
      {"{\"title\":\"T\",\"description\":\"d\",\"$schema\":\"x\",\"default\":1,\"examples\":[1],"
       "\"type\":\"integer\",\"deprecated\":false,\"$comment\":\"c\"}",
       {"3"}, {"\"3\""}},
      {"{\"minLength\":1}", {"\"x\""}, {"\"\"", "1"}},
      {"{\"maxItems\":1}", {"[]", "[1]"}, {"[1,2]"}},
      {"{\"type\":\"array\",\"uniqueItems\":false}", {"[1,1]"}, {"1"}},
  };
  run_cases(cases, sizeof cases / sizeof *cases);
}

static void test_refs(void **state) {
  static const scase cases[] = {
      {"{\"$defs\":{\"Point\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"},"
       "\"y\":{\"type\":\"number\"}},\"required\":[\"x\",\"y\"]}},"
       "\"type\":\"object\",\"properties\":{\"from\":{\"$ref\":\"#/$defs/Point\"},"
       "\"to\":{\"$ref\":\"#/$defs/Point\"}},\"required\":[\"from\",\"to\"]}",
       {"{\"from\":{\"x\":0,\"y\":1},\"to\":{\"x\":2,\"y\":3}}"},
       {"{\"from\":{\"x\":0},\"to\":{\"x\":2,\"y\":3}}", "{\"from\":{\"x\":0,\"y\":1}}"}},
      /* definitions (draft 7), a name that needs JSON-pointer escapes, a ref to a ref */
      {"{\"definitions\":{\"a/b~c\":{\"$ref\":\"#/definitions/leaf\"},\"leaf\":{\"enum\":[1,2]}},"
       "\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/a~1b~0c\"}}",
       {"[1,2,1]", "[]"}, {"[3]"}},
      /* recursion: a linked list, and a tree through the root */
      {"{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
       "\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},\"required\":[\"v\",\"next\"]}},"
       "\"$ref\":\"#/$defs/node\"}",
       {"{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3,\"next\":null}}}"},
       {"{\"v\":1}", "{\"v\":1,\"next\":{\"v\":2}}"}},
      {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"kids\":{\"type\":\"array\","
       "\"items\":{\"$ref\":\"#\"}}},\"required\":[\"name\"]}",
       {"{\"name\":\"a\"}", "{\"name\":\"a\",\"kids\":[{\"name\":\"b\",\"kids\":[]}]}"},
       {"{\"name\":\"a\",\"kids\":[{}]}"}},
  };
  run_cases(cases, sizeof cases / sizeof *cases);
}

static void test_errors(void **state) {
  struct {
    const char *schema, *msg;
  } cases[] = {
      {"{\"type\":\"string\",\"pattern\":\"^a$\"}", "json schema at #: unsupported keyword 'pattern'"},
      {"{\"properties\":{\"mail\":{\"type\":\"string\",\"format\":\"email\"}}}",
       "json schema at #/properties/mail: unsupported keyword 'format'"},
      {"{\"type\":\"integer\",\"minimum\":0}", "unsupported keyword 'minimum'"},
      {"{\"type\":\"number\",\"exclusiveMaximum\":0}", "unsupported keyword 'exclusiveMaximum'"},
      {"{\"type\":\"number\",\"multipleOf\":2}", "unsupported keyword 'multipleOf'"},
      {"{\"allOf\":[{}]}", "unsupported keyword 'allOf'"},
      {"{\"not\":{}}", "unsupported keyword 'not'"},
      {"{\"if\":{},\"then\":{}}", "unsupported keyword 'if'"},
      {"{\"type\":\"object\",\"patternProperties\":{}}", "unsupported keyword 'patternProperties'"},
      {"{\"type\":\"array\",\"uniqueItems\":true}", "unsupported keyword 'uniqueItems' (only false"},
      {"{\"type\":\"array\",\"prefixItems\":[]}", "unsupported keyword 'prefixItems'"},
      {"{\"type\":\"array\",\"contains\":{}}", "unsupported keyword 'contains'"},
      {"{\"type\":\"object\",\"minProperties\":1}", "unsupported keyword 'minProperties'"},
      {"{\"type\":\"array\",\"items\":[{}]}", "json schema at #: 'items' as an array (a tuple)"},
      {"{\"type\":\"array\",\"items\":{\"anyOf\":[{},{\"x-custom\":1}]}}",
       "json schema at #/items/anyOf/1: unsupported keyword 'x-custom'"},
      {"{\"$defs\":{\"A\":{\"nullable\":true}},\"$ref\":\"#/$defs/A\"}",
       "json schema at #/$defs/A: unsupported keyword 'nullable'"},
      {"{\"$ref\":\"#/$defs/missing\"}", "$ref '#/$defs/missing' names no definition"},
      {"{\"$ref\":\"https://example.com/s.json\"}", "unsupported $ref 'https://example.com/s.json'"},
      {"{\"$ref\":\"#/properties/a\"}", "unsupported $ref"},
      {"{\"$ref\":\"#/$defs/a/b\"}", "only one level below $defs"},
      {"{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a\",\"type\":\"string\"}",
       "keyword 'type' beside '$ref' is not supported"},
      {"{\"anyOf\":[{}],\"type\":\"string\"}", "keyword 'type' beside 'anyOf'"},
      {"{\"enum\":[\"a\",\"bb\"],\"maxLength\":1}", "keyword 'maxLength' beside 'enum'"},
      {"{\"anyOf\":[]}", "'anyOf' must be a non-empty array"},
      {"{\"enum\":[]}", "'enum' must be a non-empty array"},
      {"{\"enum\":[1],\"const\":1}", "'enum' and 'const' together"},
      {"{\"type\":\"string\",\"enum\":[1,2]}", "no value of 'enum' has the schema's type"},
      {"{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}",
       "required property 'b' is not in 'properties'"},
      {"{\"type\":\"object\",\"required\":[\"b\"]}", "required property 'b'"},
      {"{\"properties\":{\"a\":false},\"required\":[\"a\"]}", "#/properties/a: required property with schema false"},
      {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}",
       "'additionalProperties' with a schema is only supported beside 'properties'"},
      {"{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "maxItems is below minItems"},
      {"{\"type\":\"array\",\"minItems\":-1}", "'minItems' must be a non-negative integer"},
      {"{\"type\":\"array\",\"maxItems\":20000}", "'maxItems' of 20000 is above the supported 10000"},
      {"{\"type\":\"string\",\"minLength\":\"3\"}", "'minLength' must be a non-negative integer"},
      {"{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}", "maxLength is below minLength"},
      {"{\"type\":\"text\"}", "unknown type 'text'"},
      {"{\"type\":[]}", "'type' must be a type name or a non-empty array"},
      {"{\"type\":[\"string\",5]}", "'type' lists something that is not a type name"},
      {"{\"properties\":[]}", "'properties' must be an object"},
      {"{\"type\":\"object\",\"properties\":{},\"required\":\"a\"}", "'required' must be an array"},
      {"false", "json schema at #: schema false matches nothing"},
      {"[1]", "a schema must be an object or a boolean"},
      {"{\"type\":\"string\"", "json schema: invalid JSON at line 1"},
      {"{\"type\":\"string\",\"type\":\"null\"}", "invalid JSON"},
      {"", "invalid JSON"},
      /* the grammar itself is refused: a definition that is only itself, or that never ends */
      {"{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
       "the generated grammar is refused: line 2, column 1: left recursion: 'a' -> 'a'"},
      {"{\"$defs\":{\"a\":{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/a\"}},"
       "\"required\":[\"a\"]}},\"$ref\":\"#/$defs/a\"}",
       "the generated grammar is refused: line 2, column 1: rule 'a' can never finish"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) sparse_fails(cases[i].schema, cases[i].msg);
  /* nesting */
  char deep[2048];
  size_t n = 0;
  for (int i = 0; i < 70; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"items\":");
  n += (size_t)snprintf(deep + n, sizeof deep - n, "{}");
  for (int i = 0; i < 70; i++) deep[n++] = '}';
  deep[n] = 0;
  sparse_fails(deep, "schemas nested deeper than 64");
  /* NULL arguments */
  hs_grammar *g;
  char *text;
  assert_int_equal(hs_grammar_from_json_schema("{}", 2, NULL), HS_EINVAL);
  assert_int_equal(hs_grammar_json_schema_to_gbnf("{}", 2, NULL), HS_EINVAL);
  assert_int_equal(hs_grammar_from_json_schema(NULL, 2, &g), HS_EINVAL);
  assert_int_equal(hs_grammar_json_schema_to_gbnf(NULL, 3, &text), HS_EINVAL);
}

static void test_gbnf_text(void **state) {
  const char *schema =
      "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
      "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":3}},"
      "\"required\":[\"id\"]}";
  char *text = NULL;
  assert_int_equal(hs_grammar_json_schema_to_gbnf(schema, strlen(schema), &text), 0);
  const char *expect =
      "root ::= \"{\" ws ( id-kv ( \",\" ws tags-kv )? ) \"}\"\n"
      "id-kv ::= \"\\\"id\\\"\" ws \":\" ws integer ws\n"
      "tags-kv ::= \"\\\"tags\\\"\" ws \":\" ws tags ws\n"
      "tags ::= \"[\" ws ( ( \"\\\"a\\\"\" | \"\\\"b\\\"\" ) ws ( \",\" ws ( \"\\\"a\\\"\" | \"\\\"b\\\"\" ) ws ){0,2} )? \"]\"\n"
      "integer ::= \"-\"? integral\n"
      "integral ::= \"0\" | [1-9] [0-9]{0,15}\n"
      "ws ::= ( \" \" | \"\\n\" [ \\t]{0,20} )?\n";
  if (strcmp(text, expect) != 0) fail_msg("got:\n%s\nexpected:\n%s", text, expect);
  /* the text compiles to the grammar from_json_schema gives */
  hs_grammar *g = gparse(text);
  assert_accepts(g, "{\"id\":1,\"tags\":[\"a\",\"b\",\"a\"]}");
  assert_refuses(g, "{\"id\":1,\"tags\":[\"a\",\"b\",\"a\",\"b\"]}");
  hs_grammar_destroy(g);
  hs_free(text);
  /* property names that are not rule names, or clash with the primitives, are renamed */
  const char *odd = "{\"properties\":{\"a b\":{\"type\":\"string\"},\"string\":{\"type\":\"array\"},"
                    "\"ws\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},\"é\":{\"type\":\"null\"}}}";
  assert_int_equal(hs_grammar_json_schema_to_gbnf(odd, strlen(odd), &text), 0);
  assert_non_null(strstr(text, "a-b-kv ::= \"\\\"a b\\\"\""));
  assert_non_null(strstr(text, "\nstring-2 ::= \"[\""));
  assert_non_null(strstr(text, "\nws-2 ::= string | null\n"));
  assert_non_null(strstr(text, "\"\\\"é\\\"\""));
  g = gparse(text);
  assert_accepts(g, "{\"a b\":\"x\",\"string\":[1],\"ws\":null,\"é\":null}");
  hs_grammar_destroy(g);
  hs_free(text);
  /* the file shipped for generic JSON is what {} gives, with an object at the root */
  size_t n;
  char *file = read_source_file("grammars/json.gbnf", &n);
  assert_int_equal(hs_grammar_json_schema_to_gbnf("{}", 2, &text), 0);
  /* every primitive rule of the generated text appears, as written, in the file */
  for (char *line = text, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    *nl = 0;
    if (strncmp(line, "root ", 5) != 0 && strncmp(line, "unicode-escape", 14) != 0 &&
        strncmp(line, "  ", 2) != 0) {
      /* compare ignoring runs of blanks, since the file aligns its rules */
      char a[512], b[512];
      size_t k = 0;
      for (const char *p = line; *p && k < sizeof a - 1; p++)
        if (*p != ' ') a[k++] = *p;
      a[k] = 0;
      bool found = false;
      for (const char *fl = file; *fl && !found;) {
        const char *fe = strchr(fl, '\n');
        size_t m = 0;
        for (const char *p = fl; p < (fe ? fe : fl + strlen(fl)) && m < sizeof b - 1; p++)
          if (*p != ' ') b[m++] = *p;
        b[m] = 0;
        found = strcmp(a, b) == 0;
        fl = fe ? fe + 1 : fl + strlen(fl);
      }
      if (!found) fail_msg("json.gbnf lacks the rule: %s", line);
    }
  }
  hs_free(text);
  free(file);
}

static void test_out_of_memory(void **state) {
  const char *schema =
      "{\"$defs\":{\"P\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}}}},"
      "\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/P\"},\"b\":{\"type\":\"array\","
      "\"items\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},{\"enum\":[1,\"x\"]}]}},"
      "\"c\":{\"type\":[\"boolean\",\"null\"]},\"d\":{}},\"required\":[\"b\"]}";
  int failures = 0;
  for (long k = 1;; k++) {
    hs_grammar *g = NULL;
    char *text = NULL;
    hs_alloc_fail_after(k);
    int rc = hs_grammar_from_json_schema(schema, strlen(schema), &g);
    if (!rc) rc = hs_grammar_json_schema_to_gbnf(schema, strlen(schema), &text);
    hs_alloc_fail_after(0);
    hs_grammar_destroy(g);
    hs_free(text);
    assert_int_equal(live_blocks, 0);
    if (rc) {
      assert_int_equal(rc, HS_ENOMEM);
      failures++;
      continue;
    }
    break;
  }
  assert_true(failures > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_objects, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_required_combinations, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_values, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_refs, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_errors, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_gbnf_text, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_out_of_memory, reset_live_blocks, fail_on_leaked_blocks),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
