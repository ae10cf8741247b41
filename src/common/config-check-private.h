/* config-check-private.h - what the parts of config_check() share:
 * config-check.c (accounts, directories, the queue), config-check-tables.c
 * (lookup tables, aliases), config-check-tls.c (certificates, keys) and
 * config-check-sasl.c (SMTP AUTH).
 * Internal to src/common.
 */
#pragma once

#include "config-check.h"
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

typedef struct {
  const Config *config;
  GPtrArray *problems;      /* char *, in the order found */
  gboolean owner_ok;        /* mail_owner exists; the fields below are valid */
  char *owner;
  uid_t owner_uid;
  gid_t owner_gid;
  GArray *owner_groups;     /* gid_t: mail_owner's primary and supplementary groups */
} ConfigCheck;

/* Adds "LOC: SEVERITY: parameter NAME: TEXT", LOC being where setting is
 * set (omitted, with its ": ", for a default); setting NULL gives the bare
 * "SEVERITY: TEXT" of postfix-script. */
void config_check_add(ConfigCheck *check, const char *setting, const char *severity,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);

/* TRUE when mail_owner may read a file with these attributes (owner,
 * group and other bits, as the kernel decides; FALSE without mail_owner). */
gboolean config_check_owner_can_read(const ConfigCheck *check, const struct stat *st);

void config_check_tables(ConfigCheck *check);
void config_check_aliases(ConfigCheck *check);
void config_check_tls(ConfigCheck *check);
void config_check_sasl(ConfigCheck *check);
