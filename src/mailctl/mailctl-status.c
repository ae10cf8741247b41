/* mailctl-status.c - "mailctl status [--json]": what postern-qmgr says
 * about itself (the public properties of org.postern.Mail1.Manager: no
 * authorization needed), and each service's state from systemd
 * (org.freedesktop.systemd1 ListUnitsByNames) when systemd is on the same
 * bus, else "unknown".
 */
#include "mailctl.h"

#include <stdio.h>
#include <string.h>

static const char *const mailctl_status_units[] = {
  "postern-qmgr.service", "postern-smtpd.socket", "postern-smtpd.service", NULL,
};

/* unit -> "active (running)" etc.; NULL when systemd is not on the bus. */
static GHashTable *
mailctl_status_units_state(GDBusConnection *bus)
{
  g_autoptr(GVariant) owner = g_dbus_connection_call_sync(bus, "org.freedesktop.DBus",
                                                          "/org/freedesktop/DBus",
                                                          "org.freedesktop.DBus", "NameHasOwner",
                                                          g_variant_new("(s)", "org.freedesktop.systemd1"),
                                                          G_VARIANT_TYPE("(b)"),
                                                          G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  gboolean has_owner = FALSE;
  const char *name, *load, *active, *sub;
  GHashTable *states;

  if (owner)
    g_variant_get(owner, "(b)", &has_owner);
  if (!has_owner)
    return NULL;
  reply = g_dbus_connection_call_sync(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "ListUnitsByNames",
                                      g_variant_new("(^as)", mailctl_status_units),
                                      G_VARIANT_TYPE("(a(ssssssouso))"), G_DBUS_CALL_FLAGS_NONE,
                                      10000, NULL, NULL);
  if (reply == NULL)
    return NULL;
  states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_variant_get(reply, "(a(ssssssouso))", &iter);
  while (g_variant_iter_next(iter, "(&s&s&s&s&s&s&ou&s&o)", &name, NULL, &load, &active, &sub,
                             NULL, NULL, NULL, NULL, NULL))
    g_hash_table_insert(states, g_strdup(name),
                        strcmp(load, "loaded") != 0 ? g_strdup(load)
                                                    : g_strdup_printf("%s (%s)", active, sub));
  return states;
}

int
mailctl_status_main(const MailctlOptions *opts, int argc, char **argv)
{
  static const char *const props[] = { "Version", "StartedAt", "QueueCounts", "Counters" };
  gboolean json = opts->json;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GHashTable) units = NULL;
  GVariant *values[G_N_ELEMENTS(props)] = { NULL };
  int status = MAILCTL_EXIT_OK;

  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = TRUE;
    } else {
      mailctl_fail("status: unexpected argument \"%s\"", argv[i]);
      fputs("usage: mailctl status [--json]\n", stderr);
      return MAILCTL_EXIT_USAGE;
    }
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  for (guint i = 0; i < G_N_ELEMENTS(props) && status == MAILCTL_EXIT_OK; i++)
    values[i] = mailctl_bus_get_property(bus, MAILCTL_IFACE_MANAGER, props[i], &status);
  units = mailctl_status_units_state(bus);
  if (status != MAILCTL_EXIT_OK) {
    for (guint i = 0; i < G_N_ELEMENTS(props); i++)
      g_clear_pointer(&values[i], g_variant_unref);
    return status;
  }
  if (json) {
    GVariantBuilder b, u;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "version", values[0]);
    g_variant_builder_add(&b, "{sv}", "started-at", values[1]);
    g_variant_builder_add(&b, "{sv}", "queue", values[2]);
    g_variant_builder_add(&b, "{sv}", "counters", values[3]);
    g_variant_builder_init(&u, G_VARIANT_TYPE("a{ss}"));
    for (const char *const *n = mailctl_status_units; *n; n++) {
      const char *state = units ? g_hash_table_lookup(units, *n) : NULL;
      g_variant_builder_add(&u, "{ss}", *n, state ? state : "unknown");
    }
    g_variant_builder_add(&b, "{sv}", "units", g_variant_builder_end(&u));
    g_autoptr(GVariant) all = g_variant_ref_sink(g_variant_builder_end(&b));
    mailctl_json_print(all);
  } else {
    char when[64];
    GVariantIter iter;
    const char *key;
    guint32 count;
    guint64 n;

    mailctl_format_time(when, sizeof when, g_variant_get_uint64(values[1]), TRUE);
    printf("postern-qmgr %s, running since %s\n", g_variant_get_string(values[0], NULL), when);
    printf("Queue:");
    g_variant_iter_init(&iter, values[2]);
    while (g_variant_iter_next(&iter, "{&su}", &key, &count))
      printf(" %s %u", key, count);
    printf("\nCounters:");
    g_variant_iter_init(&iter, values[3]);
    while (g_variant_iter_next(&iter, "{&st}", &key, &n))
      printf(" %s %" G_GUINT64_FORMAT, key, n);
    printf("\n");
    for (const char *const *u = mailctl_status_units; *u; u++) {
      const char *state = units ? g_hash_table_lookup(units, *u) : NULL;
      printf("%-22s %s\n", *u, state ? state : "unknown");
    }
  }
  for (guint i = 0; i < G_N_ELEMENTS(props); i++)
    g_variant_unref(values[i]);
  return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_FAILED;
}
