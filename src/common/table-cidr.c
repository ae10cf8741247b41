/* table-cidr.c - cidr:/path tables, as Postfix's cidr_table(5).
 *
 * Lines "network/prefix result" or "address result" (IPv4 or IPv6,
 * "[::1]/128" too), "!network result" for addresses outside network, and
 * "if network" ... "endif" blocks; the first rule in file order that
 * matches wins.  The key must be a numeric address; anything else is not
 * found.  Patterns are parsed by inet.c, the file is watched by
 * table-source.c.
 */
#include "table-private.h"
#include "inet.h"

#include <string.h>

typedef enum { CIDR_MATCH, CIDR_IF, CIDR_ENDIF } CidrKind;

typedef struct {
  CidrKind kind;
  gboolean negate;
  InetNetwork net;
  char *result;        /* CIDR_MATCH */
  guint skip;          /* CIDR_IF: the index past its endif */
  guint lineno;
} CidrRule;

typedef struct {
  const char *path;
  GArray *rules;       /* of CidrRule */
  GArray *open_ifs;    /* indices of ifs without endif yet */
} CidrParse;

static void
table_cidr_rule_clear(gpointer p)
{
  g_free(((CidrRule *) p)->result);
}

/* TRUE when word starts text as a whole word (case ignored). */
static gboolean
table_cidr_keyword(const char *text, const char *word)
{
  gsize n = strlen(word);
  return g_ascii_strncasecmp(text, word, n) == 0 && (text[n] == '\0' || g_ascii_isspace(text[n]));
}

/* Parses "[!]network" at *p into rule and advances past it. */
static gboolean
table_cidr_pattern(CidrParse *cp, guint lineno, const char **p, CidrRule *rule, GError **error)
{
  const char *s = *p;
  g_autoptr(GError) local = NULL;

  if (*s == '!') {
    rule->negate = TRUE;
    s++;
  }
  const char *e = s;
  while (*e && !g_ascii_isspace(*e))
    e++;
  g_autofree char *word = g_strndup(s, (gsize) (e - s));
  if (*word == '\0')
    return table_source_syntax(error, cp->path, lineno, "missing network address");
  if (!inet_network_parse(word, &rule->net, &local))
    return table_source_syntax(error, cp->path, lineno, "%s", local->message);
  while (g_ascii_isspace(*e))
    e++;
  *p = e;
  return TRUE;
}

static gboolean
table_cidr_line(const char *line, guint lineno, gpointer data, GError **error)
{
  CidrParse *cp = data;
  CidrRule rule = { .lineno = lineno };
  const char *p = line;

  if (table_cidr_keyword(p, "endif")) {
    if (cp->open_ifs->len == 0)
      return table_source_syntax(error, cp->path, lineno, "endif without if");
    if (line[5] != '\0')
      return table_source_syntax(error, cp->path, lineno, "text after endif");
    guint i = g_array_index(cp->open_ifs, guint, cp->open_ifs->len - 1);
    g_array_set_size(cp->open_ifs, cp->open_ifs->len - 1);
    rule.kind = CIDR_ENDIF;
    g_array_append_val(cp->rules, rule);
    g_array_index(cp->rules, CidrRule, i).skip = cp->rules->len;
    return TRUE;
  }
  if (table_cidr_keyword(p, "if")) {
    p += 2;
    while (g_ascii_isspace(*p))
      p++;
    if (!table_cidr_pattern(cp, lineno, &p, &rule, error))
      return FALSE;
    if (*p)
      return table_source_syntax(error, cp->path, lineno, "text after the if pattern");
    rule.kind = CIDR_IF;
    g_array_append_val(cp->open_ifs, cp->rules->len);
    g_array_append_val(cp->rules, rule);
    return TRUE;
  }
  if (!table_cidr_pattern(cp, lineno, &p, &rule, error))
    return FALSE;
  if (*p == '\0')
    return table_source_syntax(error, cp->path, lineno, "no lookup result");
  rule.kind = CIDR_MATCH;
  rule.result = g_strdup(p);
  g_array_append_val(cp->rules, rule);
  return TRUE;
}

static gpointer
table_cidr_parse(const char *path, const char *text, gpointer ctx, GError **error)
{
  g_autoptr(GArray) rules = g_array_new(FALSE, FALSE, sizeof(CidrRule));
  g_autoptr(GArray) open_ifs = g_array_new(FALSE, FALSE, sizeof(guint));
  CidrParse cp = { .path = path, .rules = rules, .open_ifs = open_ifs };

  g_array_set_clear_func(rules, table_cidr_rule_clear);
  if (!table_source_lines(text, table_cidr_line, &cp, error))
    return NULL;
  if (open_ifs->len > 0) {
    guint i = g_array_index(open_ifs, guint, open_ifs->len - 1);
    table_source_syntax(error, path, g_array_index(rules, CidrRule, i).lineno, "if without endif");
    return NULL;
  }
  return g_steal_pointer(&rules);
}

static gboolean
table_cidr_open(Table *table, const char *name, GError **error)
{
  table->data = table_source_new(table->spec, name, table_cidr_parse, NULL,
                                 (GDestroyNotify) g_array_unref, error);
  return table->data != NULL;
}

static TableResult
table_cidr_lookup(Table *table, const char *key, char **value, GError **error)
{
  GArray *rules = table_source_rules(table->data, table->spec, error);
  InetNetwork host;

  if (!rules)
    return TABLE_TEMPFAIL;
  if (strchr(key, '/') || !inet_network_parse(key, &host, NULL))
    return TABLE_NOTFOUND;
  for (guint i = 0; i < rules->len;) {
    const CidrRule *r = &g_array_index(rules, CidrRule, i);
    gboolean hit = inet_network_contains(&r->net, &host) != r->negate;
    switch (r->kind) {
    case CIDR_IF:
      i = hit ? i + 1 : r->skip;
      break;
    case CIDR_ENDIF:
      i++;
      break;
    case CIDR_MATCH:
      if (hit) {
        *value = g_strdup(r->result);
        return TABLE_FOUND;
      }
      i++;
      break;
    }
  }
  return TABLE_NOTFOUND;
}

static void
table_cidr_free(Table *table)
{
  table_source_free(table->data);
}

const TableBackend table_backend_cidr = {
  .type = "cidr", .open = table_cidr_open, .lookup = table_cidr_lookup, .free = table_cidr_free,
  .keep_case = TRUE,
};
