/* qmgr-dbus-config.c - where SetParameters and CheckConfiguration meet
 * the configuration editing and checking library (src/common/
 * config-edit.c: validate every name and value, then rewrite main.cf
 * atomically keeping its comments, as postconf -e; config-check.c: the
 * problems postfix check would report).  Pool thread; the D-Bus side
 * (validation, authorization, the reload after a set) is in
 * qmgr-dbus-manager.c.
 */
#include "config-check.h"
#include "config-edit.h"
#include "qmgr-dbus-private.h"

gboolean
qmgr_dbus_set_parameters(const char *config_dir, const char *const *names,
                         const char *const *values, GError **error)
{
  return config_edit_set(config_dir, names, values, error);
}

GPtrArray *
qmgr_dbus_check_configuration(const char *config_dir, GError **error)
{
  return config_check(config_dir, error);
}
