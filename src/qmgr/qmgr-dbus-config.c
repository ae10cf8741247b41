/* qmgr-dbus-config.c - where SetParameters and CheckConfiguration meet
 * the configuration editing and checking library.
 *
 * The library (src/common/config-edit.h: config_edit_set(), which
 * validates every name and value and rewrites main.cf atomically keeping
 * its comments, as postconf -e; src/common/config-check.h: config_check(),
 * the list of problems) is being written in parallel.  Until it is wired
 * in here, both methods answer org.freedesktop.DBus.Error.NotSupported
 * (after authorization, like every method).  Pool thread.
 */
#include "qmgr-dbus-private.h"

gboolean
qmgr_dbus_set_parameters(const char *config_dir, const char *const *names,
                         const char *const *values, GError **error)
{
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
              "SetParameters is not implemented yet in this build (edit %s/main.cf and "
              "call Reload)", config_dir);
  return FALSE;
}

GPtrArray *
qmgr_dbus_check_configuration(const char *config_dir, GError **error)
{
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
              "CheckConfiguration is not implemented yet in this build");
  return NULL;
}
