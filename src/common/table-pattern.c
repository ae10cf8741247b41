/* table-pattern.c - the file syntax and lookup of regexp: and pcre:
 * tables (Postfix regexp_table(5), pcre_table(5)).
 *
 * Rules are "/pattern/flags result", "!/pattern/flags result" (matches
 * when the pattern does not), and "if /pattern/flags" ... "endif" blocks;
 * any non-space character may delimit a pattern.  The first rule in file
 * order that matches wins; $1 .. $9 (or ${1}, $(1)) in the result are
 * the matched subexpressions and $$ is "$".  Everything about the
 * result is checked when the file is read, so a lookup cannot fail
 * halfway.  The regular expressions themselves are the engine's
 * (table-regexp.c, table-pcre.c).
 */
#include "table-pattern.h"

#include <string.h>

typedef enum { PATTERN_MATCH, PATTERN_IF, PATTERN_ENDIF } PatternKind;

typedef struct {
  PatternKind kind;
  gboolean negate;
  gpointer re;
  char *result;        /* PATTERN_MATCH */
  guint skip;          /* PATTERN_IF: the index past its endif */
  guint lineno;
} PatternRule;

typedef struct {
  const TablePatternEngine *engine;
  GArray *rules;       /* of PatternRule */
} PatternRules;

typedef struct {
  const char *path;
  PatternRules *rules;
  GArray *open_ifs;    /* indices of ifs without endif yet */
} PatternParse;

static void
table_pattern_rules_free(gpointer p)
{
  PatternRules *pr = p;
  for (guint i = 0; i < pr->rules->len; i++) {
    PatternRule *r = &g_array_index(pr->rules, PatternRule, i);
    if (r->re)
      pr->engine->free(r->re);
    g_free(r->result);
  }
  g_array_unref(pr->rules);
  g_free(pr);
}

/* TRUE when word starts text, followed by neither a letter nor a digit. */
static gboolean
table_pattern_keyword(const char *text, const char *word)
{
  gsize n = strlen(word);
  return g_ascii_strncasecmp(text, word, n) == 0 && !g_ascii_isalnum(text[n]);
}

/* Reads "$N", "${N}" or "$(N)" at p (just past the "$"); returns the
 * length consumed, 0 when p names no group. */
static gsize
table_pattern_group_ref(const char *p, guint *n)
{
  char close = *p == '{' ? '}' : *p == '(' ? ')' : '\0';
  const char *d = close ? p + 1 : p;

  if (!g_ascii_isdigit(*d))
    return 0;
  *n = 0;
  while (g_ascii_isdigit(*d) && *n < 100)
    *n = *n * 10 + (guint) (*d++ - '0');
  if (!close)
    return (gsize) (d - p);
  return *d == close ? (gsize) (d + 1 - p) : 0;
}

/* Checks the $ references in a result against the pattern's groups. */
static gboolean
table_pattern_check_result(PatternParse *pp, guint lineno, const char *result, gboolean negate,
                           guint ngroups, GError **error)
{
  for (const char *p = strchr(result, '$'); p; p = strchr(p, '$')) {
    guint n;
    gsize len;
    p++;
    if (*p == '$') {
      p++;
    } else if ((len = table_pattern_group_ref(p, &n)) > 0) {
      if (negate)
        return table_source_syntax(error, pp->path, lineno, "$%u in a negated rule", n);
      if (n < 1 || n > ngroups || n > TABLE_PATTERN_MAX_GROUPS)
        return table_source_syntax(error, pp->path, lineno, "out of range replacement index $%u", n);
      p += len;
    } else if (g_ascii_isalpha(*p) || *p == '_' || *p == '{' || *p == '(') {
      return table_source_syntax(error, pp->path, lineno, "non-numeric replacement index in \"%s\"", result);
    }
  }
  return TRUE;
}

/* Parses "[!]/pattern/flags" at *p into rule, advancing past it and the
 * white space after it. */
static gboolean
table_pattern_regex(PatternParse *pp, guint lineno, const char **p, PatternRule *rule,
                    guint *ngroups, GError **error)
{
  const char *s = *p;

  while (*s == '!') {
    rule->negate = !rule->negate;
    s++;
  }
  char delim = *s;
  if (delim == '\0' || g_ascii_isspace(delim) || g_ascii_isalnum(delim) || delim == '\\')
    return table_source_syntax(error, pp->path, lineno, "expected a /pattern/");
  const char *start = ++s;
  while (*s && *s != delim) {
    if (*s == '\\' && s[1])
      s++;
    s++;
  }
  if (*s != delim)
    return table_source_syntax(error, pp->path, lineno, "no closing %c delimiter", delim);
  g_autofree char *pattern = g_strndup(start, (gsize) (s - start));
  const char *f = ++s;
  while (*s && !g_ascii_isspace(*s))
    s++;
  g_autofree char *flags = g_strndup(f, (gsize) (s - f));
  g_autofree char *why = NULL;
  rule->re = pp->rules->engine->compile(pattern, flags, ngroups, &why);
  if (!rule->re)
    return table_source_syntax(error, pp->path, lineno, "pattern %c%s%c%s: %s", delim, pattern,
                               delim, flags, why);
  while (g_ascii_isspace(*s))
    s++;
  *p = s;
  return TRUE;
}

static gboolean
table_pattern_line(const char *line, guint lineno, gpointer data, GError **error)
{
  PatternParse *pp = data;
  GArray *rules = pp->rules->rules;
  PatternRule rule = { .lineno = lineno };
  const char *p = line;
  guint ngroups = 0;

  if (table_pattern_keyword(p, "endif")) {
    if (pp->open_ifs->len == 0)
      return table_source_syntax(error, pp->path, lineno, "endif without if");
    if (line[5] != '\0')
      return table_source_syntax(error, pp->path, lineno, "text after endif");
    guint i = g_array_index(pp->open_ifs, guint, pp->open_ifs->len - 1);
    g_array_set_size(pp->open_ifs, pp->open_ifs->len - 1);
    rule.kind = PATTERN_ENDIF;
    g_array_append_val(rules, rule);
    g_array_index(rules, PatternRule, i).skip = rules->len;
    return TRUE;
  }
  if (table_pattern_keyword(p, "if")) {
    p += 2;
    while (g_ascii_isspace(*p))
      p++;
    rule.kind = PATTERN_IF;
    if (!table_pattern_regex(pp, lineno, &p, &rule, &ngroups, error))
      return FALSE;
    g_array_append_val(pp->open_ifs, rules->len);
    g_array_append_val(rules, rule);   /* owns rule.re from here */
    if (*p)
      return table_source_syntax(error, pp->path, lineno, "text after the if pattern");
    return TRUE;
  }
  rule.kind = PATTERN_MATCH;
  if (!table_pattern_regex(pp, lineno, &p, &rule, &ngroups, error))
    return FALSE;
  rule.result = g_strdup(p);
  g_array_append_val(rules, rule);
  return table_pattern_check_result(pp, lineno, p, rule.negate, ngroups, error);
}

static gpointer
table_pattern_parse(const char *path, const char *text, gpointer ctx, GError **error)
{
  PatternRules *pr = g_new0(PatternRules, 1);
  g_autoptr(GArray) open_ifs = g_array_new(FALSE, FALSE, sizeof(guint));
  PatternParse pp = { .path = path, .rules = pr, .open_ifs = open_ifs };

  pr->engine = ctx;
  pr->rules = g_array_new(FALSE, FALSE, sizeof(PatternRule));
  if (!table_source_lines(text, table_pattern_line, &pp, error)) {
    table_pattern_rules_free(pr);
    return NULL;
  }
  if (open_ifs->len > 0) {
    guint i = g_array_index(open_ifs, guint, open_ifs->len - 1);
    table_source_syntax(error, path, g_array_index(pr->rules, PatternRule, i).lineno, "if without endif");
    table_pattern_rules_free(pr);
    return NULL;
  }
  return pr;
}

/* The result with $N replaced by group N of key (checked at parse time). */
static char *
table_pattern_expand(const char *result, const char *key, const gssize *off)
{
  GString *out = g_string_new(NULL);

  for (const char *p = result; *p;) {
    guint n;
    gsize len;
    if (*p != '$') {
      g_string_append_c(out, *p++);
    } else if (p[1] == '$') {
      g_string_append_c(out, '$');
      p += 2;
    } else if ((len = table_pattern_group_ref(p + 1, &n)) > 0) {
      if (n <= TABLE_PATTERN_MAX_GROUPS && off[2 * n] >= 0 && off[2 * n + 1] >= off[2 * n])
        g_string_append_len(out, key + off[2 * n], off[2 * n + 1] - off[2 * n]);
      p += 1 + len;
    } else {
      g_string_append_c(out, *p++);
    }
  }
  return g_string_free(out, FALSE);
}

gboolean
table_pattern_open(Table *table, const char *name, const TablePatternEngine *engine, GError **error)
{
  table->data = table_source_new(table->spec, name, table_pattern_parse, (gpointer) engine,
                                 table_pattern_rules_free, error);
  return table->data != NULL;
}

TableResult
table_pattern_lookup(Table *table, const char *key, char **value, GError **error)
{
  PatternRules *pr = table_source_rules(table->data, table->spec, error);
  gssize off[2 * (TABLE_PATTERN_MAX_GROUPS + 1)];

  if (!pr)
    return TABLE_TEMPFAIL;
  for (guint i = 0; i < pr->rules->len;) {
    const PatternRule *r = &g_array_index(pr->rules, PatternRule, i);
    if (r->kind == PATTERN_ENDIF) {
      i++;
      continue;
    }
    for (guint k = 0; k < G_N_ELEMENTS(off); k++)
      off[k] = -1;
    gboolean hit = pr->engine->match(r->re, key, off) != r->negate;
    if (r->kind == PATTERN_IF) {
      i = hit ? i + 1 : r->skip;
    } else if (hit) {
      *value = table_pattern_expand(r->result, key, off);
      return TABLE_FOUND;
    } else {
      i++;
    }
  }
  return TABLE_NOTFOUND;
}

void
table_pattern_free(Table *table)
{
  table_source_free(table->data);
}
