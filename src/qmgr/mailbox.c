/* mailbox.c - what the mailbox writers share: the prepended headers, the
 * From_ line, and the streaming copy of the content out of the queue
 * file (64 KiB preads, never the whole message in memory).
 */
#include "mailbox.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MAILBOX_CHUNK (64 * 1024)

void
mailbox_append_headers(GString *out, const MailboxMessage *msg)
{
  g_autofree char *delivered = g_ascii_strdown(msg->delivered_to, -1);

  /* Postfix's mail_copy() order: Return-Path, X-Original-To, Delivered-To. */
  g_string_append_printf(out, "Return-Path: <%s>\n", msg->sender);
  g_string_append_printf(out, "X-Original-To: %s\n", msg->orig_rcpt);
  g_string_append_printf(out, "Delivered-To: %s\n", delivered);
}

void
mailbox_append_from_line(GString *out, const char *sender, time_t when)
{
  struct tm tm;
  char date[64];

  /* asctime() layout, 24 characters, as Postfix: "From %s  %.24s". */
  localtime_r(&when, &tm);
  strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
  g_string_append_printf(out, "From %s  %.24s\n", *sender ? sender : "MAILER-DAEMON", date);
}

/* Maps a write errno to our error codes: a full mailbox is permanent
 * (5.2.2 as Postfix), everything else is worth another try. */
static int
mailbox_write_code(int err)
{
  return (err == EFBIG || err == EDQUOT) ? POSTERN_ERROR_FAILED : POSTERN_ERROR_TEMPORARY;
}

static gboolean
mailbox_write_all(int fd, const char *data, gsize len, GError **error)
{
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_set_error(error, POSTERN_ERROR, mailbox_write_code(errno),
                  "error writing message: %s", g_strerror(errno));
      return FALSE;
    }
    data += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* Writes out the buffered bytes, counting them against the limit. */
static gboolean
mailbox_flush(int fd, GString *out, gint64 *written, gint64 max_bytes, GError **error)
{
  if (max_bytes >= 0 && *written + (gint64) out->len > max_bytes) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED,
                "error writing message: %s", g_strerror(EFBIG));
    return FALSE;
  }
  if (!mailbox_write_all(fd, out->str, out->len, error))
    return FALSE;
  *written += (gint64) out->len;
  g_string_truncate(out, 0);
  return TRUE;
}

/* Adds the CRLF-form size of s[0..len) to *wire; *prev carries the last
 * byte across calls. */
static void
mailbox_count_wire(const char *s, gsize len, char *prev, gint64 *wire)
{
  for (gsize i = 0; i < len; i++) {
    if (s[i] == '\n' && *prev != '\r')
      (*wire)++;
    (*wire)++;
    *prev = s[i];
  }
}

gboolean
mailbox_copy(int out_fd, GString *out, const MailboxMessage *msg, gboolean mbox,
             gint64 max_bytes, gint64 *wire_size, GError **error)
{
  char wire_prev = '\n';
  gint64 wire = 0;
  g_autofree char *buf = g_malloc(MAILBOX_CHUNK + 8);
  gint64 pos = msg->offset, left = msg->size, written = 0;
  gsize have = 0;
  gboolean bol = TRUE;          /* at the beginning of a line */
  char last = '\n';

  while (left > 0 || have > 0) {
    gsize i = 0;

    if (left > 0) {
      ssize_t n = pread(msg->fd, buf + have, (gsize) MIN(left, MAILBOX_CHUNK), pos);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "error reading queue file: %s",
                    n < 0 ? g_strerror(errno) : "unexpected end of file");
        return FALSE;
      }
      have += (gsize) n;
      pos += n;
      left -= n;
    }
    while (i < have) {
      const char *nl;
      gsize end;

      if (mbox && bol) {
        /* Need five bytes to tell "From " apart; wait for more input. */
        if (have - i < 5 && left > 0)
          break;
        if (have - i >= 5 && memcmp(buf + i, "From ", 5) == 0)
          g_string_append_c(out, '>');
      }
      nl = memchr(buf + i, '\n', have - i);
      end = nl ? (gsize) (nl - buf) + 1 : have;
      g_string_append_len(out, buf + i, (gssize) (end - i));
      bol = nl != NULL;
      i = end;
    }
    if (i > 0)
      last = buf[i - 1];
    memmove(buf, buf + i, have - i);
    have -= i;
    if (out->len >= MAILBOX_CHUNK) {
      if (wire_size)
        mailbox_count_wire(out->str, out->len, &wire_prev, &wire);
      if (!mailbox_flush(out_fd, out, &written, max_bytes, error))
        return FALSE;
    }
  }
  if (last != '\n')
    g_string_append_c(out, '\n');
  if (mbox)
    g_string_append_c(out, '\n');
  if (wire_size) {
    mailbox_count_wire(out->str, out->len, &wire_prev, &wire);
    *wire_size = wire;
  }
  return mailbox_flush(out_fd, out, &written, max_bytes, error);
}
