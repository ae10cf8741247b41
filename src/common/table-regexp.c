/* table-regexp.c - regexp:/path tables (Postfix regexp_table(5)): the
 * POSIX regular expression engine under table-pattern.c.
 *
 * Patterns compile with REG_EXTENDED | REG_ICASE unless flags toggle
 * them: "i" case, "x" extended syntax, "m" REG_NEWLINE.
 */
#include "table-pattern.h"

#include <regex.h>

static gpointer
table_regexp_compile(const char *pattern, const char *flags, guint *ngroups, char **why)
{
  int cflags = REG_EXTENDED | REG_ICASE;
  regex_t *re;
  int rc;

  for (const char *f = flags; *f; f++) {
    switch (*f) {
    case 'i': cflags ^= REG_ICASE; break;
    case 'x': cflags ^= REG_EXTENDED; break;
    case 'm': cflags ^= REG_NEWLINE; break;
    default:
      *why = g_strdup_printf("unknown flag \"%c\"", *f);
      return NULL;
    }
  }
  re = g_new0(regex_t, 1);
  if ((rc = regcomp(re, pattern, cflags)) != 0) {
    char buf[256];
    regerror(rc, re, buf, sizeof buf);
    *why = g_strdup(buf);
    g_free(re);
    return NULL;
  }
  *ngroups = (guint) re->re_nsub;
  return re;
}

static gboolean
table_regexp_match(gpointer re, const char *key, gssize *off)
{
  regmatch_t m[TABLE_PATTERN_MAX_GROUPS + 1];

  if (regexec(re, key, G_N_ELEMENTS(m), m, 0) != 0)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS(m); i++) {
    off[2 * i] = m[i].rm_so;
    off[2 * i + 1] = m[i].rm_eo;
  }
  return TRUE;
}

static void
table_regexp_free_re(gpointer re)
{
  regfree(re);
  g_free(re);
}

static const TablePatternEngine table_regexp_engine = {
  .compile = table_regexp_compile, .match = table_regexp_match, .free = table_regexp_free_re,
};

static gboolean
table_regexp_open(Table *table, const char *name, GError **error)
{
  return table_pattern_open(table, name, &table_regexp_engine, error);
}

const TableBackend table_backend_regexp = {
  .type = "regexp", .open = table_regexp_open, .lookup = table_pattern_lookup,
  .free = table_pattern_free, .keep_case = TRUE,
};
