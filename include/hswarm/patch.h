/* hswarm/patch.h: function-level patches: name a definition and give its complete new text (or
 * add a definition after one, or delete one); applied through the parse tree, re-parsed, shown as
 * a unified diff.
 *
 * The format (what agents write):
 *
 *   @@ replace area in src/shapes.py
 *   def area(w, h):
 *       return w * h
 *   @@ add after area in src/shapes.py
 *   def perimeter(w, h):
 *       return 2 * (w + h)
 *   @@ delete old_area in src/shapes.py
 *   @@ end
 *
 * A header line starts an operation: "@@ replace NAME", "@@ add after NAME", "@@ delete NAME",
 * each optionally followed by " in PATH" (relative to the root the patch is applied to; without
 * it the caller's default path is used). NAME is a qualified name ("Shape.area") or a plain one
 * that is unique in the file. The lines after a replace or add header, up to the next header,
 * an "@@ end" line or the end of the text, are the complete definition. Blank lines and Markdown
 * fence lines ("```", "```python") around operations are ignored, and so is a fence closing a
 * definition; anything else outside an operation is an error naming its line.
 *
 * Applying. Each file named is read once from the root and parsed; every operation is located in
 * that original parse (so operations on one file do not shift each other), then the edits are made.
 * A definition keeps its place and indentation: the new text is re-indented to the column the old
 * definition starts at (a method written at column 0 lands in its class). Two operations that
 * replace or delete the same definition are a conflict, reported, never a silent overwrite. The
 * edited file is parsed again; if it has more syntax errors than before, the file's operations are
 * rejected with the parser's error location. Nothing is written to the root unless asked
 * (hs_patch_write), and then only when every operation applied.
 *
 * Ownership: a hs_patch owns its strings; a hs_patch_result owns the files' texts, the diff and
 * the messages. Threads: calls are independent. */
#ifndef HSWARM_PATCH_H
#define HSWARM_PATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_patch_kind {
  HS_PATCH_REPLACE = 0,
  HS_PATCH_ADD_AFTER,
  HS_PATCH_DELETE
} hs_patch_kind;

typedef struct hs_patch_op {
  hs_patch_kind kind;
  const char *symbol;   /* NAME */
  const char *path;     /* PATH, or NULL for the default */
  const char *text;     /* the new definition (replace, add); "" for delete */
  size_t text_len;
  uint32_t line;        /* the header's line in the patch text (1-based) */
} hs_patch_op;

typedef struct hs_patch {
  hs_patch_op *ops;
  size_t n_ops;
} hs_patch;

/* Parses a patch text (len bytes). 0 and *out, or HS_EINVAL with a message naming the line
 * (hs_patch_last_error), or HS_ENOMEM. A text without any operation is an error. */
int hs_patch_parse(const char *text, size_t len, hs_patch **out);
void hs_patch_free(hs_patch *p);

typedef struct hs_patch_file {
  const char *path;     /* as named in the patch */
  const char *before;   /* the file's text before and after */
  size_t before_len;
  const char *after;
  size_t after_len;
} hs_patch_file;

typedef struct hs_patch_result {
  int ok;               /* every operation applied */
  hs_patch_file *files; /* the files touched, in order of first mention */
  size_t n_files;
  const char *diff;     /* unified diff of every file (a/PATH, b/PATH), "" when nothing changed */
  const char **errors;  /* one message per failed operation or file: "line L: ..." */
  size_t n_errors;
} hs_patch_result;

/* Applies p to the files under root (default_path for operations without " in PATH"; may be
 * NULL). 0 with *out (look at (*out)->ok and errors), or a negative code when nothing could be
 * tried (HS_EINVAL: NULL argument; HS_ENOMEM). A missing file, a missing or ambiguous symbol, a
 * conflict or a syntax error is reported in (*out)->errors, not as a return code. */
int hs_patch_apply(const hs_patch *p, const char *root, const char *default_path,
                   hs_patch_result **out);

/* Writes the files of a result whose ok is 1 under root (each written to a temporary file in
 * its directory, then renamed over the original). 0, HS_EINVAL (the result is not ok), HS_EIO. */
int hs_patch_write(const hs_patch_result *r, const char *root);

void hs_patch_result_free(hs_patch_result *r);

/* A unified diff (3 lines of context) between two texts, as "--- a/PATH\n+++ b/PATH\n@@ ...";
 * "" when they are equal. Returns a string to free with hs_free, or NULL (out of memory). */
char *hs_unified_diff(const char *path, const char *a, size_t a_len, const char *b, size_t b_len);

/* The calling thread's last error message of this module. Never NULL. */
const char *hs_patch_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
