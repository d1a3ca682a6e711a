/* embedded.h: files compiled into the program by tools/embed_files.cmake (the Lua libraries of
 * lua/, the tree-sitter queries of queries/): each table ends with a NULL name. Internal. */
#ifndef HS_CORE_EMBEDDED_H
#define HS_CORE_EMBEDDED_H

#include <stddef.h>

struct hs_embedded_file {
  const char *name; /* the file name without its extension */
  const char *text; /* NUL-terminated */
  size_t len;
};

extern const struct hs_embedded_file hs_embedded_lua_libs[];   /* the files lua/NAME.lua */
extern const struct hs_embedded_file hs_embedded_queries[];    /* the files queries/NAME.scm */

#endif
