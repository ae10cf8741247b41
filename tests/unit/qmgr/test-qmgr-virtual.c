/* test-qmgr-virtual.c - virtual_alias_maps rewriting: key order
 * (user@domain, user for local domains only, @domain), recursion, fan-out,
 * self references, duplicates, loops, no match, unreadable tables. */
#include <glib/gstdio.h>
#include <stdlib.h>

#include "config.h"
#include "qmgr.h"

static QmgrSettings *
settings_with(const char *dir, const char *table_text, const char *alias_maps)
{
  g_autofree char *table = g_build_filename(dir, "valias", NULL);
  g_autofree char *main_cf_path = g_build_filename(dir, "main.cf", NULL);
  g_autofree char *maps = alias_maps ? g_strdup(alias_maps) : g_strconcat("texthash:", table, NULL);
  g_autofree char *main_cf = g_strdup_printf("myhostname = mail.example\n"
                                             "mydestination = localhost, local.example\n"
                                             "myorigin = local.example\n"
                                             "recipient_delimiter = +\n"
                                             "alias_maps =\n"
                                             "virtual_alias_maps = %s\n", maps);
  g_autoptr(GError) error = NULL;
  Config *config;

  g_assert_true(g_file_set_contents(table, table_text, -1, NULL));
  g_assert_true(g_file_set_contents(main_cf_path, main_cf, -1, NULL));
  config = config_load(dir, NULL, &error);
  g_assert_no_error(error);
  return qmgr_settings_new(config);
}

/* The expansion as "a,b,c"; "=" when unchanged; "!tempfail" / "!loop". */
static char *
expand(const QmgrSettings *s, const char *address)
{
  g_autoptr(GPtrArray) out = NULL;
  g_autoptr(GError) error = NULL;

  switch (qmgr_virtual_alias_expand(s, address, &out, &error)) {
  case QMGR_VIRTUAL_ALIAS_NONE:
    g_assert_null(out);
    return g_strdup("=");
  case QMGR_VIRTUAL_ALIAS_TEMPFAIL:
    g_assert_nonnull(error);
    return g_strdup("!tempfail");
  case QMGR_VIRTUAL_ALIAS_LOOP:
    g_assert_nonnull(error);
    return g_strdup("!loop");
  case QMGR_VIRTUAL_ALIAS_FOUND:
    break;
  }
  g_ptr_array_add(out, NULL);
  return g_strjoinv(",", (char **) out->pdata);
}

#define ASSERT_EXPANDS(s, addr, want) \
  do { g_autofree char *got_ = expand((s), (addr)); g_assert_cmpstr(got_, ==, (want)); } while (0)

static void
test_expansion(void)
{
  g_autofree char *dir = g_dir_make_tmp("test-virtual-XXXXXX", NULL);
  g_autoptr(GString) text = g_string_new(
      "info@virt.test      alice@virt.test, mailtest@example.test\n"
      "Mixed@Virt.Test     alice@virt.test\n"
      "@alias.test         catch@virt.test\n"
      "exact@alias.test    bob@virt.test\n"
      "postmaster          root@virt.test\n"
      "nested@virt.test    info@virt.test, <carol@virt.test>\n"
      "self@virt.test      self@virt.test, copy@virt.test\n"
      "dup@virt.test       alice@virt.test, alice@virt.test, info@virt.test\n"
      "bare@virt.test      someone\n"
      "loop1@virt.test     loop2@virt.test\n"
      "loop2@virt.test     loop1@virt.test\n"
      "ext@virt.test       ext-base@virt.test\n");
  g_autoptr(QmgrSettings) s = NULL;

  for (guint i = 0; i < 120; i++)
    g_string_append_printf(text, "deep%u@virt.test deep%u@virt.test\n", i, i + 1);
  s = settings_with(dir, text->str, NULL);
  g_assert_null(s->virtual_error);

  ASSERT_EXPANDS(s, "alice@virt.test", "=");
  ASSERT_EXPANDS(s, "info@virt.test", "alice@virt.test,mailtest@example.test");
  ASSERT_EXPANDS(s, "INFO@virt.test", "alice@virt.test,mailtest@example.test");
  ASSERT_EXPANDS(s, "mixed@virt.test", "alice@virt.test");
  /* the exact key before the catch-all */
  ASSERT_EXPANDS(s, "exact@alias.test", "bob@virt.test");
  ASSERT_EXPANDS(s, "anyone@alias.test", "catch@virt.test");
  /* "user" alone only for local domains */
  ASSERT_EXPANDS(s, "postmaster@local.example", "root@virt.test");
  ASSERT_EXPANDS(s, "postmaster@virt.test", "=");
  /* recursion, and angle brackets stripped */
  ASSERT_EXPANDS(s, "nested@virt.test", "alice@virt.test,mailtest@example.test,carol@virt.test");
  /* maps to itself: kept */
  ASSERT_EXPANDS(s, "self@virt.test", "self@virt.test,copy@virt.test");
  /* an address met twice in one expansion counts once */
  ASSERT_EXPANDS(s, "dup@virt.test", "alice@virt.test,mailtest@example.test");
  /* a bare name gets @$myorigin */
  ASSERT_EXPANDS(s, "bare@virt.test", "someone@local.example");
  /* extension: the key without it */
  ASSERT_EXPANDS(s, "ext+tag@virt.test", "ext-base@virt.test");
  /* a loop leaves nothing to deliver to; too deep is an error too */
  ASSERT_EXPANDS(s, "loop1@virt.test", "!loop");
  ASSERT_EXPANDS(s, "deep0@virt.test", "!loop");
  ASSERT_EXPANDS(s, "deep50@virt.test", "deep120@virt.test");

  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_no_table_and_tempfail(void)
{
  g_autofree char *dir = g_dir_make_tmp("test-virtual-XXXXXX", NULL);
  g_autoptr(QmgrSettings) empty = settings_with(dir, "", "");
  g_autoptr(QmgrSettings) broken = settings_with(dir, "", "nosuchtype:/x");

  ASSERT_EXPANDS(empty, "info@virt.test", "=");
  g_assert_nonnull(broken->virtual_error);
  ASSERT_EXPANDS(broken, "info@virt.test", "!tempfail");

  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qmgr/virtual/expansion", test_expansion);
  g_test_add_func("/qmgr/virtual/no-table-and-tempfail", test_no_table_and_tempfail);
  return g_test_run();
}
