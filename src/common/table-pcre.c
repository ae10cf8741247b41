/* table-pcre.c - pcre:/path tables (Postfix pcre_table(5)): the PCRE2
 * engine under table-pattern.c.
 *
 * Patterns are caseless unless "i" toggles it; the other flags are
 * Postfix's: "m" multiline, "s" dot matches newline, "x" extended, "A"
 * anchored, "E" dollar matches only at the end, "U" ungreedy, "X" accepted
 * (PCRE2 already rejects unknown escapes).  Patterns are JIT-compiled when
 * the library can; match data is per lookup, so this is thread-safe even
 * without the table lock.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "table-pattern.h"

#include <pcre2.h>

static gpointer
table_pcre_compile(const char *pattern, const char *flags, guint *ngroups, char **why)
{
  uint32_t options = PCRE2_CASELESS;
  uint32_t captures = 0;
  int errcode;
  PCRE2_SIZE erroffset;

  for (const char *f = flags; *f; f++) {
    switch (*f) {
    case 'i': options ^= PCRE2_CASELESS; break;
    case 'm': options ^= PCRE2_MULTILINE; break;
    case 's': options ^= PCRE2_DOTALL; break;
    case 'x': options ^= PCRE2_EXTENDED; break;
    case 'A': options ^= PCRE2_ANCHORED; break;
    case 'E': options ^= PCRE2_DOLLAR_ENDONLY; break;
    case 'U': options ^= PCRE2_UNGREEDY; break;
    case 'X': break;
    default:
      *why = g_strdup_printf("unknown flag \"%c\"", *f);
      return NULL;
    }
  }
  pcre2_code *re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, options,
                                 &errcode, &erroffset, NULL);
  if (!re) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(errcode, buf, sizeof buf);
    *why = g_strdup_printf("%s at offset %zu", (const char *) buf, (size_t) erroffset);
    return NULL;
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* optional: interpreted otherwise */
  pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &captures);
  *ngroups = captures;
  return re;
}

/* A match error (such as the match limit) counts as no match, as in Postfix. */
static gboolean
table_pcre_match(gpointer re, const char *key, gssize *off)
{
  pcre2_match_data *md = pcre2_match_data_create(TABLE_PATTERN_MAX_GROUPS + 1, NULL);
  int rc = pcre2_match(re, (PCRE2_SPTR) key, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);

  if (rc < 0) {
    pcre2_match_data_free(md);
    return FALSE;
  }
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
  guint pairs = rc == 0 ? TABLE_PATTERN_MAX_GROUPS + 1 : (guint) rc;
  for (guint i = 0; i < pairs && i <= TABLE_PATTERN_MAX_GROUPS; i++) {
    if (ov[2 * i] != PCRE2_UNSET) {
      off[2 * i] = (gssize) ov[2 * i];
      off[2 * i + 1] = (gssize) ov[2 * i + 1];
    }
  }
  pcre2_match_data_free(md);
  return TRUE;
}

static void
table_pcre_free_re(gpointer re)
{
  pcre2_code_free(re);
}

static const TablePatternEngine table_pcre_engine = {
  .compile = table_pcre_compile, .match = table_pcre_match, .free = table_pcre_free_re,
};

static gboolean
table_pcre_open(Table *table, const char *name, GError **error)
{
  return table_pattern_open(table, name, &table_pcre_engine, error);
}

const TableBackend table_backend_pcre = {
  .type = "pcre", .open = table_pcre_open, .lookup = table_pattern_lookup,
  .free = table_pattern_free, .keep_case = TRUE,
};
