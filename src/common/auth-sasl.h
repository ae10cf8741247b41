/* auth-sasl.h - the server side of Cyrus SASL (libsasl2), shared by smtpd
 * and pop3d: one library initialization per process, one AuthSasl per
 * authentication exchange, base64 on the wire as SMTP AUTH (RFC 4954)
 * and POP3 AUTH (RFC 5034) carry it.
 *
 * The steps may block (saslauthd's socket, an SQL auxprop server): call
 * them from a worker thread.  The library's mutexes are set up here, so
 * exchanges may run in several threads at once.  Library code: no
 * logging, except what the SASL library itself reports (to the log as
 * warnings).
 */
#pragma once

#include <glib.h>

#include "config.h"

/* sasl_server_init() with app (the PATH of PATH.conf) and config_path
 * (cyrus_sasl_config_path; empty: the library's default), once per
 * process.  A second call with another app name changes nothing and
 * returns FALSE with a POSTERN_ERROR_CONFIG error saying so. */
gboolean auth_sasl_init(const char *app, const char *config_path, GError **error);

/* Parses smtpd_sasl_security_options words (noanonymous, noplaintext,
 * noactive, nodictionary, forward_secrecy, mutual_auth) into SASL_SEC_*
 * flags; FALSE with a POSTERN_ERROR_CONFIG error naming a bad word. */
gboolean auth_sasl_security_flags(const char *const *words, guint *flags, GError **error);

typedef struct _AuthSasl AuthSasl;

typedef struct {
  const char *service;      /* "smtp", "pop" */
  const char *hostname;     /* myhostname */
  const char *realm;        /* smtpd_sasl_local_domain, or NULL */
  const char *local_addr;   /* "127.0.0.1;25", or NULL */
  const char *remote_addr;
  guint security_flags;     /* auth_sasl_security_flags() */
  guint external_ssf;       /* TLS cipher bits, 0 without TLS */
} AuthSaslParams;

AuthSasl *auth_sasl_new(const AuthSaslParams *params, GError **error);
void auth_sasl_free(AuthSasl *sasl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthSasl, auth_sasl_free)

/* The mechanisms this exchange may use, space-separated ("PLAIN LOGIN"). */
char *auth_sasl_mechanisms(AuthSasl *sasl);

typedef enum {
  AUTH_SASL_DONE,       /* authenticated */
  AUTH_SASL_MORE,       /* *out: the next challenge, base64 (may be "") */
  AUTH_SASL_FAIL,       /* *out: why ("authentication failure") */
  AUTH_SASL_TEMP,       /* *out: why: try again later (454) */
  AUTH_SASL_NOMECH,     /* not a mechanism this exchange may use */
  AUTH_SASL_BAD_BASE64, /* the client's data is not base64 */
} AuthSaslResult;

/* Starts mechanism mech with the client's initial response (base64, "="
 * for an empty one; NULL: none). */
AuthSaslResult auth_sasl_start(AuthSasl *sasl, const char *mech, const char *initial,
                               char **out);
/* The client's answer (base64) to the last challenge. */
AuthSaslResult auth_sasl_step(AuthSasl *sasl, const char *response, char **out);
/* Checks a login name and password as PLAIN would (sasl_checkpass():
 * saslauthd, sasldb, an auxprop store), for POP3's USER/PASS. */
AuthSaslResult auth_sasl_checkpass(AuthSasl *sasl, const char *user, const char *password,
                                   char **out);
/* After AUTH_SASL_DONE: the login name; NULL before (or the name being
 * tried, after a failure, for the log). */
const char *auth_sasl_username(AuthSasl *sasl);

/* Strict base64 (RFC 4648 alphabet, padding only at the end, length a
 * multiple of 4; "" is empty data); NULL when malformed. */
guchar *auth_sasl_decode(const char *text, gsize *len);
