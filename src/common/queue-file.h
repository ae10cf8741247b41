/* queue-file.h - the on-disk queue: one file per message.
 *
 * Format (docs/queue-format.md): a text envelope of records "<type><data>\n",
 * the message content (LF line ends, dot-unstuffed, Received: header
 * included), then appended state records.  Queue ids are unique, sort by
 * arrival and are safe in file names: 13 upper-case hex digits of the
 * arrival time in microseconds followed by the inode number in hex.
 *
 * Writers create "incoming/.t<pid>.<n>", write, and commit: fdatasync,
 * rename to "incoming/<id>", fsync of the directory.  Only after commit
 * may the SMTP server say 250.  Readers never see a partial file under a
 * queue id name.  Trailing state records are appended with one write()
 * and fdatasync; a torn last record (no newline) is ignored.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#define QUEUE_ID_MAX 40
#define QUEUE_MAGIC "POSTERN-QUEUE 1\n"

/* The queue's subdirectories, in this order. */
typedef enum {
  QUEUE_INCOMING,
  QUEUE_ACTIVE,
  QUEUE_DEFERRED,
  QUEUE_HOLD,
  QUEUE_CORRUPT,
  QUEUE_RECYCLE,    /* emptied files kept for reuse; never scheduled or listed */
  QUEUE_N_DIRS
} QueueDir;

const char *queue_dir_name(QueueDir dir);

/* Creates queue_directory and its subdirectories if missing.  incoming/
 * and recycle/ are made writable for owner_uid/owner_gid (the mail_owner
 * smtpd runs as); -1 keeps the caller's.  Mode 0700 for the others,
 * 0730 for those two. */
gboolean queue_dirs_ensure(const char *queue_directory, uid_t owner_uid, gid_t owner_gid,
                           GError **error);

/* The unprivileged writer's check (smtpd started as mail_owner, e.g. by
 * systemd with User=): incoming/ and recycle/ must exist and be writable
 * and searchable by the caller.  Nothing is created or changed: the tree
 * belongs to root (tmpfiles.d or postern-qmgr made it). */
gboolean queue_dirs_check_writable(const char *queue_directory, GError **error);

/* TRUE when name looks like a committed queue id (not a temp file). */
gboolean queue_id_is_valid(const char *name);

/* Per-recipient delivery state. */
typedef enum {
  RCPT_PENDING = 0,
  RCPT_DELIVERED,   /* final */
  RCPT_BOUNCED,     /* final */
} RcptState;

/* RFC 3461 NOTIFY= of a recipient, as a bit mask; 0: not given (a
 * notice is then sent on failure and delay, as if FAILURE,DELAY). */
#define QUEUE_NOTIFY_NEVER   (1u << 0)
#define QUEUE_NOTIFY_SUCCESS (1u << 1)
#define QUEUE_NOTIFY_FAILURE (1u << 2)
#define QUEUE_NOTIFY_DELAY   (1u << 3)

/* RFC 3461 RET= of the message. */
typedef enum {
  QUEUE_RET_DEFAULT = 0,   /* not given: the notice carries what bounce_size_limit allows */
  QUEUE_RET_FULL,
  QUEUE_RET_HDRS,
} QueueRet;

typedef struct {
  char *address;        /* as accepted (after $myorigin completion) */
  char *orig_address;   /* as the client wrote it; NULL if same */
  RcptState state;
  char *status;         /* last status text (deferral reason or final), may be NULL */
  guint notify;         /* QUEUE_NOTIFY_* bits, 0 when not given ("n" record) */
  char *orcpt;          /* ORCPT= xtext-decoded, "type;address" ("o" record); NULL: none */
  gboolean success_due; /* delivered with NOTIFY=SUCCESS and its success notice not queued
                         * yet (its "D" record is not followed by a "Y" record) */
} QueueRecipient;

/* "NEVER", "SUCCESS,FAILURE,DELAY" ...: the NOTIFY= keywords of a mask
 * (never empty for a mask other than 0; "" for 0).  Static storage. */
const char *queue_notify_string(guint notify);
/* Parses that list (case-insensitive); FALSE for an unknown keyword, an
 * empty list or NEVER combined with another (RFC 3461 section 4.1). */
gboolean queue_notify_parse(const char *text, guint *notify);

/* The envelope as the writer gives it and the reader returns it. */
typedef struct {
  char *queue_id;
  gint64 arrival_us;       /* microseconds since the epoch */
  char *sender;            /* "" = null sender */
  char *client_name;       /* reverse name or "unknown" */
  char *client_addr;       /* numeric address */
  char *helo;              /* may be NULL */
  char *protocol;          /* "SMTP", "ESMTP", "ESMTPA", ... */
  char *auth_user;         /* may be NULL */
  GPtrArray *recipients;   /* of QueueRecipient* */
  guint attempts;          /* delivery attempts so far (from trailer records:
                            * max(#N records, most F records of one recipient)) */
  gboolean hold;           /* a policy said HOLD: qmgr moves it to hold/ instead of
                            * delivering ("Lhold" record) ... */
  gboolean hold_done;      /* ... unless it did so once already ("K" trailer record), so
                            * a message released from hold/ is delivered */
  char *redirect;          /* access(5) REDIRECT: every recipient is delivered to this
                            * address instead (">" record); NULL: none */
  char *envid;             /* RFC 3461 ENVID= xtext-decoded ("e" record); NULL: none */
  QueueRet ret;            /* RFC 3461 RET= ("r" record: FULL or HDRS) */
  gboolean smtputf8;       /* RFC 6531: MAIL FROM had SMTPUTF8 ("Lsmtputf8") */
  gboolean delay_warned;   /* the delay notice was queued ("W" trailer record): once only */
  gint64 content_offset;   /* where the content starts in the file */
  gint64 content_size;     /* bytes of content */
} QueueEnvelope;

QueueEnvelope *queue_envelope_new(void);
void queue_envelope_free(QueueEnvelope *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QueueEnvelope, queue_envelope_free)
void queue_envelope_add_recipient(QueueEnvelope *env, const char *address, const char *orig);

/* ---- writing (smtpd, bounces) ---- */

typedef struct _QueueWriter QueueWriter;

/* Opens a new temp file in queue_directory/incoming and assigns the queue
 * id (available at once, for the Received: header). */
QueueWriter *queue_writer_new(const char *queue_directory, GError **error);
const char *queue_writer_id(const QueueWriter *writer);

/* Gives the temp file to uid/gid (qmgr, as root, writing a bounce for
 * mail_owner's queue). */
gboolean queue_writer_chown(QueueWriter *writer, uid_t uid, gid_t gid, GError **error);

/* Writes the envelope records (env->queue_id and content fields are
 * ignored); must come first, once. */
gboolean queue_writer_envelope(QueueWriter *writer, const QueueEnvelope *env, GError **error);

/* Appends content bytes (buffered). */
gboolean queue_writer_content(QueueWriter *writer, const void *data, gsize len, GError **error);
gint64 queue_writer_content_size(const QueueWriter *writer);

/* Ends the content and adds the "extracted" records: what was decided
 * while or after the content arrived (access(5) actions of any
 * restriction stage), written right behind the content as Postfix's
 * cleanup does.  hold: "Lhold"; redirect (may be NULL): ">address", the
 * last REDIRECT; bcc (may be NULL): one "R" recipient each.  At most
 * once, after the last content and before commit. */
gboolean queue_writer_extracted(QueueWriter *writer, gboolean hold, const char *redirect,
                                const GPtrArray *bcc, GError **error);

/* Makes the file durable and visible under its id: flush, record the
 * content size, fdatasync, rename into incoming/, fsync incoming/.
 * Blocking: call it from a worker thread.  On failure the temp file is
 * removed. */
gboolean queue_writer_commit(QueueWriter *writer, GError **error);

/* Frees the writer; removes the temp file unless committed. */
void queue_writer_free(QueueWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QueueWriter, queue_writer_free)

/* ---- reading and state (qmgr) ---- */

/* Reads the envelope and trailer records of an open queue file (fd
 * positioned anywhere; pread is used).  POSTERN_ERROR_CORRUPT for a
 * damaged file. */
QueueEnvelope *queue_file_read(int fd, GError **error);

/* Appends one state record for recipient index and makes it durable
 * (write + fdatasync).  state RCPT_PENDING records a deferral reason and
 * counts an attempt (once per attempt, however many recipients defer).
 * fd must be open read-write: a torn last record is cut off first. */
gboolean queue_file_record(int fd, guint rcpt_index, RcptState state, const char *status,
                           GError **error);

/* Records that the queue manager put the message on hold as its HOLD
 * record asked ("K" trailer), so a release is final. */
gboolean queue_file_record_held(int fd, GError **error);

/* Records a delivery attempt (for backoff) without a recipient change. */
gboolean queue_file_record_attempt(int fd, GError **error);

/* Records that the delay notice of the message is queued ("W" trailer), so
 * that it is sent once, also across restarts. */
gboolean queue_file_record_delay_warned(int fd, GError **error);

/* Records that the success notices of every recipient delivered so far are
 * queued ("Y" trailer): success_due reads FALSE for them from then on. */
gboolean queue_file_record_success_notified(int fd, GError **error);

/* Retires the queue file id (open as fd) in dir_fd after its last
 * recipient is done.  Instead of being unlinked it is moved to recycle/
 * and emptied, so that a later writer can reuse its inode: creating and
 * deleting thousands of files a minute makes every new inode costly on
 * some file systems (ext4 skips recently freed inodes).  It is emptied
 * before it is moved, so a writer never finds old content.  At most
 * max_spares files are kept (a count the caller keeps); beyond that, or
 * for a file with other links, it is unlinked.  *recycled tells which. */
gboolean queue_file_retire(int dir_fd, const char *id, int fd, int recycle_fd, gboolean keep,
                           gboolean *recycled, GError **error);

/* TRUE for an empty file: one that queue_file_retire() emptied but could
 * not move before a crash.  No queue file is ever empty. */
gboolean queue_file_is_retired(int fd);

/* Number of spare files in recycle/ (for the caller's bound). */
guint queue_recycle_count(int recycle_fd);

/* Removes stale temp files (".t*") older than max_age_s from incoming/:
 * the remains of a writer that died before commit. */
guint queue_incoming_cleanup(const char *queue_directory, gint64 max_age_s);
