/* qmgr-local.c - local delivery of one recipient (Postfix local(8)).
 *
 * The local part (quotes removed, case folded) goes through alias_maps
 * first: "name+ext" then "name".  Alias values are comma-separated
 * addresses; a bare name means name@$myorigin; addresses in
 * mydestination expand again, recursively.  An alias that names itself
 * (e.g. "root: root, other") means that user's mailbox, as in Postfix;
 * an alias met a second time in one expansion is dropped (Postfix's
 * duplicate filter), and a recipient left with no destination at all
 * (a loop such as "a: b" / "b: a") bounces.  Then the system user
 * (getpwnam): mbox in mail_spool_directory, or home_mailbox in the home
 * directory (maildir when it ends in "/").
 *
 * Privileges: the spool directory belongs to root, so the dotlock and a
 * missing mbox are created as root (the file then chowned to the user),
 * as Postfix does unless the spool is world-writable, in which case the
 * user's identity is used throughout.  Anything in the user's home is
 * done with the user's fsuid/fsgid from the first open (qmgr-privs.c).
 *
 * Not yet (issue 3): |command, /file and :include: destinations, which
 * are deferred with a log line saying so; .forward files.
 */
#include "qmgr.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include "address.h"
#include "log.h"
#include "mailbox.h"

#define LOCAL_MAX_DEPTH 100

typedef struct {
  const QmgrDelivery *d;
  const char *orig_to;
  GHashTable *expanded;   /* alias keys being or already expanded */
  GHashTable *seen;       /* final destinations already delivered (dup filter) */
  guint n_sent, n_defer, n_bounce;
  guint n_dropped;        /* alias references dropped as already expanded */
  char *reason;           /* the text for the queue file: first deferral, else first bounce */
  DeliveryKind reason_kind;
} LocalState;

/* Logs one final destination and counts it toward the recipient's result. */
static void G_GNUC_PRINTF(7, 8)
local_result(LocalState *st, const char *to, const char *relay, gint64 start_us,
             DeliveryKind kind, const char *dsn, const char *fmt, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start(ap, fmt);
  text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  qmgr_log_status(st->d, to, st->orig_to, relay, start_us, kind, dsn, text);
  switch (kind) {
  case DELIVERY_SENT: st->n_sent++; break;
  case DELIVERY_DEFER: st->n_defer++; break;
  case DELIVERY_BOUNCE: st->n_bounce++; break;
  }
  if (st->reason == NULL || (kind == DELIVERY_DEFER && st->reason_kind != DELIVERY_DEFER)
      || (kind == DELIVERY_BOUNCE && st->reason_kind == DELIVERY_SENT)) {
    g_free(st->reason);
    st->reason = g_steal_pointer(&text);
    st->reason_kind = kind;
  }
}

/* getpwnam_r with a growing buffer; *pw_buf owns the strings. */
static int
local_getpwnam(const char *user, struct passwd *pw, char **pw_buf, struct passwd **result)
{
  gsize size = 4096;
  int r;

  for (;;) {
    *pw_buf = g_realloc(*pw_buf, size);
    r = getpwnam_r(user, pw, *pw_buf, size, result);
    if (r != ERANGE || size >= 1024 * 1024)
      return r;
    size *= 4;
  }
}

/* Delivers to the mailbox of system user `user` (lower-case, no extension). */
static void
local_deliver_user_once(LocalState *st, const char *user, const char *address, gint64 start_us)
{
  const QmgrSettings *s = st->d->settings;
  g_autofree char *pw_buf = NULL, *path = NULL;
  g_autoptr(GError) error = NULL;
  struct passwd pw, *found = NULL;
  MailboxMessage m;
  PrivsSaved saved = { 0 };
  const char *what, *prefix_fmt;
  gboolean ok;
  int r;

  r = local_getpwnam(user, &pw, &pw_buf, &found);
  if (r != 0 && r != ENOENT && r != ESRCH) {
    local_result(st, address, "local", start_us, DELIVERY_DEFER, "4.3.0",
                 "user lookup failed for \"%s\": %s", user, g_strerror(r));
    return;
  }
  if (found == NULL) {
    local_result(st, address, "local", start_us, DELIVERY_BOUNCE, "5.1.1",
                 "unknown user: \"%s\"", user);
    return;
  }

  m = (MailboxMessage) {
    .fd = st->d->fd, .offset = st->d->env->content_offset, .size = st->d->env->content_size,
    .sender = st->d->env->sender, .orig_rcpt = st->orig_to, .delivered_to = address,
    .hostname = s->myhostname, .size_limit = s->mailbox_size_limit,
  };
  if (*s->home_mailbox == '\0') {
    struct stat spool;

    path = g_build_filename(s->mail_spool_directory, pw.pw_name, NULL);
    what = "mailbox";
    prefix_fmt = "cannot update mailbox %s for user %s. ";
    if (stat(s->mail_spool_directory, &spool) < 0) {
      g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                  "cannot access mail spool directory %s: %s", s->mail_spool_directory,
                  g_strerror(errno));
      ok = FALSE;
    } else if (spool.st_mode & S_IWOTH) {
      /* World-writable spool: never act as root in it. */
      ok = privs_enter(pw.pw_uid, pw.pw_gid, &saved, &error)
           && mailbox_mbox_deliver(path, &m, (uid_t) -1, (gid_t) -1, &error);
    } else {
      ok = mailbox_mbox_deliver(path, &m, pw.pw_uid,
                                (spool.st_mode & S_ISGID) ? (gid_t) -1 : pw.pw_gid, &error);
    }
  } else {
    gboolean maildir = g_str_has_suffix(s->home_mailbox, "/");

    path = g_build_filename(pw.pw_dir, s->home_mailbox, NULL);
    what = maildir ? "maildir" : "mailbox";
    prefix_fmt = maildir ? "maildir delivery failed: " : "cannot update mailbox %s for user %s. ";
    ok = privs_enter(pw.pw_uid, pw.pw_gid, &saved, &error)
         && (maildir ? mailbox_maildir_deliver(path, &m, NULL, &error)
                     : mailbox_mbox_deliver(path, &m, (uid_t) -1, (gid_t) -1, &error));
  }
  privs_leave(&saved);

  if (ok) {
    local_result(st, address, "local", start_us, DELIVERY_SENT, "2.0.0", "delivered to %s", what);
  } else {
    gboolean perm = g_error_matches(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
    g_autofree char *prefix = g_strdup_printf(prefix_fmt, path, pw.pw_name);

    local_result(st, address, "local", start_us, perm ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                 perm ? "5.2.2" : "4.2.0", "%s%s", prefix, error->message);
  }
}

/* One copy per mailbox and message, as Postfix's duplicate filter: the
 * same user reached twice in one alias expansion is skipped; reached again
 * through a later recipient of the message (the address twice in the
 * envelope, two aliases meeting), that recipient shares the first result. */
static void
local_deliver_user(LocalState *st, const char *user, const char *address, gint64 start_us)
{
  g_autofree char *key = g_strconcat("mailbox ", user, NULL);
  gpointer earlier = st->d->done != NULL ? g_hash_table_lookup(st->d->done, key) : NULL;
  guint sent = st->n_sent, defer = st->n_defer;
  DeliveryKind kind;

  if (g_hash_table_contains(st->seen, key))
    return;
  g_hash_table_add(st->seen, g_strdup(key));
  if (earlier != NULL) {
    kind = (DeliveryKind) (GPOINTER_TO_INT(earlier) - 1);
    log_qid(LOG_DEBUG, st->d->queue_id, "to=<%s>: mailbox of %s already done for this message",
            address, user);
    st->n_sent += kind == DELIVERY_SENT;
    st->n_defer += kind == DELIVERY_DEFER;
    st->n_bounce += kind == DELIVERY_BOUNCE;
    if (kind != DELIVERY_SENT && st->reason == NULL) {
      st->reason = g_strdup_printf("same mailbox as an earlier recipient (%s)", user);
      st->reason_kind = kind;
    }
    return;
  }
  local_deliver_user_once(st, user, address, start_us);
  kind = st->n_sent > sent ? DELIVERY_SENT : st->n_defer > defer ? DELIVERY_DEFER : DELIVERY_BOUNCE;
  if (st->d->done != NULL)
    g_hash_table_replace(st->d->done, g_steal_pointer(&key), GINT_TO_POINTER(kind + 1));
}

static void local_resolve(LocalState *st, const char *address, const char *parent, guint depth);

/* Splits an alias value at commas outside double quotes. */
static GPtrArray *
local_split_value(const char *value)
{
  GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
  gboolean quoted = FALSE;
  const char *start = value;

  for (const char *p = value;; p++) {
    if (*p == '"')
      quoted = !quoted;
    else if (*p == '\\' && quoted && p[1])
      p++;
    else if ((*p == ',' && !quoted) || *p == '\0') {
      char *item = g_strstrip(g_strndup(start, (gsize) (p - start)));
      gsize len = strlen(item);

      if (len >= 2 && item[0] == '<' && item[len - 1] == '>') {
        memmove(item, item + 1, len - 2);
        item[len - 2] = '\0';
      }
      if (*item)
        g_ptr_array_add(items, item);
      else
        g_free(item);
      if (*p == '\0')
        break;
      start = p + 1;
    }
  }
  return items;
}

/* Expands the value of alias key (reached as address) at the given depth. */
static void
local_expand(LocalState *st, const char *name, const char *key, const char *value, guint depth)
{
  const QmgrSettings *s = st->d->settings;
  g_autoptr(GPtrArray) items = local_split_value(value);

  if (items->len == 0) {
    local_result(st, name, "local", g_get_real_time(), DELIVERY_BOUNCE, "5.3.0",
                 "alias %s expands to no destination", name);
    return;
  }
  for (guint i = 0; i < items->len; i++) {
    const char *item = items->pdata[i];
    const char *bare = item[0] == '"' ? item + 1 : item;
    g_autofree char *addr = NULL, *domain = NULL;

    if (bare[0] == '|' || bare[0] == '/' || g_ascii_strncasecmp(bare, ":include:", 9) == 0) {
      local_result(st, item, "local", g_get_real_time(), DELIVERY_DEFER, "4.3.0",
                   "alias destination type not supported yet: %s", item);
      continue;
    }
    addr = address_at_sign(item) ? g_strdup(item) : g_strconcat(item, "@", s->myorigin, NULL);
    domain = address_domain(addr);
    if (!qmgr_settings_is_local_domain(s, domain)) {
      local_result(st, addr, "none", g_get_real_time(), DELIVERY_DEFER, "4.4.1",
                   "delivery to remote domains is not available yet");
      continue;
    }
    local_resolve(st, addr, key, depth);
  }
}

/* One local address: aliases first, then the system user.  parent is
 * the alias key whose value named this address (NULL at the top). */
static void
local_resolve(LocalState *st, const char *address, const char *parent, guint depth)
{
  const QmgrSettings *s = st->d->settings;
  gint64 start_us = g_get_real_time();
  g_autofree char *local = address_local_unquoted(address);
  g_autofree char *ext = NULL;
  g_autofree char *base = address_strip_extension(local, s->recipient_delimiter, &ext);
  g_autofree char *key_full = g_ascii_strdown(local, -1);
  g_autofree char *key = g_ascii_strdown(base, -1);
  const char *keys[2] = { ext ? key_full : key, ext ? key : NULL };

  if (depth > LOCAL_MAX_DEPTH) {
    local_result(st, address, "local", start_us, DELIVERY_BOUNCE, "5.4.6",
                 "mail forwarding loop for %s", address);
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS(keys) && keys[i]; i++) {
    g_autofree char *value = NULL;
    g_autoptr(GError) error = NULL;
    TableResult r;

    if (parent && strcmp(keys[i], parent) == 0)
      break;                    /* names itself: the user's own mailbox */
    if (g_hash_table_contains(st->expanded, keys[i])) {
      st->n_dropped++;          /* expanded once already */
      return;
    }
    if (s->aliases_error) {
      local_result(st, address, "local", start_us, DELIVERY_DEFER, "4.3.0",
                   "alias database unavailable: %s", s->aliases_error);
      return;
    }
    if (s->aliases == NULL)
      break;
    r = table_list_lookup(s->aliases, keys[i], &value, &error);
    if (r == TABLE_TEMPFAIL) {
      local_result(st, address, "local", start_us, DELIVERY_DEFER, "4.3.0",
                   "alias database unavailable: %s", error ? error->message : "lookup failed");
      return;
    }
    if (r == TABLE_FOUND) {
      g_hash_table_add(st->expanded, g_strdup(keys[i]));
      local_expand(st, address, keys[i], value, depth + 1);
      return;
    }
  }
  local_deliver_user(st, key, address, start_us);
}

DeliveryKind
qmgr_local_deliver(const QmgrDelivery *d, const QueueRecipient *rcpt, char **reason)
{
  LocalState st = {
    .d = d,
    .orig_to = rcpt->orig_address ? rcpt->orig_address : rcpt->address,
    .expanded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
    .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
  };
  DeliveryKind kind;

  local_resolve(&st, rcpt->address, NULL, 0);
  if (st.n_sent + st.n_defer + st.n_bounce == 0)
    local_result(&st, rcpt->address, "local", d->active_us, DELIVERY_BOUNCE, "5.4.6",
                 "mail forwarding loop for %s", rcpt->address);
  g_hash_table_unref(st.expanded);
  g_hash_table_unref(st.seen);
  /* One deferred destination defers the whole recipient (it is retried
   * as a whole, as Postfix does with an alias it expanded inline). */
  kind = st.n_defer ? DELIVERY_DEFER : st.n_sent ? DELIVERY_SENT : DELIVERY_BOUNCE;
  *reason = st.reason;
  return kind;
}
