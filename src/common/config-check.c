/* config-check.c - config_check(): the checks on accounts and directories,
 * and the driver that runs every check.
 *
 * Wording follows Postfix: mail_params.c's check_mail_owner(),
 * check_default_privs() and check_overlap() for the accounts (fatal
 * there, so "fatal:" here), postfix-script's check-warn for directories
 * ("not owned by root: PATH", "group or other writable: PATH", "damaged
 * message: PATH").  The queue layout checked is the one
 * queue_dirs_ensure() makes: queue_directory root-owned 0755, incoming/
 * and recycle/ owned by mail_owner (0730, group mail_owner's), the other
 * subdirectories root-owned 0700.  A missing queue directory is no
 * problem: the daemons create it when they start.  Tables, aliases:
 * config-check-tables.c; TLS files: config-check-tls.c.
 */
#include "config-check-private.h"
#include "queue-file.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define CHECK_MAX_DEPTH 8     /* how deep the configuration directory is walked */

void
config_check_add(ConfigCheck *check, const char *setting, const char *severity,
                 const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (!setting) {
    g_ptr_array_add(check->problems, g_strdup_printf("%s: %s", severity, text));
    return;
  }
  const char *file;
  int line;
  g_autofree char *loc = NULL;
  if (config_source(check->config, setting, &file, &line))
    loc = line > 0 ? g_strdup_printf("%s:%d: ", file, line) : g_strdup_printf("%s: ", file);
  g_ptr_array_add(check->problems, g_strdup_printf("%s%s: parameter %s: %s", loc ? loc : "",
                                                   severity, setting, text));
}

gboolean
config_check_owner_can_read(const ConfigCheck *check, const struct stat *st)
{
  if (!check->owner_ok)
    return FALSE;
  if (st->st_uid == check->owner_uid)
    return (st->st_mode & S_IRUSR) != 0;
  for (guint i = 0; i < check->owner_groups->len; i++)
    if (g_array_index(check->owner_groups, gid_t, i) == st->st_gid)
      return (st->st_mode & S_IRGRP) != 0;
  return (st->st_mode & S_IROTH) != 0;
}

/* ---- accounts ---- */

/* mail_owner must exist and be unprivileged (check_mail_owner). */
static void
check_mail_owner(ConfigCheck *check)
{
  const char *owner = config_str(check->config, "mail_owner");
  struct passwd *pw = getpwnam(owner);
  if (!pw) {
    config_check_add(check, "mail_owner", "fatal", "unknown user name value: %s", owner);
    return;
  }
  check->owner_ok = TRUE;
  check->owner = g_strdup(owner);
  check->owner_uid = pw->pw_uid;
  check->owner_gid = pw->pw_gid;
  int n = 64;
  g_array_set_size(check->owner_groups, (guint) n);
  if (getgrouplist(owner, pw->pw_gid, (gid_t *) (void *) check->owner_groups->data, &n) < 0) {
    g_array_set_size(check->owner_groups, (guint) n);
    (void) getgrouplist(owner, pw->pw_gid, (gid_t *) (void *) check->owner_groups->data, &n);
  }
  g_array_set_size(check->owner_groups, (guint) MAX(n, 0));
  if (check->owner_uid == 0)
    config_check_add(check, "mail_owner", "fatal", "user %s has privileged user ID", owner);
  else if (check->owner_gid == 0)
    config_check_add(check, "mail_owner", "fatal", "user %s has privileged group ID", owner);
  struct passwd *same = getpwuid(check->owner_uid);
  if (same && strcmp(same->pw_name, owner) != 0)
    config_check_add(check, "mail_owner", "fatal", "user %s has same user ID as %s", owner,
                     same->pw_name);
}

/* default_privs must exist, be unprivileged and differ from mail_owner
 * (check_default_privs, check_overlap). */
static void
check_default_privs(ConfigCheck *check)
{
  const char *privs = config_str(check->config, "default_privs");
  struct passwd *pw = getpwnam(privs);
  if (!pw) {
    config_check_add(check, "default_privs", "fatal", "unknown user name value: %s", privs);
    return;
  }
  if (pw->pw_uid == 0)
    config_check_add(check, "default_privs", "fatal", "user %s has privileged user ID", privs);
  else if (pw->pw_gid == 0)
    config_check_add(check, "default_privs", "fatal", "user %s has privileged group ID", privs);
  if (!check->owner_ok)
    return;
  if (strcmp(privs, check->owner) == 0)
    config_check_add(check, "default_privs", "fatal",
                     "parameters default_privs and mail_owner specify the same user %s", privs);
  else if (pw->pw_uid == check->owner_uid)
    config_check_add(check, "default_privs", "fatal",
                     "parameters default_privs and mail_owner: users %s and %s have the same "
                     "user ID: %ld", privs, check->owner, (long) pw->pw_uid);
  else if (pw->pw_gid == check->owner_gid)
    config_check_add(check, "default_privs", "fatal",
                     "parameters default_privs and mail_owner: users %s and %s have the same "
                     "group ID: %ld", privs, check->owner, (long) pw->pw_gid);
}

/* ---- directories ---- */

static gboolean
check_group_or_other_writable(const struct stat *st)
{
  return (st->st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

static gint
check_compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted names in dir (no "." and ".."); NULL when it cannot be read. */
static GPtrArray *
check_list_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
      g_ptr_array_add(names, g_strdup(de->d_name));
  closedir(d);
  g_ptr_array_sort(names, check_compare_names);
  return names;
}

/* The configuration directory tree: root-owned, not group or other
 * writable (check-warn's "find $config_directory/. ..."; symlinks are
 * not followed and have no permissions of their own). */
static void
check_config_tree(ConfigCheck *check, const char *path, int depth)
{
  struct stat st;
  if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
    return;
  if (st.st_uid != 0)
    config_check_add(check, NULL, "warning", "not owned by root: %s", path);
  if (check_group_or_other_writable(&st))
    config_check_add(check, NULL, "warning", "group or other writable: %s", path);
  if (!S_ISDIR(st.st_mode) || depth >= CHECK_MAX_DEPTH)
    return;
  g_autoptr(GPtrArray) names = check_list_dir(path);
  for (guint i = 0; names && i < names->len; i++) {
    g_autofree char *child = g_build_filename(path, names->pdata[i], NULL);
    check_config_tree(check, child, depth + 1);
  }
}

static void
check_config_directory(ConfigCheck *check)
{
  check_config_tree(check, config_get_dir(check->config), 0);
}

/* One queue subdirectory: its owner, and no write access beyond what
 * queue_dirs_ensure() grants. */
static void
check_queue_subdir(ConfigCheck *check, const char *queue, QueueDir which)
{
  g_autofree char *path = g_build_filename(queue, queue_dir_name(which), NULL);
  struct stat st;
  if (lstat(path, &st) < 0)
    return;     /* created when a daemon starts */
  if (!S_ISDIR(st.st_mode)) {
    config_check_add(check, NULL, "warning", "not a directory: %s", path);
    return;
  }
  gboolean smtpd_writes = which == QUEUE_INCOMING || which == QUEUE_RECYCLE;
  if (smtpd_writes && check->owner_ok && st.st_uid != check->owner_uid)
    config_check_add(check, NULL, "warning", "not owned by %s: %s", check->owner, path);
  else if (!smtpd_writes && st.st_uid != 0)
    config_check_add(check, NULL, "warning", "not owned by root: %s", path);
  gboolean group_ok = smtpd_writes && check->owner_ok && st.st_gid == check->owner_gid;
  if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && !group_ok))
    config_check_add(check, NULL, "warning", "group or other writable: %s", path);
}

/* Files in corrupt/ (check-warn's "damaged message"). */
static void
check_queue_corrupt(ConfigCheck *check, const char *queue)
{
  g_autofree char *dir = g_build_filename(queue, queue_dir_name(QUEUE_CORRUPT), NULL);
  g_autoptr(GPtrArray) names = check_list_dir(dir);
  for (guint i = 0; names && i < names->len; i++) {
    g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
      config_check_add(check, NULL, "warning", "damaged message: %s", path);
  }
}

static void
check_queue_directory(ConfigCheck *check)
{
  const char *queue = config_str(check->config, "queue_directory");
  struct stat st;
  if (lstat(queue, &st) < 0)
    return;     /* created when a daemon starts */
  if (!S_ISDIR(st.st_mode)) {
    config_check_add(check, "queue_directory", "warning", "not a directory: %s", queue);
    return;
  }
  if (st.st_uid != 0)
    config_check_add(check, NULL, "warning", "not owned by root: %s", queue);
  if (check_group_or_other_writable(&st))
    config_check_add(check, NULL, "warning", "group or other writable: %s", queue);
  for (QueueDir d = 0; d < QUEUE_N_DIRS; d++)
    check_queue_subdir(check, queue, d);
  check_queue_corrupt(check, queue);
}

/* ---- the driver ---- */

static void
check_loader_warnings(ConfigCheck *check)
{
  const GPtrArray *warnings = config_warnings(check->config);
  for (guint i = 0; i < warnings->len; i++)
    g_ptr_array_add(check->problems, g_strdup(warnings->pdata[i]));
}

GPtrArray *
config_check(const char *config_dir, GError **error)
{
  g_autoptr(Config) config = config_load(config_dir, NULL, error);
  if (!config)
    return NULL;
  ConfigCheck check = {
    .config = config,
    .problems = g_ptr_array_new_with_free_func(g_free),
    .owner_groups = g_array_new(FALSE, TRUE, sizeof(gid_t)),
  };
  check_loader_warnings(&check);
  check_mail_owner(&check);
  check_default_privs(&check);
  check_config_directory(&check);
  check_queue_directory(&check);
  config_check_tables(&check);
  config_check_aliases(&check);
  config_check_tls(&check);
  config_check_sasl(&check);
  g_array_unref(check.owner_groups);
  g_free(check.owner);
  return check.problems;
}
