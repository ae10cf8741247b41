/* smtpd-data.c - the DATA phase: opens the queue file, writes the
 * envelope (with the DSN and SMTPUTF8 parameters) and the Received:
 * header, streams decoded content into it as it arrives (never the whole
 * message in memory), enforces message_size_limit while reading, runs
 * smtpd_end_of_data_restrictions after the final dot, writes the
 * transaction's access(5) HOLD, REDIRECT and BCC behind the content, and
 * commits in the commit pool.  The 250 reply is sent only from the
 * commit's done() callback, after the file is durable.  A message that is
 * not completed (disconnect, bare newline, size, timeout) or rejected at
 * its end never becomes a queue file.  BDAT (smtpd-bdat.c) uses the same
 * steps with its own framing: begin, store, end.
 */
#include <string.h>

#include "address.h"
#include "log.h"
#include "smtpd.h"

#define DATA_CHUNK (16 * 1024)

void
smtpd_data_abort(SmtpdSession *s)
{
  g_clear_pointer(&s->writer, queue_writer_free);
  smtpd_local_data_end(s);
}

const char *
smtpd_data_protocol_name(const SmtpdSession *s)
{
  const char *name = smtpd_auth_protocol_name(s);
  static const char *const utf8_names[] = { "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" };

  /* RFC 6531 3.7.3: ESMTP with SMTPUTF8 is UTF8SMTP (with S for TLS, A
   * for AUTH), as Postfix writes it. */
  if (!s->smtputf8 || !g_str_has_prefix(name, "ESMTP"))
    return name;
  for (guint i = 0; i < G_N_ELEMENTS(utf8_names); i++)
    if (strcmp(utf8_names[i] + 8, name + 5) == 0)
      return utf8_names[i];
  return name;
}

/* The Received: header, in Postfix's exact form. */
static char *
data_received_header(SmtpdSession *s, const char *qid)
{
  const SmtpdSettings *st = s->settings;
  if (s->local_submit)
    return smtpd_local_received(s, qid);
  g_autofree char *date = smtpd_mail_date(s->arrival_us);
  const char *v6 = strchr(s->client_addr, ':') != NULL ? "IPv6:" : "";
  GString *h = g_string_new(NULL);
  g_string_append_printf(h, "Received: from %s (%s [%s%s])\n",
                         s->helo != NULL ? s->helo : s->client_name, s->client_name, v6,
                         s->client_addr);
  if (s->tls != NULL && st->tls_received_header) {
    if (*s->tls_details)
      g_string_append_printf(h, "\t(using %s\n\t %s)\n", s->tls_info, s->tls_details);
    else
      g_string_append_printf(h, "\t(using %s)\n", s->tls_info);
    g_string_append(h, "\t(No client certificate requested)\n");
  }
  if (s->sasl_username != NULL && st->sasl_header)
    g_string_append_printf(h, "\t(Authenticated sender: %s)\n", s->sasl_username);
  g_string_append_printf(h, "\tby %s (%s) with %s id %s", st->myhostname, st->mail_name,
                         smtpd_data_protocol_name(s), qid);
  if (s->rcpt_orig->len == 1)
    g_string_append_printf(h, "\n\tfor <%s>; %s\n", (char *)s->rcpt_orig->pdata[0], date);
  else
    g_string_append_printf(h, ";\n\t%s\n", date);
  return g_string_free(h, FALSE);
}

static void data_fail(SmtpdSession *s, const char *what, const GError *error);

/* The queue file is open: Received: header, then 354. */
static void
data_started(SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;
  g_autoptr(GError) error = NULL;
  const char *qid = queue_writer_id(s->writer);
  g_autofree char *received = data_received_header(s, qid);
  /* PREPEND headers from access tables go first, as Postfix's smtpd
   * writes them ahead of its Received: line. */
  GString *head = g_string_new(NULL);
  for (guint i = 0; s->prepend != NULL && i < s->prepend->len; i++)
    g_string_append_printf(head, "%s\n", (char *)s->prepend->pdata[i]);
  g_string_append(head, received);
  gsize len = head->len;
  gboolean ok = queue_writer_content(s->writer, head->str, len, &error);
  g_string_free(head, TRUE);
  if (!ok) {
    data_fail(s, "cannot write queue file", error);
    return;
  }
  s->data_size = len;
  s->data_too_big = s->data_write_failed = FALSE;

  if (s->local_submit) {
    /* Postfix's pickup: the submitting uid and the sender as given. */
    g_autofree char *uid = g_strdup_printf("%lu", (unsigned long) s->local_uid);
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr }, { "POSTERN_UID", uid },
                     { "POSTERN_SENDER", s->sender } };
    log_send(LOG_INFO, qid, f, G_N_ELEMENTS(f), "uid=%s from=<%s>", uid, s->sender_orig);
    smtpd_local_data_begin(s, qid);
  } else {
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    if (s->sasl_username != NULL)
      log_send(LOG_INFO, qid, f, 1, "client=%s, sasl_method=%s, sasl_username=%s", s->namaddr,
               s->sasl_method, s->sasl_username);
    else
      log_send(LOG_INFO, qid, f, 1, "client=%s", s->namaddr);
  }

  if (s->state == SMTPD_STATE_BDAT) {
    /* The first chunk: its octets are read next (smtpd_bdat_feed). */
    smtp_chunk_init(&s->chunk, !s->strict_newline);
  } else {
    smtp_data_init(&s->decoder, !s->strict_newline);
    smtpd_session_reply_line(s, "354 End data with <CR><LF>.<CR><LF>");
  }
  smtpd_session_set_deadline(s, st->timeout * G_USEC_PER_SEC);
}

/* Fails the DATA command with a 451 and drops the transaction.  At the
 * first BDAT chunk the chunk is still to be read: it is discarded first
 * (never read as commands), then the 451. */
static void
data_fail(SmtpdSession *s, const char *what, const GError *error)
{
  const char *qid = s->writer != NULL ? queue_writer_id(s->writer) : NULL;
  log_qid(LOG_ERR, qid, "%s: %s", what, error != NULL ? error->message : "failed");
  smtpd_data_abort(s);
  if (s->state == SMTPD_STATE_BDAT) {
    smtpd_bdat_skip(s, "451 4.3.0 Error: queue file write error");
    return;
  }
  smtpd_session_enter_state(s, SMTPD_STATE_COMMIT);   /* leaves DATA for the accounting */
  smtpd_session_reply_line(s, "451 4.3.0 Error: queue file write error");
  smtpd_session_reset_transaction(s);
}

typedef struct {
  SmtpdSession *session;
  char *queue_directory;
  QueueEnvelope *env;
  QueueWriter *writer;
  GError *error;
  const char *what;
} OpenWork;

/* Creating the file (inode allocation) can take milliseconds on a busy
 * file system, so it runs in the commit pool, not on the loop. */
static void
open_work(gpointer data)
{
  OpenWork *w = data;
  w->writer = queue_writer_new(w->queue_directory, &w->error);
  if (w->writer == NULL) {
    w->what = "cannot create queue file";
  } else if (!queue_writer_envelope(w->writer, w->env, &w->error)) {
    w->what = "cannot write queue file";
    g_clear_pointer(&w->writer, queue_writer_free);
  }
}

static void
open_done(gpointer data)
{
  OpenWork *w = data;
  SmtpdSession *s = w->session;
  if ((s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT) &&
      s->wait == SMTPD_WAIT_WORK) {
    if (w->writer == NULL) {
      data_fail(s, w->what, w->error);
    } else {
      s->writer = g_steal_pointer(&w->writer);
      data_started(s);
    }
  }
  g_clear_pointer(&w->writer, queue_writer_free);
  g_clear_error(&w->error);
  queue_envelope_free(w->env);
  g_free(w->queue_directory);
  g_free(w);
  smtpd_session_resume(s);
}

void
smtpd_data_begin(SmtpdSession *s)
{
  s->arrival_us = g_get_real_time();
  QueueEnvelope *env = queue_envelope_new();
  env->arrival_us = s->arrival_us;
  env->sender = g_strdup(s->sender);
  env->client_name = g_strdup(s->client_name);
  env->client_addr = g_strdup(s->client_addr);
  env->helo = g_strdup(s->helo);
  env->protocol = g_strdup(smtpd_data_protocol_name(s));
  env->auth_user = g_strdup(s->sasl_username);
  env->smtputf8 = s->smtputf8;
  env->ret = s->dsn_ret;
  env->envid = g_strdup(s->dsn_envid);
  /* HOLD, REDIRECT and BCC go behind the content (data_finish): the end
   * of data restrictions may still add some. */
  for (guint i = 0; i < s->rcpt_addr->len; i++) {
    const char *addr = s->rcpt_addr->pdata[i], *orig = s->rcpt_orig->pdata[i];
    /* Completing "user" with @$myorigin is canonicalization, as in
     * Postfix's cleanup: the completed form is the original recipient. */
    gboolean completed = address_at_sign(orig) == NULL;
    queue_envelope_add_recipient(env, addr, strcmp(addr, orig) != 0 && !completed ? orig : NULL);
    QueueRecipient *r = env->recipients->pdata[env->recipients->len - 1];
    r->notify = g_array_index(s->rcpt_notify, guint, i);
    r->orcpt = g_strdup(s->rcpt_orcpt->pdata[i]);
  }
  SmtpdState state = s->bdat_active ? SMTPD_STATE_BDAT : SMTPD_STATE_DATA;
  if (s->writer_ahead != NULL) {
    /* The queue file exists already: the envelope only fills its buffer. */
    g_autoptr(GError) error = NULL;
    s->writer = g_steal_pointer(&s->writer_ahead);
    smtpd_session_enter_state(s, state);
    if (queue_writer_envelope(s->writer, env, &error))
      data_started(s);
    else
      data_fail(s, "cannot write queue file", error);
    queue_envelope_free(env);
    return;
  }
  OpenWork *w = g_new0(OpenWork, 1);
  w->session = s;
  w->queue_directory = g_strdup(s->settings->queue_directory);
  w->env = env;
  /* In DATA (BDAT) while the file is opened: input waits in the buffer. */
  smtpd_session_enter_state(s, state);
  smtpd_session_suspend(s);
  workpool_submit(s->server->commit_pool, open_work, open_done, w);
}

typedef struct {
  SmtpdSession *session;
  QueueWriter *writer;
  gboolean hold;          /* HOLD action seen */
  guint nrcpt;            /* BCC copies included */
  gboolean ok;
  GError *error;
} CommitWork;

static void
commit_work(gpointer data)
{
  CommitWork *w = data;
  w->ok = queue_writer_commit(w->writer, &w->error);
}

static void
commit_done(gpointer data)
{
  CommitWork *w = data;
  SmtpdSession *s = w->session;
  const char *qid = queue_writer_id(w->writer);
  if (w->ok) {
    LogField f[] = {
      { "POSTERN_CLIENT", s->namaddr },
      { "POSTERN_SENDER", s->sender },
    };
    log_send(LOG_INFO, qid, f, G_N_ELEMENTS(f), "from=<%s>, size=%" G_GINT64_FORMAT
             ", nrcpt=%u (queued)", s->sender, s->data_size, w->nrcpt);
    if (w->hold)
      log_qid(LOG_INFO, qid, "queued with a HOLD flag: the queue manager puts it in hold/");
    if (s->state < SMTPD_STATE_QUIT && s->bdat_active)
      smtpd_session_reply(s, "250 2.0.0 Ok: %" G_GINT64_FORMAT " bytes queued as %s",
                          s->bdat_octets, qid);
    else if (s->state < SMTPD_STATE_QUIT)
      smtpd_session_reply(s, "250 2.0.0 Ok: queued as %s", qid);
  } else {
    log_qid(LOG_ERR, qid, "queue file commit failed: %s", w->error->message);
    if (s->state < SMTPD_STATE_QUIT)
      smtpd_session_reply_line(s, "451 4.3.0 Error: queue file write error");
  }
  queue_writer_free(w->writer);
  g_clear_error(&w->error);
  g_free(w);
  smtpd_session_reset_transaction(s);
  smtpd_session_resume(s);
}

/* The message passed: DISCARD, or the extracted records and the commit. */
static void
data_finish(SmtpdSession *s)
{
  if (s->discard) {
    /* DISCARD: claim success, keep nothing (Postfix's cleanup does the same). */
    const char *qid = queue_writer_id(s->writer);
    log_qid(LOG_INFO, qid, "discard: message of %" G_GINT64_FORMAT " bytes from <%s>",
            s->data_size, s->sender);
    if (s->bdat_active)
      smtpd_session_reply(s, "250 2.0.0 Ok: %" G_GINT64_FORMAT " bytes queued as %s",
                          s->bdat_octets, qid);
    else
      smtpd_session_reply(s, "250 2.0.0 Ok: queued as %s", qid);
    smtpd_data_abort(s);
    smtpd_session_reset_transaction(s);
    return;
  }
  g_autoptr(GError) error = NULL;
  if (!queue_writer_extracted(s->writer, s->hold, s->redirect, s->bcc, &error)) {
    data_fail(s, "cannot write queue file", error);
    return;
  }
  CommitWork *w = g_new0(CommitWork, 1);
  w->session = s;
  w->hold = s->hold;
  w->nrcpt = s->rcpt_addr->len + (s->bcc != NULL ? s->bcc->len : 0);
  w->writer = g_steal_pointer(&s->writer);
  smtpd_session_suspend(s);
  workpool_submit(s->server->commit_pool, commit_work, commit_done, w);
}

/* After smtpd_end_of_data_restrictions.  A reject or defer removes the
 * queue file; the final reply ends the transaction either way (RFC 5321
 * 4.1.1.4; docs/decisions.md). */
static void
data_eod_checked(SmtpdSession *s, const char *reject)
{
  if (reject == NULL) {
    data_finish(s);
    return;
  }
  smtpd_data_abort(s);
  smtpd_session_reply_line(s, reject);
  smtpd_session_reset_transaction(s);
}

/* End of data seen: reply now (size, write error), or the end of data
 * restrictions and the commit. */
void
smtpd_data_end(SmtpdSession *s)
{
  smtpd_local_data_end(s);
  if (s->data_too_big || s->data_write_failed) {
    const char *reply = s->data_too_big ? "552 5.3.4 Error: message file too big"
                                        : "451 4.3.0 Error: queue file write error";
    smtpd_data_abort(s);
    smtpd_session_enter_state(s, SMTPD_STATE_COMMIT);   /* leaves DATA for the accounting */
    smtpd_session_reply_line(s, reply);
    smtpd_policy_log_reject(s, "END-OF-MESSAGE", reply, (char *)s->rcpt_orig->pdata[0]);
    smtpd_session_reset_transaction(s);
    smtpd_session_command_done(s);
    return;
  }
  smtpd_session_enter_state(s, SMTPD_STATE_COMMIT);   /* leaves DATA for the accounting */
  if (smtpd_policy_check_stage(s, SMTPD_STAGE_END_OF_DATA, data_eod_checked))
    return;
  data_finish(s);
  if (s->wait == SMTPD_WAIT_NONE)
    smtpd_session_command_done(s);
}

/* Writes decoded content, within message_size_limit. */
static void
data_write(SmtpdSession *s, const char *data, gsize len)
{
  const SmtpdSettings *st = s->settings;
  if (len > 0 && s->writer != NULL) {
    g_autoptr(GError) error = NULL;
    if (st->message_size_limit > 0 && s->data_size + (gint64)len > st->message_size_limit) {
      s->data_too_big = TRUE;
      smtpd_data_abort(s);   /* stop storing; keep reading to the end */
    } else if (!queue_writer_content(s->writer, data, len, &error)) {
      log_qid(LOG_ERR, queue_writer_id(s->writer), "cannot write queue file: %s",
              error->message);
      s->data_write_failed = TRUE;
      smtpd_data_abort(s);
    }
  }
  s->data_size += len;
}

void
smtpd_data_store(SmtpdSession *s, const char *data, gsize len, gboolean end)
{
  if (s->headers != NULL) {
    /* A local submission: its header block goes through the filter. */
    g_string_truncate(s->header_out, 0);
    smtp_headers_feed(s->headers, data, len, s->header_out);
    if (end)
      smtp_headers_finish(s->headers, s->header_out);
    data_write(s, s->header_out->str, s->header_out->len);
  } else {
    data_write(s, data, len);
  }
}

gboolean
smtpd_data_feed(SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;
  gsize avail = s->in_len - s->in_pos;
  if (avail == 0)
    return FALSE;

  char out[DATA_CHUNK + SMTP_DATA_OUT_SLACK];
  gsize out_len = 0, consumed = 0;
  SmtpDataStatus status = smtp_data_decode(&s->decoder, s->in + s->in_pos,
                                           MIN(avail, DATA_CHUNK), out, &out_len, &consumed);
  s->in_pos += consumed;
  smtpd_data_store(s, out, out_len, status == SMTP_DATA_END);

  switch (status) {
  case SMTP_DATA_MORE:
    return s->in_pos < s->in_len;
  case SMTP_DATA_END:
    smtpd_data_end(s);
    return TRUE;
  case SMTP_DATA_BARE_LF:
  case SMTP_DATA_BARE_CR: {
    const char *what = status == SMTP_DATA_BARE_LF ? "<LF>" : "<CR>";
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_WARNING, s->writer != NULL ? queue_writer_id(s->writer) : NULL, f, 1,
             "disallowed bare %s received from %s", what, s->namaddr);
    smtpd_data_abort(s);
    g_autofree char *line = g_strdup_printf("%d 5.5.2 %s Error: bare %s received",
                                            (int)st->bare_newline_code, st->myhostname, what);
    smtpd_session_close_with(s, line);
    return FALSE;
  }
  }
  return FALSE;
}
