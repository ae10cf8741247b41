/* tls.h - the server side of TLS over OpenSSL 3, shared by smtpd and
 * pop3d: a context built from a daemon's PREFIX_tls_* parameters (certificates,
 * protocols, cipher grades, session cache) and non-blocking connections
 * driven by the daemon's event loop.
 *
 * Library code: no logging; failures come back as POSTERN_ERROR errors
 * with OpenSSL's reason text.
 */
#pragma once

#include <glib.h>

#include "config.h"

/* PREFIX_tls_security_level (Postfix's words). */
typedef enum {
  TLS_LEVEL_NONE,       /* no TLS offered */
  TLS_LEVEL_MAY,        /* STARTTLS offered (opportunistic) */
  TLS_LEVEL_ENCRYPT,    /* mail only after STARTTLS */
} TlsLevel;

/* "none", "may", "encrypt" ("" is none); FALSE for anything else. */
gboolean tls_level_parse(const char *text, TlsLevel *level);

/* Parses a protocol list as Postfix writes it (">=TLSv1.2", "<=TLSv1.3",
 * "!SSLv3, !TLSv1", "TLSv1.2 TLSv1.3") into OpenSSL's minimum and
 * maximum versions and SSL_OP_NO_* options; FALSE with a
 * POSTERN_ERROR_CONFIG error naming the bad word. */
gboolean tls_protocols_parse(const char *text, int *min_version, int *max_version,
                             guint64 *no_options, GError **error);

/* The OpenSSL cipher list of a Postfix cipher grade ("high", "medium",
 * "low", "export", "null") with the exclusions appended; NULL for an
 * unknown grade. */
char *tls_cipher_list(const char *grade, const char *const *exclude);

typedef struct _TlsServer TlsServer;

/* TRUE when PREFIX_tls_cert_file or PREFIX_tls_chain_files names a file. */
gboolean tls_server_configured(const Config *config, const char *prefix);
/* Builds the server context from PREFIX_tls_cert_file / _key_file /
 * _chain_files / _CAfile / _CApath, _protocols and _ciphers (or, with
 * mandatory, _mandatory_protocols and _mandatory_ciphers), the matching
 * _exclude_ciphers and _session_cache_timeout (0: no session reuse, no
 * tickets).  Errors name the parameter and file: "smtpd_tls_cert_file:
 * /x: cannot load certificate chain: ..." (POSTERN_ERROR_CONFIG). */
TlsServer *tls_server_new(const Config *config, const char *prefix, gboolean mandatory,
                          GError **error);
TlsServer *tls_server_ref(TlsServer *server);
void tls_server_unref(TlsServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TlsServer, tls_server_unref)

typedef struct _TlsConn TlsConn;

typedef enum {
  TLS_IO_DONE,          /* the step finished (handshake done, bytes moved) */
  TLS_IO_WANT_READ,     /* call again when the socket is readable */
  TLS_IO_WANT_WRITE,    /* call again when the socket is writable */
  TLS_IO_EOF,           /* the peer closed (close_notify or plain EOF) */
  TLS_IO_ERROR,         /* protocol or system error: error says which */
} TlsIo;

/* A server-side connection on fd (non-blocking; the caller keeps fd). */
TlsConn *tls_conn_new(TlsServer *server, int fd, GError **error);
void tls_conn_free(TlsConn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TlsConn, tls_conn_free)
TlsIo tls_conn_handshake(TlsConn *conn, GError **error);
/* At most len bytes into buf; *got set with TLS_IO_DONE. */
TlsIo tls_conn_read(TlsConn *conn, void *buf, gsize len, gsize *got, GError **error);
/* Up to len bytes of buf; *put set with TLS_IO_DONE.  After a WANT_*,
 * call again with the same bytes (the buffer may move). */
TlsIo tls_conn_write(TlsConn *conn, const void *buf, gsize len, gsize *put, GError **error);
/* Decrypted bytes wait inside OpenSSL (no poll event will say so). */
gboolean tls_conn_pending(TlsConn *conn);
/* Sends close_notify, once, without waiting for the peer's. */
void tls_conn_close_notify(TlsConn *conn);
/* The cipher's secret bits (SASL's external SSF). */
int tls_conn_bits(TlsConn *conn);
/* "TLSv1.3", as negotiated. */
const char *tls_conn_protocol(TlsConn *conn);
/* Postfix's description in two parts: "TLSv1.3 with cipher
 * TLS_AES_256_GCM_SHA384 (256/256 bits)" returned, and in *details (when
 * not NULL; "" when unknown) "key-exchange X25519 server-signature
 * RSA-PSS (2048 bits) server-digest SHA256". */
char *tls_conn_describe(TlsConn *conn, char **details);
