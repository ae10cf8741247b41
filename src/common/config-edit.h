/* config-edit.h - changing main.cf as "postconf -e" and "postconf -X" do.
 *
 * Every request is checked before anything is written: names against the
 * parameter table, values against their type and bounds, then the
 * configuration as it would be (the new main.cf plus conf.d) must load.
 * Only then is main.cf replaced, atomically (DIR/main.cf.tmp, locked,
 * fsync, rename, directory fsync), with its owner and mode kept and every
 * comment, blank line and other setting left as it was.  A name that a
 * conf.d/NAME.cf file sets is refused: that file would override main.cf.
 * docs/configuration.md, "Editing and checking", has the details.
 */
#pragma once

#include <glib.h>

/* Sets names[i] = values[i] in config_dir/main.cf (NULL: see
 * config_dir_resolve()), creating the file if missing.  names and values
 * are NULL-terminated and of the same length; a name given twice takes
 * its last value (as postconf -e).  Each existing definition of a name is
 * replaced in place by one "name = value" line; names not yet defined are
 * appended in name order.  POSTERN_ERROR_UNKNOWN_PARAMETER for an unknown
 * or malformed name, POSTERN_ERROR_CONFIG for a bad value, a shadowing
 * conf.d setting or a configuration that would not load;
 * POSTERN_ERROR_FAILED for I/O errors.  main.cf is untouched on any
 * error. */
gboolean config_edit_set(const char *config_dir, const char *const *names,
                         const char *const *values, GError **error);

/* Removes every definition of names (NULL-terminated) from main.cf, with
 * their continuation lines, as postconf -X.  Unknown names may be removed
 * too (a misspelt name is what one wants to remove); a name main.cf does
 * not define is no error.  Errors as config_edit_set(). */
gboolean config_edit_unset(const char *config_dir, const char *const *names, GError **error);
