/* test-smtp-parse.c - command-line splitting, verb/argument split and the
 * MAIL FROM / RCPT TO argument parser with its Postfix reply texts: SIZE,
 * BODY, AUTH, the DSN parameters (RFC 3461) and SMTPUTF8 (RFC 6531). */
#include <string.h>

#include "smtp-parse.h"

static void
test_line_next(void)
{
  gsize len, used;
  g_assert_cmpint(smtp_line_next("NOOP", 4, 100, FALSE, &len, &used), ==, SMTP_LINE_INCOMPLETE);
  g_assert_cmpint(smtp_line_next("NOOP\r", 5, 100, FALSE, &len, &used), ==, SMTP_LINE_INCOMPLETE);
  g_assert_cmpint(smtp_line_next("NOOP\r\nQUIT\r\n", 12, 100, FALSE, &len, &used), ==,
                  SMTP_LINE_OK);
  g_assert_cmpuint(len, ==, 4);
  g_assert_cmpuint(used, ==, 6);
  g_assert_cmpint(smtp_line_next("\r\n", 2, 100, FALSE, &len, &used), ==, SMTP_LINE_OK);
  g_assert_cmpuint(len, ==, 0);

  /* bare LF, bare CR: events in strict mode, accepted when normalizing */
  g_assert_cmpint(smtp_line_next("NOOP\nX", 6, 100, FALSE, &len, &used), ==, SMTP_LINE_BARE_LF);
  g_assert_cmpint(smtp_line_next("NOOP\nX", 6, 100, TRUE, &len, &used), ==, SMTP_LINE_OK);
  g_assert_cmpuint(len, ==, 4);
  g_assert_cmpuint(used, ==, 5);
  g_assert_cmpint(smtp_line_next("NO\rOP\r\n", 7, 100, FALSE, &len, &used), ==,
                  SMTP_LINE_BARE_CR);
  g_assert_cmpint(smtp_line_next("NO\rOP\r\n", 7, 100, TRUE, &len, &used), ==, SMTP_LINE_OK);
  g_assert_cmpuint(len, ==, 5);

  /* too long: complete, and not yet ended */
  g_assert_cmpint(smtp_line_next("0123456789\r\n", 12, 8, FALSE, &len, &used), ==,
                  SMTP_LINE_TOO_LONG);
  g_assert_cmpuint(used, ==, 12);
  g_assert_cmpuint(len, ==, 10);
  g_assert_cmpint(smtp_line_next("0123456789", 10, 8, FALSE, &len, &used), ==,
                  SMTP_LINE_TOO_LONG);
  g_assert_cmpuint(used, ==, 10);
  g_assert_cmpuint(len, ==, 0);
  g_assert_cmpint(smtp_line_next("012345678\r", 10, 8, FALSE, &len, &used), ==,
                  SMTP_LINE_TOO_LONG);
  g_assert_cmpint(smtp_line_next("01234567\r", 9, 8, FALSE, &len, &used), ==,
                  SMTP_LINE_INCOMPLETE);
  g_assert_cmpint(smtp_line_next("01234567\r\n", 10, 8, FALSE, &len, &used), ==, SMTP_LINE_OK);
}

static void
split(const char *line, gboolean ok, const char *verb, const char *arg)
{
  g_autofree char *copy = g_strdup(line);
  char *v = NULL, *a = NULL;
  g_assert_cmpint(smtp_parse_split(copy, strlen(copy), &v, &a), ==, ok);
  if (ok) {
    g_assert_cmpstr(v, ==, verb);
    g_assert_cmpstr(a, ==, arg);
  }
}

static void
test_split(void)
{
  split("QUIT", TRUE, "QUIT", "");
  split("ehlo  client.example ", TRUE, "ehlo", "client.example");
  split("  MAIL FROM:<a@b> SIZE=10", TRUE, "MAIL", "FROM:<a@b> SIZE=10");
  split("", FALSE, NULL, NULL);
  split("   ", FALSE, NULL, NULL);
  char nul[] = "NO\0OP";
  char *v, *a;
  g_assert_false(smtp_parse_split(nul, 5, &v, &a));
}

/* What a default server offers: DSN and SMTPUTF8. */
#define ALL (SMTP_PARSE_DSN | SMTP_PARSE_SMTPUTF8)

static void
mail_flags(const char *arg, guint flags, const char *address, gint64 size, SmtpBody body,
           const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_mail(arg, flags, &p, &r);
  if (reply != NULL) {
    g_assert_false(ok);
    g_assert_cmpstr(r, ==, reply);
    g_assert_null(p.address);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpstr(p.address, ==, address);
  g_assert_cmpint(p.size, ==, size);
  g_assert_cmpint(p.body, ==, body);
  smtp_path_arg_clear(&p);
}

static void
mail(const char *arg, const char *address, gint64 size, SmtpBody body, const char *reply)
{
  mail_flags(arg, ALL, address, size, body, reply);
}

static void
rcpt_flags(const char *arg, guint flags, const char *address, const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_rcpt(arg, flags, &p, &r);
  if (reply != NULL) {
    g_assert_false(ok);
    g_assert_cmpstr(r, ==, reply);
    g_assert_null(p.address);
    g_assert_null(p.orcpt);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpstr(p.address, ==, address);
  smtp_path_arg_clear(&p);
}

static void
rcpt(const char *arg, const char *address, const char *reply)
{
  rcpt_flags(arg, ALL, address, reply);
}

static void
test_mail(void)
{
  mail("FROM:<a@example.com>", "a@example.com", -1, SMTP_BODY_NONE, NULL);
  mail("from:<>", "", -1, SMTP_BODY_NONE, NULL);
  mail("FROM: <a@example.com> SIZE=1000 BODY=8BITMIME", "a@example.com", 1000,
       SMTP_BODY_8BITMIME, NULL);
  mail("FROM:<a@example.com> body=7bit size=0", "a@example.com", 0, SMTP_BODY_7BIT, NULL);
  mail("FROM:a@example.com", "a@example.com", -1, SMTP_BODY_NONE, NULL);
  mail("FROM:<\"john doe\"@example.com>", "\"john doe\"@example.com", -1, SMTP_BODY_NONE, NULL);
  mail("", NULL, 0, 0, "501 5.5.4 Syntax: MAIL FROM:<address>");
  mail("FROM:", NULL, 0, 0, "501 5.5.4 Syntax: MAIL FROM:<address>");
  mail("TO:<a@b>", NULL, 0, 0, "501 5.5.4 Syntax: MAIL FROM:<address>");
  mail("FROM:<a@example.com", NULL, 0, 0, "501 5.1.7 Bad sender address syntax");
  mail("FROM:<a@example.com>x", NULL, 0, 0, "501 5.1.7 Bad sender address syntax");
  mail("FROM:<a@example.com> SIZE=x", NULL, 0, 0, "501 5.5.4 Bad message size syntax");
  /* All digits but past any file size: Postfix's 552 "file system imposed limit". */
  mail("FROM:<a@example.com> SIZE=99999999999999999999", NULL, 0, 0,
       "552 5.3.4 Message size exceeds file system imposed limit");
  mail("FROM:<a@example.com> SIZE=9223372036854775807", "a@example.com", G_MAXINT64, 0, NULL);
  mail("FROM:<a@example.com> BODY=BINARYMIME", NULL, 0, 0, "501 5.5.4 Bad BODY keyword syntax");
  mail_flags("FROM:<a@example.com> SMTPUTF8", SMTP_PARSE_DSN, NULL, 0, 0,
             "555 5.5.4 Unsupported option: SMTPUTF8");
  mail("FROM:<a@example.com> SMTPUTF8=yes", NULL, 0, 0,
       "555 5.5.4 Unsupported option: SMTPUTF8=yes");
  mail("FROM:<a@example.com> FOO=bar", NULL, 0, 0, "555 5.5.4 Unsupported option: FOO=bar");
  /* AUTH= (RFC 4954 5): "<>" or xtext */
  mail("FROM:<a@example.com> AUTH=<>", "a@example.com", -1, SMTP_BODY_NONE, NULL);
  mail("FROM:<a@example.com> AUTH=alice+2Bext@example.com", "a@example.com", -1, SMTP_BODY_NONE,
       NULL);
  mail("FROM:<a@example.com> AUTH=", NULL, 0, 0, "501 5.5.4 Bad AUTH parameter value");
  mail("FROM:<a@example.com> AUTH=a+2", NULL, 0, 0, "501 5.5.4 Bad AUTH parameter value");
  mail("FROM:<a@example.com> AUTH=a=b", NULL, 0, 0, "501 5.5.4 Bad AUTH parameter value");
  {
    SmtpPathArg p = { 0 };
    g_autofree char *r = NULL;
    g_assert_true(smtp_parse_mail("FROM:<a@example.com> AUTH=x+2Ay", ALL, &p, &r));
    g_assert_cmpstr(p.auth, ==, "x+2Ay");
    smtp_path_arg_clear(&p);
  }
  mail("FROM:<a@example.com> AUTH=<> AUTH=<>", NULL, 0, 0,
       "503 5.5.4 Error: multiple AUTH= options");
}

/* MAIL with DSN parameters: what is kept, and each refusal. */
static void
dsn_mail(const char *arg, QueueRet ret, const char *envid, const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_mail(arg, ALL, &p, &r);
  if (reply != NULL) {
    g_assert_false(ok);
    g_assert_cmpstr(r, ==, reply);
    g_assert_null(p.envid);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpint(p.ret, ==, ret);
  g_assert_cmpstr(p.envid, ==, envid);
  smtp_path_arg_clear(&p);
}

static void
test_mail_dsn(void)
{
  dsn_mail("FROM:<a@example.com>", QUEUE_RET_DEFAULT, NULL, NULL);
  dsn_mail("FROM:<a@example.com> RET=FULL", QUEUE_RET_FULL, NULL, NULL);
  dsn_mail("FROM:<a@example.com> ret=hdrs ENVID=QQ314159", QUEUE_RET_HDRS, "QQ314159", NULL);
  dsn_mail("FROM:<a@example.com> ENVID=a+2Bb+3Dc+20d", QUEUE_RET_DEFAULT, "a+b=c d", NULL);
  dsn_mail("FROM:<> RET=HDRS ENVID=<id@example.com>", QUEUE_RET_HDRS, "<id@example.com>", NULL);
  dsn_mail("FROM:<a@example.com> RET=", 0, NULL, "501 5.5.4 Bad RET parameter syntax");
  dsn_mail("FROM:<a@example.com> RET=ALL", 0, NULL, "501 5.5.4 Bad RET parameter syntax");
  dsn_mail("FROM:<a@example.com> RET=FULL RET=FULL", 0, NULL,
           "501 5.5.4 Bad RET parameter syntax");
  dsn_mail("FROM:<a@example.com> RET=FULL RET=HDRS", 0, NULL,
           "501 5.5.4 Bad RET parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=", 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=a ENVID=a", 0, NULL,
           "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=a+2b", 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=a+0D+0A", 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=a+00", 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=a=b", 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  dsn_mail("FROM:<a@example.com> ENVID=caf\xc3\xa9", 0, NULL,
           "501 5.5.4 Bad ENVID parameter syntax");
  /* 100 characters of xtext, not 100 decoded ones */
  g_autofree char *e100 = g_strnfill(100, 'x');
  g_autofree char *e101 = g_strnfill(101, 'x');
  g_autofree char *m100 = g_strdup_printf("FROM:<a@example.com> ENVID=%s", e100);
  g_autofree char *m101 = g_strdup_printf("FROM:<a@example.com> ENVID=%s", e101);
  dsn_mail(m100, QUEUE_RET_DEFAULT, e100, NULL);
  dsn_mail(m101, 0, NULL, "501 5.5.4 Bad ENVID parameter syntax");
  /* DSN named in smtpd_discard_ehlo_keywords: Postfix's refusal */
  mail_flags("FROM:<a@example.com> RET=FULL", SMTP_PARSE_SMTPUTF8, NULL, 0, 0,
             "501 5.7.1 DSN support is disabled");
  mail_flags("FROM:<a@example.com> ENVID=x", SMTP_PARSE_SMTPUTF8, NULL, 0, 0,
             "501 5.7.1 DSN support is disabled");
  /* RCPT parameters are not MAIL parameters */
  mail("FROM:<a@example.com> NOTIFY=NEVER", NULL, 0, 0,
       "555 5.5.4 Unsupported option: NOTIFY=NEVER");
}

/* RCPT with DSN parameters. */
static void
dsn_rcpt(const char *arg, guint notify, const char *orcpt, const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_rcpt(arg, ALL, &p, &r);
  if (reply != NULL) {
    g_assert_false(ok);
    g_assert_cmpstr(r, ==, reply);
    g_assert_null(p.orcpt);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpuint(p.notify, ==, notify);
  g_assert_cmpstr(p.orcpt, ==, orcpt);
  smtp_path_arg_clear(&p);
}

static void
test_rcpt_dsn(void)
{
  const char *bad_notify = "501 5.5.4 Error: Bad NOTIFY parameter syntax";
  const char *bad_orcpt = "501 5.5.4 Error: Bad ORCPT parameter syntax";
  dsn_rcpt("TO:<b@example.com>", 0, NULL, NULL);
  dsn_rcpt("TO:<b@example.com> NOTIFY=NEVER", QUEUE_NOTIFY_NEVER, NULL, NULL);
  dsn_rcpt("TO:<b@example.com> NOTIFY=success,failure,delay",
           QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY, NULL, NULL);
  dsn_rcpt("TO:<b@example.com> NOTIFY=DELAY", QUEUE_NOTIFY_DELAY, NULL, NULL);
  dsn_rcpt("TO:<b@example.com> NOTIFY=", 0, NULL, bad_notify);
  dsn_rcpt("TO:<b@example.com> NOTIFY=NEVER,SUCCESS", 0, NULL, bad_notify);
  dsn_rcpt("TO:<b@example.com> NOTIFY=SUCCESS,", 0, NULL, bad_notify);
  dsn_rcpt("TO:<b@example.com> NOTIFY=SOMETIMES", 0, NULL, bad_notify);
  dsn_rcpt("TO:<b@example.com> NOTIFY=NEVER NOTIFY=NEVER", 0, NULL, bad_notify);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;b@example.com", 0, "rfc822;b@example.com", NULL);
  dsn_rcpt("TO:<b@example.com> ORCPT=RFC822;B+2Bx@Example.COM NOTIFY=FAILURE",
           QUEUE_NOTIFY_FAILURE, "rfc822;B+x@Example.COM", NULL);
  dsn_rcpt("TO:<b@example.com> ORCPT=x-local;b+3Dc", 0, "x-local;b=c", NULL);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=;b@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc(822);b@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;b+0Ac@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;b+C3+A9@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;b+4a@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=rfc822;a ORCPT=rfc822;a", 0, NULL, bad_orcpt);
  /* RFC 6533: utf-8-addr-xtext */
  dsn_rcpt("TO:<b@example.com> ORCPT=utf-8;j\xc3\xb6rg@example.com", 0,
           "utf-8;j\xc3\xb6rg@example.com", NULL);
  dsn_rcpt("TO:<b@example.com> ORCPT=UTF-8;j\\x{F6}rg\\x{2B}x@example.com", 0,
           "utf-8;j\xc3\xb6rg+x@example.com", NULL);
  dsn_rcpt("TO:<b@example.com> ORCPT=utf-8;a+b@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=utf-8;a\\x{0A}@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=utf-8;a\\x{f6}@example.com", 0, NULL, bad_orcpt);
  dsn_rcpt("TO:<b@example.com> ORCPT=utf-8;a\xff@example.com", 0, NULL, bad_orcpt);
  /* DSN discarded; RET is a MAIL parameter */
  rcpt_flags("TO:<b@example.com> NOTIFY=NEVER", SMTP_PARSE_SMTPUTF8, NULL,
             "501 5.7.1 DSN support is disabled");
  rcpt_flags("TO:<b@example.com> ORCPT=rfc822;b@example.com", 0, NULL,
             "501 5.7.1 DSN support is disabled");
  rcpt("TO:<b@example.com> RET=FULL", NULL, "555 5.5.4 Unsupported option: RET=FULL");
  rcpt("TO:<b@example.com> SMTPUTF8", NULL, "555 5.5.4 Unsupported option: SMTPUTF8");
}

/* SMTPUTF8: UTF-8 addresses need it declared; broken UTF-8 never passes. */
static void
test_smtputf8(void)
{
  const char *must = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;

  g_assert_true(smtp_parse_mail("FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8", ALL, &p, &r));
  g_assert_true(p.smtputf8);
  g_assert_cmpstr(p.address, ==, "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
  smtp_path_arg_clear(&p);
  g_assert_true(smtp_parse_mail("FROM:<a@example.com> smtputf8", ALL, &p, &r));
  g_assert_true(p.smtputf8);
  smtp_path_arg_clear(&p);
  g_assert_true(smtp_parse_mail("FROM:<a@example.com>", ALL, &p, &r));
  g_assert_false(p.smtputf8);
  smtp_path_arg_clear(&p);
  mail("FROM:<j\xc3\xb6rg@example.com>", NULL, 0, 0, must);
  mail("FROM:<a@b\xc3\xbc" "cher.example>", NULL, 0, 0, must);
  /* SMTPUTF8 not offered (smtputf8_enable = no): the 555 comes first */
  mail_flags("FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", SMTP_PARSE_DSN, NULL, 0, 0,
             "555 5.5.4 Unsupported option: SMTPUTF8");
  mail_flags("FROM:<j\xc3\xb6rg@example.com>", SMTP_PARSE_DSN, NULL, 0, 0, must);
  /* strict_smtputf8 = no: Postfix's default, 8-bit without SMTPUTF8 */
  mail_flags("FROM:<j\xc3\xb6rg@example.com>", ALL | SMTP_PARSE_UTF8_LAX,
             "j\xc3\xb6rg@example.com", -1, SMTP_BODY_NONE, NULL);
  /* not UTF-8: never */
  mail("FROM:<j\xf6rg@example.com> SMTPUTF8", NULL, 0, 0, "501 5.1.7 Bad sender address syntax");
  mail("FROM:<j\xc3@example.com> SMTPUTF8", NULL, 0, 0, "501 5.1.7 Bad sender address syntax");
  mail("FROM:<a@b\xed\xa0\x80.example> SMTPUTF8", NULL, 0, 0,
       "501 5.1.7 Bad sender address syntax");
  mail_flags("FROM:<j\xf6rg@example.com>", ALL | SMTP_PARSE_UTF8_LAX, NULL, 0, 0,
             "501 5.1.7 Bad sender address syntax");
  /* RCPT: SMTP_PARSE_UTF8_OK when the MAIL had SMTPUTF8 */
  rcpt_flags("TO:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", ALL | SMTP_PARSE_UTF8_OK,
             "j\xc3\xb6rg@b\xc3\xbc" "cher.example", NULL);
  rcpt("TO:<j\xc3\xb6rg@example.com>", NULL, must);
  rcpt_flags("TO:<j\xf6rg@example.com>", ALL | SMTP_PARSE_UTF8_OK, NULL,
             "501 5.1.3 Bad recipient address syntax");
  /* U-labels are still labels: no empty ones, no leading hyphen */
  rcpt_flags("TO:<a@b\xc3\xbc..example>", ALL | SMTP_PARSE_UTF8_OK, NULL,
             "501 5.1.3 Bad recipient address syntax");
  rcpt_flags("TO:<a@-\xc3\xbc.example>", ALL | SMTP_PARSE_UTF8_OK, NULL,
             "501 5.1.3 Bad recipient address syntax");
}

static void
test_rcpt(void)
{
  rcpt("TO:<b@example.com>", "b@example.com", NULL);
  rcpt("to: <b@example.com>", "b@example.com", NULL);
  rcpt("TO:hadoop", "hadoop", NULL);
  rcpt("TO:<hadoop>", "hadoop", NULL);
  rcpt("TO:<@relay.example:b@example.com>", "b@example.com", NULL);
  rcpt("TO:<>", NULL, "501 5.1.3 Bad recipient address syntax");
  rcpt("TO:<b@example.com> NOTIFY=NEVER", "b@example.com", NULL);
  rcpt("TO:<b@example.com> FOO", NULL, "555 5.5.4 Unsupported option: FOO");
  rcpt("FROM:<b@example.com>", NULL, "501 5.5.4 Syntax: RCPT TO:<address>");
  rcpt("TO:", NULL, "501 5.5.4 Syntax: RCPT TO:<address>");
  rcpt("TO:<a b@example.com>", NULL, "501 5.1.3 Bad recipient address syntax");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp-parse/line-next", test_line_next);
  g_test_add_func("/smtp-parse/split", test_split);
  g_test_add_func("/smtp-parse/mail", test_mail);
  g_test_add_func("/smtp-parse/rcpt", test_rcpt);
  g_test_add_func("/smtp-parse/mail-dsn", test_mail_dsn);
  g_test_add_func("/smtp-parse/rcpt-dsn", test_rcpt_dsn);
  g_test_add_func("/smtp-parse/smtputf8", test_smtputf8);
  return g_test_run();
}
