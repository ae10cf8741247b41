/* table-mysql.c - the mysql: table, Postfix mysql_table(5).
 *
 * mysql:/path/file.cf names a file of "name = value" lines: hosts (tried
 * in order; "host", "host:port", "unix:/socket"), user, password, dbname,
 * query, result_format, domain, expansion_limit.  Lookups run in
 * several threads at once, each on a connection of its own taken from the
 * table's pool of idle ones (opened when none is idle, at most
 * TABLE_MYSQL_POOL_MAX kept), so one slow query never holds up the
 * others, as each Postfix process has its own connection.  A failed query
 * closes its connection and tries the hosts once more (a server
 * restart); a server that cannot be reached or a query that fails is
 * TABLE_TEMPFAIL, never "not found".  Key values reach SQL only through
 * mysql_real_escape_string (table-mysql-expand.c).
 */
#include "table-private.h"
#include "table-mysql.h"
#include "config.h"

#include <mysql.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MYSQL_TIMEOUT 5    /* seconds: connect, read, write */
#define TABLE_MYSQL_POOL_MAX 16  /* idle connections kept per table */

typedef struct {
  char *path;
  char **hosts;
  char *user;
  char *password;
  char *dbname;
  char *query;
  char *result_format;
  char **domains;           /* NULL: every key */
  guint expansion_limit;    /* 0: no limit */
  GMutex lock;              /* guards idle */
  GPtrArray *idle;          /* MYSQL*: connected, not in use */
} TableMysql;

static void
table_mysql_data_free(TableMysql *m)
{
  for (guint i = 0; m->idle && i < m->idle->len; i++)
    mysql_close(m->idle->pdata[i]);
  g_clear_pointer(&m->idle, g_ptr_array_unref);
  g_mutex_clear(&m->lock);
  g_strfreev(m->hosts);
  g_strfreev(m->domains);
  g_free(m->path);
  g_free(m->user);
  if (m->password)
    memset(m->password, 0, strlen(m->password));
  g_free(m->password);
  g_free(m->dbname);
  g_free(m->query);
  g_free(m->result_format);
  g_free(m);
}

/* mysql_library_init is not thread-safe: once per process. */
static gboolean
table_mysql_library_init(void)
{
  static gsize once = 0;
  static gboolean ok = FALSE;
  if (g_once_init_enter(&once)) {
    ok = mysql_library_init(0, NULL, NULL) == 0;
    g_once_init_leave(&once, 1);
  }
  return ok;
}

/* One "name = value" line of the .cf file. */
static gboolean
table_mysql_line(const char *line, guint lineno, gpointer data, GError **error)
{
  TableMysql *m = data;
  const char *eq = strchr(line, '=');
  if (!eq)
    return table_source_syntax(error, m->path, lineno, "expected \"name = value\"");
  g_autofree char *name = g_strstrip(g_strndup(line, (gsize) (eq - line)));
  char *value = g_strstrip(g_strdup(eq + 1));
  char **slot = NULL;

  if (strcmp(name, "hosts") == 0) {
    g_strfreev(m->hosts);
    m->hosts = table_mysql_split_list(value);
    for (char **h = m->hosts; *h; h++) {
      g_autofree char *host = NULL, *sock = NULL;
      guint port;
      g_autoptr(GError) local = NULL;
      if (!table_mysql_parse_host(*h, &host, &port, &sock, &local)) {
        g_free(value);
        return table_source_syntax(error, m->path, lineno, "%s", local->message);
      }
    }
    g_free(value);
    return TRUE;
  }
  if (strcmp(name, "domain") == 0) {
    g_strfreev(m->domains);
    m->domains = table_mysql_split_list(value);
    g_free(value);
    return TRUE;
  }
  if (strcmp(name, "expansion_limit") == 0) {
    char *end = NULL;
    unsigned long n = strtoul(value, &end, 10);
    gboolean bad = !*value || *end || n > G_MAXUINT;
    g_free(value);
    if (bad)
      return table_source_syntax(error, m->path, lineno, "expansion_limit: expected a number");
    m->expansion_limit = (guint) n;
    return TRUE;
  }
  if (strcmp(name, "user") == 0)
    slot = &m->user;
  else if (strcmp(name, "password") == 0)
    slot = &m->password;
  else if (strcmp(name, "dbname") == 0)
    slot = &m->dbname;
  else if (strcmp(name, "query") == 0)
    slot = &m->query;
  else if (strcmp(name, "result_format") == 0)
    slot = &m->result_format;
  if (slot) {
    g_free(*slot);
    *slot = value;
  } else {
    g_free(value);   /* other mysql_table(5) settings (tls_*, option_file) are ignored */
  }
  return TRUE;
}

/* Checks a template's % sequences once, at open. */
static gboolean
table_mysql_check_format(TableMysql *m, const char *name, const char *fmt, GError **error)
{
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GError) local = NULL;
  TableMysqlExpand r;
  if (table_mysql_expand(out, fmt, "u@d", NULL, NULL, &r, &local))
    return TRUE;
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: %s: %s", m->path, name,
              local->message);
  return FALSE;
}

static gboolean
table_mysql_open(Table *table, const char *name, GError **error)
{
  g_autofree char *text = NULL;
  TableMysql *m;

  if (!table_mysql_library_init()) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "table \"%s\": cannot initialise the MySQL client library", table->spec);
    return FALSE;
  }
  if (!g_file_get_contents(name, &text, NULL, error)) {
    g_prefix_error(error, "table \"%s\": ", table->spec);
    return FALSE;
  }
  m = g_new0(TableMysql, 1);
  g_mutex_init(&m->lock);
  m->idle = g_ptr_array_new();
  m->path = g_strdup(name);
  if (!table_source_lines(text, table_mysql_line, m, error))
    goto fail;
  if (!m->query || !*m->query) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: missing \"query\"", name);
    goto fail;
  }
  if (!m->hosts || !m->hosts[0]) {
    g_strfreev(m->hosts);
    m->hosts = table_mysql_split_list("localhost");
  }
  if (!m->result_format)
    m->result_format = g_strdup("%s");
  if (!table_mysql_check_format(m, "query", m->query, error) ||
      !table_mysql_check_format(m, "result_format", m->result_format, error))
    goto fail;
  table->data = m;
  return TRUE;
fail:
  table_mysql_data_free(m);
  return FALSE;
}

/* Connects to the first host that answers; the last error goes to why. */
static MYSQL *
table_mysql_connect(TableMysql *m, char **why)
{
  unsigned int timeout = TABLE_MYSQL_TIMEOUT;
  my_bool off = 0;

  for (char **h = m->hosts; *h; h++) {
    g_autofree char *host = NULL, *sock = NULL;
    guint port = 0;
    if (!table_mysql_parse_host(*h, &host, &port, &sock, NULL))
      continue;
    MYSQL *conn = mysql_init(NULL);
    if (!conn) {
      g_free(*why);
      *why = g_strdup("out of memory");
      return NULL;
    }
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    mysql_options(conn, MYSQL_OPT_RECONNECT, &off);
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(conn, sock ? "localhost" : host, m->user, m->password, m->dbname,
                           port, sock, 0))
      return conn;
    g_free(*why);
    *why = g_strdup_printf("cannot connect to %s: %s", *h, mysql_error(conn));
    mysql_close(conn);
  }
  return NULL;
}

/* An idle connection of the pool, or NULL when none is. */
static MYSQL *
table_mysql_take(TableMysql *m)
{
  g_mutex_lock(&m->lock);
  MYSQL *conn = m->idle->len > 0 ? g_ptr_array_steal_index_fast(m->idle, m->idle->len - 1)
                                 : NULL;
  g_mutex_unlock(&m->lock);
  return conn;
}

/* Gives a healthy connection back to the pool (or closes it when the
 * pool is full). */
static void
table_mysql_give_back(TableMysql *m, MYSQL *conn)
{
  g_mutex_lock(&m->lock);
  gboolean keep = m->idle->len < TABLE_MYSQL_POOL_MAX;
  if (keep)
    g_ptr_array_add(m->idle, conn);
  g_mutex_unlock(&m->lock);
  if (!keep)
    mysql_close(conn);
}

static char *
table_mysql_escape(const char *raw, gsize len, gpointer data)
{
  char *out = g_malloc(len * 2 + 1);
  mysql_real_escape_string(data, out, raw, (unsigned long) len);
  return out;
}

/* Runs the query on a live connection: FALSE with why on a failure. */
static gboolean
table_mysql_run(TableMysql *m, MYSQL *conn, const char *key, MYSQL_RES **res, gboolean *skip,
                char **why)
{
  g_autoptr(GString) sql = g_string_new(NULL);
  TableMysqlExpand r;

  *res = NULL;
  *skip = FALSE;
  if (!table_mysql_expand(sql, m->query, key, table_mysql_escape, conn, &r, NULL)) {
    *why = g_strdup("invalid query template");
    return FALSE;
  }
  if (r == TABLE_MYSQL_SKIP) {
    *skip = TRUE;
    return TRUE;
  }
  if (mysql_real_query(conn, sql->str, sql->len) != 0 || !(*res = mysql_store_result(conn))) {
    if (!*res && mysql_errno(conn) == 0) {
      *why = g_strdup("query returned no result set");
      return FALSE;
    }
    *why = g_strdup_printf("query failed: %s", mysql_error(conn));
    return FALSE;
  }
  return TRUE;
}

/* Postfix's domain filter: only user@listed-domain keys are looked up. */
static gboolean
table_mysql_domain_ok(TableMysql *m, const char *key)
{
  if (!m->domains)
    return TRUE;
  const char *at = strrchr(key, '@');
  if (!at || at == key)
    return FALSE;
  for (char **d = m->domains; *d; d++) {
    if (g_ascii_strcasecmp(at + 1, *d) == 0)
      return TRUE;
  }
  return FALSE;
}

static TableResult
table_mysql_lookup(Table *table, const char *key, char **value, GError **error)
{
  TableMysql *m = table->data;
  g_autofree char *why = NULL;
  MYSQL_RES *res = NULL;
  gboolean skip = FALSE, ok = FALSE;

  if (!table_mysql_domain_ok(m, key))
    return TABLE_NOTFOUND;
  /* A failed query may be a server that went away: one fresh connection
   * (an idle one is not trusted: it may have gone away too). */
  for (int attempt = 0; attempt < 2 && !ok; attempt++) {
    g_clear_pointer(&why, g_free);
    MYSQL *conn = attempt == 0 ? table_mysql_take(m) : NULL;
    if (conn == NULL && (conn = table_mysql_connect(m, &why)) == NULL)
      break;
    ok = table_mysql_run(m, conn, key, &res, &skip, &why);
    if (ok)
      table_mysql_give_back(m, conn);
    else
      mysql_close(conn);
  }
  if (!ok)
    return table_tempfail(error, table->spec, why ? why : "no usable host");
  if (skip)
    return TABLE_NOTFOUND;

  g_autoptr(GString) out = g_string_new(NULL);
  guint count = 0, ncols = mysql_num_fields(res);
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(res))) {
    unsigned long *lens = mysql_fetch_lengths(res);
    for (guint i = 0; i < ncols; i++) {
      if (!row[i] || lens[i] == 0)
        continue;
      g_autofree char *v = g_strndup(row[i], lens[i]);
      g_autoptr(GString) one = g_string_new(NULL);
      TableMysqlExpand r;
      if (!table_mysql_expand(one, m->result_format, v, NULL, NULL, &r, NULL) ||
          r == TABLE_MYSQL_SKIP)
        continue;
      if (m->expansion_limit && ++count > m->expansion_limit) {
        mysql_free_result(res);
        g_autofree char *msg = g_strdup_printf("more than expansion_limit=%u results for \"%s\"",
                                               m->expansion_limit, key);
        return table_tempfail(error, table->spec, msg);
      }
      if (out->len)
        g_string_append_c(out, ',');
      g_string_append_len(out, one->str, (gssize) one->len);
    }
  }
  mysql_free_result(res);
  if (out->len == 0)
    return TABLE_NOTFOUND;
  *value = g_string_free(g_steal_pointer(&out), FALSE);
  return TABLE_FOUND;
}

static void
table_mysql_free(Table *table)
{
  if (table->data)
    table_mysql_data_free(table->data);
}

const TableBackend table_backend_mysql = {
  .type = "mysql", .open = table_mysql_open, .lookup = table_mysql_lookup, .free = table_mysql_free,
  .concurrent = TRUE,
};
