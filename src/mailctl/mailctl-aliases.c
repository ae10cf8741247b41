/* mailctl-aliases.c - "mailctl aliases rebuild" and newaliases: compile
 * every hash:/cdb: table that alias_database names, in aliases(5)
 * syntax.  Other table types in alias_database need no compiling and
 * are passed over, as Postfix's newaliases does.
 */
#include "mailctl.h"
#include "config.h"
#include "table.h"

#include <stdio.h>
#include <string.h>

static gboolean
mailctl_aliases_compiled(const char *spec)
{
  if (g_str_has_prefix(spec, "proxy:"))
    spec += 6;
  return g_str_has_prefix(spec, "hash:") || g_str_has_prefix(spec, "cdb:");
}

int
mailctl_aliases_rebuild(const MailctlOptions *opts)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Config) config = config_load(opts->config_dir, NULL, &error);
  int status = MAILCTL_EXIT_OK;

  if (!config)
    return mailctl_fail("%s", error->message);
  g_auto(GStrv) specs = config_split_list(opts->alias_database != NULL
                                              ? opts->alias_database
                                              : config_str(config, "alias_database"));
  for (char **s = specs; s && *s; s++) {
    g_autoptr(GError) local = NULL;
    if (!mailctl_aliases_compiled(*s))
      continue;
    if (!table_rebuild(*s, TABLE_FOLD_CASE | TABLE_ALIAS_SYNTAX, &local))
      status = mailctl_fail("%s", local->message);
  }
  return status;
}

int
mailctl_aliases_main(const MailctlOptions *opts, int argc, char **argv)
{
  if (argc == 1 && strcmp(argv[0], "rebuild") == 0)
    return mailctl_aliases_rebuild(opts);
  if (argc >= 1 && strcmp(argv[0], "rebuild") != 0)
    mailctl_fail("aliases: unknown command \"%s\"", argv[0]);
  fputs("usage: mailctl aliases rebuild\n", stderr);
  return MAILCTL_EXIT_ERROR;
}
