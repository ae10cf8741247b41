/* test-smtpd-access.c - access(5) lookup key order (smtpd-access.c). */
#include "smtpd.h"

static void
assert_keys(GPtrArray *keys, const char *const *want)
{
  g_autofree char *got = NULL;
  g_ptr_array_add(keys, NULL);
  got = g_strjoinv(" ", (char **)keys->pdata);
  g_autofree char *expected = g_strjoinv(" ", (char **)want);
  g_assert_cmpstr(got, ==, expected);
  g_ptr_array_unref(keys);
}

static void
test_client(void)
{
  assert_keys(smtpd_access_keys_client("Mail.Sub.Example.COM", "192.168.1.10", TRUE),
              (const char *const[]){ "mail.sub.example.com", "sub.example.com", "example.com",
                                     "com", "192.168.1.10", "192.168.1", "192.168", "192",
                                     NULL });
  assert_keys(smtpd_access_keys_client("a.example.com", "10.0.0.1", FALSE),
              (const char *const[]){ "a.example.com", ".example.com", ".com", "10.0.0.1",
                                     "10.0.0", "10.0", "10", NULL });
  assert_keys(smtpd_access_keys_client("unknown", "127.0.0.1", TRUE),
              (const char *const[]){ "unknown", "127.0.0.1", "127.0.0", "127.0", "127", NULL });
  assert_keys(smtpd_access_keys_client("unknown", "2001:DB8::1", TRUE),
              (const char *const[]){ "unknown", "2001:db8::1", "2001:db8:", "2001:db8", "2001",
                                     NULL });
}

static void
test_helo(void)
{
  assert_keys(smtpd_access_keys_domain("Host.Example.org", TRUE),
              (const char *const[]){ "host.example.org", "example.org", "org", NULL });
  /* numerical names get no parent domain magic */
  assert_keys(smtpd_access_keys_domain("192.0.2.1", TRUE),
              (const char *const[]){ "192.0.2.1", NULL });
}

static void
test_mail(void)
{
  assert_keys(smtpd_access_keys_mail("Obama@WhiteHouse.com", "+", TRUE),
              (const char *const[]){ "obama@whitehouse.com", "whitehouse.com", "com", "obama@",
                                     NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@mail.example.com", "+", TRUE),
              (const char *const[]){ "user+ext@mail.example.com", "user@mail.example.com",
                                     "mail.example.com", "example.com", "com", "user+ext@",
                                     "user@", NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@example.com", "+", FALSE),
              (const char *const[]){ "user+ext@example.com", "user@example.com", "example.com",
                                     ".com", "user+ext@", "user@", NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@example.com", "", TRUE),
              (const char *const[]){ "user+ext@example.com", "example.com", "com", "user+ext@",
                                     NULL });
  assert_keys(smtpd_access_keys_mail("openstack", "+", TRUE),
              (const char *const[]){ "openstack@", NULL });
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtpd/access/keys-client", test_client);
  g_test_add_func("/smtpd/access/keys-helo", test_helo);
  g_test_add_func("/smtpd/access/keys-mail", test_mail);
  return g_test_run();
}
