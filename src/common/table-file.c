/* table-file.c - file tables: texthash:, hash: and cdb: (source text).
 *
 * Reads the source text (postmap format "key value", or aliases(5) with
 * TABLE_ALIAS_SYNTAX) into a hash table and stats the file at most once
 * per second to notice a change of (dev, inode, size, mtime).  A file
 * that is missing or unreadable makes lookups TABLE_TEMPFAIL naming the
 * file, until it can be read: opening succeeds, as a Postfix daemon
 * starts with a missing map and defers mail until it appears.  Malformed
 * lines are skipped (postmap would warn; library code does not log).
 * hash: and cdb: read the same text until compiled tables exist.
 */
#include "table-private.h"
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define TABLE_CHECK_INTERVAL_US G_USEC_PER_SEC

/* "key value" (postmap source). */
static void
table_parse_plain(GHashTable *map, TableFlags flags, const char *line)
{
  const char *p = line;
  while (*p && !g_ascii_isspace(*p))
    p++;
  const char *v = p;
  while (g_ascii_isspace(*v))
    v++;
  if (p == line || *v == '\0')
    return;
  table_map_add(map, flags, g_strndup(line, (gsize) (p - line)), g_strchomp(g_strdup(v)));
}

/* "name: value, value" (aliases(5)); the name may be "quoted". */
static void
table_parse_alias(GHashTable *map, TableFlags flags, const char *line)
{
  const char *p = line;
  char *key;

  if (*p == '"') {
    GString *k = g_string_new(NULL);
    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && p[1])
        p++;
      g_string_append_c(k, *p);
    }
    if (*p != '"') {
      g_string_free(k, TRUE);
      return;
    }
    p++;
    while (g_ascii_isspace(*p))
      p++;
    if (*p != ':') {
      g_string_free(k, TRUE);
      return;
    }
    key = g_string_free(k, FALSE);
  } else {
    const char *colon = strchr(p, ':');
    if (!colon)
      return;
    key = g_strstrip(g_strndup(p, (gsize) (colon - p)));
    p = colon;
  }
  char *value = g_strstrip(g_strdup(p + 1));
  if (*value == '\0') {
    g_free(key);
    g_free(value);
    return;
  }
  table_map_add(map, flags, key, value);
}

/* Splits text into logical lines (comments and blank lines dropped, lines
 * starting with white space joined to the previous one) and parses them. */
static GHashTable *
table_parse_text(const char *text, TableFlags flags)
{
  GHashTable *map = table_map_new();
  GString *logical = g_string_new(NULL);
  const char *p = text;

  for (;;) {
    const char *eol = strchr(p, '\n');
    gsize len = eol ? (gsize) (eol - p) : strlen(p);
    const char *s = p;
    while (s < p + len && g_ascii_isspace(*s))
      s++;
    gboolean blank = s == p + len || *s == '#';
    gboolean cont = !blank && s != p;
    if (!blank && !cont) {
      if (logical->len > 0) {
        (flags & TABLE_ALIAS_SYNTAX ? table_parse_alias : table_parse_plain)(map, flags, logical->str);
      }
      g_string_truncate(logical, 0);
    }
    if (!blank) {
      gsize e = (gsize) (p + len - s);
      while (e > 0 && g_ascii_isspace(s[e - 1]))
        e--;
      if (!cont) {
        g_string_append_len(logical, s, (gssize) e);
      } else if (logical->len > 0) {
        g_string_append_c(logical, ' ');
        g_string_append_len(logical, s, (gssize) e);
      } /* else: a continuation without a first line is ignored */
    }
    if (!eol)
      break;
    p = eol + 1;
  }
  if (logical->len > 0)
    (flags & TABLE_ALIAS_SYNTAX ? table_parse_alias : table_parse_plain)(map, flags, logical->str);
  g_string_free(logical, TRUE);
  return map;
}

typedef struct {
  char *path;
  GHashTable *map;        /* NULL while the file cannot be read */
  char *error;            /* why map is NULL */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  gint64 checked_us;      /* monotonic time of the last stat, 0 = never */
} TableFile;

static gboolean
table_file_open(Table *table, const char *name, GError **error)
{
  if (*name == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": missing file name", table->spec);
    return FALSE;
  }
  TableFile *tf = g_new0(TableFile, 1);
  tf->path = g_strdup(name);
  table->data = tf;
  return TRUE;
}

static void
table_file_fail(TableFile *tf, const char *why)
{
  g_clear_pointer(&tf->map, g_hash_table_unref);
  g_free(tf->error);
  tf->error = g_strdup(why);
}

/* Reloads the file if its identity changed since the last load. */
static void
table_file_refresh(Table *table, TableFile *tf)
{
  struct stat st;
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;

  if (stat(tf->path, &st) < 0) {
    g_autofree char *why = g_strdup_printf("open %s: %s", tf->path, g_strerror(errno));
    table_file_fail(tf, why);
    return;
  }
  if (tf->map && st.st_dev == tf->dev && st.st_ino == tf->ino && st.st_size == tf->size
      && st.st_mtim.tv_sec == tf->mtime.tv_sec && st.st_mtim.tv_nsec == tf->mtime.tv_nsec)
    return;
  if (!g_file_get_contents(tf->path, &text, NULL, &local)) {
    table_file_fail(tf, local->message);
    return;
  }
  g_clear_pointer(&tf->map, g_hash_table_unref);
  g_clear_pointer(&tf->error, g_free);
  tf->map = table_parse_text(text, table->flags);
  tf->dev = st.st_dev;
  tf->ino = st.st_ino;
  tf->size = st.st_size;
  tf->mtime = st.st_mtim;
}

static TableResult
table_file_lookup(Table *table, const char *key, char **value, GError **error)
{
  TableFile *tf = table->data;
  gint64 now = g_get_monotonic_time();

  if (tf->checked_us == 0 || now - tf->checked_us >= TABLE_CHECK_INTERVAL_US) {
    tf->checked_us = now;
    table_file_refresh(table, tf);
  }
  if (!tf->map)
    return table_tempfail(error, table->spec, tf->error);
  const char *v = g_hash_table_lookup(tf->map, key);
  if (!v)
    return TABLE_NOTFOUND;
  *value = g_strdup(v);
  return TABLE_FOUND;
}

static void
table_file_free(Table *table)
{
  TableFile *tf = table->data;
  if (!tf)
    return;
  g_free(tf->path);
  g_free(tf->error);
  if (tf->map)
    g_hash_table_unref(tf->map);
  g_free(tf);
}

const TableBackend table_backend_texthash = {
  .type = "texthash", .open = table_file_open, .lookup = table_file_lookup, .free = table_file_free,
};
const TableBackend table_backend_hash = {
  .type = "hash", .open = table_file_open, .lookup = table_file_lookup, .free = table_file_free,
};
const TableBackend table_backend_cdb = {
  .type = "cdb", .open = table_file_open, .lookup = table_file_lookup, .free = table_file_free,
};
