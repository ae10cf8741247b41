/* test-smtp-parse.c - command-line splitting, verb/argument split and the
 * MAIL FROM / RCPT TO argument parser with its Postfix reply texts. */
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

static void
mail(const char *arg, const char *address, gint64 size, SmtpBody body, const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_mail(arg, &p, &r);
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
rcpt(const char *arg, const char *address, const char *reply)
{
  SmtpPathArg p = { 0 };
  g_autofree char *r = NULL;
  gboolean ok = smtp_parse_rcpt(arg, &p, &r);
  if (reply != NULL) {
    g_assert_false(ok);
    g_assert_cmpstr(r, ==, reply);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpstr(p.address, ==, address);
  smtp_path_arg_clear(&p);
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
  mail("FROM:<a@example.com> SMTPUTF8", NULL, 0, 0, "555 5.5.4 Unsupported option: SMTPUTF8");
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
    g_assert_true(smtp_parse_mail("FROM:<a@example.com> AUTH=x+2Ay", &p, &r));
    g_assert_cmpstr(p.auth, ==, "x+2Ay");
    smtp_path_arg_clear(&p);
  }
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
  rcpt("TO:<b@example.com> NOTIFY=NEVER", NULL, "555 5.5.4 Unsupported option: NOTIFY=NEVER");
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
  return g_test_run();
}
