/* test-pidfile.c - pid files name their live holder, never a stale pid. */
#include "pidfile.h"
#include "config.h"

#include <string.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *
make_dir(void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp("test-pidfile-XXXXXX", &error);

  g_assert_no_error(error);
  return dir;
}

static void
test_holder(void)
{
  g_autofree char *dir = make_dir();
  g_autofree char *path = g_build_filename(dir, "smtpd.pid", NULL);
  g_autoptr(GError) error = NULL;
  int ready[2], go[2];
  pid_t child;
  char c;

  g_assert_cmpint(pidfile_holder(path, &error), ==, 0);   /* no file: nobody */
  g_assert_no_error(error);
  g_assert_cmpint(pipe(ready), ==, 0);
  g_assert_cmpint(pipe(go), ==, 0);
  child = fork();
  g_assert_cmpint(child, >=, 0);
  if (child == 0) {
    GError *e = NULL;
    int fd = pidfile_create(path, &e);
    c = fd >= 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
      _exit(3);
    _exit(fd >= 0 ? 0 : 2);
  }
  g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
  g_assert_cmpint(c, ==, 'y');
  g_assert_cmpint(pidfile_holder(path, &error), ==, child);
  g_assert_no_error(error);
  {
    /* the file says the pid, for people */
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_autofree char *want = g_strdup_printf("%ld\n", (long) child);
    g_assert_cmpstr(text, ==, want);
  }
  /* a second daemon cannot take the same file */
  g_assert_cmpint(pidfile_create(path, &error), ==, -1);
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "held by another process"));
  g_clear_error(&error);
  /* the holder dies: the file is stale, whatever pid it names */
  g_assert_cmpint(write(go[1], "x", 1), ==, 1);
  int status;
  g_assert_cmpint(waitpid(child, &status, 0), ==, child);
  g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  g_assert_cmpint(pidfile_holder(path, &error), ==, 0);
  g_assert_no_error(error);
  unlink(path);
  rmdir(dir);
}

static void
test_dir_ensure(void)
{
  g_autofree char *dir = make_dir();
  g_autofree char *sub = g_build_filename(dir, "pid", NULL);
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_true(pidfile_dir_ensure(sub, (uid_t) -1, (gid_t) -1, &error));
  g_assert_no_error(error);
  g_assert_cmpint(stat(sub, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0755);
  g_assert_cmpint(chmod(sub, 0777), ==, 0);
  g_assert_true(pidfile_dir_ensure(sub, (uid_t) -1, (gid_t) -1, &error));  /* repaired */
  g_assert_cmpint(stat(sub, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0755);
  rmdir(sub);
  /* a file in the way is an error */
  g_assert_true(g_file_set_contents(sub, "x", 1, NULL));
  g_assert_false(pidfile_dir_ensure(sub, (uid_t) -1, (gid_t) -1, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED);
  unlink(sub);
  rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/pidfile/holder", test_holder);
  g_test_add_func("/pidfile/dir-ensure", test_dir_ensure);
  return g_test_run();
}
