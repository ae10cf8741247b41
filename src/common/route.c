/* route.c - a recipient's transport and next hop (route.h). */
#include "route.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

void
route_hop_free(gpointer p)
{
  RouteHop *hop = p;

  if (hop == NULL)
    return;
  g_free(hop->host);
  g_free(hop);
}

void
route_clear(Route *route)
{
  g_clear_pointer(&route->transport, g_free);
  g_clear_pointer(&route->nexthop, g_free);
  g_clear_pointer(&route->hops, g_ptr_array_unref);
  route->kind = 0;
}

void
route_config_init(RouteConfig *rc, const Config *config, TableList *transport_maps)
{
  *rc = (RouteConfig) {
    .transport_maps = transport_maps,
    .default_transport = config_str(config, "default_transport"),
    .relay_transport = config_str(config, "relay_transport"),
    .local_transport = config_str(config, "local_transport"),
    .virtual_transport = config_str(config, "virtual_transport"),
    .relayhost = config_str(config, "relayhost"),
    .recipient_delimiter = config_str(config, "recipient_delimiter"),
    .myhostname = config_str(config, "myhostname"),
  };
}

/* ---------------------------------------------------------------- next hops */

static gboolean
route_port_parse(const char *text, guint16 *port)
{
  char *end = NULL;
  guint64 n;

  if (*text == '\0')
    return FALSE;
  if (g_ascii_isdigit(*text)) {
    n = g_ascii_strtoull(text, &end, 10);
    if (*end != '\0' || n == 0 || n > 65535)
      return FALSE;
    *port = (guint16) n;
    return TRUE;
  }
  {
    struct servent se, *found = NULL;
    char buf[1024];

    if (getservbyname_r(text, "tcp", &se, buf, sizeof buf, &found) != 0 || found == NULL)
      return FALSE;
    *port = (guint16) ntohs((uint16_t) found->s_port);
    return TRUE;
  }
}

/* A host name of letters, digits, '-', '.' and '_' (some internal
 * names have it), or an address inside brackets. */
static gboolean
route_host_ok(const char *host, gboolean bracketed)
{
  if (*host == '\0' || strlen(host) > 255)
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_' && !(bracketed && *p == ':'))
      return FALSE;
  return TRUE;
}

static RouteHop *
route_hop_parse(const char *item, guint16 default_port, GError **error)
{
  g_autofree char *host = NULL;
  const char *port_text = NULL;
  gboolean bracketed = item[0] == '[';
  RouteHop hop = { .port = default_port };

  if (bracketed) {
    const char *close = strchr(item, ']');

    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      goto bad;
    host = g_strndup(item + 1, close - item - 1);
    if (close[1] == ':')
      port_text = close + 2;
    if (g_ascii_strncasecmp(host, "ipv6:", 5) == 0)
      memmove(host, host + 5, strlen(host + 5) + 1);
  } else {
    const char *colon = strchr(item, ':');

    host = colon ? g_strndup(item, colon - item) : g_strdup(item);
    if (colon)
      port_text = colon + 1;
  }
  if (!route_host_ok(host, bracketed) || (port_text && !route_port_parse(port_text, &hop.port)))
    goto bad;
  hop.host = g_ascii_strdown(host, -1);
  hop.mx = !bracketed;
  return g_memdup2(&hop, sizeof hop);
bad:
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
              "bad next-hop \"%s\" (use host, host:port, [host], [host]:port or [address]:port)",
              item);
  return NULL;
}

gboolean
route_nexthop_parse(const char *text, guint16 default_port, GPtrArray **hops, GError **error)
{
  g_auto(GStrv) items = g_strsplit_set(text, ", \t", -1);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(route_hop_free);

  for (guint i = 0; items[i]; i++) {
    RouteHop *hop;

    if (*items[i] == '\0')
      continue;
    if ((hop = route_hop_parse(items[i], default_port, error)) == NULL)
      return FALSE;
    g_ptr_array_add(out, hop);
  }
  if (out->len == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "empty next-hop");
    return FALSE;
  }
  *hops = g_steal_pointer(&out);
  return TRUE;
}

/* ---------------------------------------------------------------- transport_maps */

/* transport(5)'s search order; *value is the first match. */
static TableResult
route_lookup(const RouteConfig *rc, const char *address, char **value, GError **error)
{
  g_autofree char *local = address_local_unquoted(address);
  g_autofree char *folded = g_ascii_strdown(local, -1);
  g_autofree char *domain = address_domain(address);
  g_autofree char *ext = NULL;
  g_autofree char *base = address_strip_extension(folded, rc->recipient_delimiter, &ext);
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *ldomain = g_ascii_strdown(domain, -1);

  g_ptr_array_add(keys, g_strconcat(folded, "@", ldomain, NULL));
  if (ext != NULL)
    g_ptr_array_add(keys, g_strconcat(base, "@", ldomain, NULL));
  if (*ldomain) {
    g_ptr_array_add(keys, g_strdup(ldomain));
    for (const char *dot = strchr(ldomain, '.'); dot; dot = strchr(dot + 1, '.'))
      g_ptr_array_add(keys, g_strdup(dot));
  }
  g_ptr_array_add(keys, g_strdup("*"));
  for (guint i = 0; i < keys->len; i++) {
    TableResult r = table_list_lookup_key(rc->transport_maps, keys->pdata[i], i > 0, value, error);
    if (r != TABLE_NOTFOUND)
      return r;
  }
  return TABLE_NOTFOUND;
}

/* "transport:nexthop" into its parts (either may be ""); a value
 * without ':' is a transport alone. */
static void
route_split(const char *value, char **transport, char **nexthop)
{
  const char *colon = strchr(value, ':');

  *transport = g_strstrip(colon ? g_strndup(value, colon - value) : g_strdup(value));
  *nexthop = g_strstrip(g_strdup(colon ? colon + 1 : ""));
}

static RouteKind
route_kind(const char *transport)
{
  static const struct { const char *name; RouteKind kind; } kinds[] = {
    { "smtp", ROUTE_SMTP }, { "relay", ROUTE_SMTP }, { "local", ROUTE_LOCAL },
    { "virtual", ROUTE_VIRTUAL }, { "discard", ROUTE_DISCARD }, { "error", ROUTE_ERROR },
    { "retry", ROUTE_RETRY },
  };

  for (guint i = 0; i < G_N_ELEMENTS(kinds); i++)
    if (g_ascii_strcasecmp(transport, kinds[i].name) == 0)
      return kinds[i].kind;
  return 0;
}

gboolean
route_resolve(const RouteConfig *rc, const char *address, DomainClass cls, Route *out,
              GError **error)
{
  g_autofree char *value = NULL, *domain = address_domain(address);
  g_autofree char *map_transport = NULL, *map_nexthop = NULL;
  g_autofree char *def_transport = NULL, *def_nexthop = NULL;
  const char *setting;
  gboolean found = FALSE;

  memset(out, 0, sizeof *out);
  switch (cls) {
  case DOMAIN_CLASS_LOCAL: setting = rc->local_transport; break;
  case DOMAIN_CLASS_VIRTUAL: setting = rc->virtual_transport; break;
  case DOMAIN_CLASS_RELAY: setting = rc->relay_transport; break;
  /* Postfix's resolver for virtual_alias_domains: an address that is no
   * alias is unknown. */
  case DOMAIN_CLASS_ALIAS: setting = "error:5.1.1 User unknown in virtual alias table"; break;
  default: setting = rc->default_transport; break;
  }
  route_split(setting, &def_transport, &def_nexthop);
  if (rc->transport_maps != NULL) {
    TableResult r = route_lookup(rc, address, &value, error);

    if (r == TABLE_TEMPFAIL) {
      g_prefix_error(error, "transport_maps: ");
      return FALSE;
    }
    if (r == TABLE_FOUND) {
      route_split(value, &map_transport, &map_nexthop);
      found = *map_transport || *map_nexthop;
    }
  }
  out->transport = g_strdup(found && *map_transport ? map_transport : def_transport);
  out->kind = route_kind(out->transport);
  if (out->kind == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s: unknown transport \"%s\" (smtp, relay, local, virtual, discard, error, retry)",
                found && *map_transport ? "transport_maps" : "the default transport",
                out->transport);
    route_clear(out);
    return FALSE;
  }
  /* The next hop: the table's, the setting's, relayhost (remote mail),
   * the domain (or, for local mail, $myhostname). */
  if (found && *map_nexthop)
    out->nexthop = g_strdup(map_nexthop);
  else if (found && *map_transport && !*map_nexthop && out->kind == ROUTE_SMTP)
    out->nexthop = g_strdup(domain);     /* "example.com smtp:": its own MX */
  else if (*def_nexthop)
    out->nexthop = g_strdup(def_nexthop);
  else if (out->kind == ROUTE_ERROR || out->kind == ROUTE_RETRY || out->kind == ROUTE_DISCARD)
    out->nexthop = g_strdup("");        /* a text: none given */
  else if (out->kind == ROUTE_SMTP && *rc->relayhost)
    out->nexthop = g_strdup(rc->relayhost);
  else
    out->nexthop = g_strdup(cls == DOMAIN_CLASS_LOCAL && !*domain ? rc->myhostname : domain);
  if (out->kind == ROUTE_SMTP && !route_nexthop_parse(out->nexthop, 25, &out->hops, error)) {
    g_prefix_error(error, "%s: ", address);
    route_clear(out);
    return FALSE;
  }
  return TRUE;
}
