/* qmgr-main.c - postern-qmgr: options, configuration, signals, the loop.
 *
 * Thin: everything else lives in libpostern-qmgr.  SIGHUP loads the
 * configuration again (and reopens the tables) for deliveries that start
 * afterwards; SIGTERM/SIGINT stop scheduling and wait up to
 * QMGR_STOP_TIMEOUT seconds for deliveries in flight.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "pidfile.h"
#include "qmgr-dbus.h"

#define QMGR_PROGRAM "postern-qmgr"
#define QMGR_STOP_TIMEOUT 10
#define QMGR_STATUS_INTERVAL 10

typedef struct {
  sd_event *event;
  Qmgr *qmgr;
  const char *config_dir;
  char **overrides;
  QmgrDbus *dbus;
  gboolean forced_exit;
} QmgrMain;

static void
qmgr_main_log_warnings(const Config *config)
{
  const GPtrArray *warnings = config_warnings(config);

  /* "file:line: warning: text" -> "warning: file:line: text" */
  for (guint i = 0; warnings && i < warnings->len; i++) {
    const char *w = warnings->pdata[i], *tag = strstr(w, ": warning: ");

    if (tag)
      log_warning("%.*s: %s", (int) (tag - w), w, tag + strlen(": warning: "));
    else
      log_warning("%s", w);
  }
}

/* Loads the configuration; NULL with the error logged (fatal at start). */
static QmgrSettings *
qmgr_main_load(QmgrMain *m, GError **error)
{
  Config *config = config_load(m->config_dir, (const char *const *) m->overrides, error);
  QmgrSettings *settings;

  if (config == NULL)
    return NULL;
  qmgr_main_log_warnings(config);
  settings = qmgr_settings_new(config);
  if (settings->aliases_error)
    log_warning("alias_maps: %s; local deliveries are deferred until it can be read",
                settings->aliases_error);
  for (const char *const *e = domain_classes_errors(settings->domains); *e != NULL; e++)
    log_warning("%s; recipients that need it are deferred", *e);
  return settings;
}

/* Loads the configuration again (SIGHUP, D-Bus Reload); the old one
 * stays when the new one does not load. */
static gboolean
qmgr_main_reload(gpointer data, GError **error)
{
  QmgrMain *m = data;
  QmgrSettings *settings;
  gboolean ok;

  sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
  settings = qmgr_main_load(m, error);
  ok = settings != NULL;
  if (!ok) {
    log_error("reload failed, keeping the old configuration: %s", (*error)->message);
  } else {
    if (g_strcmp0(config_str(settings->config, "queue_directory"), m->qmgr->queue_directory))
      log_warning("queue_directory changed; it takes effect at the next start");
    qmgr_scheduler_set_settings(m->qmgr, settings);
    qmgr_smtp_reload();
    if (m->dbus)
      qmgr_dbus_set_settings(m->dbus, settings);
    log_info("reload -- configuration %s", config_get_dir(settings->config));
  }
  sd_notify(0, "READY=1\nSTATUS=Processing the queue");
  return ok;
}

static int
qmgr_main_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
  g_autoptr(GError) error = NULL;

  qmgr_main_reload(userdata, &error);
  return 0;
}

/* STATUS= for systemctl status, every QMGR_STATUS_INTERVAL seconds. */
static int
qmgr_main_on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
  QmgrMain *m = userdata;
  Qmgr *q = m->qmgr;

  if (!q->stopping)
    sd_notifyf(0, "STATUS=%u messages in memory, %u in delivery; %" G_GUINT64_FORMAT
               " delivered, %" G_GUINT64_FORMAT " deferred, %" G_GUINT64_FORMAT " bounced",
               g_hash_table_size(q->messages), q->in_flight, q->n_delivered, q->n_deferred,
               q->n_bounced);
  qmgr_smtp_expire(q->settings);
  sd_event_source_set_time_relative(s, (guint64) QMGR_STATUS_INTERVAL * G_USEC_PER_SEC);
  return 0;
}

static void
qmgr_main_idle(gpointer data)
{
  QmgrMain *m = data;

  sd_event_exit(m->event, 0);
}

static int
qmgr_main_on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
  QmgrMain *m = userdata;

  log_warning("%u deliveries still running after %d s, exiting anyway",
              m->qmgr->in_flight, QMGR_STOP_TIMEOUT);
  m->forced_exit = TRUE;
  sd_event_exit(m->event, 0);
  return 0;
}

static int
qmgr_main_on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
  QmgrMain *m = userdata;

  if (m->qmgr->stopping)
    return 0;
  sd_notify(0, "STOPPING=1\nSTATUS=Waiting for deliveries in flight");
  log_info("terminating on signal %u", si->ssi_signo);
  sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC,
                             (guint64) QMGR_STOP_TIMEOUT * G_USEC_PER_SEC, 0,
                             qmgr_main_on_stop_timeout, m);
  qmgr_scheduler_stop(m->qmgr, qmgr_main_idle, m);
  return 0;
}

/* uid/gid of mail_owner for incoming/; fatal as root without that user. */
static gboolean
qmgr_main_owner(const Config *config, uid_t *uid, gid_t *gid, GError **error)
{
  const char *owner = config_str(config, "mail_owner");
  struct passwd *pw = getpwnam(owner);

  *uid = (uid_t) -1;
  *gid = (gid_t) -1;
  if (pw) {
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
  } else if (geteuid() == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "mail_owner: user \"%s\" does not exist (smtpd runs as it and must write "
                "the queue's incoming/)", owner);
    return FALSE;
  }
  return TRUE;
}

static G_NORETURN void
qmgr_main_fatal(const char *text)
{
  fprintf(stderr, "%s: fatal: %s\n", QMGR_PROGRAM, text);
  exit(1);
}

int
main(int argc, char **argv)
{
  g_autofree char *config_dir = NULL;
  g_auto(GStrv) overrides = NULL;
  gboolean verbose = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir, "Configuration directory", "DIR" },
    { "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &overrides, "Override a parameter", "NAME=VALUE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Debug logging", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("- Postern queue manager");
  g_autoptr(GError) error = NULL;
  QmgrMain m = { 0 };
  QmgrSettings *settings;
  sigset_t mask;
  uid_t owner_uid;
  gid_t owner_gid;
  int r;

  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error))
    qmgr_main_fatal(error->message);
  if (version) {
    printf("%s %s\n", QMGR_PROGRAM, POSTERN_VERSION);
    return 0;
  }
  log_init(QMGR_PROGRAM, FALSE);
  if (verbose)
    log_set_debug(TRUE);
  m.config_dir = config_dir_resolve(config_dir);
  m.overrides = overrides;

  settings = qmgr_main_load(&m, &error);
  if (settings == NULL)
    qmgr_main_fatal(error->message);
  if (!qmgr_main_owner(settings->config, &owner_uid, &owner_gid, &error)
      || !queue_dirs_ensure(config_str(settings->config, "queue_directory"), owner_uid,
                            owner_gid, &error))
    qmgr_main_fatal(error->message);
  {
    /* pid/: postern-smtpd's pid files, which D-Bus Reload signals */
    g_autofree char *pid_dir = g_build_filename(config_str(settings->config, "queue_directory"),
                                                "pid", NULL);
    if (!pidfile_dir_ensure(pid_dir, owner_uid, owner_gid, &error))
      qmgr_main_fatal(error->message);
  }

  tzset();              /* before any thread changes its fsuid */
  privs_init();
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);   /* before any thread exists */
  signal(SIGPIPE, SIG_IGN);

  r = sd_event_default(&m.event);
  if (r < 0)
    qmgr_main_fatal(g_strerror(-r));
  sd_event_add_signal(m.event, NULL, SIGTERM, qmgr_main_on_sigterm, &m);
  sd_event_add_signal(m.event, NULL, SIGINT, qmgr_main_on_sigterm, &m);
  sd_event_add_signal(m.event, NULL, SIGHUP, qmgr_main_on_sighup, &m);
  sd_event_set_watchdog(m.event, TRUE);   /* no-op unless the unit sets WatchdogSec= */

  m.qmgr = qmgr_new(m.event, settings, &error);
  if (m.qmgr == NULL || !qmgr_queue_open(m.qmgr, &error))
    qmgr_main_fatal(error->message);
  {
    /* After the signal mask, before the first scan: the D-Bus thread
     * inherits the mask and observes the queue from the start. */
    QmgrDbusHooks hooks = { .reload = qmgr_main_reload, .data = &m };
    m.dbus = qmgr_dbus_start(m.qmgr, settings, &hooks, &error);
    if (m.dbus == NULL || !qmgr_queue_start(m.qmgr, &error))
      qmgr_main_fatal(error->message);
  }

  log_info("daemon started -- version %s, configuration %s", POSTERN_VERSION, m.config_dir);
  sd_notify(0, "READY=1\nSTATUS=Processing the queue");
  {
    sd_event_source *status = NULL;
    sd_event_add_time_relative(m.event, &status, CLOCK_MONOTONIC,
                               (guint64) QMGR_STATUS_INTERVAL * G_USEC_PER_SEC, G_USEC_PER_SEC,
                               qmgr_main_on_status_timer, &m);
    sd_event_source_set_enabled(status, SD_EVENT_ON);
    sd_event_source_set_floating(status, TRUE);
    sd_event_source_unref(status);
  }
  r = sd_event_loop(m.event);
  if (m.forced_exit) {
    /* Deliveries are stuck in a thread: their files stay in active/ and
     * are taken again at the next start. */
    _exit(0);
  }
  qmgr_dbus_stop(m.dbus);
  log_info("stopped: %" G_GUINT64_FORMAT " delivered, %" G_GUINT64_FORMAT " deferred, %"
           G_GUINT64_FORMAT " bounced", m.qmgr->n_delivered, m.qmgr->n_deferred,
           m.qmgr->n_bounced);
  qmgr_free(m.qmgr);
  sd_event_unref(m.event);
  return r < 0 ? 1 : 0;
}
