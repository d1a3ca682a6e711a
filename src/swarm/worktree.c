/* worktree.c: cheap private copies of a directory tree (hswarm/worktree.h): a walk of src that
 * recreates directories and symbolic links and hard-links or copies regular files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hswarm/worktree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/last_error.h"
#include "hswarm/error.h"

#define NOBODY 65534
#define MAX_DEPTH 256

static _Thread_local hs_errbuf err;

const char *hs_worktree_last_error(void) { return err.msg; }

#define fail(code, ...) hs_set_error(&err, code, __VA_ARGS__)

typedef struct walk {
  hs_worktree_mode mode;
  int give_to_nobody; /* running as root: the copy is for a command run as nobody */
  int cross_device;   /* a link failed with EXDEV: copy from now on */
  hs_worktree_stats *st;
} walk;

static int give(const walk *w, int dirfd, const char *name) {
  if (!w->give_to_nobody) return 0;
  if (fchownat(dirfd, name, NOBODY, NOBODY, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(HS_EIO, "worktree: cannot give %s to nobody: %s", name, strerror(errno));
  return 0;
}

/* Copies the file open at in into a new file name in dirfd: a reflink clone where the file
 * system has them, else copy_file_range (falling back to read/write). */
static int copy_file(walk *w, int in, const struct stat *st, int dirfd, const char *name) {
  int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   st->st_mode & 07777);
  if (out < 0) return fail(HS_EIO, "worktree: cannot create %s: %s", name, strerror(errno));
  int rc = 0;
  if (ioctl(out, FICLONE, in) != 0) {
    off_t left = st->st_size;
    while (left > 0) {
      ssize_t k = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) { /* not supported here, or the file shrank: read and write what is there */
        char buf[65536];
        ssize_t r;
        while ((r = read(in, buf, sizeof buf)) > 0) {
          for (ssize_t off = 0; off < r;) {
            ssize_t m = write(out, buf + off, (size_t)(r - off));
            if (m < 0 && errno == EINTR) continue;
            if (m <= 0) {
              rc = fail(HS_EIO, "worktree: cannot write %s: %s", name, strerror(errno));
              break;
            }
            off += m;
          }
          if (rc) break;
        }
        if (r < 0) rc = fail(HS_EIO, "worktree: cannot read for %s: %s", name, strerror(errno));
        break;
      }
      left -= k;
    }
  }
  if (!rc) w->st->bytes_copied += (uint64_t)st->st_size;
  if (close(out) != 0 && !rc) rc = fail(HS_EIO, "worktree: cannot write %s: %s", name,
                                        strerror(errno));
  if (!rc) fchmodat(dirfd, name, st->st_mode & 07777, 0);
  return rc;
}

static int linkable(const walk *w, const struct stat *st) {
  return w->mode == HS_WORKTREE_LINK_FOR_NOBODY && w->give_to_nobody && !w->cross_device && st->st_uid != NOBODY &&
         !(st->st_mode & S_IWOTH) && !(st->st_gid == NOBODY && (st->st_mode & S_IWGRP));
}

static int copy_dir(walk *w, int src, int dst, int depth);

static int copy_entry(walk *w, int src, int dst, const char *name, int depth) {
  struct stat st;
  if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(HS_EIO, "worktree: cannot stat %s: %s", name, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    if (depth >= MAX_DEPTH) return fail(HS_EINVAL, "worktree: directories nested too deep");
    if (mkdirat(dst, name, 0700) != 0)
      return fail(HS_EIO, "worktree: cannot create the directory %s: %s", name, strerror(errno));
    int s = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = s < 0 || d < 0 ? fail(HS_EIO, "worktree: cannot open %s: %s", name, strerror(errno))
                            : copy_dir(w, s, d, depth + 1);
    if (s >= 0) close(s);
    if (d >= 0) close(d);
    if (!rc) rc = give(w, dst, name);
    if (!rc) fchmodat(dst, name, st.st_mode & 07777, 0);
    w->st->dirs++;
    return rc;
  }
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(src, name, target, sizeof target - 1);
    if (n < 0) return fail(HS_EIO, "worktree: cannot read the link %s: %s", name, strerror(errno));
    target[n] = 0;
    if (symlinkat(target, dst, name) != 0)
      return fail(HS_EIO, "worktree: cannot create the link %s: %s", name, strerror(errno));
    w->st->symlinks++;
    return give(w, dst, name);
  }
  if (!S_ISREG(st.st_mode)) {
    w->st->skipped++;
    return 0;
  }
  if (linkable(w, &st)) {
    if (linkat(src, name, dst, name, 0) == 0) {
      w->st->linked++;
      return 0;
    }
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
      return fail(HS_EIO, "worktree: cannot link %s: %s", name, strerror(errno));
    if (errno == EXDEV) w->cross_device = 1;
  }
  int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return fail(HS_EIO, "worktree: cannot open %s: %s", name, strerror(errno));
  int rc = copy_file(w, in, &st, dst, name);
  close(in);
  if (!rc) w->st->copied++;
  return rc ? rc : give(w, dst, name);
}

static int copy_dir(walk *w, int src, int dst, int depth) {
  int fd = dup(src);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return fail(HS_EIO, "worktree: cannot read a directory: %s", strerror(errno));
  }
  int rc = 0;
  struct dirent *e;
  while (!rc && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    rc = copy_entry(w, src, dst, e->d_name, depth);
  }
  closedir(d);
  return rc;
}

int hs_worktree_copy(const char *src, const char *dst, hs_worktree_mode mode,
                     hs_worktree_stats *stats) {
  hs_worktree_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!src || !dst) return fail(HS_EINVAL, "worktree: no directory given");
  walk w = {.mode = mode, .give_to_nobody = geteuid() == 0,
            .st = stats};
  int s = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s < 0) return fail(HS_ENOENT, "worktree: %s is not a directory: %s", src, strerror(errno));
  int d = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0) {
    close(s);
    return fail(HS_ENOENT, "worktree: %s is not a directory: %s", dst, strerror(errno));
  }
  int rc = copy_dir(&w, s, d, 0);
  if (!rc && w.give_to_nobody && fchown(d, NOBODY, NOBODY) != 0)
    rc = fail(HS_EIO, "worktree: cannot give %s to nobody: %s", dst, strerror(errno));
  close(s);
  close(d);
  return rc;
}
