/* mailctl-bus.c - mailctl's connection to org.postern.Mail1 and what a
 * D-Bus error means to the person at the terminal.
 *
 * The bus: --bus-address ADDR, or -H [USER@]HOST (ssh to HOST and talk
 * to its system bus through systemd-stdio-bridge, as busctl -H does),
 * else the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the default socket).
 * Calls allow interactive authorization (polkit may ask an agent) when
 * standard input is a terminal, unless --no-ask-password, as systemctl,
 * which also starts a textual agent (pkttyagent) for callers other than
 * root.
 * Errors become one line on stderr and an exit status (mailctl.h).
 */
#include "mailctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#define MAILCTL_BUS_NAME "org.postern.Mail1"
#define MAILCTL_BUS_PATH "/org/postern/Mail1"

/* Spawns "ssh -xT -- HOST systemd-stdio-bridge" on one end of a
 * socketpair and speaks D-Bus over the other. */
static GDBusConnection *
mailctl_bus_ssh(const char *host, GError **error)
{
  const char *ssh = g_getenv("MAILCTL_SSH");
  int sv[2];
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) stream = NULL;
  const char *argv[] = { ssh && *ssh ? ssh : "ssh", "-xT", "--", host, "systemd-stdio-bridge",
                         NULL };
  gint fds[2];

  if (host[0] == '-' || host[0] == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad host name \"%s\"", host);
    return NULL;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socketpair: %s",
                g_strerror(errno));
    return NULL;
  }
  fds[0] = sv[1];
  fds[1] = sv[1];
  if (!g_spawn_async_with_pipes_and_fds(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                        -1, -1, -1, fds, (const gint[]) { 0, 1 }, 2, NULL,
                                        NULL, NULL, NULL, error)) {
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  close(sv[1]);
  socket = g_socket_new_from_fd(sv[0], error);
  if (socket == NULL) {
    close(sv[0]);
    return NULL;
  }
  stream = g_socket_connection_factory_create_connection(socket);
  return g_dbus_connection_new_sync(G_IO_STREAM(stream), NULL,
                                    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                    | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                    NULL, NULL, error);
}

GDBusConnection *
mailctl_bus_connect(const MailctlOptions *opts)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  GDBusConnection *connection;

  if (opts->host) {
    connection = mailctl_bus_ssh(opts->host, &error);
    if (connection == NULL)
      mailctl_fail("cannot reach the system bus of %s: %s", opts->host, error->message);
    return connection;
  }
  address = opts->bus_address ? g_strdup(opts->bus_address)
                              : g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
  if (address == NULL) {
    mailctl_fail("no system bus: %s", error->message);
    return NULL;
  }
  connection = g_dbus_connection_new_for_address_sync(address,
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                                      | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, &error);
  if (connection == NULL)
    mailctl_fail("cannot connect to the bus at %s: %s; is the system bus running?", address,
                 error->message);
  return connection;
}

/* The exit status and message for a failed call. */
int
mailctl_bus_error(const GError *error)
{
  g_autofree char *name = g_dbus_error_get_remote_error(error);
  g_autofree char *text = g_strdup(error->message);

  if (name) {
    g_autoptr(GError) copy = g_error_copy(error);
    g_dbus_error_strip_remote_error(copy);
    g_free(text);
    text = g_strdup(copy->message);
  }
  if (name == NULL) {
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED)) {
      mailctl_fail("the bus connection closed: %s", text);
      return MAILCTL_EXIT_NOT_RUNNING;
    }
    mailctl_fail("%s", text);
    return MAILCTL_EXIT_FAILED;
  }
  if (strcmp(name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0
      || strcmp(name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
    mailctl_fail("postern-qmgr is not running (%s has no owner on the bus)", MAILCTL_BUS_NAME);
    return MAILCTL_EXIT_NOT_RUNNING;
  }
  if (strcmp(name, "org.freedesktop.DBus.Error.AccessDenied") == 0
      || strcmp(name, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") == 0)
    mailctl_fail("access denied: %s", text);
  else if (strcmp(name, "org.postern.Mail1.Error.NoSuchMessage") == 0)
    mailctl_fail("%s", text);
  else if (strcmp(name, "org.postern.Mail1.Error.InvalidParameter") == 0)
    mailctl_fail("invalid parameter: %s", text);
  else if (strcmp(name, "org.postern.Mail1.Error.InvalidValue") == 0)
    mailctl_fail("invalid value: %s", text);
  else if (strcmp(name, "org.postern.Mail1.Error.TableError") == 0)
    mailctl_fail("table error: %s", text);
  else if (strcmp(name, "org.freedesktop.DBus.Error.InvalidArgs") == 0)
    mailctl_fail("invalid arguments: %s", text);
  else if (strcmp(name, "org.freedesktop.DBus.Error.NotSupported") == 0)
    mailctl_fail("not supported: %s", text);
  else if (strcmp(name, "org.freedesktop.DBus.Error.NoReply") == 0
           || strcmp(name, "org.freedesktop.DBus.Error.Timeout") == 0)
    mailctl_fail("no answer from postern-qmgr: %s", text);
  else
    mailctl_fail("%s (%s)", text, name);
  return MAILCTL_EXIT_FAILED;
}

/* ---------------------------------------------------------------- the polkit agent */

/* As systemctl does: before a call that may ask for a password, a caller
 * that is not root and sits at a terminal gets a textual polkit agent
 * (pkttyagent --fallback) as a child, for as long as mailctl runs, so that
 * polkit's auth_admin(_keep) can ask for the password right there.  The
 * agent closes its notify fd once it is registered; an agent that cannot
 * register (no login session, no polkitd) exits, and the call goes on. */
#define MAILCTL_AGENT_PATH "/usr/bin/pkttyagent"
#define MAILCTL_AGENT_READY_MS 10000

static GPid mailctl_agent_pid;

static void
mailctl_agent_close(void)
{
  if (mailctl_agent_pid <= 0)
    return;
  kill(mailctl_agent_pid, SIGTERM);
  while (waitpid(mailctl_agent_pid, NULL, 0) < 0 && errno == EINTR)
    ;
  mailctl_agent_pid = 0;
}

static void
mailctl_agent_open(void)
{
  const char *path = g_getenv("MAILCTL_POLKIT_AGENT");
  const char *argv[] = { NULL, "--notify-fd", "3", "--fallback", NULL };
  struct pollfd pfd = { .events = POLLIN };
  g_autoptr(GError) error = NULL;
  int notify[2];

  if (mailctl_agent_pid > 0 || geteuid() == 0)
    return;
  argv[0] = path && *path ? path : MAILCTL_AGENT_PATH;
  if (access(argv[0], X_OK) != 0 || pipe2(notify, O_CLOEXEC) < 0)
    return;
  if (!g_spawn_async_with_pipes_and_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                        -1, -1, -1, (const gint[]) { notify[1] },
                                        (const gint[]) { 3 }, 1, &mailctl_agent_pid, NULL, NULL,
                                        NULL, &error)) {
    mailctl_agent_pid = 0;
    close(notify[0]);
    close(notify[1]);
    return;
  }
  close(notify[1]);
  atexit(mailctl_agent_close);
  /* Ready when it closes (or writes to) its end; gone on failure. */
  pfd.fd = notify[0];
  while (poll(&pfd, 1, MAILCTL_AGENT_READY_MS) < 0 && errno == EINTR)
    ;
  close(notify[0]);
}

GVariant *
mailctl_bus_call_full(GDBusConnection *connection, const MailctlOptions *opts,
                      const char *interface, const char *method, GVariant *args,
                      const char *reply_type, GUnixFDList **out_fds, GError **error)
{
  gboolean interactive = !opts->no_ask_password && isatty(STDIN_FILENO);

  if (interactive)
    mailctl_agent_open();

  return g_dbus_connection_call_with_unix_fd_list_sync(connection, MAILCTL_BUS_NAME,
                                                       MAILCTL_BUS_PATH, interface, method, args,
                                                       reply_type ? G_VARIANT_TYPE(reply_type)
                                                                  : NULL,
                                                       interactive
                                                       ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
                                                       : G_DBUS_CALL_FLAGS_NONE,
                                                       interactive ? G_MAXINT
                                                                   : MAILCTL_CALL_TIMEOUT_MS,
                                                       NULL, out_fds, NULL, error);
}

GVariant *
mailctl_bus_call(GDBusConnection *connection, const MailctlOptions *opts, const char *interface,
                 const char *method, GVariant *args, const char *reply_type, int *status)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply = mailctl_bus_call_full(connection, opts, interface, method, args, reply_type,
                                          NULL, &error);

  if (reply == NULL)
    *status = mailctl_bus_error(error);
  else
    *status = MAILCTL_EXIT_OK;
  return reply;
}

GVariant *
mailctl_bus_get_property(GDBusConnection *connection, const char *interface, const char *name,
                         int *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync(connection, MAILCTL_BUS_NAME,
                                                          MAILCTL_BUS_PATH,
                                                          "org.freedesktop.DBus.Properties", "Get",
                                                          g_variant_new("(ss)", interface, name),
                                                          G_VARIANT_TYPE("(v)"),
                                                          G_DBUS_CALL_FLAGS_NONE,
                                                          MAILCTL_CALL_TIMEOUT_MS, NULL, &error);
  GVariant *value = NULL;

  if (reply == NULL) {
    *status = mailctl_bus_error(error);
    return NULL;
  }
  g_variant_get(reply, "(v)", &value);
  *status = MAILCTL_EXIT_OK;
  return value;
}
