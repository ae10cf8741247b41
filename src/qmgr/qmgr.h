/* qmgr.h - the queue manager's internal interfaces.
 *
 * Threads: the event loop thread owns Qmgr (message table, waiting list,
 * timers, inotify).  Worker threads run one QmgrMessage each (open the
 * queue file, deliver, record, move the file) and touch nothing shared
 * except the reference-counted, read-only QmgrSettings and the queue
 * directory file descriptors, which never change while running.
 */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>
#include <sys/types.h>

#include "config.h"
#include "domain-class.h"
#include "mailbox.h"
#include "notify-class.h"
#include "route.h"
#include "queue-file.h"
#include "table.h"
#include "workpool.h"

/* Messages held in memory (waiting + in flight); the rest wait on disk
 * in incoming/ and deferred/ until there is room (Postfix's
 * qmgr_message_active_limit). */
#define QMGR_ACTIVE_LIMIT 20000

/* A temp file in incoming/ untouched this long (or 2 * smtpd_timeout if
 * longer) belongs to a writer that died: a live smtpd flushes its buffer
 * to the file and cuts off slow or silent clients long before.  Generous
 * on purpose, since a stale file costs only disk space. */
#define QMGR_TEMP_MIN_AGE (60 * 60)

/* Everything a delivery needs from the configuration, built once per
 * (re)load and shared read-only by the workers. */
/* One bounce_template_file template (qmgr-bounce-template.c). */
typedef struct {
  char *charset, *from, *subject, *pm_subject;   /* NULL: the built-in one */
  char *text;                  /* $-expanded per notice */
} QmgrBounceTemplate;
#define QMGR_BOUNCE_TEMPLATES 3   /* failure, delay, success (verify: unused) */

typedef struct {
  Config *config;
  GPtrArray *aliases;          /* of Table*, in alias_maps order; NULL: empty or unusable */
  char *aliases_error;         /* why aliases is NULL although alias_maps is set */
  DomainClasses *domains;      /* mydestination, virtual_*_domains, relay_domains */
  const char *myorigin;
  const char *myhostname;
  const char *recipient_delimiter;
  const char *mail_spool_directory;
  const char *home_mailbox;
  gint64 mailbox_size_limit;
  const char *default_privs;
  const char *const *allow_mail_to_commands;
  const char *forward_path;    /* the template, expanded per user (qmgr-local.c) */
  const char *mailbox_command; /* likewise; empty: the mailbox */
  const char *const *allow_mail_to_files;
  gint64 command_time_limit;
  gint64 minimal_backoff;
  gint64 maximal_backoff;
  gint64 maximal_queue_lifetime;
  gint64 bounce_queue_lifetime;  /* null-sender mail; never above maximal_queue_lifetime */
  gint64 delay_warning_time;     /* 0: no delay notices */
  guint notify_classes;          /* QMGR_NOTIFY_* of notify_classes */
  /* virtual domains (qmgr-virtual.c); a NULL table list means the parameter is empty */
  TableList *virtual_alias, *virtual_mailbox, *virtual_uid, *virtual_gid;
  char *virtual_error;         /* a virtual_*_maps parameter whose tables failed to open */
  const char *virtual_mailbox_base;
  gint64 virtual_mailbox_limit;
  gint64 virtual_minimum_uid;
  /* routing (src/common/route.c) */
  TableList *transport_maps;   /* NULL: empty */
  char *transport_error;       /* transport_maps could not be opened */
  RouteConfig route;
  /* the SMTP client's per-hop tables (qmgr-smtp.c): NULL when empty or
   * when they failed to open (the error then says why) */
  TableList *sasl_password_maps, *tls_policy_maps;
  char *sasl_password_error, *tls_policy_error;
  QmgrBounceTemplate *bounce_templates[QMGR_BOUNCE_TEMPLATES];   /* NULL: built-in */
  uid_t owner_uid;             /* mail_owner, whom the SMTP client runs as; -1 when not root */
  gid_t owner_gid;
} QmgrSettings;

/* notify_classes (notify-class.h): qmgr acts on bounce, 2bounce and
 * delay; policy, protocol, resource and software are smtpd's. */
#define QMGR_NOTIFY_BOUNCE   NOTIFY_CLASS_BOUNCE
#define QMGR_NOTIFY_2BOUNCE  NOTIFY_CLASS_2BOUNCE
#define QMGR_NOTIFY_DELAY    NOTIFY_CLASS_DELAY

/* qmgr-bounce-template.c: bounce_template_file (Postfix's bounce(5)). */
/* Fills out[QMGR_BOUNCE_TEMPLATES] (NULL for a template the file does not
 * have); FALSE with error (file, line, reason). */
gboolean qmgr_bounce_templates_load(const char *path, QmgrBounceTemplate **out, GError **error);
void qmgr_bounce_template_free(QmgrBounceTemplate *t);
/* text with main.cf parameters (and TIME_PARAM_hours ...) expanded. */
char *qmgr_bounce_template_expand(const Config *config, const char *text);

/* qmgr-settings.c */
QmgrSettings *qmgr_settings_new(Config *config);   /* takes ownership of config */
QmgrSettings *qmgr_settings_ref(QmgrSettings *settings);
void qmgr_settings_unref(QmgrSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmgrSettings, qmgr_settings_unref)
/* Is domain ("" = none) delivered locally (mydestination)?  MATCH_TEMPFAIL
 * (error set) when the list could not answer. */
MatchResult qmgr_settings_local_domain(const QmgrSettings *settings, const char *domain,
                                       GError **error);

/* What one attempt on a message ended with. */
typedef enum {
  QMGR_OUTCOME_NONE,
  QMGR_OUTCOME_DONE,        /* every recipient final; file removed */
  QMGR_OUTCOME_DEFERRED,    /* file in deferred/ with mtime = next_try */
  QMGR_OUTCOME_GONE,        /* file vanished (deleted by someone else) */
  QMGR_OUTCOME_CORRUPT,     /* moved to corrupt/ */
  QMGR_OUTCOME_ERROR,       /* could not even try; left where it is */
} QmgrOutcome;

typedef struct _Qmgr Qmgr;

typedef struct {
  char id[QUEUE_ID_MAX + 1];
  Qmgr *qmgr;                 /* owner; touched in the loop thread only */
  QueueDir dir;               /* where the file is now (worker updates it) */
  QmgrSettings *settings;     /* reference taken at submit */
  int *dir_fds;               /* the queue's directory fds (owned by Qmgr) */
  gboolean in_flight;         /* handed to a worker (loop thread) */
  guint admin;                /* QMGR_ADMIN_F_* asked for while in flight (loop thread) */
  /* results, filled by the worker */
  QmgrOutcome outcome;
  gint64 next_try;            /* wall-clock seconds, for DEFERRED */
  guint n_delivered, n_deferred, n_bounced;
  gboolean received;          /* first attempt on a new message from incoming/ */
} QmgrMessage;

typedef struct _QmgrObserver QmgrObserver;

struct _Qmgr {
  sd_event *event;
  char *queue_directory;
  int dir_fds[QUEUE_N_DIRS];
  QmgrSettings *settings;

  WorkPool *pool;
  guint n_threads;
  GHashTable *messages;       /* id -> QmgrMessage*, waiting and in flight */
  GQueue waiting;             /* of QmgrMessage* */
  guint in_flight;
  guint active_limit;
  gboolean incoming_backlog;  /* incoming/ holds files we had no room for */
  gboolean deferred_backlog;  /* due deferred files we had no room for */
  gboolean stopping;

  int inotify_fd;
  sd_event_source *inotify_source;
  sd_event_source *deferred_timer;
  sd_event_source *cleanup_timer;
  gint64 deferred_next;       /* earliest known deferred mtime (s), G_MAXINT64 = none */
  gint64 deferred_last_scan;  /* s */

  guint64 n_received, n_delivered, n_deferred, n_bounced;
  const QmgrObserver *observer;    /* set before qmgr_queue_start(); may be NULL */
  void (*on_idle)(gpointer data);  /* called when stopping and nothing is in flight */
  gpointer on_idle_data;
};

/* qmgr-queue.c: directories, inotify, scans, the deferred timer */
gboolean qmgr_queue_open(Qmgr *q, GError **error);
void qmgr_queue_close(Qmgr *q);
gboolean qmgr_queue_start(Qmgr *q, GError **error);   /* inotify + first scan */
void qmgr_queue_scan_incoming(Qmgr *q);
void qmgr_queue_scan_deferred(Qmgr *q);
/* Earlier retry time learned from a deferral (wall clock seconds). */
void qmgr_queue_note_deferred(Qmgr *q, gint64 next_try);

/* qmgr-scheduler.c: the in-memory list and the worker pool */
Qmgr *qmgr_new(sd_event *event, QmgrSettings *settings, GError **error);
void qmgr_free(Qmgr *q);
/* Takes a queue file into memory unless known or there is no room;
 * returns FALSE when there was no room. */
gboolean qmgr_scheduler_add(Qmgr *q, const char *id, QueueDir dir);
guint qmgr_scheduler_room(const Qmgr *q);
void qmgr_scheduler_kick(Qmgr *q);
void qmgr_scheduler_set_settings(Qmgr *q, QmgrSettings *settings);
/* Stops scheduling; on_idle runs once nothing is in flight. */
void qmgr_scheduler_stop(Qmgr *q, void (*on_idle)(gpointer), gpointer data);
/* Forgets the waiting (not in flight) messages for which drop() says
 * TRUE, in one pass over the waiting list. */
void qmgr_scheduler_forget(Qmgr *q, gboolean (*drop)(QmgrMessage *msg, gpointer data),
                           gpointer data);
/* Retry delay in seconds after attempts (>= 1) failed attempts. */
gint64 qmgr_backoff(gint64 minimal, gint64 maximal, guint attempts);

/* qmgr-deliver.c: one attempt on one message (worker thread) */
void qmgr_deliver_message(QmgrMessage *msg);

/* Result of delivering to one recipient (one address after expansion). */
typedef enum {
  DELIVERY_SENT,
  DELIVERY_DEFER,
  DELIVERY_BOUNCE,
} DeliveryKind;

/* Who wants to hear about the queue (the D-Bus service, qmgr-dbus.c).
 * The callbacks run in worker threads as well as in the loop thread, in
 * the order of one message's life; they must be thread-safe and quick. */
struct _QmgrObserver {
  /* A new message from incoming/ is about to get its first attempt. */
  void (*message_queued)(gpointer data, const char *id, const QueueEnvelope *env);
  /* A recipient's attempt ended (SENT and BOUNCE are on disk by now). */
  void (*recipient_done)(gpointer data, const char *id, const char *recipient,
                         DeliveryKind kind, const char *text);
  /* Counters or queue contents changed (loop thread). */
  void (*changed)(gpointer data);
  gpointer data;
};

/* qmgr-admin.c: administrative queue operations (loop thread), as
 * postsuper(1) and postqueue(1) do them, safe while deliveries run. */
typedef enum {
  QMGR_ADMIN_DELETE,
  QMGR_ADMIN_HOLD,
  QMGR_ADMIN_RELEASE,
  QMGR_ADMIN_REQUEUE,
} QmgrAdminOp;
/* Flags kept on a message in flight, applied when its attempt ends. */
#define QMGR_ADMIN_F_DELETE  (1u << 0)
#define QMGR_ADMIN_F_HOLD    (1u << 1)
#define QMGR_ADMIN_F_REQUEUE (1u << 2)
/* Applies op to the messages ids (NULL-terminated), or to every message
 * op applies to when all is TRUE.  Returns the ids acted on; NULL with
 * POSTERN_ERROR_NOT_FOUND when an id is in no queue (nothing changed
 * then).  *dirs_changed gets a bit (1 << QueueDir) per directory whose
 * entries changed, for the caller to fsync. */
GPtrArray *qmgr_admin_apply(Qmgr *q, QmgrAdminOp op, const char *const *ids, gboolean all,
                            guint *dirs_changed, GError **error);
/* Makes every message in incoming/ and deferred/ due now (postqueue -f);
 * returns how many deferred files were touched. */
guint qmgr_admin_flush(Qmgr *q);
/* The ids in memory: id (copied) -> GINT_TO_POINTER(1), or 2 in flight. */
GHashTable *qmgr_admin_snapshot(Qmgr *q);
/* Applies the flags of msg after its attempt (from done(), before it is
 * forgotten); TRUE when it should be scheduled again at once. */
gboolean qmgr_admin_after_attempt(Qmgr *q, QmgrMessage *msg);

/* The per-message state local delivery needs (and logs with). */
typedef struct {
  const char *queue_id;
  const QmgrSettings *settings;
  const QueueEnvelope *env;
  int fd;                     /* the queue file, for the content */
  gint64 active_us;           /* when this attempt took the message */
  GHashTable *done;           /* final destination (lower case) -> DeliveryKind + 1, so an
                               * address reached through two recipients gets one copy */
  char *bounce_dsn;           /* [16]: the DSN code of the last bounce logged (for the notice) */
  char *defer_dsn;            /* [16]: the DSN code of the first deferral logged (may be NULL) */
  char *dsn_action;           /* [16]: the recipient's RFC 3464 success action: the first one
                               * logged ("delivered", "relayed"), or "expanded" once an alias
                               * expanded it (may be NULL) */
  const char *sender;         /* envelope sender of deliveries when not the message's:
                               * owner-NAME inside NAME's expansion (NULL: env->sender) */
  GPtrArray *child_bounces;   /* QmgrNoticeRcpt *: addresses an alias expansion of the
                               * recipient in progress bounced (may be NULL: not kept) */
} QmgrDelivery;

/* An address that an alias expansion of parent (the queue recipient)
 * bounced: kept for the notice, which goes to report_to (owner-NAME) or,
 * when NULL, to the sender. */
void qmgr_delivery_child_bounced(const QmgrDelivery *d, const QueueRecipient *parent,
                                 const char *address, const char *text, const char *dsn,
                                 const char *report_to);

/* The recipient in progress was expanded by an alias (local or virtual):
 * its success notice says "expanded" (Postfix's "alias expanded"). */
void qmgr_delivery_expanded(const QmgrDelivery *d);

/* Logs one "to=<...>, relay=..., status=..." line with its fields. */
void qmgr_log_status(const QmgrDelivery *d, const char *to, const char *orig_to,
                     const char *relay, gint64 start_us, DeliveryKind kind,
                     const char *dsn, const char *text);
/* The same for an SMTP delivery: setup_us of it went to connection set-up
 * (delays=.../c/d), and conn_use > 1 is logged as Postfix's conn_use=N. */
void qmgr_log_status_smtp(const QmgrDelivery *d, const char *to, const char *orig_to,
                          const char *relay, gint64 start_us, gint64 setup_us, guint conn_use,
                          DeliveryKind kind, const char *dsn, const char *text);

/* Delivers one address whose domain is not local, by its class: virtual
 * mailbox delivery, a bounce for an unknown virtual alias, else the
 * remote path (deferred until the SMTP client exists).  Logs its status
 * line; *reason receives the text.  Local delivery uses this for alias
 * results in other domains (qmgr-deliver.c). */
DeliveryKind qmgr_deliver_nonlocal(const QmgrDelivery *d, const char *address,
                                   const char *orig_to, DomainClass cls, char **reason);

/* qmgr-smtp.c: address through the SMTP client's agents to the route's
 * next hops; logs the status line.  Blocking (a worker thread).  dsn_from
 * (may be NULL): the queue recipient whose NOTIFY/ORCPT go along. */
DeliveryKind qmgr_smtp_deliver(const QmgrDelivery *d, const QueueRecipient *dsn_from,
                               const char *address, const char *orig_to, const Route *route,
                               char **reason);
/* One recipient of a session. */
typedef struct {
  const char *address;
  const char *orig_to;
  guint notify;               /* QUEUE_NOTIFY_* (0: not given) */
  const char *orcpt;          /* RFC 3461 ORCPT "type;address", or NULL */
} QmgrSmtpRcpt;
/* Recipients of one route for one session, and their verdicts. */
typedef struct {
  Route route;                /* not owned */
  const QmgrSmtpRcpt *rcpts;
  guint n;
  DeliveryKind *kinds;        /* out, n of each */
  char **reasons;             /* out, allocated */
  gboolean *passed;           /* out, may be NULL: sent to a server that took the DSN
                               * request along (its success notice, not ours) */
} QmgrSmtpBatch;
/* Delivers the batches, their sessions side by side as far as agents
 * are free; logs each recipient's status line. */
void qmgr_smtp_deliver_batches(const QmgrDelivery *d, QmgrSmtpBatch *batches, guint n);

/* qmgr-bounce.c: delivery status notices.  One recipient in a notice. */
typedef struct {
  char *address, *orig;        /* orig: as the client wrote it, may be NULL */
  char *orcpt;                 /* RFC 3461 ORCPT ("type;address"), NULL: none */
  guint notify;                /* QUEUE_NOTIFY_* of the recipient, 0: not given */
  char *text;                  /* the reason, as logged */
  char *dsn;                   /* the status when known, else taken from text */
  const char *action;          /* success: "delivered", "relayed" or "expanded" */
  char *report_to;             /* failure: who hears of it instead of the sender (owner-NAME
                                * of the alias that expanded to it), NULL: the sender */
} QmgrNoticeRcpt;
/* Takes text; copies the rest (action is static). */
QmgrNoticeRcpt *qmgr_notice_rcpt_new(const QueueRecipient *rcpt, char *text, const char *dsn,
                                     const char *action);
void qmgr_notice_rcpt_free(gpointer rcpt);
/* Queues the non-delivery notice for bounced (QmgrNoticeRcpt *): to the
 * sender (or a recipient's report_to: one notice each) for the
 * recipients whose NOTIFY asks for it, a postmaster copy
 * (notify_classes), or for mail with the null sender the double bounce.
 * TRUE when queued or rightly not sent; FALSE (error set) when the
 * sender's notice could not be queued. */
gboolean qmgr_bounce_notify(const QmgrDelivery *d, const GPtrArray *bounced, GError **error);
/* The same for the delay notice of the deferred recipients delayed. */
gboolean qmgr_bounce_delay_notify(const QmgrDelivery *d, const GPtrArray *delayed,
                                  GError **error);
/* The same for the success notice of the delivered recipients with
 * NOTIFY=SUCCESS among delivered. */
gboolean qmgr_bounce_success_notify(const QmgrDelivery *d, const GPtrArray *delivered,
                                    GError **error);

/* Deliveries through the SMTP client in flight give up and idle agents
 * exit (qmgr stops). */
void qmgr_smtp_stop(void);
/* The configuration changed: agents still running the old one exit once
 * idle. */
void qmgr_smtp_reload(void);
/* Idle agents older than max_idle exit; exited ones are reaped (the main
 * loop's timer). */
void qmgr_smtp_expire(const QmgrSettings *s);

/* The text of a deferral when a domain list could not answer (Postfix's
 * qmgr says "address resolver failure"); also logs a warning with the
 * reason. */
char *qmgr_deliver_resolver_failure(const QmgrDelivery *d, const GError *error);

/* qmgr-local.c: local delivery of one recipient (worker thread); logs
 * each final destination and returns the recipient's overall result.
 * *reason receives the text of a deferral or bounce. */
DeliveryKind qmgr_local_deliver(const QmgrDelivery *d, const QueueRecipient *rcpt,
                                char **reason);

/* The owner of an alias table's file (qmgr-settings.c): FALSE when it
 * has no file whose owner could be trusted (then |command and /file are
 * restricted).  static: and inline: count as root's (main.cf). */
gboolean qmgr_settings_alias_owner(const Table *table, uid_t *uid, gid_t *gid);

/* Splits the text of an :include: file (qmgr-local.c): one or more
 * comma-separated addresses per line, "#" comment lines, blank lines. */
GPtrArray *qmgr_local_include_parse(const char *text);

/* qmgr-command.c: "|command" destinations */
typedef struct {
  const char *command;        /* for /bin/sh -c */
  uid_t uid;
  gid_t gid;
  const char *const *envp;
  gint64 time_limit;          /* seconds */
} QmgrCommand;
/* Runs the command with the message on stdin; *text gets the status
 * text, *dsn a static string. */
DeliveryKind qmgr_command_deliver(const QmgrCommand *cmd, const MailboxMessage *msg,
                                  const char **dsn, char **text);
/* Maps a wait status (or a timeout) to a result, as Postfix does with
 * sysexits codes; output is the command's output (may be NULL). */
DeliveryKind qmgr_command_status(int wait_status, gboolean timed_out, const char *command,
                                 const char *output, const char **dsn, char **text);

/* qmgr-virtual.c: virtual_alias_maps rewriting and virtual(8) delivery */
typedef enum {
  QMGR_VIRTUAL_ALIAS_NONE,       /* no alias applies: the address stays */
  QMGR_VIRTUAL_ALIAS_FOUND,      /* *result: the final addresses (at least one) */
  QMGR_VIRTUAL_ALIAS_TEMPFAIL,   /* table unavailable (*error) */
  QMGR_VIRTUAL_ALIAS_LOOP,       /* too deep or too many results (*error) */
} QmgrVirtualAlias;
/* Rewrites address recursively through virtual_alias_maps. */
QmgrVirtualAlias qmgr_virtual_alias_expand(const QmgrSettings *s, const char *address,
                                           GPtrArray **result, GError **error);
/* Delivers address (in virtual_mailbox_domains) to its virtual mailbox;
 * logs the status line; *reason gets its text. */
DeliveryKind qmgr_virtual_deliver(const QmgrDelivery *d, const char *address,
                                  const char *orig_to, char **reason);

/* Splits "a, b, \"c,d\"@x" into addresses (qmgr-local.c). */
GPtrArray *qmgr_split_addresses(const char *value);

/* qmgr-privs.c: per-thread file-system identity */
typedef struct {
  gboolean switched;
  uid_t fsuid;
  gid_t fsgid;
} PrivsSaved;
/* Switches this thread's fsuid/fsgid/groups to uid/gid; a no-op when
 * they already are the current ones.  Verifies the switch took. */
gboolean privs_enter(uid_t uid, gid_t gid, PrivsSaved *saved, GError **error);
void privs_leave(PrivsSaved *saved);
/* Call once from the main thread before workers start. */
void privs_init(void);
