/* smtp-parse.h - pure SMTP command-line parsing (no sockets, no state).
 *
 * Splits the input stream into command lines (CRLF only, with bare LF /
 * bare CR detection and a length bound), a line into verb and argument,
 * and the MAIL FROM / RCPT TO argument into path and ESMTP parameters
 * (SIZE, BODY, AUTH, SMTPUTF8; the DSN parameters RET, ENVID, NOTIFY and
 * ORCPT through smtp-params.c).  Error results carry the exact Postfix
 * reply text.  Unit-tested and fuzzed (tests/fuzz/fuzz-smtp-parse.c).
 */
#pragma once

#include <glib.h>

#include "queue-file.h"

/* Longest command line we accept, without CRLF (RFC 5321 says 512; Postfix
 * accepts 2048 before truncating).  Longer lines are answered with
 * SMTP_REPLY_LINE_TOO_LONG and skipped up to their end. */
#define SMTP_COMMAND_LINE_MAX 2048

#define SMTP_REPLY_LINE_TOO_LONG "500 5.5.0 Error: command line too long"

typedef enum {
  SMTP_LINE_INCOMPLETE,   /* no line end yet; nothing consumed */
  SMTP_LINE_OK,           /* a line of *line_len bytes (no line end) */
  SMTP_LINE_BARE_LF,      /* line ended in LF without CR (strict mode) */
  SMTP_LINE_BARE_CR,      /* CR not followed by LF inside the line (strict mode) */
  SMTP_LINE_TOO_LONG,     /* longer than max: *consumed bytes are to be dropped;
                           * when *line_len is 0 the line has not ended yet */
} SmtpLineStatus;

/* Finds the next command line in buf[0..len).  normalize accepts a bare
 * LF as line end and keeps a bare CR as data (Postfix "normalize");
 * otherwise both are reported.  *consumed is how much of buf the line
 * (with its end) takes; for TOO_LONG without a line end it is all of
 * buf, and *line_len is 0. */
SmtpLineStatus smtp_line_next(const char *buf, gsize len, gsize max, gboolean normalize,
                              gsize *line_len, gsize *consumed);

/* Splits a command line into the verb (up to the first blank) and the
 * argument (blanks skipped on both ends; "" when none).  The line is
 * modified in place (NUL-terminated pieces).  FALSE for a line with a NUL
 * byte or an empty verb. */
gboolean smtp_parse_split(char *line, gsize len, char **verb, char **arg);

typedef enum {
  SMTP_BODY_NONE = 0,
  SMTP_BODY_7BIT,
  SMTP_BODY_8BITMIME,
} SmtpBody;

/* The parsed argument of MAIL FROM: / RCPT TO:. */
typedef struct {
  char *address;   /* as the client wrote it, "" for <> (allocated) */
  gint64 size;     /* SIZE=, -1 when absent */
  SmtpBody body;
  char *auth;      /* AUTH= (RFC 4954 5), xtext as sent, or NULL (allocated) */
  gboolean smtputf8;   /* MAIL: the SMTPUTF8 parameter (RFC 6531 3.4) */
  QueueRet ret;        /* MAIL: RET= (RFC 3461 4.3) */
  char *envid;         /* MAIL: ENVID=, xtext-decoded, or NULL (allocated) */
  guint notify;        /* RCPT: NOTIFY= as QUEUE_NOTIFY_* bits, 0 when absent */
  char *orcpt;         /* RCPT: ORCPT= as "type;decoded", or NULL (allocated) */
} SmtpPathArg;

void smtp_path_arg_clear(SmtpPathArg *arg);

/* What the server offers, for the parameters that depend on it. */
enum {
  SMTP_PARSE_DSN = 1 << 0,        /* DSN on: RET/ENVID/NOTIFY/ORCPT are taken; off
                                   * (smtpd_discard_ehlo_keywords): "501 5.7.1 DSN
                                   * support is disabled" */
  SMTP_PARSE_SMTPUTF8 = 1 << 1,   /* smtputf8_enable and not discarded: MAIL takes
                                   * SMTPUTF8; else it is an unsupported option */
  SMTP_PARSE_UTF8_OK = 1 << 2,    /* RCPT: the MAIL had SMTPUTF8 */
  SMTP_PARSE_UTF8_LAX = 1 << 3,   /* strict_smtputf8 = no: a UTF-8 address needs
                                   * no SMTPUTF8 (Postfix's default) */
};

/* Parses the argument of MAIL ("FROM:<a> SIZE=n BODY=8BITMIME") with
 * flags SMTP_PARSE_*.  On failure *reply is the full reply line
 * (allocated), e.g. "501 5.5.4 Syntax: MAIL FROM:<address>".  An address
 * that is not valid UTF-8 is a syntax error whatever the flags; a
 * well-formed UTF-8 one needs SMTPUTF8 in this MAIL (or in the MAIL of
 * an RCPT: SMTP_PARSE_UTF8_OK) unless SMTP_PARSE_UTF8_LAX, else "553
 * 5.6.7 Must declare SMTPUTF8 to send unicode address".  A repeated DSN
 * parameter is refused with its syntax error, a repeated AUTH= as
 * Postfix does. */
gboolean smtp_parse_mail(const char *arg, guint flags, SmtpPathArg *out, char **reply);

/* Same for RCPT ("TO:<a> NOTIFY=SUCCESS ORCPT=rfc822;a@b"). */
gboolean smtp_parse_rcpt(const char *arg, guint flags, SmtpPathArg *out, char **reply);
