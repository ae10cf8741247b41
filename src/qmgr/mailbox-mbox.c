/* mailbox-mbox.c - append one message to an mbox file.
 *
 * Locking as Postfix and mail readers expect: a "<mbox>.lock" dotlock
 * (created with O_EXCL; stale after MBOX_DOTLOCK_STALE seconds), then an
 * fcntl write lock on the file (open-file-description lock, so two of
 * our own threads exclude each other too, yet it conflicts with classic
 * POSIX locks of other programs).  The message is appended with a From_
 * line and ">From " quoting; any failure truncates the file back to its
 * old size, so a reader never sees half a message.  fsync before unlock.
 */
#include "mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "mbox-lock.h"

/* Opens the mailbox for appending, creating it when missing, and checks
 * that it is a plain file of the right owner (no symlink, no hard link). */
static int
mbox_open(const char *path, uid_t create_uid, gid_t create_gid, GError **error)
{
  struct stat st;
  int fd;

  fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
              0600);
    if (fd >= 0 && create_uid != (uid_t) -1 && fchown(fd, create_uid, create_gid) < 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "cannot set owner of %s: %s",
                  path, g_strerror(errno));
      close(fd);
      unlink(path);
      return -1;
    }
  }
  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "cannot open file: %s",
                g_strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1
      || (create_uid != (uid_t) -1 && st.st_uid != create_uid)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "destination %s is not a regular file with one link owned by the recipient",
                path);
    close(fd);
    return -1;
  }
  return fd;
}

gboolean
mailbox_mbox_deliver(const char *path, const MailboxMessage *msg, uid_t create_uid,
                     gid_t create_gid, GError **error)
{
  g_autofree char *lock_path = g_strconcat(path, ".lock", NULL);
  g_autoptr(GString) out = g_string_sized_new(4096);
  gint64 deadline = g_get_monotonic_time() + (gint64) MBOX_LOCK_WAIT_MS * 1000;
  gboolean ok = FALSE;
  struct stat st;
  int fd;

  if (!mbox_dotlock(lock_path, deadline, error))
    return FALSE;
  fd = mbox_open(path, create_uid, create_gid, error);
  if (fd < 0)
    goto out_unlock;
  if (!mbox_fcntl_lock(fd, deadline, error))
    goto out_close;
  if (fstat(fd, &st) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "cannot stat %s: %s", path,
                g_strerror(errno));
    goto out_close;
  }
  if (msg->size_limit > 0 && st.st_size >= msg->size_limit) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "error writing message: %s",
                g_strerror(EFBIG));
    goto out_close;
  }
  mailbox_append_from_line(out, msg->sender, time(NULL));
  mailbox_append_headers(out, msg);
  ok = mailbox_copy(fd, out, msg, TRUE, msg->size_limit > 0 ? msg->size_limit - st.st_size : -1,
                    NULL, error);
  if (ok && fsync(fd) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "error writing message: %s",
                g_strerror(errno));
    ok = FALSE;
  }
  if (!ok && ftruncate(fd, st.st_size) < 0) {
    g_prefix_error(error, "cannot truncate back to %lld bytes (%s): ", (long long) st.st_size,
                   g_strerror(errno));
  }
out_close:
  close(fd);    /* also releases the fcntl lock */
out_unlock:
  unlink(lock_path);
  return ok;
}
