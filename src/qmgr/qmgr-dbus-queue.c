/* qmgr-dbus-queue.c - the methods of org.postern.Mail1.Queue.
 *
 * Each one in hostnamed's order: validate the arguments (InvalidArgs
 * before anything else), authorize (qmgr-authz.c), then act: the part
 * that touches the queue manager runs in the loop thread
 * (qmgr-admin.c), reading queue files and fsyncing directories runs in
 * a pool thread, and the reply leaves from the D-Bus thread.  A
 * changing operation replies only after the directories it changed are
 * synced, so what the client was told survives a crash.
 */
#include "qmgr-dbus-private.h"

#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "dirsync.h"

/* ---------------------------------------------------------------- validation */

/* The ids of a changing method: one or more queue ids, or "ALL" alone;
 * duplicates dropped. */
static gboolean
qmgr_dbus_queue_ids(QmgrDbusRequest *req, const char *const *ids, GError **error)
{
  guint n = g_strv_length((char **) ids);
  g_autoptr(GHashTable) seen = NULL;
  GPtrArray *out;

  if (n == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "No queue ids given");
    return FALSE;
  }
  if (n > QMGR_DBUS_MAX_IDS) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "More than %d queue ids",
                QMGR_DBUS_MAX_IDS);
    return FALSE;
  }
  if (n == 1 && strcmp(ids[0], "ALL") == 0) {
    req->all = TRUE;
    return TRUE;
  }
  seen = g_hash_table_new(g_str_hash, g_str_equal);
  out = g_ptr_array_new();
  for (guint i = 0; i < n; i++) {
    if (!queue_id_is_valid(ids[i])) {
      g_autofree char *shown = g_utf8_make_valid(ids[i], MIN(strlen(ids[i]), 64));
      if (strcmp(ids[i], "ALL") == 0)
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "\"ALL\" must be the only id");
      else
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, "\"%s\" is not a queue id", shown);
      g_ptr_array_free(out, TRUE);
      return FALSE;
    }
    if (g_hash_table_add(seen, (gpointer) ids[i]))
      g_ptr_array_add(out, g_strdup(ids[i]));
  }
  g_ptr_array_add(out, NULL);
  req->ids = (char **) g_ptr_array_free(out, FALSE);
  return TRUE;
}

/* Replies the validation error and frees req; always TRUE (handled). */
static gboolean
qmgr_dbus_queue_invalid(QmgrDbusRequest *req, GError *error)
{
  req->error = error;
  qmgr_dbus_request_finish(req);
  return TRUE;
}

/* ---------------------------------------------------------------- changing methods */

static void
qmgr_dbus_queue_op_loop(Qmgr *q, gpointer data)
{
  QmgrDbusRequest *req = data;

  req->done = qmgr_admin_apply(q, (QmgrAdminOp) req->op, (const char *const *) req->ids,
                               req->all, &req->dirs_changed, &req->error);
}

/* Pool thread: makes the renames and unlinks durable, builds the reply. */
static void
qmgr_dbus_queue_op_sync(QmgrDbusRequest *req)
{
  const int *fds = qmgr_dbus_dir_fds(req->d);

  for (guint dir = 0; dir < QUEUE_N_DIRS; dir++) {
    g_autoptr(GError) error = NULL;

    if ((req->dirs_changed & (1u << dir)) && !dirsync_fsync(fds[dir], queue_dir_name(dir), &error)
        && req->error == NULL)
      req->error = g_steal_pointer(&error);
  }
  if (req->error == NULL) {
    g_ptr_array_add(req->done, NULL);
    req->reply = g_variant_ref_sink(g_variant_new("(^as)", (char **) req->done->pdata));
  }
}

static gboolean
qmgr_dbus_queue_op_done(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_queue_changed(req->d);
  if (req->error)
    qmgr_dbus_request_finish(req);
  else
    qmgr_dbus_request_in_thread(req, qmgr_dbus_queue_op_sync);
  return G_SOURCE_REMOVE;
}

static void
qmgr_dbus_queue_op_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_in_loop(req->d, qmgr_dbus_queue_op_loop, qmgr_dbus_queue_op_done, req);
}

static gboolean
qmgr_dbus_queue_op(QmgrDbus *d, GDBusMethodInvocation *invocation, const char *const *ids,
                   QmgrAdminOp op)
{
  QmgrDbusRequest *req;
  GError *error = NULL;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  req->op = op;
  if (!qmgr_dbus_queue_ids(req, ids, &error))
    return qmgr_dbus_queue_invalid(req, error);
  qmgr_authz_check(invocation, qmgr_dbus_queue_op_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

static gboolean
qmgr_dbus_on_delete(PosternQueue *object, GDBusMethodInvocation *invocation,
                    const char *const *ids, gpointer data)
{
  return qmgr_dbus_queue_op(data, invocation, ids, QMGR_ADMIN_DELETE);
}

static gboolean
qmgr_dbus_on_hold(PosternQueue *object, GDBusMethodInvocation *invocation,
                  const char *const *ids, gpointer data)
{
  return qmgr_dbus_queue_op(data, invocation, ids, QMGR_ADMIN_HOLD);
}

static gboolean
qmgr_dbus_on_release(PosternQueue *object, GDBusMethodInvocation *invocation,
                     const char *const *ids, gpointer data)
{
  return qmgr_dbus_queue_op(data, invocation, ids, QMGR_ADMIN_RELEASE);
}

static gboolean
qmgr_dbus_on_requeue(PosternQueue *object, GDBusMethodInvocation *invocation,
                     const char *const *ids, gpointer data)
{
  return qmgr_dbus_queue_op(data, invocation, ids, QMGR_ADMIN_REQUEUE);
}

/* ---------------------------------------------------------------- Flush */

static void
qmgr_dbus_flush_loop(Qmgr *q, gpointer data)
{
  qmgr_admin_flush(q);
}

static gboolean
qmgr_dbus_flush_done(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_queue_changed(req->d);
  qmgr_dbus_request_finish(req);
  return G_SOURCE_REMOVE;
}

static void
qmgr_dbus_flush_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_in_loop(req->d, qmgr_dbus_flush_loop, qmgr_dbus_flush_done, req);
}

static gboolean
qmgr_dbus_on_flush(PosternQueue *object, GDBusMethodInvocation *invocation, gpointer data)
{
  QmgrDbus *d = data;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  qmgr_authz_check(invocation, qmgr_dbus_flush_allowed, qmgr_dbus_request_new(d, invocation),
                   qmgr_dbus_request_free);
  return TRUE;
}

/* ---------------------------------------------------------------- reading */

static void
qmgr_dbus_snapshot_loop(Qmgr *q, gpointer data)
{
  QmgrDbusRequest *req = data;

  req->snapshot = qmgr_admin_snapshot(q);
}

/* The listing and the entry come back as full references; the reply
 * tuple takes its own, so ours are dropped here (g_autoptr). */
static void
qmgr_dbus_list_read(QmgrDbusRequest *req)
{
  g_autoptr(GVariant) messages = qmgr_list_messages(qmgr_dbus_dir_fds(req->d), req->snapshot,
                                                    &req->filter, &req->error);

  if (messages)
    req->reply = g_variant_ref_sink(g_variant_new_tuple(&messages, 1));
}

static void
qmgr_dbus_get_read(QmgrDbusRequest *req)
{
  g_autoptr(QmgrSettings) settings = qmgr_dbus_settings(req->d);
  gsize limit = (gsize) config_size(settings->config, "header_size_limit");
  g_autoptr(GVariant) message = qmgr_list_get(qmgr_dbus_dir_fds(req->d), req->snapshot, req->id,
                                              limit, &req->error);

  if (message)
    req->reply = g_variant_ref_sink(g_variant_new_tuple(&message, 1));
}

static void qmgr_dbus_stream_scan(QmgrDbusRequest *req);
static void qmgr_dbus_stream_reply(QmgrDbusRequest *req);

/* After the snapshot: GetMessage, StreamMessages or ListMessages. */
static gboolean
qmgr_dbus_read_done(gpointer data)
{
  QmgrDbusRequest *req = data;

  if (req->stream_slot)
    qmgr_dbus_request_in_thread_full(req, qmgr_dbus_stream_scan, qmgr_dbus_stream_reply);
  else
    qmgr_dbus_request_in_thread(req, req->id ? qmgr_dbus_get_read : qmgr_dbus_list_read);
  return G_SOURCE_REMOVE;
}

static void
qmgr_dbus_read_allowed(gpointer data)
{
  QmgrDbusRequest *req = data;

  qmgr_dbus_in_loop(req->d, qmgr_dbus_snapshot_loop, qmgr_dbus_read_done, req);
}

/* ListMessages, or StreamMessages (stream: with a stream slot). */
static gboolean
qmgr_dbus_list_request(QmgrDbus *d, GDBusMethodInvocation *invocation, GVariant *filter,
                       gboolean stream)
{
  QmgrDbusRequest *req;
  GError *error = NULL;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  if (!qmgr_list_filter_parse(filter, &req->filter, &error))
    return qmgr_dbus_queue_invalid(req, error);
  req->have_filter = TRUE;
  if (stream && !qmgr_stream_reserve(d)) {
    g_dbus_method_invocation_return_dbus_error(invocation,
                                               "org.freedesktop.DBus.Error.LimitsExceeded",
                                               "Too many listings in progress, try again");
    qmgr_dbus_request_free(req);
    return TRUE;
  }
  req->stream_slot = stream;
  qmgr_authz_check(invocation, qmgr_dbus_read_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

static gboolean
qmgr_dbus_on_list(PosternQueue *object, GDBusMethodInvocation *invocation, GVariant *filter,
                  gpointer data)
{
  return qmgr_dbus_list_request(data, invocation, filter, FALSE);
}

/* ---------------------------------------------------------------- StreamMessages */

/* Pool thread: the ids to list (a directory that cannot be read is an
 * error the caller gets as the reply). */
static void
qmgr_dbus_stream_scan(QmgrDbusRequest *req)
{
  req->scan = qmgr_list_scan(qmgr_dbus_dir_fds(req->d), &req->filter, &req->error);
}

/* D-Bus thread: the stream starts, and its socket goes out in the reply. */
static void
qmgr_dbus_stream_reply(QmgrDbusRequest *req)
{
  g_autoptr(GUnixFDList) fds = NULL;
  int fd;

  if (req->error) {
    qmgr_dbus_request_finish(req);
    return;
  }
  req->stream_slot = FALSE;     /* qmgr_stream_start() takes it, or gives it back */
  fd = qmgr_stream_start(req->d, g_steal_pointer(&req->scan), &req->filter, req->snapshot,
                         &req->error);
  if (fd < 0) {
    qmgr_dbus_request_finish(req);
    return;
  }
  fds = g_unix_fd_list_new();
  if (g_unix_fd_list_append(fds, fd, &req->error) < 0) {
    close(fd);      /* the stream sees EPIPE and ends */
    qmgr_dbus_request_finish(req);
    return;
  }
  close(fd);
  g_dbus_method_invocation_return_value_with_unix_fd_list(req->invocation, g_variant_new("(h)", 0),
                                                          fds);
  qmgr_dbus_request_free(req);
}

static gboolean
qmgr_dbus_on_stream(PosternQueue *object, GDBusMethodInvocation *invocation,
                    GUnixFDList *fd_list, GVariant *filter, gpointer data)
{
  return qmgr_dbus_list_request(data, invocation, filter, TRUE);
}

static gboolean
qmgr_dbus_on_get(PosternQueue *object, GDBusMethodInvocation *invocation, const char *id,
                 gpointer data)
{
  QmgrDbus *d = data;
  QmgrDbusRequest *req;

  if (qmgr_dbus_refuse_if_stopping(d, invocation))
    return TRUE;
  req = qmgr_dbus_request_new(d, invocation);
  if (!queue_id_is_valid(id)) {
    g_autofree char *shown = g_utf8_make_valid(id, MIN(strlen(id), 64));
    return qmgr_dbus_queue_invalid(req, g_error_new(POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                                                    "\"%s\" is not a queue id", shown));
  }
  req->id = g_strdup(id);
  qmgr_authz_check(invocation, qmgr_dbus_read_allowed, req, qmgr_dbus_request_free);
  return TRUE;
}

void
qmgr_dbus_queue_connect(QmgrDbus *d, PosternQueue *queue)
{
  g_signal_connect(queue, "handle-list-messages", G_CALLBACK(qmgr_dbus_on_list), d);
  g_signal_connect(queue, "handle-stream-messages", G_CALLBACK(qmgr_dbus_on_stream), d);
  g_signal_connect(queue, "handle-get-message", G_CALLBACK(qmgr_dbus_on_get), d);
  g_signal_connect(queue, "handle-delete-messages", G_CALLBACK(qmgr_dbus_on_delete), d);
  g_signal_connect(queue, "handle-hold-messages", G_CALLBACK(qmgr_dbus_on_hold), d);
  g_signal_connect(queue, "handle-release-messages", G_CALLBACK(qmgr_dbus_on_release), d);
  g_signal_connect(queue, "handle-requeue-messages", G_CALLBACK(qmgr_dbus_on_requeue), d);
  g_signal_connect(queue, "handle-flush", G_CALLBACK(qmgr_dbus_on_flush), d);
}
