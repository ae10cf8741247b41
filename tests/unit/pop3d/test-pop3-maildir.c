/* test-pop3-maildir.c - a maildir as a POP3 drop: order, sizes, UIDLs
 * that survive the move to cur/, RETR/TOP, and UPDATE (deletions and the
 * seen flag), with nothing changed when UPDATE does not happen. */
#include "pop3-maildir.h"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *dir;
} Fixture;

static void
put(Fixture *f, const char *sub, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename(f->dir, sub, name, NULL);

  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-pop3-maildir-XXXXXX", NULL);
  for (guint i = 0; i < 3; i++) {
    g_autofree char *sub = g_build_filename(f->dir, (const char *[]) { "new", "cur", "tmp" }[i],
                                            NULL);
    g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
  }
  /* delivery order: 100 (cur, seen), 200 (new), 300 (new, with W=) */
  put(f, "cur", "100.V1I1M1.host:2,S", "Subject: one\n\n.dot\n");
  put(f, "new", "200.V1I2M2.host", "Subject: two\n\nline1\nline2\nline3\n");
  put(f, "new", "300.V1I3M3.host,S=17,W=18", "Subject: three\n\n");
  put(f, "new", ".hidden", "not a message");
  put(f, "tmp", "150.V1I9M9.host", "in delivery");
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf %s", f->dir);

  g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
  g_free(f->dir);
}

static Pop3Message *
msg(Pop3Maildir *m, guint i)
{
  return g_ptr_array_index(m->messages, i);
}

static void
test_scan_and_read(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
  g_autoptr(GString) out = g_string_new(NULL);

  g_assert_no_error(error);
  g_assert_cmpuint(m->messages->len, ==, 3);
  g_assert_cmpstr(msg(m, 0)->uidl, ==, "100.V1I1M1.host");
  g_assert_cmpstr(msg(m, 1)->uidl, ==, "200.V1I2M2.host");
  g_assert_cmpstr(msg(m, 2)->uidl, ==, "300.V1I3M3.host,S=17,W=18");
  g_assert_cmpuint(msg(m, 0)->octets, ==, 22);     /* "Subject: one\r\n\r\n.dot\r\n" */
  g_assert_cmpuint(msg(m, 1)->octets, ==, 37);
  g_assert_cmpuint(msg(m, 2)->octets, ==, 18);     /* from W=, not the file */
  g_assert_false(msg(m, 0)->in_new);
  g_assert_true(msg(m, 1)->in_new);

  g_assert_true(pop3_maildir_read(m, 0, G_MAXUINT, out, &error));
  g_assert_cmpstr(out->str, ==, "Subject: one\r\n\r\n..dot\r\n.\r\n");
  g_string_truncate(out, 0);
  g_assert_true(pop3_maildir_read(m, 1, 1, out, &error));
  g_assert_cmpstr(out->str, ==, "Subject: two\r\n\r\nline1\r\n.\r\n");

  /* a message removed behind our back */
  {
    g_autofree char *path = g_build_filename(f->dir, "new", "200.V1I2M2.host", NULL);
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_string_truncate(out, 0);
    g_assert_false(pop3_maildir_read(m, 1, G_MAXUINT, out, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
  }
}

static void
test_update(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uidls = NULL;

  {
    /* a session that ends without UPDATE changes nothing */
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    msg(m, 0)->deleted = TRUE;
    msg(m, 1)->retrieved = TRUE;
  }
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    g_assert_cmpuint(m->messages->len, ==, 3);
    msg(m, 0)->deleted = TRUE;        /* DELE 1 */
    msg(m, 1)->retrieved = TRUE;      /* RETR 2 */
    g_assert_true(pop3_maildir_commit(m, &error));
    g_assert_no_error(error);
  }
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    g_autofree char *seen = g_build_filename(f->dir, "cur", "200.V1I2M2.host:2,S", NULL);

    g_assert_cmpuint(m->messages->len, ==, 2);
    /* the UIDL of the retrieved message stays the same in cur/ */
    g_assert_cmpstr(msg(m, 0)->uidl, ==, "200.V1I2M2.host");
    g_assert_false(msg(m, 0)->in_new);
    g_assert_true(g_file_test(seen, G_FILE_TEST_EXISTS));
    g_assert_cmpstr(msg(m, 1)->uidl, ==, "300.V1I3M3.host,S=17,W=18");
  }
}

/* A message read by another client (in cur/ without S, with other
 * flags) gets S added in order when retrieved; its UIDL stays. */
static void
test_seen_flag_in_cur(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *seen = g_build_filename(f->dir, "cur", "050.V1I5M5.host:2,FRS", NULL);
  g_autofree char *bare = g_build_filename(f->dir, "cur", "060.V1I6M6.host:2,S", NULL);

  put(f, "cur", "050.V1I5M5.host:2,FR", "Subject: old\n\n");
  put(f, "cur", "060.V1I6M6.host", "Subject: no info\n\n");
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    g_assert_cmpstr(msg(m, 0)->uidl, ==, "050.V1I5M5.host");
    g_assert_cmpstr(msg(m, 1)->uidl, ==, "060.V1I6M6.host");
    msg(m, 0)->retrieved = TRUE;
    msg(m, 1)->retrieved = TRUE;
    msg(m, 2)->retrieved = TRUE;    /* already S: unchanged */
    g_assert_true(pop3_maildir_commit(m, &error));
  }
  g_assert_true(g_file_test(seen, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(bare, G_FILE_TEST_EXISTS));
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    g_autofree char *one = g_build_filename(f->dir, "cur", "100.V1I1M1.host:2,S", NULL);

    g_assert_cmpstr(msg(m, 0)->uidl, ==, "050.V1I5M5.host");
    g_assert_true(g_file_test(one, G_FILE_TEST_EXISTS));
  }
}

static void
test_odd_names_and_symlinks(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *link = g_build_filename(f->dir, "new", "400.V1I4M4.host", NULL);
  g_autofree char *xs = g_strnfill(80, 'x');
  g_autofree char *longname = g_strdup_printf("500.%s", xs);

  g_assert_cmpint(symlink("/etc/passwd", link), ==, 0);   /* never followed */
  put(f, "new", longname, "Subject: long\n\n");
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open(f->dir, &error);
    g_assert_cmpuint(m->messages->len, ==, 4);
    /* a name too long for a UIDL: its digest, 64 hex digits */
    g_assert_cmpuint(strlen(msg(m, 3)->uidl), ==, 64);
    for (const char *c = msg(m, 3)->uidl; *c; c++)
      g_assert_true(g_ascii_isxdigit(*c));
  }
  {
    g_autoptr(Pop3Maildir) m = pop3_maildir_open("/nonexistent/maildir", &error);
    g_assert_null(m);
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/pop3/maildir/seen-flag-in-cur", Fixture, NULL, setup, test_seen_flag_in_cur, teardown);
  g_test_add("/pop3/maildir/scan-and-read", Fixture, NULL, setup, test_scan_and_read, teardown);
  g_test_add("/pop3/maildir/update", Fixture, NULL, setup, test_update, teardown);
  g_test_add("/pop3/maildir/odd-names-and-symlinks", Fixture, NULL, setup,
             test_odd_names_and_symlinks, teardown);
  return g_test_run();
}
