/* dirsync.h - group commit for directory fsyncs.
 *
 * Threads that created, linked or renamed entries in the same directory
 * share one fsync of it: a caller waits for an fsync that started after
 * its own change, and starts one itself only when none is running.  With
 * many sessions committing at once this turns N directory syncs into a
 * few.  Blocking: worker threads only.
 */
#pragma once

#include <glib.h>

/* Makes every change made to the directory open as dirfd before this call
 * durable.  FALSE with errno-based POSTERN_ERROR_TEMPORARY on failure. */
gboolean dirsync_fsync(int dirfd, const char *what, GError **error);
/* The same for the directory that holds path (after a rename into it);
 * POSTERN_ERROR_FAILED when the directory cannot be opened. */
gboolean dirsync_parent(const char *path, GError **error);
