/* test-config.c - unit tests for the parameter table and the main.cf loader.
 *
 * Every syntax rule of config.h has a case here: continuation lines,
 * comments, each expansion form, loops, warnings and errors with
 * file:line, conf.d order, -o overrides, units and list splitting.
 * Each test works in its own temporary directory.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mynetworks.h"
#include "params.h"

typedef struct {
  char *dir;
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
  fx->dir = g_dir_make_tmp("test-config-XXXXXX", &error);
  g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
  remove_tree(fx->dir);
  g_free(fx->dir);
}

/* Writes dir/rel (creating conf.d when needed). */
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

static Config *
load_ok(Fixture *fx, const char *main_cf, const char *const *overrides)
{
  if (main_cf)
    write_file(fx, "main.cf", main_cf);
  g_autoptr(GError) error = NULL;
  Config *config = config_load(fx->dir, overrides, &error);
  g_assert_no_error(error);
  g_assert_nonnull(config);
  return config;
}

/* Loads main_cf, expects failure, returns the message. */
static char *
load_fail(Fixture *fx, const char *main_cf, const char *const *overrides)
{
  if (main_cf)
    write_file(fx, "main.cf", main_cf);
  g_autoptr(GError) error = NULL;
  Config *config = config_load(fx->dir, overrides, &error);
  g_assert_null(config);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  return g_strdup(error->message);
}

static void
assert_list(const char *const *got, const char *const *want)
{
  g_assert_nonnull(got);
  g_assert_cmpuint(g_strv_length((char **) got), ==, g_strv_length((char **) want));
  for (gsize i = 0; want[i]; i++)
    g_assert_cmpstr(got[i], ==, want[i]);
}

/* Returns the warning containing needle, or NULL. */
static const char *
find_warning(const Config *config, const char *needle)
{
  const GPtrArray *w = config_warnings(config);
  for (guint i = 0; i < w->len; i++)
    if (strstr(w->pdata[i], needle))
      return w->pdata[i];
  return NULL;
}

static void
assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    g_error("expected \"%s\" in \"%s\"", needle, haystack);
}

/* ---- the parameter table ---- */

static void
test_params_table(void)
{
  gsize n = 0;
  const ParamDef *table = param_table(&n);
  g_assert_cmpuint(n, >, 100);
  for (gsize i = 0; i < n; i++) {
    if (i > 0)
      g_assert_cmpint(strcmp(table[i - 1].name, table[i].name), <, 0);
    g_assert_true(param_lookup(table[i].name) == &table[i]);
    g_assert_nonnull(table[i].doc);
    if (table[i].type == PARAM_TIME)
      g_assert_nonnull(strchr("smhdw", table[i].time_unit));
  }
  g_assert_null(param_lookup("no_such_parameter"));
  g_assert_null(param_lookup(""));
  g_assert_cmpint(param_lookup("smtpd_timeout")->type, ==, PARAM_TIME);
  g_assert_cmpint(param_lookup("maximal_queue_lifetime")->time_unit, ==, 'd');
  g_assert_cmpint(param_lookup("delay_warning_time")->time_unit, ==, 'h');
  g_assert_cmpint(param_lookup("alias_maps")->type, ==, PARAM_TABLES);
  g_assert_cmpint(param_lookup("smtpd_relay_restrictions")->type, ==, PARAM_LIST);
  g_assert_cmpint(param_lookup("message_size_limit")->type, ==, PARAM_SIZE);
  g_assert_cmpstr(param_type_name(PARAM_BOOL), ==, "boolean");
}

/* ---- defaults ---- */

static void
test_defaults(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, NULL, NULL);   /* no main.cf at all */
  g_assert_cmpuint(config_warnings(config)->len, ==, 0);
  g_assert_cmpstr(config_get_dir(config), ==, fx->dir);
  g_assert_cmpstr(config_str(config, "config_directory"), ==, fx->dir);
  g_assert_cmpstr(config_str(config, "mail_version"), ==, POSTERN_VERSION);

  const char *host = config_str(config, "myhostname");
  g_assert_nonnull(strchr(host, '.'));
  char raw_host[256] = "";
  gethostname(raw_host, sizeof raw_host - 1);
  if (strchr(raw_host, '.'))
    g_assert_cmpstr(host, ==, raw_host);
  else if (raw_host[0]) {
    g_autofree char *want = g_strdup_printf("%s.localdomain", raw_host);
    g_assert_cmpstr(host, ==, want);
  }
  const char *domain = config_str(config, "mydomain");
  g_assert_cmpstr(domain, ==, strchr(host, '.') + 1);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, host);
  g_autofree char *localhost_dom = g_strdup_printf("localhost.%s", domain);
  assert_list(config_list(config, "mydestination"),
              (const char *[]) { host, localhost_dom, "localhost", NULL });
  g_autofree char *banner = g_strdup_printf("%s ESMTP Postern", host);
  g_assert_cmpstr(config_str(config, "smtpd_banner"), ==, banner);

  /* mynetworks_style = host: loopback, then this machine's addresses */
  const char *const *mynetworks = config_list(config, "mynetworks");
  g_assert_cmpstr(mynetworks[0], ==, "127.0.0.0/8");
  g_assert_cmpstr(mynetworks[1], ==, "[::1]/128");
  for (guint i = 2; mynetworks[i] != NULL; i++)
    g_assert_true(g_str_has_suffix(mynetworks[i], "/32") || g_str_has_suffix(mynetworks[i], "/128"));
  assert_list(config_list(config, "smtpd_client_event_limit_exceptions"), mynetworks);
  assert_list(config_list(config, "smtpd_relay_restrictions"),
              (const char *[]) { "permit_mynetworks", "permit_sasl_authenticated",
                                 "reject_unauth_destination", NULL });
  assert_list(config_list(config, "smtpd_recipient_restrictions"), (const char *[]) { NULL });
  assert_list(config_list(config, "local_recipient_maps"),
              (const char *[]) { "unix:passwd.byname", "hash:/etc/aliases", NULL });
  assert_list(config_list(config, "notify_classes"),
              (const char *[]) { "resource", "software", NULL });

  g_assert_cmpint(config_size(config, "message_size_limit"), ==, 10240000);
  g_assert_cmpint(config_size(config, "mailbox_size_limit"), ==, 51200000);
  g_assert_cmpint(config_int(config, "smtpd_recipient_limit"), ==, 1000);
  g_assert_cmpint(config_int(config, "smtpd_hard_error_limit"), ==, 20);
  g_assert_cmpint(config_int(config, "smtpd_commit_threads"), ==, 8);
  g_assert_cmpint(config_time(config, "smtpd_timeout"), ==, 300);
  g_assert_cmpint(config_time(config, "smtpd_error_sleep_time"), ==, 1);
  g_assert_cmpint(config_time(config, "maximal_queue_lifetime"), ==, 5 * 86400);
  g_assert_cmpint(config_time(config, "maximal_backoff_time"), ==, 4000);
  g_assert_cmpint(config_time(config, "delay_warning_time"), ==, 0);
  g_assert_cmpint(config_time(config, "anvil_rate_time_unit"), ==, 60);
  g_assert_true(config_bool(config, "smtpd_forbid_bare_newline"));
  g_assert_false(config_bool(config, "disable_vrfy_command"));
  g_assert_false(config_bool(config, "smtpd_helo_required"));
  g_assert_cmpstr(config_str(config, "queue_directory"), ==, "/var/spool/postern");
  g_assert_cmpstr(config_str(config, "home_mailbox"), ==, "");
  g_assert_cmpstr(config_str(config, "smtpd_tls_auth_only"), ==, "yes");

  g_assert_null(config_raw(config, "myorigin"));
  const char *file = "x";
  int line = -1;
  g_assert_false(config_source(config, "myorigin", &file, &line));
  g_assert_null(file);
  g_assert_cmpint(line, ==, 0);
}

static void
test_computed_hostname(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "myhostname = mail.example.org\n", NULL);
  g_assert_cmpstr(config_str(config, "mydomain"), ==, "example.org");
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "mail.example.org");
  assert_list(config_list(config, "mydestination"),
              (const char *[]) { "mail.example.org", "localhost.example.org", "localhost", NULL });
  g_assert_cmpstr(config_str(config, "local_transport"), ==, "local:mail.example.org");

  g_autoptr(Config) dotless = load_ok(fx, "myhostname = mail\n", NULL);
  g_assert_cmpstr(config_str(dotless, "mydomain"), ==, "localdomain");

  g_autoptr(Config) both = load_ok(fx, "myhostname = mx.a.example\nmydomain = b.example\n", NULL);
  g_assert_cmpstr(config_str(both, "mydomain"), ==, "b.example");
  g_assert_cmpstr(config_str(both, "myhostname"), ==, "mx.a.example");
}

/* ---- syntax ---- */

static void
test_name_value(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "myorigin=example.com\n"
      "mail_name   =   My  Mail   \t\n"
      "smtpd_banner = hello # not a comment\n"
      "relayhost =\n"
      "home_mailbox = Maildir/\r\n", NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "example.com");
  g_assert_cmpstr(config_str(config, "mail_name"), ==, "My  Mail");
  g_assert_cmpstr(config_str(config, "smtpd_banner"), ==, "hello # not a comment");
  g_assert_cmpstr(config_str(config, "relayhost"), ==, "");
  g_assert_cmpstr(config_str(config, "home_mailbox"), ==, "Maildir/");
  g_assert_cmpstr(config_raw(config, "mail_name"), ==, "My  Mail");
  g_assert_cmpuint(config_warnings(config)->len, ==, 0);
}

static void
test_continuation_and_comments(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "# a comment\n"
      "   # an indented comment\n"
      "\n"
      "mydestination = a.example,\n"        /* line 4 */
      "    b.example\n"
      "# a comment inside the group does not end it\n"
      "\n"
      "  \t\n"
      "\tc.example\n"
      "    # indented comment inside the group\n"
      "  d.example   \n"
      "myorigin = o.example\n"              /* line 12 */
      "#last = line\n", NULL);
  assert_list(config_list(config, "mydestination"),
              (const char *[]) { "a.example", "b.example", "c.example", "d.example", NULL });
  /* newlines are dropped; the continuation's leading white space is kept */
  g_assert_cmpstr(config_str(config, "mydestination"), ==,
                  "a.example,    b.example\tc.example  d.example");
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "o.example");

  const char *file = NULL;
  int line = 0;
  g_assert_true(config_source(config, "mydestination", &file, &line));
  g_assert_true(g_str_has_suffix(file, "/main.cf"));
  g_assert_cmpint(line, ==, 4);
  g_assert_true(config_source(config, "myorigin", NULL, &line));
  g_assert_cmpint(line, ==, 12);
  g_assert_null(config_raw(config, "last"));
  g_assert_cmpuint(config_warnings(config)->len, ==, 0);
}

static void
test_leading_whitespace_first_line(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "  myorigin = x.example\n", NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "x.example");
  g_assert_nonnull(find_warning(config, "main.cf:1: warning: logical line must not start"));
}

static void
test_later_definition_wins(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "myorigin = one\nmyorigin = two\n", NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "two");
  int line = 0;
  config_source(config, "myorigin", NULL, &line);
  g_assert_cmpint(line, ==, 2);
}

/* ---- expansion ---- */

static void
test_expansion_forms(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "myhostname = mx.example.net\n"
      "full = set\n"
      "empty =\n"
      "smtpd_banner = $myhostname ${mail_name} $(mydomain) $$5 a$${b}\n"
      "myorigin = [${full?yes}][${empty?yes}][${nothere?yes}]"
      "[${full:no}][${empty:no}][${nothere:no}]\n"
      "mail_name = ${full?{ T }:{F}}|${empty?{T}:{F}}|${full?{T}:F}|${empty? {T} : F}\n"
      "relayhost = ${full?a:b}\n"
      "smtpd_sasl_local_domain = ${full?${empty:inner-$full}}x\n", NULL);
  g_assert_cmpstr(config_str(config, "smtpd_banner"), ==,
                  "mx.example.net  T |F|T| F example.net $5 a${b}");
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "[yes][][][][no][no]");
  g_assert_cmpstr(config_str(config, "mail_name"), ==, " T |F|T| F");
  /* without braces the text after '?' is taken whole, ':' included (Postfix 2.x) */
  g_assert_cmpstr(config_str(config, "relayhost"), ==, "a:b");
  g_assert_cmpstr(config_str(config, "smtpd_sasl_local_domain"), ==, "inner-setx");
  g_assert_null(find_warning(config, "nothere"));   /* ?/: only test the name */
  g_assert_null(find_warning(config, "unknown parameter name: full"));
  g_assert_null(find_warning(config, "unknown parameter name: empty"));
}

static void
test_nested_expansion(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "myorigin = $d1\n"
      "d1 = ${d2}.$d3\n"
      "d2 = deep\n"
      "d3 = $(d4)\n"
      "d4 = er\n"
      "virtual_alias_maps = hash:/etc/postern/virtual, $extra_maps\n"
      "extra_maps = regexp:/etc/postern/re\n", NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "deep.er");
  assert_list(config_list(config, "virtual_alias_maps"),
              (const char *[]) { "hash:/etc/postern/virtual", "regexp:/etc/postern/re", NULL });
  /* virtual_alias_domains defaults to $virtual_alias_maps */
  assert_list(config_list(config, "virtual_alias_domains"),
              (const char *[]) { "hash:/etc/postern/virtual", "regexp:/etc/postern/re", NULL });
  g_assert_cmpuint(config_warnings(config)->len, ==, 0);
}

static void
test_event_limit_exceptions(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) plain = load_ok(fx, "mynetworks = 10.0.0.0/8, 127.0.0.0/8\n", NULL);
  assert_list(config_list(plain, "smtpd_client_event_limit_exceptions"),
              (const char *[]) { "10.0.0.0/8", "127.0.0.0/8", NULL });
  g_autoptr(Config) legacy = load_ok(fx,
      "smtpd_client_connection_limit_exceptions = 192.0.2.1\n", NULL);
  assert_list(config_list(legacy, "smtpd_client_event_limit_exceptions"),
              (const char *[]) { "192.0.2.1", NULL });
}

/* mynetworks unset: computed from mynetworks_style over the interfaces;
 * set: taken as is, whatever the style says. */
static void
test_mynetworks_style(Fixture *fx, gconstpointer data)
{
  g_autoptr(GArray) ifaces = mynetworks_interfaces("all", NULL);
  const char *styles[] = { "host", "subnet", "class" };

  g_assert_nonnull(ifaces);
  for (guint i = 0; i < G_N_ELEMENTS(styles); i++) {
    g_autofree char *main_cf = g_strdup_printf("mynetworks_style = %s\n", styles[i]);
    g_autoptr(Config) config = load_ok(fx, main_cf, NULL);
    g_autofree char *want = mynetworks_for_style(styles[i], (const InetInterface *) ifaces->data,
                                                 ifaces->len, NULL);
    g_assert_cmpstr(config_str(config, "mynetworks"), ==, want);
  }
  g_autoptr(Config) v4 = load_ok(fx, "mynetworks_style = subnet\ninet_protocols = ipv4\n", NULL);
  for (const char *const *p = config_list(v4, "mynetworks"); *p != NULL; p++)
    g_assert_false(g_str_has_prefix(*p, "["));

  g_autoptr(Config) set = load_ok(fx, "mynetworks_style = bogus\nmynetworks = 10.0.0.0/8\n", NULL);
  assert_list(config_list(set, "mynetworks"), (const char *[]) { "10.0.0.0/8", NULL });

  g_autofree char *msg = load_fail(fx, "myorigin = x\nmynetworks_style = bogus\n", NULL);
  g_assert_true(g_str_has_suffix(
      msg, "/main.cf:2: parameter mynetworks_style: bad value 'bogus' (use host, subnet or class)"));
}

static void
test_recursive_expansion(Fixture *fx, gconstpointer data)
{
  g_autofree char *msg = load_fail(fx,
      "# loop through user-defined names\n"
      "myorigin = $a\n"
      "a = $b\n"
      "b = ${a}\n", NULL);
  assert_contains(msg, "main.cf:4: parameter b: recursive expansion");
  assert_contains(msg, "(a -> b -> a)");

  g_autofree char *self = load_fail(fx, "mydestination = $mydestination, example.com\n", NULL);
  assert_contains(self, "main.cf:1: parameter mydestination: recursive expansion");

  /* a loop through a default: myorigin defaults to $myhostname */
  g_autofree char *via_default = load_fail(fx, "\nmyhostname = $myorigin\n", NULL);
  assert_contains(via_default, "main.cf:2: parameter myhostname: recursive expansion");
}

static void
test_undefined_reference(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "\nmyorigin = x$nosuch.example\n", NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "x.example");
  const char *w = find_warning(config, "nosuch");
  g_assert_nonnull(w);
  assert_contains(w, "main.cf:2: warning: parameter myorigin: undefined parameter: nosuch");
  g_assert_cmpuint(config_warnings(config)->len, ==, 1);
}

static void
test_expansion_syntax_errors(Fixture *fx, gconstpointer data)
{
  g_autofree char *dollar = load_fail(fx, "mail_name = x\nsmtpd_banner = costs $ 5\n", NULL);
  assert_contains(dollar, "main.cf:2: parameter smtpd_banner:");
  g_autofree char *open = load_fail(fx, "myorigin = ${myhostname\n", NULL);
  assert_contains(open, "main.cf:1: parameter myorigin: unbalanced");
  g_autofree char *name = load_fail(fx, "myorigin = ${my-host}\n", NULL);
  assert_contains(name, "main.cf:1: parameter myorigin: bad parameter name");
  g_autofree char *tail = load_fail(fx, "myorigin = ${myhostname?{a}junk}\n", NULL);
  assert_contains(tail, "main.cf:1: parameter myorigin:");
}

static void
test_config_expand(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "myhostname = h.example\nmy_var = $myhostname!\n", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *a = config_expand(config, "user@$myhostname ${my_var} $nosuch$$", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(a, ==, "user@h.example h.example! $");
  g_autofree char *b = config_expand(config, "${oops", &error);
  g_assert_null(b);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

/* ---- warnings about names ---- */

static void
test_unknown_names(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "myorigin = example.com\n"
      "foo = bar\n"                                     /* line 2: unused, warned */
      "my_domains = a.example b.example\n"              /* referenced by mydestination */
      "mydestination = $myhostname, $my_domains\n"
      "smtpd_restriction_classes = local_only\n"
      "local_only = check_recipient_access hash:/x, $helper\n"  /* a class: not warned */
      "helper = reject\n"                               /* referenced by a class */
      "mua_restrictions = permit_sasl_authenticated, reject\n", /* referenced by -o */
      (const char *[]) { "smtpd_client_restrictions=$mua_restrictions", "bar=1", NULL });
  const GPtrArray *w = config_warnings(config);
  g_assert_cmpuint(w->len, ==, 2);
  g_assert_true(g_str_has_suffix(w->pdata[0], "/main.cf:2: warning: unknown parameter name: foo"));
  g_assert_cmpstr(w->pdata[1], ==, "command line: warning: unknown parameter name: bar");
  /* unknown names are still stored and usable */
  g_assert_cmpstr(config_raw(config, "foo"), ==, "bar");
  assert_list(config_list(config, "mydestination"),
              (const char *[]) { config_str(config, "myhostname"), "a.example", "b.example", NULL });
  assert_list(config_list(config, "smtpd_client_restrictions"),
              (const char *[]) { "permit_sasl_authenticated", "reject", NULL });
}

/* ---- conf.d and overrides ---- */

static void
test_conf_d(Fixture *fx, gconstpointer data)
{
  write_file(fx, "main.cf", "myorigin = main\nmail_name = Main\nsite = s.example\n");
  write_file(fx, "conf.d/20-b.cf", "myorigin = b\n\nrelayhost = [$site]\n");
  write_file(fx, "conf.d/10-a.cf", "myorigin = a\nmail_name = A\n");
  write_file(fx, "conf.d/30-c.conf", "myorigin = not-a-cf-file\n");
  write_file(fx, "conf.d/.99-hidden.cf", "myorigin = hidden\n");
  g_autoptr(Config) config = load_ok(fx, NULL, NULL);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "b");
  g_assert_cmpstr(config_str(config, "mail_name"), ==, "A");
  g_assert_cmpstr(config_str(config, "relayhost"), ==, "[s.example]");
  const char *file = NULL;
  int line = 0;
  g_assert_true(config_source(config, "relayhost", &file, &line));
  g_assert_true(g_str_has_suffix(file, "/conf.d/20-b.cf"));
  g_assert_cmpint(line, ==, 3);

  /* errors in a drop-in name that file */
  write_file(fx, "conf.d/40-bad.cf", "smtpd_timeout = soon\n");
  g_autofree char *msg = load_fail(fx, NULL, NULL);
  assert_contains(msg, "conf.d/40-bad.cf:1: parameter smtpd_timeout: bad time value: 'soon'");
}

static void
test_overrides(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx, "myorigin = file\nsmtpd_timeout = 1m\n",
      (const char *[]) { "myorigin=over", "smtpd_timeout = 10m", "smtpd_tls_security_level=encrypt",
                         NULL });
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "over");
  g_assert_cmpint(config_time(config, "smtpd_timeout"), ==, 600);
  const char *file = NULL;
  int line = -1;
  g_assert_true(config_source(config, "myorigin", &file, &line));
  g_assert_cmpstr(file, ==, "command line");
  g_assert_cmpint(line, ==, 0);

  g_autofree char *bad = load_fail(fx, NULL, (const char *[]) { "smtpd_timeout", NULL });
  assert_contains(bad, "command line: missing '=' after parameter name");
  g_autofree char *badval = load_fail(fx, NULL, (const char *[]) { "biff=maybe", NULL });
  assert_contains(badval, "command line: parameter biff: bad boolean value");
}

/* ---- values ---- */

static void
test_bad_values(Fixture *fx, gconstpointer data)
{
  static const struct {
    const char *main_cf;
    const char *want;
  } cases[] = {
    { "myorigin = x\n\nsmtpd_helo_required = maybe\n",
      "main.cf:3: parameter smtpd_helo_required: bad boolean value" },
    { "smtpd_recipient_limit = many\n", "main.cf:1: parameter smtpd_recipient_limit: bad numerical" },
    { "smtpd_recipient_limit = 0\n", "main.cf:1: parameter smtpd_recipient_limit: value '0' out of range" },
    { "smtpd_commit_threads = 1000\n", "main.cf:1: parameter smtpd_commit_threads: value '1000' out of range" },
    { "smtpd_recipient_limit = 10x\n", "main.cf:1: parameter smtpd_recipient_limit: bad numerical" },
    { "smtpd_timeout = 5x\n", "main.cf:1: parameter smtpd_timeout: bad time value" },
    { "smtpd_timeout = 0\n", "main.cf:1: parameter smtpd_timeout: value '0' out of range" },
    { "message_size_limit = -1\n", "main.cf:1: parameter message_size_limit: bad size value" },
    { "message_size_limit = 10M\n", "main.cf:1: parameter message_size_limit: bad size value" },
    { "alias_maps = /etc/aliases\n", "main.cf:1: parameter alias_maps: bad lookup table value: '/etc/aliases'" },
    { "myorigin = x\nmyorigin example.com\n", "main.cf:2: missing '=' after parameter name" },
    { "= value\n", "main.cf:1: missing parameter name" },
    { "limit = abc\nsmtpd_hard_error_limit = $limit\n",
      "main.cf:2: parameter smtpd_hard_error_limit: bad numerical value: 'abc'" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *msg = load_fail(fx, cases[i].main_cf, NULL);
    assert_contains(msg, cases[i].want);
  }
}

static void
test_time_units(Fixture *fx, gconstpointer data)
{
  static const struct {
    const char *text;
    char unit;
    gint64 want;
  } ok[] = {
    { "300s", 's', 300 }, { "5m", 's', 300 }, { "2h", 's', 7200 }, { "5d", 's', 432000 },
    { "1w", 's', 604800 }, { "300", 's', 300 }, { "10", 'd', 864000 }, { "3", 'h', 10800 },
    { "0", 'h', 0 }, { "2H", 's', 7200 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
    gint64 s = -1;
    g_assert_true(config_parse_time(ok[i].text, ok[i].unit, &s));
    g_assert_cmpint(s, ==, ok[i].want);
  }
  const char *bad[] = { "", "s", "5x", "5 s", "5ss", "1.5h", "99999999999999999999w",
                        "9999999999999999w" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    gint64 s;
    g_assert_false(config_parse_time(bad[i], 's', &s));
  }

  g_autoptr(Config) config = load_ok(fx,
      "maximal_queue_lifetime = 2\n"       /* default unit d */
      "delay_warning_time = 4\n"           /* default unit h */
      "smtpd_timeout = 45\n"               /* default unit s */
      "minimal_backoff_time = 5m\n"
      "bounce_queue_lifetime = 1w\n", NULL);
  g_assert_cmpint(config_time(config, "maximal_queue_lifetime"), ==, 2 * 86400);
  g_assert_cmpint(config_time(config, "delay_warning_time"), ==, 4 * 3600);
  g_assert_cmpint(config_time(config, "smtpd_timeout"), ==, 45);
  g_assert_cmpint(config_time(config, "minimal_backoff_time"), ==, 300);
  g_assert_cmpint(config_time(config, "bounce_queue_lifetime"), ==, 7 * 86400);
}

static void
test_bool_int(void)
{
  gboolean b;
  g_assert_true(config_parse_bool("yes", &b) && b);
  g_assert_true(config_parse_bool("YES", &b) && b);
  g_assert_true(config_parse_bool("true", &b) && b);
  g_assert_true(config_parse_bool("no", &b) && !b);
  g_assert_true(config_parse_bool("False", &b) && !b);
  g_assert_false(config_parse_bool("1", &b));
  g_assert_false(config_parse_bool("", &b));
  gint64 n;
  g_assert_true(config_parse_int("42", &n) && n == 42);
  g_assert_true(config_parse_int("-7", &n) && n == -7);
  g_assert_false(config_parse_int("4 2", &n));
  g_assert_false(config_parse_int("", &n));
  g_assert_false(config_parse_int("0x10", &n));
}

static void
test_split_list(void)
{
  g_auto(GStrv) a = config_split_list("a, b,c\n d\t,, e ,");
  assert_list((const char *const *) a, (const char *[]) { "a", "b", "c", "d", "e", NULL });
  g_auto(GStrv) empty = config_split_list(" , \n\t");
  assert_list((const char *const *) empty, (const char *[]) { NULL });
  g_auto(GStrv) braces = config_split_list(
      "check_client_access inline:{ 1.2.3.4=REJECT, 5.6.7.8=OK }, reject");
  assert_list((const char *const *) braces,
              (const char *[]) { "check_client_access", "inline:{ 1.2.3.4=REJECT, 5.6.7.8=OK }",
                                 "reject", NULL });
}

static void
test_list_param(Fixture *fx, gconstpointer data)
{
  g_autoptr(Config) config = load_ok(fx,
      "smtpd_recipient_restrictions = permit_mynetworks,reject_unauth_destination\n"
      "  check_recipient_access hash:/etc/postern/recipient ,\n"
      "  reject\n"
      "alias_maps = hash:/etc/aliases, texthash:/etc/postern/aliases\n", NULL);
  assert_list(config_list(config, "smtpd_recipient_restrictions"),
              (const char *[]) { "permit_mynetworks", "reject_unauth_destination",
                                 "check_recipient_access", "hash:/etc/postern/recipient",
                                 "reject", NULL });
  assert_list(config_list(config, "alias_maps"),
              (const char *[]) { "hash:/etc/aliases", "texthash:/etc/postern/aliases", NULL });
}

/* ---- directory resolution ---- */

static void
test_config_dir(Fixture *fx, gconstpointer data)
{
  g_autofree char *saved = g_strdup(g_getenv("POSTERN_CONFIG_DIR"));
  g_unsetenv("POSTERN_CONFIG_DIR");
  g_assert_cmpstr(config_dir_resolve(NULL), ==, POSTERN_DEFAULT_CONFIG_DIR);
  g_assert_cmpstr(config_dir_resolve("/some/where"), ==, "/some/where");

  write_file(fx, "main.cf", "myorigin = from-env\n");
  g_setenv("POSTERN_CONFIG_DIR", fx->dir, TRUE);
  g_assert_cmpstr(config_dir_resolve(NULL), ==, fx->dir);
  g_assert_cmpstr(config_dir_resolve("/some/where"), ==, "/some/where");
  g_autoptr(GError) error = NULL;
  g_autoptr(Config) config = config_load(NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(config_str(config, "myorigin"), ==, "from-env");
  g_assert_cmpstr(config_get_dir(config), ==, fx->dir);

  if (saved)
    g_setenv("POSTERN_CONFIG_DIR", saved, TRUE);
  else
    g_unsetenv("POSTERN_CONFIG_DIR");
}

static void
test_unreadable(Fixture *fx, gconstpointer data)
{
  /* main.cf that is a directory is an error, not "all defaults" */
  g_autofree char *path = g_build_filename(fx->dir, "main.cf", NULL);
  g_assert_cmpint(g_mkdir(path, 0755), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(Config) config = config_load(fx->dir, NULL, &error);
  g_assert_null(config);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

/* ---- misuse of the getters is a programming error ---- */

/* The subprocesses die in g_error, so they read a directory that does not exist. */
#define NO_DIR "/nonexistent/postern-test-config"

static void
test_wrong_type(void)
{
  if (g_test_subprocess()) {
    g_autoptr(Config) config = config_load(NO_DIR, NULL, NULL);
    config_int(config, "smtpd_helo_required");
    return;
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr("*smtpd_helo_required*boolean*");
}

static void
test_unknown_getter(void)
{
  if (g_test_subprocess()) {
    g_autoptr(Config) config = config_load(NO_DIR, (const char *[]) { "foo=bar", NULL }, NULL);
    config_str(config, "foo");
    return;
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr("*unknown parameter*foo*");
}

static void
test_error_quark(void)
{
  g_assert_cmpstr(g_quark_to_string(POSTERN_ERROR), ==, "postern-error-quark");
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/config/params-table", test_params_table);
  g_test_add_func("/config/parse-bool-int", test_bool_int);
  g_test_add_func("/config/split-list", test_split_list);
  g_test_add_func("/config/error-quark", test_error_quark);
  ADD("/config/defaults", test_defaults);
  ADD("/config/computed-hostname", test_computed_hostname);
  ADD("/config/name-value", test_name_value);
  ADD("/config/continuation-comments", test_continuation_and_comments);
  ADD("/config/leading-whitespace", test_leading_whitespace_first_line);
  ADD("/config/later-wins", test_later_definition_wins);
  ADD("/config/expansion-forms", test_expansion_forms);
  ADD("/config/nested-expansion", test_nested_expansion);
  ADD("/config/event-limit-exceptions", test_event_limit_exceptions);
  ADD("/config/mynetworks-style", test_mynetworks_style);
  ADD("/config/recursive-expansion", test_recursive_expansion);
  ADD("/config/undefined-reference", test_undefined_reference);
  ADD("/config/expansion-syntax-errors", test_expansion_syntax_errors);
  ADD("/config/config-expand", test_config_expand);
  ADD("/config/unknown-names", test_unknown_names);
  ADD("/config/conf-d", test_conf_d);
  ADD("/config/overrides", test_overrides);
  ADD("/config/bad-values", test_bad_values);
  ADD("/config/time-units", test_time_units);
  ADD("/config/list-param", test_list_param);
  ADD("/config/config-dir", test_config_dir);
  ADD("/config/unreadable", test_unreadable);
  g_test_add_func("/config/wrong-type", test_wrong_type);
  g_test_add_func("/config/unknown-getter", test_unknown_getter);
  return g_test_run();
}
