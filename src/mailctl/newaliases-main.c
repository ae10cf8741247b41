/* newaliases-main.c - Postfix-compatible newaliases: the same as
 * "mailctl aliases rebuild".  Accepts -C DIR (Postfix's config directory
 * option) and --config-dir DIR.  Exit status: 0 ok, 2 error.
 */
#include "mailctl.h"

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
  MailctlOptions opts = { 0 };

  g_set_prgname("newaliases");

  for (int i = 1; i < argc; i++) {
    if ((strcmp(argv[i], "-C") == 0 || strcmp(argv[i], "--config-dir") == 0) && i + 1 < argc) {
      opts.config_dir = argv[++i];
    } else {
      fprintf(stderr, "usage: newaliases [-C DIR]\n");
      return MAILCTL_EXIT_ERROR;
    }
  }
  return mailctl_aliases_rebuild(&opts);
}
