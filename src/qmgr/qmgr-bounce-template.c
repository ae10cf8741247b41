/* qmgr-bounce-template.c - bounce_template_file (Postfix's bounce(5)):
 * failure_template, delay_template and success_template replace the
 * built-in From:, Subject:, charset and text of the notices;
 * verify_template is accepted and unused (no address verification).
 *
 *   failure_template = <<EOF
 *   Charset: us-ascii
 *   From: MAILER-DAEMON (Mail Delivery System)
 *   Subject: Undelivered Mail Returned to Sender
 *   Postmaster-Subject: Postmaster Copy: Undelivered Mail
 *
 *   This is the mail system at host $myhostname.
 *   ...
 *   EOF
 *
 * Outside a template, "#" lines and blank lines are ignored.  The text is
 * $-expanded when a notice is made: main.cf parameters, and a time
 * parameter with _seconds, _minutes, _hours, _days or _weeks appended
 * ($delay_warning_time_hours) as that many whole units.
 */
#include "qmgr.h"

#include <errno.h>
#include <string.h>

#include "params.h"
#include "template.h"

void
qmgr_bounce_template_free(QmgrBounceTemplate *t)
{
  if (t == NULL)
    return;
  g_free(t->charset);
  g_free(t->from);
  g_free(t->subject);
  g_free(t->pm_subject);
  g_free(t->text);
  g_free(t);
}

static int
template_index(const char *name)
{
  static const char *const names[] = { "failure_template", "delay_template", "success_template",
                                       "verify_template" };

  for (int i = 0; i < (int) G_N_ELEMENTS(names); i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return -1;
}

/* TRUE when line is word alone (white space around it allowed). */
static gboolean
line_is_word(const char *line, const char *word)
{
  gsize lead = strspn(line, " \t"), n = strlen(word);

  return strncmp(line + lead, word, n) == 0 && line[lead + n + strspn(line + lead + n, " \t\r")]
                                                == '\0';
}

/* The header lines and text of one template (lines between << and the
 * end word). */
static QmgrBounceTemplate *
template_parse_body(char **lines, guint first, guint end, const char *path, GError **error)
{
  QmgrBounceTemplate *t = g_new0(QmgrBounceTemplate, 1);
  guint i = first;
  GString *text = g_string_new(NULL);

  for (; i < end && *lines[i] != '\0'; i++) {
    const char *colon = strchr(lines[i], ':');
    g_autofree char *name = colon ? g_strndup(lines[i], (gsize) (colon - lines[i])) : NULL;
    char **slot = NULL;

    if (name != NULL) {
      g_strstrip(name);
      slot = g_ascii_strcasecmp(name, "Charset") == 0 ? &t->charset
             : g_ascii_strcasecmp(name, "From") == 0 ? &t->from
             : g_ascii_strcasecmp(name, "Subject") == 0 ? &t->subject
             : g_ascii_strcasecmp(name, "Postmaster-Subject") == 0 ? &t->pm_subject : NULL;
    }
    if (slot == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s, line %u: not a template header (Charset:, From:, Subject:, "
                  "Postmaster-Subject:): %s", path, i + 1, lines[i]);
      g_string_free(text, TRUE);
      qmgr_bounce_template_free(t);
      return NULL;
    }
    g_free(*slot);
    *slot = g_strstrip(g_strdup(colon + 1));
  }
  for (i++; i < end; i++)
    g_string_append_printf(text, "%s\n", lines[i]);
  t->text = g_string_free(text, FALSE);
  return t;
}

gboolean
qmgr_bounce_templates_load(const char *path, QmgrBounceTemplate **out, GError **error)
{
  g_autofree char *data = NULL;
  g_auto(GStrv) lines = NULL;
  QmgrBounceTemplate *found[QMGR_BOUNCE_TEMPLATES] = { NULL };
  g_autoptr(GError) local = NULL;

  if (!g_file_get_contents(path, &data, NULL, &local)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s", local->message);
    return FALSE;
  }
  lines = g_strsplit(data, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    g_strchomp(lines[i]);     /* CRLF files too */
  for (guint i = 0; lines[i]; i++) {
    char *line = lines[i], *eq, *mark;
    g_autofree char *name = NULL, *word = NULL;
    guint end;
    int k;

    if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#')
      continue;
    eq = strchr(line, '=');
    mark = eq ? strstr(eq, "<<") : NULL;
    if (eq == NULL || mark == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s, line %u: expected \"name = <<EOF\": %s", path, i + 1, line);
      goto fail;
    }
    name = g_strstrip(g_strndup(line, (gsize) (eq - line)));
    word = g_strstrip(g_strdup(mark + 2));
    k = template_index(name);
    if (k < 0 || *word == '\0' || strpbrk(word, "'\"") != NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "%s, line %u: %s", path, i + 1,
                  k < 0 ? "unknown template (failure_template, delay_template, "
                          "success_template, verify_template)"
                        : "the end word after << must be plain (EOF)");
      goto fail;
    }
    for (end = i + 1; lines[end] && !line_is_word(lines[end], word); end++)
      ;
    if (lines[end] == NULL) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s, line %u: %s has no end "
                  "line \"%s\"", path, i + 1, name, word);
      goto fail;
    }
    if (k < QMGR_BOUNCE_TEMPLATES) {
      QmgrBounceTemplate *t = template_parse_body(lines, i + 1, end, path, error);

      if (t == NULL)
        goto fail;
      qmgr_bounce_template_free(found[k]);
      found[k] = t;
    }
    i = end;
  }
  for (int k = 0; k < QMGR_BOUNCE_TEMPLATES; k++)
    out[k] = found[k];
  return TRUE;
fail:
  for (int k = 0; k < QMGR_BOUNCE_TEMPLATES; k++)
    qmgr_bounce_template_free(found[k]);
  return FALSE;
}

/* $name in a template: a main.cf parameter, or a time parameter in
 * whole units. */
typedef struct {
  const Config *config;
  char buf[32];
} TemplateNames;

static const char *
template_lookup(const char *name, gpointer data)
{
  static const struct {
    const char *suffix;
    gint64 seconds;
  } units[] = { { "_seconds", 1 }, { "_minutes", 60 }, { "_hours", 3600 }, { "_days", 86400 },
                { "_weeks", 7 * 86400 } };
  TemplateNames *n = data;
  const ParamDef *def = param_lookup(name);

  if (def != NULL && def->type != PARAM_TEMPLATE)
    return config_str(n->config, name);
  for (guint u = 0; u < G_N_ELEMENTS(units); u++)
    if (g_str_has_suffix(name, units[u].suffix)) {
      g_autofree char *base = g_strndup(name, strlen(name) - strlen(units[u].suffix));
      const ParamDef *bdef = param_lookup(base);

      if (bdef != NULL && bdef->type == PARAM_TIME) {
        g_snprintf(n->buf, sizeof n->buf, "%" G_GINT64_FORMAT,
                   config_time(n->config, base) / units[u].seconds);
        return n->buf;
      }
    }
  return NULL;
}

char *
qmgr_bounce_template_expand(const Config *config, const char *text)
{
  TemplateNames n = { .config = config };

  return template_expand(text, template_lookup, &n, NULL);
}
