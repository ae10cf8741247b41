/* mailbox-maildir.c - deliver one message into a maildir.
 *
 * tmp/<name> is written and fsynced, hard-linked to
 * new/<sec>.V<dev>I<ino>M<usec>.<host> (Postfix's unique name), tmp/ is
 * unlinked and new/ fsynced (threads delivering into the same maildir
 * share that fsync), so a message is either wholly in new/ or not there
 * at all.  No From_ line and no quoting, as Postfix.
 */
#include "mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "dirsync.h"

/* Host name safe inside a maildir file name ('/' and ':' encoded as the
 * maildir convention has it). */
static char *
maildir_hostname(const char *host)
{
  GString *s = g_string_new(NULL);

  for (const char *p = host; *p; p++) {
    if (*p == '/')
      g_string_append(s, "\\057");
    else if (*p == ':')
      g_string_append(s, "\\072");
    else
      g_string_append_c(s, *p);
  }
  return g_string_free(s, FALSE);
}

static gboolean
maildir_make(const char *dir, GError **error)
{
  static const char *const subdirs[] = { "tmp", "new", "cur" };

  if (g_mkdir_with_parents(dir, 0700) < 0)
    goto fail;
  for (guint i = 0; i < G_N_ELEMENTS(subdirs); i++) {
    g_autofree char *sub = g_build_filename(dir, subdirs[i], NULL);
    if (mkdir(sub, 0700) < 0 && errno != EEXIST)
      goto fail;
  }
  return TRUE;
fail:
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create maildir %s: %s", dir,
              g_strerror(errno));
  return FALSE;
}

/* fsync of new/, shared with other threads delivering there (dirsync). */
static gboolean
maildir_fsync_dir(const char *dir, GError **error)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "open %s: %s", dir,
                g_strerror(errno));
    return FALSE;
  }
  ok = dirsync_fsync(fd, dir, error);
  close(fd);
  return ok;
}

gboolean
mailbox_maildir_deliver(const char *dir, const MailboxMessage *msg, char **name, GError **error)
{
  static gint counter;
  g_autofree char *host = maildir_hostname(msg->hostname);
  g_autofree char *tmp_dir = g_build_filename(dir, "tmp", NULL);
  g_autofree char *new_dir = g_build_filename(dir, "new", NULL);
  g_autofree char *tmp_path = NULL, *new_name = NULL, *new_path = NULL;
  g_autoptr(GString) out = g_string_sized_new(4096);
  struct timeval tv;
  struct stat st;
  int fd;

  gettimeofday(&tv, NULL);
  /* Unique among our threads and processes until the link below. */
  tmp_path = g_strdup_printf("%s/%lu.P%dQ%u.%s", tmp_dir, (unsigned long) tv.tv_sec,
                             (int) getpid(), (guint) g_atomic_int_add(&counter, 1), host);
  fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == ENOENT) {
    if (!maildir_make(dir, error))
      return FALSE;
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create maildir file %s: %s",
                tmp_path, g_strerror(errno));
    return FALSE;
  }
  if (fstat(fd, &st) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "fstat %s: %s", tmp_path,
                g_strerror(errno));
    goto fail;
  }
  new_name = g_strdup_printf("%lu.V%lxI%lxM%lu.%s", (unsigned long) tv.tv_sec,
                             (unsigned long) st.st_dev, (unsigned long) st.st_ino,
                             (unsigned long) tv.tv_usec, host);
  new_path = g_build_filename(new_dir, new_name, NULL);

  mailbox_append_headers(out, msg);
  if (!mailbox_copy(fd, out, msg, FALSE, msg->size_limit > 0 ? msg->size_limit : -1, error))
    goto fail;
  if (fsync(fd) < 0 || close(fd) < 0) {
    fd = -1;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "error writing message: %s",
                g_strerror(errno));
    goto fail;
  }
  fd = -1;
  if (link(tmp_path, new_path) < 0) {
    if (errno == ENOENT && maildir_make(dir, NULL) && link(tmp_path, new_path) == 0)
      ;
    else if ((errno == EPERM || errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP)
             && rename(tmp_path, new_path) == 0)
      ;    /* a file system without hard links */
    else {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create maildir file %s: %s",
                  new_path, g_strerror(errno));
      goto fail;
    }
  }
  unlink(tmp_path);
  if (!maildir_fsync_dir(new_dir, error)) {
    unlink(new_path);
    return FALSE;
  }
  if (name)
    *name = g_steal_pointer(&new_name);
  return TRUE;

fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp_path);
  return FALSE;
}
