/* virtual-mailbox.h - the values of virtual_mailbox_maps and
 * virtual_uid_maps / virtual_gid_maps as both their readers check them:
 * qmgr delivering into a virtual mailbox, pop3d opening one after a
 * login.
 */
#pragma once

#include <glib.h>

/* TRUE when a virtual_mailbox_maps value is a relative path without ".."
 * components (it is taken below virtual_mailbox_base). */
gboolean virtual_mailbox_path_ok(const char *value);

/* A uid or gid table value: decimal, surrounding white space allowed,
 * below 2^32 - 1; FALSE otherwise. */
gboolean virtual_mailbox_id_parse(const char *value, guint64 *id);
