/* qmgr-dbus-signals.c - what the D-Bus service tells without being
 * asked: the signals (MessageQueued, MessageDelivered, MessageDeferred,
 * MessageBounced, ConfigurationChanged) and the properties QueueCounts
 * and Counters.
 *
 * Delivery results arrive through the queue manager's observer
 * (qmgr.h), in worker threads and in the loop thread, in the order of each
 * message's life; they are queued under the service's lock and drained,
 * in that order, by the D-Bus thread, which emits them.  The properties
 * are refreshed by a tick in the D-Bus thread, at most once a second, so
 * PropertiesChanged is rate-limited: counters copied by the loop thread,
 * queue counts recounted (snapshot in the loop, directories read in a pool
 * thread) only after something changed.
 */
#include "qmgr-dbus-private.h"

#include <string.h>

typedef enum {
  QMGR_DBUS_EV_QUEUED,
  QMGR_DBUS_EV_DELIVERED,
  QMGR_DBUS_EV_DEFERRED,
  QMGR_DBUS_EV_BOUNCED,
  QMGR_DBUS_EV_CONFIG,
} QmgrDbusEventKind;

typedef struct {
  QmgrDbusEventKind kind;
  char *id;
  char *text;                 /* sender, recipient */
  char *reason;
  char **list;                /* recipients, parameter names */
  guint64 size;
} QmgrDbusEvent;

/* ---------------------------------------------------------------- events */

void
qmgr_dbus_event_free(gpointer data)
{
  QmgrDbusEvent *ev = data;

  g_free(ev->id);
  g_free(ev->text);
  g_free(ev->reason);
  g_strfreev(ev->list);
  g_free(ev);
}

static void
qmgr_dbus_emit(QmgrDbus *d, const QmgrDbusEvent *ev)
{
  switch (ev->kind) {
  case QMGR_DBUS_EV_QUEUED:
    postern_queue_emit_message_queued(d->queue, ev->id, ev->text,
                                      (const char *const *) ev->list, ev->size);
    break;
  case QMGR_DBUS_EV_DELIVERED:
    postern_queue_emit_message_delivered(d->queue, ev->id, ev->text, ev->reason);
    break;
  case QMGR_DBUS_EV_DEFERRED:
    postern_queue_emit_message_deferred(d->queue, ev->id, ev->text, ev->reason);
    break;
  case QMGR_DBUS_EV_BOUNCED:
    postern_queue_emit_message_bounced(d->queue, ev->id, ev->text, ev->reason);
    break;
  case QMGR_DBUS_EV_CONFIG:
    postern_manager_emit_configuration_changed(d->manager, (const char *const *) ev->list);
    break;
  }
}

/* D-Bus thread: emits the queued events in the order they were posted. */
gboolean
qmgr_dbus_drain_events(gpointer data)
{
  QmgrDbus *d = data;
  GQueue events;

  g_mutex_lock(&d->lock);
  events = d->events;
  g_queue_init(&d->events);
  d->events_scheduled = FALSE;
  g_mutex_unlock(&d->lock);
  for (QmgrDbusEvent *ev; (ev = g_queue_pop_head(&events)) != NULL;) {
    if (d->connection)
      qmgr_dbus_emit(d, ev);
    qmgr_dbus_event_free(ev);
  }
  return G_SOURCE_REMOVE;
}

/* Any thread. */
static void
qmgr_dbus_post(QmgrDbus *d, QmgrDbusEvent *ev)
{
  gboolean wake;

  g_mutex_lock(&d->lock);
  g_queue_push_tail(&d->events, ev);
  wake = !d->events_scheduled;
  d->events_scheduled = TRUE;
  g_mutex_unlock(&d->lock);
  if (wake)
    g_main_context_invoke(d->context, qmgr_dbus_drain_events, d);
}

/* D-Bus strings must be UTF-8; addresses and status texts may not be. */
static char *
qmgr_dbus_utf8(const char *text)
{
  return g_utf8_make_valid(text ? text : "", -1);
}

static void
qmgr_dbus_on_queued(gpointer data, const char *id, const QueueEnvelope *env)
{
  QmgrDbusEvent *ev = g_new0(QmgrDbusEvent, 1);

  ev->kind = QMGR_DBUS_EV_QUEUED;
  ev->id = g_strdup(id);
  ev->text = qmgr_dbus_utf8(env->sender);
  ev->list = g_new0(char *, env->recipients->len + 1);
  for (guint i = 0; i < env->recipients->len; i++)
    ev->list[i] = qmgr_dbus_utf8(((QueueRecipient *) env->recipients->pdata[i])->address);
  ev->size = (guint64) env->content_size;
  qmgr_dbus_post(data, ev);
}

static void
qmgr_dbus_on_recipient(gpointer data, const char *id, const char *recipient, DeliveryKind kind,
                       const char *text)
{
  QmgrDbusEvent *ev = g_new0(QmgrDbusEvent, 1);

  ev->kind = kind == DELIVERY_SENT ? QMGR_DBUS_EV_DELIVERED
             : kind == DELIVERY_BOUNCE ? QMGR_DBUS_EV_BOUNCED : QMGR_DBUS_EV_DEFERRED;
  ev->id = g_strdup(id);
  ev->text = qmgr_dbus_utf8(recipient);
  ev->reason = qmgr_dbus_utf8(text);
  qmgr_dbus_post(data, ev);
}

void
qmgr_dbus_queue_changed(QmgrDbus *d)
{
  g_atomic_int_set(&d->queue_dirty, 1);
}

/* Loop thread: the counters are the loop's; copy them for the tick. */
static void
qmgr_dbus_on_changed(gpointer data)
{
  QmgrDbus *d = data;
  Qmgr *q = d->qmgr;

  g_mutex_lock(&d->lock);
  d->counters[0] = q->n_received;
  d->counters[1] = q->n_delivered;
  d->counters[2] = q->n_deferred;
  d->counters[3] = q->n_bounced;
  d->counters_dirty = TRUE;
  g_mutex_unlock(&d->lock);
  qmgr_dbus_queue_changed(d);
}

void
qmgr_dbus_observer_init(QmgrDbus *d)
{
  d->observer = (QmgrObserver) {
    .message_queued = qmgr_dbus_on_queued,
    .recipient_done = qmgr_dbus_on_recipient,
    .changed = qmgr_dbus_on_changed,
    .data = d,
  };
}

/* ---------------------------------------------------------------- properties */

GVariant *
qmgr_dbus_counters_variant(const guint64 counters[4])
{
  static const char *const names[] = { "received", "delivered", "deferred", "bounced" };
  GVariantBuilder b;

  g_variant_builder_init(&b, G_VARIANT_TYPE("a{st}"));
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    g_variant_builder_add(&b, "{st}", names[i], counters[i]);
  return g_variant_builder_end(&b);
}

static void
qmgr_dbus_count_loop(Qmgr *q, gpointer data)
{
  QmgrDbusRequest *req = data;

  req->snapshot = qmgr_admin_snapshot(q);
}

static void
qmgr_dbus_count_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  QmgrDbusRequest *req = data;

  req->reply = g_variant_ref_sink(qmgr_list_counts(qmgr_dbus_dir_fds(req->d), req->snapshot));
  g_task_return_boolean(task, TRUE);
}

static void
qmgr_dbus_count_done(GObject *source, GAsyncResult *result, gpointer data)
{
  QmgrDbusRequest *req = g_task_get_task_data(G_TASK(result));
  QmgrDbus *d = req->d;

  postern_manager_set_queue_counts(d->manager, req->reply);
  d->recounting = FALSE;
}

static gboolean
qmgr_dbus_count_start(gpointer data)
{
  QmgrDbusRequest *req = data;
  g_autoptr(GTask) task = g_task_new(NULL, NULL, qmgr_dbus_count_done, NULL);

  g_task_set_task_data(task, req, qmgr_dbus_request_free);
  g_task_run_in_thread(task, qmgr_dbus_count_thread);
  return G_SOURCE_REMOVE;
}

/* Every QMGR_DBUS_TICK_MS: counters, and a recount of the queue after a
 * change (snapshot in the loop, directories read in a GTask thread). */
gboolean
qmgr_dbus_on_tick(gpointer data)
{
  QmgrDbus *d = data;
  guint64 counters[4];
  gboolean dirty;

  g_mutex_lock(&d->lock);
  memcpy(counters, d->counters, sizeof counters);
  dirty = d->counters_dirty;
  d->counters_dirty = FALSE;
  g_mutex_unlock(&d->lock);
  if (dirty)
    postern_manager_set_counters(d->manager, qmgr_dbus_counters_variant(counters));
  if (!d->recounting && !d->draining && g_atomic_int_compare_and_exchange(&d->queue_dirty, 1, 0)) {
    d->recounting = TRUE;
    qmgr_dbus_in_loop(d, qmgr_dbus_count_loop, qmgr_dbus_count_start,
                      qmgr_dbus_request_new(d, NULL));
  }
  return G_SOURCE_CONTINUE;
}

/* Names whose effective value differs between two configurations. */
static char **
qmgr_dbus_config_diff(const Config *old, const Config *new)
{
  GPtrArray *names = g_ptr_array_new();
  gsize n;
  const ParamDef *defs = param_table(&n);

  for (gsize i = 0; i < n; i++)
    if (g_strcmp0(config_str(old, defs[i].name), config_str(new, defs[i].name)) != 0)
      g_ptr_array_add(names, g_strdup(defs[i].name));
  g_ptr_array_add(names, NULL);
  return (char **) g_ptr_array_free(names, FALSE);
}

void
qmgr_dbus_set_settings(QmgrDbus *d, QmgrSettings *settings)
{
  QmgrDbusEvent *ev = g_new0(QmgrDbusEvent, 1);
  QmgrSettings *old;

  g_mutex_lock(&d->lock);
  old = d->settings;
  d->settings = qmgr_settings_ref(settings);
  g_mutex_unlock(&d->lock);
  ev->kind = QMGR_DBUS_EV_CONFIG;
  ev->list = qmgr_dbus_config_diff(old->config, settings->config);
  qmgr_settings_unref(old);
  qmgr_dbus_post(d, ev);
}
