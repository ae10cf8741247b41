/* dirsync.c - shared directory fsyncs (see dirsync.h).
 *
 * One entry per directory (device, inode) while someone waits on it:
 * "requested" counts callers, "completed" is the highest request number a
 * finished fsync covers.  An fsync started after request k covers k.
 */
#include "dirsync.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

typedef struct {
  dev_t dev;
  ino_t ino;
  guint64 requested, completed;
  gboolean busy;                  /* an fsync is running */
  guint users;
  GCond cond;
} DirSync;

static GMutex dirsync_lock;
static GHashTable *dirsync_table;   /* DirSync* keyed by itself (dev, ino) */

static guint
dirsync_hash(gconstpointer key)
{
  const DirSync *s = key;

  return (guint) (s->ino ^ (s->ino >> 32) ^ s->dev);
}

static gboolean
dirsync_equal(gconstpointer a, gconstpointer b)
{
  const DirSync *x = a, *y = b;

  return x->dev == y->dev && x->ino == y->ino;
}

/* The entry for st, created if needed; lock held. */
static DirSync *
dirsync_get(const struct stat *st)
{
  DirSync key = { .dev = st->st_dev, .ino = st->st_ino }, *entry;

  if (dirsync_table == NULL)
    dirsync_table = g_hash_table_new(dirsync_hash, dirsync_equal);
  entry = g_hash_table_lookup(dirsync_table, &key);
  if (entry == NULL) {
    entry = g_new0(DirSync, 1);
    entry->dev = st->st_dev;
    entry->ino = st->st_ino;
    g_cond_init(&entry->cond);
    g_hash_table_add(dirsync_table, entry);
  }
  return entry;
}

gboolean
dirsync_fsync(int dirfd, const char *what, GError **error)
{
  struct stat st;
  DirSync *entry;
  guint64 mine;
  int err = 0;

  if (fstat(dirfd, &st) < 0) {
    err = errno;
    goto out;
  }
  g_mutex_lock(&dirsync_lock);
  entry = dirsync_get(&st);
  entry->users++;
  mine = ++entry->requested;
  while (entry->completed < mine) {
    if (entry->busy) {
      g_cond_wait(&entry->cond, &dirsync_lock);
      continue;
    }
    guint64 target = entry->requested;
    int r;

    entry->busy = TRUE;
    g_mutex_unlock(&dirsync_lock);
    r = fsync(dirfd);
    err = r < 0 ? errno : 0;
    g_mutex_lock(&dirsync_lock);
    entry->busy = FALSE;
    if (r == 0)
      entry->completed = MAX(entry->completed, target);
    g_cond_broadcast(&entry->cond);
    if (r < 0)
      break;          /* the others try again themselves */
  }
  if (--entry->users == 0) {
    g_hash_table_remove(dirsync_table, entry);
    g_cond_clear(&entry->cond);
    g_free(entry);
  }
  g_mutex_unlock(&dirsync_lock);
out:
  if (err) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "fsync %s: %s", what,
                g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

gboolean
dirsync_parent(const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int e = errno;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "open %s: %s", dir, g_strerror(e));
    return FALSE;
  }
  gboolean ok = dirsync_fsync(dfd, dir, error);
  close(dfd);
  return ok;
}
