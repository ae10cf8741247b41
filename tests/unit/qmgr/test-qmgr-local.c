/* test-qmgr-local.c - local delivery: alias expansion (recursion, loops,
 * self references, duplicates, depth), unknown users, unsupported and
 * remote destinations, extensions, |command, /file and :include:
 * destinations, the command exit-status mapping; into an mbox spool in a
 * temp dir as the current user (as root, commands and files run as
 * nobody, so the fixture directory is opened up for them). */
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "qmgr.h"

typedef struct {
  char *dir;
  char *mbox;
  char *user;
  char *out;           /* where file and command destinations write */
  QmgrSettings *settings;
  QueueEnvelope *env;
  int fd;
} Fixture;

static void
write_file(const char *path, const char *text)
{
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwuid(geteuid());
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) aliases = g_string_new(NULL);
  g_autofree char *spool = NULL, *main_cf = NULL, *alias_path = NULL, *queue = NULL, *path = NULL;
  g_autoptr(QueueWriter) w = NULL;
  g_autoptr(QueueEnvelope) env = queue_envelope_new();
  const char *content = "Subject: test\n\nhello\n";
  Config *config;

  g_assert_nonnull(pw);
  f->user = g_strdup(pw->pw_name);
  f->dir = g_dir_make_tmp("test-local-XXXXXX", NULL);
  spool = g_build_filename(f->dir, "spool", NULL);
  g_assert_cmpint(g_mkdir(spool, 0755), ==, 0);
  g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
  f->out = g_build_filename(f->dir, "files", NULL);
  g_assert_cmpint(g_mkdir(f->out, 0777), ==, 0);
  g_assert_cmpint(chmod(f->out, 01777), ==, 0);
  f->mbox = g_build_filename(spool, f->user, NULL);
  alias_path = g_build_filename(f->dir, "aliases", NULL);
  g_string_append_printf(aliases,
    "# test aliases\n"
    "postmaster: %s\n"
    "alias1: %s\n"
    "%s%s: %s, alias1\n"             /* self reference: the user's mailbox */
    "multi: %s, alias1,\n"
    "  %s@localhost, postmaster\n"   /* continuation line; duplicates */
    "loop1: loop2\n"
    "loop2: loop1\n"
    "remote: someone@example.com\n"
    "cmd: |/bin/cat\n"
    "cmdout: \"|cat > %s/files/cmd.out; env > %s/files/cmd.env; id -u >> %s/files/cmd.env\"\n"
    "cmdfail: \"|echo oops; echo more; exit 1\"\n"
    "cmdtemp: \"|exit 75\"\n"
    "file: %s/files/mbox\n"
    "incl: :include:%s/incl\n"
    "inclloop: :include:%s/incl2\n"
    "unknown: nosuchuser-xyz\n"
    "mixed: %s, nosuchuser-xyz\n"
    "ext+special: alias1\n"
    "list: %s\n"
    "owner-list: postmaster\n",
    f->user, f->user, data ? "" : "#", f->user, f->user, f->user, f->user,
    f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->user, f->user);
  for (guint i = 0; i < 150; i++)
    g_string_append_printf(aliases, "deep%u: deep%u\n", i, i + 1);
  write_file(alias_path, aliases->str);
  g_free(path);
  path = g_build_filename(f->dir, "incl", NULL);
  write_file(path, "# an include file\n\n  alias1 ,\n" "postmaster\n");
  g_clear_pointer(&path, g_free);
  path = g_build_filename(f->dir, "incl2", NULL);
  {
    g_autofree char *text = g_strdup_printf(":include:%s\n alias1\n", path);

    write_file(path, text);
  }
  g_clear_pointer(&path, g_free);
  main_cf = g_strdup_printf("myhostname = test.example\n"
                            "mydestination = localhost, $myhostname\n"
                            "myorigin = localhost\n"
                            "recipient_delimiter = +\n"
                            /* remote mail: no SMTP client in a unit test */
                            "default_transport = retry:4.4.1 remote delivery is off here\n"
                            "mail_spool_directory = %s\n"
                            "alias_maps = texthash:%s\n", spool, alias_path);
  path = g_build_filename(f->dir, "main.cf", NULL);
  write_file(path, main_cf);
  config = config_load(f->dir, NULL, &error);
  g_assert_no_error(error);
  f->settings = qmgr_settings_new(config);
  g_assert_null(f->settings->aliases_error);

  /* A real queue file for the content. */
  queue = g_build_filename(f->dir, "queue", NULL);
  g_assert_true(queue_dirs_ensure(queue, (uid_t) -1, (gid_t) -1, &error));
  w = queue_writer_new(queue, &error);
  g_assert_no_error(error);
  env->sender = g_strdup("alice@example.org");
  env->client_name = g_strdup("localhost");
  env->client_addr = g_strdup("127.0.0.1");
  env->protocol = g_strdup("ESMTP");
  env->arrival_us = g_get_real_time();
  queue_envelope_add_recipient(env, "x@localhost", NULL);
  g_assert_true(queue_writer_envelope(w, env, &error));
  g_assert_true(queue_writer_content(w, content, strlen(content), &error));
  g_assert_true(queue_writer_commit(w, &error));
  g_assert_no_error(error);
  g_free(path);
  path = g_build_filename(queue, "incoming", queue_writer_id(w), NULL);
  f->fd = open(path, O_RDWR);
  g_assert_cmpint(f->fd, >=, 0);
  f->env = queue_file_read(f->fd, &error);
  g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

  close(f->fd);
  queue_envelope_free(f->env);
  qmgr_settings_unref(f->settings);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(f->mbox);
  g_free(f->user);
  g_free(f->out);
  g_free(f->dir);
}

/* Messages in the mbox so far. */
static guint
mbox_count(Fixture *f)
{
  g_autofree char *text = NULL;
  guint n = 0;

  if (!g_file_get_contents(f->mbox, &text, NULL, NULL))
    return 0;
  for (const char *p = text; p; p = strstr(p + 1, "\nFrom "))
    n += g_str_has_prefix(p, "From ") || g_str_has_prefix(p, "\nFrom ");
  return n;
}

static char *
mbox_text(Fixture *f)
{
  char *text = NULL;

  g_assert_true(g_file_get_contents(f->mbox, &text, NULL, NULL));
  return text;
}

static DeliveryKind
deliver(Fixture *f, const char *address, const char *orig, char **reason)
{
  QueueRecipient rcpt = { .address = (char *) address, .orig_address = (char *) orig };
  QmgrDelivery d = {
    .queue_id = f->env->queue_id ? f->env->queue_id : "TEST", .settings = f->settings,
    .env = f->env, .fd = f->fd, .active_us = g_get_real_time(),
  };
  char *r = NULL;
  DeliveryKind kind = qmgr_local_deliver(&d, &rcpt, &r);

  if (reason)
    *reason = r;
  else
    g_free(r);
  return kind;
}

static void
test_user(Fixture *f, gconstpointer data)
{
  g_autofree char *addr = g_strdup_printf("%s@localhost", f->user);
  g_autofree char *text = NULL, *expect = NULL;

  g_assert_cmpint(deliver(f, addr, NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
  text = mbox_text(f);
  expect = g_strdup_printf("Return-Path: <alice@example.org>\nX-Original-To: %s\n"
                           "Delivered-To: %s\nSubject: test\n\nhello\n\n", addr, addr);
  g_assert_true(g_str_has_suffix(text, expect));
}

/* "user: user, alias1" with "alias1: user": one copy in the mailbox. */
static void
test_self(Fixture *f, gconstpointer data)
{
  g_autofree char *addr = g_strdup_printf("%s@localhost", f->user);
  g_autofree char *text = NULL, *expect = g_strdup_printf("Delivered-To: %s\n", addr);

  g_assert_cmpint(deliver(f, addr, NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
  text = mbox_text(f);
  g_assert_nonnull(strstr(text, expect));
  g_assert_cmpint(deliver(f, "alias1@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 2);
}

static void
test_alias(Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL, *delivered = g_strdup_printf("Delivered-To: %s@localhost\n", f->user);

  g_assert_cmpint(deliver(f, "Alias1@LOCALHOST", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
  text = mbox_text(f);
  g_assert_nonnull(strstr(text, "X-Original-To: Alias1@LOCALHOST\n"));
  g_assert_nonnull(strstr(text, delivered));

  /* The original recipient as the client wrote it wins for X-Original-To. */
  g_assert_cmpint(deliver(f, "postmaster@localhost", "postmaster", NULL), ==, DELIVERY_SENT);
  g_free(text);
  text = mbox_text(f);
  g_assert_nonnull(strstr(text, "X-Original-To: postmaster\n"));
}

static void
test_duplicates(Fixture *f, gconstpointer data)
{
  g_assert_cmpint(deliver(f, "multi@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
}

static void
test_extension(Fixture *f, gconstpointer data)
{
  g_autofree char *addr = g_strdup_printf("%s+box@localhost", f->user);
  g_autofree char *text = NULL, *expect = g_strdup_printf("Delivered-To: %s+box@localhost\n", f->user);

  g_assert_cmpint(deliver(f, addr, NULL, NULL), ==, DELIVERY_SENT);
  text = mbox_text(f);
  g_assert_nonnull(strstr(text, expect));
  /* "name+ext" is looked up before "name". */
  g_assert_cmpint(deliver(f, "ext+special@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 2);
}

static void
test_loop(Fixture *f, gconstpointer data)
{
  g_autofree char *reason = NULL;

  /* loop1 -> loop2 -> loop1 (dropped): no destination left. */
  g_assert_cmpint(deliver(f, "loop1@localhost", NULL, &reason), ==, DELIVERY_BOUNCE);
  g_assert_cmpstr(reason, ==, "mail forwarding loop for loop1@localhost");
}

static void
test_deep(Fixture *f, gconstpointer data)
{
  g_autofree char *reason = NULL;

  g_assert_cmpint(deliver(f, "deep0@localhost", NULL, &reason), ==, DELIVERY_BOUNCE);
  g_assert_true(g_str_has_prefix(reason, "mail forwarding loop for "));
}

static void
test_unknown(Fixture *f, gconstpointer data)
{
  g_autofree char *reason = NULL, *reason2 = NULL;

  g_assert_cmpint(deliver(f, "NoSuchUser-XYZ@localhost", NULL, &reason), ==, DELIVERY_BOUNCE);
  g_assert_cmpstr(reason, ==, "unknown user: \"nosuchuser-xyz\"");
  g_assert_cmpint(deliver(f, "unknown@localhost", NULL, &reason2), ==, DELIVERY_BOUNCE);
  g_assert_cmpuint(mbox_count(f), ==, 0);
}

static void
test_mixed(Fixture *f, gconstpointer data)
{
  g_assert_cmpint(deliver(f, "mixed@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
}

static void
test_deferred(Fixture *f, gconstpointer data)
{
  g_autofree char *r1 = NULL, *r2 = NULL, *r3 = NULL;

  g_assert_cmpint(deliver(f, "remote@localhost", NULL, &r1), ==, DELIVERY_DEFER);
  g_assert_cmpstr(r1, ==, "remote delivery is off here");
  g_assert_cmpint(deliver(f, "cmdtemp@localhost", NULL, &r2), ==, DELIVERY_DEFER);
  g_assert_cmpstr(r2, ==, "Command died with status 75: \"exit 75\"");
  g_assert_cmpuint(mbox_count(f), ==, 0);
  (void) r3;
}

static void
test_include_parse(void)
{
  g_autoptr(GPtrArray) items =
    qmgr_local_include_parse("# comment\n\n a, b@x\n  # more\n\"|cmd, arg\"\n/file,<c@y>\n");

  g_assert_cmpuint(items->len, ==, 5);
  g_assert_cmpstr(items->pdata[0], ==, "a");
  g_assert_cmpstr(items->pdata[1], ==, "b@x");
  g_assert_cmpstr(items->pdata[2], ==, "\"|cmd, arg\"");
  g_assert_cmpstr(items->pdata[3], ==, "/file");
  g_assert_cmpstr(items->pdata[4], ==, "c@y");
  g_ptr_array_unref(items);
  items = qmgr_local_include_parse("# nothing\n");
  g_assert_cmpuint(items->len, ==, 0);
}

static void
test_command_status(void)
{
  const char *dsn = NULL;
  g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL;

  g_assert_cmpint(qmgr_command_status(W_EXITCODE(0, 0), FALSE, "c", "", &dsn, &t1), ==,
                  DELIVERY_SENT);
  g_assert_cmpstr(dsn, ==, "2.0.0");
  g_assert_cmpstr(t1, ==, "delivered to command: c");
  g_assert_cmpint(qmgr_command_status(W_EXITCODE(75, 0), FALSE, "c", NULL, &dsn, &t2), ==,
                  DELIVERY_DEFER);
  g_assert_cmpstr(dsn, ==, "4.3.0");
  g_assert_cmpint(qmgr_command_status(W_EXITCODE(1, 0), FALSE, "c", "\nfirst\nsecond\n", &dsn,
                                      &t3), ==, DELIVERY_BOUNCE);
  g_assert_cmpstr(dsn, ==, "5.3.0");
  g_assert_cmpstr(t3, ==, "Command died with status 1: \"c\". Command output: first");
  g_assert_cmpint(qmgr_command_status(W_EXITCODE(0, SIGKILL), FALSE, "c", NULL, &dsn, &t4), ==,
                  DELIVERY_DEFER);
  g_assert_cmpint(qmgr_command_status(W_EXITCODE(0, SIGKILL), TRUE, "c", NULL, &dsn, &t5), ==,
                  DELIVERY_DEFER);
  g_assert_cmpstr(t5, ==, "Command time limit exceeded: \"c\"");
}

static char *
out_text(Fixture *f, const char *name)
{
  g_autofree char *path = g_build_filename(f->out, name, NULL);
  char *text = NULL;

  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  return text;
}

static void
test_command(Fixture *f, gconstpointer data)
{
  g_autofree char *r1 = NULL, *r2 = NULL, *out = NULL, *env = NULL;
  g_autofree char *uid = g_strdup_printf("\n%u\n", geteuid() == 0 ? getpwnam("nobody")->pw_uid
                                                                    : geteuid());

  g_assert_cmpint(deliver(f, "cmd@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpint(deliver(f, "CmdOut@localhost", "orig@x", NULL), ==, DELIVERY_SENT);
  out = out_text(f, "cmd.out");
  g_assert_cmpstr(out, ==, "Return-Path: <alice@example.org>\nX-Original-To: orig@x\n"
                           "Delivered-To: cmdout@localhost\nSubject: test\n\nhello\n");
  env = out_text(f, "cmd.env");
  g_assert_nonnull(strstr(env, "\nRECIPIENT=cmdout@localhost\n"));
  g_assert_nonnull(strstr(env, "\nSENDER=alice@example.org\n"));
  g_assert_nonnull(strstr(env, "\nORIGINAL_RECIPIENT=orig@x\n"));
  g_assert_nonnull(strstr(env, "\nLOCAL=cmdout\n"));
  g_assert_nonnull(strstr(env, "\nDOMAIN=localhost\n"));
  g_assert_nonnull(strstr(env, "PATH=/usr/bin:/bin\n"));
  g_assert_true(g_str_has_suffix(env, uid));
  g_assert_cmpint(deliver(f, "cmdfail@localhost", NULL, &r1), ==, DELIVERY_BOUNCE);
  g_assert_cmpstr(r1, ==, "Command died with status 1: \"echo oops; echo more; exit 1\". "
                          "Command output: oops");
}

static void
test_file(Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL;

  g_assert_cmpint(deliver(f, "file@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpint(deliver(f, "file@localhost", NULL, NULL), ==, DELIVERY_SENT);
  text = out_text(f, "mbox");
  g_assert_true(g_str_has_prefix(text, "From alice@example.org  "));
  g_assert_nonnull(strstr(text, "\nDelivered-To: file@localhost\nSubject: test\n\nhello\n\nFrom "));
}

static void
test_include(Fixture *f, gconstpointer data)
{
  g_autofree char *reason = NULL;

  /* alias1 and postmaster both reach the user: one copy. */
  g_assert_cmpint(deliver(f, "incl@localhost", NULL, NULL), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 1);
  /* incl2 includes itself (dropped the second time) and alias1. */
  g_assert_cmpint(deliver(f, "inclloop@localhost", NULL, &reason), ==, DELIVERY_SENT);
  g_assert_cmpuint(mbox_count(f), ==, 2);
}

/* owner-list exists: deliveries of list's expansion have it as sender. */
static void
test_owner(Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL;

  g_assert_cmpint(deliver(f, "list@localhost", NULL, NULL), ==, DELIVERY_SENT);
  text = mbox_text(f);
  g_assert_true(g_str_has_prefix(text, "From owner-list@localhost  "));
  g_assert_nonnull(strstr(text, "\nReturn-Path: <owner-list@localhost>\n"));
  g_free(text);
  g_assert_cmpint(deliver(f, "alias1@localhost", NULL, NULL), ==, DELIVERY_SENT);
  text = mbox_text(f);
  g_assert_nonnull(strstr(text, "\nReturn-Path: <alice@example.org>\n"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  log_init("test-qmgr-local", TRUE);
  privs_init();
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/qmgr/local/user", test_user);
  ADD("/qmgr/local/alias", test_alias);
  g_test_add("/qmgr/local/self", Fixture, "self", fixture_setup, test_self, fixture_teardown);
  ADD("/qmgr/local/duplicates", test_duplicates);
  ADD("/qmgr/local/extension", test_extension);
  ADD("/qmgr/local/loop", test_loop);
  ADD("/qmgr/local/deep", test_deep);
  ADD("/qmgr/local/unknown", test_unknown);
  ADD("/qmgr/local/mixed", test_mixed);
  ADD("/qmgr/local/deferred", test_deferred);
  ADD("/qmgr/local/command", test_command);
  ADD("/qmgr/local/file", test_file);
  ADD("/qmgr/local/include", test_include);
  ADD("/qmgr/local/owner", test_owner);
  g_test_add_func("/qmgr/local/include-parse", test_include_parse);
  g_test_add_func("/qmgr/local/command-status", test_command_status);
  return g_test_run();
}
