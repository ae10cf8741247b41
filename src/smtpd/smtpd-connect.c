/* smtpd-connect.c - a new connection, up to the greeting: the client's
 * name and classes (in the lookup pool when that can block), the
 * "connect from" line, the TLS handshake first on the smtps listener,
 * then the refusals that may come instead of the greeting (local users,
 * connection count and rate, smtpd_client_restrictions under
 * smtpd_delay_reject = no) or the 220 itself.
 */
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "smtpd.h"

static void connect_greet_checks(SmtpdSession *s);
static void connect_greeting(SmtpdSession *s, const char *reject);

/* smtps: TLS is up; the greeting follows. */
static void
connect_wrapper_done(SmtpdSession *s)
{
  connect_greet_checks(s);
  if (s->state != SMTPD_STATE_CLOSED)
    smtpd_session_process(s);
}

/* Logs the connection and sends the greeting (or the anvil refusal). */
void
smtpd_connect_greet(SmtpdSession *s)
{
  g_free(s->namaddr);
  s->namaddr = g_strdup_printf("%s[%s]", s->client_name, s->client_addr);
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
  if (s->local_submit)
    log_send(LOG_INFO, NULL, f, 1, "connect from %s uid=%lu gid=%lu pid=%ld", s->namaddr,
             (unsigned long) s->local_uid, (unsigned long) s->local_gid, (long) s->local_pid);
  else
    log_send(LOG_INFO, NULL, f, 1, "connect from %s", s->namaddr);
  smtpd_session_enter_state(s, SMTPD_STATE_READY);
  if (smtpd_tls_wrapper(s) && s->kind != SMTPD_LISTENER_LOCAL) {
    /* smtps: the TLS handshake first, then everything else. */
    if (s->settings->tls == NULL) {
      log_warning("%s listener: TLS is not available (smtpd_tls_cert_file); closing the "
                  "connection from %s", smtpd_listener_kind_name(s->kind), s->namaddr);
      smtpd_session_abort(s, NULL);
      return;
    }
    smtpd_tls_start(s, connect_wrapper_done);
    return;
  }
  connect_greet_checks(s);
}

/* The greeting, or the refusals that come instead of it. */
static void
connect_greet_checks(SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };

  /* authorized_submit_users (local listener): 554 instead of the
   * greeting, then 503 to all but QUIT; a table failure closes (421). */
  if (s->submit_denied != NULL) {
    if (s->submit_denied[0] == '4')
      smtpd_session_close_with(s, s->submit_denied);
    else
      connect_greeting(s, s->submit_denied);
    return;
  }

  if (!s->limit_exempt) {
    guint rate = 0;
    guint count = smtpd_anvil_connect(s->server->anvil, s->client_addr, g_get_monotonic_time(),
                                      st->rate_time_unit * G_USEC_PER_SEC, &rate);
    s->anvil_counted = TRUE;
    const char *what = NULL;
    guint value = 0;
    if (st->conn_count_limit > 0 && count > st->conn_count_limit) {
      what = "Connection concurrency";
      value = count;
    } else if (st->conn_rate_limit > 0 && rate > st->conn_rate_limit) {
      what = "Connection rate";
      value = rate;
    }
    if (what != NULL) {
      log_send(LOG_WARNING, NULL, f, 1, "%s limit exceeded: %u from %s for service %s", what,
               value, s->namaddr, smtpd_listener_kind_name(s->kind));
      g_autofree char *line = g_strdup_printf("421 4.7.0 %s Error: too many connections from %s",
                                              st->myhostname, s->client_addr);
      smtpd_session_close_with(s, line);
      return;
    }
  }
  /* smtpd_delay_reject = no: the client restrictions answer instead of
   * the greeting when they reject (Postfix); 503 to all but QUIT then. */
  if (!st->delay_reject && smtpd_policy_check_stage(s, SMTPD_STAGE_CLIENT, connect_greeting))
    return;
  connect_greeting(s, NULL);
}

static void
connect_greeting(SmtpdSession *s, const char *reject)
{
  const SmtpdSettings *st = s->settings;
  if (reject != NULL) {
    s->access_denied = g_strdup(reject);
    smtpd_session_reply_line(s, reject);
  } else {
    g_autofree char *greeting = g_strdup_printf("220 %s", st->banner);
    smtpd_session_append(s, greeting);
  }
  smtpd_session_set_deadline(s, st->timeout * G_USEC_PER_SEC);
}

/* Takes what smtpd_peer_classify found, and logs its lookup failures. */
static void
connect_apply_class(SmtpdSession *s, SmtpdPeerClass *c)
{
  s->client_trusted = c->trusted == MATCH_FOUND;
  s->trust_tempfail = c->trusted == MATCH_TEMPFAIL;
  s->limit_exempt = c->limit_exempt;
  s->strict_newline = s->settings->forbid_bare_newline && !c->newline_excluded;
  s->sasl_excepted = c->sasl_excepted;
  for (guint i = 0; c->warnings != NULL && i < c->warnings->len; i++)
    log_warning("%s", (const char *)c->warnings->pdata[i]);
  g_clear_pointer(&c->warnings, g_ptr_array_unref);
}

/* The client's name and classes, found off the loop when that can block. */
typedef struct {
  SmtpdSession *session;
  const SmtpdSettings *settings;   /* the session holds a reference */
  struct sockaddr_storage sa;
  socklen_t len;
  gboolean lookup_name, classify, local, local_submit;
  uid_t uid;
  char addr[64];
  SmtpdPeerName peer;
  SmtpdPeerClass cls;
  SmtpdLocalUser user;
} PeerWork;

static void
peer_work(gpointer data)
{
  PeerWork *w = data;
  if (w->lookup_name)
    smtpd_peer_lookup((struct sockaddr *)&w->sa, w->len, &w->peer);
  if (w->classify)
    smtpd_peer_classify(w->settings, w->addr, w->local, &w->cls);
  if (w->local_submit)
    smtpd_local_identify(w->settings, w->uid, &w->user);
}

static void
peer_done(gpointer data)
{
  PeerWork *w = data;
  SmtpdSession *s = w->session;
  if (w->lookup_name) {
    g_free(s->client_name);
    g_free(s->client_reverse_name);
    s->client_name = w->peer.name;
    s->client_reverse_name = w->peer.reverse_name;
    s->client_name_status = w->peer.name_status;
    s->client_reverse_status = w->peer.reverse_status;
  }
  if (w->classify)
    connect_apply_class(s, &w->cls);
  if (w->local_submit)
    smtpd_local_apply(s, &w->user);
  g_free(w);
  smtpd_session_resume(s);
}

SmtpdSession *
smtpd_session_new(SmtpdServer *server, int fd, SmtpdListenerKind kind,
                  const struct sockaddr *peer, socklen_t peer_len)
{
  SmtpdSession *s = g_new0(SmtpdSession, 1);
  SmtpdSettings *st = s->settings = smtpd_settings_ref(server->settings);
  s->ref = 1;
  s->server = server;
  s->fd = fd;
  s->kind = kind;
  s->state = SMTPD_STATE_INIT;
  s->cmd = SMTPD_N_CMDS;
  s->mail_size = -1;
  s->out = g_string_sized_new(128);

  gboolean local = kind == SMTPD_LISTENER_LOCAL || peer == NULL || peer->sa_family == AF_UNIX;
  /* The local listener names its user (SO_PEERCRED); without that, no
   * submission. */
  if (kind == SMTPD_LISTENER_LOCAL && peer != NULL && peer->sa_family == AF_UNIX &&
      !smtpd_local_peer(s))
    s->submit_denied = g_strdup("554 5.7.1 Error: cannot identify the local user");
  if (local) {
    g_strlcpy(s->client_addr, "127.0.0.1", sizeof s->client_addr);
    s->client_name = g_strdup("localhost");
    s->client_reverse_name = g_strdup("localhost");
    s->client_name_status = s->client_reverse_status = SMTPD_PEER_OK;
  } else {
    inet_sockaddr_to_string(peer, s->client_addr, sizeof s->client_addr);
    if (!st->peername_lookup) {
      s->client_name = g_strdup("unknown");
      s->client_reverse_name = g_strdup("unknown");
      s->client_name_status = s->client_reverse_status = SMTPD_PEER_PERM;
    }
  }
  /* Network lists without tables are plain comparisons: here and now. */
  gboolean classify_later = smtpd_peer_classify_blocks(st);
  s->strict_newline = st->forbid_bare_newline;
  if (!classify_later) {
    SmtpdPeerClass c;
    smtpd_peer_classify(st, s->client_addr, local, &c);
    connect_apply_class(s, &c);
  }
  s->namaddr = g_strdup_printf("%s[%s]", s->client_name ? s->client_name : "unknown",
                               s->client_addr);

  s->next = server->sessions;
  if (server->sessions != NULL)
    server->sessions->prev = s;
  server->sessions = s;
  server->n_sessions++;

  smtpd_session_start_io(s);

  if (s->client_name == NULL || classify_later || s->local_submit) {
    PeerWork *w = g_new0(PeerWork, 1);
    w->session = s;
    w->settings = st;
    w->lookup_name = s->client_name == NULL;
    if (w->lookup_name) {
      memcpy(&w->sa, peer, MIN(peer_len, sizeof w->sa));
      w->len = peer_len;
    }
    w->classify = classify_later;
    w->local = local;
    w->local_submit = s->local_submit;
    w->uid = s->local_uid;
    g_strlcpy(w->addr, s->client_addr, sizeof w->addr);
    smtpd_session_suspend(s);
    workpool_submit(server->lookup_pool, peer_work, peer_done, w);
    return s;
  }
  smtpd_session_ref(s);     /* the greeting may close the session */
  smtpd_connect_greet(s);
  if (s->state != SMTPD_STATE_CLOSED)
    smtpd_session_process(s);
  smtpd_session_unref(s);
  return s;
}
