/* inet.h - network addresses: mynetworks-style match lists and
 * listener address parsing. */
#pragma once

#include <glib.h>
#include <sys/socket.h>

typedef struct _NetList NetList;

/* Parses a list of "1.2.3.4", "10.0.0.0/8", "[::1]/128", "::1",
 * "[2001:db8::]/32" entries (as mynetworks).  POSTERN_ERROR_CONFIG names
 * the bad entry. */
NetList *netlist_new(const char *const *entries, GError **error);
void netlist_free(NetList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NetList, netlist_free)
gboolean netlist_match(const NetList *list, const struct sockaddr *sa);
/* Same for a numeric address string. */
gboolean netlist_match_string(const NetList *list, const char *addr);

/* Numeric form of a socket address ("127.0.0.1", "::1"; IPv4-mapped IPv6
 * addresses are shown as IPv4).  buf of at least 64 bytes. */
const char *inet_sockaddr_to_string(const struct sockaddr *sa, char *buf, gsize len);

/* Parses "ADDR:PORT", "[V6ADDR]:PORT" or "/path" (unix socket) into a
 * socket address. */
gboolean inet_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                           GError **error);
