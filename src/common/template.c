/* template.c - $name expansion of per-use templates (see template.h). */
#include "template.h"

#include <string.h>

static void
template_expand_into(GString *out, const char *template, TemplateLookup lookup, gpointer data,
                     gboolean *undefined)
{
  for (const char *p = template; *p != '\0';) {
    g_autofree char *name = NULL, *arg = NULL;
    const char *value;
    gboolean set;
    char op = 0;

    if (*p != '$') {
      g_string_append_c(out, *p++);
      continue;
    }
    p++;
    if (*p == '$') {
      g_string_append_c(out, *p++);
      continue;
    }
    if (*p == '{' || *p == '(') {
      char close = *p == '{' ? '}' : ')';
      const char *end = strchr(p + 1, close);
      gsize n;
      const char *q;

      if (end == NULL)
        break;
      n = strcspn(p + 1, "?:}) ");
      name = g_strndup(p + 1, MIN(n, (gsize) (end - p - 1)));
      q = p + 1 + strlen(name);
      if ((*q == '?' || *q == ':') && q < end) {
        /* the text may hold "${name}" itself: find the matching close */
        int depth = 0;
        const char *e = q + 1;

        op = *q;
        for (; *e != '\0' && !(depth == 0 && *e == close); e++)
          depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
        arg = g_strndup(q + 1, (gsize) (e - q - 1));
        end = *e != '\0' ? e : e - 1;
      }
      p = end + 1;
    } else {
      gsize n = 0;

      while (g_ascii_isalnum(p[n]) || p[n] == '_')
        n++;
      name = g_strndup(p, n);
      p += n;
    }
    value = lookup(name, data);
    set = value != NULL && *value != '\0';
    if (op == '?' && set)
      template_expand_into(out, arg, lookup, data, undefined);
    else if (op == ':' && !set)
      template_expand_into(out, arg, lookup, data, undefined);
    else if (op == 0 && set)
      g_string_append(out, value);
    else if (op == 0 && undefined != NULL)
      *undefined = TRUE;
  }
}

char *
template_expand(const char *template, TemplateLookup lookup, gpointer data, gboolean *undefined)
{
  GString *out = g_string_new(NULL);

  if (undefined != NULL)
    *undefined = FALSE;
  template_expand_into(out, template, lookup, data, undefined);
  return g_string_free(out, FALSE);
}
