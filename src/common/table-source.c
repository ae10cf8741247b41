/* table-source.c - the source file of a pattern table (cidr:, regexp:,
 * pcre:): noticing that it changed, parsing it again, and splitting it
 * into logical lines.
 *
 * The file is stat()ed at most once a second; a new (dev, inode, size,
 * mtime) means it is read and parsed again.  A file that cannot be read,
 * or whose new version has a syntax error, makes lookups TABLE_TEMPFAIL
 * with the reason (never "not found", and never a half-applied rule set).
 * Never logs.
 */
#include "table-private.h"
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define TABLE_SOURCE_CHECK_INTERVAL_US G_USEC_PER_SEC

/* Sets *text (newly allocated) when the file is new or changed, NULL when
 * not; FALSE with a POSTERN_ERROR_TEMPORARY error when it cannot be read. */
static gboolean
table_source_poll(TableSource *src, char **text, GError **error)
{
  struct stat st;
  gint64 now = g_get_monotonic_time();

  *text = NULL;
  if (src->loaded && now - src->checked_us < TABLE_SOURCE_CHECK_INTERVAL_US)
    return TRUE;
  src->checked_us = now;
  if (stat(src->path, &st) < 0) {
    int e = errno;
    src->loaded = FALSE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "open %s: %s", src->path, g_strerror(e));
    return FALSE;
  }
  if (src->loaded && st.st_dev == src->dev && st.st_ino == src->ino && st.st_size == src->size
      && st.st_mtim.tv_sec == src->mtime.tv_sec && st.st_mtim.tv_nsec == src->mtime.tv_nsec)
    return TRUE;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(src->path, text, NULL, &local)) {
    src->loaded = FALSE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", local->message);
    return FALSE;
  }
  src->loaded = TRUE;
  src->dev = st.st_dev;
  src->ino = st.st_ino;
  src->size = st.st_size;
  src->mtime = st.st_mtim;
  return TRUE;
}

/* Polls the file and reparses it if it changed; the error of a syntax
 * error is returned (with FALSE), that of an unreadable file only kept. */
static gboolean
table_source_refresh(TableSource *src, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;

  if (!table_source_poll(src, &text, &local)) {
    g_clear_pointer(&src->rules, src->free_rules);
    g_free(src->error);
    src->error = g_strdup(local->message);
    return TRUE;
  }
  if (!text)
    return TRUE;
  g_clear_pointer(&src->rules, src->free_rules);
  g_clear_pointer(&src->error, g_free);
  src->rules = src->parse(src->path, text, src->ctx, &local);
  if (!src->rules) {
    src->error = g_strdup(local->message);
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  return TRUE;
}

TableSource *
table_source_new(const char *spec, const char *path, TableParseFunc parse, gpointer ctx,
                 GDestroyNotify free_rules, GError **error)
{
  if (*path == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "table \"%s\": missing file name", spec);
    return NULL;
  }
  TableSource *src = g_new0(TableSource, 1);
  src->path = g_strdup(path);
  src->parse = parse;
  src->ctx = ctx;
  src->free_rules = free_rules;
  if (!table_source_refresh(src, error)) {
    table_source_free(src);
    return NULL;
  }
  return src;
}

void
table_source_free(TableSource *src)
{
  if (!src)
    return;
  if (src->rules)
    src->free_rules(src->rules);
  g_free(src->error);
  g_free(src->path);
  g_free(src);
}

gpointer
table_source_rules(TableSource *src, const char *spec, GError **error)
{
  table_source_refresh(src, NULL);
  if (!src->rules)
    table_tempfail(error, spec, src->error ? src->error : "not loaded");
  return src->rules;
}

gboolean
table_source_syntax(GError **error, const char *path, guint lineno, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s:%u: %s", path, lineno, why);
  return FALSE;
}

gboolean
table_source_lines(const char *text, TableLineFunc fn, gpointer data, GError **error)
{
  g_autoptr(GString) logical = g_string_new(NULL);
  guint lineno = 0, first = 0;
  const char *p = text;

  for (;;) {
    const char *eol = strchr(p, '\n');
    gsize len = eol ? (gsize) (eol - p) : strlen(p);
    const char *s = p;
    lineno++;
    while (s < p + len && g_ascii_isspace(*s))
      s++;
    gboolean blank = s == p + len || *s == '#';
    gboolean cont = !blank && s != p && logical->len > 0;
    if (!blank && !cont) {
      if (logical->len > 0 && !fn(logical->str, first, data, error))
        return FALSE;
      g_string_truncate(logical, 0);
      first = lineno;
    }
    if (!blank) {
      gsize e = (gsize) (p + len - s);
      while (e > 0 && g_ascii_isspace(s[e - 1]))
        e--;
      if (cont)
        g_string_append_c(logical, ' ');
      g_string_append_len(logical, s, (gssize) e);
    }
    if (!eol)
      break;
    p = eol + 1;
  }
  return logical->len == 0 || fn(logical->str, first, data, error);
}
