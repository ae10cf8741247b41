/* qmgr-privs.c - per-thread file-system identity for deliveries.
 *
 * qmgr runs as root with many delivery threads; a delivery "as the user"
 * must change only the calling thread.  setfsuid()/setfsgid() are
 * per-thread on Linux, and so is the raw setgroups system call (glibc's
 * setgroups() would change every thread).  With an fsuid other than 0
 * the thread also loses CAP_DAC_OVERRIDE and friends for file access;
 * going back to 0 restores them.  Nothing here may be called with the
 * real/effective ids changed.
 */
#include "qmgr.h"

#include <errno.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static gid_t *privs_groups;       /* the process's supplementary groups at start */
static int privs_n_groups;

void
privs_init(void)
{
  int n = getgroups(0, NULL);

  if (n < 0)
    n = 0;
  privs_groups = g_new0(gid_t, n + 1);
  privs_n_groups = getgroups(n, privs_groups);
  if (privs_n_groups < 0)
    privs_n_groups = 0;
}

/* The current values: setfsuid() with an invalid id changes nothing
 * and returns the current one. */
static uid_t
privs_fsuid(void)
{
  return (uid_t) setfsuid((uid_t) -1);
}

static gid_t
privs_fsgid(void)
{
  return (gid_t) setfsgid((gid_t) -1);
}

static void
privs_restore(const PrivsSaved *saved)
{
  setfsuid(saved->fsuid);
  setfsgid(saved->fsgid);
  if (syscall(SYS_setgroups, (long) privs_n_groups, privs_groups) < 0
      || privs_fsuid() != saved->fsuid || privs_fsgid() != saved->fsgid)
    /* A delivery thread left with a user's identity would do the next
     * user's delivery with it: stop rather than continue. */
    g_error("cannot restore file-system identity (uid %u): %s", (guint) saved->fsuid,
            g_strerror(errno));
}

gboolean
privs_enter(uid_t uid, gid_t gid, PrivsSaved *saved, GError **error)
{
  gid_t groups[1] = { gid };

  saved->switched = FALSE;
  saved->fsuid = privs_fsuid();
  saved->fsgid = privs_fsgid();
  if (saved->fsuid == uid && (saved->fsgid == gid || geteuid() != 0))
    return TRUE;            /* already that user (tests, unprivileged runs) */
  if (geteuid() != 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "cannot deliver as uid %u: not running as root", (guint) uid);
    return FALSE;
  }
  if (syscall(SYS_setgroups, 1L, groups) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "setgroups(%u): %s", (guint) gid,
                g_strerror(errno));
    return FALSE;
  }
  saved->switched = TRUE;
  setfsgid(gid);
  setfsuid(uid);
  if (privs_fsgid() != gid || privs_fsuid() != uid) {
    privs_restore(saved);
    saved->switched = FALSE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "cannot switch to uid %u gid %u", (guint) uid, (guint) gid);
    return FALSE;
  }
  return TRUE;
}

void
privs_leave(PrivsSaved *saved)
{
  if (!saved->switched)
    return;
  privs_restore(saved);
  saved->switched = FALSE;
}
