/* qmgr-list.c - queue files as D-Bus dictionaries: ListMessages and
 * GetMessage entries, and the ListMessages filter.
 *
 * Runs in any thread (a GTask thread of the D-Bus service): it only
 * reads, through the queue's directory fds, which never change while the
 * daemon runs.  Files move while it reads (deliveries, smtpd), so a file
 * that vanished from one directory is looked for in the later ones, and
 * an id is listed once.  Which messages are in the queue manager's memory
 * ("active", Postfix's active queue) comes from a snapshot the loop
 * thread made (qmgr_admin_snapshot()).  Every string from a file is made
 * valid UTF-8 (a D-Bus requirement; mail may carry 8-bit bytes).
 */
#include "qmgr-dbus-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A listing larger than this would not fit in one D-Bus message of a
 * stock system bus (max_message_size 32 MiB) with room to spare. */
#define QMGR_LIST_MAX_BYTES (24 * 1024 * 1024)

/* The queues ListMessages shows without a "queue" filter (postqueue -p). */
#define QMGR_LIST_DEFAULT_MASK ((1u << QUEUE_INCOMING) | (1u << QUEUE_ACTIVE) \
                                | (1u << QUEUE_DEFERRED) | (1u << QUEUE_HOLD))

static const char *const qmgr_list_queue_names[] = {
  [QUEUE_INCOMING] = "incoming", [QUEUE_ACTIVE] = "active", [QUEUE_DEFERRED] = "deferred",
  [QUEUE_HOLD] = "hold", [QUEUE_CORRUPT] = "corrupt",
};

static GVariant *
qmgr_list_str(const char *text)
{
  g_autofree char *valid = NULL;

  if (text == NULL)
    return g_variant_new_string("");
  if (g_utf8_validate(text, -1, NULL))
    return g_variant_new_string(text);
  valid = g_utf8_make_valid(text, -1);
  return g_variant_new_string(valid);
}

/* An a{sv} made from its entries in one go: cheaper than GVariantBuilder
 * and its format strings, which a listing of 100,000 messages feels. */
typedef struct {
  GVariant *items[24];
  guint n;
} QmgrDict;

static void
qmgr_dict_add(QmgrDict *d, const char *key, GVariant *value)
{
  g_assert(d->n < G_N_ELEMENTS(d->items));
  d->items[d->n++] = g_variant_new_dict_entry(g_variant_new_string(key),
                                              g_variant_new_variant(value));
}

static GVariant *
qmgr_dict_end(QmgrDict *d)
{
  return g_variant_new_array(G_VARIANT_TYPE("{sv}"), d->items, d->n);
}

void
qmgr_list_filter_clear(QmgrListFilter *f)
{
  g_clear_pointer(&f->sender, g_free);
  g_clear_pointer(&f->recipient, g_free);
  g_clear_pointer(&f->reason, g_free);
  g_clear_pointer(&f->after, g_free);
}

/* An integer of any D-Bus integer type, >= 0. */
static gboolean
qmgr_list_filter_int(GVariant *v, const char *key, gint64 *out, GError **error)
{
  gint64 n;

  if (g_variant_is_of_type(v, G_VARIANT_TYPE_BYTE)) n = g_variant_get_byte(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT16)) n = g_variant_get_int16(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT16)) n = g_variant_get_uint16(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32)) n = g_variant_get_int32(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32)) n = g_variant_get_uint32(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64)) n = g_variant_get_int64(v);
  else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
    n = (gint64) MIN(g_variant_get_uint64(v), (guint64) G_MAXINT64);
  else {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                "Filter key \"%s\" wants an integer, not \"%s\"", key,
                g_variant_get_type_string(v));
    return FALSE;
  }
  if (n < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                "Filter key \"%s\" must not be negative", key);
    return FALSE;
  }
  *out = n;
  return TRUE;
}

static gboolean
qmgr_list_filter_text(GVariant *v, const char *key, char **out, GError **error)
{
  if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                "Filter key \"%s\" wants a string, not \"%s\"", key,
                g_variant_get_type_string(v));
    return FALSE;
  }
  if (strlen(g_variant_get_string(v, NULL)) > QMGR_DBUS_MAX_TEXT) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                "Filter key \"%s\" is longer than %d bytes", key, QMGR_DBUS_MAX_TEXT);
    return FALSE;
  }
  g_free(*out);
  *out = g_utf8_strdown(g_variant_get_string(v, NULL), -1);
  return TRUE;
}

gboolean
qmgr_list_filter_parse(GVariant *dict, QmgrListFilter *f, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  *f = (QmgrListFilter) { .queues = QMGR_LIST_DEFAULT_MASK, .min_age = -1, .max_age = -1 };
  g_variant_iter_init(&iter, dict);
  while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
    g_autoptr(GVariant) v = value;
    gboolean ok;

    if (strcmp(key, "queue") == 0) {
      g_autofree char *name = NULL;
      guint i;

      ok = qmgr_list_filter_text(v, key, &name, error);
      for (i = 0; ok && i < G_N_ELEMENTS(qmgr_list_queue_names); i++)
        if (g_strcmp0(qmgr_list_queue_names[i], name) == 0)
          break;
      if (ok && i == G_N_ELEMENTS(qmgr_list_queue_names)) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                    "Unknown queue \"%s\" (incoming, active, deferred, hold, corrupt)", name);
        ok = FALSE;
      }
      f->queues = 1u << i;
    } else if (strcmp(key, "sender") == 0) {
      ok = qmgr_list_filter_text(v, key, &f->sender, error);
    } else if (strcmp(key, "recipient") == 0) {
      ok = qmgr_list_filter_text(v, key, &f->recipient, error);
    } else if (strcmp(key, "reason") == 0) {
      ok = qmgr_list_filter_text(v, key, &f->reason, error);
    } else if (strcmp(key, "min-age") == 0) {
      ok = qmgr_list_filter_int(v, key, &f->min_age, error);
    } else if (strcmp(key, "max-age") == 0) {
      ok = qmgr_list_filter_int(v, key, &f->max_age, error);
    } else if (strcmp(key, "limit") == 0) {
      gint64 n = 0;
      ok = qmgr_list_filter_int(v, key, &n, error);
      f->limit = (guint) MIN(n, (gint64) G_MAXUINT);
    } else if (strcmp(key, "after") == 0) {
      /* A cursor: the last id of the previous page.  Any string is taken
       * (the message may be gone by now); ids compare as strings. */
      if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                    "Filter key \"after\" wants a string, not \"%s\"",
                    g_variant_get_type_string(v));
        ok = FALSE;
      } else if (!queue_id_is_valid(g_variant_get_string(v, NULL))) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                    "Filter key \"after\" wants a queue id");
        ok = FALSE;
      } else {
        g_free(f->after);
        f->after = g_variant_dup_string(v, NULL);
        ok = TRUE;
      }
    } else {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                  "Unknown filter key \"%s\" (queue, sender, recipient, min-age, max-age, "
                  "reason, limit, after)", key);
      ok = FALSE;
    }
    if (!ok) {
      qmgr_list_filter_clear(f);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
qmgr_list_contains(const char *text, const char *needle)
{
  g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);
  g_autofree char *lower = g_utf8_strdown(valid, -1);

  return strstr(lower, needle) != NULL;
}

static gboolean
qmgr_list_match(const QmgrListFilter *f, const QueueEnvelope *env, gint64 now_us)
{
  gint64 age = (now_us - env->arrival_us) / G_USEC_PER_SEC;
  gboolean rcpt_ok = f->recipient == NULL, reason_ok = f->reason == NULL;

  if (f->min_age >= 0 && age < f->min_age)
    return FALSE;
  if (f->max_age >= 0 && age > f->max_age)
    return FALSE;
  if (f->sender != NULL) {
    if (strcmp(f->sender, "<>") == 0 ? env->sender[0] != '\0'
                                     : !qmgr_list_contains(env->sender, f->sender))
      return FALSE;
  }
  for (guint i = 0; i < env->recipients->len && !(rcpt_ok && reason_ok); i++) {
    const QueueRecipient *r = env->recipients->pdata[i];

    if (r->state != RCPT_PENDING)
      continue;
    if (!rcpt_ok && qmgr_list_contains(r->address, f->recipient))
      rcpt_ok = TRUE;
    if (!reason_ok && r->status && qmgr_list_contains(r->status, f->reason))
      reason_ok = TRUE;
  }
  return rcpt_ok && reason_ok;
}

static const char *const qmgr_list_states[] = {
  [RCPT_PENDING] = "pending", [RCPT_DELIVERED] = "delivered", [RCPT_BOUNCED] = "bounced",
};

/* The ListMessages entry of one envelope (or of an unreadable file). */
static void
qmgr_list_entry(QmgrDict *e, const char *id, QueueDir dir, gboolean in_memory,
                const struct stat *st, const QueueEnvelope *env, const GError *error)
{
  const char *flags[3];
  guint n_flags = 0;
  GVariant **rcpts;

  qmgr_dict_add(e, "id", g_variant_new_string(id));
  qmgr_dict_add(e, "queue", g_variant_new_string(in_memory ? "active" : qmgr_list_queue_names[dir]));
  if (in_memory || dir == QUEUE_ACTIVE)
    flags[n_flags++] = "active";
  if (dir == QUEUE_HOLD)
    flags[n_flags++] = "held";
  if (dir == QUEUE_CORRUPT)
    flags[n_flags++] = "corrupt";
  qmgr_dict_add(e, "flags", g_variant_new_strv(flags, n_flags));
  if (env == NULL) {
    qmgr_dict_add(e, "size", g_variant_new_uint64((guint64) st->st_size));
    qmgr_dict_add(e, "error", qmgr_list_str(error ? error->message : "unreadable"));
    return;
  }
  qmgr_dict_add(e, "arrival-time", g_variant_new_uint64((guint64) env->arrival_us));
  qmgr_dict_add(e, "size", g_variant_new_uint64((guint64) env->content_size));
  qmgr_dict_add(e, "sender", qmgr_list_str(env->sender));
  qmgr_dict_add(e, "attempts", g_variant_new_uint32(env->attempts));
  if (dir == QUEUE_DEFERRED && !in_memory)
    qmgr_dict_add(e, "next-attempt", g_variant_new_uint64((guint64) st->st_mtime * G_USEC_PER_SEC));
  if (env->client_name || env->client_addr) {
    g_autofree char *client = g_strdup_printf("%s[%s]", env->client_name ? env->client_name : "unknown",
                                              env->client_addr ? env->client_addr : "");
    qmgr_dict_add(e, "client", qmgr_list_str(client));
  }
  rcpts = g_new(GVariant *, MAX(env->recipients->len, 1));
  for (guint i = 0; i < env->recipients->len; i++) {
    const QueueRecipient *r = env->recipients->pdata[i];
    QmgrDict rd = { .n = 0 };

    qmgr_dict_add(&rd, "address", qmgr_list_str(r->address));
    if (r->orig_address && strcmp(r->orig_address, r->address) != 0)
      qmgr_dict_add(&rd, "original-address", qmgr_list_str(r->orig_address));
    qmgr_dict_add(&rd, "state", g_variant_new_string(qmgr_list_states[r->state]));
    if (r->status)
      qmgr_dict_add(&rd, "reason", qmgr_list_str(r->status));
    rcpts[i] = qmgr_dict_end(&rd);
  }
  qmgr_dict_add(e, "recipients", g_variant_new_array(G_VARIANT_TYPE_VARDICT, rcpts,
                                                     env->recipients->len));
  g_free(rcpts);
}

/* Reading a queue file for a listing leaves its access time alone: an
 * atime update dirties the inode, a write per file for a mere look
 * (O_NOATIME, allowed to the files' owner; EPERM otherwise, remembered). */
static int
qmgr_list_openat(int dir_fd, const char *name)
{
  static gint noatime = 1;
  const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd;

  if (g_atomic_int_get(&noatime)) {
    fd = openat(dir_fd, name, flags | O_NOATIME);
    if (fd >= 0 || errno != EPERM)
      return fd;
    g_atomic_int_set(&noatime, 0);
  }
  return openat(dir_fd, name, flags);
}

/* Opens id in dir or, when it moved on meanwhile, wherever it is now. */
static int
qmgr_list_open(const int *dir_fds, const char *id, QueueDir *dir, struct stat *st)
{
  static const QueueDir all[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
                                  QUEUE_CORRUPT };

  for (gint i = -1; i < (gint) G_N_ELEMENTS(all); i++) {
    QueueDir d = i < 0 ? *dir : all[i];
    int fd;

    if (i >= 0 && d == *dir)
      continue;
    fd = qmgr_list_openat(dir_fds[d], id);
    if (fd < 0)
      continue;
    if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
      *dir = d;
      return fd;
    }
    close(fd);
  }
  return -1;
}

/* GetMessage's extra keys: HELO, protocol, login, redirect, and the
 * header fields ("headers", a(ss)) from at most limit bytes of content. */
static void
qmgr_list_details(QmgrDict *e, int fd, const QueueEnvelope *env, gsize limit)
{
  gsize want = (gsize) MIN((gint64) limit, env->content_size), got = 0;
  g_autofree char *buf = g_malloc(want + 1);
  GVariantBuilder headers;
  g_autoptr(GString) name = NULL, value = NULL;

  if (env->helo)
    qmgr_dict_add(e, "helo", qmgr_list_str(env->helo));
  if (env->protocol)
    qmgr_dict_add(e, "protocol", qmgr_list_str(env->protocol));
  if (env->auth_user)
    qmgr_dict_add(e, "auth-user", qmgr_list_str(env->auth_user));
  if (env->redirect)
    qmgr_dict_add(e, "redirect", qmgr_list_str(env->redirect));

  while (got < want) {
    ssize_t n = pread(fd, buf + got, want - got, env->content_offset + (gint64) got);
    if (n <= 0)
      break;
    got += (gsize) n;
  }
  buf[got] = '\0';
  g_variant_builder_init(&headers, G_VARIANT_TYPE("a(ss)"));
  /* "Name: value" lines, continuation lines unfolded (the line break
   * before the white space removed, RFC 5322 2.2.3), up to the empty
   * line; a line that is neither ends the header as well. */
  for (char *line = buf, *nl; *line && *line != '\n'; line = nl + 1) {
    nl = strchr(line, '\n');
    if (nl == NULL)
      break;      /* a line cut by the limit */
    *nl = '\0';
    if ((line[0] == ' ' || line[0] == '\t') && name != NULL) {
      g_string_append(value, line);
      continue;
    }
    if (name != NULL) {
      g_variant_builder_add(&headers, "(@s@s)", qmgr_list_str(name->str), qmgr_list_str(value->str));
      g_string_free(g_steal_pointer(&name), TRUE);
      g_string_free(g_steal_pointer(&value), TRUE);
    }
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
      break;
    name = g_string_new_len(line, colon - line);
    colon++;
    while (*colon == ' ' || *colon == '\t')
      colon++;
    value = g_string_new(colon);
  }
  if (name != NULL)
    g_variant_builder_add(&headers, "(@s@s)", qmgr_list_str(name->str), qmgr_list_str(value->str));
  qmgr_dict_add(e, "headers", g_variant_builder_end(&headers));
}

/* The entry of one file (a floating reference); NULL when it is gone or
 * filtered out. */
static GVariant *
qmgr_list_one(const int *dir_fds, GHashTable *snapshot, const char *id, QueueDir dir,
              const QmgrListFilter *f, gint64 now_us, gboolean want_headers, gsize header_limit)
{
  g_autoptr(QueueEnvelope) env = NULL;
  g_autoptr(GError) error = NULL;
  gboolean in_memory;
  struct stat st;
  QmgrDict out = { .n = 0 };
  int fd = qmgr_list_open(dir_fds, id, &dir, &st);

  if (fd < 0)
    return NULL;
  in_memory = snapshot && g_hash_table_contains(snapshot, id);
  if (f && !(f->queues & (1u << (in_memory ? QUEUE_ACTIVE : dir)))) {
    close(fd);
    return NULL;
  }
  if (queue_file_is_retired(fd)) {
    close(fd);
    return NULL;      /* a finished message a crash left emptied */
  }
  env = queue_file_read(fd, &error);
  if (f && (env == NULL ? f->sender || f->recipient || f->reason || f->min_age >= 0
                          || f->max_age >= 0
                        : !qmgr_list_match(f, env, now_us))) {
    close(fd);
    return NULL;
  }
  qmgr_list_entry(&out, id, dir, in_memory, &st, env, error);
  if (want_headers && env != NULL)
    qmgr_list_details(&out, fd, env, header_limit);
  close(fd);
  return qmgr_dict_end(&out);
}

typedef struct {
  char *id;
  QueueDir dir;         /* where it was first seen */
} QmgrListItem;

struct _QmgrListScan {
  GArray *items;        /* QmgrListItem, sorted by id */
  guint next;           /* the next item to read */
  guint listed;         /* entries returned so far */
  guint id_width;       /* the longest id */
  gint64 now_us;
};

static gint
qmgr_list_compare(gconstpointer a, gconstpointer b)
{
  return strcmp(((const QmgrListItem *) a)->id, ((const QmgrListItem *) b)->id);
}

void
qmgr_list_scan_free(QmgrListScan *scan)
{
  if (scan == NULL)
    return;
  for (guint i = 0; i < scan->items->len; i++)
    g_free(g_array_index(scan->items, QmgrListItem, i).id);
  g_array_unref(scan->items);
  g_free(scan);
}

QmgrListScan *
qmgr_list_scan(const int *dir_fds, const QmgrListFilter *f, GError **error)
{
  static const QueueDir order[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
                                    QUEUE_CORRUPT };
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  QmgrListScan *scan = g_new0(QmgrListScan, 1);

  scan->items = g_array_new(FALSE, FALSE, sizeof(QmgrListItem));
  scan->now_us = g_get_real_time();
  /* Every id once, with the directory it was first seen in; a message in
   * memory may be in incoming/, active/ or deferred/. */
  for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
    QueueDir dir = order[i];
    gboolean wanted = (f->queues & (1u << dir)) != 0
                      || ((f->queues & (1u << QUEUE_ACTIVE)) && dir <= QUEUE_DEFERRED);
    int fd;
    DIR *d;
    struct dirent *de;

    if (!wanted)
      continue;
    fd = openat(dir_fds[dir], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "cannot read %s/: %s",
                  queue_dir_name(dir), g_strerror(errno));
      if (fd >= 0)
        close(fd);
      qmgr_list_scan_free(scan);
      return NULL;
    }
    while ((de = readdir(d)) != NULL) {
      QmgrListItem item;

      if (!queue_id_is_valid(de->d_name) || (f->after && strcmp(de->d_name, f->after) <= 0)
          || g_hash_table_contains(seen, de->d_name))
        continue;
      item = (QmgrListItem) { .id = g_strdup(de->d_name), .dir = dir };
      g_array_append_val(scan->items, item);
      g_hash_table_add(seen, item.id);
      scan->id_width = MAX(scan->id_width, (guint) strlen(item.id));
    }
    closedir(d);
  }
  /* Oldest first: ids sort by arrival. */
  g_array_sort(scan->items, qmgr_list_compare);
  return scan;
}

guint
qmgr_list_scan_size(const QmgrListScan *scan)
{
  return scan->items->len;
}

guint
qmgr_list_scan_width(const QmgrListScan *scan)
{
  return scan->id_width;
}

GVariant *
qmgr_list_scan_next(QmgrListScan *scan, const int *dir_fds, GHashTable *snapshot,
                    const QmgrListFilter *f)
{
  while (scan->next < scan->items->len && (f->limit == 0 || scan->listed < f->limit)) {
    const QmgrListItem *item = &g_array_index(scan->items, QmgrListItem, scan->next++);
    GVariant *entry = qmgr_list_one(dir_fds, snapshot, item->id, item->dir, f, scan->now_us,
                                    FALSE, 0);

    if (entry) {
      scan->listed++;
      return entry;
    }
  }
  return NULL;
}

GVariant *
qmgr_list_messages(const int *dir_fds, GHashTable *snapshot, const QmgrListFilter *f,
                   GError **error)
{
  QmgrListScan *scan = qmgr_list_scan(dir_fds, f, error);
  GVariantBuilder out;
  gsize bytes = 0;
  GVariant *entry;

  if (scan == NULL)
    return NULL;
  g_variant_builder_init(&out, G_VARIANT_TYPE("aa{sv}"));
  while ((entry = qmgr_list_scan_next(scan, dir_fds, snapshot, f)) != NULL) {
    bytes += g_variant_get_size(entry) + 8;   /* with its framing, roughly */
    g_variant_builder_add_value(&out, entry);
    if (bytes > QMGR_LIST_MAX_BYTES) {
      g_variant_builder_clear(&out);
      qmgr_list_scan_free(scan);
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                  "The listing is larger than %d MiB; page through it with \"limit\" and "
                  "\"after\", or use StreamMessages", QMGR_LIST_MAX_BYTES / (1024 * 1024));
      return NULL;
    }
  }
  qmgr_list_scan_free(scan);
  return g_variant_ref_sink(g_variant_builder_end(&out));
}

GVariant *
qmgr_list_get(const int *dir_fds, GHashTable *snapshot, const char *id, gsize header_limit,
              GError **error)
{
  GVariant *entry = qmgr_list_one(dir_fds, snapshot, id, QUEUE_INCOMING, NULL, 0, TRUE,
                                  header_limit);

  if (entry == NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND, "No message %s in the queue", id);
    return NULL;
  }
  return g_variant_ref_sink(entry);
}

GVariant *
qmgr_list_counts(const int *dir_fds, GHashTable *snapshot)
{
  static const QueueDir dirs[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
                                   QUEUE_CORRUPT };
  guint32 counts[QUEUE_N_DIRS] = { 0 };
  GVariantBuilder b;

  counts[QUEUE_ACTIVE] = snapshot ? g_hash_table_size(snapshot) : 0;
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    int fd = openat(dir_fds[dirs[i]], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
      if (fd >= 0)
        close(fd);
      continue;
    }
    while ((de = readdir(d)) != NULL) {
      if (!queue_id_is_valid(de->d_name))
        continue;
      if (snapshot && g_hash_table_contains(snapshot, de->d_name))
        continue;   /* counted as active */
      counts[dirs[i]]++;
    }
    closedir(d);
  }
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{su}"));
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++)
    g_variant_builder_add(&b, "{su}", qmgr_list_queue_names[dirs[i]], counts[dirs[i]]);
  return g_variant_builder_end(&b);
}
