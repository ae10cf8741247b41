/* qmgr-settings.c - the configuration as deliveries see it.
 *
 * Built once per (re)load: the parameters a delivery reads and the
 * opened alias tables.  Reference counted, because deliveries in flight
 * keep the settings they started with while SIGHUP installs new ones.
 */
#include "qmgr.h"

#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "notify-class.h"

/* Opens the tables of a parameter once for every delivery (NULL when
 * empty, or with *why when they cannot be opened). */
static TableList *
qmgr_settings_open_maps(const Config *config, const char *name, char **why)
{
  const char *const *specs = config_list(config, name);
  g_autoptr(GError) error = NULL;
  TableList *list;

  if (specs == NULL || specs[0] == NULL)
    return NULL;
  list = table_list_open(specs, TABLE_FOLD_CASE, &error);
  if (list == NULL)
    *why = g_strdup_printf("%s: %s", name, error->message);
  return list;
}

/* Opens the tables of one virtual_*_maps parameter (NULL when empty);
 * on failure records the first error in s->virtual_error. */
static TableList *
qmgr_settings_open_virtual(QmgrSettings *s, const char *name)
{
  const char *const *specs = config_list(s->config, name);
  g_autoptr(GError) error = NULL;
  TableList *list;

  if (specs == NULL || specs[0] == NULL)
    return NULL;
  list = table_list_open(specs, TABLE_FOLD_CASE, &error);
  if (list == NULL && s->virtual_error == NULL)
    s->virtual_error = g_strdup_printf("%s: %s", name, error->message);
  return list;
}

static void
qmgr_settings_clear(gpointer data)
{
  QmgrSettings *s = data;

  if (s->aliases)
    g_ptr_array_unref(s->aliases);
  domain_classes_free(s->domains);
  table_list_free(s->virtual_alias);
  table_list_free(s->virtual_mailbox);
  table_list_free(s->virtual_uid);
  table_list_free(s->virtual_gid);
  g_free(s->virtual_error);
  table_list_free(s->transport_maps);
  table_list_free(s->sasl_password_maps);
  table_list_free(s->tls_policy_maps);
  g_free(s->sasl_password_error);
  g_free(s->tls_policy_error);
  g_free(s->transport_error);
  g_free(s->aliases_error);
  for (guint k = 0; k < QMGR_BOUNCE_TEMPLATES; k++)
    qmgr_bounce_template_free(s->bounce_templates[k]);
  config_free(s->config);
}

QmgrSettings *
qmgr_settings_new(Config *config)
{
  QmgrSettings *s = g_atomic_rc_box_new0(QmgrSettings);
  const char *const *alias_maps = config_list(config, "alias_maps");
  g_autoptr(GError) error = NULL;

  s->config = config;
  s->domains = domain_classes_new(config);
  s->myorigin = config_str(config, "myorigin");
  s->myhostname = config_str(config, "myhostname");
  s->recipient_delimiter = config_str(config, "recipient_delimiter");
  s->mail_spool_directory = config_str(config, "mail_spool_directory");
  s->home_mailbox = config_str(config, "home_mailbox");
  s->mailbox_size_limit = config_size(config, "mailbox_size_limit");
  s->minimal_backoff = config_time(config, "minimal_backoff_time");
  s->maximal_backoff = config_time(config, "maximal_backoff_time");
  s->maximal_queue_lifetime = config_time(config, "maximal_queue_lifetime");
  s->bounce_queue_lifetime = config_time(config, "bounce_queue_lifetime");
  if (s->bounce_queue_lifetime > s->maximal_queue_lifetime) {
    /* as Postfix's qmgr: a notice never outlives the mail it is about */
    log_warning("bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting "
                "bounce_queue_lifetime");
    s->bounce_queue_lifetime = s->maximal_queue_lifetime;
  }
  s->delay_warning_time = config_time(config, "delay_warning_time");
  s->notify_classes = notify_classes_mask(config);
  s->virtual_mailbox_base = config_str(config, "virtual_mailbox_base");
  s->virtual_mailbox_limit = config_size(config, "virtual_mailbox_limit");
  s->virtual_minimum_uid = config_int(config, "virtual_minimum_uid");
  s->virtual_alias = qmgr_settings_open_virtual(s, "virtual_alias_maps");
  s->virtual_mailbox = qmgr_settings_open_virtual(s, "virtual_mailbox_maps");
  s->virtual_uid = qmgr_settings_open_virtual(s, "virtual_uid_maps");
  s->virtual_gid = qmgr_settings_open_virtual(s, "virtual_gid_maps");
  {
    const char *const *specs = config_list(config, "transport_maps");

    if (specs != NULL && specs[0] != NULL) {
      s->transport_maps = table_list_open(specs, TABLE_FOLD_CASE, &error);
      if (s->transport_maps == NULL) {
        s->transport_error = g_strdup_printf("transport_maps: %s", error->message);
        g_clear_error(&error);
      }
    }
    route_config_init(&s->route, config, s->transport_maps);
  }
  s->sasl_password_maps = qmgr_settings_open_maps(config, "smtp_sasl_password_maps",
                                                  &s->sasl_password_error);
  s->tls_policy_maps = qmgr_settings_open_maps(config, "smtp_tls_policy_maps",
                                               &s->tls_policy_error);
  if (*config_str(config, "bounce_template_file")
      && !qmgr_bounce_templates_load(config_str(config, "bounce_template_file"),
                                     s->bounce_templates, &error)) {
    log_warning("bounce_template_file: %s; the built-in notice texts are used", error->message);
    g_clear_error(&error);
  }
  s->owner_uid = (uid_t) -1;
  s->owner_gid = (gid_t) -1;
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam(config_str(config, "mail_owner"));

    if (pw != NULL && pw->pw_uid != 0) {
      s->owner_uid = pw->pw_uid;
      s->owner_gid = pw->pw_gid;
    }
  }
  s->default_privs = config_str(config, "default_privs");
  s->allow_mail_to_commands = config_list(config, "allow_mail_to_commands");
  s->forward_path = config_str(config, "forward_path");
  s->mailbox_command = config_str(config, "mailbox_command");
  s->allow_mail_to_files = config_list(config, "allow_mail_to_files");
  s->command_time_limit = config_time(config, "command_time_limit");
  if (alias_maps && alias_maps[0]) {
    /* Opened one by one (not as a TableList) so that local delivery
     * knows which table, hence which owner, an alias came from. */
    s->aliases = g_ptr_array_new_with_free_func((GDestroyNotify) table_free);
    for (guint i = 0; alias_maps[i]; i++) {
      Table *t = table_open(alias_maps[i], TABLE_ALIAS_SYNTAX | TABLE_FOLD_CASE, &error);

      if (t == NULL) {
        s->aliases_error = g_strdup(error->message);
        g_clear_pointer(&s->aliases, g_ptr_array_unref);
        break;
      }
      g_ptr_array_add(s->aliases, t);
    }
  }
  return s;
}

gboolean
qmgr_settings_alias_owner(const Table *table, uid_t *uid, gid_t *gid)
{
  const char *spec = table_spec(table);
  const char *colon = strchr(spec, ':');
  g_autofree char *type = colon ? g_strndup(spec, (gsize) (colon - spec)) : NULL;
  g_autofree char *compiled = NULL;
  struct stat st;

  if (type == NULL)
    return FALSE;
  if (strcmp(type, "static") == 0 || strcmp(type, "inline") == 0) {
    *uid = 0;
    *gid = 0;
    return TRUE;
  }
  if (strcmp(type, "hash") == 0 || strcmp(type, "cdb") == 0)
    compiled = g_strconcat(colon + 1, ".cdb", NULL);
  else if (strcmp(type, "texthash") != 0)
    return FALSE;
  if ((compiled == NULL || stat(compiled, &st) < 0) && stat(colon + 1, &st) < 0)
    return FALSE;
  *uid = st.st_uid;
  *gid = st.st_gid;
  return TRUE;
}

QmgrSettings *
qmgr_settings_ref(QmgrSettings *settings)
{
  return g_atomic_rc_box_acquire(settings);
}

void
qmgr_settings_unref(QmgrSettings *settings)
{
  if (settings)
    g_atomic_rc_box_release_full(settings, qmgr_settings_clear);
}

MatchResult
qmgr_settings_local_domain(const QmgrSettings *settings, const char *domain, GError **error)
{
  return domain_classes_local(settings->domains, domain, error);
}
