/* config-check.h - "postfix check" for Postern: CheckConfiguration and
 * "mailctl check".
 *
 * Loads the configuration, then looks at what it names on disk and in
 * the user database, the way postfix-script's check-warn, mail_params.c
 * and the daemons' table opening do: unknown parameters, mail_owner and
 * default_privs, ownership and permissions of the configuration and
 * queue directories, lookup tables (missing, unreadable, .cdb older than
 * its source), alias files and :include: files writable by others, and
 * the smtpd TLS certificate, key and CA file.  Never changes anything,
 * never logs.  The list of checks is in docs/configuration.md.
 */
#pragma once

#include <glib.h>

/* Returns the problems found (char *, owned by the array, possibly none),
 * each "file:line: warning: text" when a setting is to blame, else
 * "warning: text" ("fatal:" for what stops the daemons from starting).
 * NULL with the loader's error when the configuration does not load. */
GPtrArray *config_check(const char *config_dir, GError **error);
