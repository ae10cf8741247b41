/* config-expand.c - Postfix $-expansion of parameter values, and the
 * defaults computed from the host or the build.
 *
 * Follows Postfix's mac_expand(): $name, ${name}, $(name), ${name?text},
 * ${name:text}, ${name?{t1}:{t2}}, "$$" for a literal '$'.  Loops and
 * deep nesting are errors; undefined names expand to empty with a
 * warning.  Never logs: problems become GErrors or Expander warnings.
 */
#include "config-private.h"
#include "mynetworks.h"

#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_NESTING 100

static void
expander_warn(Expander *ex, const Setting *where, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
expander_warn(Expander *ex, const Setting *where, const char *fmt, ...)
{
  if (!ex->warnings)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *loc = config_setting_where(where);
  char *line = g_strdup_printf("%s: warning: %s", loc, text);
  if (!g_hash_table_add(ex->warned, line))
    return;     /* already reported; the set owns line either way */
  g_ptr_array_add(ex->warnings, g_strdup(line));
}

static gboolean
is_name_char(char c)
{
  return g_ascii_isalnum(c) || c == '_';
}

/* Computes the defaults that depend on the host or the build. */
static gboolean
compute_default(Expander *ex, const char *name, char **value, GError **error)
{
  if (strcmp(name, "myhostname") == 0) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
      g_strlcpy(host, "localhost", sizeof host);
    if (strchr(host, '.')) {
      *value = g_strdup(host);
      return TRUE;
    }
    /* Like Postfix: a dotless host name gets $mydomain if set, else localdomain. */
    g_autofree char *domain = NULL;
    if (g_hash_table_contains(ex->config->settings, "mydomain")
        && !config_expand_param(ex, "mydomain", &domain, error))
      return FALSE;
    *value = g_strdup_printf("%s.%s", host, domain && *domain ? domain : "localdomain");
    return TRUE;
  }
  if (strcmp(name, "mydomain") == 0) {
    g_autofree char *host = NULL;
    if (!config_expand_param(ex, "myhostname", &host, error))
      return FALSE;
    const char *dot = host ? strchr(host, '.') : NULL;
    *value = g_strdup(dot && dot[1] ? dot + 1 : "localdomain");
    return TRUE;
  }
  if (strcmp(name, "mynetworks") == 0) {
    /* Only when main.cf leaves it unset: from mynetworks_style. */
    g_autofree char *style = NULL, *protocols = NULL;
    g_autoptr(GArray) ifaces = NULL;
    g_autoptr(GError) local = NULL;
    if (!config_expand_param(ex, "mynetworks_style", &style, error)
        || !config_expand_param(ex, "inet_protocols", &protocols, error))
      return FALSE;
    ifaces = mynetworks_interfaces(protocols, &local);
    *value = ifaces != NULL
        ? mynetworks_for_style(g_strstrip(style), (const InetInterface *) ifaces->data,
                               ifaces->len, &local)
        : NULL;
    if (*value == NULL) {
      g_autofree char *loc = config_setting_where(
          g_hash_table_lookup(ex->config->settings, "mynetworks_style"));
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: parameter mynetworks_style: %s",
                  loc, local->message);
      return FALSE;
    }
    return TRUE;
  }
  if (strcmp(name, "mail_version") == 0) {
    *value = g_strdup(POSTERN_VERSION);
    return TRUE;
  }
  if (strcmp(name, "config_directory") == 0) {
    *value = g_strdup(ex->config->dir);
    return TRUE;
  }
  g_error("config: parameter %s has no default and no computation", name);
}

/* Fails with "file:line: parameter x: recursive expansion (a -> b -> a)". */
static gboolean
expand_loop_error(Expander *ex, const char *name, GError **error)
{
  guint start = 0;
  for (guint i = 0; i < ex->stack->len; i++)
    if (strcmp(ex->stack->pdata[i], name) == 0)
      start = i;
  g_autoptr(GString) chain = g_string_new(NULL);
  for (guint i = start; i < ex->stack->len; i++)
    g_string_append_printf(chain, "%s -> ", (const char *) ex->stack->pdata[i]);
  g_string_append(chain, name);
  /* Blame the innermost parameter that was set in a file: that is where the loop closes. */
  const char *culprit = name;
  const Setting *where = NULL;
  for (guint i = ex->stack->len; i-- > start;) {
    where = g_hash_table_lookup(ex->config->settings, ex->stack->pdata[i]);
    if (where) {
      culprit = ex->stack->pdata[i];
      break;
    }
  }
  g_autofree char *loc = config_setting_where(where);
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "%s: parameter %s: recursive expansion (%s)", loc, culprit, chain->str);
  return FALSE;
}

/* Sets *value to the expanded value of name, or NULL when name is undefined. */
gboolean
config_expand_param(Expander *ex, const char *name, char **value, GError **error)
{
  const ParamDef *def = param_lookup(name);
  *value = NULL;
  if (def && ex->config->values[config_param_index(def)].str) {
    *value = g_strdup(ex->config->values[config_param_index(def)].str);
    return TRUE;
  }
  const Setting *setting = g_hash_table_lookup(ex->config->settings, name);
  if (!setting && !def)
    return TRUE;
  for (guint i = 0; i < ex->stack->len; i++)
    if (strcmp(ex->stack->pdata[i], name) == 0)
      return expand_loop_error(ex, name, error);
  if (ex->stack->len >= CONFIG_MAX_NESTING) {
    g_autofree char *loc = config_setting_where(setting);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s: parameter %s: expansion nested too deeply", loc, name);
    return FALSE;
  }

  g_ptr_array_add(ex->stack, (gpointer) name);
  gboolean ok;
  g_autofree char *result = NULL;
  if (def != NULL && def->type == PARAM_TEMPLATE) {
    /* Expanded by its user, with names only it knows ($rbl_code). */
    result = g_strdup(setting ? setting->value : def->def);
    ok = TRUE;
  } else if (setting || def->def) {
    GString *out = g_string_new(NULL);
    ok = config_expand_text(ex, setting ? setting->value : def->def, name, setting, out, error);
    result = g_string_free(out, FALSE);
  } else {
    ok = compute_default(ex, name, &result, error);
  }
  g_ptr_array_remove_index(ex->stack, ex->stack->len - 1);
  if (!ok)
    return FALSE;
  if (def && ex->cache)
    ex->cache[config_param_index(def)].str = g_strdup(result);
  *value = g_steal_pointer(&result);
  return TRUE;
}

static gboolean
expand_syntax_error(const char *owner, const Setting *where, GError **error,
                    const char *reason, const char *text)
{
  if (!owner) {   /* config_expand() on text that is not a parameter value */
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: \"%s\"", reason, text);
    return FALSE;
  }
  g_autofree char *loc = config_setting_where(where);
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "%s: parameter %s: %s: \"%s\"", loc, owner, reason, text);
  return FALSE;
}

/* Splits a ?/: operand: "{text}" (blanks around ignored) or the rest of the input.
 * Returns the operand and sets *rest to what follows it. */
static char *
expand_operand(const char *p, const char **rest)
{
  const char *q = p + strspn(p, " \t\r\n");
  if (*q != '{') {
    *rest = p + strlen(p);
    return g_strdup(p);
  }
  int level = 0;
  for (const char *e = q; *e; e++) {
    if (*e == '{')
      level++;
    else if (*e == '}' && --level == 0) {
      *rest = e + 1 + strspn(e + 1, " \t\r\n");
      return g_strndup(q + 1, (gsize) (e - q - 1));
    }
  }
  *rest = NULL;   /* unbalanced */
  return NULL;
}

/* Expands the inside of ${...} or $(...). */
static gboolean
expand_braced(Expander *ex, const char *inner, const char *owner, const Setting *where,
              GString *out, GError **error)
{
  const char *p = inner;
  while (is_name_char(*p))
    p++;
  if (p == inner || (*p && *p != '?' && *p != ':'))
    return expand_syntax_error(owner, where, error, "bad parameter name in ${...}", inner);
  g_autofree char *name = g_strndup(inner, (gsize) (p - inner));

  g_autofree char *if_true = NULL;
  g_autofree char *if_false = NULL;
  if (*p == '?') {
    const char *rest;
    if_true = expand_operand(p + 1, &rest);
    if (!rest)
      return expand_syntax_error(owner, where, error, "unbalanced {} in expression", inner);
    if (*rest == ':') {
      if_false = expand_operand(rest + 1, &rest);
      if (!rest)
        return expand_syntax_error(owner, where, error, "unbalanced {} in expression", inner);
    }
    if (*rest)
      return expand_syntax_error(owner, where, error, "unexpected text after {...}", inner);
  } else if (*p == ':') {
    const char *rest;
    if_false = expand_operand(p + 1, &rest);
    if (!rest)
      return expand_syntax_error(owner, where, error, "unbalanced {} in expression", inner);
    if (*rest)
      return expand_syntax_error(owner, where, error, "unexpected text after {...}", inner);
  }

  if (ex->referenced) {
    if (!g_hash_table_contains(ex->referenced, name))
      g_hash_table_add(ex->referenced, g_strdup(name));
    return (!if_true || config_expand_text(ex, if_true, owner, where, out, error))
           && (!if_false || config_expand_text(ex, if_false, owner, where, out, error));
  }

  g_autofree char *value = NULL;
  if (!config_expand_param(ex, name, &value, error))
    return FALSE;
  if (!*p) {
    if (value)
      g_string_append(out, value);
    else
      expander_warn(ex, where, "parameter %s: undefined parameter: %s (expands to empty)",
                    owner, name);
    return TRUE;
  }
  const char *branch = value && *value ? if_true : if_false;
  return !branch || config_expand_text(ex, branch, owner, where, out, error);
}

/* Appends text with every $ reference expanded to out (or, in scan mode,
 * only records the names).  owner/where say whose value text is. */
gboolean
config_expand_text(Expander *ex, const char *text, const char *owner, const Setting *where,
                   GString *out, GError **error)
{
  if (++ex->depth > CONFIG_MAX_NESTING) {
    ex->depth--;
    return expand_syntax_error(owner, where, error, "expression nested too deeply", text);
  }
  gboolean ok = TRUE;
  const char *p = text;
  while (ok && *p) {
    const char *dollar = strchr(p, '$');
    if (!dollar) {
      g_string_append(out, p);
      break;
    }
    g_string_append_len(out, p, dollar - p);
    p = dollar + 1;
    if (*p == '$') {
      g_string_append_c(out, '$');
      p++;
    } else if (*p == '{' || *p == '(') {
      char open = *p, close = open == '{' ? '}' : ')';
      int level = 0;
      const char *end = p;
      for (; *end; end++) {
        if (*end == open)
          level++;
        else if (*end == close && --level == 0)
          break;
      }
      if (!*end) {
        ok = expand_syntax_error(owner, where, error, "unbalanced ${ or $(", dollar);
        break;
      }
      g_autofree char *inner = g_strndup(p + 1, (gsize) (end - p - 1));
      ok = expand_braced(ex, inner, owner, where, out, error);
      p = end + 1;
    } else if (is_name_char(*p)) {
      const char *start = p;
      while (is_name_char(*p))
        p++;
      g_autofree char *name = g_strndup(start, (gsize) (p - start));
      ok = expand_braced(ex, name, owner, where, out, error);
    } else {
      ok = expand_syntax_error(owner, where, error,
                               "'$' not followed by a parameter name (use $$ for '$')", text);
    }
  }
  ex->depth--;
  return ok;
}
