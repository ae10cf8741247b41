/* dns.h - blocking DNS lookups (A, AAAA, MX, TXT, PTR, NS) through the
 * system resolver, for worker threads only: smtpd's DNS restrictions
 * and, later, the SMTP client's MX routing.
 *
 * Results are three-valued as Postfix's dns_lookup(): found, not found
 * (the name or the record type does not exist) and "try again" (timeout,
 * SERVFAIL): a caller must never turn the last into "not found".
 */
#pragma once

#include <glib.h>

typedef enum {
  DNS_OK,
  DNS_NOTFOUND,   /* NXDOMAIN, or a syntactically impossible name */
  DNS_NODATA,     /* the name exists, without records of that type */
  DNS_RETRY,      /* no definitive answer (timeout, SERVFAIL, REFUSED) */
  DNS_INVAL,      /* a reply that could not be parsed */
  DNS_NULLMX,     /* RFC 7505: the domain says it accepts no mail */
} DnsStatus;

typedef struct {
  int type;        /* ns_t_a, ns_t_mx, ... */
  guint16 pref;    /* MX preference */
  guint32 ttl;
  char *name;      /* owner name */
  char *data;      /* A/AAAA: numeric address; MX/NS/PTR: host name; TXT: the text */
} DnsRecord;

/* Looks up records of one type; on DNS_OK *records (if not NULL) holds
 * DnsRecord* (free with g_ptr_array_unref).  *why (if not NULL) gets a
 * reason in Postfix's words for anything but DNS_OK.  A name in UTF-8
 * (RFC 6531 U-labels) is asked for as its IDNA A-labels. */
DnsStatus dns_lookup(const char *name, int type, GPtrArray **records, char **why);
/* Tries each type of a 0-terminated list in order and stops at the first
 * that has records (Postfix's DNS_REQ_FLAG_STOP_OK); the status is DNS_OK
 * then, else the most telling failure (RETRY beats NODATA beats
 * NOTFOUND).  An MX list that is a null MX stops with DNS_NULLMX. */
DnsStatus dns_lookup_types(const char *name, const int *types, GPtrArray **records, char **why);
/* The PTR query name of a numeric address: "4.3.2.1.in-addr.arpa" or
 * the IPv6 nibble form; with suffix, that domain replaces in-addr.arpa /
 * ip6.arpa (DNSBL queries).  NULL for anything but an address. */
char *dns_reverse_name(const char *addr, const char *suffix);
const char *dns_type_name(int type);
void dns_record_free(DnsRecord *rr);

/* Applies the test resolver override to the calling thread (see dns.c);
 * dns_lookup() calls it itself, getaddrinfo()/getnameinfo() users call
 * it first so that every lookup of the thread asks the same server. */
void dns_thread_setup(void);
