/* mailctl-fail.c - error messages of mailctl and newaliases. */
#include "mailctl.h"

#include <stdarg.h>
#include <stdio.h>

int
mailctl_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  const char *prog = g_get_prgname();
  fprintf(stderr, "%s: %s\n", prog ? prog : "mailctl", msg);
  return MAILCTL_EXIT_ERROR;
}
