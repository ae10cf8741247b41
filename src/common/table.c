/* table.c - "type:name" lookup tables and ordered table lists.
 *
 * Owns the backend registry, the per-table mutex that makes lookups (and
 * the reloads they may trigger) thread-safe, key folding, and TableList
 * semantics: the first table that finds the key wins, and a temporary
 * failure stops the search (it is reported, never skipped as "not
 * found").  Backends live in table-file.c, table-cdb.c, table-static.c,
 * table-cidr.c, table-regexp.c, table-pcre.c and table-mysql.c; table_rebuild in
 * table-rebuild.c.
 */
#include "table-private.h"
#include "config.h"

#include <string.h>

static const TableBackend *const table_backends[] = {
  &table_backend_texthash,
  &table_backend_hash,
  &table_backend_cdb,
  &table_backend_static,
  &table_backend_inline,
  &table_backend_unix,
  &table_backend_cidr,
  &table_backend_regexp,
  &table_backend_pcre,
  &table_backend_mysql,
};

static int
table_type_cmp(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *
table_types(void)
{
  GPtrArray *types = g_ptr_array_new();
  for (gsize i = 0; i < G_N_ELEMENTS(table_backends); i++)
    g_ptr_array_add(types, (gpointer) table_backends[i]->type);
  g_ptr_array_add(types, (gpointer) "proxy");   /* "proxy:type:name" is type:name */
  g_ptr_array_sort(types, table_type_cmp);
  return types;
}

TableResult
table_tempfail(GError **error, const char *spec, const char *why)
{
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "table %s: %s", spec, why);
  return TABLE_TEMPFAIL;
}

GHashTable *
table_map_new(void)
{
  return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void
table_map_add(GHashTable *map, TableFlags flags, char *key, char *value)
{
  if (flags & TABLE_FOLD_CASE) {
    char *folded = g_ascii_strdown(key, -1);
    g_free(key);
    key = folded;
  }
  if (*key == '\0' || g_hash_table_contains(map, key)) {
    g_free(key);
    g_free(value);
    return;
  }
  g_hash_table_insert(map, key, value);
}

const TableBackend *
table_backend_find(const char *type, gsize len)
{
  for (gsize i = 0; i < G_N_ELEMENTS(table_backends); i++) {
    const TableBackend *b = table_backends[i];
    if (strlen(b->type) == len && strncmp(b->type, type, len) == 0)
      return b;
  }
  return NULL;
}

Table *
table_open(const char *spec, TableFlags flags, GError **error)
{
  const char *name = spec;
  const char *colon;
  g_autoptr(Table) table = NULL;

  /* proxymap does not exist here: "proxy:type:name" opens type:name. */
  if (g_str_has_prefix(name, "proxy:"))
    name += 6;
  colon = strchr(name, ':');
  if (!colon || colon == name) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "table \"%s\": expected type:name", spec);
    return NULL;
  }
  table = g_new0(Table, 1);
  table->spec = g_strdup(spec);
  table->flags = flags;
  g_mutex_init(&table->lock);
  const TableBackend *b = table_backend_find(name, (gsize) (colon - name));
  if (b) {
    if (!b->open(table, colon + 1, error))
      return NULL;
    table->backend = b;
    return g_steal_pointer(&table);
  }
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "table \"%s\": unsupported table type \"%.*s\"", spec, (int) (colon - name), name);
  return NULL;
}

void
table_free(Table *table)
{
  if (!table)
    return;
  if (table->backend && table->backend->free)
    table->backend->free(table);
  g_mutex_clear(&table->lock);
  g_free(table->spec);
  g_free(table);
}

gboolean
table_is_pattern(const Table *table)
{
  return table->backend->keep_case;   /* exactly the pattern backends */
}

const char *
table_spec(const Table *table)
{
  return table->spec;
}

/* Keys up to this long are folded on the stack: no allocation per lookup. */
#define TABLE_FOLD_STACK 256

TableResult
table_lookup(Table *table, const char *key, char **value, GError **error)
{
  g_autofree char *folded = NULL;
  char buf[TABLE_FOLD_STACK];
  TableResult r;

  *value = NULL;
  if ((table->flags & TABLE_FOLD_CASE) && !table->backend->keep_case) {
    gsize len = strlen(key);
    char *out = len < sizeof buf ? buf : (folded = g_malloc(len + 1));
    for (gsize i = 0; i < len; i++) {
      char c = key[i];
      out[i] = c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
    }
    out[len] = '\0';
    key = out;
  }
  if (table->backend->concurrent)
    return table->backend->lookup(table, key, value, error);
  g_mutex_lock(&table->lock);
  r = table->backend->lookup(table, key, value, error);
  g_mutex_unlock(&table->lock);
  return r;
}

/* ---- lists ---- */

struct _TableList {
  GPtrArray *tables;   /* of Table* */
};

TableList *
table_list_open(const char *const *specs, TableFlags flags, GError **error)
{
  return table_list_open_mixed(specs, flags, NULL, 0, error);
}

TableList *
table_list_open_mixed(const char *const *specs, TableFlags flags,
                      const char *const *special, TableFlags special_flags, GError **error)
{
  g_autoptr(TableList) list = g_new0(TableList, 1);

  list->tables = g_ptr_array_new_with_free_func((GDestroyNotify) table_free);
  for (; specs && *specs; specs++) {
    if (**specs == '\0')
      continue;
    gboolean is_special = special && g_strv_contains(special, *specs);
    Table *t = table_open(*specs, is_special ? flags | special_flags : flags, error);
    if (!t)
      return NULL;
    g_ptr_array_add(list->tables, t);
  }
  return g_steal_pointer(&list);
}

void
table_list_free(TableList *list)
{
  if (!list)
    return;
  if (list->tables)
    g_ptr_array_unref(list->tables);
  g_free(list);
}

guint
table_list_length(const TableList *list)
{
  return list ? list->tables->len : 0;
}

TableResult
table_list_lookup(TableList *list, const char *key, char **value, GError **error)
{
  return table_list_lookup_key(list, key, FALSE, value, error);
}

TableResult
table_list_lookup_key(TableList *list, const char *key, gboolean partial, char **value,
                      GError **error)
{
  *value = NULL;
  for (guint i = 0; list && i < list->tables->len; i++) {
    if (partial && table_is_pattern(list->tables->pdata[i]))
      continue;
    TableResult r = table_lookup(list->tables->pdata[i], key, value, error);
    if (r != TABLE_NOTFOUND)
      return r;   /* found, or a temporary error that must not be skipped */
  }
  return TABLE_NOTFOUND;
}
