/* test-table-patterns.c - cidr:, regexp: and pcre: tables: syntax, first
 * match, if/endif, substitution, errors naming file:line, reload. */
#include "table.h"
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "table-test-util.h"

/* Opens type:path for a file holding text. */
static Table *
open_text(const Fixture *f, const char *type, const char *text, TableFlags flags)
{
  g_autofree char *path = write_file(f, type, text);
  g_autofree char *spec = g_strdup_printf("%s:%s", type, path);
  g_autoptr(GError) error = NULL;
  Table *t = table_open(spec, flags, &error);
  g_assert_no_error(error);
  g_assert_nonnull(t);
  return t;
}

/* Expects opening type:FILE with text to fail naming FILE:line. */
static void
expect_open_error(const Fixture *f, const char *type, const char *text, guint line, const char *why)
{
  g_autofree char *path = write_file(f, type, text);
  g_autofree char *spec = g_strdup_printf("%s:%s", type, path);
  g_autofree char *where = g_strdup_printf("%s:%u: ", path, line);
  g_autoptr(GError) error = NULL;
  Table *t = table_open(spec, 0, &error);
  g_assert_null(t);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  if (!strstr(error->message, where) || !strstr(error->message, why))
    g_error("error \"%s\" lacks \"%s\" or \"%s\"", error->message, where, why);
}


static void
expect_tempfail(Table *t, const char *key, const char *why)
{
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(table_lookup(t, key, &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  if (!strstr(error->message, why))
    g_error("error \"%s\" lacks \"%s\"", error->message, why);
  g_assert_null(value);
}

static void
test_cidr(Fixture *f, gconstpointer data)
{
  g_autoptr(Table) t = open_text(f, "cidr",
    "# comment\n"
    "192.168.1.1          exact\n"
    "192.168.0.0/16       REJECT local\n"
    "  network\n"
    "192.168.1.0/24       shadowed by the /16\n"
    "10.0.0.0/8           ten\n"
    "\n"
    "[::1]/128            v6 loopback\n"
    "2001:db8::/32        doc net\n"
    "2001:db8:1::1        shadowed\n"
    "::ffff:172.16.0.0/108 mapped\n"
    "if 100.64.0.0/10\n"
    "100.64.1.0/24        in block\n"
    "!100.64.0.0/16       outside /16 in block\n"
    "endif\n"
    "0.0.0.0/0            default v4\n", TABLE_FOLD_CASE);

  expect(t, "192.168.1.1", "exact");
  expect(t, "192.168.1.2", "REJECT local network");
  expect(t, "192.168.200.3", "REJECT local network");
  expect(t, "10.1.2.3", "ten");
  expect(t, "::1", "v6 loopback");
  expect(t, "[::1]", "v6 loopback");
  expect(t, "2001:DB8:1::1", "doc net");
  expect(t, "2001:db9::1", NULL);
  expect(t, "172.16.5.5", "mapped");
  expect(t, "::ffff:10.9.9.9", "ten");
  expect(t, "100.64.1.7", "in block");
  expect(t, "100.65.0.1", "outside /16 in block");
  expect(t, "100.64.2.1", "default v4");
  expect(t, "8.8.8.8", "default v4");
  /* Keys that are not addresses are simply not found. */
  expect(t, "example.com", NULL);
  expect(t, "10.0.0.0/8", NULL);
  expect(t, "", NULL);
}

static void
test_cidr_errors(Fixture *f, gconstpointer data)
{
  expect_open_error(f, "cidr", "10.0.0.0/8 ok\n\n# c\n10.0.0.1/8 bad\n", 4, "host address bits");
  expect_open_error(f, "cidr", "10.0.0.0/8 ok\nexample.com x\n", 2, "bad network address");
  expect_open_error(f, "cidr", "10.0.0.0/33 x\n", 1, "bad network mask");
  expect_open_error(f, "cidr", "10.0.0.0/8\n", 1, "no lookup result");
  expect_open_error(f, "cidr", "1.2.3.4 a\nif 10.0.0.0/8\n10.1.0.0/16 x\n", 2, "if without endif");
  expect_open_error(f, "cidr", "endif\n", 1, "endif without if");
}

/* Runs for regexp: and pcre: (data is the type). */
static void
test_pattern(Fixture *f, gconstpointer data)
{
  const char *type = data;
  g_autoptr(Table) t = open_text(f, type,
    "# first match wins\n"
    "/^(.*)@example\\.com$/     user $1 at example\n"
    "/^postmaster@/            never reached for example.com\n"
    "/^KASE@/i                 case sensitive\n"
    "/^root@(.+)\\.(org)$/      ${2}:$(1) $$5\n"
    "!/@/                      no domain\n"
    "if /\\.net$/\n"
    "/^a/                      a at net\n"
    "if !/^b/\n"
    "/^c/                      c at net\n"
    "endif\n"
    "/^b/                      b at net\n"
    "endif\n"
    "/^a/                      a elsewhere\n"
    "/^c/                      c elsewhere\n"
    "/^b/                      b elsewhere\n"
    "/^multi/                  one\n"
    "    two\n"
    "#/^x/ commented out\n"
    "/^(y)?z@/                 [$1]\n"
    "|^pipe/slash@|            other delimiter\n", TABLE_FOLD_CASE);

  expect(t, "Alice@Example.COM", "user Alice at example");
  expect(t, "postmaster@example.com", "user postmaster at example");
  expect(t, "postmaster@example.org", "never reached for example.com");
  expect(t, "KASE@x", "case sensitive");
  expect(t, "kase@x", NULL);
  expect(t, "root@Host.org", "org:Host $5");
  expect(t, "localpart", "no domain");
  expect(t, "a@x.net", "a at net");
  expect(t, "c@x.net", "c at net");
  expect(t, "b@x.net", "b at net");
  expect(t, "a@x.de", "a elsewhere");
  expect(t, "c@x.de", "c elsewhere");
  expect(t, "b@x.de", "b elsewhere");
  expect(t, "multi@x", "one two");
  expect(t, "x@y", NULL);
  expect(t, "z@q", "[]");
  expect(t, "yz@q", "[y]");
  expect(t, "pipe/slash@q", "other delimiter");
}

static void
test_pattern_errors(Fixture *f, gconstpointer data)
{
  const char *type = data;
  expect_open_error(f, type, "/ok/ x\n\n/bad(/ y\n", 3, "pattern /bad(/");
  expect_open_error(f, type, "/(a)/ $2\n", 1, "out of range replacement index $2");
  expect_open_error(f, type, "!/(a)/ $1\n", 1, "negated");
  expect_open_error(f, type, "/a/ $name\n", 1, "non-numeric");
  expect_open_error(f, type, "# c\n/unterminated x\n", 2, "no closing / delimiter");
  expect_open_error(f, type, "/a/q x\n", 1, "unknown flag");
  expect_open_error(f, type, "if /a/\n/b/ c\n", 1, "if without endif");
  expect_open_error(f, type, "/a/ b\nendif\n", 2, "endif without if");
  expect_open_error(f, type, "if /a/ text\nendif\n", 1, "text after the if pattern");
  expect_open_error(f, type, "word x\n", 1, "expected a /pattern/");
}

static void
test_pcre_syntax(Fixture *f, gconstpointer data)
{
  g_autoptr(Table) t = open_text(f, "pcre",
    "/^(\\d+)\\.(\\d+)$/           digits $2.$1\n"
    "/^<(.+)>/U                  ungreedy $1\n"
    "/^a b c$/x                  extended\n"
    "/^line$/m                   multiline\n"
    "/(?<name>q+)r/              named $1\n", 0);

  expect(t, "12.34", "digits 34.12");
  expect(t, "<a><b>", "ungreedy a");
  expect(t, "ABC", "extended");
  expect(t, "first\nline", "multiline");
  expect(t, "xQQr", "named QQ");
}

static void
test_regexp_flags(Fixture *f, gconstpointer data)
{
  g_autoptr(Table) t = open_text(f, "regexp",
    "/^a+$/x                     basic regex: + is literal\n"
    "/^b(c)d$/                   extended $1\n", 0);
  expect(t, "aaa", NULL);
  expect(t, "a+", "basic regex: + is literal");
  expect(t, "BCD", "extended C");
}

/* A changed file is read again; a broken or missing file is TEMPFAIL. */
static void
test_reload(Fixture *f, gconstpointer data)
{
  const char *type = data;
  gboolean cidr = strcmp(type, "cidr") == 0;
  const char *key = cidr ? "10.1.1.1" : "key";
  g_autofree char *path = write_file(f, "t", cidr ? "10.0.0.0/8 first\n" : "/^key$/ first\n");
  g_autofree char *spec = g_strdup_printf("%s:%s", type, path);
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open(spec, 0, &error);
  g_assert_no_error(error);

  expect(t, key, "first");
  g_assert_true(g_file_set_contents(path, cidr ? "10.0.0.0/8 second\n" : "/^key$/ second\n", -1, NULL));
  g_usleep(1100 * 1000);
  expect(t, key, "second");

  g_assert_true(g_file_set_contents(path, cidr ? "# c\n10.0.0.0/888 bad\n" : "# c\n/(/ bad\n", -1, NULL));
  g_usleep(1100 * 1000);
  g_autofree char *where = g_strdup_printf("%s:2: ", path);
  expect_tempfail(t, key, where);

  g_unlink(path);
  g_usleep(1100 * 1000);
  expect_tempfail(t, key, "No such file");

  g_assert_true(g_file_set_contents(path, cidr ? "10.0.0.0/8 third\n" : "/^key$/ third\n", -1, NULL));
  g_usleep(1100 * 1000);
  expect(t, key, "third");
}

/* Opening succeeds without the file (Postfix daemons start so), but
 * lookups are temporary failures, not "not found". */
static void
test_missing(Fixture *f, gconstpointer data)
{
  const char *type = data;
  g_autofree char *path = g_build_filename(f->dir, "absent", NULL);
  g_autofree char *spec = g_strdup_printf("%s:%s", type, path);
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) t = table_open(spec, 0, &error);
  g_assert_no_error(error);
  g_autofree char *why = g_strdup_printf("%s: No such file", path);
  expect_tempfail(t, "10.0.0.1", why);

  g_autofree char *bad = g_strdup_printf("%s:", type);
  Table *none = table_open(bad, 0, &error);
  g_assert_null(none);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

/* Lookups from several threads at once (the table layer locks). */
static gpointer
lookup_thread(gpointer data)
{
  for (int i = 0; i < 2000; i++)
    expect(data, "Someone@Example.com", "Someone");
  return NULL;
}

static void
test_threads(Fixture *f, gconstpointer data)
{
  g_autoptr(Table) t = open_text(f, data, "/^(.*)@example\\.com$/ $1\n", TABLE_FOLD_CASE);
  GThread *th[4];
  for (guint i = 0; i < G_N_ELEMENTS(th); i++)
    th[i] = g_thread_new("lookup", lookup_thread, t);
  for (guint i = 0; i < G_N_ELEMENTS(th); i++)
    g_thread_join(th[i]);
}

#define ADD(name, fn, data) g_test_add(name, Fixture, data, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ADD("/table/cidr", test_cidr, NULL);
  ADD("/table/cidr/errors", test_cidr_errors, NULL);
  ADD("/table/cidr/reload", test_reload, "cidr");
  ADD("/table/cidr/missing", test_missing, "cidr");
  ADD("/table/regexp", test_pattern, "regexp");
  ADD("/table/regexp/errors", test_pattern_errors, "regexp");
  ADD("/table/regexp/flags", test_regexp_flags, NULL);
  ADD("/table/regexp/reload", test_reload, "regexp");
  ADD("/table/regexp/missing", test_missing, "regexp");
  ADD("/table/regexp/threads", test_threads, "regexp");
  ADD("/table/pcre", test_pattern, "pcre");
  ADD("/table/pcre/errors", test_pattern_errors, "pcre");
  ADD("/table/pcre/syntax", test_pcre_syntax, NULL);
  ADD("/table/pcre/reload", test_reload, "pcre");
  ADD("/table/pcre/missing", test_missing, "pcre");
  ADD("/table/pcre/threads", test_threads, "pcre");
  return g_test_run();
}
