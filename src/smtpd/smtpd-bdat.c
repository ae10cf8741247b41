/* smtpd-bdat.c - RFC 3030 CHUNKING: the BDAT command, reading each chunk
 * to its last octet (kept or discarded), and the per-chunk replies.
 *
 * Chunk content goes through the DATA pipeline (smtpd-data.c): at the
 * first chunk smtpd_data_restrictions run and the queue file is opened
 * with our Received: header; each chunk is decoded (smtp-bdat.c: CRLF ->
 * LF across chunk boundaries) and stored within message_size_limit;
 * after the LAST chunk the end-of-data restrictions and the commit give
 * the final reply ("250 2.0.0 Ok: N bytes queued as ID").
 *
 * What it must never do: take chunk octets for commands.  A chunk whose
 * size could be read is read to its end before any reply, whatever is
 * refused (no MAIL or RCPT, DATA tried, size over the limit, access
 * denied, a queue file error); after a failed chunk every further chunk
 * of the transaction is read and discarded with the same reply, until
 * LAST ends the transaction (or RSET does).  A BDAT line whose size
 * cannot be read, and BDAT when CHUNKING is not offered, end the session
 * (Postfix's 521), since nothing says where the chunk would end.
 */

#include "log.h"
#include "smtpd.h"

#define BDAT_BUF (16 * 1024)

/* The line as it may appear in a log: non-printable bytes as '?'. */
static char *
bdat_printable(const char *arg)
{
  g_autofree char *text = g_strdup_printf("BDAT %.100s", arg);
  for (char *p = text; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || (guchar) *p > 0x7e)
      *p = '?';
  return g_steal_pointer(&text);
}

/* Size and LAST of the chunk to come; FALSE (the session is closing)
 * when they cannot be had. */
static gboolean
bdat_args(SmtpdSession *s, const char *arg)
{
  gint64 size = 0;
  gboolean last = FALSE;
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };

  if (!smtp_parse_bdat(arg, &size, &last)) {
    g_autofree char *line = bdat_printable(arg);
    log_send(LOG_WARNING, NULL, f, 1, "malformed BDAT command syntax from %s: %s", s->namaddr,
             line);
    smtpd_session_close_with(s, "521 5.5.4 Syntax: BDAT count [LAST]");
    return FALSE;
  }
  if (size == 0 && !last) {
    /* Empty chunks that are not the end are only good for keeping a
     * session open (Postfix). */
    log_send(LOG_WARNING, NULL, f, 1, "null BDAT request from %s", s->namaddr);
    smtpd_session_close_with(s, "551 5.7.1 Null BDAT request");
    return FALSE;
  }
  s->bdat_chunk = s->bdat_left = size;
  s->bdat_last = last;
  s->bdat_prev = s->state;
  return TRUE;
}

/* Starts reading the chunk: kept when reply is NULL, else discarded and
 * answered with reply. */
static void
bdat_start(SmtpdSession *s, const char *reply)
{
  s->bdat_skip = reply != NULL;
  g_free(s->bdat_reply);
  s->bdat_reply = g_strdup(reply);
  smtpd_session_enter_state(s, SMTPD_STATE_BDAT);
  smtpd_session_set_deadline(s, s->settings->timeout * G_USEC_PER_SEC);
}

void
smtpd_bdat_skip(SmtpdSession *s, const char *reply)
{
  bdat_start(s, reply);
}

/* After smtpd_data_restrictions at the first chunk. */
static void
bdat_checked(SmtpdSession *s, const char *reject)
{
  if (reject != NULL)
    bdat_start(s, reject);
  else
    smtpd_data_begin(s);
}

void
smtpd_bdat_command(SmtpdSession *s, char *arg)
{
  const SmtpdSettings *st = s->settings;

  if (st->ehlo_discard & SMTPD_EHLO_CHUNKING) {
    smtpd_session_close_with(s, "521 5.5.1 Error: command not implemented");
    return;
  }
  if (!bdat_args(s, arg))
    return;
  if (s->state == SMTPD_STATE_READY)
    bdat_start(s, "503 5.5.1 Error: need RCPT command");
  else if (s->state == SMTPD_STATE_MAIL)
    bdat_start(s, "554 5.5.1 Error: no valid recipients");
  else if (s->data_tried)
    bdat_start(s, "503 5.5.1 Error: BDAT after DATA");   /* RFC 3030 3 */
  else if (s->bdat_error != NULL)
    bdat_start(s, s->bdat_error);
  else if (st->message_size_limit > 0 &&
           s->bdat_chunk > st->message_size_limit - s->bdat_octets)
    bdat_start(s, "552 5.3.4 Chunk exceeds message size limit");
  else if (!s->bdat_active) {
    /* The first chunk: as DATA, the restrictions, then the queue file. */
    s->bdat_active = TRUE;
    if (!smtpd_policy_check_stage(s, SMTPD_STAGE_DATA, bdat_checked))
      smtpd_data_begin(s);
  } else {
    bdat_start(s, NULL);
  }
}

void
smtpd_bdat_refuse(SmtpdSession *s, char *arg, const char *reply)
{
  if (bdat_args(s, arg))
    bdat_start(s, reply);
}

/* Strict mode found a bare CR: as in DATA, the message is dropped and
 * the session ends. */
static void
bdat_bare_cr(SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
  log_send(LOG_WARNING, s->writer != NULL ? queue_writer_id(s->writer) : NULL, f, 1,
           "disallowed bare <CR> received from %s", s->namaddr);
  smtpd_data_abort(s);
  g_autofree char *line = g_strdup_printf("%d 5.5.2 %s Error: bare <CR> received",
                                          (int)st->bare_newline_code, st->myhostname);
  smtpd_session_close_with(s, line);
}

/* The last octet of the chunk is in: its reply, or the end of the
 * message. */
static void
bdat_chunk_done(SmtpdSession *s)
{
  if (s->bdat_skip) {
    g_autofree char *reply = g_steal_pointer(&s->bdat_reply);
    gboolean in_transaction = s->bdat_prev == SMTPD_STATE_MAIL || s->bdat_prev == SMTPD_STATE_RCPT;
    s->bdat_skip = FALSE;
    if (in_transaction && s->bdat_last) {
      smtpd_session_reset_transaction(s);   /* as Postfix: LAST ends it */
    } else {
      smtpd_session_enter_state(s, s->bdat_prev);
      if (in_transaction) {
        /* RFC 3030 2: the state is indeterminate until RSET; every
         * further chunk fails the same way. */
        s->bdat_active = TRUE;
        if (s->bdat_error == NULL)
          s->bdat_error = g_strdup(reply);
      }
    }
    smtpd_session_reply_line(s, reply);
    smtpd_session_command_done(s);
    return;
  }
  s->bdat_octets += s->bdat_chunk;
  if (!s->bdat_last) {
    smtpd_session_enter_state(s, SMTPD_STATE_RCPT);
    smtpd_session_reply(s, "250 2.0.0 Ok: %" G_GINT64_FORMAT " bytes", s->bdat_chunk);
    smtpd_session_command_done(s);
    return;
  }
  char out[SMTP_CHUNK_OUT_SLACK];
  gsize out_len = 0;
  if (smtp_chunk_finish(&s->chunk, out, &out_len) == SMTP_CHUNK_BARE_CR) {
    bdat_bare_cr(s);
    return;
  }
  smtpd_data_store(s, out, out_len, TRUE);
  smtpd_data_end(s);
}

gboolean
smtpd_bdat_feed(SmtpdSession *s)
{
  if (s->bdat_left > 0) {
    gsize avail = s->in_len - s->in_pos;
    if (avail == 0)
      return FALSE;
    gsize n = (gsize) MIN((gint64) MIN(avail, BDAT_BUF), s->bdat_left);
    if (!s->bdat_skip) {
      char out[BDAT_BUF + SMTP_CHUNK_OUT_SLACK];
      gsize out_len = 0;
      SmtpChunkStatus status = smtp_chunk_decode(&s->chunk, s->in + s->in_pos, n, out, &out_len);
      if (status == SMTP_CHUNK_BARE_CR) {
        bdat_bare_cr(s);
        return FALSE;
      }
      smtpd_data_store(s, out, out_len, FALSE);
    }
    s->in_pos += n;
    s->bdat_left -= n;
    if (s->bdat_left > 0)
      return s->in_pos < s->in_len;
  }
  bdat_chunk_done(s);
  return TRUE;
}
