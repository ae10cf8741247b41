/* qmgr-authz.c - the bouncer: which polkit action guards each D-Bus
 * method, and the check itself.
 *
 * Deny by default: a method that is not in the table is refused, so a
 * method added to the XML stays closed until someone decides its action.
 * A caller with uid 0 is allowed without asking polkit (systemd's
 * bus-polkit.c does the same for privileged callers), so root can manage
 * the queue even where polkitd is not running.  Everyone else is checked
 * with org.freedesktop.PolicyKit1.Authority.CheckAuthorization, subject
 * = the caller's unique bus name, asynchronously (the D-Bus thread keeps
 * serving others meanwhile); AllowUserInteraction only when the caller
 * set ALLOW_INTERACTIVE_AUTHORIZATION on its message.  Any failure to ask
 * is a denial.  Properties need no authorization and never come here.
 */
#include "qmgr-dbus-private.h"

#include <string.h>

#include "log.h"

#define QMGR_AUTHZ_READ_QUEUE   "org.postern.mail.read-queue"
#define QMGR_AUTHZ_MANAGE_QUEUE "org.postern.mail.manage-queue"
#define QMGR_AUTHZ_CONFIGURE    "org.postern.mail.configure"

#define QMGR_IFACE_MANAGER "org.postern.Mail1.Manager"
#define QMGR_IFACE_QUEUE   "org.postern.Mail1.Queue"

/* polkit's CheckAuthorization flag */
#define QMGR_POLKIT_ALLOW_USER_INTERACTION 1u

static const struct {
  const char *interface;
  const char *method;
  const char *action;
} qmgr_authz_table[] = {
  { QMGR_IFACE_QUEUE, "ListMessages", QMGR_AUTHZ_READ_QUEUE },
  { QMGR_IFACE_QUEUE, "StreamMessages", QMGR_AUTHZ_READ_QUEUE },
  { QMGR_IFACE_QUEUE, "GetMessage", QMGR_AUTHZ_READ_QUEUE },
  { QMGR_IFACE_QUEUE, "DeleteMessages", QMGR_AUTHZ_MANAGE_QUEUE },
  { QMGR_IFACE_QUEUE, "HoldMessages", QMGR_AUTHZ_MANAGE_QUEUE },
  { QMGR_IFACE_QUEUE, "ReleaseMessages", QMGR_AUTHZ_MANAGE_QUEUE },
  { QMGR_IFACE_QUEUE, "RequeueMessages", QMGR_AUTHZ_MANAGE_QUEUE },
  { QMGR_IFACE_QUEUE, "Flush", QMGR_AUTHZ_MANAGE_QUEUE },
  { QMGR_IFACE_MANAGER, "GetParameters", QMGR_AUTHZ_CONFIGURE },
  { QMGR_IFACE_MANAGER, "SetParameters", QMGR_AUTHZ_CONFIGURE },
  { QMGR_IFACE_MANAGER, "CheckConfiguration", QMGR_AUTHZ_CONFIGURE },
  { QMGR_IFACE_MANAGER, "Reload", QMGR_AUTHZ_CONFIGURE },
  { QMGR_IFACE_MANAGER, "RebuildTable", QMGR_AUTHZ_CONFIGURE },
  { QMGR_IFACE_MANAGER, "RebuildAliases", QMGR_AUTHZ_CONFIGURE },
};

const char *
qmgr_authz_action(const char *interface, const char *method)
{
  for (guint i = 0; i < G_N_ELEMENTS(qmgr_authz_table); i++)
    if (g_strcmp0(qmgr_authz_table[i].interface, interface) == 0
        && g_strcmp0(qmgr_authz_table[i].method, method) == 0)
      return qmgr_authz_table[i].action;
  return NULL;
}

typedef struct {
  GDBusMethodInvocation *invocation;
  gboolean interactive;       /* the caller set ALLOW_INTERACTIVE_AUTHORIZATION */
  const char *action;
  QmgrAuthzAllowed allowed;
  gpointer data;
  GDestroyNotify destroy;
  guint32 uid;
} QmgrAuthzCheck;

static void
qmgr_authz_free(QmgrAuthzCheck *check)
{
  g_object_unref(check->invocation);
  g_free(check);
}

static void
qmgr_authz_allow(QmgrAuthzCheck *check)
{
  check->allowed(check->data);
  qmgr_authz_free(check);
}

static void
qmgr_authz_deny(QmgrAuthzCheck *check, const char *why)
{
  const char *method = g_dbus_method_invocation_get_method_name(check->invocation);

  log_info("D-Bus: %s denied to uid %u (%s): %s", method, check->uid,
           g_dbus_method_invocation_get_sender(check->invocation),
           check->action ? check->action : "no polkit action");
  g_dbus_method_invocation_return_dbus_error(check->invocation,
                                             "org.freedesktop.DBus.Error.AccessDenied", why);
  if (check->destroy)
    check->destroy(check->data);
  qmgr_authz_free(check);
}

static void
qmgr_authz_on_polkit(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrAuthzCheck *check = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result,
                                                            &error);
  g_autofree char *why = NULL;
  gboolean authorized = FALSE, challenge = FALSE;

  if (reply == NULL) {
    g_dbus_error_strip_remote_error(error);
    why = g_strdup_printf("Access denied: cannot ask polkit about %s: %s", check->action,
                          error->message);
    qmgr_authz_deny(check, why);
    return;
  }
  g_variant_get(reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
  if (authorized) {
    qmgr_authz_allow(check);
    return;
  }
  /* polkit answers "challenge" when authenticating would help; with
   * interaction allowed that means no agent was there to ask. */
  if (challenge && check->interactive)
    why = g_strdup_printf("Access denied: %s needs authentication and no polkit "
                          "authentication agent answered", check->action);
  else if (challenge)
    why = g_strdup_printf("Interactive authentication required for %s", check->action);
  else
    why = g_strdup_printf("Access denied: not authorized for %s", check->action);
  qmgr_authz_deny(check, why);
}

static void
qmgr_authz_on_uid(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrAuthzCheck *check = data;
  GDBusConnection *connection = G_DBUS_CONNECTION(source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(connection, result, &error);
  gboolean interactive = check->interactive;
  GVariantBuilder subject;

  if (reply == NULL) {
    g_autofree char *why = g_strdup_printf("Access denied: cannot identify the caller: %s",
                                           error->message);
    check->uid = G_MAXUINT32;
    qmgr_authz_deny(check, why);
    return;
  }
  g_variant_get(reply, "(u)", &check->uid);
  if (check->uid == 0) {
    qmgr_authz_allow(check);
    return;
  }
  g_variant_builder_init(&subject, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&subject, "{sv}", "name",
                        g_variant_new_string(g_dbus_method_invocation_get_sender(check->invocation)));
  g_dbus_connection_call(connection, "org.freedesktop.PolicyKit1",
                         "/org/freedesktop/PolicyKit1/Authority",
                         "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                         g_variant_new("((sa{sv})s@a{ss}us)", "system-bus-name", &subject,
                                       check->action,
                                       g_variant_new_array(G_VARIANT_TYPE("{ss}"), NULL, 0),
                                       interactive ? QMGR_POLKIT_ALLOW_USER_INTERACTION : 0u, ""),
                         G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
                         interactive ? G_MAXINT : -1, NULL, qmgr_authz_on_polkit, check);
}

void
qmgr_authz_check(GDBusMethodInvocation *invocation, QmgrAuthzAllowed allowed, gpointer data,
                 GDestroyNotify destroy)
{
  QmgrAuthzCheck *check = g_new0(QmgrAuthzCheck, 1);

  check->invocation = g_object_ref(invocation);
  check->interactive = (g_dbus_message_get_flags(g_dbus_method_invocation_get_message(invocation))
                        & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
  check->action = qmgr_authz_action(g_dbus_method_invocation_get_interface_name(invocation),
                                    g_dbus_method_invocation_get_method_name(invocation));
  check->allowed = allowed;
  check->data = data;
  check->destroy = destroy;
  check->uid = G_MAXUINT32;
  if (check->action == NULL) {
    qmgr_authz_deny(check, "Access denied: this method has no polkit action");
    return;
  }
  g_dbus_connection_call(g_dbus_method_invocation_get_connection(invocation),
                         "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "GetConnectionUnixUser",
                         g_variant_new("(s)", g_dbus_method_invocation_get_sender(invocation)),
                         G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                         qmgr_authz_on_uid, check);
}
