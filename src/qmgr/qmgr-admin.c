/* qmgr-admin.c - administrative queue operations: delete, hold, release,
 * requeue, flush (postsuper -d/-h/-H/-r, postqueue -i/-f), and the list
 * of messages in memory that queue listings need.
 *
 * Loop thread only: the loop owns the scheduler, so an operation here
 * cannot race with a scan or an inotify event taking the same file.  A
 * message that a worker is delivering right now is never touched: its
 * operation is kept as a flag and applied by qmgr_admin_after_attempt()
 * when the attempt ends, so recipients the attempt delivered stay
 * delivered (their records are on disk) and no file is moved under a
 * worker.  Renames and unlinks are done here; the directory fsyncs are
 * the caller's (they block), see dirs_changed.
 */
#include "qmgr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Where an operation looks for files that are not in memory, in
 * postsuper's order; corrupt/ only for DELETE with explicit ids. */
static const QueueDir qmgr_admin_dirs[][6] = {
  [QMGR_ADMIN_DELETE] = { QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
                          QUEUE_CORRUPT, QUEUE_N_DIRS },
  [QMGR_ADMIN_HOLD] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_N_DIRS },
  [QMGR_ADMIN_RELEASE] = { QUEUE_HOLD, QUEUE_N_DIRS },
  [QMGR_ADMIN_REQUEUE] = { QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
                           QUEUE_N_DIRS },
};

/* Directories a message may be found in at all (for NoSuchMessage). */
static const QueueDir qmgr_admin_all_dirs[] = {
  QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, QUEUE_N_DIRS,
};

static gboolean
qmgr_admin_exists(Qmgr *q, QueueDir dir, const char *id)
{
  struct stat st;

  return fstatat(q->dir_fds[dir], id, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* The directory (of list) holding id, or QUEUE_N_DIRS. */
static QueueDir
qmgr_admin_find(Qmgr *q, const QueueDir *list, const char *id)
{
  for (; *list != QUEUE_N_DIRS; list++)
    if (qmgr_admin_exists(q, *list, id))
      return *list;
  return QUEUE_N_DIRS;
}

/* Makes a file due now: its mtime is its next attempt time. */
static void
qmgr_admin_touch(Qmgr *q, QueueDir dir, const char *id)
{
  if (utimensat(q->dir_fds[dir], id, NULL, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
    log_warning("%s: cannot reset the retry time: %s", id, g_strerror(errno));
}

/* Moves a held file to deferred/, due now.  Its K record is written
 * first when an access(5) HOLD put it there, so that it is delivered
 * rather than held again. */
static gboolean
qmgr_admin_unhold(Qmgr *q, const char *id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = NULL;
  int fd = openat(q->dir_fds[QUEUE_HOLD], id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0) {
    log_warning("%s: cannot open the held queue file: %s", id, g_strerror(errno));
    return FALSE;
  }
  env = queue_file_read(fd, &error);
  if (env != NULL && env->hold && !env->hold_done && !queue_file_record_held(fd, &error)) {
    log_warning("%s: cannot release: %s", id, error->message);
    close(fd);
    return FALSE;
  }
  /* A file that does not parse is released all the same: its attempt
   * moves it to corrupt/. */
  if (futimens(fd, NULL) < 0)
    log_warning("%s: cannot reset the retry time: %s", id, g_strerror(errno));
  close(fd);
  if (renameat(q->dir_fds[QUEUE_HOLD], id, q->dir_fds[QUEUE_DEFERRED], id) < 0) {
    log_warning("%s: cannot move from hold/ to deferred/: %s", id, g_strerror(errno));
    return FALSE;
  }
  return TRUE;
}

/* Takes a file that is due now into memory, or arms the deferred scan
 * when there is no room. */
static void
qmgr_admin_schedule(Qmgr *q, const char *id, QueueDir dir)
{
  if (!q->stopping && !qmgr_scheduler_add(q, id, dir)) {
    if (dir == QUEUE_INCOMING)
      q->incoming_backlog = TRUE;
    else
      qmgr_queue_note_deferred(q, g_get_real_time() / G_USEC_PER_SEC);
  }
}

/* One file not in memory, in dir: TRUE when op was applied. */
static gboolean
qmgr_admin_file(Qmgr *q, QmgrAdminOp op, const char *id, QueueDir dir, guint *changed)
{
  switch (op) {
  case QMGR_ADMIN_DELETE:
    if (unlinkat(q->dir_fds[dir], id, 0) < 0) {
      if (errno != ENOENT)
        log_warning("%s: cannot remove %s/%s: %s", id, queue_dir_name(dir), id,
                    g_strerror(errno));
      return FALSE;
    }
    *changed |= 1u << dir;
    log_qid(LOG_INFO, id, "removed");
    return TRUE;
  case QMGR_ADMIN_HOLD:
    if (renameat(q->dir_fds[dir], id, q->dir_fds[QUEUE_HOLD], id) < 0) {
      if (errno != ENOENT)
        log_warning("%s: cannot move to hold/: %s", id, g_strerror(errno));
      return FALSE;
    }
    *changed |= (1u << dir) | (1u << QUEUE_HOLD);
    log_qid(LOG_INFO, id, "placed on hold");
    return TRUE;
  case QMGR_ADMIN_RELEASE:
  case QMGR_ADMIN_REQUEUE:
    if (dir == QUEUE_HOLD) {
      if (!qmgr_admin_unhold(q, id))
        return FALSE;
      *changed |= (1u << QUEUE_HOLD) | (1u << QUEUE_DEFERRED);
      dir = QUEUE_DEFERRED;
    } else {
      qmgr_admin_touch(q, dir, id);
    }
    log_qid(LOG_INFO, id, op == QMGR_ADMIN_RELEASE ? "released from hold" : "requeued");
    qmgr_admin_schedule(q, id, dir);
    return TRUE;
  }
  return FALSE;
}

typedef struct {
  Qmgr *q;
  QmgrAdminOp op;
  GHashTable *targets;    /* ids to act on; NULL: every message in memory */
  GPtrArray *done;
  guint *changed;
} QmgrAdminRun;

/* qmgr_scheduler_forget() callback: a waiting message that DELETE or
 * HOLD takes out of memory (its file is then handled as not in memory). */
static gboolean
qmgr_admin_drop_waiting(QmgrMessage *msg, gpointer data)
{
  QmgrAdminRun *run = data;

  if (run->targets && !g_hash_table_contains(run->targets, msg->id))
    return FALSE;
  if (qmgr_admin_file(run->q, run->op, msg->id, msg->dir, run->changed))
    g_ptr_array_add(run->done, g_strdup(msg->id));
  if (run->targets)
    g_hash_table_remove(run->targets, msg->id);
  return TRUE;
}

/* Messages in memory: in flight get a flag; waiting ones are taken out
 * of memory (DELETE, HOLD) or left to their imminent attempt (REQUEUE).
 * Handled ids leave run->targets. */
static void
qmgr_admin_in_memory(QmgrAdminRun *run)
{
  Qmgr *q = run->q;
  GHashTableIter iter;
  QmgrMessage *msg;
  guint flag = run->op == QMGR_ADMIN_DELETE ? QMGR_ADMIN_F_DELETE
               : run->op == QMGR_ADMIN_HOLD ? QMGR_ADMIN_F_HOLD : QMGR_ADMIN_F_REQUEUE;

  if (run->op == QMGR_ADMIN_RELEASE)
    return;     /* nothing in memory is on hold */
  g_hash_table_iter_init(&iter, q->messages);
  while (g_hash_table_iter_next(&iter, NULL, (gpointer *) &msg)) {
    if (run->targets && !g_hash_table_contains(run->targets, msg->id))
      continue;
    if (!msg->in_flight && run->op != QMGR_ADMIN_REQUEUE)
      continue;   /* below, in one pass over the waiting list */
    g_ptr_array_add(run->done, g_strdup(msg->id));
    if (msg->in_flight) {
      msg->admin |= flag;
      log_qid(LOG_INFO, msg->id, "%s when the delivery attempt in progress ends",
              run->op == QMGR_ADMIN_DELETE ? "will be removed"
              : run->op == QMGR_ADMIN_HOLD ? "will be placed on hold" : "will be requeued");
    } else {
      log_qid(LOG_INFO, msg->id, "requeued");   /* its attempt is imminent anyway */
    }
    if (run->targets)
      g_hash_table_remove(run->targets, msg->id);
  }
  if (run->op == QMGR_ADMIN_DELETE || run->op == QMGR_ADMIN_HOLD)
    qmgr_scheduler_forget(q, qmgr_admin_drop_waiting, run);
}

static gint
qmgr_admin_compare(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Every committed file in dir that is not in memory. */
static void
qmgr_admin_dir_all(QmgrAdminRun *run, QueueDir dir)
{
  Qmgr *q = run->q;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  int fd = openat(q->dir_fds[dir], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;

  if (d == NULL) {
    log_warning("cannot read %s/%s: %s", q->queue_directory, queue_dir_name(dir),
                g_strerror(errno));
    if (fd >= 0)
      close(fd);
    return;
  }
  while ((de = readdir(d)) != NULL)
    if (queue_id_is_valid(de->d_name) && !g_hash_table_contains(q->messages, de->d_name))
      g_ptr_array_add(names, g_strdup(de->d_name));
  closedir(d);
  g_ptr_array_sort(names, qmgr_admin_compare);
  for (guint i = 0; i < names->len; i++)
    if (qmgr_admin_file(q, run->op, names->pdata[i], dir, run->changed))
      g_ptr_array_add(run->done, g_strdup(names->pdata[i]));
}

GPtrArray *
qmgr_admin_apply(Qmgr *q, QmgrAdminOp op, const char *const *ids, gboolean all,
                 guint *dirs_changed, GError **error)
{
  g_autoptr(GPtrArray) done = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GHashTable) targets = NULL;
  QmgrAdminRun run = { .q = q, .op = op, .done = done, .changed = dirs_changed };

  *dirs_changed = 0;
  if (!all) {
    /* First every id must exist somewhere: a typo changes nothing. */
    targets = g_hash_table_new(g_str_hash, g_str_equal);
    for (const char *const *id = ids; *id; id++) {
      if (!g_hash_table_contains(q->messages, *id)
          && qmgr_admin_find(q, qmgr_admin_all_dirs, *id) == QUEUE_N_DIRS) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND,
                    "No message %s in the queue", *id);
        return NULL;
      }
      g_hash_table_add(targets, (gpointer) *id);
    }
  }
  run.targets = targets;
  qmgr_admin_in_memory(&run);
  if (all) {
    for (const QueueDir *dir = qmgr_admin_dirs[op]; *dir != QUEUE_N_DIRS; dir++)
      if (*dir != QUEUE_CORRUPT)
        qmgr_admin_dir_all(&run, *dir);
  } else {
    /* In the order given; ids that were in memory are gone from targets. */
    for (const char *const *id = ids; *id; id++) {
      QueueDir dir;

      if (!g_hash_table_remove(targets, *id))
        continue;     /* handled in memory, or a duplicate */
      dir = qmgr_admin_find(q, qmgr_admin_dirs[op], *id);
      if (dir != QUEUE_N_DIRS && qmgr_admin_file(q, op, *id, dir, dirs_changed))
        g_ptr_array_add(done, g_strdup(*id));
    }
  }
  qmgr_scheduler_kick(q);
  return g_steal_pointer(&done);
}

guint
qmgr_admin_flush(Qmgr *q)
{
  int fd = openat(q->dir_fds[QUEUE_DEFERRED], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;
  guint n = 0;

  if (d == NULL) {
    log_warning("cannot read %s/deferred: %s", q->queue_directory, g_strerror(errno));
    if (fd >= 0)
      close(fd);
  } else {
    while ((de = readdir(d)) != NULL) {
      if (queue_id_is_valid(de->d_name)) {
        qmgr_admin_touch(q, QUEUE_DEFERRED, de->d_name);
        n++;
      }
    }
    closedir(d);
  }
  log_info("flush: %u deferred message%s due now", n, n == 1 ? "" : "s");
  if (!q->stopping) {
    qmgr_queue_scan_incoming(q);
    qmgr_queue_scan_deferred(q);
  }
  return n;
}

GHashTable *
qmgr_admin_snapshot(Qmgr *q)
{
  GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  QmgrMessage *msg;

  g_hash_table_iter_init(&iter, q->messages);
  while (g_hash_table_iter_next(&iter, NULL, (gpointer *) &msg))
    g_hash_table_insert(ids, g_strdup(msg->id), GINT_TO_POINTER(msg->in_flight ? 2 : 1));
  return ids;
}

gboolean
qmgr_admin_after_attempt(Qmgr *q, QmgrMessage *msg)
{
  /* The worker is done: msg->dir is where the file is now, if anywhere. */
  gboolean exists = msg->outcome != QMGR_OUTCOME_DONE && qmgr_admin_exists(q, msg->dir, msg->id);
  guint changed = 0;

  if (!exists)
    return FALSE;     /* delivered (or gone): nothing left to act on */
  if (msg->admin & QMGR_ADMIN_F_DELETE) {
    qmgr_admin_file(q, QMGR_ADMIN_DELETE, msg->id, msg->dir, &changed);
    return FALSE;
  }
  if (msg->admin & QMGR_ADMIN_F_HOLD) {
    if (msg->dir != QUEUE_HOLD)
      qmgr_admin_file(q, QMGR_ADMIN_HOLD, msg->id, msg->dir, &changed);
    return FALSE;
  }
  if ((msg->admin & QMGR_ADMIN_F_REQUEUE) && msg->dir != QUEUE_HOLD
      && msg->dir != QUEUE_CORRUPT) {
    qmgr_admin_touch(q, msg->dir, msg->id);
    log_qid(LOG_INFO, msg->id, "requeued");
    return TRUE;
  }
  return FALSE;
}
