/* config.c - loads main.cf, conf.d/NAME.cf and -o overrides into an immutable Config.
 *
 * Reading follows Postfix's readllines() + split_nameval(): a logical line
 * starts with a non-blank character; lines that start with white space
 * continue it (the newline is dropped, the leading blanks kept); blank
 * lines and lines whose first non-blank character is '#' are skipped and
 * do NOT end a logical line.  '#' elsewhere is part of the value.
 *
 * At load every known parameter is expanded (config-expand.c), converted
 * and split once, so the getters only do a binary search and never
 * allocate.  This file never logs: problems become GErrors or entries in
 * config_warnings().
 */
#include "config-private.h"

#include <errno.h>
#include <string.h>

G_DEFINE_QUARK(postern-error-quark, postern_error)

static void
setting_free(Setting *setting)
{
  g_free(setting->name);
  g_free(setting->value);
  g_free(setting);
}

/* Formats where a setting came from: "file:line", "file" or "built-in default". */
char *
config_setting_where(const Setting *setting)
{
  if (!setting)
    return g_strdup("built-in default");
  if (setting->line > 0)
    return g_strdup_printf("%s:%d", setting->file, setting->line);
  return g_strdup(setting->file);
}

/* ---- value parsing helpers (also used by other parsers) ---- */

gboolean
config_parse_bool(const char *text, gboolean *out)
{
  if (g_ascii_strcasecmp(text, "yes") == 0 || g_ascii_strcasecmp(text, "true") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp(text, "no") == 0 || g_ascii_strcasecmp(text, "false") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

gboolean
config_parse_int(const char *text, gint64 *out)
{
  return g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, out, NULL);
}

gboolean
config_parse_time(const char *text, char default_unit, gint64 *seconds)
{
  gsize len = strlen(text);
  if (len == 0)
    return FALSE;
  char unit = default_unit ? default_unit : 's';
  g_autofree char *digits = g_strdup(text);
  if (g_ascii_isalpha(text[len - 1])) {
    unit = g_ascii_tolower(text[len - 1]);
    digits[len - 1] = '\0';
  }
  gint64 n, mult;
  switch (unit) {
  case 's': mult = 1; break;
  case 'm': mult = 60; break;
  case 'h': mult = 3600; break;
  case 'd': mult = 86400; break;
  case 'w': mult = 7 * 86400; break;
  default: return FALSE;
  }
  if (!config_parse_int(digits, &n) || n > G_MAXINT64 / mult || n < G_MININT64 / mult)
    return FALSE;
  *seconds = n * mult;
  return TRUE;
}

char **
config_split_list(const char *text)
{
  GPtrArray *items = g_ptr_array_new();
  const char *p = text;
  for (;;) {
    p += strspn(p, ", \t\r\n");
    if (!*p)
      break;
    /* A token ends at a separator outside {}: "inline:{ a=b, c=d }" is one element. */
    const char *e = p;
    int level = 0;
    for (; *e; e++) {
      if (*e == '{')
        level++;
      else if (*e == '}' && level > 0)
        level--;
      else if (level == 0 && strchr(", \t\r\n", *e))
        break;
    }
    g_ptr_array_add(items, g_strndup(p, (gsize) (e - p)));
    p = e;
  }
  g_ptr_array_add(items, NULL);
  return (char **) g_ptr_array_free(items, FALSE);
}

/* ---- reading files ---- */

/* Parses one logical "name = value" line into the config. */
static gboolean
config_add_setting(Config *config, const char *text, const char *file, int line, GError **error)
{
  const char *p = text + strspn(text, " \t\r\n\v\f");
  const char *name_end = p + strcspn(p, " \t\r\n\v\f=");
  const char *eq = name_end + strspn(name_end, " \t\r\n\v\f");
  if (name_end == p || *eq != '=') {
    g_autofree char *loc = line > 0 ? g_strdup_printf("%s:%d", file, line) : g_strdup(file);
    if (name_end == p)
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s: missing parameter name before '=': \"%s\"", loc, text);
    else
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s: missing '=' after parameter name: \"%s\"", loc, text);
    return FALSE;
  }
  const char *value = eq + 1 + strspn(eq + 1, " \t\r\n\v\f");
  gsize value_len = strlen(value);
  while (value_len > 0 && g_ascii_isspace(value[value_len - 1]))
    value_len--;

  Setting *setting = g_new0(Setting, 1);
  setting->name = g_strndup(p, (gsize) (name_end - p));
  setting->value = g_strndup(value, value_len);
  setting->file = file;
  setting->line = line;
  g_ptr_array_add(config->order, setting);
  g_hash_table_insert(config->settings, setting->name, setting);
  return TRUE;
}

/* Parses the text of one file in main.cf syntax into the config. */
static gboolean
config_read_text(Config *config, const char *path, char *contents, gsize length, GError **error)
{
  if (memchr(contents, '\0', length)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: file contains a NUL byte", path);
    return FALSE;
  }
  char *file = g_strdup(path);
  g_ptr_array_add(config->files, file);

  g_autoptr(GString) logical = g_string_new(NULL);
  int logical_line = 0;
  int lineno = 0;
  for (char *line = contents; line; ) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = '\0';
    lineno++;
    const char *first = line + strspn(line, " \t\r\v\f");
    if (*first == '\0' || *first == '#') {
      /* blank and comment lines are skipped; they do not end a logical line */
    } else if (line != first && logical_line > 0) {
      g_string_append(logical, line);
    } else {
      if (logical_line > 0 && !config_add_setting(config, logical->str, file, logical_line, error))
        return FALSE;
      if (line != first) {
        char *w = g_strdup_printf("%s:%d: warning: logical line must not start with white space",
                                  file, lineno);
        g_ptr_array_add(config->warnings, w);
      }
      g_string_assign(logical, line);
      logical_line = lineno;
    }
    line = nl ? nl + 1 : NULL;
  }
  if (logical_line > 0 && !config_add_setting(config, logical->str, file, logical_line, error))
    return FALSE;
  return TRUE;
}

/* Reads one file in main.cf syntax; a missing file is fine when optional. */
static gboolean
config_read_file(Config *config, const char *path, gboolean optional, GError **error)
{
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(path, &contents, &length, &local)) {
    if (optional && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return TRUE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s", local->message);
    return FALSE;
  }
  return config_read_text(config, path, contents, length, error);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Reads dir/conf.d/NAME.cf in lexical (strcmp) order; no conf.d is fine. */
static gboolean
config_read_conf_d(Config *config, const char *dir, GError **error)
{
  g_autofree char *conf_d = g_build_filename(dir, "conf.d", NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) d = g_dir_open(conf_d, 0, &local);
  if (!d) {
    if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
        || g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
      return TRUE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s", local->message);
    return FALSE;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *entry;
  while ((entry = g_dir_read_name(d)))
    if (entry[0] != '.' && g_str_has_suffix(entry, ".cf"))
      g_ptr_array_add(names, g_strdup(entry));
  g_ptr_array_sort(names, compare_names);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename(conf_d, names->pdata[i], NULL);
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
      continue;
    if (!config_read_file(config, path, FALSE, error))
      return FALSE;
  }
  return TRUE;
}

/* ---- validation ---- */

/* Fails with "LOC: parameter NAME: bad TYPE value: 'VALUE'HINT"; no "LOC: " when loc is NULL. */
static gboolean
config_bad_value(const char *loc, const ParamDef *def, const char *value,
                 const char *what, const char *hint, GError **error)
{
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "%s%sparameter %s: bad %s value: '%s'%s", loc ? loc : "", loc ? ": " : "",
              def->name, what, value, hint);
  return FALSE;
}

/* Converts the expanded value v->str of def to its type and checks its
 * bounds; errors start with "LOC: " unless loc is NULL. */
gboolean
config_convert_value(const ParamDef *def, ParamValue *v, const char *loc, GError **error)
{
  gboolean b;
  switch (def->type) {
  case PARAM_STR:
  case PARAM_TEMPLATE:
    return TRUE;
  case PARAM_BOOL:
    if (!config_parse_bool(v->str, &b))
      return config_bad_value(loc, def, v->str, "boolean", " (use yes or no)", error);
    v->num = b;
    return TRUE;
  case PARAM_INT:
  case PARAM_SIZE:
    if (!config_parse_int(v->str, &v->num) || (def->type == PARAM_SIZE && v->num < 0))
      return config_bad_value(loc, def, v->str,
                              def->type == PARAM_INT ? "numerical" : "size", "", error);
    break;
  case PARAM_TIME:
    if (!config_parse_time(v->str, def->time_unit, &v->num))
      return config_bad_value(loc, def, v->str, "time",
                              " (use a number with optional unit s, m, h, d or w)", error);
    break;
  case PARAM_LIST:
  case PARAM_TABLES:
    v->list = config_split_list(v->str);
    for (char **t = v->list; def->type == PARAM_TABLES && *t; t++) {
      const char *colon = strchr(*t, ':');
      if (!colon || colon == *t)
        return config_bad_value(loc, def, *t, "lookup table", " (use type:name)", error);
    }
    return TRUE;
  }
  if ((def->min || def->max) && (v->num < def->min || v->num > def->max)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s%sparameter %s: value '%s' out of range (%" G_GINT64_FORMAT " .. %"
                G_GINT64_FORMAT "%s)", loc ? loc : "", loc ? ": " : "", def->name, v->str,
                def->min, def->max,
                def->type == PARAM_TIME ? " seconds" : "");
    return FALSE;
  }
  return TRUE;
}

/* The same for a loaded value: errors name where it was set. */
static gboolean
config_convert(Config *config, const ParamDef *def, ParamValue *v, GError **error)
{
  g_autofree char *loc = config_setting_where(g_hash_table_lookup(config->settings, def->name));
  return config_convert_value(def, v, loc, error);
}

/* Warns about names that are set but neither known nor referenced by a
 * known parameter (directly, through other user-defined names, or as an
 * smtpd_restriction_classes member), as "postconf" does. */
static void
config_warn_unused(Config *config)
{
  gsize n;
  const ParamDef *table = param_table(&n);
  g_autoptr(GHashTable) referenced = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) scanned = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) work = g_ptr_array_new();
  Expander ex = { .config = config, .referenced = referenced };
  ex.stack = g_ptr_array_new();

  for (gsize i = 0; i < n; i++)
    g_ptr_array_add(work, (gpointer) table[i].name);
  const ParamDef *classes = param_lookup("smtpd_restriction_classes");
  for (char **c = config->values[config_param_index(classes)].list; c && *c; c++)
    if (!g_hash_table_contains(referenced, *c))
      g_hash_table_add(referenced, g_strdup(*c));

  g_autoptr(GString) sink = g_string_new(NULL);
  while (work->len > 0 || g_hash_table_size(referenced) > g_hash_table_size(scanned)) {
    /* queue referenced names not scanned yet */
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, referenced);
    while (g_hash_table_iter_next(&it, &key, NULL))
      if (!g_hash_table_contains(scanned, key)) {
        g_hash_table_add(scanned, key);
        g_ptr_array_add(work, key);
      }
    while (work->len > 0) {
      const char *name = g_ptr_array_steal_index(work, work->len - 1);
      const ParamDef *def = param_lookup(name);
      const Setting *s = g_hash_table_lookup(config->settings, name);
      const char *raw = s ? s->value : def ? def->def : NULL;
      if (raw) {
        g_string_truncate(sink, 0);
        (void) config_expand_text(&ex, raw, name, s, sink, NULL);
      }
    }
  }
  g_ptr_array_unref(ex.stack);

  for (guint i = 0; i < config->order->len; i++) {
    const Setting *s = config->order->pdata[i];
    if (g_hash_table_lookup(config->settings, s->name) != s || param_lookup(s->name)
        || g_hash_table_contains(referenced, s->name))
      continue;
    g_autofree char *loc = config_setting_where(s);
    g_ptr_array_add(config->warnings,
                    g_strdup_printf("%s: warning: unknown parameter name: %s", loc, s->name));
  }
}

/* ---- public API ---- */

const char *
config_dir_resolve(const char *dir)
{
  if (dir && *dir)
    return dir;
  const char *env = g_getenv("POSTERN_CONFIG_DIR");
  if (env && *env)
    return env;
  return POSTERN_DEFAULT_CONFIG_DIR;
}

void
config_free(Config *config)
{
  if (!config)
    return;
  for (gsize i = 0; i < config->n_values; i++) {
    g_free(config->values[i].str);
    g_strfreev(config->values[i].list);
  }
  g_free(config->values);
  g_hash_table_unref(config->settings);
  g_ptr_array_unref(config->order);
  g_ptr_array_unref(config->files);
  g_ptr_array_unref(config->warnings);
  g_free(config->dir);
  g_free(config);
}

/* config_load(), with main.cf's text taken from main_text when it is not
 * NULL (config-edit.c checks a main.cf before it writes it). */
Config *
config_load_main_text(const char *dir, const char *main_text, const char *const *overrides,
                      GError **error)
{
  g_autoptr(Config) config = g_new0(Config, 1);
  const ParamDef *table = param_table(&config->n_values);
  config->dir = g_strdup(config_dir_resolve(dir));
  config->files = g_ptr_array_new_with_free_func(g_free);
  config->order = g_ptr_array_new_with_free_func((GDestroyNotify) setting_free);
  config->settings = g_hash_table_new(g_str_hash, g_str_equal);
  config->values = g_new0(ParamValue, config->n_values);
  config->warnings = g_ptr_array_new_with_free_func(g_free);

  g_autofree char *main_cf = g_build_filename(config->dir, "main.cf", NULL);
  g_autofree char *text = g_strdup(main_text);
  if (!(text ? config_read_text(config, main_cf, text, strlen(text), error)
             : config_read_file(config, main_cf, TRUE, error))
      || !config_read_conf_d(config, config->dir, error))
    return NULL;
  if (overrides && *overrides) {
    char *file = g_strdup("command line");
    g_ptr_array_add(config->files, file);
    for (const char *const *o = overrides; *o; o++)
      if (!config_add_setting(config, *o, file, 0, error))
        return NULL;
  }

  g_autoptr(GHashTable) warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  Expander ex = {
    .config = config, .cache = config->values, .warnings = config->warnings, .warned = warned,
  };
  ex.stack = g_ptr_array_new();
  gboolean ok = TRUE;
  for (gsize i = 0; ok && i < config->n_values; i++) {
    g_autofree char *value = NULL;
    ok = config_expand_param(&ex, table[i].name, &value, error)
         && config_convert(config, &table[i], &config->values[i], error);
  }
  g_ptr_array_unref(ex.stack);
  if (!ok)
    return NULL;
  config_warn_unused(config);
  return g_steal_pointer(&config);
}

Config *
config_load(const char *dir, const char *const *overrides, GError **error)
{
  return config_load_main_text(dir, NULL, overrides, error);
}

const GPtrArray *
config_warnings(const Config *config)
{
  return config->warnings;
}

const char *
config_get_dir(const Config *config)
{
  return config->dir;
}

/* Finds the loaded value of a known parameter; g_error on misuse. */
static const ParamValue *
config_value(const Config *config, const char *name, ParamType want, ParamType also)
{
  const ParamDef *def = param_lookup(name);
  if (!def)
    g_error("config: unknown parameter '%s' requested", name);
  if (def->type != want && def->type != also)
    g_error("config: parameter '%s' is a %s, not a %s", name, param_type_name(def->type),
            param_type_name(want));
  return &config->values[config_param_index(def)];
}

/* Any known parameter may be read as its expanded string. */
const char *
config_str(const Config *config, const char *name)
{
  const ParamDef *def = param_lookup(name);
  if (!def)
    g_error("config: unknown parameter '%s' requested", name);
  return config->values[config_param_index(def)].str;
}

gboolean
config_bool(const Config *config, const char *name)
{
  return config_value(config, name, PARAM_BOOL, PARAM_BOOL)->num != 0;
}

gint64
config_int(const Config *config, const char *name)
{
  return config_value(config, name, PARAM_INT, PARAM_INT)->num;
}

gint64
config_time(const Config *config, const char *name)
{
  return config_value(config, name, PARAM_TIME, PARAM_TIME)->num;
}

gint64
config_size(const Config *config, const char *name)
{
  return config_value(config, name, PARAM_SIZE, PARAM_SIZE)->num;
}

const char *const *
config_list(const Config *config, const char *name)
{
  return (const char *const *) config_value(config, name, PARAM_LIST, PARAM_TABLES)->list;
}

const char *
config_raw(const Config *config, const char *name)
{
  const Setting *s = g_hash_table_lookup(config->settings, name);
  return s ? s->value : NULL;
}

gboolean
config_source(const Config *config, const char *name, const char **file, int *line)
{
  const Setting *s = g_hash_table_lookup(config->settings, name);
  if (file)
    *file = s ? s->file : NULL;
  if (line)
    *line = s ? s->line : 0;
  return s != NULL;
}

char *
config_expand(const Config *config, const char *text, GError **error)
{
  Expander ex = { .config = config };
  ex.stack = g_ptr_array_new();
  GString *out = g_string_new(NULL);
  gboolean ok = config_expand_text(&ex, text, NULL, NULL, out, error);
  g_ptr_array_unref(ex.stack);
  if (!ok) {
    g_string_free(out, TRUE);
    return NULL;
  }
  return g_string_free(out, FALSE);
}
