/* log.h - Postfix-style log lines with structured journal fields.
 *
 * With a journal (JOURNAL_STREAM names our stderr, or the journal socket
 * exists and stderr is not a terminal/file we were told to use) lines go
 * to journald with POSTERN_* fields; otherwise they are written to stderr
 * as "program[pid]: QUEUEID: message".  Only daemons log; library code
 * returns GError instead.
 */
#pragma once

#include <glib.h>
#include <syslog.h>

typedef struct {
  const char *name;   /* e.g. "POSTERN_QUEUE_ID" */
  const char *value;  /* NULL = field omitted */
} LogField;

/* program: "postern-smtpd" etc.  force_stderr: never use the journal
 * (also forced by POSTERN_LOG_STDERR=1 in the environment). */
void log_init(const char *program, gboolean force_stderr);

/* Debug lines are dropped unless enabled (-v or POSTERN_DEBUG=1). */
void log_set_debug(gboolean enabled);
gboolean log_debug_enabled(void);

/* One log line.  queue_id may be NULL; it prefixes MESSAGE like Postfix
 * ("3F9C...: to=<...>") and becomes POSTERN_QUEUE_ID.  fields adds more
 * POSTERN_* fields (n_fields may be 0). */
void log_send(int priority, const char *queue_id, const LogField *fields, gsize n_fields,
              const char *fmt, ...) G_GNUC_PRINTF(5, 6);

#define log_info(...)  log_send(LOG_INFO, NULL, NULL, 0, __VA_ARGS__)
#define log_notice(...) log_send(LOG_NOTICE, NULL, NULL, 0, __VA_ARGS__)
#define log_warning(...) log_send(LOG_WARNING, NULL, NULL, 0, __VA_ARGS__)
#define log_error(...) log_send(LOG_ERR, NULL, NULL, 0, __VA_ARGS__)
#define log_debug(...) do { if (log_debug_enabled()) log_send(LOG_DEBUG, NULL, NULL, 0, __VA_ARGS__); } while (0)
#define log_qid(prio, qid, ...) log_send((prio), (qid), NULL, 0, __VA_ARGS__)
