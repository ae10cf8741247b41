/* smtpd-local.c - submissions on the local listener (the unix socket
 * that sendmail(1) talks to): what Postfix's postdrop, pickup and
 * cleanup do for locally posted mail, here inside smtpd.
 *
 * The kernel names the client (SO_PEERCRED: uid, gid, pid), so nothing
 * a local user sends can claim another identity.  The login name comes
 * from the passwd database (off the loop); authorized_submit_users
 * decides whether it may submit at all (a refusal replaces the
 * greeting), local_login_sender_maps which MAIL FROM addresses it may
 * use.  The message gets pickup's "Received: by HOST (NAME, from userid
 * UID)" instead of an SMTP Received: header, and cleanup's treatment of
 * local mail: Bcc: headers removed, a missing Message-Id:, Date: and
 * From: added (smtp-headers.c).  The queue-id log line is pickup's
 * "uid=UID from=<sender>".  Never trusts anything but the kernel's
 * credentials.
 */
#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "address.h"
#include "log.h"
#include "smtpd.h"

gboolean
smtpd_local_peer(SmtpdSession *s)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred) {
    log_warning("local listener: cannot get the peer credentials: %s", g_strerror(errno));
    return FALSE;
  }
  s->local_submit = TRUE;
  s->local_uid = cred.uid;
  s->local_gid = cred.gid;
  s->local_pid = cred.pid;
  return TRUE;
}

/* The login name of uid, or NULL when the passwd database has none. */
static char *
local_login_name(uid_t uid)
{
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  if (size < 1024)
    size = 1024;
  for (;;) {
    g_autofree char *buf = g_malloc(size);
    struct passwd pw, *result = NULL;
    int rc = getpwuid_r(uid, &pw, buf, size, &result);
    if (rc == ERANGE && size < (1 << 20)) {
      size *= 2;
      continue;
    }
    return rc == 0 && result != NULL ? g_strdup(pw.pw_name) : NULL;
  }
}

void
smtpd_local_identify(const SmtpdSettings *st, uid_t uid, SmtpdLocalUser *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = local_login_name(uid);

  memset(user, 0, sizeof *user);
  /* Postfix: "uid:N" for local_login_sender_maps, "unknown" for
   * authorized_submit_users, when the uid has no passwd entry. */
  user->login = name != NULL ? g_strdup(name) : g_strdup_printf("uid:%lu", (unsigned long) uid);
  if (st->submit_users == NULL) {
    user->allowed = MATCH_TEMPFAIL;
    user->error = g_strdup(st->submit_users_error);
    return;
  }
  user->allowed = domain_list_match(st->submit_users, name != NULL ? name : "unknown", &error);
  if (user->allowed == MATCH_TEMPFAIL)
    user->error = g_strdup(error != NULL ? error->message : "authorized_submit_users: lookup failed");
}

void
smtpd_local_apply(SmtpdSession *s, SmtpdLocalUser *user)
{
  const SmtpdSettings *st = s->settings;
  g_free(s->local_login);
  s->local_login = g_steal_pointer(&user->login);
  /* A local client is this host's user, named by the kernel: like
   * Postfix's default exclusion of $mynetworks, bare CR is message data
   * and a bare LF ends a line (sendmail sends CRLF anyway). */
  s->strict_newline = FALSE;
  if (user->allowed == MATCH_TEMPFAIL) {
    log_warning("%s; refusing local submission by uid=%lu", user->error,
                (unsigned long) s->local_uid);
    s->submit_denied = g_strdup_printf("421 4.3.0 %s Error: authorized_submit_users: "
                                       "lookup failed", st->myhostname);
  } else if (user->allowed != MATCH_FOUND) {
    /* Postfix's postdrop: "User %s(%ld) is not allowed to submit mail". */
    const char *name = g_str_has_prefix(s->local_login, "uid:") ? "unknown" : s->local_login;
    s->submit_denied = g_strdup_printf("554 5.7.1 User %s(%lu) is not allowed to submit mail",
                                       name, (unsigned long) s->local_uid);
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_WARNING, NULL, f, 1, "User %s(%lu) is not allowed to submit mail", name,
             (unsigned long) s->local_uid);
  }
  g_clear_pointer(&user->error, g_free);
}

TableResult
smtpd_local_sender_allowed(const SmtpdSettings *st, const char *login, const char *sender,
                           GError **error)
{
  g_autofree char *patterns = NULL;
  if (st->login_sender_maps == NULL) {
    if (st->login_sender_maps_error == NULL)
      return TABLE_NOTFOUND;   /* an empty list allows nobody anything */
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "local_login_sender_maps: %s",
                st->login_sender_maps_error);
    return TABLE_TEMPFAIL;
  }
  TableResult r = table_list_lookup(st->login_sender_maps, login, &patterns, error);
  if (r != TABLE_FOUND)
    return r;

  /* Postfix's login_sender_match(): "*" any sender, the null-sender
   * key the empty one, "@domain" any address in domain; anything else
   * is compared case-insensitively with the sender without its address
   * extension. */
  const char *at = address_at_sign(sender);
  g_autofree char *local = address_local_unquoted(sender);
  g_autofree char *base = address_strip_extension(local, st->recipient_delimiter, NULL);
  g_autofree char *stripped = address_join(base, at != NULL ? at + 1 : NULL);
  g_auto(GStrv) list = g_strsplit_set(patterns, ", \t", -1);
  for (char **p = list; *p != NULL; p++) {
    if (**p == '\0')
      continue;
    if (**p == '@') {
      if (at != NULL && g_ascii_strcasecmp(*p, at) == 0)
        return TABLE_FOUND;
    } else if (strcmp(*p, "*") == 0) {
      return TABLE_FOUND;
    } else if (g_ascii_strcasecmp(*p, st->login_null_sender) == 0) {
      if (*sender == '\0')
        return TABLE_FOUND;
    } else if (*sender != '\0' && g_ascii_strcasecmp(*p, stripped) == 0) {
      return TABLE_FOUND;
    }
  }
  return TABLE_NOTFOUND;
}

typedef struct {
  SmtpdSession *session;
  const SmtpdSettings *settings;   /* the session holds a reference */
  char *login, *sender;
  SmtpdPolicyDone done;
  char *reply;
  char *warning;
} SenderWork;

static void
sender_work(gpointer data)
{
  SenderWork *w = data;
  g_autoptr(GError) error = NULL;
  switch (smtpd_local_sender_allowed(w->settings, w->login, w->sender, &error)) {
  case TABLE_FOUND:
    break;
  case TABLE_NOTFOUND:
    /* Postfix's reject_sender_login_mismatch wording. */
    w->reply = g_strdup_printf("553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
                               w->sender, w->login);
    break;
  case TABLE_TEMPFAIL:
  default:
    w->warning = g_strdup(error != NULL ? error->message : "local_login_sender_maps: lookup failed");
    w->reply = g_strdup_printf("451 4.3.0 <%s>: Temporary lookup failure", w->sender);
    break;
  }
}

static void
sender_next(SmtpdSession *s, gpointer data)
{
  SenderWork *w = data;
  w->done(s, w->reply);
}

static void
sender_done(gpointer data)
{
  SenderWork *w = data;
  SmtpdSession *s = w->session;
  if (w->warning != NULL)
    log_warning("%s", w->warning);
  if (w->reply != NULL && s->state < SMTPD_STATE_QUIT)
    smtpd_policy_log_reject(s, "MAIL", w->reply, NULL);
  smtpd_session_continue(s, sender_next, w);
  g_free(w->login);
  g_free(w->sender);
  g_free(w->reply);
  g_free(w->warning);
  g_free(w);
}

gboolean
smtpd_local_check_sender(SmtpdSession *s, SmtpdPolicyDone done)
{
  if (s->settings->login_sender_any)
    return FALSE;
  SenderWork *w = g_new0(SenderWork, 1);
  w->session = s;
  w->settings = s->settings;
  w->login = g_strdup(s->local_login);
  w->sender = g_strdup(s->sender_orig);
  w->done = done;
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, sender_work, sender_done, w);
  return TRUE;
}

char *
smtpd_local_received(SmtpdSession *s, const char *qid)
{
  const SmtpdSettings *st = s->settings;
  g_autofree char *date = smtpd_mail_date(s->arrival_us);
  return g_strdup_printf("Received: by %s (%s, from userid %lu)\n\tid %s; %s\n", st->myhostname,
                         st->mail_name, (unsigned long) s->local_uid, qid, date);
}

void
smtpd_local_data_begin(SmtpdSession *s, const char *qid)
{
  const SmtpdSettings *st = s->settings;
  /* Postfix's cleanup: Message-Id: <YYYYMMDDHHMMSS.QUEUEID@myhostname>
   * (UTC), Date: the arrival time, From: the envelope sender
   * (MAILER-DAEMON for <>). */
  time_t t = s->arrival_us / G_USEC_PER_SEC;
  struct tm tm;
  char stamp[32];
  gmtime_r(&t, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  g_autofree char *msgid = g_strdup_printf("<%s.%s@%s>", stamp, qid, st->myhostname);
  g_autofree char *date = smtpd_mail_date(s->arrival_us);
  const char *from = *s->sender != '\0' ? s->sender : "MAILER-DAEMON";

  smtpd_local_data_end(s);
  s->headers = g_new0(SmtpHeaderFilter, 1);
  smtp_headers_init(s->headers, st->header_size_limit, msgid, date, from);
  s->header_out = g_string_sized_new(4096);
}

void
smtpd_local_data_end(SmtpdSession *s)
{
  if (s->headers != NULL) {
    smtp_headers_clear(s->headers);
    g_clear_pointer(&s->headers, g_free);
  }
  if (s->header_out != NULL) {
    g_string_free(s->header_out, TRUE);
    s->header_out = NULL;
  }
}
