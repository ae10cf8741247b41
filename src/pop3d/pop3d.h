/* pop3d.h - postern-pop3d, the daemon around the POP3 session
 * (pop3-session.h): its settings, the mailbox of a login, and the three
 * kinds of processes of docs/pop3d.md with the messages between them.
 *
 *   parent   (root, CAP_SETUID/CAP_SETGID only) accepts, counts per client
 *            address, forks the others, never reads a client's bytes;
 *   login    (mail_owner) one per connection: greeting, CAPA, STLS / pop3s,
 *            USER/PASS, AUTH PLAIN/LOGIN; after a login the TLS proxy;
 *   auth     (mail_owner) one per login attempt: checks the password with
 *            Cyrus SASL and finds the mailbox, for the parent;
 *   mail     (the mailbox's owner) one per login: TRANSACTION and UPDATE.
 */
#pragma once

#include <glib.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "inet.h"
#include "pop3-session.h"
#include "tls.h"

/* ---------------------------------------------------------------- settings */

typedef struct {
  Config *config;
  TlsServer *tls;               /* NULL: no TLS (none configured, or level none) */
  TlsLevel tls_level;
  NetList *plaintext_networks;  /* pop3d_plaintext_auth_networks */
  char *sasl_mechanisms;        /* what of "PLAIN LOGIN" the SASL configuration allows */
  guint sasl_flags;             /* pop3d_sasl_security_options */
  const char *sasl_app;
  const char *realm;            /* pop3d_sasl_local_domain, or NULL */
  const char *hostname;
  const char *implementation;
  const char *mail_owner;
  uid_t owner_uid;              /* (uid_t) -1 when not started as root */
  gid_t owner_gid;
  gid_t *owner_groups;          /* mail_owner's groups (the sasl group for /etc/sasldb2) */
  int n_owner_groups;
  gint64 timeout_ms, login_timeout_ms;
  gint64 failure_delay_ms;
  guint failure_limit;
  guint connection_limit;       /* per client address; 0: none */
  guint process_limit;          /* connections in all */
  guint login_failure_limit;    /* per client address and rate unit; 0: none */
  gint64 rate_unit_us;
} Pop3dSettings;

/* Loads main.cf (with the -o overrides), the TLS context and the SASL
 * library's mechanism list; errors name the parameter. */
Pop3dSettings *pop3d_settings_load(const char *config_dir, const char *const *overrides,
                                   GError **error);
void pop3d_settings_free(Pop3dSettings *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pop3dSettings, pop3d_settings_free)

/* ---------------------------------------------------------------- the mailbox of a login */

typedef enum {
  POP3D_BOX_MAILDIR = 1,
  POP3D_BOX_MBOX,
} Pop3dBoxKind;

/* Fixed size: it crosses a pipe from the auth process to the parent. */
typedef struct {
  Pop3dBoxKind kind;
  uid_t uid;
  gid_t gid;
  gid_t extra_gid;              /* the mail spool's group for an mbox there, else (gid_t) -1 */
  char path[1024];
  char user[256];               /* the owner's name (system users) or the login (virtual) */
} Pop3dMailbox;

/* The mailbox of login name login, found as delivery finds it
 * (docs/pop3d.md): a virtual_mailbox_domains address through
 * virtual_mailbox_maps and virtual_uid_maps / virtual_gid_maps, a local
 * one (no domain, or a mydestination domain) as the system user's
 * home_mailbox or mbox in mail_spool_directory.  Blocking (tables).
 * POSTERN_ERROR_NOT_FOUND: no mailbox for that name; POSTERN_ERROR_TEMPORARY:
 * a table or lookup failed; POSTERN_ERROR_FAILED: not allowed (root). */
gboolean pop3d_locate(const Pop3dSettings *st, const char *login, Pop3dMailbox *box,
                      GError **error);

/* ---------------------------------------------------------------- between the processes */

/* login → parent, on a SOCK_SEQPACKET pair, with the descriptor the mail
 * process will talk on (the client's socket, or the login process's TLS
 * proxy end): header, then user, password and the bytes the client sent
 * after its login line. */
typedef struct {
  char kind;                    /* 'L' */
  char method[8];               /* "USER", "PLAIN", "LOGIN" */
  guint8 tls;                   /* the channel is TLS */
  guint16 user_len, password_len;
  guint32 rest_len;
  int tls_bits;
} Pop3dLoginRequest;

#define POP3D_LOGIN_MAX (64 * 1024)

/* parent → login: 'O' logged in (the mail process has the connection);
 * 'F' failed, text is the response; 'C' as 'F', then close. */
typedef struct {
  char kind;
  char text[200];               /* "[AUTH] Authentication failed." */
} Pop3dLoginReply;

/* auth → parent, once, on a pipe. */
typedef enum {
  POP3D_AUTH_OK = 1,
  POP3D_AUTH_FAIL,              /* wrong name or password */
  POP3D_AUTH_TEMP,              /* SASL or a table cannot answer now */
  POP3D_AUTH_NOBOX,             /* authenticated, but no mailbox is allowed or found */
} Pop3dAuthStatus;

typedef struct {
  Pop3dAuthStatus status;
  Pop3dMailbox box;
  char reason[256];             /* for the log */
} Pop3dAuthResult;

/* What a child knows of its connection, for logs and SASL. */
typedef struct {
  char remote[64];
  char local[64];
  guint16 remote_port, local_port;
  gboolean loopback;
  gboolean implicit_tls;        /* the pop3s listener */
  struct sockaddr_storage peer;
} Pop3dPeer;

/* The bodies of the children; each ends the process. */
void pop3d_login_main(const Pop3dSettings *st, const Pop3dPeer *peer, int client_fd,
                      int ctl_fd) G_GNUC_NORETURN;
void pop3d_auth_main(const Pop3dSettings *st, const Pop3dPeer *peer, const char *user,
                     const char *password, int tls_bits, int result_fd) G_GNUC_NORETURN;
void pop3d_mail_main(const Pop3dSettings *st, const Pop3dPeer *peer, const Pop3dMailbox *box,
                     const char *login, int client_fd, const char *rest, gsize rest_len)
    G_GNUC_NORETURN;

/* ---------------------------------------------------------------- shared by the children */

/* In a new child: default signal dispositions and mask, descriptors other
 * than 0-2 and keep[] closed (keep[i] renumbered to 3 + i and updated),
 * logging to stderr only (the parent's journal connection is not ours). */
void pop3d_child_setup(int *keep, guint n_keep);

/* Becomes uid/gid with groups (n may be 0) for good, no capabilities, no
 * new privileges; FALSE (errno) on failure.  Not root: only a no-op when
 * already that uid. */
gboolean pop3d_become(uid_t uid, gid_t gid, const gid_t *groups, int n_groups);

/* A client connection, plain or TLS, with an input buffer and a deadline
 * per wait.  Blocking semantics over a non-blocking socket (poll). */
typedef struct {
  int fd;
  TlsConn *tls;
  GByteArray *in;
  gsize in_start;               /* consumed bytes at the front of in */
  gint64 timeout_ms;
} Pop3dIo;

typedef enum {
  POP3D_IO_OK,
  POP3D_IO_EOF,
  POP3D_IO_TIMEOUT,
  POP3D_IO_ERROR,
  POP3D_IO_TOO_LONG,
} Pop3dIoResult;

#define POP3D_LINE_MAX 8192

void pop3d_io_init(Pop3dIo *io, int fd, gint64 timeout_ms);
void pop3d_io_clear(Pop3dIo *io);
/* The next line (CRLF or LF stripped, NUL-terminated in place) when one is
 * buffered; NULL otherwise. */
char *pop3d_io_take_line(Pop3dIo *io, gsize *len);
/* Buffered bytes not taken yet. */
gsize pop3d_io_pending(const Pop3dIo *io, const char **data);
void pop3d_io_discard(Pop3dIo *io);
/* Waits for and reads more input (up to POP3D_LINE_MAX without a line end). */
Pop3dIoResult pop3d_io_fill(Pop3dIo *io);
/* Writes all of buf. */
Pop3dIoResult pop3d_io_write(Pop3dIo *io, const char *buf, gsize len);
/* The TLS handshake on io->fd (io->tls made from server). */
Pop3dIoResult pop3d_io_start_tls(Pop3dIo *io, TlsServer *server, GError **error);
