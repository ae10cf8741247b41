/* qmgr-dbus-private.h - what the files of the D-Bus service share:
 * qmgr-dbus.c (thread, bus connection, properties, signals),
 * qmgr-dbus-queue.c and qmgr-dbus-manager.c (the methods),
 * qmgr-dbus-config.c, qmgr-authz.c (polkit) and qmgr-list.c (queue files
 * as dictionaries).
 *
 * Threads: "D-Bus thread" is the service's own thread (its GMainContext
 * is thread-default there); "loop thread" is the queue manager's sd-event
 * thread.  Fields say which thread owns them.
 */
#pragma once

#include <gio/gio.h>

#include "postern-mail1-generated.h"
#include "qmgr-dbus.h"

#define QMGR_DBUS_NAME "org.postern.Mail1"
#define QMGR_DBUS_PATH "/org/postern/Mail1"

/* Limits on what a client sends: ids per call, bytes per string. */
#define QMGR_DBUS_MAX_IDS 100000
#define QMGR_DBUS_MAX_TEXT 4096
/* Requests in progress at once (all callers together); more get
 * LimitsExceeded. */
#define QMGR_DBUS_MAX_BUSY 256

/* D-Bus error names of the API (dbus/org.postern.Mail1.xml). */
#define QMGR_DBUS_ERROR_NO_SUCH_MESSAGE   "org.postern.Mail1.Error.NoSuchMessage"
#define QMGR_DBUS_ERROR_INVALID_PARAMETER "org.postern.Mail1.Error.InvalidParameter"
#define QMGR_DBUS_ERROR_INVALID_VALUE     "org.postern.Mail1.Error.InvalidValue"
#define QMGR_DBUS_ERROR_TABLE             "org.postern.Mail1.Error.TableError"
#define QMGR_DBUS_ERROR_FAILED            "org.postern.Mail1.Error.Failed"

/* Errors that are D-Bus names of their own (qmgr_dbus_return_error()). */
#define QMGR_DBUS_ERROR (qmgr_dbus_error_quark())
GQuark qmgr_dbus_error_quark(void);
typedef enum {
  QMGR_DBUS_E_INVALID_PARAMETER,  /* an unknown main.cf parameter */
  QMGR_DBUS_E_INVALID_VALUE,
  QMGR_DBUS_E_TABLE,
  QMGR_DBUS_E_INVALID_ARGS,
} QmgrDbusErrorCode;

/* A listing in progress (qmgr-list.c). */
typedef struct _QmgrListScan QmgrListScan;

/* ListMessages criteria (qmgr-list.c). */
typedef struct {
  guint queues;                 /* bits 1 << QueueDir to list */
  char *sender, *recipient, *reason;   /* lower case substrings; NULL: any */
  gint64 min_age, max_age;      /* seconds; -1: none */
  guint limit;                  /* at most this many entries; 0: all */
  char *after;                  /* only ids that sort after this one; NULL: all */
} QmgrListFilter;

struct _QmgrDbus {
  Qmgr *qmgr;                   /* loop thread only (through qmgr_dbus_in_loop) */
  QmgrDbusHooks hooks;          /* loop thread */
  gint64 started_at;            /* µs, CLOCK_REALTIME */
  QmgrObserver observer;

  /* D-Bus thread */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  GDBusConnection *connection;  /* NULL while there is no bus */
  guint owner_id;
  gboolean connecting;
  gboolean warned;              /* the "no bus" warning was logged */
  GSource *retry_source, *tick_source, *stop_source;
  PosternManager *manager;
  PosternQueue *queue;
  guint busy;                   /* requests in progress */
  gboolean draining;            /* stopping: no new requests */
  gboolean recounting;
  Config *defaults;             /* lazily loaded: every parameter's default */

  /* loop side of the hand-off (loop thread) */
  int event_fd;
  sd_event_source *event_source;

  /* shared, under lock */
  GMutex lock;
  GQueue calls;                 /* QmgrDbusCall *, D-Bus thread -> loop thread */
  GQueue events;                /* QmgrDbusEvent *, any thread -> D-Bus thread */
  gboolean events_scheduled;
  QmgrSettings *settings;       /* the configuration in use */
  guint64 counters[4];          /* received, delivered, deferred, bounced */
  gboolean counters_dirty;
  gint queue_dirty;             /* atomic */
  GPtrArray *streams;           /* QmgrStream * running (qmgr-stream.c) */
  guint n_streams;              /* running or reserved */
  GCond streams_cond;           /* a stream ended */
  gint streams_stopping;        /* atomic: cut the streams short */
  gint finished;                /* atomic: the D-Bus thread is done */
};

/* ---- qmgr-dbus.c ---- */

typedef void (*QmgrDbusLoopFunc)(Qmgr *q, gpointer data);
/* Runs func(q, data) in the loop thread, then done(data) in the D-Bus
 * thread (done returns G_SOURCE_REMOVE).  D-Bus thread. */
void qmgr_dbus_in_loop(QmgrDbus *d, QmgrDbusLoopFunc func, GSourceFunc done, gpointer data);

/* Requests in progress keep the service from finishing a stop. */
void qmgr_dbus_hold(QmgrDbus *d);
void qmgr_dbus_release(QmgrDbus *d);

/* A reference to the configuration in use (any thread). */
QmgrSettings *qmgr_dbus_settings(QmgrDbus *d);

/* The queue's directory fds (never change while running; any thread). */
const int *qmgr_dbus_dir_fds(QmgrDbus *d);

/* Replies with the D-Bus error for error: POSTERN_ERROR NOT_FOUND ->
 * NoSuchMessage, SYNTAX -> InvalidArgs, CONFIG -> InvalidValue, others ->
 * Failed; QMGR_DBUS_ERROR by its code; G_IO_ERROR_NOT_SUPPORTED ->
 * NotSupported; anything else -> Failed. */
void qmgr_dbus_return_error(GDBusMethodInvocation *invocation, const GError *error);

/* Marks the queue counts for a recount (any thread). */
void qmgr_dbus_queue_changed(QmgrDbus *d);

/* One request: the method's arguments, what the loop part computed, the
 * reply.  Freed by qmgr_dbus_request_free(), which releases the hold on
 * the service. */
typedef struct {
  QmgrDbus *d;
  GDBusMethodInvocation *invocation;
  int op;                       /* QmgrAdminOp for the queue methods */
  char **ids;                   /* validated ids; NULL with all */
  gboolean all;
  char *id;
  QmgrListFilter filter;
  gboolean have_filter;
  char **names;
  char *which;
  char *spec;
  GVariant *args;               /* SetParameters' a{ss} */
  GHashTable *snapshot;         /* qmgr_admin_snapshot() */
  QmgrListScan *scan;           /* StreamMessages: the ids to list */
  gboolean stream_slot;         /* StreamMessages: holds a reserved slot */
  GPtrArray *done;              /* ids acted on */
  guint dirs_changed;
  GVariant *reply;              /* floating or owned, sent by the done step */
  GError *error;
} QmgrDbusRequest;

QmgrDbusRequest *qmgr_dbus_request_new(QmgrDbus *d, GDBusMethodInvocation *invocation);
void qmgr_dbus_request_free(gpointer request);
/* Sends req->error or req->reply (or an empty reply) and frees req. */
void qmgr_dbus_request_finish(QmgrDbusRequest *req);
/* Runs func(req) in a GLib pool thread (blocking file work), then
 * finishes req in the D-Bus thread. */
void qmgr_dbus_request_in_thread(QmgrDbusRequest *req, void (*func)(QmgrDbusRequest *req));
/* The same, then then(req) in the D-Bus thread instead of finishing. */
void qmgr_dbus_request_in_thread_full(QmgrDbusRequest *req, void (*func)(QmgrDbusRequest *req),
                                      void (*then)(QmgrDbusRequest *req));
/* Replies "postern-qmgr is stopping" while draining, LimitsExceeded
 * with QMGR_DBUS_MAX_BUSY requests in progress, and returns TRUE then. */
gboolean qmgr_dbus_refuse_if_stopping(QmgrDbus *d, GDBusMethodInvocation *invocation);

/* ---- qmgr-dbus-signals.c ---- */
/* Points d->observer at the event callbacks. */
void qmgr_dbus_observer_init(QmgrDbus *d);
/* Emits the queued events in order (D-Bus thread; a GSourceFunc). */
gboolean qmgr_dbus_drain_events(gpointer d);
void qmgr_dbus_event_free(gpointer event);
/* The property refresh, every QMGR_DBUS_TICK_MS (a GSourceFunc). */
gboolean qmgr_dbus_on_tick(gpointer d);
#define QMGR_DBUS_TICK_MS 1000
/* Counters as a{st}. */
GVariant *qmgr_dbus_counters_variant(const guint64 counters[4]);

/* ---- qmgr-dbus-queue.c, qmgr-dbus-manager.c ---- */
void qmgr_dbus_queue_connect(QmgrDbus *d, PosternQueue *queue);
void qmgr_dbus_manager_connect(QmgrDbus *d, PosternManager *manager);

/* ---- qmgr-dbus-config.c: SetParameters, CheckConfiguration ---- */
gboolean qmgr_dbus_set_parameters(const char *config_dir, const char *const *names,
                                  const char *const *values, GError **error);
GPtrArray *qmgr_dbus_check_configuration(const char *config_dir, GError **error);

/* ---- qmgr-authz.c: the bouncer ---- */
typedef void (*QmgrAuthzAllowed)(gpointer data);
/* The polkit action that guards interface.method; NULL: none, denied. */
const char *qmgr_authz_action(const char *interface, const char *method);
/* Lets the caller of invocation run its method if uid 0 or polkit says
 * yes (asking an agent when the caller allowed interactive
 * authorization): allowed(data).  Otherwise replies AccessDenied and
 * calls destroy(data).  D-Bus thread. */
void qmgr_authz_check(GDBusMethodInvocation *invocation, QmgrAuthzAllowed allowed,
                      gpointer data, GDestroyNotify destroy);

/* ---- qmgr-stream.c: StreamMessages ---- */
typedef struct _QmgrStream QmgrStream;
/* Takes a stream slot (FALSE: QMGR_STREAM_MAX in use, LimitsExceeded). */
gboolean qmgr_stream_reserve(QmgrDbus *d);
/* Gives back a slot that did not become a stream. */
void qmgr_stream_unreserve(QmgrDbus *d);
/* Starts streaming scan's entries (scan and *filter taken, snapshot
 * referenced) in a thread of its own, using the reserved slot; returns
 * the reader's end of the socket for the reply (the caller closes it),
 * or -1 with the slot given back. */
int qmgr_stream_start(QmgrDbus *d, QmgrListScan *scan, QmgrListFilter *filter,
                      GHashTable *snapshot, GError **error);
/* Cuts every stream short and waits until they have ended. */
void qmgr_stream_stop_all(QmgrDbus *d);

/* ---- qmgr-list.c ---- */
/* The ids a listing will look at, sorted, read from the directories
 * f names (and after f->after); the files are read by
 * qmgr_list_scan_next(), one at a time. */
QmgrListScan *qmgr_list_scan(const int *dir_fds, const QmgrListFilter *f, GError **error);
void qmgr_list_scan_free(QmgrListScan *scan);
/* How many ids it holds, and the longest one's length. */
guint qmgr_list_scan_size(const QmgrListScan *scan);
guint qmgr_list_scan_width(const QmgrListScan *scan);
/* The next entry that passes f (floating), NULL at the end or after
 * f->limit entries. */
GVariant *qmgr_list_scan_next(QmgrListScan *scan, const int *dir_fds, GHashTable *snapshot,
                              const QmgrListFilter *f);
/* Builds the ListMessages entries of the messages that pass f (a full
 * reference, not floating). */
GVariant *qmgr_list_messages(const int *dir_fds, GHashTable *snapshot, const QmgrListFilter *f,
                             GError **error);
/* GetMessage: the entry of id with its details and header fields
 * (at most header_limit bytes of content read; a full reference).
 * NOT_FOUND when absent. */
GVariant *qmgr_list_get(const int *dir_fds, GHashTable *snapshot, const char *id,
                        gsize header_limit, GError **error);
/* Parses the ListMessages filter; POSTERN_ERROR_SYNTAX when it is bad. */
gboolean qmgr_list_filter_parse(GVariant *dict, QmgrListFilter *f, GError **error);
void qmgr_list_filter_clear(QmgrListFilter *f);
/* Counts messages per queue ("incoming", "active", ...) as a{su}. */
GVariant *qmgr_list_counts(const int *dir_fds, GHashTable *snapshot);
