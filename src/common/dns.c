/* dns.c - DNS lookups with the system resolver (glibc res_nquery on the
 * calling thread's resolver state), parsed into DnsRecords.
 *
 * Blocking: worker threads only, never the event loop.  Library code:
 * never logs; failures come back as a status and a reason.
 *
 * Test hook: when POSTERN_DNS_SERVER is set ("127.0.0.1:21053"), each
 * thread's resolver state asks that server (and only it) instead of the
 * ones in /etc/resolv.conf.  glibc's getaddrinfo()/getnameinfo() use the
 * same per-thread state, so peer name lookups follow it too.  Production
 * never sets it; the code path is otherwise the same.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#define DNS_ANSWER_MAX 65536

static __thread gboolean dns_thread_ready;

void
dns_thread_setup(void)
{
  if (dns_thread_ready)
    return;
  dns_thread_ready = TRUE;
  if (!(_res.options & RES_INIT))
    res_init();
  const char *server = g_getenv("POSTERN_DNS_SERVER");
  if (server == NULL || *server == '\0')
    return;
  g_autofree char *host = g_strdup(server);
  char *colon = strrchr(host, ':');
  int port = 53;
  if (colon != NULL) {
    *colon = '\0';
    port = atoi(colon + 1);
  }
  struct in_addr in;
  if (inet_pton(AF_INET, host, &in) != 1 || port <= 0 || port > 65535)
    return;   /* a malformed override leaves the system resolver */
  _res.nsaddr_list[0].sin_family = AF_INET;
  _res.nsaddr_list[0].sin_port = htons(port);
  _res.nsaddr_list[0].sin_addr = in;
  _res.nscount = 1;
  _res.retrans = 1;
  _res.retry = 2;
}

const char *
dns_type_name(int type)
{
  switch (type) {
  case ns_t_a:
    return "A";
  case ns_t_aaaa:
    return "AAAA";
  case ns_t_mx:
    return "MX";
  case ns_t_txt:
    return "TXT";
  case ns_t_ptr:
    return "PTR";
  case ns_t_ns:
    return "NS";
  case ns_t_cname:
    return "CNAME";
  default:
    return "unknown";
  }
}

void
dns_record_free(DnsRecord *rr)
{
  if (rr == NULL)
    return;
  g_free(rr->name);
  g_free(rr->data);
  g_free(rr);
}

/* TRUE for a name the resolver should be asked about: a syntactically
 * valid host name that is not a numeric address (Postfix's dns_lookup
 * answers "not found" for anything else without asking). */
static gboolean
dns_name_valid(const char *name)
{
  gsize len = strlen(name);
  if (len == 0 || len > 255)
    return FALSE;
  if (g_hostname_is_ip_address(name))
    return FALSE;
  gboolean label_start = TRUE, numeric_label = TRUE, last_numeric = TRUE;
  gsize label_len = 0;
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '.') {
      if (label_start)
        return FALSE;   /* empty label */
      last_numeric = numeric_label;
      label_start = TRUE, numeric_label = TRUE, label_len = 0;
      continue;
    }
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
      return FALSE;
    if (++label_len > 63 || (label_start && *p == '-'))
      return FALSE;
    if (!g_ascii_isdigit(*p))
      numeric_label = FALSE;
    label_start = FALSE;
  }
  if (!label_start)
    last_numeric = numeric_label;
  return !last_numeric;   /* "1.2.3.4"-like names are not host names */
}

static char *
dns_txt_data(const guchar *rdata, gsize len)
{
  GString *text = g_string_new(NULL);
  for (gsize i = 0; i < len;) {
    gsize n = rdata[i++];
    if (n > len - i)
      n = len - i;
    g_string_append_len(text, (const char *)rdata + i, n);
    i += n;
  }
  return g_string_free(text, FALSE);
}

/* Parses the answer section: the records of the asked type (CNAMEs the
 * server followed are skipped).  FALSE on a malformed reply. */
static gboolean
dns_parse(const guchar *answer, int len, int type, GPtrArray *records)
{
  ns_msg msg;
  if (ns_initparse(answer, len, &msg) < 0)
    return FALSE;
  int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; i++) {
    ns_rr rr;
    char host[NS_MAXDNAME];
    if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
      return FALSE;
    if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
      continue;
    const guchar *rdata = ns_rr_rdata(rr);
    gsize rdlen = ns_rr_rdlen(rr);
    DnsRecord *rec = g_new0(DnsRecord, 1);
    rec->type = type;
    rec->ttl = ns_rr_ttl(rr);
    rec->name = g_ascii_strdown(ns_rr_name(rr), -1);
    switch (type) {
    case ns_t_a:
    case ns_t_aaaa: {
      char buf[INET6_ADDRSTRLEN];
      gsize want = type == ns_t_a ? 4 : 16;
      if (rdlen != want ||
          inet_ntop(type == ns_t_a ? AF_INET : AF_INET6, rdata, buf, sizeof buf) == NULL)
        goto bad;
      rec->data = g_strdup(buf);
      break;
    }
    case ns_t_mx:
      if (rdlen < 3)
        goto bad;
      rec->pref = (guint16)(rdata[0] << 8 | rdata[1]);
      if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rdata + 2, host, sizeof host) < 0)
        goto bad;
      rec->data = g_ascii_strdown(host, -1);
      break;
    case ns_t_ns:
    case ns_t_ptr:
    case ns_t_cname:
      if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rdata, host, sizeof host) < 0)
        goto bad;
      rec->data = g_ascii_strdown(host, -1);
      break;
    case ns_t_txt:
      rec->data = dns_txt_data(rdata, rdlen);
      break;
    default:
      rec->data = g_strdup("");
      break;
    }
    g_ptr_array_add(records, rec);
    continue;
  bad:
    dns_record_free(rec);
    return FALSE;
  }
  return TRUE;
}

static void
dns_set_why(char **why, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
dns_set_why(char **why, const char *fmt, ...)
{
  if (why == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_free(*why);
  *why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
}

DnsStatus
dns_lookup(const char *name, int type, GPtrArray **records, char **why)
{
  if (records != NULL)
    *records = NULL;
  g_autofree char *query = g_strdup(name);
  gsize qlen = strlen(query);
  if (qlen > 1 && query[qlen - 1] == '.')
    query[qlen - 1] = '\0';   /* "example.com." is "example.com" */
  for (const char *p = query; *p != '\0'; p++) {
    if ((guchar) *p >= 0x80) {
      /* An SMTPUTF8 domain in U-labels: the DNS knows its IDNA A-labels
       * ("xn--..."); one that has none (or is not UTF-8) becomes a name
       * the check below refuses. */
      char *ascii = g_utf8_validate(query, -1, NULL) ? g_hostname_to_ascii(query) : NULL;
      g_free(query);
      query = ascii != NULL ? ascii : g_strdup("");
      break;
    }
  }
  if (!dns_name_valid(query)) {
    dns_set_why(why, "Name service error for %s: invalid host or domain name", name);
    return DNS_NOTFOUND;
  }
  dns_thread_setup();
  g_autofree guchar *answer = g_malloc(DNS_ANSWER_MAX);
  int len = res_nquery(&_res, query, ns_c_in, type, answer, DNS_ANSWER_MAX);
  if (len < 0) {
    switch (h_errno) {
    case HOST_NOT_FOUND:
      dns_set_why(why, "Host or domain name not found. Name service error for name=%s type=%s: "
                  "Host not found", query, dns_type_name(type));
      return DNS_NOTFOUND;
    case NO_DATA:
      dns_set_why(why, "Host or domain name not found. Name service error for name=%s type=%s: "
                  "No address associated with hostname", query, dns_type_name(type));
      return DNS_NODATA;
    default:
      dns_set_why(why, "Host or domain name not found. Name service error for name=%s type=%s: "
                  "Host not found, try again", query, dns_type_name(type));
      return DNS_RETRY;
    }
  }
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func((GDestroyNotify)dns_record_free);
  if (!dns_parse(answer, len, type, list)) {
    dns_set_why(why, "Name service error for name=%s type=%s: "
                "Malformed or unexpected name server reply", query, dns_type_name(type));
    return DNS_INVAL;
  }
  if (list->len == 0) {
    dns_set_why(why, "Host or domain name not found. Name service error for name=%s type=%s: "
                "No address associated with hostname", query, dns_type_name(type));
    return DNS_NODATA;
  }
  if (type == ns_t_mx && list->len == 1) {
    DnsRecord *mx = list->pdata[0];
    if (mx->pref == 0 && (mx->data[0] == '\0' || strcmp(mx->data, ".") == 0)) {
      dns_set_why(why, "Domain %s does not accept mail (nullMX)", query);
      return DNS_NULLMX;
    }
  }
  if (records != NULL)
    *records = g_steal_pointer(&list);
  return DNS_OK;
}

DnsStatus
dns_lookup_types(const char *name, const int *types, GPtrArray **records, char **why)
{
  DnsStatus worst = DNS_NOTFOUND;
  for (const int *t = types; *t != 0; t++) {
    g_autofree char *reason = NULL;
    DnsStatus st = dns_lookup(name, *t, records, &reason);
    if (st == DNS_OK)
      return DNS_OK;
    /* A definitive answer about the name ends the search: a null MX, a
     * broken reply, or NXDOMAIN (no other type can exist then). */
    gboolean final = st == DNS_NULLMX || st == DNS_INVAL || (st == DNS_NOTFOUND && worst != DNS_RETRY);
    if (final || st == DNS_RETRY || (st == DNS_NODATA && worst == DNS_NOTFOUND)) {
      worst = st;
      if (why != NULL) {
        g_free(*why);
        *why = g_steal_pointer(&reason);
      }
    }
    if (final)
      break;
  }
  return worst;
}

char *
dns_reverse_name(const char *addr, const char *suffix)
{
  guchar bytes[16];
  GString *q = g_string_new(NULL);
  if (inet_pton(AF_INET, addr, bytes) == 1) {
    g_string_append_printf(q, "%u.%u.%u.%u.%s", bytes[3], bytes[2], bytes[1], bytes[0],
                           suffix != NULL ? suffix : "in-addr.arpa");
  } else if (inet_pton(AF_INET6, addr, bytes) == 1) {
    for (int i = 15; i >= 0; i--)
      g_string_append_printf(q, "%x.%x.", bytes[i] & 0xf, bytes[i] >> 4);
    g_string_append(q, suffix != NULL ? suffix : "ip6.arpa");
  } else {
    g_string_free(q, TRUE);
    return NULL;
  }
  return g_string_free(q, FALSE);
}
