/* virtual-mailbox.c - virtual mailbox table values (virtual-mailbox.h). */
#include "virtual-mailbox.h"

#include <errno.h>
#include <string.h>

gboolean
virtual_mailbox_path_ok(const char *value)
{
  g_auto(GStrv) parts = g_strsplit(value, "/", -1);

  if (*value == '\0' || *value == '/')
    return FALSE;
  for (guint i = 0; parts[i]; i++)
    if (strcmp(parts[i], "..") == 0)
      return FALSE;
  return TRUE;
}

gboolean
virtual_mailbox_id_parse(const char *value, guint64 *id)
{
  g_autofree char *copy = g_strstrip(g_strdup(value));
  char *end = NULL;

  errno = 0;
  *id = g_ascii_strtoull(copy, &end, 10);
  return *copy != '\0' && g_ascii_isdigit(*copy) && *end == '\0' && errno == 0
         && *id <= G_MAXUINT32 - 1;
}
