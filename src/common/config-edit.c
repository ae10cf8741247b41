/* config-edit.c - rewriting main.cf for SetParameters / "mailctl config set"
 * (postconf -e) and "mailctl config unset" (postconf -X).
 *
 * Follows Postfix's pcf_edit_main(): comment and blank lines are copied
 * as they are; the first line of each logical line whose name is being
 * edited becomes "name = value" (every occurrence, when a name is defined
 * more than once) and its continuation lines are dropped; names that were
 * not found are appended, sorted by name; long values are written on one
 * line (postconf does not fold them); a last line without a newline gets
 * one.  Like edit_file(3) the new text goes to the deterministic temp
 * file main.cf.tmp, held under an exclusive flock() so that concurrent
 * editors take turns (the old main.cf is read only under the lock).
 *
 * Owns: validation of edit requests and the atomic replacement of
 * main.cf.  Never logs, and never leaves main.cf.tmp or a partial
 * main.cf behind.
 */
#include "config-edit.h"
#include "dirsync.h"
#include "config-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define EDIT_SPACE " \t\r\n\v\f"
#define EDIT_LOCK_TRIES 10

typedef struct {
  char *name;
  char *value;      /* trimmed; NULL when the name is to be removed */
  int found;        /* definitions seen in main.cf */
} EditRequest;

static void
edit_request_free(EditRequest *req)
{
  g_free(req->name);
  g_free(req->value);
  g_free(req);
}

static gboolean
edit_errno(GError **error, int err, const char *what, const char *path)
{
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s %s: %s", what, path,
              g_strerror(err));
  return FALSE;
}

/* ---- checking the requests (no I/O) ---- */

/* A name must be one word that main.cf syntax can hold; when known_only,
 * also one of the parameter table. */
static gboolean
edit_check_name(const char *name, gboolean known_only, GError **error)
{
  if (*name == '\0' || name[strcspn(name, EDIT_SPACE "=")] != '\0' || *name == '#') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_UNKNOWN_PARAMETER, "bad parameter name: \"%s\"", name);
    return FALSE;
  }
  if (known_only && param_lookup(name) == NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_UNKNOWN_PARAMETER, "unknown parameter %s", name);
    return FALSE;
  }
  return TRUE;
}

/* A value must be one line; without $ references it is converted here
 * exactly as the loader converts it, with $ after expansion (edit_verify). */
static gboolean
edit_check_value(const char *name, const char *value, GError **error)
{
  if (strpbrk(value, "\r\n")) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "parameter %s: the value must be one line (it contains a newline)", name);
    return FALSE;
  }
  if (strchr(value, '$'))
    return TRUE;
  ParamValue v = { .str = (char *) value };
  gboolean ok = config_convert_value(param_lookup(name), &v, NULL, error);
  g_strfreev(v.list);
  return ok;
}

/* Builds the request table; names the same as postconf -e: last one wins. */
static GHashTable *
edit_requests(const char *const *names, const char *const *values, GError **error)
{
  g_autoptr(GHashTable) reqs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                     (GDestroyNotify) edit_request_free);
  for (gsize i = 0; names && names[i]; i++) {
    if (!edit_check_name(names[i], values != NULL, error))
      return NULL;
    EditRequest *req = g_new0(EditRequest, 1);
    req->name = g_strdup(names[i]);
    if (values) {
      req->value = g_strstrip(g_strdup(values[i]));
      if (!edit_check_value(req->name, req->value, error)) {
        edit_request_free(req);
        return NULL;
      }
    }
    g_hash_table_replace(reqs, req->name, req);
  }
  if (g_hash_table_size(reqs) == 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "no parameter given");
    return NULL;
  }
  return g_steal_pointer(&reqs);
}

/* ---- the rewrite (pure) ---- */

static gint
edit_compare_requests(gconstpointer a, gconstpointer b)
{
  return strcmp((*(EditRequest *const *) a)->name, (*(EditRequest *const *) b)->name);
}

/* Returns text with the requests applied (pcf_edit_main's rules). */
static char *
edit_rewrite(const char *text, GHashTable *reqs)
{
  GString *out = g_string_sized_new(strlen(text) + 256);
  gboolean editing = FALSE;     /* inside a logical line being replaced or removed */
  for (const char *line = text; *line; ) {
    const char *nl = strchr(line, '\n');
    gsize len = nl ? (gsize) (nl - line) : strlen(line);
    const char *first = line + strspn(line, EDIT_SPACE);
    if (first >= line + len || *first == '#') {
      g_string_append_len(out, line, (gssize) len);       /* comment or blank */
      g_string_append_c(out, '\n');
    } else if (first > line) {
      if (!editing) {                                     /* continuation */
        g_string_append_len(out, line, (gssize) len);
        g_string_append_c(out, '\n');
      }
    } else {
      g_autofree char *key = g_strndup(line, strcspn(line, EDIT_SPACE "="));
      EditRequest *req = g_hash_table_lookup(reqs, key);
      editing = req != NULL;
      if (req) {
        req->found++;
        if (req->value)
          g_string_append_printf(out, "%s = %s\n", req->name, req->value);
      } else {
        g_string_append_len(out, line, (gssize) len);
        g_string_append_c(out, '\n');
      }
    }
    line = nl ? nl + 1 : line + len;
  }

  g_autoptr(GPtrArray) missing = g_ptr_array_new();
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, reqs);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (((EditRequest *) value)->found == 0 && ((EditRequest *) value)->value)
      g_ptr_array_add(missing, value);
  g_ptr_array_sort(missing, edit_compare_requests);
  for (guint i = 0; i < missing->len; i++) {
    const EditRequest *req = missing->pdata[i];
    g_string_append_printf(out, "%s = %s\n", req->name, req->value);
  }
  return g_string_free(out, FALSE);
}

/* ---- verification of the result ---- */

/* The new main.cf plus conf.d must load, and no edited name may be set in
 * conf.d, which would override main.cf. */
static gboolean
edit_verify(const char *dir, const char *main_cf, const char *text, GHashTable *reqs,
            GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(Config) config = config_load_main_text(dir, text, NULL, &local);
  if (!config) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "the new configuration would not load, %s is unchanged: %s", main_cf,
                local->message);
    return FALSE;
  }
  g_autoptr(GList) names = g_hash_table_get_keys(reqs);
  names = g_list_sort(names, (GCompareFunc) strcmp);
  for (GList *n = names; n; n = n->next) {
    const char *file;
    int line;
    if (!config_source(config, n->data, &file, &line) || strcmp(file, main_cf) == 0)
      continue;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "%s:%d: parameter %s is set here, and this overrides main.cf; change or remove "
                "it in this file", file, line, (const char *) n->data);
    return FALSE;
  }
  return TRUE;
}

/* ---- the atomic replacement ---- */

/* The file to edit: main.cf, or what it points to when it is a symlink. */
static char *
edit_target(const char *main_cf, GError **error)
{
  struct stat st;
  if (lstat(main_cf, &st) < 0 || !S_ISLNK(st.st_mode))
    return g_strdup(main_cf);
  char *target = realpath(main_cf, NULL);
  if (!target) {
    edit_errno(error, errno, "resolve symbolic link", main_cf);
    return NULL;
  }
  char *copy = g_strdup(target);
  free(target);
  return copy;
}

/* Opens and locks path.tmp (edit_file_open): when another editor renamed
 * or removed it while we waited for the lock, tries again. */
static int
edit_open_locked(const char *tmp, GError **error)
{
  for (int tries = 0; tries < EDIT_LOCK_TRIES; tries++) {
    struct stat before, after;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return edit_errno(error, errno, "open", tmp), -1;
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &before) < 0) {
      int e = errno;
      close(fd);
      return edit_errno(error, e, "lock", tmp), -1;
    }
    if (lstat(tmp, &after) < 0 || before.st_dev != after.st_dev
        || before.st_ino != after.st_ino) {
      close(fd);
      continue;
    }
    if (!S_ISREG(after.st_mode) || after.st_nlink > 1) {
      (void) unlink(tmp);
      close(fd);
      continue;
    }
    if (ftruncate(fd, 0) < 0 || fchmod(fd, 0600) < 0) {
      int e = errno;
      (void) unlink(tmp);
      close(fd);
      return edit_errno(error, e, "truncate", tmp), -1;
    }
    return fd;
  }
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
              "lock %s: the file keeps changing; another editor is busy", tmp);
  return -1;
}

static gboolean
edit_write_all(int fd, const char *tmp, const char *text, GError **error)
{
  gsize len = strlen(text);
  while (len > 0) {
    ssize_t n = write(fd, text, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return edit_errno(error, errno, "write", tmp);
    text += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* Under the lock: reads path, applies the requests, verifies the result,
 * writes it to fd with path's owner and mode, and renames it into place. */
static gboolean
edit_replace(const char *dir, const char *main_cf, const char *path, const char *tmp, int fd,
             GHashTable *reqs, GError **error)
{
  g_autofree char *old = NULL;
  gsize length = 0;
  g_autoptr(GError) local = NULL;
  struct stat st;
  gboolean existed = stat(path, &st) == 0;
  if (!g_file_get_contents(path, &old, &length, &local)) {
    if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "%s", local->message);
      return FALSE;
    }
    old = g_strdup("");
    existed = FALSE;
  }
  if (strlen(old) != length) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "%s: file contains a NUL byte", path);
    return FALSE;
  }
  g_autofree char *text = edit_rewrite(old, reqs);
  if (!edit_verify(dir, main_cf, text, reqs, error) || !edit_write_all(fd, tmp, text, error))
    return FALSE;
  if (existed && (st.st_uid != geteuid() || st.st_gid != getegid())
      && fchown(fd, st.st_uid, st.st_gid) < 0)
    return edit_errno(error, errno, "chown", tmp);
  if (fchmod(fd, existed ? st.st_mode & 07777 : 0644) < 0)
    return edit_errno(error, errno, "chmod", tmp);
  if (fsync(fd) < 0)
    return edit_errno(error, errno, "fsync", tmp);
  if (rename(tmp, path) < 0) {
    int e = errno;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "rename %s to %s: %s", tmp, path,
                g_strerror(e));
    return FALSE;
  }
  return dirsync_parent(path, error);
}

/* Applies the checked requests to dir/main.cf. */
static gboolean
edit_apply(const char *config_dir, GHashTable *reqs, GError **error)
{
  const char *dir = config_dir_resolve(config_dir);
  g_autofree char *main_cf = g_build_filename(dir, "main.cf", NULL);
  g_autofree char *path = edit_target(main_cf, error);
  if (!path)
    return FALSE;
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  int fd = edit_open_locked(tmp, error);
  if (fd < 0)
    return FALSE;
  gboolean ok = edit_replace(dir, main_cf, path, tmp, fd, reqs, error);
  if (!ok)
    (void) unlink(tmp);     /* still ours: we hold the lock */
  close(fd);
  return ok;
}

gboolean
config_edit_set(const char *config_dir, const char *const *names, const char *const *values,
                GError **error)
{
  g_return_val_if_fail(values != NULL, FALSE);
  for (gsize i = 0; names && names[i]; i++)
    g_return_val_if_fail(values[i] != NULL, FALSE);
  g_autoptr(GHashTable) reqs = edit_requests(names, values, error);
  return reqs && edit_apply(config_dir, reqs, error);
}

gboolean
config_edit_unset(const char *config_dir, const char *const *names, GError **error)
{
  g_autoptr(GHashTable) reqs = edit_requests(names, NULL, error);
  return reqs && edit_apply(config_dir, reqs, error);
}
