/* pidfile.c - pid files kept locked by their process (see pidfile.h).
 * Library code: never logs. */
#include "pidfile.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
pidfile_dir_ensure(const char *dir, uid_t uid, gid_t gid, GError **error)
{
  struct stat st;

  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "mkdir %s: %s", dir,
                g_strerror(errno));
    return FALSE;
  }
  if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s: not a directory", dir);
    return FALSE;
  }
  if ((uid != (uid_t) -1 || gid != (gid_t) -1) && chown(dir, uid, gid) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "chown %s: %s", dir,
                g_strerror(errno));
    return FALSE;
  }
  if ((st.st_mode & 07777) != 0755 && chmod(dir, 0755) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "chmod %s: %s", dir,
                g_strerror(errno));
    return FALSE;
  }
  return TRUE;
}

int
pidfile_create(const char *path, GError **error)
{
  struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  char buf[32];
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  int len;

  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "open %s: %s", path,
                g_strerror(errno));
    return -1;
  }
  if (fcntl(fd, F_SETLK, &lock) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "lock %s: %s", path,
                errno == EAGAIN || errno == EACCES ? "held by another process"
                                                   : g_strerror(errno));
    close(fd);
    return -1;
  }
  len = g_snprintf(buf, sizeof buf, "%ld\n", (long) getpid());
  if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) len, 0) != len) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "write %s: %s", path,
                g_strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

pid_t
pidfile_holder(const char *path, GError **error)
{
  struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "open %s: %s", path,
                g_strerror(errno));
    return -1;
  }
  /* F_GETLK on a read-only fd is allowed for a write lock query. */
  if (fcntl(fd, F_GETLK, &lock) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "lock query %s: %s", path,
                g_strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  return lock.l_type == F_UNLCK ? 0 : lock.l_pid;
}
