/* test-address.c - RFC 5321 path parsing and address helpers. */
#include "address.h"
#include "config.h"

#include <string.h>

typedef struct {
  const char *text;
  gboolean allow_null, allow_bare;
  const char *address;   /* NULL = must fail */
  const char *rest;
} PathCase;

static const PathCase path_cases[] = {
  { "<user@example.com>", FALSE, FALSE, "user@example.com", "" },
  { "<user@example.com> SIZE=100", FALSE, FALSE, "user@example.com", " SIZE=100" },
  { "<>", TRUE, FALSE, "", "" },
  { "<> BODY=8BITMIME", TRUE, FALSE, "", " BODY=8BITMIME" },
  { "<>", FALSE, FALSE, NULL, NULL },
  { "<@a.example,@b.example:u@d.example>", FALSE, FALSE, "u@d.example", "" },
  { "<@a.example:u@d.example>", FALSE, FALSE, "u@d.example", "" },
  { "<@a.example:>", TRUE, FALSE, NULL, NULL },
  { "<@a.example,b.example:u@d>", FALSE, FALSE, NULL, NULL },
  { "<\"john doe\"@example.com>", FALSE, FALSE, "\"john doe\"@example.com", "" },
  { "<\"a\\\"b@c\"@example.com>", FALSE, FALSE, "\"a\\\"b@c\"@example.com", "" },
  { "<\"unterminated@example.com>", FALSE, FALSE, NULL, NULL },
  { "<first.last+tag@sub.example.com>", FALSE, FALSE, "first.last+tag@sub.example.com", "" },
  { "<user@[192.0.2.1]>", FALSE, FALSE, "user@[192.0.2.1]", "" },
  { "<user@[IPv6:2001:db8::1]>", FALSE, FALSE, "user@[IPv6:2001:db8::1]", "" },
  { "<user@[300.0.2.1]>", FALSE, FALSE, NULL, NULL },
  { "<user@[192.0.2.1>", FALSE, FALSE, NULL, NULL },
  { "<user@[IPv6:zz::1]>", FALSE, FALSE, NULL, NULL },
  { "<postmaster>", FALSE, FALSE, "postmaster", "" },
  { "<user@example.com", FALSE, FALSE, NULL, NULL },
  { "user@example.com>", FALSE, TRUE, NULL, NULL },
  { "<<user@example.com>>", FALSE, FALSE, NULL, NULL },
  { "<user@exa mple.com>", FALSE, FALSE, NULL, NULL },
  { "<user@example.com\r\n>", FALSE, FALSE, NULL, NULL },
  { "<us\ter@example.com>", FALSE, FALSE, NULL, NULL },
  { "<\"a\rb\"@example.com>", FALSE, FALSE, NULL, NULL },
  { "<a..b@example.com>", FALSE, FALSE, NULL, NULL },
  { "<.a@example.com>", FALSE, FALSE, NULL, NULL },
  { "<a.@example.com>", FALSE, FALSE, NULL, NULL },
  { "<a@-example.com>", FALSE, FALSE, NULL, NULL },
  { "<a@example-.com>", FALSE, FALSE, NULL, NULL },
  { "<a@example..com>", FALSE, FALSE, NULL, NULL },
  { "<a@example.com.>", FALSE, FALSE, NULL, NULL },
  { "<a@>", FALSE, FALSE, NULL, NULL },
  { "<@>", FALSE, FALSE, NULL, NULL },
  { "<a@b@c>", FALSE, FALSE, NULL, NULL },
  { "user@example.com", FALSE, FALSE, NULL, NULL },
  { "user@example.com", FALSE, TRUE, "user@example.com", "" },
  { "hadoop", FALSE, TRUE, "hadoop", "" },
  { "hadoop SIZE=10", FALSE, TRUE, "hadoop", " SIZE=10" },
  { "hadoop>", FALSE, TRUE, NULL, NULL },
  { "", TRUE, TRUE, NULL, NULL },
  { "<j\xc3\xb6rg@example.com>", FALSE, FALSE, "j\xc3\xb6rg@example.com", "" },
  /* RFC 6531 U-labels (UTF-8 validity and SMTPUTF8 are smtpd's check) */
  { "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", FALSE, FALSE, "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "" },
  { "<a@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88> SMTPUTF8", FALSE, FALSE,
    "a@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", " SMTPUTF8" },
  { "<a@b\xc3\xbc..example>", FALSE, FALSE, NULL, NULL },
  { "<a@-\xc3\xbc.example>", FALSE, FALSE, NULL, NULL },
  { "<a@\xc3\xbc-.example>", FALSE, FALSE, NULL, NULL },
  { "<@r\xc3\xbc.example:a@b.example>", FALSE, FALSE, NULL, NULL },   /* routes: host names */
};

static void
test_parse_path(void)
{
  for (gsize i = 0; i < G_N_ELEMENTS(path_cases); i++) {
    const PathCase *c = &path_cases[i];
    g_autoptr(GError) error = NULL;
    g_autofree char *addr = NULL;
    const char *rest = NULL;
    gboolean ok = address_parse_path(c->text, c->allow_null, c->allow_bare, &addr, &rest, &error);
    if (c->address) {
      if (!ok)
        g_error("case %zu \"%s\": unexpected error %s", i, c->text, error->message);
      g_assert_cmpstr(addr, ==, c->address);
      g_assert_cmpstr(rest, ==, c->rest);
    } else {
      if (ok)
        g_error("case %zu \"%s\": accepted as \"%s\"", i, c->text, addr);
      g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX);
      g_assert_nonnull(error->message);
      g_assert_null(strchr(error->message, '\n'));
    }
  }
}

static void
test_parse_path_length(void)
{
  GString *s = g_string_new("<");
  g_autoptr(GError) error = NULL;
  g_autofree char *addr = NULL;
  const char *rest;

  while (s->len < ADDRESS_MAX + 10)
    g_string_append(s, "abcdefghi.");
  g_string_append(s, "x@example.com>");
  g_assert_false(address_parse_path(s->str, FALSE, FALSE, &addr, &rest, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX);
  g_string_free(s, TRUE);
}

static void
test_is_valid(void)
{
  g_assert_true(address_is_valid("a@b.example", FALSE));
  g_assert_true(address_is_valid("\"a b\"@b.example", FALSE));
  g_assert_false(address_is_valid("a", FALSE));
  g_assert_true(address_is_valid("a", TRUE));
  g_assert_false(address_is_valid("", TRUE));
  g_assert_false(address_is_valid("a@b\n", FALSE));
  g_assert_false(address_is_valid("a b@c", FALSE));
  g_assert_false(address_is_valid("<a@b>", FALSE));
  g_assert_true(address_is_valid("a@[10.0.0.1]", FALSE));
}

static void
test_at_sign(void)
{
  const char *a = "\"x@y\"@example.com";
  g_assert_true(address_at_sign(a) == a + 5);
  g_assert_null(address_at_sign("\"x@y\""));
  g_assert_null(address_at_sign("user"));
  a = "\"a\\\"@b\"@c";
  g_assert_true(address_at_sign(a) == a + 7);
}

static void
test_helpers(void)
{
  g_autofree char *d1 = address_domain("User@EXAMPLE.Com");
  g_autofree char *d2 = address_domain("user");
  g_autofree char *l1 = address_local_unquoted("\"john \\\"j\\\" doe\"@example.com");
  g_autofree char *l2 = address_local_unquoted("plain@example.com");
  g_autofree char *j1 = address_join("john doe", "example.com");
  g_autofree char *j2 = address_join("plain.name", "example.com");
  g_autofree char *j3 = address_join("a\"b", NULL);
  g_autofree char *j4 = address_join("user", "");

  g_assert_cmpstr(d1, ==, "example.com");
  g_assert_cmpstr(d2, ==, "");
  g_assert_cmpstr(l1, ==, "john \"j\" doe");
  g_assert_cmpstr(l2, ==, "plain");
  g_assert_cmpstr(j1, ==, "\"john doe\"@example.com");
  g_assert_cmpstr(j2, ==, "plain.name@example.com");
  g_assert_cmpstr(j3, ==, "\"a\\\"b\"");
  g_assert_cmpstr(j4, ==, "user");
}

static void
test_strip_extension(void)
{
  char *ext = NULL;
  g_autofree char *b1 = address_strip_extension("user+box", "+", &ext);
  g_assert_cmpstr(b1, ==, "user");
  g_assert_cmpstr(ext, ==, "box");
  g_free(ext);

  g_autofree char *b2 = address_strip_extension("user-box+x", "+-", &ext);
  g_assert_cmpstr(b2, ==, "user");
  g_assert_cmpstr(ext, ==, "box+x");
  g_free(ext);

  g_autofree char *b3 = address_strip_extension("user", "+", &ext);
  g_assert_cmpstr(b3, ==, "user");
  g_assert_null(ext);

  g_autofree char *b4 = address_strip_extension("+user", "+", &ext);
  g_assert_cmpstr(b4, ==, "+user");
  g_assert_null(ext);

  g_autofree char *b5 = address_strip_extension("owner-list", "-", &ext);
  g_assert_cmpstr(b5, ==, "owner-list");
  g_assert_null(ext);

  g_autofree char *b6 = address_strip_extension("list-request", "-", &ext);
  g_assert_cmpstr(b6, ==, "list-request");
  g_assert_null(ext);

  g_autofree char *b7 = address_strip_extension("user+x", NULL, &ext);
  g_assert_cmpstr(b7, ==, "user+x");
  g_assert_null(ext);

  g_autofree char *b8 = address_strip_extension("user+", "+", &ext);
  g_assert_cmpstr(b8, ==, "user");
  g_assert_cmpstr(ext, ==, "");
  g_free(ext);
}

static void
test_domains(void)
{
  const char *const list[] = { "example.com", "localhost", NULL };
  g_assert_true(address_domain_is_valid("example.com"));
  g_assert_true(address_domain_is_valid("a-b.c1.example"));
  g_assert_true(address_domain_is_valid("[127.0.0.1]"));
  g_assert_true(address_domain_is_valid("[IPv6:::1]"));
  g_assert_false(address_domain_is_valid(""));
  g_assert_false(address_domain_is_valid("a_b.example"));
  g_assert_false(address_domain_is_valid("-a.example"));
  g_assert_false(address_domain_is_valid("a..example"));
  g_autofree char *label = g_strnfill(64, 'a');
  g_assert_false(address_domain_is_valid(label));
  label[63] = '\0';
  g_assert_true(address_domain_is_valid(label));
  /* a host name is ASCII; a mailbox domain may be UTF-8, 63 characters a label */
  g_assert_false(address_domain_is_valid("b\xc3\xbc" "cher.example"));
  g_assert_true(address_is_valid("a@b\xc3\xbc" "cher.example", FALSE));
  GString *u = g_string_new("a@");
  for (int i = 0; i < 63; i++)
    g_string_append(u, "\xc3\xbc");
  g_assert_true(address_is_valid(u->str, FALSE));
  g_string_append(u, "\xc3\xbc");
  g_assert_false(address_is_valid(u->str, FALSE));
  g_string_free(u, TRUE);

  g_assert_true(address_domain_in_list("EXAMPLE.com", list));
  g_assert_true(address_domain_in_list("localhost", list));
  g_assert_false(address_domain_in_list("sub.example.com", list));
  g_assert_false(address_domain_in_list("example.org", list));
  g_assert_false(address_domain_in_list("x", NULL));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/address/parse-path", test_parse_path);
  g_test_add_func("/address/parse-path-length", test_parse_path_length);
  g_test_add_func("/address/is-valid", test_is_valid);
  g_test_add_func("/address/at-sign", test_at_sign);
  g_test_add_func("/address/helpers", test_helpers);
  g_test_add_func("/address/strip-extension", test_strip_extension);
  g_test_add_func("/address/domains", test_domains);
  return g_test_run();
}
