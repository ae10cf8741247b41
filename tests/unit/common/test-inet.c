/* test-inet.c - network lists and listener addresses. */
#include "inet.h"
#include "config.h"
#include "mynetworks.h"

#include <glib/gstdio.h>
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
  g_assert_cmpint(netlist_match_string(list, "127.0.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "127.255.3.4", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "128.0.0.1", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "::1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "[::1]", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "::2", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "192.168.1.5", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "192.168.1.6", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "10.1.200.3", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.2.0.1", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "2001:db8:ffff::1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "2001:db9::1", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "::ffff:127.0.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "::ffff:8.8.8.8", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "garbage", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "", NULL), ==, MATCH_NONE);
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
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin, NULL), ==, MATCH_FOUND);
  inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin, NULL), ==, MATCH_NONE);
  inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin6, NULL), ==, MATCH_FOUND);
  inet_pton(AF_INET6, "::ffff:127.1.2.3", &sin6.sin6_addr);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin6, NULL), ==, MATCH_FOUND);
  inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin6, NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sun, NULL), ==, MATCH_NONE);
}

static void
test_netlist_negate_and_mapped(void)
{
  const char *const entries[] = { "!10.0.0.1", "10.0.0.0/8", "[::ffff:172.16.0.0]/108", NULL };
  g_autoptr(NetList) list = netlist_new(entries, NULL);

  g_assert_nonnull(list);
  g_assert_cmpint(netlist_match_string(list, "10.0.0.1", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "10.0.0.2", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "172.16.5.5", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "172.31.5.5", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "172.32.0.1", NULL), ==, MATCH_NONE);
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
  /* an empty list matches nothing */
  g_autoptr(NetList) empty = netlist_new(NULL, NULL);
  g_assert_nonnull(empty);
  g_assert_cmpint(netlist_match_string(empty, "127.0.0.1", NULL), ==, MATCH_NONE);
}

/* A temp dir with files, removed afterwards. */
typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("postern-inet-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree char *p = g_build_filename(f->dir, name, NULL);
    g_unlink(p);
  }
  g_rmdir(f->dir);
  g_free(f->dir);
}

static char *
write_file(const Fixture *f, const char *name, const char *text)
{
  char *path = g_build_filename(f->dir, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

static NetList *
netlist_from(const char *value)
{
  g_auto(GStrv) entries = config_split_list(value);
  g_autoptr(GError) error = NULL;
  NetList *list = netlist_new((const char *const *) entries, &error);
  g_assert_no_error(error);
  g_assert_nonnull(list);
  return list;
}

static void
test_netlist_file(Fixture *f, gconstpointer data)
{
  g_autofree char *path = write_file(f, "networks",
    "# trusted networks\n"
    "!10.9.0.0/16\n"
    "10.0.0.0/8 192.168.1.1, [2001:db8::]/32   # office\n"
    "\n"
    "  ::1\n");
  g_autofree char *value = g_strdup_printf("127.0.0.0/8 %s 172.16.0.0/12", path);
  g_autoptr(NetList) list = netlist_from(value);

  g_assert_false(netlist_has_tables(list));
  g_assert_cmpint(netlist_match_string(list, "127.0.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.1.2.3", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.9.2.3", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "192.168.1.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "192.168.1.2", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "2001:db8::77", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "::1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "172.20.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "8.8.8.8", NULL), ==, MATCH_NONE);

  /* "!/file": every network in it is excluded */
  g_autofree char *neg = g_strdup_printf("!%s, 0.0.0.0/0", path);
  g_autoptr(NetList) nlist = netlist_from(neg);
  g_assert_cmpint(netlist_match_string(nlist, "10.1.2.3", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(nlist, "10.9.2.3", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(nlist, "8.8.8.8", NULL), ==, MATCH_FOUND);
}

static void
test_netlist_file_errors(Fixture *f, gconstpointer data)
{
  g_autofree char *missing = g_build_filename(f->dir, "missing", NULL);
  const char *entries[] = { "127.0.0.0/8", missing, NULL };
  g_autoptr(GError) error = NULL;

  g_assert_null(netlist_new(entries, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *want = g_strdup_printf("open file %s: No such file or directory", missing);
  g_assert_cmpstr(error->message, ==, want);

  g_autofree char *path = write_file(f, "networks", "10.0.0.0/8\n10.0.0.1/8\n");
  const char *bad[] = { path, NULL };
  g_clear_error(&error);
  g_assert_null(netlist_new(bad, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_autofree char *want2 = g_strdup_printf("%s:2: non-null host address bits in \"10.0.0.1/8\"",
                                           path);
  g_assert_cmpstr(error->message, ==, want2);

  const char *badtable[] = { "nosuch:/x", NULL };
  g_clear_error(&error);
  g_assert_null(netlist_new(badtable, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_nonnull(strstr(error->message, "unsupported table type \"nosuch\""));
}

static void
test_netlist_tables(Fixture *f, gconstpointer data)
{
  g_autofree char *cidr = write_file(f, "trusted.cidr",
    "192.168.0.0/16   OK\n"
    "[2001:db8::]/32  OK\n");
  g_autofree char *hosts = write_file(f, "hosts", "10.1.2.3 trusted\n");
  g_autofree char *value = g_strdup_printf("127.0.0.0/8, cidr:%s, texthash:%s", cidr, hosts);
  g_autoptr(NetList) list = netlist_from(value);
  struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

  g_assert_true(netlist_has_tables(list));
  g_assert_cmpint(netlist_match_string(list, "127.0.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "192.168.7.8", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "[2001:db8::1]", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "::ffff:192.168.1.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.1.2.3", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.1.2.4", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(list, "2001:db9::1", NULL), ==, MATCH_NONE);
  inet_pton(AF_INET6, "::ffff:192.168.200.1", &sin6.sin6_addr);
  g_assert_cmpint(netlist_match(list, (struct sockaddr *) &sin6, NULL), ==, MATCH_FOUND);

  /* a negated table in front of a catch-all */
  g_autofree char *neg = g_strdup_printf("!cidr:%s, 0.0.0.0/0", cidr);
  g_autoptr(NetList) nlist = netlist_from(neg);
  g_assert_cmpint(netlist_match_string(nlist, "192.168.7.8", NULL), ==, MATCH_NONE);
  g_assert_cmpint(netlist_match_string(nlist, "10.0.0.1", NULL), ==, MATCH_FOUND);
}

/* A table that cannot answer is MATCH_TEMPFAIL, told apart from "not
 * listed"; entries before it still decide. */
static void
test_netlist_tempfail(Fixture *f, gconstpointer data)
{
  g_autofree char *missing = g_build_filename(f->dir, "later.cidr", NULL);
  g_autofree char *value = g_strdup_printf("127.0.0.0/8, cidr:%s", missing);
  g_autoptr(NetList) list = netlist_from(value);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint(netlist_match_string(list, "127.0.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "10.0.0.1", &error), ==, MATCH_TEMPFAIL);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY);
  g_assert_nonnull(strstr(error->message, missing));
  g_clear_error(&error);
  /* the file appears: answers within a second */
  g_assert_true(g_file_set_contents(missing, "10.0.0.0/8 OK\n", -1, NULL));
  g_usleep(G_USEC_PER_SEC + 100000);
  g_assert_cmpint(netlist_match_string(list, "10.0.0.1", &error), ==, MATCH_FOUND);
  g_assert_no_error(error);
  g_assert_cmpint(netlist_match_string(list, "11.0.0.1", &error), ==, MATCH_NONE);
}

/* An interface for mynetworks_for_style(). */
static InetInterface
iface(const char *addr, guint prefix)
{
  InetInterface i = { .family = strchr(addr, ':') ? AF_INET6 : AF_INET, .prefix = prefix };
  g_assert_cmpint(inet_pton(i.family, addr, i.addr), ==, 1);
  return i;
}

static void
test_mynetworks_style(void)
{
  const InetInterface ifaces[] = {
    iface("127.0.0.1", 8), iface("192.0.2.2", 24), iface("10.20.30.40", 16),
    iface("172.16.5.4", 12), iface("::1", 128), iface("fd00::2", 64),
    iface("192.0.2.3", 24), iface("224.0.0.251", 32), iface("240.1.2.3", 8),
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *host = mynetworks_for_style("host", ifaces, G_N_ELEMENTS(ifaces), &error);
  g_autofree char *subnet = mynetworks_for_style("subnet", ifaces, G_N_ELEMENTS(ifaces), &error);
  g_autofree char *class = mynetworks_for_style("CLASS", ifaces, G_N_ELEMENTS(ifaces), &error);
  g_autofree char *none = mynetworks_for_style("host", NULL, 0, &error);

  g_assert_no_error(error);
  g_assert_cmpstr(host, ==, "127.0.0.0/8 [::1]/128 192.0.2.2/32 10.20.30.40/32 172.16.5.4/32 "
                            "[fd00::2]/128 192.0.2.3/32 224.0.0.251/32 240.1.2.3/32");
  g_assert_cmpstr(subnet, ==, "127.0.0.0/8 192.0.2.0/24 10.20.0.0/16 172.16.0.0/12 [::1]/128 "
                              "[fd00::]/64 224.0.0.251/32 240.0.0.0/8");
  /* A, C, A, B; IPv6 subnets; D is /4; class E keeps its subnet */
  g_assert_cmpstr(class, ==, "127.0.0.0/8 192.0.2.0/24 10.0.0.0/8 172.16.0.0/16 [::1]/128 "
                             "[fd00::]/64 224.0.0.0/4 240.0.0.0/8");
  g_assert_cmpstr(none, ==, "127.0.0.0/8 [::1]/128");

  /* the result is a valid mynetworks value */
  g_auto(GStrv) entries = config_split_list(class);
  g_autoptr(NetList) list = netlist_new((const char *const *) entries, &error);
  g_assert_no_error(error);
  g_assert_cmpint(netlist_match_string(list, "10.99.0.1", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "fd00::99", NULL), ==, MATCH_FOUND);
  g_assert_cmpint(netlist_match_string(list, "fd01::1", NULL), ==, MATCH_NONE);

  g_assert_null(mynetworks_for_style("all", ifaces, 1, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_cmpstr(error->message, ==, "bad value 'all' (use host, subnet or class)");

  /* this machine's interfaces: at least a list, each address usable */
  g_autoptr(GArray) mine = mynetworks_interfaces("ipv4", NULL);
  g_assert_nonnull(mine);
  for (guint i = 0; i < mine->len; i++)
    g_assert_cmpint(g_array_index(mine, InetInterface, i).family, ==, AF_INET);
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
  g_test_add("/inet/netlist/file", Fixture, NULL, fixture_setup, test_netlist_file,
             fixture_teardown);
  g_test_add("/inet/netlist/file-errors", Fixture, NULL, fixture_setup, test_netlist_file_errors,
             fixture_teardown);
  g_test_add("/inet/netlist/tables", Fixture, NULL, fixture_setup, test_netlist_tables,
             fixture_teardown);
  g_test_add("/inet/netlist/tempfail", Fixture, NULL, fixture_setup, test_netlist_tempfail,
             fixture_teardown);
  g_test_add_func("/inet/mynetworks-style", test_mynetworks_style);
  g_test_add_func("/inet/sockaddr-to-string", test_sockaddr_to_string);
  g_test_add_func("/inet/parse-listen", test_parse_listen);
  return g_test_run();
}
