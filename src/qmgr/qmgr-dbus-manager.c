/* qmgr-dbus-manager.c - the methods of org.postern.Mail1.Manager:
 * parameters, reload, lookup tables.  Validate, authorize, act, as in
 * qmgr-dbus-queue.c.
 *
 * Reload reloads the queue manager in its loop thread (the SIGHUP code),
 * then asks every running postern-smtpd to reload: through systemd when
 * org.freedesktop.systemd1 is on the bus (ReloadUnit of each active
 * postern-smtpd*.service), otherwise by SIGHUP to each process that holds
 * a pid file in $queue_directory/pid/ (pidfile.h: the holder of the lock,
 * never a stale pid).  Table rebuilds run in a pool thread, as root, and
 * only for tables the running configuration names.
 */
#include "qmgr-dbus-private.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "log.h"
#include "pidfile.h"
#include "table.h"

#define QMGR_SMTPD_UNITS "postern-smtpd*.service"

/* ---------------------------------------------------------------- GetParameters */

static const char *
qmgr_dbus_param_value(QmgrDbus *d, const Config *config, const ParamDef *def, const char *which)
{
  if (strcmp(which, "effective") == 0)
    return config_str(config, def->name);
  if (strcmp(which, "changed") == 0)
    return config_raw(config, def->name);
  /* defaults: the table's text; a computed one as computed for this host */
  if (def->def != NULL)
    return def->def;
  if (strcmp(def->name, "config_directory") == 0)
    return config_get_dir(config);
  if (d->defaults == NULL) {
    g_autoptr(GError) error = NULL;

    d->defaults = config_load("/nonexistent/postern-defaults", NULL, &error);
    if (d->defaults == NULL)
      return "";
  }
  return config_str(d->defaults, def->name);
}

static void
qmgr_dbus_get_parameters_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  GVariantBuilder b;
  gsize n;
  const ParamDef *defs = param_table(&n);

  g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
  if (req->names[0] == NULL) {
    for (gsize i = 0; i < n; i++) {
      const char *v = qmgr_dbus_param_value(req->d, settings->config, &defs[i], req->which);
      if (v != NULL)
        g_variant_builder_add(&b, "{ss}", defs[i].name, v);
    }
  } else {
    for (char **name = req->names; *name; name++) {
      const char *v = qmgr_dbus_param_value(req->d, settings->config, param_lookup(*name),
                                            req->which);
      if (v != NULL)
        g_variant_builder_add(&b, "{ss}", *name, v);
    }
  }
  req->reply = g_variant_ref_sink(g_variant_new("(a{ss})", &b));
  qmgr_dbus_request_finish(req);
}

/* Every name must be a known parameter (the table is public: this is
 * validation, not disclosure). */
static gboolean
qmgr_dbus_known_names(const char *const *names, GError **error)
{
  if (g_strv_length((char **) names) > 10000) {
    g_set_error(error, QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_ARGS, "Too many parameter names");
    return FALSE;
  }
  for (const char *const *name = names; *name; name++) {
    if (param_lookup(*name) == NULL) {
      g_autofree char *shown = g_utf8_make_valid(*name, MIN(strlen(*name), 100));
      g_set_error(error, QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_PARAMETER,
                  "Unknown parameter \"%s\"", shown);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
qmgr_dbus_on_get_parameters(PosternManager *object, GDBusMethodInvocation *invocation,
                            const char *const *names, const char *which, gpointer data)
{
  QmgrDbus *d = data;
  QmgrDbusRequest *req;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  if (strcmp(which, "effective") != 0 && strcmp(which, "defaults") != 0
      && strcmp(which, "changed") != 0) {
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_ARGS,
                             "\"which\" must be effective, defaults or changed");
    qmgr_dbus_request_finish(req);
    return TRUE;
  }
  if (!qmgr_dbus_known_names(names, &req->error)) {
    qmgr_dbus_request_finish(req);
    return TRUE;
  }
  req->names = g_strdupv((char **) names);
  req->which = g_strdup(which);
  qmgr_authz_check(invocation, qmgr_dbus_get_parameters_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

/* ---------------------------------------------------------------- Reload */

static void
qmgr_dbus_reload_loop(Qmgr *q, gpointer data)
{
  QmgrDbusRequest *req = data;

  if (!req->d->hooks.reload(req->d->hooks.data, &req->error))
    g_prefix_error(&req->error, "The configuration does not load, the old one stays: ");
}

/* SIGHUP to every smtpd that holds a pid file (no systemd). */
static void
qmgr_dbus_reload_smtpd_pidfiles(QmgrDbus *d)
{
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(d);
  g_autofree char *dir = g_build_filename(config_str(settings->config, "queue_directory"),
                                          "pid", NULL);
  g_autoptr(GDir) gdir = g_dir_open(dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (gdir && (name = g_dir_read_name(gdir)) != NULL) {
    g_autofree char *path = NULL;
    g_autoptr(GError) error = NULL;
    pid_t pid;

    if (!g_str_has_prefix(name, "smtpd.") || !g_str_has_suffix(name, ".pid"))
      continue;
    path = g_build_filename(dir, name, NULL);
    pid = pidfile_holder(path, &error);
    if (pid < 0) {
      log_warning("reload: %s, ignoring", error->message);
    } else if (pid == 0) {
      if (unlink(path) == 0)
        log_info("reload: removed the stale pid file %s", path);
    } else if (kill(pid, SIGHUP) < 0) {
      log_warning("reload: cannot signal postern-smtpd (pid %ld): %s, ignoring", (long) pid,
                  g_strerror(errno));
    } else {
      n++;
      log_info("reload: sent SIGHUP to postern-smtpd (pid %ld)", (long) pid);
    }
  }
  if (n == 0)
    log_info("reload: no running postern-smtpd found in %s", dir);
}

typedef struct {
  QmgrDbus *d;
  char *unit;
} QmgrDbusReloadUnit;

static void
qmgr_dbus_on_reload_unit(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbusReloadUnit *ru = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result,
                                                            &error);

  if (reply == NULL)
    log_warning("reload: systemd could not reload %s: %s, ignoring", ru->unit, error->message);
  else
    log_info("reload: asked systemd to reload %s", ru->unit);
  qmgr_dbus_release(ru->d);
  g_free(ru->unit);
  g_free(ru);
}

static void
qmgr_dbus_on_smtpd_units(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbusRequest *req = data;
  GDBusConnection *connection = G_DBUS_CONNECTION(source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(connection, result, &error);
  g_autoptr(GVariantIter) units = NULL;
  const char *unit;
  guint n = 0;

  if (reply == NULL) {
    log_warning("reload: cannot list the postern-smtpd units: %s; signalling by pid file",
                error->message);
    qmgr_dbus_reload_smtpd_pidfiles(req->d);
    qmgr_dbus_request_finish(req);
    return;
  }
  g_variant_get(reply, "(a(ssssssouso))", &units);
  while (g_variant_iter_next(units, "(&s&s&s&s&s&s&ou&s&o)", &unit, NULL, NULL, NULL, NULL, NULL,
                             NULL, NULL, NULL, NULL)) {
    QmgrDbusReloadUnit *ru = g_new(QmgrDbusReloadUnit, 1);

    *ru = (QmgrDbusReloadUnit) { .d = req->d, .unit = g_strdup(unit) };
    qmgr_dbus_hold(req->d);     /* the answer is awaited at a stop */
    g_dbus_connection_call(connection, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "ReloadUnit",
                           g_variant_new("(ss)", unit, "replace"), G_VARIANT_TYPE("(o)"),
                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, qmgr_dbus_on_reload_unit, ru);
    n++;
  }
  if (n == 0)
    log_info("reload: systemd runs no %s", QMGR_SMTPD_UNITS);
  qmgr_dbus_request_finish(req);
}

static void
qmgr_dbus_on_systemd_owner(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbusRequest *req = data;
  GDBusConnection *connection = G_DBUS_CONNECTION(source);
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(connection, result, NULL);
  const char *patterns[] = { QMGR_SMTPD_UNITS, NULL };
  const char *states[] = { "active", "reloading", NULL };
  gboolean has_owner = FALSE;

  if (reply)
    g_variant_get(reply, "(b)", &has_owner);
  if (!has_owner) {
    qmgr_dbus_reload_smtpd_pidfiles(req->d);
    qmgr_dbus_request_finish(req);
    return;
  }
  g_dbus_connection_call(connection, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                         "org.freedesktop.systemd1.Manager", "ListUnitsByPatterns",
                         g_variant_new("(^as^as)", states, patterns),
                         G_VARIANT_TYPE("(a(ssssssouso))"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                         qmgr_dbus_on_smtpd_units, req);
}

static gboolean
qmgr_dbus_reload_done(gpointer data)
{
  QmgrDbusRequest *req = data;

  if (req->error) {
    qmgr_dbus_request_finish(req);
    return G_SOURCE_REMOVE;
  }
  g_dbus_connection_call(g_dbus_method_invocation_get_connection(req->invocation),
                         "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "NameHasOwner", g_variant_new("(s)", "org.freedesktop.systemd1"),
                         G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                         qmgr_dbus_on_systemd_owner, req);
  return G_SOURCE_REMOVE;
}

static void
qmgr_dbus_reload_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_in_loop(req->d, qmgr_dbus_reload_loop, qmgr_dbus_reload_done, req);
}

static gboolean
qmgr_dbus_on_reload(PosternManager *object, GDBusMethodInvocation *invocation, gpointer data)
{
  QmgrDbus *d = data;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  qmgr_authz_check(invocation, qmgr_dbus_reload_allowed, qmgr_dbus_request_new(d, invocation),
                   qmgr_dbus_request_free);
  return TRUE;
}

/* ---------------------------------------------------------------- tables */

/* "hash:/path" or "cdb:/path" after an optional "proxy:"; else NULL. */
static const char *
qmgr_dbus_table_path_spec(const char *spec)
{
  if (g_str_has_prefix(spec, "proxy:"))
    spec += strlen("proxy:");
  if ((g_str_has_prefix(spec, "hash:/") || g_str_has_prefix(spec, "cdb:/"))
      && strlen(spec) < QMGR_DBUS_MAX_TEXT)
    return spec;
  return NULL;
}

/* Is spec named by some parameter of config (as a word of its value)?
 * *aliases: by alias_maps or alias_database (aliases(5) syntax). */
static gboolean
qmgr_dbus_table_in_config(const Config *config, const char *spec, gboolean *aliases)
{
  gsize n;
  const ParamDef *defs = param_table(&n);
  gboolean found = FALSE;

  *aliases = FALSE;
  for (gsize i = 0; i < n; i++) {
    g_auto(GStrv) words = config_split_list(config_str(config, defs[i].name));

    for (char **w = words; w && *w; w++) {
      const char *word = qmgr_dbus_table_path_spec(*w);

      if (word && strcmp(word, spec) == 0) {
        found = TRUE;
        if (strcmp(defs[i].name, "alias_maps") == 0 || strcmp(defs[i].name, "alias_database") == 0)
          *aliases = TRUE;
      }
    }
  }
  return found;
}

static void
qmgr_dbus_rebuild_table_thread(QmgrDbusRequest *req)
{
  g_autoptr(GError) error = NULL;

  if (!table_rebuild(req->spec, TABLE_FOLD_CASE | (req->op ? TABLE_ALIAS_SYNTAX : 0), &error)) {
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_TABLE, "%s", error->message);
    return;
  }
  log_info("rebuilt %s", req->spec);
}

static void
qmgr_dbus_rebuild_table_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  gboolean aliases;

  if (!qmgr_dbus_table_in_config(settings->config, req->spec, &aliases)) {
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_VALUE,
                             "%s is not a table of the running configuration", req->spec);
    qmgr_dbus_request_finish(req);
    return;
  }
  req->op = aliases;
  qmgr_dbus_request_in_thread(req, qmgr_dbus_rebuild_table_thread);
}

static gboolean
qmgr_dbus_on_rebuild_table(PosternManager *object, GDBusMethodInvocation *invocation,
                           const char *spec, gpointer data)
{
  QmgrDbus *d = data;
  QmgrDbusRequest *req;
  const char *table;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  table = qmgr_dbus_table_path_spec(spec);
  if (table == NULL) {
    g_autofree char *shown = g_utf8_make_valid(spec, MIN(strlen(spec), 200));
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_VALUE,
                             "\"%s\" is not a hash: or cdb: table with an absolute path", shown);
    qmgr_dbus_request_finish(req);
    return TRUE;
  }
  req->spec = g_strdup(table);
  qmgr_authz_check(invocation, qmgr_dbus_rebuild_table_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

static void
qmgr_dbus_rebuild_aliases_thread(QmgrDbusRequest *req)
{
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  g_auto(GStrv) specs = config_split_list(config_str(settings->config, "alias_database"));
  g_autoptr(GString) errors = g_string_new(NULL);

  for (char **s = specs; s && *s; s++) {
    g_autoptr(GError) error = NULL;
    const char *table = qmgr_dbus_table_path_spec(*s);

    if (table == NULL)
      continue;     /* other types need no compiling, as newaliases */
    if (!table_rebuild(table, TABLE_FOLD_CASE | TABLE_ALIAS_SYNTAX, &error))
      g_string_append_printf(errors, "%s%s", errors->len ? "; " : "", error->message);
    else
      log_info("rebuilt %s", table);
  }
  if (errors->len)
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_TABLE, "%s", errors->str);
}

static void
qmgr_dbus_rebuild_aliases_allowed(gpointer data)
{
  qmgr_dbus_request_in_thread(data, qmgr_dbus_rebuild_aliases_thread);
}

static gboolean
qmgr_dbus_on_rebuild_aliases(PosternManager *object, GDBusMethodInvocation *invocation,
                             gpointer data)
{
  QmgrDbus *d = data;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  qmgr_authz_check(invocation, qmgr_dbus_rebuild_aliases_allowed,
                   qmgr_dbus_request_new(d, invocation), qmgr_dbus_request_free);
  return TRUE;
}

/* ---------------------------------------------------------------- SetParameters, CheckConfiguration */

static void
qmgr_dbus_set_parameters_thread(QmgrDbusRequest *req)
{
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  g_autoptr(GPtrArray) values = g_ptr_array_new();
  GVariantIter iter;
  const char *name, *value;

  g_variant_iter_init(&iter, req->args);
  while (g_variant_iter_next(&iter, "{&s&s}", &name, &value)) {
    g_ptr_array_add(names, (gpointer) name);
    g_ptr_array_add(values, (gpointer) value);
  }
  g_ptr_array_add(names, NULL);
  g_ptr_array_add(values, NULL);
  if (!qmgr_dbus_set_parameters(config_get_dir(settings->config),
                                (const char *const *) names->pdata,
                                (const char *const *) values->pdata, &req->error))
    return;
  log_info("main.cf: %u parameter%s set over D-Bus", names->len - 1, names->len == 2 ? "" : "s");
}

/* main.cf written: the running services reload, as Reload does. */
static void
qmgr_dbus_set_parameters_written(QmgrDbusRequest *req)
{
  if (req->error) {
    qmgr_dbus_request_finish(req);
    return;
  }
  qmgr_dbus_in_loop(req->d, qmgr_dbus_reload_loop, qmgr_dbus_reload_done, req);
}

static void
qmgr_dbus_set_parameters_allowed(gpointer data)
{
  qmgr_dbus_request_in_thread_full(data, qmgr_dbus_set_parameters_thread,
                                   qmgr_dbus_set_parameters_written);
}

static gboolean
qmgr_dbus_on_set_parameters(PosternManager *object, GDBusMethodInvocation *invocation,
                            GVariant *parameters, gpointer data)
{
  QmgrDbus *d = data;
  QmgrDbusRequest *req;
  GVariantIter iter;
  const char *name, *value;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  if (g_variant_n_children(parameters) == 0 || g_variant_n_children(parameters) > 10000) {
    req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_ARGS,
                             "Give between 1 and 10000 parameters");
    qmgr_dbus_request_finish(req);
    return TRUE;
  }
  g_variant_iter_init(&iter, parameters);
  while (g_variant_iter_next(&iter, "{&s&s}", &name, &value)) {
    const char *one[] = { name, NULL };

    if (!qmgr_dbus_known_names(one, &req->error)) {
      qmgr_dbus_request_finish(req);
      return TRUE;
    }
    if (strchr(value, '\n') != NULL || strlen(value) > 100000) {
      req->error = g_error_new(QMGR_DBUS_ERROR, QMGR_DBUS_E_INVALID_VALUE,
                               "%s: a value must be one line of at most 100000 bytes", name);
      qmgr_dbus_request_finish(req);
      return TRUE;
    }
  }
  req->args = g_variant_ref(parameters);
  qmgr_authz_check(invocation, qmgr_dbus_set_parameters_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

static void
qmgr_dbus_check_thread(QmgrDbusRequest *req)
{
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  g_autoptr(GPtrArray) problems = qmgr_dbus_check_configuration(config_get_dir(settings->config),
                                                                &req->error);

  if (problems == NULL)
    return;
  g_ptr_array_add(problems, NULL);
  req->reply = g_variant_ref_sink(g_variant_new("(^as)", (char **) problems->pdata));
}

static void
qmgr_dbus_check_allowed(gpointer data)
{
  qmgr_dbus_request_in_thread(data, qmgr_dbus_check_thread);
}

static gboolean
qmgr_dbus_on_check_configuration(PosternManager *object, GDBusMethodInvocation *invocation,
                                 gpointer data)
{
  QmgrDbus *d = data;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  qmgr_authz_check(invocation, qmgr_dbus_check_allowed, qmgr_dbus_request_new(d, invocation),
                   qmgr_dbus_request_free);
  return TRUE;
}

void
qmgr_dbus_manager_connect(QmgrDbus *d, PosternManager *manager)
{
  g_signal_connect(manager, "handle-get-parameters", G_CALLBACK(qmgr_dbus_on_get_parameters), d);
  g_signal_connect(manager, "handle-set-parameters", G_CALLBACK(qmgr_dbus_on_set_parameters), d);
  g_signal_connect(manager, "handle-check-configuration",
                   G_CALLBACK(qmgr_dbus_on_check_configuration), d);
  g_signal_connect(manager, "handle-reload", G_CALLBACK(qmgr_dbus_on_reload), d);
  g_signal_connect(manager, "handle-rebuild-table", G_CALLBACK(qmgr_dbus_on_rebuild_table), d);
  g_signal_connect(manager, "handle-rebuild-aliases", G_CALLBACK(qmgr_dbus_on_rebuild_aliases), d);
}
