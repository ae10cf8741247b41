/* pop3-session.c - the POP3 conversation as a state machine
 * (pop3-session.h).
 *
 * AUTHORIZATION: USER then PASS (returned to the caller as
 * POP3_ACTION_LOGIN), STLS, CAPA, QUIT; APOP is refused (off, as by
 * default in Dovecot); AUTH is the daemon's (SASL exchanges), here only
 * "not supported yet" when asked.  TRANSACTION: STAT, LIST, RETR, DELE,
 * NOOP, RSET, TOP, UIDL, CAPA, QUIT.  Deletions are marks until QUIT in
 * TRANSACTION enters UPDATE (RFC 1939 6); a connection that ends any
 * other way changes nothing.  A deleted message is refused by every
 * later command.  Each error counts; at bad_command_limit the session ends.
 */
#include "pop3-session.h"

#include <string.h>

void
pop3_drop_free(Pop3Drop *drop)
{
  if (drop == NULL)
    return;
  pop3_maildir_free(drop->maildir);
  pop3_mbox_free(drop->mbox);
  g_free(drop);
}

static GPtrArray *
pop3_drop_messages(Pop3Drop *d)
{
  return d->maildir ? d->maildir->messages : d->mbox->messages;
}

static gboolean
pop3_drop_read(Pop3Drop *d, guint i, guint max_lines, GString *out, GError **error)
{
  return d->maildir ? pop3_maildir_read(d->maildir, i, max_lines, out, error)
                    : pop3_mbox_read(d->mbox, i, max_lines, out, error);
}

static gboolean
pop3_drop_commit(Pop3Drop *d, GError **error)
{
  return d->maildir ? pop3_maildir_commit(d->maildir, error) : pop3_mbox_commit(d->mbox, error);
}

void
pop3_session_init(Pop3Session *s)
{
  *s = (Pop3Session) { .state = POP3_STATE_AUTHORIZATION, .bad_command_limit = 10 };
}

static void
pop3_session_forget_password(Pop3Session *s)
{
  if (s->password) {
    memset(s->password, 0, strlen(s->password));
    g_clear_pointer(&s->password, g_free);
  }
}

void
pop3_session_clear(Pop3Session *s)
{
  pop3_session_forget_password(s);
  g_clear_pointer(&s->user, g_free);
  g_clear_pointer(&s->drop, pop3_drop_free);
}

void
pop3_session_greeting(Pop3Session *s, GString *out)
{
  g_string_append(out, "+OK Postern ready.\r\n");
}

/* An -ERR that counts; the last one allowed ends the session. */
static Pop3Action
pop3_error(Pop3Session *s, GString *out, const char *text)
{
  if (++s->bad_commands >= s->bad_command_limit && s->bad_command_limit > 0) {
    g_string_append(out, "-ERR Too many bad commands.\r\n");
    return POP3_ACTION_CLOSE;
  }
  g_string_append_printf(out, "-ERR %s\r\n", text);
  return POP3_ACTION_NONE;
}

static void
pop3_capa(Pop3Session *s, GString *out)
{
  g_string_append(out, "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n");
  if (s->state == POP3_STATE_AUTHORIZATION) {
    if (s->tls_active || s->plaintext_ok) {
      g_string_append(out, "USER\r\n");
      if (s->sasl_mechanisms && *s->sasl_mechanisms)
        g_string_append_printf(out, "SASL %s\r\n", s->sasl_mechanisms);
    }
    if (s->tls_available && !s->tls_active)
      g_string_append(out, "STLS\r\n");
  }
  g_string_append(out, ".\r\n");
}

/* The message a number names, or an error response. */
static Pop3Message *
pop3_message_arg(Pop3Session *s, const char *arg, guint *index, GString *out, Pop3Action *act)
{
  GPtrArray *msgs = pop3_drop_messages(s->drop);
  Pop3Message *msg;
  guint n;

  if (!pop3_parse_msgno(arg, G_MAXUINT, &n)) {
    *act = pop3_error(s, out, "Invalid message number");
    return NULL;
  }
  if (n > msgs->len) {
    g_autofree char *text = g_strdup_printf("There's no message %u.", n);
    *act = pop3_error(s, out, text);
    return NULL;
  }
  msg = g_ptr_array_index(msgs, n - 1);
  if (msg->deleted) {
    *act = pop3_error(s, out, "Message is deleted.");
    return NULL;
  }
  *index = n - 1;
  return msg;
}

static Pop3Action
pop3_authorization(Pop3Session *s, const Pop3Line *l, GString *out)
{
  switch (l->cmd->id) {
  case POP3_CMD_USER:
    if (!s->tls_active && !s->plaintext_ok)
      return pop3_error(s, out, "[AUTH] Plaintext authentication disallowed on non-secure "
                                "(SSL/TLS) connections.");
    g_free(s->user);
    s->user = g_strdup(l->args[0]);
    g_string_append(out, "+OK\r\n");
    return POP3_ACTION_NONE;
  case POP3_CMD_PASS:
    if (!s->tls_active && !s->plaintext_ok)
      return pop3_error(s, out, "[AUTH] Plaintext authentication disallowed on non-secure "
                                "(SSL/TLS) connections.");
    if (s->user == NULL)
      return pop3_error(s, out, "No username given.");
    pop3_session_forget_password(s);
    s->password = g_strdup(l->rest);
    return POP3_ACTION_LOGIN;
  case POP3_CMD_STLS:
    if (s->tls_active)
      return pop3_error(s, out, "TLS is already active.");
    if (!s->tls_available)
      return pop3_error(s, out, "TLS support isn't enabled.");
    g_string_append(out, "+OK Begin TLS negotiation now.\r\n");
    return POP3_ACTION_STLS;
  case POP3_CMD_APOP:
    return pop3_error(s, out, "APOP is not enabled.");
  case POP3_CMD_AUTH:
    return pop3_error(s, out, "Unsupported authentication mechanism.");
  default:
    return pop3_error(s, out, "Unknown command.");
  }
}

static void
pop3_list_line(GString *out, guint n, const Pop3Message *msg, gboolean uidl)
{
  if (uidl)
    g_string_append_printf(out, "%u %s\r\n", n, msg->uidl);
  else
    g_string_append_printf(out, "%u %" G_GUINT64_FORMAT "\r\n", n, msg->octets);
}

static Pop3Action
pop3_transaction(Pop3Session *s, const Pop3Line *l, GString *out)
{
  GPtrArray *msgs = pop3_drop_messages(s->drop);
  Pop3Action act = POP3_ACTION_NONE;
  Pop3Message *msg;
  guint i, lines;

  switch (l->cmd->id) {
  case POP3_CMD_STAT: {
    guint count = 0;
    guint64 octets = 0;

    for (i = 0; i < msgs->len; i++) {
      msg = g_ptr_array_index(msgs, i);
      if (!msg->deleted) {
        count++;
        octets += msg->octets;
      }
    }
    g_string_append_printf(out, "+OK %u %" G_GUINT64_FORMAT "\r\n", count, octets);
    return act;
  }
  case POP3_CMD_LIST:
  case POP3_CMD_UIDL: {
    gboolean uidl = l->cmd->id == POP3_CMD_UIDL;

    if (l->n_args == 1) {
      if ((msg = pop3_message_arg(s, l->args[0], &i, out, &act)) == NULL)
        return act;
      g_string_append(out, "+OK ");
      pop3_list_line(out, i + 1, msg, uidl);
      return act;
    }
    if (uidl) {
      g_string_append(out, "+OK\r\n");
    } else {
      guint count = 0;
      for (i = 0; i < msgs->len; i++)
        count += !((Pop3Message *) g_ptr_array_index(msgs, i))->deleted;
      g_string_append_printf(out, "+OK %u messages:\r\n", count);
    }
    for (i = 0; i < msgs->len; i++) {
      msg = g_ptr_array_index(msgs, i);
      if (!msg->deleted)
        pop3_list_line(out, i + 1, msg, uidl);
    }
    g_string_append(out, ".\r\n");
    return act;
  }
  case POP3_CMD_RETR:
  case POP3_CMD_TOP: {
    g_autoptr(GError) error = NULL;
    gsize at;

    if ((msg = pop3_message_arg(s, l->args[0], &i, out, &act)) == NULL)
      return act;
    lines = G_MAXUINT;
    if (l->cmd->id == POP3_CMD_TOP && !pop3_parse_count(l->args[1], &lines))
      return pop3_error(s, out, "Invalid number of lines");
    at = out->len;
    if (l->cmd->id == POP3_CMD_RETR)
      g_string_append_printf(out, "+OK %" G_GUINT64_FORMAT " octets\r\n", msg->octets);
    else
      g_string_append(out, "+OK\r\n");
    if (!pop3_drop_read(s->drop, i, lines, out, &error)) {
      g_string_truncate(out, at);
      return pop3_error(s, out, "[SYS/TEMP] The message cannot be read now.");
    }
    if (l->cmd->id == POP3_CMD_RETR)
      msg->retrieved = TRUE;
    return act;
  }
  case POP3_CMD_DELE:
    if ((msg = pop3_message_arg(s, l->args[0], &i, out, &act)) == NULL)
      return act;
    msg->deleted = TRUE;
    g_string_append(out, "+OK Marked to be deleted.\r\n");
    return act;
  case POP3_CMD_RSET:
    for (i = 0; i < msgs->len; i++)
      ((Pop3Message *) g_ptr_array_index(msgs, i))->deleted = FALSE;
    g_string_append(out, "+OK\r\n");
    return act;
  case POP3_CMD_NOOP:
    g_string_append(out, "+OK\r\n");
    return act;
  default:
    return pop3_error(s, out, "Unknown command.");
  }
}

Pop3Action
pop3_session_line(Pop3Session *s, char *line, gsize len, GString *out)
{
  Pop3Line l;

  switch (pop3_parse_line(line, len, &l)) {
  case POP3_PARSE_OK:
    break;
  case POP3_PARSE_EMPTY:
  case POP3_PARSE_NUL:
    return pop3_error(s, out, "Unknown command.");
  case POP3_PARSE_TOO_LONG:
    return pop3_error(s, out, "Line too long.");
  case POP3_PARSE_BAD_ARGS:
    return pop3_error(s, out, l.cmd->id == POP3_CMD_USER || l.cmd->id == POP3_CMD_PASS
                                  ? "Missing argument." : "Invalid arguments.");
  }
  if (l.cmd->id == POP3_CMD_UNKNOWN || !(l.cmd->states & s->state))
    return pop3_error(s, out, "Unknown command.");
  if (l.cmd->id == POP3_CMD_CAPA) {
    pop3_capa(s, out);
    return POP3_ACTION_NONE;
  }
  if (l.cmd->id == POP3_CMD_QUIT) {
    g_autoptr(GError) error = NULL;

    if (s->state == POP3_STATE_TRANSACTION) {
      s->state = POP3_STATE_UPDATE;
      if (!pop3_drop_commit(s->drop, &error)) {
        g_string_append(out, "-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n");
        return POP3_ACTION_CLOSE;
      }
      s->updated = TRUE;
    }
    g_string_append(out, "+OK Logging out.\r\n");
    return POP3_ACTION_CLOSE;
  }
  return s->state == POP3_STATE_AUTHORIZATION ? pop3_authorization(s, &l, out)
                                              : pop3_transaction(s, &l, out);
}

void
pop3_session_login(Pop3Session *s, Pop3Drop *drop, const char *why, GString *out)
{
  pop3_session_forget_password(s);
  if (drop == NULL) {
    g_clear_pointer(&s->user, g_free);
    if (why != NULL)
      g_string_append_printf(out, "-ERR %s\r\n", why);
    else
      pop3_error(s, out, "[AUTH] Authentication failed.");
    return;
  }
  s->drop = drop;
  s->state = POP3_STATE_TRANSACTION;
  g_string_append(out, "+OK Logged in.\r\n");
}

void
pop3_session_tls_started(Pop3Session *s)
{
  s->tls_active = TRUE;
  g_clear_pointer(&s->user, g_free);
  pop3_session_forget_password(s);
}
