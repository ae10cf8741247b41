/* smtpd-commands.c - the SMTP command table and its handlers (HELO, EHLO,
 * MAIL, RCPT, DATA, STARTTLS, RSET, NOOP, VRFY, HELP, QUIT; AUTH is in
 * smtpd-auth.c, BDAT in smtpd-bdat.c), the EHLO keywords and
 * smtpd_discard_ehlo_keywords.  Reply texts follow Postfix's smtpd word
 * for word.  Handlers only check and reply; policy is in smtpd-policy.c,
 * the DATA phase in smtpd-data.c.
 */
#include <string.h>

#include "address.h"
#include "log.h"
#include "smtp-params.h"
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
  [SMTPD_CMD_BDAT] = { "bdat", "BDAT", smtpd_bdat_command, CMD_NEED_HELO | CMD_NEED_TLS },
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
  /* Before the split, which cuts the line with NULs (a NUL is bad syntax). */
  gboolean utf8_ok = !s->settings->smtputf8_enable || memchr(line, '\0', len) != NULL ||
                     g_utf8_validate(line, len, NULL);
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

  if (parsed && !utf8_ok) {
    /* As Postfix once SMTPUTF8 is on: every command line is UTF-8.  A
     * BDAT line that is not is malformed, and its chunk must not be read
     * as commands: that ends the session. */
    if (id == SMTPD_CMD_BDAT)
      smtpd_session_close_with(s, "521 5.5.4 Syntax: BDAT count [LAST]");
    else
      smtpd_session_reply_line(s, "500 5.5.2 Error: bad UTF-8 syntax");
  } else if (id == SMTPD_CMD_UNKNOWN) {
    smtpd_session_reply_line(s, parsed ? "502 5.5.2 Error: command not recognized"
                                       : "500 5.5.2 Error: bad syntax");
  } else {
    if ((cmd->flags & CMD_JUNK) && ++s->junk > s->settings->junk_command_limit)
      s->errors++;
    /* RFC 2920: these end a pipelined group (and nothing may follow HELO
     * at all); input already waiting means the client did not wait.  BDAT
     * is followed by its chunk by design. */
    if (s->in_pos < s->in_len && id != SMTPD_CMD_BDAT &&
        (id == SMTPD_CMD_EHLO || id == SMTPD_CMD_DATA || id == SMTPD_CMD_HELO || !s->esmtp))
      s->ill_pipelining = TRUE;
    g_autofree char *denied = NULL;
    const char *refuse = NULL;
    if (s->access_denied != NULL && id != SMTPD_CMD_QUIT)
      /* RFC 5321 3.1: after a 554 greeting, 503 to everything but QUIT. */
      refuse = denied = g_strdup_printf("503 5.7.0 Error: access denied for %s", s->namaddr);
    else if ((cmd->flags & CMD_NEED_HELO) && s->settings->helo_required && s->helo == NULL)
      refuse = "503 5.5.1 Error: send HELO/EHLO first";
    else if ((cmd->flags & CMD_NEED_TLS) && smtpd_tls_required(s))
      refuse = "530 5.7.0 Must issue a STARTTLS command first";
    if (refuse != NULL && id == SMTPD_CMD_BDAT)
      smtpd_bdat_refuse(s, arg, refuse);   /* its chunk is read (and dropped) first */
    else if (refuse != NULL)
      smtpd_session_reply_line(s, refuse);
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

/* smtpd_discard_ehlo_keywords names, in EHLO order. */
static const struct {
  const char *name;
  guint bit;
} ehlo_names[] = {
  { "pipelining", SMTPD_EHLO_PIPELINING },
  { "size", SMTPD_EHLO_SIZE },
  { "vrfy", SMTPD_EHLO_VRFY },
  { "etrn", SMTPD_EHLO_ETRN },
  { "starttls", SMTPD_EHLO_STARTTLS },
  { "auth", SMTPD_EHLO_AUTH },
  { "enhancedstatuscodes", SMTPD_EHLO_ENHANCEDSTATUSCODES },
  { "8bitmime", SMTPD_EHLO_8BITMIME },
  { "dsn", SMTPD_EHLO_DSN },
  { "smtputf8", SMTPD_EHLO_SMTPUTF8 },
  { "chunking", SMTPD_EHLO_CHUNKING },
  { "silent-discard", SMTPD_EHLO_SILENT },
  { "silent_discard", SMTPD_EHLO_SILENT },   /* the spelling of older Postfix documents */
};

guint
smtpd_ehlo_mask(const char *const *names, GString *unknown)
{
  guint mask = 0;
  for (const char *const *n = names; n != NULL && *n != NULL; n++) {
    guint i;
    for (i = 0; i < G_N_ELEMENTS(ehlo_names); i++)
      if (g_ascii_strcasecmp(*n, ehlo_names[i].name) == 0)
        break;
    if (i < G_N_ELEMENTS(ehlo_names))
      mask |= ehlo_names[i].bit;
    else if (unknown != NULL)
      g_string_append_printf(unknown, " \"%s\"", *n);
  }
  return mask;
}

/* "CHUNKING DSN" for the log line (Postfix's str_ehlo_mask). */
static char *
ehlo_mask_names(guint mask)
{
  GString *out = g_string_new(NULL);
  for (guint i = 0; i < G_N_ELEMENTS(ehlo_names); i++) {
    if (!(mask & ehlo_names[i].bit) || ehlo_names[i].bit == SMTPD_EHLO_SILENT)
      continue;
    if (out->len > 0)
      g_string_append_c(out, ' ');
    for (const char *c = ehlo_names[i].name; *c; c++)
      g_string_append_c(out, g_ascii_toupper(*c));
  }
  return g_string_free(out, FALSE);
}

static void
helo_reply(SmtpdSession *s, const char *reject)
{
  const SmtpdSettings *st = s->settings;
  guint discard = st->ehlo_discard;
  if (reject != NULL) {
    g_clear_pointer(&s->helo, g_free);   /* a rejected HELO leaves no name behind */
    smtpd_session_reply_line(s, reject);
    return;
  }
  if (!s->esmtp) {
    smtpd_session_reply(s, "250 %s", st->myhostname);
    return;
  }
  /* In Postfix's order; what smtpd_discard_ehlo_keywords names is left
   * out (STARTTLS and AUTH know it themselves). */
  g_autoptr(GPtrArray) kw = g_ptr_array_new_with_free_func(g_free);
  if (!(discard & SMTPD_EHLO_PIPELINING))
    g_ptr_array_add(kw, g_strdup("PIPELINING"));
  if (!(discard & SMTPD_EHLO_SIZE))
    g_ptr_array_add(kw, st->message_size_limit > 0
                        ? g_strdup_printf("SIZE %" G_GINT64_FORMAT, st->message_size_limit)
                        : g_strdup("SIZE"));
  if (!st->disable_vrfy && !(discard & SMTPD_EHLO_VRFY))
    g_ptr_array_add(kw, g_strdup("VRFY"));
  if (smtpd_tls_offered(s))
    g_ptr_array_add(kw, g_strdup("STARTTLS"));
  g_autofree char *mechs = smtpd_auth_mechanisms(s);
  if (mechs != NULL) {
    g_ptr_array_add(kw, g_strdup_printf("AUTH %s", mechs));
    if (st->sasl_broken_clients)
      g_ptr_array_add(kw, g_strdup_printf("AUTH=%s", mechs));   /* for Outlook Express and its kin */
  }
  if (!(discard & SMTPD_EHLO_ENHANCEDSTATUSCODES))
    g_ptr_array_add(kw, g_strdup("ENHANCEDSTATUSCODES"));
  if (!(discard & SMTPD_EHLO_8BITMIME))
    g_ptr_array_add(kw, g_strdup("8BITMIME"));
  if (!(discard & SMTPD_EHLO_DSN))
    g_ptr_array_add(kw, g_strdup("DSN"));
  if (st->smtputf8_enable && !(discard & SMTPD_EHLO_SMTPUTF8))
    g_ptr_array_add(kw, g_strdup("SMTPUTF8"));
  if (!(discard & SMTPD_EHLO_CHUNKING))
    g_ptr_array_add(kw, g_strdup("CHUNKING"));
  if ((discard & ~SMTPD_EHLO_SILENT) && !(discard & SMTPD_EHLO_SILENT)) {
    g_autofree char *names = ehlo_mask_names(discard);
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_INFO, NULL, f, 1, "discarding EHLO keywords: %s", names);
  }
  smtpd_session_reply(s, "%s%s", kw->len > 0 ? "250-" : "250 ", st->myhostname);
  for (guint i = 0; i < kw->len; i++)
    smtpd_session_reply(s, "250%c%s", i + 1 < kw->len ? '-' : ' ', (char *)kw->pdata[i]);
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

/* What the parser may accept in this session (SMTP_PARSE_*). */
static guint
parse_flags(const SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;
  guint flags = 0;
  if (!(st->ehlo_discard & SMTPD_EHLO_DSN))
    flags |= SMTP_PARSE_DSN;
  /* SMTPUTF8 is an EHLO extension: after HELO it is an unknown option. */
  if (st->smtputf8_enable && !(st->ehlo_discard & SMTPD_EHLO_SMTPUTF8) && s->esmtp)
    flags |= SMTP_PARSE_SMTPUTF8;
  if (s->smtputf8)
    flags |= SMTP_PARSE_UTF8_OK;
  /* sendmail never says SMTPUTF8: for a local submission a UTF-8 address
   * sets it (Postfix's default smtputf8_autodetect_classes = sendmail). */
  if (!st->strict_smtputf8 || s->local_submit)
    flags |= SMTP_PARSE_UTF8_LAX;
  return flags;
}

/* Postfix's SMTPUTF8 autodetection for local submissions. */
static void
smtputf8_autodetect(SmtpdSession *s, const char *address)
{
  if (s->local_submit && s->settings->smtputf8_enable && smtp_has_8bit(address))
    s->smtputf8 = TRUE;
}

static void
cmd_mail(SmtpdSession *s, char *arg)
{
  const SmtpdSettings *st = s->settings;
  if (s->bdat_active) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: MAIL after BDAT");
    return;
  }
  if (s->state != SMTPD_STATE_READY) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: nested MAIL command");
    return;
  }
  SmtpPathArg path = { 0 };
  g_autofree char *reply = NULL;
  if (!smtp_parse_mail(arg, parse_flags(s), &path, &reply)) {
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
  s->smtputf8 = path.smtputf8;
  smtputf8_autodetect(s, s->sender_orig);
  s->dsn_ret = path.ret;
  s->dsn_envid = g_steal_pointer(&path.envid);
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
    s->rcpt_notify = g_array_new(FALSE, FALSE, sizeof(guint));
    s->rcpt_orcpt = g_ptr_array_new_with_free_func(g_free);
  }
  g_ptr_array_add(s->rcpt_addr, addr);
  g_ptr_array_add(s->rcpt_orig, orig);
  g_array_append_val(s->rcpt_notify, s->pending_notify);
  g_ptr_array_add(s->rcpt_orcpt, g_steal_pointer(&s->pending_orcpt));
  s->pending_notify = 0;
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
  if (s->bdat_active) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: RCPT after BDAT");
    return;
  }
  SmtpPathArg path = { 0 };
  g_autofree char *reply = NULL;
  if (!smtp_parse_rcpt(arg, parse_flags(s), &path, &reply)) {
    smtpd_session_reply_line(s, reply);
    return;
  }
  smtputf8_autodetect(s, path.address);
  /* Kept for smtpd_commands_rcpt_accept (one RCPT is checked at a time). */
  s->pending_notify = path.notify;
  g_free(s->pending_orcpt);
  s->pending_orcpt = g_steal_pointer(&path.orcpt);
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
  if (s->bdat_active) {
    /* RFC 3030 3: BDAT and DATA never in one transaction. */
    smtpd_session_reply_line(s, "503 5.5.1 Error: DATA after BDAT");
    return;
  }
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
  s->data_tried = TRUE;   /* whatever the restrictions say: no BDAT in this transaction */
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
  smtpd_session_reply_line(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
}

static void
cmd_quit(SmtpdSession *s, char *arg)
{
  smtpd_session_close_with(s, "221 2.0.0 Bye");
}
