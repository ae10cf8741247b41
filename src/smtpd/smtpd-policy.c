/* smtpd-policy.c - when the restriction stages run, and off the loop.
 *
 * With smtpd_delay_reject = yes (default) every RCPT runs, in one
 * lookup-pool item, the client, helo and sender restrictions, then
 * smtpd_relay_restrictions and smtpd_recipient_restrictions, then the
 * recipient table check (local_recipient_maps, virtual_alias_maps,
 * virtual_mailbox_maps: smtpd_reject_unlisted_recipient), and
 * creates the queue file ahead of DATA; the reply comes from done().
 * With smtpd_delay_reject = no the client, helo and sender stages run
 * at CONNECT, HELO and MAIL instead.  smtpd_data_restrictions run at
 * DATA, smtpd_end_of_data_restrictions after the final dot (both with the
 * recipient when there is only one, as Postfix).  The evaluation itself
 * is in smtpd-access.c; this file snapshots the session, applies the
 * results (DISCARD, HOLD, PREPEND, REDIRECT, BCC) and logs in Postfix's
 * words.
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

/* Postfix's log_whatsup(): the queue id once the transaction has a
 * queue file, else NOQUEUE; from=, to= and helo= only when known. */
static void
policy_log(SmtpdSession *s, int level, const char *action, const char *cmd, const char *text,
           const char *rcpt, const char *qid)
{
  const char *sender = s->sender_orig;
  GString *line = g_string_new(NULL);
  if (qid == NULL)
    g_string_append(line, "NOQUEUE: ");   /* log_send puts a queue id there itself */
  g_string_append_printf(line, "%s: %s from %s: %s;", action, cmd, s->namaddr, text);
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
  log_send(level, qid, f, G_N_ELEMENTS(f), "%s", line->str);
  g_string_free(line, TRUE);
}

void
smtpd_policy_log_reject(SmtpdSession *s, const char *cmd, const char *reply, const char *rcpt)
{
  policy_log(s, LOG_INFO, "reject", cmd, reply, rcpt, NULL);
}

void
smtpd_policy_log_event(SmtpdSession *s, const char *action, const char *cmd, const char *text,
                       const char *rcpt)
{
  policy_log(s, LOG_INFO, action, cmd, text, rcpt, NULL);
}

/* Logs what the evaluation collected (see ctx_event in smtpd-access.c). */
static void
policy_log_events(SmtpdSession *s, const SmtpdAccessCtx *ctx, const char *cmd,
                  const char *qid)
{
  for (guint i = 0; ctx->events != NULL && i < ctx->events->len; i++) {
    const char *ev = ctx->events->pdata[i];
    const char *tab = strchr(ev, '\t');
    g_autofree char *action = g_strndup(ev, tab - ev);
    if (strcmp(action, "warning") == 0)
      log_warning("%s", tab + 1);
    else
      policy_log(s, LOG_INFO, action, cmd, tab + 1, ctx->rcpt_orig, qid);
  }
}

/* The snapshot a worker evaluates. */
static void
policy_snapshot(SmtpdSession *s, SmtpdAccessCtx *ctx)
{
  ctx->settings = s->settings;
  ctx->client_name = g_strdup(s->client_name);
  ctx->client_reverse_name = g_strdup(s->client_reverse_name);
  ctx->client_name_status = s->client_name_status;
  ctx->client_reverse_status = s->client_reverse_status;
  ctx->client_addr = g_strdup(s->client_addr);
  ctx->namaddr = g_strdup(s->namaddr);
  ctx->helo = g_strdup(s->helo);
  ctx->sender = g_strdup(s->sender);
  ctx->sender_orig = g_strdup(s->sender_orig);
  ctx->sasl_username = g_strdup(s->sasl_username);
  ctx->trusted = s->client_trusted;
  ctx->trust_tempfail = s->trust_tempfail;
  ctx->ill_pipelining = s->ill_pipelining;
  ctx->discard = s->discard;
  ctx->defer_if_permit = g_strdup(s->defer_sender != NULL ? s->defer_sender : s->defer_client);
  ctx->hold = s->hold;   /* a second HOLD is not logged again */
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
  if (!w->rcpt) {
    if (ctx->stage >= SMTPD_STAGE_DATA)
      w->result = smtpd_access_finish(ctx, w->result);
    return;
  }
  w->result = smtpd_access_finish(ctx, w->result);
  if (w->result == SMTPD_ACCESS_REJECT)
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

/* Adds the strings of from that list does not hold yet: every RCPT
 * re-evaluates the same stages. */
static void
policy_add_new(GPtrArray **list, const GPtrArray *from)
{
  for (guint i = 0; from != NULL && i < from->len; i++) {
    const char *v = from->pdata[i];
    if (*list == NULL)
      *list = g_ptr_array_new_with_free_func(g_free);
    gboolean seen = FALSE;
    for (guint j = 0; j < (*list)->len && !seen; j++)
      seen = strcmp((*list)->pdata[j], v) == 0;
    if (!seen)
      g_ptr_array_add(*list, g_strdup(v));
  }
}

/* Transaction side effects of an accepted command. */
static void
policy_apply(SmtpdSession *s, SmtpdAccessCtx *ctx)
{
  if (ctx->discard)
    s->discard = TRUE;
  if (ctx->hold)
    s->hold = TRUE;
  policy_add_new(&s->prepend, ctx->prepend);
  if (ctx->redirect != NULL) {
    g_free(s->redirect);   /* the last REDIRECT wins */
    s->redirect = g_steal_pointer(&ctx->redirect);
  }
  policy_add_new(&s->bcc, ctx->bcc);
}

static void
rcpt_done(gpointer data)
{
  PolicyWork *w = data;
  SmtpdSession *s = w->session;
  if (s->state < SMTPD_STATE_QUIT) {
    policy_log_events(s, &w->ctx, "RCPT", NULL);
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
  [SMTPD_STAGE_END_OF_DATA] = "END-OF-MESSAGE",
};

/* The queue file the transaction has at this stage (its id goes into the
 * log lines, as Postfix's once cleanup has one open), or NULL. */
static const char *
stage_queue_id(const SmtpdSession *s, SmtpdStage stage)
{
  if (stage == SMTPD_STAGE_END_OF_DATA && s->writer != NULL)
    return queue_writer_id(s->writer);
  if (stage == SMTPD_STAGE_DATA && s->writer_ahead != NULL)
    return queue_writer_id(s->writer_ahead);
  return NULL;
}

/* In the loop, once the suspension is over: the caller's next step. */
static void
stage_next(SmtpdSession *s, gpointer data)
{
  PolicyWork *w = data;
  w->done(s, w->result == SMTPD_ACCESS_REJECT ? w->ctx.reply : NULL);
}

static void
stage_done(gpointer data)
{
  PolicyWork *w = data;
  SmtpdSession *s = w->session;
  SmtpdStage stage = w->ctx.stage;
  if (s->state < SMTPD_STATE_QUIT) {
    const char *qid = stage_queue_id(s, stage);
    policy_log_events(s, &w->ctx, w->cmd, qid);
    if (w->result == SMTPD_ACCESS_REJECT) {
      policy_log(s, LOG_INFO, "reject", w->cmd, w->ctx.reply, w->ctx.rcpt_orig, qid);
    } else {
      if (stage >= SMTPD_STAGE_SENDER)
        policy_apply(s, &w->ctx);   /* client and helo actions outlive no transaction */
      /* A temporary DNS failure seen at CONNECT, HELO or MAIL defers the
       * first recipient that nothing rejects (Postfix's
       * defer_if_permit_client/helo/sender). */
      if (stage <= SMTPD_STAGE_SENDER) {
        char **slot = stage == SMTPD_STAGE_SENDER ? &s->defer_sender : &s->defer_client;
        if (*slot == NULL)
          *slot = g_steal_pointer(&w->ctx.defer_if_permit);
      }
    }
  }
  smtpd_session_continue(s, stage_next, w);
  policy_work_free(w);
}

gboolean
smtpd_policy_check_stage(SmtpdSession *s, SmtpdStage stage, SmtpdPolicyDone done)
{
  const SmtpdSettings *st = s->settings;
  const char *const *list = stage == SMTPD_STAGE_CLIENT   ? st->client_restrictions
                            : stage == SMTPD_STAGE_HELO   ? st->helo_restrictions
                            : stage == SMTPD_STAGE_SENDER ? st->sender_restrictions
                            : stage == SMTPD_STAGE_DATA   ? st->data_restrictions
                                                          : st->end_of_data_restrictions;
  gboolean unlisted_sender = stage == SMTPD_STAGE_SENDER && st->reject_unlisted_sender;
  if ((list == NULL || list[0] == NULL) && !unlisted_sender)
    return FALSE;
  PolicyWork *w = g_new0(PolicyWork, 1);
  w->session = s;
  w->stages = 1u << stage;
  w->done = done;
  /* Postfix logs a BDAT transaction's DATA stage as BDAT. */
  w->cmd = stage == SMTPD_STAGE_DATA && s->cmd == SMTPD_CMD_BDAT ? "BDAT" : stage_cmds[stage];
  policy_snapshot(s, &w->ctx);
  w->ctx.stage = stage;
  if (stage >= SMTPD_STAGE_DATA)   /* DATA starts afresh (smtpd_check_data) */
    g_clear_pointer(&w->ctx.defer_if_permit, g_free);
  /* DATA and end of data: with one recipient the restrictions see it (and
   * log it); with several, none of them (Postfix's smtpd_check_data). */
  if (stage >= SMTPD_STAGE_DATA && s->rcpt_addr != NULL && s->rcpt_addr->len == 1) {
    w->ctx.rcpt = g_strdup(s->rcpt_addr->pdata[0]);
    w->ctx.rcpt_orig = g_strdup(s->rcpt_orig->pdata[0]);
  }
  smtpd_session_suspend(s);
  workpool_submit(s->server->lookup_pool, policy_work, stage_done, w);
  return TRUE;
}
