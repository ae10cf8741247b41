/* table-static.c - tables held in the spec or the system: static:,
 * inline:{ k=v, ... } and unix:passwd.byname.
 *
 * inline: follows Postfix: items separated by commas or white space,
 * "{ key = text }" for values with spaces or commas; white space around
 * '=' is tolerated ("inline:{ k = v }").  unix: answers with the passwd
 * line "name:passwd:uid:gid:gecos:dir:shell"; a system error other than
 * "no such user" is TABLE_TEMPFAIL.
 */
#include "table-private.h"
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

/* ---- static:value ---- */

/* Strips one level of "{ ... }" and surrounding white space. */
static char *
table_unbrace(const char *text)
{
  char *s = g_strstrip(g_strdup(text));
  gsize n = strlen(s);
  if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
    s[n - 1] = '\0';
    char *inner = g_strstrip(g_strdup(s + 1));
    g_free(s);
    return inner;
  }
  return s;
}

static gboolean
table_static_open(Table *table, const char *name, GError **error)
{
  table->data = table_unbrace(name);
  return TRUE;
}

static TableResult
table_static_lookup(Table *table, const char *key, char **value, GError **error)
{
  *value = g_strdup(table->data);
  return TABLE_FOUND;
}

static void
table_static_free(Table *table)
{
  g_free(table->data);
}

/* ---- inline:{ k=v, { k = text }, ... } ---- */

/* Splits one comma-separated piece that is not braced: white space around
 * '=' is dropped, then white space separates "k=v" items. */
static gboolean
table_inline_plain(GHashTable *map, TableFlags flags, const char *piece, const char *spec,
                   GError **error)
{
  GString *norm = g_string_new(NULL);
  g_auto(GStrv) items = NULL;

  for (const char *p = piece; *p; p++) {
    if (g_ascii_isspace(*p)) {
      const char *q = p;
      while (g_ascii_isspace(*q))
        q++;
      gboolean near_eq = *q == '=' || (norm->len > 0 && norm->str[norm->len - 1] == '=');
      if (!near_eq && norm->len > 0 && *q)
        g_string_append_c(norm, ' ');
      p = q - 1;
    } else {
      g_string_append_c(norm, *p);
    }
  }
  items = g_strsplit(norm->str, " ", -1);
  g_string_free(norm, TRUE);
  for (char **it = items; *it; it++) {
    if (**it == '\0')
      continue;
    char *eq = strchr(*it, '=');
    if (!eq || eq == *it) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "table \"%s\": expected format: key=value, found \"%s\"", spec, *it);
      return FALSE;
    }
    table_map_add(map, flags, g_strndup(*it, (gsize) (eq - *it)), g_strdup(eq + 1));
  }
  return TRUE;
}

/* "{ key = text with spaces }" item. */
static gboolean
table_inline_braced(GHashTable *map, TableFlags flags, const char *item, const char *spec,
                    GError **error)
{
  g_autofree char *body = table_unbrace(item);
  char *eq = strchr(body, '=');
  if (!eq) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": expected format: { key = value }, found \"%s\"", spec, item);
    return FALSE;
  }
  *eq = '\0';
  char *key = g_strstrip(g_strdup(body));
  if (*key == '\0') {
    g_free(key);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": empty key in \"%s\"", spec, item);
    return FALSE;
  }
  table_map_add(map, flags, key, g_strstrip(g_strdup(eq + 1)));
  return TRUE;
}

static gboolean
table_inline_open(Table *table, const char *name, GError **error)
{
  g_autoptr(GHashTable) map = table_map_new();
  g_autofree char *trimmed = g_strstrip(g_strdup(name));
  gsize n = strlen(trimmed);

  if (n < 2 || trimmed[0] != '{' || trimmed[n - 1] != '}') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": expected inline:{ key=value, ... }", table->spec);
    return FALSE;
  }
  trimmed[n - 1] = '\0';
  /* Items: a "{ ... }" group, or text up to the next comma or brace. */
  const char *p = trimmed + 1;
  while (*p) {
    while (*p == ',' || g_ascii_isspace(*p))
      p++;
    if (!*p)
      break;
    const char *start = p;
    gboolean balanced = TRUE;
    if (*p == '{') {
      int depth = 0;
      for (; *p; p++) {
        if (*p == '{')
          depth++;
        else if (*p == '}' && --depth == 0)
          break;
      }
      balanced = *p == '}';
      if (balanced)
        p++;
    } else {
      while (*p && *p != ',' && *p != '{' && *p != '}')
        p++;
      balanced = *p != '}';
    }
    if (!balanced) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "table \"%s\": unbalanced braces", table->spec);
      return FALSE;
    }
    g_autofree char *piece = g_strstrip(g_strndup(start, (gsize) (p - start)));
    gboolean ok = piece[0] == '{'
      ? table_inline_braced(map, table->flags, piece, table->spec, error)
      : table_inline_plain(map, table->flags, piece, table->spec, error);
    if (!ok)
      return FALSE;
  }
  table->data = g_steal_pointer(&map);
  return TRUE;
}

static TableResult
table_inline_lookup(Table *table, const char *key, char **value, GError **error)
{
  const char *v = g_hash_table_lookup(table->data, key);
  if (!v)
    return TABLE_NOTFOUND;
  *value = g_strdup(v);
  return TABLE_FOUND;
}

static void
table_inline_free(Table *table)
{
  if (table->data)
    g_hash_table_unref(table->data);
}

/* ---- unix:passwd.byname ---- */

static gboolean
table_unix_open(Table *table, const char *name, GError **error)
{
  if (strcmp(name, "passwd.byname") != 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": unsupported unix map (only passwd.byname)", table->spec);
    return FALSE;
  }
  return TRUE;
}

static TableResult
table_unix_lookup(Table *table, const char *key, char **value, GError **error)
{
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  gsize size = hint > 0 ? (gsize) hint : 16384;
  struct passwd pw, *result = NULL;
  int rc;

  for (;;) {
    g_autofree char *buf = g_malloc(size);
    rc = getpwnam_r(key, &pw, buf, size, &result);
    if (rc == ERANGE && size < 1024 * 1024) {
      size *= 2;
      continue;
    }
    if (rc == 0 && result) {
      *value = g_strdup_printf("%s:%s:%u:%u:%s:%s:%s", pw.pw_name, pw.pw_passwd,
                               (unsigned) pw.pw_uid, (unsigned) pw.pw_gid,
                               pw.pw_gecos ? pw.pw_gecos : "", pw.pw_dir, pw.pw_shell);
      return TABLE_FOUND;
    }
    break;
  }
  if (rc == 0 || rc == ENOENT || rc == ESRCH)
    return TABLE_NOTFOUND;
  return table_tempfail(error, table->spec, g_strerror(rc));
}

const TableBackend table_backend_static = {
  .type = "static", .open = table_static_open, .lookup = table_static_lookup, .free = table_static_free,
};
const TableBackend table_backend_inline = {
  .type = "inline", .open = table_inline_open, .lookup = table_inline_lookup, .free = table_inline_free,
};
const TableBackend table_backend_unix = {
  .type = "unix", .open = table_unix_open, .lookup = table_unix_lookup, .free = NULL,
};
