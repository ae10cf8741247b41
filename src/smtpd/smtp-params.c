/* smtp-params.c - ESMTP parameter values (see smtp-params.h).  Pure
 * string code: no I/O, no logging; refuses rather than repairs. */
#include <string.h>

#include "smtp-params.h"

static int
hex_upper(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;   /* lower-case hex is not xtext (RFC 3461 4) */
}

/* The end of a decoder: *out takes s when ok and not empty (an empty
 * value is no value); otherwise s is dropped.  Returns whether *out was set. */
static gboolean
decoded(GString *s, gboolean ok, char **out)
{
  if (!ok || s->len == 0) {
    g_string_free(s, TRUE);
    return FALSE;
  }
  *out = g_string_free(s, FALSE);
  return TRUE;
}

gboolean
smtp_xtext_decode(const char *xtext, char **out)
{
  GString *s = g_string_sized_new(strlen(xtext));

  for (const char *p = xtext; *p != '\0'; p++) {
    guchar c = (guchar) *p;
    if (c == '+') {
      int hi = hex_upper(p[1]), lo = hi < 0 ? -1 : hex_upper(p[2]);
      if (lo < 0)
        goto bad;
      c = (guchar) (hi * 16 + lo);
      p += 2;
      if (c < 0x20 || c > 0x7e)   /* control, CR, LF, NUL, DEL, 8-bit */
        goto bad;
    } else if (c < 33 || c > 126 || c == '=') {
      goto bad;
    }
    g_string_append_c(s, (char) c);
  }
  return decoded(s, TRUE, out);
bad:
  return decoded(s, FALSE, out);
}

gboolean
smtp_param_ret(const char *value, QueueRet *ret)
{
  if (g_ascii_strcasecmp(value, "FULL") == 0)
    *ret = QUEUE_RET_FULL;
  else if (g_ascii_strcasecmp(value, "HDRS") == 0)
    *ret = QUEUE_RET_HDRS;
  else
    return FALSE;
  return TRUE;
}

gboolean
smtp_param_envid(const char *value, char **envid)
{
  return strlen(value) <= SMTP_ENVID_MAX && smtp_xtext_decode(value, envid);
}

gboolean
smtp_param_notify(const char *value, guint *notify)
{
  return queue_notify_parse(value, notify);
}

/* RFC 5322 atext (ASCII only): the characters of an addr-type atom. */
static gboolean
is_atext(char c)
{
  return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A code point that may stand in a decoded address: no controls (C0, DEL,
 * C1), no surrogates, nothing past U+10FFFF. */
static gboolean
code_point_ok(gunichar u)
{
  return u >= 0x20 && u != 0x7f && !(u >= 0x80 && u <= 0x9f) && g_unichar_validate(u);
}

/* RFC 6533 section 3: utf-8-addr-xtext, decoded into UTF-8. */
static gboolean
uxtext_decode(const char *text, char **out)
{
  GString *s = g_string_sized_new(strlen(text));
  const char *p = text;

  if (!g_utf8_validate(text, -1, NULL))
    goto bad;
  while (*p != '\0') {
    gunichar u = g_utf8_get_char(p);
    if (u == '\\') {
      /* EmbeddedUnicodeChar: "\x{" 2..6 upper-case hex digits "}" */
      if (p[1] != 'x' || p[2] != '{')
        goto bad;
      const char *h = p + 3;
      gunichar v = 0;
      int n = 0;
      for (; *h != '}'; h++, n++) {
        int d = hex_upper(*h);
        if (d < 0 || n == 6)
          goto bad;
        v = v * 16 + (gunichar) d;
      }
      if (n < 2 || !code_point_ok(v))
        goto bad;
      g_string_append_unichar(s, v);
      p = h + 1;
      continue;
    }
    /* QCHAR: printable ASCII but "+", "=" and "\"; any other UTF-8 character */
    if (u < 0x80 ? (u < 33 || u > 126 || u == '+' || u == '=') : !code_point_ok(u))
      goto bad;
    const char *next = g_utf8_next_char(p);
    g_string_append_len(s, p, next - p);
    p = next;
  }
  return decoded(s, TRUE, out);
bad:
  return decoded(s, FALSE, out);
}

gboolean
smtp_param_orcpt(const char *value, char **orcpt)
{
  const char *semi = strchr(value, ';');
  g_autofree char *decoded = NULL;

  if (semi == NULL || semi == value)
    return FALSE;
  for (const char *p = value; p < semi; p++)
    if (!is_atext(*p))
      return FALSE;
  g_autofree char *type = g_strndup(value, semi - value);
  gboolean utf8 = g_ascii_strcasecmp(type, "utf-8") == 0;
  if (!(utf8 ? uxtext_decode(semi + 1, &decoded) : smtp_xtext_decode(semi + 1, &decoded)))
    return FALSE;
  if (g_ascii_strcasecmp(type, "rfc822") == 0 || utf8) {
    g_free(type);
    type = g_ascii_strdown(value, semi - value);
  }
  *orcpt = g_strconcat(type, ";", decoded, NULL);
  return TRUE;
}

gboolean
smtp_has_8bit(const char *s)
{
  for (; *s != '\0'; s++)
    if ((guchar) *s > 0x7f)
      return TRUE;
  return FALSE;
}
