/* mailctl.h - what mailctl's subcommand groups share with its main.
 *
 * Each group (mailctl-table.c, mailctl-aliases.c) takes the arguments
 * after its name and returns an exit status: 0 ok, 1 not found, 2 error
 * (usage errors included).  Messages go to stderr as "PROGRAM: ...".
 */
#pragma once

#include <glib.h>

#define MAILCTL_EXIT_OK       0
#define MAILCTL_EXIT_NOTFOUND 1
#define MAILCTL_EXIT_ERROR    2

typedef struct {
  const char *config_dir;   /* --config-dir, or NULL for $POSTERN_CONFIG_DIR / default */
  const char *alias_database; /* newaliases -oA: instead of alias_database, or NULL */
} MailctlOptions;

/* "mailctl table rebuild|query ..." */
int mailctl_table_main(const MailctlOptions *opts, int argc, char **argv);
/* "mailctl aliases rebuild" */
int mailctl_aliases_main(const MailctlOptions *opts, int argc, char **argv);
/* Rebuilds every hash:/cdb: table named by alias_database (newaliases). */
int mailctl_aliases_rebuild(const MailctlOptions *opts);

/* Prints "PROGRAM: MESSAGE" (mailctl or newaliases) to stderr and returns MAILCTL_EXIT_ERROR. */
int mailctl_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
