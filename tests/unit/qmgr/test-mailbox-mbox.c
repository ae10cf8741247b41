/* test-mailbox-mbox.c - the mbox writer: From_ line, headers, ">From "
 * quoting, final newline and blank line, locking, truncation on error. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mailbox.h"

typedef struct {
  char *dir;
  char *mbox;
  int fd;           /* the "queue file": some junk, then the content */
} Fixture;

#define JUNK "ENVELOPE RECORDS\n"

static void
fixture_content(Fixture *f, const char *content, MailboxMessage *m)
{
  g_autofree char *path = g_build_filename(f->dir, "queuefile", NULL);

  f->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  g_assert_cmpint(f->fd, >=, 0);
  g_assert_cmpint(write(f->fd, JUNK, strlen(JUNK)), ==, (ssize_t) strlen(JUNK));
  g_assert_cmpint(write(f->fd, content, strlen(content)), ==, (ssize_t) strlen(content));
  g_assert_cmpint(write(f->fd, "TRAILER", 7), ==, 7);
  *m = (MailboxMessage) {
    .fd = f->fd, .offset = strlen(JUNK), .size = (gint64) strlen(content),
    .sender = "alice@example.org", .orig_rcpt = "Bob@Localhost",
    .delivered_to = "Bob@Localhost", .hostname = "mx.example.org",
  };
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-mbox-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
  f->mbox = g_build_filename(f->dir, "bob", NULL);
  f->fd = -1;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

  if (f->fd >= 0)
    close(f->fd);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(f->mbox);
  g_free(f->dir);
}

static char *
read_file(const char *path)
{
  char *text = NULL;

  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  return text;
}

/* Strips the From_ line's date (it depends on the clock). */
static void
assert_from_line(const char *text, const char *sender)
{
  g_autofree char *expect = g_strdup_printf("From %s  ", sender);
  const char *nl = strchr(text, '\n');

  g_assert_true(g_str_has_prefix(text, expect));
  g_assert_nonnull(nl);
  /* asctime layout: 24 characters after the two spaces */
  g_assert_cmpint(nl - text, ==, (gssize) strlen(expect) + 24);
}

static void
test_quoting(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  MailboxMessage m;
  const char *expect_body =
    "Return-Path: <alice@example.org>\n"
    "X-Original-To: Bob@Localhost\n"
    "Delivered-To: bob@localhost\n"
    "Subject: test\n"
    "\n"
    ">From the start\n"
    ">From me\n"
    ">From here\n"
    "From\n"
    "Frommage\n"
    " From indented\n"
    "last line without newline\n"
    "\n";

  fixture_content(f, "Subject: test\n\nFrom the start\n>From me\n"
                     "From here\nFrom\nFrommage\n From indented\nlast line without newline", &m);
  g_assert_true(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
  text = read_file(f->mbox);
  assert_from_line(text, "alice@example.org");
  g_assert_cmpstr(strchr(text, '\n') + 1, ==, expect_body);
  /* ">From " lines stay as they are: only "From " is quoted, as Postfix. */
}

static void
test_append_null_sender(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL, *lock = g_strconcat(f->mbox, ".lock", NULL);
  MailboxMessage m;
  struct stat st;

  fixture_content(f, "Subject: one\n\nbody\n", &m);
  g_assert_true(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  m.sender = "";
  g_assert_true(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
  text = read_file(f->mbox);
  g_assert_nonnull(strstr(text, "\n\nFrom MAILER-DAEMON  "));
  g_assert_nonnull(strstr(text, "Return-Path: <>\n"));
  g_assert_true(g_str_has_suffix(text, "body\n\n"));
  g_assert_cmpint(g_stat(lock, &st), <, 0);        /* dotlock removed */
  g_assert_cmpint(g_stat(f->mbox, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

/* A chunk boundary in the middle of "From " must still be quoted. */
static void
test_large(Fixture *f, gconstpointer data)
{
  g_autoptr(GString) content = g_string_new("Subject: big\n\n");
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  MailboxMessage m;
  guint n_from = 0;

  while (content->len < 300 * 1024) {
    g_string_append(content, "From x\n");
    n_from++;
    g_string_append_len(content, "abcdefghijklmnopqrstuvwxyz0123456789", (gssize) (content->len % 37));
    g_string_append_c(content, '\n');
  }
  fixture_content(f, content->str, &m);
  g_assert_true(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  text = read_file(f->mbox);
  {
    guint quoted = 0;
    for (const char *p = text; (p = strstr(p, "\n>From x\n")) != NULL; p += 8)
      quoted++;
    g_assert_cmpuint(quoted, ==, n_from);
  }
}

static void
test_truncate_on_error(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) content = g_string_new("Subject: big\n\n");
  g_autofree char *text = NULL;
  const char *old = "From someone  Thu Jan  1 00:00:00 1970\nSubject: old\n\nold\n\n";
  MailboxMessage m;

  g_assert_true(g_file_set_contents(f->mbox, old, -1, NULL));
  g_assert_cmpint(chmod(f->mbox, 0600), ==, 0);
  while (content->len < 200 * 1024)
    g_string_append(content, "0123456789012345678901234567890123456789012345678901234567890123456789\n");
  fixture_content(f, content->str, &m);
  m.size_limit = (gint64) strlen(old) + 100 * 1024;   /* fails after the first 64 KiB went out */
  g_assert_false(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_assert_cmpstr(error->message, ==, "error writing message: File too large");
  text = read_file(f->mbox);
  g_assert_cmpstr(text, ==, old);

  /* A mailbox already at the limit fails at once, also permanently. */
  g_clear_error(&error);
  m.size_limit = (gint64) strlen(old);
  g_assert_false(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
}

static void
test_stale_lock(Fixture *f, gconstpointer data)
{
  g_autofree char *lock = g_strconcat(f->mbox, ".lock", NULL);
  g_autoptr(GError) error = NULL;
  struct timespec old[2] = { { .tv_sec = 1000 }, { .tv_sec = 1000 } };
  MailboxMessage m;

  g_assert_true(g_file_set_contents(lock, "", 0, NULL));
  g_assert_cmpint(utimensat(AT_FDCWD, lock, old, 0), ==, 0);
  fixture_content(f, "x\n", &m);
  g_assert_true(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
}

static void
test_symlink_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *target = g_build_filename(f->dir, "target", NULL);
  g_autoptr(GError) error = NULL;
  MailboxMessage m;

  g_assert_true(g_file_set_contents(target, "", 0, NULL));
  g_assert_cmpint(symlink(target, f->mbox), ==, 0);
  fixture_content(f, "x\n", &m);
  g_assert_false(mailbox_mbox_deliver(f->mbox, &m, (uid_t) -1, (gid_t) -1, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/mailbox/mbox/quoting", test_quoting);
  ADD("/mailbox/mbox/append-null-sender", test_append_null_sender);
  ADD("/mailbox/mbox/large", test_large);
  ADD("/mailbox/mbox/truncate-on-error", test_truncate_on_error);
  ADD("/mailbox/mbox/stale-lock", test_stale_lock);
  ADD("/mailbox/mbox/symlink-refused", test_symlink_refused);
  return g_test_run();
}
