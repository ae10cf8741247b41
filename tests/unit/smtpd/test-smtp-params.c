/* test-smtp-params.c - RFC 3461 xtext and the DSN parameter values, RFC
 * 6533 utf-8-addr-xtext: what is decoded, what is refused (every value
 * that could put a control character, CR, LF or NUL into a queue file
 * record). */
#include <string.h>

#include "smtp-params.h"

static void
xtext(const char *in, const char *want)
{
  char *out = NULL;
  gboolean ok = smtp_xtext_decode(in, &out);
  if (want == NULL) {
    g_assert_false(ok);
    g_assert_null(out);
    return;
  }
  g_assert_true(ok);
  g_assert_cmpstr(out, ==, want);
  g_free(out);
}

static void
test_xtext(void)
{
  xtext("abc", "abc");
  xtext("a+2Bb", "a+b");
  xtext("a+3Db", "a=b");
  xtext("+20", " ");
  xtext("+7E+21", "~!");
  xtext("!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~", "!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~");
  xtext("", NULL);              /* empty */
  xtext("a b", NULL);           /* space is not an xchar */
  xtext("a=b", NULL);           /* "=" must be +3D */
  xtext("a+2b", NULL);          /* lower-case hex */
  xtext("a+2", NULL);           /* short */
  xtext("a+", NULL);
  xtext("a+G0", NULL);
  xtext("a+0D", NULL);          /* CR */
  xtext("a+0A", NULL);          /* LF */
  xtext("a+00", NULL);          /* NUL */
  xtext("a+09", NULL);          /* TAB */
  xtext("a+1F", NULL);
  xtext("a+7F", NULL);          /* DEL */
  xtext("a+80", NULL);          /* 8-bit */
  xtext("a+FF", NULL);
  xtext("a\x7f", NULL);
  xtext("a\x01", NULL);
  xtext("caf\xc3\xa9", NULL);   /* raw UTF-8 */
}

static void
test_ret_notify(void)
{
  QueueRet ret = QUEUE_RET_DEFAULT;
  g_assert_true(smtp_param_ret("FULL", &ret));
  g_assert_cmpint(ret, ==, QUEUE_RET_FULL);
  g_assert_true(smtp_param_ret("hdrs", &ret));
  g_assert_cmpint(ret, ==, QUEUE_RET_HDRS);
  g_assert_false(smtp_param_ret("", &ret));
  g_assert_false(smtp_param_ret("FULLY", &ret));
  g_assert_false(smtp_param_ret("FULL,HDRS", &ret));

  guint n = 0;
  g_assert_true(smtp_param_notify("NEVER", &n));
  g_assert_cmpuint(n, ==, QUEUE_NOTIFY_NEVER);
  g_assert_true(smtp_param_notify("Failure,Success", &n));
  g_assert_cmpuint(n, ==, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_SUCCESS);
  g_assert_true(smtp_param_notify("SUCCESS,FAILURE,DELAY", &n));
  g_assert_cmpuint(n, ==, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY);
  g_assert_false(smtp_param_notify("", &n));
  g_assert_false(smtp_param_notify(",", &n));
  g_assert_false(smtp_param_notify("DELAY,", &n));
  g_assert_false(smtp_param_notify(",DELAY", &n));
  g_assert_false(smtp_param_notify("NEVER,DELAY", &n));
  g_assert_false(smtp_param_notify("DELAY,NEVER", &n));
  g_assert_false(smtp_param_notify("DELAY SUCCESS", &n));
  g_assert_false(smtp_param_notify("ALWAYS", &n));
}

static void
envid(const char *in, const char *want)
{
  char *out = NULL;
  g_assert_cmpint(smtp_param_envid(in, &out), ==, want != NULL);
  g_assert_cmpstr(out, ==, want);
  g_free(out);
}

static void
test_envid(void)
{
  envid("QQ314159", "QQ314159");
  envid("<x+2By@example.com>", "<x+y@example.com>");
  g_autofree char *e100 = g_strnfill(100, 'e');
  g_autofree char *e101 = g_strnfill(101, 'e');
  envid(e100, e100);
  envid(e101, NULL);
  /* 100 characters of xtext may decode to fewer */
  GString *s = g_string_new(NULL);
  for (int i = 0; i < 33; i++)
    g_string_append(s, "+2B");
  g_string_append_c(s, 'x');
  g_assert_cmpuint(s->len, ==, 100);
  g_autofree char *plus = g_strnfill(33, '+');
  g_autofree char *want = g_strconcat(plus, "x", NULL);
  envid(s->str, want);
  g_string_append_c(s, 'y');
  envid(s->str, NULL);
  g_string_free(s, TRUE);
  envid("", NULL);
  envid("a+0Ab", NULL);
}

static void
orcpt(const char *in, const char *want)
{
  char *out = NULL;
  g_assert_cmpint(smtp_param_orcpt(in, &out), ==, want != NULL);
  g_assert_cmpstr(out, ==, want);
  g_free(out);
}

static void
test_orcpt(void)
{
  orcpt("rfc822;user@example.com", "rfc822;user@example.com");
  orcpt("RFC822;User+2Bext@Example.com", "rfc822;User+ext@Example.com");
  orcpt("rfc822;+22a+20b+22@example.com", "rfc822;\"a b\"@example.com");
  orcpt("x400;+2FC+3DUS+2F", "x400;/C=US/");   /* other atoms kept as written */
  orcpt("X-Type;abc", "X-Type;abc");
  orcpt("rfc822;a;b", "rfc822;a;b");            /* ";" is an xchar */
  orcpt("rfc822;", NULL);
  orcpt("rfc822", NULL);
  orcpt(";a@b", NULL);
  orcpt("rfc 822;a@b", NULL);
  orcpt("rfc@822;a@b", NULL);
  orcpt("rfc822;a+0D+0A@b", NULL);
  orcpt("rfc822;a+00@b", NULL);
  orcpt("rfc822;a b", NULL);
  orcpt("rfc822;j\xc3\xb6rg@b", NULL);
  orcpt("caf\xc3\xa9;a@b", NULL);
  /* RFC 6533 utf-8-addr-xtext */
  orcpt("utf-8;j\xc3\xb6rg@example.com", "utf-8;j\xc3\xb6rg@example.com");
  orcpt("UTF-8;j\\x{F6}rg@example.com", "utf-8;j\xc3\xb6rg@example.com");
  orcpt("utf-8;a\\x{2B}b\\x{3D}c\\x{5C}d@example.com", "utf-8;a+b=c\\d@example.com");
  orcpt("utf-8;\\x{1F600}@example.com", "utf-8;\xf0\x9f\x98\x80@example.com");
  orcpt("utf-8;a+b@example.com", NULL);          /* "+" must be escaped */
  orcpt("utf-8;a=b@example.com", NULL);
  orcpt("utf-8;a\\b@example.com", NULL);
  orcpt("utf-8;a\\x{f6}@example.com", NULL);     /* lower-case hex */
  orcpt("utf-8;a\\x{6}@example.com", NULL);      /* one digit */
  orcpt("utf-8;a\\x{0000F6}@example.com", "utf-8;a\xc3\xb6@example.com");
  orcpt("utf-8;a\\x{10000F6}@example.com", NULL);   /* seven digits */
  orcpt("utf-8;a\\x{F6@example.com", NULL);      /* unterminated */
  orcpt("utf-8;a\\x{0A}@example.com", NULL);     /* LF */
  orcpt("utf-8;a\\x{0D}@example.com", NULL);     /* CR */
  orcpt("utf-8;a\\x{00}@example.com", NULL);     /* NUL */
  orcpt("utf-8;a\\x{85}@example.com", NULL);     /* C1 control (NEL) */
  orcpt("utf-8;a\xc2\x85@example.com", NULL);
  orcpt("utf-8;a\\x{D800}@example.com", NULL);   /* surrogate */
  orcpt("utf-8;a\\x{110000}@example.com", NULL);
  orcpt("utf-8;a\xf6@example.com", NULL);        /* not UTF-8 */
  orcpt("utf-8;a\xed\xa0\x80@example.com", NULL);
  orcpt("utf-8;", NULL);
  orcpt("utf-8;a b", NULL);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp-params/xtext", test_xtext);
  g_test_add_func("/smtp-params/ret-notify", test_ret_notify);
  g_test_add_func("/smtp-params/envid", test_envid);
  g_test_add_func("/smtp-params/orcpt", test_orcpt);
  return g_test_run();
}
