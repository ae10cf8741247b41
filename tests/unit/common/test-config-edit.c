/* test-config-edit.c - unit tests for config_edit_set() / config_edit_unset().
 *
 * Each case writes a main.cf (and conf.d files) into its own temporary
 * directory, edits it, and compares the exact bytes of the result with
 * what postconf -e / -X would leave: comments, blank lines, continuation
 * lines and the order of other settings kept, replaced values in place,
 * new names appended in name order.  Failed edits must leave main.cf
 * byte-identical, and no edit may leave main.cf.tmp behind.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-edit.h"
#include "config.h"

typedef struct {
  char *dir;
  char *main_cf;
} Fixture;

static void
remove_tree(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      remove_tree(child);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  umask(022);
  fx->dir = g_dir_make_tmp("test-config-edit-XXXXXX", &error);
  g_assert_no_error(error);
  fx->main_cf = g_build_filename(fx->dir, "main.cf", NULL);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
  remove_tree(fx->dir);
  g_free(fx->dir);
  g_free(fx->main_cf);
}

static void
write_file(Fixture *fx, const char *rel, const char *contents)
{
  g_autofree char *path = g_build_filename(fx->dir, rel, NULL);
  g_autofree char *parent = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
  g_autoptr(GError) error = NULL;
  g_file_set_contents(path, contents, -1, &error);
  g_assert_no_error(error);
}

static char *
read_main_cf(Fixture *fx)
{
  char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_file_get_contents(fx->main_cf, &text, NULL, &error);
  g_assert_no_error(error);
  return text;
}

/* The directory holds exactly main.cf (and conf.d when the test made one). */
static void
assert_no_temp_file(Fixture *fx)
{
  g_autofree char *tmp = g_strconcat(fx->main_cf, ".tmp", NULL);
  g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
  g_autoptr(GDir) d = g_dir_open(fx->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(d)))
    g_assert_true(strcmp(name, "main.cf") == 0 || strcmp(name, "conf.d") == 0
                  || strcmp(name, "real") == 0);
}

static gboolean
set1(Fixture *fx, const char *name, const char *value, GError **error)
{
  const char *names[] = { name, NULL };
  const char *values[] = { value, NULL };
  return config_edit_set(fx->dir, names, values, error);
}

/* A failed edit: the expected error text, main.cf unchanged, no temp file. */
static void
assert_set_fails(Fixture *fx, const char *const *names, const char *const *values,
                 const char *message)
{
  g_autofree char *before = read_main_cf(fx);
  g_autoptr(GError) error = NULL;
  g_assert_false(config_edit_set(fx->dir, names, values, &error));
  /* a name that is no parameter has its own code (D-Bus InvalidParameter) */
  if (g_str_has_prefix(message, "unknown parameter ") ||
      g_str_has_prefix(message, "bad parameter name:"))
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_UNKNOWN_PARAMETER);
  else
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_cmpstr(error->message, ==, message);
  g_autofree char *after = read_main_cf(fx);
  g_assert_cmpstr(after, ==, before);
  assert_no_temp_file(fx);
}

static const char sample[] =
  "# Postern main.cf\n"
  "myhostname = old.example.com\n"
  "\n"
  "mydestination = $myhostname,\n"
  "    localhost\n"
  "    # a comment inside the value\n"
  "\n"
  "smtpd_banner = $myhostname ESMTP\n";

static void
test_replace_in_place(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", sample);
  const char *names[] = { "mydestination", "message_size_limit", "alias_maps", NULL };
  const char *values[] = { "example.com, localhost", "20480000", "hash:/etc/postern/aliases", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(config_edit_set(fx->dir, names, values, &error));
  g_assert_no_error(error);
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==,
                  "# Postern main.cf\n"
                  "myhostname = old.example.com\n"
                  "\n"
                  "mydestination = example.com, localhost\n"
                  "    # a comment inside the value\n"
                  "\n"
                  "smtpd_banner = $myhostname ESMTP\n"
                  "alias_maps = hash:/etc/postern/aliases\n"
                  "message_size_limit = 20480000\n");
  assert_no_temp_file(fx);

  g_autoptr(Config) config = config_load(fx->dir, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpint(config_size(config, "message_size_limit"), ==, 20480000);
}

/* postconf -e gives every definition of a name the new value. */
static void
test_duplicates_all_replaced(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "relayhost = a.example\n# between\nrelayhost = b.example\n  [c]\n");
  g_autoptr(GError) error = NULL;
  g_assert_true(set1(fx, "relayhost", "[smart.example]:587", &error));
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==,
                  "relayhost = [smart.example]:587\n# between\nrelayhost = [smart.example]:587\n");
}

static void
test_missing_newline_and_long_value(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "# no newline at the end\nmyorigin = example.com");
  g_autoptr(GString) longv = g_string_new(NULL);
  for (int i = 0; i < 40; i++)
    g_string_append_printf(longv, "%sdomain%02d.example", i ? ", " : "", i);
  const char *names[] = { "myorigin", "mydestination", NULL };
  const char *values[] = { "  example.net \t", longv->str, NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(config_edit_set(fx->dir, names, values, &error));
  g_assert_no_error(error);
  g_autofree char *text = read_main_cf(fx);
  g_autofree char *expected = g_strdup_printf(
      "# no newline at the end\nmyorigin = example.net\nmydestination = %s\n", longv->str);
  g_assert_cmpstr(text, ==, expected);
}

static void
test_empty_value_and_last_wins(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "relayhost = old\n");
  const char *names[] = { "relayhost", "soft_bounce", "relayhost", NULL };
  const char *values[] = { "first", "yes", "", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(config_edit_set(fx->dir, names, values, &error));
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==, "relayhost = \nsoft_bounce = yes\n");
}

static void
test_creates_missing_main_cf(Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(set1(fx, "myhostname", "mail.example.com", &error));
  g_assert_no_error(error);
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==, "myhostname = mail.example.com\n");
  struct stat st;
  g_assert_cmpint(stat(fx->main_cf, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0644);
  assert_no_temp_file(fx);
}

static void
test_keeps_owner_and_mode(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", sample);
  g_assert_cmpint(chmod(fx->main_cf, 0640), ==, 0);
  g_assert_cmpint(chown(fx->main_cf, 1, 2), ==, 0);    /* the tests run as root */
  g_autoptr(GError) error = NULL;
  g_assert_true(set1(fx, "myhostname", "new.example.com", &error));
  g_assert_no_error(error);
  struct stat st;
  g_assert_cmpint(stat(fx->main_cf, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0640);
  g_assert_cmpint(st.st_uid, ==, 1);
  g_assert_cmpint(st.st_gid, ==, 2);
  assert_no_temp_file(fx);
}

/* A symlinked main.cf stays a symlink; its target is edited. */
static void
test_symlink_target_edited(Fixture *fx, gconstpointer data)
{
  write_file(fx, "real/main.cf", "myhostname = a.example\n");
  g_assert_cmpint(symlink("real/main.cf", fx->main_cf), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_true(set1(fx, "myhostname", "b.example", &error));
  g_assert_no_error(error);
  g_assert_true(g_file_test(fx->main_cf, G_FILE_TEST_IS_SYMLINK));
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==, "myhostname = b.example\n");
  g_autofree char *tmp = g_build_filename(fx->dir, "real", "main.cf.tmp", NULL);
  g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
}

/* A main.cf.tmp left by a crash is taken over and gone afterwards. */
static void
test_stale_temp_file_reused(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "myhostname = a.example\n");
  write_file(fx, "main.cf.tmp", "garbage from a crash\n");
  g_autoptr(GError) error = NULL;
  g_assert_true(set1(fx, "myhostname", "b.example", &error));
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==, "myhostname = b.example\n");
  assert_no_temp_file(fx);
}

static void
test_unknown_name_and_bad_values(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", sample);
  const char *unknown[] = { "myhostname", "nosuch_parameter", NULL };
  const char *unknown_v[] = { "x.example", "1", NULL };
  assert_set_fails(fx, unknown, unknown_v, "unknown parameter nosuch_parameter");

  const char *bad_name[] = { "my hostname", NULL };
  const char *one[] = { "x", NULL };
  assert_set_fails(fx, bad_name, one, "bad parameter name: \"my hostname\"");

  const char *timeout[] = { "myhostname", "smtpd_timeout", NULL };
  const char *timeout_v[] = { "x.example", "soon", NULL };
  assert_set_fails(fx, timeout, timeout_v,
                   "parameter smtpd_timeout: bad time value: 'soon' (use a number with optional "
                   "unit s, m, h, d or w)");

  const char *limit[] = { "smtpd_recipient_limit", NULL };
  const char *zero[] = { "0", NULL };
  assert_set_fails(fx, limit, zero,
                   "parameter smtpd_recipient_limit: value '0' out of range (1 .. 2147483647)");

  const char *flag[] = { "soft_bounce", NULL };
  const char *maybe[] = { "maybe", NULL };
  assert_set_fails(fx, flag, maybe, "parameter soft_bounce: bad boolean value: 'maybe' (use yes or no)");

  const char *maps[] = { "transport_maps", NULL };
  const char *notable[] = { "/etc/postern/transport", NULL };
  assert_set_fails(fx, maps, notable,
                   "parameter transport_maps: bad lookup table value: '/etc/postern/transport' "
                   "(use type:name)");

  const char *host[] = { "myhostname", NULL };
  const char *two_lines[] = { "a.example\nsmtpd_banner = owned", NULL };
  assert_set_fails(fx, host, two_lines,
                   "parameter myhostname: the value must be one line (it contains a newline)");
}

/* Values with $ are checked after expansion, in the configuration as it
 * would be; loops too. */
static void
test_whole_configuration_must_load(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "my_timeout = soon\nmyhostname = mail.example.com\n");
  const char *names[] = { "smtpd_timeout", NULL };
  const char *values[] = { "$my_timeout", NULL };
  g_autofree char *expected = g_strdup_printf(
      "the new configuration would not load, %s is unchanged: %s:3: parameter smtpd_timeout: "
      "bad time value: 'soon' (use a number with optional unit s, m, h, d or w)",
      fx->main_cf, fx->main_cf);
  assert_set_fails(fx, names, values, expected);

  const char *loop[] = { "myhostname", NULL };
  const char *loop_v[] = { "$myorigin", NULL };
  g_autofree char *loop_msg = g_strdup_printf(
      "the new configuration would not load, %s is unchanged: %s:2: parameter myhostname: "
      "recursive expansion (myhostname -> myorigin -> myhostname)", fx->main_cf, fx->main_cf);
  assert_set_fails(fx, loop, loop_v, loop_msg);
}

/* A conf.d file that sets the name would override main.cf: refused. */
static void
test_conf_d_shadowing_refused(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", sample);
  write_file(fx, "conf.d/10-banner.cf", "# drop-in\nsmtpd_banner = $myhostname ESMTP ready\n");
  g_autofree char *where = g_build_filename(fx->dir, "conf.d", "10-banner.cf", NULL);
  g_autofree char *expected = g_strdup_printf(
      "%s:2: parameter smtpd_banner is set here, and this overrides main.cf; change or remove it "
      "in this file", where);
  const char *names[] = { "myhostname", "smtpd_banner", NULL };
  const char *values[] = { "x.example", "hello", NULL };
  assert_set_fails(fx, names, values, expected);

  g_autofree char *before = read_main_cf(fx);
  g_autoptr(GError) error = NULL;
  const char *unset[] = { "smtpd_banner", NULL };
  g_assert_false(config_edit_unset(fx->dir, unset, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_cmpstr(error->message, ==, expected);
  g_autofree char *after = read_main_cf(fx);
  g_assert_cmpstr(after, ==, before);
  assert_no_temp_file(fx);

  /* other names are still editable */
  g_clear_error(&error);
  g_assert_true(set1(fx, "myhostname", "x.example", &error));
  g_assert_no_error(error);
}

static void
test_unset(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf",
             "# top\n"
             "mydomian = example.com\n"
             "mydestination = $myhostname,\n"
             "    # kept comment\n"
             "    localhost\n"
             "relayhost = x\n"
             "mydestination = again\n"
             "# end\n");
  const char *names[] = { "mydestination", "mydomian", "not_there_at_all", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(config_edit_unset(fx->dir, names, &error));
  g_assert_no_error(error);
  g_autofree char *text = read_main_cf(fx);
  g_assert_cmpstr(text, ==, "# top\n    # kept comment\nrelayhost = x\n# end\n");
  assert_no_temp_file(fx);

  const char *bad[] = { "a=b", NULL };
  g_assert_false(config_edit_unset(fx->dir, bad, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_UNKNOWN_PARAMETER);
  g_assert_cmpstr(error->message, ==, "bad parameter name: \"a=b\"");
}

/* Removing what a value refers to must still leave a loadable file. */
static void
test_unset_checks_result(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "my_limit = 5\nsmtpd_recipient_limit = $my_limit\n");
  g_autofree char *before = read_main_cf(fx);
  const char *names[] = { "my_limit", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_false(config_edit_unset(fx->dir, names, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *expected = g_strdup_printf(
      "the new configuration would not load, %s is unchanged: %s:1: parameter "
      "smtpd_recipient_limit: bad numerical value: ''", fx->main_cf, fx->main_cf);
  g_assert_cmpstr(error->message, ==, expected);
  g_autofree char *after = read_main_cf(fx);
  g_assert_cmpstr(after, ==, before);
  assert_no_temp_file(fx);
}

/* A main.cf with a NUL byte is not rewritten (the loader refuses it too). */
static void
test_nul_byte_refused(Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_file_set_contents(fx->main_cf, "myhostname = a\0b\n", 17, &error);
  g_assert_no_error(error);
  g_assert_false(set1(fx, "myhostname", "c.example", &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *expected = g_strdup_printf("%s: file contains a NUL byte", fx->main_cf);
  g_assert_cmpstr(error->message, ==, expected);
  gsize length = 0;
  g_autofree char *after = NULL;
  g_clear_error(&error);
  g_file_get_contents(fx->main_cf, &after, &length, &error);
  g_assert_cmpuint(length, ==, 17);
  assert_no_temp_file(fx);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/config-edit/replace-in-place", test_replace_in_place);
  ADD("/config-edit/duplicates-all-replaced", test_duplicates_all_replaced);
  ADD("/config-edit/missing-newline-and-long-value", test_missing_newline_and_long_value);
  ADD("/config-edit/empty-value-and-last-wins", test_empty_value_and_last_wins);
  ADD("/config-edit/creates-missing-main-cf", test_creates_missing_main_cf);
  ADD("/config-edit/keeps-owner-and-mode", test_keeps_owner_and_mode);
  ADD("/config-edit/symlink-target-edited", test_symlink_target_edited);
  ADD("/config-edit/stale-temp-file-reused", test_stale_temp_file_reused);
  ADD("/config-edit/unknown-name-and-bad-values", test_unknown_name_and_bad_values);
  ADD("/config-edit/whole-configuration-must-load", test_whole_configuration_must_load);
  ADD("/config-edit/conf-d-shadowing-refused", test_conf_d_shadowing_refused);
  ADD("/config-edit/unset", test_unset);
  ADD("/config-edit/unset-checks-result", test_unset_checks_result);
  ADD("/config-edit/nul-byte-refused", test_nul_byte_refused);
  return g_test_run();
}
