/* qmgr-scheduler.c - the in-memory message list and the delivery threads.
 *
 * Loop thread only.  Messages wait in a FIFO; at most two per delivery
 * thread are handed to the WorkPool at a time, so SIGTERM can stop
 * scheduling at once and the waiting list stays ours.  A delivery that
 * waits on a remote server or a command (workpool_blocking_begin) does not
 * hold a thread's place: the pool stands another thread in, up to
 * default_process_limit more, and more messages are handed over.  The list is
 * bounded (QMGR_ACTIVE_LIMIT); files beyond it stay on disk and are
 * picked up by a rescan once the list has drained to half.
 */
#include "qmgr.h"

#include <errno.h>
#include <unistd.h>

#include "log.h"

static void
qmgr_message_free(gpointer data)
{
  QmgrMessage *msg = data;

  qmgr_settings_unref(msg->settings);
  g_free(msg);
}

gint64
qmgr_backoff(gint64 minimal, gint64 maximal, guint attempts)
{
  gint64 delay = MAX(minimal, 1);

  /* minimal * 2^(attempts-1), without overflowing on the way. */
  for (guint i = 1; i < attempts && delay < maximal; i++)
    delay = delay > maximal / 2 ? maximal : delay * 2;
  return CLAMP(delay, minimal, MAX(minimal, maximal));
}

/* Stand-ins for deliveries that wait: one per SMTP client process. */
static void
qmgr_scheduler_set_threads(Qmgr *q, const QmgrSettings *settings)
{
  workpool_set_max_threads(q->pool, q->n_threads
                                    + (guint) config_int(settings->config, "default_process_limit"));
}

static void
qmgr_scheduler_on_blocked(gpointer data)
{
  qmgr_scheduler_kick(data);
}

Qmgr *
qmgr_new(sd_event *event, QmgrSettings *settings, GError **error)
{
  g_autofree Qmgr *q = g_new0(Qmgr, 1);

  q->n_threads = (guint) config_int(settings->config, "qmgr_delivery_threads");
  q->pool = workpool_new(event, q->n_threads, error);
  if (q->pool == NULL)
    return NULL;
  qmgr_scheduler_set_threads(q, settings);
  workpool_set_blocked_callback(q->pool, qmgr_scheduler_on_blocked, q);
  q->event = sd_event_ref(event);
  q->settings = settings;
  q->queue_directory = g_strdup(config_str(settings->config, "queue_directory"));
  q->messages = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, qmgr_message_free);
  g_queue_init(&q->waiting);
  q->active_limit = QMGR_ACTIVE_LIMIT;
  q->inotify_fd = -1;
  q->deferred_next = G_MAXINT64;
  for (guint i = 0; i < QUEUE_N_DIRS; i++)
    q->dir_fds[i] = -1;
  return g_steal_pointer(&q);
}

void
qmgr_free(Qmgr *q)
{
  if (q == NULL)
    return;
  workpool_free(q->pool);
  qmgr_queue_close(q);
  g_queue_clear(&q->waiting);
  g_hash_table_unref(q->messages);
  qmgr_settings_unref(q->settings);
  sd_event_unref(q->event);
  g_free(q->queue_directory);
  g_free(q);
}

guint
qmgr_scheduler_room(const Qmgr *q)
{
  guint n = g_hash_table_size(q->messages);

  return n >= q->active_limit ? 0 : q->active_limit - n;
}

gboolean
qmgr_scheduler_add(Qmgr *q, const char *id, QueueDir dir)
{
  QmgrMessage *msg;

  if (g_hash_table_contains(q->messages, id))
    return TRUE;
  if (qmgr_scheduler_room(q) == 0)
    return FALSE;
  msg = g_new0(QmgrMessage, 1);
  g_strlcpy(msg->id, id, sizeof msg->id);
  msg->dir = dir;
  msg->dir_fds = q->dir_fds;
  g_hash_table_insert(q->messages, msg->id, msg);
  g_queue_push_tail(&q->waiting, msg);
  if (q->observer)
    q->observer->changed(q->observer->data);
  return TRUE;
}

/* done(): back in the loop thread with the attempt's outcome. */
static void
qmgr_scheduler_done(gpointer data)
{
  QmgrMessage *msg = data;
  Qmgr *q = msg->qmgr;
  char id[QUEUE_ID_MAX + 1];
  QueueDir dir;
  gboolean again;

  q->in_flight--;
  q->n_received += msg->received;
  q->n_delivered += msg->n_delivered;
  q->n_deferred += msg->n_deferred;
  q->n_bounced += msg->n_bounced;
  if (msg->outcome == QMGR_OUTCOME_DEFERRED
      || (msg->outcome == QMGR_OUTCOME_ERROR && msg->dir == QUEUE_DEFERRED))
    qmgr_queue_note_deferred(q, msg->next_try);
  /* Other errors leave the file in incoming/ (the periodic scan finds
   * it again) or active/ (taken at the next start). */
  again = msg->admin != 0 && qmgr_admin_after_attempt(q, msg);
  g_strlcpy(id, msg->id, sizeof id);
  dir = msg->dir;
  g_hash_table_remove(q->messages, msg->id);
  if (q->observer)
    q->observer->changed(q->observer->data);
  if (again && !q->stopping)
    qmgr_scheduler_add(q, id, dir);

  if (q->stopping) {
    if (q->in_flight == 0 && q->on_idle)
      q->on_idle(q->on_idle_data);
    return;
  }
  if ((q->incoming_backlog || q->deferred_backlog)
      && g_hash_table_size(q->messages) <= q->active_limit / 2) {
    if (q->incoming_backlog)
      qmgr_queue_scan_incoming(q);
    if (q->deferred_backlog)
      qmgr_queue_scan_deferred(q);
  }
  qmgr_scheduler_kick(q);
}

void
qmgr_scheduler_kick(Qmgr *q)
{
  QmgrMessage *msg;

  guint limit = 2 * q->n_threads + (q->waiting.length > 0 ? workpool_blocked(q->pool) : 0);

  while (!q->stopping && q->in_flight < limit
         && (msg = g_queue_pop_head(&q->waiting)) != NULL) {
    msg->settings = qmgr_settings_ref(q->settings);
    msg->qmgr = q;
    msg->in_flight = TRUE;
    q->in_flight++;
    workpool_submit(q->pool, (WorkFunc) qmgr_deliver_message, qmgr_scheduler_done, msg);
  }
}

void
qmgr_scheduler_set_settings(Qmgr *q, QmgrSettings *settings)
{
  qmgr_settings_unref(q->settings);
  q->settings = settings;
  qmgr_scheduler_set_threads(q, settings);
}

void
qmgr_scheduler_stop(Qmgr *q, void (*on_idle)(gpointer), gpointer data)
{
  q->stopping = TRUE;
  qmgr_smtp_stop();
  q->on_idle = on_idle;
  q->on_idle_data = data;
  if (q->in_flight == 0 && on_idle)
    on_idle(data);
}

void
qmgr_scheduler_forget(Qmgr *q, gboolean (*drop)(QmgrMessage *msg, gpointer data), gpointer data)
{
  GList *link = q->waiting.head;

  while (link != NULL) {
    GList *next = link->next;
    QmgrMessage *msg = link->data;

    if (drop(msg, data)) {
      g_queue_delete_link(&q->waiting, link);
      g_hash_table_remove(q->messages, msg->id);
    }
    link = next;
  }
}
