/* table-rebuild.c - compiling a hash:/cdb: table's source text into its
 * .cdb (what postmap and newaliases do).
 *
 * The text is parsed strictly (a malformed line fails with PATH:LINE),
 * written with tinycdb's cdb_make to PATH.cdb.tmp.PID, fsync()ed and
 * renamed over PATH.cdb, then the directory is fsync()ed: readers see
 * the old table or the new one, never a partial file, and a failed
 * rebuild leaves the old .cdb in place.
 */
#include "dirsync.h"
#include "table-private.h"
#include "config.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gboolean
table_rebuild_errno(GError **error, const char *what, const char *path)
{
  int e = errno;
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s %s: %s", what, path, g_strerror(e));
  return FALSE;
}

/* Writes map into the open, empty file fd and makes it durable. */
static gboolean
table_rebuild_write(int fd, const char *tmp, GHashTable *map, GError **error)
{
  struct cdb_make cm;
  GHashTableIter iter;
  gpointer k, v;

  if (cdb_make_start(&cm, fd) < 0)
    return table_rebuild_errno(error, "write", tmp);
  g_hash_table_iter_init(&iter, map);
  while (g_hash_table_iter_next(&iter, &k, &v)) {
    gsize klen = strlen(k), vlen = strlen(v);
    if (klen > G_MAXUINT / 2 || vlen > G_MAXUINT / 2
        || cdb_make_add(&cm, k, (unsigned) klen, v, (unsigned) vlen) < 0) {
      int e = errno;
      cdb_make_finish(&cm);
      errno = e ? e : EFBIG;
      return table_rebuild_errno(error, "write", tmp);
    }
  }
  if (cdb_make_finish(&cm) < 0)
    return table_rebuild_errno(error, "write", tmp);
  if (fsync(fd) < 0)
    return table_rebuild_errno(error, "fsync", tmp);
  return TRUE;
}

gboolean
table_rebuild(const char *spec, TableFlags flags, GError **error)
{
  const char *name = spec;
  g_autofree char *text = NULL;
  g_autoptr(GHashTable) map = NULL;
  g_autoptr(GError) local = NULL;

  if (g_str_has_prefix(name, "proxy:"))
    name += 6;
  const char *colon = strchr(name, ':');
  if (!colon || colon == name) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": expected type:name", spec);
    return FALSE;
  }
  gsize tlen = (gsize) (colon - name);
  const TableBackend *b = table_backend_find(name, tlen);
  if (!b) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": unsupported table type \"%.*s\"", spec, (int) tlen, name);
    return FALSE;
  }
  if (b != &table_backend_hash && b != &table_backend_cdb) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": table type %s needs no rebuild", spec, b->type);
    return FALSE;
  }
  const char *path = colon + 1;
  if (*path == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": missing file name", spec);
    return FALSE;
  }
  if (!g_file_get_contents(path, &text, NULL, &local)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "table \"%s\": %s", spec, local->message);
    return FALSE;
  }
  map = table_text_parse(path, text, flags, TRUE, error);
  if (!map)
    return FALSE;

  g_autofree char *target = g_strconcat(path, ".cdb", NULL);
  g_autofree char *tmp = g_strdup_printf("%s.tmp.%ld", target, (long) getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return table_rebuild_errno(error, "create", tmp);
  gboolean ok = table_rebuild_write(fd, tmp, map, error);
  if (close(fd) < 0 && ok)
    ok = table_rebuild_errno(error, "close", tmp);
  if (ok && rename(tmp, target) < 0)
    ok = table_rebuild_errno(error, "rename", tmp);
  if (!ok) {
    unlink(tmp);
    return FALSE;
  }
  return dirsync_parent(target, error);
}
