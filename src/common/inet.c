/* inet.c - network address lists (mynetworks) and listener addresses.
 *
 * A NetList is a flat array of (family, address, prefix) entries; a match
 * walks it in order and the first hit decides ("!net" excludes, as in
 * Postfix match lists).  IPv4-mapped IPv6 peers (::ffff:a.b.c.d) are
 * matched as IPv4.  Table-valued entries ("/file", "type:table") are not
 * supported yet and fail with POSTERN_ERROR_CONFIG.  No I/O, no DNS.
 */
#include "inet.h"
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

typedef struct {
  int family;          /* AF_INET or AF_INET6 */
  guint prefix;        /* bits */
  gboolean negate;
  guchar addr[16];     /* network byte order, host bits zero */
} NetEntry;

struct _NetList {
  guint n;
  NetEntry entries[];
};

/* Parses a numeric address, with or without [brackets] and an optional
 * "IPv6:" tag, into family and bytes; v4-mapped IPv6 becomes IPv4. */
static gboolean
inet_parse_numeric(const char *text, gsize len, int *family, guchar addr[16])
{
  char buf[INET6_ADDRSTRLEN + 8];

  if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
    text++;
    len -= 2;
  }
  if (len >= 5 && g_ascii_strncasecmp(text, "IPv6:", 5) == 0) {
    text += 5;
    len -= 5;
  }
  if (len == 0 || len >= sizeof buf)
    return FALSE;
  memcpy(buf, text, len);
  buf[len] = '\0';
  if (inet_pton(AF_INET, buf, addr) == 1) {
    *family = AF_INET;
    return TRUE;
  }
  if (inet_pton(AF_INET6, buf, addr) == 1) {
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) addr)) {
      memmove(addr, addr + 12, 4);
      *family = AF_INET;
    } else {
      *family = AF_INET6;
    }
    return TRUE;
  }
  return FALSE;
}

/* TRUE when the address has bits set past prefix. */
static gboolean
inet_host_bits_set(const guchar *addr, guint bits, guint prefix)
{
  for (guint i = prefix; i < bits; i++) {
    if (addr[i / 8] & (0x80 >> (i % 8)))
      return TRUE;
  }
  return FALSE;
}

/* TRUE for entries that name a table or file ("/etc/x", "cidr:/etc/x"). */
static gboolean
inet_entry_is_table(const char *text)
{
  const char *p = text;

  if (*p == '/')
    return TRUE;
  if (!g_ascii_isalpha(*p))
    return FALSE;
  while (g_ascii_isalnum(*p) || *p == '_')
    p++;
  return *p == ':' && !g_ascii_isxdigit(p[1]) && p[1] != ':';
}

static gboolean
inet_entry_parse(const char *text, NetEntry *e, GError **error)
{
  const char *p = text;
  const char *slash;
  guint bits;

  memset(e, 0, sizeof *e);
  if (*p == '!') {
    e->negate = TRUE;
    p++;
  }
  if (inet_entry_is_table(p)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "network list entry \"%s\": tables and files are not supported yet", text);
    return FALSE;
  }
  slash = strchr(p, '/');
  gsize len = slash ? (gsize) (slash - p) : strlen(p);
  if (!inet_parse_numeric(p, len, &e->family, e->addr)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "bad network address \"%s\"", text);
    return FALSE;
  }
  bits = e->family == AF_INET ? 32 : 128;
  e->prefix = bits;
  if (slash) {
    gint64 n;
    /* A v4-mapped network ("::ffff:10.0.0.0/104") counts bits in IPv6 form. */
    gboolean mapped = e->family == AF_INET && memchr(p, ':', len) != NULL;
    if (!g_ascii_string_to_signed(slash + 1, 10, 0, 128, &n, NULL)) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "bad network mask in \"%s\"", text);
      return FALSE;
    }
    if (mapped)
      n -= 96;
    if (n < 0 || n > (gint64) bits) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "bad network mask in \"%s\"", text);
      return FALSE;
    }
    e->prefix = (guint) n;
  }
  if (inet_host_bits_set(e->addr, bits, e->prefix)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "non-null host address bits in \"%s\"", text);
    return FALSE;
  }
  return TRUE;
}

NetList *
netlist_new(const char *const *entries, GError **error)
{
  guint n = entries ? g_strv_length((char **) entries) : 0;
  NetList *list = g_malloc0(sizeof *list + n * sizeof(NetEntry));

  for (guint i = 0; i < n; i++) {
    if (!*entries[i])
      continue;
    if (!inet_entry_parse(entries[i], &list->entries[list->n], error)) {
      g_free(list);
      return NULL;
    }
    list->n++;
  }
  return list;
}

void
netlist_free(NetList *list)
{
  g_free(list);
}

static gboolean
inet_prefix_equal(const guchar *a, const guchar *b, guint prefix)
{
  guint whole = prefix / 8, rest = prefix % 8;

  if (memcmp(a, b, whole) != 0)
    return FALSE;
  if (rest == 0)
    return TRUE;
  guchar mask = (guchar) (0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

static gboolean
netlist_match_bytes(const NetList *list, int family, const guchar *addr)
{
  for (guint i = 0; i < list->n; i++) {
    const NetEntry *e = &list->entries[i];
    if (e->family == family && inet_prefix_equal(e->addr, addr, e->prefix))
      return !e->negate;
  }
  return FALSE;
}

gboolean
netlist_match(const NetList *list, const struct sockaddr *sa)
{
  if (!list || !sa)
    return FALSE;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
    return netlist_match_bytes(list, AF_INET, (const guchar *) &sin->sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
    const guchar *b = (const guchar *) &sin6->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
      return netlist_match_bytes(list, AF_INET, b + 12);
    return netlist_match_bytes(list, AF_INET6, b);
  }
  return FALSE;
}

gboolean
inet_network_parse(const char *text, InetNetwork *net, GError **error)
{
  NetEntry e;

  if (*text == '!') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "bad network address \"%s\"", text);
    return FALSE;
  }
  if (!inet_entry_parse(text, &e, error))
    return FALSE;
  net->family = e.family;
  net->prefix = e.prefix;
  memcpy(net->addr, e.addr, sizeof net->addr);
  return TRUE;
}

gboolean
inet_network_contains(const InetNetwork *net, const InetNetwork *host)
{
  return host->family == net->family && host->prefix >= net->prefix
         && inet_prefix_equal(net->addr, host->addr, net->prefix);
}

gboolean
netlist_match_string(const NetList *list, const char *addr)
{
  guchar bytes[16];
  int family;

  if (!list || !addr || !inet_parse_numeric(addr, strlen(addr), &family, bytes))
    return FALSE;
  return netlist_match_bytes(list, family, bytes);
}

const char *
inet_sockaddr_to_string(const struct sockaddr *sa, char *buf, gsize len)
{
  const char *r = NULL;

  if (!sa || len == 0)
    return "unknown";
  buf[0] = '\0';
  if (sa->sa_family == AF_INET) {
    r = inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, (socklen_t) len);
  } else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
      r = inet_ntop(AF_INET, (const guchar *) a + 12, buf, (socklen_t) len);
    else
      r = inet_ntop(AF_INET6, a, buf, (socklen_t) len);
  } else if (sa->sa_family == AF_UNIX) {
    g_strlcpy(buf, "local", len);
    r = buf;
  }
  if (!r)
    g_strlcpy(buf, "unknown", len);
  return buf;
}

gboolean
inet_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len, GError **error)
{
  const char *colon;
  gsize hostlen;
  guint64 port;
  guchar addr[16];
  int family;

  memset(ss, 0, sizeof *ss);
  if (text[0] == '/') {
    struct sockaddr_un *sun = (struct sockaddr_un *) ss;
    gsize n = strlen(text);
    if (n >= sizeof sun->sun_path) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "unix socket path too long: %s", text);
      return FALSE;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, text, n + 1);
    *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
    return TRUE;
  }

  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':') {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "bad listen address \"%s\": expected [ADDR]:PORT", text);
      return FALSE;
    }
    colon = close + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon || memchr(text, ':', (gsize) (colon - text))) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "bad listen address \"%s\": expected ADDR:PORT, [ADDR]:PORT or /path", text);
      return FALSE;
    }
  }
  hostlen = (gsize) (colon - text);
  if (!g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "bad port in listen address \"%s\"", text);
    return FALSE;
  }
  if (hostlen == 9 && g_ascii_strncasecmp(text, "localhost", 9) == 0) {
    family = AF_INET;
    addr[0] = 127; addr[1] = 0; addr[2] = 0; addr[3] = 1;
  } else if (hostlen == 0 || (hostlen == 1 && text[0] == '*')) {
    family = AF_INET;
    memset(addr, 0, 4);
  } else if (!inet_parse_numeric(text, hostlen, &family, addr)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "bad listen address \"%s\": the host must be a numeric address", text);
    return FALSE;
  }
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *) ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((guint16) port);
    memcpy(&sin->sin_addr, addr, 4);
    *len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((guint16) port);
    memcpy(&sin6->sin6_addr, addr, 16);
    *len = sizeof *sin6;
  }
  return TRUE;
}
