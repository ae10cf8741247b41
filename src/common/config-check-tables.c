/* config-check-tables.c - config_check()'s look at the lookup tables and
 * alias files the configuration names.
 *
 * Tables are found in every tables parameter (alias_maps, *_maps), in
 * alias_database, and as "type:name" elements of list parameters: the
 * arguments of check_*_access in smtpd_*_restrictions, the bodies of
 * smtpd_restriction_classes, tables in domain and network lists.  Each
 * file is looked at once, blamed on the first setting that names it.
 * A compiled hash:/cdb: table is warned about as Postfix's dict_cdb does
 * when its .cdb is older than its source ("database X is older than
 * source file Y", unless the source changed in the last 100 seconds).
 * Files must be readable by mail_owner, which smtpd runs as.  Alias
 * files and the :include: files they name must not be world writable
 * (local(8) refuses those, and so does postern-qmgr).
 */
#include "config-check-private.h"
#include "table-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK_SOURCE_GRACE_S 100   /* dict_cdb: a source changed this recently is fine */
#define CHECK_ALIAS_MAX (16 * 1024 * 1024)

/* The file-based table types, and whether they are compiled. */
static const struct {
  const char *type;
  gboolean compiled;
} check_file_types[] = {
  { "hash", TRUE }, { "cdb", TRUE }, { "texthash", FALSE }, { "cidr", FALSE },
  { "regexp", FALSE }, { "pcre", FALSE }, { "mysql", FALSE },
};

/* Splits "proxy:type:name"; returns the index in check_file_types or -1. */
static int
check_table_kind(const char *spec, const char **path)
{
  const char *p = g_str_has_prefix(spec, "proxy:") ? spec + 6 : spec;
  const char *colon = strchr(p, ':');
  if (!colon)
    return -1;
  for (gsize i = 0; i < G_N_ELEMENTS(check_file_types); i++)
    if (strlen(check_file_types[i].type) == (gsize) (colon - p)
        && strncmp(p, check_file_types[i].type, (gsize) (colon - p)) == 0) {
      *path = colon + 1;
      return (int) i;
    }
  return -1;
}

/* A file the daemons open: present, openable, readable by mail_owner.
 * what is "database" for a .cdb (Postfix's "open database X"). */
static gboolean
check_readable_file(ConfigCheck *check, const char *setting, const char *what, const char *path,
                    struct stat *st)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0 || fstat(fd, st) < 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    config_check_add(check, setting, "warning", "open %s%s%s: %s", what, *what ? " " : "", path,
                     g_strerror(e));
    return FALSE;
  }
  close(fd);
  if (!S_ISREG(st->st_mode)) {
    config_check_add(check, setting, "warning", "%s is not a regular file", path);
    return FALSE;
  }
  if (check->owner_ok && !config_check_owner_can_read(check, st))
    config_check_add(check, setting, "warning", "%s is not readable by mail_owner %s", path,
                     check->owner);
  return TRUE;
}

/* hash:/cdb: - PATH.cdb must exist (lookups otherwise read PATH as text,
 * which Postfix would not) and be at least as new as PATH. */
static void
check_compiled_table(ConfigCheck *check, const char *setting, const char *spec, const char *path)
{
  g_autofree char *cdb = g_strconcat(path, ".cdb", NULL);
  struct stat src, db;
  gboolean have_src = stat(path, &src) == 0;
  if (stat(cdb, &db) < 0 && errno == ENOENT) {
    if (have_src && (strcmp(setting, "alias_maps") == 0 || strcmp(setting, "alias_database") == 0))
      config_check_add(check, setting, "warning",
                       "database %s does not exist (lookups read %s as text; run \"newaliases\")",
                       cdb, path);
    else if (have_src)
      config_check_add(check, setting, "warning",
                       "database %s does not exist (lookups read %s as text; run \"mailctl "
                       "table rebuild %s\")", cdb, path, spec);
    else
      config_check_add(check, setting, "warning", "open database %s: %s", cdb,
                       g_strerror(ENOENT));
    return;
  }
  if (!check_readable_file(check, setting, "database", cdb, &db))
    return;
  if (have_src && src.st_mtime > db.st_mtime && src.st_mtime < time(NULL) - CHECK_SOURCE_GRACE_S)
    config_check_add(check, setting, "warning", "database %s is older than source file %s", cdb,
                     path);
}

/* Pattern tables are parsed when opened: a syntax error shows here. */
static void
check_pattern_table(ConfigCheck *check, const char *setting, const char *spec)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(Table) table = table_open(spec, 0, &local);
  if (!table)
    config_check_add(check, setting, "warning", "%s", local->message);
}

static void
check_one_table(ConfigCheck *check, const char *setting, const char *spec, gboolean must_be_table,
                GHashTable *seen)
{
  const char *path = NULL;
  int kind = check_table_kind(spec, &path);
  /* one look per file: hash:X, cdb:X and proxy:hash:X all read X.cdb */
  g_autofree char *file = kind < 0 ? g_strdup(spec)
      : check_file_types[kind].compiled ? g_strconcat(path, ".cdb", NULL) : g_strdup(path);
  if (!g_hash_table_add(seen, g_steal_pointer(&file)))
    return;
  if (kind < 0) {
    const char *p = g_str_has_prefix(spec, "proxy:") ? spec + 6 : spec;
    const char *colon = strchr(p, ':');
    if (must_be_table && colon && !table_backend_find(p, (gsize) (colon - p)))
      config_check_add(check, setting, "warning", "table \"%s\": unsupported table type \"%.*s\"",
                       spec, (int) (colon - p), p);
    return;
  }
  struct stat st;
  if (check_file_types[kind].compiled)
    check_compiled_table(check, setting, spec, path);
  else if (check_readable_file(check, setting, "", path, &st)
           && strcmp(check_file_types[kind].type, "mysql") != 0
           && strcmp(check_file_types[kind].type, "texthash") != 0)
    check_pattern_table(check, setting, spec);
}

/* Every element of value that names a table. */
static void
check_table_list(ConfigCheck *check, const char *setting, const char *const *list,
                 gboolean must_be_table, GHashTable *seen)
{
  for (const char *const *e = list; e && *e; e++)
    if (strchr(*e, ':') && **e != '[' && **e != '!')
      check_one_table(check, setting, *e, must_be_table, seen);
}

void
config_check_tables(ConfigCheck *check)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gsize n;
  const ParamDef *table = param_table(&n);
  for (gsize i = 0; i < n; i++) {
    if (table[i].type == PARAM_TABLES || table[i].type == PARAM_LIST)
      check_table_list(check, table[i].name, config_list(check->config, table[i].name),
                       table[i].type == PARAM_TABLES, seen);
    else if (strcmp(table[i].name, "alias_database") == 0) {
      g_auto(GStrv) list = config_split_list(config_str(check->config, table[i].name));
      check_table_list(check, table[i].name, (const char *const *) list, TRUE, seen);
    }
  }
  for (const char *const *c = config_list(check->config, "smtpd_restriction_classes"); c && *c;
       c++) {
    const char *raw = config_raw(check->config, *c);
    g_autofree char *value = raw ? config_expand(check->config, raw, NULL) : NULL;
    g_auto(GStrv) list = value ? config_split_list(value) : NULL;
    check_table_list(check, *c, (const char *const *) list, FALSE, seen);
  }
}

/* ---- aliases ---- */

/* Splits an alias value at commas outside double quotes; unquotes. */
static GPtrArray *
check_alias_items(const char *value)
{
  GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
  GString *cur = g_string_new(NULL);
  gboolean quoted = FALSE;
  for (const char *p = value;; p++) {
    if (*p == '"') {
      quoted = !quoted;
    } else if (*p == '\0' || (*p == ',' && !quoted)) {
      g_ptr_array_add(items, g_strstrip(g_strdup(cur->str)));
      g_string_truncate(cur, 0);
      if (*p == '\0')
        break;
    } else {
      g_string_append_c(cur, *p);
    }
  }
  g_string_free(cur, TRUE);
  return items;
}

/* An :include: file must be a regular file that is not world writable
 * (Postfix local(8)'s wording). */
static void
check_include(ConfigCheck *check, const char *setting, const char *path, GHashTable *seen)
{
  if (!g_hash_table_add(seen, g_strdup(path)))
    return;
  struct stat st;
  if (stat(path, &st) < 0)
    config_check_add(check, setting, "warning", "open :include: file %s: %s", path,
                     g_strerror(errno));
  else if (!S_ISREG(st.st_mode))
    config_check_add(check, setting, "warning", ":include: file %s is not a regular file", path);
  else if (st.st_mode & S_IWOTH)
    config_check_add(check, setting, "warning", ":include: file %s is world writable", path);
}

/* One alias source file: not world writable, and its :include: files. */
static void
check_alias_file(ConfigCheck *check, const char *setting, const char *path, GHashTable *seen)
{
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
    return;     /* reported with the tables */
  if (st.st_mode & S_IWOTH)
    config_check_add(check, setting, "warning", "alias file %s is world writable", path);
  g_autofree char *cdb = g_strconcat(path, ".cdb", NULL);
  if (stat(cdb, &st) == 0 && (st.st_mode & S_IWOTH))
    config_check_add(check, setting, "warning", "alias database %s is world writable", cdb);
  g_autofree char *text = NULL;
  gsize len;
  if (!g_file_get_contents(path, &text, &len, NULL) || len > CHECK_ALIAS_MAX
      || memchr(text, '\0', len))
    return;
  g_autoptr(GHashTable) map = table_text_parse(path, text, TABLE_ALIAS_SYNTAX, FALSE, NULL);
  if (!map)
    return;
  g_autoptr(GList) values = g_list_sort(g_hash_table_get_values(map), (GCompareFunc) strcmp);
  for (GList *v = values; v; v = v->next) {
    g_autoptr(GPtrArray) items = check_alias_items(v->data);
    for (guint i = 0; i < items->len; i++) {
      const char *item = items->pdata[i];
      if (g_ascii_strncasecmp(item, ":include:", 9) == 0) {
        g_autofree char *target = g_strstrip(g_strdup(item + 9));
        check_include(check, setting, target, seen);
      }
    }
  }
}

void
config_check_aliases(ConfigCheck *check)
{
  static const char *const params[] = { "alias_maps", "alias_database" };
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(params); i++) {
    g_auto(GStrv) list = config_split_list(config_str(check->config, params[i]));
    for (char **e = list; *e; e++) {
      const char *path = NULL;
      int kind = check_table_kind(*e, &path);
      if (kind < 0 || (!check_file_types[kind].compiled
                       && strcmp(check_file_types[kind].type, "texthash") != 0))
        continue;
      if (g_hash_table_add(seen, g_strdup(path)))
        check_alias_file(check, params[i], path, seen);
    }
  }
}
