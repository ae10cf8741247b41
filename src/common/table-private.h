/* table-private.h - what table backends share with the table core.
 *
 * Internal to src/common: a backend is a vtable (open, lookup, free) in
 * its own file; table.c keeps the registry, locking and key folding.
 */
#pragma once

#include "table.h"

typedef struct {
  const char *type;
  /* Parses name (the part after "type:"); sets table->data. */
  gboolean (*open)(Table *table, const char *name, GError **error);
  /* Called with the table locked and key already folded. */
  TableResult (*lookup)(Table *table, const char *key, char **value, GError **error);
  void (*free)(Table *table);   /* may be NULL */
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

extern const TableBackend table_backend_texthash;
extern const TableBackend table_backend_hash;
extern const TableBackend table_backend_cdb;
extern const TableBackend table_backend_static;
extern const TableBackend table_backend_inline;
extern const TableBackend table_backend_unix;
