/* smtpd-notify.c - session transcripts for postmaster (notify_classes),
 * as Postfix's smtpd_chat_notify.
 *
 * While notify_classes names a class smtpd can report (bounce, policy,
 * protocol, resource, software), every session keeps its chat: "Out: "
 * for each reply line, "In:  " for each command (AUTH's argument shown as
 * "****", SASL responses and message content never kept).  Each 4xx/5xx
 * reply puts the session in a class, by its RFC 3463 code:
 *
 *   X.3.5 (system not configured)               software
 *   X.3.0, X.3.1 (lookup or queue file failure) resource
 *   X.3.4, 5.1.1 (too large, unknown user)      bounce
 *   500-504, 535, 555, X.5.x (bad commands)     protocol
 *   any other refusal (restrictions, limits)    policy
 *
 * (a 421 that only ends the session, a timeout or "too many errors", puts
 * it in none).  When the session ends, or its chat reaches
 * smtpd_history_flush_threshold lines, and one of its classes is in
 * notify_classes, the chat goes to error_notice_recipient in a message
 * from double_bounce_sender ("<mail_name> SMTP server: errors from
 * client[addr]"), queued by a commit thread; the chat then starts over.
 */
#include "smtpd.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify-class.h"
#include "queue-file.h"

#define SMTPD_NOTIFY_CLASSES (NOTIFY_CLASS_BOUNCE | NOTIFY_CLASS_POLICY | NOTIFY_CLASS_PROTOCOL \
                              | NOTIFY_CLASS_RESOURCE | NOTIFY_CLASS_SOFTWARE)

static gboolean
notify_wanted(const SmtpdSession *s)
{
  return (s->settings->notify_classes & SMTPD_NOTIFY_CLASSES) != 0;
}

/* The class of one of our reply lines (0: none). */
static guint
notify_reply_class(const char *line)
{
  int code;
  char cls, subject, detail;

  if ((line[0] != '4' && line[0] != '5') || !g_ascii_isdigit(line[1])
      || !g_ascii_isdigit(line[2]))
    return 0;
  code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  /* "NNN X.Y.Z" or "NNN-X.Y.Z": the enhanced code, when there is one */
  cls = subject = detail = 0;
  if ((line[3] == ' ' || line[3] == '-') && (line[4] == '4' || line[4] == '5') && line[5] == '.'
      && g_ascii_isdigit(line[6])) {
    const char *d = line + 7;

    cls = line[4];
    subject = line[6];
    if (*d == '.' && g_ascii_isdigit(d[1]) && !g_ascii_isdigit(d[2]))
      detail = d[1];
  }
  if (subject == '3' && detail == '5')
    return NOTIFY_CLASS_SOFTWARE;
  if (subject == '3' && (detail == '0' || detail == '1'))
    return NOTIFY_CLASS_RESOURCE;
  if (code == 421)
    return 0;                 /* the end of the session, not its fault */
  if ((subject == '3' && detail == '4') || (cls == '5' && subject == '1' && detail == '1'))
    return NOTIFY_CLASS_BOUNCE;
  if ((code >= 500 && code <= 504) || code == 535 || code == 555 || subject == '5')
    return NOTIFY_CLASS_PROTOCOL;
  return NOTIFY_CLASS_POLICY;
}

/* Printable ASCII, '?' for anything else (Postfix's printable()). */
static void
notify_append_line(GString *out, const char *prefix, const char *line, gsize len)
{
  g_string_append(out, prefix);
  for (gsize i = 0; i < len; i++)
    g_string_append_c(out, line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?');
}

static void notify_flush(SmtpdSession *s, const char *reason);

/* Starts a chat line (" In:  " / " Out: ") in the session's one buffer. */
static GString *
notify_line_begin(SmtpdSession *s, gsize len)
{
  if (s->history == NULL)
    s->history = g_string_sized_new(MAX(len + 16, 512));
  return s->history;
}

static void
notify_line_end(SmtpdSession *s)
{
  g_string_append_c(s->history, '\n');
  if (++s->history_lines >= (guint) MAX(s->settings->history_flush_threshold, 1))
    notify_flush(s, NULL);
}

void
smtpd_notify_in(SmtpdSession *s, const char *line, gsize len)
{
  GString *entry;
  gsize keep = len;

  if (!notify_wanted(s))
    return;
  if (len >= 4 && g_ascii_strncasecmp(line, "AUTH", 4) == 0 && (len == 4 || line[4] == ' ')) {
    /* "AUTH PLAIN <credentials>": the mechanism, never the credentials */
    const char *sp = len > 5 ? memchr(line + 5, ' ', len - 5) : NULL;

    keep = sp != NULL ? (gsize) (sp - line) : len;
  }
  entry = notify_line_begin(s, keep);
  notify_append_line(entry, " In:  ", line, keep);
  if (keep < len)
    g_string_append(entry, " ****");
  notify_line_end(s);
}

void
smtpd_notify_out(SmtpdSession *s, const char *line)
{
  GString *entry;

  if (!notify_wanted(s))
    return;
  s->error_mask |= notify_reply_class(line);
  entry = notify_line_begin(s, strlen(line));
  notify_append_line(entry, " Out: ", line, strlen(line));
  notify_line_end(s);
}

typedef struct {
  char *queue_directory;
  char *sender, *recipient, *client;
  GString *text;
  char *qid;
  GError *error;
} NotifyWork;

static void
notify_work(gpointer data)
{
  NotifyWork *w = data;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(QueueWriter) writer = queue_writer_new(w->queue_directory, &w->error);

  if (writer == NULL)
    return;
  env->sender = g_strdup(w->sender);
  env->client_name = g_strdup("localhost");
  env->client_addr = g_strdup("127.0.0.1");
  env->protocol = g_strdup("local");
  queue_envelope_add_recipient(env, w->recipient, NULL);
  if (queue_writer_envelope(writer, env, &w->error)
      && queue_writer_content(writer, w->text->str, w->text->len, &w->error)
      && queue_writer_extracted(writer, FALSE, NULL, NULL, &w->error)
      && queue_writer_commit(writer, &w->error))
    w->qid = g_strdup(queue_writer_id(writer));
}

static void
notify_done(gpointer data)
{
  NotifyWork *w = data;

  if (w->qid != NULL)
    log_info("%s: postmaster notification: %s (errors from %s)", w->qid, w->recipient,
             w->client);
  else
    log_warning("cannot queue the postmaster notification about errors from %s: %s",
                w->client, w->error ? w->error->message : "unknown error");
  g_free(w->queue_directory);
  g_free(w->sender);
  g_free(w->recipient);
  g_free(w->client);
  g_string_free(w->text, TRUE);
  g_free(w->qid);
  g_clear_error(&w->error);
  g_free(w);
}

/* name's value, with @$myorigin when it has no domain. */
static char *
notify_address(const SmtpdSettings *st, const char *name)
{
  const char *v = config_str(st->config, name);

  return strchr(v, '@') ? g_strdup(v) : g_strconcat(v, "@", st->myorigin, NULL);
}

/* Sends the chat so far when its classes call for it; starts over. */
static void
notify_flush(SmtpdSession *s, const char *reason)
{
  const SmtpdSettings *st = s->settings;
  NotifyWork *w;
  char date[64];
  time_t now = time(NULL);
  struct tm tm;

  if (s->history_lines > 0 && (s->error_mask & st->notify_classes) != 0) {
    w = g_new0(NotifyWork, 1);
    w->queue_directory = g_strdup(st->queue_directory);
    w->sender = notify_address(st, "double_bounce_sender");
    w->recipient = notify_address(st, "error_notice_recipient");
    w->client = g_strdup(s->namaddr ? s->namaddr : "unknown");
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    w->text = g_string_sized_new(1024);
    g_string_append_printf(w->text,
        "Date: %s\n"
        "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
        "To: Postmaster <%s>\n"
        "Subject: %s SMTP server: errors from %s\n"
        "Message-Id: <%" G_GINT64_FORMAT ".%d.%u@%s>\n"
        "Auto-Submitted: auto-generated\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Transcript of session follows.\n"
        "\n",
        date, st->myhostname, w->recipient, st->mail_name, w->client, g_get_real_time(),
        (int) getpid(), s->history_lines, st->myhostname);
    g_string_append_len(w->text, s->history->str, (gssize) s->history->len);
    g_string_append_c(w->text, '\n');
    if (reason != NULL)
      g_string_append_printf(w->text, "Session aborted, reason: %s\n\n", reason);
    g_string_append(w->text, "For other details, see the local mail logfile\n");
    workpool_submit(s->server->commit_pool, notify_work, notify_done, w);
  }
  if (s->history != NULL)
    g_string_truncate(s->history, 0);   /* the buffer stays for the next lines */
  s->history_lines = 0;
  s->error_mask = 0;
}

void
smtpd_notify_session_end(SmtpdSession *s, const char *reason)
{
  if (s->history_lines > 0)
    notify_flush(s, reason);
}
