/* test-route.c - transport and next hop of a recipient: the next-hop
 * syntax, transport(5)'s search order and empty fields, the precedence of
 * transport_maps, the class's transport setting, relayhost and the
 * domain, and the errors a bad table entry gives. */
#include "route.h"

#include <glib/gstdio.h>
#include <string.h>

static TableList *
maps(const char *spec)
{
  const char *specs[] = { spec, NULL };
  g_autoptr(GError) error = NULL;
  TableList *list = table_list_open(specs, TABLE_FOLD_CASE, &error);

  g_assert_no_error(error);
  return list;
}

static RouteConfig
config(TableList *t, const char *relayhost)
{
  return (RouteConfig) {
    .transport_maps = t, .default_transport = "smtp", .relay_transport = "relay",
    .local_transport = "local:$myhostname", .virtual_transport = "virtual",
    .relayhost = relayhost, .recipient_delimiter = "+", .myhostname = "mx.here.example",
  };
}

static const RouteHop *
hop(const Route *r, guint i)
{
  return g_ptr_array_index(r->hops, i);
}

static void
test_nexthop_syntax(void)
{
  g_autoptr(GPtrArray) hops = NULL;
  g_autoptr(GError) error = NULL;
  static const char *const bad[] = {
    "", "[unclosed", "[x]junk", "host:0", "host:99999", "host:nosuchservice", "bad/host",
    "a b:x", "[2001:db8::1]:", "\"quoted\"",
  };

  g_assert_true(route_nexthop_parse("Mail.Example, [relay.example]:2525 [192.0.2.1]"
                                    " [ipv6:2001:db8::1]:587 [2001:db8::2] backup.example:submission",
                                    25, &hops, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(hops->len, ==, 6);
  const RouteHop *h = hops->pdata[0];
  g_assert_cmpstr(h->host, ==, "mail.example");
  g_assert_cmpuint(h->port, ==, 25);
  g_assert_true(h->mx);
  h = hops->pdata[1];
  g_assert_cmpstr(h->host, ==, "relay.example");
  g_assert_cmpuint(h->port, ==, 2525);
  g_assert_false(h->mx);
  h = hops->pdata[2];
  g_assert_cmpstr(h->host, ==, "192.0.2.1");
  g_assert_false(h->mx);
  h = hops->pdata[3];
  g_assert_cmpstr(h->host, ==, "2001:db8::1");
  g_assert_cmpuint(h->port, ==, 587);
  h = hops->pdata[4];
  g_assert_cmpstr(h->host, ==, "2001:db8::2");
  h = hops->pdata[5];
  g_assert_cmpstr(h->host, ==, "backup.example");
  g_assert_cmpuint(h->port, ==, 587);
  g_assert_true(h->mx);

  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GPtrArray) none = NULL;
    g_autoptr(GError) e = NULL;

    g_test_message("%s", bad[i]);
    if (strcmp(bad[i], "a b:x") == 0)      /* "a" parses, "b:x" does not */
      g_assert_false(route_nexthop_parse(bad[i], 25, &none, &e));
    else
      g_assert_false(route_nexthop_parse(bad[i], 25, &none, &e));
    g_assert_error(e, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    g_assert_null(none);
  }
}

static void
test_defaults(void)
{
  RouteConfig rc = config(NULL, "");
  g_autoptr(GError) error = NULL;
  Route r;

  /* remote: the domain's MX */
  g_assert_true(route_resolve(&rc, "bob@Remote.Example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_cmpint(r.kind, ==, ROUTE_SMTP);
  g_assert_cmpstr(r.transport, ==, "smtp");
  g_assert_cmpstr(r.nexthop, ==, "remote.example");
  g_assert_cmpstr(hop(&r, 0)->host, ==, "remote.example");
  g_assert_true(hop(&r, 0)->mx);
  route_clear(&r);
  /* relay_domains: relay_transport */
  g_assert_true(route_resolve(&rc, "bob@relayed.example", DOMAIN_CLASS_RELAY, &r, &error));
  g_assert_cmpint(r.kind, ==, ROUTE_SMTP);
  g_assert_cmpstr(r.transport, ==, "relay");
  route_clear(&r);
  /* local and virtual */
  g_assert_true(route_resolve(&rc, "alice@here.example", DOMAIN_CLASS_LOCAL, &r, &error));
  g_assert_cmpint(r.kind, ==, ROUTE_LOCAL);
  g_assert_cmpstr(r.nexthop, ==, "$myhostname");
  route_clear(&r);
  g_assert_true(route_resolve(&rc, "v@virt.example", DOMAIN_CLASS_VIRTUAL, &r, &error));
  g_assert_cmpint(r.kind, ==, ROUTE_VIRTUAL);
  g_assert_cmpstr(r.nexthop, ==, "virt.example");
  route_clear(&r);

  /* relayhost: every remote and relay recipient, never local ones */
  rc = config(NULL, "[smarthost.example]:587");
  g_assert_true(route_resolve(&rc, "bob@remote.example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_cmpstr(hop(&r, 0)->host, ==, "smarthost.example");
  g_assert_cmpuint(hop(&r, 0)->port, ==, 587);
  g_assert_false(hop(&r, 0)->mx);
  route_clear(&r);
  g_assert_true(route_resolve(&rc, "bob@relayed.example", DOMAIN_CLASS_RELAY, &r, &error));
  g_assert_cmpstr(hop(&r, 0)->host, ==, "smarthost.example");
  route_clear(&r);
  g_assert_true(route_resolve(&rc, "alice@here.example", DOMAIN_CLASS_LOCAL, &r, &error));
  g_assert_cmpint(r.kind, ==, ROUTE_LOCAL);
  route_clear(&r);

  /* a next hop in the transport setting beats relayhost */
  rc.default_transport = "smtp:[outbound.example]";
  g_assert_true(route_resolve(&rc, "bob@remote.example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_cmpstr(hop(&r, 0)->host, ==, "outbound.example");
  route_clear(&r);
  /* an unknown transport is a configuration error */
  rc.default_transport = "uucp";
  g_assert_false(route_resolve(&rc, "bob@remote.example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
}

static void
test_transport_maps(void)
{
  g_autofree char *dir = g_dir_make_tmp("test-route-XXXXXX", NULL);
  g_autofree char *file = g_build_filename(dir, "transport", NULL);
  g_autofree char *spec = g_strconcat("texthash:", file, NULL);
  g_assert_true(g_file_set_contents(file,
      "special+tag@remote.example smtp:[tagged.example]\n"
      "alice@remote.example smtp:[alice.example]:2525\n"
      "remote.example relay:[remote-relay.example]\n"
      ".sub.example smtp:[subs.example]\n"
      "own.example smtp:\n"
      "hop.example :[hop-only.example]\n"
      "keep.example :\n"
      "local.example local:\n"
      "dropped.example discard:silently\n"
      "closed.example error:5.7.1 we do not deliver there\n"
      "later.example retry:4.3.2 come back later\n"
      "broken.example smtp:[bad\n"
      "odd.example carrier-pigeon:coop\n", -1, NULL));
  g_autoptr(TableList) t = maps(spec);
  RouteConfig rc = config(t, "[smarthost.example]");
  g_autoptr(GError) error = NULL;
  Route r;
  struct {
    const char *address;
    RouteKind kind;
    const char *transport, *nexthop;
  } cases[] = {
    /* user+ext@domain, then user@domain, then domain */
    { "special+tag@remote.example", ROUTE_SMTP, "smtp", "[tagged.example]" },
    { "alice+x@remote.example", ROUTE_SMTP, "smtp", "[alice.example]:2525" },
    { "ALICE@Remote.Example", ROUTE_SMTP, "smtp", "[alice.example]:2525" },
    { "bob@remote.example", ROUTE_SMTP, "relay", "[remote-relay.example]" },
    /* ".parent" for subdomains, not for the parent itself */
    { "x@a.b.sub.example", ROUTE_SMTP, "smtp", "[subs.example]" },
    { "x@sub.example", ROUTE_SMTP, "smtp", "[smarthost.example]" },
    /* "smtp:": its own MX, not relayhost; ":[h]": the default transport to h */
    { "x@own.example", ROUTE_SMTP, "smtp", "own.example" },
    { "x@hop.example", ROUTE_SMTP, "smtp", "[hop-only.example]" },
    /* ":": as if not listed */
    { "x@keep.example", ROUTE_SMTP, "smtp", "[smarthost.example]" },
    { "x@local.example", ROUTE_LOCAL, "local", "local.example" },
    { "x@dropped.example", ROUTE_DISCARD, "discard", "silently" },
    { "x@closed.example", ROUTE_ERROR, "error", "5.7.1 we do not deliver there" },
    { "x@later.example", ROUTE_RETRY, "retry", "4.3.2 come back later" },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_test_message("%s", cases[i].address);
    g_assert_true(route_resolve(&rc, cases[i].address, DOMAIN_CLASS_DEFAULT, &r, &error));
    g_assert_no_error(error);
    g_assert_cmpint(r.kind, ==, cases[i].kind);
    g_assert_cmpstr(r.transport, ==, cases[i].transport);
    g_assert_cmpstr(r.nexthop, ==, cases[i].nexthop);
    g_assert_true((r.hops != NULL) == (r.kind == ROUTE_SMTP));
    route_clear(&r);
  }
  /* "local.example = local:" on a local domain: $myhostname stays the hop */
  g_assert_true(route_resolve(&rc, "x@local.example", DOMAIN_CLASS_LOCAL, &r, &error));
  g_assert_cmpstr(r.nexthop, ==, "$myhostname");
  route_clear(&r);

  g_assert_false(route_resolve(&rc, "x@broken.example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_nonnull(strstr(error->message, "x@broken.example"));
  g_clear_error(&error);
  g_assert_false(route_resolve(&rc, "x@odd.example", DOMAIN_CLASS_DEFAULT, &r, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_nonnull(strstr(error->message, "carrier-pigeon"));
  g_clear_error(&error);

  /* "*" matches what nothing else did */
  {
    g_autoptr(TableList) w = maps("inline:{ * = smtp:[catchall.example] }");
    RouteConfig wc = config(w, "");

    g_assert_true(route_resolve(&wc, "x@anywhere.example", DOMAIN_CLASS_DEFAULT, &r, &error));
    g_assert_cmpstr(r.nexthop, ==, "[catchall.example]");
    route_clear(&r);
  }
  g_unlink(file);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qmgr/route/nexthop-syntax", test_nexthop_syntax);
  g_test_add_func("/qmgr/route/defaults", test_defaults);
  g_test_add_func("/qmgr/route/transport-maps", test_transport_maps);
  return g_test_run();
}
