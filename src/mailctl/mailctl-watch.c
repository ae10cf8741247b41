/* mailctl-watch.c - "mailctl watch [--json] [--count N]": follows the
 * signals of org.postern.Mail1 and prints one line each, until
 * interrupted (or after N signals).
 *
 * Lines read like Postfix's log: "ID: queued, from=<s>, size=N, nrcpt=K",
 * "ID: to=<r>, status=sent (text)", "... status=deferred (reason)",
 * "... status=bounced (reason)", "configuration changed: a, b".  With
 * --json each line is an object {"signal": NAME, ARG: value, ...} with
 * the argument names of the interface XML.  The service going away and
 * coming back is reported on stderr; watching goes on.
 */
#include "mailctl.h"

#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  gboolean json;
  gint64 left;            /* signals still to print; < 0: no limit */
  int status;
  gboolean seen_owner;
} MailctlWatch;

/* The argument names of each signal (dbus/org.postern.Mail1.xml). */
static const struct {
  const char *signal;
  const char *args[5];
} mailctl_watch_args[] = {
  { "MessageQueued", { "id", "sender", "recipients", "size", NULL } },
  { "MessageDelivered", { "id", "recipient", "status", NULL } },
  { "MessageDeferred", { "id", "recipient", "reason", NULL } },
  { "MessageBounced", { "id", "recipient", "reason", NULL } },
  { "ConfigurationChanged", { "names", NULL } },
};

static void
mailctl_watch_json(const char *signal, GVariant *params)
{
  g_autoptr(GString) out = g_string_new("{\"signal\":");
  guint k;

  mailctl_json_append(out, g_variant_new_string(signal));
  for (k = 0; k < G_N_ELEMENTS(mailctl_watch_args); k++)
    if (strcmp(mailctl_watch_args[k].signal, signal) == 0)
      break;
  for (gsize i = 0; i < g_variant_n_children(params); i++) {
    g_autoptr(GVariant) arg = g_variant_get_child_value(params, i);
    const char *name = k < G_N_ELEMENTS(mailctl_watch_args) && i < 4
                       ? mailctl_watch_args[k].args[i] : NULL;
    g_autofree char *fallback = g_strdup_printf("arg%" G_GSIZE_FORMAT, i);

    g_string_append_c(out, ',');
    mailctl_json_append(out, g_variant_new_string(name ? name : fallback));
    g_string_append_c(out, ':');
    mailctl_json_append(out, arg);
  }
  g_string_append(out, "}\n");
  fputs(out->str, stdout);
}

static void
mailctl_watch_text(const char *signal, GVariant *params)
{
  const char *id, *who, *text;

  if (strcmp(signal, "MessageQueued") == 0 && g_variant_is_of_type(params, G_VARIANT_TYPE("(ssast)"))) {
    g_autofree const char **rcpts = NULL;
    guint64 size;

    g_variant_get(params, "(&s&s^a&st)", &id, &who, &rcpts, &size);
    printf("%s: queued, from=<%s>, size=%" G_GUINT64_FORMAT ", nrcpt=%u\n", id, who, size,
           g_strv_length((char **) rcpts));
  } else if (g_variant_is_of_type(params, G_VARIANT_TYPE("(sss)"))
             && g_str_has_prefix(signal, "Message")) {
    const char *status = strcmp(signal, "MessageDelivered") == 0 ? "sent"
                         : strcmp(signal, "MessageDeferred") == 0 ? "deferred" : "bounced";

    g_variant_get(params, "(&s&s&s)", &id, &who, &text);
    printf("%s: to=<%s>, status=%s (%s)\n", id, who, status, text);
  } else if (strcmp(signal, "ConfigurationChanged") == 0
             && g_variant_is_of_type(params, G_VARIANT_TYPE("(as)"))) {
    g_autofree const char **names = NULL;
    g_autofree char *joined = NULL;

    g_variant_get(params, "(^a&s)", &names);
    joined = g_strjoinv(", ", (char **) names);
    printf("configuration changed: %s\n", *joined ? joined : "(no effective value changed)");
  } else {
    g_autofree char *args = g_variant_print(params, FALSE);
    printf("%s %s\n", signal, args);
  }
}

static void
mailctl_watch_on_signal(GDBusConnection *bus, const char *sender, const char *path,
                        const char *interface, const char *signal, GVariant *params,
                        gpointer data)
{
  MailctlWatch *w = data;

  if (w->json)
    mailctl_watch_json(signal, params);
  else
    mailctl_watch_text(signal, params);
  fflush(stdout);
  if (w->left > 0 && --w->left == 0)
    g_main_loop_quit(w->loop);
}

static void
mailctl_watch_on_appeared(GDBusConnection *bus, const char *name, const char *owner, gpointer data)
{
  MailctlWatch *w = data;

  if (w->seen_owner)
    fprintf(stderr, "mailctl: %s is back (%s)\n", name, owner);
  w->seen_owner = TRUE;
}

static void
mailctl_watch_on_vanished(GDBusConnection *bus, const char *name, gpointer data)
{
  MailctlWatch *w = data;

  if (bus == NULL || g_dbus_connection_is_closed(bus)) {
    mailctl_fail("the bus connection closed");
    w->status = MAILCTL_EXIT_NOT_RUNNING;
    g_main_loop_quit(w->loop);
    return;
  }
  fprintf(stderr, "mailctl: %s has no owner (postern-qmgr is not running); waiting\n", name);
  w->seen_owner = TRUE;
}

static gboolean
mailctl_watch_on_stop(gpointer data)
{
  MailctlWatch *w = data;

  g_main_loop_quit(w->loop);
  return G_SOURCE_CONTINUE;
}

int
mailctl_watch_main(const MailctlOptions *opts, int argc, char **argv)
{
  MailctlWatch w = { .json = opts->json, .left = -1, .status = MAILCTL_EXIT_OK };
  g_autoptr(GDBusConnection) bus = NULL;
  guint sub, watch;

  for (int i = 0; i < argc; i++) {
    gint64 n;

    if (strcmp(argv[i], "--json") == 0) {
      w.json = TRUE;
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc
               && g_ascii_string_to_signed(argv[i + 1], 10, 1, G_MAXINT64, &n, NULL)) {
      w.left = n;
      i++;
    } else {
      mailctl_fail("watch: unexpected argument \"%s\"", argv[i]);
      fputs("usage: mailctl watch [--json] [--count N]\n", stderr);
      return MAILCTL_EXIT_USAGE;
    }
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  g_dbus_connection_set_exit_on_close(bus, FALSE);
  w.loop = g_main_loop_new(NULL, FALSE);
  sub = g_dbus_connection_signal_subscribe(bus, "org.postern.Mail1", NULL, NULL,
                                           "/org/postern/Mail1", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                           mailctl_watch_on_signal, &w, NULL);
  watch = g_bus_watch_name_on_connection(bus, "org.postern.Mail1", G_BUS_NAME_WATCHER_FLAGS_NONE,
                                         mailctl_watch_on_appeared, mailctl_watch_on_vanished, &w,
                                         NULL);
  {
    /* A round trip after AddMatch: from here on no signal is missed. */
    g_autoptr(GVariant) id = g_dbus_connection_call_sync(bus, "org.freedesktop.DBus",
                                                         "/org/freedesktop/DBus",
                                                         "org.freedesktop.DBus", "GetId", NULL,
                                                         NULL, G_DBUS_CALL_FLAGS_NONE, 10000,
                                                         NULL, NULL);
    (void) id;
  }
  fprintf(stderr, "mailctl: watching org.postern.Mail1 (Ctrl-C to stop)\n");
  g_unix_signal_add(SIGINT, mailctl_watch_on_stop, &w);
  g_unix_signal_add(SIGTERM, mailctl_watch_on_stop, &w);
  g_main_loop_run(w.loop);
  g_bus_unwatch_name(watch);
  g_dbus_connection_signal_unsubscribe(bus, sub);
  g_main_loop_unref(w.loop);
  return w.status;
}
