/* test-workpool.c - work comes back to the loop; a blocked item's thread
 * is stood in for up to max_threads, and no further. */
#include "workpool.h"

#include <systemd/sd-event.h>

typedef struct {
  GMutex lock;
  GCond cond;
  guint running;          /* items inside their wait */
  guint most;
  gboolean release;       /* let the waits end */
  guint done;             /* done() calls (loop thread) */
  guint blocked_calls;    /* blocked callbacks (loop thread) */
} Shared;

static Shared shared;

static void
blocking_work(gpointer data)
{
  (void) data;
  workpool_blocking_begin();
  g_mutex_lock(&shared.lock);
  shared.running++;
  shared.most = MAX(shared.most, shared.running);
  g_cond_broadcast(&shared.cond);
  while (!shared.release)
    g_cond_wait(&shared.cond, &shared.lock);
  shared.running--;
  g_mutex_unlock(&shared.lock);
  workpool_blocking_end();
}

static void
plain_work(gpointer data)
{
  g_atomic_int_inc((gint *) data);
}

static void
count_done(gpointer data)
{
  (void) data;
  shared.done++;
}

static void
on_blocked(gpointer data)
{
  (void) data;
  shared.blocked_calls++;
}

/* Runs the loop until cond() or a few seconds pass. */
static gboolean
run_until(sd_event *event, gboolean (*cond)(void))
{
  gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

  while (!cond() && g_get_monotonic_time() < deadline)
    g_assert_cmpint(sd_event_run(event, 20 * 1000), >=, 0);
  return cond();
}

static gboolean
three_running(void)
{
  gboolean yes;

  g_mutex_lock(&shared.lock);
  yes = shared.running == 3;
  g_mutex_unlock(&shared.lock);
  return yes;
}

static guint want_done;

static gboolean
enough_done(void)
{
  return shared.done >= want_done;
}

static void
test_stand_ins(void)
{
  g_autoptr(GError) error = NULL;
  sd_event *event = NULL;
  WorkPool *pool;
  gint plain = 0;

  g_assert_cmpint(sd_event_new(&event), >=, 0);
  pool = workpool_new(event, 1, &error);
  g_assert_no_error(error);
  workpool_set_max_threads(pool, 3);
  workpool_set_blocked_callback(pool, on_blocked, NULL);

  /* four blocking items on one thread: three run at once (max 3), the
   * fourth waits for a thread */
  for (guint i = 0; i < 4; i++)
    workpool_submit(pool, blocking_work, count_done, NULL);
  g_assert_true(run_until(event, three_running));
  g_usleep(100 * 1000);
  g_mutex_lock(&shared.lock);
  g_assert_cmpuint(shared.running, ==, 3);
  g_mutex_unlock(&shared.lock);
  g_assert_cmpuint(workpool_blocked(pool), ==, 3);
  g_assert_cmpuint(shared.blocked_calls, >=, 1);
  g_assert_cmpuint(shared.done, ==, 0);

  g_mutex_lock(&shared.lock);
  shared.release = TRUE;
  g_cond_broadcast(&shared.cond);
  g_mutex_unlock(&shared.lock);
  want_done = 4;
  g_assert_true(run_until(event, enough_done));
  g_assert_cmpuint(shared.most, ==, 3);
  g_assert_cmpuint(workpool_blocked(pool), ==, 0);

  /* the pool goes on with plain work once the waits are over */
  for (guint i = 0; i < 50; i++)
    workpool_submit(pool, plain_work, count_done, &plain);
  want_done = 54;
  g_assert_true(run_until(event, enough_done));
  g_assert_cmpint(g_atomic_int_get(&plain), ==, 50);
  g_assert_cmpuint(workpool_pending(pool), ==, 0);

  workpool_free(pool);
  sd_event_unref(event);
}

static void
test_outside_a_pool(void)
{
  /* no-ops in a thread that is not a pool's */
  workpool_blocking_begin();
  workpool_blocking_end();
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_mutex_init(&shared.lock);
  g_cond_init(&shared.cond);
  g_test_add_func("/workpool/stand-ins", test_stand_ins);
  g_test_add_func("/workpool/outside-a-pool", test_outside_a_pool);
  return g_test_run();
}
