/* sendmail-submit.c - one submission through smtpd's local listener, and
 * the -bs relay.
 *
 * The header block is read first (for -t and the From: header), then
 * MAIL, RCPT and DATA; the rest of stdin streams to the server line by
 * line.  smtpd commits the queue file only after the final dot, so a
 * submission that fails before it (a rejected recipient, a read error on
 * stdin, a lost connection) leaves nothing queued: the dot is never sent
 * after a failure.  Each failure maps to a sysexits status: the server
 * unreachable or answering 4xx is EX_TEMPFAIL, a 5xx is EX_NOUSER,
 * EX_NOHOST, EX_NOPERM, EX_DATAERR or EX_UNAVAILABLE by its enhanced
 * status code.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "config.h"
#include "sendmail.h"

#define CMD_TIMEOUT_S 300   /* greeting and each command (Postfix's smtp_*_timeout) */
#define DOT_TIMEOUT_S 600   /* after the final dot (smtp_data_done_timeout) */

/* The status for a reply that refused what we asked. */
static int
reply_status(int code, const char *reply)
{
  if (code / 100 != 5)
    return EX_TEMPFAIL;
  const char *e = strlen(reply) > 4 ? reply + 4 : "";
  if (g_str_has_prefix(e, "5.7."))
    return EX_NOPERM;
  if (g_str_has_prefix(e, "5.1.0 ") || g_str_has_prefix(e, "5.1.1 "))
    return EX_NOUSER;
  if (g_str_has_prefix(e, "5.1.2 ") || g_str_has_prefix(e, "5.1.10 "))
    return EX_NOHOST;
  if (g_str_has_prefix(e, "5.1.3 ") || g_str_has_prefix(e, "5.1.7 ") ||
      g_str_has_prefix(e, "5.2.3 ") || g_str_has_prefix(e, "5.3.4 ") ||
      g_str_has_prefix(e, "5.6."))
    return EX_DATAERR;
  return EX_UNAVAILABLE;
}

typedef struct {
  const SendmailSubmit *sub;
  SendmailSmtp smtp;
  char **message;
} Submit;

/* The server refused: say what it said, leave politely (no message was
 * sent: nothing is queued). */
static int
submit_refused(Submit *s)
{
  int status = reply_status(s->smtp.last_code, s->smtp.last_reply);
  *s->message = g_strdup_printf("%s: %s", s->sub->ident, s->smtp.last_reply);
  sendmail_smtp_command(&s->smtp, "QUIT");
  g_autoptr(GError) ignored = NULL;
  sendmail_smtp_flush(&s->smtp, &ignored);
  return status;
}

/* The conversation broke: no final dot, so nothing is queued. */
static int
submit_broken(Submit *s, const GError *error, int status)
{
  *s->message = g_strdup_printf("%s: %s", s->sub->ident, error->message);
  return status;
}

/* Sends one command and reads its reply; TRUE when it is want. */
static gboolean
submit_expect(Submit *s, int want, int *status, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static gboolean
submit_expect(Submit *s, int want, int *status, const char *fmt, ...)
{
  g_autoptr(GError) error = NULL;
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    sendmail_smtp_command(&s->smtp, "%s", cmd);
  }
  int code = sendmail_smtp_reply(&s->smtp, CMD_TIMEOUT_S, &error);
  if (code == 0) {
    *status = submit_broken(s, error, error->code == POSTERN_ERROR_SYNTAX ? EX_PROTOCOL
                                                                          : EX_TEMPFAIL);
    return FALSE;
  }
  if (code != want) {
    *status = submit_refused(s);
    return FALSE;
  }
  return TRUE;
}

/* The recipients: the command line's, then (-t) the headers', each once. */
static GPtrArray *
submit_recipients(const SendmailSubmit *sub, const SendmailHeaders *h)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (char *const *r = sub->recipients; r != NULL && *r != NULL; r++) {
    g_autoptr(GPtrArray) list = sendmail_addr_list(*r);
    if (list->len == 0)
      g_ptr_array_add(list, g_strdup(""));   /* Postfix keeps it: the server judges */
    for (guint i = 0; i < list->len; i++)
      if (g_hash_table_add(seen, list->pdata[i]))
        g_ptr_array_add(out, g_strdup(list->pdata[i]));
  }
  for (guint i = 0; sub->extract && i < h->recipients->len; i++)
    if (g_hash_table_add(seen, h->recipients->pdata[i]))
      g_ptr_array_add(out, g_strdup(h->recipients->pdata[i]));
  return out;
}

static int
submit_run(Submit *s, SendmailInput *in, SendmailHeaders *h)
{
  const SendmailSubmit *sub = s->sub;
  g_autoptr(GError) error = NULL;
  int status = EX_OK;

  g_autoptr(GPtrArray) rcpts = submit_recipients(sub, h);
  if (rcpts->len == 0) {
    *s->message = g_strdup_printf(sub->extract
        ? "%s: No recipient addresses found in message header"
        : "%s: Recipient addresses must be specified on the command line or via the -t option",
        sub->ident);
    return EX_USAGE;
  }
  if (!sendmail_smtp_connect(&s->smtp, sub->socket_path, sub->verbose, &error)) {
    *s->message = g_strdup_printf("%s: cannot connect to the mail system at %s: %s "
                                  "(is postern-smtpd running with a local listener?)",
                                  sub->ident, sub->socket_path, error->message);
    return EX_TEMPFAIL;
  }
  if (!submit_expect(s, 220, &status, NULL) ||
      !submit_expect(s, 250, &status, "EHLO localhost"))
    return status;
  const char *body = "";
  if (sub->body_type != NULL && strstr(s->smtp.last_reply, " 8BITMIME") != NULL)
    body = strcmp(sub->body_type, "8BITMIME") == 0 ? " BODY=8BITMIME" : " BODY=7BIT";
  if (!submit_expect(s, 250, &status, "MAIL FROM:<%s>%s", sub->sender, body))
    return status;
  for (guint i = 0; i < rcpts->len; i++)
    if (!submit_expect(s, 250, &status, "RCPT TO:<%s>", (char *) rcpts->pdata[i]))
      return status;
  if (!submit_expect(s, 354, &status, "DATA"))
    return status;

  /* The message.  From here on a failure must not send the final dot. */
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < h->lines->len; i++) {
    GString *l = h->lines->pdata[i];
    ok = sendmail_smtp_line(&s->smtp, l->str, l->len, &error);
  }
  const char *from = h->resent ? sub->resent_from_header : sub->from_header;
  if (ok && !h->has_from && !h->truncated && from != NULL)
    ok = sendmail_smtp_line(&s->smtp, from, strlen(from), &error);
  if (ok && h->blank_line)
    ok = sendmail_smtp_line(&s->smtp, "", 0, &error);
  if (ok && h->first_body_line != NULL)
    ok = sendmail_smtp_line(&s->smtp, h->first_body_line->str, h->first_body_line->len, &error);
  g_autoptr(GString) line = g_string_new(NULL);
  g_autoptr(GError) read_error = NULL;
  while (ok && sendmail_input_line(in, line, &read_error))
    ok = sendmail_smtp_line(&s->smtp, line->str, line->len, &error);
  if (read_error != NULL)
    return submit_broken(s, read_error, EX_DATAERR);
  if (!ok)
    return submit_broken(s, error, EX_TEMPFAIL);

  sendmail_smtp_data(&s->smtp, ".\r\n", 3);
  int code = sendmail_smtp_reply(&s->smtp, DOT_TIMEOUT_S, &error);
  if (code == 0)
    return submit_broken(s, error, EX_TEMPFAIL);
  if (code != 250)
    return submit_refused(s);
  /* Queued: the rest is courtesy. */
  sendmail_smtp_command(&s->smtp, "QUIT");
  g_autoptr(GError) ignored = NULL;
  sendmail_smtp_reply(&s->smtp, CMD_TIMEOUT_S, &ignored);
  return EX_OK;
}

int
sendmail_submit(const SendmailSubmit *sub, FILE *fp, char **message)
{
  Submit s = { .sub = sub, .smtp = { .fd = -1 }, .message = message };
  SendmailInput in;
  SendmailHeaders h;
  g_autoptr(GError) error = NULL;
  int status;

  *message = NULL;
  sendmail_input_init(&in, fp, sub->dot_ends, sub->cr_mode);
  if (!sendmail_headers_read(&in, sub->header_limit, sub->extract, &h, &error)) {
    *message = g_strdup_printf("%s: %s", sub->ident, error->message);
    status = EX_DATAERR;
  } else if (sub->extract && h.truncated) {
    *message = g_strdup_printf("%s: unable to extract recipients: message header length "
                               "exceeds safety limit", sub->ident);
    status = EX_DATAERR;
  } else {
    status = submit_run(&s, &in, &h);
  }
  sendmail_headers_clear(&h);
  sendmail_input_clear(&in);
  sendmail_smtp_close(&s.smtp);
  return status;
}

/* Writes all of data to fd; FALSE when the other end is gone. */
static gboolean
write_all(int fd, const char *data, gsize len)
{
  while (len > 0) {
    ssize_t n = fd == STDOUT_FILENO ? write(fd, data, len) : send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}

int
sendmail_relay(const char *socket_path, gboolean verbose, char **message)
{
  SendmailSmtp c;
  g_autoptr(GError) error = NULL;
  *message = NULL;
  if (!sendmail_smtp_connect(&c, socket_path, verbose, &error)) {
    *message = g_strdup_printf("cannot connect to the mail system at %s: %s (is postern-smtpd "
                               "running with a local listener?)", socket_path, error->message);
    sendmail_smtp_close(&c);
    return EX_TEMPFAIL;
  }
  /* The client on stdin speaks SMTP with the server; we only carry bytes. */
  gboolean stdin_open = TRUE;
  char buf[16384];
  for (;;) {
    struct pollfd p[2] = { { .fd = c.fd, .events = POLLIN },
                           { .fd = STDIN_FILENO, .events = POLLIN } };
    int r = poll(p, stdin_open ? 2 : 1, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    if (p[0].revents != 0) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0 || !write_all(STDOUT_FILENO, buf, n))
        break;   /* the server closed (after QUIT), or stdout is gone */
    }
    if (stdin_open && p[1].revents != 0) {
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        stdin_open = FALSE;
        shutdown(c.fd, SHUT_WR);   /* the server sees the client leave */
      } else if (!write_all(c.fd, buf, n)) {
        break;
      }
    }
  }
  sendmail_smtp_close(&c);
  return EX_OK;
}
