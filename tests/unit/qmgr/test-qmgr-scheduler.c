/* test-qmgr-scheduler.c - retry backoff computation. */
#include "qmgr.h"

static void
test_backoff(void)
{
  /* minimal_backoff_time * 2^(attempts-1), clamped to [minimal, maximal]. */
  g_assert_cmpint(qmgr_backoff(300, 4000, 1), ==, 300);
  g_assert_cmpint(qmgr_backoff(300, 4000, 2), ==, 600);
  g_assert_cmpint(qmgr_backoff(300, 4000, 3), ==, 1200);
  g_assert_cmpint(qmgr_backoff(300, 4000, 4), ==, 2400);
  g_assert_cmpint(qmgr_backoff(300, 4000, 5), ==, 4000);
  g_assert_cmpint(qmgr_backoff(300, 4000, 1000000), ==, 4000);
  g_assert_cmpint(qmgr_backoff(1, 10, 0), ==, 1);
  /* maximal below minimal: minimal wins, as Postfix. */
  g_assert_cmpint(qmgr_backoff(300, 100, 3), ==, 300);
  g_assert_cmpint(qmgr_backoff(G_MAXINT64 / 4, G_MAXINT64 / 2, 100), ==, G_MAXINT64 / 2);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qmgr/scheduler/backoff", test_backoff);
  return g_test_run();
}
