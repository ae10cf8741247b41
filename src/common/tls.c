/* tls.c - server-side TLS over OpenSSL 3 (tls.h).
 *
 * The context: certificates and keys (PREFIX_tls_cert_file with
 * PREFIX_tls_key_file, or each of PREFIX_tls_chain_files holding a key
 * and its chain), client CAs (PREFIX_tls_CAfile / _CApath), protocol
 * versions and cipher grades as Postfix names them, a server-side session
 * cache and tickets for PREFIX_tls_session_cache_timeout, renegotiation
 * off, small buffers while idle.  Connections are non-blocking: each
 * step says whether it needs the socket readable or writable, so the
 * caller's event loop never blocks on a slow or hostile peer.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

struct _TlsServer {
  gint ref;
  SSL_CTX *ctx;
};

struct _TlsConn {
  SSL *ssl;
  gboolean closed;      /* close_notify sent */
};

gboolean
tls_level_parse(const char *text, TlsLevel *level)
{
  if (text == NULL || *text == '\0' || g_ascii_strcasecmp(text, "none") == 0)
    *level = TLS_LEVEL_NONE;
  else if (g_ascii_strcasecmp(text, "may") == 0)
    *level = TLS_LEVEL_MAY;
  else if (g_ascii_strcasecmp(text, "encrypt") == 0)
    *level = TLS_LEVEL_ENCRYPT;
  else
    return FALSE;
  return TRUE;
}

/* OpenSSL's reason for the last failure, and the queue emptied. */
static char *
tls_reason(void)
{
  unsigned long e, last = 0;
  char buf[256];

  while ((e = ERR_get_error()) != 0)
    last = e;
  if (last == 0)
    return g_strdup("unknown OpenSSL error");
  ERR_error_string_n(last, buf, sizeof buf);
  return g_strdup(buf);
}

/* ---------------------------------------------------------------- protocols and ciphers */

static const struct {
  const char *name;
  int version;
  guint64 no_option;
} tls_protocols[] = {
  { "SSLv2", 0, 0 },            /* long gone from OpenSSL: excluding it is a no-op */
  { "SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3 },
  { "TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1 },
  { "TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1 },
  { "TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2 },
  { "TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3 },
};

static gint
tls_protocol_index(const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS(tls_protocols); i++)
    if (g_ascii_strcasecmp(name, tls_protocols[i].name) == 0)
      return (gint) i;
  return -1;
}

gboolean
tls_protocols_parse(const char *text, int *min_version, int *max_version, guint64 *no_options,
                    GError **error)
{
  g_auto(GStrv) words = g_strsplit_set(text ? text : "", ", \t:", -1);
  guint64 include = 0, exclude = 0;
  int lo = 0, hi = 0;

  for (char **w = words; *w; w++) {
    const char *name = *w;
    char how = 0;
    gint i;

    if (**w == '\0')
      continue;
    if (g_str_has_prefix(name, ">=") || g_str_has_prefix(name, "<=")) {
      how = name[0];
      name += 2;
    } else if (name[0] == '!') {
      how = '!';
      name++;
    }
    i = tls_protocol_index(name);
    if (i < 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "unknown TLS protocol \"%s\" (SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)", name);
      return FALSE;
    }
    if (how == '>')
      lo = MAX(lo, tls_protocols[i].version);
    else if (how == '<')
      hi = hi == 0 ? tls_protocols[i].version : MIN(hi, tls_protocols[i].version);
    else if (how == '!')
      exclude |= tls_protocols[i].no_option;
    else
      include |= 1u << i;
  }
  /* A list of protocols to use: everything else is excluded. */
  if (include != 0)
    for (guint i = 0; i < G_N_ELEMENTS(tls_protocols); i++)
      if (!(include & (1u << i)))
        exclude |= tls_protocols[i].no_option;
  if (lo != 0 && hi != 0 && lo > hi) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "no TLS protocol left in \"%s\"", text);
    return FALSE;
  }
  *min_version = lo;
  *max_version = hi;
  *no_options = exclude;
  return TRUE;
}

char *
tls_cipher_list(const char *grade, const char *const *exclude)
{
  /* Postfix's tls_*_cipherlist defaults. */
  static const char *const grades[][2] = {
    { "high", "aNULL:-aNULL:HIGH:@STRENGTH" },
    { "medium", "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH" },
    { "low", "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH" },
    { "export", "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH" },
    { "null", "eNULL:!aNULL" },
  };
  GString *out = NULL;

  for (guint i = 0; i < G_N_ELEMENTS(grades) && out == NULL; i++)
    if (g_ascii_strcasecmp(grade, grades[i][0]) == 0)
      out = g_string_new(grades[i][1]);
  if (out == NULL)
    return NULL;
  for (const char *const *e = exclude; e && *e; e++)
    if (**e)
      g_string_append_printf(out, ":!%s", *e);
  return g_string_free(out, FALSE);
}

/* ---------------------------------------------------------------- the context */

static const char *
tls_param(const Config *config, const char *prefix, const char *name, char *buf, gsize len)
{
  g_snprintf(buf, len, "%s_tls_%s", prefix, name);
  return buf;
}

gboolean
tls_server_configured(const Config *config, const char *prefix)
{
  char name[96];
  const char *const *chain = config_list(config, tls_param(config, prefix, "chain_files", name,
                                                           sizeof name));

  return *config_str(config, tls_param(config, prefix, "cert_file", name, sizeof name)) != '\0'
         || (chain && chain[0]);
}

/* A daemon cannot answer a passphrase prompt. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
  return 0;
}

/* A file OpenSSL cannot open gets errno's words, not "system lib". */
static gboolean
tls_readable(GError **error, const char *param, const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd >= 0) {
    close(fd);
    return TRUE;
  }
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: %s: %s", param, path,
              g_strerror(errno));
  return FALSE;
}

static gboolean
tls_fail(GError **error, const char *param, const char *path, const char *what)
{
  g_autofree char *why = tls_reason();

  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: %s: %s: %s", param, path, what,
              why);
  return FALSE;
}

/* The key could not be used: a mismatch says so in plain words. */
static gboolean
tls_fail_key(GError **error, const char *param, const char *path)
{
  unsigned long e = ERR_peek_last_error();

  if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
    ERR_clear_error();
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s: %s: the private key does not match the certificate", param, path);
    return FALSE;
  }
  {
    /* Is there a key at all?  OpenSSL's own reason ("PEM lib") does not say. */
    FILE *fp = fopen(path, "re");
    EVP_PKEY *pkey = fp ? PEM_read_PrivateKey(fp, NULL, tls_no_passphrase, NULL) : NULL;

    if (fp)
      fclose(fp);
    if (pkey == NULL) {
      ERR_clear_error();
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s: %s: no PEM private key in the file (or it needs a passphrase)", param,
                  path);
      return FALSE;
    }
    EVP_PKEY_free(pkey);
  }
  return tls_fail(error, param, path, "cannot load private key");
}

static gboolean
tls_server_load_keys(SSL_CTX *ctx, const Config *config, const char *prefix, GError **error)
{
  char cert_name[96], key_name[96], chain_name[96];
  const char *cert = config_str(config, tls_param(config, prefix, "cert_file", cert_name,
                                                  sizeof cert_name));
  const char *key = config_str(config, tls_param(config, prefix, "key_file", key_name,
                                                 sizeof key_name));
  const char *const *chain = config_list(config, tls_param(config, prefix, "chain_files",
                                                           chain_name, sizeof chain_name));

  if (chain && chain[0]) {
    /* Each file: a private key and its certificate chain. */
    for (const char *const *f = chain; *f; f++) {
      if (!tls_readable(error, chain_name, *f))
        return FALSE;
      if (SSL_CTX_use_certificate_chain_file(ctx, *f) != 1)
        return tls_fail(error, chain_name, *f, "cannot load certificate chain");
      if (SSL_CTX_use_PrivateKey_file(ctx, *f, SSL_FILETYPE_PEM) != 1)
        return tls_fail_key(error, chain_name, *f);
      if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(error, chain_name, *f, "the private key does not match the certificate");
    }
    return TRUE;
  }
  if (*key == '\0')
    key = cert;
  if (!tls_readable(error, cert_name, cert) || !tls_readable(error, key_name, key))
    return FALSE;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
    return tls_fail(error, cert_name, cert, "cannot load certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
    return tls_fail_key(error, key_name, key);
  if (SSL_CTX_check_private_key(ctx) != 1)
    return tls_fail(error, key_name, key, "the private key does not match the certificate");
  return TRUE;
}

TlsServer *
tls_server_new(const Config *config, const char *prefix, gboolean mandatory, GError **error)
{
  char name[96], ca_name[96];
  g_autofree char *ciphers = NULL;
  const char *grade, *ca_file, *ca_path;
  int min_version, max_version;
  guint64 no_options;
  gint64 cache_timeout;
  SSL_CTX *ctx;
  TlsServer *server;

  if (!tls_server_configured(config, prefix)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "TLS needs %s_tls_cert_file or %s_tls_chain_files", prefix, prefix);
    return NULL;
  }
  tls_param(config, prefix, mandatory ? "mandatory_protocols" : "protocols", name, sizeof name);
  if (!tls_protocols_parse(config_str(config, name), &min_version, &max_version, &no_options,
                           error)) {
    g_prefix_error(error, "%s: ", name);
    return NULL;
  }
  grade = config_str(config, tls_param(config, prefix, mandatory ? "mandatory_ciphers" : "ciphers",
                                       name, sizeof name));
  {
    char ex[96];
    ciphers = tls_cipher_list(grade, config_list(config, tls_param(config, prefix,
                                                                   mandatory
                                                                   ? "mandatory_exclude_ciphers"
                                                                   : "exclude_ciphers",
                                                                   ex, sizeof ex)));
  }
  if (ciphers == NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s: unknown cipher grade \"%s\" (high, medium, low, export, null)", name, grade);
    return NULL;
  }

  ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    g_autofree char *why = tls_reason();
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "cannot make a TLS context: %s", why);
    return NULL;
  }
  SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF
                           | SSL_OP_NO_COMPRESSION | no_options);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                        | SSL_MODE_RELEASE_BUFFERS);
  /* Never below TLS 1.0, whatever the list says (SSLv3 is broken). */
  SSL_CTX_set_min_proto_version(ctx, MAX(min_version, TLS1_VERSION));
  if (max_version != 0)
    SSL_CTX_set_max_proto_version(ctx, max_version);
  if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
    tls_fail(error, name, grade, "no usable cipher");
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (!tls_server_load_keys(ctx, config, prefix, error)) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  ca_file = config_str(config, tls_param(config, prefix, "CAfile", ca_name, sizeof ca_name));
  ca_path = config_str(config, tls_param(config, prefix, "CApath", name, sizeof name));
  if ((*ca_file || *ca_path)
      && SSL_CTX_load_verify_locations(ctx, *ca_file ? ca_file : NULL,
                                       *ca_path ? ca_path : NULL) != 1) {
    tls_fail(error, *ca_file ? ca_name : name, *ca_file ? ca_file : ca_path,
             "cannot load CA certificates");
    SSL_CTX_free(ctx);
    return NULL;
  }
  cache_timeout = config_time(config, tls_param(config, prefix, "session_cache_timeout", name,
                                                sizeof name));
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *) prefix,
                                 (unsigned int) MIN(strlen(prefix), SSL_MAX_SID_CTX_LENGTH));
  if (cache_timeout > 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, (long) cache_timeout);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  server = g_new0(TlsServer, 1);
  server->ref = 1;
  server->ctx = ctx;
  return server;
}

TlsServer *
tls_server_ref(TlsServer *server)
{
  g_atomic_int_inc(&server->ref);
  return server;
}

void
tls_server_unref(TlsServer *server)
{
  if (server && g_atomic_int_dec_and_test(&server->ref)) {
    SSL_CTX_free(server->ctx);
    g_free(server);
  }
}

/* ---------------------------------------------------------------- connections */

TlsConn *
tls_conn_new(TlsServer *server, int fd, GError **error)
{
  SSL *ssl = SSL_new(server->ctx);
  TlsConn *conn;

  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
    g_autofree char *why = tls_reason();
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "cannot start TLS: %s", why);
    SSL_free(ssl);
    return NULL;
  }
  SSL_set_accept_state(ssl);
  conn = g_new0(TlsConn, 1);
  conn->ssl = ssl;
  return conn;
}

void
tls_conn_free(TlsConn *conn)
{
  if (conn == NULL)
    return;
  SSL_free(conn->ssl);
  g_free(conn);
}

/* What an SSL_* call's result r means. */
static TlsIo
tls_conn_result(TlsConn *conn, int r, GError **error)
{
  int e = SSL_get_error(conn->ssl, r);

  switch (e) {
  case SSL_ERROR_WANT_READ:
    return TLS_IO_WANT_READ;
  case SSL_ERROR_WANT_WRITE:
    return TLS_IO_WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN:
    ERR_clear_error();
    return TLS_IO_EOF;
  case SSL_ERROR_SYSCALL:
    if (ERR_peek_error() == 0) {
      if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
        ERR_clear_error();
        return TLS_IO_EOF;
      }
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s", g_strerror(errno));
      return TLS_IO_ERROR;
    }
    /* OpenSSL says why */
    G_GNUC_FALLTHROUGH;
  default: {
    g_autofree char *why = tls_reason();
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s", why);
    return TLS_IO_ERROR;
  }
  }
}

TlsIo
tls_conn_handshake(TlsConn *conn, GError **error)
{
  int r;

  ERR_clear_error();
  errno = 0;
  r = SSL_do_handshake(conn->ssl);
  return r == 1 ? TLS_IO_DONE : tls_conn_result(conn, r, error);
}

TlsIo
tls_conn_read(TlsConn *conn, void *buf, gsize len, gsize *got, GError **error)
{
  size_t n = 0;
  int r;

  ERR_clear_error();
  errno = 0;
  r = SSL_read_ex(conn->ssl, buf, len, &n);
  if (r == 1) {
    *got = n;
    return TLS_IO_DONE;
  }
  return tls_conn_result(conn, r, error);
}

TlsIo
tls_conn_write(TlsConn *conn, const void *buf, gsize len, gsize *put, GError **error)
{
  size_t n = 0;
  int r;

  ERR_clear_error();
  errno = 0;
  r = SSL_write_ex(conn->ssl, buf, len, &n);
  if (r == 1) {
    *put = n;
    return TLS_IO_DONE;
  }
  return tls_conn_result(conn, r, error);
}

gboolean
tls_conn_pending(TlsConn *conn)
{
  return SSL_pending(conn->ssl) > 0;
}

void
tls_conn_close_notify(TlsConn *conn)
{
  if (conn->closed)
    return;
  conn->closed = TRUE;
  ERR_clear_error();
  if (SSL_is_init_finished(conn->ssl))
    SSL_shutdown(conn->ssl);    /* best effort; the peer's reply is not awaited */
  ERR_clear_error();
}

int
tls_conn_bits(TlsConn *conn)
{
  return SSL_get_cipher_bits(conn->ssl, NULL);
}

const char *
tls_conn_protocol(TlsConn *conn)
{
  return SSL_get_version(conn->ssl);
}

char *
tls_conn_describe(TlsConn *conn, char **details)
{
  SSL *ssl = conn->ssl;
  const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
  EVP_PKEY *key = SSL_get_privatekey(ssl);
  GString *out = g_string_new(NULL);
  int alg_bits = 0, bits = cipher ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
  int group = SSL_get_negotiated_group(ssl), digest = NID_undef;
  char *main_part = g_strdup_printf("%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
                                    cipher ? SSL_CIPHER_get_name(cipher) : "unknown", bits,
                                    alg_bits);

  if (group != 0 && group != NID_undef) {
    /* "X25519" as Postfix writes it; OpenSSL's own group names are lower case. */
    const char *g = (group & TLSEXT_nid_unknown) ? NULL : OBJ_nid2sn(group);
    if (g == NULL)
      g = SSL_group_to_name(ssl, group);
    if (g)
      g_string_append_printf(out, "key-exchange %s", g);
  }
  if (key != NULL) {
    const char *type;

    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      type = SSL_version(ssl) >= TLS1_3_VERSION ? "RSA-PSS" : "RSA";
      break;
    case EVP_PKEY_RSA_PSS: type = "RSA-PSS"; break;
    case EVP_PKEY_EC: type = "ECDSA"; break;
    case EVP_PKEY_ED25519: type = "ED25519"; break;
    case EVP_PKEY_ED448: type = "ED448"; break;
    default: type = "unknown";
    }
    g_string_append_printf(out, "%sserver-signature %s (%d bits)", out->len ? " " : "", type,
                           EVP_PKEY_get_bits(key));
    if (SSL_get_signature_nid(ssl, &digest) == 1 && digest != NID_undef)
      g_string_append_printf(out, " server-digest %s", OBJ_nid2sn(digest));
  }
  /* Postfix names the key exchange and signature for TLS 1.3 only */
  if (SSL_version(ssl) < TLS1_3_VERSION)
    g_string_truncate(out, 0);
  if (details)
    *details = g_string_free(g_steal_pointer(&out), FALSE);
  else
    g_string_free(out, TRUE);
  return main_part;
}
