/* qmgr-local.c - local delivery of one recipient (Postfix local(8)).
 *
 * The local part (quotes removed, case folded) goes through alias_maps
 * first: "name+ext" then "name".  Alias values are comma-separated
 * addresses; a bare name means name@$myorigin; addresses in
 * mydestination expand again, recursively; addresses in other domains
 * are forwarded as Postfix does (virtual_alias_maps, then their domain
 * class: a virtual mailbox, or the remote path).  An alias that names itself
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
 * Alias values may also hold "|command" (qmgr-command.c), "/file" (mbox
 * append; "/dir/" is a maildir) and ":include:/file" destinations.  Who
 * runs them follows the owner of the alias table's file: root means
 * default_privs, another user means that user, no file (mysql: ...)
 * means restricted (bounced 5.7.1).  allow_mail_to_commands and
 * allow_mail_to_files name the classes allowed: "alias" for alias
 * values, "include" for the contents of :include: files.  An :include:
 * file is read as the table's owner (root reads as root), must be a
 * regular file that is not world-writable, and a non-root owner of it
 * becomes the owner of the commands and files it names.
 *
 * When an alias "owner-NAME" exists (in the same table) for an alias NAME
 * being expanded, deliveries of that expansion use owner-NAME@$myorigin
 * as envelope sender (Return-Path, From_, $SENDER), as Postfix does with
 * owner_request_special; a null sender stays null.
 *
 * Delivery status notices are per recipient (qmgr-deliver.c): a recipient
 * an alias expanded reports "expanded" to a NOTIFY=SUCCESS sender, with
 * its own NOTIFY and ORCPT for the whole expansion.
 *
 * An address of an expansion that bounces is reported by itself ("<x>
 * (expanded from <list>): ..."), whatever becomes of the others: to
 * owner-NAME when NAME's expansion reached it, else to the sender; remote
 * deliveries out of NAME's expansion have owner-NAME as MAIL FROM.
 *
 * A system user with no alias gets its ~/.forward (forward_path) instead
 * of the mailbox: read as the user, expanded like an :include: file with
 * the user as owner (class "forward"); "\\user" anywhere means that
 * user's mailbox.
 */
#include "qmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#include "address.h"
#include "log.h"
#include "mailbox.h"
#include "template.h"

#define LOCAL_MAX_DEPTH 100
#define LOCAL_INCLUDE_MAX (1024 * 1024)   /* bytes read from one :include: file */

/* Whose authority an expansion runs with. */
typedef struct {
  gboolean known;         /* FALSE: owner unknown, commands and files restricted */
  uid_t uid;              /* 0: root, commands and files run as default_privs */
  gid_t gid;
  const char *class;      /* "alias" or "include" (allow_mail_to_*) */
} LocalOwner;

typedef struct {
  const QmgrDelivery *d;
  const QueueRecipient *rcpt;   /* the recipient being delivered */
  const char *orig_to;
  GHashTable *expanded;   /* alias keys being or already expanded */
  GHashTable *seen;       /* final destinations already delivered (dup filter) */
  guint n_sent, n_defer, n_bounce;
  guint n_dropped;        /* alias references dropped as already expanded */
  char *reason;           /* the text for the queue file: first deferral, else first bounce */
  const char *sender;     /* envelope sender of deliveries: owner-NAME inside NAME's expansion */
  DeliveryKind reason_kind;
} LocalState;

/* Counts one final destination (already logged) toward the recipient's
 * result; takes text, its status text. */
static void
local_count(LocalState *st, DeliveryKind kind, char *text)
{
  switch (kind) {
  case DELIVERY_SENT: st->n_sent++; break;
  case DELIVERY_DEFER: st->n_defer++; break;
  case DELIVERY_BOUNCE: st->n_bounce++; break;
  }
  if (st->reason == NULL || (kind == DELIVERY_DEFER && st->reason_kind != DELIVERY_DEFER)
      || (kind == DELIVERY_BOUNCE && st->reason_kind == DELIVERY_SENT)) {
    g_free(st->reason);
    st->reason = text;
    st->reason_kind = kind;
  } else {
    g_free(text);
  }
}

/* An address the recipient's expansion reached bounced: reported by
 * itself (to owner-NAME inside NAME's expansion), since the other
 * addresses may be delivered.  The recipient's own failure is not a
 * child's. */
static void
local_child_bounced(LocalState *st, const char *to, const char *text, const char *dsn)
{
  const char *sender = st->d->env->sender;

  if (g_ascii_strcasecmp(to, st->rcpt->address) == 0)
    return;
  qmgr_delivery_child_bounced(st->d, st->rcpt, to, text, dsn,
                              *sender && g_strcmp0(st->sender, sender) != 0 ? st->sender : NULL);
}

/* Logs one final destination and counts it toward the recipient's result. */
static void G_GNUC_PRINTF(7, 8)
local_result(LocalState *st, const char *to, const char *relay, gint64 start_us,
             DeliveryKind kind, const char *dsn, const char *fmt, ...)
{
  char *text;
  va_list ap;

  va_start(ap, fmt);
  text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  qmgr_log_status(st->d, to, st->orig_to, relay, start_us, kind, dsn, text);
  if (kind == DELIVERY_BOUNCE)
    local_child_bounced(st, to, text, dsn);
  local_count(st, kind, text);
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

/* What a forward_path entry names: $home, $user, $extension,
 * $recipient_delimiter, $recipient, $local, $domain, $mailbox, $shell. */
typedef struct {
  const struct passwd *pw;
  const char *extension, *delimiter, *recipient, *local, *domain, *mailbox;
} LocalNames;

static const char *
local_names_lookup(const char *name, gpointer data)
{
  const LocalNames *n = data;

  if (strcmp(name, "home") == 0)
    return n->pw->pw_dir;
  if (strcmp(name, "user") == 0)
    return n->pw->pw_name;
  if (strcmp(name, "shell") == 0)
    return n->pw->pw_shell;
  if (strcmp(name, "extension") == 0)
    return n->extension;
  if (strcmp(name, "recipient_delimiter") == 0)
    return n->delimiter;
  if (strcmp(name, "recipient") == 0)
    return n->recipient;
  if (strcmp(name, "local") == 0)
    return n->local;
  if (strcmp(name, "domain") == 0)
    return n->domain;
  if (strcmp(name, "mailbox") == 0)
    return n->mailbox;
  return NULL;
}

static void local_deliver_mailbox_command(LocalState *st, const struct passwd *pw,
                                          const char *address, gint64 start_us);

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
  if (*s->mailbox_command != '\0') {
    local_deliver_mailbox_command(st, &pw, address, start_us);
    return;
  }

  m = (MailboxMessage) {
    .fd = st->d->fd, .offset = st->d->env->content_offset, .size = st->d->env->content_size,
    .sender = st->sender, .orig_rcpt = st->orig_to, .delivered_to = address,
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

/* One copy per destination and message, as Postfix's duplicate filter:
 * the same destination reached twice in one alias expansion is skipped;
 * reached again through a later recipient of the message (the address
 * twice in the envelope, two aliases meeting), that recipient shares the
 * first result.  FALSE: nothing more to do. */
static gboolean
local_dedupe_begin(LocalState *st, const char *key, const char *address)
{
  gpointer earlier = st->d->done != NULL ? g_hash_table_lookup(st->d->done, key) : NULL;
  DeliveryKind kind;

  if (g_hash_table_contains(st->seen, key))
    return FALSE;
  g_hash_table_add(st->seen, g_strdup(key));
  if (earlier == NULL)
    return TRUE;
  kind = (DeliveryKind) (GPOINTER_TO_INT(earlier) - 1);
  log_qid(LOG_DEBUG, st->d->queue_id, "to=<%s>: %s already done for this message", address, key);
  st->n_sent += kind == DELIVERY_SENT;
  st->n_defer += kind == DELIVERY_DEFER;
  st->n_bounce += kind == DELIVERY_BOUNCE;
  if (kind != DELIVERY_SENT && st->reason == NULL) {
    st->reason = g_strdup_printf("same destination as an earlier recipient (%s)", key);
    st->reason_kind = kind;
  }
  return FALSE;
}

/* Records the result of a delivery counted from sent/defer on. */
static void
local_dedupe_end(LocalState *st, const char *key, guint sent, guint defer)
{
  DeliveryKind kind = st->n_sent > sent ? DELIVERY_SENT
                    : st->n_defer > defer ? DELIVERY_DEFER : DELIVERY_BOUNCE;

  if (st->d->done != NULL)
    g_hash_table_replace(st->d->done, g_strdup(key), GINT_TO_POINTER(kind + 1));
}

static void
local_deliver_user(LocalState *st, const char *user, const char *address, gint64 start_us)
{
  g_autofree char *key = g_strconcat("mailbox ", user, NULL);
  guint sent = st->n_sent, defer = st->n_defer;

  if (!local_dedupe_begin(st, key, address))
    return;
  local_deliver_user_once(st, user, address, start_us);
  local_dedupe_end(st, key, sent, defer);
}

/* The identity commands and files of owner run with: default_privs for
 * root, else the owner.  *pw strings live in *pw_buf.  FALSE: logged. */
static gboolean
local_identity(LocalState *st, const LocalOwner *owner, const char *to, gint64 start_us,
               struct passwd *pw, char **pw_buf)
{
  struct passwd *found = NULL;
  gsize size = 4096;
  int r;

  if (owner->uid == 0) {
    r = local_getpwnam(st->d->settings->default_privs, pw, pw_buf, &found);
  } else {
    for (;;) {
      *pw_buf = g_realloc(*pw_buf, size);
      r = getpwuid_r(owner->uid, pw, *pw_buf, size, &found);
      if (r != ERANGE || size >= 1024 * 1024)
        break;
      size *= 4;
    }
    if (found == NULL && (r == 0 || r == ENOENT || r == ESRCH)) {
      /* An owner without a passwd entry: its ids, a neutral environment. */
      *pw = (struct passwd) { .pw_name = (char *) "nobody", .pw_dir = (char *) "/",
                              .pw_shell = (char *) "/bin/sh", .pw_uid = owner->uid,
                              .pw_gid = owner->gid };
      return TRUE;
    }
  }
  if (found == NULL) {
    local_result(st, to, "local", start_us, DELIVERY_DEFER, "4.3.5",
                 "cannot find the user to run as (%s): %s",
                 owner->uid == 0 ? st->d->settings->default_privs : "alias owner",
                 r ? g_strerror(r) : "no such user");
    return FALSE;
  }
  if (pw->pw_uid == 0) {
    local_result(st, to, "local", start_us, DELIVERY_DEFER, "4.3.5",
                 "refusing to deliver to a command or file as root (default_privs = %s)",
                 st->d->settings->default_privs);
    return FALSE;
  }
  return TRUE;
}

/* TRUE when class is in the allow_mail_to_* list. */
static gboolean
local_allowed(const char *const *list, const char *class)
{
  for (guint i = 0; list && list[i]; i++)
    if (g_ascii_strcasecmp(list[i], class) == 0)
      return TRUE;
  return FALSE;
}

/* The environment of a command, as local(8) sets it. */
static GStrv
local_command_env(LocalState *st, const char *to, const struct passwd *pw)
{
  const QmgrSettings *s = st->d->settings;
  g_autofree char *local = address_local_unquoted(to);
  g_autofree char *domain = address_domain(to);
  g_autofree char *ext = NULL;
  g_autofree char *base = address_strip_extension(local, s->recipient_delimiter, &ext);
  g_autofree char *lower = g_ascii_strdown(to, -1);
  g_autofree char *local_lower = g_ascii_strdown(local, -1);
  GStrv env = NULL;

  env = g_environ_setenv(env, "PATH", "/usr/bin:/bin", TRUE);
  env = g_environ_setenv(env, "HOME", pw->pw_dir, TRUE);
  env = g_environ_setenv(env, "LOGNAME", pw->pw_name, TRUE);
  env = g_environ_setenv(env, "USER", pw->pw_name, TRUE);
  env = g_environ_setenv(env, "SHELL", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh",
                         TRUE);
  env = g_environ_setenv(env, "SENDER", st->sender, TRUE);
  env = g_environ_setenv(env, "RECIPIENT", lower, TRUE);
  env = g_environ_setenv(env, "LOCAL", local_lower, TRUE);
  env = g_environ_setenv(env, "DOMAIN", domain, TRUE);
  env = g_environ_setenv(env, "ORIGINAL_RECIPIENT", st->orig_to, TRUE);
  if (ext) {
    g_autofree char *user = g_ascii_strdown(base, -1);

    env = g_environ_setenv(env, "EXTENSION", ext, TRUE);
    env = g_environ_setenv(env, "LOCAL", user, TRUE);
  }
  return env;
}

static MailboxMessage
local_message(LocalState *st, const char *to)
{
  const QmgrSettings *s = st->d->settings;

  return (MailboxMessage) {
    .fd = st->d->fd, .offset = st->d->env->content_offset, .size = st->d->env->content_size,
    .sender = st->sender, .orig_rcpt = st->orig_to, .delivered_to = to,
    .hostname = s->myhostname, .size_limit = 0,
  };
}

/* mailbox_command: the user's mail goes to the command (procmail,
 * dovecot-lda) instead of the mailbox, run as the user (root's as
 * default_privs) with the environment of alias commands (HOME, USER,
 * EXTENSION, ...).  As in Postfix the text is not $-expanded: it is shell
 * syntax as written. */
static void
local_deliver_mailbox_command(LocalState *st, const struct passwd *pw, const char *address,
                              gint64 start_us)
{
  const QmgrSettings *s = st->d->settings;
  g_autofree char *pw_buf = NULL, *text = NULL;
  g_auto(GStrv) env = NULL;
  LocalOwner owner = { .known = TRUE, .uid = pw->pw_uid, .gid = pw->pw_gid, .class = "alias" };
  struct passwd id;
  MailboxMessage m;
  QmgrCommand cmd;
  const char *dsn;
  DeliveryKind kind;

  if (!local_identity(st, &owner, address, start_us, &id, &pw_buf))
    return;
  env = local_command_env(st, address, pw);
  m = local_message(st, address);
  cmd = (QmgrCommand) { .command = s->mailbox_command, .uid = id.pw_uid, .gid = id.pw_gid,
                        .envp = (const char *const *) env,
                        .time_limit = s->command_time_limit };
  kind = qmgr_command_deliver(&cmd, &m, &dsn, &text);
  local_result(st, address, "local", start_us, kind, dsn, "%s", text);
}

/* "|command" in the expansion of alias address to. */
static void
local_deliver_command(LocalState *st, const char *to, const char *command,
                      const LocalOwner *owner)
{
  gint64 start_us = g_get_real_time();
  g_autofree char *key = g_strconcat("command ", command, NULL);
  g_autofree char *pw_buf = NULL, *text = NULL;
  g_auto(GStrv) env = NULL;
  guint sent = st->n_sent, defer = st->n_defer;
  struct passwd pw;
  MailboxMessage m;
  QmgrCommand cmd;
  const char *dsn;
  DeliveryKind kind;

  if (!owner->known || !local_allowed(st->d->settings->allow_mail_to_commands, owner->class)) {
    local_result(st, to, "local", start_us, DELIVERY_BOUNCE, "5.7.1",
                 "mail to command is restricted");
    return;
  }
  if (!local_dedupe_begin(st, key, to))
    return;
  if (local_identity(st, owner, to, start_us, &pw, &pw_buf)) {
    env = local_command_env(st, to, &pw);
    m = local_message(st, to);
    cmd = (QmgrCommand) { .command = command, .uid = pw.pw_uid, .gid = pw.pw_gid,
                          .envp = (const char *const *) env,
                          .time_limit = st->d->settings->command_time_limit };
    kind = qmgr_command_deliver(&cmd, &m, &dsn, &text);
    local_result(st, to, "local", start_us, kind, dsn, "%s", text);
  }
  local_dedupe_end(st, key, sent, defer);
}

/* "/file" (mbox append) or "/dir/" (maildir) in the expansion of to. */
static void
local_deliver_file(LocalState *st, const char *to, const char *path, const LocalOwner *owner)
{
  gint64 start_us = g_get_real_time();
  g_autofree char *key = g_strconcat("file ", path, NULL);
  g_autofree char *pw_buf = NULL;
  g_autoptr(GError) error = NULL;
  guint sent = st->n_sent, defer = st->n_defer;
  gboolean maildir = g_str_has_suffix(path, "/"), ok;
  PrivsSaved saved = { 0 };
  struct passwd pw;
  MailboxMessage m;

  if (!owner->known || !local_allowed(st->d->settings->allow_mail_to_files, owner->class)) {
    local_result(st, to, "local", start_us, DELIVERY_BOUNCE, "5.7.1",
                 "mail to file is restricted");
    return;
  }
  if (!local_dedupe_begin(st, key, to))
    return;
  if (local_identity(st, owner, to, start_us, &pw, &pw_buf)) {
    m = local_message(st, to);
    ok = privs_enter(pw.pw_uid, pw.pw_gid, &saved, &error)
         && (maildir ? mailbox_maildir_deliver(path, &m, NULL, &error)
                     : mailbox_mbox_deliver(path, &m, (uid_t) -1, (gid_t) -1, &error));
    privs_leave(&saved);
    if (ok) {
      local_result(st, to, "local", start_us, DELIVERY_SENT, "2.0.0",
                   maildir ? "delivered to maildir: %s" : "delivered to file: %s", path);
    } else {
      gboolean perm = g_error_matches(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);

      local_result(st, to, "local", start_us, perm ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                   perm ? "5.2.2" : "4.2.0", "cannot append message to %s %s: %s",
                   maildir ? "maildir" : "file", path, error->message);
    }
  }
  local_dedupe_end(st, key, sent, defer);
}

static void local_resolve(LocalState *st, const char *address, const char *parent, guint depth);
static void local_forward(LocalState *st, const char *addr, const char *key, guint depth);
static void local_resolver_failure(LocalState *st, const char *addr, const GError *error);

/* Splits an alias value at commas outside double quotes; <> around an
 * item are dropped, empty items skipped.  Also used by qmgr-virtual.c. */
GPtrArray *
qmgr_split_addresses(const char *value)
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

GPtrArray *
qmgr_local_include_parse(const char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_autoptr(GString) joined = g_string_new(NULL);

  for (guint i = 0; lines[i]; i++) {
    const char *line = lines[i];

    while (g_ascii_isspace(*line))
      line++;
    if (*line == '\0' || *line == '#')
      continue;
    g_string_append(joined, line);
    g_string_append_c(joined, ',');
  }
  return qmgr_split_addresses(joined->str);
}

/* Removes the double quotes of a quoted destination ("|cmd arg"). */
static char *
local_unquote(const char *item)
{
  gsize len = strlen(item);
  GString *out;

  if (len < 2 || item[0] != '"' || item[len - 1] != '"')
    return g_strdup(item);
  out = g_string_sized_new(len);
  for (gsize i = 1; i < len - 1; i++) {
    if (item[i] == '\\' && i + 1 < len - 1)
      i++;
    g_string_append_c(out, item[i]);
  }
  return g_string_free(out, FALSE);
}

static void local_expand_items(LocalState *st, const char *name, const char *key,
                               GPtrArray *items, guint depth, const LocalOwner *owner);

/* The text of an :include: or .forward file (at most LOCAL_INCLUDE_MAX
 * bytes), NUL-terminated; NULL with error (of code) otherwise. */
static char *
local_read_file(int fd, int code, GError **error)
{
  g_autofree char *text = g_malloc(LOCAL_INCLUDE_MAX + 1);
  ssize_t n = read(fd, text, LOCAL_INCLUDE_MAX + 1);

  if (n < 0 || n > LOCAL_INCLUDE_MAX) {
    g_set_error(error, POSTERN_ERROR, code, "%s", n < 0 ? g_strerror(errno) : "file too large");
    return NULL;
  }
  text[n] = '\0';
  return g_steal_pointer(&text);
}

/* ":include:path" in the expansion of name. */
static void
local_include(LocalState *st, const char *name, const char *key, const char *path, guint depth,
              const LocalOwner *owner)
{
  gint64 start_us = g_get_real_time();
  g_autofree char *seen = g_strconcat(":include:", path, NULL);
  g_autofree char *text = NULL;
  g_autoptr(GPtrArray) items = NULL;
  g_autoptr(GError) error = NULL;
  PrivsSaved saved = { 0 };
  LocalOwner inner = *owner;
  struct stat sb;
  int fd = -1;

  if (!owner->known) {
    local_result(st, name, "local", start_us, DELIVERY_BOUNCE, "5.7.1",
                 "mail to :include: file is restricted");
    return;
  }
  if (path[0] != '/') {
    local_result(st, name, "local", start_us, DELIVERY_BOUNCE, "5.3.5",
                 ":include: file name is not absolute: %s", path);
    return;
  }
  if (g_hash_table_contains(st->expanded, seen)) {
    st->n_dropped++;
    return;
  }
  g_hash_table_add(st->expanded, g_strdup(seen));
  if (owner->uid == 0 || privs_enter(owner->uid, owner->gid, &saved, &error))
    fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && error == NULL)
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", g_strerror(errno));
  privs_leave(&saved);
  if (fd >= 0 && fstat(fd, &sb) < 0)
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", g_strerror(errno));
  else if (fd >= 0 && (!S_ISREG(sb.st_mode) || (sb.st_mode & S_IWOTH)))
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "not a regular file, or world-writable");
  if (fd >= 0 && error == NULL)
    text = local_read_file(fd, POSTERN_ERROR_TEMPORARY, &error);
  if (fd >= 0)
    close(fd);
  if (error) {
    local_result(st, name, "local", start_us, DELIVERY_DEFER, "4.3.5",
                 "cannot open include file %s: %s", path, error->message);
    return;
  }
  inner.class = "include";
  if (sb.st_uid != 0) {
    /* Commands and files in a user's include file run as that user. */
    inner.uid = sb.st_uid;
    inner.gid = sb.st_gid;
  }
  items = qmgr_local_include_parse(text);
  if (items->len == 0) {
    local_result(st, name, "local", start_us, DELIVERY_BOUNCE, "5.3.0",
                 ":include: file %s holds no destination", path);
    return;
  }
  local_expand_items(st, name, key, items, depth + 1, &inner);
}

/* Expands the value of alias key (reached as address) at the given depth. */
static void
local_expand(LocalState *st, const char *name, const char *key, const char *value, guint depth,
             const LocalOwner *owner)
{
  g_autoptr(GPtrArray) items = qmgr_split_addresses(value);

  if (items->len == 0) {
    local_result(st, name, "local", g_get_real_time(), DELIVERY_BOUNCE, "5.3.0",
                 "alias %s expands to no destination", name);
    return;
  }
  local_expand_items(st, name, key, items, depth, owner);
}

static void
local_expand_items(LocalState *st, const char *name, const char *key, GPtrArray *items,
                   guint depth, const LocalOwner *owner)
{
  const QmgrSettings *s = st->d->settings;

  if (depth > LOCAL_MAX_DEPTH) {
    local_result(st, name, "local", g_get_real_time(), DELIVERY_BOUNCE, "5.4.6",
                 "mail forwarding loop for %s", name);
    return;
  }
  for (guint i = 0; i < items->len; i++) {
    const char *item = items->pdata[i];
    g_autofree char *bare = local_unquote(item);
    g_autofree char *addr = NULL, *domain = NULL;
    GError *error = NULL;

    if (bare[0] == '\\' && bare[1] != '\0' && !address_at_sign(bare + 1)) {
      /* "\\user": that user's mailbox, no alias or .forward (local(8)) */
      g_autofree char *user = g_ascii_strdown(bare + 1, -1);
      g_autofree char *to = g_strconcat(bare + 1, "@", s->myorigin, NULL);

      local_deliver_user(st, user, to, g_get_real_time());
      continue;
    }
    if (bare[0] == '|') {
      local_deliver_command(st, name, bare + 1, owner);
      continue;
    }
    if (bare[0] == '/') {
      local_deliver_file(st, name, bare, owner);
      continue;
    }
    if (g_ascii_strncasecmp(bare, ":include:", 9) == 0) {
      local_include(st, name, key, g_strstrip(bare + 9), depth, owner);
      continue;
    }
    addr = address_at_sign(item) ? g_strdup(item) : g_strconcat(item, "@", s->myorigin, NULL);
    domain = address_domain(addr);
    switch (qmgr_settings_local_domain(s, domain, &error)) {
    case MATCH_FOUND:
      local_resolve(st, addr, key, depth);
      break;
    case MATCH_NONE:
      local_forward(st, addr, key, depth);
      break;
    case MATCH_TEMPFAIL:
      local_resolver_failure(st, addr, error);
      break;
    }
    g_clear_error(&error);
  }
}

/* A domain list could not answer for addr: defer it, never guess. */
static void
local_resolver_failure(LocalState *st, const char *addr, const GError *error)
{
  g_autofree char *reason = qmgr_deliver_resolver_failure(st->d, error);
  local_result(st, addr, "none", g_get_real_time(), DELIVERY_DEFER, "4.3.0", "%s", reason);
}

/* One address of a forwarded alias result, by its class; local ones come
 * back into this expansion (whose duplicate filter stops loops). */
static void
local_forward_one(LocalState *st, const char *addr, const char *key, guint depth)
{
  g_autofree char *domain = address_domain(addr);
  g_autofree char *reason = NULL;
  g_autoptr(GError) error = NULL;
  DomainClass cls;

  if (!domain_classes_resolve(st->d->settings->domains, domain, &cls, &error)) {
    local_resolver_failure(st, addr, error);
    return;
  }
  if (cls == DOMAIN_CLASS_LOCAL) {
    local_resolve(st, addr, key, depth);
    return;
  }
  const QmgrDelivery *d = st->d;
  QmgrDelivery as_owner;
  guint reported = d->child_bounces ? d->child_bounces->len : 0;
  DeliveryKind kind;

  if (st->sender != d->env->sender) {
    /* owner-NAME is the envelope sender out of this expansion too */
    as_owner = *d;
    as_owner.sender = st->sender;
    d = &as_owner;
  }
  kind = qmgr_deliver_nonlocal(d, addr, st->orig_to, cls, &reason);
  if (kind == DELIVERY_BOUNCE && (d->child_bounces == NULL || d->child_bounces->len == reported))
    local_child_bounced(st, addr, reason, d->bounce_dsn);
  local_count(st, kind, g_steal_pointer(&reason));
}

/* An alias result in a domain that is not local goes where Postfix's
 * local(8) forwards it, through cleanup and the resolver:
 * virtual_alias_maps rewriting, then each address by its domain class
 * (a virtual mailbox, an unknown virtual alias bounced, remote mail
 * deferred until the SMTP client exists). */
static void
local_forward(LocalState *st, const char *addr, const char *key, guint depth)
{
  g_autoptr(GPtrArray) rewritten = NULL;
  g_autoptr(GError) error = NULL;

  switch (qmgr_virtual_alias_expand(st->d->settings, addr, &rewritten, &error)) {
  case QMGR_VIRTUAL_ALIAS_TEMPFAIL:
    local_result(st, addr, "none", g_get_real_time(), DELIVERY_DEFER, "4.3.0",
                 "virtual_alias_maps lookup failed: %s", error->message);
    return;
  case QMGR_VIRTUAL_ALIAS_LOOP:
    local_result(st, addr, "none", g_get_real_time(), DELIVERY_BOUNCE, "5.4.6", "%s",
                 error->message);
    return;
  case QMGR_VIRTUAL_ALIAS_NONE:
    local_forward_one(st, addr, key, depth);
    return;
  case QMGR_VIRTUAL_ALIAS_FOUND:
    for (guint i = 0; i < rewritten->len; i++)
      local_forward_one(st, rewritten->pdata[i], key, depth);
    return;
  }
}

/* One local address: aliases first, then the system user.  parent is
 * the alias key whose value named this address (NULL at the top). */
/* Reads the .forward file at path as the user; NULL when there is none to
 * use (missing, or unsafe: logged), else its text. */
static char *
local_forward_read(LocalState *st, const struct passwd *pw, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  PrivsSaved saved = { 0 };
  struct stat sb;
  int fd = -1;

  if (privs_enter(pw->pw_uid, pw->pw_gid, &saved, &error))
    fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && error == NULL && errno != ENOENT && errno != ENOTDIR)
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", g_strerror(errno));
  privs_leave(&saved);
  if (fd >= 0 && fstat(fd, &sb) < 0)
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", g_strerror(errno));
  else if (fd >= 0 && !S_ISREG(sb.st_mode))
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "not a regular file");
  else if (fd >= 0 && sb.st_uid != 0 && sb.st_uid != pw->pw_uid)
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "bad owner uid %ld",
                (long) sb.st_uid);
  else if (fd >= 0 && (sb.st_mode & (S_IWGRP | S_IWOTH)))
    g_set_error(&error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "writable by others");
  if (fd >= 0 && error == NULL)
    text = local_read_file(fd, POSTERN_ERROR_FAILED, &error);
  if (fd >= 0)
    close(fd);
  if (error != NULL) {
    /* as Postfix: warned about and passed over; the mailbox gets the mail */
    log_qid(LOG_WARNING, st->d->queue_id, "file %s: %s; not used for forwarding", path,
            error->message);
    return NULL;
  }
  return g_steal_pointer(&text);
}

/* The user's .forward (the first forward_path entry that exists), as
 * Postfix's local(8): its destinations instead of the mailbox, commands
 * and files run as the user ("forward" in allow_mail_to_*).  A .forward
 * met again in its own expansion (the user forwards to itself, or
 * "\user") means the mailbox.  TRUE when the .forward took the delivery. */
static gboolean
local_dot_forward(LocalState *st, const char *user, const char *address, const char *ext,
                  guint depth)
{
  const QmgrSettings *s = st->d->settings;
  g_autofree char *pw_buf = NULL, *local = NULL, *domain = NULL, *lower = NULL;
  g_auto(GStrv) paths = NULL;
  struct passwd pw, *found = NULL;

  if (*s->forward_path == '\0' || local_getpwnam(user, &pw, &pw_buf, &found) != 0
      || found == NULL)
    return FALSE;             /* the mailbox path reports an unknown user */
  local = address_local_unquoted(address);
  domain = address_domain(address);
  lower = g_ascii_strdown(address, -1);
  paths = g_strsplit_set(s->forward_path, ", \t\r\n", -1);
  for (guint i = 0; paths[i]; i++) {
    LocalNames names = { .pw = &pw, .extension = ext, .delimiter = s->recipient_delimiter,
                           .recipient = lower, .local = local, .domain = domain,
                           .mailbox = user };
    g_autofree char *path = NULL, *seen = NULL, *text = NULL;
    g_autoptr(GPtrArray) items = NULL;
    gboolean undefined;
    LocalOwner owner = { .known = TRUE, .uid = pw.pw_uid, .gid = pw.pw_gid, .class = "forward" };

    if (*paths[i] == '\0')
      continue;
    path = template_expand(paths[i], local_names_lookup, &names, &undefined);
    if (undefined || !g_path_is_absolute(path))
      continue;               /* "$home/.forward+$extension" without an extension */
    seen = g_strconcat(":forward:", path, NULL);
    if (g_hash_table_contains(st->expanded, seen))
      return FALSE;           /* forwarded back to itself: the mailbox */
    text = local_forward_read(st, &pw, path);
    if (text == NULL)
      continue;
    items = qmgr_local_include_parse(text);
    if (items->len == 0)
      continue;               /* an empty .forward forwards nothing */
    g_hash_table_add(st->expanded, g_steal_pointer(&seen));
    qmgr_delivery_expanded(st->d);
    local_expand_items(st, address, user, items, depth + 1, &owner);
    return TRUE;
  }
  return FALSE;
}

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
    for (guint t = 0; t < s->aliases->len; t++) {
      Table *table = s->aliases->pdata[t];
      LocalOwner owner = { .class = "alias" };

      r = table_lookup(table, keys[i], &value, &error);
      if (r == TABLE_TEMPFAIL) {
        local_result(st, address, "local", start_us, DELIVERY_DEFER, "4.3.0",
                     "alias database unavailable: %s", error ? error->message : "lookup failed");
        return;
      }
      if (r == TABLE_FOUND) {
        const char *saved_sender = st->sender;
        g_autofree char *owner_key = g_strconcat("owner-", keys[i], NULL);
        g_autofree char *owner_value = NULL, *owner_addr = NULL;

        owner.known = qmgr_settings_alias_owner(table, &owner.uid, &owner.gid);
        g_hash_table_add(st->expanded, g_strdup(keys[i]));
        /* local(8): NOTIFY and ORCPT go with the expansion (the recipient's
         * own, here), and a SUCCESS notice says "expanded" */
        qmgr_delivery_expanded(st->d);
        if (*st->sender && !g_str_has_prefix(keys[i], "owner-")
            && table_lookup(table, owner_key, &owner_value, NULL) == TABLE_FOUND) {
          owner_addr = g_strconcat(owner_key, "@", s->myorigin, NULL);
          st->sender = owner_addr;
        }
        local_expand(st, address, keys[i], value, depth + 1, &owner);
        st->sender = saved_sender;
        return;
      }
    }
  }
  if (!local_dot_forward(st, key, address, ext, depth))
    local_deliver_user(st, key, address, start_us);
}

DeliveryKind
qmgr_local_deliver(const QmgrDelivery *d, const QueueRecipient *rcpt, char **reason)
{
  LocalState st = {
    .d = d,
    .rcpt = rcpt,
    .sender = d->env->sender,
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
