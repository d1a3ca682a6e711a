/* hswarm/grammar.h: constrained decoding with GBNF grammars and JSON schemas.
 *
 * At each decoding step the engine asks which vocabulary tokens may come next
 * (hs_grammar_state_mask), masks the other logits out, samples, and advances the grammar state
 * with the chosen token (hs_grammar_state_accept). Whatever the model does, the text generated so
 * far is then always a prefix of a sentence of the grammar, and generation can end (an
 * end-of-generation token is allowed) exactly when the text is a whole sentence.
 *
 * Grammars. The text format is llama.cpp's GBNF:
 *   name ::= alternatives          one rule; names are letters, digits, '-' and '_'
 *   a b c                           a sequence;  a | b  alternatives;  ( ... )  a group
 *   x*  x+  x?  x{m}  x{m,}  x{m,n} repetition of the item before (m, n <= 10000)
 *   "text"                          a literal, with escapes \n \t \r \\ \" \[ \] \- \xHH \uHHHH
 *                                   and \UHHHHHHHH; raw UTF-8 is allowed
 *   [a-z_] [^"\\] .                 character classes (with the same escapes), negated ones, any
 *                                   character (every Unicode scalar value, newline included)
 *   # comment                       to the end of the line
 * A newline ends a rule, except inside parentheses or right after '|' (or '::='), so a long rule
 * is written over several lines with a group or with leading alternatives. Characters are Unicode
 * code points; the text generated is UTF-8, and a code point may be split across tokens.
 * A grammar is refused, with a message naming the line and column (hs_grammar_last_error), for a
 * syntax error, an undefined rule, a rule defined twice, a missing root rule, left recursion (a
 * rule that can reach itself without consuming a character, including x* of an x that can be
 * empty: matching would loop), a rule reachable from the root that can never finish (every way
 * through it recurses forever, so a model could be trapped in it), an empty character class, or
 * a grammar beyond the limits below. Rules defined but never used are fine.
 *
 * JSON schemas. hs_grammar_from_json_schema compiles a subset of JSON Schema to a grammar whose
 * sentences are JSON documents valid against the schema; hs_grammar_json_schema_to_gbnf gives
 * the grammar's text. Supported: type (one or a list), object with properties (emitted in schema
 * order; required ones mandatory, others optional; no other properties are ever generated, as if
 * additionalProperties were false; an object schema without properties accepts any object
 * unless additionalProperties is false), array with items, minItems, maxItems, string with
 * minLength, maxLength, numbers and integers (JSON number syntax, at most 16 digits before the
 * point, 16 after it and 2 in the exponent, so every number fits a double or an int64), boolean,
 * null, enum and const of any JSON values, anyOf and oneOf (oneOf's exclusivity is not enforced),
 * $defs/definitions with local $ref ("#", "#/$defs/X", "#/definitions/X"), true and {} (any JSON
 * value). Annotations are ignored (title, description, default, examples, $schema, $id,
 * $comment, deprecated, readOnly, writeOnly). Every other keyword (pattern, format, minimum,
 * allOf, not, if, patternProperties, uniqueItems: true, ...) is refused with an error naming it
 * and where it is (a JSON pointer): a constraint is never silently dropped.
 * Whitespace: the generated grammar allows between JSON tokens either nothing, one space, or one
 * newline followed by at most 20 spaces or tabs, so pretty-printed output fits and a model
 * cannot loop forever on blanks; none before the first token or after the last. Strings exclude
 * "\u0000" and unpaired surrogate escapes (which common parsers, jansson included, refuse).
 *
 * Matching. A state is a set of parse stacks (a pushdown recogniser, see grammar_match.c), at
 * most HS_GRAMMAR_MAX_STACKS at once: a grammar so ambiguous that it needs more fails with
 * HS_ENOSPC and a message, rather than using unbounded memory. Masks are computed by walking a
 * trie of the vocabulary's byte strings (hs_grammar_vocab), rejecting whole subtrees at once.
 *
 * Ownership and threads. hs_grammar and hs_grammar_vocab are immutable once created: any number
 * of threads may use one at once. A state belongs to one sequence and one thread at a time
 * (hs_grammar_state_mask, although it takes a const state, updates the state's private
 * transition cache). A state borrows its grammar, and mask/accept borrow a vocabulary: each must
 * outlive the calls and states that use it. Error messages are per thread. Every function that
 * takes an output pointer leaves it untouched (or NULL for constructors) on error. */
#ifndef HSWARM_GRAMMAR_H
#define HSWARM_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HS_GRAMMAR_MAX_TEXT (16u << 20)  /* bytes of grammar or schema text */
#define HS_GRAMMAR_MAX_NESTING 64        /* nested parentheses in a grammar, nested schemas */
#define HS_GRAMMAR_MAX_REPEAT 10000      /* m and n in x{m,n} */
#define HS_GRAMMAR_MAX_ELEMENTS (1u << 22) /* elements of a compiled grammar (after repetition) */
#define HS_GRAMMAR_MAX_STACKS 4096       /* parse stacks alive at once in a state */
#define HS_GRAMMAR_MAX_VOCAB (1u << 24)  /* tokens in a vocabulary */

/* An immutable compiled grammar. */
typedef struct hs_grammar hs_grammar;

/* Compiles GBNF text (len bytes, need not be NUL-terminated). root names the start rule; NULL
 * means "root". On success *out is a new grammar, freed with hs_grammar_destroy. Errors:
 * HS_EINVAL (bad grammar, message "line L, column C: what"), HS_ENOMEM; *out is NULL then. */
int hs_grammar_parse(const char *text, size_t len, const char *root, hs_grammar **out);

/* Compiles a JSON schema (len bytes of JSON text) to a grammar, as hs_grammar_parse of the text
 * hs_grammar_json_schema_to_gbnf returns. HS_EINVAL (bad JSON, unsupported keyword, ...), HS_ENOMEM. */
int hs_grammar_from_json_schema(const char *json, size_t len, hs_grammar **out);

/* The GBNF text for a JSON schema (start rule "root"). *gbnf is a new NUL-terminated string the
 * caller frees with hs_free. Errors as hs_grammar_from_json_schema; the text is also checked by
 * compiling it, so what is returned always parses. */
int hs_grammar_json_schema_to_gbnf(const char *json, size_t len, char **gbnf);

/* Frees a grammar (NULL is ignored). No state may use it afterwards. */
void hs_grammar_destroy(hs_grammar *g);

/* The calling thread's message for the last failure of any hs_grammar_* function; "" if none. */
const char *hs_grammar_last_error(void);

/* A vocabulary indexed for masking: the tokens' byte strings in a trie. Immutable, shareable. */
typedef struct hs_grammar_vocab hs_grammar_vocab;

/* Indexes a vocabulary of n_vocab tokens (1 .. HS_GRAMMAR_MAX_VOCAB). token_bytes[i] points to
 * lens[i] bytes, the text token i contributes (after any tokenizer decoding, such as SentencePiece's
 * U+2581 to a space or byte-fallback tokens to their byte); it may be NULL when lens[i] is 0.
 * eog[i] marks end-of-generation tokens (eog may be NULL: none); an eog token is allowed exactly
 * when the grammar is complete, whatever its bytes. A token of length 0 that is not eog (a control
 * token) is never allowed under a grammar. Everything is copied: the arrays may be freed after the
 * call. *out is freed with hs_grammar_vocab_destroy. HS_EINVAL, HS_ENOMEM. */
int hs_grammar_vocab_create(const char *const *token_bytes, const size_t *lens, const bool *eog,
                            size_t n_vocab, hs_grammar_vocab **out);

/* Frees a vocabulary (NULL is ignored). */
void hs_grammar_vocab_destroy(hs_grammar_vocab *v);

/* Number of tokens of a vocabulary. */
size_t hs_grammar_vocab_size(const hs_grammar_vocab *v);

/* One sequence's position in a grammar. */
typedef struct hs_grammar_state hs_grammar_state;

/* A state at the start of the grammar (nothing generated yet). The state borrows g, which must
 * outlive it. Freed with hs_grammar_state_destroy. HS_EINVAL, HS_ENOMEM, HS_ENOSPC. */
int hs_grammar_state_create(const hs_grammar *g, hs_grammar_state **out);

/* An independent copy of s (same grammar, same position; its own cache). HS_EINVAL, HS_ENOMEM. */
int hs_grammar_state_clone(const hs_grammar_state *s, hs_grammar_state **out);

/* Frees a state (NULL is ignored). */
void hs_grammar_state_destroy(hs_grammar_state *s);

/* Writes allowed[i] = 1 if token i of v may come next, else 0 (hs_grammar_vocab_size(v) bytes,
 * caller-owned). A token may end inside a multi-byte UTF-8 character when the character can still
 * be completed. Returns the number of tokens allowed (>= 0; 0 means the vocabulary cannot continue
 * this text), or HS_EINVAL (NULL argument), HS_ENOMEM, HS_ENOSPC (too many parse stacks); allowed
 * is unspecified on error. The state's position does not change. */
int hs_grammar_state_mask(const hs_grammar_state *s, const hs_grammar_vocab *v, uint8_t *allowed);

/* Advances s by token's bytes, or by an eog token when the text is complete (after which only eog
 * tokens are allowed). HS_EINVAL if the token is out of range or not allowed here; the state is
 * unchanged then. Also HS_ENOMEM, HS_ENOSPC (the state is unchanged then too). */
int hs_grammar_state_accept(hs_grammar_state *s, const hs_grammar_vocab *v, int32_t token);

/* Advances s by len bytes of text (bytes may be NULL when len is 0). All or nothing: HS_EINVAL if
 * some byte is not allowed (the message says which), and the state is unchanged. */
int hs_grammar_state_accept_bytes(hs_grammar_state *s, const char *bytes, size_t len);

/* True when the text so far is a whole sentence of the grammar (an eog token is allowed). */
bool hs_grammar_state_is_complete(const hs_grammar_state *s);

/* True when the text is complete and nothing more can follow it (only eog is allowed). */
bool hs_grammar_state_is_done(const hs_grammar_state *s);

#ifdef __cplusplus
}
#endif
#endif
