/* qmgr-bounce.c - delivery status notices (RFC 3464, RFC 3461 DSN, in the
 * words of Postfix's bounce(8) and its built-in bounce(5) templates).
 *
 * Three kinds, each a multipart/report from MAILER-DAEMON with the null
 * sender:
 *   failure  the recipients that bounced in one attempt ("Undelivered Mail
 *            Returned to Sender"), for those whose NOTIFY has FAILURE or is
 *            not given; the original whole (up to bounce_size_limit) unless
 *            RET=HDRS;
 *   delay    once per message, after delay_warning_time, for the deferred
 *            recipients whose NOTIFY has DELAY or is not given ("Delayed
 *            Mail (still being retried)"); headers only;
 *   success  the recipients with NOTIFY=SUCCESS delivered in one attempt
 *            ("Successful Mail Delivery Report", Action delivered, relayed
 *            or expanded); headers only unless RET=FULL.
 * Each has the text/plain part (boilerplate, one line per recipient),
 * message/delivery-status (per message: Reporting-MTA, Original-Envelope-Id
 * from ENVID, X-Postfix-Queue-ID, X-Postfix-Sender, Arrival-Date; per
 * recipient: Final-Recipient, Original-Recipient from ORCPT or the
 * recipient as the client wrote it, Action, Status, Diagnostic-Code,
 * Will-Retry-Until for delays) and the original or its header.
 *
 * notify_classes: "bounce" adds a postmaster copy of each failure notice
 * (bounce_notice_recipient, headers only, every bounced recipient whatever
 * its NOTIFY), "delay" one of each delay notice (delay_notice_recipient).
 * A failure of a message with the null sender (a notice itself) goes to
 * 2bounce_notice_recipient from double_bounce_sender when "2bounce" (or
 * "bounce") is in the list and is discarded otherwise, as in Postfix; one
 * from double_bounce_sender is always discarded: no loops.  Mail with the
 * null sender gets neither delay (except postmaster's, with "delay") nor
 * success notices.
 *
 * A notice is written as a queue file of its own (owned by mail_owner, as
 * smtpd writes them) and committed before the states it reports are
 * recorded (qmgr-deliver.c): a crash in between repeats the notice, it
 * never loses it.  Never writes a recipient state itself.
 */
#include "qmgr.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Headers of a headers-only original are read up to this much. */
#define NOTICE_HEADER_MAX (1024 * 1024)

typedef enum {
  NOTICE_FAILURE,
  NOTICE_DELAY,
  NOTICE_SUCCESS,
} NoticeKind;

/* One notice to queue. */
typedef struct {
  NoticeKind kind;
  gboolean postmaster;    /* a postmaster copy: Postmaster-Subject, no boilerplate */
  const char *from;       /* envelope sender: "" or double_bounce_sender */
  const char *to;
  gboolean full;          /* the whole original when within bounce_size_limit */
  const char *what;       /* for the log line: "sender non-delivery" ... */
} NoticeSpec;

QmgrNoticeRcpt *
qmgr_notice_rcpt_new(const QueueRecipient *rcpt, char *text, const char *dsn, const char *action)
{
  QmgrNoticeRcpt *n = g_new0(QmgrNoticeRcpt, 1);

  n->address = g_strdup(rcpt->address);
  n->orig = g_strdup(rcpt->orig_address);
  n->orcpt = g_strdup(rcpt->orcpt);
  n->notify = rcpt->notify;
  n->text = text;
  n->dsn = dsn && *dsn ? g_strdup(dsn) : NULL;
  n->action = action;
  return n;
}

void
qmgr_notice_rcpt_free(gpointer p)
{
  QmgrNoticeRcpt *n = p;

  g_free(n->address);
  g_free(n->orig);
  g_free(n->orcpt);
  g_free(n->text);
  g_free(n->dsn);
  g_free(n->report_to);
  g_free(n);
}

/* The first "C.x.y" of text (C the class digit), else C.0.0 (Postfix's
 * generic codes). */
static char *
notice_status(const char *text, char cls)
{
  for (const char *p = text; p && *p; p++) {
    gsize n = 0;

    if (*p != cls || p[1] != '.' || (p > text && (g_ascii_isdigit(p[-1]) || p[-1] == '.')))
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
  return g_strdup_printf("%c.0.0", cls);
}

/* TRUE when text starts like an SMTP reply ("250 2.0.0 Ok"). */
static gboolean
notice_is_reply(const char *text)
{
  return text && g_ascii_isdigit(text[0]) && g_ascii_isdigit(text[1]) && g_ascii_isdigit(text[2])
         && (text[3] == ' ' || text[3] == '-' || text[3] == '\0');
}

static void
notice_date(char *buf, gsize len, time_t t)
{
  struct tm tm;

  localtime_r(&t, &tm);
  strftime(buf, len, "%a, %e %b %Y %H:%M:%S %z (%Z)", &tm);
}

/* Appends s with control characters (and, unless utf8, 8-bit bytes)
 * masked as "?", as Postfix's bounce logs mask them. */
static void
notice_put(GString *out, const char *s, gboolean utf8)
{
  for (; s && *s; s++) {
    guchar c = (guchar) *s;
    g_string_append_c(out, c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8) ? '?' : (char) c);
  }
}

/* Where the header of msg ends: after its last line, before the empty
 * line; without one, all of msg when complete (a message without body),
 * else up to its last whole line. */
static gsize
notice_header_len(const GString *msg, gboolean complete)
{
  const char *blank, *nl;

  if (msg->len > 0 && msg->str[0] == '\n')
    return 0;
  blank = memmem(msg->str, msg->len, "\n\n", 2);
  if (blank != NULL)
    return (gsize) (blank + 1 - msg->str);
  if (complete)
    return msg->len;
  nl = msg->len > 0 ? memrchr(msg->str, '\n', msg->len) : NULL;
  return nl ? (gsize) (nl + 1 - msg->str) : 0;
}

/* Appends the original content: all of it when want_full and it fits
 * bounce_size_limit (Postfix: a larger one returns its header, so that
 * the MIME structure stays whole), else its header.  TRUE when all of
 * it was appended. */
static gboolean
notice_original(const QmgrDelivery *d, gboolean want_full, GString *out)
{
  gint64 limit = config_size(d->settings->config, "bounce_size_limit");
  gint64 size = d->env->content_size;
  gboolean full = want_full && size <= limit;
  gint64 want = full ? size : MIN(size, NOTICE_HEADER_MAX);
  g_autoptr(GString) msg = g_string_sized_new((gsize) MIN(want, 65536) + 1);
  char buf[16384];

  while ((gint64) msg->len < want) {
    ssize_t n = pread(d->fd, buf, (size_t) MIN((gint64) sizeof buf, want - (gint64) msg->len),
                      d->env->content_offset + (gint64) msg->len);
    gsize from = msg->len > 0 ? msg->len - 1 : 0;

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    g_string_append_len(msg, buf, n);
    if (!full && (msg->str[0] == '\n' || memmem(msg->str + from, msg->len - from, "\n\n", 2)))
      break;                    /* the header is complete */
  }
  if (full && (gint64) msg->len == size) {
    g_string_append_len(out, msg->str, msg->len);
    return TRUE;
  }
  g_string_append_len(out, msg->str, notice_header_len(msg, (gint64) msg->len == size));
  return FALSE;
}

/* The boilerplate of kind (Postfix's built-in bounce(5) templates). */
static void
notice_boilerplate(const QmgrDelivery *d, NoticeKind kind, GString *out)
{
  const QmgrSettings *s = d->settings;

  g_string_append_printf(out, "This is the mail system at host %s.\n\n", s->myhostname);
  switch (kind) {
  case NOTICE_FAILURE:
    g_string_append(out,
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n"
        "\n"
        "For further assistance, please send mail to postmaster.\n"
        "\n"
        "If you do so, please include this problem report. You can\n"
        "delete your own text from the attached returned message.\n");
    break;
  case NOTICE_DELAY:
    g_string_append_printf(out,
        "####################################################################\n"
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
        "####################################################################\n"
        "\n"
        "Your message could not be delivered for more than %" G_GINT64_FORMAT " hour(s).\n"
        "It will be retried until it is %" G_GINT64_FORMAT " day(s) old.\n"
        "\n"
        "For further assistance, please send mail to postmaster.\n"
        "\n"
        "If you do so, please include this problem report. You can\n"
        "delete your own text from the attached returned message.\n",
        s->delay_warning_time / 3600, s->maximal_queue_lifetime / 86400);
    break;
  case NOTICE_SUCCESS:
    g_string_append(out,
        "Your message was successfully delivered to the destination(s)\n"
        "listed below. If the message was delivered to mailbox you will\n"
        "receive no further notifications. Otherwise you may still receive\n"
        "notifications of mail delivery errors from other systems.\n");
    break;
  }
  g_string_append(out, "\n                   The mail system\n\n");
}

/* The per-recipient fields of one recipient. */
static void
notice_recipient_dsn(const QmgrDelivery *d, NoticeKind kind, const QmgrNoticeRcpt *r,
                     GString *out)
{
  static const char classes[] = { [NOTICE_FAILURE] = '5', [NOTICE_DELAY] = '4',
                                  [NOTICE_SUCCESS] = '2' };
  gboolean utf8 = d->env->smtputf8;
  g_autofree char *status = r->dsn ? g_strdup(r->dsn) : notice_status(r->text, classes[kind]);
  const char *said = r->text ? strstr(r->text, " said: ") : NULL;
  const char *type = utf8 && !g_str_is_ascii(r->address) ? "utf-8" : "rfc822";

  g_string_append_printf(out, "\nFinal-Recipient: %s; ", type);
  notice_put(out, r->address, utf8);
  if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL) {
    g_string_append(out, "\nOriginal-Recipient: ");
    notice_put(out, r->orcpt, utf8);
  } else if (r->orig && g_ascii_strcasecmp(r->orig, r->address) != 0) {
    g_string_append_printf(out, "\nOriginal-Recipient: %s; ",
                           utf8 && !g_str_is_ascii(r->orig) ? "utf-8" : "rfc822");
    notice_put(out, r->orig, utf8);
  }
  g_string_append_printf(out, "\nAction: %s\nStatus: ",
                         kind == NOTICE_FAILURE ? "failed"
                         : kind == NOTICE_DELAY ? "delayed"
                         : r->action ? r->action : "delivered");
  notice_put(out, status, FALSE);
  if (said != NULL) {
    /* "host mx.example[192.0.2.1] said: 550 ... (in reply to RCPT TO
     * command)": Remote-MTA is the host, the code the reply alone */
    const char *host = g_str_has_prefix(r->text, "host ") ? r->text + 5 : NULL;
    const char *end = strstr(said, " (in reply to ");
    g_autofree char *reply = end && g_str_has_suffix(end, " command)")
                             ? g_strndup(said + 7, (gsize) (end - said - 7)) : g_strdup(said + 7);

    if (host != NULL && host < said) {
      g_autofree char *mta = g_strndup(host, (gsize) (said - host));
      char *bracket = strchr(mta, '[');

      if (bracket != NULL)
        *bracket = '\0';
      g_string_append(out, "\nRemote-MTA: dns; ");
      notice_put(out, mta, utf8);
    }
    g_string_append(out, "\nDiagnostic-Code: smtp; ");
    notice_put(out, reply, utf8);
  } else if (kind == NOTICE_SUCCESS && notice_is_reply(r->text)) {
    g_string_append(out, "\nDiagnostic-Code: smtp; ");
    notice_put(out, r->text, utf8);
  } else {
    g_string_append(out, "\nDiagnostic-Code: X-Postfix; ");
    notice_put(out, r->text ? r->text : "", utf8);
  }
  if (kind == NOTICE_DELAY) {
    char until[64];

    notice_date(until, sizeof until, (time_t) (d->env->arrival_us / G_USEC_PER_SEC
                                               + d->settings->maximal_queue_lifetime));
    g_string_append_printf(out, "\nWill-Retry-Until: %s", until);
  }
  g_string_append_c(out, '\n');
}

/* A template's From: with @host on a bare address ("MAILER-DAEMON (Mail
 * Delivery System)", "Robot <MAILER-DAEMON>"), as Postfix's cleanup
 * completes it. */
static char *
notice_template_from(const char *from, const char *host)
{
  const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
  gsize word;

  if (lt != NULL && gt != NULL) {
    if (memchr(lt, '@', (gsize) (gt - lt)) != NULL)
      return g_strdup(from);
    return g_strdup_printf("%.*s@%s%s", (int) (gt - from), from, host, gt);
  }
  if (strchr(from, '@') != NULL)
    return g_strdup(from);
  word = strcspn(from, " \t(");
  return g_strdup_printf("%.*s@%s%s", (int) word, from, host, from + word);
}

/* The whole notice for rcpts (QmgrNoticeRcpt *). */
static GString *
notice_compose(const QmgrDelivery *d, const NoticeSpec *spec, const GPtrArray *rcpts)
{
  static const char *const subjects[][2] = {
    [NOTICE_FAILURE] = { "Undelivered Mail Returned to Sender",
                         "Postmaster Copy: Undelivered Mail" },
    [NOTICE_DELAY] = { "Delayed Mail (still being retried)", "Postmaster Warning: Delayed Mail" },
    [NOTICE_SUCCESS] = { "Successful Mail Delivery Report", "Successful Mail Delivery Report" },
  };
  static gint counter;
  const QmgrSettings *s = d->settings;
  const char *host = s->myhostname;
  const char *sender = *d->env->sender ? d->env->sender : "MAILER-DAEMON";
  gboolean utf8 = d->env->smtputf8;
  gint64 now_us = g_get_real_time();
  gint n = g_atomic_int_add(&counter, 1);
  g_autofree char *boundary = g_strdup_printf("%s.%" G_GINT64_FORMAT ".%d/%s", d->queue_id,
                                              now_us / G_USEC_PER_SEC, n, host);
  GString *text = g_string_new(NULL);
  const QmgrBounceTemplate *t = s->bounce_templates[spec->kind];
  const char *subject = subjects[spec->kind][spec->postmaster];
  g_autofree char *from = NULL;
  gboolean whole;
  char date[64], arrival[64];

  notice_date(date, sizeof date, (time_t) (now_us / G_USEC_PER_SEC));
  notice_date(arrival, sizeof arrival, (time_t) (d->env->arrival_us / G_USEC_PER_SEC));
  if (t != NULL && (spec->postmaster ? t->pm_subject : t->subject) != NULL)
    subject = spec->postmaster ? t->pm_subject : t->subject;
  from = t != NULL && t->from != NULL ? notice_template_from(t->from, host)
                                      : g_strdup_printf("MAILER-DAEMON@%s (Mail Delivery System)",
                                                        host);
  g_string_append_printf(text,
      "From: %s\n"
      "Subject: %s\n"
      "To: ",
      from, subject);
  notice_put(text, spec->to, utf8);
  g_string_append_printf(text,
      "\n"
      "Auto-Submitted: %s\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status;\n"
      "\tboundary=\"%s\"\n"
      "Content-Transfer-Encoding: 8bit\n"
      "Message-Id: <%" G_GINT64_FORMAT ".%d.%s@%s>\n"
      "Date: %s\n"
      "\n"
      "This is a MIME-encapsulated message.\n"
      "\n"
      "--%s\n"
      "Content-Description: Notification\n"
      "Content-Type: text/plain; charset=%s\n"
      "\n",
      spec->postmaster ? "auto-generated" : "auto-replied", boundary, now_us, n, d->queue_id,
      host, date, boundary,
      utf8 ? "utf-8" : t != NULL && t->charset != NULL ? t->charset : "us-ascii");
  if (!spec->postmaster && t != NULL) {
    g_autofree char *mine = qmgr_bounce_template_expand(s->config, t->text);

    g_string_append(text, mine);
    if (text->len > 0 && text->str[text->len - 1] != '\n')
      g_string_append_c(text, '\n');
    g_string_append_c(text, '\n');
  } else if (!spec->postmaster) {
    notice_boilerplate(d, spec->kind, text);
  }
  for (guint i = 0; i < rcpts->len; i++) {
    const QmgrNoticeRcpt *r = rcpts->pdata[i];
    gboolean expanded = r->orig && g_ascii_strcasecmp(r->orig, r->address) != 0;

    g_string_append_c(text, '<');
    notice_put(text, r->address, utf8);
    if (expanded) {
      g_string_append(text, "> (expanded from <");
      notice_put(text, r->orig, utf8);
    }
    g_string_append(text, expanded ? ">): " : ">: ");
    notice_put(text, r->text ? r->text : "", utf8);
    g_string_append(text, "\n\n");
  }
  g_string_append_printf(text,
      "--%s\n"
      "Content-Description: Delivery report\n"
      "Content-Type: message/%sdelivery-status\n"
      "\n"
      "Reporting-MTA: dns; %s\n",
      boundary, utf8 ? "global-" : "", host);
  if (d->env->envid && *d->env->envid) {
    g_string_append(text, "Original-Envelope-Id: ");
    notice_put(text, d->env->envid, FALSE);
    g_string_append_c(text, '\n');
  }
  g_string_append_printf(text, "X-Postfix-Queue-ID: %s\nX-Postfix-Sender: %s; ", d->queue_id,
                         utf8 && !g_str_is_ascii(sender) ? "utf-8" : "rfc822");
  notice_put(text, sender, utf8);
  g_string_append_printf(text, "\nArrival-Date: %s\n", arrival);
  for (guint i = 0; i < rcpts->len; i++)
    notice_recipient_dsn(d, spec->kind, rcpts->pdata[i], text);

  {
    g_autoptr(GString) original = g_string_new(NULL);
    const char *undelivered = spec->kind == NOTICE_SUCCESS ? "" : "Undelivered ";

    whole = notice_original(d, spec->full, original);
    g_string_append_printf(text, "\n--%s\nContent-Description: %sMessage%s\n"
                           "Content-Type: %s\nContent-Transfer-Encoding: 8bit\n\n",
                           boundary, undelivered, whole ? "" : " Headers",
                           whole ? (utf8 ? "message/global" : "message/rfc822")
                                 : (utf8 ? "message/global-headers" : "text/rfc822-headers"));
    g_string_append_len(text, original->str, original->len);
  }
  if (text->len && text->str[text->len - 1] != '\n')
    g_string_append_c(text, '\n');
  g_string_append_printf(text, "\n--%s--\n", boundary);
  return text;
}

/* Composes and queues one notice; logs "<what> notification: ID". */
static gboolean
notice_queue(const QmgrDelivery *d, const NoticeSpec *spec, const GPtrArray *rcpts,
             GError **error)
{
  const QmgrSettings *s = d->settings;
  g_autoptr(GString) text = notice_compose(d, spec, rcpts);
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(QueueWriter) w = queue_writer_new(config_str(s->config, "queue_directory"), error);

  if (w == NULL)
    return FALSE;
  if (s->owner_uid != (uid_t) -1 && !queue_writer_chown(w, s->owner_uid, s->owner_gid, error))
    return FALSE;
  env->sender = g_strdup(spec->from);
  env->client_name = g_strdup("localhost");
  env->client_addr = g_strdup("127.0.0.1");
  env->protocol = g_strdup("local");
  /* a notice about internationalized mail is itself (RFC 6533) */
  env->smtputf8 = d->env->smtputf8;
  queue_envelope_add_recipient(env, spec->to, NULL);
  if (!queue_writer_envelope(w, env, error)
      || !queue_writer_content(w, text->str, text->len, error)
      || !queue_writer_extracted(w, FALSE, NULL, NULL, error) || !queue_writer_commit(w, error))
    return FALSE;
  log_qid(LOG_INFO, d->queue_id, "%s notification: %s", spec->what, queue_writer_id(w));
  return TRUE;
}

/* name (a *_recipient or *_sender parameter) with @$myorigin when bare. */
static char *
notice_address(const QmgrSettings *s, const char *name)
{
  const char *v = config_str(s->config, name);

  return strchr(v, '@') ? g_strdup(v) : g_strconcat(v, "@", s->myorigin, NULL);
}

/* The recipients of rcpts whose NOTIFY asks for a notice of this kind:
 * FAILURE or DELAY when given, or none given; SUCCESS only when given. */
static GPtrArray *
notice_wanted(const GPtrArray *rcpts, guint bit)
{
  GPtrArray *out = g_ptr_array_new();

  for (guint i = 0; i < rcpts->len; i++) {
    const QmgrNoticeRcpt *r = rcpts->pdata[i];

    if (bit == QUEUE_NOTIFY_SUCCESS ? (r->notify & bit) != 0 : r->notify == 0 || (r->notify & bit))
      g_ptr_array_add(out, rcpts->pdata[i]);
  }
  return out;
}

/* Queues a postmaster copy; its failure is only logged (Postfix: the
 * copy is not critical, the sender's notice is out already). */
static void
notice_postmaster_copy(const QmgrDelivery *d, NoticeKind kind, const char *rcpt_param,
                       const char *from, const GPtrArray *rcpts, const char *what)
{
  g_autofree char *to = notice_address(d->settings, rcpt_param);
  NoticeSpec spec = { .kind = kind, .postmaster = TRUE, .from = from, .to = to,
                      .full = FALSE, .what = what };
  g_autoptr(GError) error = NULL;

  if (!notice_queue(d, &spec, rcpts, &error))
    log_qid(LOG_WARNING, d->queue_id, "postmaster notice failed while notifying %s: %s",
            *d->env->sender ? d->env->sender : "<>", error->message);
}

/* Who hears of failed or delayed recipients: the sender (those whose
 * NOTIFY asks for it), a copy to postmaster when notify_classes says so;
 * for a message with the null sender only postmaster, under its own class;
 * a postmaster notice itself never (the loop ends). */
typedef struct {
  NoticeKind kind;
  guint notify;                /* the NOTIFY keyword that asks for this notice */
  gboolean sender_full;        /* the sender's notice may carry the whole message */
  const char *what;            /* "non-delivery", "delay" */
  guint null_class;            /* null sender: the class that sends postmaster the notice */
  const char *null_rcpt;       /* ... and the parameter naming the recipient */
  guint copy_class;            /* otherwise: the class of postmaster's copy */
  const char *copy_rcpt;
  gboolean log_discards;
} NoticePlan;

static gboolean
notice_plan_run(const QmgrDelivery *d, const NoticePlan *plan, const char *sender,
                const GPtrArray *rcpts, GError **error)
{
  const QmgrSettings *s = d->settings;
  g_autofree char *dbl = notice_address(s, "double_bounce_sender");
  g_autofree char *what_pm = g_strdup_printf("postmaster %s", plan->what);
  g_autoptr(GPtrArray) wanted = NULL;

  if (rcpts->len == 0)
    return TRUE;
  if (g_ascii_strcasecmp(sender, dbl) == 0) {
    if (plan->log_discards)
      log_qid(LOG_WARNING, d->queue_id, "undeliverable postmaster notification discarded");
    return TRUE;
  }
  if (*sender == '\0') {
    g_autofree char *to = NULL;
    NoticeSpec spec = { .kind = plan->kind, .postmaster = TRUE, .from = dbl,
                        .full = plan->kind == NOTICE_FAILURE, .what = what_pm };

    if (!(s->notify_classes & plan->null_class)) {
      if (plan->log_discards)
        log_qid(LOG_INFO, d->queue_id, "undeliverable bounce discarded (notify_classes has "
                "neither 2bounce nor bounce)");
      return TRUE;
    }
    to = notice_address(s, plan->null_rcpt);
    spec.to = to;
    return notice_queue(d, &spec, rcpts, error);
  }
  wanted = notice_wanted(rcpts, plan->notify);
  if (wanted->len > 0) {
    g_autofree char *what = g_strdup_printf("sender %s", plan->what);
    NoticeSpec spec = { .kind = plan->kind, .from = "", .to = sender, .full = plan->sender_full,
                        .what = what };

    if (!notice_queue(d, &spec, wanted, error))
      return FALSE;
  }
  if (s->notify_classes & plan->copy_class)
    notice_postmaster_copy(d, plan->kind, plan->copy_rcpt, dbl, rcpts, what_pm);
  return TRUE;
}

gboolean
qmgr_bounce_notify(const QmgrDelivery *d, const GPtrArray *bounced, GError **error)
{
  NoticePlan plan = {
    .kind = NOTICE_FAILURE, .notify = QUEUE_NOTIFY_FAILURE,
    .sender_full = d->env->ret != QUEUE_RET_HDRS, .what = "non-delivery",
    .null_class = QMGR_NOTIFY_2BOUNCE, .null_rcpt = "2bounce_notice_recipient",
    .copy_class = QMGR_NOTIFY_BOUNCE, .copy_rcpt = "bounce_notice_recipient",
    .log_discards = TRUE,
  };
  g_autoptr(GPtrArray) to_sender = g_ptr_array_new();
  g_autoptr(GHashTable) owners = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                       (GDestroyNotify) g_ptr_array_unref);
  GHashTableIter it;
  gpointer owner, list;

  /* Bounces inside an alias with an owner-NAME go to that owner (Postfix
   * local(8)), in a notice of their own; the rest to the sender. */
  for (guint i = 0; i < bounced->len; i++) {
    QmgrNoticeRcpt *r = bounced->pdata[i];
    GPtrArray *to = r->report_to ? g_hash_table_lookup(owners, r->report_to) : to_sender;

    if (to == NULL) {
      to = g_ptr_array_new();
      g_hash_table_insert(owners, r->report_to, to);
    }
    g_ptr_array_add(to, r);
  }
  if (!notice_plan_run(d, &plan, d->env->sender, to_sender, error))
    return FALSE;
  g_hash_table_iter_init(&it, owners);
  while (g_hash_table_iter_next(&it, &owner, &list))
    if (!notice_plan_run(d, &plan, owner, list, error))
      return FALSE;
  return TRUE;
}

gboolean
qmgr_bounce_delay_notify(const QmgrDelivery *d, const GPtrArray *delayed, GError **error)
{
  /* a notice that is late: only postmaster may hear of it */
  NoticePlan plan = {
    .kind = NOTICE_DELAY, .notify = QUEUE_NOTIFY_DELAY, .sender_full = FALSE, .what = "delay",
    .null_class = QMGR_NOTIFY_DELAY, .null_rcpt = "delay_notice_recipient",
    .copy_class = QMGR_NOTIFY_DELAY, .copy_rcpt = "delay_notice_recipient",
  };

  return notice_plan_run(d, &plan, d->env->sender, delayed, error);
}

gboolean
qmgr_bounce_success_notify(const QmgrDelivery *d, const GPtrArray *delivered, GError **error)
{
  const char *sender = d->env->sender;
  g_autofree char *dbl = notice_address(d->settings, "double_bounce_sender");
  g_autoptr(GPtrArray) wanted = notice_wanted(delivered, QUEUE_NOTIFY_SUCCESS);
  NoticeSpec spec = { .kind = NOTICE_SUCCESS, .from = "", .to = sender,
                      .full = d->env->ret == QUEUE_RET_FULL, .what = "sender delivery status" };

  if (wanted->len == 0)
    return TRUE;
  if (*sender == '\0' || g_ascii_strcasecmp(sender, dbl) == 0) {
    log_qid(LOG_INFO, d->queue_id, "not sending a success notification for a %s message",
            *sender ? "double-bounce" : "bounce");
    return TRUE;
  }
  return notice_queue(d, &spec, wanted, error);
}
