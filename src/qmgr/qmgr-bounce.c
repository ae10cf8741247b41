/* qmgr-bounce.c - the non-delivery notice (RFC 3464, Postfix's bounce(8)
 * wording): for the recipients that bounced in one attempt, a
 * multipart/report from MAILER-DAEMON with the null sender, to the
 * message's sender:
 *
 *   1. text/plain: Postfix's "This is the mail system at host ..." notice
 *      and one line per recipient with the reason;
 *   2. message/delivery-status: Reporting-MTA, X-Postfix-Queue-ID,
 *      X-Postfix-Sender, Arrival-Date, and per recipient Final-Recipient,
 *      Original-Recipient, Action: failed, Status, Diagnostic-Code;
 *   3. the original message as message/rfc822 when it is at most
 *      bounce_size_limit bytes, else its header as text/rfc822-headers.
 *
 * Loops end here: a message with the null sender that bounces makes a
 * notice to 2bounce_notice_recipient from double_bounce_sender; one of
 * those that bounces is discarded with a log line.
 *
 * The notice is written as a queue file of its own (owned by mail_owner,
 * as smtpd writes them) and committed before the recipients are recorded
 * as bounced (qmgr-deliver.c): a crash in between repeats the notice, it
 * never loses it.
 */
#include "qmgr.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void
qmgr_bounced_free(gpointer p)
{
  QmgrBounced *b = p;

  g_free(b->address);
  g_free(b->orig);
  g_free(b->text);
  g_free(b->dsn);
  g_free(b);
}

/* The first "5.x.y" of text, else 5.0.0 (Postfix's generic code). */
static char *
bounce_status(const char *text)
{
  for (const char *p = text; p && *p; p++) {
    gsize n = 0;

    if (*p != '5' || p[1] != '.' || (p > text && (g_ascii_isdigit(p[-1]) || p[-1] == '.')))
      continue;
    n = 2;
    if (!g_ascii_isdigit(p[n]))
      continue;
    while (g_ascii_isdigit(p[n]))
      n++;
    if (p[n] != '.' || !g_ascii_isdigit(p[n + 1]))
      continue;
    n++;
    while (g_ascii_isdigit(p[n]))
      n++;
    if (p[n] == '\0' || p[n] == ' ' || p[n] == ')')
      return g_strndup(p, n);
  }
  return g_strdup("5.0.0");
}

static void
bounce_date(char *buf, gsize len, time_t t)
{
  struct tm tm;

  localtime_r(&t, &tm);
  strftime(buf, len, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
}

/* The original content (up to limit + 1 bytes). */
static GString *
bounce_original(const QmgrDelivery *d, gint64 limit)
{
  GString *out = g_string_new(NULL);
  gint64 want = MIN(d->env->content_size, limit + 1), done = 0;
  char buf[16384];

  while (done < want) {
    ssize_t n = pread(d->fd, buf, MIN((gint64) sizeof buf, want - done),
                      d->env->content_offset + done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    g_string_append_len(out, buf, n);
    done += n;
  }
  return out;
}

/* The header of a message (up to and without the empty line). */
static gsize
bounce_header_len(const GString *msg)
{
  const char *p = msg->str;

  if (*p == '\n' || (p[0] == '\r' && p[1] == '\n'))
    return 0;
  for (const char *nl = strchr(p, '\n'); nl; nl = strchr(nl + 1, '\n'))
    if (nl[1] == '\n' || (nl[1] == '\r' && nl[2] == '\n'))
      return (gsize) (nl + 1 - p);
  return msg->len;
}

/* One queued notice to rcpt from sender with the given text. */
static gboolean
bounce_queue(const QmgrDelivery *d, const char *sender, const char *rcpt, const GString *text,
             GError **error)
{
  const QmgrSettings *s = d->settings;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(QueueWriter) w = queue_writer_new(config_str(s->config, "queue_directory"), error);

  if (w == NULL)
    return FALSE;
  if (s->owner_uid != (uid_t) -1 && !queue_writer_chown(w, s->owner_uid, s->owner_gid, error))
    return FALSE;
  env->sender = g_strdup(sender);
  env->client_name = g_strdup("localhost");
  env->client_addr = g_strdup("127.0.0.1");
  env->protocol = g_strdup("local");
  queue_envelope_add_recipient(env, rcpt, NULL);
  if (!queue_writer_envelope(w, env, error)
      || !queue_writer_content(w, text->str, text->len, error)
      || !queue_writer_extracted(w, FALSE, NULL, NULL, error) || !queue_writer_commit(w, error))
    return FALSE;
  log_qid(LOG_INFO, d->queue_id, "sender non-delivery notification: %s", queue_writer_id(w));
  return TRUE;
}

gboolean
qmgr_bounce_notify(const QmgrDelivery *d, const GPtrArray *bounced, GError **error)
{
  const QmgrSettings *s = d->settings;
  const char *host = s->myhostname;
  const char *orig_sender = d->env->sender ? d->env->sender : "";
  const char *dbl = config_str(s->config, "double_bounce_sender");
  g_autofree char *dbl_addr = strchr(dbl, '@') ? g_strdup(dbl)
                                               : g_strconcat(dbl, "@", s->myorigin, NULL);
  g_autofree char *to = NULL, *from = NULL, *boundary = NULL, *msgid = NULL;
  g_autoptr(GString) text = g_string_new(NULL);
  g_autoptr(GString) original = NULL;
  gint64 limit = config_size(s->config, "bounce_size_limit");
  gboolean whole;
  char date[64], arrival[64];

  if (bounced->len == 0)
    return TRUE;
  if (g_ascii_strcasecmp(orig_sender, dbl_addr) == 0) {
    /* a postmaster notice about an undeliverable bounce: the loop ends */
    log_qid(LOG_WARNING, d->queue_id, "undeliverable postmaster notification discarded");
    return TRUE;
  }
  if (*orig_sender == '\0') {
    to = g_strdup(config_str(s->config, "2bounce_notice_recipient"));
    if (strchr(to, '@') == NULL) {
      char *full = g_strconcat(to, "@", s->myorigin, NULL);
      g_free(to);
      to = full;
    }
    from = g_strdup(dbl_addr);
  } else {
    to = g_strdup(orig_sender);
    from = g_strdup("");
  }

  bounce_date(date, sizeof date, time(NULL));
  bounce_date(arrival, sizeof arrival, (time_t) (d->env->arrival_us / G_USEC_PER_SEC));
  boundary = g_strdup_printf("%s.%" G_GINT64_FORMAT "/%s", d->queue_id, g_get_real_time(), host);
  msgid = g_strdup_printf("<%" G_GINT64_FORMAT ".%s@%s>", g_get_real_time(), d->queue_id, host);
  original = bounce_original(d, limit);
  whole = d->env->content_size <= limit && (gint64) original->len == d->env->content_size;

  g_string_append_printf(text,
      "From: MAILER-DAEMON@%s (Mail Delivery System)\n"
      "Subject: %s\n"
      "To: %s\n"
      "Auto-Submitted: auto-replied\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status;\n"
      "\tboundary=\"%s\"\n"
      "Content-Transfer-Encoding: 8bit\n"
      "Message-Id: %s\n"
      "Date: %s\n"
      "\n"
      "This is a MIME-encapsulated message.\n"
      "\n"
      "--%s\n"
      "Content-Description: Notification\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "This is the mail system at host %s.\n"
      "\n"
      "I'm sorry to have to inform you that your message could not\n"
      "be delivered to one or more recipients. It's attached below.\n"
      "\n"
      "For further assistance, please send mail to postmaster.\n"
      "\n"
      "If you do so, please include this problem report. You can\n"
      "delete your own text from the attached returned message.\n"
      "\n"
      "                   The mail system\n"
      "\n",
      host, *orig_sender ? "Undelivered Mail Returned to Sender"
                         : "Postmaster Copy: Undelivered Mail",
      to, boundary, msgid, date, boundary, host);
  for (guint i = 0; i < bounced->len; i++) {
    const QmgrBounced *b = bounced->pdata[i];
    g_string_append_printf(text, "<%s>: %s\n\n", b->address, b->text ? b->text : "");
  }
  g_string_append_printf(text,
      "--%s\n"
      "Content-Description: Delivery report\n"
      "Content-Type: message/delivery-status\n"
      "\n"
      "Reporting-MTA: dns; %s\n"
      "X-Postfix-Queue-ID: %s\n"
      "X-Postfix-Sender: rfc822; %s\n"
      "Arrival-Date: %s\n",
      boundary, host, d->queue_id, orig_sender, arrival);
  for (guint i = 0; i < bounced->len; i++) {
    const QmgrBounced *b = bounced->pdata[i];
    g_autofree char *status = b->dsn ? g_strdup(b->dsn) : bounce_status(b->text);
    const char *said = b->text ? strstr(b->text, " said: ") : NULL;

    g_string_append_printf(text, "\nFinal-Recipient: rfc822; %s\n", b->address);
    if (b->orig && g_ascii_strcasecmp(b->orig, b->address) != 0)
      g_string_append_printf(text, "Original-Recipient: rfc822;%s\n", b->orig);
    g_string_append_printf(text, "Action: failed\nStatus: %s\n", status);
    if (said != NULL)
      g_string_append_printf(text, "Diagnostic-Code: smtp; %s\n", said + 7);
    else
      g_string_append_printf(text, "Diagnostic-Code: X-Postfix; %s\n", b->text ? b->text : "");
  }
  if (whole) {
    g_string_append_printf(text, "\n--%s\nContent-Description: Undelivered Message\n"
                           "Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n",
                           boundary);
    g_string_append_len(text, original->str, original->len);
  } else {
    g_string_append_printf(text, "\n--%s\nContent-Description: Undelivered Message Headers\n"
                           "Content-Type: text/rfc822-headers\nContent-Transfer-Encoding: 8bit\n\n",
                           boundary);
    g_string_append_len(text, original->str, bounce_header_len(original));
  }
  if (text->len && text->str[text->len - 1] != '\n')
    g_string_append_c(text, '\n');
  g_string_append_printf(text, "\n--%s--\n", boundary);
  return bounce_queue(d, from, to, text, error);
}
