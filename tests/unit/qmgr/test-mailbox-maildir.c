/* test-mailbox-maildir.c - the maildir writer: directory creation,
 * unique names in Postfix's style, headers, no quoting, size limit. */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mailbox.h"

typedef struct {
  char *dir;
  char *maildir;
  int fd;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-maildir-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
  f->maildir = g_build_filename(f->dir, "home", "Maildir", NULL);
  f->fd = -1;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

  if (f->fd >= 0)
    close(f->fd);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(f->maildir);
  g_free(f->dir);
}

static void
fixture_content(Fixture *f, const char *content, MailboxMessage *m)
{
  g_autofree char *path = g_build_filename(f->dir, "queuefile", NULL);

  f->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  g_assert_cmpint(f->fd, >=, 0);
  g_assert_cmpint(write(f->fd, "HEAD", 4), ==, 4);
  g_assert_cmpint(write(f->fd, content, strlen(content)), ==, (ssize_t) strlen(content));
  *m = (MailboxMessage) {
    .fd = f->fd, .offset = 4, .size = (gint64) strlen(content),
    .sender = "alice@example.org", .orig_rcpt = "postmaster@localhost",
    .delivered_to = "Root@localhost", .hostname = "mx.example.org",
  };
}

static guint
count_entries(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  guint n = 0;

  g_assert_nonnull(d);
  while (g_dir_read_name(d))
    n++;
  return n;
}

static void
test_deliver(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GRegex) re = g_regex_new("^[0-9]+\\.V[0-9a-f]+I[0-9a-f]+M[0-9]+\\.mx\\.example\\.org"
                                     ",S=([0-9]+),W=([0-9]+)$", 0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree char *name = NULL, *path = NULL, *text = NULL, *tmp = NULL, *cur = NULL, *new = NULL;
  MailboxMessage m;
  struct stat st;

  fixture_content(f, "Subject: hi\n\nFrom here\nno newline", &m);
  g_assert_true(mailbox_maildir_deliver(f->maildir, &m, &name, &error));
  g_assert_no_error(error);
  g_assert_true(g_regex_match(re, name, 0, &match));
  path = g_build_filename(f->maildir, "new", name, NULL);
  {
    /* ",S=" the file's size, ",W=" with CRLF line ends: 7 lines */
    g_autofree char *s_field = g_match_info_fetch(match, 1);
    g_autofree char *w_field = g_match_info_fetch(match, 2);
    struct stat fst;
    g_assert_cmpint(g_stat(path, &fst), ==, 0);
    g_assert_cmpint(g_ascii_strtoll(s_field, NULL, 10), ==, fst.st_size);
    g_assert_cmpint(g_ascii_strtoll(w_field, NULL, 10), ==, fst.st_size + 7);
  }
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_assert_cmpstr(text, ==,
                  "Return-Path: <alice@example.org>\n"
                  "X-Original-To: postmaster@localhost\n"
                  "Delivered-To: root@localhost\n"
                  "Subject: hi\n\nFrom here\nno newline\n");
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0600);
  g_assert_cmpuint(st.st_nlink, ==, 1);
  tmp = g_build_filename(f->maildir, "tmp", NULL);
  cur = g_build_filename(f->maildir, "cur", NULL);
  new = g_build_filename(f->maildir, "new", NULL);
  g_assert_cmpuint(count_entries(tmp), ==, 0);
  g_assert_cmpuint(count_entries(cur), ==, 0);
  g_assert_cmpint(g_stat(tmp, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0700);

  /* Many deliveries: all distinct names. */
  for (guint i = 0; i < 50; i++)
    g_assert_true(mailbox_maildir_deliver(f->maildir, &m, NULL, &error));
  g_assert_cmpuint(count_entries(new), ==, 51);
}

static void
test_hostname_encoding(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  MailboxMessage m;

  fixture_content(f, "x\n", &m);
  m.hostname = "a/b:c,d";
  g_assert_true(mailbox_maildir_deliver(f->maildir, &m, &name, &error));
  g_assert_nonnull(strstr(name, ".a\\057b\\072c\\054d,S="));
}

static void
test_size_limit(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *new = g_build_filename(f->maildir, "new", NULL);
  g_autofree char *tmp = g_build_filename(f->maildir, "tmp", NULL);
  MailboxMessage m;

  fixture_content(f, "Subject: x\n\n0123456789012345678901234567890123456789\n", &m);
  m.size_limit = 20;
  g_assert_false(mailbox_maildir_deliver(f->maildir, &m, NULL, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_assert_cmpuint(count_entries(new), ==, 0);
  g_assert_cmpuint(count_entries(tmp), ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/mailbox/maildir/deliver", test_deliver);
  ADD("/mailbox/maildir/hostname-encoding", test_hostname_encoding);
  ADD("/mailbox/maildir/size-limit", test_size_limit);
  return g_test_run();
}
