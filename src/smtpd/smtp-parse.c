/* smtp-parse.c - pure SMTP command-line parsing: line splitting, verb and
 * argument, MAIL/RCPT paths with ESMTP parameters (their values in
 * smtp-params.c).  Never does I/O and
 * never allocates on the success path of line splitting. */
#include <string.h>

#include "address.h"
#include "config.h"
#include "smtp-params.h"
#include "smtp-parse.h"

SmtpLineStatus
smtp_line_next(const char *buf, gsize len, gsize max, gboolean normalize, gsize *line_len,
               gsize *consumed)
{
  const char *lf = memchr(buf, '\n', len);
  *line_len = 0;
  *consumed = 0;

  if (lf == NULL) {
    /* A line that is already too long cannot become acceptable. */
    if (len > max + 1) {
      *consumed = len;
      return SMTP_LINE_TOO_LONG;
    }
    return SMTP_LINE_INCOMPLETE;
  }

  gsize end = lf - buf;
  gsize n = end;
  gboolean crlf = end > 0 && buf[end - 1] == '\r';
  if (crlf)
    n--;
  *consumed = end + 1;
  *line_len = n;

  if (n > max)
    return SMTP_LINE_TOO_LONG;
  if (!crlf && !normalize)
    return SMTP_LINE_BARE_LF;
  if (!normalize && memchr(buf, '\r', n) != NULL)
    return SMTP_LINE_BARE_CR;
  return SMTP_LINE_OK;
}

gboolean
smtp_parse_split(char *line, gsize len, char **verb, char **arg)
{
  if (memchr(line, '\0', len) != NULL)
    return FALSE;
  line[len] = '\0';

  char *p = line;
  while (*p == ' ' || *p == '\t')
    p++;
  *verb = p;
  while (*p != '\0' && *p != ' ' && *p != '\t')
    p++;
  if (p == *verb)
    return FALSE;
  if (*p != '\0')
    *p++ = '\0';
  while (*p == ' ' || *p == '\t')
    p++;
  char *e = p + strlen(p);
  while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
    *--e = '\0';
  *arg = p;
  return TRUE;
}

void
smtp_path_arg_clear(SmtpPathArg *arg)
{
  g_clear_pointer(&arg->address, g_free);
  g_clear_pointer(&arg->auth, g_free);
  g_clear_pointer(&arg->envid, g_free);
  g_clear_pointer(&arg->orcpt, g_free);
  arg->size = -1;
  arg->body = SMTP_BODY_NONE;
  arg->smtputf8 = FALSE;
  arg->ret = QUEUE_RET_DEFAULT;
  arg->notify = 0;
}

/* Strips "FROM:" / "TO:" (case-insensitive) and the blanks after it. */
static const char *
skip_keyword(const char *arg, const char *keyword)
{
  gsize n = strlen(keyword);
  if (g_ascii_strncasecmp(arg, keyword, n) != 0)
    return NULL;
  arg += n;
  while (*arg == ' ' || *arg == '\t')
    arg++;
  return *arg != '\0' ? arg : NULL;
}

#define REPLY_DSN_DISABLED "501 5.7.1 DSN support is disabled"

/* Refuses with line; FALSE. */
static gboolean
param_fail(char **reply, const char *line)
{
  *reply = g_strdup(line);
  return FALSE;
}

/* SIZE=: all digits. */
static gboolean
parse_size(const char *v, SmtpPathArg *out, char **reply)
{
  gint64 size = 0;
  if (*v == '\0')
    return param_fail(reply, "501 5.5.4 Bad message size syntax");
  for (; *v != '\0'; v++) {
    if (!g_ascii_isdigit(*v))
      return param_fail(reply, "501 5.5.4 Bad message size syntax");
    if (size > (G_MAXINT64 - (*v - '0')) / 10)
      /* All digits but more than any file can hold: Postfix's reply. */
      return param_fail(reply, "552 5.3.4 Message size exceeds file system imposed limit");
    size = size * 10 + (*v - '0');
  }
  out->size = size;
  return TRUE;
}

/* AUTH=: "<>" or an xtext mailbox (RFC 4954 5): printable ASCII, "+XX"
 * for "+", "=" and the rest; whether AUTH may be used is the caller's. */
static gboolean
parse_auth(const char *v, SmtpPathArg *out, char **reply)
{
  gboolean ok = *v != '\0';

  if (out->auth != NULL)
    return param_fail(reply, "503 5.5.4 Error: multiple AUTH= options");
  if (strcmp(v, "<>") != 0)
    for (const char *c = v; ok && *c; c++) {
      if (*c == '+')
        ok = g_ascii_isxdigit(c[1]) && g_ascii_isxdigit(c[2]) && (c += 2, TRUE);
      else
        ok = *c > ' ' && *c <= '~' && *c != '=';
    }
  if (!ok)
    return param_fail(reply, "501 5.5.4 Bad AUTH parameter value");
  out->auth = g_strdup(v);
  return TRUE;
}

/* Parses one "KEY=VALUE" (or "KEY") ESMTP parameter of MAIL. */
static gboolean
parse_mail_param(const char *param, guint flags, SmtpPathArg *out, char **reply)
{
  gboolean dsn = (flags & SMTP_PARSE_DSN) != 0;

  if (g_ascii_strncasecmp(param, "SIZE=", 5) == 0)
    return parse_size(param + 5, out, reply);
  if (g_ascii_strncasecmp(param, "BODY=", 5) == 0) {
    if (g_ascii_strcasecmp(param + 5, "8BITMIME") == 0)
      out->body = SMTP_BODY_8BITMIME;
    else if (g_ascii_strcasecmp(param + 5, "7BIT") == 0)
      out->body = SMTP_BODY_7BIT;
    else
      return param_fail(reply, "501 5.5.4 Bad BODY keyword syntax");
    return TRUE;
  }
  if (g_ascii_strncasecmp(param, "AUTH=", 5) == 0)
    return parse_auth(param + 5, out, reply);
  if ((flags & SMTP_PARSE_SMTPUTF8) && g_ascii_strcasecmp(param, "SMTPUTF8") == 0) {
    out->smtputf8 = TRUE;   /* RFC 6531 3.4; a repeat changes nothing (Postfix) */
    return TRUE;
  }
  if (g_ascii_strncasecmp(param, "RET=", 4) == 0) {
    if (!dsn)
      return param_fail(reply, REPLY_DSN_DISABLED);
    if (out->ret != QUEUE_RET_DEFAULT || !smtp_param_ret(param + 4, &out->ret))
      return param_fail(reply, "501 5.5.4 Bad RET parameter syntax");
    return TRUE;
  }
  if (g_ascii_strncasecmp(param, "ENVID=", 6) == 0) {
    if (!dsn)
      return param_fail(reply, REPLY_DSN_DISABLED);
    if (out->envid != NULL || !smtp_param_envid(param + 6, &out->envid))
      return param_fail(reply, "501 5.5.4 Bad ENVID parameter syntax");
    return TRUE;
  }
  *reply = g_strdup_printf("555 5.5.4 Unsupported option: %s", param);
  return FALSE;
}

/* Parses one ESMTP parameter of RCPT. */
static gboolean
parse_rcpt_param(const char *param, guint flags, SmtpPathArg *out, char **reply)
{
  gboolean dsn = (flags & SMTP_PARSE_DSN) != 0;

  if (g_ascii_strncasecmp(param, "NOTIFY=", 7) == 0) {
    if (!dsn)
      return param_fail(reply, REPLY_DSN_DISABLED);
    if (out->notify != 0 || !smtp_param_notify(param + 7, &out->notify))
      return param_fail(reply, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
    return TRUE;
  }
  if (g_ascii_strncasecmp(param, "ORCPT=", 6) == 0) {
    if (!dsn)
      return param_fail(reply, REPLY_DSN_DISABLED);
    if (out->orcpt != NULL || !smtp_param_orcpt(param + 6, &out->orcpt))
      return param_fail(reply, "501 5.5.4 Error: Bad ORCPT parameter syntax");
    return TRUE;
  }
  *reply = g_strdup_printf("555 5.5.4 Unsupported option: %s", param);
  return FALSE;
}

/* Common part of MAIL and RCPT: keyword, path, parameters, the SMTPUTF8
 * rule for the address. */
static gboolean
parse_path(const char *arg, gboolean is_mail, guint flags, SmtpPathArg *out, char **reply)
{
  const char *syntax = is_mail ? "501 5.5.4 Syntax: MAIL FROM:<address>"
                               : "501 5.5.4 Syntax: RCPT TO:<address>";
  const char *bad = is_mail ? "501 5.1.7 Bad sender address syntax"
                            : "501 5.1.3 Bad recipient address syntax";
  *out = (SmtpPathArg) { .size = -1, .body = SMTP_BODY_NONE, .ret = QUEUE_RET_DEFAULT };
  *reply = NULL;

  const char *p = skip_keyword(arg, is_mail ? "FROM:" : "TO:");
  if (p == NULL) {
    *reply = g_strdup(syntax);
    return FALSE;
  }

  g_autoptr(GError) error = NULL;
  const char *rest = NULL;
  char *address = NULL;
  if (!address_parse_path(p, is_mail, TRUE, &address, &rest, &error)) {
    *reply = g_strdup(bad);
    return FALSE;
  }
  out->address = address;
  if (rest == NULL)
    rest = "";
  /* Not UTF-8 (Latin-1, a broken sequence): never an address, with or
   * without SMTPUTF8. */
  if ((*rest != '\0' && *rest != ' ' && *rest != '\t') || !g_utf8_validate(address, -1, NULL)) {
    smtp_path_arg_clear(out);
    *reply = g_strdup(bad);
    return FALSE;
  }

  g_auto(GStrv) params = g_strsplit_set(rest, " \t", -1);
  for (char **q = params; *q != NULL; q++) {
    if (**q == '\0')
      continue;
    gboolean ok = is_mail ? parse_mail_param(*q, flags, out, reply)
                          : parse_rcpt_param(*q, flags, out, reply);
    if (!ok) {
      smtp_path_arg_clear(out);
      return FALSE;
    }
  }
  if (smtp_has_8bit(out->address) && !out->smtputf8 &&
      !(flags & (SMTP_PARSE_UTF8_OK | SMTP_PARSE_UTF8_LAX))) {
    smtp_path_arg_clear(out);
    *reply = g_strdup("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    return FALSE;
  }
  return TRUE;
}

gboolean
smtp_parse_mail(const char *arg, guint flags, SmtpPathArg *out, char **reply)
{
  return parse_path(arg, TRUE, flags & ~SMTP_PARSE_UTF8_OK, out, reply);
}

gboolean
smtp_parse_rcpt(const char *arg, guint flags, SmtpPathArg *out, char **reply)
{
  return parse_path(arg, FALSE, flags, out, reply);
}
