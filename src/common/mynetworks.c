/* mynetworks.c - computes the mynetworks default from mynetworks_style
 * and the interface addresses, as Postfix's mynetworks() does; with
 * style "host" the loopback networks come first (Postern's secure
 * default trusts this machine and nothing else).
 *
 * Called by the config loader (config-expand.c) when main.cf leaves
 * mynetworks unset, so the computed value is what every reader of the
 * parameter sees.  Never logs.
 */
#include "mynetworks.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

typedef enum { STYLE_HOST, STYLE_SUBNET, STYLE_CLASS } MynetworksStyle;

/* Zeroes the bits of addr past prefix. */
static void
mynetworks_mask(guchar *addr, guint bits, guint prefix)
{
  for (guint i = prefix; i < bits; i++)
    addr[i / 8] &= (guchar) ~(0x80 >> (i % 8));
}

/* The network prefix of an IPv4 address's class; 0 for class E. */
static guint
mynetworks_class_prefix(const guchar *addr)
{
  if (addr[0] < 128)
    return 8;      /* A */
  if (addr[0] < 192)
    return 16;     /* B */
  if (addr[0] < 224)
    return 24;     /* C */
  if (addr[0] < 240)
    return 4;      /* D, as Postfix's IN_CLASSD_NET */
  return 0;
}

/* TRUE when addr/prefix lies inside a network already in seen. */
static gboolean
mynetworks_covered(GArray *seen, int family, const guchar *addr, guint prefix)
{
  for (guint i = 0; i < seen->len; i++) {
    const InetInterface *net = &g_array_index(seen, InetInterface, i);
    guchar a[16];

    if (net->family != family || net->prefix > prefix)
      continue;
    memcpy(a, addr, sizeof a);
    mynetworks_mask(a, family == AF_INET ? 32 : 128, net->prefix);
    if (memcmp(a, net->addr, family == AF_INET ? 4 : 16) == 0)
      return TRUE;
  }
  return FALSE;
}

/* Appends one network (host bits zero) as a mynetworks pattern unless
 * an earlier one already covers it. */
static void
mynetworks_add(GString *out, GArray *seen, int family, const guchar *addr, guint prefix)
{
  char text[INET6_ADDRSTRLEN];
  InetInterface net = { .family = family, .prefix = prefix };

  if (mynetworks_covered(seen, family, addr, prefix)
      || inet_ntop(family, addr, text, sizeof text) == NULL)
    return;
  memcpy(net.addr, addr, family == AF_INET ? 4 : 16);
  g_array_append_val(seen, net);
  if (out->len > 0)
    g_string_append_c(out, ' ');
  if (family == AF_INET6)
    g_string_append_printf(out, "[%s]/%u", text, prefix);
  else
    g_string_append_printf(out, "%s/%u", text, prefix);
}

char *
mynetworks_for_style(const char *style, const InetInterface *ifaces, guint n, GError **error)
{
  g_autoptr(GArray) seen = g_array_new(FALSE, TRUE, sizeof(InetInterface));
  g_autoptr(GString) out = g_string_new(NULL);
  MynetworksStyle st;

  if (g_ascii_strcasecmp(style, "host") == 0)
    st = STYLE_HOST;
  else if (g_ascii_strcasecmp(style, "subnet") == 0)
    st = STYLE_SUBNET;
  else if (g_ascii_strcasecmp(style, "class") == 0)
    st = STYLE_CLASS;
  else {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "bad value '%s' (use host, subnet or class)", style);
    return NULL;
  }
  if (st == STYLE_HOST) {
    const guchar v4[16] = { 127 }, v6[16] = { [15] = 1 };
    mynetworks_add(out, seen, AF_INET, v4, 8);
    mynetworks_add(out, seen, AF_INET6, v6, 128);
  }
  for (guint i = 0; i < n; i++) {
    const InetInterface *ifc = &ifaces[i];
    guint bits = ifc->family == AF_INET ? 32 : 128;
    guint prefix = MIN(ifc->prefix, bits);
    guchar addr[16];

    if (ifc->family != AF_INET && ifc->family != AF_INET6)
      continue;
    memcpy(addr, ifc->addr, sizeof addr);
    if (st == STYLE_HOST)
      prefix = bits;
    else if (st == STYLE_CLASS && ifc->family == AF_INET && mynetworks_class_prefix(addr) > 0)
      prefix = mynetworks_class_prefix(addr);
    mynetworks_mask(addr, bits, prefix);
    mynetworks_add(out, seen, ifc->family, addr, prefix);
  }
  return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Number of leading one bits of a netmask. */
static guint
mynetworks_mask_length(const guchar *mask, guint bytes)
{
  guint n = 0;

  for (guint i = 0; i < bytes; i++) {
    guchar b = mask[i];
    while (b & 0x80) {
      n++;
      b = (guchar) (b << 1);
    }
    if (mask[i] != 0xff)
      break;
  }
  return n;
}

GArray *
mynetworks_interfaces(const char *inet_protocols, GError **error)
{
  g_auto(GStrv) protocols = config_split_list(inet_protocols != NULL ? inet_protocols : "all");
  gboolean all = protocols[0] == NULL || g_strv_contains((const char *const *) protocols, "all");
  gboolean v4 = all || g_strv_contains((const char *const *) protocols, "ipv4");
  gboolean v6 = all || g_strv_contains((const char *const *) protocols, "ipv6");
  struct ifaddrs *list = NULL;
  GArray *out;

  if (getifaddrs(&list) < 0) {
    int e = errno;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "cannot list the network interfaces: %s", g_strerror(e));
    return NULL;
  }
  out = g_array_new(FALSE, TRUE, sizeof(InetInterface));
  for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
    InetInterface ifc = { 0 };

    if (ifa->ifa_addr == NULL)
      continue;
    if (ifa->ifa_addr->sa_family == AF_INET && v4) {
      const struct sockaddr_in *sin = (const struct sockaddr_in *) ifa->ifa_addr;
      ifc.family = AF_INET;
      memcpy(ifc.addr, &sin->sin_addr, 4);
      ifc.prefix = ifa->ifa_netmask != NULL
          ? mynetworks_mask_length(
                (const guchar *) &((const struct sockaddr_in *) ifa->ifa_netmask)->sin_addr, 4)
          : 32;
    } else if (ifa->ifa_addr->sa_family == AF_INET6 && v6) {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ifa->ifa_addr;
      ifc.family = AF_INET6;
      memcpy(ifc.addr, &sin6->sin6_addr, 16);
      ifc.prefix = ifa->ifa_netmask != NULL
          ? mynetworks_mask_length(
                (const guchar *) &((const struct sockaddr_in6 *) ifa->ifa_netmask)->sin6_addr, 16)
          : 128;
    } else {
      continue;
    }
    g_array_append_val(out, ifc);
  }
  freeifaddrs(list);
  return out;
}
