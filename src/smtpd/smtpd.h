/* smtpd.h - types shared by the SMTP server's modules: the settings
 * snapshot, the server (listeners, pools, sessions) and the session.
 *
 * Everything here lives on the event loop's thread; worker threads only
 * see the small work items handed to a WorkPool, never a session.
 */
#pragma once

#include <glib.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "domain-class.h"
#include "domain-list.h"
#include "inet.h"
#include "queue-file.h"
#include "smtp-bdat.h"
#include "smtp-data.h"
#include "smtp-headers.h"
#include "smtp-parse.h"
#include "smtpd-anvil.h"
#include "table.h"
#include "tls.h"
#include "workpool.h"

typedef struct _SmtpdServer SmtpdServer;

/* How a client name lookup ended, as Postfix's SMTPD_PEER_CODE_*. */
typedef enum {
  SMTPD_PEER_OK = 2,
  SMTPD_PEER_TEMP = 4,      /* DNS could not answer now */
  SMTPD_PEER_PERM = 5,      /* no (usable) PTR record */
  SMTPD_PEER_FORWARD = 6,   /* PTR name does not resolve back to the address */
} SmtpdPeerStatus;

typedef struct {
  char *name;               /* forward-confirmed name, or "unknown" */
  char *reverse_name;       /* PTR name even if not confirmed, or "unknown" */
  SmtpdPeerStatus name_status, reverse_status;
} SmtpdPeerName;
typedef struct _SmtpdSession SmtpdSession;

/* EHLO keywords as smtpd_discard_ehlo_keywords names them (bit mask). */
enum {
  SMTPD_EHLO_PIPELINING = 1 << 0,
  SMTPD_EHLO_SIZE = 1 << 1,
  SMTPD_EHLO_VRFY = 1 << 2,
  SMTPD_EHLO_ETRN = 1 << 3,
  SMTPD_EHLO_STARTTLS = 1 << 4,
  SMTPD_EHLO_AUTH = 1 << 5,
  SMTPD_EHLO_ENHANCEDSTATUSCODES = 1 << 6,
  SMTPD_EHLO_8BITMIME = 1 << 7,
  SMTPD_EHLO_DSN = 1 << 8,
  SMTPD_EHLO_SMTPUTF8 = 1 << 9,
  SMTPD_EHLO_CHUNKING = 1 << 10,
  SMTPD_EHLO_SILENT = 1 << 30,   /* "silent-discard": do not log the discarding */
};

/* ---- settings (smtpd-settings.c) ---- */

/* An immutable snapshot of one loaded Config, with every value smtpd
 * needs read once into typed fields (the hot path never looks a
 * parameter up by name) and the NetLists / tables opened once.
 * Reference-counted: a session keeps the snapshot it started with across
 * a reload. */
typedef struct {
  int ref;
  Config *config;
  const char *myhostname, *myorigin, *banner, *mail_name, *queue_directory, *mail_owner;
  const char *recipient_delimiter;
  DomainClasses *domains;   /* mydestination, virtual_*_domains, relay_domains */
  const char *const *client_restrictions;
  const char *const *helo_restrictions;
  const char *const *sender_restrictions;
  const char *const *relay_restrictions;
  const char *const *recipient_restrictions;
  const char *const *data_restrictions;
  const char *const *end_of_data_restrictions;
  GHashTable *restriction_classes;   /* name -> char** (smtpd_restriction_classes) */
  GHashTable *access_tables;   /* spec -> Table* for every check_*_access; NULL value: failed */
  const char *null_access_key;
  gboolean access_parent_style;   /* "example.com" matches subdomains */
  gint64 map_reject_code, map_defer_code, reject_code, defer_code;
  gint64 unknown_client_code, unknown_hostname_code, unknown_address_code, maps_rbl_code;
  gboolean helo_tempfail_defer, address_tempfail_defer;   /* *_tempfail_action = defer */
  const char *default_rbl_reply;     /* template, expanded per reply */
  TableList *rbl_reply_maps;         /* NULL: parameter empty or failed (warned) */
  gboolean delay_reject, reject_unlisted_sender;
  NetList *mynetworks, *event_limit_exceptions, *bare_newline_exclusions;
  TableList *local_recipient_maps;   /* NULL: no check */
  char *local_recipient_maps_error;  /* set when the tables failed to open */
  TableList *virtual_alias_maps, *virtual_mailbox_maps;   /* NULL: parameter empty */
  TableList *relay_recipient_maps;   /* NULL: empty (every relay_domains address is valid) */
  char *virtual_maps_error;          /* set when one of them failed to open */
  /* the local listener (smtpd-local.c) */
  DomainList *submit_users;          /* authorized_submit_users; NULL: failed to build */
  char *submit_users_error;
  TableList *login_sender_maps;      /* local_login_sender_maps; NULL: empty or failed */
  char *login_sender_maps_error;     /* set when the tables failed to open */
  gboolean login_sender_any;         /* local_login_sender_maps = static:*: no lookup */
  const char *login_null_sender;     /* empty_address_local_login_sender_maps_lookup_key */
  /* SASL (smtpd-auth.c) */
  gboolean sasl_enable, sasl_header, sasl_broken_clients;
  guint sasl_flags, sasl_tls_flags;     /* SASL_SEC_* */
  const char *sasl_realm;
  NetList *sasl_exceptions;             /* smtpd_sasl_exceptions_networks */
  TableList *sender_login_maps;         /* NULL: empty or failed */
  char *sender_login_maps_error;
  gint64 auth_rate_limit, sasl_failure_limit, sasl_failure_delay, sasl_response_limit;
  char *sasl_mechanisms[2];             /* EHLO's list without / with TLS; loop thread, lazily */
  /* TLS (smtpd-tls.c) */
  TlsServer *tls;                    /* NULL: no TLS (none configured, or it failed: warned) */
  TlsLevel tls_level;                /* smtpd_tls_security_level */
  gboolean tls_wrappermode, tls_received_header, tls_auth_only;
  gint64 starttls_timeout;
  gint64 header_size_limit;
  gint64 message_size_limit, recipient_limit, timeout, hard_error_limit, soft_error_limit,
      error_sleep_time, junk_command_limit, min_data_rate, conn_count_limit, conn_rate_limit,
      rate_time_unit, commit_threads, lookup_threads, bare_newline_code;
  gboolean forbid_bare_newline, append_at_myorigin, reject_unlisted_recipient, disable_vrfy,
      helo_required, peername_lookup, per_record_deadline;
  gboolean smtputf8_enable, strict_smtputf8;
  guint ehlo_discard;                /* SMTPD_EHLO_* of smtpd_discard_ehlo_keywords */
  guint notify_classes;              /* NOTIFY_CLASS_* (notify-class.h) */
  gint64 history_flush_threshold;    /* smtpd_history_flush_threshold */
} SmtpdSettings;

/* Loads the configuration (config_load) and builds the snapshot. */
SmtpdSettings *smtpd_settings_load(const char *dir, const char *const *overrides,
                                   GError **error);
SmtpdSettings *smtpd_settings_ref(SmtpdSettings *settings);
void smtpd_settings_unref(SmtpdSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SmtpdSettings, smtpd_settings_unref)

/* ---- server (smtpd-listener.c) ---- */

typedef enum {
  SMTPD_LISTENER_SMTP,
  SMTPD_LISTENER_SUBMISSION,
  SMTPD_LISTENER_SMTPS,
  SMTPD_LISTENER_LOCAL,
} SmtpdListenerKind;

struct _SmtpdServer {
  sd_event *event;
  SmtpdSettings *settings;      /* for new sessions */
  WorkPool *commit_pool;
  WorkPool *lookup_pool;
  WorkPool *tls_pool;           /* TLS handshake steps (smtpd-tls.c) */
  SmtpdAnvil *anvil;
  GPtrArray *listeners;         /* SmtpdListener* (private to smtpd-listener.c) */
  SmtpdSession *sessions;       /* intrusive list of live sessions */
  guint n_sessions;
  gboolean stopping;
  sd_event_source *stop_timer;
};

/* Parses a listener name ("smtp", "submission", "smtps", "local"). */
gboolean smtpd_listener_kind_parse(const char *name, SmtpdListenerKind *kind);
const char *smtpd_listener_kind_name(SmtpdListenerKind kind);

SmtpdServer *smtpd_server_new(sd_event *event, SmtpdSettings *settings, GError **error);
void smtpd_server_free(SmtpdServer *server);
/* Starts accepting on fd (already bound and listening; made non-blocking). */
gboolean smtpd_server_add_listener(SmtpdServer *server, int fd, SmtpdListenerKind kind,
                                   GError **error);
/* Replaces the settings used for new sessions (takes a reference). */
void smtpd_server_set_settings(SmtpdServer *server, SmtpdSettings *settings);
/* SIGTERM: stop accepting, close idle sessions, let transactions finish
 * for up to grace_us, then leave the event loop. */
void smtpd_server_stop(SmtpdServer *server, gint64 grace_us);

/* ---- session (smtpd-session.c) ---- */

typedef enum {
  SMTPD_STATE_INIT,      /* accepted; peer lookup before the greeting */
  SMTPD_STATE_READY,     /* greeted, no transaction */
  SMTPD_STATE_MAIL,      /* MAIL accepted */
  SMTPD_STATE_RCPT,      /* at least one RCPT accepted */
  SMTPD_STATE_DATA,      /* reading message content */
  SMTPD_STATE_BDAT,      /* reading a BDAT chunk (kept or discarded) */
  SMTPD_STATE_COMMIT,    /* content complete, queue file being committed */
  SMTPD_STATE_QUIT,      /* final reply queued; flushing, then lingering */
  SMTPD_STATE_CLOSED,
} SmtpdState;

typedef enum {
  SMTPD_WAIT_NONE,
  SMTPD_WAIT_WORK,       /* a WorkPool item for this session is outstanding */
  SMTPD_WAIT_SLEEP,      /* error tarpit */
} SmtpdWait;

/* Commands as counted for the "disconnect from" log line; order is the
 * command table's (smtpd-commands.c). */
typedef enum {
  SMTPD_CMD_HELO, SMTPD_CMD_EHLO, SMTPD_CMD_STARTTLS, SMTPD_CMD_AUTH, SMTPD_CMD_MAIL, SMTPD_CMD_RCPT,
  SMTPD_CMD_DATA, SMTPD_CMD_BDAT, SMTPD_CMD_RSET, SMTPD_CMD_NOOP, SMTPD_CMD_VRFY, SMTPD_CMD_HELP, SMTPD_CMD_QUIT,
  SMTPD_CMD_UNKNOWN, SMTPD_N_CMDS
} SmtpdCmdId;

typedef void (*SmtpdTlsDone)(SmtpdSession *s);

struct _SmtpdSession {
  SmtpdServer *server;
  SmtpdSettings *settings;
  SmtpdSession *prev, *next;
  int ref;
  int fd;
  sd_event_source *io, *timer, *sleep_timer;
  guint32 io_events;
  SmtpdState state;
  SmtpdWait wait;
  SmtpdListenerKind kind;

  /* input: in[in_pos..in_len) is unprocessed */
  char *in;
  guint32 in_len, in_pos, in_cap;
  /* output: out->str[out_pos..out->len) is unsent */
  GString *out;
  gsize out_pos;
  gint64 deadline;           /* CLOCK_MONOTONIC microseconds */
  gboolean eof, discard_line, hold_output, lingering;

  /* TLS (smtpd-tls.c): all I/O goes through tls once it is set */
  TlsConn *tls;
  gboolean tls_start;        /* STARTTLS said 220: the handshake begins once it is out */
  gboolean tls_handshaking;
  gboolean tls_busy;         /* a handshake step runs in the TLS pool: it owns tls and fd */
  guint32 tls_wait;          /* what the handshake waits for: EPOLLIN or EPOLLOUT */
  gboolean tls_read_wants_write, tls_write_wants_read;
  SmtpdTlsDone tls_done;     /* after the handshake */
  sd_event_source *tls_kick; /* decrypted input waits inside OpenSSL */
  char *tls_info, *tls_details;   /* "TLSv1.3 with cipher ...", "key-exchange ..." */

  /* SASL (smtpd-auth.c) */
  struct _AuthSasl *sasl;    /* the exchange in progress */
  char *sasl_method;         /* the mechanism being used, then the one that succeeded */
  char *sasl_username;       /* set once AUTH succeeded */
  gboolean auth_pending;     /* a 334 is out: the next line is the client's response */
  guint auth_failures;
  gint64 penalty_us;         /* command_done() holds the reply back this long */

  /* client */
  char client_addr[64];
  char *client_name;         /* "unknown" when not resolved */
  char *client_reverse_name; /* PTR name, confirmed or not; "unknown" */
  SmtpdPeerStatus client_name_status, client_reverse_status;
  char *namaddr;             /* "name[addr]" for logs */
  gboolean client_trusted;   /* in mynetworks or local socket */
  gboolean trust_tempfail;   /* a mynetworks table could not answer */
  gboolean limit_exempt;     /* in smtpd_client_event_limit_exceptions */
  gboolean strict_newline;   /* smtpd_forbid_bare_newline applies */
  gboolean sasl_excepted;    /* in smtpd_sasl_exceptions_networks */
  gboolean anvil_counted;
  /* local listener: the submitting user (smtpd-local.c) */
  gboolean local_submit;     /* SO_PEERCRED said who the client is */
  uid_t local_uid;
  gid_t local_gid;
  pid_t local_pid;
  char *local_login;         /* login name, or "uid:N" without a passwd entry */
  char *submit_denied;       /* authorized_submit_users said no: the greeting */
  SmtpHeaderFilter *headers; /* DATA of a local submission: Bcc: out, missing headers in */
  GString *header_out;       /* the filter's output buffer */
  char *helo;
  gboolean esmtp;
  char *access_denied;       /* smtpd_delay_reject = no: the connect-time reject */
  gboolean ill_pipelining;   /* RFC 2920 violation seen (reject_unauth_pipelining) */
  /* smtpd_delay_reject = no: a defer_if_permit raised at CONNECT/HELO
   * or at MAIL, due at RCPT unless something rejects first */
  char *defer_client, *defer_sender;

  /* transaction */
  char *sender;              /* completed; "" for <> */
  char *sender_orig;         /* as written */
  GPtrArray *rcpt_addr;      /* completed addresses */
  GPtrArray *rcpt_orig;      /* as written (never NULL entries) */
  GArray *rcpt_notify;       /* guint QUEUE_NOTIFY_* per recipient (RFC 3461 NOTIFY=) */
  GPtrArray *rcpt_orcpt;     /* "type;address" per recipient (ORCPT=), NULL entries: none */
  guint pending_notify;      /* the DSN parameters of the RCPT being checked */
  char *pending_orcpt;
  gint64 mail_size;
  SmtpBody body;
  gboolean smtputf8;         /* MAIL FROM had SMTPUTF8 (RFC 6531) */
  QueueRet dsn_ret;          /* RET= (RFC 3461) */
  char *dsn_envid;           /* ENVID=, decoded, or NULL */
  char *pending_rcpt, *pending_rcpt_orig;   /* RCPT waiting for a lookup */
  QueueWriter *writer;
  QueueWriter *writer_ahead;   /* made by the first accepted RCPT's lookup (saves DATA a hop) */
  SmtpDataDecoder decoder;
  gint64 data_size;
  gboolean data_too_big, data_write_failed;
  gboolean data_tried;       /* DATA got past its sequence checks: no BDAT now */
  /* BDAT (smtpd-bdat.c) */
  gboolean bdat_active;      /* the transaction uses BDAT: no DATA, MAIL, RCPT now */
  gboolean bdat_last, bdat_skip;   /* the chunk being read: LAST; to be discarded */
  SmtpdState bdat_prev;      /* state before the chunk (READY, MAIL, RCPT) */
  gint64 bdat_chunk, bdat_left;    /* its size, and what is still to be read */
  gint64 bdat_octets;        /* octets of the chunks accepted so far */
  char *bdat_reply;          /* the reply to the chunk being discarded */
  char *bdat_error;          /* the transaction failed: each further chunk gets this */
  SmtpChunkDecoder chunk;
  gint64 arrival_us;
  /* access(5) side effects for this transaction */
  gboolean discard, hold;
  GPtrArray *prepend;        /* header lines (PREPEND), or NULL */
  char *redirect;            /* REDIRECT address (the last one wins), or NULL */
  GPtrArray *bcc;            /* BCC addresses (each once), or NULL */

  /* accounting */
  guint errors, junk;
  GString *history;          /* the chat for postmaster, a line each (smtpd-notify.c), or NULL */
  guint history_lines;
  guint error_mask;          /* NOTIFY_CLASS_* of the replies in it */
  char *end_reason;          /* why the session was aborted ("lost connection") */
  SmtpdCmdId cmd;            /* command being executed */
  gboolean cmd_failed;
  guint16 cmd_ok[SMTPD_N_CMDS], cmd_total[SMTPD_N_CMDS];
  const char *last_cmd;      /* for "lost connection after X" */
};

/* Takes over a connected socket (non-blocking).  peer/peer_len describe
 * the client (ignored for SMTPD_LISTENER_LOCAL, which is localhost). */
SmtpdSession *smtpd_session_new(SmtpdServer *server, int fd, SmtpdListenerKind kind,
                                const struct sockaddr *peer, socklen_t peer_len);
SmtpdSession *smtpd_session_ref(SmtpdSession *s);
void smtpd_session_unref(SmtpdSession *s);
void smtpd_session_enter_state(SmtpdSession *s, SmtpdState state);
const char *smtpd_state_name(SmtpdState state);

/* Queues one reply line (CRLF added).  A 4xx/5xx reply counts as an error
 * of the current command. */
/* smtpd-notify.c: session transcripts for postmaster (notify_classes). */
void smtpd_notify_in(SmtpdSession *s, const char *line, gsize len);
void smtpd_notify_out(SmtpdSession *s, const char *line);
void smtpd_notify_session_end(SmtpdSession *s, const char *reason);

void smtpd_session_reply(SmtpdSession *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void smtpd_session_reply_line(SmtpdSession *s, const char *line);
/* Queues a final reply and closes once it is sent (421, 521, 221). */
void smtpd_session_close_with(SmtpdSession *s, const char *line);
/* Drops the connection at once (peer gone). */
void smtpd_session_abort(SmtpdSession *s, const char *why);
/* Marks the session as waiting for a work item (takes a session ref that
 * the caller gives back with smtpd_session_resume). */
void smtpd_session_suspend(SmtpdSession *s);
/* Ends a suspension: finishes the current command and processes input. */
void smtpd_session_resume(SmtpdSession *s);
/* Ends a suspension with one more step: next(s, data) runs first and may
 * suspend the session again (then the command finishes later, at that
 * resume); otherwise as smtpd_session_resume.  next is not called once
 * the session is quitting. */
typedef void (*SmtpdSessionNext)(SmtpdSession *s, gpointer data);
void smtpd_session_continue(SmtpdSession *s, SmtpdSessionNext next, gpointer data);
/* Sets the per-line deadline to now + smtpd_timeout. */
void smtpd_session_set_deadline(SmtpdSession *s, gint64 timeout_us);
void smtpd_session_reset_transaction(SmtpdSession *s);
/* Called by the server on shutdown: idle sessions get 421 and close. */
void smtpd_session_shutdown(SmtpdSession *s);
/* Accounting after a command's final reply: counters, error limits,
 * tarpit, next deadline. */
void smtpd_session_command_done(SmtpdSession *s);
/* Drops the connection without a reply (server exit). */
void smtpd_session_disconnect(SmtpdSession *s);

/* Recomputes the poll events the session wants. */
void smtpd_session_update_io(SmtpdSession *s);
/* Watches the socket and arms the deadline (smtpd_timeout from now). */
void smtpd_session_start_io(SmtpdSession *s);
/* Executes buffered commands and DATA until input runs out or the
 * session must wait; flushes the replies. */
void smtpd_session_process(SmtpdSession *s);
/* Queues a reply line that is not a command's reply (the greeting). */
void smtpd_session_append(SmtpdSession *s, const char *line);

/* ---- the connection up to the greeting (smtpd-connect.c) ---- */

/* After the peer lookup: "connect from", the smtps handshake, the
 * greeting or what refuses it. */
void smtpd_connect_greet(SmtpdSession *s);

/* ---- TLS (smtpd-tls.c) ---- */

/* smtps listener or smtpd_tls_wrappermode: TLS from the first byte. */
gboolean smtpd_tls_wrapper(const SmtpdSession *s);
/* STARTTLS is offered (EHLO) and accepted. */
gboolean smtpd_tls_offered(const SmtpdSession *s);
/* smtpd_tls_security_level = encrypt and no TLS yet: mail commands get
 * "530 5.7.0 Must issue a STARTTLS command first". */
gboolean smtpd_tls_required(const SmtpdSession *s);
/* "ESMTP", "SMTP", "ESMTPS", "SMTPS" (RFC 3848) for Received: and the
 * queue file. */
const char *smtpd_tls_protocol_name(const SmtpdSession *s);
/* Starts the handshake on the socket; done(s) when it is up, the
 * session closed ("lost connection") when it fails. */
void smtpd_tls_start(SmtpdSession *s, SmtpdTlsDone done);
/* One handshake step, when the socket is ready. */
void smtpd_tls_handshake_step(SmtpdSession *s);
/* recv()/send() through TLS: bytes, 0 at EOF, -1 with errno (EAGAIN
 * when OpenSSL waits; tls_read_wants_write / tls_write_wants_read say
 * for what). */
ssize_t smtpd_tls_recv(SmtpdSession *s, void *buf, gsize len);
ssize_t smtpd_tls_send(SmtpdSession *s, const void *buf, gsize len);

/* ---- AUTH (smtpd-auth.c) ---- */

/* EHLO advertises AUTH (enabled, not a local or excepted client, and
 * under smtpd_tls_auth_only only inside TLS when TLS is configured). */
gboolean smtpd_auth_offered(const SmtpdSession *s);
/* The mechanisms for this channel ("PLAIN LOGIN"), or NULL. */
char *smtpd_auth_mechanisms(SmtpdSession *s);
/* The AUTH command. */
void smtpd_auth_command(SmtpdSession *s, char *arg);
/* A line while auth_pending: the client's response (line is len bytes). */
void smtpd_auth_response(SmtpdSession *s, char *line, gsize len);
/* Forgets the login (STARTTLS starts over) and any exchange. */
void smtpd_auth_reset(SmtpdSession *s);
/* "ESMTPA" and friends: smtpd_tls_protocol_name() plus "A" once authenticated. */
const char *smtpd_auth_protocol_name(const SmtpdSession *s);
/* smtpd_sender_login_maps: who owns sender (address, address without
 * its extension, @domain); *owned when login is one of them.
 * TABLE_NOTFOUND: nobody (also with no maps).  Blocking. */
TableResult smtpd_auth_sender_owner(const SmtpdSettings *st, const char *sender,
                                    const char *login, gboolean *owned, GError **error);
/* Settings: the SASL parameters (FALSE with the parameter named). */
gboolean smtpd_auth_settings(SmtpdSettings *st, GError **error);

/* ---- commands (smtpd-commands.c) ---- */

/* Executes one complete command line (len bytes at line, modifiable). */
void smtpd_commands_execute(SmtpdSession *s, char *line, gsize len);
const char *smtpd_command_name(SmtpdCmdId id);
/* Accepts a recipient (takes ownership of both strings): 250 2.1.5. */
void smtpd_commands_rcpt_accept(SmtpdSession *s, char *addr, char *orig);
/* "ehlo=1 mail=1 rcpt=0/1 ... commands=5" */
char *smtpd_commands_stats(const SmtpdSession *s);
/* smtpd_discard_ehlo_keywords: the SMTPD_EHLO_* mask of a list of names
 * (case-insensitive); names it does not know are added to unknown. */
guint smtpd_ehlo_mask(const char *const *names, GString *unknown);

/* ---- access(5) evaluation (smtpd-access.c) ---- */

/* Lookup keys in access(5) order (newly allocated, lower case).  Client:
 * host name and its parent domains, then the address and its parent
 * networks ("192.168.1", "192.168", "192"; IPv6 by ":" groups). */
GPtrArray *smtpd_access_keys_client(const char *name, const char *addr, gboolean parent_style);
/* Host name (HELO) and parent domains: "example.com" form when
 * parent_style, else ".example.com". */
GPtrArray *smtpd_access_keys_domain(const char *name, gboolean parent_style);
/* Mail address: user+ext@domain, user@domain, domain (and parents),
 * user+ext@, user@. */
GPtrArray *smtpd_access_keys_mail(const char *addr, const char *delimiters,
                                  gboolean parent_style);

typedef enum {
  SMTPD_STAGE_CLIENT,
  SMTPD_STAGE_HELO,
  SMTPD_STAGE_SENDER,
  SMTPD_STAGE_RELAY,
  SMTPD_STAGE_RECIPIENT,
  SMTPD_STAGE_DATA,
  SMTPD_STAGE_END_OF_DATA,
  SMTPD_N_STAGES
} SmtpdStage;

typedef enum { SMTPD_ACCESS_DUNNO, SMTPD_ACCESS_PERMIT, SMTPD_ACCESS_REJECT } SmtpdAccess;

/* What a restriction list may look at: a snapshot taken on the loop and
 * read in a worker thread, plus what the evaluation found.  Never points
 * into a session. */
typedef struct {
  const SmtpdSettings *settings;   /* the session holds a reference */
  char *client_name, *client_addr, *namaddr, *helo;
  char *client_reverse_name;
  SmtpdPeerStatus client_name_status, client_reverse_status;
  char *sender, *sender_orig;      /* completed / as written; NULL before MAIL */
  char *sasl_username;             /* the AUTH login, or NULL */
  char *rcpt, *rcpt_orig;          /* RCPT; DATA and end of data: the only recipient */
  gboolean trusted, ill_pipelining, discard;
  SmtpdStage stage;                /* being evaluated */
  gboolean trust_tempfail;         /* permit_mynetworks: 451 4.3.0 */
  /* results */
  char *reply;                     /* when SMTPD_ACCESS_REJECT */
  char *defer_if_permit;           /* a reply due if the verdict would be "permit" */
  char *defer_if_reject;           /* a reply that replaces a later 5xx */
  gboolean warn_if_reject;         /* the restriction being evaluated only warns */
  gboolean config_error;           /* a server error: never only a warning */
  gboolean hold, rcpt_checked;     /* hold: also set by the snapshot when already held */
  GPtrArray *prepend;              /* header lines */
  char *redirect;                  /* REDIRECT address (the last one) */
  GPtrArray *bcc;                  /* BCC addresses */
  GPtrArray *events;               /* "action\ttext" lines to log in the loop */
  int recursion;
} SmtpdAccessCtx;

void smtpd_access_ctx_clear(SmtpdAccessCtx *ctx);
/* Queues a warning for the loop to log. */
void smtpd_access_ctx_warn(SmtpdAccessCtx *ctx, const char *text);
/* Evaluates one stage's restriction list (blocking: worker threads). */
SmtpdAccess smtpd_access_eval_stage(SmtpdAccessCtx *ctx, SmtpdStage stage);
/* After the last stage of a command (RCPT, DATA): a pending
 * defer_if_permit turns a verdict that is not a reject into that
 * deferral (Postfix: temporary DNS trouble defers only mail that would
 * otherwise be accepted). */
SmtpdAccess smtpd_access_finish(SmtpdAccessCtx *ctx, SmtpdAccess result);
/* Postfix's check_rcpt_maps: virtual_alias_maps, then by domain class
 * local_recipient_maps or virtual_mailbox_maps, or (virtual_alias_domains)
 * nothing else.  TABLE_FOUND when listed or no check applies; on
 * TABLE_NOTFOUND *table names the table for the reply ("local recipient
 * table", "virtual mailbox table", "virtual alias table"); on
 * TABLE_TEMPFAIL (a domain list or table could not answer) error says
 * why. */
TableResult smtpd_access_recipient_known(const SmtpdSettings *st, const char *addr,
                                         const char **table, GError **error);

/* ---- policy (smtpd-policy.c) ---- */

/* The class of addr's domain (no domain: local).  FALSE, with a
 * POSTERN_ERROR_TEMPORARY error, when a domain list could not answer;
 * the client then gets 451 4.3.0 Temporary lookup failure. */
gboolean smtpd_policy_domain_class(const SmtpdSettings *settings, const char *addr,
                                   DomainClass *cls, GError **error);
/* RCPT: evaluates the pending stages, the local_recipient_maps check and
 * creates the queue file ahead, in one lookup-pool item; the reply comes
 * from its done() (takes ownership of addr and orig). */
void smtpd_policy_check_rcpt(SmtpdSession *s, char *addr, char *orig);
/* CONNECT / HELO / MAIL under smtpd_delay_reject = no, DATA and end of
 * data: evaluates that stage in the lookup pool, logs its rejects and
 * events, applies the transaction's access(5) side effects, then calls
 * done(s, reply) with reply NULL when it passed (through
 * smtpd_session_continue: done may start more work).  FALSE (and no
 * call) when the stage is empty. */
typedef void (*SmtpdPolicyDone)(SmtpdSession *s, const char *reply);
gboolean smtpd_policy_check_stage(SmtpdSession *s, SmtpdStage stage, SmtpdPolicyDone done);
/* Logs "NOQUEUE: reject: RCPT from ...". */
void smtpd_policy_log_reject(SmtpdSession *s, const char *cmd, const char *reply,
                             const char *rcpt);
/* Logs "NOQUEUE: <action>: <cmd> from ...: <text>; from=<> to=<> ...". */
void smtpd_policy_log_event(SmtpdSession *s, const char *action, const char *cmd,
                            const char *text, const char *rcpt);

/* ---- DATA (smtpd-data.c) ---- */

/* After the DATA command's checks (or at the first BDAT chunk, with
 * bdat_active): opens the queue file, writes the envelope and our
 * Received:, replies 354 (DATA) or starts reading the chunk (BDAT). */
void smtpd_data_begin(SmtpdSession *s);
/* Feeds buffered input to the decoder; FALSE when more input is needed. */
gboolean smtpd_data_feed(SmtpdSession *s);
/* Stores decoded content (LF line ends) as DATA does: the header filter
 * of a local submission (end: the content is complete), then the queue
 * file within message_size_limit. */
void smtpd_data_store(SmtpdSession *s, const char *data, gsize len, gboolean end);
/* The content is complete: size and write errors, the end of data
 * restrictions, the commit and its reply. */
void smtpd_data_end(SmtpdSession *s);
/* Drops an unfinished queue file (client gone). */
void smtpd_data_abort(SmtpdSession *s);
/* "ESMTPSA" and friends, "UTF8SMTP..." in an SMTPUTF8 transaction (RFC
 * 6531 3.7.3), for Received: and the queue file. */
const char *smtpd_data_protocol_name(const SmtpdSession *s);

/* ---- BDAT (smtpd-bdat.c) ---- */

/* The BDAT command (RFC 3030). */
void smtpd_bdat_command(SmtpdSession *s, char *arg);
/* A BDAT command refused before its handler (access denied, HELO or
 * STARTTLS required): its chunk is read and discarded, then reply. */
void smtpd_bdat_refuse(SmtpdSession *s, char *arg, const char *reply);
/* Reads buffered chunk octets (state BDAT); FALSE when more input is
 * needed. */
gboolean smtpd_bdat_feed(SmtpdSession *s);
/* The chunk being read (none of it yet) is discarded and answered with
 * reply; the transaction has failed. */
void smtpd_bdat_skip(SmtpdSession *s, const char *reply);

/* ---- local submission (smtpd-local.c) ---- */

/* Who the user of a local-listener connection is; filled off the loop. */
typedef struct {
  char *login;               /* login name, or "uid:N" (local_login_sender_maps key) */
  MatchResult allowed;       /* authorized_submit_users ("unknown" without a passwd entry) */
  char *error;               /* why allowed is MATCH_TEMPFAIL */
} SmtpdLocalUser;

/* SO_PEERCRED of a local-listener connection: sets local_submit, uid,
 * gid and pid; FALSE (and a warning logged) when the kernel cannot say. */
gboolean smtpd_local_peer(SmtpdSession *s);
/* Blocking (lookup pool): the login name of uid and whether
 * authorized_submit_users lets it submit. */
void smtpd_local_identify(const SmtpdSettings *st, uid_t uid, SmtpdLocalUser *user);
/* On the loop: takes what smtpd_local_identify found (frees user's strings). */
void smtpd_local_apply(SmtpdSession *s, SmtpdLocalUser *user);
/* local_login_sender_maps: may login use sender (as written in MAIL
 * FROM, "" for <>)?  TABLE_FOUND yes, TABLE_NOTFOUND no, TABLE_TEMPFAIL
 * with error set.  Blocking. */
TableResult smtpd_local_sender_allowed(const SmtpdSettings *st, const char *login,
                                       const char *sender, GError **error);
/* MAIL FROM on the local listener: the local_login_sender_maps check in
 * the lookup pool, then done(s, reply) with reply NULL when it passed.
 * FALSE (and no call) when the maps allow everyone without a lookup. */
gboolean smtpd_local_check_sender(SmtpdSession *s, SmtpdPolicyDone done);
/* Postfix pickup's trace header: "Received: by HOST (NAME, from userid UID)". */
char *smtpd_local_received(SmtpdSession *s, const char *qid);
/* DATA: starts the header filter (Bcc: removal, missing headers). */
void smtpd_local_data_begin(SmtpdSession *s, const char *qid);
void smtpd_local_data_end(SmtpdSession *s);

/* ---- peer name and classes (smtpd-peer.c) ---- */

/* Blocking: reverse lookup with forward confirmation (runs in the lookup
 * pool).  Fills peer; a name that cannot be had is "unknown". */
void smtpd_peer_lookup(const struct sockaddr *sa, socklen_t len, SmtpdPeerName *peer);

/* The lists a client address is in.  A list whose table cannot answer
 * counts as "not listed" (not trusted, not exempt from the limits, not
 * excluded from the bare newline check) and leaves a warning; trusted
 * keeps MATCH_TEMPFAIL so that permit_mynetworks can answer 451 4.3.0
 * as Postfix does. */
typedef struct {
  MatchResult trusted;          /* mynetworks (MATCH_FOUND for the local listener) */
  gboolean limit_exempt;        /* smtpd_client_event_limit_exceptions */
  gboolean newline_excluded;    /* smtpd_forbid_bare_newline_exclusions */
  gboolean sasl_excepted;       /* smtpd_sasl_exceptions_networks: AUTH not offered */
  GPtrArray *warnings;          /* char*: lookup failures to log, or NULL */
} SmtpdPeerClass;
/* Fills c for addr (numeric).  May block when a list has tables. */
void smtpd_peer_classify(const SmtpdSettings *st, const char *addr, gboolean local,
                         SmtpdPeerClass *c);
/* TRUE when smtpd_peer_classify may block (a list names a table): then
 * it runs in the lookup pool. */
gboolean smtpd_peer_classify_blocks(const SmtpdSettings *st);
/* Postfix date format for Received: ("Sun,  1 Dec 2026 13:44:42 +0000 (UTC)"). */
char *smtpd_mail_date(gint64 time_us);
