/* smtpd-settings.c - reads the parameters smtpd uses out of a Config into
 * one typed, reference-counted snapshot (SmtpdSettings), opening the
 * NetLists and lookup tables once per configuration.  Every value and
 * default comes from the parameter table (params.c); nothing here
 * repeats a default.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "notify-class.h"
#include "smtpd.h"

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

/* "file:line: " where name is set, or "". */
static char *
settings_where(Config *config, const char *name)
{
  const char *file = NULL;
  int line = 0;

  if (!config_source(config, name, &file, &line))
    return g_strdup("");
  return line > 0 ? g_strdup_printf("%s:%d: ", file, line) : g_strdup_printf("%s: ", file);
}

/* *_tempfail_action: "defer_if_permit" (*defer_now FALSE) or "defer". */
static gboolean
settings_tempfail_action(Config *config, const char *name, gboolean *defer_now, GError **error)
{
  const char *v = config_str(config, name);
  *defer_now = g_ascii_strcasecmp(v, "defer") == 0;
  if (*defer_now || g_ascii_strcasecmp(v, "defer_if_permit") == 0)
    return TRUE;
  g_autofree char *where = settings_where(config, name);
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "%sparameter %s: bad value '%s' (use defer_if_permit or defer)", where, name, v);
  return FALSE;
}

/* The last TLS context built, and the files it came from: smtpd reloads
 * as mail_owner, and Postfix's keys are often root's alone. */
static TlsServer *settings_last_tls;
static char *settings_last_tls_files;

static char *
settings_tls_files(Config *config)
{
  g_autofree char *chain = g_strjoinv(",", (char **) config_list(config, "smtpd_tls_chain_files"));

  return g_strdup_printf("%s|%s|%s", config_str(config, "smtpd_tls_cert_file"),
                         config_str(config, "smtpd_tls_key_file"), chain);
}

static void
settings_tls_remember(SmtpdSettings *st)
{
  g_clear_pointer(&settings_last_tls, tls_server_unref);
  g_free(settings_last_tls_files);
  settings_last_tls = tls_server_ref(st->tls);
  settings_last_tls_files = settings_tls_files(st->config);
}

/* When one of the same files as last time cannot be read for lack of
 * permission, reuses the context built then (with a warning). */
static gboolean
settings_tls_unreadable(SmtpdSettings *st, GError **error)
{
  Config *config = st->config;
  g_autofree char *files = NULL;
  const char *const *chain = config_list(config, "smtpd_tls_chain_files");
  const char *names[3] = { config_str(config, "smtpd_tls_cert_file"),
                           config_str(config, "smtpd_tls_key_file"), NULL };
  const char *denied = NULL;

  if (settings_last_tls == NULL)
    return FALSE;
  files = settings_tls_files(config);
  if (strcmp(files, settings_last_tls_files) != 0)
    return FALSE;
  for (guint i = 0; i < 2 && denied == NULL; i++)
    if (*names[i] && access(names[i], R_OK) != 0 && errno == EACCES)
      denied = names[i];
  for (const char *const *c = chain; c && *c && denied == NULL; c++)
    if (access(*c, R_OK) != 0 && errno == EACCES)
      denied = *c;
  if (denied == NULL)
    return FALSE;
  log_warning("cannot re-read %s as %s (Permission denied); keeping the TLS certificates "
              "loaded before (make it readable by group %s to have reloads pick up new ones)",
              denied, st->mail_owner, st->mail_owner);
  st->tls = tls_server_ref(settings_last_tls);
  return TRUE;
}

/* smtpd_tls_*: the level, and the context when certificates are set.
 * A context that cannot be built disables TLS with a warning under
 * "may" (as Postfix: mail keeps flowing), and fails the configuration
 * where TLS is mandatory (encrypt, wrapper mode). */
static gboolean
settings_tls(SmtpdSettings *st, GError **error)
{
  Config *config = st->config;
  const char *level = config_str(config, "smtpd_tls_security_level");
  g_autoptr(GError) local = NULL;
  gboolean required;

  if (*level == '\0')
    /* Postfix's older switches, when the level is not set */
    level = config_bool(config, "smtpd_enforce_tls") ? "encrypt"
            : config_bool(config, "smtpd_use_tls") ? "may" : "none";
  if (!tls_level_parse(level, &st->tls_level)) {
    g_autofree char *where = settings_where(config, "smtpd_tls_security_level");
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%sparameter smtpd_tls_security_level: bad value '%s' (use none, may or encrypt)",
                where, level);
    return FALSE;
  }
  st->tls_wrappermode = config_bool(config, "smtpd_tls_wrappermode");
  st->tls_received_header = config_bool(config, "smtpd_tls_received_header");
  st->tls_auth_only = config_bool(config, "smtpd_tls_auth_only");
  st->starttls_timeout = MAX(config_time(config, "smtpd_starttls_timeout"), 1);
  required = st->tls_level == TLS_LEVEL_ENCRYPT || st->tls_wrappermode;
  if (!tls_server_configured(config, "smtpd")) {
    if (!required)
      return TRUE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s needs smtpd_tls_cert_file or smtpd_tls_chain_files",
                st->tls_wrappermode ? "smtpd_tls_wrappermode = yes"
                                    : "smtpd_tls_security_level = encrypt");
    return FALSE;
  }
  if (settings_tls_unreadable(st, &local))
    return TRUE;      /* a reload as mail_owner: the previous certificates stay */
  st->tls = tls_server_new(config, "smtpd", st->tls_level == TLS_LEVEL_ENCRYPT, &local);
  if (st->tls != NULL) {
    settings_tls_remember(st);
    return TRUE;
  }
  if (required) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  log_warning("%s; TLS is disabled", local->message);
  return TRUE;
}

/* Opens the tables that check_*_access entries of list name. */
static void
settings_access_tables(SmtpdSettings *st, const char *const *list)
{
  for (const char *const *p = list; p != NULL && *p != NULL; p++) {
    if (!g_str_has_prefix(*p, "check_") || !g_str_has_suffix(*p, "_access") || p[1] == NULL)
      continue;
    p++;
    if (g_hash_table_contains(st->access_tables, *p))
      continue;
    g_autoptr(GError) local = NULL;
    Table *table = table_open(*p, TABLE_FOLD_CASE, &local);
    if (table == NULL)
      log_warning("%s: %s (lookups answer 451 4.3.5)", *p, local->message);
    g_hash_table_insert(st->access_tables, g_strdup(*p), table);
  }
}

/* smtpd_restriction_classes (each name a main.cf parameter holding a
 * restriction list) and the access tables every list names. */
static gboolean
settings_restrictions(SmtpdSettings *st, GError **error)
{
  st->restriction_classes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                  (GDestroyNotify)g_strfreev);
  st->access_tables = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)table_free);
  for (const char *const *c = config_list(st->config, "smtpd_restriction_classes"); *c != NULL;
       c++) {
    const char *raw = config_raw(st->config, *c);
    if (raw == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "smtpd_restriction_classes: class \"%s\" is not defined", *c);
      return FALSE;
    }
    g_autofree char *value = config_expand(st->config, raw, error);
    if (value == NULL)
      return FALSE;
    char **list = config_split_list(value);
    settings_access_tables(st, (const char *const *)list);
    g_hash_table_insert(st->restriction_classes, g_strdup(*c), list);
  }
  const char *const *stages[] = { st->client_restrictions, st->helo_restrictions,
                                  st->sender_restrictions, st->relay_restrictions,
                                  st->recipient_restrictions, st->data_restrictions,
                                  st->end_of_data_restrictions };
  for (guint i = 0; i < G_N_ELEMENTS(stages); i++)
    settings_access_tables(st, stages[i]);
  return TRUE;
}

/* Opens the tables of one virtual_*_maps parameter (NULL when empty);
 * a failure is kept in virtual_maps_error (lookups answer 451 4.3.0). */
static TableList *
settings_virtual_maps(SmtpdSettings *st, const char *name)
{
  const char *const *specs = config_list(st->config, name);
  g_autoptr(GError) local = NULL;
  TableList *list;

  if (specs == NULL || specs[0] == NULL)
    return NULL;
  list = table_list_open(specs, TABLE_FOLD_CASE, &local);
  if (list == NULL) {
    log_warning("%s: %s (lookups answer 451 4.3.0)", name, local->message);
    if (st->virtual_maps_error == NULL)
      st->virtual_maps_error = g_strdup_printf("%s: %s", name, local->message);
  }
  return list;
}

/* The local listener's lists.  Like the other tables here, one that
 * cannot be built does not stop smtpd: it is logged, and the local
 * submissions that need it get a temporary failure. */
static void
settings_local(SmtpdSettings *st)
{
  Config *config = st->config;
  g_autoptr(GError) local = NULL;

  st->header_size_limit = config_size(config, "header_size_limit");
  st->login_null_sender = config_str(config, "empty_address_local_login_sender_maps_lookup_key");
  st->submit_users = domain_list_new("authorized_submit_users",
                                     config_list(config, "authorized_submit_users"),
                                     DOMAIN_MATCH_EXACT, &local);
  if (st->submit_users == NULL) {
    log_warning("%s (local submissions answer 421 4.3.0)", local->message);
    st->submit_users_error = g_strdup(local->message);
    g_clear_error(&local);
  }
  const char *const *maps = config_list(config, "local_login_sender_maps");
  st->login_sender_any = maps[0] != NULL && maps[1] == NULL && strcmp(maps[0], "static:*") == 0;
  if (maps[0] != NULL && !st->login_sender_any) {
    st->login_sender_maps = table_list_open(maps, TABLE_FOLD_CASE, &local);
    if (st->login_sender_maps == NULL) {
      log_warning("local_login_sender_maps: %s (local submissions answer 451 4.3.0)",
                  local->message);
      st->login_sender_maps_error = g_strdup(local->message);
    }
  }
}

/* smtpd_discard_ehlo_keywords as a mask; names it does not know are
 * warned about (Postfix ignores them silently). */
static guint
settings_ehlo_discard(Config *config)
{
  g_autoptr(GString) unknown = g_string_new(NULL);
  guint mask = smtpd_ehlo_mask(config_list(config, "smtpd_discard_ehlo_keywords"), unknown);
  if (unknown->len > 0) {
    g_autofree char *where = settings_where(config, "smtpd_discard_ehlo_keywords");
    log_warning("%ssmtpd_discard_ehlo_keywords: unknown keyword%s, ignoring", where, unknown->str);
  }
  return mask;
}

static SmtpdSettings *
settings_new(Config *config, GError **error)
{
  SmtpdSettings *st = g_new0(SmtpdSettings, 1);
  st->ref = 1;
  st->config = config;

  st->myhostname = config_str(config, "myhostname");
  st->myorigin = config_str(config, "myorigin");
  st->mail_name = config_str(config, "mail_name");
  st->notify_classes = notify_classes_mask(config);
  st->history_flush_threshold = config_int(config, "smtpd_history_flush_threshold");
  st->banner = config_str(config, "smtpd_banner");
  st->queue_directory = config_str(config, "queue_directory");
  st->mail_owner = config_str(config, "mail_owner");
  st->recipient_delimiter = config_str(config, "recipient_delimiter");
  st->domains = domain_classes_new(config);
  for (const char *const *e = domain_classes_errors(st->domains); *e != NULL; e++)
    log_warning("%s (recipients that need it answer 451 4.3.0)", *e);
  st->client_restrictions = config_list(config, "smtpd_client_restrictions");
  st->helo_restrictions = config_list(config, "smtpd_helo_restrictions");
  st->sender_restrictions = config_list(config, "smtpd_sender_restrictions");
  st->relay_restrictions = config_list(config, "smtpd_relay_restrictions");
  st->recipient_restrictions = config_list(config, "smtpd_recipient_restrictions");
  st->data_restrictions = config_list(config, "smtpd_data_restrictions");
  st->end_of_data_restrictions = config_list(config, "smtpd_end_of_data_restrictions");
  st->null_access_key = config_str(config, "smtpd_null_access_lookup_key");
  st->access_parent_style = g_strv_contains(config_list(config, "parent_domain_matches_subdomains"),
                                            "smtpd_access_maps");
  st->map_reject_code = config_int(config, "access_map_reject_code");
  st->map_defer_code = config_int(config, "access_map_defer_code");
  st->reject_code = config_int(config, "reject_code");
  st->defer_code = config_int(config, "defer_code");
  st->unknown_client_code = config_int(config, "unknown_client_reject_code");
  st->unknown_hostname_code = config_int(config, "unknown_hostname_reject_code");
  st->unknown_address_code = config_int(config, "unknown_address_reject_code");
  st->maps_rbl_code = config_int(config, "maps_rbl_reject_code");
  st->default_rbl_reply = config_str(config, "default_rbl_reply");
  if (!settings_tempfail_action(config, "unknown_helo_hostname_tempfail_action",
                                &st->helo_tempfail_defer, error) ||
      !settings_tempfail_action(config, "unknown_address_tempfail_action",
                                &st->address_tempfail_defer, error))
    goto fail;
  const char *const *rbl_maps = config_list(config, "rbl_reply_maps");
  if (rbl_maps[0] != NULL) {
    g_autoptr(GError) local = NULL;
    st->rbl_reply_maps = table_list_open(rbl_maps, TABLE_FOLD_CASE, &local);
    if (st->rbl_reply_maps == NULL)
      log_warning("rbl_reply_maps: %s (DNSBL rejects answer 451 4.3.5)", local->message);
  }
  st->delay_reject = config_bool(config, "smtpd_delay_reject");
  st->reject_unlisted_sender = config_bool(config, "smtpd_reject_unlisted_sender");
  if (!settings_restrictions(st, error))
    goto fail;
  if (!settings_tls(st, error) || !smtpd_auth_settings(st, error))
    goto fail;

  st->message_size_limit = config_size(config, "message_size_limit");
  st->recipient_limit = config_int(config, "smtpd_recipient_limit");
  st->timeout = MAX(config_time(config, "smtpd_timeout"), 1);
  st->hard_error_limit = config_int(config, "smtpd_hard_error_limit");
  st->soft_error_limit = config_int(config, "smtpd_soft_error_limit");
  st->error_sleep_time = config_time(config, "smtpd_error_sleep_time");
  st->junk_command_limit = config_int(config, "smtpd_junk_command_limit");
  st->min_data_rate = config_int(config, "smtpd_min_data_rate");
  st->conn_count_limit = config_int(config, "smtpd_client_connection_count_limit");
  st->conn_rate_limit = config_int(config, "smtpd_client_connection_rate_limit");
  st->rate_time_unit = MAX(config_time(config, "anvil_rate_time_unit"), 1);
  st->commit_threads = config_int(config, "smtpd_commit_threads");
  st->lookup_threads = config_int(config, "smtpd_lookup_threads");

  st->bare_newline_code = config_int(config, "smtpd_forbid_bare_newline_reject_code");
  st->forbid_bare_newline = config_bool(config, "smtpd_forbid_bare_newline");
  st->append_at_myorigin = config_bool(config, "append_at_myorigin");
  st->reject_unlisted_recipient = config_bool(config, "smtpd_reject_unlisted_recipient");
  st->disable_vrfy = config_bool(config, "disable_vrfy_command");
  st->helo_required = config_bool(config, "smtpd_helo_required");
  st->peername_lookup = config_bool(config, "smtpd_peername_lookup");
  st->per_record_deadline = config_bool(config, "smtpd_per_record_deadline");
  st->smtputf8_enable = config_bool(config, "smtputf8_enable");
  st->strict_smtputf8 = config_bool(config, "strict_smtputf8");
  st->ehlo_discard = settings_ehlo_discard(config);

  const char *const *mynetworks = config_list(config, "mynetworks");
  st->mynetworks = settings_netlist(mynetworks, "mynetworks", error);
  if (st->mynetworks == NULL)
    goto fail;
  st->event_limit_exceptions = settings_netlist(
      config_list(config, "smtpd_client_event_limit_exceptions"),
      "smtpd_client_event_limit_exceptions", error);
  if (st->event_limit_exceptions == NULL)
    goto fail;
  st->bare_newline_exclusions = settings_netlist(
      config_list(config, "smtpd_forbid_bare_newline_exclusions"),
      "smtpd_forbid_bare_newline_exclusions", error);
  if (st->bare_newline_exclusions == NULL)
    goto fail;

  const char *const *maps = config_list(config, "local_recipient_maps");
  if (maps[0] != NULL) {
    g_autoptr(GError) local = NULL;
    /* The alias_maps named here are aliases(5) files, not postmap ones. */
    st->local_recipient_maps = table_list_open_mixed(maps, TABLE_FOLD_CASE,
        config_list(config, "alias_maps"), TABLE_ALIAS_SYNTAX, &local);
    if (st->local_recipient_maps == NULL)
      st->local_recipient_maps_error = g_strdup(local->message);
  }
  st->virtual_alias_maps = settings_virtual_maps(st, "virtual_alias_maps");
  st->virtual_mailbox_maps = settings_virtual_maps(st, "virtual_mailbox_maps");
  st->relay_recipient_maps = settings_virtual_maps(st, "relay_recipient_maps");
  settings_local(st);
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
  g_clear_pointer(&settings->domains, domain_classes_free);
  g_clear_pointer(&settings->mynetworks, netlist_free);
  g_clear_pointer(&settings->event_limit_exceptions, netlist_free);
  g_clear_pointer(&settings->bare_newline_exclusions, netlist_free);
  g_clear_pointer(&settings->local_recipient_maps, table_list_free);
  g_clear_pointer(&settings->virtual_alias_maps, table_list_free);
  g_clear_pointer(&settings->virtual_mailbox_maps, table_list_free);
  g_clear_pointer(&settings->relay_recipient_maps, table_list_free);
  g_clear_pointer(&settings->rbl_reply_maps, table_list_free);
  g_clear_pointer(&settings->tls, tls_server_unref);
  g_clear_pointer(&settings->sasl_exceptions, netlist_free);
  g_clear_pointer(&settings->sender_login_maps, table_list_free);
  g_free(settings->sender_login_maps_error);
  g_free(settings->sasl_mechanisms[0]);
  g_free(settings->sasl_mechanisms[1]);
  g_clear_pointer(&settings->submit_users, domain_list_free);
  g_clear_pointer(&settings->login_sender_maps, table_list_free);
  g_free(settings->submit_users_error);
  g_free(settings->login_sender_maps_error);
  g_free(settings->virtual_maps_error);
  g_clear_pointer(&settings->restriction_classes, g_hash_table_unref);
  g_clear_pointer(&settings->access_tables, g_hash_table_unref);
  g_free(settings->local_recipient_maps_error);
  g_clear_pointer(&settings->config, config_free);
  g_free(settings);
}
