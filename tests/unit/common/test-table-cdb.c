/* test-table-cdb.c - compiled hash:/cdb: tables and table_rebuild. */
#include "table.h"
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "table-test-util.h"


static void
rebuild_ok(const char *spec, TableFlags flags)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(table_rebuild(spec, flags, &error));
  g_assert_no_error(error);
}

static void
test_rebuild_lookup(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "access",
    "# comment\n"
    "Example.COM   OK\n"
    "whitehouse.com REJECT\n"
    "long.example  first part\n"
    "   continued\n"
    "dup.example   first\n"
    "dup.example   second\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autofree char *cdb = g_strconcat(path, ".cdb", NULL);

  rebuild_ok(spec, TABLE_FOLD_CASE);
  g_assert_true(g_file_test(cdb, G_FILE_TEST_IS_REGULAR));
  /* The text is gone: lookups must come from the .cdb. */
  g_assert_cmpint(g_unlink(path), ==, 0);

  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  g_assert_nonnull(t);
  expect(t, "example.com", "OK");
  expect(t, "EXAMPLE.com", "OK");
  expect(t, "whitehouse.com", "REJECT");
  expect(t, "long.example", "first part continued");
  expect(t, "dup.example", "first");
  expect(t, "missing.example", NULL);
  expect(t, "", NULL);

  g_autofree char *cspec = g_strconcat("cdb:", path, NULL);
  g_autoptr(Table) c = table_open(cspec, TABLE_FOLD_CASE, NULL);
  expect(c, "whitehouse.com", "REJECT");

  /* No temporary file left behind. */
  g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(d)))
    g_assert_null(strstr(name, ".tmp."));
}

static void
test_text_fallback(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "access", "fallback.example OK\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  expect(t, "fallback.example", "OK");

  /* Neither .cdb nor text: a temporary failure, not "not found". */
  g_autofree char *missing = g_strconcat("hash:", f->dir, "/missing", NULL);
  g_autoptr(Table) m = table_open(missing, TABLE_FOLD_CASE, NULL);
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(table_lookup(m, "x", &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
}

static void
test_reload(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "access", "a.example OK\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  rebuild_ok(spec, TABLE_FOLD_CASE);
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  expect(t, "a.example", "OK");
  expect(t, "b.example", NULL);

  g_free(write_file(f, "access", "a.example REJECT\nb.example OK\n"));
  rebuild_ok(spec, TABLE_FOLD_CASE);
  g_usleep(G_USEC_PER_SEC + G_USEC_PER_SEC / 10);
  expect(t, "a.example", "REJECT");
  expect(t, "b.example", "OK");
}

static void
test_alias_syntax(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "aliases",
    "# aliases\n"
    "RedHat: hadoop\n"
    "postmaster:root\n"
    "root: alice,\n"
    "  bob\n"
    "\"quoted name\": carol\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  TableFlags flags = TABLE_FOLD_CASE | TABLE_ALIAS_SYNTAX;
  rebuild_ok(spec, flags);
  g_autoptr(Table) t = table_open(spec, flags, NULL);
  expect(t, "redhat", "hadoop");
  expect(t, "postmaster", "root");
  expect(t, "root", "alice, bob");
  expect(t, "quoted name", "carol");
}

static void
test_errors(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "access", "ok.example OK\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autofree char *cdb = g_strconcat(path, ".cdb", NULL);
  rebuild_ok(spec, TABLE_FOLD_CASE);
  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  expect(t, "ok.example", "OK");

  /* A syntax error names file and line and leaves the old .cdb valid. */
  g_free(write_file(f, "access", "new.example OK\n\n# c\nnovalue.example\n"));
  g_autoptr(GError) error = NULL;
  g_assert_false(table_rebuild(spec, TABLE_FOLD_CASE, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *where = g_strdup_printf("%s:4:", path);
  g_assert_true(g_str_has_prefix(error->message, where));
  g_clear_error(&error);
  g_usleep(G_USEC_PER_SEC + G_USEC_PER_SEC / 10);
  expect(t, "ok.example", "OK");
  expect(t, "new.example", NULL);

  g_free(write_file(f, "aliases", "redhat: hadoop\nnocolon here\n"));
  g_autofree char *aspec = g_strconcat("cdb:", f->dir, "/aliases", NULL);
  g_assert_false(table_rebuild(aspec, TABLE_FOLD_CASE | TABLE_ALIAS_SYNTAX, &error));
  g_assert_nonnull(strstr(error->message, "aliases:2:"));
  g_clear_error(&error);

  const char *norebuild[] = { "texthash:/etc/x", "static:OK", "inline:{a=b}", "unix:passwd.byname" };
  for (gsize i = 0; i < G_N_ELEMENTS(norebuild); i++) {
    g_assert_false(table_rebuild(norebuild[i], TABLE_FOLD_CASE, &error));
    g_assert_nonnull(strstr(error->message, "needs no rebuild"));
    g_clear_error(&error);
  }
  g_autofree char *missing = g_strconcat("hash:", f->dir, "/missing", NULL);
  g_assert_false(table_rebuild(missing, TABLE_FOLD_CASE, &error));
  g_clear_error(&error);
  g_assert_false(table_rebuild("nonsense", TABLE_FOLD_CASE, &error));
  g_clear_error(&error);
}

/* Key folding around the 256-byte boundary where table_lookup stops
 * folding on the stack, and bytes that are not ASCII letters. */
static void
test_fold_lengths(Fixture *f, gconstpointer data)
{
  g_autoptr(GString) text = g_string_new(NULL);
  const gsize lens[] = { 1, 254, 255, 256, 257, 1000 };

  for (gsize i = 0; i < G_N_ELEMENTS(lens); i++) {
    g_autofree char *key = g_strnfill(lens[i], 'k');
    g_string_append_printf(text, "%s value%zu\n", key, lens[i]);
  }
  g_string_append(text, "caf\xc3\xa9.example[Z]@ OK\n");
  g_autofree char *path = write_file(f, "fold", text->str);
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  rebuild_ok(spec, TABLE_FOLD_CASE);

  g_autoptr(Table) t = table_open(spec, TABLE_FOLD_CASE, NULL);
  g_assert_nonnull(t);
  for (gsize i = 0; i < G_N_ELEMENTS(lens); i++) {
    g_autofree char *upper = g_strnfill(lens[i], 'K');
    g_autofree char *want = g_strdup_printf("value%zu", lens[i]);
    expect(t, upper, want);
    upper[lens[i] - 1] = 'x';
    expect(t, upper, NULL);
  }
  /* only A-Z fold; other bytes (UTF-8, brackets) are compared as they are */
  expect(t, "CAF\xc3\xa9.EXAMPLE[z]@", "OK");
  expect(t, "caf\xc3\x89.example[z]@", NULL);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/table-cdb/rebuild-lookup", test_rebuild_lookup);
  ADD("/table-cdb/text-fallback", test_text_fallback);
  ADD("/table-cdb/reload", test_reload);
  ADD("/table-cdb/alias-syntax", test_alias_syntax);
  ADD("/table-cdb/errors", test_errors);
  ADD("/table-cdb/fold-lengths", test_fold_lengths);
  return g_test_run();
}
