/* test-queue-file.c - queue file writer/reader round trips, state
 * records, corruption handling, ids and directory housekeeping. */
#include "queue-file.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  f->dir = g_dir_make_tmp("postern-queue-XXXXXX", &error);
  g_assert_no_error(error);
  g_assert_true(queue_dirs_ensure(f->dir, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
}

static void
rm_rf(const char *path)
{
  GDir *d = g_dir_open(path, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name(d))) {
      g_autofree char *p = g_build_filename(path, name, NULL);
      rm_rf(p);
    }
    g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  rm_rf(f->dir);
  g_free(f->dir);
}

/* Names in incoming/, sorted. */
static GPtrArray *
list_incoming(const Fixture *f)
{
  g_autofree char *path = g_build_filename(f->dir, "incoming", NULL);
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GDir *d = g_dir_open(path, 0, NULL);
  const char *name;
  g_assert_nonnull(d);
  while ((name = g_dir_read_name(d)))
    g_ptr_array_add(names, g_strdup(name));
  g_dir_close(d);
  g_ptr_array_sort(names, (GCompareFunc) g_strcmp0);
  return names;
}

static QueueEnvelope *
sample_envelope(void)
{
  QueueEnvelope *env = queue_envelope_new();
  env->sender = g_strdup("sender@example.org");
  env->client_name = g_strdup("client.example.org");
  env->client_addr = g_strdup("192.0.2.10");
  env->helo = g_strdup("client.example.org");
  env->protocol = g_strdup("ESMTP");
  queue_envelope_add_recipient(env, "alice@example.com", NULL);
  queue_envelope_add_recipient(env, "bob@example.com", "bob");
  queue_envelope_add_recipient(env, "\"carol x\"@example.com", "\"carol x\"@example.com");
  return env;
}

/* Writes and commits a message; returns its id. */
static char *
write_message(const Fixture *f, const QueueEnvelope *env, const guchar *content, gsize len,
              gsize chunk)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_no_error(error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  for (gsize off = 0; off < len; off += chunk) {
    g_assert_true(queue_writer_content(w, content + off, MIN(chunk, len - off), &error));
    g_assert_no_error(error);
  }
  g_assert_cmpint(queue_writer_content_size(w), ==, (gint64) len);
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  return g_strdup(queue_writer_id(w));
}

static int
open_message(const Fixture *f, const char *id, int flags)
{
  g_autofree char *path = g_build_filename(f->dir, "incoming", id, NULL);
  int fd = open(path, flags | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  return fd;
}

static void
check_round_trip(Fixture *f, gsize size, gsize chunk)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autofree guchar *content = g_malloc(size + 1);
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < size; i++)
    content[i] = (guchar) ((i * 7 + i / 256) & 0xff);   /* every byte value: NUL, LF, 8-bit */
  g_autofree char *id = write_message(f, env, content, size, chunk);
  g_assert_true(queue_id_is_valid(id));

  int fd = open_message(f, id, O_RDONLY);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_nonnull(got);
  g_assert_cmpstr(got->queue_id, ==, id);
  g_assert_cmpstr(got->sender, ==, "sender@example.org");
  g_assert_cmpstr(got->client_name, ==, "client.example.org");
  g_assert_cmpstr(got->client_addr, ==, "192.0.2.10");
  g_assert_cmpstr(got->helo, ==, "client.example.org");
  g_assert_cmpstr(got->protocol, ==, "ESMTP");
  g_assert_null(got->auth_user);
  g_assert_cmpuint(got->recipients->len, ==, 3);
  QueueRecipient *r0 = got->recipients->pdata[0], *r1 = got->recipients->pdata[1],
                 *r2 = got->recipients->pdata[2];
  g_assert_cmpstr(r0->address, ==, "alice@example.com");
  g_assert_null(r0->orig_address);
  g_assert_cmpstr(r1->address, ==, "bob@example.com");
  g_assert_cmpstr(r1->orig_address, ==, "bob");
  g_assert_cmpstr(r2->address, ==, "\"carol x\"@example.com");
  g_assert_null(r2->orig_address);
  for (guint i = 0; i < 3; i++) {
    QueueRecipient *r = got->recipients->pdata[i];
    g_assert_cmpint(r->state, ==, RCPT_PENDING);
    g_assert_null(r->status);
  }
  g_assert_cmpuint(got->attempts, ==, 0);
  g_assert_cmpint(got->content_size, ==, (gint64) size);
  gint64 now = g_get_real_time();
  g_assert_cmpint(got->arrival_us, <=, now);
  g_assert_cmpint(got->arrival_us, >, now - 60 * G_USEC_PER_SEC);

  g_autofree guchar *back = g_malloc(size + 1);
  g_assert_cmpint(pread(fd, back, size, got->content_offset), ==, (gssize) size);
  g_assert_true(memcmp(back, content, size) == 0);
  close(fd);

  /* only the committed file is left */
  g_autoptr(GPtrArray) names = list_incoming(f);
  g_assert_cmpuint(names->len, ==, 1);
  g_assert_cmpstr(names->pdata[0], ==, id);
}

static void
test_round_trip_small(Fixture *f, gconstpointer data)
{
  check_round_trip(f, 4096, 1000);
}

static void
test_round_trip_large(Fixture *f, gconstpointer data)
{
  check_round_trip(f, 300 * 1024 + 17, 8191);
}

static void
test_round_trip_big_chunks(Fixture *f, gconstpointer data)
{
  check_round_trip(f, 1024 * 1024, 200 * 1024);
}

static void
test_round_trip_empty(Fixture *f, gconstpointer data)
{
  check_round_trip(f, 0, 1);
}

static void
test_null_sender_and_auth(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(GError) error = NULL;
  env->sender = g_strdup("");
  env->auth_user = g_strdup("joe");
  queue_envelope_add_recipient(env, "postmaster", NULL);
  g_autofree char *id = write_message(f, env, (const guchar *) "x", 1, 1);
  int fd = open_message(f, id, O_RDONLY);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(got->sender, ==, "");
  g_assert_cmpstr(got->auth_user, ==, "joe");
  g_assert_null(got->client_name);
  g_assert_null(got->helo);
  close(fd);
}

/* RFC 3461/6531 attributes survive the round trip; NOTIFY lists parse
 * and print canonically. */
static void
test_dsn_attributes(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  QueueRecipient *r;
  guint mask = 0;

  env->envid = g_strdup("QQ314159 x=y");
  env->ret = QUEUE_RET_HDRS;
  env->smtputf8 = TRUE;
  r = env->recipients->pdata[0];
  r->notify = QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY;
  r->orcpt = g_strdup("rfc822;Alice+x@example.com");
  r = env->recipients->pdata[2];
  r->notify = QUEUE_NOTIFY_NEVER;
  g_autofree char *id = write_message(f, env, (const guchar *) "x\n", 2, 2);
  int fd = open_message(f, id, O_RDONLY);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  close(fd);
  g_assert_cmpstr(got->envid, ==, "QQ314159 x=y");
  g_assert_cmpint(got->ret, ==, QUEUE_RET_HDRS);
  g_assert_true(got->smtputf8);
  r = got->recipients->pdata[0];
  g_assert_cmpuint(r->notify, ==, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY);
  g_assert_cmpstr(r->orcpt, ==, "rfc822;Alice+x@example.com");
  r = got->recipients->pdata[1];
  g_assert_cmpuint(r->notify, ==, 0);
  g_assert_null(r->orcpt);
  r = got->recipients->pdata[2];
  g_assert_cmpuint(r->notify, ==, QUEUE_NOTIFY_NEVER);

  g_assert_true(queue_notify_parse("failure,Success", &mask));
  g_assert_cmpuint(mask, ==, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE);
  g_assert_cmpstr(queue_notify_string(mask), ==, "SUCCESS,FAILURE");
  g_assert_true(queue_notify_parse("NEVER", &mask));
  g_assert_cmpstr(queue_notify_string(mask), ==, "NEVER");
  g_assert_false(queue_notify_parse("NEVER,DELAY", &mask));
  g_assert_false(queue_notify_parse("", &mask));
  g_assert_false(queue_notify_parse("SUCCESS,", &mask));
  g_assert_false(queue_notify_parse("ALWAYS", &mask));
}

/* The notice records: "W" (the delay notice is queued) and "Y" (the
 * success notices of the deliveries before it are queued). */
static void
test_notice_records(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  QueueRecipient *r;

  ((QueueRecipient *) env->recipients->pdata[0])->notify = QUEUE_NOTIFY_SUCCESS;
  ((QueueRecipient *) env->recipients->pdata[1])->notify =
      QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE;
  g_autofree char *id = write_message(f, env, (const guchar *) "x\n", 2, 2);
  int fd = open_message(f, id, O_RDWR);
  g_autoptr(QueueEnvelope) fresh = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_false(fresh->delay_warned);
  g_assert_false(((QueueRecipient *) fresh->recipients->pdata[0])->success_due);

  g_assert_true(queue_file_record(fd, 0, RCPT_DELIVERED, "delivered to mailbox", &error));
  g_assert_true(queue_file_record(fd, 2, RCPT_DELIVERED, "delivered to mailbox", &error));
  g_assert_true(queue_file_record(fd, 1, RCPT_PENDING, "mailbox is locked", &error));
  g_assert_true(queue_file_record_delay_warned(fd, &error));
  g_assert_no_error(error);
  g_autoptr(QueueEnvelope) mid = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_true(mid->delay_warned);
  g_assert_true(((QueueRecipient *) mid->recipients->pdata[0])->success_due);
  g_assert_false(((QueueRecipient *) mid->recipients->pdata[1])->success_due);
  /* no NOTIFY=SUCCESS: nothing due */
  g_assert_false(((QueueRecipient *) mid->recipients->pdata[2])->success_due);
  g_assert_cmpuint(mid->attempts, ==, 1);

  g_assert_true(queue_file_record_success_notified(fd, &error));
  g_assert_true(queue_file_record(fd, 1, RCPT_DELIVERED, "delivered to mailbox", &error));
  g_assert_no_error(error);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  close(fd);
  r = got->recipients->pdata[0];
  g_assert_false(r->success_due);     /* notified before */
  r = got->recipients->pdata[1];
  g_assert_true(r->success_due);      /* delivered after the Y record */
  g_assert_true(got->delay_warned);
}

static void
test_field_with_newline(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_free(env->helo);
  env->helo = g_strdup("evil\nR attacker@example.net");
  g_assert_false(queue_writer_envelope(w, env, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);

  g_autoptr(QueueEnvelope) empty = queue_envelope_new();
  g_autoptr(GError) e2 = NULL;
  g_autoptr(QueueWriter) w2 = queue_writer_new(f->dir, &e2);
  empty->sender = g_strdup("a@b");
  g_assert_false(queue_writer_envelope(w2, empty, &e2));
  g_assert_nonnull(e2);
}

static void
test_state_records(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  g_autofree char *id = write_message(f, env, (const guchar *) "Subject: x\n\nbody", 16, 16);
  int fd = open_message(f, id, O_RDWR);

  g_assert_true(queue_file_record_attempt(fd, &error));
  g_assert_true(queue_file_record(fd, 0, RCPT_DELIVERED, "delivered to mailbox", &error));
  g_assert_true(queue_file_record(fd, 1, RCPT_PENDING, "mailbox is locked", &error));
  g_assert_true(queue_file_record(fd, 2, RCPT_PENDING, "disk full", &error));
  g_assert_true(queue_file_record(fd, 1, RCPT_PENDING, "still locked", &error));
  g_assert_true(queue_file_record(fd, 2, RCPT_BOUNCED, "unknown user", &error));
  g_assert_true(queue_file_record(fd, 2, RCPT_PENDING, "ignored after final", &error));
  g_assert_no_error(error);

  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  QueueRecipient *r0 = got->recipients->pdata[0], *r1 = got->recipients->pdata[1],
                 *r2 = got->recipients->pdata[2];
  g_assert_cmpint(r0->state, ==, RCPT_DELIVERED);
  g_assert_cmpstr(r0->status, ==, "delivered to mailbox");
  g_assert_cmpint(r1->state, ==, RCPT_PENDING);
  g_assert_cmpstr(r1->status, ==, "still locked");
  g_assert_cmpint(r2->state, ==, RCPT_BOUNCED);
  g_assert_cmpstr(r2->status, ==, "unknown user");
  /* one N record, recipient 1 deferred twice: two attempts */
  g_assert_cmpuint(got->attempts, ==, 2);

  /* state record with a line break is refused */
  g_autoptr(GError) e2 = NULL;
  g_assert_false(queue_file_record(fd, 1, RCPT_PENDING, "a\nD1 0 x", &e2));
  g_assert_nonnull(e2);

  /* a torn last record (crash inside write) is ignored ... */
  struct stat st;
  g_assert_cmpint(fstat(fd, &st), ==, 0);
  g_assert_cmpint(pwrite(fd, "D1 12345 half", 13, st.st_size), ==, 13);
  g_autoptr(QueueEnvelope) torn = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpint(((QueueRecipient *) torn->recipients->pdata[1])->state, ==, RCPT_PENDING);

  /* ... and cut off by the next append */
  g_assert_true(queue_file_record(fd, 1, RCPT_DELIVERED, "finally", &error));
  g_autoptr(QueueEnvelope) after = queue_file_read(fd, &error);
  g_assert_no_error(error);
  r1 = after->recipients->pdata[1];
  g_assert_cmpint(r1->state, ==, RCPT_DELIVERED);
  g_assert_cmpstr(r1->status, ==, "finally");
  close(fd);
}

static void
test_attempt_counting(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  g_autofree char *id = write_message(f, env, (const guchar *) "x\n", 2, 2);
  int fd = open_message(f, id, O_RDWR);

  /* three attempts, each deferring all recipients: 3, not 9 */
  for (int a = 0; a < 3; a++)
    for (guint i = 0; i < 3; i++)
      g_assert_true(queue_file_record(fd, i, RCPT_PENDING, "try later", &error));
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(got->attempts, ==, 3);
  /* N records alone count too */
  for (int a = 0; a < 5; a++)
    g_assert_true(queue_file_record_attempt(fd, &error));
  g_autoptr(QueueEnvelope) got2 = queue_file_read(fd, &error);
  g_assert_cmpuint(got2->attempts, ==, 5);
  close(fd);
}

/* Writes a file with the given bytes and expects queue_file_read to fail
 * with POSTERN_ERROR_CORRUPT. */
static void
expect_corrupt(const Fixture *f, const char *bytes, gsize len)
{
  g_autofree char *path = g_build_filename(f->dir, "corrupt", "test", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_set_contents(path, bytes, (gssize) len, NULL));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  QueueEnvelope *env = queue_file_read(fd, &error);
  if (env)
    g_error("accepted corrupt file: %.*s", (int) len, bytes);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CORRUPT);
  close(fd);
}

#define HDR "POSTERN-QUEUE 1\nI0005F1234567890ABCDE\nT1700000000000000\nZ00000000000000000005\n"

static void
test_corrupt(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  static const char good[] = HDR "Sa@b\nRc@d\nX\nhelloE\nD0 1 ok\n";
  g_autofree char *path = g_build_filename(f->dir, "corrupt", "good", NULL);
  g_assert_true(g_file_set_contents(path, good, sizeof good - 1, NULL));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  g_autoptr(QueueEnvelope) env = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpint(((QueueRecipient *) env->recipients->pdata[0])->state, ==, RCPT_DELIVERED);
  close(fd);

  const char *const bad[] = {
    "",
    "POSTERN-QUEUE 2\n",
    "POSTERN-QUEUE 1\n",
    HDR "Sa@b\nRc@d\n",                          /* no X */
    HDR "Sa@b\nRc@d\nX\nhel",                    /* truncated content */
    HDR "Sa@b\nRc@d\nX\nhelloE",                 /* end mark torn */
    HDR "Sa@b\nRc@d\nX\nhelloXE\n",              /* size mismatch */
    HDR "Sa@b\nRc@d\nQq\nX\nhelloE\n",           /* unknown record */
    HDR "Sa@b\nX\nhelloE\n",                     /* no recipient */
    HDR "Rc@d\nX\nhelloE\n",                     /* no sender */
    HDR "Sa@b\nSa@b\nRc@d\nX\nhelloE\n",         /* duplicate */
    HDR "Sa@b\nOc@d\nRc@d\nX\nhelloE\n",         /* O before R */
    HDR "Sa@b\nRc@d\n\nX\nhelloE\n",             /* empty record */
    HDR "Sa@b\nRc@d\nX\nhelloE\nD1 1 ok\n",      /* index out of range */
    HDR "Sa@b\nRc@d\nX\nhelloE\nD0 x ok\n",      /* bad time */
    HDR "Sa@b\nRc@d\nX\nhelloE\nK0 1 ok\n",      /* unknown state record */
    HDR "Sa@b\nRc@d\nX\nhelloE\nNx\n",           /* bad attempt */
    HDR "Sa@b\nRc@d\nX\nhelloE\nW\n",            /* bad delay notice record */
    HDR "Sa@b\nRc@d\nX\nhelloE\nYx\n",           /* bad success notice record */
    HDR "Sa@b\nRc@d\nX\nhelloE\n\nD0 1 ok\n",    /* empty trailer line */
    HDR "Sa@b\nRc@d\nX\nhelloE\nD0 1 ok\nRe@f\n", /* extracted record after state */
    HDR "Sa@b\nRc@d\nX\nhelloE\nN1\nLhold\n",    /* ... of any kind */
    HDR "Sa@b\nRc@d\nX\nhelloE\n>\n",           /* empty redirect */
    HDR "Sa@b\n>e@f\n>e@f\nRc@d\nX\nhelloE\n",   /* two redirects in the envelope */
    "POSTERN-QUEUE 1\nIxyz\nT1\nZ00000000000000000005\nSa@b\nRc@d\nX\nhelloE\n",
    "POSTERN-QUEUE 1\nI0005F1234567890ABCDE\nT1\nZ5\nSa@b\nRc@d\nX\nhelloE\n",
    "POSTERN-QUEUE 1\nI0005F1234567890ABCDE\nZ00000000000000000005\nSa@b\nRc@d\nX\nhelloE\n",
    "POSTERN-QUEUE 1\nI0005F1234567890ABCDE\nT1\nZ09223372036854775807\nSa@b\nRc@d\nX\nhelloE\n",
    "POSTERN-QUEUE 1\nI0005F1234567890ABCDE\nT1\nZ99999999999999999999\nSa@b\nRc@d\nX\nhelloE\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
    expect_corrupt(f, bad[i], strlen(bad[i]));

  /* a NUL inside the envelope */
  static const char nul[] = HDR "Sa\0b\nRc@d\nX\nhelloE\n";
  expect_corrupt(f, nul, sizeof nul - 1);

  /* a committed file cut short in its content */
  g_autoptr(QueueEnvelope) senv = sample_envelope();
  g_autofree char *id = write_message(f, senv, (const guchar *) "0123456789", 10, 10);
  int wfd = open_message(f, id, O_RDWR);
  struct stat st;
  g_assert_cmpint(fstat(wfd, &st), ==, 0);
  g_assert_cmpint(ftruncate(wfd, st.st_size - 5), ==, 0);
  g_autoptr(GError) e2 = NULL;
  g_assert_null(queue_file_read(wfd, &e2));
  g_assert_error(e2, POSTERN_ERROR, POSTERN_ERROR_CORRUPT);
  close(wfd);
}

static void
test_ids(Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(QueueEnvelope) env = sample_envelope();
  guint committed = 0;

  /* 1000 writers, 100 open at a time; every other one committed */
  for (int batch = 0; batch < 10; batch++) {
    QueueWriter *open_w[100];
    for (int i = 0; i < 100; i++) {
      g_autoptr(GError) error = NULL;
      open_w[i] = queue_writer_new(f->dir, &error);
      g_assert_no_error(error);
      const char *id = queue_writer_id(open_w[i]);
      g_assert_true(queue_id_is_valid(id));
      g_assert_cmpuint(strlen(id), >=, 18);
      g_assert_false(g_hash_table_contains(seen, id));
      g_hash_table_add(seen, g_strdup(id));
      g_ptr_array_add(order, g_strdup(id));
    }
    for (int i = 0; i < 100; i++) {
      g_autoptr(GError) error = NULL;
      if (i % 2 == 0) {
        g_assert_true(queue_writer_envelope(open_w[i], env, &error));
        g_assert_true(queue_writer_content(open_w[i], "x\n", 2, &error));
        g_assert_true(queue_writer_commit(open_w[i], &error));
        g_assert_no_error(error);
        committed++;
      }
      queue_writer_free(open_w[i]);
    }
  }
  g_assert_cmpuint(g_hash_table_size(seen), ==, 1000);
  /* ids sort in creation order */
  for (guint i = 1; i < order->len; i++)
    g_assert_cmpstr(order->pdata[i - 1], <, order->pdata[i]);
  /* exactly the committed ones remain, no temp files */
  g_autoptr(GPtrArray) names = list_incoming(f);
  g_assert_cmpuint(names->len, ==, committed);
  for (guint i = 0; i < names->len; i++)
    g_assert_true(queue_id_is_valid(names->pdata[i]));
}

static void
test_id_is_valid(void)
{
  g_assert_true(queue_id_is_valid("0005F12345678901234"));
  g_assert_true(queue_id_is_valid("0123456789ABCDEF01"));
  g_assert_false(queue_id_is_valid("0123456789ABCDEF0"));      /* 17 */
  g_assert_false(queue_id_is_valid("0123456789abcdef01"));     /* lower case */
  g_assert_false(queue_id_is_valid(".t123.4"));
  g_assert_false(queue_id_is_valid(""));
  g_assert_false(queue_id_is_valid(NULL));
  g_assert_false(queue_id_is_valid("0123456789ABCDEF0123456789ABCDEF0123456789"));  /* > max */
}

static void
test_free_without_commit(Fixture *f, gconstpointer data)
{
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(GError) error = NULL;
  QueueWriter *w = queue_writer_new(f->dir, &error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, "partial", 7, &error));
  g_autoptr(GPtrArray) during = list_incoming(f);
  g_assert_cmpuint(during->len, ==, 1);
  g_assert_true(g_str_has_prefix(during->pdata[0], ".t"));
  queue_writer_free(w);
  g_autoptr(GPtrArray) after = list_incoming(f);
  g_assert_cmpuint(after->len, ==, 0);

  /* commit without envelope fails and leaves nothing */
  QueueWriter *w2 = queue_writer_new(f->dir, &error);
  g_assert_false(queue_writer_commit(w2, &error));
  g_assert_nonnull(error);
  queue_writer_free(w2);
  g_autoptr(GPtrArray) after2 = list_incoming(f);
  g_assert_cmpuint(after2->len, ==, 0);
}

static void
test_cleanup(Fixture *f, gconstpointer data)
{
  g_autofree char *stale = g_build_filename(f->dir, "incoming", ".t999999.1", NULL);
  g_autofree char *fresh = g_build_filename(f->dir, "incoming", ".t999999.2", NULL);
  g_autoptr(QueueEnvelope) env = sample_envelope();
  struct timespec old[2] = { { .tv_sec = time(NULL) - 7200 }, { .tv_sec = time(NULL) - 7200 } };

  g_autofree char *id = write_message(f, env, (const guchar *) "x", 1, 1);
  g_assert_true(g_file_set_contents(stale, "junk", 4, NULL));
  g_assert_true(g_file_set_contents(fresh, "junk", 4, NULL));
  g_assert_cmpint(utimensat(AT_FDCWD, stale, old, 0), ==, 0);
  /* the committed file is old too, but is not a temp file */
  g_autofree char *committed = g_build_filename(f->dir, "incoming", id, NULL);
  g_assert_cmpint(utimensat(AT_FDCWD, committed, old, 0), ==, 0);

  g_assert_cmpuint(queue_incoming_cleanup(f->dir, 3600), ==, 1);
  g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(fresh, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(committed, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(queue_incoming_cleanup(f->dir, 0), ==, 1);
  g_assert_false(g_file_test(fresh, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(queue_incoming_cleanup("/nonexistent/postern", 0), ==, 0);
}

static mode_t
dir_mode(const char *base, const char *sub)
{
  g_autofree char *p = sub ? g_build_filename(base, sub, NULL) : g_strdup(base);
  struct stat st;
  g_assert_cmpint(stat(p, &st), ==, 0);
  g_assert_true(S_ISDIR(st.st_mode));
  return st.st_mode & 07777;
}

static void
test_dirs(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *deferred = g_build_filename(f->dir, "deferred", NULL);

  g_assert_cmpint(dir_mode(f->dir, NULL), ==, 0755);
  g_assert_cmpint(dir_mode(f->dir, "incoming"), ==, 0730);
  g_assert_cmpint(dir_mode(f->dir, "recycle"), ==, 0730);   /* smtpd takes spares there */
  for (QueueDir d = QUEUE_ACTIVE; d < QUEUE_RECYCLE; d++)
    g_assert_cmpint(dir_mode(f->dir, queue_dir_name(d)), ==, 0700);
  g_assert_cmpstr(queue_dir_name(QUEUE_INCOMING), ==, "incoming");
  g_assert_cmpstr(queue_dir_name(QUEUE_CORRUPT), ==, "corrupt");

  /* idempotent, and it repairs modes */
  g_assert_cmpint(chmod(deferred, 0777), ==, 0);
  g_assert_true(queue_dirs_ensure(f->dir, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
  g_assert_cmpint(dir_mode(f->dir, "deferred"), ==, 0700);

  /* a nested new queue directory */
  g_autofree char *nested = g_build_filename(f->dir, "a", "b", "spool", NULL);
  g_assert_true(queue_dirs_ensure(nested, (uid_t) -1, (gid_t) -1, &error));
  g_assert_cmpint(dir_mode(nested, "hold"), ==, 0700);

  /* owner of incoming/ when running as root */
  if (geteuid() == 0) {
    struct stat st;
    g_autofree char *incoming = g_build_filename(f->dir, "incoming", NULL);
    g_assert_true(queue_dirs_ensure(f->dir, 12345, 23456, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stat(incoming, &st), ==, 0);
    g_assert_cmpint(st.st_uid, ==, 12345);
    g_assert_cmpint(st.st_gid, ==, 23456);
    g_autofree char *recycle = g_build_filename(f->dir, "recycle", NULL);
    g_assert_cmpint(stat(recycle, &st), ==, 0);
    g_assert_cmpint(st.st_uid, ==, 12345);
    g_assert_cmpint(stat(deferred, &st), ==, 0);
    g_assert_cmpint(st.st_uid, ==, 0);
  }

  /* a file in the way */
  g_autofree char *blocked = g_build_filename(f->dir, "blocked", NULL);
  g_autofree char *hold = g_build_filename(blocked, "hold", NULL);
  g_assert_cmpint(g_mkdir(blocked, 0755), ==, 0);
  g_assert_true(g_file_set_contents(hold, "", 0, NULL));
  g_autoptr(GError) e2 = NULL;
  g_assert_false(queue_dirs_ensure(blocked, (uid_t) -1, (gid_t) -1, &e2));
  g_assert_nonnull(e2);
}

/* Runs queue_dirs_check_writable() as uid/gid 65534 in a child; TRUE when it passed. */
static gboolean
check_writable_as_nobody(const char *dir, const char *want_in_error)
{
  pid_t pid = fork();
  int status;

  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    g_autoptr(GError) error = NULL;
    if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
      _exit(3);
    if (queue_dirs_check_writable(dir, &error))
      _exit(0);
    _exit(want_in_error != NULL && strstr(error->message, want_in_error) != NULL ? 1 : 2);
  }
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  g_assert_true(WIFEXITED(status));
  g_assert_cmpint(WEXITSTATUS(status), <=, 1);
  return WEXITSTATUS(status) == 0;
}

/* smtpd under systemd (User=postern) checks a root-owned queue instead of
 * trying to chown it. */
static void
test_dirs_check_writable(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename(f->dir, "nothing-here", NULL);
  g_autofree char *incoming = g_build_filename(f->dir, "incoming", NULL);
  g_autofree char *recycle = g_build_filename(f->dir, "recycle", NULL);

  g_assert_true(queue_dirs_check_writable(f->dir, &error));
  g_assert_no_error(error);
  g_assert_false(queue_dirs_check_writable(missing, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "nothing-here/incoming: missing for uid"));
  g_assert_nonnull(strstr(error->message, "systemd-tmpfiles --create postern.conf"));
  g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));   /* nothing created */
  if (geteuid() != 0)
    return;

  /* A root-owned tree: the mail owner may write incoming/ and recycle/ only
   * once they are its own, as tmpfiles.d and qmgr make them. */
  g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
  g_assert_false(check_writable_as_nobody(f->dir, "incoming: Permission denied for uid 65534"));
  g_assert_cmpint(chown(incoming, 65534, 65534), ==, 0);
  g_assert_false(check_writable_as_nobody(f->dir, "recycle: Permission denied for uid 65534"));
  g_assert_cmpint(chown(recycle, 65534, 65534), ==, 0);
  g_assert_true(check_writable_as_nobody(f->dir, NULL));
  g_assert_cmpint(dir_mode(f->dir, "incoming"), ==, 0730);   /* unchanged */
}

static void
test_writer_missing_dir(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(queue_writer_new("/nonexistent/postern", &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
}

#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

/* Commits one message with the given body; returns its id. */
static char *
commit_one(const Fixture *f, const char *body)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_no_error(error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, body, strlen(body), &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  return g_strdup(queue_writer_id(w));
}

static int
open_dir(const Fixture *f, const char *sub)
{
  g_autofree char *path = g_build_filename(f->dir, sub, NULL);
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  g_assert_cmpint(fd, >=, 0);
  return fd;
}

/* A retired file goes to recycle/ emptied, and the next writer reuses its
 * inode; the reused file reads back exactly like a new one. */
static void
test_recycle(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id1 = commit_one(f, "first message, quite a bit longer than the second\n");
  int in_fd = open_dir(f, "incoming"), rc_fd = open_dir(f, "recycle");
  int fd = openat(in_fd, id1, O_RDWR);
  struct stat st1, st;
  gboolean recycled = FALSE;

  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(fstat(fd, &st1), ==, 0);
  g_assert_true(queue_file_retire(in_fd, id1, fd, rc_fd, TRUE, &recycled, &error));
  g_assert_no_error(error);
  g_assert_true(recycled);
  close(fd);
  g_assert_cmpint(fstatat(in_fd, id1, &st, 0), <, 0);
  g_assert_cmpint(fstatat(rc_fd, id1, &st, 0), ==, 0);
  g_assert_cmpint(st.st_size, ==, 0);            /* nothing of the old message left */
  fd = openat(rc_fd, id1, O_RDONLY);
  g_assert_true(queue_file_is_retired(fd));
  close(fd);
  g_assert_cmpuint(queue_recycle_count(rc_fd), ==, 1);

  /* A writer that found recycle/ empty looks again only after 200 ms. */
  g_usleep(250 * 1000);
  g_autofree char *id2 = commit_one(f, "second\n");
  g_assert_cmpstr(id2, !=, id1);
  g_assert_cmpuint(queue_recycle_count(rc_fd), ==, 0);
  fd = openat(in_fd, id2, O_RDWR);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(fstat(fd, &st), ==, 0);
  g_assert_cmpuint(st.st_ino, ==, st1.st_ino);   /* the same inode, reused */
  g_assert_false(queue_file_is_retired(fd));
  g_autoptr(QueueEnvelope) env = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpint(env->content_size, ==, strlen("second\n"));
  char buf[16] = "";
  g_assert_cmpint(pread(fd, buf, env->content_size, env->content_offset), ==, strlen("second\n"));
  g_assert_cmpstr(buf, ==, "second\n");

  /* keep = FALSE: plainly removed. */
  g_assert_true(queue_file_retire(in_fd, id2, fd, rc_fd, FALSE, &recycled, &error));
  g_assert_false(recycled);
  g_assert_cmpint(fstatat(in_fd, id2, &st, 0), <, 0);
  g_assert_cmpuint(queue_recycle_count(rc_fd), ==, 0);
  close(fd);
  close(in_fd);
  close(rc_fd);
}

/* The hold flag survives the round trip, and the K record marks it done. */
static void
test_hold_flag(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = sample_envelope();
  env->hold = TRUE;
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, "x\n", 2, &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  int in_fd = open_dir(f, "incoming");
  int fd = openat(in_fd, queue_writer_id(w), O_RDWR);
  g_assert_cmpint(fd, >=, 0);
  g_autoptr(QueueEnvelope) r1 = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_true(r1->hold);
  g_assert_false(r1->hold_done);
  g_assert_true(queue_file_record_held(fd, &error));
  g_autoptr(QueueEnvelope) r2 = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_true(r2->hold);
  g_assert_true(r2->hold_done);
  g_assert_cmpuint(r2->recipients->len, ==, 3);
  close(fd);
  close(in_fd);
}

/* Reads the whole file at dir/name. */
static char *
read_queue_file(const Fixture *f, const char *id, gsize *len)
{
  g_autofree char *path = g_build_filename(f->dir, "incoming", id, NULL);
  char *bytes = NULL;
  g_assert_true(g_file_get_contents(path, &bytes, len, NULL));
  return bytes;
}

/* REDIRECT, BCC and HOLD decided after the content: extracted records
 * right behind the end mark, exact bytes, read back as envelope fields
 * and recipients that state records can name. */
static void
test_extracted_records(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  env->sender = g_strdup("s@example.org");
  queue_envelope_add_recipient(env, "a@example.com", NULL);
  queue_envelope_add_recipient(env, "b@example.com", NULL);
  g_autoptr(GPtrArray) bcc = g_ptr_array_new();
  g_ptr_array_add(bcc, "copy@example.net");
  g_ptr_array_add(bcc, "audit@example.net");
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, "hello\n", 6, &error));
  g_assert_true(queue_writer_extracted(w, TRUE, "boss@example.net", bcc, &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  const char *id = queue_writer_id(w);

  gsize len;
  g_autofree char *bytes = read_queue_file(f, id, &len);
  static const char tail[] = "X\nhello\nE\nLhold\n>boss@example.net\nRcopy@example.net\n"
                             "Raudit@example.net\n";
  g_assert_cmpuint(len, >, sizeof tail - 1);
  g_assert_cmpstr(bytes + len - (sizeof tail - 1), ==, tail);

  int fd = open_message(f, id, O_RDWR);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_true(got->hold);
  g_assert_false(got->hold_done);
  g_assert_cmpstr(got->redirect, ==, "boss@example.net");
  g_assert_cmpint(got->content_size, ==, 6);
  g_assert_cmpuint(got->recipients->len, ==, 4);
  g_assert_cmpstr(((QueueRecipient *) got->recipients->pdata[2])->address, ==,
                  "copy@example.net");
  g_assert_cmpstr(((QueueRecipient *) got->recipients->pdata[3])->address, ==,
                  "audit@example.net");

  /* the extra recipients take part in the state records */
  g_assert_true(queue_file_record(fd, 3, RCPT_DELIVERED, "delivered", &error));
  g_assert_true(queue_file_record(fd, 0, RCPT_PENDING, "later", &error));
  g_assert_true(queue_file_record_held(fd, &error));
  g_autoptr(QueueEnvelope) again = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_cmpint(((QueueRecipient *) again->recipients->pdata[3])->state, ==, RCPT_DELIVERED);
  g_assert_cmpint(((QueueRecipient *) again->recipients->pdata[0])->state, ==, RCPT_PENDING);
  g_assert_cmpint(((QueueRecipient *) again->recipients->pdata[2])->state, ==, RCPT_PENDING);
  g_assert_cmpuint(again->attempts, ==, 1);
  g_assert_true(again->hold_done);
  close(fd);
}

/* A REDIRECT in the envelope round-trips; a later one behind the content
 * replaces it (the last REDIRECT wins, as in Postfix).  Without any, the
 * file ends with the bare end mark. */
static void
test_redirect_envelope_and_extracted(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = sample_envelope();
  env->redirect = g_strdup("first@example.net");
  g_autofree char *id1 = write_message(f, env, (const guchar *) "x\n", 2, 2);
  int fd1 = open_message(f, id1, O_RDONLY);
  g_autoptr(QueueEnvelope) got1 = queue_file_read(fd1, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(got1->redirect, ==, "first@example.net");
  g_assert_false(got1->hold);
  g_assert_cmpuint(got1->recipients->len, ==, 3);
  close(fd1);

  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, "y\n", 2, &error));
  g_assert_true(queue_writer_extracted(w, FALSE, "last@example.net", NULL, &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  int fd2 = open_message(f, queue_writer_id(w), O_RDONLY);
  g_autoptr(QueueEnvelope) got2 = queue_file_read(fd2, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(got2->redirect, ==, "last@example.net");
  g_assert_cmpuint(got2->recipients->len, ==, 3);
  close(fd2);

  g_autoptr(QueueEnvelope) plain = sample_envelope();
  g_autofree char *id3 = write_message(f, plain, (const guchar *) "z\n", 2, 2);
  gsize len;
  g_autofree char *bytes = read_queue_file(f, id3, &len);
  g_assert_cmpuint(len, >, 5);
  g_assert_cmpstr(bytes + len - 5, ==, "\nz\nE\n");
}

/* A value that cannot be one record is refused before anything is
 * written: the message can still be committed, without extracted records. */
static void
test_extracted_refused(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = sample_envelope();
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, "x\n", 2, &error));
  g_autoptr(GPtrArray) bcc = g_ptr_array_new();
  g_ptr_array_add(bcc, "evil@example.net\nRattacker@example.net");
  g_assert_false(queue_writer_extracted(w, TRUE, NULL, bcc, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_clear_error(&error);
  g_assert_false(queue_writer_extracted(w, FALSE, "a@b\r", NULL, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_clear_error(&error);
  g_assert_false(queue_writer_extracted(w, FALSE, "", NULL, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_clear_error(&error);
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  int fd = open_message(f, queue_writer_id(w), O_RDONLY);
  g_autoptr(QueueEnvelope) got = queue_file_read(fd, &error);
  g_assert_no_error(error);
  g_assert_false(got->hold);
  g_assert_null(got->redirect);
  g_assert_cmpuint(got->recipients->len, ==, 3);
  close(fd);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ADD("/queue-file/round-trip/small", test_round_trip_small);
  ADD("/queue-file/round-trip/large", test_round_trip_large);
  ADD("/queue-file/round-trip/big-chunks", test_round_trip_big_chunks);
  ADD("/queue-file/round-trip/empty", test_round_trip_empty);
  ADD("/queue-file/null-sender-auth", test_null_sender_and_auth);
  ADD("/queue-file/dsn-attributes", test_dsn_attributes);
  ADD("/queue-file/notice-records", test_notice_records);
  ADD("/queue-file/field-newline", test_field_with_newline);
  ADD("/queue-file/state-records", test_state_records);
  ADD("/queue-file/attempts", test_attempt_counting);
  ADD("/queue-file/corrupt", test_corrupt);
  ADD("/queue-file/ids", test_ids);
  ADD("/queue-file/free-without-commit", test_free_without_commit);
  ADD("/queue-file/cleanup", test_cleanup);
  ADD("/queue-file/dirs", test_dirs);
  ADD("/queue-file/dirs-check-writable", test_dirs_check_writable);
  ADD("/queue-file/recycle", test_recycle);
  ADD("/queue-file/hold-flag", test_hold_flag);
  ADD("/queue-file/extracted", test_extracted_records);
  ADD("/queue-file/redirect", test_redirect_envelope_and_extracted);
  ADD("/queue-file/extracted-refused", test_extracted_refused);
  g_test_add_func("/queue-file/id-is-valid", test_id_is_valid);
  g_test_add_func("/queue-file/writer-missing-dir", test_writer_missing_dir);
  return g_test_run();
}
