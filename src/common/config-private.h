/* config-private.h - what config.c (loading) and config-expand.c ($-expansion) share.
 * Internal to src/common. */
#pragma once

#include "config.h"

typedef struct {
  char *name;
  char *value;        /* raw, unexpanded */
  const char *file;   /* owned by Config.files */
  int line;           /* 0 for command-line overrides */
} Setting;

typedef struct {
  char *str;          /* expanded value */
  gint64 num;         /* BOOL (0/1), INT, TIME (seconds), SIZE */
  char **list;        /* LIST, TABLES */
} ParamValue;

struct _Config {
  char *dir;
  GPtrArray *files;       /* char *: file names settings point to */
  GPtrArray *order;       /* Setting *, in the order read (owner) */
  GHashTable *settings;   /* name -> latest Setting * */
  ParamValue *values;     /* parallel to param_table() */
  gsize n_values;
  GPtrArray *warnings;    /* char * */
};

/* State of one expansion run; at load it also fills the value cache. */
typedef struct {
  const Config *config;
  ParamValue *cache;          /* non-NULL only while loading */
  GPtrArray *stack;           /* names being expanded, for loop detection */
  GPtrArray *warnings;        /* NULL: do not warn */
  GHashTable *warned;         /* de-duplicates warnings */
  GHashTable *referenced;     /* non-NULL: scan mode, collect names only */
  int depth;
} Expander;

/* Formats where a setting came from: "file:line", "file" or "built-in default". */
char *config_setting_where(const Setting *setting);

/* Index of def in param_table(), and so in Config.values. */
static inline gsize
config_param_index(const ParamDef *def)
{
  return (gsize) (def - param_table(NULL));
}

/* Sets *value to the expanded value of name, or NULL when name is undefined. */
gboolean config_expand_param(Expander *ex, const char *name, char **value, GError **error);

/* Appends text with every $ reference expanded to out (or, in scan mode,
 * only records the names).  owner/where say whose value text is. */
gboolean config_expand_text(Expander *ex, const char *text, const char *owner,
                            const Setting *where, GString *out, GError **error);

/* Converts the expanded value v->str of def to its type and checks its
 * bounds, as the loader does; errors start with "LOC: " unless loc is NULL. */
gboolean config_convert_value(const ParamDef *def, ParamValue *v, const char *loc, GError **error);

/* config_load(), with main.cf's text taken from main_text when it is not
 * NULL (config-edit.c checks a main.cf before it writes it). */
Config *config_load_main_text(const char *dir, const char *main_text,
                              const char *const *overrides, GError **error);
