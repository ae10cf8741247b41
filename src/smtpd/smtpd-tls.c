/* smtpd-tls.c - TLS in an SMTP session: when STARTTLS is offered or
 * required, the handshake (after STARTTLS's 220, or at connect on the
 * smtps listener and with smtpd_tls_wrappermode), and the socket I/O
 * through OpenSSL once it is up (tls.c does the OpenSSL part).
 *
 * The handshake's steps run in the TLS pool (one thread per processor:
 * the key exchange and signature are the CPU-heavy part of a session,
 * and the event loop must not wait for them), each started when the
 * socket is ready for what the last one waited for (s->tls_wait), the
 * whole bounded by smtpd_starttls_timeout.  While a step runs the
 * session is suspended and the step owns the connection and the socket.  Input the client sent after STARTTLS and
 * before the handshake was thrown away by the session (CVE-2011-0411);
 * when the handshake is done, everything learned in plaintext is
 * forgotten (RFC 3207 4.2: HELO name, transaction).
 */
#include <errno.h>
#include <sys/epoll.h>

#include "log.h"
#include "smtpd.h"

gboolean
smtpd_tls_wrapper(const SmtpdSession *s)
{
  return s->kind == SMTPD_LISTENER_SMTPS || s->settings->tls_wrappermode;
}

gboolean
smtpd_tls_offered(const SmtpdSession *s)
{
  return s->tls == NULL && s->settings->tls != NULL && s->settings->tls_level != TLS_LEVEL_NONE
         && s->kind != SMTPD_LISTENER_LOCAL && !smtpd_tls_wrapper(s)
         && !(s->settings->ehlo_discard & SMTPD_EHLO_STARTTLS);
}

gboolean
smtpd_tls_required(const SmtpdSession *s)
{
  return s->tls == NULL && s->settings->tls_level == TLS_LEVEL_ENCRYPT
         && s->kind != SMTPD_LISTENER_LOCAL;
}

const char *
smtpd_tls_protocol_name(const SmtpdSession *s)
{
  /* RFC 3848 */
  if (s->tls != NULL)
    return s->esmtp ? "ESMTPS" : "SMTPS";
  return s->esmtp ? "ESMTP" : "SMTP";
}

static void
smtpd_tls_failed(SmtpdSession *s, const char *why)
{
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };

  if (why != NULL)
    log_warning("TLS library problem: %s", why);
  log_send(LOG_INFO, NULL, f, 1, "SSL_accept error from %s: %s", s->namaddr,
           why != NULL ? "-1" : "lost connection");
  smtpd_session_abort(s, "lost connection");
}

/* A handshake step in the TLS pool: the session waits (suspended), the
 * step owns the connection and its socket until done() runs. */
typedef struct {
  SmtpdSession *session;
  TlsConn *conn;
  TlsIo io;
  GError *error;
} TlsStep;

static void
smtpd_tls_step_work(gpointer data)
{
  TlsStep *w = data;

  w->io = tls_conn_handshake(w->conn, &w->error);
}

/* Back on the loop: what the step found. */
static void
smtpd_tls_step_result(SmtpdSession *s, gpointer data)
{
  TlsStep *w = data;
  g_autofree char *details = NULL;
  g_autofree char *info = NULL;
  SmtpdTlsDone done;

  switch (w->io) {
  case TLS_IO_WANT_READ:
    s->tls_wait = EPOLLIN;
    break;
  case TLS_IO_WANT_WRITE:
    s->tls_wait = EPOLLOUT;
    break;
  case TLS_IO_EOF:
    smtpd_tls_failed(s, NULL);
    return;
  case TLS_IO_ERROR:
    smtpd_tls_failed(s, w->error ? w->error->message : "unknown");
    return;
  case TLS_IO_DONE: {
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };

    s->tls_wait = 0;
    s->tls_handshaking = FALSE;
    info = tls_conn_describe(s->tls, &details);
    g_free(s->tls_info);
    g_free(s->tls_details);
    s->tls_info = g_steal_pointer(&info);
    s->tls_details = g_steal_pointer(&details);
    log_send(LOG_INFO, NULL, f, 1, "Anonymous TLS connection established from %s: %s%s%s",
             s->namaddr, s->tls_info, *s->tls_details ? " " : "", s->tls_details);
    done = s->tls_done;
    s->tls_done = NULL;
    done(s);
    return;
  }
  }
  smtpd_session_update_io(s);
}

static void
smtpd_tls_step_done(gpointer data)
{
  TlsStep *w = data;
  SmtpdSession *s = w->session;

  s->tls_busy = FALSE;
  if (s->state == SMTPD_STATE_CLOSED) {
    /* the session ended meanwhile: what disconnect left to us */
    g_clear_pointer(&s->tls, tls_conn_free);
    if (s->fd >= 0)
      close(s->fd);
    s->fd = -1;
  }
  smtpd_session_continue(s, smtpd_tls_step_result, w);
  g_clear_error(&w->error);
  g_free(w);
}

void
smtpd_tls_handshake_step(SmtpdSession *s)
{
  TlsStep *w;

  if (s->tls_busy)
    return;
  w = g_new0(TlsStep, 1);
  w->session = s;
  w->conn = s->tls;
  s->tls_busy = TRUE;
  s->tls_wait = 0;            /* nothing to poll for while the step runs */
  smtpd_session_suspend(s);
  smtpd_session_update_io(s);
  workpool_submit(s->server->tls_pool, smtpd_tls_step_work, smtpd_tls_step_done, w);
}

void
smtpd_tls_start(SmtpdSession *s, SmtpdTlsDone done)
{
  g_autoptr(GError) error = NULL;

  s->tls = tls_conn_new(s->settings->tls, s->fd, &error);
  if (s->tls == NULL) {
    smtpd_tls_failed(s, error->message);
    return;
  }
  s->tls_handshaking = TRUE;
  s->tls_done = done;
  smtpd_session_set_deadline(s, s->settings->starttls_timeout * G_USEC_PER_SEC);
  smtpd_tls_handshake_step(s);
}

/* recv()/send() semantics for what a TLS read or write said: bytes, 0
 * at EOF (reads), -1 with errno; *other_way is set when OpenSSL needs the
 * socket the other way round (a read that must write, or the reverse). */
static ssize_t
smtpd_tls_result(TlsIo io, gsize n, gboolean writing, gboolean *other_way, const GError *error)
{
  *other_way = FALSE;
  switch (io) {
  case TLS_IO_DONE:
    return (ssize_t) n;
  case TLS_IO_WANT_READ:
  case TLS_IO_WANT_WRITE:
    *other_way = (io == TLS_IO_WANT_WRITE) != writing;
    errno = EAGAIN;
    return -1;
  case TLS_IO_EOF:
    if (!writing)
      return 0;
    errno = EPIPE;
    return -1;
  case TLS_IO_ERROR:
  default:
    log_warning("TLS library problem: %s", error ? error->message : "unknown");
    errno = EPROTO;
    return -1;
  }
}

ssize_t
smtpd_tls_recv(SmtpdSession *s, void *buf, gsize len)
{
  g_autoptr(GError) error = NULL;
  gsize got = 0;
  TlsIo io = tls_conn_read(s->tls, buf, len, &got, &error);

  return smtpd_tls_result(io, got, FALSE, &s->tls_read_wants_write, error);
}

ssize_t
smtpd_tls_send(SmtpdSession *s, const void *buf, gsize len)
{
  g_autoptr(GError) error = NULL;
  gsize put = 0;
  TlsIo io = tls_conn_write(s->tls, buf, len, &put, &error);

  return smtpd_tls_result(io, put, TRUE, &s->tls_write_wants_read, error);
}
