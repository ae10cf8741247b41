/* mailctl-main.c - the mailctl command: global options, then one
 * subcommand group ("table", "aliases").  See mailctl(1).
 *
 *   mailctl [--config-dir DIR] table rebuild|query ...
 *   mailctl [--config-dir DIR] aliases rebuild
 *
 * Exit status: 0 ok, 1 not found (table query), 2 error.
 */
#include "mailctl.h"

#include <stdio.h>
#include <string.h>

static const char mailctl_usage[] =
  "usage: mailctl [--config-dir DIR] COMMAND ...\n"
  "\n"
  "  table rebuild [--aliases] TYPE:PATH...    compile PATH into PATH.cdb (postmap)\n"
  "  table query [--aliases] KEY TYPE:NAME...  print the value of KEY (postmap -q)\n"
  "  table query [--aliases] - TYPE:NAME...    \"key<TAB>value\" per stdin key found (postmap -q -)\n"
  "  aliases rebuild                           compile alias_database (newaliases)\n"
  "\n"
  "Exit status: 0 ok, 1 not found, 2 error.\n";

int
main(int argc, char **argv)
{
  MailctlOptions opts = { 0 };
  int i = 1;

  g_set_prgname("mailctl");

  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--config-dir") == 0 && i + 1 < argc) {
      opts.config_dir = argv[++i];
    } else if (g_str_has_prefix(argv[i], "--config-dir=")) {
      opts.config_dir = argv[i] + strlen("--config-dir=");
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(mailctl_usage, stdout);
      return MAILCTL_EXIT_OK;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("mailctl %s\n", POSTERN_VERSION);
      return MAILCTL_EXIT_OK;
    } else {
      mailctl_fail("unknown option \"%s\"", argv[i]);
      fputs(mailctl_usage, stderr);
      return MAILCTL_EXIT_ERROR;
    }
  }
  if (i >= argc) {
    fputs(mailctl_usage, stderr);
    return MAILCTL_EXIT_ERROR;
  }
  if (strcmp(argv[i], "table") == 0)
    return mailctl_table_main(&opts, argc - i - 1, argv + i + 1);
  if (strcmp(argv[i], "aliases") == 0)
    return mailctl_aliases_main(&opts, argc - i - 1, argv + i + 1);
  mailctl_fail("unknown command \"%s\" (the D-Bus commands come with issue 4)", argv[i]);
  fputs(mailctl_usage, stderr);
  return MAILCTL_EXIT_ERROR;
}
