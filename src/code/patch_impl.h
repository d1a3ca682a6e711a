/* patch_impl.h: what the parts of function-level patches share (patch_parse.c, patch_apply.c,
 * udiff.c). Internal to src/code/. */
#ifndef HS_CODE_PATCH_IMPL_H
#define HS_CODE_PATCH_IMPL_H

#include <stddef.h>

#include "core/last_error.h"

extern _Thread_local hs_errbuf hs_patch_err;

/* 1 when p (n bytes) is a relative path without NUL bytes or ".." components. */
int patch_path_ok(const char *p, size_t n);

/* Reads the file at path (as named in a patch): a NUL-terminated text to hs_free and its length,
 * or NULL with the reason in why. */
typedef char *(*patch_reader_fn)(void *ud, const char *path, size_t *len, char *why, size_t cap);

struct hs_patch;
struct hs_patch_result;
/* hs_patch_apply with files from read instead of a directory (tests, fuzzing). */
int patch_apply_with(const struct hs_patch *p, patch_reader_fn read, void *ud,
                     const char *default_path, struct hs_patch_result **out);

#endif
