/* pop3d-locate.c - the mailbox of a login name, found as delivery finds
 * it (pop3d.h; qmgr-local.c and qmgr-virtual.c deliver there).
 *
 * A login "user@domain" whose domain is in virtual_mailbox_domains is
 * looked up in virtual_mailbox_maps by the whole address (not by the
 * "@domain" catch-all: a catch-all mailbox belongs to nobody's login),
 * with its owner from virtual_uid_maps / virtual_gid_maps.  A login
 * without a domain, or with a mydestination domain, is a system user
 * (getpwnam of the lower-cased local part): home_mailbox in the home
 * directory, or the mbox in mail_spool_directory.  Anything else has no
 * mailbox here.  Runs in the auth process: tables are opened per login.
 */
#include "pop3d.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include "domain-class.h"
#include "table.h"
#include "virtual-mailbox.h"

/* A login name usable as a table key and a user name. */
static gboolean
locate_name_ok(const char *login)
{
  gsize len = strlen(login);

  /* "@domain" would be the catch-all's key */
  if (len == 0 || len >= sizeof(((Pop3dMailbox *) 0)->user) || login[0] == '.'
      || login[0] == '@' || strchr(login, '/') != NULL)
    return FALSE;
  for (const char *p = login; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static gboolean
locate_set_path(Pop3dMailbox *box, const char *path, GError **error)
{
  if (g_strlcpy(box->path, path, sizeof box->path) >= sizeof box->path) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "mailbox path too long: %s", path);
    return FALSE;
  }
  return TRUE;
}

/* A value of a virtual table for key; TABLE_NOTFOUND without tables. */
static TableResult
locate_lookup(const Config *c, const char *param, const char *key, char **value, GError **error)
{
  const char *const *specs = config_list(c, param);
  g_autoptr(TableList) list = NULL;

  if (specs == NULL || specs[0] == NULL)
    return TABLE_NOTFOUND;
  list = table_list_open(specs, TABLE_FOLD_CASE, error);
  if (list == NULL) {
    g_prefix_error(error, "%s: ", param);
    return TABLE_TEMPFAIL;
  }
  return table_list_lookup(list, key, value, error);
}

static gboolean
locate_id(const Config *c, const char *param, const char *key, guint64 *id, GError **error)
{
  g_autofree char *value = NULL;
  TableResult r = locate_lookup(c, param, key, &value, error);

  if (r == TABLE_TEMPFAIL)
    return FALSE;
  if (r == TABLE_NOTFOUND || !virtual_mailbox_id_parse(value, id)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s for %s", param,
                r == TABLE_NOTFOUND ? "no value" : "bad value", key);
    return FALSE;
  }
  return TRUE;
}

static gboolean
locate_virtual(const Config *c, const char *address, Pop3dMailbox *box, GError **error)
{
  g_autofree char *value = NULL, *path = NULL;
  guint64 uid = 0, gid = 0;
  TableResult r = locate_lookup(c, "virtual_mailbox_maps", address, &value, error);

  if (r == TABLE_TEMPFAIL)
    return FALSE;
  if (r == TABLE_NOTFOUND) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND,
                "%s is not in virtual_mailbox_maps", address);
    return FALSE;
  }
  g_strstrip(value);
  if (!virtual_mailbox_path_ok(value)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "bad virtual_mailbox_maps value for %s: \"%s\"", address, value);
    return FALSE;
  }
  if (!locate_id(c, "virtual_uid_maps", address, &uid, error)
      || !locate_id(c, "virtual_gid_maps", address, &gid, error))
    return FALSE;
  if ((gint64) uid < config_int(c, "virtual_minimum_uid") || gid == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "%s: uid %" G_GUINT64_FORMAT " below virtual_minimum_uid, or gid 0", address,
                uid);
    return FALSE;
  }
  path = g_build_filename(config_str(c, "virtual_mailbox_base"), value, NULL);
  box->kind = g_str_has_suffix(value, "/") ? POP3D_BOX_MAILDIR : POP3D_BOX_MBOX;
  box->uid = (uid_t) uid;
  box->gid = (gid_t) gid;
  box->extra_gid = (gid_t) -1;
  g_strlcpy(box->user, address, sizeof box->user);
  return locate_set_path(box, path, error);
}

static gboolean
locate_system(const Config *c, const char *user, Pop3dMailbox *box, GError **error)
{
  const char *home_mailbox = config_str(c, "home_mailbox");
  const char *spool = config_str(c, "mail_spool_directory");
  g_autofree char *path = NULL;
  struct passwd *pw;

  errno = 0;
  pw = getpwnam(user);
  if (pw == NULL) {
    if (errno != 0 && errno != ENOENT && errno != ESRCH) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "user lookup failed for %s: %s",
                  user, g_strerror(errno));
      return FALSE;
    }
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND, "no system user %s", user);
    return FALSE;
  }
  if (pw->pw_uid == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "%s has uid 0: root's mail is not served (alias it to a user)", user);
    return FALSE;
  }
  box->uid = pw->pw_uid;
  box->gid = pw->pw_gid;
  box->extra_gid = (gid_t) -1;
  g_strlcpy(box->user, pw->pw_name, sizeof box->user);
  if (*home_mailbox != '\0') {
    box->kind = g_str_has_suffix(home_mailbox, "/") ? POP3D_BOX_MAILDIR : POP3D_BOX_MBOX;
    path = g_build_filename(pw->pw_dir, home_mailbox, NULL);
  } else {
    struct stat sst;

    box->kind = POP3D_BOX_MBOX;
    path = g_build_filename(spool, pw->pw_name, NULL);
    /* The dotlock is made in the spool: its group (mail) where it lets
     * the group write. */
    if (stat(spool, &sst) == 0 && (sst.st_mode & S_IWGRP) && sst.st_gid != 0)
      box->extra_gid = sst.st_gid;
  }
  return locate_set_path(box, path, error);
}

gboolean
pop3d_locate(const Pop3dSettings *st, const char *login, Pop3dMailbox *box, GError **error)
{
  g_autofree char *folded = g_ascii_strdown(login, -1);
  const char *at = strrchr(folded, '@');
  g_autoptr(DomainClasses) dc = NULL;
  DomainClass cls = DOMAIN_CLASS_LOCAL;
  g_autofree char *local = NULL;

  memset(box, 0, sizeof *box);
  if (!locate_name_ok(folded)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND, "unusable login name");
    return FALSE;
  }
  if (at == NULL)
    return locate_system(st->config, folded, box, error);
  dc = domain_classes_new(st->config);
  if (!domain_classes_resolve(dc, at + 1, &cls, error))
    return FALSE;
  switch (cls) {
  case DOMAIN_CLASS_VIRTUAL:
    return locate_virtual(st->config, folded, box, error);
  case DOMAIN_CLASS_LOCAL:
    local = g_strndup(folded, at - folded);
    return locate_system(st->config, local, box, error);
  default:
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_NOT_FOUND,
                "%s is neither in mydestination nor in virtual_mailbox_domains", at + 1);
    return FALSE;
  }
}
