/* test-smtpd-access.c - access(5) lookup key order, and the DATA and
 * end-of-data stages with the REDIRECT, BCC, HOLD and PREPEND actions
 * evaluated on a snapshot (smtpd-access.c). */
#include <glib/gstdio.h>
#include <string.h>

#include "smtpd.h"

static void
assert_keys(GPtrArray *keys, const char *const *want)
{
  g_autofree char *got = NULL;
  g_ptr_array_add(keys, NULL);
  got = g_strjoinv(" ", (char **)keys->pdata);
  g_autofree char *expected = g_strjoinv(" ", (char **)want);
  g_assert_cmpstr(got, ==, expected);
  g_ptr_array_unref(keys);
}

static void
test_client(void)
{
  assert_keys(smtpd_access_keys_client("Mail.Sub.Example.COM", "192.168.1.10", TRUE),
              (const char *const[]){ "mail.sub.example.com", "sub.example.com", "example.com",
                                     "com", "192.168.1.10", "192.168.1", "192.168", "192",
                                     NULL });
  assert_keys(smtpd_access_keys_client("a.example.com", "10.0.0.1", FALSE),
              (const char *const[]){ "a.example.com", ".example.com", ".com", "10.0.0.1",
                                     "10.0.0", "10.0", "10", NULL });
  assert_keys(smtpd_access_keys_client("unknown", "127.0.0.1", TRUE),
              (const char *const[]){ "unknown", "127.0.0.1", "127.0.0", "127.0", "127", NULL });
  assert_keys(smtpd_access_keys_client("unknown", "2001:DB8::1", TRUE),
              (const char *const[]){ "unknown", "2001:db8::1", "2001:db8:", "2001:db8", "2001",
                                     NULL });
}

static void
test_helo(void)
{
  assert_keys(smtpd_access_keys_domain("Host.Example.org", TRUE),
              (const char *const[]){ "host.example.org", "example.org", "org", NULL });
  /* numerical names get no parent domain magic */
  assert_keys(smtpd_access_keys_domain("192.0.2.1", TRUE),
              (const char *const[]){ "192.0.2.1", NULL });
}

static void
test_mail(void)
{
  assert_keys(smtpd_access_keys_mail("Obama@WhiteHouse.com", "+", TRUE),
              (const char *const[]){ "obama@whitehouse.com", "whitehouse.com", "com", "obama@",
                                     NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@mail.example.com", "+", TRUE),
              (const char *const[]){ "user+ext@mail.example.com", "user@mail.example.com",
                                     "mail.example.com", "example.com", "com", "user+ext@",
                                     "user@", NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@example.com", "+", FALSE),
              (const char *const[]){ "user+ext@example.com", "user@example.com", "example.com",
                                     ".com", "user+ext@", "user@", NULL });
  assert_keys(smtpd_access_keys_mail("user+ext@example.com", "", TRUE),
              (const char *const[]){ "user+ext@example.com", "example.com", "com", "user+ext@",
                                     NULL });
  assert_keys(smtpd_access_keys_mail("openstack", "+", TRUE),
              (const char *const[]){ "openstack@", NULL });
}

/* Settings from a private main.cf (plus lines) with the access table
 * text in texthash:DIR/access. */
static SmtpdSettings *
load_settings(char **dir, const char *table, const char *lines)
{
  g_autoptr(GError) error = NULL;
  *dir = g_dir_make_tmp("smtpd-access-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *access = g_build_filename(*dir, "access", NULL);
  g_autofree char *maincf = g_build_filename(*dir, "main.cf", NULL);
  g_autofree char *queue = g_build_filename(*dir, "queue", NULL);
  g_assert_true(g_file_set_contents(access, table, -1, NULL));
  g_autofree char *cf = g_strdup_printf("myhostname = mx.example.com\n"
                                        "mydestination = $myhostname, example.com\n"
                                        "queue_directory = %s\n"
                                        "access = texthash:%s\n%s",
                                        queue, access, lines);
  g_assert_true(g_file_set_contents(maincf, cf, -1, NULL));
  SmtpdSettings *st = smtpd_settings_load(*dir, NULL, &error);
  g_assert_no_error(error);
  return st;
}

static void
remove_settings_dir(char *dir)
{
  g_autofree char *access = g_build_filename(dir, "access", NULL);
  g_autofree char *maincf = g_build_filename(dir, "main.cf", NULL);
  g_unlink(access);
  g_unlink(maincf);
  g_rmdir(dir);
  g_free(dir);
}

/* A snapshot as smtpd takes it in a transaction from sender to rcpt. */
static void
ctx_init(SmtpdAccessCtx *ctx, const SmtpdSettings *st, const char *sender, const char *rcpt)
{
  memset(ctx, 0, sizeof *ctx);
  ctx->settings = st;
  ctx->client_name = g_strdup("unknown");
  ctx->client_addr = g_strdup("192.0.2.10");
  ctx->namaddr = g_strdup("unknown[192.0.2.10]");
  ctx->helo = g_strdup("client.example.org");
  ctx->sender = g_strdup(sender);
  ctx->sender_orig = g_strdup(sender);
  ctx->rcpt = g_strdup(rcpt);
  ctx->rcpt_orig = g_strdup(rcpt);
}

/* "action\ttext" of the events, joined with "|". */
static char *
ctx_events(const SmtpdAccessCtx *ctx)
{
  GString *out = g_string_new(NULL);
  for (guint i = 0; ctx->events != NULL && i < ctx->events->len; i++)
    g_string_append_printf(out, "%s%s", i > 0 ? "|" : "", (char *)ctx->events->pdata[i]);
  return g_string_free(out, FALSE);
}

/* Postfix's reply names and classes of the two stages. */
static void
test_stage_replies(void)
{
  char *dir;
  SmtpdSettings *st = load_settings(&dir, "",
                                    "smtpd_data_restrictions = reject_unauth_pipelining, reject\n"
                                    "smtpd_end_of_data_restrictions = defer\n");
  SmtpdAccessCtx ctx;
  ctx_init(&ctx, st, "s@example.org", NULL);
  ctx.ill_pipelining = TRUE;
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_REJECT);
  g_assert_cmpstr(ctx.reply, ==, "503 5.5.0 <DATA>: Data command rejected: Improper use of "
                                 "SMTP command pipelining");
  smtpd_access_ctx_clear(&ctx);
  ctx_init(&ctx, st, "s@example.org", NULL);
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_REJECT);
  g_assert_cmpstr(ctx.reply, ==, "554 5.7.1 <DATA>: Data command rejected: Access denied");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_END_OF_DATA), ==,
                  SMTPD_ACCESS_REJECT);
  g_assert_cmpstr(ctx.reply, ==, "450 4.3.2 <END-OF-DATA>: End-of-data rejected: Try again later");
  smtpd_access_ctx_clear(&ctx);
  smtpd_settings_unref(st);
  remove_settings_dir(dir);
}

/* REDIRECT (the last one wins), BCC (each one kept), HOLD once, and the
 * targets and stages they are refused in, with Postfix's log texts. */
static void
test_redirect_bcc_hold(void)
{
  char *dir;
  SmtpdSettings *st = load_settings(
      &dir,
      "r1@example.org REDIRECT first@example.net\n"
      "r2@example.org REDIRECT second@example.net\n"
      "b@example.org BCC copy@example.net\n"
      "bad@example.org REDIRECT nodomain\n"
      "bad2@example.org BCC\n"
      "h@example.org HOLD\n"
      "p@example.org PREPEND X-Tag: yes\n",
      "smtpd_data_restrictions = check_recipient_access $access\n"
      "smtpd_end_of_data_restrictions = check_recipient_access $access\n"
      "smtpd_helo_restrictions = check_recipient_access $access\n"
      "smtpd_client_restrictions = check_sender_access $access\n");
  SmtpdAccessCtx ctx;
  g_autofree char *events = NULL;

  /* at DATA the only recipient is looked up (check_recipient_access) */
  ctx_init(&ctx, st, "s@example.org", "r1@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_DUNNO);
  g_assert_cmpstr(ctx.redirect, ==, "first@example.net");
  g_free(ctx.rcpt), ctx.rcpt = g_strdup("r2@example.org");
  g_free(ctx.rcpt_orig), ctx.rcpt_orig = g_strdup("r2@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_END_OF_DATA), ==,
                  SMTPD_ACCESS_DUNNO);
  g_assert_cmpstr(ctx.redirect, ==, "second@example.net");
  events = ctx_events(&ctx);
  g_assert_cmpstr(events, ==,
                  "redirect\t<r1@example.org>: Recipient address triggers REDIRECT "
                  "first@example.net|"
                  "redirect\t<r2@example.org>: Recipient address triggers REDIRECT "
                  "second@example.net");
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  ctx_init(&ctx, st, "s@example.org", "b@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_END_OF_DATA), ==,
                  SMTPD_ACCESS_DUNNO);
  g_assert_nonnull(ctx.bcc);
  g_assert_cmpuint(ctx.bcc->len, ==, 1);
  g_assert_cmpstr(ctx.bcc->pdata[0], ==, "copy@example.net");
  events = ctx_events(&ctx);
  g_assert_cmpstr(events, ==, "bcc\t<b@example.org>: Recipient address triggers BCC "
                              "copy@example.net");
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  /* a target without "@" is refused with a warning, and nothing changes */
  ctx_init(&ctx, st, "s@example.org", "bad@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_DUNNO);
  g_free(ctx.rcpt), ctx.rcpt = g_strdup("bad2@example.org");
  g_free(ctx.rcpt_orig), ctx.rcpt_orig = g_strdup("bad2@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_DUNNO);
  g_assert_null(ctx.redirect);
  g_assert_null(ctx.bcc);
  events = ctx_events(&ctx);
  g_autofree char *want = g_strdup_printf(
      "warning\taccess table texthash:%s/access entry \"bad@example.org\" requires "
      "user@domain target|warning\taccess table texthash:%s/access entry "
      "\"bad2@example.org\" requires user@domain target", dir, dir);
  g_assert_cmpstr(events, ==, want);
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  /* HOLD is logged once: the snapshot says when the message is held */
  ctx_init(&ctx, st, "s@example.org", "h@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_DUNNO);
  g_assert_true(ctx.hold);
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_END_OF_DATA), ==,
                  SMTPD_ACCESS_DUNNO);
  events = ctx_events(&ctx);
  g_assert_cmpstr(events, ==, "hold\t<h@example.org>: Recipient address triggers HOLD action");
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  /* PREPEND works at DATA, not after the content */
  ctx_init(&ctx, st, "s@example.org", "p@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_DATA), ==, SMTPD_ACCESS_DUNNO);
  g_assert_cmpuint(ctx.prepend->len, ==, 1);
  g_assert_cmpstr(ctx.prepend->pdata[0], ==, "X-Tag: yes");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_END_OF_DATA), ==,
                  SMTPD_ACCESS_DUNNO);
  g_assert_cmpuint(ctx.prepend->len, ==, 1);
  events = ctx_events(&ctx);
  g_free(want);
  want = g_strdup_printf("warning\taccess table texthash:%s/access: action PREPEND must be "
                         "used before smtpd_end_of_data_restrictions", dir);
  g_assert_cmpstr(events, ==, want);
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  /* outside a transaction (smtpd_delay_reject = no: CONNECT, HELO) the
   * actions that change a message are skipped with Postfix's warning */
  ctx_init(&ctx, st, NULL, "r1@example.org");
  g_assert_cmpint(smtpd_access_eval_stage(&ctx, SMTPD_STAGE_HELO), ==, SMTPD_ACCESS_DUNNO);
  g_assert_null(ctx.redirect);
  events = ctx_events(&ctx);
  g_free(want);
  want = g_strdup_printf("warning\taccess table texthash:%s/access: with "
                         "smtpd_delay_reject=no, action REDIRECT is always skipped in Client "
                         "host or Helo command restrictions", dir);
  g_assert_cmpstr(events, ==, want);
  g_clear_pointer(&events, g_free);
  smtpd_access_ctx_clear(&ctx);

  smtpd_settings_unref(st);
  remove_settings_dir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtpd/access/keys-client", test_client);
  g_test_add_func("/smtpd/access/keys-helo", test_helo);
  g_test_add_func("/smtpd/access/keys-mail", test_mail);
  g_test_add_func("/smtpd/access/stage-replies", test_stage_replies);
  g_test_add_func("/smtpd/access/redirect-bcc-hold", test_redirect_bcc_hold);
  return g_test_run();
}
