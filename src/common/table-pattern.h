/* table-pattern.h - what regexp: and pcre: share: one parser of the
 * regexp_table(5)/pcre_table(5) file syntax and one rule walker, over a
 * matcher vtable per regular expression library.
 *
 * Internal to src/common.
 */
#pragma once

#include "table-private.h"

/* Subexpressions a result can name: $1 .. $9. */
#define TABLE_PATTERN_MAX_GROUPS 9

typedef struct {
  /* Compiles pattern with the flag letters after the closing delimiter;
   * *ngroups is its number of subexpressions.  NULL with *why (newly
   * allocated) on error. */
  gpointer (*compile)(const char *pattern, const char *flags, guint *ngroups, char **why);
  /* TRUE when key matches; off[2n], off[2n+1] are the byte offsets of
   * group n (0 .. TABLE_PATTERN_MAX_GROUPS), -1 when it did not take part. */
  gboolean (*match)(gpointer re, const char *key, gssize *off);
  void (*free)(gpointer re);
} TablePatternEngine;

gboolean table_pattern_open(Table *table, const char *name, const TablePatternEngine *engine,
                            GError **error);
TableResult table_pattern_lookup(Table *table, const char *key, char **value, GError **error);
void table_pattern_free(Table *table);
