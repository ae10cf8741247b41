/* domain-list.c - matching a domain against a Postfix domain list, as
 * util/match_ops.c match_hostname() (DOMAIN_MATCH_DOT and
 * DOMAIN_MATCH_PARENT) and match_string() (DOMAIN_MATCH_EXACT) do.
 *
 * The list is an array of entries in parameter order; a match walks it
 * and the first entry that matches decides.  Literal names are kept in
 * lower case and compared in place (no allocation); a table entry is
 * asked for the lower-cased domain and, unless the style is exact, its
 * parent domains, nearest first.  Immutable once built, so any thread
 * may match (tables lock themselves).  Never logs.
 */
#include "domain-list.h"
#include "config.h"
#include "table.h"

#include <string.h>

typedef struct {
  gboolean negate;
  char *name;       /* lower case; NULL for a table */
  gsize len;
  Table *table;
} DomainEntry;

struct _DomainList {
  char *name;
  DomainMatchStyle style;
  GArray *entries;  /* of DomainEntry */
};

static void
domain_entry_clear(gpointer p)
{
  DomainEntry *e = p;
  g_free(e->name);
  table_free(e->table);
}

static gboolean
domain_list_add(const char *pattern, gboolean negate, gpointer data, GError **error)
{
  DomainList *list = data;
  DomainEntry e = { .negate = negate };

  if (match_list_is_table(pattern)) {
    e.table = table_open(pattern, TABLE_FOLD_CASE, error);
    if (e.table == NULL)
      return FALSE;
  } else {
    e.name = g_ascii_strdown(pattern, -1);
    e.len = strlen(e.name);
  }
  g_array_append_val(list->entries, e);
  return TRUE;
}

DomainList *
domain_list_new(const char *name, const char *const *entries, DomainMatchStyle style,
                GError **error)
{
  g_autoptr(DomainList) list = g_new0(DomainList, 1);

  list->name = g_strdup(name);
  list->style = style;
  list->entries = g_array_new(FALSE, FALSE, sizeof(DomainEntry));
  g_array_set_clear_func(list->entries, domain_entry_clear);
  if (!match_list_walk(entries, domain_list_add, list, error)) {
    g_prefix_error(error, "%s: ", name);
    return NULL;
  }
  return g_steal_pointer(&list);
}

void
domain_list_free(DomainList *list)
{
  if (list == NULL)
    return;
  if (list->entries != NULL)
    g_array_unref(list->entries);
  g_free(list->name);
  g_free(list);
}

const char *
domain_list_name(const DomainList *list)
{
  return list->name;
}

gboolean
domain_list_is_empty(const DomainList *list)
{
  return list == NULL || list->entries->len == 0;
}

/* A literal name: itself, or per style a parent of domain. */
static gboolean
domain_name_matches(DomainMatchStyle style, const DomainEntry *e, const char *domain, gsize len)
{
  const char *tail;

  if (len == e->len)
    return g_ascii_strcasecmp(domain, e->name) == 0;
  if (style == DOMAIN_MATCH_EXACT || len < e->len)
    return FALSE;
  tail = domain + len - e->len;
  if (style == DOMAIN_MATCH_PARENT)   /* "example.com" covers "a.example.com" */
    return tail[-1] == '.' && g_ascii_strcasecmp(tail, e->name) == 0;
  return e->name[0] == '.' && g_ascii_strcasecmp(tail, e->name) == 0;
}

/* A table: the domain, then (unless exact, or a pattern table) its
 * parents, nearest first: ".example.com", ".com" or "example.com", "com". */
static MatchResult
domain_table_matches(const DomainList *list, Table *table, const char *lower, GError **error)
{
  const char *key = lower;

  for (;;) {
    g_autofree char *value = NULL;
    TableResult r = table_lookup(table, key, &value, error);
    const char *dot;

    if (r == TABLE_FOUND)
      return MATCH_FOUND;
    if (r == TABLE_TEMPFAIL)
      return MATCH_TEMPFAIL;
    /* Pattern tables are asked about the whole name only (Postfix). */
    if (list->style == DOMAIN_MATCH_EXACT || lower[0] == '[' || table_is_pattern(table))
      return MATCH_NONE;
    dot = strchr(key + 1, '.');
    if (dot == NULL || dot[1] == '\0')
      return MATCH_NONE;
    key = list->style == DOMAIN_MATCH_PARENT ? dot + 1 : dot;
  }
}

MatchResult
domain_list_match(const DomainList *list, const char *domain, GError **error)
{
  g_autofree char *lower = NULL;
  gsize len;

  if (list == NULL || domain == NULL || *domain == '\0')
    return MATCH_NONE;
  len = strlen(domain);
  for (guint i = 0; i < list->entries->len; i++) {
    const DomainEntry *e = &g_array_index(list->entries, DomainEntry, i);
    gboolean hit;

    if (e->table != NULL) {
      MatchResult r;
      if (lower == NULL)
        lower = g_ascii_strdown(domain, -1);
      r = domain_table_matches(list, e->table, lower, error);
      if (r == MATCH_TEMPFAIL) {
        g_prefix_error(error, "%s: ", list->name);
        return MATCH_TEMPFAIL;
      }
      hit = r == MATCH_FOUND;
    } else {
      hit = domain_name_matches(list->style, e, domain, len);
    }
    if (hit)
      return e->negate ? MATCH_NONE : MATCH_FOUND;
  }
  return MATCH_NONE;
}
