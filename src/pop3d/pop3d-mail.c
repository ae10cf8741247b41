/* pop3d-mail.c - the mail process (pop3d.h): one per login, forked by
 * the parent once the auth process has vouched for the login.  It
 * becomes the mailbox's owner before it opens anything (the spool's group
 * added for an mbox in mail_spool_directory), locks the drop (a second
 * session gets [IN-USE]), answers "+OK Logged in." and serves the
 * TRANSACTION state until QUIT, a dropped connection or the timeout.
 * Plain blocking code: one user, one mailbox, one client, on the client's
 * socket or the login process's TLS proxy.
 *
 * SIGTERM is held while a command runs and let in while waiting for the
 * next: a stop never cuts an UPDATE short, and a session stopped between
 * commands changes nothing (RFC 1939: only QUIT deletes).
 */
#include "pop3d.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MAIL_MBOX_LOCK_WAIT_MS 2000
#define MAIL_TOUCH_INTERVAL_US (60 * G_USEC_PER_SEC)

static const char mail_in_use[] = "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n";

/* The maildir's session lock (an OFD lock on .postern-pop3.lock); -1 and
 * *in_use when another session holds it.  A missing maildir is made. */
static int
mail_maildir_lock(const char *path, gboolean *in_use, GError **error)
{
  g_autofree char *lock = g_build_filename(path, ".postern-pop3.lock", NULL);
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd;

  *in_use = FALSE;
  fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == ENOENT) {
    static const char *const subdirs[] = { "cur", "new", "tmp" };

    for (guint i = 0; i < G_N_ELEMENTS(subdirs); i++) {
      g_autofree char *d = g_build_filename(path, subdirs[i], NULL);
      if (g_mkdir_with_parents(d, 0700) < 0)
        break;
    }
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s", lock, g_strerror(errno));
    return -1;
  }
  if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
    *in_use = errno == EAGAIN || errno == EACCES;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s", lock, g_strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* Opens the drop; NULL with the response line in out. */
static Pop3Drop *
mail_open(const Pop3dMailbox *box, int *lock_fd, GString *out, GError **error)
{
  Pop3Drop *drop = g_new0(Pop3Drop, 1);
  gboolean in_use = FALSE;

  if (box->kind == POP3D_BOX_MAILDIR) {
    *lock_fd = mail_maildir_lock(box->path, &in_use, error);
    if (*lock_fd >= 0)
      drop->maildir = pop3_maildir_open(box->path, error);
  } else {
    drop->mbox = pop3_mbox_open(box->path, MAIL_MBOX_LOCK_WAIT_MS, error);
    in_use = drop->mbox == NULL && g_error_matches(*error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  }
  if (drop->maildir != NULL || drop->mbox != NULL)
    return drop;
  g_free(drop);
  g_string_append(out, in_use ? mail_in_use : "-ERR [SYS/TEMP] The mailbox cannot be opened.\r\n");
  return NULL;
}

static void
mail_counts(const Pop3Drop *drop, guint *n, guint *retr, guint *dele)
{
  GPtrArray *msgs = drop->maildir ? drop->maildir->messages : drop->mbox->messages;

  *n = msgs->len;
  *retr = *dele = 0;
  for (guint i = 0; i < msgs->len; i++) {
    const Pop3Message *m = g_ptr_array_index(msgs, i);
    *retr += m->retrieved;
    *dele += m->deleted;
  }
}

static gboolean
mail_flush(Pop3dIo *io, GString *out)
{
  Pop3dIoResult r = out->len ? pop3d_io_write(io, out->str, out->len) : POP3D_IO_OK;

  g_string_truncate(out, 0);
  return r == POP3D_IO_OK;
}

void
pop3d_mail_main(const Pop3dSettings *st, const Pop3dPeer *peer, const Pop3dMailbox *box,
                const char *login, int client_fd, const char *rest, gsize rest_len)
{
  int keep[1] = { client_fd };
  gid_t groups[2] = { box->gid, box->extra_gid };
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GError) error = NULL;
  const char *how = "disconnected";
  gint64 touched = g_get_monotonic_time();
  sigset_t term;
  Pop3Session s;
  Pop3dIo io;
  Pop3Drop *drop;
  int lock_fd = -1;
  guint n, retr, dele;

  pop3d_child_setup(keep, 1);
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pop3d_io_init(&io, keep[0], st->timeout_ms);
  g_byte_array_append(io.in, (const guint8 *) rest, (guint) rest_len);
  if (!pop3d_become(box->uid, box->gid, groups, box->extra_gid == (gid_t) -1 ? 1 : 2)) {
    log_error("user=<%s>: cannot become uid %u gid %u: %s", login, (unsigned) box->uid,
              (unsigned) box->gid, g_strerror(errno));
    g_string_append(out, "-ERR [SYS/TEMP] Internal error.\r\n");
    mail_flush(&io, out);
    _exit(1);
  }
  drop = mail_open(box, &lock_fd, out, &error);
  if (drop == NULL) {
    log_warning("user=<%s>, rip=%s: %s %s: %s", login, peer->remote,
                box->kind == POP3D_BOX_MAILDIR ? "maildir" : "mailbox", box->path,
                error ? error->message : "cannot be opened");
    mail_flush(&io, out);
    _exit(0);
  }
  pop3_session_init(&s);
  s.tls_active = TRUE;        /* no STLS after the login */
  pop3_session_login(&s, drop, NULL, out);
  mail_counts(s.drop, &n, &retr, &dele);
  log_info("user=<%s>, rip=%s: %s %s opened, %u messages", login, peer->remote,
           box->kind == POP3D_BOX_MAILDIR ? "maildir" : "mailbox", box->path, n);

  for (;;) {
    Pop3dIoResult r;
    char *line;
    gsize len;
    gboolean close_now = FALSE;

    sigprocmask(SIG_BLOCK, &term, NULL);
    while (!close_now && (line = pop3d_io_take_line(&io, &len)) != NULL) {
      if (pop3_session_line(&s, line, len, out) == POP3_ACTION_CLOSE)
        close_now = TRUE;
      /* A long pipeline of RETRs: send as it grows, not all at the end. */
      if (out->len >= 256 * 1024 && !mail_flush(&io, out))
        break;
    }
    if (!mail_flush(&io, out) || close_now) {
      how = s.updated ? "logged out" : close_now ? "closed" : "disconnected";
      break;
    }
    if (s.drop->mbox && g_get_monotonic_time() - touched > MAIL_TOUCH_INTERVAL_US) {
      pop3_mbox_touch(s.drop->mbox);
      touched = g_get_monotonic_time();
    }
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    r = pop3d_io_fill(&io);
    if (r == POP3D_IO_OK)
      continue;
    sigprocmask(SIG_BLOCK, &term, NULL);
    if (r == POP3D_IO_TIMEOUT) {
      g_string_append(out, "-ERR Disconnected for inactivity.\r\n");
      mail_flush(&io, out);
      how = "disconnected for inactivity";
    } else if (r == POP3D_IO_TOO_LONG) {
      g_string_append(out, "-ERR Line too long.\r\n");
      mail_flush(&io, out);
      how = "line too long";
    }
    break;
  }
  mail_counts(s.drop, &n, &retr, &dele);
  log_info("user=<%s>, rip=%s: %s, messages=%u, retr=%u, del=%u%s", login, peer->remote, how, n,
           retr, dele, s.updated ? "" : " (nothing deleted)");
  pop3_session_clear(&s);
  if (lock_fd >= 0)
    close(lock_fd);
  pop3d_io_clear(&io);
  _exit(0);
}
