/* smtpd-policy.c - when the restriction stages run, and off the loop.
 *
 * With smtpd_delay_reject = yes (default) every RCPT runs, in one
 * lookup-pool item, the client, helo and sender restrictions, then
 * smtpd_relay_restrictions and smtpd_recipient_restrictions, then the
 * recipient table check (local_recipient_maps, virtual_alias_maps,
 * virtual_mailbox_maps: smtpd_reject_unlisted_recipient), and
 * creates the queue file ahead of DATA; the reply comes from done().
 * With smtpd_delay_reject = no the client, helo and sender stages run
 * at CONNECT, HELO and MAIL instead.  The evaluation itself is in
 * smtpd-access.c; this file snapshots the session, applies the results
 * (DISCARD, HOLD, PREPEND) and logs in Postfix's words.
 */
#include <string.h>

#include "address.h"
#include "log.h"
#include "smtpd.h"

gboolean
smtpd_policy_domain_class(const SmtpdSettings *st, const char *addr, DomainClass *cls,
                          GError **error)
{
  g_autofree char *domain = address_domain(addr);
  return domain_classes_resolve(st->domains, domain, cls, error);
}

/* Postfix's log_whatsup(): from=, to= and helo= only when known. */
static void
policy_log(SmtpdSession *s, int level, const char *action, const char *cmd, const char *text,
           const char *rcpt)
{
  const char *sender = s->sender_orig;
  GString *line = g_string_new(NULL);
  g_string_append_printf(line, "NOQUEUE: %s: %s from %s: %s;", action, cmd, s->namaddr, text);
  if (sender != NULL)
    g_string_append_printf(line, " from=<%s>", sender);
  if (rcpt != NULL)
    g_string_append_printf(line, " to=<%s>", rcpt);
  g_string_append_printf(line, " proto=%s", s->esmtp ? "ESMTP" : "SMTP");
  if (s->helo != NULL)
    g_string_append_printf(line, " helo=<%s>", s->helo);
  LogField f[] = {
    { "POSTERN_CLIENT", s->namaddr },
    { "POSTERN_SENDER", sender != NULL ? sender : "" },
    { "POSTERN_RECIPIENT", rcpt != NULL ? rcpt : "" },
  };
  log_send(level, NULL, f, G_N_ELEMENTS(f), "%s", line->str);
  g_string_free(line, TRUE);
}

void
smtpd_policy_log_reject(SmtpdSession *s, const char *cmd, const char *reply, const char *rcpt)
{
  policy_log(s, LOG_INFO, "reject", cmd, reply, rcpt);
}

void
smtpd_policy_log_event(SmtpdSession *s, const char *action, const char *cmd, const char *text,
                       const char *rcpt)
{
  policy_log(s, LOG_INFO, action, cmd, text, rcpt);
}

/* Logs what the evaluation collected (see ctx_event in smtpd-access.c). */
static void
policy_log_events(SmtpdSession *s, const SmtpdAccessCtx *ctx, const char *cmd)
{
  for (guint i = 0; ctx->events != NULL && i < ctx->events->len; i++) {
    const char *ev = ctx->events->pdata[i];
    const char *tab = strchr(ev, '\t');
    g_autofree char *action = g_strndup(ev, tab - ev);
    if (strcmp(action, "warning") == 0)
      log_warning("%s", tab + 1);
    else
      smtpd_policy_log_event(s, action, cmd, tab + 1, ctx->rcpt_orig);
  }
}

/* The snapshot a worker evaluates. */
static void
policy_snapshot(SmtpdSession *s, SmtpdAccessCtx *ctx)
{
  ctx->settings = s->settings;
  ctx->client_name = g_strdup(s->client_name);
  ctx->client_addr = g_strdup(s->client_addr);
  ctx->namaddr = g_strdup(s->namaddr);
  ctx->helo = g_strdup(s->helo);
  ctx->sender = g_strdup(s->sender);
  ctx->sender_orig = g_strdup(s->sender_orig);
  ctx->trusted = s->client_trusted;
  ctx->trust_tempfail = s->trust_tempfail;
  ctx->ill_pipelining = s->ill_pipelining;
  ctx->discard = s->discard;
}

typedef struct {
  SmtpdSession *session;
  SmtpdAccessCtx ctx;
  guint stages;               /* 1 << SmtpdStage */
  SmtpdAccess result;
  gboolean rcpt;              /* RCPT: recipient maps, queue file ahead */
  char *queue_directory;      /* set: create the queue file ahead of DATA */
  QueueWriter *writer;
  SmtpdPolicyDone done;       /* CONNECT/HELO/MAIL */
  const char *cmd;
} PolicyWork;

static void
policy_work(gpointer data)
{
  PolicyWork *w = data;
  SmtpdAccessCtx *ctx = &w->ctx;
  const SmtpdSettings *st = ctx->settings;
  w->result = SMTPD_ACCESS_DUNNO;
  for (int stage = 0; stage < SMTPD_N_STAGES && !ctx->discard; stage++) {
    if (!(w->stages & (1u << stage)))
      continue;
    w->result = smtpd_access_eval_stage(ctx, stage);
    if (w->result == SMTPD_ACCESS_REJECT)
      return;
    if (stage == SMTPD_STAGE_SENDER && st->reject_unlisted_sender && !ctx->discard &&
        ctx->sender != NULL && *ctx->sender != '\0') {
      const char *table = NULL;
      g_autoptr(GError) error = NULL;
      TableResult r = smtpd_access_recipient_known(st, ctx->sender, &table, &error);
      if (r == TABLE_TEMPFAIL && error != NULL)
        smtpd_access_ctx_warn(ctx, error->message);
      if (r != TABLE_FOUND) {
        ctx->reply = r == TABLE_TEMPFAIL
            ? g_strdup_printf("451 4.3.0 <%s>: Temporary lookup failure", ctx->sender_orig)
            : g_strdup_printf("550 5.1.0 <%s>: Sender address rejected: User unknown in %s",
                              ctx->sender_orig, table);
        w->result = SMTPD_ACCESS_REJECT;
        return;
      }
    }
  }
  if (!w->rcpt)
    return;
  if (!ctx->discard && !ctx->rcpt_checked && st->reject_unlisted_recipient) {
    const char *table = NULL;
    g_autoptr(GError) error = NULL;
    TableResult r = smtpd_access_recipient_known(st, ctx->rcpt, &table, &error);
    if (r == TABLE_TEMPFAIL) {
      if (error != NULL)
        smtpd_access_ctx_warn(ctx, error->message);
      ctx->reply = g_strdup_printf("451 4.3.0 <%s>: Temporary lookup failure", ctx->rcpt_orig);
      w->result = SMTPD_ACCESS_REJECT;
      return;
    }
    if (r == TABLE_NOTFOUND) {
      ctx->reply = g_strdup_printf(
          "550 5.1.1 <%s>: Recipient address rejected: User unknown in %s",
          ctx->rcpt_orig, table);
      w->result = SMTPD_ACCESS_REJECT;
      return;
    }
  }
  /* The transaction will most likely reach DATA: create its queue file
   * now, in this thread, instead of in another hop at DATA.  A failure
   * here is retried (and reported) at DATA. */
  if (w->queue_directory != NULL)
    w->writer = queue_writer_new(w->queue_directory, NULL);
}

static void
policy_work_free(PolicyWork *w)
{
  smtpd_access_ctx_clear(&w->ctx);
  g_free(w->queue_directory);
  g_clear_pointer(&w->writer, queue_writer_free);
  g_free(w);
}

/* Transaction side effects of an accepted command. */
static void
policy_apply(SmtpdSession *s, SmtpdAccessCtx *ctx)
{
  if (ctx->discard)
    s->discard = TRUE;
  if (ctx->hold)
    s->hold = TRUE;
  for (guint i = 0; ctx->prepend != NULL && i < ctx->prepend->len; i++) {
    const char *h = ctx->prepend->pdata[i];
    if (s->prepend == NULL)
      s->prepend = g_ptr_array_new_with_free_func(g_free);
    gboolean seen = FALSE;   /* every RCPT re-evaluates the same stages */
    for (guint j = 0; j < s->prepend->len && !seen; j++)
      seen = strcmp(s->prepend->pdata[j], h) == 0;
    if (!seen)
      g_ptr_array_add(s->prepend, g_strdup(h));
  }
}

static void
rcpt_done(gpointer data)
{
  PolicyWork *w = data;
  SmtpdSession *s = w->session;
  if (s->state < SMTPD_STATE_QUIT) {
    policy_log_events(s, &w->ctx, "RCPT");
    if (w->result == SMTPD_ACCESS_REJECT) {
      smtpd_session_reply_line(s, w->ctx.reply);
      smtpd_policy_log_reject(s, "RCPT", w->ctx.reply, w->ctx.rcpt_orig);
    } else {
      policy_apply(s, &w->ctx);
      smtpd_commands_rcpt_accept(s, g_steal_pointer(&w->ctx.rcpt),
                                 g_steal_pointer(&w->ctx.rcpt_orig));
      if (s->writer_ahead == NULL)
        s->writer_ahead = g_steal_pointer(&w->writer);
    }
  }
  policy_work_free(w);
  smtpd_session_resume(s);
}

void
smtpd_policy_check_rcpt(SmtpdSession *s, char *addr, char *orig)
{
  const SmtpdSettings *st = s->settings;
  PolicyWork *w = g_new0(PolicyWork, 1);
  w->session = s;
  w->rcpt = TRUE;
  policy_snapshot(s, &w->ctx);
  w->ctx.rcpt = addr;
  w->ctx.rcpt_orig = orig;
  if (st->delay_reject)
    w->stages |= 1u << SMTPD_STAGE_CLIENT | 1u << SMTPD_STAGE_HELO | 1u << SMTPD_STAGE_SENDER;
  w->stages |= 1u << SMTPD_STAGE_RELAY | 1u << SMTPD_STAGE_RECIPIENT;
  if (s->writer_ahead == NULL)
    w->queue_directory = g_strdup(st->queue_directory);
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, policy_work, rcpt_done, w);
}

static const char *const stage_cmds[SMTPD_N_STAGES] = {
  [SMTPD_STAGE_CLIENT] = "CONNECT", [SMTPD_STAGE_HELO] = "HELO",
  [SMTPD_STAGE_SENDER] = "MAIL",    [SMTPD_STAGE_RELAY] = "RCPT",
  [SMTPD_STAGE_RECIPIENT] = "RCPT", [SMTPD_STAGE_DATA] = "DATA",
};

static void
stage_done(gpointer data)
{
  PolicyWork *w = data;
  SmtpdSession *s = w->session;
  if (s->state < SMTPD_STATE_QUIT) {
    policy_log_events(s, &w->ctx, w->cmd);
    if (w->result == SMTPD_ACCESS_REJECT) {
      smtpd_policy_log_reject(s, w->cmd, w->ctx.reply, NULL);
      w->done(s, w->ctx.reply);
    } else {
      if (w->stages & (1u << SMTPD_STAGE_SENDER))
        policy_apply(s, &w->ctx);   /* client and helo actions outlive no transaction */
      w->done(s, NULL);
    }
  }
  policy_work_free(w);
  smtpd_session_resume(s);
}

gboolean
smtpd_policy_check_stage(SmtpdSession *s, SmtpdStage stage, SmtpdPolicyDone done)
{
  const SmtpdSettings *st = s->settings;
  const char *const *list = stage == SMTPD_STAGE_CLIENT   ? st->client_restrictions
                            : stage == SMTPD_STAGE_HELO   ? st->helo_restrictions
                            : stage == SMTPD_STAGE_SENDER ? st->sender_restrictions
                                                          : st->data_restrictions;
  gboolean unlisted_sender = stage == SMTPD_STAGE_SENDER && st->reject_unlisted_sender;
  if ((list == NULL || list[0] == NULL) && !unlisted_sender)
    return FALSE;
  PolicyWork *w = g_new0(PolicyWork, 1);
  w->session = s;
  w->stages = 1u << stage;
  w->done = done;
  w->cmd = stage_cmds[stage];
  policy_snapshot(s, &w->ctx);
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, policy_work, stage_done, w);
  return TRUE;
}
