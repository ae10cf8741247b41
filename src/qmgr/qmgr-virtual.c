/* qmgr-virtual.c - virtual_alias_maps rewriting and virtual mailbox
 * delivery (Postfix's cleanup(8) virtual alias step and virtual(8)).
 *
 * Alias rewriting: per address the keys are "user@domain" (and
 * "user@domain" without a recipient_delimiter extension), then "user"
 * only when the domain is in mydestination, then the "@domain"
 * catch-all.  A value is a comma list of addresses, each rewritten
 * again; an address that maps to itself is kept as is, an address met
 * twice in one expansion is dropped, and more than
 * QMGR_VIRTUAL_MAX_DEPTH levels, or nothing left at all, is a loop
 * (the recipient bounces 5.4.6).  A recipient rewritten this way keeps
 * its RFC 3461 NOTIFY and ORCPT for the whole expansion and reports
 * "expanded" in a success notice, as Postfix's cleanup(8) does
 * (qmgr-deliver.c).
 *
 * Virtual delivery: virtual_mailbox_maps gives a path under
 * virtual_mailbox_base (ending in "/": maildir, else mbox), owned by the
 * uid/gid from virtual_uid_maps / virtual_gid_maps.  Everything on disk,
 * missing directories included, is done with that identity
 * (qmgr-privs.c).  A uid below virtual_minimum_uid is a configuration
 * error: the recipient is deferred with a log line saying so.
 */
#include "qmgr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "mailbox.h"
#include "virtual-mailbox.h"

#define QMGR_VIRTUAL_MAX_DEPTH 100
#define QMGR_VIRTUAL_MAX_RESULTS 1000

/* The lookup keys for address: full, without extension, "user" (when
 * user_keys: a local domain), "@domain". */
static GPtrArray *
virtual_keys(const QmgrSettings *s, const char *address, gboolean user_keys)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *local = address_local_unquoted(address);
  g_autofree char *folded = g_ascii_strdown(local, -1);
  g_autofree char *domain = address_domain(address);
  g_autofree char *ext = NULL;
  g_autofree char *base = address_strip_extension(folded, s->recipient_delimiter, &ext);

  g_ptr_array_add(keys, *domain ? g_strconcat(folded, "@", domain, NULL) : g_strdup(folded));
  if (ext != NULL)
    g_ptr_array_add(keys, *domain ? g_strconcat(base, "@", domain, NULL) : g_strdup(base));
  if (user_keys && *domain) {
    g_ptr_array_add(keys, g_strdup(folded));
    if (ext != NULL)
      g_ptr_array_add(keys, g_strdup(base));
  }
  if (*domain)
    g_ptr_array_add(keys, g_strconcat("@", domain, NULL));
  return keys;
}

/* First match of address's keys in list; *value set when found.
 * with_user: "user" keys too when the domain is local (mydestination
 * must answer for that). */
static TableResult
virtual_lookup(const QmgrSettings *s, TableList *list, const char *address, gboolean with_user,
               char **value, GError **error)
{
  g_autoptr(GPtrArray) keys = NULL;
  gboolean user_keys = FALSE;

  if (with_user) {
    g_autofree char *domain = address_domain(address);
    MatchResult m = *domain ? qmgr_settings_local_domain(s, domain, error) : MATCH_NONE;
    if (m == MATCH_TEMPFAIL)
      return TABLE_TEMPFAIL;
    user_keys = m == MATCH_FOUND;
  }
  keys = virtual_keys(s, address, user_keys);

  for (guint i = 0; i < keys->len; i++) {
    TableResult r = table_list_lookup_key(list, keys->pdata[i], i > 0, value, error);
    if (r != TABLE_NOTFOUND)
      return r;
  }
  return TABLE_NOTFOUND;
}

static gboolean
virtual_expand(const QmgrSettings *s, const char *address, guint depth, GHashTable *seen,
               GPtrArray *out, GError **error)
{
  g_autofree char *value = NULL;
  g_autoptr(GPtrArray) items = NULL;
  g_autofree char *folded = g_ascii_strdown(address, -1);
  TableResult r;

  if (depth > QMGR_VIRTUAL_MAX_DEPTH) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "virtual alias loop or nesting too deep for %s", address);
    return FALSE;
  }
  if (g_hash_table_contains(seen, folded))
    return TRUE;                /* met before in this expansion: dropped */
  g_hash_table_add(seen, g_strdup(folded));
  r = virtual_lookup(s, s->virtual_alias, address, TRUE, &value, error);
  if (r == TABLE_TEMPFAIL)
    return FALSE;
  if (r == TABLE_NOTFOUND) {
    if (out->len >= QMGR_VIRTUAL_MAX_RESULTS) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                  "virtual alias expansion of %s yields too many addresses", address);
      return FALSE;
    }
    g_ptr_array_add(out, g_strdup(address));
    return TRUE;
  }
  items = qmgr_split_addresses(value);
  for (guint i = 0; i < items->len; i++) {
    const char *item = items->pdata[i];
    g_autofree char *addr = address_at_sign(item) ? g_strdup(item)
                                                  : g_strconcat(item, "@", s->myorigin, NULL);
    g_autofree char *item_folded = g_ascii_strdown(addr, -1);

    if (strcmp(item_folded, folded) == 0) {
      /* Maps to itself: the address stays (Postfix's "user@x user@x, other"). */
      g_ptr_array_add(out, g_steal_pointer(&addr));
      continue;
    }
    if (!virtual_expand(s, addr, depth + 1, seen, out, error))
      return FALSE;
  }
  return TRUE;
}

QmgrVirtualAlias
qmgr_virtual_alias_expand(const QmgrSettings *s, const char *address, GPtrArray **result,
                          GError **error)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
  GError *local = NULL;

  *result = NULL;
  if (s->virtual_error != NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", s->virtual_error);
    return QMGR_VIRTUAL_ALIAS_TEMPFAIL;
  }
  if (s->virtual_alias == NULL)
    return QMGR_VIRTUAL_ALIAS_NONE;
  if (!virtual_expand(s, address, 0, seen, out, &local)) {
    QmgrVirtualAlias r = g_error_matches(local, POSTERN_ERROR, POSTERN_ERROR_FAILED)
                             ? QMGR_VIRTUAL_ALIAS_LOOP : QMGR_VIRTUAL_ALIAS_TEMPFAIL;
    if (local == NULL)
      g_set_error(&local, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "virtual_alias_maps: lookup failed");
    g_propagate_error(error, local);
    return r;
  }
  if (out->len == 0) {
    /* Every branch ended at an address already expanded ("a: b", "b: a"). */
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "mail forwarding loop for %s",
                address);
    return QMGR_VIRTUAL_ALIAS_LOOP;
  }
  if (out->len == 1 && g_ascii_strcasecmp(out->pdata[0], address) == 0)
    return QMGR_VIRTUAL_ALIAS_NONE;
  *result = g_steal_pointer(&out);
  return QMGR_VIRTUAL_ALIAS_FOUND;
}

/* A uid or gid from its table; FALSE (*error set) when not usable. */
static gboolean
virtual_id(const QmgrSettings *s, TableList *list, const char *name, const char *address,
           guint64 *id, GError **error)
{
  g_autofree char *value = NULL;
  TableResult r = list ? virtual_lookup(s, list, address, FALSE, &value, error) : TABLE_NOTFOUND;

  if (r == TABLE_TEMPFAIL)
    return FALSE;
  if (r == TABLE_NOTFOUND) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "recipient %s: %s not found in %s", address, strcmp(name, "uid") == 0 ? "uid" : "gid",
                strcmp(name, "uid") == 0 ? "virtual_uid_maps" : "virtual_gid_maps");
    return FALSE;
  }
  if (!virtual_mailbox_id_parse(value, id)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "recipient %s: bad %s value \"%s\"", address, name, g_strstrip(value));
    return FALSE;
  }
  return TRUE;
}

/* Delivers one virtual recipient into the mailbox at path_value. */
static DeliveryKind
virtual_deliver_once(const QmgrDelivery *d, const char *address, const char *orig_to,
                          const char *path_value, char **reason)
{
  const QmgrSettings *s = d->settings;
  gint64 start_us = g_get_real_time();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL, *parent = NULL;
  guint64 uid = 0, gid = 0;
  gboolean maildir = g_str_has_suffix(path_value, "/"), ok;
  PrivsSaved saved = { 0 };
  MailboxMessage m;
  DeliveryKind kind;
  const char *dsn;

  if (!virtual_mailbox_path_ok(path_value)) {
    *reason = g_strdup_printf("bad virtual_mailbox_maps value for %s: \"%s\"", address,
                              path_value);
    log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_DEFER, "4.3.5", *reason);
    return DELIVERY_DEFER;
  }
  if (!virtual_id(s, s->virtual_uid, "uid", address, &uid, &error)
      || !virtual_id(s, s->virtual_gid, "gid", address, &gid, &error)) {
    *reason = g_strdup(error ? error->message : "virtual_uid_maps/virtual_gid_maps lookup failed");
    log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_DEFER, "4.3.5", *reason);
    return DELIVERY_DEFER;
  }
  if ((gint64) uid < s->virtual_minimum_uid) {
    *reason = g_strdup_printf("recipient %s: uid %" G_GUINT64_FORMAT
                              " is below virtual_minimum_uid %" G_GINT64_FORMAT
                              " (fix virtual_uid_maps)", address, uid, s->virtual_minimum_uid);
    log_qid(LOG_WARNING, d->queue_id, "%s", *reason);
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_DEFER, "4.3.5", *reason);
    return DELIVERY_DEFER;
  }

  path = g_build_filename(s->virtual_mailbox_base, path_value, NULL);
  parent = g_path_get_dirname(path);
  m = (MailboxMessage) {
    .fd = d->fd, .offset = d->env->content_offset, .size = d->env->content_size,
    .sender = d->env->sender, .orig_rcpt = orig_to, .delivered_to = address,
    .hostname = s->myhostname, .size_limit = s->virtual_mailbox_limit,
  };
  ok = privs_enter((uid_t) uid, (gid_t) gid, &saved, &error);
  if (ok && !maildir && g_mkdir_with_parents(parent, 0700) < 0) {
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "create directory %s: %s",
                parent, g_strerror(errno));
    ok = FALSE;
  }
  if (ok)
    ok = maildir ? mailbox_maildir_deliver(path, &m, NULL, &error)
                 : mailbox_mbox_deliver(path, &m, (uid_t) -1, (gid_t) -1, &error);
  privs_leave(&saved);

  if (ok) {
    *reason = g_strdup_printf("delivered to %s", maildir ? "maildir" : "mailbox");
    kind = DELIVERY_SENT;
    dsn = "2.0.0";
  } else {
    gboolean perm = g_error_matches(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);

    *reason = maildir ? g_strdup_printf("maildir delivery failed: %s", error->message)
                      : g_strdup_printf("cannot update mailbox %s for user %s. %s", path,
                                        address, error->message);
    kind = perm ? DELIVERY_BOUNCE : DELIVERY_DEFER;
    dsn = perm ? "5.2.2" : "4.2.0";
  }
  qmgr_log_status(d, address, orig_to, "virtual", start_us, kind, dsn, *reason);
  return kind;
}

DeliveryKind
qmgr_virtual_deliver(const QmgrDelivery *d, const char *address, const char *orig_to,
                     char **reason)
{
  const QmgrSettings *s = d->settings;
  gint64 start_us = g_get_real_time();
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL, *key = NULL;
  gpointer earlier;
  TableResult r;
  DeliveryKind kind;

  if (s->virtual_error != NULL) {
    *reason = g_strdup(s->virtual_error);
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_DEFER, "4.3.0", *reason);
    return DELIVERY_DEFER;
  }
  r = s->virtual_mailbox
          ? virtual_lookup(s, s->virtual_mailbox, address, FALSE, &value, &error)
          : TABLE_NOTFOUND;
  if (r == TABLE_TEMPFAIL) {
    *reason = g_strdup_printf("virtual_mailbox_maps lookup failed: %s",
                              error ? error->message : "temporary failure");
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_DEFER, "4.3.0", *reason);
    return DELIVERY_DEFER;
  }
  if (r == TABLE_NOTFOUND) {
    *reason = g_strdup_printf("unknown user: \"%s\"", address);
    qmgr_log_status(d, address, orig_to, "virtual", start_us, DELIVERY_BOUNCE, "5.1.1", *reason);
    return DELIVERY_BOUNCE;
  }
  g_strstrip(value);
  /* One copy per mailbox and message, as local_deliver_user does. */
  key = g_strconcat("virtual ", value, NULL);
  earlier = d->done != NULL ? g_hash_table_lookup(d->done, key) : NULL;
  if (earlier != NULL) {
    kind = (DeliveryKind) (GPOINTER_TO_INT(earlier) - 1);
    log_qid(LOG_DEBUG, d->queue_id, "to=<%s>: virtual mailbox %s already done for this message",
            address, value);
    *reason = g_strdup_printf("same mailbox as an earlier recipient (%s)", value);
    return kind;
  }
  kind = virtual_deliver_once(d, address, orig_to, value, reason);
  if (d->done != NULL)
    g_hash_table_replace(d->done, g_steal_pointer(&key), GINT_TO_POINTER(kind + 1));
  return kind;
}
