/* pidfile.h - pid files that name a live process or nobody.
 *
 * A daemon creates its pid file and keeps it open with a POSIX write lock
 * for as long as it runs; a reader asks the kernel who holds the lock
 * (F_GETLK), so a stale file left by a crash, or a pid reused by another
 * process, is never taken for the daemon.  postern-smtpd writes
 * $queue_directory/pid/smtpd.PID.pid; postern-qmgr signals the holders
 * for a D-Bus Reload.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Creates directory dir (mode 0755) if missing, owned by uid/gid (-1
 * keeps the caller's); repairs owner and mode of an existing one. */
gboolean pidfile_dir_ensure(const char *dir, uid_t uid, gid_t gid, GError **error);

/* Writes our pid to path and locks it; returns the fd to keep open (it
 * is close-on-exec), or -1 with error. */
int pidfile_create(const char *path, GError **error);

/* The pid of the live process that holds path's lock: > 0; 0 when nobody
 * holds it (a stale file); -1 with error when it cannot be read. */
pid_t pidfile_holder(const char *path, GError **error);
