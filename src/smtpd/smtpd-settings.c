/* smtpd-settings.c - reads the parameters smtpd uses out of a Config into
 * one typed, reference-counted snapshot (SmtpdSettings), opening the
 * NetLists and lookup tables once per configuration.
 *
 * Values come from the parameter table (params.c); the fallbacks below
 * only apply when a parameter is missing from that table, and each such
 * case is logged at debug level, so a missing declaration is noticed
 * rather than crashing the daemon.
 */
#include <string.h>

#include "log.h"
#include "smtpd.h"

/* Numeric value of name whatever its declared numeric type. */
static gint64
settings_number(const Config *config, const char *name, gint64 fallback)
{
  const ParamDef *def = param_lookup(name);
  if (def == NULL) {
    log_debug("parameter %s not declared, using %" G_GINT64_FORMAT, name, fallback);
    return fallback;
  }
  switch (def->type) {
  case PARAM_INT:  return config_int(config, name);
  case PARAM_TIME: return config_time(config, name);
  case PARAM_SIZE: return config_size(config, name);
  case PARAM_BOOL: return config_bool(config, name);
  default: {
    gint64 v;
    const char *s = config_str(config, name);
    return s != NULL && config_parse_int(s, &v) ? v : fallback;
  }
  }
}

/* Time in seconds; a bare number gets the unit unit. */
static gint64
settings_time(const Config *config, const char *name, const char *fallback)
{
  const ParamDef *def = param_lookup(name);
  gint64 v = 0;
  if (def == NULL) {
    log_debug("parameter %s not declared, using %s", name, fallback);
    config_parse_time(fallback, 's', &v);
    return v;
  }
  if (def->type == PARAM_STR) {
    const char *s = config_str(config, name);
    if (s == NULL || !config_parse_time(s, def->time_unit ? def->time_unit : 's', &v))
      config_parse_time(fallback, 's', &v);
    return v;
  }
  return settings_number(config, name, 0);
}

/* Boolean; string parameters accept yes/no and Postfix's
 * "normalize" (= no) / "reject" (= yes) for the bare-newline setting. */
static gboolean
settings_bool(const Config *config, const char *name, gboolean fallback)
{
  const ParamDef *def = param_lookup(name);
  if (def == NULL) {
    log_debug("parameter %s not declared, using %s", name, fallback ? "yes" : "no");
    return fallback;
  }
  if (def->type == PARAM_BOOL)
    return config_bool(config, name);
  if (def->type == PARAM_STR) {
    const char *s = config_str(config, name);
    gboolean b;
    if (s == NULL)
      return fallback;
    if (g_ascii_strcasecmp(s, "reject") == 0)
      return TRUE;
    if (g_ascii_strcasecmp(s, "normalize") == 0)
      return FALSE;
    return config_parse_bool(s, &b) ? b : fallback;
  }
  return settings_number(config, name, fallback) != 0;
}

static const char *
settings_str(const Config *config, const char *name, const char *fallback)
{
  const ParamDef *def = param_lookup(name);
  if (def == NULL) {
    log_debug("parameter %s not declared, using \"%s\"", name, fallback);
    return fallback;
  }
  const char *s = config_str(config, name);
  return s != NULL ? s : fallback;
}

static const char *const empty_list[] = { NULL };

/* A list parameter; kept alive by the config or by keep (for fallbacks
 * and string-typed declarations). */
static const char *const *
settings_list(const Config *config, const char *name, const char *fallback, GPtrArray *keep)
{
  const ParamDef *def = param_lookup(name);
  if (def != NULL && (def->type == PARAM_LIST || def->type == PARAM_TABLES)) {
    const char *const *l = config_list(config, name);
    return l != NULL ? l : empty_list;
  }
  const char *text = fallback;
  if (def == NULL)
    log_debug("parameter %s not declared, using \"%s\"", name, fallback);
  else
    text = config_str(config, name);
  if (text == NULL)
    return empty_list;
  char **list = config_split_list(text);
  g_ptr_array_add(keep, list);
  return (const char *const *)list;
}

static void
strv_free(gpointer p)
{
  g_strfreev(p);
}

/* Extra storage for lists that do not belong to the config. */
typedef struct {
  SmtpdSettings pub;
  GPtrArray *keep;
} SettingsPriv;

/* Opens a NetList from a list parameter; errors name the parameter. */
static NetList *
settings_netlist(const char *const *entries, const char *name, GError **error)
{
  g_autoptr(GError) local = NULL;
  NetList *list = netlist_new(entries, &local);
  if (list == NULL)
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: %s", name, local->message);
  return list;
}

static SmtpdSettings *
settings_new(Config *config, GError **error)
{
  SettingsPriv *priv = g_new0(SettingsPriv, 1);
  SmtpdSettings *st = &priv->pub;
  GPtrArray *keep = priv->keep = g_ptr_array_new_with_free_func(strv_free);
  st->ref = 1;
  st->config = config;

  st->myhostname = settings_str(config, "myhostname", "localhost");
  st->myorigin = settings_str(config, "myorigin", st->myhostname);
  st->mail_name = settings_str(config, "mail_name", "Postern");
  st->banner = settings_str(config, "smtpd_banner", "localhost ESMTP Postern");
  st->queue_directory = settings_str(config, "queue_directory", "/var/spool/postern");
  st->mail_owner = settings_str(config, "mail_owner", "postern");
  st->recipient_delimiter = settings_str(config, "recipient_delimiter", "");
  st->mydestination = settings_list(config, "mydestination", "localhost", keep);
  st->relay_domains = settings_list(config, "relay_domains", "", keep);
  st->virtual_alias_domains = settings_list(config, "virtual_alias_domains", "", keep);
  st->virtual_mailbox_domains = settings_list(config, "virtual_mailbox_domains", "", keep);
  st->relay_restrictions = settings_list(config, "smtpd_relay_restrictions",
                                         "permit_mynetworks, reject_unauth_destination", keep);
  st->recipient_restrictions = settings_list(config, "smtpd_recipient_restrictions", "", keep);

  st->message_size_limit = settings_number(config, "message_size_limit", 10240000);
  st->recipient_limit = settings_number(config, "smtpd_recipient_limit", 1000);
  st->timeout = settings_time(config, "smtpd_timeout", "300s");
  st->hard_error_limit = settings_number(config, "smtpd_hard_error_limit", 20);
  st->soft_error_limit = settings_number(config, "smtpd_soft_error_limit", 10);
  st->error_sleep_time = settings_time(config, "smtpd_error_sleep_time", "1s");
  st->junk_command_limit = settings_number(config, "smtpd_junk_command_limit", 100);
  st->min_data_rate = settings_number(config, "smtpd_min_data_rate", 500);
  st->conn_count_limit = settings_number(config, "smtpd_client_connection_count_limit", 50);
  st->conn_rate_limit = settings_number(config, "smtpd_client_connection_rate_limit", 0);
  st->rate_time_unit = settings_time(config, "anvil_rate_time_unit", "60s");
  st->commit_threads = settings_number(config, "smtpd_commit_threads", 8);
  st->lookup_threads = settings_number(config, "smtpd_lookup_threads", 4);

  st->bare_newline_code = settings_number(config, "smtpd_forbid_bare_newline_reject_code", 550);
  st->forbid_bare_newline = settings_bool(config, "smtpd_forbid_bare_newline", TRUE);
  st->append_at_myorigin = settings_bool(config, "append_at_myorigin", TRUE);
  st->reject_unlisted_recipient = settings_bool(config, "smtpd_reject_unlisted_recipient", TRUE);
  st->disable_vrfy = settings_bool(config, "disable_vrfy_command", TRUE);
  st->helo_required = settings_bool(config, "smtpd_helo_required", FALSE);
  st->peername_lookup = settings_bool(config, "smtpd_peername_lookup", TRUE);
  st->per_record_deadline = settings_bool(config, "smtpd_per_record_deadline", TRUE);

  if (st->timeout <= 0)
    st->timeout = 300;
  if (st->commit_threads < 1)
    st->commit_threads = 1;
  if (st->lookup_threads < 1)
    st->lookup_threads = 1;
  if (st->rate_time_unit < 1)
    st->rate_time_unit = 60;

  const char *const *mynetworks = settings_list(config, "mynetworks", "127.0.0.0/8 [::1]/128", keep);
  st->mynetworks = settings_netlist(mynetworks, "mynetworks", error);
  if (st->mynetworks == NULL)
    goto fail;
  const char *exc_name = "smtpd_client_event_limit_exceptions";
  const char *const *exceptions =
      param_lookup(exc_name) != NULL ? settings_list(config, exc_name, "", keep) : mynetworks;
  st->event_limit_exceptions = settings_netlist(exceptions, exc_name, error);
  if (st->event_limit_exceptions == NULL)
    goto fail;
  st->bare_newline_exclusions = settings_netlist(
      settings_list(config, "smtpd_forbid_bare_newline_exclusions", "", keep),
      "smtpd_forbid_bare_newline_exclusions", error);
  if (st->bare_newline_exclusions == NULL)
    goto fail;

  const char *const *maps = settings_list(config, "local_recipient_maps",
                                          "unix:passwd.byname, hash:/etc/aliases", keep);
  if (maps[0] != NULL) {
    g_autoptr(GError) local = NULL;
    st->local_recipient_maps = table_list_open(maps, TABLE_FOLD_CASE, &local);
    if (st->local_recipient_maps == NULL)
      st->local_recipient_maps_error = g_strdup(local->message);
  }
  return st;

fail:
  st->config = NULL;   /* the caller still owns it on failure */
  smtpd_settings_unref(st);
  return NULL;
}

SmtpdSettings *
smtpd_settings_load(const char *dir, const char *const *overrides, GError **error)
{
  Config *config = config_load(dir, overrides, error);
  if (config == NULL)
    return NULL;
  SmtpdSettings *st = settings_new(config, error);
  if (st == NULL)
    config_free(config);
  return st;
}

SmtpdSettings *
smtpd_settings_ref(SmtpdSettings *settings)
{
  settings->ref++;
  return settings;
}

void
smtpd_settings_unref(SmtpdSettings *settings)
{
  if (settings == NULL || --settings->ref > 0)
    return;
  SettingsPriv *priv = (SettingsPriv *)settings;
  g_clear_pointer(&settings->mynetworks, netlist_free);
  g_clear_pointer(&settings->event_limit_exceptions, netlist_free);
  g_clear_pointer(&settings->bare_newline_exclusions, netlist_free);
  g_clear_pointer(&settings->local_recipient_maps, table_list_free);
  g_free(settings->local_recipient_maps_error);
  g_clear_pointer(&settings->config, config_free);
  g_ptr_array_unref(priv->keep);
  g_free(priv);
}
