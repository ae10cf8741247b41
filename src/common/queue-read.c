/* queue-read.c - reading queue files and appending state records.
 *
 * The reader preads the envelope in small chunks, then the trailer behind
 * the content (extracted records, then state records); it never reads
 * the content itself (it may be huge).
 * Anything malformed is POSTERN_ERROR_CORRUPT, except a torn last state
 * record, which was never made durable and is ignored.  State records are
 * appended with one pwrite() and fdatasync(), after cutting off such a
 * torn record.  "W" and "Y" record that the delay notice and the success
 * notices are queued (qmgr-bounce.c).
 */
#include "queue-private.h"
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_RBUF_INITIAL  (8 * 1024)
#define QUEUE_ENVELOPE_MAX  (64 * 1024 * 1024)
#define QUEUE_TRAILER_MAX   (64 * 1024 * 1024)

static gboolean
queue_corrupt(GError **error, const char *why)
{
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CORRUPT, "corrupt queue file: %s", why);
  return FALSE;
}

/* ---- reader ---- */

static gboolean
queue_pread_all(int fd, char *buf, gsize len, gint64 offset, gsize *got)
{
  *got = 0;
  while (*got < len) {
    ssize_t n = pread(fd, buf + *got, len - *got, offset + (gint64) *got);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return FALSE;
    }
    if (n == 0)
      break;
    *got += (gsize) n;
  }
  return TRUE;
}

static gboolean
queue_parse_i64(const char *s, gint64 *out)
{
  guint64 v;
  if (!g_ascii_isdigit(*s) || !g_ascii_string_to_unsigned(s, 10, 0, G_MAXINT64, &v, NULL))
    return FALSE;
  *out = (gint64) v;
  return TRUE;
}

/* Stores a single-valued string field; duplicates are corrupt. */
static gboolean
queue_set_once(char **field, const char *value, GError **error)
{
  if (*field)
    return queue_corrupt(error, "duplicate envelope record");
  *field = g_strdup(value);
  return TRUE;
}

/* Parses one envelope record (NUL-terminated line without newline). */
static gboolean
queue_envelope_line(QueueEnvelope *env, const char *line, gboolean *have_time,
                    gboolean *have_size, GError **error)
{
  const char *v = line + 1;
  QueueRecipient *last;

  switch (line[0]) {
  case 'I':
    if (!queue_id_is_valid(v))
      return queue_corrupt(error, "bad queue id record");
    return queue_set_once(&env->queue_id, v, error);
  case 'T':
    if (*have_time || !queue_parse_i64(v, &env->arrival_us))
      return queue_corrupt(error, "bad arrival time record");
    *have_time = TRUE;
    return TRUE;
  case 'Z':
    if (*have_size || strlen(v) != QUEUE_SIZE_DIGITS || !queue_parse_i64(v, &env->content_size))
      return queue_corrupt(error, "bad content size record");
    *have_size = TRUE;
    return TRUE;
  case 'C': return queue_set_once(&env->client_name, v, error);
  case 'A': return queue_set_once(&env->client_addr, v, error);
  case 'H': return queue_set_once(&env->helo, v, error);
  case 'P': return queue_set_once(&env->protocol, v, error);
  case 'U': return queue_set_once(&env->auth_user, v, error);
  case 'S': return queue_set_once(&env->sender, v, error);
  case 'L':
    /* Flags; unknown ones are ignored so that later versions can add some. */
    if (strcmp(v, "hold") == 0)
      env->hold = TRUE;
    else if (strcmp(v, "smtputf8") == 0)
      env->smtputf8 = TRUE;
    return TRUE;
  case '>':
    return queue_set_once(&env->redirect, v, error);
  case 'e':
    return queue_set_once(&env->envid, v, error);
  case 'r':
    if (env->ret != QUEUE_RET_DEFAULT)
      return queue_corrupt(error, "duplicate envelope record");
    if (strcmp(v, "FULL") == 0)
      env->ret = QUEUE_RET_FULL;
    else if (strcmp(v, "HDRS") == 0)
      env->ret = QUEUE_RET_HDRS;
    else
      return queue_corrupt(error, "bad RET record");
    return TRUE;
  case 'R':
    queue_envelope_add_recipient(env, v, NULL);
    return TRUE;
  case 'O':
  case 'n':
  case 'o':
    if (env->recipients->len == 0)
      return queue_corrupt(error, "recipient attribute without recipient");
    last = env->recipients->pdata[env->recipients->len - 1];
    if (line[0] == 'O')
      return queue_set_once(&last->orig_address, v, error);
    if (line[0] == 'o')
      return queue_set_once(&last->orcpt, v, error);
    if (last->notify != 0 || !queue_notify_parse(v, &last->notify))
      return queue_corrupt(error, "bad NOTIFY record");
    return TRUE;
  default:
    return queue_corrupt(error, "unknown envelope record");
  }
}

/* Reads records up to "X"; sets env->content_offset. */
static gboolean
queue_read_envelope(int fd, QueueEnvelope *env, GError **error)
{
  gsize cap = QUEUE_RBUF_INITIAL, len = 0, pos = 0;
  g_autofree char *buf = g_malloc(cap);
  gboolean magic = FALSE, have_time = FALSE, have_size = FALSE;

  for (;;) {
    char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl) {
      gsize got;
      if (len >= QUEUE_ENVELOPE_MAX)
        return queue_corrupt(error, "envelope too large");
      if (len == cap) {
        cap *= 2;
        buf = g_realloc(buf, cap);
      }
      if (!queue_pread_all(fd, buf + len, cap - len, (gint64) len, &got))
        return queue_errno(error, errno, "read", "queue file");
      if (got == 0)
        return queue_corrupt(error, magic ? "truncated envelope" : "empty file");
      len += got;
      continue;
    }
    const char *line = buf + pos;
    gsize line_len = (gsize) (nl - line);
    *nl = '\0';
    pos += line_len + 1;
    if (memchr(line, '\0', line_len))
      return queue_corrupt(error, "NUL byte in envelope");
    if (!magic) {
      if (strncmp(line, QUEUE_MAGIC, strlen(QUEUE_MAGIC) - 1) != 0
          || line_len != strlen(QUEUE_MAGIC) - 1)
        return queue_corrupt(error, "bad magic line");
      magic = TRUE;
      continue;
    }
    if (line_len == 0)
      return queue_corrupt(error, "empty envelope record");
    if (line[0] == 'X' && line_len == 1)
      break;
    if (!queue_envelope_line(env, line, &have_time, &have_size, error))
      return FALSE;
  }
  if (!env->queue_id || !have_time || !have_size || !env->sender || env->recipients->len == 0)
    return queue_corrupt(error, "envelope record missing");
  env->content_offset = (gint64) pos;
  return TRUE;
}

/* Parses "<idx> <time>[ <text>]". */
static gboolean
queue_parse_state(const char *v, guint n_rcpt, guint *idx, const char **text)
{
  char *end;
  guint64 i;

  if (!g_ascii_isdigit(*v))
    return FALSE;
  i = g_ascii_strtoull(v, &end, 10);
  if (*end != ' ' || i >= n_rcpt)
    return FALSE;
  v = end + 1;
  if (!g_ascii_isdigit(*v))
    return FALSE;
  g_ascii_strtoull(v, &end, 10);
  if (*end != '\0' && *end != ' ')
    return FALSE;
  *idx = (guint) i;
  *text = *end ? end + 1 : "";
  return TRUE;
}

/* One extracted record (written by the writer behind the content, before
 * any state record): a flag, the redirect address (the last one wins) or
 * one more recipient with its original address. */
static gboolean
queue_extracted_line(QueueEnvelope *env, const char *line, GError **error)
{
  const char *v = line + 1;
  QueueRecipient *last;

  switch (line[0]) {
  case 'L':
    if (strcmp(v, "hold") == 0)
      env->hold = TRUE;
    return TRUE;
  case '>':
    if (*v == '\0')
      return queue_corrupt(error, "empty redirect record");
    g_free(env->redirect);
    env->redirect = g_strdup(v);
    return TRUE;
  case 'R':
    queue_envelope_add_recipient(env, v, NULL);
    return TRUE;
  case 'O':
    last = env->recipients->pdata[env->recipients->len - 1];
    return queue_set_once(&last->orig_address, v, error);
  default:
    return queue_corrupt(error, "bad state record");
  }
}

/* Reads the extracted and state records behind the content. */
static gboolean
queue_read_trailer(int fd, QueueEnvelope *env, GError **error)
{
  struct stat st;
  gint64 start;
  gsize got;
  guint n_rcpt = 0;
  guint attempts = 0;

  if (fstat(fd, &st) < 0)
    return queue_errno(error, errno, "fstat", "queue file");
  if (env->content_size > (gint64) st.st_size)
    return queue_corrupt(error, "truncated content");
  start = env->content_offset + env->content_size;
  if ((gint64) st.st_size - start < 2)
    return queue_corrupt(error, "truncated content");
  if ((gint64) st.st_size - start > QUEUE_TRAILER_MAX)
    return queue_corrupt(error, "too many state records");
  gsize len = (gsize) (st.st_size - start);
  g_autofree char *buf = g_malloc(len + 1);
  g_autofree guint *deferrals = NULL;   /* once the extracted records are over */
  if (!queue_pread_all(fd, buf, len, start, &got))
    return queue_errno(error, errno, "read", "queue file");
  if (got < 2 || memcmp(buf, QUEUE_END_MARK, 2) != 0)
    return queue_corrupt(error, "content size does not match");
  len = got;
  buf[len] = '\0';

  for (gsize pos = 2; pos < len;) {
    char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl)
      break;   /* torn last record: never made durable, ignored */
    char *line = buf + pos;
    gsize line_len = (gsize) (nl - line);
    const char *text;
    guint idx;
    gint64 t;
    *nl = '\0';
    pos += line_len + 1;
    if (line_len == 0 || memchr(line, '\0', line_len))
      return queue_corrupt(error, "bad state record");
    if (strchr("L>RO", line[0]) != NULL) {
      if (deferrals != NULL)
        return queue_corrupt(error, "extracted record after a state record");
      if (!queue_extracted_line(env, line, error))
        return FALSE;
      continue;
    }
    if (deferrals == NULL) {
      n_rcpt = env->recipients->len;
      deferrals = g_new0(guint, n_rcpt);
    }
    if (line[0] == 'N') {
      if (!queue_parse_i64(line + 1, &t))
        return queue_corrupt(error, "bad attempt record");
      attempts++;
      continue;
    }
    if (line[0] == 'K') {
      if (!queue_parse_i64(line + 1, &t))
        return queue_corrupt(error, "bad hold record");
      env->hold_done = TRUE;
      continue;
    }
    if (line[0] == 'W') {
      if (!queue_parse_i64(line + 1, &t))
        return queue_corrupt(error, "bad delay notice record");
      env->delay_warned = TRUE;
      continue;
    }
    if (line[0] == 'Y') {
      /* the success notices of the deliveries before it are queued */
      if (!queue_parse_i64(line + 1, &t))
        return queue_corrupt(error, "bad success notice record");
      for (guint i = 0; i < n_rcpt; i++)
        ((QueueRecipient *) env->recipients->pdata[i])->success_due = FALSE;
      continue;
    }
    if ((line[0] != 'D' && line[0] != 'B' && line[0] != 'F')
        || !queue_parse_state(line + 1, n_rcpt, &idx, &text))
      return queue_corrupt(error, "bad state record");
    QueueRecipient *r = env->recipients->pdata[idx];
    if (line[0] == 'F') {
      deferrals[idx]++;
      if (r->state != RCPT_PENDING)
        continue;
    } else if (r->state == RCPT_PENDING) {
      r->state = line[0] == 'D' ? RCPT_DELIVERED : RCPT_BOUNCED;
      r->success_due = r->state == RCPT_DELIVERED && (r->notify & QUEUE_NOTIFY_SUCCESS);
    } else {
      continue;  /* a final state is never changed */
    }
    g_free(r->status);
    r->status = g_strdup(text);
  }
  /* An attempt is an N record; deferrals also count, once per attempt
   * (the most-deferred recipient was deferred in every attempt). */
  for (guint i = 0; deferrals != NULL && i < n_rcpt; i++)
    attempts = MAX(attempts, deferrals[i]);
  env->attempts = attempts;
  return TRUE;
}

QueueEnvelope *
queue_file_read(int fd, GError **error)
{
  g_autoptr(QueueEnvelope) env = queue_envelope_new();

  if (!queue_read_envelope(fd, env, error) || !queue_read_trailer(fd, env, error))
    return NULL;
  return g_steal_pointer(&env);
}

/* ---- state records ---- */

/* Cuts off a torn last record so the next one starts on a fresh line.
 * The trailer always begins with "E\n", so the search never reaches into
 * the content. */
static gboolean
queue_file_untear(int fd, gint64 *size, GError **error)
{
  char chunk[512];
  gint64 end = *size;
  gsize got;

  if (end == 0 || !queue_pread_all(fd, chunk, 1, end - 1, &got))
    return end == 0 ? queue_corrupt(error, "empty file") : queue_errno(error, errno, "read", "queue file");
  if (got == 1 && chunk[0] == '\n')
    return TRUE;
  while (end > 0) {
    gsize n = (gsize) MIN((gint64) sizeof chunk, end);
    if (!queue_pread_all(fd, chunk, n, end - (gint64) n, &got) || got != n)
      return queue_errno(error, errno ? errno : EIO, "read", "queue file");
    char *nl = memrchr(chunk, '\n', n);
    if (nl) {
      *size = end - (gint64) n + (nl - chunk) + 1;
      if (ftruncate(fd, *size) < 0)
        return queue_errno(error, errno, "truncate", "queue file");
      return TRUE;
    }
    end -= (gint64) n;
  }
  return queue_corrupt(error, "no line end in file");
}

/* Appends one record with a single write and makes it durable. */
static gboolean
queue_file_append(int fd, const char *line, gsize len, GError **error)
{
  struct stat st;
  gint64 size;

  if (fstat(fd, &st) < 0)
    return queue_errno(error, errno, "fstat", "queue file");
  size = st.st_size;
  if (!queue_file_untear(fd, &size, error))
    return FALSE;
  ssize_t n;
  do
    n = pwrite(fd, line, len, size);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t) len) {
    int err = n < 0 ? errno : ENOSPC;
    if (ftruncate(fd, size) < 0) {
      /* the torn record is ignored by readers and cut by the next append */
    }
    return queue_errno(error, err, "write", "queue file");
  }
  if (fdatasync(fd) < 0)
    return queue_errno(error, errno, "fdatasync", "queue file");
  return TRUE;
}

gboolean
queue_file_record(int fd, guint rcpt_index, RcptState state, const char *status, GError **error)
{
  const char type = state == RCPT_DELIVERED ? 'D' : state == RCPT_BOUNCED ? 'B' : 'F';
  g_autofree char *line = NULL;

  if (!status)
    status = "";
  if (!queue_field_ok(status)) {
    g_set_error_literal(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                        "queue state record: status contains a line break");
    return FALSE;
  }
  line = g_strdup_printf("%c%u %" G_GINT64_FORMAT " %s\n", type, rcpt_index,
                         g_get_real_time() / G_USEC_PER_SEC, status);
  return queue_file_append(fd, line, strlen(line), error);
}

/* Appends a record that carries only a time stamp ("N", "K"). */
static gboolean
queue_file_record_time(int fd, char type, GError **error)
{
  char line[40];
  int len = g_snprintf(line, sizeof line, "%c%" G_GINT64_FORMAT "\n", type,
                       g_get_real_time() / G_USEC_PER_SEC);
  return queue_file_append(fd, line, (gsize) len, error);
}

gboolean
queue_file_record_held(int fd, GError **error)
{
  return queue_file_record_time(fd, 'K', error);
}

gboolean
queue_file_record_attempt(int fd, GError **error)
{
  return queue_file_record_time(fd, 'N', error);
}

gboolean
queue_file_record_delay_warned(int fd, GError **error)
{
  return queue_file_record_time(fd, 'W', error);
}

gboolean
queue_file_record_success_notified(int fd, GError **error)
{
  return queue_file_record_time(fd, 'Y', error);
}
