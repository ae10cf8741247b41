/* route.h - where a recipient goes: Postfix's trivial-rewrite
 * resolver for the transport and next hop (issue 7, docs/smtp-client.md).
 *
 * The domain class picks the default (local_transport, virtual_transport,
 * relay_transport, default_transport; for virtual_alias_domains
 * "error:5.1.1 User unknown in virtual alias table"); transport_maps overrides it, looked
 * up as transport(5) says: user+extension@domain, user@domain, domain,
 * then each parent as ".parent", then "*".  A result is
 * "transport:nexthop", either part may be empty (":[relay]" changes only
 * the next hop, "smtp:" only the transport).  For remote delivery the next
 * hop is, in order: transport_maps, the class's transport setting
 * ("smtp:[relay.example]"), relayhost, the recipient's domain.
 *
 * Next hops: "host", "host:port" (MX lookup for host), "[host]",
 * "[host]:port", "[192.0.2.1]", "[2001:db8::1]" or "[ipv6:2001:db8::1]"
 * (no MX lookup), lists of them separated by commas or white space (tried
 * in order).  Ports are numbers or service names.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "domain-class.h"
#include "table.h"

typedef enum {
  ROUTE_LOCAL = 1,      /* local(8): aliases, system users */
  ROUTE_VIRTUAL,        /* virtual(8) mailboxes */
  ROUTE_SMTP,           /* the SMTP client ("smtp", "relay", "lmtp" is not one) */
  ROUTE_DISCARD,        /* discard(8): accepted and dropped, logged */
  ROUTE_ERROR,          /* error(8): bounced with the next hop as text */
  ROUTE_RETRY,          /* retry: deferred with the next hop as text */
} RouteKind;

typedef struct {
  char *host;           /* without brackets; an address for [address] */
  guint16 port;
  gboolean mx;          /* look up MX records (the host was not in brackets) */
} RouteHop;

void route_hop_free(gpointer hop);

typedef struct {
  RouteKind kind;
  char *transport;      /* as configured: "smtp", "relay", "local", "error", ... */
  char *nexthop;        /* the text: "[mx.example]:2525", "example.com", an error text */
  GPtrArray *hops;      /* RouteHop *: for ROUTE_SMTP */
} Route;

void route_clear(Route *route);

/* What resolving needs, taken from a configuration load. */
typedef struct {
  TableList *transport_maps;        /* NULL: none */
  const char *default_transport;
  const char *relay_transport;
  const char *local_transport;
  const char *virtual_transport;
  const char *relayhost;
  const char *recipient_delimiter;
  const char *myhostname;
} RouteConfig;

/* Fills rc from config (the tables are not opened here). */
void route_config_init(RouteConfig *rc, const Config *config, TableList *transport_maps);

/* Parses a next-hop list; FALSE with POSTERN_ERROR_CONFIG naming the bad
 * item.  Ports default to default_port. */
gboolean route_nexthop_parse(const char *text, guint16 default_port, GPtrArray **hops,
                             GError **error);

/* The route of address (already rewritten by virtual aliases) whose
 * domain is of class cls.  FALSE with POSTERN_ERROR_TEMPORARY when
 * transport_maps cannot answer, POSTERN_ERROR_CONFIG for a result or
 * setting that cannot be used (the caller defers and logs it). */
gboolean route_resolve(const RouteConfig *rc, const char *address, DomainClass cls, Route *out,
                       GError **error);
