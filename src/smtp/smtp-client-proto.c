/* smtp-client-proto.c - the SMTP client's protocol, pure
 * (smtp-client-proto.h).
 */
#include "smtp-client-proto.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- replies */

void
smtp_client_reply_clear(SmtpClientReply *r)
{
  g_clear_pointer(&r->lines, g_ptr_array_unref);
  memset(r, 0, sizeof *r);
}

char *
smtp_client_reply_text(const SmtpClientReply *r)
{
  GString *s = g_string_new(NULL);

  g_string_append_printf(s, "%d", r->code);
  for (guint i = 0; r->lines && i < r->lines->len; i++) {
    const char *text = r->lines->pdata[i];

    if (*text)
      g_string_append_printf(s, " %s", text);
  }
  return g_string_free(s, FALSE);
}

/* "X.Y.Z" with X the reply's class, 1-3 digits for Y and Z; its length or 0. */
static gsize
reply_enhanced(const char *text, int code)
{
  const char *p = text;

  if (p[0] != '0' + code / 100 || p[1] != '.')
    return 0;
  p += 2;
  for (int part = 0; part < 2; part++) {
    gsize digits = 0;

    while (g_ascii_isdigit(p[digits]))
      digits++;
    if (digits == 0 || digits > 3)
      return 0;
    p += digits;
    if (part == 0) {
      if (*p != '.')
        return 0;
      p++;
    }
  }
  return *p == '\0' || *p == ' ' ? (gsize) (p - text) : 0;
}

SmtpReplyStep
smtp_client_reply_feed(SmtpClientReply *reply, const char *line, gsize len)
{
  int code;

  if (len < 3 || !g_ascii_isdigit(line[0]) || !g_ascii_isdigit(line[1])
      || !g_ascii_isdigit(line[2]) || line[0] < '2' || line[0] > '5'
      || (len > 3 && line[3] != ' ' && line[3] != '-') || memchr(line, '\0', len) != NULL)
    return SMTP_REPLY_BAD;
  code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (reply->lines == NULL) {
    reply->lines = g_ptr_array_new_with_free_func(g_free);
    reply->code = code;
  } else if (code != reply->code || reply->lines->len >= SMTP_CLIENT_REPLY_LINES_MAX) {
    return SMTP_REPLY_BAD;    /* a server that never ends its reply costs a bounded amount */
  }
  {
    g_autofree char *text = len > 4 ? g_strndup(line + 4, len - 4) : g_strdup("");

    if (reply->lines->len == 0) {
      gsize n = reply_enhanced(text, code);
      if (n > 0 && n < sizeof reply->enhanced)
        memcpy(reply->enhanced, text, n);
    }
    g_ptr_array_add(reply->lines, g_steal_pointer(&text));
  }
  return len > 3 && line[3] == '-' ? SMTP_REPLY_MORE : SMTP_REPLY_DONE;
}

/* ---------------------------------------------------------------- EHLO */

void
smtp_client_caps_clear(SmtpClientCaps *caps)
{
  g_free(caps->auth);
  memset(caps, 0, sizeof *caps);
}

void
smtp_client_caps_parse(const SmtpClientReply *ehlo, SmtpClientCaps *caps)
{
  smtp_client_caps_clear(caps);
  caps->esmtp = TRUE;
  for (guint i = 1; ehlo->lines && i < ehlo->lines->len; i++) {
    g_auto(GStrv) words = g_strsplit_set(ehlo->lines->pdata[i], " =", -1);
    const char *kw = words[0];

    if (kw == NULL || *kw == '\0')
      continue;
    if (g_ascii_strcasecmp(kw, "PIPELINING") == 0)
      caps->pipelining = TRUE;
    else if (g_ascii_strcasecmp(kw, "STARTTLS") == 0)
      caps->starttls = TRUE;
    else if (g_ascii_strcasecmp(kw, "8BITMIME") == 0)
      caps->eightbitmime = TRUE;
    else if (g_ascii_strcasecmp(kw, "ENHANCEDSTATUSCODES") == 0)
      caps->enhancedstatuscodes = TRUE;
    else if (g_ascii_strcasecmp(kw, "DSN") == 0)
      caps->dsn = TRUE;
    else if (g_ascii_strcasecmp(kw, "SMTPUTF8") == 0)
      caps->smtputf8 = TRUE;
    else if (g_ascii_strcasecmp(kw, "CHUNKING") == 0)
      caps->chunking = TRUE;
    else if (g_ascii_strcasecmp(kw, "SIZE") == 0) {
      caps->size = TRUE;
      caps->size_limit = words[1] && g_ascii_isdigit(*words[1])
                         ? g_ascii_strtoull(words[1], NULL, 10) : 0;
    } else if (g_ascii_strcasecmp(kw, "AUTH") == 0 && caps->auth == NULL) {
      /* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN": the same words */
      GString *mechs = g_string_new(NULL);

      for (guint w = 1; words[w]; w++)
        if (*words[w])
          g_string_append_printf(mechs, "%s%s", mechs->len ? " " : "", words[w]);
      caps->auth = g_ascii_strup(mechs->str, -1);
      g_string_free(mechs, TRUE);
    }
  }
}

/* ---------------------------------------------------------------- a transaction */

static void
rcpt_free(gpointer p)
{
  SmtpClientRcpt *r = p;

  g_free(r->address);
  g_free(r->notify);
  g_free(r->orcpt);
  g_free(r->reply);
  g_free(r->dsn);
  g_free(r);
}

SmtpClientTx *
smtp_client_tx_new(SmtpClientCaps *caps, const char *sender, const char *const *recipients,
                   guint64 size, gboolean eightbit)
{
  SmtpClientTx *tx = g_new0(SmtpClientTx, 1);

  tx->caps = caps;
  tx->sender = g_strdup(sender ? sender : "");
  tx->size = size;
  tx->eightbit = eightbit;
  tx->rcpts = g_ptr_array_new_with_free_func(rcpt_free);
  for (const char *const *r = recipients; r && *r; r++) {
    SmtpClientRcpt *rc = g_new0(SmtpClientRcpt, 1);
    rc->address = g_strdup(*r);
    g_ptr_array_add(tx->rcpts, rc);
  }
  return tx;
}

void
smtp_client_tx_free(SmtpClientTx *tx)
{
  if (tx == NULL)
    return;
  g_free(tx->sender);
  g_free(tx->envid);
  g_free(tx->ret);
  g_free(tx->mail_reply);
  g_ptr_array_unref(tx->rcpts);
  g_free(tx);
}

static void
rcpt_decide(SmtpClientRcpt *r, SmtpRcptStatus status, const char *text, const char *dsn)
{
  r->local = TRUE;
  r->stage = NULL;
  r->status = status;
  g_free(r->reply);
  r->reply = g_strdup(text);
  g_free(r->dsn);
  r->dsn = g_strdup(dsn);
}

/* The command a reply in this state answers, as Postfix names it in
 * "(in reply to X command)". */
static const char *
tx_stage(SmtpTxState state)
{
  switch (state) {
  case SMTP_TX_MAIL: return "MAIL FROM";
  case SMTP_TX_RCPT: return "RCPT TO";
  case SMTP_TX_DATA: return "DATA";
  default: return "end of DATA";
  }
}

/* A reply's outcome for a recipient: its enhanced code, or the class's. */
static void
rcpt_decide_by_reply(SmtpClientRcpt *r, const SmtpClientReply *reply, SmtpRcptStatus ok,
                     SmtpTxState state)
{
  g_autofree char *text = smtp_client_reply_text(reply);
  int cls = reply->code / 100;
  const char *dsn = reply->enhanced[0] ? reply->enhanced
                    : cls == 2 ? "2.0.0" : cls == 4 ? "4.0.0" : "5.0.0";

  rcpt_decide(r, cls == 2 ? ok : cls == 4 || cls == 3 ? SMTP_RCPT_DEFER : SMTP_RCPT_BOUNCE,
              text, dsn);
  r->local = FALSE;
  r->stage = tx_stage(state);
}

/* Every recipient still open gets this reply's verdict. */
static void
tx_decide_open(SmtpClientTx *tx, const SmtpClientReply *reply, SmtpRcptStatus ok)
{
  for (guint i = 0; i < tx->rcpts->len; i++) {
    SmtpClientRcpt *r = tx->rcpts->pdata[i];

    if (r->status == SMTP_RCPT_PENDING || r->status == SMTP_RCPT_ACCEPTED)
      rcpt_decide_by_reply(r, reply, ok, tx->state);
  }
}

char *
smtp_xtext_encode(const char *text)
{
  GString *out = g_string_new(NULL);

  for (const guchar *p = (const guchar *) text; *p; p++) {
    if (*p >= 33 && *p <= 126 && *p != '+' && *p != '=')
      g_string_append_c(out, (char) *p);
    else
      g_string_append_printf(out, "+%02X", *p);
  }
  return g_string_free(out, FALSE);
}

static gboolean
is_ascii(const char *s)
{
  for (; s && *s; s++)
    if ((guchar) *s >= 0x80)
      return FALSE;
  return TRUE;
}

static void
tx_append_rcpt(SmtpClientTx *tx, guint i, GString *out)
{
  const SmtpClientRcpt *r = tx->rcpts->pdata[i];

  g_string_append_printf(out, "RCPT TO:<%s>", r->address);
  if (tx->caps->dsn && r->notify && *r->notify)
    g_string_append_printf(out, " NOTIFY=%s", r->notify);
  if (tx->caps->dsn && r->orcpt && strchr(r->orcpt, ';') && is_ascii(r->orcpt)) {
    const char *semi = strchr(r->orcpt, ';');
    g_autofree char *x = smtp_xtext_encode(semi + 1);

    g_string_append_printf(out, " ORCPT=%.*s;%s", (int) (semi - r->orcpt), r->orcpt, x);
  }
  g_string_append(out, "\r\n");
}

/* A non-ASCII address in the envelope needs SMTPUTF8 at the server. */
static gboolean
tx_needs_smtputf8(const SmtpClientTx *tx)
{
  if (!is_ascii(tx->sender))
    return TRUE;
  for (guint i = 0; i < tx->rcpts->len; i++)
    if (!is_ascii(((const SmtpClientRcpt *) tx->rcpts->pdata[i])->address))
      return TRUE;
  return FALSE;
}

char *
smtp_client_tx_begin(SmtpClientTx *tx)
{
  GString *out = g_string_new(NULL);
  const SmtpClientCaps *caps = tx->caps;

  if (caps->size && caps->size_limit > 0 && tx->size > caps->size_limit) {
    g_autofree char *text = g_strdup_printf("message size %" G_GUINT64_FORMAT " exceeds size "
                                            "limit %" G_GUINT64_FORMAT " of server", tx->size,
                                            caps->size_limit);
    for (guint i = 0; i < tx->rcpts->len; i++)
      rcpt_decide(tx->rcpts->pdata[i], SMTP_RCPT_BOUNCE, text, "5.3.4");
    tx->state = SMTP_TX_DONE;
    g_string_free(out, TRUE);
    return NULL;
  }
  if (!caps->smtputf8 && tx_needs_smtputf8(tx)) {
    g_autofree char *text = g_strdup_printf("SMTPUTF8 is required, but was not offered by host "
                                            "%s", tx->peer ? tx->peer : "the server");
    for (guint i = 0; i < tx->rcpts->len; i++)
      rcpt_decide(tx->rcpts->pdata[i], SMTP_RCPT_BOUNCE, text, "5.6.7");
    tx->state = SMTP_TX_DONE;
    g_string_free(out, TRUE);
    return NULL;
  }
  g_string_append_printf(out, "MAIL FROM:<%s>", tx->sender);
  if (caps->size && tx->size > 0)
    g_string_append_printf(out, " SIZE=%" G_GUINT64_FORMAT, tx->size);
  if (caps->eightbitmime && tx->eightbit)
    g_string_append(out, " BODY=8BITMIME");
  if (caps->smtputf8 && tx->smtputf8)
    g_string_append(out, " SMTPUTF8");
  if (caps->dsn && tx->ret)
    g_string_append_printf(out, " RET=%s", tx->ret);
  if (caps->dsn && tx->envid && is_ascii(tx->envid)) {
    g_autofree char *x = smtp_xtext_encode(tx->envid);
    g_string_append_printf(out, " ENVID=%s", x);
  }
  g_string_append(out, "\r\n");
  if (caps->pipelining) {
    for (guint i = 0; i < tx->rcpts->len; i++)
      tx_append_rcpt(tx, i, out);
    g_string_append(out, "DATA\r\n");
  }
  tx->state = SMTP_TX_MAIL;
  return g_string_free(out, FALSE);
}

SmtpTxState
smtp_client_tx_reply(SmtpClientTx *tx, const SmtpClientReply *reply, char **send)
{
  gboolean pipelined = tx->caps->pipelining;
  gboolean mail_ok = tx->mail_reply == NULL;
  int cls = reply->code / 100;

  if (send)
    *send = NULL;
  switch (tx->state) {
  case SMTP_TX_MAIL:
    if (cls != 2) {
      tx->mail_reply = smtp_client_reply_text(reply);
      tx_decide_open(tx, reply, SMTP_RCPT_DEFER);
      /* Pipelined: the RCPT and DATA replies still come, to be read. */
      tx->state = pipelined && tx->rcpts->len > 0 ? SMTP_TX_RCPT : pipelined ? SMTP_TX_DATA
                                                                             : SMTP_TX_DONE;
      return tx->state;
    }
    tx->state = tx->rcpts->len > 0 ? SMTP_TX_RCPT : SMTP_TX_DONE;
    if (!pipelined && tx->rcpts->len > 0 && send) {
      GString *out = g_string_new(NULL);
      tx_append_rcpt(tx, 0, out);
      *send = g_string_free(out, FALSE);
    }
    return tx->state;
  case SMTP_TX_RCPT: {
    SmtpClientRcpt *r = tx->rcpts->pdata[tx->next_reply_rcpt++];

    if (mail_ok) {
      rcpt_decide_by_reply(r, reply, SMTP_RCPT_ACCEPTED, SMTP_TX_RCPT);
      tx->accepted += r->status == SMTP_RCPT_ACCEPTED;
    }
    if (tx->next_reply_rcpt < tx->rcpts->len) {
      if (!pipelined && send) {
        GString *out = g_string_new(NULL);
        tx_append_rcpt(tx, tx->next_reply_rcpt, out);
        *send = g_string_free(out, FALSE);
      }
      return tx->state;
    }
    if (pipelined) {
      tx->state = SMTP_TX_DATA;       /* DATA went with the rest */
    } else if (tx->accepted > 0) {
      tx->state = SMTP_TX_DATA;
      if (send)
        *send = g_strdup("DATA\r\n");
    } else {
      tx->state = SMTP_TX_DONE;
    }
    return tx->state;
  }
  case SMTP_TX_DATA:
    if (reply->code == 354 && mail_ok && tx->accepted > 0) {
      tx->state = SMTP_TX_BODY;
    } else if (reply->code == 354) {
      /* Pipelined DATA accepted although no recipient was: an empty
       * message ends it, which the server refuses. */
      if (send)
        *send = g_strdup(".\r\n");
      tx->state = SMTP_TX_DOT;
      tx->accepted = 0;
    } else {
      if (mail_ok)
        tx_decide_open(tx, reply, SMTP_RCPT_DEFER);
      tx->state = SMTP_TX_DONE;
    }
    return tx->state;
  case SMTP_TX_BODY:
  case SMTP_TX_DOT:
    /* the reply to the final dot */
    if (tx->accepted > 0 && mail_ok)
      for (guint i = 0; i < tx->rcpts->len; i++) {
        SmtpClientRcpt *r = tx->rcpts->pdata[i];
        if (r->status == SMTP_RCPT_ACCEPTED)
          rcpt_decide_by_reply(r, reply, SMTP_RCPT_SENT, SMTP_TX_DOT);
      }
    tx->state = SMTP_TX_DONE;
    return tx->state;
  case SMTP_TX_DONE:
    return tx->state;
  }
  return tx->state;
}

void
smtp_client_tx_abort(SmtpClientTx *tx, const char *why)
{
  for (guint i = 0; i < tx->rcpts->len; i++) {
    SmtpClientRcpt *r = tx->rcpts->pdata[i];

    if (r->status == SMTP_RCPT_PENDING || r->status == SMTP_RCPT_ACCEPTED)
      rcpt_decide(r, SMTP_RCPT_DEFER, why, "4.4.2");
  }
  tx->state = SMTP_TX_DONE;
}

/* ---------------------------------------------------------------- the message */

void
smtp_dot_stuffer_init(SmtpDotStuffer *d)
{
  *d = (SmtpDotStuffer) { .at_line_start = TRUE };
}

void
smtp_dot_stuffer_feed(SmtpDotStuffer *d, const char *in, gsize len, GString *out)
{
  for (gsize i = 0; i < len; i++) {
    char c = in[i];

    if (c == '\n') {
      if (!d->prev_cr)
        g_string_append_c(out, '\r');
      g_string_append_c(out, '\n');
      d->at_line_start = TRUE;
      d->prev_cr = FALSE;
      continue;
    }
    if (d->at_line_start && c == '.')
      g_string_append_c(out, '.');
    g_string_append_c(out, c);
    d->prev_cr = c == '\r';
    d->at_line_start = FALSE;
  }
}

void
smtp_dot_stuffer_finish(SmtpDotStuffer *d, GString *out)
{
  if (!d->at_line_start)
    g_string_append(out, d->prev_cr ? "\n" : "\r\n");
  g_string_append(out, ".\r\n");
  smtp_dot_stuffer_init(d);
}
