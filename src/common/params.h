/* params.h - the one table of every main.cf parameter Postern knows.
 *
 * Each parameter is declared once, with its type, default, bounds and a
 * one-line description.  The config loader, validation, the unit tests
 * and (later) mailctl and the D-Bus API all read this table; nothing else
 * may hard-code a default.
 */
#pragma once

#include <glib.h>

typedef enum {
  PARAM_STR,      /* free text, $-expanded */
  PARAM_BOOL,     /* yes/no (also true/false, case-insensitive) */
  PARAM_INT,      /* decimal integer within [min, max] */
  PARAM_TIME,     /* integer with optional unit s/m/h/d/w; stored in seconds */
  PARAM_SIZE,     /* byte count (plain integer, as Postfix) */
  PARAM_LIST,     /* values separated by comma and/or white space */
  PARAM_TABLES,   /* list of lookup tables "type:name" */
  PARAM_TEMPLATE, /* text $-expanded when used, with names of its own (default_rbl_reply) */
} ParamType;

typedef struct {
  const char *name;
  ParamType type;
  const char *def;      /* default, may contain $name; NULL = computed (see config.c) */
  gint64 min;           /* bounds for INT/TIME/SIZE (0,0 = unbounded) */
  gint64 max;
  char time_unit;       /* default unit for PARAM_TIME ('s','m','h','d','w') */
  const char *doc;      /* one line */
} ParamDef;

/* Looks up a parameter by name; NULL when Postern does not know it. */
const ParamDef *param_lookup(const char *name);

/* The whole table, sorted by name. */
const ParamDef *param_table(gsize *n_params);

const char *param_type_name(ParamType type);
