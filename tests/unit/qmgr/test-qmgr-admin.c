/* test-qmgr-admin.c - the administrative queue operations (qmgr-admin.c)
 * on a real queue directory: delete, hold, release, requeue, ALL,
 * unknown ids, messages waiting in memory, and the flags applied when an
 * attempt in flight ends.  No worker runs: messages are put in memory
 * with qmgr_scheduler_add() and marked in flight by hand. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "qmgr.h"

typedef struct {
  char *dir;
  sd_event *event;
  Qmgr *q;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *main_cf = NULL, *text = NULL, *queue = NULL;
  Config *config;

  f->dir = g_dir_make_tmp("test-admin-XXXXXX", &error);
  g_assert_no_error(error);
  queue = g_build_filename(f->dir, "spool", NULL);
  main_cf = g_build_filename(f->dir, "main.cf", NULL);
  text = g_strdup_printf("queue_directory = %s\nqmgr_delivery_threads = 1\n", queue);
  g_assert_true(g_file_set_contents(main_cf, text, -1, NULL));
  config = config_load(f->dir, NULL, &error);
  g_assert_no_error(error);
  g_assert_true(queue_dirs_ensure(queue, (uid_t) -1, (gid_t) -1, &error));
  g_assert_cmpint(sd_event_new(&f->event), >=, 0);
  f->q = qmgr_new(f->event, qmgr_settings_new(config), &error);
  g_assert_no_error(error);
  g_assert_true(qmgr_queue_open(f->q, &error));
  /* "in flight" as far as qmgr_scheduler_kick() can tell, so that nothing
   * released or requeued here is handed to a delivery thread */
  f->q->in_flight = 1000;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

  /* nothing was handed to the pool: forget what is waiting */
  f->q->in_flight = 0;
  g_queue_clear(&f->q->waiting);
  g_hash_table_remove_all(f->q->messages);
  qmgr_free(f->q);
  sd_event_unref(f->event);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(f->dir);
}

/* A committed message in dir; returns its id. */
static char *
make_message(Fixture *f, QueueDir dir, gboolean access_hold)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(QueueWriter) w = queue_writer_new(f->q->queue_directory, &error);
  const char *content = "Subject: x\n\nbody\n";

  g_assert_no_error(error);
  env->sender = g_strdup("sender@example.org");
  queue_envelope_add_recipient(env, "rcpt@example.com", NULL);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, content, strlen(content), &error));
  g_assert_true(queue_writer_extracted(w, access_hold, NULL, NULL, &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  if (dir != QUEUE_INCOMING)
    g_assert_cmpint(renameat(f->q->dir_fds[QUEUE_INCOMING], queue_writer_id(w),
                             f->q->dir_fds[dir], queue_writer_id(w)), ==, 0);
  return g_strdup(queue_writer_id(w));
}

static gboolean
in_dir(Fixture *f, QueueDir dir, const char *id)
{
  struct stat st;

  return fstatat(f->q->dir_fds[dir], id, &st, 0) == 0;
}

static gint64
mtime(Fixture *f, QueueDir dir, const char *id)
{
  struct stat st;

  g_assert_cmpint(fstatat(f->q->dir_fds[dir], id, &st, 0), ==, 0);
  return st.st_mtime;
}

static void
set_mtime(Fixture *f, QueueDir dir, const char *id, gint64 when)
{
  struct timespec t[2] = { { .tv_sec = when }, { .tv_sec = when } };

  g_assert_cmpint(utimensat(f->q->dir_fds[dir], id, t, 0), ==, 0);
}

/* Runs op on ids (NULL-terminated, or NULL for ALL); returns the ids done
 * as one comma-separated string, or NULL with *error. */
static char *
apply(Fixture *f, QmgrAdminOp op, const char *const *ids, guint *changed, GError **error)
{
  guint dummy;
  g_autoptr(GPtrArray) done = qmgr_admin_apply(f->q, op, ids, ids == NULL,
                                               changed ? changed : &dummy, error);

  if (done == NULL)
    return NULL;
  g_ptr_array_add(done, NULL);
  return g_strjoinv(",", (char **) done->pdata);
}

static void
test_delete_hold_release(Fixture *f, gconstpointer data)
{
  g_autofree char *a = make_message(f, QUEUE_DEFERRED, FALSE);
  g_autofree char *b = make_message(f, QUEUE_DEFERRED, FALSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
  guint changed;

  /* an unknown id fails the whole call and changes nothing */
  const char *bad[] = { a, "0123456789ABCDEF01", NULL };
  g_assert_null(apply(f, QMGR_ADMIN_DELETE, bad, NULL, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "0123456789ABCDEF01"));
  g_clear_error(&error);
  g_assert_true(in_dir(f, QUEUE_DEFERRED, a));

  const char *one[] = { a, a, NULL };      /* a duplicate counts once */
  r1 = apply(f, QMGR_ADMIN_HOLD, one, &changed, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(r1, ==, a);
  g_assert_cmpuint(changed, ==, (1u << QUEUE_DEFERRED) | (1u << QUEUE_HOLD));
  g_assert_true(in_dir(f, QUEUE_HOLD, a) && !in_dir(f, QUEUE_DEFERRED, a));
  /* holding what is held, releasing what is not: passed over */
  r2 = apply(f, QMGR_ADMIN_HOLD, one, NULL, &error);
  g_assert_cmpstr(r2, ==, "");
  const char *other[] = { b, NULL };
  r3 = apply(f, QMGR_ADMIN_RELEASE, other, NULL, &error);
  g_assert_cmpstr(r3, ==, "");
  g_assert_true(in_dir(f, QUEUE_DEFERRED, b));
  /* release: to deferred/, due now, and into memory */
  set_mtime(f, QUEUE_HOLD, a, 1000);
  r4 = apply(f, QMGR_ADMIN_RELEASE, NULL, &changed, &error);
  g_assert_cmpstr(r4, ==, a);
  g_assert_true(in_dir(f, QUEUE_DEFERRED, a));
  g_assert_cmpint(mtime(f, QUEUE_DEFERRED, a), >=, g_get_real_time() / G_USEC_PER_SEC - 5);
  g_assert_true(g_hash_table_contains(f->q->messages, a));
  /* delete ALL: the waiting one leaves memory too */
  g_free(r4);
  r4 = apply(f, QMGR_ADMIN_DELETE, NULL, &changed, &error);
  {
    g_auto(GStrv) got = g_strsplit(r4, ",", -1);
    g_assert_cmpuint(g_strv_length(got), ==, 2);
    g_assert_true(g_strv_contains((const char *const *) got, a));
    g_assert_true(g_strv_contains((const char *const *) got, b));
  }
  g_assert_false(in_dir(f, QUEUE_DEFERRED, a) || in_dir(f, QUEUE_DEFERRED, b));
  g_assert_cmpuint(g_hash_table_size(f->q->messages), ==, 0);
  g_assert_cmpuint(g_queue_get_length(&f->q->waiting), ==, 0);
}

static void
test_release_writes_k_record(Fixture *f, gconstpointer data)
{
  /* parked by an access(5) HOLD (Lhold): a release makes it deliverable */
  g_autofree char *a = make_message(f, QUEUE_HOLD, TRUE);
  g_autoptr(GError) error = NULL;
  const char *ids[] = { a, NULL };
  g_autofree char *r = apply(f, QMGR_ADMIN_RELEASE, ids, NULL, &error);
  g_autoptr(QueueEnvelope) env = NULL;
  int fd;

  g_assert_cmpstr(r, ==, a);
  fd = openat(f->q->dir_fds[QUEUE_DEFERRED], a, O_RDONLY);
  g_assert_cmpint(fd, >=, 0);
  env = queue_file_read(fd, &error);
  close(fd);
  g_assert_no_error(error);
  g_assert_true(env->hold && env->hold_done);
}

static void
test_requeue(Fixture *f, gconstpointer data)
{
  g_autofree char *a = make_message(f, QUEUE_DEFERRED, FALSE);
  g_autofree char *h = make_message(f, QUEUE_HOLD, FALSE);
  g_autoptr(GError) error = NULL;
  gint64 later = g_get_real_time() / G_USEC_PER_SEC + 3600;
  const char *ids[] = { a, h, NULL };
  g_autofree char *r = NULL;

  set_mtime(f, QUEUE_DEFERRED, a, later);
  r = apply(f, QMGR_ADMIN_REQUEUE, ids, NULL, &error);
  g_assert_no_error(error);
  g_assert_true(strstr(r, a) && strstr(r, h));
  g_assert_cmpint(mtime(f, QUEUE_DEFERRED, a), <, later);          /* due now */
  g_assert_true(in_dir(f, QUEUE_DEFERRED, h));                      /* released */
  g_assert_true(g_hash_table_contains(f->q->messages, a));
  g_assert_true(g_hash_table_contains(f->q->messages, h));
}

static void
test_in_flight(Fixture *f, gconstpointer data)
{
  g_autofree char *a = make_message(f, QUEUE_INCOMING, FALSE);
  g_autofree char *b = make_message(f, QUEUE_INCOMING, FALSE);
  g_autofree char *c = make_message(f, QUEUE_INCOMING, FALSE);
  g_autoptr(GError) error = NULL;
  QmgrMessage *ma, *mb, *mc;
  g_autofree char *r1 = NULL, *r2 = NULL, *r3 = NULL;

  g_assert_true(qmgr_scheduler_add(f->q, a, QUEUE_INCOMING));
  g_assert_true(qmgr_scheduler_add(f->q, b, QUEUE_INCOMING));
  g_assert_true(qmgr_scheduler_add(f->q, c, QUEUE_INCOMING));
  ma = g_hash_table_lookup(f->q->messages, a);
  mb = g_hash_table_lookup(f->q->messages, b);
  mc = g_hash_table_lookup(f->q->messages, c);
  /* as qmgr_scheduler_kick() would hand them to workers */
  for (QmgrMessage *m; (m = g_queue_pop_head(&f->q->waiting)) != NULL;)
    m->in_flight = TRUE;

  const char *da[] = { a, NULL }, *hb[] = { b, NULL }, *rc[] = { c, NULL };
  r1 = apply(f, QMGR_ADMIN_DELETE, da, NULL, &error);
  r2 = apply(f, QMGR_ADMIN_HOLD, hb, NULL, &error);
  r3 = apply(f, QMGR_ADMIN_REQUEUE, rc, NULL, &error);
  g_assert_cmpstr(r1, ==, a);
  g_assert_cmpstr(r2, ==, b);
  g_assert_cmpstr(r3, ==, c);
  /* nothing touched under the workers */
  g_assert_true(in_dir(f, QUEUE_INCOMING, a) && in_dir(f, QUEUE_INCOMING, b));
  g_assert_cmpuint(ma->admin, ==, QMGR_ADMIN_F_DELETE);
  g_assert_cmpuint(mb->admin, ==, QMGR_ADMIN_F_HOLD);
  g_assert_cmpuint(mc->admin, ==, QMGR_ADMIN_F_REQUEUE);

  /* the attempts end deferred (the worker moved the files) */
  for (QmgrMessage *m = ma; m; m = m == ma ? mb : m == mb ? mc : NULL) {
    g_assert_cmpint(renameat(f->q->dir_fds[QUEUE_INCOMING], m->id, f->q->dir_fds[QUEUE_DEFERRED],
                             m->id), ==, 0);
    m->dir = QUEUE_DEFERRED;
    m->outcome = QMGR_OUTCOME_DEFERRED;
  }
  set_mtime(f, QUEUE_DEFERRED, c, g_get_real_time() / G_USEC_PER_SEC + 3600);
  g_assert_false(qmgr_admin_after_attempt(f->q, ma));
  g_assert_false(in_dir(f, QUEUE_DEFERRED, a));                     /* deleted after */
  g_assert_false(qmgr_admin_after_attempt(f->q, mb));
  g_assert_true(in_dir(f, QUEUE_HOLD, b));                          /* held after */
  g_assert_true(qmgr_admin_after_attempt(f->q, mc));                /* again at once */
  g_assert_cmpint(mtime(f, QUEUE_DEFERRED, c), <=, g_get_real_time() / G_USEC_PER_SEC + 1);

  /* an attempt that delivered everything leaves nothing to act on */
  mc->admin = QMGR_ADMIN_F_DELETE;
  mc->outcome = QMGR_OUTCOME_DONE;
  g_assert_false(qmgr_admin_after_attempt(f->q, mc));
  g_assert_true(in_dir(f, QUEUE_DEFERRED, c));   /* (the worker would have retired it) */
}

static void
test_snapshot(Fixture *f, gconstpointer data)
{
  g_autofree char *a = make_message(f, QUEUE_INCOMING, FALSE);
  g_autoptr(GHashTable) snap = NULL;

  g_assert_true(qmgr_scheduler_add(f->q, a, QUEUE_INCOMING));
  snap = qmgr_admin_snapshot(f->q);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(snap, a)), ==, 1);
  ((QmgrMessage *) g_hash_table_lookup(f->q->messages, a))->in_flight = TRUE;
  g_hash_table_unref(g_steal_pointer(&snap));
  snap = qmgr_admin_snapshot(f->q);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(snap, a)), ==, 2);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/qmgr/admin/delete-hold-release", Fixture, NULL, fixture_setup,
             test_delete_hold_release, fixture_teardown);
  g_test_add("/qmgr/admin/release-k-record", Fixture, NULL, fixture_setup,
             test_release_writes_k_record, fixture_teardown);
  g_test_add("/qmgr/admin/requeue", Fixture, NULL, fixture_setup, test_requeue, fixture_teardown);
  g_test_add("/qmgr/admin/in-flight", Fixture, NULL, fixture_setup, test_in_flight,
             fixture_teardown);
  g_test_add("/qmgr/admin/snapshot", Fixture, NULL, fixture_setup, test_snapshot,
             fixture_teardown);
  return g_test_run();
}
