/* pop3d-login.c - the login process (pop3d.h): one per connection, as
 * mail_owner with nothing else.  It speaks the AUTHORIZATION state
 * (pop3-session.c), does TLS (STLS, or pop3s from the first byte), and
 * hands each login to the parent, which checks it in an auth process of
 * its own and, when it is good, starts the mail process on the
 * connection.  Over TLS it stays as the proxy between the client and the
 * mail process, which then never sees OpenSSL or the network.
 */
#include "pop3d.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

typedef struct {
  const Pop3dSettings *st;
  const Pop3dPeer *peer;
  Pop3dIo io;
  Pop3Session s;
  GString *out;
  int ctl_fd;
} Login;

static void G_GNUC_NORETURN
login_exit(Login *l, int code)
{
  if (l->io.tls != NULL)
    tls_conn_close_notify(l->io.tls);
  pop3_session_clear(&l->s);
  _exit(code);
}

static void
login_flush(Login *l)
{
  Pop3dIoResult r = l->out->len ? pop3d_io_write(&l->io, l->out->str, l->out->len) : POP3D_IO_OK;

  g_string_truncate(l->out, 0);
  if (r != POP3D_IO_OK)
    login_exit(l, 0);
}

static void
login_tls(Login *l)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *info = NULL, *details = NULL;
  Pop3dIoResult r = pop3d_io_start_tls(&l->io, l->st->tls, &error);

  if (r != POP3D_IO_OK) {
    log_info("SSL_accept error from [%s]: %s", l->peer->remote,
             r == POP3D_IO_TIMEOUT ? "timed out" : r == POP3D_IO_EOF ? "lost connection"
             : error ? error->message : "TLS handshake failed");
    login_exit(l, 0);
  }
  info = tls_conn_describe(l->io.tls, &details);
  log_info("Anonymous TLS connection established from [%s]: %s%s%s", l->peer->remote, info,
           *details ? " " : "", details);
  pop3_session_tls_started(&l->s);
}

/* Sends the login to the parent with fd; TRUE when sent. */
static gboolean
login_send(Login *l, int fd)
{
  const char *rest = NULL;
  gsize rest_len = pop3d_io_pending(&l->io, &rest);
  gsize ulen = strlen(l->s.user), plen = strlen(l->s.password);
  Pop3dLoginRequest req = { .kind = 'L', .tls = l->io.tls != NULL,
                            .tls_bits = l->io.tls ? tls_conn_bits(l->io.tls) : 0 };
  g_autoptr(GByteArray) msg = g_byte_array_new();
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control = { { 0 } };
  struct iovec iov;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf };
  struct cmsghdr *cm;
  ssize_t n;

  if (ulen > 1024 || plen > 1024 || sizeof req + ulen + plen + rest_len > POP3D_LOGIN_MAX)
    return FALSE;
  g_strlcpy(req.method, l->s.method ? l->s.method : "USER", sizeof req.method);
  req.user_len = (guint16) ulen;
  req.password_len = (guint16) plen;
  req.rest_len = (guint32) rest_len;
  g_byte_array_append(msg, (const guint8 *) &req, sizeof req);
  g_byte_array_append(msg, (const guint8 *) l->s.user, (guint) ulen);
  g_byte_array_append(msg, (const guint8 *) l->s.password, (guint) plen);
  g_byte_array_append(msg, (const guint8 *) rest, (guint) rest_len);
  iov = (struct iovec) { .iov_base = msg->data, .iov_len = msg->len };
  cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  do
    n = sendmsg(l->ctl_fd, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  memset(msg->data, 0, msg->len);
  return n == (ssize_t) msg->len;
}

/* Copies bytes both ways between the TLS client and the mail process
 * until the mail process is done (or the client is gone). */
static void G_GNUC_NORETURN
login_proxy(Login *l, int mail_fd)
{
  g_autoptr(GByteArray) to_mail = g_byte_array_new(), to_client = g_byte_array_new();
  gsize retry_len = 0;        /* a TLS write to repeat with the same length */
  gboolean client_eof = FALSE, mail_eof = FALSE;
  char buf[16384];

  fcntl(mail_fd, F_SETFL, fcntl(mail_fd, F_GETFL) | O_NONBLOCK);
  for (;;) {
    short client_events = 0, mail_events = 0;
    gboolean progress = FALSE;
    g_autoptr(GError) error = NULL;
    gsize got = 0;
    TlsIo t;

    if (!client_eof && to_mail->len < sizeof buf * 4) {
      t = tls_conn_read(l->io.tls, buf, sizeof buf, &got, &error);
      if (t == TLS_IO_DONE) {
        g_byte_array_append(to_mail, (const guint8 *) buf, (guint) got);
        progress = TRUE;
      } else if (t == TLS_IO_EOF || t == TLS_IO_ERROR) {
        client_eof = TRUE;
        progress = TRUE;
      } else {
        client_events |= t == TLS_IO_WANT_READ ? POLLIN : POLLOUT;
      }
      g_clear_error(&error);
    }
    if (!mail_eof && to_client->len < sizeof buf * 4) {
      ssize_t n = read(mail_fd, buf, sizeof buf);
      if (n > 0) {
        g_byte_array_append(to_client, (const guint8 *) buf, (guint) n);
        progress = TRUE;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        mail_eof = TRUE;
        progress = TRUE;
      } else {
        mail_events |= POLLIN;
      }
    }
    if (to_mail->len > 0) {
      ssize_t n = write(mail_fd, to_mail->data, to_mail->len);
      if (n > 0) {
        g_byte_array_remove_range(to_mail, 0, (guint) n);
        progress = TRUE;
      } else if (n < 0 && errno == EAGAIN) {
        mail_events |= POLLOUT;
      } else if (n < 0 && errno != EINTR) {
        mail_eof = TRUE;        /* the mail process is gone */
        g_byte_array_set_size(to_mail, 0);
      }
    }
    if (to_client->len > 0) {
      gsize put = 0, len = retry_len ? retry_len : to_client->len;

      t = tls_conn_write(l->io.tls, to_client->data, len, &put, &error);
      if (t == TLS_IO_DONE) {
        g_byte_array_remove_range(to_client, 0, (guint) put);
        retry_len = 0;
        progress = TRUE;
      } else if (t == TLS_IO_WANT_READ || t == TLS_IO_WANT_WRITE) {
        retry_len = len;
        client_events |= t == TLS_IO_WANT_READ ? POLLIN : POLLOUT;
      } else {
        login_exit(l, 0);
      }
    }
    if (client_eof && to_mail->len == 0)
      shutdown(mail_fd, SHUT_WR);
    if (mail_eof && to_client->len == 0)
      login_exit(l, 0);
    if (client_eof && mail_eof)
      login_exit(l, 0);
    if (!progress) {
      /* Only what we wait for: a hung-up side we are not reading would
       * otherwise wake poll at once, again and again. */
      struct pollfd p[2] = { { .fd = client_events ? l->io.fd : -1, .events = client_events },
                             { .fd = mail_events ? mail_fd : -1, .events = mail_events } };

      gint64 wait_ms = l->st->timeout_ms + MIN(l->st->timeout_ms, 30 * 1000);
      int r = poll(p, 2, wait_ms > G_MAXINT ? -1 : (int) wait_ms);

      /* A client that stops reading must not keep us for ever; the mail
       * process has said "Disconnected for inactivity" and gone on its
       * own deadline, a little earlier. */
      if (r == 0 || (r < 0 && errno != EINTR))
        login_exit(l, r == 0 ? 0 : 1);
    }
  }
}

/* USER/PASS or AUTH finished: the parent decides. */
static void
login_attempt(Login *l)
{
  int pair[2] = { -1, -1 };
  int fd = l->io.fd;
  Pop3dLoginReply reply = { 0 };
  ssize_t n;

  login_flush(l);
  if (l->io.tls != NULL) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
      pop3_session_login(&l->s, NULL, "[SYS/TEMP] Internal error.", l->out);
      return;
    }
    fd = pair[1];
  }
  if (!login_send(l, fd)) {
    if (pair[0] >= 0) {
      close(pair[0]);
      close(pair[1]);
    }
    pop3_session_login(&l->s, NULL, "[AUTH] Authentication failed.", l->out);
    return;
  }
  if (pair[1] >= 0)
    close(pair[1]);
  pop3_session_forget_password(&l->s);
  do
    n = recv(l->ctl_fd, &reply, sizeof reply, 0);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t) sizeof reply)
    login_exit(l, 1);     /* the parent is gone */
  reply.text[sizeof reply.text - 1] = '\0';
  if (reply.kind == 'O') {
    if (pair[0] >= 0)
      login_proxy(l, pair[0]);
    login_exit(l, 0);     /* the mail process has the socket */
  }
  if (pair[0] >= 0)
    close(pair[0]);
  pop3_session_login(&l->s, NULL, reply.text, l->out);
  if (reply.kind == 'C') {
    login_flush(l);
    login_exit(l, 0);
  }
}

void
pop3d_login_main(const Pop3dSettings *st, const Pop3dPeer *peer, int client_fd, int ctl_fd)
{
  int keep[2] = { client_fd, ctl_fd };
  Login l = { .st = st, .peer = peer };

  pop3d_child_setup(keep, 2);
  l.ctl_fd = keep[1];
  if (st->owner_uid != (uid_t) -1
      && !pop3d_become(st->owner_uid, st->owner_gid, &st->owner_gid, 1)) {
    log_error("cannot become mail_owner %s: %s", st->mail_owner, g_strerror(errno));
    _exit(1);
  }
  pop3d_io_init(&l.io, keep[0], st->login_timeout_ms);
  l.out = g_string_new(NULL);
  pop3_session_init(&l.s);
  l.s.tls_available = st->tls != NULL && !peer->implicit_tls;
  l.s.sasl_mechanisms = st->sasl_mechanisms;
  l.s.implementation = st->implementation;
  l.s.plaintext_ok = st->tls == NULL
      || (st->tls_level != TLS_LEVEL_ENCRYPT
          && netlist_match(st->plaintext_networks, (const struct sockaddr *) &peer->peer, NULL)
                 == MATCH_FOUND);
  if (peer->implicit_tls) {
    if (st->tls == NULL) {
      log_warning("pop3s connection from [%s]: TLS is not available (set pop3d_tls_cert_file); "
                  "closing it", peer->remote);
      _exit(0);
    }
    login_tls(&l);
  }
  pop3_session_greeting(&l.s, l.out);
  for (;;) {
    char *line;
    gsize len;
    Pop3dIoResult r;

    while ((line = pop3d_io_take_line(&l.io, &len)) != NULL) {
      switch (pop3_session_line(&l.s, line, len, l.out)) {
      case POP3_ACTION_NONE:
        break;
      case POP3_ACTION_CLOSE:
        login_flush(&l);
        login_exit(&l, 0);
      case POP3_ACTION_STLS:
        login_flush(&l);
        /* Anything pipelined after STLS was sent in the clear: dropped,
         * never read as commands inside TLS (the CVE-2011-0411 attack). */
        pop3d_io_discard(&l.io);
        login_tls(&l);
        break;
      case POP3_ACTION_LOGIN:
        login_attempt(&l);
        break;
      }
    }
    login_flush(&l);
    r = pop3d_io_fill(&l.io);
    if (r == POP3D_IO_TIMEOUT) {
      g_string_append(l.out, "-ERR Disconnected for inactivity.\r\n");
      login_flush(&l);
      login_exit(&l, 0);
    }
    if (r == POP3D_IO_TOO_LONG) {
      g_string_append(l.out, "-ERR Line too long.\r\n");
      login_flush(&l);
      login_exit(&l, 0);
    }
    if (r != POP3D_IO_OK)
      login_exit(&l, 0);
  }
}
