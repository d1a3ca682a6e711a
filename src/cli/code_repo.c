/* code_repo.c: `--repo DIR` of `hswarm run`: the repository's knowledge base, brought up to
 * date and attached to the run as the code.* operations (hswarm/kb.h, lua/code.lua). */
#include <stdio.h>

#include "cli/cli.h"
#include "hswarm/kb.h"
#include "hswarm/runtime.h"

void *cli_repo_attach(const char *repo, const char *index, hs_runtime *rt) {
  char root[4096];
  hs_kb *kb = NULL;
  hs_kb_index_stats st;
  if (hs_kb_find_root(repo, root, sizeof root) != 0 || hs_kb_open(root, index, 1, &kb) != 0 ||
      hs_kb_index(kb, NULL, &st) != 0) {
    cli_fail("--repo %s: %s", repo, hs_kb_last_error());
    hs_kb_close(kb);
    return NULL;
  }
  if (hs_kb_attach(rt, kb) != 0) {
    cli_fail("--repo %s: cannot attach the code operations: %s", repo, hs_runtime_last_error(rt));
    hs_kb_close(kb);
    return NULL;
  }
  return kb;
}

void cli_repo_close(void *kb) { hs_kb_close(kb); }
