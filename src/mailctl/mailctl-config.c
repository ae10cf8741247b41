/* mailctl-config.c - "mailctl config" and "mailctl reload": the
 * configuration of the running system over D-Bus
 * (org.postern.Mail1.Manager), as postconf(1) and postfix reload.
 *
 *   mailctl config get [--json] NAME...        postconf NAME...
 *   mailctl config list [--json] [--defaults|--changed]
 *                                              postconf, postconf -d, postconf -n
 *   mailctl config set NAME=VALUE...           postconf -e (then reload)
 *   mailctl reload                             postfix reload
 *   mailctl check [--json]                     postfix check
 *
 * "get" and "list" print "name = value" lines, the values postern-qmgr
 * uses (expanded, like postconf -x); --defaults prints the built-in
 * defaults as written, --changed only what main.cf, conf.d or -o set,
 * as written.
 */
#include "mailctl.h"

#include <stdio.h>
#include <string.h>

static const char mailctl_config_usage[] =
  "usage: mailctl config get [--json] NAME...\n"
  "       mailctl config list [--json] [--defaults|--changed]\n"
  "       mailctl config set NAME=VALUE...\n";

static int
mailctl_config_print(const MailctlOptions *opts, gboolean json, const char *const *names,
                     const char *which)
{
  g_autoptr(GDBusConnection) bus = mailctl_bus_connect(opts);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) params = NULL;
  GVariantIter iter;
  const char *name, *value;
  int status;

  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_MANAGER, "GetParameters",
                           g_variant_new("(^ass)", names, which), "(a{ss})", &status);
  if (reply == NULL)
    return status;
  params = g_variant_get_child_value(reply, 0);
  if (json) {
    mailctl_json_print(params);
  } else {
    g_variant_iter_init(&iter, params);
    while (g_variant_iter_next(&iter, "{&s&s}", &name, &value))
      printf("%s =%s%s\n", name, *value ? " " : "", value);
  }
  return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_FAILED;
}

static int
mailctl_config_set(const MailctlOptions *opts, int argc, char **argv)
{
  GVariantBuilder b;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  int status;

  if (argc == 0) {
    fputs(mailctl_config_usage, stderr);
    return MAILCTL_EXIT_USAGE;
  }
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
  for (int i = 0; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    g_autofree char *name = eq ? g_strstrip(g_strndup(argv[i], (gsize) (eq - argv[i]))) : NULL;
    g_autofree char *value = eq ? g_strstrip(g_strdup(eq + 1)) : NULL;

    if (name == NULL || name[0] == '\0') {
      g_variant_builder_clear(&b);
      mailctl_fail("config set: \"%s\" is not NAME=VALUE", argv[i]);
      return MAILCTL_EXIT_USAGE;
    }
    g_variant_builder_add(&b, "{ss}", name, value);
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL) {
    g_variant_builder_clear(&b);
    return MAILCTL_EXIT_NOT_RUNNING;
  }
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_MANAGER, "SetParameters",
                           g_variant_new("(a{ss})", &b), "()", &status);
  return reply ? MAILCTL_EXIT_OK : status;
}

int
mailctl_config_main(const MailctlOptions *opts, int argc, char **argv)
{
  gboolean json = opts->json;
  const char *which = "effective";
  g_autoptr(GPtrArray) names = g_ptr_array_new();

  if (argc >= 1 && strcmp(argv[0], "set") == 0)
    return mailctl_config_set(opts, argc - 1, argv + 1);
  if (argc == 0 || (strcmp(argv[0], "get") != 0 && strcmp(argv[0], "list") != 0)) {
    if (argc > 0)
      mailctl_fail("config: unknown command \"%s\"", argv[0]);
    fputs(mailctl_config_usage, stderr);
    return MAILCTL_EXIT_USAGE;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = TRUE;
    else if (strcmp(argv[0], "list") == 0 && strcmp(argv[i], "--defaults") == 0)
      which = "defaults";
    else if (strcmp(argv[0], "list") == 0 && strcmp(argv[i], "--changed") == 0)
      which = "changed";
    else if (strcmp(argv[0], "get") == 0 && argv[i][0] != '-')
      g_ptr_array_add(names, argv[i]);
    else {
      mailctl_fail("config %s: unexpected argument \"%s\"", argv[0], argv[i]);
      fputs(mailctl_config_usage, stderr);
      return MAILCTL_EXIT_USAGE;
    }
  }
  if (strcmp(argv[0], "get") == 0 && names->len == 0) {
    fputs(mailctl_config_usage, stderr);
    return MAILCTL_EXIT_USAGE;
  }
  g_ptr_array_add(names, NULL);
  return mailctl_config_print(opts, json, (const char *const *) names->pdata, which);
}

int
mailctl_reload_main(const MailctlOptions *opts, int argc, char **argv)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  int status;

  if (argc > 0) {
    mailctl_fail("reload: unexpected argument \"%s\"", argv[0]);
    return MAILCTL_EXIT_USAGE;
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_MANAGER, "Reload", NULL, "()", &status);
  return reply ? MAILCTL_EXIT_OK : status;
}

/* "mailctl check": CheckConfiguration's problems, one a line, on stdout
 * (postfix check writes warnings and goes on); exit 1 when a problem is
 * fatal ("fatal: ..."), as postfix check fails then. */
int
mailctl_check_main(const MailctlOptions *opts, int argc, char **argv)
{
  gboolean json = opts->json;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) problems = NULL;
  int status;

  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = TRUE;
      continue;
    }
    mailctl_fail("check: unexpected argument \"%s\"", argv[i]);
    return MAILCTL_EXIT_USAGE;
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_MANAGER, "CheckConfiguration", NULL, "(as)",
                           &status);
  if (reply == NULL)
    return status;
  problems = g_variant_get_child_value(reply, 0);
  gboolean fatal = FALSE;
  gsize n = g_variant_n_children(problems);
  for (gsize i = 0; i < n; i++) {
    const char *line = NULL;
    g_variant_get_child(problems, i, "&s", &line);
    fatal = fatal || strstr(line, "fatal: ") != NULL;
    if (!json)
      printf("%s\n", line);
  }
  if (json)
    mailctl_json_print(problems);
  if (fflush(stdout) != 0)
    return MAILCTL_EXIT_FAILED;
  return fatal ? MAILCTL_EXIT_FAILED : MAILCTL_EXIT_OK;
}
