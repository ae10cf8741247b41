/* auth-sasl.c - Cyrus SASL server glue (auth-sasl.h).
 *
 * The library is set up once: real mutexes (GMutex) so that exchanges can
 * run in worker threads, the configuration path callback
 * (cyrus_sasl_config_path), and the library's log messages passed on as
 * warnings.  Each exchange is one sasl_conn_t with the security
 * properties of its channel (SASL_SEC_* flags, the TLS cipher bits as
 * the external SSF, no SASL security layer: SMTP and POP3 here never
 * negotiate one).  What the client learns of a failure is only
 * "authentication failure": whether a user exists is not its business.
 */
#include "auth-sasl.h"

#include <sasl/sasl.h>
#include <string.h>

#include "log.h"

struct _AuthSasl {
  sasl_conn_t *conn;
};

G_LOCK_DEFINE_STATIC(auth_sasl_init);
static char *auth_sasl_app;
static char *auth_sasl_config_path;

/* ---------------------------------------------------------------- the library */

static void *
auth_sasl_mutex_alloc(void)
{
  GMutex *m = g_new(GMutex, 1);

  g_mutex_init(m);
  return m;
}

static int
auth_sasl_mutex_lock(void *m)
{
  g_mutex_lock(m);
  return SASL_OK;
}

static int
auth_sasl_mutex_unlock(void *m)
{
  g_mutex_unlock(m);
  return SASL_OK;
}

static void
auth_sasl_mutex_free(void *m)
{
  g_mutex_clear(m);
  g_free(m);
}

static int
auth_sasl_getconfpath(void *context, const char **path)
{
  *path = auth_sasl_config_path;
  return SASL_OK;
}

/* Postfix's words (xsasl_cyrus_log). */
static int
auth_sasl_log(void *context, int level, const char *message)
{
  if (message == NULL)
    return SASL_OK;
  if (level == SASL_LOG_ERR || level == SASL_LOG_FAIL)
    log_warning("SASL authentication failure: %s", message);
  else if (level == SASL_LOG_WARN)
    log_warning("SASL authentication problem: %s", message);
  return SASL_OK;
}

/* sasl_callback_t holds every callback as int (*)(void). */
#define AUTH_SASL_CB(fn) ((int (*)(void)) (void (*)(void)) (fn))

gboolean
auth_sasl_init(const char *app, const char *config_path, GError **error)
{
  static sasl_callback_t with_path[] = {
    { SASL_CB_LOG, AUTH_SASL_CB(auth_sasl_log), NULL },
    { SASL_CB_GETCONFPATH, AUTH_SASL_CB(auth_sasl_getconfpath), NULL },
    { SASL_CB_LIST_END, NULL, NULL },
  };
  static sasl_callback_t default_path[] = {
    { SASL_CB_LOG, AUTH_SASL_CB(auth_sasl_log), NULL },
    { SASL_CB_LIST_END, NULL, NULL },
  };
  gboolean ok = TRUE;
  int r;

  G_LOCK(auth_sasl_init);
  if (auth_sasl_app != NULL) {
    if (strcmp(auth_sasl_app, app) != 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "the SASL application stays \"%s\" until a restart (not \"%s\")",
                  auth_sasl_app, app);
      ok = FALSE;
    }
    G_UNLOCK(auth_sasl_init);
    return ok;
  }
  /* Cyrus reads ":"-separated directories */
  auth_sasl_config_path = config_path && *config_path ? g_strdelimit(g_strdup(config_path),
                                                                     ", ", ':')
                                                      : NULL;
  sasl_set_mutex(auth_sasl_mutex_alloc, auth_sasl_mutex_lock, auth_sasl_mutex_unlock,
                 auth_sasl_mutex_free);
  r = sasl_server_init(auth_sasl_config_path ? with_path : default_path, app);
  if (r != SASL_OK) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "SASL initialization failed: %s",
                sasl_errstring(r, NULL, NULL));
    g_clear_pointer(&auth_sasl_config_path, g_free);
    ok = FALSE;
  } else {
    auth_sasl_app = g_strdup(app);
  }
  G_UNLOCK(auth_sasl_init);
  return ok;
}

gboolean
auth_sasl_security_flags(const char *const *words, guint *flags, GError **error)
{
  static const struct {
    const char *name;
    guint flag;
  } options[] = {
    { "noanonymous", SASL_SEC_NOANONYMOUS }, { "noplaintext", SASL_SEC_NOPLAINTEXT },
    { "noactive", SASL_SEC_NOACTIVE }, { "nodictionary", SASL_SEC_NODICTIONARY },
    { "forward_secrecy", SASL_SEC_FORWARD_SECRECY }, { "mutual_auth", SASL_SEC_MUTUAL_AUTH },
  };

  *flags = 0;
  for (const char *const *w = words; w && *w; w++) {
    guint i;

    for (i = 0; i < G_N_ELEMENTS(options); i++)
      if (g_ascii_strcasecmp(*w, options[i].name) == 0)
        break;
    if (i == G_N_ELEMENTS(options)) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "unknown SASL security option \"%s\" (noanonymous, noplaintext, noactive, "
                  "nodictionary, forward_secrecy, mutual_auth)", *w);
      return FALSE;
    }
    *flags |= options[i].flag;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- base64 */

guchar *
auth_sasl_decode(const char *text, gsize *len)
{
  gsize n = strlen(text), pad = 0;

  if (n % 4 != 0)
    return NULL;
  for (gsize i = 0; i < n; i++) {
    char c = text[i];

    if (c == '=') {
      if (i < n - 2)
        return NULL;
      pad++;
    } else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
      return NULL;
    }
  }
  if (n == 0) {
    *len = 0;
    return (guchar *) g_strdup("");
  }
  return g_base64_decode(text, len);
}

/* ---------------------------------------------------------------- exchanges */

AuthSasl *
auth_sasl_new(const AuthSaslParams *p, GError **error)
{
  sasl_security_properties_t props = { 0 };
  sasl_ssf_t ssf = p->external_ssf;
  AuthSasl *sasl = g_new0(AuthSasl, 1);
  int r;

  r = sasl_server_new(p->service, p->hostname, p->realm && *p->realm ? p->realm : NULL,
                      p->local_addr, p->remote_addr, NULL, 0, &sasl->conn);
  if (r != SASL_OK) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "SASL per-connection initialization failed: %s", sasl_errstring(r, NULL, NULL));
    g_free(sasl);
    return NULL;
  }
  props.security_flags = p->security_flags;
  props.max_ssf = 0;          /* no security layer */
  props.maxbufsize = 0;
  sasl_setprop(sasl->conn, SASL_SEC_PROPS, &props);
  if (ssf > 0)
    sasl_setprop(sasl->conn, SASL_SSF_EXTERNAL, &ssf);
  return sasl;
}

void
auth_sasl_free(AuthSasl *sasl)
{
  if (sasl == NULL)
    return;
  sasl_dispose(&sasl->conn);
  g_free(sasl);
}

char *
auth_sasl_mechanisms(AuthSasl *sasl)
{
  const char *list = NULL;
  unsigned len = 0;
  int count = 0;

  if (sasl_listmech(sasl->conn, NULL, "", " ", "", &list, &len, &count) != SASL_OK || !list)
    return g_strdup("");
  return g_strndup(list, len);
}

static AuthSaslResult
auth_sasl_result(AuthSasl *sasl, int r, const char *data, unsigned len, char **out)
{
  switch (r) {
  case SASL_OK:
    *out = NULL;
    return AUTH_SASL_DONE;
  case SASL_CONTINUE:
    *out = len > 0 ? g_base64_encode((const guchar *) data, len) : g_strdup("");
    return AUTH_SASL_MORE;
  case SASL_NOMECH:
    *out = g_strdup("no mechanism available");    /* Postfix's text */
    return AUTH_SASL_NOMECH;
  case SASL_BADPROT:
    *out = g_strdup("bad protocol / cancel");      /* a malformed exchange, as Postfix says */
    return AUTH_SASL_FAIL;
  case SASL_TRYAGAIN:
  case SASL_UNAVAIL:
  case SASL_NOMEM:
    *out = g_strdup(sasl_errstring(r, NULL, NULL));
    return AUTH_SASL_TEMP;
  default:
    *out = g_strdup("authentication failure");
    return AUTH_SASL_FAIL;
  }
}

AuthSaslResult
auth_sasl_start(AuthSasl *sasl, const char *mech, const char *initial, char **out)
{
  g_autofree guchar *data = NULL;
  const char *serverout = NULL;
  unsigned outlen = 0;
  gsize len = 0;
  int r;

  if (initial != NULL && strcmp(initial, "=") != 0) {
    data = auth_sasl_decode(initial, &len);
    if (data == NULL) {
      *out = g_strdup("Cannot decode response");
      return AUTH_SASL_BAD_BASE64;
    }
  } else if (initial != NULL) {
    data = (guchar *) g_strdup("");    /* "=": an empty initial response */
  }
  r = sasl_server_start(sasl->conn, mech, (const char *) data, (unsigned) len, &serverout,
                        &outlen);
  return auth_sasl_result(sasl, r, serverout, outlen, out);
}

AuthSaslResult
auth_sasl_checkpass(AuthSasl *sasl, const char *user, const char *password, char **out)
{
  gsize ulen = strlen(user), plen = strlen(password);

  if (ulen == 0 || ulen > G_MAXUINT16 || plen > G_MAXUINT16) {
    *out = g_strdup("authentication failure");
    return AUTH_SASL_FAIL;
  }
  return auth_sasl_result(sasl, sasl_checkpass(sasl->conn, user, (unsigned) ulen, password,
                                               (unsigned) plen), NULL, 0, out);
}

AuthSaslResult
auth_sasl_step(AuthSasl *sasl, const char *response, char **out)
{
  g_autofree guchar *data = NULL;
  const char *serverout = NULL;
  unsigned outlen = 0;
  gsize len = 0;
  int r;

  data = auth_sasl_decode(response, &len);
  if (data == NULL) {
    *out = g_strdup("Cannot decode response");
    return AUTH_SASL_BAD_BASE64;
  }
  r = sasl_server_step(sasl->conn, (const char *) data, (unsigned) len, &serverout, &outlen);
  return auth_sasl_result(sasl, r, serverout, outlen, out);
}

const char *
auth_sasl_username(AuthSasl *sasl)
{
  const void *name = NULL;

  if (sasl_getprop(sasl->conn, SASL_USERNAME, &name) != SASL_OK)
    return NULL;
  return name;
}
