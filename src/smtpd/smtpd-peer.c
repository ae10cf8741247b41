/* smtpd-peer.c - what smtpd learns about a client before the greeting:
 * its name (reverse DNS with forward confirmation, blocking: lookup pool
 * only, with the status of each step for reject_unknown_client_hostname
 * and friends) and the classes its address is in (mynetworks and the
 * other network lists); also the Postfix date format used in Received:
 * headers. */
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

/* One network list; a lookup failure is "not listed" plus a warning. */
static gboolean
peer_in_list(const NetList *list, const char *name, const char *addr, const char *effect,
             GPtrArray **warnings, MatchResult *result)
{
  g_autoptr(GError) error = NULL;
  MatchResult r = netlist_match_string(list, addr, &error);

  if (result != NULL)
    *result = r;
  if (r == MATCH_TEMPFAIL) {
    if (*warnings == NULL)
      *warnings = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(*warnings, g_strdup_printf("%s: %s: client %s %s", name,
                                               error != NULL ? error->message : "lookup failed",
                                               addr, effect));
  }
  return r == MATCH_FOUND;
}

gboolean
smtpd_peer_classify_blocks(const SmtpdSettings *st)
{
  return netlist_has_tables(st->mynetworks) || netlist_has_tables(st->event_limit_exceptions)
         || netlist_has_tables(st->bare_newline_exclusions)
         || (st->sasl_enable && netlist_has_tables(st->sasl_exceptions));
}

void
smtpd_peer_classify(const SmtpdSettings *st, const char *addr, gboolean local, SmtpdPeerClass *c)
{
  memset(c, 0, sizeof *c);
  c->trusted = MATCH_FOUND;   /* the local listener is this host */
  if (!local)
    peer_in_list(st->mynetworks, "mynetworks", addr,
                 "is not trusted (permit_mynetworks answers 451 4.3.0)", &c->warnings, &c->trusted);
  c->limit_exempt = peer_in_list(st->event_limit_exceptions, "smtpd_client_event_limit_exceptions",
                                 addr, "is not exempt from the client limits", &c->warnings, NULL);
  c->newline_excluded = peer_in_list(st->bare_newline_exclusions,
                                     "smtpd_forbid_bare_newline_exclusions", addr,
                                     "is not excluded from smtpd_forbid_bare_newline",
                                     &c->warnings, NULL);
  /* A list that cannot answer offers AUTH: excluding someone fails closed
   * on nothing, and a login is still needed. */
  c->sasl_excepted = st->sasl_enable
                     && peer_in_list(st->sasl_exceptions, "smtpd_sasl_exceptions_networks", addr,
                                     "is offered AUTH", &c->warnings, NULL);
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
