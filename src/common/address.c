/* address.c - RFC 5321 path and mailbox syntax.
 *
 * Owns the scanning of "<local@domain>" paths from MAIL/RCPT and the
 * small helpers around addresses (domain, local part, quoting).  Pure
 * string code: no I/O, no logging, and at most one allocation per parsed
 * address because it runs for every SMTP command.
 *
 * Deliberate leniencies (as Postfix): a path without a domain
 * ("<postmaster>", bare "hadoop" when allow_bare) is accepted and left for
 * the caller to complete with $myorigin; 8-bit bytes are accepted in
 * local parts and in the domain labels of a mailbox (SMTPUTF8 U-labels:
 * smtpd checks that they are UTF-8 and that SMTPUTF8 was asked for).
 * Domains are otherwise strict: letters, digits, hyphens, dots, or an
 * IPv4/IPv6 address literal; a host name (address_domain_is_valid) is
 * ASCII only.
 */
#include "address.h"
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#define ADDRESS_LITERAL_MAX 64

/* RFC 5322 atext, plus 8-bit bytes (SMTPUTF8-style local parts). */
static gboolean
address_is_atext(guchar c)
{
  if (g_ascii_isalnum(c) || c >= 0x80)
    return TRUE;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
  case '+': case '-': case '/': case '=': case '?': case '^': case '_':
  case '`': case '{': case '|': case '}': case '~':
    return TRUE;
  default:
    return FALSE;
  }
}

/* Scans a local part (dot-atom or quoted string) starting at p; returns
 * the end or NULL with *why set. */
static const char *
address_scan_local(const char *p, const char **why)
{
  if (*p == '"') {
    for (p++;; p++) {
      guchar c = (guchar) *p;
      if (c == '"')
        return p + 1;
      if (c == '\0') {
        *why = "unterminated quoted string";
        return NULL;
      }
      if (c == '\\') {
        c = (guchar) p[1];
        if (c < 0x20 || c == 0x7f) {
          *why = c == '\0' ? "unterminated quoted string" : "invalid character in address";
          return NULL;
        }
        p++;
      } else if (c < 0x20 || c == 0x7f) {
        *why = "invalid character in address";
        return NULL;
      }
    }
  }
  const char *start = p;
  for (;;) {
    const char *atom = p;
    while (address_is_atext((guchar) *p))
      p++;
    if (p == atom) {
      *why = p == start && (*p == '@' || *p == '>' || *p == '\0')
               ? "empty local part" : "invalid local part";
      return NULL;
    }
    if (*p != '.')
      return p;
    p++;
  }
}

/* Checks an address literal body (between the brackets). */
static gboolean
address_literal_is_valid(const char *body, gsize len)
{
  char buf[ADDRESS_LITERAL_MAX + 1];
  guchar addr[16];

  if (len == 0 || len > ADDRESS_LITERAL_MAX)
    return FALSE;
  memcpy(buf, body, len);
  buf[len] = '\0';
  if (g_ascii_strncasecmp(buf, "IPv6:", 5) == 0)
    return inet_pton(AF_INET6, buf + 5, addr) == 1;
  return inet_pton(AF_INET, buf, addr) == 1;
}

/* Scans a domain or address literal at p; returns the end or NULL.
 * utf8: labels may also hold bytes over 127 (RFC 6531 U-labels; whether
 * they are well-formed UTF-8 is the caller's check), each label at most
 * 63 characters. */
static const char *
address_scan_domain(const char *p, gboolean utf8, const char **why)
{
  const char *start = p;

  if (*p == '[') {
    const char *close = p + 1;
    while (*close && *close != ']' && *close != '[' && (guchar) *close > 0x20 && *close != 0x7f)
      close++;
    if (*close != ']') {
      *why = *close == '\0' ? "unbalanced brackets in address literal" : "invalid address literal";
      return NULL;
    }
    if (!address_literal_is_valid(p + 1, (gsize) (close - p - 1))) {
      *why = "invalid address literal";
      return NULL;
    }
    return close + 1;
  }
  for (;;) {
    const char *label = p;
    gsize chars = 0;
    while (g_ascii_isalnum(*p) || *p == '-' || (utf8 && (guchar) *p >= 0x80)) {
      if (((guchar) *p & 0xc0) != 0x80)   /* not a UTF-8 continuation byte */
        chars++;
      p++;
    }
    gsize n = (gsize) (p - label);
    if (n == 0 || chars > 63 || label[0] == '-' || p[-1] == '-') {
      *why = n == 0 && p == start ? "missing domain" : "invalid domain";
      return NULL;
    }
    if (*p != '.')
      break;
    p++;
  }
  if (p - start > 255) {
    *why = "domain too long";
    return NULL;
  }
  return p;
}

/* Scans "local[@domain]"; returns the end or NULL. */
static const char *
address_scan_mailbox(const char *p, gboolean allow_no_domain, const char **why)
{
  p = address_scan_local(p, why);
  if (!p)
    return NULL;
  if (*p != '@') {
    if (!allow_no_domain) {
      *why = "missing domain";
      return NULL;
    }
    return p;
  }
  return address_scan_domain(p + 1, TRUE, why);
}

static gboolean
address_fail(GError **error, const char *why)
{
  g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX, why);
  return FALSE;
}

/* Error text for an unexpected byte after a mailbox. */
static const char *
address_trailing_why(char c)
{
  if (c == '\0')
    return "unbalanced angle brackets";
  if (c == '\r' || c == '\n' || (guchar) c < 0x20 || c == 0x7f)
    return "invalid character in address";
  if (c == '<' || c == '>')
    return "unbalanced angle brackets";
  return "invalid character in address";
}

gboolean
address_parse_path(const char *text, gboolean allow_null, gboolean allow_bare,
                   char **address, const char **rest, GError **error)
{
  const char *why = NULL;
  const char *p = text;
  const char *start, *end;

  if (*p == '\0')
    return address_fail(error, "missing address");
  if (*p != '<') {
    if (!allow_bare)
      return address_fail(error, "missing angle brackets around address");
    start = p;
    end = address_scan_mailbox(p, TRUE, &why);
    if (!end)
      return address_fail(error, why);
    if (*end != '\0' && *end != ' ' && *end != '\t')
      return address_fail(error, address_trailing_why(*end));
    if (end - start > ADDRESS_MAX)
      return address_fail(error, "address too long");
    *address = g_strndup(start, (gsize) (end - start));
    *rest = end;
    return TRUE;
  }

  p++;
  if (*p == '@') {
    /* Source route "@a,@b:" - obsolete, ignored (RFC 5321 4.1.2). */
    for (;;) {
      p = address_scan_domain(p + 1, FALSE, &why);
      if (!p)
        return address_fail(error, "invalid source route");
      if (*p == ':')
        break;
      if (*p != ',' || p[1] != '@')
        return address_fail(error, "invalid source route");
      p++;
    }
    p++;
  }
  if (*p == '>') {
    if (!allow_null || p != text + 1)
      return address_fail(error, "null address not allowed here");
    *address = g_strdup("");
    *rest = p + 1;
    return TRUE;
  }
  start = p;
  end = address_scan_mailbox(p, TRUE, &why);
  if (!end)
    return address_fail(error, why);
  if (*end != '>')
    return address_fail(error, address_trailing_why(*end));
  if (end - start > ADDRESS_MAX)
    return address_fail(error, "address too long");
  *address = g_strndup(start, (gsize) (end - start));
  *rest = end + 1;
  return TRUE;
}

gboolean
address_is_valid(const char *address, gboolean allow_no_domain)
{
  const char *why = NULL;
  const char *end;

  if (!address || strlen(address) > ADDRESS_MAX)
    return FALSE;
  end = address_scan_mailbox(address, allow_no_domain, &why);
  return end != NULL && *end == '\0';
}

const char *
address_at_sign(const char *address)
{
  const char *at = NULL;
  gboolean quoted = FALSE;

  for (const char *p = address; *p; p++) {
    if (quoted && *p == '\\' && p[1]) {
      p++;
    } else if (*p == '"') {
      quoted = !quoted;
    } else if (*p == '@' && !quoted) {
      at = p;
    }
  }
  return at;
}

char *
address_domain(const char *address)
{
  const char *at = address_at_sign(address);
  return at ? g_ascii_strdown(at + 1, -1) : g_strdup("");
}

char *
address_local_unquoted(const char *address)
{
  const char *at = address_at_sign(address);
  gsize len = at ? (gsize) (at - address) : strlen(address);
  char *out = g_malloc(len + 1);
  char *o = out;
  gboolean quoted = FALSE;

  for (gsize i = 0; i < len; i++) {
    char c = address[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (quoted && c == '\\' && i + 1 < len) {
      *o++ = address[++i];
    } else {
      *o++ = c;
    }
  }
  *o = '\0';
  return out;
}

/* TRUE when s is a dot-atom (needs no quoting). */
static gboolean
address_is_dot_atom(const char *s)
{
  const char *why = NULL;
  if (*s == '"')
    return FALSE;
  const char *end = address_scan_local(s, &why);
  return end != NULL && *end == '\0';
}

char *
address_join(const char *local, const char *domain)
{
  GString *out = g_string_sized_new(strlen(local) + (domain ? strlen(domain) : 0) + 4);

  if (address_is_dot_atom(local)) {
    g_string_append(out, local);
  } else {
    g_string_append_c(out, '"');
    for (const char *p = local; *p; p++) {
      if (*p == '"' || *p == '\\')
        g_string_append_c(out, '\\');
      g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
  }
  if (domain && *domain) {
    g_string_append_c(out, '@');
    g_string_append(out, domain);
  }
  return g_string_free(out, FALSE);
}

char *
address_strip_extension(const char *local, const char *delimiters, char **extension)
{
  gsize len;

  if (extension)
    *extension = NULL;
  if (!delimiters || !*delimiters)
    return g_strdup(local);
  /* Never split these, whatever the delimiter (as Postfix split_addr). */
  if (g_ascii_strcasecmp(local, "postmaster") == 0 || g_ascii_strcasecmp(local, "MAILER-DAEMON") == 0)
    return g_strdup(local);
  if (strchr(delimiters, '-')) {
    gsize n = strlen(local);
    if (g_ascii_strncasecmp(local, "owner-", 6) == 0)
      return g_strdup(local);
    if (n > 8 && g_ascii_strcasecmp(local + n - 8, "-request") == 0)
      return g_strdup(local);
  }
  len = strcspn(local, delimiters);
  if (len == 0 || local[len] == '\0')
    return g_strdup(local);
  if (extension)
    *extension = g_strdup(local + len + 1);
  return g_strndup(local, len);
}

gboolean
address_domain_is_valid(const char *domain)
{
  const char *why = NULL;
  const char *end;

  if (!domain)
    return FALSE;
  end = address_scan_domain(domain, FALSE, &why);
  return end != NULL && *end == '\0';
}

gboolean
address_domain_in_list(const char *domain, const char *const *list)
{
  if (!domain || !list)
    return FALSE;
  for (; *list; list++) {
    if (g_ascii_strcasecmp(domain, *list) == 0)
      return TRUE;
  }
  return FALSE;
}
