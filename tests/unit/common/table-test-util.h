/* table-test-util.h - what the table test programs share: a temporary
 * directory per test, writing a source file into it, and checking one
 * lookup.  Header-only: each test program is its own executable. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

#include "table.h"

typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("postern-table-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  GDir *d = g_dir_open(f->dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(f->dir, name, NULL);
    if (g_rmdir(p) != 0)
      g_unlink(p);
  }
  if (d)
    g_dir_close(d);
  g_rmdir(f->dir);
  g_free(f->dir);
}

/* Writes text to dir/name; returns the path (newly allocated). */
static char *
write_file(const Fixture *f, const char *name, const char *text)
{
  char *path = g_build_filename(f->dir, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

/* Looks key up and checks the outcome; expected NULL = not found. */
G_GNUC_UNUSED static void
expect(Table *t, const char *key, const char *expected)
{
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  TableResult r = table_lookup(t, key, &value, &error);
  g_assert_no_error(error);
  if (expected) {
    if (r != TABLE_FOUND)
      g_error("%s: key \"%s\" not found", table_spec(t), key);
    g_assert_cmpstr(value, ==, expected);
  } else {
    if (r != TABLE_NOTFOUND)
      g_error("%s: key \"%s\" found: \"%s\"", table_spec(t), key, value);
    g_assert_null(value);
  }
}
