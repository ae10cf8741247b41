/* mbox-lock.h - locking an mbox file as Postfix and mail readers do: a
 * "<mbox>.lock" dotlock (O_EXCL; stale after MBOX_DOTLOCK_STALE seconds
 * without a touch), then an fcntl write lock on the file (an
 * open-file-description lock: our own threads exclude each other too, and
 * it conflicts with classic POSIX locks of other programs).
 */
#pragma once

#include <glib.h>

#define MBOX_DOTLOCK_STALE 300

/* Creates lock_path, waiting for another holder until deadline_us
 * (monotonic) and breaking a stale one; POSTERN_ERROR_TEMPORARY when it
 * cannot. */
gboolean mbox_dotlock(const char *lock_path, gint64 deadline_us, GError **error);
/* An exclusive fcntl lock on fd (open for writing), waiting until
 * deadline_us; released when fd is closed. */
gboolean mbox_fcntl_lock(int fd, gint64 deadline_us, GError **error);
