/* pop3d-settings.c - the parameters postern-pop3d uses (pop3d.h), read
 * once per configuration load in the parent; the children inherit them.
 * Every default comes from the parameter table (params.c).
 */
#include "pop3d.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "auth-sasl.h"
#include "log.h"

static gboolean
settings_tls(Pop3dSettings *st, GError **error)
{
  const char *level = config_str(st->config, "pop3d_tls_security_level");
  g_autoptr(GError) local = NULL;

  if (!tls_level_parse(level, &st->tls_level)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "parameter pop3d_tls_security_level: bad value '%s' (use none, may or encrypt)",
                level);
    return FALSE;
  }
  if (st->tls_level == TLS_LEVEL_NONE)
    return TRUE;
  if (!tls_server_configured(st->config, "pop3d")) {
    if (st->tls_level != TLS_LEVEL_ENCRYPT)
      return TRUE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "pop3d_tls_security_level = encrypt needs pop3d_tls_cert_file or "
                "pop3d_tls_chain_files (or smtpd's)");
    return FALSE;
  }
  st->tls = tls_server_new(st->config, "pop3d", st->tls_level == TLS_LEVEL_ENCRYPT, &local);
  if (st->tls != NULL)
    return TRUE;
  if (st->tls_level == TLS_LEVEL_ENCRYPT) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  log_warning("%s; TLS is disabled", local->message);
  return TRUE;
}

Pop3dSettings *
pop3d_settings_load(const char *config_dir, const char *const *overrides, GError **error)
{
  g_autoptr(Pop3dSettings) st = g_new0(Pop3dSettings, 1);
  g_autoptr(GError) local = NULL;
  Config *c;

  st->owner_uid = (uid_t) -1;
  st->owner_gid = (gid_t) -1;
  st->config = c = config_load(config_dir, overrides, error);
  if (c == NULL)
    return NULL;
  if (!settings_tls(st, error))
    return NULL;
  st->plaintext_networks = netlist_new(config_list(c, "pop3d_plaintext_auth_networks"), &local);
  if (st->plaintext_networks == NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "pop3d_plaintext_auth_networks: %s",
                local->message);
    return NULL;
  }
  st->sasl_app = config_str(c, "pop3d_sasl_application_name");
  if (!auth_sasl_init(st->sasl_app, config_str(c, "cyrus_sasl_config_path"), &local)) {
    if (local->code != POSTERN_ERROR_CONFIG) {
      g_propagate_error(error, g_steal_pointer(&local));
      return NULL;
    }
    log_warning("%s", local->message);      /* a reload cannot change it */
    g_clear_error(&local);
  }
  /* The two mechanisms whose credentials the parent's auth process can
   * check itself (docs/pop3d.md). */
  st->sasl_mechanisms = g_strdup("PLAIN LOGIN");
  st->realm = *config_str(c, "pop3d_sasl_local_domain") ? config_str(c, "pop3d_sasl_local_domain")
                                                        : NULL;
  st->hostname = config_str(c, "myhostname");
  st->implementation = config_str(c, "pop3d_implementation");
  st->mail_owner = config_str(c, "mail_owner");
  st->timeout_ms = config_time(c, "pop3d_timeout") * 1000;
  st->login_timeout_ms = config_time(c, "pop3d_login_timeout") * 1000;
  st->failure_delay_ms = config_time(c, "pop3d_sasl_failure_delay") * 1000;
  st->failure_limit = (guint) config_int(c, "pop3d_sasl_failure_limit");
  st->connection_limit = (guint) config_int(c, "pop3d_client_connection_limit");
  st->process_limit = (guint) config_int(c, "pop3d_process_limit");
  st->login_failure_limit = (guint) config_int(c, "pop3d_client_login_failure_limit");
  st->rate_unit_us = config_time(c, "anvil_rate_time_unit") * G_USEC_PER_SEC;

  if (geteuid() == 0) {
    struct passwd *pw = getpwnam(st->mail_owner);

    if (pw == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "mail_owner user \"%s\" does not exist; create it (useradd -r -M -d "
                  "/nonexistent -s /usr/sbin/nologin %s) or set mail_owner", st->mail_owner,
                  st->mail_owner);
      return NULL;
    }
    if (pw->pw_uid == 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "mail_owner \"%s\" must not be root", st->mail_owner);
      return NULL;
    }
    st->owner_uid = pw->pw_uid;
    st->owner_gid = pw->pw_gid;
    /* As systemd's User= would give them: the auth process reads the
     * sasldb or reaches saslauthd through them. */
    st->n_owner_groups = 32;
    st->owner_groups = g_new(gid_t, st->n_owner_groups);
    if (getgrouplist(st->mail_owner, pw->pw_gid, st->owner_groups, &st->n_owner_groups) < 0) {
      st->owner_groups = g_renew(gid_t, st->owner_groups, st->n_owner_groups);
      if (getgrouplist(st->mail_owner, pw->pw_gid, st->owner_groups, &st->n_owner_groups) < 0)
        st->n_owner_groups = 0;
    }
    if (st->n_owner_groups == 0) {
      st->owner_groups[0] = pw->pw_gid;
      st->n_owner_groups = 1;
    }
  }
  return g_steal_pointer(&st);
}

void
pop3d_settings_free(Pop3dSettings *st)
{
  if (st == NULL)
    return;
  g_clear_pointer(&st->tls, tls_server_unref);
  g_clear_pointer(&st->plaintext_networks, netlist_free);
  g_free(st->sasl_mechanisms);
  g_free(st->owner_groups);
  g_clear_pointer(&st->config, config_free);
  g_free(st);
}
