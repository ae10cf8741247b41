/* table-cdb.c - compiled file tables: hash: and cdb:.
 *
 * "hash:/path/access" looks keys up in /path/access.cdb, a tinycdb
 * constant database (mmap'ed) that table_rebuild writes from the source
 * text.  The .cdb is stat()ed at most once a second and reopened when its
 * (dev, inode, size, mtime) changed, so a rebuild (a rename over the old
 * file) is seen without restarting; the old mapping stays valid until
 * then.  Keys are stored folded exactly as the text loader folds them.
 *
 * Leniency (Postfix would fail instead): when the .cdb does not exist but
 * the source text does, lookups read the text as texthash: does, so
 * configurations written before compiled tables keep working.  Nothing
 * is logged (library code); a .cdb that cannot be opened or is corrupt
 * makes lookups TABLE_TEMPFAIL.
 */
#include "table-private.h"
#include "config.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE_CDB_CHECK_INTERVAL_US G_USEC_PER_SEC

typedef struct {
  char *path;             /* source text */
  char *cdb_path;         /* path.cdb */
  struct cdb cdb;
  gboolean mapped;        /* cdb is open */
  TableText *text;        /* fallback while there is no .cdb */
  char *error;            /* why neither is usable */
  dev_t dev;              /* identity of the mapped .cdb */
  ino_t ino;
  off_t size;
  struct timespec mtime;
  gint64 checked_us;      /* monotonic time of the last stat, 0 = never */
} TableCdb;

static void
table_cdb_unmap(TableCdb *tc)
{
  if (!tc->mapped)
    return;
  int fd = cdb_fileno(&tc->cdb);
  cdb_free(&tc->cdb);
  close(fd);
  tc->mapped = FALSE;
}

static gboolean
table_cdb_same(const TableCdb *tc, const struct stat *st)
{
  return tc->mapped && st->st_dev == tc->dev && st->st_ino == tc->ino && st->st_size == tc->size
    && st->st_mtim.tv_sec == tc->mtime.tv_sec && st->st_mtim.tv_nsec == tc->mtime.tv_nsec;
}

static void
table_cdb_fail(TableCdb *tc, const char *fmt, const char *what, int err)
{
  table_cdb_unmap(tc);
  g_free(tc->error);
  tc->error = g_strdup_printf(fmt, what, g_strerror(err));
}

/* Maps the .cdb if it is new or changed; falls back to the text when the
 * .cdb does not exist. */
static void
table_cdb_refresh(TableCdb *tc)
{
  struct stat st;

  g_clear_pointer(&tc->error, g_free);
  if (stat(tc->cdb_path, &st) < 0) {
    int e = errno;
    if (e == ENOENT) {
      table_cdb_unmap(tc);
      if (!tc->text)
        tc->text = table_text_new(tc->path);
    } else {
      table_cdb_fail(tc, "stat %s: %s", tc->cdb_path, e);
    }
    return;
  }
  g_clear_pointer(&tc->text, table_text_free);
  if (table_cdb_same(tc, &st))
    return;
  int fd = open(tc->cdb_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    table_cdb_fail(tc, "open %s: %s", tc->cdb_path, e);
    return;
  }
  struct cdb fresh;
  if (cdb_init(&fresh, fd) < 0) {
    int e = errno ? errno : EINVAL;
    close(fd);
    table_cdb_fail(tc, "map %s: %s", tc->cdb_path, e);
    return;
  }
  table_cdb_unmap(tc);
  tc->cdb = fresh;
  tc->mapped = TRUE;
  tc->dev = st.st_dev;
  tc->ino = st.st_ino;
  tc->size = st.st_size;
  tc->mtime = st.st_mtim;
}

/* The once-a-second check needs no finer clock than the kernel tick, and
 * the coarse clock is several times cheaper to read on every lookup. */
static gint64
table_cdb_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static gboolean
table_cdb_open(Table *table, const char *name, GError **error)
{
  if (*name == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": missing file name", table->spec);
    return FALSE;
  }
  TableCdb *tc = g_new0(TableCdb, 1);
  tc->path = g_strdup(name);
  tc->cdb_path = g_strconcat(name, ".cdb", NULL);
  table->data = tc;
  return TRUE;
}

static TableResult
table_cdb_lookup(Table *table, const char *key, char **value, GError **error)
{
  TableCdb *tc = table->data;
  gint64 now = table_cdb_now_us();

  if (tc->checked_us == 0 || now - tc->checked_us >= TABLE_CDB_CHECK_INTERVAL_US) {
    tc->checked_us = now;
    table_cdb_refresh(tc);
  }
  if (tc->text)
    return table_text_lookup(tc->text, table, key, value, error);
  if (!tc->mapped)
    return table_tempfail(error, table->spec, tc->error ? tc->error : "not open");
  gsize klen = strlen(key);
  if (klen == 0 || klen > G_MAXUINT)
    return TABLE_NOTFOUND;
  int r = cdb_find(&tc->cdb, key, (unsigned) klen);
  if (r < 0) {
    g_autofree char *why = g_strdup_printf("%s: corrupt database", tc->cdb_path);
    return table_tempfail(error, table->spec, why);
  }
  if (r == 0)
    return TABLE_NOTFOUND;
  const char *data = cdb_getdata(&tc->cdb);
  if (!data) {
    g_autofree char *why = g_strdup_printf("%s: corrupt database", tc->cdb_path);
    return table_tempfail(error, table->spec, why);
  }
  unsigned vlen = cdb_datalen(&tc->cdb);
  char *v = g_malloc((gsize) vlen + 1);
  memcpy(v, data, vlen);
  v[vlen] = '\0';
  *value = v;
  return TABLE_FOUND;
}

static void
table_cdb_free(Table *table)
{
  TableCdb *tc = table->data;
  if (!tc)
    return;
  table_cdb_unmap(tc);
  table_text_free(tc->text);
  g_free(tc->path);
  g_free(tc->cdb_path);
  g_free(tc->error);
  g_free(tc);
}

const TableBackend table_backend_hash = {
  .type = "hash", .open = table_cdb_open, .lookup = table_cdb_lookup, .free = table_cdb_free,
};
const TableBackend table_backend_cdb = {
  .type = "cdb", .open = table_cdb_open, .lookup = table_cdb_lookup, .free = table_cdb_free,
};
