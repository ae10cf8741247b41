/* table-mysql.h - the pure parts of the mysql: table (table-mysql-expand.c),
 * separate from the connection code so unit tests need no server.
 *
 * Postfix mysql_table(5) expansion: in a query, %s is the key, %u its
 * local part (the whole key when it has no '@'), %d its domain, %1..%9 the
 * domain labels counted from the right, %% a '%'.  Every expanded value
 * passes through the escape function (mysql_real_escape_string on the live
 * connection); the template's own text is copied as is.  In result_format
 * the same letters apply to the column value, without escaping.
 */
#pragma once

#include <glib.h>

typedef enum {
  TABLE_MYSQL_EXPANDED = 0,
  TABLE_MYSQL_SKIP,     /* %d, %1.. on a key without them: no query, NOTFOUND */
} TableMysqlExpand;

/* Returns a newly allocated escaped copy of raw (len bytes). */
typedef char *(*TableMysqlEscapeFunc)(const char *raw, gsize len, gpointer data);

/* Appends the expansion of fmt for value to out; escape may be NULL (copy
 * raw).  An unknown "%x" is a POSTERN_ERROR_CONFIG error (returns FALSE). */
gboolean table_mysql_expand(GString *out, const char *fmt, const char *value,
                            TableMysqlEscapeFunc escape, gpointer data,
                            TableMysqlExpand *result, GError **error);

/* Escapes as mysql_real_escape_string does without a connection (NUL, \n,
 * \r, \\, ', ", ^Z get a backslash); the unit tests' reference. */
char *table_mysql_escape_plain(const char *raw, gsize len, gpointer data);

/* Splits a "hosts" value (white space or commas) into a NULL-terminated
 * vector of items. */
char **table_mysql_split_list(const char *value);

/* A hosts item: "host", "host:port", "inet:host:port", "unix:/path" or
 * "/path".  Sets host (NULL for a socket), port (0 = default) and socket. */
gboolean table_mysql_parse_host(const char *item, char **host, guint *port, char **socket,
                                GError **error);
