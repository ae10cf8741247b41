/* inet.c - network address lists (mynetworks) and listener addresses.
 *
 * A NetList is an array of entries in parameter order: networks
 * (family, address, prefix) and lookup tables.  A match walks it and the
 * first hit decides ("!net" excludes, as in Postfix match lists); a
 * table is asked for the client address in its numeric form and counts
 * as a hit when it knows it.  "/file/name" entries are read when the
 * list is built (match-list.c).  IPv4-mapped IPv6 peers (::ffff:a.b.c.d)
 * are matched as IPv4.  No DNS; a list without tables does no I/O.
 */
#include "inet.h"
#include "config.h"
#include "match-list.h"
#include "table.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

typedef struct {
  int family;          /* AF_INET or AF_INET6 */
  guint prefix;        /* bits */
  gboolean negate;
  guchar addr[16];     /* network byte order, host bits zero */
  Table *table;        /* set: a "type:name" entry instead of a network */
} NetEntry;

struct _NetList {
  GArray *entries;     /* of NetEntry */
  guint n_tables;
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

/* One network or address (no "!", no table). */
static gboolean
inet_entry_parse(const char *text, NetEntry *e, GError **error)
{
  const char *p = text;
  const char *slash;
  guint bits;

  memset(e, 0, sizeof *e);
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

static void
netlist_entry_clear(gpointer p)
{
  table_free(((NetEntry *) p)->table);
}

static gboolean
netlist_add(const char *pattern, gboolean negate, gpointer data, GError **error)
{
  NetList *list = data;
  NetEntry e;

  if (match_list_is_table(pattern)) {
    memset(&e, 0, sizeof e);
    e.table = table_open(pattern, TABLE_FOLD_CASE, error);
    if (e.table == NULL)
      return FALSE;
    list->n_tables++;
  } else if (!inet_entry_parse(pattern, &e, error)) {
    return FALSE;
  }
  e.negate = negate;
  g_array_append_val(list->entries, e);
  return TRUE;
}

NetList *
netlist_new(const char *const *entries, GError **error)
{
  g_autoptr(NetList) list = g_new0(NetList, 1);

  list->entries = g_array_new(FALSE, FALSE, sizeof(NetEntry));
  g_array_set_clear_func(list->entries, netlist_entry_clear);
  if (!match_list_walk(entries, netlist_add, list, error))
    return NULL;
  return g_steal_pointer(&list);
}

void
netlist_free(NetList *list)
{
  if (list == NULL)
    return;
  if (list->entries != NULL)
    g_array_unref(list->entries);
  g_free(list);
}

gboolean
netlist_has_tables(const NetList *list)
{
  return list != NULL && list->n_tables > 0;
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

/* Asks a table entry for the address (numeric form, as Postfix's
 * state->addr). */
static MatchResult
netlist_table_matches(Table *table, int family, const guchar *addr, GError **error)
{
  char text[INET6_ADDRSTRLEN];
  g_autofree char *value = NULL;

  if (inet_ntop(family, addr, text, sizeof text) == NULL)
    return MATCH_NONE;
  switch (table_lookup(table, text, &value, error)) {
  case TABLE_FOUND:
    return MATCH_FOUND;
  case TABLE_TEMPFAIL:
    return MATCH_TEMPFAIL;
  default:
    return MATCH_NONE;
  }
}

static MatchResult
netlist_match_bytes(const NetList *list, int family, const guchar *addr, GError **error)
{
  for (guint i = 0; i < list->entries->len; i++) {
    const NetEntry *e = &g_array_index(list->entries, NetEntry, i);
    gboolean hit;

    if (e->table != NULL) {
      MatchResult r = netlist_table_matches(e->table, family, addr, error);
      if (r == MATCH_TEMPFAIL)
        return r;
      hit = r == MATCH_FOUND;
    } else {
      hit = e->family == family && inet_prefix_equal(e->addr, addr, e->prefix);
    }
    if (hit)
      return e->negate ? MATCH_NONE : MATCH_FOUND;
  }
  return MATCH_NONE;
}

MatchResult
netlist_match(const NetList *list, const struct sockaddr *sa, GError **error)
{
  if (!list || !sa)
    return MATCH_NONE;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
    return netlist_match_bytes(list, AF_INET, (const guchar *) &sin->sin_addr, error);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
    const guchar *b = (const guchar *) &sin6->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
      return netlist_match_bytes(list, AF_INET, b + 12, error);
    return netlist_match_bytes(list, AF_INET6, b, error);
  }
  return MATCH_NONE;
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

MatchResult
netlist_match_string(const NetList *list, const char *addr, GError **error)
{
  guchar bytes[16];
  int family;

  if (!list || !addr || !inet_parse_numeric(addr, strlen(addr), &family, bytes))
    return MATCH_NONE;
  return netlist_match_bytes(list, family, bytes, error);
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
