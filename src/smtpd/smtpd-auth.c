/* smtpd-auth.c - SMTP AUTH (RFC 4954) through Cyrus SASL: the settings,
 * when AUTH is offered, the AUTH command and its challenge/response
 * lines, and the sender-login ownership lookup.  Reply and log texts are
 * Postfix's (smtpd.c, smtpd_sasl_glue.c).
 *
 * Each SASL step runs in the lookup pool (saslauthd and SQL auxprop
 * plugins block); the session waits meanwhile.  While a 334 challenge is
 * out, session_process hands the next line here instead of the command
 * table.  A failed AUTH costs the client smtpd_sasl_failure_delay times
 * its failures so far before the 535 goes out, and the session ends after
 * smtpd_sasl_failure_limit failures; smtpd_client_auth_rate_limit counts
 * AUTH commands per client address across connections (anvil).
 */
#include <string.h>

#include "address.h"
#include "auth-sasl.h"
#include "log.h"
#include "smtpd.h"

/* ---------------------------------------------------------------- settings */

gboolean
smtpd_auth_settings(SmtpdSettings *st, GError **error)
{
  Config *config = st->config;
  const char *app = config_str(config, "smtpd_sasl_path");
  const char *type = config_str(config, "smtpd_sasl_type");
  const char *const *maps = config_list(config, "smtpd_sender_login_maps");
  g_autoptr(GError) local = NULL;

  st->sasl_enable = config_bool(config, "smtpd_sasl_auth_enable");
  st->sasl_header = config_bool(config, "smtpd_sasl_authenticated_header");
  st->sasl_broken_clients = config_bool(config, "broken_sasl_auth_clients");
  st->sasl_realm = config_str(config, "smtpd_sasl_local_domain");
  st->auth_rate_limit = config_int(config, "smtpd_client_auth_rate_limit");
  st->sasl_failure_limit = config_int(config, "smtpd_sasl_failure_limit");
  st->sasl_failure_delay = config_time(config, "smtpd_sasl_failure_delay");
  st->sasl_response_limit = config_int(config, "smtpd_sasl_response_limit");
  if (!auth_sasl_security_flags(config_list(config, "smtpd_sasl_security_options"),
                                &st->sasl_flags, error)) {
    g_prefix_error(error, "smtpd_sasl_security_options: ");
    return FALSE;
  }
  if (!auth_sasl_security_flags(config_list(config, "smtpd_sasl_tls_security_options"),
                                &st->sasl_tls_flags, error)) {
    g_prefix_error(error, "smtpd_sasl_tls_security_options: ");
    return FALSE;
  }
  st->sasl_exceptions = netlist_new(config_list(config, "smtpd_sasl_exceptions_networks"), &local);
  if (st->sasl_exceptions == NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "smtpd_sasl_exceptions_networks: %s",
                local->message);
    return FALSE;
  }
  if (maps[0] != NULL) {
    st->sender_login_maps = table_list_open(maps, TABLE_FOLD_CASE, &local);
    if (st->sender_login_maps == NULL) {
      log_warning("smtpd_sender_login_maps: %s (sender login checks answer 451 4.3.5)",
                  local->message);
      st->sender_login_maps_error = g_strdup(local->message);
    }
  }
  if (!st->sasl_enable)
    return TRUE;
  if (g_ascii_strcasecmp(type, "cyrus") != 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "smtpd_sasl_type: \"%s\" is not supported (cyrus)", type);
    return FALSE;
  }
  /* Postfix before 2.3 called it smtpd_sasl_application_name. */
  if (strcmp(app, "smtpd") == 0)
    app = config_str(config, "smtpd_sasl_application_name");
  if (!auth_sasl_init(app, config_str(config, "cyrus_sasl_config_path"), &local)) {
    if (local->code != POSTERN_ERROR_CONFIG) {
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    log_warning("%s", local->message);      /* a reload cannot change it */
  }
  return TRUE;
}

/* ---------------------------------------------------------------- offering AUTH */

gboolean
smtpd_auth_offered(const SmtpdSession *s)
{
  const SmtpdSettings *st = s->settings;

  if (!st->sasl_enable || s->kind == SMTPD_LISTENER_LOCAL || s->local_submit
      || (st->ehlo_discard & SMTPD_EHLO_AUTH))
    return FALSE;
  /* No password over a plaintext channel once TLS is configured. */
  if (st->tls_auth_only && st->tls != NULL && s->tls == NULL)
    return FALSE;
  return !s->sasl_excepted;
}

static AuthSasl *
auth_new(SmtpdSession *s, GError **error)
{
  const SmtpdSettings *st = s->settings;
  AuthSaslParams p = {
    .service = "smtp",
    .hostname = st->myhostname,
    .realm = st->sasl_realm,
    .security_flags = s->tls != NULL ? st->sasl_tls_flags : st->sasl_flags,
    .external_ssf = s->tls != NULL ? (guint) MAX(tls_conn_bits(s->tls), 0) : 0,
  };

  return auth_sasl_new(&p, error);
}

char *
smtpd_auth_mechanisms(SmtpdSession *s)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AuthSasl) sasl = NULL;
  /* The list depends only on the configuration and on TLS or not: made
   * once per settings snapshot, on the loop thread (the only one that
   * reads it). */
  char **cached = &((SmtpdSettings *) s->settings)->sasl_mechanisms[s->tls != NULL];

  if (!smtpd_auth_offered(s))
    return NULL;
  if (*cached == NULL) {
    sasl = auth_new(s, &error);
    if (sasl == NULL) {
      log_warning("%s", error->message);
      return NULL;
    }
    *cached = auth_sasl_mechanisms(sasl);
  }
  return **cached ? g_strdup(*cached) : NULL;
}

const char *
smtpd_auth_protocol_name(const SmtpdSession *s)
{
  static const char *const names[2][2] = { { "SMTP", "SMTPA" }, { "ESMTP", "ESMTPA" } };
  static const char *const tls_names[2][2] = { { "SMTPS", "SMTPSA" }, { "ESMTPS", "ESMTPSA" } };
  gboolean a = s->sasl_username != NULL;

  return s->tls != NULL ? tls_names[s->esmtp][a] : names[s->esmtp][a];
}

void
smtpd_auth_reset(SmtpdSession *s)
{
  g_clear_pointer(&s->sasl, auth_sasl_free);
  g_clear_pointer(&s->sasl_username, g_free);
  g_clear_pointer(&s->sasl_method, g_free);
  s->auth_pending = FALSE;
}

/* ---------------------------------------------------------------- the exchange */

typedef struct {
  SmtpdSession *session;
  AuthSasl *sasl;             /* the session's, used by this thread meanwhile */
  char *mech, *data;          /* data: initial response or response; NULL: none */
  gboolean first;
  AuthSaslResult result;
  char *out;
  char *username;
} AuthWork;

static void
auth_work(gpointer data)
{
  AuthWork *w = data;
  const char *user;

  w->result = w->first ? auth_sasl_start(w->sasl, w->mech, w->data, &w->out)
                       : auth_sasl_step(w->sasl, w->data, &w->out);
  user = auth_sasl_username(w->sasl);
  w->username = user ? g_strdup(user) : NULL;
}

static void
auth_printable(char *s)
{
  for (; s && *s; s++)
    if ((guchar) *s < 0x20 || (guchar) *s > 0x7e)
      *s = '?';
}

/* The end of a failed exchange: Postfix's warning, the reply, the penalty. */
static void
auth_failed(SmtpdSession *s, AuthWork *w)
{
  const SmtpdSettings *st = s->settings;
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };

  auth_printable(w->username);
  log_send(LOG_WARNING, NULL, f, 1, "%s: SASL %s authentication failed: %s, sasl_username=%s",
           s->namaddr, s->sasl_method, w->out ? w->out : "(reason unavailable)",
           w->username ? w->username : "(unavailable)");
  switch (w->result) {
  case AUTH_SASL_TEMP:
    smtpd_session_reply(s, "454 4.7.0 Temporary authentication failure: %s", w->out);
    break;
  case AUTH_SASL_BAD_BASE64:
    smtpd_session_reply(s, "501 5.5.2 %s", w->out);
    break;
  default:
    smtpd_session_reply(s, "535 5.7.8 Error: authentication failed: %s", w->out);
    break;
  }
  g_clear_pointer(&s->sasl, auth_sasl_free);
  g_clear_pointer(&s->sasl_method, g_free);
  if (w->result != AUTH_SASL_FAIL)
    return;
  s->auth_failures++;
  if (st->sasl_failure_limit > 0 && s->auth_failures >= (guint64) st->sasl_failure_limit) {
    g_autofree char *line = NULL;

    log_send(LOG_WARNING, NULL, f, 1, "too many failed AUTH commands from %s (%u)", s->namaddr,
             s->auth_failures);
    line = g_strdup_printf("421 4.7.0 %s Error: too many failed authentications",
                           st->myhostname);
    smtpd_session_close_with(s, line);
    return;
  }
  /* each failure waits longer than the one before */
  s->penalty_us = st->sasl_failure_delay * G_USEC_PER_SEC * s->auth_failures;
}

static void
auth_done_next(SmtpdSession *s, gpointer data)
{
  AuthWork *w = data;

  s->cmd = SMTPD_CMD_AUTH;
  switch (w->result) {
  case AUTH_SASL_DONE:
    /* logged with each message ("client=..., sasl_method=..., sasl_username=..."), as Postfix */
    g_free(s->sasl_username);
    s->sasl_username = g_strdup(w->username ? w->username : "");
    auth_printable(s->sasl_username);
    g_clear_pointer(&s->sasl, auth_sasl_free);
    smtpd_session_reply_line(s, "235 2.7.0 Authentication successful");
    break;
  case AUTH_SASL_MORE:
    smtpd_session_reply(s, "334 %s", w->out);
    s->auth_pending = TRUE;
    s->cmd = SMTPD_N_CMDS;     /* the command goes on: not accounted yet */
    smtpd_session_set_deadline(s, s->settings->timeout * G_USEC_PER_SEC);
    break;
  default:
    auth_failed(s, w);
    break;
  }
}

static void
auth_done(gpointer data)
{
  AuthWork *w = data;
  SmtpdSession *s = w->session;

  smtpd_session_continue(s, auth_done_next, w);
  g_free(w->mech);
  g_free(w->data);
  g_free(w->out);
  g_free(w->username);
  g_free(w);
}

static void
auth_submit(SmtpdSession *s, gboolean first, const char *mech, const char *data)
{
  AuthWork *w = g_new0(AuthWork, 1);

  w->session = s;
  w->sasl = s->sasl;
  w->first = first;
  w->mech = g_strdup(mech);
  w->data = g_strdup(data);
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, auth_work, auth_done, w);
}

void
smtpd_auth_command(SmtpdSession *s, char *arg)
{
  const SmtpdSettings *st = s->settings;
  g_autoptr(GError) error = NULL;
  char *mech, *initial;

  if (!smtpd_auth_offered(s)) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: authentication not enabled");
    return;
  }
  if (s->helo == NULL) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: send HELO/EHLO first");
    return;
  }
  if (s->sasl_username != NULL) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: already authenticated");
    return;
  }
  if (s->state != SMTPD_STATE_READY) {
    smtpd_session_reply_line(s, "503 5.5.1 Error: MAIL transaction in progress");
    return;
  }
  /* "mechanism [initial-response]" */
  mech = arg;
  initial = strchr(mech, ' ');
  if (initial != NULL) {
    *initial++ = '\0';
    if (*initial == '\0')
      initial = NULL;
  }
  if (*mech == '\0' || (initial != NULL && strchr(initial, ' ') != NULL)) {
    smtpd_session_reply_line(s, "501 5.5.4 Syntax: AUTH mechanism");
    return;
  }
  if (st->auth_rate_limit > 0 && !s->limit_exempt) {
    guint rate = smtpd_anvil_auth(s->server->anvil, s->client_addr, g_get_monotonic_time(),
                                  st->rate_time_unit * G_USEC_PER_SEC);
    if (rate > st->auth_rate_limit) {
      LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
      log_send(LOG_WARNING, NULL, f, 1, "AUTH command rate limit exceeded: %u from %s for "
               "service %s", rate, s->namaddr, smtpd_listener_kind_name(s->kind));
      smtpd_session_reply(s, "450 4.7.1 Error: too many AUTH commands from %s", s->client_addr);
      return;
    }
  }
  g_clear_pointer(&s->sasl, auth_sasl_free);
  s->sasl = auth_new(s, &error);
  if (s->sasl == NULL) {
    log_warning("%s", error->message);
    smtpd_session_reply_line(s, "454 4.7.0 Temporary authentication failure: "
                                "SASL per-connection initialization failed");
    return;
  }
  g_free(s->sasl_method);
  s->sasl_method = g_ascii_strup(mech, -1);
  auth_printable(s->sasl_method);
  auth_submit(s, TRUE, s->sasl_method, initial);
}

void
smtpd_auth_response(SmtpdSession *s, char *line, gsize len)
{
  LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
  g_autofree char *text = g_strndup(line, len);

  s->auth_pending = FALSE;
  s->cmd = SMTPD_CMD_AUTH;
  s->cmd_failed = FALSE;
  if (strcmp(text, "*") == 0) {
    log_send(LOG_WARNING, NULL, f, 1, "%s: SASL %s authentication aborted", s->namaddr,
             s->sasl_method);
    g_clear_pointer(&s->sasl, auth_sasl_free);
    g_clear_pointer(&s->sasl_method, g_free);
    smtpd_session_reply_line(s, "501 5.7.0 Authentication aborted");
    smtpd_session_command_done(s);
    return;
  }
  auth_submit(s, FALSE, NULL, text);
}

/* ---------------------------------------------------------------- sender logins */

TableResult
smtpd_auth_sender_owner(const SmtpdSettings *st, const char *sender, const char *login,
                        gboolean *owned, GError **error)
{
  g_autofree char *lower = g_ascii_strdown(sender, -1);
  g_autofree char *domain = address_domain(lower);
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
  const char *at = strrchr(lower, '@');

  *owned = FALSE;
  if (st->sender_login_maps == NULL)
    return TABLE_NOTFOUND;
  g_ptr_array_add(keys, g_strdup(lower));
  /* user+ext@domain: also user@domain */
  for (const char *d = st->recipient_delimiter; d && *d && at; d++) {
    const char *ext = memchr(lower, *d, (gsize) (at - lower));
    if (ext != NULL) {
      g_ptr_array_add(keys, g_strdup_printf("%.*s%s", (int) (ext - lower), lower, at));
      break;
    }
  }
  if (*domain)
    g_ptr_array_add(keys, g_strconcat("@", domain, NULL));
  for (guint i = 0; i < keys->len; i++) {
    g_autofree char *value = NULL;
    TableResult r = table_list_lookup(st->sender_login_maps, keys->pdata[i], &value, error);

    if (r == TABLE_TEMPFAIL)
      return r;
    if (r != TABLE_FOUND)
      continue;
    if (login != NULL) {
      g_auto(GStrv) owners = g_strsplit_set(value, ", \t", -1);
      for (char **o = owners; *o; o++)
        if (**o && g_ascii_strcasecmp(*o, login) == 0)
          *owned = TRUE;
    }
    return TABLE_FOUND;
  }
  return TABLE_NOTFOUND;
}
