/* qmgr-dbus.c - the D-Bus service org.postern.Mail1: its thread, the bus
 * connection and name, the hand-off to the event loop, properties and
 * signals.  The methods are in qmgr-dbus-queue.c and qmgr-dbus-manager.c.
 *
 * Why a thread: GDBus dispatches into a GMainContext and the queue
 * manager runs on sd-event.  Merging the two loops would let a slow
 * D-Bus client or a blocking GLib call stall deliveries; a thread with its
 * own context keeps them apart, and the only way into the queue manager's
 * state is qmgr_dbus_in_loop(): a queue of calls and an eventfd watched by
 * sd-event (the pattern of src/common/workpool.c), whose results come back
 * with g_main_context_invoke().  Delivery results travel the other way as
 * events, drained in order by the D-Bus thread (qmgr-dbus-signals.c, with
 * the properties).
 *
 * The bus is optional: without one (or when it goes away) the service logs
 * one warning and tries again every QMGR_DBUS_RETRY_MS, and mail is
 * delivered all the while.  Properties are updated at most once a
 * second (QMGR_DBUS_TICK_MS), so PropertiesChanged is rate-limited.
 */
#include "qmgr-dbus-private.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define QMGR_DBUS_RETRY_MS 2000
#define QMGR_DBUS_STOP_MS 5000

typedef struct {
  QmgrDbusLoopFunc func;
  GSourceFunc done;
  gpointer data;
} QmgrDbusCall;

static void qmgr_dbus_connect(QmgrDbus *d);

/* ---------------------------------------------------------------- errors */

G_DEFINE_QUARK(qmgr-dbus-error-quark, qmgr_dbus_error)

void
qmgr_dbus_return_error(GDBusMethodInvocation *invocation, const GError *error)
{
  const char *name = QMGR_DBUS_ERROR_FAILED;

  if (error->domain == POSTERN_ERROR) {
    switch ((PosternError) error->code) {
    case POSTERN_ERROR_NOT_FOUND: name = QMGR_DBUS_ERROR_NO_SUCH_MESSAGE; break;
    case POSTERN_ERROR_SYNTAX: name = "org.freedesktop.DBus.Error.InvalidArgs"; break;
    case POSTERN_ERROR_CONFIG: name = QMGR_DBUS_ERROR_INVALID_VALUE; break;
    case POSTERN_ERROR_UNKNOWN_PARAMETER: name = QMGR_DBUS_ERROR_INVALID_PARAMETER; break;
    default: break;
    }
  } else if (error->domain == QMGR_DBUS_ERROR) {
    switch ((QmgrDbusErrorCode) error->code) {
    case QMGR_DBUS_E_INVALID_PARAMETER: name = QMGR_DBUS_ERROR_INVALID_PARAMETER; break;
    case QMGR_DBUS_E_INVALID_VALUE: name = QMGR_DBUS_ERROR_INVALID_VALUE; break;
    case QMGR_DBUS_E_TABLE: name = QMGR_DBUS_ERROR_TABLE; break;
    case QMGR_DBUS_E_INVALID_ARGS: name = "org.freedesktop.DBus.Error.InvalidArgs"; break;
    }
  } else if (error->domain == G_IO_ERROR && error->code == G_IO_ERROR_NOT_SUPPORTED) {
    name = "org.freedesktop.DBus.Error.NotSupported";
  }
  g_dbus_method_invocation_return_dbus_error(invocation, name, error->message);
}

/* ---------------------------------------------------------------- requests */

void
qmgr_dbus_hold(QmgrDbus *d)
{
  d->busy++;
}

void
qmgr_dbus_release(QmgrDbus *d)
{
  g_assert(d->busy > 0);
  if (--d->busy == 0 && d->draining)
    g_main_loop_quit(d->loop);
}

QmgrDbusRequest *
qmgr_dbus_request_new(QmgrDbus *d, GDBusMethodInvocation *invocation)
{
  QmgrDbusRequest *req = g_new0(QmgrDbusRequest, 1);

  req->d = d;
  req->invocation = invocation ? g_object_ref(invocation) : NULL;
  qmgr_dbus_hold(d);
  return req;
}

void
qmgr_dbus_request_free(gpointer data)
{
  QmgrDbusRequest *req = data;
  QmgrDbus *d = req->d;

  g_clear_object(&req->invocation);
  g_strfreev(req->ids);
  g_free(req->id);
  if (req->have_filter)
    qmgr_list_filter_clear(&req->filter);
  g_strfreev(req->names);
  g_free(req->which);
  g_free(req->spec);
  g_clear_pointer(&req->args, g_variant_unref);
  g_clear_pointer(&req->snapshot, g_hash_table_unref);
  g_clear_pointer(&req->scan, qmgr_list_scan_free);
  if (req->stream_slot)
    qmgr_stream_unreserve(d);
  g_clear_pointer(&req->done, g_ptr_array_unref);
  g_clear_pointer(&req->reply, g_variant_unref);
  g_clear_error(&req->error);
  g_free(req);
  qmgr_dbus_release(d);
}

void
qmgr_dbus_request_finish(QmgrDbusRequest *req)
{
  if (req->error)
    qmgr_dbus_return_error(req->invocation, req->error);
  else
    g_dbus_method_invocation_return_value(req->invocation, req->reply);
  qmgr_dbus_request_free(req);
}

typedef struct {
  QmgrDbusRequest *req;
  void (*func)(QmgrDbusRequest *req);
  void (*then)(QmgrDbusRequest *req);
} QmgrDbusThreadJob;

static void
qmgr_dbus_request_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  QmgrDbusThreadJob *job = data;

  job->func(job->req);
  g_task_return_boolean(task, TRUE);
}

static void
qmgr_dbus_request_thread_done(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbusThreadJob *job = data;

  job->then(job->req);
}

void
qmgr_dbus_request_in_thread_full(QmgrDbusRequest *req, void (*func)(QmgrDbusRequest *req),
                                 void (*then)(QmgrDbusRequest *req))
{
  QmgrDbusThreadJob *job = g_new(QmgrDbusThreadJob, 1);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, qmgr_dbus_request_thread_done, job);

  *job = (QmgrDbusThreadJob) { .req = req, .func = func, .then = then };
  g_task_set_task_data(task, job, g_free);
  g_task_run_in_thread(task, qmgr_dbus_request_thread);
}

void
qmgr_dbus_request_in_thread(QmgrDbusRequest *req, void (*func)(QmgrDbusRequest *req))
{
  qmgr_dbus_request_in_thread_full(req, func, qmgr_dbus_request_finish);
}

gboolean
qmgr_dbus_refuse_if_stopping(QmgrDbus *d, GDBusMethodInvocation *invocation)
{
  if (d->draining) {
    g_dbus_method_invocation_return_dbus_error(invocation, QMGR_DBUS_ERROR_FAILED,
                                               "postern-qmgr is stopping");
    return TRUE;
  }
  if (d->busy >= QMGR_DBUS_MAX_BUSY) {
    g_dbus_method_invocation_return_dbus_error(invocation,
                                               "org.freedesktop.DBus.Error.LimitsExceeded",
                                               "Too many requests in progress, try again");
    return TRUE;
  }
  return FALSE;
}

QmgrSettings *
qmgr_dbus_settings(QmgrDbus *d)
{
  QmgrSettings *s;

  g_mutex_lock(&d->lock);
  s = qmgr_settings_ref(d->settings);
  g_mutex_unlock(&d->lock);
  return s;
}

const int *
qmgr_dbus_dir_fds(QmgrDbus *d)
{
  return d->qmgr->dir_fds;    /* set before the thread started; never changes */
}

/* ---------------------------------------------------------------- the hand-off */

void
qmgr_dbus_in_loop(QmgrDbus *d, QmgrDbusLoopFunc func, GSourceFunc done, gpointer data)
{
  QmgrDbusCall *call = g_new(QmgrDbusCall, 1);
  const uint64_t one = 1;

  *call = (QmgrDbusCall) { .func = func, .done = done, .data = data };
  g_mutex_lock(&d->lock);
  g_queue_push_tail(&d->calls, call);
  g_mutex_unlock(&d->lock);
  if (write(d->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    log_warning("D-Bus: cannot wake the event loop: %s", g_strerror(errno));
}

/* Loop thread: runs the queued calls, hands their results back. */
static void
qmgr_dbus_run_calls(QmgrDbus *d)
{
  for (;;) {
    QmgrDbusCall *call;

    g_mutex_lock(&d->lock);
    call = g_queue_pop_head(&d->calls);
    g_mutex_unlock(&d->lock);
    if (call == NULL)
      return;
    call->func(d->qmgr, call->data);
    g_main_context_invoke(d->context, call->done, call->data);
    g_free(call);
  }
}

static int
qmgr_dbus_on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  uint64_t n;

  if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
    log_warning("D-Bus: read eventfd: %s", g_strerror(errno));
  qmgr_dbus_run_calls(userdata);
  return 0;
}

/* ---------------------------------------------------------------- the bus */

static gboolean
qmgr_dbus_on_retry(gpointer data)
{
  QmgrDbus *d = data;

  g_clear_pointer(&d->retry_source, g_source_unref);
  qmgr_dbus_connect(d);
  return G_SOURCE_REMOVE;
}

static void
qmgr_dbus_schedule_retry(QmgrDbus *d)
{
  if (d->retry_source || d->draining)
    return;
  d->retry_source = g_timeout_source_new(QMGR_DBUS_RETRY_MS);
  g_source_set_callback(d->retry_source, qmgr_dbus_on_retry, d, NULL);
  g_source_attach(d->retry_source, d->context);
}

static void
qmgr_dbus_no_bus(QmgrDbus *d, const char *address, const GError *error)
{
  if (!d->warned)
    log_warning("D-Bus: cannot connect to the system bus%s%s: %s; %s is unavailable until "
                "it can (retrying every %d s), mail delivery goes on",
                address ? " at " : "", address ? address : "", error->message,
                QMGR_DBUS_NAME, QMGR_DBUS_RETRY_MS / 1000);
  d->warned = TRUE;
  qmgr_dbus_schedule_retry(d);
}

static void
qmgr_dbus_on_name_acquired(GDBusConnection *connection, const char *name, gpointer data)
{
  QmgrDbus *d = data;

  d->warned = FALSE;
  log_info("D-Bus: acquired the name %s on the system bus", name);
}

static void
qmgr_dbus_on_name_lost(GDBusConnection *connection, const char *name, gpointer data)
{
  QmgrDbus *d = data;

  if (connection == NULL || d->connection == NULL || g_dbus_connection_is_closed(connection))
    return;     /* the connection went away: on_closed deals with it */
  log_warning("D-Bus: cannot own the name %s on the system bus (is its bus policy "
              "org.postern.Mail1.conf installed?); the API is unavailable", name);
}

static void
qmgr_dbus_unexport(QmgrDbus *d, GDBusConnection *connection)
{
  GDBusInterfaceSkeleton *skeletons[] = { G_DBUS_INTERFACE_SKELETON(d->manager),
                                          G_DBUS_INTERFACE_SKELETON(d->queue) };

  for (guint i = 0; i < G_N_ELEMENTS(skeletons); i++)
    if (g_dbus_interface_skeleton_has_connection(skeletons[i], connection))
      g_dbus_interface_skeleton_unexport_from_connection(skeletons[i], connection);
}

/* Leaves the current connection (closed by the bus, or stopping). */
static void
qmgr_dbus_disconnect(QmgrDbus *d)
{
  if (d->connection == NULL)
    return;
  if (d->owner_id)
    g_bus_unown_name(d->owner_id);
  d->owner_id = 0;
  qmgr_dbus_unexport(d, d->connection);
  g_signal_handlers_disconnect_by_data(d->connection, d);
  g_clear_object(&d->connection);
}

static void
qmgr_dbus_on_closed(GDBusConnection *connection, gboolean remote_peer_vanished, GError *error,
                    gpointer data)
{
  QmgrDbus *d = data;

  log_warning("D-Bus: lost the system bus connection%s%s; reconnecting, mail delivery goes on",
              error ? ": " : "", error ? error->message : "");
  qmgr_dbus_disconnect(d);
  d->warned = FALSE;
  qmgr_dbus_schedule_retry(d);
}

static void
qmgr_dbus_on_connected(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbus *d = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = g_dbus_connection_new_for_address_finish(result, &error);

  d->connecting = FALSE;
  if (connection == NULL) {
    qmgr_dbus_no_bus(d, NULL, error);
    qmgr_dbus_release(d);
    return;
  }
  if (d->draining) {
    g_dbus_connection_close_sync(connection, NULL, NULL);
    qmgr_dbus_release(d);
    return;
  }
  g_dbus_connection_set_exit_on_close(connection, FALSE);
  if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->manager), connection,
                                        QMGR_DBUS_PATH, &error)
      || !g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->queue), connection,
                                           QMGR_DBUS_PATH, &error)) {
    log_warning("D-Bus: cannot export %s: %s", QMGR_DBUS_PATH, error->message);
    qmgr_dbus_unexport(d, connection);
    g_dbus_connection_close_sync(connection, NULL, NULL);
    qmgr_dbus_schedule_retry(d);
    qmgr_dbus_release(d);
    return;
  }
  d->connection = g_steal_pointer(&connection);
  g_signal_connect(d->connection, "closed", G_CALLBACK(qmgr_dbus_on_closed), d);
  d->owner_id = g_bus_own_name_on_connection(d->connection, QMGR_DBUS_NAME,
                                             G_BUS_NAME_OWNER_FLAGS_NONE,
                                             qmgr_dbus_on_name_acquired,
                                             qmgr_dbus_on_name_lost, d, NULL);
  qmgr_dbus_release(d);
}

static void
qmgr_dbus_connect(QmgrDbus *d)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  if (d->connection || d->connecting || d->draining)
    return;
  address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
  if (address == NULL) {
    qmgr_dbus_no_bus(d, NULL, error);
    return;
  }
  d->connecting = TRUE;
  qmgr_dbus_hold(d);
  g_dbus_connection_new_for_address(address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                    | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                    NULL, NULL, qmgr_dbus_on_connected, d);
}

/* ---------------------------------------------------------------- the thread */

static gpointer
qmgr_dbus_thread(gpointer data)
{
  QmgrDbus *d = data;
  guint64 zero[4] = { 0 };

  g_main_context_push_thread_default(d->context);
  /* Skeletons made here batch their PropertiesChanged in this context. */
  d->manager = postern_manager_skeleton_new();
  d->queue = postern_queue_skeleton_new();
  postern_manager_set_version(d->manager, POSTERN_VERSION);
  postern_manager_set_started_at(d->manager, (guint64) d->started_at);
  postern_manager_set_counters(d->manager, qmgr_dbus_counters_variant(zero));
  qmgr_dbus_manager_connect(d, d->manager);
  qmgr_dbus_queue_connect(d, d->queue);

  d->tick_source = g_timeout_source_new(QMGR_DBUS_TICK_MS);
  g_source_set_callback(d->tick_source, qmgr_dbus_on_tick, d, NULL);
  g_source_attach(d->tick_source, d->context);
  qmgr_dbus_queue_changed(d);
  qmgr_dbus_connect(d);

  g_main_loop_run(d->loop);

  /* Stopping: requests done (or the deadline passed). */
  if (d->connection) {
    GDBusConnection *c = g_object_ref(d->connection);
    qmgr_dbus_disconnect(d);
    g_dbus_connection_flush_sync(c, NULL, NULL);
    g_dbus_connection_close_sync(c, NULL, NULL);
    g_object_unref(c);
  }
  if (d->retry_source)
    g_source_destroy(d->retry_source);
  g_clear_pointer(&d->retry_source, g_source_unref);
  g_source_destroy(d->tick_source);
  g_clear_pointer(&d->tick_source, g_source_unref);
  if (d->stop_source)
    g_source_destroy(d->stop_source);
  g_clear_pointer(&d->stop_source, g_source_unref);
  qmgr_dbus_drain_events(d);
  /* Whatever is still attached (late GDBus callbacks) runs or is dropped
   * with the context. */
  for (guint i = 0; i < 1000 && g_main_context_iteration(d->context, FALSE); i++)
    ;
  g_clear_object(&d->manager);
  g_clear_object(&d->queue);
  g_clear_pointer(&d->defaults, config_free);
  g_main_context_pop_thread_default(d->context);
  g_atomic_int_set(&d->finished, 1);
  return NULL;
}

QmgrDbus *
qmgr_dbus_start(Qmgr *q, QmgrSettings *settings, const QmgrDbusHooks *hooks, GError **error)
{
  QmgrDbus *d = g_new0(QmgrDbus, 1);
  int r;

  d->qmgr = q;
  d->hooks = *hooks;
  d->started_at = g_get_real_time();
  d->settings = qmgr_settings_ref(settings);
  g_mutex_init(&d->lock);
  g_queue_init(&d->calls);
  g_queue_init(&d->events);
  d->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (d->event_fd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "eventfd: %s", g_strerror(errno));
    qmgr_settings_unref(d->settings);
    g_free(d);
    return NULL;
  }
  r = sd_event_add_io(q->event, &d->event_source, d->event_fd, EPOLLIN, qmgr_dbus_on_eventfd, d);
  if (r < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "sd-event: %s", g_strerror(-r));
    close(d->event_fd);
    qmgr_settings_unref(d->settings);
    g_free(d);
    return NULL;
  }
  d->streams = g_ptr_array_new();
  g_cond_init(&d->streams_cond);
  qmgr_dbus_observer_init(d);
  q->observer = &d->observer;
  d->context = g_main_context_new();
  d->loop = g_main_loop_new(d->context, FALSE);
  d->thread = g_thread_new("dbus", qmgr_dbus_thread, d);
  return d;
}

/* D-Bus thread: no new requests; the loop quits once the last one ends. */
static gboolean
qmgr_dbus_begin_stop(gpointer data)
{
  QmgrDbus *d = data;

  d->draining = TRUE;
  if (d->owner_id)
    g_bus_unown_name(d->owner_id);
  d->owner_id = 0;
  if (d->busy == 0)
    g_main_loop_quit(d->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
qmgr_dbus_on_stop_deadline(gpointer data)
{
  QmgrDbus *d = data;

  log_warning("D-Bus: %u request%s still in progress after %d s, stopping anyway", d->busy,
              d->busy == 1 ? "" : "s", QMGR_DBUS_STOP_MS / 1000);
  g_main_loop_quit(d->loop);
  return G_SOURCE_REMOVE;
}

void
qmgr_dbus_stop(QmgrDbus *d)
{
  struct pollfd pfd = { .fd = d->event_fd, .events = POLLIN };

  if (d == NULL)
    return;
  d->stop_source = g_timeout_source_new(QMGR_DBUS_STOP_MS);
  g_source_set_callback(d->stop_source, qmgr_dbus_on_stop_deadline, d, NULL);
  g_source_attach(d->stop_source, d->context);
  g_main_context_invoke(d->context, qmgr_dbus_begin_stop, d);
  /* Requests in progress may still need their loop part. */
  while (!g_atomic_int_get(&d->finished)) {
    uint64_t n;

    if (poll(&pfd, 1, 50) > 0 && read(d->event_fd, &n, sizeof n) < 0 && errno != EAGAIN)
      break;
    qmgr_dbus_run_calls(d);
  }
  g_thread_join(d->thread);
  qmgr_stream_stop_all(d);
  /* Calls that arrived too late are dropped with their requests. */
  for (QmgrDbusCall *call; (call = g_queue_pop_head(&d->calls)) != NULL;)
    g_free(call);
  g_queue_clear_full(&d->events, qmgr_dbus_event_free);
  d->qmgr->observer = NULL;
  d->event_source = sd_event_source_disable_unref(d->event_source);
  close(d->event_fd);
  g_main_loop_unref(d->loop);
  g_main_context_unref(d->context);
  qmgr_settings_unref(d->settings);
  g_ptr_array_unref(d->streams);
  g_cond_clear(&d->streams_cond);
  g_mutex_clear(&d->lock);
  g_free(d);
}
