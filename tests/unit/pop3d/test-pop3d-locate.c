/* test-pop3d-locate.c - the mailbox of a login name: virtual addresses
 * through virtual_mailbox_maps and the uid/gid maps, system users (the
 * passwd entry of this process's own user and of root) with home_mailbox
 * or the mail spool, names that must not reach a table, domains that
 * have no mailboxes here. */
#include "pop3d.h"

#include <glib/gstdio.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *dir;
  Pop3dSettings st;
} Fixture;

static void
load(Fixture *f, const char *extra)
{
  g_autofree char *cf = g_build_filename(f->dir, "main.cf", NULL);
  g_autofree char *text = g_strdup_printf(
      "mydestination = localhost, local.example\n"
      "virtual_mailbox_domains = v.example\n"
      "virtual_mailbox_base = /srv/vmail\n"
      "virtual_mailbox_maps = inline:{ alice@v.example = v.example/alice/, "
      "bob@v.example = v.example/bob, evil@v.example = ../etc/, @v.example = catchall/ }\n"
      "virtual_uid_maps = inline:{ alice@v.example = 5000, bob@v.example = 5001, "
      "evil@v.example = 5000 }\n"
      "virtual_gid_maps = static:5000\n"
      "mail_spool_directory = %s\n%s", f->dir, extra);
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_set_contents(cf, text, -1, NULL));
  g_clear_pointer(&f->st.config, config_free);
  f->st.config = config_load(f->dir, NULL, &error);
  g_assert_no_error(error);
}

static void
setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-pop3d-locate-XXXXXX", NULL);
  load(f, "");
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cf = g_build_filename(f->dir, "main.cf", NULL);

  g_clear_pointer(&f->st.config, config_free);
  g_unlink(cf);
  g_rmdir(f->dir);
  g_free(f->dir);
}

static void
test_virtual(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Pop3dMailbox box;

  g_assert_true(pop3d_locate(&f->st, "Alice@V.Example", &box, &error));
  g_assert_no_error(error);
  g_assert_cmpint(box.kind, ==, POP3D_BOX_MAILDIR);
  g_assert_cmpstr(box.path, ==, "/srv/vmail/v.example/alice/");
  g_assert_cmpuint(box.uid, ==, 5000);
  g_assert_cmpuint(box.gid, ==, 5000);
  g_assert_cmpint((int) box.extra_gid, ==, -1);
  g_assert_cmpstr(box.user, ==, "alice@v.example");

  g_assert_true(pop3d_locate(&f->st, "bob@v.example", &box, &error));
  g_assert_cmpint(box.kind, ==, POP3D_BOX_MBOX);
  g_assert_cmpuint(box.uid, ==, 5001);

  /* The catch-all is nobody's login; ".." never leaves the base. */
  g_assert_false(pop3d_locate(&f->st, "carol@v.example", &box, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_assert_false(pop3d_locate(&f->st, "evil@v.example", &box, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_clear_error(&error);

  /* A uid below virtual_minimum_uid is refused. */
  load(f, "virtual_minimum_uid = 5001\n");
  g_assert_false(pop3d_locate(&f->st, "alice@v.example", &box, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
}

static void
test_system(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  struct passwd *pw = getpwuid(getuid());
  g_autofree char *name = g_strdup(pw->pw_name), *home = g_strdup(pw->pw_dir);
  g_autofree char *with_domain = g_strconcat(name, "@LOCAL.example", NULL);
  g_autofree char *maildir = g_build_filename(home, "Maildir/", NULL);
  g_autofree char *mbox = g_build_filename(f->dir, name, NULL);
  Pop3dMailbox box;

  if (pw->pw_uid == 0) {
    /* root's mail is never served */
    g_assert_false(pop3d_locate(&f->st, "root", &box, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
    g_clear_error(&error);
    pw = getpwnam("nobody");
    if (pw == NULL)
      return;
    g_free(name);
    g_free(home);
    name = g_strdup(pw->pw_name);
    home = g_strdup(pw->pw_dir);
    g_free(with_domain);
    with_domain = g_strconcat(name, "@LOCAL.example", NULL);
    g_free(maildir);
    maildir = g_build_filename(home, "Maildir/", NULL);
    g_free(mbox);
    mbox = g_build_filename(f->dir, name, NULL);
  }
  /* The spool: an mbox named after the user. */
  g_assert_true(pop3d_locate(&f->st, with_domain, &box, &error));
  g_assert_no_error(error);
  g_assert_cmpint(box.kind, ==, POP3D_BOX_MBOX);
  g_assert_cmpstr(box.path, ==, mbox);
  g_assert_cmpuint(box.uid, ==, pw->pw_uid);
  g_assert_cmpuint(box.gid, ==, pw->pw_gid);
  /* home_mailbox = Maildir/ */
  load(f, "home_mailbox = Maildir/\n");
  g_assert_true(pop3d_locate(&f->st, name, &box, &error));
  g_assert_cmpint(box.kind, ==, POP3D_BOX_MAILDIR);
  g_assert_cmpstr(box.path, ==, maildir);
}

static void
test_refused(Fixture *f, gconstpointer data)
{
  static const char *const names[] = {
    "", "../etc", ".hidden", "a/b@v.example", "tab\there", "nobody-such-user-here",
    "alice@elsewhere.example", "@v.example",
  };
  Pop3dMailbox box;

  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(GError) error = NULL;

    g_test_message("%s", names[i]);
    g_assert_false(pop3d_locate(&f->st, names[i], &box, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, setup, fn, teardown)
  ADD("/pop3d/locate/virtual", test_virtual);
  ADD("/pop3d/locate/system", test_system);
  ADD("/pop3d/locate/refused", test_refused);
  return g_test_run();
}
