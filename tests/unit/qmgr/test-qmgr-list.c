/* test-qmgr-list.c - queue files as D-Bus dictionaries (qmgr-list.c):
 * the ListMessages filter, listing order, queue labels, filters, counts,
 * GetMessage's header fields, and invalid UTF-8. */
#include "qmgr-dbus-private.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *dir;
  int fds[QUEUE_N_DIRS];
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp("test-qmgr-list-XXXXXX", &error);
  g_assert_no_error(error);
  g_assert_true(queue_dirs_ensure(f->dir, (uid_t) -1, (gid_t) -1, &error));
  for (guint i = 0; i < QUEUE_N_DIRS; i++) {
    g_autofree char *p = g_build_filename(f->dir, queue_dir_name(i), NULL);
    f->fds[i] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(f->fds[i], >=, 0);
  }
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

  for (guint i = 0; i < QUEUE_N_DIRS; i++)
    close(f->fds[i]);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(f->dir);
}

static char *
write_message(Fixture *f, const char *sender, const char *const *rcpts, const char *content)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  g_autoptr(QueueWriter) w = queue_writer_new(f->dir, &error);

  g_assert_no_error(error);
  env->sender = g_strdup(sender);
  env->client_name = g_strdup("client.example.org");
  env->client_addr = g_strdup("192.0.2.10");
  env->helo = g_strdup("helo.example.org");
  env->protocol = g_strdup("ESMTP");
  for (; *rcpts; rcpts++)
    queue_envelope_add_recipient(env, *rcpts, NULL);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, content, strlen(content), &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  return g_strdup(queue_writer_id(w));
}

static void
move(Fixture *f, const char *id, QueueDir from, QueueDir to)
{
  g_assert_cmpint(renameat(f->fds[from], id, f->fds[to], id), ==, 0);
}

static GVariant *
parse_filter(const char *text, GError **error)
{
  g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL,
                                                             NULL, NULL));
  QmgrListFilter filter;

  g_assert_nonnull(v);
  if (!qmgr_list_filter_parse(v, &filter, error))
    return NULL;
  qmgr_list_filter_clear(&filter);
  return g_variant_new_boolean(TRUE);
}

static void
test_filter_parse(void)
{
  static const struct {
    const char *text;
    const char *error;   /* NULL: valid */
  } cases[] = {
    { "{}", NULL },
    { "{'queue': <'deferred'>, 'sender': <'X@Y'>, 'min-age': <uint64 5>, 'max-age': <byte 9>}", NULL },
    { "{'limit': <int32 3>, 'reason': <'timeout'>, 'recipient': <'@example.com'>}", NULL },
    { "{'queue': <'maildrop'>}", "Unknown queue \"maildrop\"" },
    { "{'queue': <42>}", "Filter key \"queue\" wants a string, not \"i\"" },
    { "{'min-age': <'1h'>}", "Filter key \"min-age\" wants an integer, not \"s\"" },
    { "{'max-age': <int64 -1>}", "Filter key \"max-age\" must not be negative" },
    { "{'colour': <'red'>}", "Unknown filter key \"colour\"" },
    { "{'after': <'0123456789ABCDEF01'>, 'limit': <uint32 100>}", NULL },
    { "{'after': <'../x'>}", "Filter key \"after\" wants a queue id" },
    { "{'after': <uint32 3>}", "Filter key \"after\" wants a string, not \"u\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) ok = parse_filter(cases[i].text, &error);

    if (cases[i].error == NULL) {
      g_assert_no_error(error);
      g_assert_nonnull(ok);
    } else {
      g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_SYNTAX);
      g_assert_true(g_str_has_prefix(error->message, cases[i].error));
    }
  }
}

/* ids of a listing, comma separated, with their queue labels */
static char *
summary(GVariant *list)
{
  g_autoptr(GString) out = g_string_new(NULL);
  GVariantIter iter;
  GVariant *e;

  g_variant_iter_init(&iter, list);
  while ((e = g_variant_iter_next_value(&iter)) != NULL) {
    const char *id, *queue;
    g_assert_true(g_variant_lookup(e, "id", "&s", &id));
    g_assert_true(g_variant_lookup(e, "queue", "&s", &queue));
    g_string_append_printf(out, "%s%s:%s", out->len ? "," : "", id, queue);
    g_variant_unref(e);
  }
  return g_string_free(g_steal_pointer(&out), FALSE);
}

static char *
list(Fixture *f, GHashTable *snapshot, const char *filter_text)
{
  g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_parse(G_VARIANT_TYPE_VARDICT, filter_text,
                                                             NULL, NULL, NULL));
  g_autoptr(GError) error = NULL;
  QmgrListFilter filter;
  g_autoptr(GVariant) result = NULL;

  g_assert_true(qmgr_list_filter_parse(v, &filter, &error));
  result = qmgr_list_messages(f->fds, snapshot, &filter, &error);
  qmgr_list_filter_clear(&filter);
  g_assert_no_error(error);
  return summary(result);
}

static void
test_listing(Fixture *f, gconstpointer data)
{
  const char *r1[] = { "alice@example.com", "bob@example.com", NULL };
  const char *r2[] = { "carol@example.net", NULL };
  const char *r3[] = { "dave@example.com", NULL };
  g_autofree char *a = write_message(f, "sender@example.org", r1, "Subject: a\n\nA\n");
  g_autofree char *b = write_message(f, "", r2, "Subject: b\n\nB\n");
  g_autofree char *c = write_message(f, "Other@Example.ORG", r3, "Subject: c\n\nC\n");
  g_autoptr(GHashTable) snapshot = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *all = NULL, *want = NULL;
  int fd;

  /* a is in memory (active), b deferred with a reason, c on hold */
  g_hash_table_insert(snapshot, g_strdup(a), GINT_TO_POINTER(2));
  fd = openat(f->fds[QUEUE_INCOMING], b, O_RDWR);
  g_assert_true(queue_file_record(fd, 0, RCPT_PENDING, "connection timed out", NULL));
  close(fd);
  move(f, b, QUEUE_INCOMING, QUEUE_DEFERRED);
  move(f, c, QUEUE_INCOMING, QUEUE_HOLD);
  /* a stray non-id and a corrupt file */
  g_assert_cmpint(mkdirat(f->fds[QUEUE_INCOMING], ".t123.4", 0700), ==, 0);
  fd = openat(f->fds[QUEUE_CORRUPT], "0000000000000000AA", O_CREAT | O_WRONLY, 0600);
  g_assert_cmpint(write(fd, "junk\n", 5), ==, 5);
  close(fd);

  all = list(f, snapshot, "{}");
  want = g_strdup_printf("%s:active,%s:deferred,%s:hold", a, b, c);
  g_assert_cmpstr(all, ==, want);       /* oldest first, corrupt/ not by default */

  struct { const char *filter; const char *ids; } cases[] = {
    { "{'queue': <'active'>}", a }, { "{'queue': <'deferred'>}", b },
    { "{'queue': <'hold'>}", c }, { "{'queue': <'incoming'>}", "" },
    { "{'sender': <'<>'>}", b }, { "{'sender': <'example.org'>}", NULL /* a,c */ },
    { "{'recipient': <'BOB@'>}", a }, { "{'reason': <'TIMED OUT'>}", b },
    { "{'min-age': <uint32 3600>}", "" }, { "{'limit': <uint32 1>}", a },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = list(f, snapshot, cases[i].filter);
    g_autoptr(GString) ids = g_string_new(NULL);
    g_auto(GStrv) parts = g_strsplit(got, ",", -1);

    for (char **p = parts; *p && **p; p++)
      g_string_append_printf(ids, "%s%.*s", ids->len ? "," : "", (int) (strchr(*p, ':') - *p), *p);
    if (cases[i].ids == NULL) {
      g_autofree char *ac = g_strdup_printf("%s,%s", a, c);
      g_assert_cmpstr(ids->str, ==, ac);
    } else {
      g_assert_cmpstr(ids->str, ==, cases[i].ids);
    }
  }
  {
    g_autofree char *got = list(f, snapshot, "{'queue': <'corrupt'>}");
    g_assert_cmpstr(got, ==, "0000000000000000AA:corrupt");
  }
  /* "after" is a cursor: with "limit", pages that cover the queue once */
  {
    g_autofree char *fa = g_strdup_printf("{'after': <'%s'>}", a);
    g_autofree char *fb = g_strdup_printf("{'after': <'%s'>, 'limit': <uint32 1>}", a);
    g_autofree char *fc = g_strdup_printf("{'after': <'%s'>}", c);
    g_autofree char *got_a = list(f, snapshot, fa);
    g_autofree char *got_b = list(f, snapshot, fb);
    g_autofree char *got_c = list(f, snapshot, fc);
    g_autofree char *want_a = g_strdup_printf("%s:deferred,%s:hold", b, c);
    g_autofree char *want_b = g_strdup_printf("%s:deferred", b);

    g_assert_cmpstr(got_a, ==, want_a);
    g_assert_cmpstr(got_b, ==, want_b);
    g_assert_cmpstr(got_c, ==, "");
  }
  /* the scan behind both methods: ids, widths, entries one at a time */
  {
    QmgrListFilter filter;
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_parse(G_VARIANT_TYPE_VARDICT,
                                                               "{'limit': <uint32 2>}", NULL, NULL,
                                                               NULL));
    g_autoptr(GError) error = NULL;
    QmgrListScan *scan;
    GVariant *e;
    guint n = 0;

    g_assert_true(qmgr_list_filter_parse(v, &filter, &error));
    scan = qmgr_list_scan(f->fds, &filter, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(qmgr_list_scan_size(scan), ==, 3);   /* corrupt/ is not looked at */
    g_assert_cmpuint(qmgr_list_scan_width(scan), ==, strlen(a));
    while ((e = qmgr_list_scan_next(scan, f->fds, snapshot, &filter)) != NULL) {
      g_autoptr(GVariant) entry = g_variant_ref_sink(e);
      /* each entry a well-formed a{sv} that survives a print and parse */
      g_autofree char *text = g_variant_print(entry, TRUE);
      g_autoptr(GVariant) again = g_variant_parse(NULL, text, NULL, NULL, NULL);
      g_assert_true(g_variant_equal(entry, again));
      g_assert_true(g_variant_is_normal_form(entry));
      n++;
    }
    g_assert_cmpuint(n, ==, 2);
    qmgr_list_scan_free(scan);
    qmgr_list_filter_clear(&filter);
  }
  {
    g_autoptr(GVariant) counts = g_variant_ref_sink(qmgr_list_counts(f->fds, snapshot));
    g_autofree char *text = g_variant_print(counts, FALSE);
    g_assert_cmpstr(text, ==, "{'incoming': 0, 'active': 1, 'deferred': 1, 'hold': 1, 'corrupt': 1}");
  }
}

static void
test_get_headers(Fixture *f, gconstpointer data)
{
  const char *r[] = { "alice@example.com", NULL };
  g_autofree char *id = write_message(f, "s\xffx@example.org", r,
                                      "Received: from a\n\tby b; Mon, 1 Jan 2024\n"
                                      "Subject:  folded\n  subject\nX-Empty:\n\nBody: not a header\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) m = qmgr_list_get(f->fds, NULL, id, 102400, &error);
  g_autoptr(GVariant) headers = NULL;
  g_autofree char *text = NULL;
  const char *s;

  g_assert_no_error(error);
  g_variant_ref_sink(m);
  g_assert_true(g_variant_lookup(m, "helo", "&s", &s));
  g_assert_cmpstr(s, ==, "helo.example.org");
  g_assert_true(g_variant_lookup(m, "sender", "&s", &s));
  g_assert_cmpstr(s, ==, "s\xef\xbf\xbdx@example.org");     /* U+FFFD for the 8-bit byte */
  headers = g_variant_lookup_value(m, "headers", G_VARIANT_TYPE("a(ss)"));
  text = g_variant_print(headers, FALSE);
  g_assert_cmpstr(text, ==, "[('Received', 'from a\\tby b; Mon, 1 Jan 2024'), "
                            "('Subject', 'folded  subject'), ('X-Empty', '')]");
  g_assert_null(qmgr_list_get(f->fds, NULL, "0123456789ABCDEF01", 1024, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qmgr/list/filter-parse", test_filter_parse);
  g_test_add("/qmgr/list/listing", Fixture, NULL, fixture_setup, test_listing, fixture_teardown);
  g_test_add("/qmgr/list/get-headers", Fixture, NULL, fixture_setup, test_get_headers,
             fixture_teardown);
  return g_test_run();
}
