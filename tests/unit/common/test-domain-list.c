/* test-domain-list.c - Postfix domain match lists: literal names in the
 * three styles, /file entries, texthash:/hash:/inline: tables with
 * parent-domain keys, negation and first match, a table whose file
 * becomes unreadable (temporary failure), and matches from threads. */
#include "domain-list.h"
#include "config.h"
#include "table.h"

#include <glib/gstdio.h>
#include <string.h>

#include "table-test-util.h"   /* Fixture, fixture_setup/teardown, write_file */

/* Builds a list from a comma/space separated value. */
static DomainList *
list_new(const char *value, DomainMatchStyle style)
{
  g_auto(GStrv) entries = config_split_list(value);
  g_autoptr(GError) error = NULL;
  DomainList *list = domain_list_new("test_domains", (const char *const *) entries, style, &error);

  g_assert_no_error(error);
  g_assert_nonnull(list);
  return list;
}

static void
expect_match(const DomainList *list, const char *domain, MatchResult want)
{
  g_autoptr(GError) error = NULL;
  MatchResult r = domain_list_match(list, domain, &error);

  g_assert_no_error(error);
  if (r != want)
    g_error("%s: \"%s\" gave %d, wanted %d", domain_list_name(list), domain, r, want);
}

static void
test_names(void)
{
  const DomainMatchStyle styles[] = { DOMAIN_MATCH_EXACT, DOMAIN_MATCH_DOT, DOMAIN_MATCH_PARENT };

  for (guint i = 0; i < G_N_ELEMENTS(styles); i++) {
    g_autoptr(DomainList) list = list_new("Example.COM, localhost", styles[i]);
    expect_match(list, "example.com", MATCH_FOUND);
    expect_match(list, "EXAMPLE.com", MATCH_FOUND);
    expect_match(list, "localhost", MATCH_FOUND);
    expect_match(list, "example.org", MATCH_NONE);
    expect_match(list, "badexample.com", MATCH_NONE);
    expect_match(list, "com", MATCH_NONE);
    expect_match(list, "", MATCH_NONE);
    expect_match(list, "sub.example.com",
                 styles[i] == DOMAIN_MATCH_PARENT ? MATCH_FOUND : MATCH_NONE);
    expect_match(list, "a.b.example.com",
                 styles[i] == DOMAIN_MATCH_PARENT ? MATCH_FOUND : MATCH_NONE);
  }
  g_assert_true(domain_list_is_empty(NULL));
  expect_match(NULL, "example.com", MATCH_NONE);
  g_autoptr(DomainList) empty = list_new("", DOMAIN_MATCH_DOT);
  g_assert_true(domain_list_is_empty(empty));
  expect_match(empty, "example.com", MATCH_NONE);
  g_assert_cmpstr(domain_list_name(empty), ==, "test_domains");
}

/* ".example.com": subdomains without parent_domain_matches_subdomains;
 * in a parent-style list it matches nothing (as in Postfix). */
static void
test_dot_names(void)
{
  g_autoptr(DomainList) dot = list_new(".example.com", DOMAIN_MATCH_DOT);
  expect_match(dot, "sub.example.com", MATCH_FOUND);
  expect_match(dot, "a.b.Example.Com", MATCH_FOUND);
  expect_match(dot, "example.com", MATCH_NONE);
  expect_match(dot, "badexample.com", MATCH_NONE);

  g_autoptr(DomainList) parent = list_new(".example.com", DOMAIN_MATCH_PARENT);
  expect_match(parent, "sub.example.com", MATCH_NONE);
  expect_match(parent, "example.com", MATCH_NONE);

  g_autoptr(DomainList) exact = list_new(".example.com", DOMAIN_MATCH_EXACT);
  expect_match(exact, "sub.example.com", MATCH_NONE);
  expect_match(exact, ".example.com", MATCH_FOUND);
}

static void
test_negation_first_match(void)
{
  g_autoptr(DomainList) a = list_new("!sub.example.com, .example.com", DOMAIN_MATCH_DOT);
  expect_match(a, "sub.example.com", MATCH_NONE);
  expect_match(a, "other.example.com", MATCH_FOUND);

  g_autoptr(DomainList) b = list_new(".example.com, !sub.example.com", DOMAIN_MATCH_DOT);
  expect_match(b, "sub.example.com", MATCH_FOUND);

  g_autoptr(DomainList) c = list_new("!!example.com, !example.org", DOMAIN_MATCH_PARENT);
  expect_match(c, "example.com", MATCH_FOUND);
  expect_match(c, "www.example.org", MATCH_NONE);
}

static void
test_file(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "local-domains",
    "# local domains\n"
    "one.example two.example, three.example\n"
    "\n"
    "   four.example   # the fourth\n"
    "!no.five.example .five.example\n");
  g_autofree char *value = g_strdup_printf("first.example, %s, last.example", path);
  g_autoptr(DomainList) list = list_new(value, DOMAIN_MATCH_DOT);

  expect_match(list, "first.example", MATCH_FOUND);
  expect_match(list, "one.example", MATCH_FOUND);
  expect_match(list, "two.example", MATCH_FOUND);
  expect_match(list, "three.example", MATCH_FOUND);
  expect_match(list, "four.example", MATCH_FOUND);
  expect_match(list, "the", MATCH_NONE);          /* comment words are no patterns */
  expect_match(list, "fourth", MATCH_NONE);
  expect_match(list, "a.five.example", MATCH_FOUND);
  expect_match(list, "no.five.example", MATCH_NONE);
  expect_match(list, "last.example", MATCH_FOUND);

  /* read once: later edits need a new list (a reload) */
  g_assert_true(g_file_set_contents(path, "other.example\n", -1, NULL));
  expect_match(list, "one.example", MATCH_FOUND);
  expect_match(list, "other.example", MATCH_NONE);

  /* "!/file" negates each pattern in it */
  g_autofree char *neg = g_strdup_printf("!%s, .example", path);
  g_autoptr(DomainList) nlist = list_new(neg, DOMAIN_MATCH_DOT);
  expect_match(nlist, "other.example", MATCH_NONE);
  expect_match(nlist, "another.example", MATCH_FOUND);
}

static void
test_file_errors(Fixture *f, gconstpointer data)
{
  g_autofree char *missing = g_build_filename(f->dir, "missing", NULL);
  const char *entries[] = { "example.com", missing, NULL };
  g_autoptr(GError) error = NULL;

  g_assert_null(domain_list_new("mydestination", entries, DOMAIN_MATCH_DOT, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *want = g_strdup_printf("mydestination: open file %s: No such file or directory",
                                          missing);
  g_assert_cmpstr(error->message, ==, want);

  /* a bad table inside a file names the file and line */
  g_autofree char *path = write_file(f, "domains", "ok.example\nnosuchtype:/x\n");
  const char *bad[] = { path, NULL };
  g_clear_error(&error);
  g_assert_null(domain_list_new("relay_domains", bad, DOMAIN_MATCH_PARENT, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *prefix = g_strdup_printf("relay_domains: %s:2: ", path);
  g_assert_true(g_str_has_prefix(error->message, prefix));
  g_assert_nonnull(strstr(error->message, "unsupported table type \"nosuchtype\""));

  /* a file that names itself */
  g_autofree char *loop = g_build_filename(f->dir, "loop", NULL);
  g_autofree char *text = g_strdup_printf("a.example %s\n", loop);
  g_assert_true(g_file_set_contents(loop, text, -1, NULL));
  const char *looping[] = { loop, NULL };
  g_clear_error(&error);
  g_assert_null(domain_list_new("mydestination", looping, DOMAIN_MATCH_DOT, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_nonnull(strstr(error->message, "nested too deeply"));
}

static void
test_texthash(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "virtual",
    "virt.example     anything\n"
    ".dot.example     anything\n"
    "parent.example   anything\n"
    "info@virt.example  someone@else.example\n");
  g_autofree char *spec = g_strconcat("texthash:", path, NULL);

  g_autoptr(DomainList) exact = list_new(spec, DOMAIN_MATCH_EXACT);
  expect_match(exact, "virt.example", MATCH_FOUND);
  expect_match(exact, "VIRT.Example", MATCH_FOUND);
  expect_match(exact, "sub.virt.example", MATCH_NONE);
  expect_match(exact, "a.dot.example", MATCH_NONE);
  expect_match(exact, "info@virt.example", MATCH_FOUND);   /* the key as given */

  g_autoptr(DomainList) dot = list_new(spec, DOMAIN_MATCH_DOT);
  expect_match(dot, "virt.example", MATCH_FOUND);
  expect_match(dot, "sub.virt.example", MATCH_NONE);       /* ".virt.example" not listed */
  expect_match(dot, "a.b.dot.example", MATCH_FOUND);       /* ".dot.example" */
  expect_match(dot, "dot.example", MATCH_NONE);
  expect_match(dot, "sub.parent.example", MATCH_NONE);

  g_autoptr(DomainList) parent = list_new(spec, DOMAIN_MATCH_PARENT);
  expect_match(parent, "sub.parent.example", MATCH_FOUND);
  expect_match(parent, "a.b.parent.example", MATCH_FOUND);
  expect_match(parent, "a.dot.example", MATCH_NONE);
  expect_match(parent, "example", MATCH_NONE);
}

static void
test_hash_and_inline(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "relay_domains", "relay.example OK\n");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true(table_rebuild(spec, TABLE_FOLD_CASE, &error));
  g_assert_no_error(error);
  g_assert_true(g_file_set_contents(path, "stale.example OK\n", -1, NULL));   /* the .cdb counts */
  g_autofree char *value = g_strdup_printf("%s, inline:{ inline.example=x }, literal.example",
                                           spec);
  g_autoptr(DomainList) list = list_new(value, DOMAIN_MATCH_PARENT);
  expect_match(list, "relay.example", MATCH_FOUND);
  expect_match(list, "mx.Relay.Example", MATCH_FOUND);
  expect_match(list, "stale.example", MATCH_NONE);
  expect_match(list, "inline.example", MATCH_FOUND);
  expect_match(list, "sub.inline.example", MATCH_FOUND);
  expect_match(list, "literal.example", MATCH_FOUND);
  expect_match(list, "other.example", MATCH_NONE);

  /* negated table, then a catch-all name */
  g_autofree char *neg = g_strdup_printf("!%s, example", spec);
  g_autoptr(DomainList) nlist = list_new(neg, DOMAIN_MATCH_PARENT);
  expect_match(nlist, "relay.example", MATCH_NONE);
  expect_match(nlist, "other.example", MATCH_FOUND);
}

/* A table that cannot answer is a temporary failure, never "not listed";
 * entries before it still decide. */
static void
test_tempfail(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "domains", "table.example x\n");
  g_autofree char *spec = g_strconcat("texthash:", path, NULL);
  g_autofree char *value = g_strdup_printf("first.example, %s", spec);
  g_autoptr(DomainList) list = list_new(value, DOMAIN_MATCH_DOT);
  g_autoptr(GError) error = NULL;

  expect_match(list, "table.example", MATCH_FOUND);
  expect_match(list, "other.example", MATCH_NONE);
  /* the file becomes unreadable (a directory in its place) */
  g_assert_cmpint(g_unlink(path), ==, 0);
  g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
  g_usleep(G_USEC_PER_SEC + 100000);   /* file tables look again after a second */
  g_assert_cmpint(domain_list_match(list, "table.example", &error), ==, MATCH_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  g_assert_true(g_str_has_prefix(error->message, "test_domains: table texthash:"));
  g_clear_error(&error);
  g_assert_cmpint(domain_list_match(list, "other.example", &error), ==, MATCH_TEMPFAIL);
  g_clear_error(&error);
  expect_match(list, "first.example", MATCH_FOUND);
  /* readable again */
  g_assert_cmpint(g_rmdir(path), ==, 0);
  g_assert_true(g_file_set_contents(path, "table.example x\n", -1, NULL));
  g_usleep(G_USEC_PER_SEC + 100000);
  expect_match(list, "table.example", MATCH_FOUND);
}

typedef struct {
  const DomainList *list;
  gint failures;
} ThreadData;

static gpointer
match_thread(gpointer p)
{
  ThreadData *td = p;
  for (guint i = 0; i < 2000; i++) {
    const char *d = i % 2 ? "sub.listed.example" : "unlisted.example";
    MatchResult want = i % 2 ? MATCH_FOUND : MATCH_NONE;
    if (domain_list_match(td->list, d, NULL) != want)
      g_atomic_int_inc(&td->failures);
  }
  return NULL;
}

static void
test_threads(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "domains", "listed.example x\n");
  g_autofree char *value = g_strdup_printf("a.example, texthash:%s", path);
  g_autoptr(DomainList) list = list_new(value, DOMAIN_MATCH_PARENT);
  ThreadData td = { .list = list };
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
    threads[i] = g_thread_new("match", match_thread, &td);
  for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
    g_thread_join(threads[i]);
  g_assert_cmpint(td.failures, ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/domain-list/names", test_names);
  g_test_add_func("/domain-list/dot-names", test_dot_names);
  g_test_add_func("/domain-list/negation", test_negation_first_match);
  g_test_add("/domain-list/file", Fixture, NULL, fixture_setup, test_file, fixture_teardown);
  g_test_add("/domain-list/file-errors", Fixture, NULL, fixture_setup, test_file_errors,
             fixture_teardown);
  g_test_add("/domain-list/texthash", Fixture, NULL, fixture_setup, test_texthash,
             fixture_teardown);
  g_test_add("/domain-list/hash-inline", Fixture, NULL, fixture_setup, test_hash_and_inline,
             fixture_teardown);
  g_test_add("/domain-list/tempfail", Fixture, NULL, fixture_setup, test_tempfail,
             fixture_teardown);
  g_test_add("/domain-list/threads", Fixture, NULL, fixture_setup, test_threads,
             fixture_teardown);
  return g_test_run();
}
