/* mailctl-table.c - "mailctl table": compiling and querying lookup tables
 * (Postfix's postmap and postmap -q).
 *
 *   mailctl table rebuild [--aliases] TYPE:PATH...
 *   mailctl table query [--aliases] KEY TYPE:NAME...
 *   mailctl table query [--aliases] - TYPE:NAME...
 *
 * Keys are folded to lower case, as postmap does; --aliases reads the
 * source in aliases(5) syntax.  With several tables the first one that
 * knows the key wins.  "query -" is postmap -q -: one key per line of
 * stdin, "key<TAB>value" for each key found ("key:<TAB>value" with
 * --aliases, as postalias -q - prints); it opens the tables once and
 * writes through one stdio buffer, as it is also what bench/table-lookup
 * times.
 */
#include "mailctl.h"
#include "table.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char mailctl_table_usage[] =
  "usage: mailctl table rebuild [--aliases] TYPE:PATH...\n"
  "       mailctl table query [--aliases] KEY|- TYPE:NAME...\n"
  "       mailctl table types\n";

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

/* The error of a lookup that could not be answered; exit status 2. */
static int
mailctl_table_query_error(GError *error)
{
  return mailctl_fail("%s", error ? error->message : "lookup failed");
}

/* postmap -q KEY: prints the value from the first table that has KEY. */
static int
mailctl_table_query_key(TableList *tables, const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;

  switch (table_list_lookup(tables, key, &value, &error)) {
  case TABLE_FOUND:
    printf("%s\n", value);
    return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : mailctl_fail("write stdout: %s", g_strerror(errno));
  case TABLE_NOTFOUND:
    return MAILCTL_EXIT_NOTFOUND;
  case TABLE_TEMPFAIL:
  default:
    return mailctl_table_query_error(error);
  }
}

/* postmap -q -: each line of stdin without its newline (nothing else is
 * stripped) is a key; "key<TAB>value" for those found, the key as read
 * (postalias -q -: "key:<TAB>value").  0 when some key was found, 1 when
 * none was, 2 at the first lookup that fails (after writing the lines
 * before it). */
static int
mailctl_table_query_stdin(TableList *tables, gboolean aliases)
{
  const char *sep = aliases ? ":\t" : "\t";
  static char inbuf[1 << 16], outbuf[1 << 16];
  g_autofree char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  gboolean found = FALSE;

  setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
  /* a terminal stays line-buffered, so interactive use shows each answer */
  if (!isatty(STDOUT_FILENO))
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  while ((len = getline(&line, &cap, stdin)) >= 0) {
    g_autoptr(GError) error = NULL;
    char *value = NULL;

    if (len > 0 && line[len - 1] == '\n')
      line[--len] = '\0';
    switch (table_list_lookup(tables, line, &value, &error)) {
    case TABLE_FOUND:
      fputs(line, stdout);
      fputs(sep, stdout);
      fputs(value, stdout);
      putchar('\n');
      g_free(value);
      found = TRUE;
      break;
    case TABLE_NOTFOUND:
      break;
    case TABLE_TEMPFAIL:
    default:
      fflush(stdout);
      return mailctl_table_query_error(error);
    }
  }
  if (ferror(stdin))
    return mailctl_fail("read stdin: %s", g_strerror(errno));
  if (fflush(stdout) != 0 || ferror(stdout))
    return mailctl_fail("write stdout: %s", g_strerror(errno));
  return found ? MAILCTL_EXIT_OK : MAILCTL_EXIT_NOTFOUND;
}

static int
mailctl_table_query(int argc, char **argv)
{
  TableFlags flags = mailctl_table_flags(&argc, &argv);
  g_autoptr(GError) error = NULL;

  if (argc < 2) {
    fputs(mailctl_table_usage, stderr);
    return MAILCTL_EXIT_ERROR;
  }
  g_autoptr(GPtrArray) specs = g_ptr_array_new();
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '\0')
      return mailctl_fail("table \"\": expected type:name");
    g_ptr_array_add(specs, argv[i]);
  }
  g_ptr_array_add(specs, NULL);
  g_autoptr(TableList) tables = table_list_open((const char *const *) specs->pdata, flags, &error);
  if (!tables)
    return mailctl_fail("%s", error->message);
  if (strcmp(argv[0], "-") == 0)
    return mailctl_table_query_stdin(tables, (flags & TABLE_ALIAS_SYNTAX) != 0);
  return mailctl_table_query_key(tables, argv[0]);
}

int
mailctl_table_main(const MailctlOptions *opts, int argc, char **argv)
{
  if (argc >= 1 && strcmp(argv[0], "rebuild") == 0)
    return mailctl_table_rebuild(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "query") == 0)
    return mailctl_table_query(argc - 1, argv + 1);
  if (argc == 1 && strcmp(argv[0], "types") == 0) {   /* postconf -m */
    g_autoptr(GPtrArray) types = table_types();
    for (guint i = 0; i < types->len; i++)
      printf("%s\n", (const char *) types->pdata[i]);
    return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_ERROR;
  }
  if (argc >= 1)
    mailctl_fail("table: unknown command \"%s\"", argv[0]);
  fputs(mailctl_table_usage, stderr);
  return MAILCTL_EXIT_ERROR;
}
