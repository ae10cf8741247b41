/* qmgr-deliver.c - one delivery attempt on one message (worker thread).
 *
 * Opens the file where it is, reads the envelope, delivers each pending
 * recipient (or, after an access(5) REDIRECT, the redirect address in its
 * place) by domain class, and records every recipient's final state
 * in the queue file (fdatasync) before the next recipient is tried, so a
 * crash repeats at most the delivery in flight.  Afterwards the file is
 * retired to recycle/ (all final) or moved to deferred/ with its mtime set to the
 * next attempt time (Postfix's convention).  Also owns the Postfix-style
 * status log lines.
 */
#include "qmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "log.h"

/* Postfix's compact delay notation: "0.12", "1.5", "42", "0". */
static void
qmgr_format_delay(char *buf, gsize len, gint64 us)
{
  double s = us > 0 ? (double) us / G_USEC_PER_SEC : 0;

  if (s >= 10)
    g_snprintf(buf, len, "%.0f", s);
  else if (s >= 1)
    g_snprintf(buf, len, "%.1f", s);
  else if (s >= 0.01)
    g_snprintf(buf, len, "%.2f", s);
  else
    g_snprintf(buf, len, "0");
}

static const char *const qmgr_status_names[] = {
  [DELIVERY_SENT] = "sent", [DELIVERY_DEFER] = "deferred", [DELIVERY_BOUNCE] = "bounced",
};

void
qmgr_log_status(const QmgrDelivery *d, const char *to, const char *orig_to, const char *relay,
                gint64 start_us, DeliveryKind kind, const char *dsn, const char *text)
{
  qmgr_log_status_smtp(d, to, orig_to, relay, start_us, 0, 0, kind, dsn, text);
}

void
qmgr_log_status_smtp(const QmgrDelivery *d, const char *to, const char *orig_to,
                     const char *relay, gint64 start_us, gint64 setup_us, guint conn_use,
                     DeliveryKind kind, const char *dsn, const char *text)
{
  gint64 now = g_get_real_time(), arrival = d->env->arrival_us;
  char delay[16], a[16], b[16], c[16], e[16], use[32] = "";
  g_autofree char *orig = NULL;
  const char *status = qmgr_status_names[kind];

  /* delays=a/b/c/d: before the queue manager, in it, connection set-up,
   * transmission. */
  setup_us = CLAMP(setup_us, 0, MAX(now - start_us, 0));
  qmgr_format_delay(delay, sizeof delay, now - arrival);
  qmgr_format_delay(a, sizeof a, d->active_us - arrival);
  qmgr_format_delay(b, sizeof b, start_us - d->active_us);
  qmgr_format_delay(c, sizeof c, setup_us);
  qmgr_format_delay(e, sizeof e, now - start_us - setup_us);
  if (orig_to && g_ascii_strcasecmp(orig_to, to) != 0)
    orig = g_strdup_printf(", orig_to=<%s>", orig_to);
  /* Postfix's conn_use=N: the N-th transaction on a cached connection */
  if (conn_use > 1)
    g_snprintf(use, sizeof use, ", conn_use=%u", conn_use);

  LogField fields[] = {
    { "POSTERN_RECIPIENT", to },
    { "POSTERN_STATUS", status },
    { "POSTERN_RELAY", relay },
    { "POSTERN_DELAY", delay },
    { "POSTERN_SENDER", d->env->sender },
  };
  if (kind == DELIVERY_BOUNCE && d->bounce_dsn != NULL)
    g_strlcpy(d->bounce_dsn, dsn, 16);
  if (kind == DELIVERY_DEFER && d->defer_dsn != NULL && d->defer_dsn[0] == '\0')
    g_strlcpy(d->defer_dsn, dsn, 16);
  if (kind == DELIVERY_SENT && d->dsn_action != NULL && d->dsn_action[0] == '\0') {
    /* into a mailbox (or discarded) here, or handed to the next hop */
    gboolean here = strcmp(relay, "local") == 0 || strcmp(relay, "virtual") == 0
                    || strcmp(relay, "none") == 0;
    g_strlcpy(d->dsn_action, here ? "delivered" : "relayed", 16);
  }
  log_send(LOG_INFO, d->queue_id, fields, G_N_ELEMENTS(fields),
           "to=<%s>%s, relay=%s%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)", to,
           orig ? orig : "", relay, use, delay, a, b, c, e, dsn, status, text);
}

void
qmgr_delivery_child_bounced(const QmgrDelivery *d, const QueueRecipient *parent,
                            const char *address, const char *text, const char *dsn,
                            const char *report_to)
{
  QueueRecipient child = {
    .address = (char *) address,
    .orig_address = parent->orig_address ? parent->orig_address : parent->address,
    .notify = parent->notify,
    .orcpt = parent->orcpt,
  };
  QmgrNoticeRcpt *n;

  if (d->child_bounces == NULL)
    return;
  n = qmgr_notice_rcpt_new(&child, g_strdup(text ? text : ""), dsn, NULL);
  n->report_to = g_strdup(report_to);
  g_ptr_array_add(d->child_bounces, n);
}

void
qmgr_delivery_expanded(const QmgrDelivery *d)
{
  if (d->dsn_action != NULL)
    g_strlcpy(d->dsn_action, "expanded", 16);
}

char *
qmgr_deliver_resolver_failure(const QmgrDelivery *d, const GError *error)
{
  log_qid(LOG_WARNING, d->queue_id, "%s", error != NULL ? error->message : "domain lookup failed");
  return g_strdup("address resolver failure");
}

/* A "5.x.x text" (or "4.x.x text") next hop of the error and retry
 * transports: its code, or the default, and the text after it. */
static const char *
qmgr_route_dsn(const char *text, char cls, char *dsn, gsize len)
{
  const char *sp = strchr(text, ' ');

  if (text[0] == cls && text[1] == '.' && sp != NULL && sp - text < (gssize) len
      && strspn(text, "0123456789.") == (gsize) (sp - text)) {
    g_strlcpy(dsn, text, (gsize) (sp - text) + 1);
    return sp + 1;
  }
  g_snprintf(dsn, len, "%c.0.0", cls);
  return text;
}

/* Delivers address by its route (src/common/route.c): transport_maps, then the
 * class's transport.  local_rcpt is the recipient to hand local delivery
 * (NULL from inside an alias expansion, where a table that sends another
 * domain back to local delivery is not followed: a loop waiting to happen). */
static DeliveryKind
qmgr_deliver_route(const QmgrDelivery *d, const QueueRecipient *local_rcpt, const char *address,
                   const char *orig_to, DomainClass cls, char **reason)
{
  const QmgrSettings *s = d->settings;
  g_autoptr(GError) error = NULL;
  DeliveryKind kind = DELIVERY_DEFER;
  const char *dsn = "4.3.5", *text;
  char code[16];
  Route route;

  if (s->transport_error != NULL || !route_resolve(&s->route, address, cls, &route, &error)) {
    gboolean temp = error != NULL && error->code == POSTERN_ERROR_TEMPORARY;

    *reason = g_strdup(s->transport_error ? s->transport_error : error->message);
    log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
    qmgr_log_status(d, address, orig_to, "none", g_get_real_time(), DELIVERY_DEFER,
                    temp ? "4.3.0" : "4.3.5", temp ? "transport_maps lookup failure" : *reason);
    return DELIVERY_DEFER;
  }
  switch (route.kind) {
  case ROUTE_LOCAL:
    if (local_rcpt != NULL) {
      kind = qmgr_local_deliver(d, local_rcpt, reason);
      route_clear(&route);
      return kind;
    }
    *reason = g_strdup_printf("transport_maps sends %s to local delivery from inside an alias "
                              "expansion; not followed", address);
    log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
    break;
  case ROUTE_VIRTUAL:
    route_clear(&route);
    return qmgr_virtual_deliver(d, address, orig_to, reason);
  case ROUTE_DISCARD:
    /* discard(8): accepted, dropped, the next hop as the reason */
    *reason = g_strdup(*route.nexthop ? route.nexthop : "discarded");
    kind = DELIVERY_SENT;
    dsn = "2.0.0";
    break;
  case ROUTE_ERROR:
    text = qmgr_route_dsn(route.nexthop, '5', code, sizeof code);
    *reason = g_strdup(*text ? text : "mail for this destination is refused");
    kind = DELIVERY_BOUNCE;
    dsn = code;
    break;
  case ROUTE_RETRY:
    text = qmgr_route_dsn(route.nexthop, '4', code, sizeof code);
    *reason = g_strdup(*text ? text : "delivery is postponed");
    dsn = code;
    break;
  case ROUTE_SMTP:
    if (s->owner_uid == (uid_t) -1 && geteuid() == 0) {
      *reason = g_strdup("mail_owner does not exist or is root: the SMTP client does not run "
                         "as root");
      log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
      break;
    }
    kind = qmgr_smtp_deliver(d, local_rcpt, address, orig_to, &route, reason);
    route_clear(&route);
    return kind;
  default:
    *reason = g_strdup_printf("transport %s is not supported", route.transport);
    break;
  }
  qmgr_log_status(d, address, orig_to, "none", g_get_real_time(), kind, dsn, *reason);
  route_clear(&route);
  return kind;
}

DeliveryKind
qmgr_deliver_nonlocal(const QmgrDelivery *d, const char *address, const char *orig_to,
                      DomainClass cls, char **reason)
{
  return qmgr_deliver_route(d, NULL, address, orig_to, cls, reason);
}

/* Delivers one address (after virtual alias rewriting) by its domain
 * class and route; *reason gets the status text.  A domain list that
 * cannot answer defers the address: never a guess at its class. */
static DeliveryKind
qmgr_deliver_address(const QmgrDelivery *d, const QueueRecipient *rcpt, const char *address,
                     gboolean rewritten, char **reason)
{
  g_autofree char *domain = address_domain(address);
  const char *orig_to = rcpt->orig_address ? rcpt->orig_address : rcpt->address;
  QueueRecipient one = { .address = (char *) address, .orig_address = (char *) orig_to,
                         .notify = rcpt->notify, .orcpt = rcpt->orcpt };
  g_autoptr(GError) error = NULL;
  DomainClass cls;

  if (!domain_classes_resolve(d->settings->domains, domain, &cls, &error)) {
    *reason = qmgr_deliver_resolver_failure(d, error);
    qmgr_log_status(d, address, orig_to, "none", g_get_real_time(), DELIVERY_DEFER, "4.3.0",
                    *reason);
    return DELIVERY_DEFER;
  }
  return qmgr_deliver_route(d, rewritten ? &one : rcpt, address, orig_to, cls, reason);
}

static void qmgr_deliver_smtp_items(const QmgrDelivery *d, const QmgrSmtpRcpt *items, guint n,
                                    DeliveryKind *kinds, char **reasons, gboolean *passed);

/* Delivers one recipient: virtual_alias_maps first, then each resulting
 * address by its domain class.  One deferred address defers the whole
 * recipient (retried as a whole); *reason: first deferral, else first
 * bounce, else the last success. */
static DeliveryKind
qmgr_deliver_recipient(const QmgrDelivery *d, const QueueRecipient *rcpt, char **reason)
{
  g_autoptr(GPtrArray) addresses = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree DeliveryKind *pre_kinds = NULL;
  g_autofree char **pre_reasons = NULL;
  g_autofree gboolean *pre_passed = NULL;
  guint n_sent = 0, n_defer = 0, n_bounce = 0;
  DeliveryKind reason_kind = DELIVERY_SENT;

  switch (qmgr_virtual_alias_expand(d->settings, rcpt->address, &addresses, &error)) {
  case QMGR_VIRTUAL_ALIAS_TEMPFAIL:
    *reason = g_strdup_printf("virtual_alias_maps lookup failed: %s", error->message);
    qmgr_log_status(d, rcpt->address, rcpt->orig_address, "none", g_get_real_time(),
                    DELIVERY_DEFER, "4.3.0", *reason);
    return DELIVERY_DEFER;
  case QMGR_VIRTUAL_ALIAS_LOOP:
    *reason = g_strdup(error->message);
    qmgr_log_status(d, rcpt->address, rcpt->orig_address, "none", g_get_real_time(),
                    DELIVERY_BOUNCE, "5.4.6", *reason);
    return DELIVERY_BOUNCE;
  case QMGR_VIRTUAL_ALIAS_NONE:
    return qmgr_deliver_address(d, rcpt, rcpt->address, FALSE, reason);
  case QMGR_VIRTUAL_ALIAS_FOUND:
    /* Postfix's cleanup: NOTIFY and ORCPT go with the expansion (here: the
     * recipient's own), and a SUCCESS notice says "expanded" */
    qmgr_delivery_expanded(d);
    break;
  }
  /* the expansion's remote addresses in shared sessions, side by side */
  pre_kinds = g_new0(DeliveryKind, addresses->len);
  pre_reasons = g_new0(char *, addresses->len);
  pre_passed = g_new0(gboolean, addresses->len);
  if (addresses->len > 1) {
    g_autofree QmgrSmtpRcpt *items = g_new0(QmgrSmtpRcpt, addresses->len);

    for (guint i = 0; i < addresses->len; i++)
      items[i] = (QmgrSmtpRcpt) {
        .address = addresses->pdata[i],
        .orig_to = rcpt->orig_address ? rcpt->orig_address : rcpt->address,
        .notify = rcpt->notify,
        .orcpt = rcpt->orcpt,
      };
    qmgr_deliver_smtp_items(d, items, addresses->len, pre_kinds, pre_reasons, pre_passed);
  }
  for (guint i = 0; i < addresses->len; i++) {
    g_autofree char *text = g_steal_pointer(&pre_reasons[i]);
    gboolean pre = text != NULL;
    guint reported = d->child_bounces ? d->child_bounces->len : 0;
    DeliveryKind kind = pre ? pre_kinds[i]
                        : qmgr_deliver_address(d, rcpt, addresses->pdata[i], TRUE, &text);

    /* each address that bounces is reported, whatever the others do (its
     * code from the text when it came from a shared session), unless a
     * local alias it expanded to reported its own */
    if (kind == DELIVERY_BOUNCE && (d->child_bounces == NULL || d->child_bounces->len == reported))
      qmgr_delivery_child_bounced(d, rcpt, addresses->pdata[i], text,
                                  pre || d->bounce_dsn == NULL ? NULL : d->bounce_dsn, NULL);

    n_sent += kind == DELIVERY_SENT;
    n_defer += kind == DELIVERY_DEFER;
    n_bounce += kind == DELIVERY_BOUNCE;
    if (*reason == NULL || (kind == DELIVERY_DEFER && reason_kind != DELIVERY_DEFER)
        || (kind == DELIVERY_BOUNCE && reason_kind == DELIVERY_SENT)) {
      g_free(*reason);
      *reason = g_steal_pointer(&text);
      reason_kind = kind;
    }
  }
  return n_defer ? DELIVERY_DEFER : n_sent ? DELIVERY_SENT : DELIVERY_BOUNCE;
}

/* Moves the file between queue directories; FALSE with errno set. */
static gboolean
qmgr_move(QmgrMessage *msg, QueueDir to)
{
  if (renameat(msg->dir_fds[msg->dir], msg->id, msg->dir_fds[to], msg->id) < 0)
    return FALSE;
  msg->dir = to;
  return TRUE;
}

/* Puts the file in deferred/ with mtime = the next attempt time. */
static void
qmgr_defer_file(QmgrMessage *msg, int fd, guint attempts)
{
  const QmgrSettings *s = msg->settings;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  struct timespec times[2];

  msg->next_try = now + qmgr_backoff(s->minimal_backoff, s->maximal_backoff, MAX(attempts, 1));
  times[0] = times[1] = (struct timespec) { .tv_sec = (time_t) msg->next_try };
  if (futimens(fd, times) < 0)
    log_warning("%s: cannot set the retry time: %s", msg->id, g_strerror(errno));
  if (!qmgr_move(msg, QUEUE_DEFERRED))
    log_warning("%s: cannot move to deferred/: %s", msg->id, g_strerror(errno));
}

/* Tells the observer (the D-Bus service) how a recipient's attempt ended. */
static void
qmgr_deliver_notify(const QmgrMessage *msg, const char *recipient, DeliveryKind kind,
                    const char *text)
{
  const QmgrObserver *o = msg->qmgr->observer;

  if (o)
    o->recipient_done(o->data, msg->id, recipient, kind, text ? text : "");
}

/* The SMTP route of an address that goes to the SMTP client (a remote
 * class, an smtp/relay route); FALSE for anything else, and for any
 * lookup that fails: the one-by-one path then handles (and logs) it. */
static gboolean
qmgr_smtp_route_of(const QmgrDelivery *d, const char *address, Route *route)
{
  const QmgrSettings *s = d->settings;
  g_autoptr(GError) error = NULL;
  g_autofree char *domain = NULL;
  DomainClass cls;

  /* The domain class first: local and virtual recipients (the common
   * case) leave after one in-memory list lookup, before any table. */
  domain = address_domain(address);
  if (s->transport_error != NULL || !domain_classes_resolve(s->domains, domain, &cls, &error)
      || (cls != DOMAIN_CLASS_DEFAULT && cls != DOMAIN_CLASS_RELAY)
      || !route_resolve(&s->route, address, cls, route, &error))
    return FALSE;
  if (route->kind == ROUTE_SMTP && (s->owner_uid != (uid_t) -1 || geteuid() != 0))
    return TRUE;
  route_clear(route);
  return FALSE;
}

/* Addresses of one message that go to the SMTP client share a session per
 * next hop (at most smtp_destination_recipient_limit each), and the
 * sessions run side by side: delivered here, their verdicts left in
 * kinds[i] / reasons[i] / passed[i] (reasons[i] stays NULL for the
 * addresses that go elsewhere). */
static void
qmgr_deliver_smtp_items(const QmgrDelivery *d, const QmgrSmtpRcpt *items, guint n,
                        DeliveryKind *kinds, char **reasons, gboolean *passed)
{
  g_autoptr(GHashTable) groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) g_array_unref);
  g_autoptr(GArray) batches = g_array_new(FALSE, FALSE, sizeof(QmgrSmtpBatch));
  g_autoptr(GArray) members_of = g_array_new(FALSE, FALSE, sizeof(const guint *));
  guint limit = MAX((guint) config_int(d->settings->config, "smtp_destination_recipient_limit"), 1);
  GHashTableIter it;
  gpointer key, value;

  for (guint i = 0; i < n; i++) {
    Route route;
    GArray *members;

    if (!qmgr_smtp_route_of(d, items[i].address, &route))
      continue;
    members = g_hash_table_lookup(groups, route.nexthop);
    if (members == NULL) {
      members = g_array_new(FALSE, FALSE, sizeof(guint));
      g_hash_table_insert(groups, g_strdup(route.nexthop), members);
    }
    g_array_append_val(members, i);
    route_clear(&route);
  }
  g_hash_table_iter_init(&it, groups);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    GArray *members = value;

    for (guint first = 0; first < members->len; first += limit) {
      guint k = MIN(limit, members->len - first);
      const guint *at = &g_array_index(members, guint, first);
      QmgrSmtpRcpt *rcpts = g_new0(QmgrSmtpRcpt, k);
      QmgrSmtpBatch b = { .route = { .kind = ROUTE_SMTP, .nexthop = key }, .rcpts = rcpts,
                          .n = k, .kinds = g_new0(DeliveryKind, k),
                          .reasons = g_new0(char *, k), .passed = g_new0(gboolean, k) };

      for (guint j = 0; j < k; j++)
        rcpts[j] = items[at[j]];
      g_array_append_val(batches, b);
      g_array_append_val(members_of, at);
    }
  }
  qmgr_smtp_deliver_batches(d, (QmgrSmtpBatch *) (void *) batches->data, batches->len);
  for (guint b_i = 0; b_i < batches->len; b_i++) {
    QmgrSmtpBatch *b = &g_array_index(batches, QmgrSmtpBatch, b_i);
    const guint *at = g_array_index(members_of, const guint *, b_i);

    for (guint j = 0; j < b->n; j++) {
      kinds[at[j]] = b->kinds[j];
      reasons[at[j]] = b->reasons[j];
      passed[at[j]] = b->passed[j];
    }
    g_free((gpointer) b->rcpts);
    g_free(b->kinds);
    g_free(b->reasons);
    g_free(b->passed);
  }
}

/* The pending recipients that go to the SMTP client as they are (no
 * virtual alias rewriting) are delivered first, in sessions shared by
 * destination: their verdicts in kinds[] / reasons[] / passed[] by
 * recipient index (reasons[i] NULL for the ones the one-by-one loop
 * still has to do). */
static void
qmgr_deliver_smtp_groups(QmgrDelivery *d, QueueEnvelope *env, guint pending,
                         DeliveryKind *kinds, char **reasons, gboolean *passed)
{
  g_autoptr(GArray) items = g_array_new(FALSE, FALSE, sizeof(QmgrSmtpRcpt));
  g_autoptr(GArray) index = g_array_new(FALSE, FALSE, sizeof(guint));
  g_autofree DeliveryKind *k = NULL;
  g_autofree char **r = NULL;
  g_autofree gboolean *p = NULL;

  /* One recipient has nothing to share a session with: the one-by-one
   * path routes it once. */
  if (env->redirect != NULL || pending < 2)
    return;
  for (guint i = 0; i < env->recipients->len; i++) {
    const QueueRecipient *rcpt = env->recipients->pdata[i];
    g_autoptr(GPtrArray) addresses = NULL;
    g_autoptr(GError) error = NULL;
    QmgrSmtpRcpt item = {
      .address = rcpt->address,
      .orig_to = rcpt->orig_address ? rcpt->orig_address : rcpt->address,
      .notify = rcpt->notify,
      .orcpt = rcpt->orcpt,
    };

    if (rcpt->state != RCPT_PENDING
        || qmgr_virtual_alias_expand(d->settings, rcpt->address, &addresses, &error)
           != QMGR_VIRTUAL_ALIAS_NONE)
      continue;
    g_array_append_val(items, item);
    g_array_append_val(index, i);
  }
  k = g_new0(DeliveryKind, items->len + 1);
  r = g_new0(char *, items->len + 1);
  p = g_new0(gboolean, items->len + 1);
  qmgr_deliver_smtp_items(d, (const QmgrSmtpRcpt *) (void *) items->data, items->len, k, r, p);
  for (guint j = 0; j < items->len; j++) {
    guint i = g_array_index(index, guint, j);

    kinds[i] = k[j];
    reasons[i] = r[j];
    passed[i] = p[j];
  }
}

static gboolean qmgr_deliver_each(QmgrMessage *msg, QmgrDelivery *d, QueueEnvelope *env,
                                  int fd, guint pending, gboolean expired,
                                  DeliveryKind *pre_kinds, char **pre_reasons,
                                  const gboolean *pre_passed);

/* Delivers the pending recipients; returns TRUE when all are final. */
static gboolean
qmgr_deliver_recipients(QmgrMessage *msg, QmgrDelivery *d, QueueEnvelope *env, int fd)
{
  guint pending = 0;
  gboolean expired;
  gint64 lifetime;

  g_autofree DeliveryKind *pre_kinds = g_new0(DeliveryKind, env->recipients->len + 1);
  g_autofree char **pre_reasons = g_new0(char *, env->recipients->len + 1);
  g_autofree gboolean *pre_passed = g_new0(gboolean, env->recipients->len + 1);
  gboolean ok;

  for (guint i = 0; i < env->recipients->len; i++)
    pending += ((QueueRecipient *) env->recipients->pdata[i])->state == RCPT_PENDING;
  /* A notice (null sender) has bounce_queue_lifetime, as in Postfix */
  lifetime = *env->sender ? msg->settings->maximal_queue_lifetime
                          : msg->settings->bounce_queue_lifetime;
  expired = d->active_us - env->arrival_us >= lifetime * G_USEC_PER_SEC;
  qmgr_deliver_smtp_groups(d, env, pending, pre_kinds, pre_reasons, pre_passed);
  ok = qmgr_deliver_each(msg, d, env, fd, pending, expired, pre_kinds, pre_reasons, pre_passed);
  for (guint i = 0; i < env->recipients->len; i++)
    g_free(pre_reasons[i]);
  return ok;
}

/* A recipient's record that waits for the failure notice: written once
 * the notice is queued, so a crash in between repeats the delivery and
 * the notice, never loses the notice. */
typedef struct {
  guint at;                    /* recipient index */
  RcptState state;             /* RCPT_BOUNCED, or RCPT_DELIVERED with addresses of its
                                * expansion bounced */
  char *text;
} QmgrPendingRecord;

static void
qmgr_pending_record_clear(gpointer p)
{
  g_free(((QmgrPendingRecord *) p)->text);
}

/* What one attempt has for the notices (qmgr-bounce.c). */
typedef struct {
  GPtrArray *bounced;          /* QmgrNoticeRcpt *, for the failure notice */
  GArray *records;             /* QmgrPendingRecord: waiting for it */
  GPtrArray *delivered;        /* with NOTIFY=SUCCESS, delivered (D recorded) */
  GPtrArray *delayed;          /* deferred in this attempt */
} QmgrNotices;

/* Success notices that a crash kept from being queued (a D record with no
 * Y record after it): their action is guessed from the recorded text. */
static void
qmgr_deliver_success_due(const QueueEnvelope *env, QmgrNotices *n)
{
  for (guint i = 0; i < env->recipients->len; i++) {
    const QueueRecipient *r = env->recipients->pdata[i];
    const char *text = r->status ? r->status : "";

    if (r->state == RCPT_DELIVERED && r->success_due)
      g_ptr_array_add(n->delivered, qmgr_notice_rcpt_new(
          r, g_strdup(text), NULL, g_ascii_isdigit(text[0]) ? "relayed" : "delivered"));
  }
}

/* After the recipients: the failure notice, then the bounced recipients'
 * records; the success notice, then its Y record; the delay notice (once,
 * after delay_warning_time), then its W record.  all_final: whether every
 * recipient is final; returns it, FALSE when the file must stay. */
static gboolean
qmgr_deliver_notices(QmgrMessage *msg, QmgrDelivery *d, QueueEnvelope *env, int fd,
                     gboolean expired, QmgrNotices *n, gboolean all_final)
{
  const QmgrSettings *s = msg->settings;
  g_autoptr(GError) error = NULL;
  gboolean failed = FALSE;

  if (n->bounced->len > 0 && !qmgr_bounce_notify(d, n->bounced, &error)) {
    /* No notice, no bounce: the recipients stay pending for the next attempt. */
    log_warning("%s: cannot queue the non-delivery notice: %s; the bounced recipients are "
                "tried again later", msg->id, error->message);
    g_clear_error(&error);
    for (guint k = 0; k < n->records->len; k++) {
      const QmgrPendingRecord *r = &g_array_index(n->records, QmgrPendingRecord, k);

      ((QueueRecipient *) env->recipients->pdata[r->at])->state = RCPT_PENDING;
      if (r->state == RCPT_BOUNCED)
        msg->n_bounced--;
      else
        msg->n_delivered--;
      msg->n_deferred++;
    }
    all_final = FALSE;
    failed = TRUE;            /* the success notice waits too: see qmgr_deliver_success_due */
  } else {
    for (guint k = 0; k < n->records->len; k++) {
      const QmgrPendingRecord *r = &g_array_index(n->records, QmgrPendingRecord, k);
      const char *address = ((QueueRecipient *) env->recipients->pdata[r->at])->address;

      if (!queue_file_record(fd, r->at, r->state, r->text, &error)) {
        log_warning("%s: cannot record the state of <%s>: %s", msg->id, address,
                    error->message);
        return FALSE;
      }
      qmgr_deliver_notify(msg, address,
                          r->state == RCPT_BOUNCED ? DELIVERY_BOUNCE : DELIVERY_SENT, r->text);
    }
  }
  if (n->delivered->len > 0 && !failed) {
    if (!qmgr_bounce_success_notify(d, n->delivered, &error)) {
      /* the file stays (deferred) for another try, unless it is too old */
      log_warning("%s: cannot queue the success notice: %s%s", msg->id, error->message,
                  expired ? "; message expired, giving up" : "; tried again later");
      g_clear_error(&error);
      all_final = all_final && expired;
    } else if (!all_final && !queue_file_record_success_notified(fd, &error)) {
      log_warning("%s: cannot record the success notice: %s; it may be sent again", msg->id,
                  error->message);
      g_clear_error(&error);
    }
  }
  if (n->delayed->len > 0 && !env->delay_warned && s->delay_warning_time > 0
      && d->active_us - env->arrival_us >= s->delay_warning_time * G_USEC_PER_SEC) {
    if (!qmgr_bounce_delay_notify(d, n->delayed, &error))
      log_warning("%s: cannot queue the delay notice: %s; tried again later", msg->id,
                  error->message);
    else if (!queue_file_record_delay_warned(fd, &error))
      log_warning("%s: cannot record the delay notice: %s; it may be sent again", msg->id,
                  error->message);
  }
  return all_final;
}

/* The rest of qmgr_deliver_recipients: each pending recipient in turn
 * (its SMTP verdict from pre_reasons when the group delivery made one). */
static gboolean
qmgr_deliver_each(QmgrMessage *msg, QmgrDelivery *d, QueueEnvelope *env, int fd, guint pending,
                  gboolean expired, DeliveryKind *pre_kinds, char **pre_reasons,
                  const gboolean *pre_passed)
{
  g_autoptr(GPtrArray) bounced = g_ptr_array_new_with_free_func(qmgr_notice_rcpt_free);
  g_autoptr(GArray) records = g_array_new(FALSE, FALSE, sizeof(QmgrPendingRecord));
  g_autoptr(GPtrArray) delivered = g_ptr_array_new_with_free_func(qmgr_notice_rcpt_free);
  g_autoptr(GPtrArray) delayed = g_ptr_array_new_with_free_func(qmgr_notice_rcpt_free);
  GPtrArray *children = d->child_bounces;
  QmgrNotices notices = { bounced, records, delivered, delayed };
  guint deferred = 0;

  g_array_set_clear_func(records, qmgr_pending_record_clear);

  qmgr_deliver_success_due(env, &notices);
  for (guint i = 0; i < env->recipients->len && pending > 0; i++) {
    QueueRecipient *rcpt = env->recipients->pdata[i];
    g_autofree char *reason = NULL;
    g_autoptr(GError) error = NULL;
    DeliveryKind kind;
    RcptState state;

    if (rcpt->state != RCPT_PENDING)
      continue;
    pending--;
    if (d->bounce_dsn)
      d->bounce_dsn[0] = '\0';
    if (d->defer_dsn)
      d->defer_dsn[0] = '\0';
    if (d->dsn_action)
      d->dsn_action[0] = '\0';
    g_ptr_array_set_size(children, 0);
    if (pre_reasons[i] != NULL) {
      kind = pre_kinds[i];
      reason = g_steal_pointer(&pre_reasons[i]);
      if (d->dsn_action)
        g_strlcpy(d->dsn_action, pre_passed[i] ? "passed" : "relayed", 16);
    } else if (env->redirect != NULL) {
      /* access(5) REDIRECT: the recipient is delivered to the redirect
       * address instead, and logged as its orig_to (Postfix's qmgr).  The
       * one-copy-per-destination rule makes that one delivery for all. */
      QueueRecipient to = {
        .address = env->redirect,
        .orig_address = rcpt->orig_address ? rcpt->orig_address : rcpt->address,
      };
      kind = qmgr_deliver_recipient(d, &to, &reason);
    } else {
      kind = qmgr_deliver_recipient(d, rcpt, &reason);
    }
    gboolean now_expired = kind == DELIVERY_DEFER && expired;

    if (now_expired) {
      g_autofree char *text = g_strdup_printf("message expired in queue: %s",
                                              reason ? reason : "");
      qmgr_log_status(d, rcpt->address, rcpt->orig_address, "none", d->active_us,
                      DELIVERY_BOUNCE, "5.4.7", text);
      g_free(reason);
      reason = g_steal_pointer(&text);
      kind = DELIVERY_BOUNCE;
    }
    switch (kind) {
    case DELIVERY_SENT: msg->n_delivered++; state = RCPT_DELIVERED; break;
    case DELIVERY_BOUNCE: msg->n_bounced++; state = RCPT_BOUNCED; break;
    default: msg->n_deferred++; deferred++; state = RCPT_PENDING; break;
    }
    rcpt->state = state;
    /* An expansion's addresses that bounced are reported one by one (a
     * deferred recipient is tried again as a whole: they will be then). */
    if (kind == DELIVERY_DEFER || now_expired)
      g_ptr_array_set_size(children, 0);
    if (kind == DELIVERY_BOUNCE || children->len > 0) {
      QmgrPendingRecord r = { .at = i, .state = state, .text = g_strdup(reason) };

      /* recorded once the notice is queued (qmgr_deliver_notices); the
       * code is the one logged for it in this iteration (a grouped SMTP
       * verdict was logged before: its code is taken from the reply text) */
      if (children->len > 0) {
        for (guint c = 0; c < children->len; c++)
          g_ptr_array_add(bounced, children->pdata[c]);
        g_ptr_array_set_free_func(children, NULL);
        g_ptr_array_set_size(children, 0);
        g_ptr_array_set_free_func(children, qmgr_notice_rcpt_free);
      } else {
        g_ptr_array_add(bounced, qmgr_notice_rcpt_new(
            rcpt, g_strdup(reason),
            now_expired ? "5.4.7" : d->bounce_dsn && d->bounce_dsn[0] ? d->bounce_dsn : NULL,
            NULL));
      }
      g_array_append_val(records, r);
      if (kind == DELIVERY_BOUNCE)
        continue;
    }
    /* no success notice from here for mail whose next hop took the
     * request along (RFC 3461 section 5.2.2: the NOTIFY was relayed) */
    if (kind == DELIVERY_SENT && (rcpt->notify & QUEUE_NOTIFY_SUCCESS)
        && !(d->dsn_action && strcmp(d->dsn_action, "passed") == 0)) {
      gboolean expanded = d->dsn_action && strcmp(d->dsn_action, "expanded") == 0;

      g_ptr_array_add(delivered, qmgr_notice_rcpt_new(
          rcpt, g_strdup(expanded ? "alias expanded" : reason ? reason : ""),
          expanded ? "2.0.0" : NULL,
          expanded ? "expanded" : d->dsn_action && strcmp(d->dsn_action, "relayed") == 0
                                  ? "relayed" : "delivered"));
    } else if (kind == DELIVERY_DEFER) {
      g_ptr_array_add(delayed, qmgr_notice_rcpt_new(rcpt, g_strdup(reason ? reason : ""),
                                                    d->defer_dsn, NULL));
    }
    if (records->len > 0 && g_array_index(records, QmgrPendingRecord, records->len - 1).at == i)
      continue;               /* delivered, its record waits for the failure notice */
    /* The last recipient of a message that is about to be removed needs
     * no record: unlinking the file says it all (a notice still to be
     * queued needs the record: the file may stay if the notice fails). */
    if (pending == 0 && deferred == 0 && bounced->len == 0 && delivered->len == 0) {
      qmgr_deliver_notify(msg, rcpt->address, kind, reason);
      break;
    }
    if (!queue_file_record(fd, i, state, reason, &error)) {
      log_warning("%s: cannot record the state of <%s>: %s", msg->id, rcpt->address,
                  error->message);
      /* Without the record a later attempt would repeat this delivery;
       * stop here and let the retry sort it out. */
      return FALSE;
    }
    qmgr_deliver_notify(msg, rcpt->address, kind, reason);
  }
  return qmgr_deliver_notices(msg, d, env, fd, expired, &notices, pending == 0 && deferred == 0);
}

/* Spare queue files kept in recycle/ for smtpd to reuse (see
 * queue_file_retire).  The count only grows here; smtpd's reuse is seen
 * by recounting, at most once a second, when it looks full. */
#define QMGR_SPARES_MAX 1024
static gint qmgr_spares = QMGR_SPARES_MAX;   /* "full" until first counted */
static gint64 qmgr_spares_counted_at;
G_LOCK_DEFINE_STATIC(qmgr_spares);

static gboolean
qmgr_spare_room(int recycle_fd)
{
  if (g_atomic_int_get(&qmgr_spares) < QMGR_SPARES_MAX)
    return TRUE;
  G_LOCK(qmgr_spares);
  gint64 now = g_get_monotonic_time();
  if (now - qmgr_spares_counted_at >= G_USEC_PER_SEC) {
    qmgr_spares_counted_at = now;
    g_atomic_int_set(&qmgr_spares, (gint) queue_recycle_count(recycle_fd));
  }
  G_UNLOCK(qmgr_spares);
  return g_atomic_int_get(&qmgr_spares) < QMGR_SPARES_MAX;
}

void
qmgr_deliver_message(QmgrMessage *msg)
{
  g_autoptr(QueueEnvelope) env = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func(qmgr_notice_rcpt_free);
  char bounce_dsn[16] = "", defer_dsn[16] = "", dsn_action[16] = "";
  QmgrDelivery d = { .queue_id = msg->id, .settings = msg->settings, .done = done,
                     .bounce_dsn = bounce_dsn, .defer_dsn = defer_dsn,
                     .dsn_action = dsn_action, .child_bounces = children };
  int fd;

  /* Delivered where it is (incoming/, deferred/ or active/): being
   * "active" is qmgr's in-memory state, not a directory move, because
   * renaming every message out of incoming/ contends with smtpd's commits
   * there (docs/decisions.md). */
  d.active_us = g_get_real_time();
  fd = openat(msg->dir_fds[msg->dir], msg->id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      msg->outcome = QMGR_OUTCOME_GONE;
      return;
    }
    log_warning("%s: cannot open queue file: %s", msg->id, g_strerror(errno));
    /* Its old mtime makes it due at the next deferred scan. */
    qmgr_move(msg, QUEUE_DEFERRED);
    msg->outcome = QMGR_OUTCOME_ERROR;
    msg->next_try = d.active_us / G_USEC_PER_SEC;
    return;
  }
  if (queue_file_is_retired(fd)) {
    /* Emptied by a retire that a crash interrupted: its recipients were
     * all done.  Finish the retire. */
    gboolean recycled;
    if (!queue_file_retire(msg->dir_fds[msg->dir], msg->id, fd, msg->dir_fds[QUEUE_RECYCLE],
                           FALSE, &recycled, &error))
      log_warning("%s: cannot remove empty queue file: %s", msg->id, error->message);
    else
      log_qid(LOG_INFO, msg->id, "removed (emptied before a crash)");
    close(fd);
    msg->outcome = QMGR_OUTCOME_DONE;
    return;
  }
  env = queue_file_read(fd, &error);
  if (env == NULL) {
    if (g_error_matches(error, POSTERN_ERROR, POSTERN_ERROR_CORRUPT)) {
      gboolean moved = qmgr_move(msg, QUEUE_CORRUPT);
      log_send(LOG_WARNING, msg->id, NULL, 0, "%s, %s", error->message,
               moved ? "moved to corrupt/" : "cannot move it to corrupt/");
      msg->outcome = QMGR_OUTCOME_CORRUPT;
    } else {
      log_send(LOG_WARNING, msg->id, NULL, 0, "%s, will retry", error->message);
      qmgr_defer_file(msg, fd, 1);
      msg->outcome = QMGR_OUTCOME_ERROR;
    }
    close(fd);
    return;
  }
  if (msg->dir == QUEUE_INCOMING && env->attempts == 0) {
    /* A new message: counted as received, announced before its first
     * delivery result. */
    const QmgrObserver *o = msg->qmgr->observer;

    msg->received = TRUE;
    if (o)
      o->message_queued(o->data, msg->id, env);
  }
  if (env->hold && !env->hold_done) {
    /* An access table said HOLD: park it until an administrator releases
     * it; the K record makes that release final. */
    if (!queue_file_record_held(fd, &error) || !qmgr_move(msg, QUEUE_HOLD)) {
      log_send(LOG_WARNING, msg->id, NULL, 0, "cannot put on hold: %s, will retry",
               error ? error->message : g_strerror(errno));
      qmgr_defer_file(msg, fd, 1);
      msg->outcome = QMGR_OUTCOME_ERROR;
    } else {
      LogField fields[] = { { "POSTERN_SENDER", env->sender } };
      log_send(LOG_INFO, msg->id, fields, 1, "from=<%s>, size=%" G_GINT64_FORMAT
               ", nrcpt=%u (queue hold)", env->sender, env->content_size,
               env->recipients->len);
      msg->outcome = QMGR_OUTCOME_GONE;
    }
    close(fd);
    return;
  }
  d.env = env;
  d.fd = fd;
  {
    LogField fields[] = { { "POSTERN_SENDER", env->sender } };
    log_send(LOG_INFO, msg->id, fields, 1, "from=<%s>, size=%" G_GINT64_FORMAT ", nrcpt=%u (queue active)",
             env->sender, env->content_size, env->recipients->len);
  }
  if (qmgr_deliver_recipients(msg, &d, env, fd)) {
    gboolean recycled;
    if (!queue_file_retire(msg->dir_fds[msg->dir], msg->id, fd,
                           msg->dir_fds[QUEUE_RECYCLE], qmgr_spare_room(msg->dir_fds[QUEUE_RECYCLE]),
                           &recycled, &error)) {
      log_warning("%s: cannot remove queue file: %s", msg->id, error->message);
    } else {
      if (recycled)
        g_atomic_int_inc(&qmgr_spares);
      log_qid(LOG_INFO, msg->id, "removed");
    }
    close(fd);
    msg->outcome = QMGR_OUTCOME_DONE;
    return;
  }
  qmgr_defer_file(msg, fd, env->attempts + 1);
  close(fd);
  msg->outcome = QMGR_OUTCOME_DEFERRED;
}
