/* test-smtpd-anvil.c - per-client connection count and rate windows. */
#include "smtpd-anvil.h"

static void
test_count_and_rate(void)
{
  SmtpdAnvil *a = smtpd_anvil_new();
  guint rate;
  gint64 w = 60 * G_USEC_PER_SEC;
  g_assert_cmpuint(smtpd_anvil_connect(a, "192.0.2.1", 0, w, &rate), ==, 1);
  g_assert_cmpuint(rate, ==, 1);
  g_assert_cmpuint(smtpd_anvil_connect(a, "192.0.2.1", 1, w, &rate), ==, 2);
  g_assert_cmpuint(rate, ==, 2);
  g_assert_cmpuint(smtpd_anvil_connect(a, "192.0.2.2", 1, w, &rate), ==, 1);
  smtpd_anvil_disconnect(a, "192.0.2.1");
  g_assert_cmpuint(smtpd_anvil_connect(a, "192.0.2.1", 2, w, &rate), ==, 2);
  g_assert_cmpuint(rate, ==, 3);
  /* a new window resets the rate, not the concurrency */
  g_assert_cmpuint(smtpd_anvil_connect(a, "192.0.2.1", w + 5, w, &rate), ==, 3);
  g_assert_cmpuint(rate, ==, 1);
  smtpd_anvil_free(a);
}

static void
test_sweep(void)
{
  SmtpdAnvil *a = smtpd_anvil_new();
  guint rate;
  gint64 w = 10;
  for (guint i = 0; i < 1000; i++) {
    g_autofree char *addr = g_strdup_printf("198.51.100.%u/%u", i % 250, i);
    smtpd_anvil_connect(a, addr, i * 100, w, &rate);
    smtpd_anvil_disconnect(a, addr);
  }
  g_assert_cmpuint(smtpd_anvil_size(a), <, 300);
  smtpd_anvil_free(a);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtpd-anvil/count-and-rate", test_count_and_rate);
  g_test_add_func("/smtpd-anvil/sweep", test_sweep);
  return g_test_run();
}
