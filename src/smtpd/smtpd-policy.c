/* smtpd-policy.c - recipient policy: smtpd_relay_restrictions and
 * smtpd_recipient_restrictions with the built-in restrictions, then the
 * local_recipient_maps check (smtpd_reject_unlisted_recipient) in the
 * lookup pool.  Reply texts are Postfix's.  An unknown restriction is a
 * configuration error: 451 4.3.5 and a log line, never a silent permit.
 */
#include <string.h>

#include "address.h"
#include "log.h"
#include "smtpd.h"

typedef enum { R_DUNNO, R_PERMIT, R_REJECT } Restriction;

static gboolean
domain_in(const char *domain, const char *const *list)
{
  return list != NULL && list[0] != NULL && address_domain_in_list(domain, list);
}

gboolean
smtpd_policy_is_local(const SmtpdSettings *st, const char *addr)
{
  g_autofree char *domain = address_domain(addr);
  return *domain == '\0' || domain_in(domain, st->mydestination);
}

/* Domains we accept mail for: local, virtual, or relayed. */
static gboolean
is_auth_destination(const SmtpdSettings *st, const char *addr)
{
  g_autofree char *domain = address_domain(addr);
  return *domain == '\0' || domain_in(domain, st->mydestination) ||
         domain_in(domain, st->virtual_alias_domains) ||
         domain_in(domain, st->virtual_mailbox_domains) || domain_in(domain, st->relay_domains);
}

/* Evaluates one restriction list; the first PERMIT or REJECT decides. */
static Restriction
eval_list(SmtpdSession *s, const char *list_name, const char *const *list, const char *addr,
          const char *orig, char **reply)
{
  const SmtpdSettings *st = s->settings;
  for (const char *const *p = list; p != NULL && *p != NULL; p++) {
    const char *r = *p;
    if (strcmp(r, "permit_mynetworks") == 0) {
      if (s->client_trusted)
        return R_PERMIT;
    } else if (strcmp(r, "permit_sasl_authenticated") == 0 || strcmp(r, "dunno") == 0 ||
               strcmp(r, "reject_unlisted_recipient") == 0) {
      continue;   /* no SASL yet; unlisted recipients are checked after the lists */
    } else if (strcmp(r, "reject_unauth_destination") == 0) {
      if (!is_auth_destination(st, addr)) {
        *reply = g_strdup_printf("554 5.7.1 <%s>: Relay access denied", orig);
        return R_REJECT;
      }
    } else if (strcmp(r, "defer_unauth_destination") == 0) {
      if (!is_auth_destination(st, addr)) {
        *reply = g_strdup_printf("450 4.7.1 <%s>: Relay access denied", orig);
        return R_REJECT;
      }
    } else if (strcmp(r, "permit_auth_destination") == 0) {
      if (is_auth_destination(st, addr))
        return R_PERMIT;
    } else if (strcmp(r, "permit") == 0) {
      return R_PERMIT;
    } else if (strcmp(r, "reject") == 0) {
      *reply = g_strdup_printf("554 5.7.1 <%s>: Recipient address rejected: Access denied", orig);
      return R_REJECT;
    } else if (strcmp(r, "defer") == 0) {
      *reply = g_strdup_printf("450 4.7.1 <%s>: Recipient address rejected: Try again later",
                               orig);
      return R_REJECT;
    } else {
      log_warning("unknown smtpd restriction \"%s\" in %s", r, list_name);
      *reply = g_strdup("451 4.3.5 Server configuration error");
      return R_REJECT;
    }
  }
  return R_DUNNO;
}

SmtpdPolicyResult
smtpd_policy_check_rcpt(SmtpdSession *s, const char *addr, const char *orig, char **reply)
{
  const SmtpdSettings *st = s->settings;
  *reply = NULL;
  if (eval_list(s, "smtpd_relay_restrictions", st->relay_restrictions, addr, orig, reply) ==
      R_REJECT)
    return SMTPD_POLICY_REJECT;
  if (eval_list(s, "smtpd_recipient_restrictions", st->recipient_restrictions, addr, orig,
                reply) == R_REJECT)
    return SMTPD_POLICY_REJECT;
  return SMTPD_POLICY_ACCEPT;
}

void
smtpd_policy_log_reject(SmtpdSession *s, const char *cmd, const char *reply, const char *rcpt)
{
  const char *sender = s->sender_orig != NULL ? s->sender_orig : "";
  LogField f[] = {
    { "POSTERN_CLIENT", s->namaddr },
    { "POSTERN_SENDER", sender },
    { "POSTERN_RECIPIENT", rcpt },
  };
  log_send(LOG_INFO, NULL, f, G_N_ELEMENTS(f),
           "NOQUEUE: reject: %s from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>", cmd,
           s->namaddr, reply, sender, rcpt, s->esmtp ? "ESMTP" : "SMTP",
           s->helo != NULL ? s->helo : "");
}

typedef struct {
  SmtpdSession *session;
  TableList *maps;
  char *keys[2];
  char *addr, *orig;
  TableResult result;
  char *queue_directory;     /* set: also create the queue file ahead of DATA */
  QueueWriter *writer;
} RcptLookup;

static void
rcpt_lookup_work(gpointer data)
{
  RcptLookup *w = data;
  w->result = TABLE_NOTFOUND;
  for (guint i = 0; i < G_N_ELEMENTS(w->keys) && w->keys[i] != NULL; i++) {
    g_autofree char *value = NULL;
    g_autoptr(GError) error = NULL;
    w->result = table_list_lookup(w->maps, w->keys[i], &value, &error);
    if (w->result != TABLE_NOTFOUND)
      break;
  }
  /* The transaction will most likely reach DATA: create its queue file
   * now, in this thread, instead of in another hop at DATA.  A failure
   * here is retried (and reported) at DATA. */
  if (w->result == TABLE_FOUND && w->queue_directory != NULL)
    w->writer = queue_writer_new(w->queue_directory, NULL);
}

static void
rcpt_reject(SmtpdSession *s, const char *reply, const char *orig)
{
  smtpd_session_reply_line(s, reply);
  smtpd_policy_log_reject(s, "RCPT", reply, orig);
}

static void
rcpt_lookup_done(gpointer data)
{
  RcptLookup *w = data;
  SmtpdSession *s = w->session;
  if (s->state < SMTPD_STATE_QUIT) {
    if (w->result == TABLE_FOUND) {
      smtpd_commands_rcpt_accept(s, g_steal_pointer(&w->addr), g_steal_pointer(&w->orig));
      if (s->writer_ahead == NULL)
        s->writer_ahead = g_steal_pointer(&w->writer);
    } else if (w->result == TABLE_TEMPFAIL) {
      g_autofree char *reply = g_strdup_printf("451 4.3.0 <%s>: Temporary lookup failure",
                                               w->orig);
      rcpt_reject(s, reply, w->orig);
    } else {
      g_autofree char *reply = g_strdup_printf(
          "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table",
          w->orig);
      rcpt_reject(s, reply, w->orig);
    }
  }
  g_free(w->keys[0]);
  g_free(w->keys[1]);
  g_free(w->addr);
  g_free(w->orig);
  g_free(w->queue_directory);
  g_clear_pointer(&w->writer, queue_writer_free);
  g_free(w);
  smtpd_session_resume(s);
}

gboolean
smtpd_policy_start_recipient_lookup(SmtpdSession *s, const char *addr, const char *orig)
{
  const SmtpdSettings *st = s->settings;
  if (!st->reject_unlisted_recipient || !smtpd_policy_is_local(st, addr))
    return FALSE;
  if (st->local_recipient_maps == NULL) {
    if (st->local_recipient_maps_error == NULL)
      return FALSE;   /* empty local_recipient_maps: no check, as Postfix */
    log_warning("local_recipient_maps: %s", st->local_recipient_maps_error);
    g_autofree char *reply = g_strdup_printf("451 4.3.0 <%s>: Temporary lookup failure", orig);
    rcpt_reject(s, reply, orig);
    return TRUE;
  }

  /* Key: the local part, unquoted and case-folded; with an extension
   * ("user+ext") first as is, then without it. */
  const char *at = address_at_sign(addr);
  g_autofree char *local = at != NULL ? g_strndup(addr, at - addr) : g_strdup(addr);
  g_autofree char *unquoted = address_local_unquoted(local);
  g_autofree char *folded = g_utf8_strdown(unquoted, -1);
  char *ext = NULL;
  g_autofree char *base = NULL;
  if (st->recipient_delimiter != NULL && *st->recipient_delimiter != '\0')
    base = address_strip_extension(folded, st->recipient_delimiter, &ext);
  g_free(ext);

  RcptLookup *w = g_new0(RcptLookup, 1);
  w->session = s;
  w->maps = st->local_recipient_maps;
  w->keys[0] = g_strdup(folded);
  if (base != NULL && strcmp(base, folded) != 0)
    w->keys[1] = g_steal_pointer(&base);
  w->addr = g_strdup(addr);
  w->orig = g_strdup(orig);
  if (s->writer_ahead == NULL)
    w->queue_directory = g_strdup(st->queue_directory);
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, rcpt_lookup_work, rcpt_lookup_done, w);
  return TRUE;
}
