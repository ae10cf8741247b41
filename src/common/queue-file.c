/* queue-file.c - queue directories, queue ids and the queue file writer.
 *
 * Owns the writing side of the format (docs/queue-format.md), the queue
 * id, the temp-file-then-rename commit, and the queue directory layout.
 * It must never let a partial file appear under a queue id name.  Writers
 * buffer so that a small message costs one write(), one fdatasync() and
 * one directory fsync().  Reading and state records: queue-read.c.
 */
#include "queue-private.h"
#include "config.h"
#include "dirsync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_WBUF_MIN      (16 * 1024)
#define QUEUE_WBUF_MAX      (64 * 1024)

static const char *const queue_dir_names[QUEUE_N_DIRS] = {
  [QUEUE_INCOMING] = "incoming",
  [QUEUE_ACTIVE] = "active",
  [QUEUE_DEFERRED] = "deferred",
  [QUEUE_HOLD] = "hold",
  [QUEUE_CORRUPT] = "corrupt",
  [QUEUE_RECYCLE] = "recycle",
};

const char *
queue_dir_name(QueueDir dir)
{
  g_return_val_if_fail(dir < QUEUE_N_DIRS, NULL);
  return queue_dir_names[dir];
}

gboolean
queue_errno(GError **error, int err, const char *what, const char *name)
{
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s %s: %s", what,
              name ? name : "", g_strerror(err));
  return FALSE;
}

/* TRUE when a field can be stored in one record. */
gboolean
queue_field_ok(const char *value)
{
  return strpbrk(value, "\r\n") == NULL;
}

/* ---- directories ---- */

/* mkdir if missing, then set mode and owner (mkdir obeys the umask). */
static gboolean
queue_dir_fix(const char *path, mode_t mode, uid_t uid, gid_t gid, GError **error)
{
  struct stat st;

  if (mkdir(path, mode) < 0 && errno != EEXIST)
    return queue_errno(error, errno, "mkdir", path);
  if (lstat(path, &st) < 0)
    return queue_errno(error, errno, "stat", path);
  if (!S_ISDIR(st.st_mode)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s: not a directory", path);
    return FALSE;
  }
  if ((st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) < 0)
    return queue_errno(error, errno, "chown", path);
  if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
    return queue_errno(error, errno, "chmod", path);
  return TRUE;
}

gboolean
queue_dirs_ensure(const char *queue_directory, uid_t owner_uid, gid_t owner_gid, GError **error)
{
  uid_t me = geteuid();
  gid_t my_gid = getegid();

  if (g_mkdir_with_parents(queue_directory, 0755) < 0)
    return queue_errno(error, errno, "mkdir", queue_directory);
  if (!queue_dir_fix(queue_directory, 0755, me, my_gid, error))
    return FALSE;
  for (int d = 0; d < QUEUE_N_DIRS; d++) {
    g_autofree char *path = g_build_filename(queue_directory, queue_dir_names[d], NULL);
    gboolean ok;
    if (d == QUEUE_INCOMING || d == QUEUE_RECYCLE)
      ok = queue_dir_fix(path, 0730, owner_uid == (uid_t) -1 ? me : owner_uid,
                         owner_gid == (gid_t) -1 ? my_gid : owner_gid, error);
    else
      ok = queue_dir_fix(path, 0700, me, my_gid, error);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

gboolean
queue_dirs_check_writable(const char *queue_directory, GError **error)
{
  static const QueueDir writer_dirs[] = { QUEUE_INCOMING, QUEUE_RECYCLE };

  for (guint i = 0; i < G_N_ELEMENTS(writer_dirs); i++) {
    g_autofree char *path = g_build_filename(queue_directory, queue_dir_names[writer_dirs[i]],
                                             NULL);
    if (access(path, W_OK | X_OK) < 0) {
      int e = errno;
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                  "queue directory %s: %s for uid %u; it is made by "
                  "\"systemd-tmpfiles --create postern.conf\" or by starting postern-qmgr",
                  path, e == ENOENT ? "missing" : g_strerror(e), (guint) geteuid());
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
queue_id_is_valid(const char *name)
{
  gsize n = 0;

  if (!name)
    return FALSE;
  for (; name[n]; n++) {
    if (!g_ascii_isdigit(name[n]) && !(name[n] >= 'A' && name[n] <= 'F'))
      return FALSE;
  }
  return n >= 18 && n <= QUEUE_ID_MAX;
}

guint
queue_incoming_cleanup(const char *queue_directory, gint64 max_age_s)
{
  g_autofree char *path = g_build_filename(queue_directory, queue_dir_names[QUEUE_INCOMING], NULL);
  DIR *dir = opendir(path);
  struct dirent *de;
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  guint removed = 0;

  if (!dir)
    return 0;
  while ((de = readdir(dir))) {
    struct stat st;
    if (strncmp(de->d_name, ".t", 2) != 0)
      continue;
    if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
      continue;
    if (now - (gint64) st.st_mtime >= max_age_s && unlinkat(dirfd(dir), de->d_name, 0) == 0)
      removed++;
  }
  closedir(dir);
  return removed;
}

/* ---- envelope ---- */

static void
queue_recipient_free(gpointer p)
{
  QueueRecipient *r = p;
  g_free(r->address);
  g_free(r->orig_address);
  g_free(r->status);
  g_free(r->orcpt);
  g_free(r);
}

QueueEnvelope *
queue_envelope_new(void)
{
  QueueEnvelope *env = g_new0(QueueEnvelope, 1);
  env->recipients = g_ptr_array_new_with_free_func(queue_recipient_free);
  return env;
}

void
queue_envelope_free(QueueEnvelope *env)
{
  if (!env)
    return;
  g_free(env->queue_id);
  g_free(env->sender);
  g_free(env->client_name);
  g_free(env->client_addr);
  g_free(env->helo);
  g_free(env->protocol);
  g_free(env->auth_user);
  g_free(env->redirect);
  g_free(env->envid);
  g_ptr_array_unref(env->recipients);
  g_free(env);
}

void
queue_envelope_add_recipient(QueueEnvelope *env, const char *address, const char *orig)
{
  QueueRecipient *r = g_new0(QueueRecipient, 1);
  r->address = g_strdup(address);
  if (orig && strcmp(orig, address) != 0)
    r->orig_address = g_strdup(orig);
  g_ptr_array_add(env->recipients, r);
}

static const struct {
  const char *name;
  guint bit;
} queue_notify_words[] = {
  { "NEVER", QUEUE_NOTIFY_NEVER },
  { "SUCCESS", QUEUE_NOTIFY_SUCCESS },
  { "FAILURE", QUEUE_NOTIFY_FAILURE },
  { "DELAY", QUEUE_NOTIFY_DELAY },
};

const char *
queue_notify_string(guint notify)
{
  static const char *const strings[16] = {
    "", "NEVER", "SUCCESS", "NEVER,SUCCESS", "FAILURE", "NEVER,FAILURE", "SUCCESS,FAILURE",
    "NEVER,SUCCESS,FAILURE", "DELAY", "NEVER,DELAY", "SUCCESS,DELAY", "NEVER,SUCCESS,DELAY",
    "FAILURE,DELAY", "NEVER,FAILURE,DELAY", "SUCCESS,FAILURE,DELAY", "NEVER,SUCCESS,FAILURE,DELAY",
  };
  return strings[notify & 15u];
}

gboolean
queue_notify_parse(const char *text, guint *notify)
{
  guint mask = 0;
  const char *p = text;

  for (;;) {
    const char *end = strchr(p, ',');
    gsize len = end ? (gsize) (end - p) : strlen(p);
    gsize i;
    for (i = 0; i < G_N_ELEMENTS(queue_notify_words); i++) {
      if (strlen(queue_notify_words[i].name) == len
          && g_ascii_strncasecmp(p, queue_notify_words[i].name, len) == 0)
        break;
    }
    if (i == G_N_ELEMENTS(queue_notify_words))
      return FALSE;
    mask |= queue_notify_words[i].bit;
    if (!end)
      break;
    p = end + 1;
  }
  if ((mask & QUEUE_NOTIFY_NEVER) && mask != QUEUE_NOTIFY_NEVER)
    return FALSE;
  *notify = mask;
  return TRUE;
}

/* ---- writer ---- */

struct _QueueWriter {
  int dirfd;                       /* incoming/ */
  int fd;                          /* temp file, -1 once closed */
  char tmpname[48];                /* name inside incoming/ */
  char id[QUEUE_ID_MAX + 1];
  gint64 arrival_us;
  gint64 flushed;                  /* bytes already written to the file */
  gint64 z_pos;                    /* file offset of the Z digits */
  gint64 content_size;
  gboolean envelope_done;
  gboolean content_done;           /* the end mark (and extracted records) are written */
  gboolean committed;
  int failed_errno;                /* sticky write error */
  char *buf;
  gsize buf_len, buf_cap;
};

static gint queue_tmp_counter;
static gint64 queue_last_arrival_us;
G_LOCK_DEFINE_STATIC(queue_arrival);

/* Wall-clock microseconds, strictly increasing within this process so
 * that ids sort in creation order. */
static gint64
queue_arrival_now(void)
{
  gint64 now = g_get_real_time();
  G_LOCK(queue_arrival);
  if (now <= queue_last_arrival_us)
    now = queue_last_arrival_us + 1;
  queue_last_arrival_us = now;
  G_UNLOCK(queue_arrival);
  return now;
}

/* Spare files: names read from recycle/ in batches, shared by the
 * writer threads of this process.  An empty scan is not repeated for
 * QUEUE_SPARE_RESCAN_US, so a process without spares pays almost
 * nothing. */
#define QUEUE_SPARE_BATCH 256
#define QUEUE_SPARE_RESCAN_US (G_USEC_PER_SEC / 5)

static GMutex queue_spare_lock;
static GPtrArray *queue_spares;           /* of char* */
static gint64 queue_spare_empty_at;
static char *queue_spare_dir;             /* the queue the fds below belong to */
static int queue_spare_dir_fd = -1;       /* its recycle/ */
static int queue_incoming_fd = -1;        /* its incoming/ */

/* Opens the directory fds of queue_directory once per process (lock
 * held).  Old fds stay open when the queue changes: another writer may be
 * using them right now (queue_directory changes only on a reload). */
static void
queue_dirs_cache(const char *queue_directory)
{
  if (queue_spare_dir == NULL || strcmp(queue_spare_dir, queue_directory) != 0) {
    g_autofree char *recycle = g_build_filename(queue_directory, queue_dir_names[QUEUE_RECYCLE], NULL);
    g_autofree char *incoming = g_build_filename(queue_directory, queue_dir_names[QUEUE_INCOMING], NULL);
    queue_spare_dir_fd = open(recycle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    queue_incoming_fd = open(incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_free(queue_spare_dir);
    queue_spare_dir = (queue_spare_dir_fd >= 0 && queue_incoming_fd >= 0) ? g_strdup(queue_directory) : NULL;
    if (queue_spares != NULL)
      g_ptr_array_set_size(queue_spares, 0);
    queue_spare_empty_at = 0;
  }
}

static int
queue_spare_dir_open(const char *queue_directory)
{
  queue_dirs_cache(queue_directory);
  return queue_spare_dir_fd;
}

/* A private fd for incoming/ of queue_directory (a dup of the cached one:
 * cheaper than a path lookup), or -1 with errno. */
static int
queue_incoming_open(const char *queue_directory)
{
  int fd;

  g_mutex_lock(&queue_spare_lock);
  queue_dirs_cache(queue_directory);
  fd = queue_incoming_fd >= 0 ? fcntl(queue_incoming_fd, F_DUPFD_CLOEXEC, 0) : -1;
  g_mutex_unlock(&queue_spare_lock);
  return fd;
}

/* Next spare name (newly allocated) or NULL; *recycle_fd gets recycle/. */
static char *
queue_spare_next(const char *queue_directory, int *recycle_fd_out)
{
  char *name = NULL;
  int recycle_fd;

  g_mutex_lock(&queue_spare_lock);
  recycle_fd = *recycle_fd_out = queue_spare_dir_open(queue_directory);
  if (recycle_fd < 0) {
    g_mutex_unlock(&queue_spare_lock);
    return NULL;
  }
  if (queue_spares == NULL)
    queue_spares = g_ptr_array_new_with_free_func(g_free);
  if (queue_spares->len == 0 && g_get_monotonic_time() - queue_spare_empty_at >= QUEUE_SPARE_RESCAN_US) {
    int fd = dup(recycle_fd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (dir == NULL && fd >= 0)
      close(fd);
    if (dir != NULL)
      rewinddir(dir);   /* a dup shares the offset of the last scan */
    while (dir != NULL && queue_spares->len < QUEUE_SPARE_BATCH && (de = readdir(dir)) != NULL) {
      if (queue_id_is_valid(de->d_name))
        g_ptr_array_add(queue_spares, g_strdup(de->d_name));
    }
    if (dir != NULL)
      closedir(dir);
    if (queue_spares->len == 0)
      queue_spare_empty_at = g_get_monotonic_time();
  }
  if (queue_spares->len > 0)
    name = g_ptr_array_steal_index_fast(queue_spares, queue_spares->len - 1);
  g_mutex_unlock(&queue_spare_lock);
  return name;
}

/* Claims a spare file from recycle/ as this writer's temp file: renamed
 * into incoming/ (atomic, so two writers never get the same one), then
 * opened and checked: a regular file of ours with no other link.  Leaves
 * w->fd at -1 when there is none to reuse. */
static void
queue_writer_take_spare(QueueWriter *w, const char *queue_directory)
{
  int recycle_fd;
  struct stat st;

  for (int tries = 0; tries < 8 && w->fd < 0; tries++) {
    g_autofree char *name = queue_spare_next(queue_directory, &recycle_fd);
    if (name == NULL)
      break;
    g_snprintf(w->tmpname, sizeof w->tmpname, ".t%d.%u", (int) getpid(),
               (guint) g_atomic_int_add(&queue_tmp_counter, 1));
    if (renameat(recycle_fd, name, w->dirfd, w->tmpname) < 0)
      continue;   /* taken by another writer, or gone */
    w->fd = openat(w->dirfd, w->tmpname, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (w->fd >= 0 && fstat(w->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1
        && st.st_uid == geteuid())
      break;
    if (w->fd >= 0)
      close(w->fd);
    w->fd = -1;
    unlinkat(w->dirfd, w->tmpname, 0);
  }
  if (w->fd < 0)
    w->tmpname[0] = '\0';
}

QueueWriter *
queue_writer_new(const char *queue_directory, GError **error)
{
  g_autofree char *path = g_build_filename(queue_directory, queue_dir_names[QUEUE_INCOMING], NULL);
  QueueWriter *w;
  struct stat st;

  int dfd = queue_incoming_open(queue_directory);
  if (dfd < 0)
    dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    queue_errno(error, errno, "open", path);
    return NULL;
  }
  w = g_new0(QueueWriter, 1);
  w->dirfd = dfd;
  w->fd = -1;
  queue_writer_take_spare(w, queue_directory);
  for (int tries = 0; w->fd < 0; tries++) {
    guint n = (guint) g_atomic_int_add(&queue_tmp_counter, 1);
    g_snprintf(w->tmpname, sizeof w->tmpname, ".t%d.%u", (int) getpid(), n);
    w->fd = openat(dfd, w->tmpname, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (w->fd < 0 && (errno != EEXIST || tries >= 100)) {
      queue_errno(error, errno, "create temp file in", path);
      w->tmpname[0] = '\0';
      queue_writer_free(w);
      return NULL;
    }
  }
  if (fstat(w->fd, &st) < 0) {
    queue_errno(error, errno, "fstat", w->tmpname);
    queue_writer_free(w);
    return NULL;
  }
  w->arrival_us = queue_arrival_now();
  g_snprintf(w->id, sizeof w->id, "%013" G_GINT64_MODIFIER "X%05" G_GINT64_MODIFIER "X",
             w->arrival_us, (gint64) st.st_ino);
  w->z_pos = -1;
  return w;
}

gboolean
queue_writer_chown(QueueWriter *writer, uid_t uid, gid_t gid, GError **error)
{
  if (fchown(writer->fd, uid, gid) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "chown %s: %s", writer->tmpname,
                g_strerror(errno));
    return FALSE;
  }
  return TRUE;
}

const char *
queue_writer_id(const QueueWriter *writer)
{
  return writer->id;
}

gint64
queue_writer_content_size(const QueueWriter *writer)
{
  return writer->content_size;
}

static gboolean
queue_write_all(int fd, const char *p, gsize len)
{
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return FALSE;
    }
    p += n;
    len -= (gsize) n;
  }
  return TRUE;
}

static gboolean
queue_writer_failed(QueueWriter *w, GError **error)
{
  return queue_errno(error, w->failed_errno, "write", w->tmpname);
}

static gboolean
queue_writer_flush(QueueWriter *w, GError **error)
{
  if (w->failed_errno)
    return queue_writer_failed(w, error);
  if (w->buf_len == 0)
    return TRUE;
  if (!queue_write_all(w->fd, w->buf, w->buf_len)) {
    w->failed_errno = errno ? errno : EIO;
    return queue_writer_failed(w, error);
  }
  w->flushed += (gint64) w->buf_len;
  w->buf_len = 0;
  return TRUE;
}

/* Appends bytes: the buffer grows to QUEUE_WBUF_MAX, then is written out
 * whenever it fills; big chunks bypass it. */
static gboolean
queue_writer_put(QueueWriter *w, const void *data, gsize len, GError **error)
{
  const char *p = data;

  if (w->failed_errno)
    return queue_writer_failed(w, error);
  while (len > 0) {
    if (w->buf_len + len > w->buf_cap && w->buf_cap < QUEUE_WBUF_MAX) {
      gsize cap = MAX(w->buf_cap * 2, QUEUE_WBUF_MIN);
      while (cap < w->buf_len + len && cap < QUEUE_WBUF_MAX)
        cap *= 2;
      w->buf_cap = MIN(cap, QUEUE_WBUF_MAX);
      w->buf = g_realloc(w->buf, w->buf_cap);
    }
    if (w->buf_len == 0 && len >= w->buf_cap) {
      if (!queue_write_all(w->fd, p, len)) {
        w->failed_errno = errno ? errno : EIO;
        return queue_writer_failed(w, error);
      }
      w->flushed += (gint64) len;
      return TRUE;
    }
    gsize n = MIN(len, w->buf_cap - w->buf_len);
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    p += n;
    len -= n;
    if (len > 0 && !queue_writer_flush(w, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
queue_writer_record(QueueWriter *w, char type, const char *value, GError **error)
{
  char t = type;
  if (!queue_field_ok(value)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "queue record %c: value contains a line break", type);
    return FALSE;
  }
  return queue_writer_put(w, &t, 1, error) && queue_writer_put(w, value, strlen(value), error)
         && queue_writer_put(w, "\n", 1, error);
}

gboolean
queue_writer_envelope(QueueWriter *writer, const QueueEnvelope *env, GError **error)
{
  char num[32];
  static const char zeros[] = "Z00000000000000000000\n";
  const struct { char type; const char *value; } optional[] = {
    { 'C', env->client_name }, { 'A', env->client_addr }, { 'H', env->helo },
    { 'P', env->protocol }, { 'U', env->auth_user },
  };

  g_return_val_if_fail(!writer->envelope_done, FALSE);
  if (env->recipients->len == 0) {
    g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "queue file without recipients");
    return FALSE;
  }
  if (!queue_writer_put(writer, QUEUE_MAGIC, strlen(QUEUE_MAGIC), error)
      || !queue_writer_record(writer, 'I', writer->id, error))
    return FALSE;
  g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT, writer->arrival_us);
  if (!queue_writer_record(writer, 'T', num, error))
    return FALSE;
  writer->z_pos = writer->flushed + (gint64) writer->buf_len + 1;
  if (!queue_writer_put(writer, zeros, sizeof zeros - 1, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(optional); i++) {
    if (optional[i].value && !queue_writer_record(writer, optional[i].type, optional[i].value, error))
      return FALSE;
  }
  if (!queue_writer_record(writer, 'S', env->sender ? env->sender : "", error))
    return FALSE;
  if (env->hold && !queue_writer_record(writer, 'L', "hold", error))
    return FALSE;
  if (env->redirect && !queue_writer_record(writer, '>', env->redirect, error))
    return FALSE;
  if (env->smtputf8 && !queue_writer_record(writer, 'L', "smtputf8", error))
    return FALSE;
  if (env->envid && !queue_writer_record(writer, 'e', env->envid, error))
    return FALSE;
  if (env->ret != QUEUE_RET_DEFAULT
      && !queue_writer_record(writer, 'r', env->ret == QUEUE_RET_FULL ? "FULL" : "HDRS", error))
    return FALSE;
  for (guint i = 0; i < env->recipients->len; i++) {
    const QueueRecipient *r = env->recipients->pdata[i];
    if (!queue_writer_record(writer, 'R', r->address, error))
      return FALSE;
    if (r->orig_address && strcmp(r->orig_address, r->address) != 0
        && !queue_writer_record(writer, 'O', r->orig_address, error))
      return FALSE;
    if (r->notify != 0 && !queue_writer_record(writer, 'n', queue_notify_string(r->notify), error))
      return FALSE;
    if (r->orcpt && !queue_writer_record(writer, 'o', r->orcpt, error))
      return FALSE;
  }
  if (!queue_writer_put(writer, "X\n", 2, error))
    return FALSE;
  writer->envelope_done = TRUE;
  return TRUE;
}

gboolean
queue_writer_content(QueueWriter *writer, const void *data, gsize len, GError **error)
{
  g_return_val_if_fail(writer->envelope_done && !writer->content_done, FALSE);
  if (!queue_writer_put(writer, data, len, error))
    return FALSE;
  writer->content_size += (gint64) len;
  return TRUE;
}

gboolean
queue_writer_extracted(QueueWriter *writer, gboolean hold, const char *redirect,
                       const GPtrArray *bcc, GError **error)
{
  g_return_val_if_fail(writer->envelope_done && !writer->content_done, FALSE);
  /* Checked before anything is written, so a bad value leaves no half
   * record behind. */
  for (guint i = 0; bcc != NULL && i < bcc->len; i++) {
    if (!queue_field_ok(bcc->pdata[i]) || *(const char *) bcc->pdata[i] == '\0') {
      g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                          "queue record R: empty or contains a line break");
      return FALSE;
    }
  }
  if (redirect != NULL && (!queue_field_ok(redirect) || *redirect == '\0')) {
    g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                        "queue record >: empty or contains a line break");
    return FALSE;
  }
  if (!queue_writer_put(writer, QUEUE_END_MARK, 2, error))
    return FALSE;
  writer->content_done = TRUE;
  if (hold && !queue_writer_record(writer, 'L', "hold", error))
    return FALSE;
  if (redirect != NULL && !queue_writer_record(writer, '>', redirect, error))
    return FALSE;
  for (guint i = 0; bcc != NULL && i < bcc->len; i++) {
    if (!queue_writer_record(writer, 'R', bcc->pdata[i], error))
      return FALSE;
  }
  return TRUE;
}

/* Closes and removes the temp file after a failed commit. */
static void
queue_writer_abandon(QueueWriter *w)
{
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  if (w->tmpname[0]) {
    unlinkat(w->dirfd, w->tmpname, 0);
    w->tmpname[0] = '\0';
  }
  if (!w->failed_errno)
    w->failed_errno = EIO;
}

gboolean
queue_writer_commit(QueueWriter *writer, GError **error)
{
  char digits[QUEUE_SIZE_DIGITS + 1];

  if (writer->committed)
    return TRUE;
  if (!writer->envelope_done || writer->fd < 0) {
    g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                        "queue file commit without envelope");
    return FALSE;
  }
  g_snprintf(digits, sizeof digits, "%020" G_GINT64_FORMAT, writer->content_size);
  if (!writer->content_done && !queue_writer_put(writer, QUEUE_END_MARK, 2, error))
    goto fail;
  writer->content_done = TRUE;
  if (writer->z_pos >= writer->flushed) {
    memcpy(writer->buf + (writer->z_pos - writer->flushed), digits, QUEUE_SIZE_DIGITS);
  } else if (pwrite(writer->fd, digits, QUEUE_SIZE_DIGITS, writer->z_pos) != QUEUE_SIZE_DIGITS) {
    queue_errno(error, errno ? errno : EIO, "write", writer->tmpname);
    goto fail;
  }
  if (!queue_writer_flush(writer, error))
    goto fail;
  if (fdatasync(writer->fd) < 0) {
    queue_errno(error, errno, "fdatasync", writer->tmpname);
    goto fail;
  }
  if (renameat(writer->dirfd, writer->tmpname, writer->dirfd, writer->id) < 0) {
    queue_errno(error, errno, "rename", writer->tmpname);
    goto fail;
  }
  if (!dirsync_fsync(writer->dirfd, "incoming/", error)) {
    /* Visible but maybe not durable: the client must not get 250. */
    g_strlcpy(writer->tmpname, writer->id, sizeof writer->tmpname);
    goto fail;
  }
  close(writer->fd);
  writer->fd = -1;
  writer->committed = TRUE;
  g_clear_pointer(&writer->buf, g_free);
  writer->buf_len = writer->buf_cap = 0;
  return TRUE;

fail:
  queue_writer_abandon(writer);
  return FALSE;
}

void
queue_writer_free(QueueWriter *writer)
{
  if (!writer)
    return;
  if (writer->fd >= 0)
    close(writer->fd);
  if (!writer->committed && writer->tmpname[0])
    unlinkat(writer->dirfd, writer->tmpname, 0);
  close(writer->dirfd);
  g_free(writer->buf);
  g_free(writer);
}

gboolean
queue_file_retire(int dir_fd, const char *id, int fd, int recycle_fd, gboolean keep,
                  gboolean *recycled, GError **error)
{
  struct stat st;

  *recycled = FALSE;
  if (keep && recycle_fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
      && st.st_nlink == 1 && ftruncate(fd, 0) == 0) {
    /* Emptied first, renamed second: once a writer can find it in
     * recycle/ nobody else touches it.  (The other order would let a
     * writer claim the file and start writing before this truncate.)  A
     * crash in between leaves an empty file under its queue id, which
     * the queue manager recognizes as retired (queue_file_is_retired). */
    if (renameat(dir_fd, id, recycle_fd, id) == 0) {
      *recycled = TRUE;
      return TRUE;
    }
  }
  if (unlinkat(dir_fd, id, 0) < 0 && errno != ENOENT)
    return queue_errno(error, errno, "unlink", id);
  return TRUE;
}

gboolean
queue_file_is_retired(int fd)
{
  struct stat st;

  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

guint
queue_recycle_count(int recycle_fd)
{
  int fd = dup(recycle_fd);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;
  guint n = 0;

  if (dir == NULL) {
    if (fd >= 0)
      close(fd);
    return 0;
  }
  rewinddir(dir);
  while ((de = readdir(dir)) != NULL)
    n += queue_id_is_valid(de->d_name);
  closedir(dir);
  return n;
}
