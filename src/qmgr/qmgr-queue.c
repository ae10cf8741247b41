/* qmgr-queue.c - finding work in the queue directories (loop thread).
 *
 * New mail: inotify on incoming/ (a committed file appears by rename,
 * IN_MOVED_TO: every writer commits that way, so closes are not watched,
 * which would report each message a second time).  At start: active/
 * (files put there by hand), incoming/, then the
 * due part of deferred/.  deferred/ holds files whose mtime is their next
 * attempt time; one CLOCK_REALTIME timer fires at the earliest known
 * time, but at most every queue_run_delay and at least a quarter of
 * minimal_backoff_time apart, and then also rescans incoming/ (for files
 * we had no room for or an event we missed).  hold/ is never scheduled.
 * The file moves themselves happen in the workers (qmgr-deliver.c).
 */
#include "qmgr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define QMGR_CLEANUP_INTERVAL (60 * 60)

gboolean
qmgr_queue_open(Qmgr *q, GError **error)
{
  for (guint i = 0; i < QUEUE_N_DIRS; i++) {
    g_autofree char *path = g_build_filename(q->queue_directory, queue_dir_name(i), NULL);

    q->dir_fds[i] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (q->dir_fds[i] < 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "open %s: %s", path,
                  g_strerror(errno));
      return FALSE;
    }
  }
  return TRUE;
}

void
qmgr_queue_close(Qmgr *q)
{
  q->inotify_source = sd_event_source_disable_unref(q->inotify_source);
  q->deferred_timer = sd_event_source_disable_unref(q->deferred_timer);
  q->cleanup_timer = sd_event_source_disable_unref(q->cleanup_timer);
  if (q->inotify_fd >= 0)
    close(q->inotify_fd);
  q->inotify_fd = -1;
  for (guint i = 0; i < QUEUE_N_DIRS; i++) {
    if (q->dir_fds[i] >= 0)
      close(q->dir_fds[i]);
    q->dir_fds[i] = -1;
  }
}

static gint
qmgr_queue_compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Queue ids in one directory, sorted (= by arrival); with mtimes when
 * mtimes is non-NULL (same order).  NULL when the directory cannot be read. */
static GPtrArray *
qmgr_queue_list(Qmgr *q, QueueDir dir, GArray **mtimes)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  int fd = openat(q->dir_fds[dir], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *de;

  if (d == NULL) {
    log_warning("cannot read %s/%s: %s", q->queue_directory, queue_dir_name(dir),
                g_strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  while ((de = readdir(d)) != NULL) {
    if (queue_id_is_valid(de->d_name))
      g_ptr_array_add(names, g_strdup(de->d_name));
  }
  closedir(d);
  g_ptr_array_sort(names, qmgr_queue_compare_names);
  if (mtimes) {
    *mtimes = g_array_sized_new(FALSE, FALSE, sizeof(gint64), names->len);
    for (guint i = 0; i < names->len; i++) {
      struct stat st;
      gint64 t = fstatat(q->dir_fds[dir], names->pdata[i], &st, AT_SYMLINK_NOFOLLOW) == 0
                 ? (gint64) st.st_mtime : G_MAXINT64;   /* vanished: skip */
      g_array_append_val(*mtimes, t);
    }
  }
  return g_steal_pointer(&names);
}

void
qmgr_queue_scan_incoming(Qmgr *q)
{
  g_autoptr(GPtrArray) names = qmgr_queue_list(q, QUEUE_INCOMING, NULL);

  q->incoming_backlog = FALSE;
  for (guint i = 0; names && i < names->len; i++) {
    if (!qmgr_scheduler_add(q, names->pdata[i], QUEUE_INCOMING)) {
      q->incoming_backlog = TRUE;
      break;
    }
  }
  qmgr_scheduler_kick(q);
}

/* (Re)sets the deferred timer from deferred_next and the last scan. */
static void
qmgr_queue_arm(Qmgr *q)
{
  const QmgrSettings *s = q->settings;
  gint64 run_delay = config_time(s->config, "queue_run_delay");
  gint64 min_gap = CLAMP(s->minimal_backoff / 4, 1, MAX(run_delay, 1));
  gint64 when = MIN(q->deferred_next, q->deferred_last_scan + run_delay);

  when = MAX(when, q->deferred_last_scan + min_gap);
  sd_event_source_set_time(q->deferred_timer, (guint64) when * G_USEC_PER_SEC);
  sd_event_source_set_enabled(q->deferred_timer, SD_EVENT_ONESHOT);
}

void
qmgr_queue_scan_deferred(Qmgr *q)
{
  g_autoptr(GArray) mtimes = NULL;
  g_autoptr(GPtrArray) names = qmgr_queue_list(q, QUEUE_DEFERRED, &mtimes);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC, next = G_MAXINT64;

  q->deferred_backlog = FALSE;
  for (guint i = 0; names && i < names->len; i++) {
    gint64 t = g_array_index(mtimes, gint64, i);

    if (t > now) {
      next = MIN(next, t);
    } else if (t != G_MAXINT64 && !q->deferred_backlog
               && !qmgr_scheduler_add(q, names->pdata[i], QUEUE_DEFERRED)) {
      q->deferred_backlog = TRUE;   /* due, but no room: the next scan takes it */
      next = MIN(next, now);
    }
  }
  q->deferred_next = next;
  q->deferred_last_scan = now;
  qmgr_queue_arm(q);
  qmgr_scheduler_kick(q);
}

void
qmgr_queue_note_deferred(Qmgr *q, gint64 next_try)
{
  if (next_try < q->deferred_next && q->deferred_timer) {
    q->deferred_next = next_try;
    qmgr_queue_arm(q);
  }
}

static int
qmgr_queue_on_deferred_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
  Qmgr *q = userdata;

  if (q->stopping)
    return 0;
  qmgr_queue_scan_incoming(q);
  qmgr_queue_scan_deferred(q);
  return 0;
}

static void
qmgr_queue_cleanup(Qmgr *q)
{
  gint64 age = MAX(QMGR_TEMP_MIN_AGE, 2 * config_time(q->settings->config, "smtpd_timeout"));
  guint n = queue_incoming_cleanup(q->queue_directory, age);

  if (n > 0)
    log_info("removed %u stale temporary file%s from incoming/", n, n == 1 ? "" : "s");
}

static int
qmgr_queue_on_cleanup_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
  qmgr_queue_cleanup(userdata);
  sd_event_source_set_time_relative(s, (guint64) QMGR_CLEANUP_INTERVAL * G_USEC_PER_SEC);
  sd_event_source_set_enabled(s, SD_EVENT_ON);
  return 0;
}

static int
qmgr_queue_on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  Qmgr *q = userdata;
  char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  gboolean overflow = FALSE;
  ssize_t n;

  while ((n = read(fd, buf, sizeof buf)) > 0) {
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *) p;

      if (ev->mask & IN_Q_OVERFLOW)
        overflow = TRUE;
      else if (ev->len > 0 && !q->stopping && queue_id_is_valid(ev->name)
               && !qmgr_scheduler_add(q, ev->name, QUEUE_INCOMING))
        q->incoming_backlog = TRUE;
      p += sizeof *ev + ev->len;
    }
  }
  if (overflow && !q->stopping) {
    log_warning("inotify queue overflow on incoming/, rescanning");
    qmgr_queue_scan_incoming(q);
  }
  qmgr_scheduler_kick(q);
  return 0;
}

gboolean
qmgr_queue_start(Qmgr *q, GError **error)
{
  g_autofree char *incoming = g_build_filename(q->queue_directory, "incoming", NULL);
  g_autoptr(GPtrArray) active = NULL;
  int r;

  q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (q->inotify_fd < 0 || inotify_add_watch(q->inotify_fd, incoming,
                                             IN_MOVED_TO | IN_ONLYDIR) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "inotify on %s: %s", incoming,
                g_strerror(errno));
    return FALSE;
  }
  r = sd_event_add_io(q->event, &q->inotify_source, q->inotify_fd, EPOLLIN,
                      qmgr_queue_on_inotify, q);
  if (r >= 0)
    r = sd_event_add_time(q->event, &q->deferred_timer, CLOCK_REALTIME, 0, G_USEC_PER_SEC,
                          qmgr_queue_on_deferred_timer, q);
  if (r >= 0)
    r = sd_event_add_time_relative(q->event, &q->cleanup_timer, CLOCK_MONOTONIC,
                                   (guint64) QMGR_CLEANUP_INTERVAL * G_USEC_PER_SEC,
                                   G_USEC_PER_SEC, qmgr_queue_on_cleanup_timer, q);
  if (r < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "sd-event: %s", g_strerror(-r));
    return FALSE;
  }

  qmgr_queue_cleanup(q);
  /* Left in active/ by a crash or kill: they come first. */
  active = qmgr_queue_list(q, QUEUE_ACTIVE, NULL);
  if (active && active->len > 0)
    log_info("%u message%s left in active/ from an earlier run", active->len,
             active->len == 1 ? "" : "s");
  for (guint i = 0; active && i < active->len; i++) {
    if (!qmgr_scheduler_add(q, active->pdata[i], QUEUE_ACTIVE))
      break;    /* more than QMGR_ACTIVE_LIMIT: the rest waits for a restart */
  }
  qmgr_queue_scan_incoming(q);
  qmgr_queue_scan_deferred(q);
  return TRUE;
}
