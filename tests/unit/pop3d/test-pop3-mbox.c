/* test-pop3-mbox.c - an mbox as a POP3 drop: splitting at From_ lines,
 * sizes and RETR, UIDLs that survive new deliveries and deletions (also of
 * identical messages), UPDATE as a rewrite that keeps the rest byte for
 * byte, and the lock that keeps a second session out. */
#include "pop3-mbox.h"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define M1 "From a@example.com  Mon Dec  1 10:00:00 2026\nSubject: one\n\n>From the start\n.dot\n\n"
#define M2 "From b@example.com  Mon Dec  1 10:01:00 2026\nSubject: two\n\nsame body\n\n"
#define M3 "From c@example.com  Mon Dec  1 10:02:00 2026\nSubject: three\n\nthree\n\n"

typedef struct {
  char *dir, *mbox;
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-pop3-mbox-XXXXXX", NULL);
  f->mbox = g_build_filename(f->dir, "alice", NULL);
  g_assert_true(g_file_set_contents(f->mbox, M1 M2 M3, -1, NULL));
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf %s", f->dir);

  g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
  g_free(f->dir);
  g_free(f->mbox);
}

static void
append(Fixture *f, const char *text)
{
  g_autofree char *old = NULL;
  g_autofree char *both = NULL;

  g_assert_true(g_file_get_contents(f->mbox, &old, NULL, NULL));
  both = g_strconcat(old, text, NULL);
  g_assert_true(g_file_set_contents(f->mbox, both, -1, NULL));
}

static char *
uidl(Pop3Mbox *m, guint i)
{
  return ((Pop3Message *) g_ptr_array_index(m->messages, i))->uidl;
}

static void
test_split_and_read(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Pop3Mbox) m = pop3_mbox_open(f->mbox, 100, &error);
  g_autoptr(GString) out = g_string_new(NULL);

  g_assert_no_error(error);
  g_assert_cmpuint(m->messages->len, ==, 3);
  /* "Subject: one\r\n\r\n>From the start\r\n.dot\r\n" */
  g_assert_cmpuint(((Pop3Message *) g_ptr_array_index(m->messages, 0))->octets, ==, 39);
  g_assert_true(pop3_mbox_read(m, 0, G_MAXUINT, out, &error));
  g_assert_cmpstr(out->str, ==, "Subject: one\r\n\r\n>From the start\r\n..dot\r\n.\r\n");
  g_string_truncate(out, 0);
  g_assert_true(pop3_mbox_read(m, 2, 0, out, &error));
  g_assert_cmpstr(out->str, ==, "Subject: three\r\n\r\n.\r\n");
  /* the lock keeps a second session out */
  {
    g_autoptr(GError) busy = NULL;
    g_autoptr(Pop3Mbox) second = pop3_mbox_open(f->mbox, 100, &busy);
    g_assert_null(second);
    g_assert_error(busy, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  }
}

static void
test_uidls_and_update(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *u1 = NULL, *u2 = NULL, *u3 = NULL, *after = NULL;

  {
    g_autoptr(Pop3Mbox) m = pop3_mbox_open(f->mbox, 100, &error);
    u1 = g_strdup(uidl(m, 0));
    u2 = g_strdup(uidl(m, 1));
    u3 = g_strdup(uidl(m, 2));
    g_assert_cmpstr(u1, !=, u2);
    /* DELE without QUIT: nothing changes */
    ((Pop3Message *) g_ptr_array_index(m->messages, 0))->deleted = TRUE;
  }
  /* a new delivery, identical to message 2: old UIDLs stay, the new one differs */
  append(f, M2);
  {
    g_autoptr(Pop3Mbox) m = pop3_mbox_open(f->mbox, 100, &error);
    g_assert_cmpuint(m->messages->len, ==, 4);
    g_assert_cmpstr(uidl(m, 0), ==, u1);
    g_assert_cmpstr(uidl(m, 1), ==, u2);
    g_assert_cmpstr(uidl(m, 2), ==, u3);
    g_assert_cmpstr(uidl(m, 3), !=, u2);
    /* DELE 1, DELE 3, QUIT */
    ((Pop3Message *) g_ptr_array_index(m->messages, 0))->deleted = TRUE;
    ((Pop3Message *) g_ptr_array_index(m->messages, 2))->deleted = TRUE;
    g_assert_true(pop3_mbox_commit(m, &error));
    g_assert_no_error(error);
  }
  g_assert_true(g_file_get_contents(f->mbox, &after, NULL, NULL));
  g_assert_cmpstr(after, ==, M2 M2);
  {
    g_autoptr(Pop3Mbox) m = pop3_mbox_open(f->mbox, 100, &error);
    g_assert_cmpuint(m->messages->len, ==, 2);
    g_assert_cmpstr(uidl(m, 0), ==, u2);
    g_assert_cmpstr(uidl(m, 1), !=, u2);
  }
  {
    /* no lock file left behind, no temporary file */
    g_autofree char *lock = g_strconcat(f->mbox, ".lock", NULL);
    g_autofree char *tmp = g_build_filename(f->dir, ".alice.postern-new", NULL);
    g_assert_false(g_file_test(lock, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
  }
}

static void
test_missing_mbox(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *none = g_build_filename(f->dir, "bob", NULL);
  g_autoptr(Pop3Mbox) m = pop3_mbox_open(none, 100, &error);

  g_assert_no_error(error);
  g_assert_cmpuint(m->messages->len, ==, 0);
  g_assert_true(pop3_mbox_commit(m, &error));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/pop3/mbox/split-and-read", Fixture, NULL, setup, test_split_and_read, teardown);
  g_test_add("/pop3/mbox/uidls-and-update", Fixture, NULL, setup, test_uidls_and_update,
             teardown);
  g_test_add("/pop3/mbox/missing", Fixture, NULL, setup, test_missing_mbox, teardown);
  return g_test_run();
}
