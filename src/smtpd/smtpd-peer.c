/* smtpd-peer.c - client name lookup (reverse DNS with forward
 * confirmation, blocking: lookup pool only) and the Postfix date format
 * used in Received: headers. */
#include <netdb.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

#include "inet.h"
#include "smtpd.h"

/* TRUE when name resolves back to the numeric address addr.  Only the
 * client's address family is asked for, and without AI_ADDRCONFIG (that
 * is for choosing where to connect, and costs a netlink round trip). */
static gboolean
peer_forward_confirm(const char *name, const char *addr, int family)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = family };
  struct addrinfo *res = NULL;
  gboolean ok = FALSE;
  if (getaddrinfo(name, NULL, &hints, &res) != 0)
    return FALSE;
  for (struct addrinfo *ai = res; ai != NULL && !ok; ai = ai->ai_next) {
    char buf[64];
    ok = strcmp(inet_sockaddr_to_string(ai->ai_addr, buf, sizeof buf), addr) == 0;
  }
  freeaddrinfo(res);
  return ok;
}

char *
smtpd_peer_lookup_name(const struct sockaddr *sa, socklen_t len)
{
  char host[NI_MAXHOST];
  char addr[64];
  if (getnameinfo(sa, len, host, sizeof host, NULL, 0, NI_NAMEREQD) != 0)
    return g_strdup("unknown");
  inet_sockaddr_to_string(sa, addr, sizeof addr);
  /* A name that is itself a numeric address proves nothing. */
  /* (An IPv4-mapped IPv6 client prints as IPv4, so it asks for both.) */
  int family = sa->sa_family == AF_INET ? AF_INET : AF_UNSPEC;
  if (strcmp(host, addr) == 0 || !peer_forward_confirm(host, addr, family))
    return g_strdup("unknown");
  return g_ascii_strdown(host, -1);
}

char *
smtpd_mail_date(gint64 time_us)
{
  time_t t = time_us / G_USEC_PER_SEC;
  struct tm tm;
  char day[64], zone[16];
  localtime_r(&t, &tm);
  strftime(day, sizeof day, "%a, %e %b %Y %H:%M:%S", &tm);
  strftime(zone, sizeof zone, "%Z", &tm);
  long off = tm.tm_gmtoff / 60;
  char sign = off < 0 ? '-' : '+';
  if (off < 0)
    off = -off;
  return g_strdup_printf("%s %c%02ld%02ld (%s)", day, sign, off / 60, off % 60, zone);
}
