/* inet.h - network addresses: mynetworks-style match lists and
 * listener address parsing. */
#pragma once

#include <glib.h>
#include <sys/socket.h>

#include "match-list.h"

typedef struct _NetList NetList;

/* Parses a list of "1.2.3.4", "10.0.0.0/8", "[::1]/128", "::1",
 * "[2001:db8::]/32" entries (as mynetworks), with the match-list.h
 * syntax: "!net", "/file/name" (networks one or more per line, "#"
 * comments) and "type:table" (asked for the client address, as in
 * Postfix; cidr: typically).  POSTERN_ERROR_CONFIG names the bad entry
 * (and the file and line for one read from a file). */
NetList *netlist_new(const char *const *entries, GError **error);
void netlist_free(NetList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NetList, netlist_free)
/* TRUE when matching may ask a table (may block: worker threads). */
gboolean netlist_has_tables(const NetList *list);
/* Is the peer listed?  MATCH_TEMPFAIL (a table that cannot answer)
 * sets a POSTERN_ERROR_TEMPORARY error; callers treat it as "not
 * listed" or defer, but must not take it for a plain no.  A NULL list
 * lists nothing.  Thread-safe. */
MatchResult netlist_match(const NetList *list, const struct sockaddr *sa, GError **error);
/* Same for a numeric address string; anything else is MATCH_NONE. */
MatchResult netlist_match_string(const NetList *list, const char *addr, GError **error);

/* One network ("10.0.0.0/8", "[::1]/128", "2001:db8::/32") or address
 * (full prefix), as a NetList entry but without "!" or tables; cidr:
 * tables parse their patterns with it.  POSTERN_ERROR_CONFIG names it. */
typedef struct {
  int family;          /* AF_INET or AF_INET6; v4-mapped IPv6 is IPv4 */
  guint prefix;        /* bits */
  guchar addr[16];     /* network byte order, host bits zero */
} InetNetwork;
gboolean inet_network_parse(const char *text, InetNetwork *net, GError **error);
/* TRUE when host (an address parsed as above: full prefix) lies in net. */
gboolean inet_network_contains(const InetNetwork *net, const InetNetwork *host);

/* Numeric form of a socket address ("127.0.0.1", "::1"; IPv4-mapped IPv6
 * addresses are shown as IPv4).  buf of at least 64 bytes. */
const char *inet_sockaddr_to_string(const struct sockaddr *sa, char *buf, gsize len);

/* Parses "ADDR:PORT", "[V6ADDR]:PORT" or "/path" (unix socket) into a
 * socket address. */
gboolean inet_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                           GError **error);
