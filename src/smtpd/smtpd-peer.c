/* smtpd-peer.c - client name lookup (reverse DNS with forward
 * confirmation, blocking: lookup pool only, with the status of each
 * step for reject_unknown_client_hostname and friends) and the Postfix date format
 * used in Received: headers. */
#include <netdb.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

#include "address.h"
#include "dns.h"
#include "inet.h"
#include "smtpd.h"

/* Forward confirmation: SMTPD_PEER_OK when name resolves back to the
 * numeric address addr, SMTPD_PEER_TEMP when that cannot be known now,
 * SMTPD_PEER_FORWARD otherwise.  Only the client's address family is
 * asked for, and without AI_ADDRCONFIG (that is for choosing where to
 * connect, and costs a netlink round trip). */
static SmtpdPeerStatus
peer_forward_confirm(const char *name, const char *addr, int family)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = family };
  struct addrinfo *res = NULL;
  int err = getaddrinfo(name, NULL, &hints, &res);
  if (err != 0)
    return err == EAI_AGAIN ? SMTPD_PEER_TEMP : SMTPD_PEER_FORWARD;
  SmtpdPeerStatus status = SMTPD_PEER_FORWARD;
  for (struct addrinfo *ai = res; ai != NULL && status != SMTPD_PEER_OK; ai = ai->ai_next) {
    char buf[64];
    if (strcmp(inet_sockaddr_to_string(ai->ai_addr, buf, sizeof buf), addr) == 0)
      status = SMTPD_PEER_OK;
  }
  freeaddrinfo(res);
  return status;
}

void
smtpd_peer_lookup(const struct sockaddr *sa, socklen_t len, SmtpdPeerName *peer)
{
  char host[NI_MAXHOST];
  char addr[64];
  memset(peer, 0, sizeof *peer);
  dns_thread_setup();
  int err = getnameinfo(sa, len, host, sizeof host, NULL, 0, NI_NAMEREQD);
  inet_sockaddr_to_string(sa, addr, sizeof addr);
  /* A name that is itself a numeric address, or no host name at all,
   * proves nothing. */
  if (err == 0 && (strcmp(host, addr) == 0 || g_hostname_is_ip_address(host) ||
                   !address_domain_is_valid(host)))
    err = EAI_NONAME;
  if (err != 0) {
    peer->reverse_status = peer->name_status =
        err == EAI_AGAIN ? SMTPD_PEER_TEMP : SMTPD_PEER_PERM;
    peer->reverse_name = g_strdup("unknown");
    peer->name = g_strdup("unknown");
    return;
  }
  peer->reverse_name = g_ascii_strdown(host, -1);
  peer->reverse_status = SMTPD_PEER_OK;
  /* (An IPv4-mapped IPv6 client prints as IPv4, so it asks for both.) */
  int family = sa->sa_family == AF_INET ? AF_INET : AF_UNSPEC;
  peer->name_status = peer_forward_confirm(host, addr, family);
  peer->name = peer->name_status == SMTPD_PEER_OK ? g_strdup(peer->reverse_name)
                                                  : g_strdup("unknown");
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
