/* table-file.c - source text of file tables: the postmap / aliases(5)
 * parser, and the texthash: backend that reads that text into memory.
 *
 * The parser (table_text_parse) is shared by texthash:, by the hash:/cdb:
 * fallback when no .cdb exists, and by table_rebuild.  Lookups read the
 * text into a hash table and stat the file at most once per second to
 * notice a change of (dev, inode, size, mtime).  A file that is missing
 * or unreadable makes lookups TABLE_TEMPFAIL naming the file, until it
 * can be read: opening succeeds, as a Postfix daemon starts with a
 * missing map and defers mail until it appears.  When loading for
 * lookups, malformed lines are skipped (postmap would warn; library code
 * does not log); table_rebuild parses strictly and fails with PATH:LINE.
 */
#include "table-private.h"
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define TABLE_CHECK_INTERVAL_US G_USEC_PER_SEC

typedef struct {
  const char *path;
  GHashTable *map;
  TableFlags flags;
  gboolean strict;
} TableTextParse;

/* "key value" (postmap source). */
static gboolean
table_parse_plain(TableTextParse *tp, const char *line, guint lineno, GError **error)
{
  const char *p = line;
  while (*p && !g_ascii_isspace(*p))
    p++;
  const char *v = p;
  while (g_ascii_isspace(*v))
    v++;
  if (p == line || *v == '\0') {
    return !tp->strict
      || table_source_syntax(error, tp->path, lineno, "expected format: key whitespace value");
  }
  table_map_add(tp->map, tp->flags, g_strndup(line, (gsize) (p - line)), g_strchomp(g_strdup(v)));
  return TRUE;
}

/* "name: value, value" (aliases(5)); the name may be "quoted". */
static gboolean
table_parse_alias(TableTextParse *tp, const char *line, guint lineno, GError **error)
{
  const char *p = line;
  char *key;

  if (*p == '"') {
    g_autoptr(GString) k = g_string_new(NULL);
    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && p[1])
        p++;
      g_string_append_c(k, *p);
    }
    if (*p != '"')
      return !tp->strict || table_source_syntax(error, tp->path, lineno, "unterminated quoted name");
    p++;
    while (g_ascii_isspace(*p))
      p++;
    if (*p != ':')
      return !tp->strict || table_source_syntax(error, tp->path, lineno, "expected \":\" after the name");
    key = g_string_free(g_steal_pointer(&k), FALSE);
  } else {
    const char *colon = strchr(p, ':');
    if (!colon)
      return !tp->strict || table_source_syntax(error, tp->path, lineno, "expected format: name: value");
    key = g_strstrip(g_strndup(p, (gsize) (colon - p)));
    p = colon;
  }
  char *value = g_strstrip(g_strdup(p + 1));
  if (*value == '\0' || *key == '\0') {
    gboolean empty_key = *key == '\0';
    g_free(key);
    g_free(value);
    return !tp->strict
      || table_source_syntax(error, tp->path, lineno, empty_key ? "missing name" : "missing value");
  }
  table_map_add(tp->map, tp->flags, key, value);
  return TRUE;
}

static gboolean
table_parse_line(const char *line, guint lineno, gpointer data, GError **error)
{
  TableTextParse *tp = data;
  if (tp->flags & TABLE_ALIAS_SYNTAX)
    return table_parse_alias(tp, line, lineno, error);
  return table_parse_plain(tp, line, lineno, error);
}

GHashTable *
table_text_parse(const char *path, const char *text, TableFlags flags, gboolean strict, GError **error)
{
  TableTextParse tp = { .path = path, .map = table_map_new(), .flags = flags, .strict = strict };
  if (!table_source_lines(text, table_parse_line, &tp, error)) {
    g_hash_table_unref(tp.map);
    return NULL;
  }
  return tp.map;
}

struct _TableText {
  char *path;
  GHashTable *map;        /* NULL while the file cannot be read */
  char *error;            /* why map is NULL */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  gint64 checked_us;      /* monotonic time of the last stat, 0 = never */
};

TableText *
table_text_new(const char *path)
{
  TableText *tt = g_new0(TableText, 1);
  tt->path = g_strdup(path);
  return tt;
}

void
table_text_free(TableText *tt)
{
  if (!tt)
    return;
  g_free(tt->path);
  g_free(tt->error);
  if (tt->map)
    g_hash_table_unref(tt->map);
  g_free(tt);
}

static void
table_text_fail(TableText *tt, const char *why)
{
  g_clear_pointer(&tt->map, g_hash_table_unref);
  g_free(tt->error);
  tt->error = g_strdup(why);
}

/* Reloads the file if its identity changed since the last load. */
static void
table_text_refresh(TableText *tt, TableFlags flags)
{
  struct stat st;
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;

  if (stat(tt->path, &st) < 0) {
    g_autofree char *why = g_strdup_printf("open %s: %s", tt->path, g_strerror(errno));
    table_text_fail(tt, why);
    return;
  }
  if (tt->map && st.st_dev == tt->dev && st.st_ino == tt->ino && st.st_size == tt->size
      && st.st_mtim.tv_sec == tt->mtime.tv_sec && st.st_mtim.tv_nsec == tt->mtime.tv_nsec)
    return;
  if (!g_file_get_contents(tt->path, &text, NULL, &local)) {
    table_text_fail(tt, local->message);
    return;
  }
  g_clear_pointer(&tt->map, g_hash_table_unref);
  g_clear_pointer(&tt->error, g_free);
  tt->map = table_text_parse(tt->path, text, flags, FALSE, NULL);
  tt->dev = st.st_dev;
  tt->ino = st.st_ino;
  tt->size = st.st_size;
  tt->mtime = st.st_mtim;
}

TableResult
table_text_lookup(TableText *tt, const Table *table, const char *key, char **value, GError **error)
{
  gint64 now = g_get_monotonic_time();

  if (tt->checked_us == 0 || now - tt->checked_us >= TABLE_CHECK_INTERVAL_US) {
    tt->checked_us = now;
    table_text_refresh(tt, table->flags);
  }
  if (!tt->map)
    return table_tempfail(error, table->spec, tt->error);
  const char *v = g_hash_table_lookup(tt->map, key);
  if (!v)
    return TABLE_NOTFOUND;
  *value = g_strdup(v);
  return TABLE_FOUND;
}

static gboolean
table_texthash_open(Table *table, const char *name, GError **error)
{
  if (*name == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": missing file name", table->spec);
    return FALSE;
  }
  table->data = table_text_new(name);
  return TRUE;
}

static TableResult
table_texthash_lookup(Table *table, const char *key, char **value, GError **error)
{
  return table_text_lookup(table->data, table, key, value, error);
}

static void
table_texthash_free(Table *table)
{
  table_text_free(table->data);
}

const TableBackend table_backend_texthash = {
  .type = "texthash", .open = table_texthash_open, .lookup = table_texthash_lookup,
  .free = table_texthash_free,
};
