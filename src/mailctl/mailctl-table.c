/* mailctl-table.c - "mailctl table": compiling and querying lookup tables
 * (Postfix's postmap and postmap -q).
 *
 *   mailctl table rebuild [--aliases] TYPE:PATH...
 *   mailctl table query [--aliases] KEY TYPE:NAME
 *
 * Keys are folded to lower case, as postmap does; --aliases reads the
 * source in aliases(5) syntax.
 */
#include "mailctl.h"
#include "table.h"

#include <stdio.h>
#include <string.h>

static const char mailctl_table_usage[] =
  "usage: mailctl table rebuild [--aliases] TYPE:PATH...\n"
  "       mailctl table query [--aliases] KEY TYPE:NAME\n";

/* Strips a leading --aliases / -a; returns the table flags. */
static TableFlags
mailctl_table_flags(int *argc, char ***argv)
{
  TableFlags flags = TABLE_FOLD_CASE;
  if (*argc > 0 && (strcmp((*argv)[0], "--aliases") == 0 || strcmp((*argv)[0], "-a") == 0)) {
    flags |= TABLE_ALIAS_SYNTAX;
    (*argc)--;
    (*argv)++;
  }
  return flags;
}

static int
mailctl_table_rebuild(int argc, char **argv)
{
  TableFlags flags = mailctl_table_flags(&argc, &argv);
  int status = MAILCTL_EXIT_OK;

  if (argc < 1) {
    fputs(mailctl_table_usage, stderr);
    return MAILCTL_EXIT_ERROR;
  }
  for (int i = 0; i < argc; i++) {
    g_autoptr(GError) error = NULL;
    if (!table_rebuild(argv[i], flags, &error))
      status = mailctl_fail("%s", error->message);
  }
  return status;
}

static int
mailctl_table_query(int argc, char **argv)
{
  TableFlags flags = mailctl_table_flags(&argc, &argv);
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;

  if (argc != 2) {
    fputs(mailctl_table_usage, stderr);
    return MAILCTL_EXIT_ERROR;
  }
  g_autoptr(Table) table = table_open(argv[1], flags, &error);
  if (!table)
    return mailctl_fail("%s", error->message);
  switch (table_lookup(table, argv[0], &value, &error)) {
  case TABLE_FOUND:
    printf("%s\n", value);
    return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : mailctl_fail("write stdout failed");
  case TABLE_NOTFOUND:
    return MAILCTL_EXIT_NOTFOUND;
  case TABLE_TEMPFAIL:
  default:
    return mailctl_fail("%s", error ? error->message : "lookup failed");
  }
}

int
mailctl_table_main(const MailctlOptions *opts, int argc, char **argv)
{
  if (argc >= 1 && strcmp(argv[0], "rebuild") == 0)
    return mailctl_table_rebuild(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "query") == 0)
    return mailctl_table_query(argc - 1, argv + 1);
  if (argc >= 1)
    mailctl_fail("table: unknown command \"%s\"", argv[0]);
  fputs(mailctl_table_usage, stderr);
  return MAILCTL_EXIT_ERROR;
}
