/* test-dns.c - dns.c against a real DNS server: a private dnsmasq on a
 * free port, reached through the POSTERN_DNS_SERVER test hook. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dns.h"

static GPid dnsmasq_pid;
static char *dnsmasq_dir;

static int
free_udp_port(void)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
  close(fd);
  return ntohs(sa.sin_port);
}

/* Starts dnsmasq and points this process's resolver at it. */
static void
start_dnsmasq(void)
{
  dnsmasq_dir = g_dir_make_tmp("postern-test-dns-XXXXXX", NULL);
  g_assert_nonnull(dnsmasq_dir);
  int port = free_udp_port();
  g_autofree char *conf = g_build_filename(dnsmasq_dir, "dnsmasq.conf", NULL);
  g_autofree char *text = g_strdup_printf(
      "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
      "local=/test/\n"
      "mx-host=example.test,mx2.example.test,20\nmx-host=example.test,mx1.example.test,10\n"
      "host-record=mx1.example.test,192.0.2.1,2001:db8::1\n"
      "mx-host=nullmx.test,.,0\n"
      "txt-record=txt.test,\"first part\"\n"
      "host-record=aonly.test,192.0.2.7\n"
      "host-record=xn--bcher-kva.test,192.0.2.8\n",
      port);
  g_assert_true(g_file_set_contents(conf, text, -1, NULL));
  g_autofree char *conf_arg = g_strdup_printf("--conf-file=%s", conf);
  g_autofree char *pid_arg = g_strdup_printf("--pid-file=%s/pid", dnsmasq_dir);
  const char *argv[] = { "dnsmasq", "--keep-in-foreground", conf_arg, "--user=root", pid_arg,
                         "--log-facility=/dev/null", NULL };
  g_autoptr(GError) error = NULL;
  if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                     NULL, NULL, &dnsmasq_pid, &error))
    g_error("cannot start dnsmasq (tools/test installs dnsmasq-base): %s", error->message);
  g_autofree char *server = g_strdup_printf("127.0.0.1:%d", port);
  g_setenv("POSTERN_DNS_SERVER", server, TRUE);
  /* wait until it answers */
  for (int i = 0; i < 200; i++) {
    if (dns_lookup("aonly.test", ns_t_a, NULL, NULL) == DNS_OK)
      return;
    g_usleep(20000);
  }
  g_error("dnsmasq does not answer on %s", server);
}

static void
stop_dnsmasq(void)
{
  kill(dnsmasq_pid, SIGTERM);
  waitpid(dnsmasq_pid, NULL, 0);
  g_autofree char *pid = g_build_filename(dnsmasq_dir, "pid", NULL);
  g_autofree char *conf = g_build_filename(dnsmasq_dir, "dnsmasq.conf", NULL);
  g_unlink(pid);
  g_unlink(conf);
  g_rmdir(dnsmasq_dir);
  g_free(dnsmasq_dir);
}

static void
test_reverse_name(void)
{
  g_autofree char *v4 = dns_reverse_name("192.0.2.1", NULL);
  g_assert_cmpstr(v4, ==, "1.2.0.192.in-addr.arpa");
  g_autofree char *bl = dns_reverse_name("127.0.0.2", "zen.example");
  g_assert_cmpstr(bl, ==, "2.0.0.127.zen.example");
  g_autofree char *v6 = dns_reverse_name("2001:db8::1", NULL);
  g_assert_cmpstr(v6, ==,
                  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  g_assert_null(dns_reverse_name("example.com", NULL));
}

static void
test_invalid_names(void)
{
  /* never asked: syntactically impossible or numeric names */
  const char *bad[] = { "", "a..b", "-a.test", "a b.test", "1.2.3.4", "[1.2.3.4]", "x.123" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *why = NULL;
    g_assert_cmpint(dns_lookup(bad[i], ns_t_a, NULL, &why), ==, DNS_NOTFOUND);
    g_assert_nonnull(strstr(why, "invalid host or domain name"));
  }
}

/* U-labels are looked up as A-labels; bytes that are not UTF-8 are no name. */
static void
test_idna(void)
{
  g_autoptr(GPtrArray) a = NULL;
  g_assert_cmpint(dns_lookup("b\xc3\xbc" "cher.test", ns_t_a, &a, NULL), ==, DNS_OK);
  g_assert_cmpstr(((DnsRecord *)a->pdata[0])->data, ==, "192.0.2.8");
  g_assert_cmpint(dns_lookup("B\xc3\x9c" "CHER.test.", ns_t_a, NULL, NULL), ==, DNS_OK);
  g_autofree char *why = NULL;
  g_assert_cmpint(dns_lookup("b\xfc" "cher.test", ns_t_a, NULL, &why), ==, DNS_NOTFOUND);
  g_assert_nonnull(strstr(why, "invalid host or domain name"));
}

static void
test_records(void)
{
  g_autoptr(GPtrArray) mx = NULL;
  g_assert_cmpint(dns_lookup("example.test", ns_t_mx, &mx, NULL), ==, DNS_OK);
  g_assert_cmpuint(mx->len, ==, 2);
  gboolean seen10 = FALSE, seen20 = FALSE;
  for (guint i = 0; i < mx->len; i++) {
    DnsRecord *rr = mx->pdata[i];
    g_assert_cmpint(rr->type, ==, ns_t_mx);
    g_assert_cmpstr(rr->name, ==, "example.test");
    if (rr->pref == 10)
      seen10 = g_str_equal(rr->data, "mx1.example.test");
    if (rr->pref == 20)
      seen20 = g_str_equal(rr->data, "mx2.example.test");
  }
  g_assert_true(seen10 && seen20);

  g_autoptr(GPtrArray) a = NULL, aaaa = NULL, txt = NULL;
  g_assert_cmpint(dns_lookup("MX1.example.test.", ns_t_a, &a, NULL), ==, DNS_OK);
  g_assert_cmpstr(((DnsRecord *)a->pdata[0])->data, ==, "192.0.2.1");
  g_assert_cmpint(dns_lookup("mx1.example.test", ns_t_aaaa, &aaaa, NULL), ==, DNS_OK);
  g_assert_cmpstr(((DnsRecord *)aaaa->pdata[0])->data, ==, "2001:db8::1");
  g_assert_cmpint(dns_lookup("txt.test", ns_t_txt, &txt, NULL), ==, DNS_OK);
  g_assert_cmpstr(((DnsRecord *)txt->pdata[0])->data, ==, "first part");
}

static void
test_failures(void)
{
  g_autofree char *why = NULL;
  g_assert_cmpint(dns_lookup("nosuch.test", ns_t_a, NULL, &why), ==, DNS_NOTFOUND);
  g_assert_nonnull(strstr(why, "name=nosuch.test type=A: Host not found"));
  g_assert_cmpint(dns_lookup("aonly.test", ns_t_mx, NULL, NULL), ==, DNS_NODATA);
  g_clear_pointer(&why, g_free);
  g_assert_cmpint(dns_lookup("nullmx.test", ns_t_mx, NULL, &why), ==, DNS_NULLMX);
  g_assert_cmpstr(why, ==, "Domain nullmx.test does not accept mail (nullMX)");

  /* several types: the first that answers wins; NXDOMAIN stops at once */
  static const int mx_a[] = { ns_t_mx, ns_t_a, ns_t_aaaa, 0 };
  g_autoptr(GPtrArray) recs = NULL;
  g_assert_cmpint(dns_lookup_types("aonly.test", mx_a, &recs, NULL), ==, DNS_OK);
  g_assert_cmpint(((DnsRecord *)recs->pdata[0])->type, ==, ns_t_a);
  g_assert_cmpint(dns_lookup_types("nosuch.test", mx_a, NULL, NULL), ==, DNS_NOTFOUND);
  g_assert_cmpint(dns_lookup_types("nullmx.test", mx_a, NULL, NULL), ==, DNS_NULLMX);
}

/* A server that does not answer at all is "try again", never "not found"
 * (a thread of its own: the override is applied per thread). */
static gpointer
dead_server_thread(gpointer data)
{
  g_autofree char *why = NULL;
  DnsStatus st = dns_lookup("example.test", ns_t_mx, NULL, &why);
  return GINT_TO_POINTER(st == DNS_RETRY && strstr(why, "try again") != NULL);
}

static void
test_dead_server(void)
{
  g_autofree char *saved = g_strdup(g_getenv("POSTERN_DNS_SERVER"));
  g_autofree char *dead = g_strdup_printf("127.0.0.1:%d", free_udp_port());
  g_setenv("POSTERN_DNS_SERVER", dead, TRUE);
  GThread *t = g_thread_new("dead-dns", dead_server_thread, NULL);
  g_assert_true(GPOINTER_TO_INT(g_thread_join(t)));
  g_setenv("POSTERN_DNS_SERVER", saved, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  start_dnsmasq();
  g_test_add_func("/dns/reverse-name", test_reverse_name);
  g_test_add_func("/dns/invalid-names", test_invalid_names);
  g_test_add_func("/dns/records", test_records);
  g_test_add_func("/dns/idna", test_idna);
  g_test_add_func("/dns/failures", test_failures);
  g_test_add_func("/dns/dead-server", test_dead_server);
  int rc = g_test_run();
  stop_dnsmasq();
  return rc;
}
