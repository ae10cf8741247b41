/* config.h - main.cf and conf.d/NAME.cf loading with Postfix syntax.
 *
 * Syntax: "name = value"; a line that starts with white space continues
 * the previous one; "#" starts a comment line; $name, ${name},
 * ${name?value} (value if name is non-empty), ${name:value} (value if
 * name is empty), nested expansion, loop detection.  main.cf is read
 * first, then conf.d/NAME.cf in lexical order; later definitions win;
 * command-line overrides ("-o name=value", master.cf style) win over
 * all.  Errors carry "file:line: reason".  Unknown names are warnings.
 *
 * A Config is immutable once loaded, so any thread may read it; a reload
 * loads a new Config and swaps the pointer.
 */
#pragma once

#include <glib.h>
#include "params.h"

#define POSTERN_DEFAULT_CONFIG_DIR "/etc/postern"

typedef struct _Config Config;

/* POSTERN_ERROR domain, used by every library module. */
#define POSTERN_ERROR (postern_error_quark())
GQuark postern_error_quark(void);

typedef enum {
  POSTERN_ERROR_FAILED,       /* generic permanent failure */
  POSTERN_ERROR_CONFIG,       /* syntax or value error in configuration */
  POSTERN_ERROR_TEMPORARY,    /* try again later (4xx) */
  POSTERN_ERROR_NOT_FOUND,
  POSTERN_ERROR_SYNTAX,       /* malformed input from a peer */
  POSTERN_ERROR_CORRUPT,      /* damaged queue file */
  POSTERN_ERROR_UNKNOWN_PARAMETER,   /* a name that is not a parameter (config_edit_set) */
} PosternError;

/* Returns the directory to read: dir if non-NULL, else $POSTERN_CONFIG_DIR,
 * else /etc/postern. */
const char *config_dir_resolve(const char *dir);

/* Loads dir/main.cf (a missing main.cf means "all defaults") and
 * dir/conf.d/NAME.cf, then applies overrides ("name=value" strings, may be
 * NULL).  Every known parameter is expanded and checked against its type
 * and bounds; the first error fails the load with "file:line: reason". */
Config *config_load(const char *dir, const char *const *overrides, GError **error);

void config_free(Config *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

/* Warnings found while loading (unknown parameter names, ...), each
 * "file:line: warning: text".  Owned by the config. */
const GPtrArray *config_warnings(const Config *config);

/* The directory this config was read from. */
const char *config_get_dir(const Config *config);

/* Typed getters for known parameters.  Asking for a name that is not in
 * the parameter table, or with the wrong type, is a programming error
 * (g_error).  Returned strings/arrays are owned by the config. */
const char *config_str(const Config *config, const char *name);        /* expanded */
gboolean config_bool(const Config *config, const char *name);
gint64 config_int(const Config *config, const char *name);
gint64 config_time(const Config *config, const char *name);            /* seconds */
gint64 config_size(const Config *config, const char *name);            /* bytes */
const char *const *config_list(const Config *config, const char *name); /* NULL-terminated */

/* Raw (unexpanded) value and where it was set; NULL/0 for defaults. */
const char *config_raw(const Config *config, const char *name);
gboolean config_source(const Config *config, const char *name, const char **file, int *line);

/* Expands $name references in an arbitrary string against this config
 * (for values from tables etc). */
char *config_expand(const Config *config, const char *text, GError **error);

/* Helpers shared with other parsers. */
gboolean config_parse_bool(const char *text, gboolean *out);
gboolean config_parse_time(const char *text, char default_unit, gint64 *seconds);
gboolean config_parse_int(const char *text, gint64 *out);
/* Splits a Postfix list value (comma and/or white space); drops empties. */
char **config_split_list(const char *text);
