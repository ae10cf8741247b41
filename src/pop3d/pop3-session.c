/* pop3-session.c - the POP3 conversation as a state machine
 * (pop3-session.h).
 *
 * AUTHORIZATION: USER then PASS (returned to the caller as
 * POP3_ACTION_LOGIN), STLS, CAPA, QUIT; APOP is refused (off, as by
 * default in Dovecot); AUTH PLAIN and LOGIN (RFC 5034) are decoded
 * here into the same user and password as USER/PASS, so that the
 * daemon checks every login one way (docs/pop3d.md says why only those
 * two).  TRANSACTION: STAT, LIST, RETR, DELE,
 * NOOP, RSET, TOP, UIDL, CAPA, QUIT.  Deletions are marks until QUIT in
 * TRANSACTION enters UPDATE (RFC 1939 6); a connection that ends any
 * other way changes nothing.  A deleted message is refused by every
 * later command.  Each error counts; at bad_command_limit the session ends.
 */
#include "pop3-session.h"

#include <string.h>

#include "auth-sasl.h"

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

void
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
  s->auth_step = POP3_AUTH_NONE;
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
  if (s->implementation && *s->implementation)
    g_string_append_printf(out, "IMPLEMENTATION %s\r\n", s->implementation);
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

static const char pop3_plaintext_refused[] =
    "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";

/* TRUE when the session may offer mechanism mech ("PLAIN", "LOGIN"). */
static gboolean
pop3_mech_offered(const Pop3Session *s, const char *mech)
{
  g_auto(GStrv) mechs = g_strsplit(s->sasl_mechanisms ? s->sasl_mechanisms : "", " ", -1);

  for (guint i = 0; mechs[i]; i++)
    if (*mechs[i] && g_ascii_strcasecmp(mechs[i], mech) == 0)
      return TRUE;
  return FALSE;
}

/* The login of an exchange: user and password set, or a failure. */
static Pop3Action
pop3_auth_login(Pop3Session *s, char *user, char *password, GString *out)
{
  s->auth_step = POP3_AUTH_NONE;
  g_free(s->user);
  s->user = user;
  pop3_session_forget_password(s);
  s->password = password;
  if (s->user == NULL || *s->user == '\0' || s->password == NULL) {
    pop3_session_forget_password(s);
    g_clear_pointer(&s->user, g_free);
    return pop3_error(s, out, "[AUTH] Authentication failed.");
  }
  return POP3_ACTION_LOGIN;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd.  A different authzid (a
 * proxy login) is refused, as smtpd refuses it. */
static Pop3Action
pop3_auth_plain(Pop3Session *s, const char *b64, GString *out)
{
  gsize len = 0;
  g_autofree guchar *data = auth_sasl_decode(b64, &len);
  const char *authz, *authc, *pass, *end;

  s->auth_step = POP3_AUTH_NONE;
  if (data == NULL)
    return pop3_error(s, out, "Invalid base64 data.");
  end = (const char *) data + len;
  authz = (const char *) data;
  authc = memchr(authz, '\0', len);
  pass = authc ? memchr(authc + 1, '\0', end - authc - 1) : NULL;
  if (pass == NULL || memchr(pass + 1, '\0', end - pass - 1) != NULL) {
    memset(data, 0, len);
    return pop3_auth_login(s, NULL, NULL, out);
  }
  authc++;
  pass++;
  if (*authz && strcmp(authz, authc) != 0) {
    memset(data, 0, len);
    return pop3_auth_login(s, NULL, NULL, out);
  }
  {
    char *user = g_strdup(authc), *password = g_strndup(pass, end - pass);
    memset(data, 0, len);
    return pop3_auth_login(s, user, password, out);
  }
}

/* One decoded LOGIN answer (no NUL inside); NULL when malformed. */
static char *
pop3_auth_text(const char *b64, gboolean *bad_base64)
{
  gsize len = 0;
  g_autofree guchar *data = auth_sasl_decode(b64, &len);
  char *text;

  *bad_base64 = data == NULL;
  if (data == NULL || memchr(data, '\0', len) != NULL)
    return NULL;
  text = g_strndup((const char *) data, len);
  memset(data, 0, len);
  return text;
}

static Pop3Action
pop3_auth_start(Pop3Session *s, const Pop3Line *l, GString *out)
{
  if (l->n_args == 0) {
    g_auto(GStrv) mechs = g_strsplit(s->sasl_mechanisms ? s->sasl_mechanisms : "", " ", -1);

    g_string_append(out, "+OK\r\n");
    for (guint i = 0; mechs[i]; i++)
      if (*mechs[i])
        g_string_append_printf(out, "%s\r\n", mechs[i]);
    g_string_append(out, ".\r\n");
    return POP3_ACTION_NONE;
  }
  if (!pop3_mech_offered(s, l->args[0]))
    return pop3_error(s, out, "Unsupported authentication mechanism.");
  if (!s->tls_active && !s->plaintext_ok)
    return pop3_error(s, out, pop3_plaintext_refused);
  s->method = g_ascii_strcasecmp(l->args[0], "PLAIN") == 0 ? "PLAIN" : "LOGIN";
  if (strcmp(s->method, "PLAIN") == 0) {
    if (l->n_args == 2)
      return pop3_auth_plain(s, strcmp(l->args[1], "=") == 0 ? "" : l->args[1], out);
    s->auth_step = POP3_AUTH_PLAIN;
    g_string_append(out, "+ \r\n");
    return POP3_ACTION_NONE;
  }
  if (l->n_args == 2) {
    gboolean bad;
    char *user = pop3_auth_text(strcmp(l->args[1], "=") == 0 ? "" : l->args[1], &bad);

    if (user == NULL)
      return bad ? pop3_error(s, out, "Invalid base64 data.") : pop3_auth_login(s, NULL, NULL, out);
    g_free(s->user);
    s->user = user;
    s->auth_step = POP3_AUTH_LOGIN_PASS;
    g_string_append(out, "+ UGFzc3dvcmQ6\r\n");
    return POP3_ACTION_NONE;
  }
  s->auth_step = POP3_AUTH_LOGIN_USER;
  g_string_append(out, "+ VXNlcm5hbWU6\r\n");
  return POP3_ACTION_NONE;
}

/* The client's answer to "+ ...". */
static Pop3Action
pop3_auth_continue(Pop3Session *s, char *line, gsize len, GString *out)
{
  Pop3AuthStep step = s->auth_step;
  gboolean bad = FALSE;
  char *text;

  s->auth_step = POP3_AUTH_NONE;
  if (memchr(line, '\0', len) != NULL)
    return pop3_error(s, out, "Invalid base64 data.");
  if (strcmp(line, "*") == 0) {
    g_clear_pointer(&s->user, g_free);
    return pop3_error(s, out, "Authentication aborted.");
  }
  if (step == POP3_AUTH_PLAIN)
    return pop3_auth_plain(s, line, out);
  text = pop3_auth_text(line, &bad);
  if (text == NULL) {
    g_clear_pointer(&s->user, g_free);
    return bad ? pop3_error(s, out, "Invalid base64 data.") : pop3_auth_login(s, NULL, NULL, out);
  }
  if (step == POP3_AUTH_LOGIN_USER) {
    g_free(s->user);
    s->user = text;
    s->auth_step = POP3_AUTH_LOGIN_PASS;
    g_string_append(out, "+ UGFzc3dvcmQ6\r\n");
    return POP3_ACTION_NONE;
  }
  return pop3_auth_login(s, g_steal_pointer(&s->user), text, out);
}

static Pop3Action
pop3_authorization(Pop3Session *s, const Pop3Line *l, GString *out)
{
  switch (l->cmd->id) {
  case POP3_CMD_USER:
    if (!s->tls_active && !s->plaintext_ok)
      return pop3_error(s, out, pop3_plaintext_refused);
    g_free(s->user);
    s->user = g_strdup(l->args[0]);
    g_string_append(out, "+OK\r\n");
    return POP3_ACTION_NONE;
  case POP3_CMD_PASS:
    if (!s->tls_active && !s->plaintext_ok)
      return pop3_error(s, out, pop3_plaintext_refused);
    if (s->user == NULL)
      return pop3_error(s, out, "No username given.");
    pop3_session_forget_password(s);
    s->password = g_strdup(l->rest);
    s->method = "USER";
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
    return pop3_auth_start(s, l, out);
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

  if (s->auth_step != POP3_AUTH_NONE)
    return pop3_auth_continue(s, line, len, out);
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
