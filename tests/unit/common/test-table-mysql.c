/* test-table-mysql.c - the mysql: table's pure helpers: %-expansion of
 * query and result_format, escaping of every expanded value, hosts items;
 * and opening .cf files (no server is contacted at open).
 */
#include "table-mysql.h"
#include "table.h"
#include "config.h"

#include <glib/gstdio.h>

static char *
expand(const char *fmt, const char *value, gboolean escape, TableMysqlExpand *r)
{
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(table_mysql_expand(out, fmt, value, escape ? table_mysql_escape_plain : NULL,
                                   NULL, r, &error));
  g_assert_no_error(error);
  return g_strdup(out->str);
}

static void
test_expand_letters(void)
{
  TableMysqlExpand r;
  struct { const char *fmt, *key, *want; } cases[] = {
    { "k=%s", "user@mail.example.com", "k=user@mail.example.com" },
    { "%u|%d", "user@mail.example.com", "user|mail.example.com" },
    { "%1.%2.%3", "user@mail.example.com", "com.example.mail" },
    { "100%% %u", "bob", "100% bob" },
    { "%u", "bob", "bob" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = expand(cases[i].fmt, cases[i].key, TRUE, &r);
    g_assert_cmpstr(got, ==, cases[i].want);
    g_assert_cmpint(r, ==, TABLE_MYSQL_EXPANDED);
  }
}

static void
test_expand_skip(void)
{
  TableMysqlExpand r;
  const char *skips[][2] = { { "%d", "bob" }, { "%4", "u@a.b.c" }, { "%1", "bob" },
                             { "%u", "@domain.test" } };
  for (gsize i = 0; i < G_N_ELEMENTS(skips); i++) {
    g_autofree char *got = expand(skips[i][0], skips[i][1], TRUE, &r);
    g_assert_cmpint(r, ==, TABLE_MYSQL_SKIP);
  }
}

static void
test_expand_escapes_values_only(void)
{
  TableMysqlExpand r;
  g_autofree char *q = expand("SELECT x FROM t WHERE e='%s' AND u='%u'",
                              "x' OR '1'='1\\\"@virt.test", TRUE, &r);
  g_assert_cmpstr(q, ==, "SELECT x FROM t WHERE e='x\\' OR \\'1\\'=\\'1\\\\\\\"@virt.test' "
                         "AND u='x\\' OR \\'1\\'=\\'1\\\\\\\"'");
  g_autofree char *raw = expand("%s", "a'b", FALSE, &r);
  g_assert_cmpstr(raw, ==, "a'b");
  g_autofree char *e = table_mysql_escape_plain("a\0b\n\r\032", 6, NULL);
  g_assert_cmpstr(e, ==, "a\\0b\\n\\r\\Z");
}

static void
test_expand_invalid(void)
{
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GError) error = NULL;
  TableMysqlExpand r;
  g_assert_false(table_mysql_expand(out, "x=%x", "k", NULL, NULL, &r, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

static void
test_hosts(void)
{
  g_auto(GStrv) items = table_mysql_split_list(" db1, db2:3307 unix:/run/m.sock,,inet:10.0.0.1:3306 ");
  g_assert_cmpuint(g_strv_length(items), ==, 4);
  struct { const char *host; guint port; const char *sock; } want[] = {
    { "db1", 0, NULL }, { "db2", 3307, NULL }, { NULL, 0, "/run/m.sock" }, { "10.0.0.1", 3306, NULL },
  };
  for (guint i = 0; i < 4; i++) {
    g_autofree char *host = NULL, *sock = NULL;
    guint port;
    g_assert_true(table_mysql_parse_host(items[i], &host, &port, &sock, NULL));
    g_assert_cmpstr(host, ==, want[i].host);
    g_assert_cmpuint(port, ==, want[i].port);
    g_assert_cmpstr(sock, ==, want[i].sock);
  }
  const char *bad[] = { "db:", "db:0", "db:99999", "unix:rel", ":3306" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *host = NULL, *sock = NULL;
    guint port;
    g_autoptr(GError) error = NULL;
    g_assert_false(table_mysql_parse_host(bad[i], &host, &port, &sock, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  }
}

/* Opens a .cf text; a server is only contacted at lookup time. */
static Table *
open_cf(const char *text, GError **error)
{
  g_autofree char *dir = g_dir_make_tmp("mysqlcf-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "t.cf", NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  g_autofree char *spec = g_strconcat("mysql:", path, NULL);
  Table *t = table_open(spec, TABLE_FOLD_CASE, error);
  g_unlink(path);
  g_rmdir(dir);
  return t;
}

static void
test_open_cf(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Table) ok = open_cf("hosts = unix:/nonexistent/sock\nuser = u\npassword = p\n"
                                "dbname = d\nquery = SELECT a FROM t\n  WHERE k='%s'\n", &error);
  g_assert_no_error(error);
  g_assert_nonnull(ok);

  g_autoptr(Table) noquery = open_cf("hosts = localhost\n", &error);
  g_assert_null(noquery);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_clear_error(&error);
  g_autoptr(Table) badfmt = open_cf("query = SELECT '%q'\n", &error);
  g_assert_null(badfmt);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_clear_error(&error);

  /* The domain filter answers without a server; a dead server is TEMPFAIL. */
  g_autoptr(Table) t = open_cf("hosts = unix:/nonexistent/sock\nquery = SELECT '%s'\n"
                               "domain = virt.test, other.test\n", &error);
  g_assert_no_error(error);
  char *value = NULL;
  g_assert_cmpint(table_lookup(t, "x@elsewhere.test", &value, &error), ==, TABLE_NOTFOUND);
  g_assert_cmpint(table_lookup(t, "plainkey", &value, &error), ==, TABLE_NOTFOUND);
  g_assert_no_error(error);
  g_assert_cmpint(table_lookup(t, "x@virt.test", &value, &error), ==, TABLE_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  g_assert_null(value);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/table-mysql/expand/letters", test_expand_letters);
  g_test_add_func("/table-mysql/expand/skip", test_expand_skip);
  g_test_add_func("/table-mysql/expand/escapes-values-only", test_expand_escapes_values_only);
  g_test_add_func("/table-mysql/expand/invalid", test_expand_invalid);
  g_test_add_func("/table-mysql/hosts", test_hosts);
  g_test_add_func("/table-mysql/open-cf", test_open_cf);
  return g_test_run();
}
