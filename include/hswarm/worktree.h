/* hswarm/worktree.h: private copies of a directory tree that cost little: regular files are
 * hard-linked where the command that will use the copy cannot write them, copied otherwise
 * (with a reflink clone where the file system offers one), so that a command verifier's copy of
 * a 20,000-file repository takes a fraction of what `cp -a` takes (BENCHMARKS.md, "Private
 * copies").
 *
 *   hs_worktree_stats st;
 *   hs_worktree_copy("/path/repo", "/tmp/x/work", HS_WORKTREE_LINK_FOR_NOBODY, &st);
 *
 * Copies are made for commands that run as nobody (65534) when the caller is root (what the
 * verifier does): running as root, the copy's directories, copied files and symbolic links are
 * given to nobody; linked files keep their owner.
 *
 * Safety of links. A hard link shares the file's inode with the original: whoever can write the
 * file through the copy writes the original. So a file is linked only in mode
 * HS_WORKTREE_LINK_FOR_NOBODY, which is for copies used by a command running as nobody (65534)
 * (the verifier does so when run as root), and only when nobody cannot write it: not owned by
 * 65534, not writable by others (the command can still create, rename and remove entries in its
 * own directories: only the copy's names change). Files about to be replaced must be unlinked first,
 * never truncated (hs_verify_command does so). In HS_WORKTREE_COPY every file is copied: for a
 * command that runs as the files' owner. Files on another file system than the copy are copied.
 * Symbolic links are recreated as they are (not followed); devices, sockets and FIFOs skipped.
 *
 * Threads: any; calls are independent. Errors: a negative HS_E* code with a message from
 * hs_worktree_last_error (thread-local); a partial copy is left for the caller to remove. */
#ifndef HSWARM_WORKTREE_H
#define HSWARM_WORKTREE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_worktree_mode {
  HS_WORKTREE_COPY = 0,           /* every regular file copied */
  HS_WORKTREE_LINK_FOR_NOBODY = 1 /* linked where nobody cannot write (needs root; without it,
                                     as HS_WORKTREE_COPY) */
} hs_worktree_mode;

typedef struct hs_worktree_stats {
  uint64_t dirs, linked, copied, symlinks, skipped;
  uint64_t bytes_copied;
} hs_worktree_stats;

/* Copies the contents of src (a directory) into dst (an existing, empty directory). */
int hs_worktree_copy(const char *src, const char *dst, hs_worktree_mode mode,
                     hs_worktree_stats *stats);
const char *hs_worktree_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
