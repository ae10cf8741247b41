/* table-private.h - what table backends share with the table core.
 *
 * Internal to src/common: a backend is a vtable (open, lookup, free) in
 * its own file; table.c keeps the registry, locking and key folding.
 */
#pragma once

#include "table.h"

#include <sys/types.h>
#include <time.h>

typedef struct {
  const char *type;
  /* Parses name (the part after "type:"); sets table->data. */
  gboolean (*open)(Table *table, const char *name, GError **error);
  /* Called with the table locked and key already folded. */
  TableResult (*lookup)(Table *table, const char *key, char **value, GError **error);
  void (*free)(Table *table);   /* may be NULL */
  /* Pattern tables (cidr, regexp, pcre) see the key as given: their own
   * flags decide case, and $1 substitutions keep the client's spelling. */
  gboolean keep_case;
  /* lookup() may run in several threads at once (the backend guards its
   * own state): the table lock is not taken around it. */
  gboolean concurrent;
} TableBackend;

struct _Table {
  char *spec;
  TableFlags flags;
  const TableBackend *backend;
  GMutex lock;
  gpointer data;    /* the backend's */
};

/* Sets a POSTERN_ERROR_TEMPORARY "table SPEC: WHY" error. */
TableResult table_tempfail(GError **error, const char *spec, const char *why);

/* A string -> string map owning keys and values. */
GHashTable *table_map_new(void);

/* Adds key -> value, folding the key if flags ask; the first entry wins
 * (postmap's duplicate handling).  Takes ownership of both. */
void table_map_add(GHashTable *map, TableFlags flags, char *key, char *value);

/* The rules parsed from a source file (cidr:, regexp:, pcre:), parsed
 * again when the file's (dev, inode, size, mtime) changed, checked at most
 * once a second (table-source.c).  parse returns the rules or NULL with a
 * "PATH:LINE: why" error. */
typedef gpointer (*TableParseFunc)(const char *path, const char *text, gpointer ctx, GError **error);
typedef struct {
  char *path;
  TableParseFunc parse;
  gpointer ctx;
  GDestroyNotify free_rules;
  gpointer rules;         /* NULL while the file is unusable */
  char *error;            /* why rules is NULL */
  gboolean loaded;        /* identity below is that of the last read */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  gint64 checked_us;      /* monotonic time of the last stat */
} TableSource;

/* Reads and parses the file once: a syntax error fails (POSTERN_ERROR_CONFIG),
 * a missing or unreadable file does not (lookups are TABLE_TEMPFAIL until it
 * can be read, as Postfix daemons start with a missing map). */
TableSource *table_source_new(const char *spec, const char *path, TableParseFunc parse,
                              gpointer ctx, GDestroyNotify free_rules, GError **error);
void table_source_free(TableSource *src);
/* The current rules (reparsed if the file changed), or NULL with a
 * POSTERN_ERROR_TEMPORARY error naming the table. */
gpointer table_source_rules(TableSource *src, const char *spec, GError **error);

/* Called for each logical line (comments and blank lines dropped, lines
 * starting with white space joined to the previous one); lineno is that
 * of the first physical line. */
typedef gboolean (*TableLineFunc)(const char *line, guint lineno, gpointer data, GError **error);
gboolean table_source_lines(const char *text, TableLineFunc fn, gpointer data, GError **error);

/* Sets a POSTERN_ERROR_CONFIG "PATH:LINE: WHY" error; returns FALSE. */
gboolean table_source_syntax(GError **error, const char *path, guint lineno, const char *fmt, ...)
  G_GNUC_PRINTF(4, 5);

/* The text of a file table (postmap "key value" lines, or aliases(5) with
 * TABLE_ALIAS_SYNTAX), parsed into a map of folded keys (table-file.c).
 * strict: a malformed line is a POSTERN_ERROR_CONFIG "PATH:LINE: why"
 * error (table_rebuild); otherwise it is skipped (lookups). */
GHashTable *table_text_parse(const char *path, const char *text, TableFlags flags, gboolean strict,
                             GError **error);

/* A source text read into memory for lookups, reread when it changed
 * (checked at most once a second); TABLE_TEMPFAIL while unreadable. */
typedef struct _TableText TableText;
TableText *table_text_new(const char *path);
void table_text_free(TableText *tt);
TableResult table_text_lookup(TableText *tt, const Table *table, const char *key, char **value,
                              GError **error);

/* The backend registered for type (len bytes), or NULL (table.c). */
const TableBackend *table_backend_find(const char *type, gsize len);

extern const TableBackend table_backend_texthash;
extern const TableBackend table_backend_hash;
extern const TableBackend table_backend_cdb;
extern const TableBackend table_backend_static;
extern const TableBackend table_backend_inline;
extern const TableBackend table_backend_unix;
extern const TableBackend table_backend_cidr;
extern const TableBackend table_backend_regexp;
extern const TableBackend table_backend_pcre;
extern const TableBackend table_backend_mysql;
