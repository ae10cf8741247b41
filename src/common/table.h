/* table.h - lookup tables "type:name", as Postfix's dict(3).
 *
 * Backends are vtables (table-*.c in later work); this first set holds:
 *   texthash:/path  "key value" lines, read into memory
 *   hash:/path, cdb:/path   /path.cdb compiled from the source text
 *                   /path by table_rebuild (tinycdb); while no .cdb
 *                   exists the source text is read as texthash: does
 *   static:value    every key maps to value
 *   inline:{ k=v, k2=v2 }
 *   unix:passwd.byname   system users (getpwnam_r)
 * With TABLE_ALIAS_SYNTAX, file tables read aliases(5) syntax
 * ("name: value, value" with continuation lines).
 *
 * Lookups are thread-safe.  File tables notice when their file changed
 * (mtime/size/inode) and reload before the next lookup.  A table that
 * cannot be read is TABLE_TEMPFAIL, never "not found".
 */
#pragma once

#include <glib.h>

typedef enum {
  TABLE_NOTFOUND = 0,
  TABLE_FOUND,
  TABLE_TEMPFAIL,
} TableResult;

typedef enum {
  TABLE_FOLD_CASE    = 1 << 0,   /* lower-case keys (default for most) */
  TABLE_ALIAS_SYNTAX = 1 << 1,   /* aliases(5) source syntax */
} TableFlags;

typedef struct _Table Table;

Table *table_open(const char *spec, TableFlags flags, GError **error);
void table_free(Table *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Table, table_free)
const char *table_spec(const Table *table);
/* The table types this build knows, sorted (postconf -m); the strings
 * are static, the array the caller's. */
GPtrArray *table_types(void);
/* TRUE for pattern tables (cidr:, regexp:, pcre:).  Postfix asks them
 * only about whole keys (an address, a host name), never about partial
 * ones (parent domains, address prefixes, user@): DICT_FLAG_PATTERN. */
gboolean table_is_pattern(const Table *table);

/* *value newly allocated when TABLE_FOUND.  error set for TEMPFAIL. */
TableResult table_lookup(Table *table, const char *key, char **value, GError **error);

/* Compiles the source text of a hash:/cdb: table into PATH.cdb (temp file,
 * fsync, rename, directory fsync: atomic).  A malformed line is a
 * POSTERN_ERROR_CONFIG "PATH:LINE: why" error and leaves the old .cdb in
 * place; other table types are an error ("needs no rebuild"). */
gboolean table_rebuild(const char *spec, TableFlags flags, GError **error);

/* An ordered list of tables ("hash:/a, texthash:/b"), first match wins. */
typedef struct _TableList TableList;
TableList *table_list_open(const char *const *specs, TableFlags flags, GError **error);
/* Same, but the specs that also appear in special get special_flags
 * added (local_recipient_maps naming alias_maps files, say). */
TableList *table_list_open_mixed(const char *const *specs, TableFlags flags,
                                 const char *const *special, TableFlags special_flags,
                                 GError **error);
void table_list_free(TableList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TableList, table_list_free)
guint table_list_length(const TableList *list);
TableResult table_list_lookup(TableList *list, const char *key, char **value, GError **error);
/* The same for one key of a search order; a partial key (user, @domain,
 * a parent domain) skips pattern tables, as Postfix's DICT_FLAG_FIXED. */
TableResult table_list_lookup_key(TableList *list, const char *key, gboolean partial,
                                  char **value, GError **error);
