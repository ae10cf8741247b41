/* test-inet.c - network lists and listener addresses. */
#include "inet.h"
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static void
test_netlist_match(void)
{
  const char *const entries[] = { "127.0.0.0/8", "[::1]/128", "192.168.1.5", "10.1.0.0/16",
                                  "[2001:db8::]/32", "", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(NetList) list = netlist_new(entries, &error);

  g_assert_no_error(error);
  g_assert_true(netlist_match_string(list, "127.0.0.1"));
  g_assert_true(netlist_match_string(list, "127.255.3.4"));
  g_assert_false(netlist_match_string(list, "128.0.0.1"));
  g_assert_true(netlist_match_string(list, "::1"));
  g_assert_true(netlist_match_string(list, "[::1]"));
  g_assert_false(netlist_match_string(list, "::2"));
  g_assert_true(netlist_match_string(list, "192.168.1.5"));
  g_assert_false(netlist_match_string(list, "192.168.1.6"));
  g_assert_true(netlist_match_string(list, "10.1.200.3"));
  g_assert_false(netlist_match_string(list, "10.2.0.1"));
  g_assert_true(netlist_match_string(list, "2001:db8:ffff::1"));
  g_assert_false(netlist_match_string(list, "2001:db9::1"));
  g_assert_true(netlist_match_string(list, "::ffff:127.0.0.1"));
  g_assert_false(netlist_match_string(list, "::ffff:8.8.8.8"));
  g_assert_false(netlist_match_string(list, "garbage"));
  g_assert_false(netlist_match_string(list, ""));
}

static void
test_netlist_sockaddr(void)
{
  const char *const entries[] = { "127.0.0.0/8", "::1/128", NULL };
  g_autoptr(NetList) list = netlist_new(entries, NULL);
  struct sockaddr_in sin = { .sin_family = AF_INET };
  struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
  struct sockaddr_un sun = { .sun_family = AF_UNIX };

  g_assert_nonnull(list);
  inet_pton(AF_INET, "127.0.0.2", &sin.sin_addr);
  g_assert_true(netlist_match(list, (struct sockaddr *) &sin));
  inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
  g_assert_false(netlist_match(list, (struct sockaddr *) &sin));
  inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
  g_assert_true(netlist_match(list, (struct sockaddr *) &sin6));
  inet_pton(AF_INET6, "::ffff:127.1.2.3", &sin6.sin6_addr);
  g_assert_true(netlist_match(list, (struct sockaddr *) &sin6));
  inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
  g_assert_false(netlist_match(list, (struct sockaddr *) &sin6));
  g_assert_false(netlist_match(list, (struct sockaddr *) &sun));
}

static void
test_netlist_negate_and_mapped(void)
{
  const char *const entries[] = { "!10.0.0.1", "10.0.0.0/8", "[::ffff:172.16.0.0]/108", NULL };
  g_autoptr(NetList) list = netlist_new(entries, NULL);

  g_assert_nonnull(list);
  g_assert_false(netlist_match_string(list, "10.0.0.1"));
  g_assert_true(netlist_match_string(list, "10.0.0.2"));
  g_assert_true(netlist_match_string(list, "172.16.5.5"));
  g_assert_true(netlist_match_string(list, "172.31.5.5"));
  g_assert_false(netlist_match_string(list, "172.32.0.1"));
}

static void
test_netlist_errors(void)
{
  const char *bad[] = { "10.0.0.0/33", "1.2.3", "300.1.1.1", "[::1]/129", "127.0.0.1/8",
                        "10.0.0.0/x", "hostname.example", "10.0.0.0/" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    const char *entries[] = { bad[i], NULL };
    g_autoptr(GError) error = NULL;
    NetList *list = netlist_new(entries, &error);
    if (list)
      g_error("\"%s\" accepted", bad[i]);
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, bad[i]));
  }
  const char *tables[] = { "/etc/postern/networks", "cidr:/etc/postern/networks", "hash:/x" };
  for (gsize i = 0; i < G_N_ELEMENTS(tables); i++) {
    const char *entries[] = { tables[i], NULL };
    g_autoptr(GError) error = NULL;
    g_assert_null(netlist_new(entries, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, "not supported yet"));
  }
  /* an empty list matches nothing */
  g_autoptr(NetList) empty = netlist_new(NULL, NULL);
  g_assert_nonnull(empty);
  g_assert_false(netlist_match_string(empty, "127.0.0.1"));
}

static void
test_sockaddr_to_string(void)
{
  char buf[64];
  struct sockaddr_in sin = { .sin_family = AF_INET };
  struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
  struct sockaddr_un sun = { .sun_family = AF_UNIX };

  inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &sin, buf, sizeof buf), ==, "192.0.2.7");
  inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &sin6, buf, sizeof buf), ==, "2001:db8::5");
  inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &sin6, buf, sizeof buf), ==, "10.1.2.3");
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &sun, buf, sizeof buf), ==, "local");
}

static void
test_parse_listen(void)
{
  struct sockaddr_storage ss;
  socklen_t len;
  char buf[64];
  g_autoptr(GError) error = NULL;

  g_assert_true(inet_parse_listen("127.0.0.1:2525", &ss, &len, &error));
  g_assert_no_error(error);
  g_assert_cmpint(ss.ss_family, ==, AF_INET);
  g_assert_cmpint(len, ==, sizeof(struct sockaddr_in));
  g_assert_cmpint(ntohs(((struct sockaddr_in *) &ss)->sin_port), ==, 2525);
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &ss, buf, sizeof buf), ==, "127.0.0.1");

  g_assert_true(inet_parse_listen("[::1]:25", &ss, &len, &error));
  g_assert_cmpint(ss.ss_family, ==, AF_INET6);
  g_assert_cmpint(ntohs(((struct sockaddr_in6 *) &ss)->sin6_port), ==, 25);
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &ss, buf, sizeof buf), ==, "::1");

  g_assert_true(inet_parse_listen("localhost:0", &ss, &len, &error));
  g_assert_cmpstr(inet_sockaddr_to_string((struct sockaddr *) &ss, buf, sizeof buf), ==, "127.0.0.1");

  g_assert_true(inet_parse_listen("/run/postern/smtpd.sock", &ss, &len, &error));
  g_assert_cmpint(ss.ss_family, ==, AF_UNIX);
  g_assert_cmpstr(((struct sockaddr_un *) &ss)->sun_path, ==, "/run/postern/smtpd.sock");

  const char *bad[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", "::1:25",
                        "[::1]25", "[::1", "mail.example.com:25", "1.2.3:25" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) e = NULL;
    if (inet_parse_listen(bad[i], &ss, &len, &e))
      g_error("\"%s\" accepted", bad[i]);
    g_assert_error(e, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  }
  g_autofree char *longpath = g_strnfill(200, 'x');
  longpath[0] = '/';
  g_autoptr(GError) e2 = NULL;
  g_assert_false(inet_parse_listen(longpath, &ss, &len, &e2));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/inet/netlist/match", test_netlist_match);
  g_test_add_func("/inet/netlist/sockaddr", test_netlist_sockaddr);
  g_test_add_func("/inet/netlist/negate-mapped", test_netlist_negate_and_mapped);
  g_test_add_func("/inet/netlist/errors", test_netlist_errors);
  g_test_add_func("/inet/sockaddr-to-string", test_sockaddr_to_string);
  g_test_add_func("/inet/parse-listen", test_parse_listen);
  return g_test_run();
}
