/* template.h - Postfix's per-use $name expansion (mac_expand): $name,
 * ${name}, $(name), ${name?text} (text when name has a value),
 * ${name:text} (text when it has none) and $$.  Texts expand again. */
#pragma once

#include <glib.h>

/* The value of name, or NULL (or "") when it has none. */
typedef const char *(*TemplateLookup)(const char *name, gpointer data);

/* The expansion of template; *undefined (may be NULL) is set when a plain
 * $name had no value (Postfix's MAC_PARSE_UNDEF: forward_path skips such
 * an entry). */
char *template_expand(const char *template, TemplateLookup lookup, gpointer data,
                      gboolean *undefined);
