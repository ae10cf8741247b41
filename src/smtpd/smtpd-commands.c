/* smtpd-commands.c - the SMTP command table and its handlers (HELO, EHLO,
 * MAIL, RCPT, DATA, STARTTLS, RSET, NOOP, VRFY, HELP, QUIT; AUTH is in
 * smtpd-auth.c).  Reply texts follow
 * Postfix's smtpd word for word.  Handlers only check and reply; policy is
 * in smtpd-policy.c, the DATA phase in smtpd-data.c.
 */
#include <string.h>

#include "address.h"
#include "log.h"
#include "smtpd.h"

typedef void (*SmtpdHandler)(SmtpdSession *s, char *arg);

enum {
  CMD_JUNK = 1 << 0,        /* counts toward smtpd_junk_command_limit */
  CMD_NEED_HELO = 1 << 1,   /* refused before HELO/EHLO when smtpd_helo_required */
  CMD_NEED_TLS = 1 << 2,    /* refused before STARTTLS when smtpd_tls_security_level = encrypt */
};

typedef struct {
  const char *name;         /* lower case, as in the disconnect log line */
  const char *verb;         /* upper case, as in "lost connection after ..." */
  SmtpdHandler handler;
  guint flags;
} SmtpdCommand;

static void cmd_helo(SmtpdSession *s, char *arg);
static void cmd_ehlo(SmtpdSession *s, char *arg);
static void cmd_mail(SmtpdSession *s, char *arg);
static void cmd_rcpt(SmtpdSession *s, char *arg);
static void cmd_data(SmtpdSession *s, char *arg);
static void cmd_starttls(SmtpdSession *s, char *arg);
static void cmd_rset(SmtpdSession *s, char *arg);
static void cmd_noop(SmtpdSession *s, char *arg);
static void cmd_vrfy(SmtpdSession *s, char *arg);
static void cmd_help(SmtpdSession *s, char *arg);
static void cmd_quit(SmtpdSession *s, char *arg);

static const SmtpdCommand commands[SMTPD_N_CMDS] = {
  [SMTPD_CMD_HELO] = { "helo", "HELO", cmd_helo, 0 },
  [SMTPD_CMD_EHLO] = { "ehlo", "EHLO", cmd_ehlo, 0 },
  [SMTPD_CMD_STARTTLS] = { "starttls", "STARTTLS", cmd_starttls, 0 },
  [SMTPD_CMD_AUTH] = { "auth", "AUTH", smtpd_auth_command, CMD_NEED_TLS },
  [SMTPD_CMD_MAIL] = { "mail", "MAIL", cmd_mail, CMD_NEED_HELO | CMD_NEED_TLS },
  [SMTPD_CMD_RCPT] = { "rcpt", "RCPT", cmd_rcpt, CMD_NEED_HELO | CMD_NEED_TLS },
  [SMTPD_CMD_DATA] = { "data", "DATA", cmd_data, CMD_NEED_HELO | CMD_NEED_TLS },
  [SMTPD_CMD_RSET] = { "rset", "RSET", cmd_rset, CMD_JUNK },
  [SMTPD_CMD_NOOP] = { "noop", "NOOP", cmd_noop, CMD_JUNK },
  [SMTPD_CMD_VRFY] = { "vrfy", "VRFY", cmd_vrfy, CMD_JUNK | CMD_NEED_HELO | CMD_NEED_TLS },
  [SMTPD_CMD_HELP] = { "help", "HELP", cmd_help, CMD_JUNK },
  [SMTPD_CMD_QUIT] = { "quit", "QUIT", cmd_quit, 0 },
  [SMTPD_CMD_UNKNOWN] = { "unknown", "UNKNOWN", NULL, 0 },
};

const char *
smtpd_command_name(SmtpdCmdId id)
{
  return commands[id].name;
}

void
smtpd_commands_execute(SmtpdSession *s, char *line, gsize len)
{
  char *verb = NULL, *arg = NULL;
  SmtpdCmdId id = SMTPD_CMD_UNKNOWN;
  gboolean parsed = smtp_parse_split(line, len, &verb, &arg);

  if (log_debug_enabled())
    log_debug("%s: < %.*s", s->namaddr, (int)len, line);
  if (parsed) {
    for (guint i = 0; i < SMTPD_CMD_UNKNOWN; i++) {
      if (g_ascii_strcasecmp(verb, commands[i].name) == 0) {
        id = i;
        break;
      }
    }
  }
  const SmtpdCommand *cmd = &commands[id];
  s->cmd = id;
  s->cmd_failed = FALSE;
  s->last_cmd = cmd->verb;

  if (id == SMTPD_CMD_UNKNOWN) {
    smtpd_session_reply_line(s, parsed ? "502 5.5.2 Error: command not recognized"
                                       : "500 5.5.2 Error: bad syntax");
  } else {
    if ((cmd->flags & CMD_JUNK) && ++s->junk > s->settings->junk_command_limit)
      s->errors++;
    /* RFC 2920: these end a pipelined group (and nothing may follow HELO
     * at all); input already waiting means the client did not wait. */
    if (s->in_pos < s->in_len &&
        (id == SMTPD_CMD_EHLO || id == SMTPD_CMD_DATA || id == SMTPD_CMD_HELO || !s->esmtp))
      s->ill_pipelining = TRUE;
    if (s->access_denied != NULL && id != SMTPD_CMD_QUIT)
      /* RFC 5321 3.1: after a 554 greeting, 503 to everything but QUIT. */
      smtpd_session_reply(s, "503 5.7.0 Error: access denied for %s", s->namaddr);
    else if ((cmd->flags & CMD_NEED_HELO) && s->settings->helo_required && s->helo == NULL)
      smtpd_session_reply_line(s, "503 5.5.1 Error: send HELO/EHLO first");
    else if ((cmd->flags & CMD_NEED_TLS) && smtpd_tls_required(s))
      smtpd_session_reply_line(s, "530 5.7.0 Must issue a STARTTLS command first");
    else
      cmd->handler(s, arg);
  }
  if (s->wait == SMTPD_WAIT_NONE)
    smtpd_session_command_done(s);
}

char *
smtpd_commands_stats(const SmtpdSession *s)
{
  GString *str = g_string_new(NULL);
  guint ok = 0, total = 0;
  for (guint i = 0; i < SMTPD_N_CMDS; i++) {
    if (s->cmd_total[i] == 0)
      continue;
    ok += s->cmd_ok[i];
    total += s->cmd_total[i];
    if (s->cmd_ok[i] == s->cmd_total[i])
      g_string_append_printf(str, "%s=%u ", commands[i].name, s->cmd_ok[i]);
    else
      g_string_append_printf(str, "%s=%u/%u ", commands[i].name, s->cmd_ok[i], s->cmd_total[i]);
  }
  if (ok == total)
    g_string_append_printf(str, "commands=%u", total);
  else
    g_string_append_printf(str, "commands=%u/%u", ok, total);
  return g_string_free(str, FALSE);
}

/* HELO and EHLO: remember the name, reset any transaction. */
static gboolean
helo_common(SmtpdSession *s, char *arg, const char *verb)
{
  if (*arg == '\0') {
    /* No enhanced code: RFC 2034 exempts replies to HELO and EHLO (Postfix). */
    smtpd_session_reply(s, "501 Syntax: %s hostname", verb);
    return FALSE;
  }
  smtpd_session_reset_transaction(s);
  g_free(s->helo);
  /* As Postfix: several words are joined with one space, then anything
   * unprintable and the characters that would change the meaning of a
   * Received: or log line (space included) become '?'. */
  g_auto(GStrv) words = g_strsplit_set(arg, " \t", -1);
  GString *name = g_string_new(NULL);
  for (char **w = words; *w != NULL; w++) {
    if (**w == '\0')
      continue;
    if (name->len > 0)
      g_string_append_c(name, ' ');
    g_string_append(name, *w);
  }
  s->helo = g_string_free(name, FALSE);
  for (char *p = s->helo; *p != '\0'; p++) {
    if ((guchar) *p < 0x21 || (guchar) *p > 0x7e || strchr("<>()\\\";@", *p) != NULL)
      *p = '?';
  }
  return TRUE;
}

static void helo_reply(SmtpdSession *s, const char *reject);

/* smtpd_delay_reject = no: smtpd_helo_restrictions decide the reply. */
static void
helo_check(SmtpdSession *s)
{
  if (s->settings->delay_reject ||
      !smtpd_policy_check_stage(s, SMTPD_STAGE_HELO, helo_reply))
    helo_reply(s, NULL);
}

static void
cmd_helo(SmtpdSession *s, char *arg)
{
  if (!helo_common(s, arg, "HELO"))
    return;
  s->esmtp = FALSE;
  helo_check(s);
}

static void
cmd_ehlo(SmtpdSession *s, char *arg)
{
  if (!helo_common(s, arg, "EHLO"))
    return;
  s->esmtp = TRUE;
  helo_check(s);
}

static void
helo_reply(SmtpdSession *s, const char *reject)
{
  const SmtpdSettings *st = s->settings;
  if (reject != NULL) {
    g_clear_pointer(&s->helo, g_free);   /* a rejected HELO leaves no name behind */
    smtpd_session_reply_line(s, reject);
    return;
  }
  if (!s->esmtp) {
    smtpd_session_reply(s, "250 %s", st->myhostname);
    return;
  }
  smtpd_session_reply(s, "250-%s", st->myhostname);
  smtpd_session_reply_line(s, "250-PIPELINING");
  if (st->message_size_limit > 0)
    smtpd_session_reply(s, "250-SIZE %" G_GINT64_FORMAT, st->message_size_limit);
  else
    smtpd_session_reply_line(s, "250-SIZE");
  if (!st->disable_vrfy)
    smtpd_session_reply_line(s, "250-VRFY");
  if (smtpd_tls_offered(s))
    smtpd_session_reply_line(s, "250-STARTTLS");
  g_autofree char *mechs = smtpd_auth_mechanisms(s);
  if (mechs != NULL) {
    smtpd_session_reply(s, "250-AUTH %s", mechs);
    if (st->sasl_broken_clients)
      smtpd_session_reply(s, "250-AUTH=%s", mechs);   /* for Outlook Express and its kin */
  }
  smtpd_session_reply_line(s, "250-ENHANCEDSTATUSCODES");
  smtpd_session_reply_line(s, "250 8BITMIME");
}

/* "user" -> "user@$myorigin" when append_at_myorigin (Postfix's
 * trivial-rewrite does this for addresses without a domain). */
static char *
complete_address(const SmtpdSettings *st, const char *addr)
{
  if (*addr == '\0' || !st->append_at_myorigin || address_at_sign(addr) != NULL)
    return g_strdup(addr);
  return g_strconcat(addr, "@", st->myorigin, NULL);
}

static void mail_reply(SmtpdSession *s, const char *reject);
static void mail_policy(SmtpdSession *s, const char *reject);

static void
cmd_mail(SmtpdSession *s, char *arg)
{
  const SmtpdSettings *st = s->settings;
  if (s->state != SMTPD_STATE_READY) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: nested MAIL command");
    return;
  }
  SmtpPathArg path = { 0 };
  g_autofree char *reply = NULL;
  if (!smtp_parse_mail(arg, &path, &reply)) {
    smtpd_session_reply_line(s, reply);
    return;
  }
  if (path.auth != NULL && !st->sasl_enable) {
    smtpd_session_reply_line(s, "503 5.7.4 Error: authentication disabled");
    smtp_path_arg_clear(&path);
    return;
  }
  if (st->message_size_limit > 0 && path.size > st->message_size_limit) {
    smtpd_session_reply_line(s, "552 5.3.4 Message size exceeds fixed limit");
    smtp_path_arg_clear(&path);
    return;
  }
  s->sender = complete_address(st, path.address);
  s->sender_orig = g_steal_pointer(&path.address);
  s->mail_size = path.size;
  s->body = path.body;
  g_clear_pointer(&path.auth, g_free);   /* accepted (RFC 4954 5); not relayed on yet */
  /* The local listener: may this login use this sender at all? */
  if (s->local_submit && smtpd_local_check_sender(s, mail_policy))
    return;
  mail_policy(s, NULL);
}

/* After local_login_sender_maps: the sender restrictions now
 * (smtpd_delay_reject = no) or at RCPT. */
static void
mail_policy(SmtpdSession *s, const char *reject)
{
  if (reject == NULL && !s->settings->delay_reject &&
      smtpd_policy_check_stage(s, SMTPD_STAGE_SENDER, mail_reply))
    return;
  mail_reply(s, reject);
}

/* After the sender restrictions (smtpd_delay_reject = no) or at once. */
static void
mail_reply(SmtpdSession *s, const char *reject)
{
  if (reject != NULL) {
    smtpd_session_reset_transaction(s);
    smtpd_session_reply_line(s, reject);
    return;
  }
  smtpd_session_enter_state(s, SMTPD_STATE_MAIL);
  smtpd_session_reply_line(s, "250 2.1.0 Ok");
}

void
smtpd_commands_rcpt_accept(SmtpdSession *s, char *addr, char *orig)
{
  if (s->rcpt_addr == NULL) {
    s->rcpt_addr = g_ptr_array_new_with_free_func(g_free);
    s->rcpt_orig = g_ptr_array_new_with_free_func(g_free);
  }
  g_ptr_array_add(s->rcpt_addr, addr);
  g_ptr_array_add(s->rcpt_orig, orig);
  smtpd_session_enter_state(s, SMTPD_STATE_RCPT);
  smtpd_session_reply_line(s, "250 2.1.5 Ok");
}

static void
cmd_rcpt(SmtpdSession *s, char *arg)
{
  const SmtpdSettings *st = s->settings;
  if (s->state != SMTPD_STATE_MAIL && s->state != SMTPD_STATE_RCPT) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: need MAIL command");
    return;
  }
  SmtpPathArg path = { 0 };
  g_autofree char *reply = NULL;
  if (!smtp_parse_rcpt(arg, &path, &reply)) {
    smtpd_session_reply_line(s, reply);
    return;
  }
  g_autofree char *orig = g_steal_pointer(&path.address);
  guint n = s->rcpt_addr != NULL ? s->rcpt_addr->len : 0;
  if (st->recipient_limit > 0 && n >= st->recipient_limit) {
    smtpd_session_reply_line(s, "452 4.5.3 Error: too many recipients");
    return;
  }
  char *addr = complete_address(st, orig);
  /* RFC 5321 4.5.1: "postmaster" without a domain must always be
   * accepted; Postfix applies no restriction to it. */
  if (g_ascii_strcasecmp(orig, "postmaster") == 0) {
    smtpd_commands_rcpt_accept(s, addr, g_steal_pointer(&orig));
    return;
  }
  /* The reply comes from the policy work item's callback. */
  smtpd_policy_check_rcpt(s, addr, g_steal_pointer(&orig));
}

/* After smtpd_data_restrictions: a reject leaves the transaction as it
 * is (Postfix), so the client may RSET, add recipients or try again. */
static void
data_checked(SmtpdSession *s, const char *reject)
{
  if (reject != NULL)
    smtpd_session_reply_line(s, reject);
  else
    smtpd_data_begin(s);
}

static void
cmd_data(SmtpdSession *s, char *arg)
{
  if (*arg != '\0') {
    smtpd_session_reply_line(s, "501 5.5.4 Syntax: DATA");
    return;
  }
  if (s->state == SMTPD_STATE_READY) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: need RCPT command");
    return;
  }
  if (s->state == SMTPD_STATE_MAIL) {
    smtpd_session_reply_line(s, "554 5.5.1 Error: no valid recipients");
    return;
  }
  if (!smtpd_policy_check_stage(s, SMTPD_STAGE_DATA, data_checked))
    smtpd_data_begin(s);
}

/* RFC 3207.  The handshake starts once the 220 is out (session_flush);
 * what the client pipelined after this line is dropped. */
static void
cmd_starttls(SmtpdSession *s, char *arg)
{
  if (*arg != '\0') {
    smtpd_session_reply_line(s, "501 5.5.4 Syntax: STARTTLS");
    return;
  }
  if (s->tls != NULL) {
    smtpd_session_reply_line(s, "554 5.5.1 Error: TLS already active");
    return;
  }
  if (!smtpd_tls_offered(s)) {
    smtpd_session_reply_line(s, "502 5.5.1 Error: command not implemented");
    return;
  }
  if (s->state != SMTPD_STATE_READY) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: MAIL transaction in progress");
    return;
  }
  smtpd_session_reply_line(s, "220 2.0.0 Ready to start TLS");
  s->tls_start = TRUE;
}

static void
cmd_rset(SmtpdSession *s, char *arg)
{
  if (*arg != '\0') {
    smtpd_session_reply_line(s, "501 5.5.4 Syntax: RSET");
    return;
  }
  smtpd_session_reset_transaction(s);
  smtpd_session_reply_line(s, "250 2.0.0 Ok");
}

static void
cmd_noop(SmtpdSession *s, char *arg)
{
  smtpd_session_reply_line(s, "250 2.0.0 Ok");
}

static void
cmd_vrfy(SmtpdSession *s, char *arg)
{
  if (s->settings->disable_vrfy) {
    smtpd_session_reply_line(s, "502 5.5.1 VRFY command is disabled");
    return;
  }
  if (*arg == '\0') {
    smtpd_session_reply_line(s, "501 5.5.4 Syntax: VRFY address");
    return;
  }
  /* Never disclose whether a user exists (no address harvesting):
   * RFC 5321 3.5.3 "cannot verify, but will accept and try". */
  smtpd_session_reply(s, "252 2.0.0 %s", arg);
}

static void
cmd_help(SmtpdSession *s, char *arg)
{
  smtpd_session_reply_line(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
}

static void
cmd_quit(SmtpdSession *s, char *arg)
{
  smtpd_session_close_with(s, "221 2.0.0 Bye");
}
