/* test-table.c - lookup table types, source syntax, reload, lists. */
#include "table.h"
#include "config.h"

#include <glib/gstdio.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "table-test-util.h"


static void
test_texthash(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "access",
    "# comment line\n"
    "example.com   OK\n"
    "\n"
    "  # indented comment\n"
    "Spam.Example\tREJECT no spam\n"
    "long.example  first part\n"
    "   continued here\n"
    "\tand here\n"
    "dup.example   first\n"
    "dup.example   second\n"
    "novalue.example\n"
    "hash#inside   value#kept\n"
    "last.example  no newline at end");
  g_autofree char *spec = g_strconcat("texthash:", path, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, &error);

  g_assert_no_error(error);
  g_assert_cmpstr(table_spec(t), ==, spec);
  expect(t, "example.com", "OK");
  expect(t, "EXAMPLE.COM", "OK");
  expect(t, "spam.example", "REJECT no spam");
  expect(t, "long.example", "first part continued here and here");
  expect(t, "dup.example", "first");
  expect(t, "novalue.example", NULL);
  expect(t, "hash#inside", "value#kept");
  expect(t, "last.example", "no newline at end");
  expect(t, "missing.example", NULL);
  expect(t, "#", NULL);

  /* without folding, keys are exact */
  g_autoptr(Table) exact = table_open(spec, 0, &error);
  expect(exact, "Spam.Example", "REJECT no spam");
  expect(exact, "spam.example", NULL);
}

static void
test_hash_aliases(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "aliases",
    "# /etc/aliases\n"
    "postmaster: root\n"
    "MAILER-DAEMON:postmaster\n"
    "team: alice,\n"
    "      bob,\n"
    "\tcarol@example.com\n"
    "\"quoted name\": dave\n"
    "\"with \\\"esc\\\"\" : eve\n"
    "pipe: \"|/usr/bin/filter -x\"\n"
    "empty:\n"
    "nocolon here\n"
    "root: admin@example.com  \n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE | TABLE_ALIAS_SYNTAX, &error);

  g_assert_no_error(error);
  expect(t, "postmaster", "root");
  expect(t, "mailer-daemon", "postmaster");
  expect(t, "team", "alice, bob, carol@example.com");
  expect(t, "quoted name", "dave");
  expect(t, "with \"esc\"", "eve");
  expect(t, "pipe", "\"|/usr/bin/filter -x\"");
  expect(t, "empty", NULL);
  expect(t, "nocolon", NULL);
  expect(t, "root", "admin@example.com");
}

static void
test_reload(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "map", "key old\n");
  g_autofree char *spec = g_strconcat("texthash:", path, NULL);
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);

  expect(t, "key", "old");
  /* rewrite in place (same size) and by rename */
  g_assert_true(g_file_set_contents(path, "key new\n", -1, NULL));
  g_usleep(1100 * 1000);
  expect(t, "key", "new");
  g_autofree char *tmp = write_file(f, "map.tmp", "key newer\nother x\n");
  g_assert_cmpint(g_rename(tmp, path), ==, 0);
  g_usleep(1100 * 1000);
  expect(t, "key", "newer");
  expect(t, "other", "x");
}

static void
test_tempfail(Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename(f->dir, "later", NULL);
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, &error);

  /* missing: open succeeds, lookups are temporary failures naming the file */
  g_assert_no_error(error);
  g_assert_cmpint(table_lookup(t, "key", &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  g_assert_nonnull(strstr(error->message, path));
  g_assert_null(value);
  g_clear_error(&error);

  /* it appears: found after the next check */
  g_free(write_file(f, "later", "key value\n"));
  g_usleep(1100 * 1000);
  expect(t, "key", "value");

  /* unreadable (a directory): temporary failure again */
  g_assert_cmpint(g_unlink(path), ==, 0);
  g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
  g_usleep(1100 * 1000);
  g_assert_cmpint(table_lookup(t, "key", &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
}

static void
test_static(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open("static:5000", TABLE_FOLD_CASE, &error);
  g_autoptr(Table) t2 = table_open("static:{ text with spaces }", 0, &error);
  g_assert_no_error(error);
  expect(t, "anything", "5000");
  expect(t, "", "5000");
  expect(t2, "x", "text with spaces");
}

static void
test_inline(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open("inline:{ a=1, B=2 c=3,{ d = four five }, e = 6 ,f= 7 }",
                                  TABLE_FOLD_CASE, &error);
  g_assert_no_error(error);
  expect(t, "a", "1");
  expect(t, "b", "2");
  expect(t, "B", "2");
  expect(t, "c", "3");
  expect(t, "d", "four five");
  expect(t, "e", "6");
  expect(t, "f", "7");
  expect(t, "g", NULL);

  g_autoptr(Table) single = table_open("inline:{ k = v }", 0, &error);
  g_assert_no_error(error);
  expect(single, "k", "v");
  g_autoptr(Table) groups = table_open("inline:{ {a=b c} {c = d,e} x=y}", 0, &error);
  g_assert_no_error(error);
  expect(groups, "a", "b c");
  expect(groups, "c", "d,e");
  expect(groups, "x", "y");
  g_autoptr(Table) empty = table_open("inline:{}", 0, &error);
  g_assert_no_error(error);
  expect(empty, "k", NULL);

  const char *bad[] = { "inline:a=1", "inline:{ a }", "inline:{ a=1, { b } }", "inline:{ {a=1 }",
                        "inline:{ =1 }", "inline:{ a=1 } }", "inline:{ a=1 }}" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) e = NULL;
    Table *tb = table_open(bad[i], 0, &e);
    if (tb)
      g_error("\"%s\" accepted", bad[i]);
    g_assert_error(e, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  }
}

static void
test_unix(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open("unix:passwd.byname", TABLE_FOLD_CASE, &error);
  g_autoptr(Table) proxied = table_open("proxy:unix:passwd.byname", TABLE_FOLD_CASE, &error);
  g_autofree char *value = NULL;

  g_assert_no_error(error);
  g_assert_cmpint(table_lookup(t, "root", &value, &error), ==, TABLE_FOUND);
  g_assert_true(g_str_has_prefix(value, "root:"));
  g_auto(GStrv) fields = g_strsplit(value, ":", -1);
  g_assert_cmpuint(g_strv_length(fields), ==, 7);
  g_assert_cmpstr(fields[2], ==, "0");
  expect(t, "no-such-user-postern-test", NULL);
  expect(proxied, "no-such-user-postern-test", NULL);
  expect(proxied, "ROOT", value);

  g_autoptr(GError) e2 = NULL;
  g_assert_null(table_open("unix:group.byname", 0, &e2));
  g_assert_error(e2, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

static void
test_open_errors(void)
{
  const char *bad[] = { "nocolon", ":x", "ldap:/etc/x", "texthash:", "hash" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) e = NULL;
    Table *t = table_open(bad[i], 0, &e);
    if (t)
      g_error("\"%s\" accepted", bad[i]);
    g_assert_error(e, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    g_assert_nonnull(strstr(e->message, bad[i]));
  }
}

static void
test_list(Fixture *f, gconstpointer data)
{
  g_autofree char *p1 = write_file(f, "one", "a from-one\n");
  g_autofree char *p2 = write_file(f, "two", "a from-two\nb from-two\n");
  g_autofree char *s1 = g_strconcat("texthash:", p1, NULL);
  g_autofree char *s2 = g_strconcat("texthash:", p2, NULL);
  g_autofree char *missing = g_strconcat("hash:", f->dir, "/missing", NULL);
  const char *const specs[] = { s1, "", s2, "inline:{ c=from-inline }", NULL };
  const char *const specs_tf[] = { s1, missing, s2, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;

  g_autoptr(TableList) list = table_list_open(specs, TABLE_FOLD_CASE, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(table_list_length(list), ==, 3);
  g_assert_cmpint(table_list_lookup(list, "A", &value, &error), ==, TABLE_FOUND);
  g_assert_cmpstr(value, ==, "from-one");
  g_clear_pointer(&value, g_free);
  g_assert_cmpint(table_list_lookup(list, "b", &value, &error), ==, TABLE_FOUND);
  g_assert_cmpstr(value, ==, "from-two");
  g_clear_pointer(&value, g_free);
  g_assert_cmpint(table_list_lookup(list, "c", &value, &error), ==, TABLE_FOUND);
  g_assert_cmpstr(value, ==, "from-inline");
  g_clear_pointer(&value, g_free);
  g_assert_cmpint(table_list_lookup(list, "d", &value, &error), ==, TABLE_NOTFOUND);
  g_assert_null(value);

  /* a temporary failure stops the search; earlier tables still answer */
  g_autoptr(TableList) tf = table_list_open(specs_tf, TABLE_FOLD_CASE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(table_list_lookup(tf, "a", &value, &error), ==, TABLE_FOUND);
  g_clear_pointer(&value, g_free);
  g_assert_cmpint(table_list_lookup(tf, "b", &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  g_clear_error(&error);

  /* a bad spec fails the whole list */
  const char *const bad[] = { s1, "bogus:x", NULL };
  g_assert_null(table_list_open(bad, 0, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_clear_error(&error);

  g_autoptr(TableList) none = table_list_open(NULL, 0, &error);
  g_assert_cmpuint(table_list_length(none), ==, 0);
  g_assert_cmpint(table_list_lookup(none, "a", &value, &error), ==, TABLE_NOTFOUND);
}

typedef struct {
  Table *table;
  int found;
} ThreadData;

static gpointer
lookup_thread(gpointer p)
{
  ThreadData *td = p;
  for (int i = 0; i < 20000; i++) {
    g_autofree char *v = NULL;
    if (table_lookup(td->table, i % 2 ? "k1" : "k2", &v, NULL) == TABLE_FOUND)
      td->found++;
  }
  return NULL;
}

static void
test_threads(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "map", "k1 v1\nk2 v2\n");
  g_autofree char *spec = g_strconcat("texthash:", path, NULL);
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  ThreadData td[4];
  GThread *th[4];

  for (int i = 0; i < 4; i++) {
    td[i] = (ThreadData) { .table = t };
    th[i] = g_thread_new("lookup", lookup_thread, &td[i]);
  }
  for (int i = 0; i < 4; i++) {
    g_thread_join(th[i]);
    g_assert_cmpint(td[i].found, ==, 20000);
  }
}

#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ADD("/table/texthash", test_texthash);
  ADD("/table/hash-aliases", test_hash_aliases);
  ADD("/table/reload", test_reload);
  ADD("/table/tempfail", test_tempfail);
  ADD("/table/list", test_list);
  ADD("/table/threads", test_threads);
  g_test_add_func("/table/static", test_static);
  g_test_add_func("/table/inline", test_inline);
  g_test_add_func("/table/unix", test_unix);
  g_test_add_func("/table/open-errors", test_open_errors);
  return g_test_run();
}
