/* config-check-sasl.c - config_check()'s look at SMTP AUTH.
 *
 * With smtpd_sasl_auth_enable = yes: the SASL type is cyrus, the
 * security options are known words, Cyrus finds APPLICATION.conf in
 * cyrus_sasl_config_path (or its default directories), and what that file
 * points at is usable by mail_owner, as which smtpd authenticates: the
 * sasldb file (sasldb_path, default /etc/sasldb2) readable, saslauthd's
 * socket (saslauthd_path, default /var/run/saslauthd/mux) present and its
 * directory searchable.  AUTH offered without TLS is worth a warning:
 * passwords would cross the network in the clear.
 */
#include "config-check-private.h"

#include "auth-sasl.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Cyrus SASL 2.1's built-in configuration directories (Debian). */
static const char *const check_sasl_default_path[] = {
  "/etc/sasl2", "/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/sasl2", NULL,
};

/* "key: value" of a Cyrus configuration file, or NULL. */
static char *
check_sasl_option(const char *text, const char *key)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  gsize len = strlen(key);

  for (char **l = lines; *l; l++) {
    char *line = g_strstrip(*l);

    if (strncmp(line, key, len) == 0 && line[len] == ':')
      return g_strdup(g_strstrip(line + len + 1));
  }
  return NULL;
}

/* Can mail_owner search every directory on the way to path? */
static gboolean
check_sasl_owner_reaches(const ConfigCheck *check, const char *path)
{
  g_autofree char *dir = g_path_get_dirname(path);

  while (strcmp(dir, "/") != 0 && strcmp(dir, ".") != 0) {
    struct stat st;
    char *parent;

    if (stat(dir, &st) < 0)
      return FALSE;
    if (!(st.st_mode & S_IXOTH) && !(st.st_uid == check->owner_uid && (st.st_mode & S_IXUSR))) {
      gboolean in_group = FALSE;
      for (guint i = 0; i < check->owner_groups->len; i++)
        in_group |= g_array_index(check->owner_groups, gid_t, i) == st.st_gid;
      if (!(in_group && (st.st_mode & S_IXGRP)))
        return FALSE;
    }
    parent = g_path_get_dirname(dir);
    g_free(dir);
    dir = parent;
  }
  return TRUE;
}

static void
check_sasl_file(ConfigCheck *check, const char *conf, const char *text)
{
  g_autofree char *method = check_sasl_option(text, "pwcheck_method");
  g_autofree char *plugin = check_sasl_option(text, "auxprop_plugin");
  const char *setting = "smtpd_sasl_path";

  if (method == NULL || strstr(method, "auxprop") != NULL) {
    g_autofree char *db = check_sasl_option(text, "sasldb_path");
    struct stat st;

    if (plugin != NULL && strcmp(plugin, "sasldb") != 0)
      return;       /* sql, ldapdb: a server of their own */
    if (db == NULL)
      db = g_strdup("/etc/sasldb2");
    if (stat(db, &st) < 0)
      config_check_add(check, setting, "warning", "%s: sasldb %s: %s", conf, db, g_strerror(errno));
    else if (check->owner_ok && (!config_check_owner_can_read(check, &st)
                                 || !check_sasl_owner_reaches(check, db)))
      config_check_add(check, setting, "warning",
                       "%s: sasldb %s is not readable by mail_owner %s (add it to the file's "
                       "group, e.g. sasl)", conf, db, check->owner);
  } else if (strstr(method, "saslauthd") != NULL) {
    g_autofree char *mux = check_sasl_option(text, "saslauthd_path");
    struct stat st;

    if (mux == NULL)
      mux = g_strdup("/var/run/saslauthd/mux");
    if (stat(mux, &st) < 0 || !S_ISSOCK(st.st_mode))
      config_check_add(check, setting, "warning", "%s: saslauthd socket %s: %s", conf, mux,
                       errno ? g_strerror(errno) : "not a socket (is saslauthd running?)");
    else if (check->owner_ok && !check_sasl_owner_reaches(check, mux))
      config_check_add(check, setting, "warning",
                       "%s: saslauthd socket %s is not reachable by mail_owner %s (add it to "
                       "the directory's group, e.g. sasl)", conf, mux, check->owner);
  }
}

void
config_check_sasl(ConfigCheck *check)
{
  const Config *config = check->config;
  const char *app = config_str(config, "smtpd_sasl_path");
  const char *const *path = config_list(config, "cyrus_sasl_config_path");
  g_autoptr(GError) error = NULL;
  g_autofree char *found = NULL, *text = NULL;
  guint flags;

  if (!config_bool(config, "smtpd_sasl_auth_enable"))
    return;
  if (g_ascii_strcasecmp(config_str(config, "smtpd_sasl_type"), "cyrus") != 0) {
    config_check_add(check, "smtpd_sasl_type", "warning", "\"%s\" is not supported (cyrus)",
                     config_str(config, "smtpd_sasl_type"));
    return;
  }
  /* (the TLS options default to the others: one report is enough) */
  for (guint i = 0; i < 2; i++) {
    const char *name = i == 0 ? "smtpd_sasl_security_options" : "smtpd_sasl_tls_security_options";
    const char *file;
    int line;

    if (i == 1 && !config_source(config, name, &file, &line))
      continue;
    if (!auth_sasl_security_flags(config_list(config, name), &flags, &error)) {
      config_check_add(check, name, "warning", "%s", error->message);
      g_clear_error(&error);
    }
  }
  if (strcmp(app, "smtpd") == 0)
    app = config_str(config, "smtpd_sasl_application_name");
  if (path == NULL || path[0] == NULL)
    path = check_sasl_default_path;
  for (const char *const *dir = path; *dir && found == NULL; dir++) {
    g_autofree char *candidate = g_strdup_printf("%s/%s.conf", *dir, app);
    if (g_file_get_contents(candidate, &text, NULL, NULL))
      found = g_steal_pointer(&candidate);
  }
  if (found == NULL) {
    g_autofree char *dirs = g_strjoinv(", ", (char **) path);
    config_check_add(check, "smtpd_sasl_path", "warning",
                     "no %s.conf in %s: Cyrus SASL uses its defaults (pwcheck_method: auxprop, "
                     "sasldb /etc/sasldb2)", app, dirs);
    check_sasl_file(check, "(defaults)", "");
  } else {
    check_sasl_file(check, found, text);
  }
  if (*config_str(config, "smtpd_tls_cert_file") == '\0'
      && config_list(config, "smtpd_tls_chain_files")[0] == NULL)
    config_check_add(check, "smtpd_sasl_auth_enable", "warning",
                     "AUTH is offered without TLS: passwords cross the network in the clear "
                     "(set smtpd_tls_cert_file)");
  else if (!config_bool(config, "smtpd_tls_auth_only"))
    config_check_add(check, "smtpd_tls_auth_only", "warning",
                     "AUTH is offered before STARTTLS: passwords may cross the network in the "
                     "clear");
}
