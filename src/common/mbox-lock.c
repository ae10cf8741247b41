/* mbox-lock.c - locking an mbox as Postfix and mail readers expect
 * (mbox-lock.h): the delivery agent (qmgr) and pop3d share it.
 */
#include "mbox-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

/* Sleeps a little longer each round; FALSE once the deadline passed. */
static gboolean
mbox_wait(gint64 deadline_us, guint *round)
{
  guint ms = MIN(5u << MIN(*round, 6u), 250u);

  if (g_get_monotonic_time() >= deadline_us)
    return FALSE;
  (*round)++;
  g_usleep(ms * 1000);
  return TRUE;
}

/* Creates the dotlock, waiting for another holder and breaking stale ones. */
gboolean
mbox_dotlock(const char *lock_path, gint64 deadline_us, GError **error)
{
  guint round = 0;

  for (;;) {
    struct stat st;
    int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd >= 0) {
      close(fd);
      return TRUE;
    }
    if (errno != EEXIST)
      break;
    if (lstat(lock_path, &st) == 0 && time(NULL) - st.st_mtime > MBOX_DOTLOCK_STALE) {
      if (unlink(lock_path) == 0 || errno == ENOENT)
        continue;
    }
    if (!mbox_wait(deadline_us, &round)) {
      errno = EEXIST;
      break;
    }
  }
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "unable to create lock file %s: %s",
              lock_path, g_strerror(errno));
  return FALSE;
}

gboolean
mbox_fcntl_lock(int fd, gint64 deadline_us, GError **error)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  guint round = 0;

  for (;;) {
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
      return TRUE;
    if ((errno != EAGAIN && errno != EACCES && errno != EINTR) || !mbox_wait(deadline_us, &round))
      break;
  }
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
              "unable to lock for exclusive access: %s", g_strerror(errno));
  return FALSE;
}

