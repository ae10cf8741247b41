/* smtpd-access-dns.c - the restrictions that ask the DNS, as Postfix's
 * smtpd_check: reject_unknown_{client,reverse_client}_hostname (from the
 * peer lookup done at connect), reject_unknown_helo_hostname,
 * reject_unknown_{sender,recipient}_domain, the DNSBL/DNSWL family
 * (reject_rbl_client, reject_rhsbl_*, permit_dnswl_client,
 * permit_rhswl_client) and check_*_{mx,ns}_access.  Reply texts are
 * Postfix's word for word.
 *
 * Runs in lookup-pool threads (the DNS lookups block), on the
 * SmtpdAccessCtx snapshot: never touches a session, never logs.  A DNS
 * server that cannot answer is never "not found": it defers (or, for a
 * DNSBL, gives the client the benefit of the doubt, as Postfix does).
 */
#include <arpa/nameser.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "config.h"
#include "dns.h"
#include "params.h"
#include "smtpd-access-private.h"
#include "template.h"

static const int addr_types[] = { ns_t_a, ns_t_aaaa, 0 };
static const int host_types[] = { ns_t_a, ns_t_aaaa, ns_t_mx, 0 };
static const int mailhost_types[] = { ns_t_mx, ns_t_a, ns_t_aaaa, 0 };

/* A temporary failure of a reject_* check: defer at once, or only if the
 * request would otherwise be permitted (reject_tempfail_action). */
static SmtpdAccess
tempfail(SmtpdAccessCtx *ctx, gboolean defer_now, const char *dsn, const char *name,
         const char *what, const char *text)
{
  if (defer_now)
    return ctx_reject(ctx, "450 %s <%s>: %s rejected: %s", dsn, name, what, text);
  smtpd_access_defer_if(ctx, TRUE, "450 %s <%s>: %s rejected: %s", dsn, name, what, text);
  return SMTPD_ACCESS_DUNNO;
}

/* The reply code's class digit wins over the DSN's, as in Postfix. */
static SmtpdAccess
reject_coded(SmtpdAccessCtx *ctx, gint64 code, const char *dsn, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static SmtpdAccess
reject_coded(SmtpdAccessCtx *ctx, gint64 code, const char *dsn, const char *fmt, ...)
{
  char fixed[16];
  g_strlcpy(fixed, dsn, sizeof fixed);
  fixed[0] = '0' + (char)(code / 100);
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  return ctx_reject(ctx, "%d %s %s", (int)code, fixed, text);
}

/* ---- client name ---- */

static SmtpdAccess
reject_unknown_client(SmtpdAccessCtx *ctx, gboolean reverse)
{
  SmtpdPeerStatus status = reverse ? ctx->client_reverse_status : ctx->client_name_status;
  if (status == SMTPD_PEER_OK)
    return SMTPD_ACCESS_DUNNO;
  gint64 code = status >= SMTPD_PEER_PERM ? ctx->settings->unknown_client_code : 450;
  return reject_coded(ctx, code, "4.7.1", "Client host rejected: cannot find your %shostname, [%s]",
                      reverse ? "reverse " : "", ctx->client_addr);
}

/* ---- host and domain names ---- */

/* reject_invalid_hostaddr for "[...]" HELO names. */
static SmtpdAccess
reject_invalid_literal(SmtpdAccessCtx *ctx, const char *helo)
{
  gsize len = strlen(helo);
  g_autofree char *inner = len > 2 && helo[len - 1] == ']' ? g_strndup(helo + 1, len - 2)
                                                           : g_strdup(helo);
  const char *addr = g_ascii_strncasecmp(inner, "IPv6:", 5) == 0 ? inner + 5 : inner;
  if (g_hostname_is_ip_address(addr))
    return SMTPD_ACCESS_DUNNO;
  return ctx_reject(ctx, "501 5.5.2 <%s>: Helo command rejected: invalid ip address", helo);
}

static SmtpdAccess
reject_unknown_helo(SmtpdAccessCtx *ctx)
{
  const char *helo = ctx->helo;
  if (helo == NULL)
    return SMTPD_ACCESS_DUNNO;
  if (helo[0] == '[')
    return reject_invalid_literal(ctx, helo);
  DnsStatus st = dns_lookup_types(helo, host_types, NULL, NULL);
  if (st == DNS_OK)
    return SMTPD_ACCESS_DUNNO;
  if (st == DNS_RETRY)
    return tempfail(ctx, ctx->settings->helo_tempfail_defer, "4.7.1", helo, "Helo command",
                    "Host not found");
  return reject_coded(ctx, ctx->settings->unknown_hostname_code, "4.7.1",
                      "<%s>: Helo command rejected: %s", helo,
                      st == DNS_INVAL ? "Malformed DNS server reply" : "Host not found");
}

/* reject_unknown_sender_domain / reject_unknown_recipient_domain: the
 * domain needs an MX, A or AAAA record, unless it is one of ours. */
static SmtpdAccess
reject_unknown_domain(SmtpdAccessCtx *ctx, const char *addr, const char *orig, gboolean sender)
{
  const char *what = sender ? "Sender address" : "Recipient address";
  const char *dsn = sender ? "4.1.8" : "4.1.2";
  g_autofree char *domain = address_domain(addr);
  if (*domain == '\0' || domain[0] == '[')
    return SMTPD_ACCESS_DUNNO;
  DomainClass cls;
  g_autoptr(GError) error = NULL;
  if (!smtpd_policy_domain_class(ctx->settings, addr, &cls, &error))
    return lookup_retry(ctx, orig, error);
  if (cls == DOMAIN_CLASS_LOCAL || cls == DOMAIN_CLASS_ALIAS || cls == DOMAIN_CLASS_VIRTUAL)
    return SMTPD_ACCESS_DUNNO;   /* final delivery here: not our DNS's business */
  DnsStatus st = dns_lookup_types(domain, mailhost_types, NULL, NULL);
  switch (st) {
  case DNS_OK:
    return SMTPD_ACCESS_DUNNO;
  case DNS_RETRY:
    return tempfail(ctx, ctx->settings->address_tempfail_defer, dsn, orig, what,
                    "Domain not found");
  case DNS_NULLMX:
    return reject_coded(ctx, sender ? 550 : 556, sender ? "5.7.27" : "5.1.10",
                        "<%s>: %s rejected: Domain %s does not accept mail (nullMX)", orig, what,
                        domain);
  default:
    return reject_coded(ctx, ctx->settings->unknown_address_code, dsn, "<%s>: %s rejected: %s",
                        orig, what,
                        st == DNS_INVAL ? "Malformed DNS server reply" : "Domain not found");
  }
}

/* ---- DNSBL / DNSWL ---- */

typedef struct {
  DnsStatus status;   /* DNS_OK: listed (and matching the filter) */
  char *txt;          /* the TXT records, " / "-joined, at most 500 bytes */
} Dnsxl;

/* TRUE when one octet pattern ("2", "[2..11]", "[2;4;6..9]") matches v. */
static gboolean
octet_match(const char *pat, gsize len, guint v)
{
  if (len >= 2 && pat[0] == '[' && pat[len - 1] == ']') {
    g_autofree char *inner = g_strndup(pat + 1, len - 2);
    g_auto(GStrv) alts = g_strsplit(inner, ";", -1);
    for (char **a = alts; *a != NULL; a++) {
      char *dots = strstr(*a, "..");
      guint lo = (guint)g_ascii_strtoull(*a, NULL, 10);
      guint hi = dots != NULL ? (guint)g_ascii_strtoull(dots + 2, NULL, 10) : lo;
      if (v >= lo && v <= hi)
        return TRUE;
    }
    return FALSE;
  }
  g_autofree char *num = g_strndup(pat, len);
  return (guint)g_ascii_strtoull(num, NULL, 10) == v;
}

/* TRUE when the IPv4 address a matches the reply filter "d.d.d.d" (each
 * part a number or a [...] set) of "domain=filter". */
static gboolean
filter_match(const char *filter, const char *a)
{
  guint v[4];
  if (sscanf(a, "%u.%u.%u.%u", &v[0], &v[1], &v[2], &v[3]) != 4)
    return FALSE;
  const char *p = filter;
  for (int i = 0; i < 4; i++) {
    gsize len = p[0] == '[' ? strcspn(p, "]") + 1 : strcspn(p, ".");
    if (!octet_match(p, len, v[i]))
      return FALSE;
    p += len;
    if (i < 3) {
      if (*p != '.')
        return FALSE;
      p++;
    }
  }
  return *p == '\0';
}

/* Asks "query" (already ending in the list's domain) for A records that
 * match the list's filter, and the TXT reason when listed. */
static Dnsxl
dnsxl_query(SmtpdAccessCtx *ctx, const char *query, const char *filter)
{
  Dnsxl r = { DNS_NOTFOUND, NULL };
  g_autoptr(GPtrArray) addrs = NULL;
  g_autofree char *why = NULL;
  DnsStatus st = dns_lookup(query, ns_t_a, &addrs, &why);
  if (st != DNS_OK) {
    if (st != DNS_NOTFOUND && st != DNS_NODATA) {
      ctx_event(ctx, "warning", "%s: RBL lookup error: %s", query, why);
      r.status = DNS_RETRY;
    }
    return r;
  }
  gboolean hit = filter == NULL;
  for (guint i = 0; !hit && i < addrs->len; i++)
    hit = filter_match(filter, ((DnsRecord *)addrs->pdata[i])->data);
  if (!hit)
    return r;
  r.status = DNS_OK;
  g_autoptr(GPtrArray) txts = NULL;
  if (dns_lookup(query, ns_t_txt, &txts, NULL) == DNS_OK) {
    GString *t = g_string_new(NULL);
    for (guint i = 0; i < txts->len && t->len < 500; i++) {
      if (i > 0)
        g_string_append(t, " / ");
      g_string_append(t, ((DnsRecord *)txts->pdata[i])->data);
    }
    if (t->len > 500)
      g_string_truncate(t, 500);
    r.txt = g_string_free(t, FALSE);
  }
  return r;
}

/* Splits "domain=filter"; returns the domain, *filter points into arg. */
static char *
dnsxl_split(const char *arg, const char **filter)
{
  const char *eq = strchr(arg, '=');
  *filter = eq != NULL ? eq + 1 : NULL;
  return eq != NULL ? g_strndup(arg, eq - arg) : g_strdup(arg);
}

static Dnsxl
dnsxl_addr(SmtpdAccessCtx *ctx, const char *arg, const char *addr)
{
  const char *filter;
  g_autofree char *domain = dnsxl_split(arg, &filter);
  g_autofree char *query = dns_reverse_name(addr, domain);
  if (query == NULL)
    return (Dnsxl){ DNS_NOTFOUND, NULL };
  return dnsxl_query(ctx, query, filter);
}

/* A domain (or the domain of an address) in a right-hand-side list;
 * names ending in a numeric label are not asked about (Postfix). */
static Dnsxl
dnsxl_domain(SmtpdAccessCtx *ctx, const char *arg, const char *what)
{
  const char *at = strrchr(what, '@');
  const char *domain = at != NULL ? at + 1 : what;
  const char *dot = strrchr(domain, '.');
  const char *last = dot != NULL ? dot + 1 : domain;
  if (*domain == '\0' || domain[0] == '[' || !address_domain_is_valid(domain) ||
      strspn(last, "0123456789") == strlen(last))
    return (Dnsxl){ DNS_NOTFOUND, NULL };
  const char *filter;
  g_autofree char *list = dnsxl_split(arg, &filter);
  g_autofree char *query = g_strdup_printf("%s.%s", domain, list);
  return dnsxl_query(ctx, query, filter);
}

/* What rbl_expand looks names up in. */
typedef struct {
  SmtpdAccessCtx *ctx;
  const char *const *rbl;
  char code[8];
} RblNames;

/* The value of $name in an RBL reply template. */
static const char *
rbl_lookup(const char *name, gpointer data)
{
  static const char *const rbl_names[] = { "rbl_code", "rbl_domain", "rbl_reason", "rbl_txt",
                                           "rbl_what", "rbl_class" };
  RblNames *n = data;
  SmtpdAccessCtx *ctx = n->ctx;

  for (guint i = 0; i < G_N_ELEMENTS(rbl_names); i++)
    if (strcmp(name, rbl_names[i]) == 0)
      return i == 0 ? n->code : n->rbl[i];
  if (strcmp(name, "client_address") == 0)
    return ctx->client_addr;
  if (strcmp(name, "client_name") == 0)
    return ctx->client_name;
  if (strcmp(name, "reverse_client_name") == 0)
    return ctx->client_reverse_name;
  if (strcmp(name, "helo_name") == 0)
    return ctx->helo;
  if (strcmp(name, "sender") == 0)
    return ctx->sender_orig;
  if (strcmp(name, "recipient") == 0)
    return ctx->rcpt_orig;
  /* main.cf parameters: known ones expanded, others as written */
  return param_lookup(name) != NULL ? config_str(ctx->settings->config, name)
                                    : config_raw(ctx->settings->config, name);
}

/* Expands the template (template.h); undefined names are empty. */
static char *
rbl_expand(SmtpdAccessCtx *ctx, const char *template, const char *const *rbl)
{
  RblNames n = { .ctx = ctx, .rbl = rbl };

  g_snprintf(n.code, sizeof n.code, "%d", (int) ctx->settings->maps_rbl_code);
  return template_expand(template, rbl_lookup, &n, NULL);
}

/* The reply for a listed client or domain: rbl_reply_maps or
 * default_rbl_reply, expanded; a template that does not yield
 * "4NN/5NN text" is replaced by 450 4.7.1 Service unavailable. */
static SmtpdAccess
rbl_reject(SmtpdAccessCtx *ctx, Dnsxl *hit, const char *arg, const char *what,
           const char *reply_class)
{
  const SmtpdSettings *st = ctx->settings;
  const char *filter;
  g_autofree char *domain = dnsxl_split(arg, &filter);
  g_autofree char *mapped = NULL;
  if (st->rbl_reply_maps != NULL) {
    g_autoptr(GError) error = NULL;
    TableResult r = table_list_lookup(st->rbl_reply_maps, domain, &mapped, &error);
    if (r == TABLE_TEMPFAIL) {
      ctx_event(ctx, "warning", "rbl_reply_maps lookup error for \"%s\": %s", domain,
                error != NULL ? error->message : "failed");
      g_free(hit->txt);
      return server_error(ctx);
    }
  }
  const char *rbl[] = { NULL, domain, hit->txt != NULL ? hit->txt : "",
                        hit->txt != NULL ? hit->txt : "", what, reply_class };
  g_autofree char *why = rbl_expand(ctx, mapped != NULL ? mapped : st->default_rbl_reply, rbl);
  g_free(hit->txt);
  if ((why[0] != '4' && why[0] != '5') || !g_ascii_isdigit(why[1]) ||
      !g_ascii_isdigit(why[2]) || why[3] != ' ') {
    ctx_event(ctx, "warning", "rbl response code configuration error: %s", why);
    return ctx_reject(ctx, "450 4.7.1 Service unavailable");
  }
  const char *text = why + 4;
  char dsn[16] = "4.7.1";
  gsize n = strspn(text, "0123456789.");
  if (n >= 5 && n < sizeof dsn && text[1] == '.' && text[n] == ' ') {
    memcpy(dsn, text, n);
    dsn[n] = '\0';
    text += n + 1;
  }
  return reject_coded(ctx, g_ascii_strtoll(why, NULL, 10), dsn, "%s",
                      *text != '\0' ? text : "Service unavailable");
}

/* permit_dnswl_client / permit_rhswl_client: never for a recipient we
 * would not accept anyway; a lookup failure defers a later reject. */
static SmtpdAccess
dnswl_permit(SmtpdAccessCtx *ctx, Dnsxl hit, const char *what, const char *reply_class)
{
  g_free(hit.txt);
  if (hit.status == DNS_OK)
    return SMTPD_ACCESS_PERMIT;
  if (hit.status == DNS_RETRY)
    smtpd_access_defer_if(ctx, FALSE, "450 4.7.1 <%s>: %s rejected: Service unavailable", what,
                          reply_class);
  return SMTPD_ACCESS_DUNNO;
}

static gboolean
dnswl_unsafe(SmtpdAccessCtx *ctx)
{
  DomainClass cls;
  g_autoptr(GError) error = NULL;
  if (ctx->rcpt == NULL)
    return FALSE;
  return !smtpd_policy_domain_class(ctx->settings, ctx->rcpt, &cls, &error) ||
         cls == DOMAIN_CLASS_DEFAULT;
}

/* ---- check_*_mx_access / check_*_ns_access ---- */

/* Looks the MX (or NS) hosts of the domain of what, then their
 * addresses, up in the access table: Postfix's check_server_access. */
static SmtpdAccess
check_server_access(SmtpdAccessCtx *ctx, const char *spec, const char *what, int type,
                    const char *name, const char *reply_class)
{
  const SmtpdSettings *st = ctx->settings;
  const char *at = strrchr(what, '@');
  const char *domain = at != NULL ? at + 1 : what;
  if (*domain == '\0')
    return SMTPD_ACCESS_DUNNO;
  if (domain[0] == '[') {
    /* An address literal is its own mail exchanger (and has no NS). */
    gsize len = strlen(domain);
    if (type != ns_t_mx || domain[len - 1] != ']')
      return SMTPD_ACCESS_DUNNO;
    g_autofree char *bare = g_strndup(domain + 1, len - 2);
    if (!g_hostname_is_ip_address(bare))
      return SMTPD_ACCESS_DUNNO;
    g_autoptr(GPtrArray) keys = smtpd_access_keys_client("", bare, st->access_parent_style);
    return check_access(ctx, spec, keys, NULL, name, reply_class);
  }
  g_autoptr(GPtrArray) servers = NULL;
  g_autofree char *why = NULL;
  DnsStatus ds = dns_lookup(domain, type, &servers, &why);
  if ((ds == DNS_NOTFOUND || ds == DNS_NODATA) && type == ns_t_mx) {
    ds = DNS_OK;   /* no MX: the domain is its own mail exchanger */
    servers = g_ptr_array_new_with_free_func((GDestroyNotify)dns_record_free);
    DnsRecord *self = g_new0(DnsRecord, 1);
    self->data = g_ascii_strdown(domain, -1);
    g_ptr_array_add(servers, self);
  } else if (ds == DNS_NODATA && type == ns_t_ns) {
    for (const char *d = strchr(domain, '.'); d != NULL && d[1] != '\0' && ds == DNS_NODATA;
         d = strchr(d + 1, '.'))
      ds = dns_lookup(d + 1, type, &servers, &why);
  }
  if (ds != DNS_OK) {
    ctx_event(ctx, "warning", "Unable to look up %s host for %s: %s", dns_type_name(type),
              domain, why != NULL ? why : "failed");
    return SMTPD_ACCESS_DUNNO;
  }
  for (guint i = 0; i < servers->len; i++) {
    const char *host = ((DnsRecord *)servers->pdata[i])->data;
    g_autoptr(GPtrArray) keys = g_hostname_is_ip_address(host)
        ? smtpd_access_keys_client("", host, st->access_parent_style)
        : smtpd_access_keys_domain(host, st->access_parent_style);
    SmtpdAccess r = check_access(ctx, spec, keys, NULL, name, reply_class);
    if (r != SMTPD_ACCESS_DUNNO)
      return r;
    if (g_hostname_is_ip_address(host))
      continue;
    for (const int *t = addr_types; *t != 0; t++) {
      g_autoptr(GPtrArray) addrs = NULL;
      if (dns_lookup(host, *t, &addrs, NULL) != DNS_OK)
        continue;
      for (guint j = 0; j < addrs->len; j++) {
        g_autoptr(GPtrArray) akeys = smtpd_access_keys_client(
            "", ((DnsRecord *)addrs->pdata[j])->data, st->access_parent_style);
        r = check_access(ctx, spec, akeys, NULL, name, reply_class);
        if (r != SMTPD_ACCESS_DUNNO)
          return r;
      }
    }
  }
  return SMTPD_ACCESS_DUNNO;
}

/* OK from an MX/NS table would whitelist by someone else's DNS data. */
static SmtpdAccess
forbid_whitelist(SmtpdAccessCtx *ctx, const char *r, SmtpdAccess result, const char *target)
{
  if (result != SMTPD_ACCESS_PERMIT)
    return result;
  ctx_event(ctx, "warning", "restriction %s returns OK for %s", r, target);
  ctx_event(ctx, "warning", "this is not allowed for security reasons");
  ctx_event(ctx, "warning", "use DUNNO instead of OK if you want to make an exception");
  return server_error(ctx);
}

/* ---- dispatch ---- */

static gboolean
known_name(const char *s)
{
  return s != NULL && g_ascii_strcasecmp(s, "unknown") != 0;
}

gboolean
smtpd_access_dns(SmtpdAccessCtx *ctx, const char *const **pp, const char *name,
                 const char *what, SmtpdAccess *result)
{
  const char *r = **pp;
  const char *arg = (*pp)[1];
  *result = SMTPD_ACCESS_DUNNO;
#define IS(word) (g_ascii_strcasecmp(r, word) == 0)

  if (IS("reject_unknown_client_hostname") || IS("reject_unknown_client")) {
    *result = reject_unknown_client(ctx, FALSE);
    return TRUE;
  }
  if (IS("reject_unknown_reverse_client_hostname")) {
    *result = reject_unknown_client(ctx, TRUE);
    return TRUE;
  }
  if (IS("reject_unknown_helo_hostname") || IS("reject_unknown_hostname")) {
    *result = reject_unknown_helo(ctx);
    return TRUE;
  }
  if (IS("reject_unknown_sender_domain")) {
    if (ctx->sender != NULL && *ctx->sender != '\0')
      *result = reject_unknown_domain(ctx, ctx->sender, ctx->sender_orig, TRUE);
    return TRUE;
  }
  if (IS("reject_unknown_recipient_domain")) {
    if (ctx->rcpt != NULL)
      *result = reject_unknown_domain(ctx, ctx->rcpt, ctx->rcpt_orig, FALSE);
    return TRUE;
  }

  /* The DNSBL/DNSWL family takes a list domain (with optional =filter). */
  struct {
    const char *name;
    int kind;   /* 0 client addr, 1 client name, 2 reverse name, 3 helo, 4 sender, 5 rcpt */
    gboolean permit;
  } const lists[] = {
    { "reject_rbl_client", 0, FALSE },          { "reject_rbl", 0, FALSE },
    { "permit_dnswl_client", 0, TRUE },         { "reject_rhsbl_client", 1, FALSE },
    { "permit_rhswl_client", 1, TRUE },         { "reject_rhsbl_reverse_client", 2, FALSE },
    { "reject_rhsbl_helo", 3, FALSE },          { "reject_rhsbl_sender", 4, FALSE },
    { "reject_rhsbl_recipient", 5, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS(lists); i++) {
    if (!IS(lists[i].name))
      continue;
    if (arg == NULL) {
      ctx_event(ctx, "warning", "restriction %s requires domain name argument", r);
      return TRUE;
    }
    (*pp)++;
    const char *target = NULL, *reply_class = "Client host";
    switch (lists[i].kind) {
    case 0: target = ctx->client_addr; break;
    case 1: target = known_name(ctx->client_name) ? ctx->client_name : NULL; break;
    case 2:
      target = known_name(ctx->client_reverse_name) ? ctx->client_reverse_name : NULL;
      reply_class = "Unverified Client host";
      break;
    case 3: target = ctx->helo, reply_class = "Helo command"; break;
    case 4:
      target = ctx->sender != NULL && *ctx->sender != '\0' ? ctx->sender_orig : NULL;
      reply_class = "Sender address";
      break;
    default: target = ctx->rcpt_orig, reply_class = "Recipient address"; break;
    }
    if (target == NULL)
      return TRUE;
    if (lists[i].permit && dnswl_unsafe(ctx))
      return TRUE;
    Dnsxl hit = lists[i].kind == 0 ? dnsxl_addr(ctx, arg, target) : dnsxl_domain(ctx, arg, target);
    if (lists[i].permit)
      *result = dnswl_permit(ctx, hit, target, reply_class);
    else if (hit.status == DNS_OK)
      *result = rbl_reject(ctx, &hit, arg, target, reply_class);
    return TRUE;
  }

  /* check_{client,reverse_client,helo,sender,recipient}_{mx,ns}_access */
  gsize len = strlen(r);
  if (g_str_has_prefix(r, "check_") && len > 10 &&
      (g_str_has_suffix(r, "_mx_access") || g_str_has_suffix(r, "_ns_access"))) {
    g_autofree char *who = g_strndup(r + 6, len - 6 - 10);
    int type = r[len - 9] == 'm' ? ns_t_mx : ns_t_ns;
    const char *target = NULL, *reply_name = NULL, *reply_class = NULL;
    if (strcmp(who, "client") == 0) {
      target = known_name(ctx->client_name) ? ctx->client_name : NULL;
      reply_name = ctx->namaddr, reply_class = "Client host";
    } else if (strcmp(who, "reverse_client") == 0) {
      target = known_name(ctx->client_reverse_name) ? ctx->client_reverse_name : NULL;
      reply_name = ctx->namaddr, reply_class = "Unverified Client host";
    } else if (strcmp(who, "helo") == 0) {
      target = reply_name = ctx->helo, reply_class = "Helo command";
    } else if (strcmp(who, "sender") == 0) {
      target = ctx->sender != NULL && *ctx->sender != '\0' ? ctx->sender : NULL;
      reply_name = ctx->sender_orig, reply_class = "Sender address";
    } else if (strcmp(who, "recipient") == 0) {
      target = ctx->rcpt, reply_name = ctx->rcpt_orig, reply_class = "Recipient address";
    } else {
      return FALSE;
    }
    if (arg == NULL || strchr(arg, ':') == NULL) {
      ctx_event(ctx, "warning", "restriction %s: bad argument \"%s\": need maptype:mapname", r,
                arg != NULL ? arg : "");
      *result = server_error(ctx);
      return TRUE;
    }
    (*pp)++;
    if (target != NULL)
      *result = forbid_whitelist(
          ctx, r, check_server_access(ctx, arg, target, type, reply_name, reply_class), target);
    return TRUE;
  }
#undef IS
  (void)name;
  (void)what;
  return FALSE;
}
