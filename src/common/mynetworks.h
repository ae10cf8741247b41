/* mynetworks.h - the value of mynetworks when main.cf does not set it,
 * computed from mynetworks_style and the machine's interface addresses
 * (Postfix's global/mynetworks.c). */
#pragma once

#include <glib.h>

/* One interface address: the address itself (host bits kept) and the
 * length of its netmask. */
typedef struct {
  int family;          /* AF_INET or AF_INET6 */
  guint prefix;        /* netmask length in bits */
  guchar addr[16];     /* network byte order */
} InetInterface;

/* The patterns for style over the interface addresses, separated by
 * spaces ("127.0.0.0/8 [::1]/128 192.0.2.10/32"), in interface order,
 * leaving out networks that an earlier one already covers:
 *   host    127.0.0.0/8 and [::1]/128, then each address as a host
 *           network (/32, /128): only this machine is trusted;
 *   subnet  the network of each address (address and netmask);
 *   class   IPv4: the whole class A (/8), B (/16), C (/24) or D (/4)
 *           network of each address; IPv6 has no classes and gets its
 *           subnet, as in Postfix (so does a class E address).
 * An unknown style is a POSTERN_ERROR_CONFIG "bad value" error. */
char *mynetworks_for_style(const char *style, const InetInterface *ifaces, guint n,
                           GError **error);

/* The machine's interface addresses (getifaddrs(3)), IPv4 and/or IPv6
 * as inet_protocols says ("all", "ipv4", "ipv6", "ipv4, ipv6"). */
GArray *mynetworks_interfaces(const char *inet_protocols, GError **error);
