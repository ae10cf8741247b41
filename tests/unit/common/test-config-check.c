/* test-config-check.c - unit tests for config_check().
 *
 * Each case builds a small installation in its own temporary directory
 * (etc/ as the configuration directory, queue/ made by
 * queue_dirs_ensure() as the daemons make it, tables, aliases, TLS files
 * made by the openssl command), checks that it is clean, breaks one
 * thing, and compares the exact list of problems.  mail_owner is
 * "daemon" (uid 1, present on every Debian system); the tests run as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config-check.h"
#include "config.h"
#include "queue-file.h"
#include "table.h"

typedef struct {
  char *root;
  char *etc;
  char *queue;
  GString *main_cf;     /* base settings; tests append */
  int lines;            /* lines in main_cf so far */
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

static char *
path_of(Fixture *fx, const char *rel)
{
  return g_build_filename(fx->root, rel, NULL);
}

static void
write_file(Fixture *fx, const char *rel, const char *contents, mode_t mode)
{
  g_autofree char *path = path_of(fx, rel);
  g_autofree char *parent = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
  g_autoptr(GError) error = NULL;
  g_file_set_contents(path, contents, -1, &error);
  g_assert_no_error(error);
  g_assert_cmpint(chmod(path, mode), ==, 0);
}

/* Appends "name = value" to main.cf; returns its line number. */
static int
set(Fixture *fx, const char *name, const char *value)
{
  g_string_append_printf(fx->main_cf, "%s = %s\n", name, value);
  return ++fx->lines;
}

static void
rebuild(const char *spec, TableFlags flags)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(table_rebuild(spec, flags, &error));
  g_assert_no_error(error);
}

/* Sets path's mtime to now - age seconds. */
static void
age_file(const char *path, time_t age)
{
  struct timespec times[2] = { { .tv_sec = time(NULL) - age }, { .tv_sec = time(NULL) - age } };
  g_assert_cmpint(utimensat(AT_FDCWD, path, times, 0), ==, 0);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  umask(022);
  g_assert_cmpint(geteuid(), ==, 0);
  fx->root = g_dir_make_tmp("test-config-check-XXXXXX", &error);
  g_assert_no_error(error);
  g_assert_cmpint(chmod(fx->root, 0755), ==, 0);
  fx->etc = path_of(fx, "etc");
  fx->queue = path_of(fx, "queue");
  g_assert_cmpint(g_mkdir(fx->etc, 0755), ==, 0);
  struct passwd *pw = getpwnam("daemon");
  g_assert_nonnull(pw);
  g_assert_true(queue_dirs_ensure(fx->queue, pw->pw_uid, pw->pw_gid, &error));
  g_assert_no_error(error);

  write_file(fx, "etc/aliases", "postmaster: root\n", 0644);
  g_autofree char *aliases = path_of(fx, "etc/aliases");
  g_autofree char *spec = g_strconcat("hash:", aliases, NULL);
  rebuild(spec, TABLE_ALIAS_SYNTAX);

  fx->main_cf = g_string_new(NULL);
  set(fx, "queue_directory", fx->queue);
  set(fx, "mail_owner", "daemon");
  set(fx, "default_privs", "nobody");
  set(fx, "alias_maps", spec);
  set(fx, "alias_database", spec);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
  remove_tree(fx->root);
  g_free(fx->root);
  g_free(fx->etc);
  g_free(fx->queue);
  g_string_free(fx->main_cf, TRUE);
}

/* Writes main.cf, runs the check and compares with the expected
 * problems (NULL-terminated; "%E" in an entry stands for main.cf's path,
 * "%R" for the fixture root). */
static void
assert_problems(Fixture *fx, const char *const *expected)
{
  write_file(fx, "etc/main.cf", fx->main_cf->str, 0644);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = config_check(fx->etc, &error);
  g_assert_no_error(error);
  g_assert_nonnull(problems);
  g_autofree char *main_cf = g_build_filename(fx->etc, "main.cf", NULL);
  guint n = 0;
  for (; expected[n]; n++) {
    g_autoptr(GString) want = g_string_new(expected[n]);
    g_string_replace(want, "%E", main_cf, 0);
    g_string_replace(want, "%R", fx->root, 0);
    g_assert_cmpuint(n, <, problems->len);
    g_assert_cmpstr(problems->pdata[n], ==, want->str);
  }
  for (guint i = n; i < problems->len; i++)
    g_test_message("unexpected problem: %s", (const char *) problems->pdata[i]);
  g_assert_cmpuint(problems->len, ==, n);
}

static const char *const no_problems[] = { NULL };

static void
test_clean(Fixture *fx, gconstpointer data)
{
  assert_problems(fx, no_problems);
}

static void
test_does_not_load(Fixture *fx, gconstpointer data)
{
  set(fx, "smtpd_timeout", "soon");
  write_file(fx, "etc/main.cf", fx->main_cf->str, 0644);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = config_check(fx->etc, &error);
  g_assert_null(problems);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *expected = g_strdup_printf(
      "%s/main.cf:6: parameter smtpd_timeout: bad time value: 'soon' (use a number with optional "
      "unit s, m, h, d or w)", fx->etc);
  g_assert_cmpstr(error->message, ==, expected);
}

static void
test_unknown_parameter(Fixture *fx, gconstpointer data)
{
  set(fx, "mydomian", "example.com");
  const char *const expected[] = { "%E:6: warning: unknown parameter name: mydomian", NULL };
  assert_problems(fx, expected);
}

static void
test_mail_owner(Fixture *fx, gconstpointer data)
{
  g_string_truncate(fx->main_cf, 0);
  fx->lines = 0;
  g_autofree char *noqueue = path_of(fx, "no-queue");
  set(fx, "queue_directory", noqueue);
  set(fx, "alias_maps", "");
  set(fx, "alias_database", "");
  set(fx, "mail_owner", "nosuchuser-postern");
  const char *const unknown[] = {
    "%E:4: fatal: parameter mail_owner: unknown user name value: nosuchuser-postern", NULL,
  };
  assert_problems(fx, unknown);

  g_string_replace(fx->main_cf, "nosuchuser-postern", "root", 0);
  const char *const root[] = {
    "%E:4: fatal: parameter mail_owner: user root has privileged user ID", NULL,
  };
  assert_problems(fx, root);

  g_string_replace(fx->main_cf, "= root", "= nobody", 0);
  const char *const same[] = {
    "fatal: parameter default_privs: parameters default_privs and mail_owner specify the same "
    "user nobody", NULL,
  };
  assert_problems(fx, same);
}

static void
test_config_directory(Fixture *fx, gconstpointer data)
{
  write_file(fx, "etc/conf.d/10-x.cf", "# nothing\n", 0666);
  g_autofree char *conf_d = path_of(fx, "etc/conf.d");
  g_assert_cmpint(chown(conf_d, 1, 1), ==, 0);
  const char *const expected[] = {
    "warning: not owned by root: %R/etc/conf.d",
    "warning: group or other writable: %R/etc/conf.d/10-x.cf",
    NULL,
  };
  assert_problems(fx, expected);
}

static void
test_queue_directory(Fixture *fx, gconstpointer data)
{
  g_assert_cmpint(chmod(fx->queue, 0757), ==, 0);
  g_autofree char *incoming = path_of(fx, "queue/incoming");
  g_assert_cmpint(chown(incoming, 0, 0), ==, 0);
  g_autofree char *hold = path_of(fx, "queue/hold");
  g_assert_cmpint(chmod(hold, 0770), ==, 0);
  g_autofree char *deferred = path_of(fx, "queue/deferred");
  g_assert_cmpint(chown(deferred, 1, 1), ==, 0);
  write_file(fx, "queue/corrupt/0123456789ABCDEF01", "junk", 0600);
  const char *const expected[] = {
    "warning: group or other writable: %R/queue",
    "warning: not owned by daemon: %R/queue/incoming",
    "warning: group or other writable: %R/queue/incoming",
    "warning: not owned by root: %R/queue/deferred",
    "warning: group or other writable: %R/queue/hold",
    "warning: damaged message: %R/queue/corrupt/0123456789ABCDEF01",
    NULL,
  };
  assert_problems(fx, expected);
}

static void
test_missing_and_unreadable_tables(Fixture *fx, gconstpointer data)
{
  g_autofree char *access = path_of(fx, "etc/access");
  g_autofree char *value = g_strdup_printf(
      "permit_mynetworks, check_recipient_access hash:%s, check_sender_access proxy:cdb:%s, "
      "reject_unauth_destination", access, access);
  int line = set(fx, "smtpd_recipient_restrictions", value);
  g_autofree char *missing = g_strdup_printf(
      "%%E:%d: warning: parameter smtpd_recipient_restrictions: open database %%R/etc/access.cdb: "
      "No such file or directory", line);
  const char *const expected_missing[] = { missing, NULL };
  assert_problems(fx, expected_missing);

  write_file(fx, "etc/access", "spam.example REJECT\n", 0644);
  g_autofree char *no_cdb = g_strdup_printf(
      "%%E:%d: warning: parameter smtpd_recipient_restrictions: database %%R/etc/access.cdb does "
      "not exist (lookups read %%R/etc/access as text; run \"mailctl table rebuild hash:%%R/etc/access\")",
      line);
  const char *const expected_no_cdb[] = { no_cdb, NULL };
  assert_problems(fx, expected_no_cdb);

  g_autofree char *spec = g_strconcat("hash:", access, NULL);
  rebuild(spec, 0);
  g_autofree char *cdb = g_strconcat(access, ".cdb", NULL);
  g_assert_cmpint(chmod(cdb, 0600), ==, 0);
  g_autofree char *unreadable = g_strdup_printf(
      "%%E:%d: warning: parameter smtpd_recipient_restrictions: %%R/etc/access.cdb is not "
      "readable by mail_owner daemon", line);
  const char *const expected_unreadable[] = { unreadable, NULL };
  assert_problems(fx, expected_unreadable);
}

static void
test_aliases_not_compiled(Fixture *fx, gconstpointer data)
{
  g_autofree char *cdb = path_of(fx, "etc/aliases.cdb");
  g_assert_cmpint(g_unlink(cdb), ==, 0);
  const char *const expected[] = {
    "%E:5: warning: parameter alias_database: database %R/etc/aliases.cdb does not exist (lookups "
    "read %R/etc/aliases as text; run \"newaliases\")",
    NULL,
  };
  assert_problems(fx, expected);
}

static void
test_older_cdb(Fixture *fx, gconstpointer data)
{
  g_autofree char *access = path_of(fx, "etc/access");
  g_autofree char *spec = g_strconcat("hash:", access, NULL);
  g_autofree char *cdb = g_strconcat(access, ".cdb", NULL);
  write_file(fx, "etc/access", "spam.example REJECT\n", 0644);
  rebuild(spec, 0);
  int line = set(fx, "transport_maps", spec);

  /* the source changed within the last 100 seconds: no warning (dict_cdb) */
  age_file(cdb, 300);
  age_file(access, 50);
  assert_problems(fx, no_problems);

  age_file(access, 200);
  g_autofree char *older = g_strdup_printf(
      "%%E:%d: warning: parameter transport_maps: database %%R/etc/access.cdb is older than "
      "source file %%R/etc/access", line);
  const char *const expected[] = { older, NULL };
  assert_problems(fx, expected);
}

/* Tables in restriction classes and pattern-table syntax errors. */
static void
test_restriction_class_and_pattern_table(Fixture *fx, gconstpointer data)
{
  g_autofree char *bad = path_of(fx, "etc/bad.regexp");
  write_file(fx, "etc/bad.regexp", "this is not a regexp rule\n", 0644);
  g_autofree char *missing = path_of(fx, "etc/senders");
  set(fx, "smtpd_restriction_classes", "from_friends");
  g_autofree char *class_value = g_strdup_printf("check_sender_access texthash:%s, permit",
                                                 missing);
  int class_line = set(fx, "from_friends", class_value);
  g_autofree char *client = g_strdup_printf("check_client_access regexp:%s", bad);
  int client_line = set(fx, "smtpd_client_restrictions", client);
  set(fx, "header_checks", "nosuchtype:/etc/x");

  g_autoptr(GError) parse_error = NULL;
  g_autofree char *bad_spec = g_strconcat("regexp:", bad, NULL);
  g_autoptr(Table) t = table_open(bad_spec, 0, &parse_error);
  g_assert_null(t);
  g_autofree char *pattern = g_strdup_printf(
      "%%E:%d: warning: parameter smtpd_client_restrictions: %s", client_line,
      parse_error->message);
  g_autofree char *in_class = g_strdup_printf(
      "%%E:%d: warning: parameter from_friends: open %%R/etc/senders: No such file or directory",
      class_line);
  const char *const expected[] = {
    "%E:9: warning: parameter header_checks: table \"nosuchtype:/etc/x\": unsupported table "
    "type \"nosuchtype\"",
    pattern,
    in_class,
    NULL,
  };
  assert_problems(fx, expected);
}

static void
test_aliases_and_includes(Fixture *fx, gconstpointer data)
{
  g_autofree char *list = path_of(fx, "lists/staff.inc");
  g_autofree char *gone = path_of(fx, "lists/gone.inc");
  write_file(fx, "lists/staff.inc", "alice\nbob\n", 0666);
  g_autofree char *aliases = g_strdup_printf("postmaster: root\nstaff: :include:%s\n"
                                             "old: \":include:%s\", root\n", list, gone);
  write_file(fx, "etc/aliases", aliases, 0646);
  g_autofree char *path = path_of(fx, "etc/aliases");
  g_autofree char *spec = g_strconcat("hash:", path, NULL);
  rebuild(spec, TABLE_ALIAS_SYNTAX);
  const char *const expected[] = {
    "warning: group or other writable: %R/etc/aliases",
    "%E:4: warning: parameter alias_maps: alias file %R/etc/aliases is world writable",
    "%E:4: warning: parameter alias_maps: open :include: file %R/lists/gone.inc: No such file or "
    "directory",
    "%E:4: warning: parameter alias_maps: :include: file %R/lists/staff.inc is world writable",
    NULL,
  };
  assert_problems(fx, expected);
}

/* Runs openssl with argv (NULL-terminated) in dir; asserts success. */
static void
openssl(const char *dir, const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  int status = 0;
  g_autofree char *out = NULL, *err = NULL;
  g_assert_true(g_spawn_sync(dir, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                             &err, &status, &error));
  g_assert_no_error(error);
  if (!g_spawn_check_wait_status(status, NULL))
    g_error("openssl failed: %s", err);
}

static void
make_pair(const char *dir, const char *key, const char *cert)
{
  const char *argv[] = {
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=mail.example.com", "-days", "2", NULL,
  };
  openssl(dir, argv);
}

static void
test_tls_files(Fixture *fx, gconstpointer data)
{
  g_autofree char *tls = path_of(fx, "tls");
  g_assert_cmpint(g_mkdir(tls, 0755), ==, 0);
  make_pair(tls, "key.pem", "cert.pem");
  make_pair(tls, "other-key.pem", "other-cert.pem");
  g_autofree char *key = path_of(fx, "tls/key.pem");
  g_autofree char *cert = path_of(fx, "tls/cert.pem");
  /* root:mail_owner 0640: smtpd (as mail_owner) can re-read it on reload */
  g_assert_cmpint(chown(key, 0, 1), ==, 0);
  g_assert_cmpint(chmod(key, 0640), ==, 0);
  int cert_line = set(fx, "smtpd_tls_cert_file", cert);
  int key_line = set(fx, "smtpd_tls_key_file", key);
  g_assert_cmpint(cert_line, ==, 6);
  g_assert_cmpint(key_line, ==, 7);
  assert_problems(fx, no_problems);

  /* group mail_owner may read the key; others may not, and root alone
   * (Postfix's usual 0600) keeps smtpd from re-reading it */
  g_assert_cmpint(chown(key, 0, 0), ==, 0);
  const char *const group[] = {
    "%E:7: warning: parameter smtpd_tls_key_file: %R/tls/key.pem is not readable by mail_owner "
    "daemon, as which smtpd re-reads it on reload (root:daemon 0640 is fine)",
    "%E:7: warning: parameter smtpd_tls_key_file: private key file %R/tls/key.pem is readable by "
    "group 0", NULL,
  };
  assert_problems(fx, group);
  g_assert_cmpint(chmod(key, 0644), ==, 0);
  const char *const world[] = {
    "%E:7: warning: parameter smtpd_tls_key_file: private key file %R/tls/key.pem is readable by "
    "other users", NULL,
  };
  assert_problems(fx, world);
  g_assert_cmpint(chmod(key, 0600), ==, 0);
  const char *const root_only[] = {
    "%E:7: warning: parameter smtpd_tls_key_file: %R/tls/key.pem is not readable by mail_owner "
    "daemon, as which smtpd re-reads it on reload (root:daemon 0640 is fine)", NULL,
  };
  assert_problems(fx, root_only);
  g_assert_cmpint(chown(key, 0, 1), ==, 0);
  g_assert_cmpint(chmod(key, 0640), ==, 0);

  /* a key that belongs to another certificate */
  g_string_replace(fx->main_cf, "tls/key.pem", "tls/other-key.pem", 0);
  g_autofree char *other = path_of(fx, "tls/other-key.pem");
  g_assert_cmpint(chown(other, 0, 1), ==, 0);
  g_assert_cmpint(chmod(other, 0640), ==, 0);
  const char *const mismatch[] = {
    "%E:7: warning: parameter smtpd_tls_key_file: private key in %R/tls/other-key.pem does not "
    "match the certificate in %R/tls/cert.pem", NULL,
  };
  assert_problems(fx, mismatch);
  g_string_replace(fx->main_cf, "tls/other-key.pem", "tls/key.pem", 0);

  /* a certificate that does not parse, a key that is not a key, a CA file */
  write_file(fx, "tls/cert.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
             "-----END CERTIFICATE-----\n", 0644);
  write_file(fx, "tls/ca.pem", "no certificates here\n", 0644);
  g_autofree char *ca = path_of(fx, "tls/ca.pem");
  set(fx, "smtpd_tls_CAfile", ca);
  const char *const broken[] = {
    "%E:6: warning: parameter smtpd_tls_cert_file: cannot load a certificate from "
    "%R/tls/cert.pem: no PEM certificate found",
    "%E:8: warning: parameter smtpd_tls_CAfile: no PEM certificate found in %R/tls/ca.pem",
    NULL,
  };
  assert_problems(fx, broken);

  g_assert_cmpint(g_unlink(cert), ==, 0);
  write_file(fx, "tls/key.pem", "not a key\n", 0640);
  g_assert_cmpint(chown(key, 0, 1), ==, 0);
  g_autofree char *ca_ok = path_of(fx, "tls/other-cert.pem");
  g_string_replace(fx->main_cf, ca, ca_ok, 0);
  const char *const missing[] = {
    "%E:6: warning: parameter smtpd_tls_cert_file: open %R/tls/cert.pem: No such file or "
    "directory",
    "%E:7: warning: parameter smtpd_tls_key_file: cannot load a private key from "
    "%R/tls/key.pem: no PEM private key found, or it needs a passphrase",
    NULL,
  };
  assert_problems(fx, missing);
}

static void
test_sasl(Fixture *fx, gconstpointer data)
{
  g_autofree char *dir = path_of(fx, "sasl");
  g_autofree char *db = path_of(fx, "sasl/sasldb2");
  g_autofree char *conf = path_of(fx, "sasl/smtpd.conf");
  g_autofree char *text = g_strdup_printf("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                          "sasldb_path: %s\n", db);
  g_autofree char *no_tls = NULL, *bad_option = NULL;
  int enable_line, options_line;

  write_file(fx, "sasl/sasldb2", "", 0644);
  write_file(fx, "sasl/smtpd.conf", text, 0644);
  enable_line = set(fx, "smtpd_sasl_auth_enable", "yes");
  set(fx, "cyrus_sasl_config_path", dir);
  no_tls = g_strdup_printf("%%E:%d: warning: parameter smtpd_sasl_auth_enable: AUTH is offered "
                           "without TLS: passwords cross the network in the clear (set "
                           "smtpd_tls_cert_file)", enable_line);
  const char *const plaintext[] = { no_tls, NULL };
  assert_problems(fx, plaintext);

  /* the sasldb only root may read; an unknown security option */
  g_assert_cmpint(chmod(db, 0600), ==, 0);
  options_line = set(fx, "smtpd_sasl_security_options", "noanonymous, nothing");
  bad_option = g_strdup_printf("%%E:%d: warning: parameter smtpd_sasl_security_options: unknown "
                               "SASL security option \"nothing\" (noanonymous, noplaintext, "
                               "noactive, nodictionary, forward_secrecy, mutual_auth)",
                               options_line);
  const char *const unreadable[] = {
    bad_option,
    "warning: parameter smtpd_sasl_path: %R/sasl/smtpd.conf: sasldb %R/sasl/sasldb2 is not "
    "readable by mail_owner daemon (add it to the file's group, e.g. sasl)",
    no_tls, NULL,
  };
  assert_problems(fx, unreadable);
  g_string_replace(fx->main_cf, "noanonymous, nothing", "noanonymous", 0);

  /* saslauthd without its socket */
  write_file(fx, "sasl/smtpd.conf", "pwcheck_method: saslauthd\nsaslauthd_path: /nonexistent/mux\n",
             0644);
  const char *const no_socket[] = {
    "warning: parameter smtpd_sasl_path: %R/sasl/smtpd.conf: saslauthd socket /nonexistent/mux: "
    "No such file or directory",
    no_tls, NULL,
  };
  assert_problems(fx, no_socket);

  /* no smtpd.conf: Cyrus's defaults (whose /etc/sasldb2 depends on the machine) */
  g_assert_cmpint(g_unlink(conf), ==, 0);
  write_file(fx, "etc/main.cf", fx->main_cf->str, 0644);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) problems = config_check(fx->etc, &error);
    g_autofree char *want = g_strdup_printf("warning: parameter smtpd_sasl_path: no smtpd.conf in "
                                            "%s: Cyrus SASL uses its defaults (pwcheck_method: "
                                            "auxprop, sasldb /etc/sasldb2)", dir);

    g_assert_no_error(error);
    g_assert_cmpuint(problems->len, >=, 2);
    g_assert_cmpstr(problems->pdata[0], ==, want);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/config-check/clean", test_clean);
  ADD("/config-check/does-not-load", test_does_not_load);
  ADD("/config-check/unknown-parameter", test_unknown_parameter);
  ADD("/config-check/mail-owner", test_mail_owner);
  ADD("/config-check/config-directory", test_config_directory);
  ADD("/config-check/queue-directory", test_queue_directory);
  ADD("/config-check/missing-and-unreadable-tables", test_missing_and_unreadable_tables);
  ADD("/config-check/aliases-not-compiled", test_aliases_not_compiled);
  ADD("/config-check/older-cdb", test_older_cdb);
  ADD("/config-check/restriction-class-and-pattern-table",
      test_restriction_class_and_pattern_table);
  ADD("/config-check/aliases-and-includes", test_aliases_and_includes);
  ADD("/config-check/tls-files", test_tls_files);
  ADD("/config-check/sasl", test_sasl);
  return g_test_run();
}
