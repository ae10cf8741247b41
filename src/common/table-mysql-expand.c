/* table-mysql-expand.c - %-expansion, escaping and host parsing for the
 * mysql: table (see table-mysql.h); no server needed.
 */
#include "table-mysql.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

/* Appends value escaped (or raw when escape is NULL). */
static void
expand_append(GString *out, const char *value, gsize len, TableMysqlEscapeFunc escape,
              gpointer data)
{
  if (!escape) {
    g_string_append_len(out, value, (gssize) len);
    return;
  }
  g_autofree char *e = escape(value, len, data);
  g_string_append(out, e);
}

gboolean
table_mysql_expand(GString *out, const char *fmt, const char *value,
                   TableMysqlEscapeFunc escape, gpointer data,
                   TableMysqlExpand *result, GError **error)
{
  const char *at = strrchr(value, '@');
  const char *domain = at ? at + 1 : NULL;
  gsize local_len = at ? (gsize) (at - value) : strlen(value);

  *result = TABLE_MYSQL_EXPANDED;
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      g_string_append_c(out, *p);
      continue;
    }
    char c = *++p;
    if (c == '%') {
      g_string_append_c(out, '%');
    } else if (c == 's') {
      expand_append(out, value, strlen(value), escape, data);
    } else if (c == 'u') {
      if (local_len == 0)
        *result = TABLE_MYSQL_SKIP;
      else
        expand_append(out, value, local_len, escape, data);
    } else if (c == 'd') {
      if (!domain || !*domain)
        *result = TABLE_MYSQL_SKIP;
      else
        expand_append(out, domain, strlen(domain), escape, data);
    } else if (c >= '1' && c <= '9') {
      /* %1 is the rightmost label of the domain. */
      g_auto(GStrv) labels = domain && *domain ? g_strsplit(domain, ".", -1) : NULL;
      guint n = labels ? g_strv_length(labels) : 0, want = (guint) (c - '0');
      if (want > n || !*labels[n - want])
        *result = TABLE_MYSQL_SKIP;
      else
        expand_append(out, labels[n - want], strlen(labels[n - want]), escape, data);
    } else {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "invalid %% sequence \"%%%c\" in \"%s\"", c ? c : ' ', fmt);
      return FALSE;
    }
  }
  return TRUE;
}

char *
table_mysql_escape_plain(const char *raw, gsize len, gpointer data)
{
  GString *s = g_string_sized_new(len * 2 + 1);
  for (gsize i = 0; i < len; i++) {
    switch (raw[i]) {
    case '\0': g_string_append(s, "\\0"); break;
    case '\n': g_string_append(s, "\\n"); break;
    case '\r': g_string_append(s, "\\r"); break;
    case '\032': g_string_append(s, "\\Z"); break;
    case '\\': case '\'': case '"':
      g_string_append_c(s, '\\');
      g_string_append_c(s, raw[i]);
      break;
    default: g_string_append_c(s, raw[i]);
    }
  }
  return g_string_free(s, FALSE);
}

char **
table_mysql_split_list(const char *value)
{
  GPtrArray *items = g_ptr_array_new();
  const char *p = value;

  while (*p) {
    while (*p == ',' || g_ascii_isspace(*p))
      p++;
    const char *start = p;
    while (*p && *p != ',' && !g_ascii_isspace(*p))
      p++;
    if (p > start)
      g_ptr_array_add(items, g_strndup(start, (gsize) (p - start)));
  }
  g_ptr_array_add(items, NULL);
  return (char **) g_ptr_array_free(items, FALSE);
}

gboolean
table_mysql_parse_host(const char *item, char **host, guint *port, char **socket, GError **error)
{
  *host = NULL;
  *socket = NULL;
  *port = 0;
  if (g_str_has_prefix(item, "unix:") || item[0] == '/') {
    const char *path = item[0] == '/' ? item : item + 5;
    if (*path != '/')
      goto bad;
    *socket = g_strdup(path);
    return TRUE;
  }
  if (g_str_has_prefix(item, "inet:"))
    item += 5;
  const char *colon = strrchr(item, ':');
  if (colon) {
    char *end = NULL;
    unsigned long n = strtoul(colon + 1, &end, 10);
    if (colon == item || !colon[1] || *end || n == 0 || n > 65535)
      goto bad;
    *port = (guint) n;
    *host = g_strndup(item, (gsize) (colon - item));
  } else {
    if (!*item)
      goto bad;
    *host = g_strdup(item);
  }
  return TRUE;
bad:
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "invalid hosts item \"%s\"", item);
  return FALSE;
}
