/* mailbox-maildir.c - deliver one message into a maildir.
 *
 * The message is written into an unnamed file in tmp/ (O_TMPFILE) and
 * fsynced, then linked as new/<sec>.V<dev>I<ino>M<usec>.<host> (Postfix's
 * unique name) and new/ fsynced (threads delivering into the same maildir
 * share that fsync), so a message is either wholly in new/ or not there
 * at all, and a crash leaves nothing behind in tmp/.  Where O_TMPFILE or
 * /proc is missing, the classic tmp/<name> + link + unlink is used.  No
 * From_ line and no quoting, as Postfix.
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
 * maildir convention has it, and ',', which starts the S= and W= fields). */
static char *
maildir_hostname(const char *host)
{
  GString *s = g_string_new(NULL);

  for (const char *p = host; *p; p++) {
    if (*p == '/')
      g_string_append(s, "\\057");
    else if (*p == ':')
      g_string_append(s, "\\072");
    else if (*p == ',')
      g_string_append(s, "\\054");
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

/* An unnamed file in tmp/ (O_TMPFILE); -1 with errno, ENOENT when the
 * maildir is missing, another errno when unnamed files are unsupported. */
static int
maildir_open_unnamed(const char *tmp_dir)
{
  int fd = open(tmp_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);

  if (fd < 0 && errno != ENOENT)
    errno = EOPNOTSUPP;
  return fd;
}

/* Gives the written file its name in new/: links the unnamed file (via
 * /proc/self/fd, which needs no privilege) or the named tmp/ file. */
static gboolean
maildir_link(int fd, const char *tmp_path, const char *dir, const char *new_path, GError **error)
{
  char proc[64];
  int r;

  if (tmp_path == NULL) {
    g_snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    r = linkat(AT_FDCWD, proc, AT_FDCWD, new_path, AT_SYMLINK_FOLLOW);
    if (r < 0 && errno == ENOENT && maildir_make(dir, NULL))
      r = linkat(AT_FDCWD, proc, AT_FDCWD, new_path, AT_SYMLINK_FOLLOW);
  } else {
    r = link(tmp_path, new_path);
    if (r < 0 && errno == ENOENT && maildir_make(dir, NULL))
      r = link(tmp_path, new_path);
    if (r < 0 && (errno == EPERM || errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP))
      r = rename(tmp_path, new_path);    /* a file system without hard links */
  }
  if (r < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create maildir file %s: %s",
                new_path, g_strerror(errno));
    return FALSE;
  }
  return TRUE;
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
  struct stat st, written;
  gint64 wire = 0;
  int fd;

  gettimeofday(&tv, NULL);
  fd = maildir_open_unnamed(tmp_dir);
  if (fd < 0 && errno == ENOENT) {
    if (!maildir_make(dir, error))
      return FALSE;
    fd = maildir_open_unnamed(tmp_dir);
  }
  if (fd < 0 && errno != ENOENT) {
    /* Unique among our threads and processes until the link below. */
    tmp_path = g_strdup_printf("%s/%lu.P%dQ%u.%s", tmp_dir, (unsigned long) tv.tv_sec,
                               (int) getpid(), (guint) g_atomic_int_add(&counter, 1), host);
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create maildir file in %s: %s",
                tmp_dir, g_strerror(errno));
    return FALSE;
  }
  if (fstat(fd, &st) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "fstat in %s: %s", tmp_dir,
                g_strerror(errno));
    goto fail;
  }
  mailbox_append_headers(out, msg);
  if (!mailbox_copy(fd, out, msg, FALSE, msg->size_limit > 0 ? msg->size_limit : -1, &wire,
                    error))
    goto fail;
  /* ",S=" the file's size and ",W=" with CRLF line ends, as Dovecot names
   * them: POP3 (and IMAP) servers list sizes without reading the file. */
  if (fstat(fd, &written) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "fstat in %s: %s", tmp_dir,
                g_strerror(errno));
    goto fail;
  }
  new_name = g_strdup_printf("%lu.V%lxI%lxM%lu.%s,S=%lld,W=%lld", (unsigned long) tv.tv_sec,
                             (unsigned long) st.st_dev, (unsigned long) st.st_ino,
                             (unsigned long) tv.tv_usec, host, (long long) written.st_size,
                             (long long) wire);
  new_path = g_build_filename(new_dir, new_name, NULL);
  if (fsync(fd) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "error writing message: %s",
                g_strerror(errno));
    goto fail;
  }
  if (!maildir_link(fd, tmp_path, dir, new_path, error))
    goto fail;
  if (close(fd) < 0) {
    fd = -1;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "error writing message: %s",
                g_strerror(errno));
    unlink(new_path);
    goto fail;
  }
  fd = -1;
  if (tmp_path)
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
  if (tmp_path)
    unlink(tmp_path);
  return FALSE;
}
