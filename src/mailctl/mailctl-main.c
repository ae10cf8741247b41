/* mailctl-main.c - the mailctl command: global options, then one
 * subcommand group.  See mailctl(1).
 *
 *   mailctl [OPTIONS] status|queue|watch|config|reload ...   (D-Bus, postern-qmgr)
 *   mailctl [--config-dir DIR] table rebuild|query ...      (local files)
 *   mailctl [--config-dir DIR] aliases rebuild              (local files)
 *
 * Exit status: see mailctl.h.
 */
#include "mailctl.h"

#include <stdio.h>
#include <string.h>

static const char mailctl_usage[] =
  "usage: mailctl [OPTIONS] COMMAND ...\n"
  "\n"
  "Through postern-qmgr's D-Bus API (authorized by polkit):\n"
  "  status [--json]                          version, queue counts, counters, units\n"
  "  queue list [--json] [FILTERS]            the queue as postqueue -p (filters: --queue,\n"
  "                                           --sender, --recipient, --min-age, --max-age,\n"
  "                                           --reason, --limit)\n"
  "  queue show [--json] ID                   one message: envelope and header\n"
  "  queue delete|hold|release|requeue ID...|ALL|-   as postsuper -d/-h/-H/-r\n"
  "  queue flush                              deliver what is deferred now (postqueue -f)\n"
  "  watch [--json] [--count N]               follow queue and configuration events\n"
  "  config get [--json] NAME...              parameter values in use (postconf NAME)\n"
  "  config list [--json] [--defaults|--changed]  all of them (postconf, -d, -n)\n"
  "  config set NAME=VALUE...                 change main.cf and reload (postconf -e)\n"
  "  reload                                   reload the configuration (postfix reload)\n"
  "  check [--json]                           problems of the configuration (postfix check)\n"
  "\n"
  "On local files:\n"
  "  table rebuild [--aliases] TYPE:PATH...    compile PATH into PATH.cdb (postmap)\n"
  "  table query [--aliases] KEY TYPE:NAME...  print the value of KEY (postmap -q)\n"
  "  table query [--aliases] - TYPE:NAME...    \"key<TAB>value\" per stdin key found (postmap -q -)\n"
  "  table types                               the table types this build knows (postconf -m)\n"
  "  aliases rebuild                           compile alias_database (newaliases)\n"
  "\n"
  "Options:\n"
  "  --config-dir DIR       configuration directory (table, aliases)\n"
  "  --bus-address ADDRESS  the D-Bus address to use instead of the system bus\n"
  "  -H, --host [USER@]HOST the system bus of HOST, over ssh (systemd-stdio-bridge)\n"
  "  --json                 JSON output, one line per object\n"
  "  --no-ask-password      never let polkit ask for a password\n"
  "\n"
  "Exit status: 0 ok, 1 failed (denied, no such message, not found), 2 usage or\n"
  "local error, 3 postern-qmgr not running.\n";

/* "--name VALUE" or "--name=VALUE"; advances *i over the value. */
static gboolean
mailctl_main_option(int argc, char **argv, int *i, const char *name, const char *short_name,
                    const char **value)
{
  gsize len = strlen(name);

  if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=') {
    *value = argv[*i] + len + 1;
    return TRUE;
  }
  if ((strcmp(argv[*i], name) == 0 || (short_name && strcmp(argv[*i], short_name) == 0))
      && *i + 1 < argc) {
    *value = argv[++*i];
    return TRUE;
  }
  return FALSE;
}

int
main(int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*run)(const MailctlOptions *opts, int argc, char **argv);
  } commands[] = {
    { "table", mailctl_table_main },
    { "aliases", mailctl_aliases_main },
    { "status", mailctl_status_main },
    { "queue", mailctl_queue_main },
    { "watch", mailctl_watch_main },
    { "config", mailctl_config_main },
    { "reload", mailctl_reload_main },
    { "check", mailctl_check_main },
  };
  MailctlOptions opts = { 0 };
  int i = 1;

  g_set_prgname("mailctl");

  for (; i < argc && argv[i][0] == '-'; i++) {
    if (mailctl_main_option(argc, argv, &i, "--config-dir", NULL, &opts.config_dir)
        || mailctl_main_option(argc, argv, &i, "--bus-address", NULL, &opts.bus_address)
        || mailctl_main_option(argc, argv, &i, "--host", "-H", &opts.host)) {
      continue;
    } else if (strcmp(argv[i], "--json") == 0) {
      opts.json = TRUE;
    } else if (strcmp(argv[i], "--no-ask-password") == 0) {
      opts.no_ask_password = TRUE;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(mailctl_usage, stdout);
      return MAILCTL_EXIT_OK;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("mailctl %s\n", POSTERN_VERSION);
      return MAILCTL_EXIT_OK;
    } else {
      mailctl_fail("unknown option \"%s\"", argv[i]);
      fputs(mailctl_usage, stderr);
      return MAILCTL_EXIT_USAGE;
    }
  }
  if (opts.bus_address && opts.host) {
    mailctl_fail("--bus-address and --host exclude each other");
    return MAILCTL_EXIT_USAGE;
  }
  if (i >= argc) {
    fputs(mailctl_usage, stderr);
    return MAILCTL_EXIT_USAGE;
  }
  for (guint c = 0; c < G_N_ELEMENTS(commands); c++)
    if (strcmp(argv[i], commands[c].name) == 0)
      return commands[c].run(&opts, argc - i - 1, argv + i + 1);
  mailctl_fail("unknown command \"%s\"", argv[i]);
  fputs(mailctl_usage, stderr);
  return MAILCTL_EXIT_USAGE;
}
