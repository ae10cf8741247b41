/* qmgr-dbus.h - the D-Bus service org.postern.Mail1 of postern-qmgr, as
 * qmgr-main.c sees it.
 *
 * The service runs in a thread of its own with its own GMainContext (GDBus
 * needs one; the queue manager runs on sd-event).  Everything that touches
 * the queue manager's state is handed to the event loop through an
 * eventfd and runs there; the answers come back to the D-Bus thread.  The
 * bus is optional: without one, delivery goes on and the service connects
 * when the bus appears (docs/dbus.md).
 */
#pragma once

#include "qmgr.h"

typedef struct _QmgrDbus QmgrDbus;

typedef struct {
  /* Reloads the queue manager's configuration as SIGHUP does (loop
   * thread); FALSE with the error when the new one does not load (the
   * old one stays). */
  gboolean (*reload)(gpointer data, GError **error);
  gpointer data;
} QmgrDbusHooks;

/* Starts the service for q, whose configuration is settings (a reference
 * is taken).  Loop thread, after signals are blocked (the thread inherits
 * the mask) and before qmgr_queue_start() (q->observer is set here). */
QmgrDbus *qmgr_dbus_start(Qmgr *q, QmgrSettings *settings, const QmgrDbusHooks *hooks,
                          GError **error);

/* The configuration changed (loop thread): takes a reference to
 * settings and emits ConfigurationChanged with the names whose effective
 * value differs from the previous settings. */
void qmgr_dbus_set_settings(QmgrDbus *d, QmgrSettings *settings);

/* Leaves the bus, finishes or abandons the calls in progress (serving
 * their loop-thread parts meanwhile) and joins the thread.  Loop thread,
 * after the event loop has ended; q must still exist. */
void qmgr_dbus_stop(QmgrDbus *d);
