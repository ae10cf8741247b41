/* sendmail-smtp.c - the SMTP client side of sendmail(1): one connection
 * to smtpd's local listener (a unix socket), replies read strictly
 * (every line "DDD-" or "DDD "), commands and dot-stuffed message lines
 * written through one buffer, every wait bounded by a timeout.  With -v
 * commands and replies (not the message) are copied to stderr.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "sendmail.h"

#define REPLY_MAX (64 * 1024)     /* longest reply we read */
#define WRITE_HIGH (64 * 1024)    /* flush the output buffer beyond this */
#define WRITE_TIMEOUT_S 300

gboolean
sendmail_smtp_connect(SendmailSmtp *c, const char *path, gboolean verbose, GError **error)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->verbose = verbose;
  c->rbuf = g_string_new(NULL);
  c->wbuf = g_string_new(NULL);
  if (strlen(path) >= sizeof sun.sun_path) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "socket path too long: %s", path);
    return FALSE;
  }
  strcpy(sun.sun_path, path);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    int err = errno;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

void
sendmail_smtp_close(SendmailSmtp *c)
{
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  if (c->rbuf != NULL)
    g_string_free(c->rbuf, TRUE);
  if (c->wbuf != NULL)
    g_string_free(c->wbuf, TRUE);
  c->rbuf = c->wbuf = NULL;
  g_clear_pointer(&c->last_reply, g_free);
}

/* Waits for events on the socket; FALSE on timeout (error set). */
static gboolean
smtp_wait(SendmailSmtp *c, short events, int timeout, GError **error)
{
  struct pollfd p = { .fd = c->fd, .events = events };
  for (;;) {
    int r = poll(&p, 1, timeout * 1000);
    if (r > 0)
      return TRUE;
    if (r == 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                  "timeout after %d seconds talking to the mail system", timeout);
      return FALSE;
    }
    if (errno != EINTR) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "poll: %s", g_strerror(errno));
      return FALSE;
    }
  }
}

/* The next reply line (without CRLF), reading as needed; NULL on error. */
static char *
smtp_read_line(SendmailSmtp *c, int timeout, GError **error)
{
  for (;;) {
    char *nl = memchr(c->rbuf->str, '\n', c->rbuf->len);
    if (nl != NULL) {
      gsize len = nl - c->rbuf->str;
      char *line = g_strndup(c->rbuf->str, len > 0 && nl[-1] == '\r' ? len - 1 : len);
      g_string_erase(c->rbuf, 0, len + 1);
      if (c->verbose)
        fprintf(stderr, "<<< %s\n", line);
      return line;
    }
    if (c->rbuf->len > REPLY_MAX) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "reply line too long");
      return NULL;
    }
    if (!smtp_wait(c, POLLIN, timeout, error))
      return NULL;
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                  "lost connection with the mail system%s%s", n < 0 ? ": " : "",
                  n < 0 ? g_strerror(errno) : "");
      return NULL;
    }
    g_string_append_len(c->rbuf, buf, n);
  }
}

int
sendmail_smtp_reply(SendmailSmtp *c, int timeout, GError **error)
{
  g_autoptr(GString) joined = g_string_new(NULL);
  int code = 0;
  if (!sendmail_smtp_flush(c, error))
    return 0;
  for (;;) {
    g_autofree char *line = smtp_read_line(c, timeout, error);
    if (line == NULL)
      return 0;
    gsize len = strlen(line);
    if (len < 3 || !g_ascii_isdigit(line[0]) || !g_ascii_isdigit(line[1]) ||
        !g_ascii_isdigit(line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-') ||
        (code != 0 && atoi(line) != code)) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "malformed reply: %s", line);
      return 0;
    }
    code = atoi(line);
    gboolean last = len == 3 || line[3] == ' ';
    if (joined->len == 0) {
      g_string_append_len(joined, line, 3);
      if (len > 4)
        g_string_append_printf(joined, " %s", line + 4);
    } else if (len > 4) {
      g_string_append_printf(joined, " %s", line + 4);
    }
    if (last)
      break;
  }
  g_free(c->last_reply);
  c->last_reply = g_string_free(g_steal_pointer(&joined), FALSE);
  c->last_code = code;
  return code;
}

void
sendmail_smtp_command(SendmailSmtp *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (c->verbose)
    fprintf(stderr, ">>> %s\n", cmd);
  g_string_append(c->wbuf, cmd);
  g_string_append_len(c->wbuf, "\r\n", 2);
}

void
sendmail_smtp_data(SendmailSmtp *c, const char *data, gsize len)
{
  g_string_append_len(c->wbuf, data, len);
}

gboolean
sendmail_smtp_flush(SendmailSmtp *c, GError **error)
{
  gsize off = 0;
  while (off < c->wbuf->len) {
    ssize_t n = send(c->fd, c->wbuf->str + off, c->wbuf->len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!smtp_wait(c, POLLOUT, WRITE_TIMEOUT_S, error))
        return FALSE;
      continue;
    }
    if (n < 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                  "lost connection with the mail system: %s", g_strerror(errno));
      return FALSE;
    }
    off += n;
  }
  g_string_truncate(c->wbuf, 0);
  return TRUE;
}

gboolean
sendmail_smtp_line(SendmailSmtp *c, const char *line, gsize len, GError **error)
{
  if (len > 0 && line[0] == '.')
    g_string_append_c(c->wbuf, '.');   /* dot-stuffing, RFC 5321 4.5.2 */
  g_string_append_len(c->wbuf, line, len);
  g_string_append_len(c->wbuf, "\r\n", 2);
  return c->wbuf->len < WRITE_HIGH || sendmail_smtp_flush(c, error);
}
