/* test-sendmail-addr.c - RFC 5322 address lists as sendmail reads them
 * (command line, -f, To:/Cc:/Bcc:), and the From: phrase quoting. */
#include "sendmail.h"

/* want: addresses separated by "|" ("" for none). */
static void
check(const char *text, const char *want)
{
  g_autoptr(GPtrArray) list = sendmail_addr_list(text);
  g_ptr_array_add(list, NULL);
  g_autofree char *got = g_strjoinv("|", (char **) list->pdata);
  g_assert_cmpstr(got, ==, want);
}

static void
test_lists(void)
{
  check("a@b", "a@b");
  check("a@b, c@d", "a@b|c@d");
  check("a@b,c@d,,", "a@b|c@d");
  check("Joe Public <joe@example.com>", "joe@example.com");
  check("\"Public, Joe\" <joe@example.com>, x@y", "joe@example.com|x@y");
  check("joe@example.com (Joe Public)", "joe@example.com");
  check("joe (a (nested) comment) @ example.com", "joe@example.com");
  check("\"a b\"@example.com", "\"a b\"@example.com");
  check("<\"a,b\"@example.com>", "\"a,b\"@example.com");
  check("user", "user");
  check("user1 , user2", "user1|user2");
  check("<>", "");
  check("undisclosed-recipients:;", "");
  check("team: a@b, Joe <c@d>; e@f", "a@b|c@d|e@f");
  check("<@relay.example,@other.example:user@example.com>", "user@example.com");
  check("postmaster@[192.0.2.1]", "postmaster@[192.0.2.1]");
  check(" folded@example.com,\n\tsecond@example.com", "folded@example.com|second@example.com");
  check("", "");
  check("(only a comment)", "");
  check("Broken <unterminated@example.com", "unterminated@example.com");
}

static void
test_phrase(void)
{
  g_autofree char *plain = sendmail_addr_phrase("Joe Public");
  g_autofree char *dot = sendmail_addr_phrase("Joe Q. Public");
  g_autofree char *quote = sendmail_addr_phrase("Say \"hi\" \\ now");
  g_autofree char *bang = sendmail_addr_phrase("a!b");
  g_autofree char *comment = sendmail_addr_comment("Joe (x) \\ y");
  g_assert_cmpstr(plain, ==, "Joe Public");
  g_assert_cmpstr(dot, ==, "\"Joe Q. Public\"");
  g_assert_cmpstr(quote, ==, "\"Say \\\"hi\\\" \\\\ now\"");
  g_assert_cmpstr(bang, ==, "\"a!b\"");
  g_assert_cmpstr(comment, ==, "(Joe \\(x\\) \\\\ y)");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sendmail-addr/lists", test_lists);
  g_test_add_func("/sendmail-addr/phrase", test_phrase);
  return g_test_run();
}
