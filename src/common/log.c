/* log.c - one log line, to journald with POSTERN_* fields or to stderr.
 *
 * The decision is made once in log_init(): journald when stderr already
 * is the journal (JOURNAL_STREAM names it) or the journal socket exists,
 * stderr otherwise or when POSTERN_LOG_STDERR=1 (a forced stderr that is
 * the journal's stream gets "<priority>" prefixes instead of a stamp).  sd_journal_send()
 * silently drops lines when no journald listens, so we never rely on it
 * blindly.  Every line is a single write(), so threads may log.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define LOG_LINE_MAX 8192

static const char *log_program = "postern";
static gboolean log_to_journal;
static gboolean log_stream_prefix;  /* stderr is the journal's stream: "<N>message" */
static gboolean log_debug_on;

/* TRUE when JOURNAL_STREAM ("dev:ino") describes our stderr. */
static gboolean
stderr_is_journal(void)
{
  const char *js = g_getenv("JOURNAL_STREAM");
  struct stat st;
  unsigned long long dev, ino;

  if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
    return FALSE;
  if (fstat(STDERR_FILENO, &st) < 0)
    return FALSE;
  return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void
log_init(const char *program, gboolean force_stderr)
{
  const char *env = g_getenv("POSTERN_LOG_STDERR");

  log_program = program;
  log_stream_prefix = FALSE;
  if (force_stderr || (env != NULL && g_strcmp0(env, "0") != 0)) {
    log_to_journal = FALSE;
    /* A daemon's child that cannot share the journal connection: its
     * lines go through the stream with their priority, not a second
     * time stamp and name. */
    log_stream_prefix = force_stderr && stderr_is_journal();
  }
  else
    log_to_journal = stderr_is_journal()
      || access("/run/systemd/journal/socket", W_OK) == 0;
  env = g_getenv("POSTERN_DEBUG");
  if (env != NULL && g_strcmp0(env, "0") != 0)
    log_debug_on = TRUE;
}

void
log_set_debug(gboolean enabled)
{
  log_debug_on = enabled;
}

gboolean
log_debug_enabled(void)
{
  return log_debug_on;
}

static const char *
level_prefix(int priority)
{
  switch (priority) {
  case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: return "fatal: ";
  case LOG_ERR: return "error: ";
  case LOG_WARNING: return "warning: ";
  case LOG_DEBUG: return "debug: ";
  default: return "";
  }
}

static void
log_to_stderr(int priority, const char *queue_id, const char *msg)
{
  char line[LOG_LINE_MAX];
  char stamp[32];
  struct timespec ts;
  struct tm tm;
  int n;

  if (log_stream_prefix) {
    n = snprintf(line, sizeof line - 1, "<%d>%s%s%s%s", priority, level_prefix(priority),
                 queue_id ? queue_id : "", queue_id ? ": " : "", msg);
  } else {
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    n = snprintf(line, sizeof line - 1, "%s.%03ld %s[%d]: %s%s%s%s", stamp, ts.tv_nsec / 1000000,
                 log_program, (int) getpid(), level_prefix(priority),
                 queue_id ? queue_id : "", queue_id ? ": " : "", msg);
  }
  if (n < 0)
    return;
  if ((gsize) n > sizeof line - 2)
    n = sizeof line - 2;
  line[n++] = '\n';
  /* One write per line; a short write to a pipe this small does not happen. */
  while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
    ;
}

static void
log_to_journald(int priority, const char *queue_id, const LogField *fields, gsize n_fields,
                const char *msg)
{
  struct iovec iov[24];
  g_autofree char *m = NULL, *p = NULL, *id = NULL, *q = NULL;
  char *extra[16];
  gsize n = 0, n_extra = 0;

  m = queue_id ? g_strdup_printf("MESSAGE=%s%s: %s", level_prefix(priority), queue_id, msg)
               : g_strdup_printf("MESSAGE=%s%s", level_prefix(priority), msg);
  p = g_strdup_printf("PRIORITY=%d", priority);
  id = g_strdup_printf("SYSLOG_IDENTIFIER=%s", log_program);
  iov[n++] = (struct iovec) { m, strlen(m) };
  iov[n++] = (struct iovec) { p, strlen(p) };
  iov[n++] = (struct iovec) { id, strlen(id) };
  if (queue_id) {
    q = g_strdup_printf("POSTERN_QUEUE_ID=%s", queue_id);
    iov[n++] = (struct iovec) { q, strlen(q) };
  }
  for (gsize i = 0; i < n_fields && n_extra < G_N_ELEMENTS(extra); i++) {
    if (fields[i].value == NULL)
      continue;
    extra[n_extra] = g_strdup_printf("%s=%s", fields[i].name, fields[i].value);
    iov[n++] = (struct iovec) { extra[n_extra], strlen(extra[n_extra]) };
    n_extra++;
  }
  if (sd_journal_sendv(iov, (int) n) < 0)
    log_to_stderr(priority, queue_id, msg);
  for (gsize i = 0; i < n_extra; i++)
    g_free(extra[i]);
}

void
log_send(int priority, const char *queue_id, const LogField *fields, gsize n_fields,
         const char *fmt, ...)
{
  char msg[LOG_LINE_MAX];
  va_list ap;
  int saved_errno = errno;

  if (priority == LOG_DEBUG && !log_debug_on)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (log_to_journal)
    log_to_journald(priority, queue_id, fields, n_fields, msg);
  else
    log_to_stderr(priority, queue_id, msg);
  errno = saved_errno;
}
