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
  g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);

  return g_variant_new_string(valid);
}

void
qmgr_list_filter_clear(QmgrListFilter *f)
{
  g_clear_pointer(&f->sender, g_free);
  g_clear_pointer(&f->recipient, g_free);
  g_clear_pointer(&f->reason, g_free);
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
    } else {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX,
                  "Unknown filter key \"%s\" (queue, sender, recipient, min-age, max-age, "
                  "reason, limit)", key);
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
qmgr_list_entry(GVariantBuilder *b, const char *id, QueueDir dir, gboolean in_memory,
                const struct stat *st, const QueueEnvelope *env, const GError *error)
{
  GVariantBuilder flags;

  g_variant_builder_add(b, "{sv}", "id", g_variant_new_string(id));
  g_variant_builder_add(b, "{sv}", "queue",
                        g_variant_new_string(in_memory ? "active" : qmgr_list_queue_names[dir]));
  g_variant_builder_init(&flags, G_VARIANT_TYPE_STRING_ARRAY);
  if (in_memory || dir == QUEUE_ACTIVE)
    g_variant_builder_add(&flags, "s", "active");
  if (dir == QUEUE_HOLD)
    g_variant_builder_add(&flags, "s", "held");
  if (dir == QUEUE_CORRUPT)
    g_variant_builder_add(&flags, "s", "corrupt");
  g_variant_builder_add(b, "{sv}", "flags", g_variant_builder_end(&flags));
  if (env == NULL) {
    g_variant_builder_add(b, "{sv}", "size", g_variant_new_uint64((guint64) st->st_size));
    g_variant_builder_add(b, "{sv}", "error", qmgr_list_str(error ? error->message : "unreadable"));
    return;
  }
  g_variant_builder_add(b, "{sv}", "arrival-time", g_variant_new_uint64((guint64) env->arrival_us));
  g_variant_builder_add(b, "{sv}", "size", g_variant_new_uint64((guint64) env->content_size));
  g_variant_builder_add(b, "{sv}", "sender", qmgr_list_str(env->sender));
  g_variant_builder_add(b, "{sv}", "attempts", g_variant_new_uint32(env->attempts));
  if (dir == QUEUE_DEFERRED && !in_memory)
    g_variant_builder_add(b, "{sv}", "next-attempt",
                          g_variant_new_uint64((guint64) st->st_mtime * G_USEC_PER_SEC));
  if (env->client_name || env->client_addr) {
    g_autofree char *client = g_strdup_printf("%s[%s]", env->client_name ? env->client_name : "unknown",
                                              env->client_addr ? env->client_addr : "");
    g_variant_builder_add(b, "{sv}", "client", qmgr_list_str(client));
  }
  GVariantBuilder rcpts;
  g_variant_builder_init(&rcpts, G_VARIANT_TYPE("aa{sv}"));
  for (guint i = 0; i < env->recipients->len; i++) {
    const QueueRecipient *r = env->recipients->pdata[i];

    g_variant_builder_open(&rcpts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&rcpts, "{sv}", "address", qmgr_list_str(r->address));
    if (r->orig_address && strcmp(r->orig_address, r->address) != 0)
      g_variant_builder_add(&rcpts, "{sv}", "original-address", qmgr_list_str(r->orig_address));
    g_variant_builder_add(&rcpts, "{sv}", "state", g_variant_new_string(qmgr_list_states[r->state]));
    if (r->status)
      g_variant_builder_add(&rcpts, "{sv}", "reason", qmgr_list_str(r->status));
    g_variant_builder_close(&rcpts);
  }
  g_variant_builder_add(b, "{sv}", "recipients", g_variant_builder_end(&rcpts));
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
    fd = openat(dir_fds[d], id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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
qmgr_list_details(GVariantBuilder *b, int fd, const QueueEnvelope *env, gsize limit)
{
  gsize want = (gsize) MIN((gint64) limit, env->content_size), got = 0;
  g_autofree char *buf = g_malloc(want + 1);
  GVariantBuilder headers;
  g_autoptr(GString) name = NULL, value = NULL;

  if (env->helo)
    g_variant_builder_add(b, "{sv}", "helo", qmgr_list_str(env->helo));
  if (env->protocol)
    g_variant_builder_add(b, "{sv}", "protocol", qmgr_list_str(env->protocol));
  if (env->auth_user)
    g_variant_builder_add(b, "{sv}", "auth-user", qmgr_list_str(env->auth_user));
  if (env->redirect)
    g_variant_builder_add(b, "{sv}", "redirect", qmgr_list_str(env->redirect));

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
  g_variant_builder_add(b, "{sv}", "headers", g_variant_builder_end(&headers));
}

/* Reads one file into an entry; FALSE when it is gone or filtered out. */
static gboolean
qmgr_list_one(GVariantBuilder *out, const int *dir_fds, GHashTable *snapshot, const char *id,
              QueueDir dir, const QmgrListFilter *f, gint64 now_us, gboolean want_headers,
              gsize header_limit)
{
  g_autoptr(QueueEnvelope) env = NULL;
  g_autoptr(GError) error = NULL;
  gboolean in_memory;
  struct stat st;
  int fd = qmgr_list_open(dir_fds, id, &dir, &st);

  if (fd < 0)
    return FALSE;
  in_memory = snapshot && g_hash_table_contains(snapshot, id);
  if (f && !(f->queues & (1u << (in_memory ? QUEUE_ACTIVE : dir)))) {
    close(fd);
    return FALSE;
  }
  if (queue_file_is_retired(fd)) {
    close(fd);
    return FALSE;     /* a finished message a crash left emptied */
  }
  env = queue_file_read(fd, &error);
  if (f && (env == NULL ? f->sender || f->recipient || f->reason || f->min_age >= 0
                          || f->max_age >= 0
                        : !qmgr_list_match(f, env, now_us))) {
    close(fd);
    return FALSE;
  }
  g_variant_builder_open(out, G_VARIANT_TYPE_VARDICT);
  qmgr_list_entry(out, id, dir, in_memory, &st, env, error);
  if (want_headers && env != NULL)
    qmgr_list_details(out, fd, env, header_limit);
  g_variant_builder_close(out);
  close(fd);
  return TRUE;
}

static gint
qmgr_list_compare(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

GVariant *
qmgr_list_messages(const int *dir_fds, GHashTable *snapshot, const QmgrListFilter *f,
                   GError **error)
{
  static const QueueDir order[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
                                    QUEUE_CORRUPT };
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) ids = g_ptr_array_new();
  g_autoptr(GArray) dirs = g_array_new(FALSE, FALSE, sizeof(QueueDir));
  g_autoptr(GHashTable) dir_of = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GVariant) result = NULL;
  gint64 now_us = g_get_real_time();
  GVariantBuilder out;
  guint n = 0;

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
      return NULL;
    }
    while ((de = readdir(d)) != NULL) {
      char *id;

      if (!queue_id_is_valid(de->d_name) || g_hash_table_contains(seen, de->d_name))
        continue;
      id = g_strdup(de->d_name);
      g_hash_table_add(seen, id);
      g_ptr_array_add(ids, id);
      g_array_append_val(dirs, dir);
    }
    closedir(d);
  }
  /* Oldest first: ids sort by arrival. */
  for (guint i = 0; i < ids->len; i++)
    g_hash_table_insert(dir_of, ids->pdata[i], GINT_TO_POINTER(g_array_index(dirs, QueueDir, i) + 1));
  g_ptr_array_sort(ids, qmgr_list_compare);
  g_variant_builder_init(&out, G_VARIANT_TYPE("aa{sv}"));
  for (guint i = 0; i < ids->len && (f->limit == 0 || n < f->limit); i++) {
    const char *id = ids->pdata[i];
    QueueDir dir = (QueueDir) (GPOINTER_TO_INT(g_hash_table_lookup(dir_of, id)) - 1);

    n += qmgr_list_one(&out, dir_fds, snapshot, id, dir, f, now_us, FALSE, 0);
  }
  result = g_variant_ref_sink(g_variant_builder_end(&out));
  if (g_variant_get_size(result) > QMGR_LIST_MAX_BYTES) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "The listing is larger than %d MiB; narrow it with a filter or \"limit\"",
                QMGR_LIST_MAX_BYTES / (1024 * 1024));
    return NULL;
  }
  return g_steal_pointer(&result);
}

GVariant *
qmgr_list_get(const int *dir_fds, GHashTable *snapshot, const char *id, gsize header_limit,
              GError **error)
{
  GVariantBuilder out;
  g_autoptr(GVariant) all = NULL;

  g_variant_builder_init(&out, G_VARIANT_TYPE("aa{sv}"));
  if (!qmgr_list_one(&out, dir_fds, snapshot, id, QUEUE_INCOMING, NULL, 0, TRUE, header_limit)) {
    g_variant_builder_clear(&out);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND, "No message %s in the queue", id);
    return NULL;
  }
  all = g_variant_ref_sink(g_variant_builder_end(&out));
  return g_variant_get_child_value(all, 0);
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
