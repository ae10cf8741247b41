/* smtpd-main.c - postern-smtpd: arguments, configuration, listeners,
 * privilege drop, signals and the event loop.  Everything else lives in
 * libpostern-smtpd (src/smtpd/smtpd-*.c).
 *
 *   postern-smtpd [--config-dir DIR] [-o name=value]... [--listen NAME=ADDR:PORT|NAME=/path]... [-v]
 *
 * Exit codes: 0 clean stop, 1 configuration or start-up error, 2 no
 * listeners / bad usage.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "listeners.h"
#include "log.h"
#include "pidfile.h"
#include "smtpd.h"

#define SHUTDOWN_GRACE_US (10 * G_USEC_PER_SEC)

typedef struct {
  const char *config_dir;
  char **overrides;
  SmtpdServer *server;
} Daemon;

static void G_GNUC_NORETURN G_GNUC_PRINTF(2, 3)
die(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "postern-smtpd: fatal: %s\n", msg);
  g_free(msg);
  exit(code);
}

static void
log_config_warnings(const SmtpdSettings *settings)
{
  const GPtrArray *w = config_warnings(settings->config);
  for (guint i = 0; w != NULL && i < w->len; i++)
    log_warning("%s", (const char *)w->pdata[i]);
}

/* A listener from socket activation or --listen. */
typedef struct {
  int fd;
  SmtpdListenerKind kind;
} Listen;

/* Takes the sockets systemd passed, then binds the --listen ones. */
static GArray *
collect_listeners(char **listen)
{
  GArray *out = g_array_new(FALSE, FALSE, sizeof(Listen));
  g_autoptr(GError) error = NULL;
  GArray *found = listeners_collect(listen, &error);

  if (found == NULL)
    die(error->code == POSTERN_ERROR_CONFIG ? 2 : 1, "%s", error->message);
  for (guint i = 0; i < found->len; i++) {
    const Listener *f = &g_array_index(found, Listener, i);
    Listen l = { .fd = f->fd, .kind = SMTPD_LISTENER_SMTP };

    if (smtpd_listener_kind_parse(f->name, &l.kind))
      ;
    else if (f->activated)
      log_warning("socket-activated fd %d has unknown name \"%s\", serving it as smtp", l.fd,
                  f->name);
    else
      die(2, "--listen %s=...: unknown listener name (smtp, submission, smtps, local)", f->name);
    g_array_append_val(out, l);
  }
  listeners_free(found);
  return out;
}

/* Without socket activation or --listen: the smtp service on port 25 of
 * each inet_interfaces address, as Postfix's master.cf "smtp inet" line
 * ("all" and "loopback-only" as in Postfix, filtered by inet_protocols). */
static void
default_listeners(const SmtpdSettings *st, GArray *out)
{
  const char *const *ifaces = config_list(st->config, "inet_interfaces");
  const char *const *protos = config_list(st->config, "inet_protocols");
  gboolean v4 = FALSE, v6 = FALSE;
  g_autoptr(GPtrArray) addrs = g_ptr_array_new_with_free_func(g_free);

  for (; protos != NULL && *protos != NULL; protos++) {
    v4 |= g_ascii_strcasecmp(*protos, "all") == 0 || g_ascii_strcasecmp(*protos, "ipv4") == 0;
    v6 |= g_ascii_strcasecmp(*protos, "all") == 0 || g_ascii_strcasecmp(*protos, "ipv6") == 0;
  }
  for (; ifaces != NULL && *ifaces != NULL; ifaces++) {
    const char *a = *ifaces;
    if (g_ascii_strcasecmp(a, "all") == 0) {
      if (v4)
        g_ptr_array_add(addrs, g_strdup("0.0.0.0:25"));
      if (v6)
        g_ptr_array_add(addrs, g_strdup("[::]:25"));
    } else if (g_ascii_strcasecmp(a, "loopback-only") == 0) {
      if (v4)
        g_ptr_array_add(addrs, g_strdup("127.0.0.1:25"));
      if (v6)
        g_ptr_array_add(addrs, g_strdup("[::1]:25"));
    } else if (strchr(a, ':') != NULL && a[0] != '[') {
      g_ptr_array_add(addrs, g_strdup_printf("[%s]:25", a));
    } else {
      g_ptr_array_add(addrs, g_strdup_printf("%s:25", a));
    }
  }
  for (guint i = 0; i < addrs->len; i++) {
    g_autoptr(GError) error = NULL;
    Listen l = { .kind = SMTPD_LISTENER_SMTP };
    l.fd = listeners_bind(addrs->pdata[i], &error);
    if (l.fd < 0)
      die(1, "inet_interfaces: %s", error->message);
    g_array_append_val(out, l);
  }
}

/* $queue_directory/pid/smtpd.PID.pid, kept locked while we run, so that
 * postern-qmgr's D-Bus Reload can find us (pidfile.h).  Made before the
 * privilege drop; a failure only costs that.  Returns the path or NULL. */
static char *
write_pidfile(const SmtpdSettings *st)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_build_filename(st->queue_directory, "pid", NULL);
  g_autofree char *name = g_strdup_printf("smtpd.%ld.pid", (long) getpid());
  char *path = g_build_filename(dir, name, NULL);
  struct passwd *pw = geteuid() == 0 ? getpwnam(st->mail_owner) : NULL;

  if (geteuid() == 0 && (pw == NULL || !pidfile_dir_ensure(dir, pw->pw_uid, pw->pw_gid, &error))) {
    log_warning("cannot make %s: %s; D-Bus Reload will not reach this process, ignoring", dir,
                error ? error->message : "no mail_owner");
    g_free(path);
    return NULL;
  }
  if (pidfile_create(path, &error) < 0) {
    log_warning("cannot write the pid file: %s; D-Bus Reload will not reach this process, "
                "ignoring", error->message);
    g_free(path);
    return NULL;
  }
  return path;
}

/* As root: prepare the queue (and the pid file in it), then become
 * mail_owner for good.  Returns the pid file's path or NULL. */
static char *
drop_privileges(const SmtpdSettings *st)
{
  g_autoptr(GError) error = NULL;
  if (geteuid() != 0) {
    /* Started unprivileged (systemd's User=): a queue that belongs to
     * root is used as it is, never chowned; a developer's own queue
     * directory is completed as before. */
    struct stat qst;
    gboolean ok = stat(st->queue_directory, &qst) == 0 && qst.st_uid != geteuid()
        ? queue_dirs_check_writable(st->queue_directory, &error)
        : queue_dirs_ensure(st->queue_directory, (uid_t)-1, (gid_t)-1, &error);
    if (!ok)
      die(1, "%s", error->message);
    return write_pidfile(st);
  }
  struct passwd *pw = getpwnam(st->mail_owner);
  if (pw == NULL)
    die(1, "mail_owner user \"%s\" does not exist; create it (useradd -r -M -d /nonexistent "
        "-s /usr/sbin/nologin %s) or set mail_owner", st->mail_owner, st->mail_owner);
  if (pw->pw_uid == 0)
    die(1, "mail_owner \"%s\" must not be root", st->mail_owner);
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (!queue_dirs_ensure(st->queue_directory, uid, gid, &error))
    die(1, "%s", error->message);
  char *pidfile = write_pidfile(st);
  if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
    die(1, "cannot drop privileges to %s: %s", st->mail_owner, g_strerror(errno));
  if (setuid(0) == 0)
    die(1, "privileges could not be dropped");
  return pidfile;
}

static int
on_sighup(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
  Daemon *d = userdata;
  g_autoptr(GError) error = NULL;
  sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
  g_autoptr(SmtpdSettings) settings =
      smtpd_settings_load(d->config_dir, (const char *const *)d->overrides, &error);
  if (settings == NULL) {
    log_error("reload failed, keeping the old configuration: %s", error->message);
  } else {
    log_config_warnings(settings);
    smtpd_server_set_settings(d->server, settings);
    log_info("reloaded configuration from %s", d->config_dir);
  }
  sd_notify(0, "READY=1\nSTATUS=Accepting connections");
  return 0;
}

static int
on_sigterm(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata)
{
  Daemon *d = userdata;
  sd_notify(0, "STOPPING=1\nSTATUS=Finishing transactions");
  log_info("terminating on signal %d", (int)si->ssi_signo);
  smtpd_server_stop(d->server, SHUTDOWN_GRACE_US);
  return 0;
}

int
main(int argc, char **argv)
{
  g_autofree char *config_dir = NULL;
  g_auto(GStrv) overrides = NULL;
  g_auto(GStrv) listen = NULL;
  gboolean verbose = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir,
      "Configuration directory (default $POSTERN_CONFIG_DIR or /etc/postern)", "DIR" },
    { "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &overrides,
      "Override a main.cf parameter (repeatable)", "NAME=VALUE" },
    { "listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen,
      "Listen without socket activation: smtp|submission|smtps|local=ADDR:PORT or =/path",
      "NAME=ADDR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- Postern SMTP server");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error))
    die(2, "%s", error->message);
  if (version) {
    printf("postern-smtpd %s\n", POSTERN_VERSION);
    return 0;
  }

  log_init("postern-smtpd", FALSE);
  listeners_raise_fd_limit();
  if (verbose)
    log_set_debug(TRUE);

  Daemon d = { .config_dir = config_dir_resolve(config_dir), .overrides = overrides };
  g_autoptr(SmtpdSettings) settings =
      smtpd_settings_load(d.config_dir, (const char *const *)overrides, &error);
  if (settings == NULL)
    die(1, "%s", error->message);
  log_config_warnings(settings);

  g_autoptr(GArray) listeners = collect_listeners(listen);
  if (listeners->len == 0)
    default_listeners(settings, listeners);
  if (listeners->len == 0)
    die(2, "no listeners: start postern-smtpd from its socket units, pass "
        "--listen NAME=ADDR:PORT (e.g. --listen smtp=127.0.0.1:2525), or set inet_interfaces");

  g_autofree char *pidfile = drop_privileges(settings);

  /* Signals are blocked before any worker thread exists, so only the
   * event loop's signalfd sees them. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);

  sd_event *event = NULL;
  int r = sd_event_default(&event);
  if (r < 0)
    die(1, "sd_event_default: %s", g_strerror(-r));
  sd_event_set_watchdog(event, TRUE);
  sd_event_add_signal(event, NULL, SIGHUP, on_sighup, &d);
  sd_event_add_signal(event, NULL, SIGTERM, on_sigterm, &d);
  sd_event_add_signal(event, NULL, SIGINT, on_sigterm, &d);

  d.server = smtpd_server_new(event, settings, &error);
  if (d.server == NULL)
    die(1, "%s", error->message);
  for (guint i = 0; i < listeners->len; i++) {
    Listen *l = &g_array_index(listeners, Listen, i);
    if (l->kind == SMTPD_LISTENER_SMTPS && settings->tls == NULL)
      log_warning("smtps listener (fd %d): TLS is not available (set smtpd_tls_cert_file); "
                  "its connections are closed", l->fd);
    /* The local listener identifies its users by SO_PEERCRED. */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (l->kind == SMTPD_LISTENER_LOCAL &&
        (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_UNIX))
      die(1, "the local listener (fd %d) must be a unix socket: sendmail submits there and "
          "smtpd learns the user from its credentials", l->fd);
    if (!smtpd_server_add_listener(d.server, l->fd, l->kind, &error))
      die(1, "%s", error->message);
  }

  log_info("daemon started -- version %s, configuration %s", POSTERN_VERSION, d.config_dir);
  sd_notify(0, "READY=1\nSTATUS=Accepting connections");
  r = sd_event_loop(event);

  smtpd_server_free(d.server);
  sd_event_unref(event);
  if (pidfile)
    unlink(pidfile);
  log_info("stopped");
  return r < 0 ? 1 : 0;
}
