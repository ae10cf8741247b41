/* pop3d-io.c - what the children share (pop3d.h): their start after the
 * fork, the identity change, and a connection with an input buffer over
 * a non-blocking socket, plain or TLS, with a deadline for each wait.
 */
#include "pop3d.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* ---------------------------------------------------------------- process start */

void
pop3d_child_setup(int *keep, guint n_keep)
{
  static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE };
  sigset_t none;
  int high[8];                /* above 3 .. 3 + n_keep - 1, the numbers they get */

  g_assert(n_keep <= G_N_ELEMENTS(high));
  for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
    signal(sigs[i], SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  /* Out of the way first (3 + i may be another keeper's number), then down. */
  for (guint i = 0; i < n_keep; i++) {
    high[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 3 + (int) n_keep);
    if (high[i] < 0)
      _exit(1);
  }
  for (guint i = 0; i < n_keep; i++) {
    if (dup2(high[i], 3 + (int) i) < 0)
      _exit(1);
    keep[i] = 3 + (int) i;
  }
  close_range(3 + n_keep, ~0U, 0);
  log_init("postern-pop3d", TRUE);
}

gboolean
pop3d_become(uid_t uid, gid_t gid, const gid_t *groups, int n_groups)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[2] = { { 0 } };

  if (geteuid() != 0) {
    if (getuid() == uid)
      return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
    errno = EPERM;
    return FALSE;
  }
  if (setgroups(n_groups, groups) < 0 || setresgid(gid, gid, gid) < 0
      || setresuid(uid, uid, uid) < 0)
    return FALSE;
  /* A non-zero uid has no capabilities left; make sure of it. */
  if (syscall(SYS_capset, &hdr, data) < 0 && errno != EPERM)
    return FALSE;
  if (setresuid(0, 0, 0) == 0 || (gid != 0 && setresgid(0, 0, 0) == 0)) {
    errno = EPERM;
    return FALSE;
  }
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

/* ---------------------------------------------------------------- the connection */

void
pop3d_io_init(Pop3dIo *io, int fd, gint64 timeout_ms)
{
  *io = (Pop3dIo) { .fd = fd, .in = g_byte_array_new(), .timeout_ms = timeout_ms };
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void
pop3d_io_clear(Pop3dIo *io)
{
  g_clear_pointer(&io->tls, tls_conn_free);
  if (io->in)
    g_byte_array_unref(io->in);
  io->in = NULL;
}

gsize
pop3d_io_pending(const Pop3dIo *io, const char **data)
{
  if (data)
    *data = (const char *) io->in->data + io->in_start;
  return io->in->len - io->in_start;
}

void
pop3d_io_discard(Pop3dIo *io)
{
  g_byte_array_set_size(io->in, 0);
  io->in_start = 0;
}

char *
pop3d_io_take_line(Pop3dIo *io, gsize *len)
{
  char *start = (char *) io->in->data + io->in_start;
  gsize avail = io->in->len - io->in_start;
  char *lf = avail ? memchr(start, '\n', avail) : NULL;
  gsize n;

  if (lf == NULL)
    return NULL;
  n = lf - start;
  io->in_start += n + 1;
  if (n > 0 && start[n - 1] == '\r')
    n--;
  start[n] = '\0';
  *len = n;
  return start;
}

/* Waits until fd is ready for events; FALSE on timeout (errno ETIMEDOUT). */
static Pop3dIoResult
io_wait(Pop3dIo *io, short events)
{
  struct pollfd p = { .fd = io->fd, .events = events };
  int r;

  do
    r = poll(&p, 1, io->timeout_ms > G_MAXINT ? -1 : (int) io->timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return POP3D_IO_ERROR;
  return r == 0 ? POP3D_IO_TIMEOUT : POP3D_IO_OK;
}

/* Maps a TLS step's want to a wait; OK means: try the step again. */
static Pop3dIoResult
io_tls_wait(Pop3dIo *io, TlsIo t)
{
  switch (t) {
  case TLS_IO_WANT_READ:
    return io_wait(io, POLLIN);
  case TLS_IO_WANT_WRITE:
    return io_wait(io, POLLOUT);
  case TLS_IO_EOF:
    return POP3D_IO_EOF;
  default:
    return POP3D_IO_ERROR;
  }
}

Pop3dIoResult
pop3d_io_fill(Pop3dIo *io)
{
  char buf[16384];
  gsize got = 0;
  Pop3dIoResult w;

  if (io->in_start > 0) {
    g_byte_array_remove_range(io->in, 0, io->in_start);
    io->in_start = 0;
  }
  if (io->in->len >= POP3D_LINE_MAX)
    return POP3D_IO_TOO_LONG;
  for (;;) {
    if (io->tls != NULL) {
      g_autoptr(GError) error = NULL;
      TlsIo t = tls_conn_read(io->tls, buf, sizeof buf, &got, &error);

      if (t == TLS_IO_DONE)
        break;
      if ((w = io_tls_wait(io, t)) != POP3D_IO_OK)
        return w;
      continue;
    }
    ssize_t n = read(io->fd, buf, sizeof buf);
    if (n > 0) {
      got = (gsize) n;
      break;
    }
    if (n == 0)
      return POP3D_IO_EOF;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return POP3D_IO_ERROR;
    if ((w = io_wait(io, POLLIN)) != POP3D_IO_OK)
      return w;
  }
  g_byte_array_append(io->in, (const guint8 *) buf, (guint) got);
  return POP3D_IO_OK;
}

Pop3dIoResult
pop3d_io_write(Pop3dIo *io, const char *buf, gsize len)
{
  Pop3dIoResult w;

  while (len > 0) {
    gsize put = 0;

    if (io->tls != NULL) {
      g_autoptr(GError) error = NULL;
      TlsIo t = tls_conn_write(io->tls, buf, len, &put, &error);

      if (t != TLS_IO_DONE) {
        if ((w = io_tls_wait(io, t)) != POP3D_IO_OK)
          return w;
        continue;
      }
    } else {
      ssize_t n = write(io->fd, buf, len);

      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN)
          return errno == EPIPE || errno == ECONNRESET ? POP3D_IO_EOF : POP3D_IO_ERROR;
        if ((w = io_wait(io, POLLOUT)) != POP3D_IO_OK)
          return w;
        continue;
      }
      put = (gsize) n;
    }
    buf += put;
    len -= put;
  }
  return POP3D_IO_OK;
}

Pop3dIoResult
pop3d_io_start_tls(Pop3dIo *io, TlsServer *server, GError **error)
{
  Pop3dIoResult w;

  io->tls = tls_conn_new(server, io->fd, error);
  if (io->tls == NULL)
    return POP3D_IO_ERROR;
  for (;;) {
    TlsIo t = tls_conn_handshake(io->tls, error);

    if (t == TLS_IO_DONE)
      return POP3D_IO_OK;
    if (t == TLS_IO_ERROR || t == TLS_IO_EOF)
      return t == TLS_IO_EOF ? POP3D_IO_EOF : POP3D_IO_ERROR;
    g_clear_error(error);
    if ((w = io_tls_wait(io, t)) != POP3D_IO_OK)
      return w;
  }
}
