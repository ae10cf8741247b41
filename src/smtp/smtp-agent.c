/* smtp-agent.c - postern-smtp, the SMTP client's delivery agent
 * (docs/smtp-client.md).  qmgr keeps a pool of them, each already
 * running as mail_owner, and talks to each over a SOCK_SEQPACKET socket
 * on fd 3: one datagram per request, carrying the queue file (read-only)
 * as SCM_RIGHTS and these lines:
 *
 *   Q queue-id          H next-hops          M offset size
 *   S sender            8 (8BITMIME body)    U (received with SMTPUTF8)
 *   E envid             T FULL|HDRS          A hop-index user:password
 *   R recipient         N notify-keywords    O orcpt   (N, O: of the R before)
 *   P hop-index smtp_tls_policy_maps-entry     F smtp_fallback_relay hops
 *
 * and one datagram back: per recipient "INDEX STATUS DSN RELAY TEXT"
 * (STATUS S sent, P sent to a server that took the DSN request along, so
 * any success notice is its job; D deferred, B bounced), "C SETUP-US USES"
 * for the session that decided (microseconds from the request to its MAIL
 * command: lookups, connections, greeting, EHLO, TLS, AUTH; and the how
 * many-th transaction of its connection it was), then "T" when no host of the
 * destination could be reached at all (qmgr throttles it).
 *
 *   postern-smtp --config-dir DIR
 *
 * The next hops are tried in order; an MX hop is looked up (MX records by
 * preference, equal ones shuffled; the name's own addresses when it has
 * none; a null MX or a name that does not exist bounces, a lookup that
 * cannot be answered defers), every address of every host is tried until
 * one session decides the recipients.  A host that refuses the
 * connection, greets with 4xx/5xx or drops the session before MAIL is
 * answered passes the recipients on to the next.  After a transaction the
 * connection is kept for smtp_connection_cache_time_limit: the next
 * request for the same next hops uses it without a new greeting, EHLO,
 * TLS handshake or AUTH (a cached connection that turns out dead before
 * MAIL is answered costs nothing: the request starts over).  Plain
 * blocking code with a deadline on every wait.  The agent exits when qmgr
 * closes the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/nameser.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "dns.h"
#include "inet.h"
#include "log.h"
#include "route.h"
#include "tls.h"
#include "smtp-client-proto.h"

typedef struct {
  int fd;
  char *name;                 /* "mx.example[192.0.2.1]:25" */
  char *label;                /* "mx.example[192.0.2.1]": Postfix's texts name hosts so */
  char *host;                 /* the name we looked up (for TLS: SNI, verification) */
  char *addr;                 /* its numeric address */
  GString *in;
  SSL *ssl;                   /* after STARTTLS */
  char *tls_key;              /* its session's key in the agent's session cache */
  guint uses;                 /* transactions begun on it */
  gboolean no_tls;            /* a second try in plaintext after a failed handshake (may) */
} Conn;

typedef struct {
  /* the process */
  Config *config;
  const char *helo_name;
  gboolean v4, v6;
  Conn *cached;               /* the last session, kept for the next request */
  char *cached_nexthop;       /* ... for these next hops and credentials (agent_cache_key) */
  SmtpClientCaps cached_caps;
  gint64 cached_idle_since, cached_born;   /* monotonic microseconds */

  /* one request */
  char *queue_id;
  char *nexthop;
  int msg_fd;
  gint64 offset, size;
  gboolean eightbit, smtputf8;
  char *sender, *envid, *ret;
  GPtrArray *rcpts;           /* char *, NULL-terminated */
  GPtrArray *notify, *orcpt;  /* char * or NULL, one per recipient */
  SmtpClientTx *tx;           /* the decisions so far */
  gboolean tx_dsn;            /* its server offered DSN (NOTIFY went along) */
  gint64 started_us;          /* monotonic: the request came */
  gint64 setup_us;            /* from then to the transaction's MAIL */
  guint conn_use;             /* the transaction's number on its connection */
  SmtpClientCaps caps;
  char *last_error;           /* why the last host did not do: the deferral text */
  gboolean bounce_all;        /* the destination says no mail (null MX, no such domain) */
  char *relay;                /* "host[addr]:port" of the session that decided */
  char *relay_label;          /* "host[addr]" of it */
  GHashTable *auth;           /* hop index -> "user:password" (smtp_sasl_password_maps, from qmgr) */
  GHashTable *policy;         /* hop index -> smtp_tls_policy_maps entry (from qmgr) */
  char *fallback;             /* smtp_fallback_relay hops, or NULL */
  gboolean null_mx;           /* bounce_all because of a null MX: no fallback */
  const char *cur_auth;       /* the current hop's */
  const char *cur_policy;     /* the current hop's, or NULL: smtp_tls_security_level */
  const char *cur_hop_host;   /* the current hop's host or domain ("nexthop" for match=) */
} Agent;

static void
agent_error(Agent *a, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
conn_free(Conn *c)
{
  if (c == NULL)
    return;
  if (c->ssl != NULL) {
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  if (c->fd >= 0)
    close(c->fd);
  if (c->in != NULL)
    g_string_free(c->in, TRUE);
  g_free(c->name);
  g_free(c->label);
  g_free(c->host);
  g_free(c->addr);
  g_free(c->tls_key);
  g_free(c);
}

static void
agent_error(Agent *a, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  g_free(a->last_error);
  a->last_error = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  log_qid(LOG_INFO, a->queue_id, "%s", a->last_error);
}

/* ---------------------------------------------------------------- I/O with deadlines */

static gboolean
wait_fd(int fd, short events, gint64 timeout_s)
{
  struct pollfd p = { .fd = fd, .events = events };
  gint64 ms = timeout_s > G_MAXINT / 1000 ? G_MAXINT : timeout_s * 1000;
  int r;

  do
    r = poll(&p, 1, (int) ms);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    errno = ETIMEDOUT;
  return r > 0;
}

/* One send or receive, plain or through TLS: bytes moved, or -1 with
 * errno (EAGAIN with *events: what to wait for). */
static ssize_t
conn_io(Conn *c, gboolean out, void *buf, gsize len, short *events)
{
  int n, err;

  *events = out ? POLLOUT : POLLIN;
  if (c->ssl == NULL)
    return out ? send(c->fd, buf, len, MSG_NOSIGNAL) : recv(c->fd, buf, len, 0);
  ERR_clear_error();
  n = out ? SSL_write(c->ssl, buf, (int) MIN(len, G_MAXINT))
          : SSL_read(c->ssl, buf, (int) MIN(len, G_MAXINT));
  if (n > 0)
    return n;
  err = SSL_get_error(c->ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    *events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    errno = EAGAIN;
    return -1;
  }
  if (err == SSL_ERROR_ZERO_RETURN)
    return 0;
  if (err != SSL_ERROR_SYSCALL || errno == 0)
    errno = EPROTO;
  return err == SSL_ERROR_SYSCALL && n == 0 ? 0 : -1;
}

static gboolean
conn_write(Conn *c, const char *buf, gsize len, gint64 timeout_s)
{
  while (len > 0) {
    short events;
    ssize_t n = conn_io(c, TRUE, (void *) buf, len, &events);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_fd(c->fd, events, timeout_s))
        return FALSE;
      continue;
    }
    if (n <= 0)
      return FALSE;
    buf += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* One complete reply; FALSE on timeout, EOF or a malformed reply (errno
 * EPROTO). */
static gboolean
conn_reply(Conn *c, SmtpClientReply *reply, gint64 timeout_s)
{
  memset(reply, 0, sizeof *reply);
  for (;;) {
    char *lf = memchr(c->in->str, '\n', c->in->len);

    if (lf != NULL) {
      gsize len = (gsize) (lf - c->in->str);
      SmtpReplyStep step;

      if (len > 0 && c->in->str[len - 1] == '\r')
        len--;
      step = smtp_client_reply_feed(reply, c->in->str, len);
      g_string_erase(c->in, 0, lf - c->in->str + 1);
      if (step == SMTP_REPLY_DONE)
        return TRUE;
      if (step == SMTP_REPLY_BAD) {
        smtp_client_reply_clear(reply);
        errno = EPROTO;
        return FALSE;
      }
      continue;
    }
    if (c->in->len > 64 * 1024) {
      smtp_client_reply_clear(reply);
      errno = EPROTO;
      return FALSE;
    }
    {
      char buf[4096];
      short events;
      ssize_t n = conn_io(c, FALSE, buf, sizeof buf, &events);

      if (n > 0) {
        g_string_append_len(c->in, buf, n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN) {
        if (!wait_fd(c->fd, events, timeout_s)) {
          smtp_client_reply_clear(reply);
          return FALSE;
        }
        continue;
      }
      if (n == 0)
        errno = ECONNRESET;
      smtp_client_reply_clear(reply);
      return FALSE;
    }
  }
}

static int
conn_open(const struct sockaddr *sa, socklen_t len, gint64 timeout_s)
{
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = 0, one = 1;
  socklen_t elen = sizeof err;

  if (fd < 0)
    return -1;
  if (connect(fd, sa, len) < 0) {
    if (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, MAX(timeout_s, 1))) {
      int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
      close(fd);
      errno = err ? err : EIO;
      return -1;
    }
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* ---------------------------------------------------------------- one session */

typedef enum {
  SESSION_DONE,               /* the recipients are decided */
  SESSION_NEXT,               /* this host did not do; try the next */
  SESSION_RETRY_PLAIN,        /* the TLS handshake failed under "may": again without TLS */
} SessionResult;

static const char *
reply_stage(SmtpTxState s)
{
  switch (s) {
  case SMTP_TX_MAIL: return "MAIL FROM";
  case SMTP_TX_RCPT: return "RCPT TO";
  case SMTP_TX_DATA: return "DATA";
  default: return "end of DATA";
  }
}

static gint64
stage_timeout(const Agent *a, SmtpTxState s)
{
  switch (s) {
  case SMTP_TX_MAIL: return config_time(a->config, "smtp_mail_timeout");
  case SMTP_TX_RCPT: return config_time(a->config, "smtp_rcpt_timeout");
  case SMTP_TX_DATA: return config_time(a->config, "smtp_data_init_timeout");
  default: return config_time(a->config, "smtp_data_done_timeout");
  }
}

/* qmgr closed its end of fd 3 (it stopped or died). */
static gboolean
agent_qmgr_gone(void)
{
  struct pollfd p = { .fd = 3, .events = POLLRDHUP };

  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* The message from the queue file, dot-stuffed, then ".". */
static gboolean
session_body(Agent *a, Conn *c)
{
  gint64 timeout = config_time(a->config, "smtp_data_xfer_timeout");
  g_autoptr(GString) out = g_string_sized_new(64 * 1024);
  char buf[32 * 1024];
  gint64 done = 0;
  SmtpDotStuffer d;

  smtp_dot_stuffer_init(&d);
  while (done < a->size) {
    ssize_t n = pread(a->msg_fd, buf, MIN((gint64) sizeof buf, a->size - done), a->offset + done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      agent_error(a, "cannot read the queue file: %s", n == 0 ? "short file" : g_strerror(errno));
      return FALSE;
    }
    done += n;
    smtp_dot_stuffer_feed(&d, buf, (gsize) n, out);
    if (out->len >= 32 * 1024) {
      if (!conn_write(c, out->str, out->len, timeout))
        return FALSE;
      g_string_truncate(out, 0);
    }
  }
  if (agent_qmgr_gone()) {
    /* nobody would record the delivery: without the final dot the server
     * drops the message, and the next qmgr delivers it once */
    errno = ECONNABORTED;
    return FALSE;
  }
  smtp_dot_stuffer_finish(&d, out);
  return conn_write(c, out->str, out->len, timeout);
}

/* ---------------------------------------------------------------- STARTTLS */

typedef enum {
  TLS_LEVEL_C_NONE, TLS_LEVEL_C_MAY, TLS_LEVEL_C_ENCRYPT, TLS_LEVEL_C_VERIFY, TLS_LEVEL_C_SECURE,
} ClientTlsLevel;

/* The level of the current hop: its smtp_tls_policy_maps entry's first
 * word, else smtp_tls_security_level.  "dane" is "may" here (no DNSSEC
 * validation: Postfix falls back the same way); an unknown word is read
 * as "encrypt", the safe side. */
static ClientTlsLevel
agent_tls_level(const Agent *a)
{
  static const char *const names[] = { "none", "may", "encrypt", "verify", "secure" };
  const char *v = config_str(a->config, "smtp_tls_security_level");
  g_autofree char *word = NULL;

  if (a->cur_policy != NULL) {
    gsize n = strcspn(a->cur_policy, " \t");
    word = g_strndup(a->cur_policy, n);
    v = word;
  }
  if (*v == '\0' || g_ascii_strcasecmp(v, "dane") == 0)
    return TLS_LEVEL_C_MAY;       /* Postern's default: opportunistic (docs/smtp-client.md) */
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    if (g_ascii_strcasecmp(v, names[i]) == 0)
      return (ClientTlsLevel) i;
  return TLS_LEVEL_C_ENCRYPT;     /* an unknown word: the safe reading */
}

/* An attribute "name=value" of the current hop's policy entry, or NULL. */
static char *
agent_policy_attr(const Agent *a, const char *name)
{
  g_auto(GStrv) words = NULL;
  gsize len = strlen(name);

  if (a->cur_policy == NULL)
    return NULL;
  words = g_strsplit_set(a->cur_policy, " \t", -1);
  for (guint i = 1; words[i]; i++)
    if (g_ascii_strncasecmp(words[i], name, len) == 0 && words[i][len] == '=')
      return g_strdup(words[i] + len + 1);
  return NULL;
}

static SSL_CTX *agent_tls_ctx;
static gboolean agent_tls_cas_loaded;

/* TLS sessions for resumption, in this agent's memory: key (server, TLS
 * level, policy, next hop: what verification depended on) -> session,
 * for smtp_tls_session_cache_timeout.  A session only exists after a
 * handshake that passed its level's checks. */
typedef struct {
  SSL_SESSION *session;
  gint64 expires;             /* monotonic microseconds */
} CachedSession;

static GHashTable *agent_tls_sessions;
static gint64 agent_tls_session_timeout;   /* seconds; 0: no cache */
static int agent_tls_key_index = -1;

static void
cached_session_free(gpointer p)
{
  CachedSession *cs = p;

  SSL_SESSION_free(cs->session);
  g_free(cs);
}

/* OpenSSL hands over each new session (TLS 1.3: each ticket, after the
 * handshake); returns 1: ours now. */
static int
agent_tls_new_session(SSL *ssl, SSL_SESSION *session)
{
  const char *key = SSL_get_ex_data(ssl, agent_tls_key_index);
  CachedSession *cs;

  if (key == NULL || agent_tls_session_timeout <= 0 || !SSL_SESSION_is_resumable(session))
    return 0;
  if (agent_tls_sessions == NULL)
    agent_tls_sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                               cached_session_free);
  if (g_hash_table_size(agent_tls_sessions) >= 1000) {
    /* a bound: forget the expired ones, then all */
    GHashTableIter it;
    gpointer v;
    gint64 now = g_get_monotonic_time();

    g_hash_table_iter_init(&it, agent_tls_sessions);
    while (g_hash_table_iter_next(&it, NULL, &v))
      if (((CachedSession *) v)->expires <= now)
        g_hash_table_iter_remove(&it);
    if (g_hash_table_size(agent_tls_sessions) >= 1000)
      g_hash_table_remove_all(agent_tls_sessions);
  }
  cs = g_new0(CachedSession, 1);
  cs->session = session;
  cs->expires = g_get_monotonic_time()
                + MIN(agent_tls_session_timeout, (gint64) SSL_SESSION_get_timeout(session))
                  * G_USEC_PER_SEC;
  g_hash_table_replace(agent_tls_sessions, g_strdup(key), cs);
  return 1;
}

/* The cached session for key, if still good (taken out: a session is
 * resumed once, as TLS 1.3 tickets are meant to be). */
static SSL_SESSION *
agent_tls_cached_session(const char *key)
{
  CachedSession *cs = agent_tls_sessions ? g_hash_table_lookup(agent_tls_sessions, key) : NULL;
  SSL_SESSION *session = NULL;

  if (cs == NULL)
    return NULL;
  if (cs->expires > g_get_monotonic_time()) {
    session = cs->session;
    cs->session = NULL;
  }
  g_hash_table_remove(agent_tls_sessions, key);
  return session;
}

static SSL_CTX *
agent_tls_context(Agent *a, ClientTlsLevel level)
{
  const char *cafile = config_str(a->config, "smtp_tls_CAfile");
  const char *capath = config_str(a->config, "smtp_tls_CApath");
  int min_version = 0, max_version = 0;
  guint64 no_options = 0;
  g_autoptr(GError) error = NULL;

  if (agent_tls_ctx != NULL)
    goto cas;
  agent_tls_ctx = SSL_CTX_new(TLS_client_method());
  if (agent_tls_ctx == NULL)
    return NULL;
  if (tls_protocols_parse(config_str(a->config, "smtp_tls_protocols"), &min_version,
                          &max_version, &no_options, &error)) {
    SSL_CTX_set_min_proto_version(agent_tls_ctx, MAX(min_version, TLS1_VERSION));
    if (max_version)
      SSL_CTX_set_max_proto_version(agent_tls_ctx, max_version);
    SSL_CTX_set_options(agent_tls_ctx, (long) no_options);
  } else {
    log_warning("%s; using >=TLSv1.2", error->message);
    SSL_CTX_set_min_proto_version(agent_tls_ctx, TLS1_2_VERSION);
  }
  SSL_CTX_set_verify(agent_tls_ctx, SSL_VERIFY_NONE, NULL);
  agent_tls_session_timeout = config_time(a->config, "smtp_tls_session_cache_timeout");
  if (agent_tls_session_timeout > 0) {
    agent_tls_key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX_set_session_cache_mode(agent_tls_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(agent_tls_ctx, agent_tls_new_session);
  }
cas:
  /* The trusted CAs once a destination needs them (the agent serves
   * many, each with its own level: the verify mode is per connection). */
  if (level >= TLS_LEVEL_C_VERIFY && !agent_tls_cas_loaded) {
    agent_tls_cas_loaded = TRUE;
    if ((*cafile || *capath)
        ? SSL_CTX_load_verify_locations(agent_tls_ctx, *cafile ? cafile : NULL,
                                        *capath ? capath : NULL) != 1
        : SSL_CTX_set_default_verify_paths(agent_tls_ctx) != 1)
      log_warning("smtp_tls_CAfile/smtp_tls_CApath: cannot load the trusted CAs");
  }
  return agent_tls_ctx;
}

/* The handshake after "220 Ready to start TLS"; FALSE with last_error. */
static gboolean
session_tls(Agent *a, Conn *c, ClientTlsLevel level)
{
  SSL_CTX *ctx = agent_tls_context(a, level);
  gint64 timeout = config_time(a->config, "smtp_helo_timeout");
  gboolean ip = strcmp(c->host, c->addr) == 0;

  if (ctx == NULL || (c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    agent_error(a, "cannot start TLS with %s: out of memory", c->name);
    return FALSE;
  }
  if (!ip)
    SSL_set_tlsext_host_name(c->ssl, c->host);
  SSL_set_verify(c->ssl, level >= TLS_LEVEL_C_VERIFY ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  {
    g_autofree char *protocols = agent_policy_attr(a, "protocols");
    int min_version = 0, max_version = 0;
    guint64 no_options = 0;
    g_autoptr(GError) perr = NULL;

    if (protocols != NULL) {
      g_strdelimit(protocols, ":", ' ');
      if (tls_protocols_parse(protocols, &min_version, &max_version, &no_options, &perr)) {
        SSL_set_min_proto_version(c->ssl, MAX(min_version, TLS1_VERSION));
        if (max_version)
          SSL_set_max_proto_version(c->ssl, max_version);
        SSL_set_options(c->ssl, (long) no_options);
      } else {
        log_warning("smtp_tls_policy_maps: %s", perr->message);
      }
    }
  }
  if (level >= TLS_LEVEL_C_VERIFY) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    /* Postfix's smtp_tls_verify_cert_match (hostname) and
     * smtp_tls_secure_cert_match (nexthop, dot-nexthop), or the entry's
     * match= list; a [address] hop: its address */
    g_autofree char *match = agent_policy_attr(a, "match");
    g_auto(GStrv) names = g_strsplit_set(match ? match : level == TLS_LEVEL_C_SECURE
                                         ? config_str(a->config, "smtp_tls_secure_cert_match")
                                         : config_str(a->config, "smtp_tls_verify_cert_match"),
                                         ":, \t", -1);
    gboolean any = FALSE;

    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(vp, c->addr);
    } else {
      for (guint i = 0; names[i]; i++) {
        const char *n = names[i];
        g_autofree char *dot = NULL;

        if (*n == '\0')
          continue;
        if (g_ascii_strcasecmp(n, "hostname") == 0) {
          n = c->host;
        } else if (g_ascii_strcasecmp(n, "nexthop") == 0) {
          n = a->cur_hop_host ? a->cur_hop_host : c->host;
        } else if (g_ascii_strcasecmp(n, "dot-nexthop") == 0) {
          dot = g_strconcat(".", a->cur_hop_host ? a->cur_hop_host : c->host, NULL);
          n = dot;
        }
        if (any)
          X509_VERIFY_PARAM_add1_host(vp, n, 0);
        else
          X509_VERIFY_PARAM_set1_host(vp, n, 0);
        any = TRUE;
      }
      if (!any)
        X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
    }
  }
  if (agent_tls_session_timeout > 0) {
    SSL_SESSION *session;

    c->tls_key = g_strdup_printf("%s %d %s %s", c->name, (int) level,
                                 a->cur_policy ? a->cur_policy : "",
                                 a->cur_hop_host ? a->cur_hop_host : "");
    SSL_set_ex_data(c->ssl, agent_tls_key_index, c->tls_key);
    session = agent_tls_cached_session(c->tls_key);
    if (session != NULL) {
      SSL_set_session(c->ssl, session);
      SSL_SESSION_free(session);      /* the SSL holds its own reference */
    }
  }
  for (;;) {
    int r, err;

    ERR_clear_error();
    r = SSL_connect(c->ssl);
    if (r == 1)
      break;
    err = SSL_get_error(c->ssl, r);
    if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        && wait_fd(c->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, timeout))
      continue;
    {
      long v = SSL_get_verify_result(c->ssl);
      char why[256];

      if (v != X509_V_OK)
        g_strlcpy(why, X509_verify_cert_error_string(v), sizeof why);
      else
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
      agent_error(a, "TLS handshake with %s failed: %s%s", c->name,
                  v != X509_V_OK ? "server certificate not verified: " : "", why);
    }
    SSL_free(c->ssl);
    c->ssl = NULL;
    return FALSE;
  }
  {
    const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);
    int alg = 0, bits = SSL_CIPHER_get_bits(cipher, &alg);

    log_qid(LOG_INFO, a->queue_id, "%s TLS connection established to %s: %s with cipher %s "
            "(%d/%d bits)", level >= TLS_LEVEL_C_VERIFY ? "Verified" : "Anonymous", c->name,
            SSL_get_version(c->ssl), SSL_CIPHER_get_name(cipher), bits, alg);
    if (SSL_session_reused(c->ssl) && config_int(a->config, "smtp_tls_loglevel") >= 1)
      log_qid(LOG_INFO, a->queue_id, "%s: reusing the TLS session of an earlier connection",
              c->name);
  }
  return TRUE;
}

/* ---------------------------------------------------------------- AUTH */

/* smtp_sasl_security_options: "noplaintext" (the default) keeps PLAIN and
 * LOGIN, the only mechanisms here, to TLS sessions. */
static gboolean
agent_plaintext_ok(const Agent *a, const Conn *c)
{
  const char *const *opts = config_list(a->config, "smtp_sasl_security_options");

  if (c->ssl != NULL)
    return TRUE;
  for (; opts && *opts; opts++)
    if (g_ascii_strcasecmp(*opts, "noplaintext") == 0)
      return FALSE;
  return TRUE;
}

/* AUTH PLAIN (or LOGIN) with the hop's credentials; FALSE with last_error. */
static gboolean
session_auth(Agent *a, Conn *c)
{
  gint64 timeout = config_time(a->config, "smtp_helo_timeout");
  g_auto(GStrv) mechs = g_strsplit(a->caps.auth, " ", -1);
  const char *colon = strchr(a->cur_auth, ':');
  g_autofree char *user = g_strndup(a->cur_auth, colon - a->cur_auth);
  const char *pass = colon + 1;
  gboolean plain = g_strv_contains((const char *const *) mechs, "PLAIN");
  gboolean login = g_strv_contains((const char *const *) mechs, "LOGIN");
  g_autofree char *cmd = NULL, *text = NULL;
  SmtpClientReply r;

  if ((!plain && !login) || !agent_plaintext_ok(a, c)) {
    agent_error(a, "SASL authentication failed; cannot authenticate to server %s: no mechanism "
                "available%s", c->label, plain || login ? " (noplaintext without TLS)" : "");
    return FALSE;
  }
  if (plain) {
    g_autofree char *raw = g_strdup_printf("%c%s%c%s", 0, user, 0, pass);
    gsize len = 2 + strlen(user) + strlen(pass);
    g_autofree char *b64 = g_base64_encode((const guchar *) raw, len);

    memset(raw, 0, len);
    cmd = g_strdup_printf("AUTH PLAIN %s\r\n", b64);
  } else {
    cmd = g_strdup("AUTH LOGIN\r\n");
  }
  if (!conn_write(c, cmd, strlen(cmd), timeout) || !conn_reply(c, &r, timeout))
    goto lost;
  if (!plain) {
    const char *answers[2] = { user, pass };

    for (guint i = 0; i < 2 && r.code == 334; i++) {
      g_autofree char *b64 = g_base64_encode((const guchar *) answers[i], strlen(answers[i]));
      g_autofree char *line = g_strdup_printf("%s\r\n", b64);

      smtp_client_reply_clear(&r);
      if (!conn_write(c, line, strlen(line), timeout) || !conn_reply(c, &r, timeout))
        goto lost;
    }
  }
  if (r.code != 235) {
    text = smtp_client_reply_text(&r);
    agent_error(a, "SASL authentication failed; server %s said: %s", c->label, text);
    smtp_client_reply_clear(&r);
    return FALSE;
  }
  smtp_client_reply_clear(&r);
  return TRUE;
lost:
  agent_error(a, "lost connection with %s while authenticating: %s", c->label, g_strerror(errno));
  return FALSE;
}

/* Why a session ended while waiting, in Postfix's words: "conversation
 * with HOST timed out while STAGE" or "lost connection with HOST while
 * STAGE". */
static void
agent_lost(Agent *a, const Conn *c, const char *stage)
{
  if (errno == ETIMEDOUT)
    agent_error(a, "conversation with %s timed out while %s", c->label, stage);
  else
    agent_error(a, "lost connection with %s while %s", c->label, stage);
}

static void
session_quit(Agent *a, Conn *c)
{
  gint64 timeout = config_time(a->config, "smtp_quit_timeout");
  SmtpClientReply r;

  if (conn_write(c, "QUIT\r\n", 6, timeout) && conn_reply(c, &r, timeout))
    smtp_client_reply_clear(&r);
}

/* Greeting, EHLO (HELO), STARTTLS and AUTH: SESSION_DONE when the
 * connection is ready for a transaction. */
static SessionResult
session_open(Agent *a, Conn *c)
{
  gint64 helo_timeout = config_time(a->config, "smtp_helo_timeout");
  g_autofree char *ehlo = g_strdup_printf("EHLO %s\r\n", a->helo_name);
  g_autofree char *text = NULL;
  SmtpClientReply r;

  if (config_bool(a->config, "smtp_tls_wrappermode")) {
    /* SMTPS (port 465): TLS from the first byte, at least "encrypt" */
    ClientTlsLevel level = MAX(agent_tls_level(a), TLS_LEVEL_C_ENCRYPT);

    if (!session_tls(a, c, level))
      return SESSION_NEXT;
  }
  if (!conn_reply(c, &r, helo_timeout)) {
    agent_lost(a, c, "receiving the initial server greeting");
    return SESSION_NEXT;
  }
  if (r.code / 100 != 2) {
    text = smtp_client_reply_text(&r);
    agent_error(a, "host %s refused to talk to me: %s", c->label, text);
    smtp_client_reply_clear(&r);
    return SESSION_NEXT;
  }
  smtp_client_reply_clear(&r);
  if (!conn_write(c, ehlo, strlen(ehlo), helo_timeout) || !conn_reply(c, &r, helo_timeout)) {
    agent_lost(a, c, "sending EHLO");
    return SESSION_NEXT;
  }
  if (r.code / 100 == 2) {
    smtp_client_caps_parse(&r, &a->caps);
  } else {
    g_autofree char *helo = g_strdup_printf("HELO %s\r\n", a->helo_name);

    smtp_client_reply_clear(&r);
    smtp_client_caps_clear(&a->caps);
    if (!conn_write(c, helo, strlen(helo), helo_timeout) || !conn_reply(c, &r, helo_timeout)) {
      agent_lost(a, c, "sending HELO");
      return SESSION_NEXT;
    }
    if (r.code / 100 != 2) {
      text = smtp_client_reply_text(&r);
      agent_error(a, "host %s refused to talk to me: %s (in reply to HELO)", c->label, text);
      smtp_client_reply_clear(&r);
      return SESSION_NEXT;
    }
  }
  smtp_client_reply_clear(&r);

  if (c->ssl == NULL) {
    ClientTlsLevel level = agent_tls_level(a);

    if (level != TLS_LEVEL_C_NONE && a->caps.starttls && !c->no_tls) {
      if (!conn_write(c, "STARTTLS\r\n", 10, helo_timeout) || !conn_reply(c, &r, helo_timeout)) {
        agent_lost(a, c, "sending STARTTLS");
        return SESSION_NEXT;
      }
      if (r.code == 220) {
        smtp_client_reply_clear(&r);
        g_string_truncate(c->in, 0);      /* nothing read in the clear counts inside TLS */
        if (!session_tls(a, c, level))
          return level == TLS_LEVEL_C_MAY ? SESSION_RETRY_PLAIN : SESSION_NEXT;
        if (!conn_write(c, ehlo, strlen(ehlo), helo_timeout) || !conn_reply(c, &r, helo_timeout)
            || r.code / 100 != 2) {
          agent_lost(a, c, "sending EHLO after STARTTLS");
          smtp_client_reply_clear(&r);
          return SESSION_NEXT;
        }
        smtp_client_caps_parse(&r, &a->caps);
      } else if (level >= TLS_LEVEL_C_ENCRYPT) {
        text = smtp_client_reply_text(&r);
        agent_error(a, "TLS is required, but host %s refused to start TLS: %s", c->label, text);
        smtp_client_reply_clear(&r);
        return SESSION_NEXT;
      }
      smtp_client_reply_clear(&r);
    } else if (level >= TLS_LEVEL_C_ENCRYPT) {
      agent_error(a, "TLS is required, but was not offered by host %s", c->label);
      session_quit(a, c);
      return SESSION_NEXT;
    }
  }

  if (a->cur_auth != NULL && a->caps.auth != NULL && !session_auth(a, c)) {
    session_quit(a, c);
    return SESSION_NEXT;
  }
  return SESSION_DONE;
}

/* One mail transaction on a ready connection: SESSION_NEXT when it was
 * lost before MAIL was answered (nothing happened: another host, or a
 * new connection, may do it), else SESSION_DONE with the recipients
 * decided.  *reusable: the server is ready for the next transaction. */
static SessionResult
session_tx(Agent *a, Conn *c, gboolean *reusable)
{
  g_autofree char *send = NULL, *text = NULL;
  SmtpClientReply r;
  gboolean mail_answered = FALSE, dot_answered = FALSE, body_sent = FALSE;

  *reusable = FALSE;
  g_clear_pointer(&a->tx, smtp_client_tx_free);
  a->tx = smtp_client_tx_new(&a->caps, a->sender, (const char *const *) a->rcpts->pdata,
                             (guint64) a->size, a->eightbit);
  a->tx->smtputf8 = a->smtputf8;
  a->tx->envid = g_strdup(a->envid);
  a->tx->ret = g_strdup(a->ret);
  a->tx->peer = c->label;
  a->tx_dsn = a->caps.dsn;
  a->setup_us = g_get_monotonic_time() - a->started_us;
  a->conn_use = ++c->uses;
  for (guint i = 0; i < a->tx->rcpts->len; i++) {
    SmtpClientRcpt *rc = a->tx->rcpts->pdata[i];

    rc->notify = g_strdup(a->notify->pdata[i]);
    rc->orcpt = g_strdup(a->orcpt->pdata[i]);
  }
  send = smtp_client_tx_begin(a->tx);
  if (send == NULL && a->tx->state == SMTP_TX_DONE) {
    *reusable = TRUE;     /* decided before a command was sent */
    return SESSION_DONE;
  }
  while (a->tx->state != SMTP_TX_DONE) {
    SmtpTxState before = a->tx->state;

    if (send != NULL) {
      if (!conn_write(c, send, strlen(send), stage_timeout(a, before)))
        break;
      g_clear_pointer(&send, g_free);
    }
    if (before == SMTP_TX_BODY && !session_body(a, c))
      break;
    body_sent |= before == SMTP_TX_BODY || before == SMTP_TX_DOT;
    if (!conn_reply(c, &r, stage_timeout(a, before)))
      break;
    if (before == SMTP_TX_MAIL)
      mail_answered = TRUE;
    if (before == SMTP_TX_DOT)
      dot_answered = TRUE;
    if (r.code == 421) {
      /* the server is closing: this reply decides what is open, as 4xx */
      text = smtp_client_reply_text(&r);
      agent_error(a, "host %s said: %s (in reply to %s command)", c->label, text,
                  reply_stage(before));
    }
    smtp_client_tx_reply(a->tx, &r, &send);
    smtp_client_reply_clear(&r);
    if (text != NULL)
      break;
  }
  if (a->tx->state != SMTP_TX_DONE) {
    if (!mail_answered && text == NULL) {
      agent_lost(a, c, "sending MAIL FROM");
      g_clear_pointer(&a->tx, smtp_client_tx_free);
      return SESSION_NEXT;
    }
    if (text == NULL && errno == ECONNABORTED)
      agent_error(a, "delivery to %s abandoned before the end of data: the queue manager is "
                  "gone", c->label);
    else if (text == NULL)
      agent_lost(a, c, body_sent ? "sending end of data -- message may be sent more than once"
                       : a->tx->state == SMTP_TX_BODY ? "sending message body"
                       : "receiving a reply");
    smtp_client_tx_abort(a->tx, a->last_error);
    return SESSION_DONE;
  }
  if (!dot_answered) {
    /* MAIL, every RCPT or DATA refused: the server may still hold the
     * transaction open; RSET before the connection serves another */
    gint64 timeout = config_time(a->config, "smtp_rset_timeout");

    if (!conn_write(c, "RSET\r\n", 6, timeout) || !conn_reply(c, &r, timeout))
      return SESSION_DONE;
    *reusable = r.code / 100 == 2;
    smtp_client_reply_clear(&r);
    return SESSION_DONE;
  }
  *reusable = TRUE;
  return SESSION_DONE;
}

static gint
agent_hop_compare(gconstpointer x, gconstpointer y)
{
  guint a = GPOINTER_TO_UINT(x), b = GPOINTER_TO_UINT(y);

  return a < b ? -1 : a > b;
}

/* What a cached connection must match: the next hops, the credentials it
 * may have logged in with and the TLS policies it was set up under. */
static char *
agent_cache_key(const Agent *a)
{
  GString *key = g_string_new(a->nexthop);
  GHashTable *tables[] = { a->auth, a->policy };

  for (guint t = 0; t < G_N_ELEMENTS(tables); t++) {
    GList *hops = g_list_sort(g_hash_table_get_keys(tables[t]), agent_hop_compare);

    for (GList *l = hops; l != NULL; l = l->next)
      g_string_append_printf(key, "\n%c%u %s", t ? 'P' : 'A', GPOINTER_TO_UINT(l->data),
                             (const char *) g_hash_table_lookup(tables[t], l->data));
    g_list_free(hops);
  }
  return g_string_free(key, FALSE);
}

/* Keeps the connection for the next request (smtp_connection_cache_time_limit
 * > 0), else says QUIT and closes it. */
static void
agent_cache_or_quit(Agent *a, Conn *c, gboolean reusable, gboolean fresh)
{
  gint64 now = g_get_monotonic_time();

  if (reusable && config_time(a->config, "smtp_connection_cache_time_limit") > 0) {
    if (fresh) {
      a->cached_born = now;
      a->cached_nexthop = agent_cache_key(a);
    }
    a->cached = c;
    a->cached_caps = a->caps;
    memset(&a->caps, 0, sizeof a->caps);
    a->cached_idle_since = now;
    return;
  }
  if (reusable)
    session_quit(a, c);
  conn_free(c);
  if (!fresh)
    g_clear_pointer(&a->cached_nexthop, g_free);
}

/* Closes the cached connection (with QUIT when polite). */
static void
agent_cache_drop(Agent *a, gboolean polite)
{
  if (a->cached == NULL)
    return;
  if (polite)
    session_quit(a, a->cached);
  conn_free(a->cached);
  a->cached = NULL;
  smtp_client_caps_clear(&a->cached_caps);
  g_clear_pointer(&a->cached_nexthop, g_free);
}

/* The request on the cached connection when it is for the same next hops
 * and still fresh; TRUE when that decided the recipients. */
static gboolean
agent_try_cached(Agent *a)
{
  gint64 reuse_limit = config_time(a->config, "smtp_connection_reuse_time_limit");
  struct pollfd p;
  Conn *c = a->cached;
  gboolean reusable;
  g_autofree char *key = NULL;

  if (c == NULL)
    return FALSE;
  key = agent_cache_key(a);
  p = (struct pollfd) { .fd = c->fd, .events = POLLIN };
  if (strcmp(a->cached_nexthop, key) != 0
      || g_get_monotonic_time() - a->cached_born >= reuse_limit * G_USEC_PER_SEC
      || c->in->len > 0 || poll(&p, 1, 0) != 0) {
    /* another destination, too old, or the server spoke first (421, EOF) */
    agent_cache_drop(a, p.revents == 0 && c->in->len == 0);
    return FALSE;
  }
  a->cached = NULL;
  a->caps = a->cached_caps;
  memset(&a->cached_caps, 0, sizeof a->cached_caps);
  if (session_tx(a, c, &reusable) != SESSION_DONE) {
    /* gone while idle: nothing was said, start over */
    log_qid(LOG_DEBUG, a->queue_id, "cached connection to %s is gone", c->name);
    conn_free(c);
    smtp_client_caps_clear(&a->caps);
    g_clear_pointer(&a->cached_nexthop, g_free);
    g_clear_pointer(&a->last_error, g_free);
    return FALSE;
  }
  a->relay = g_strdup(c->name);
  a->relay_label = g_strdup(c->label);
  agent_cache_or_quit(a, c, reusable, FALSE);
  return TRUE;
}

/* ---------------------------------------------------------------- hosts and addresses */

typedef struct {
  struct sockaddr_storage ss;
  socklen_t len;
} HostAddr;

static void
host_addr_add(GArray *addrs, int family, const void *in, guint16 port)
{
  HostAddr h = { 0 };

  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *) &h.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, in, sizeof sin->sin_addr);
    h.len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &h.ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, in, sizeof sin6->sin6_addr);
    h.len = sizeof *sin6;
  }
  g_array_append_val(addrs, h);
}

/* smtp_host_lookup "dns": the host's A and AAAA records (as inet_protocols
 * allows).  FALSE with *why when there are none. */
static gboolean
host_addrs_dns(Agent *a, const char *host, guint16 port, GArray *addrs, char **why)
{
  const int types[2] = { a->v4 ? ns_t_a : 0, a->v6 ? ns_t_aaaa : 0 };
  DnsStatus worst = DNS_NOTFOUND;

  for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
    g_autoptr(GPtrArray) records = NULL;
    g_autofree char *reason = NULL;
    DnsStatus st;

    if (types[t] == 0)
      continue;
    st = dns_lookup(host, types[t], &records, &reason);
    if (st == DNS_OK) {
      for (guint i = 0; i < records->len; i++) {
        const DnsRecord *rr = records->pdata[i];
        struct in6_addr in;
        int family = rr->type == ns_t_a ? AF_INET : AF_INET6;

        if (inet_pton(family, rr->data, &in) == 1)
          host_addr_add(addrs, family, &in, port);
      }
      continue;
    }
    /* the most telling failure: "try again" beats "no such record" */
    if (*why == NULL || st == DNS_RETRY || (st == DNS_NODATA && worst == DNS_NOTFOUND)) {
      if (*why == NULL || worst != DNS_RETRY) {
        g_free(*why);
        *why = g_steal_pointer(&reason);
      }
      worst = st == DNS_RETRY || worst == DNS_RETRY ? DNS_RETRY : st;
    }
  }
  if (addrs->len > 0)
    g_clear_pointer(why, g_free);
  else if (*why == NULL)
    *why = g_strdup_printf("Host or domain name not found. Name service error for name=%s "
                           "type=A: Host not found", host);
  return addrs->len > 0;
}

/* smtp_host_lookup "native": getaddrinfo() (/etc/hosts, then DNS, as
 * nsswitch.conf says). */
static gboolean
host_addrs_native(Agent *a, const char *host, guint16 port, GArray *addrs, char **why)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
  struct addrinfo *res = NULL;
  int r;

  hints.ai_family = a->v4 && !a->v6 ? AF_INET : a->v6 && !a->v4 ? AF_INET6 : AF_UNSPEC;
  r = getaddrinfo(host, NULL, &hints, &res);
  if (r != 0) {
    g_free(*why);
    *why = g_strdup_printf("Host or domain name not found. Name service error for name=%s "
                           "type=A: %s", host, gai_strerror(r));
    return FALSE;
  }
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET)
      host_addr_add(addrs, AF_INET, &((struct sockaddr_in *) ai->ai_addr)->sin_addr, port);
    else if (ai->ai_family == AF_INET6)
      host_addr_add(addrs, AF_INET6, &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr, port);
  }
  freeaddrinfo(res);
  g_clear_pointer(why, g_free);
  return addrs->len > 0;
}

/* The addresses of host:port in the order to try: a numeric host as it
 * is, else by smtp_host_lookup (dns, native, or both in the order
 * given), ordered by smtp_address_preference (any: shuffled, as Postfix
 * picks at random).  NULL with the reason in last_error. */
static GArray *
agent_host_addrs(Agent *a, const char *host, guint16 port)
{
  g_autoptr(GArray) addrs = g_array_new(FALSE, FALSE, sizeof(HostAddr));
  g_autofree char *why = NULL;
  const char *pref = config_str(a->config, "smtp_address_preference");
  struct in6_addr in;
  gboolean found = FALSE, tried = FALSE;

  if (inet_pton(AF_INET, host, &in) == 1 || inet_pton(AF_INET6, host, &in) == 1) {
    host_addr_add(addrs, strchr(host, ':') ? AF_INET6 : AF_INET, &in, port);
    return g_steal_pointer(&addrs);
  }
  if (g_ascii_strcasecmp(host, "localhost") == 0 || g_str_has_suffix(host, ".localhost")) {
    /* RFC 6761 section 6.3: the loopback address, whoever is asked */
    static const struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;
    const struct in_addr loop4 = { htonl(INADDR_LOOPBACK) };

    if (a->v4)
      host_addr_add(addrs, AF_INET, &loop4, port);
    if (a->v6)
      host_addr_add(addrs, AF_INET6, &loop6, port);
    found = tried = TRUE;
  }
  dns_thread_setup();
  for (const char *const *m = config_list(a->config, "smtp_host_lookup"); m && *m && !found;
       m++) {
    if (g_ascii_strcasecmp(*m, "dns") == 0)
      found = host_addrs_dns(a, host, port, addrs, &why);
    else if (g_ascii_strcasecmp(*m, "native") == 0)
      found = host_addrs_native(a, host, port, addrs, &why);
    else
      continue;
    tried = TRUE;
  }
  if (!tried)
    found = host_addrs_dns(a, host, port, addrs, &why);  /* nothing usable: Postfix's default */
  if (!found) {
    agent_error(a, "%s", why ? why : "no address");
    return NULL;
  }
  if (g_ascii_strcasecmp(pref, "ipv4") == 0 || g_ascii_strcasecmp(pref, "ipv6") == 0) {
    /* a stable partition: the preferred family first */
    int first = g_ascii_strcasecmp(pref, "ipv4") == 0 ? AF_INET : AF_INET6;
    g_autoptr(GArray) sorted = g_array_new(FALSE, FALSE, sizeof(HostAddr));

    for (int pass = 0; pass < 2; pass++)
      for (guint i = 0; i < addrs->len; i++) {
        HostAddr *h = &g_array_index(addrs, HostAddr, i);
        if ((h->ss.ss_family == first) == (pass == 0))
          g_array_append_val(sorted, *h);
      }
    return g_steal_pointer(&sorted);
  }
  for (guint i = addrs->len; i > 1; i--) {
    guint j = (guint) g_random_int_range(0, (gint32) i);
    HostAddr t = g_array_index(addrs, HostAddr, i - 1);
    g_array_index(addrs, HostAddr, i - 1) = g_array_index(addrs, HostAddr, j);
    g_array_index(addrs, HostAddr, j) = t;
  }
  return g_steal_pointer(&addrs);
}

/* Tries every address of host:port; SESSION_DONE when one decided. */
static SessionResult
agent_try_host(Agent *a, const char *host, guint16 port)
{
  g_autoptr(GArray) addrs = agent_host_addrs(a, host, port);

  if (addrs == NULL)
    return SESSION_NEXT;
  for (guint i = 0; i < addrs->len; i++) {
    const HostAddr *h = &g_array_index(addrs, HostAddr, i);
    char addr[64];
    gboolean no_tls = FALSE;
    SessionResult sr;

    inet_sockaddr_to_string((const struct sockaddr *) &h->ss, addr, sizeof addr);
    for (;;) {
      Conn *c = g_new0(Conn, 1);
      gboolean reusable = FALSE;

      c->name = g_strdup_printf("%s[%s]:%u", host, addr, port);
      c->label = g_strdup_printf("%s[%s]", host, addr);
      c->host = g_strdup(host);
      c->addr = g_strdup(addr);
      c->no_tls = no_tls;
      c->fd = conn_open((const struct sockaddr *) &h->ss, h->len,
                        config_time(a->config, "smtp_connect_timeout"));
      if (c->fd < 0) {
        if (errno == ETIMEDOUT)
          agent_error(a, "connect to %s: Connection timed out", c->name);
        else
          agent_error(a, "connect to %s: %s", c->name, g_strerror(errno));
        conn_free(c);
        sr = SESSION_NEXT;
        break;
      }
      c->in = g_string_new(NULL);
      sr = session_open(a, c);
      if (sr == SESSION_DONE)
        sr = session_tx(a, c, &reusable);
      if (sr == SESSION_DONE) {
        a->relay = g_strdup(c->name);
        a->relay_label = g_strdup(c->label);
        agent_cache_or_quit(a, c, reusable, TRUE);
        return SESSION_DONE;
      }
      conn_free(c);
      smtp_client_caps_clear(&a->caps);
      if (sr != SESSION_RETRY_PLAIN || no_tls)
        break;
      no_tls = TRUE;      /* Postfix's way under "may": the same host in plaintext */
    }
  }
  return SESSION_NEXT;
}

static gint
mx_compare(gconstpointer pa, gconstpointer pb)
{
  const DnsRecord *x = *(const DnsRecord *const *) pa, *y = *(const DnsRecord *const *) pb;

  return (int) x->pref - (int) y->pref;
}

/* The hosts of an MX hop in the order to try; NULL when the destination
 * is decided without a connection (bounce_all set, or a deferral in
 * last_error). */
static GPtrArray *
agent_mx_hosts(Agent *a, const char *domain)
{
  static const int types[] = { ns_t_mx, 0 };
  g_autoptr(GPtrArray) records = NULL;
  g_autofree char *why = NULL;
  GPtrArray *hosts;
  DnsStatus st;

  dns_thread_setup();
  st = dns_lookup_types(domain, types, &records, &why);
  switch (st) {
  case DNS_OK:
    break;
  case DNS_NODATA:
    /* no MX: the name's own addresses (RFC 5321 5.1) */
    hosts = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(hosts, g_strdup(domain));
    return hosts;
  case DNS_NULLMX:
    a->bounce_all = TRUE;
    a->null_mx = TRUE;
    agent_error(a, "Domain %s does not accept mail (nullMX)", domain);
    return NULL;
  case DNS_NOTFOUND:
    a->bounce_all = TRUE;
    /* fall through */
  default:
    if (why != NULL)
      agent_error(a, "%s", why);
    else
      agent_error(a, "Host or domain name not found. Name service error for name=%s type=MX: "
                  "%s", domain, st == DNS_NOTFOUND ? "Host not found" : "Host not found, try again");
    return NULL;
  }
  g_ptr_array_sort(records, mx_compare);
  for (guint start = 0; start < records->len;) {
    guint end = start;
    guint16 pref = ((DnsRecord *) records->pdata[start])->pref;

    while (end < records->len && ((DnsRecord *) records->pdata[end])->pref == pref)
      end++;
    for (guint i = end - 1; i > start; i--) {
      guint j = start + (guint) g_random_int_range(0, (gint32) (i - start + 1));
      gpointer t = records->pdata[i];
      records->pdata[i] = records->pdata[j];
      records->pdata[j] = t;
    }
    start = end;
  }
  hosts = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < records->len; i++)
    g_ptr_array_add(hosts, g_strdup(((DnsRecord *) records->pdata[i])->data));
  return hosts;
}

/* ---------------------------------------------------------------- requests */

#define AGENT_DATAGRAM_MAX (1024 * 1024)

static void
agent_request_clear(Agent *a)
{
  if (a->msg_fd >= 0)
    close(a->msg_fd);
  a->msg_fd = -1;
  g_clear_pointer(&a->queue_id, g_free);
  g_clear_pointer(&a->nexthop, g_free);
  g_clear_pointer(&a->sender, g_free);
  g_clear_pointer(&a->envid, g_free);
  g_clear_pointer(&a->ret, g_free);
  g_clear_pointer(&a->rcpts, g_ptr_array_unref);
  g_clear_pointer(&a->notify, g_ptr_array_unref);
  g_clear_pointer(&a->orcpt, g_ptr_array_unref);
  g_clear_pointer(&a->tx, smtp_client_tx_free);
  smtp_client_caps_clear(&a->caps);
  g_clear_pointer(&a->last_error, g_free);
  g_clear_pointer(&a->relay, g_free);
  g_clear_pointer(&a->relay_label, g_free);
  g_hash_table_remove_all(a->auth);
  g_hash_table_remove_all(a->policy);
  g_clear_pointer(&a->fallback, g_free);
  a->cur_auth = a->cur_policy = a->cur_hop_host = NULL;
  a->null_mx = FALSE;
  a->offset = a->size = 0;
  a->eightbit = a->smtputf8 = a->bounce_all = FALSE;
}

/* Parses one request (text, NUL-terminated); FALSE when it is not one. */
static gboolean
agent_parse_request(Agent *a, char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

  a->rcpts = g_ptr_array_new_with_free_func(g_free);
  a->notify = g_ptr_array_new_with_free_func(g_free);
  a->orcpt = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; lines[i]; i++) {
    char *l = lines[i], *v = l[0] && l[1] == ' ' ? l + 2 : NULL;
    char *end = NULL;
    guint last = a->notify->len;

    if (l[0] == '8' && l[1] == '\0') {
      a->eightbit = TRUE;
    } else if (l[0] == 'U' && l[1] == '\0') {
      a->smtputf8 = TRUE;
    } else if (v == NULL) {
      continue;
    } else if (l[0] == 'Q' && a->queue_id == NULL) {
      a->queue_id = g_strdup(v);
    } else if (l[0] == 'H' && a->nexthop == NULL) {
      a->nexthop = g_strdup(v);
    } else if (l[0] == 'M') {
      a->offset = g_ascii_strtoll(v, &end, 10);
      if (end == NULL || *end != ' ')
        return FALSE;
      a->size = g_ascii_strtoll(end + 1, &end, 10);
      if (*end != '\0' || a->offset < 0 || a->size < 0)
        return FALSE;
    } else if (l[0] == 'S' && a->sender == NULL) {
      a->sender = g_strdup(v);
    } else if (l[0] == 'E' && a->envid == NULL) {
      a->envid = g_strdup(v);
    } else if (l[0] == 'T' && a->ret == NULL && (strcmp(v, "FULL") == 0 || strcmp(v, "HDRS") == 0)) {
      a->ret = g_strdup(v);
    } else if (l[0] == 'R') {
      g_ptr_array_add(a->rcpts, g_strdup(v));
      g_ptr_array_add(a->notify, NULL);
      g_ptr_array_add(a->orcpt, NULL);
    } else if ((l[0] == 'N' || l[0] == 'O') && last > 0) {
      GPtrArray *arr = l[0] == 'N' ? a->notify : a->orcpt;

      g_free(arr->pdata[last - 1]);
      arr->pdata[last - 1] = g_strdup(v);
    } else if (l[0] == 'A' || l[0] == 'P') {
      guint64 hop = g_ascii_strtoull(v, &end, 10);

      if (end && *end == ' ' && (l[0] == 'P' || strchr(end + 1, ':')))
        g_hash_table_replace(l[0] == 'A' ? a->auth : a->policy, GUINT_TO_POINTER((guint) hop),
                             g_strdup(end + 1));
    } else if (l[0] == 'F' && a->fallback == NULL) {
      a->fallback = g_strdup(v);
    }
  }
  g_ptr_array_add(a->rcpts, NULL);
  return a->queue_id != NULL && a->nexthop != NULL && a->sender != NULL && a->rcpts->len > 1
         && a->msg_fd >= 0;
}

/* The answer: each recipient's decision, or the last error; "T" when the
 * destination could not be reached at all. */
static gboolean
agent_answer(Agent *a, int fd)
{
  g_autoptr(GString) out = g_string_new(NULL);
  const char *relay = a->relay ? a->relay : "none";

  for (guint i = 0; a->rcpts && i + 1 < a->rcpts->len; i++) {
    const SmtpClientRcpt *r = a->tx ? a->tx->rcpts->pdata[i] : NULL;
    char status = 'D';
    const char *dsn = a->bounce_all ? "5.1.2" : "4.4.1";
    const char *text = a->last_error ? a->last_error : "no host to deliver to";

    g_autofree char *said = NULL;

    if (r != NULL && r->status != SMTP_RCPT_PENDING) {
      status = r->status == SMTP_RCPT_SENT ? (a->tx_dsn ? 'P' : 'S')
               : r->status == SMTP_RCPT_BOUNCE ? 'B' : 'D';
      dsn = r->dsn;
      text = r->reply;
      /* a server's refusal in Postfix's words */
      if (status != 'S' && status != 'P' && !r->local && r->stage != NULL)
        text = said = g_strdup_printf("host %s said: %s (in reply to %s command)",
                                      a->relay_label ? a->relay_label : relay, r->reply,
                                      r->stage);
    } else if (a->bounce_all) {
      status = 'B';
    }
    {
      g_autofree char *flat = g_strdup(text ? text : "");
      g_strdelimit(flat, "\r\n", ' ');
      g_string_append_printf(out, "%u %c %s %s %s\n", i, status, dsn, relay, flat);
    }
  }
  if (a->tx != NULL && a->relay != NULL)
    g_string_append_printf(out, "C %" G_GINT64_FORMAT " %u\n", MAX(a->setup_us, 0), a->conn_use);
  if (a->tx == NULL && a->relay == NULL && !a->bounce_all)
    g_string_append(out, "T\n");
  if (out->len > AGENT_DATAGRAM_MAX)
    g_string_truncate(out, AGENT_DATAGRAM_MAX);   /* qmgr defers what is missing */
  return send(fd, out->str, out->len, MSG_NOSIGNAL) == (ssize_t) out->len;
}

/* Tries the hops in order until a session decides; TRUE then.  policy
 * and auth apply (by hop index) to the route's own hops, not to the
 * fallback relays. */
static gboolean
agent_try_hops(Agent *a, const char *nexthop, gboolean own)
{
  g_autoptr(GPtrArray) hops = NULL;
  g_autoptr(GError) error = NULL;

  if (!route_nexthop_parse(nexthop, 25, &hops, &error)) {
    agent_error(a, "%s", error->message);
    return FALSE;
  }
  for (guint h = 0; h < hops->len && !a->bounce_all; h++) {
    const RouteHop *hop = hops->pdata[h];
    g_autoptr(GPtrArray) hosts = NULL;

    a->cur_auth = own ? g_hash_table_lookup(a->auth, GUINT_TO_POINTER(h)) : NULL;
    a->cur_policy = own ? g_hash_table_lookup(a->policy, GUINT_TO_POINTER(h)) : NULL;
    a->cur_hop_host = hop->host;
    if (hop->mx) {
      hosts = agent_mx_hosts(a, hop->host);
      if (hosts == NULL)
        continue;
    } else {
      hosts = g_ptr_array_new_with_free_func(g_free);
      g_ptr_array_add(hosts, g_strdup(hop->host));
    }
    for (guint i = 0; i < hosts->len; i++)
      if (agent_try_host(a, hosts->pdata[i], hop->port) == SESSION_DONE) {
        a->cur_hop_host = NULL;
        return TRUE;
      }
  }
  a->cur_hop_host = NULL;
  return FALSE;
}

/* Delivers the request in a: the cached connection, else every hop, then
 * smtp_fallback_relay when the destination was not found or not reached
 * (never after a null MX: that domain says it takes no mail). */
static void
agent_deliver(Agent *a)
{
  a->started_us = g_get_monotonic_time();
  a->setup_us = 0;
  a->conn_use = 0;
  if (agent_try_cached(a) || agent_try_hops(a, a->nexthop, TRUE))
    return;
  if (a->fallback != NULL && !a->null_mx) {
    a->bounce_all = FALSE;
    if (agent_try_hops(a, a->fallback, FALSE))
      return;
    a->bounce_all = FALSE;    /* a fallback relay that is not found only defers */
  }
}

/* Waits for the next request, closing the cached connection when its
 * time is up.  >0: a datagram of that length in buf (the queue file in
 * a->msg_fd), 0: qmgr closed the socket, <0: an error. */
static ssize_t
agent_next_request(Agent *a, int fd, char *buf, gsize size)
{
  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int timeout = -1;
    union {
      struct cmsghdr h;
      char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space };
    ssize_t n;
    int r;

    if (a->cached != NULL) {
      gint64 limit = config_time(a->config, "smtp_connection_cache_time_limit") * G_USEC_PER_SEC;
      gint64 left = a->cached_idle_since + limit - g_get_monotonic_time();

      if (left <= 0) {
        agent_cache_drop(a, TRUE);
        continue;
      }
      timeout = (int) MIN(left / 1000 + 1, G_MAXINT);
    }
    r = poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      continue;     /* the cache's time: dropped above */
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS
          && cm->cmsg_len == CMSG_LEN(sizeof(int))) {
        if (a->msg_fd >= 0)
          close(a->msg_fd);
        memcpy(&a->msg_fd, CMSG_DATA(cm), sizeof(int));
      }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      if (a->msg_fd >= 0)
        close(a->msg_fd);
      a->msg_fd = -1;
    }
    buf[n] = '\0';
    return n;
  }
}

int
main(int argc, char **argv)
{
  g_autofree char *config_dir = NULL;
  gboolean verbose = FALSE;
  GOptionEntry entries[] = {
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir, "Configuration directory", "DIR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- Postern SMTP delivery agent");
  g_autoptr(GError) error = NULL;
  g_autofree char *buf = NULL;
  Agent a = { .msg_fd = -1 };
  int type = 0;
  socklen_t tlen = sizeof type;

  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "postern-smtp: %s\n", error->message);
    return 2;
  }
  log_init("postern-smtp", FALSE);
  if (verbose)
    log_set_debug(TRUE);
  signal(SIGPIPE, SIG_IGN);
  if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET) {
    fprintf(stderr, "postern-smtp: fd 3 is not a SOCK_SEQPACKET socket (it is started by "
            "postern-qmgr)\n");
    return 2;
  }
  a.config = config_load(config_dir_resolve(config_dir), NULL, &error);
  if (a.config == NULL) {
    log_error("%s", error->message);
    return 1;
  }
  a.helo_name = config_str(a.config, "smtp_helo_name");
  a.auth = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  a.policy = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  for (const char *const *p = config_list(a.config, "inet_protocols"); p && *p; p++) {
    a.v4 |= g_ascii_strcasecmp(*p, "all") == 0 || g_ascii_strcasecmp(*p, "ipv4") == 0;
    a.v6 |= g_ascii_strcasecmp(*p, "all") == 0 || g_ascii_strcasecmp(*p, "ipv6") == 0;
  }
  if (!a.v4 && !a.v6)
    a.v4 = a.v6 = TRUE;
  buf = g_malloc(AGENT_DATAGRAM_MAX + 1);
  for (;;) {
    ssize_t n = agent_next_request(&a, 3, buf, AGENT_DATAGRAM_MAX + 1);

    if (n <= 0)
      break;
    if (!agent_parse_request(&a, buf)) {
      log_error("%s: bad request from qmgr", a.queue_id ? a.queue_id : "?");
      agent_request_clear(&a);
      break;
    }
    agent_deliver(&a);
    if (!agent_answer(&a, 3))
      break;
    agent_request_clear(&a);
  }
  agent_request_clear(&a);
  agent_cache_drop(&a, TRUE);
  g_hash_table_destroy(a.auth);
  g_hash_table_destroy(a.policy);
  config_free(a.config);
  return 0;
}
