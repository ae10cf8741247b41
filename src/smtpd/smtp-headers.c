/* smtp-headers.c - Bcc: removal and missing Message-Id:/Date:/From: for
 * local submissions (see smtp-headers.h).  Pure: no I/O, no logging.
 */
#include <string.h>

#include "smtp-headers.h"

/* Longest header name we wait for before calling the line "not a header". */
#define NAME_MAX_BYTES 998

enum {
  SEEN_MESSAGE_ID = 1 << 0,
  SEEN_DATE = 1 << 1,
  SEEN_FROM = 1 << 2,
  SEEN_RESENT_MESSAGE_ID = 1 << 3,
  SEEN_RESENT_DATE = 1 << 4,
  SEEN_RESENT_FROM = 1 << 5,
};

/* Postfix's HDR_OPT_RR headers: any of them makes the message "resent". */
static const char *const resent_names[] = {
  "resent-bcc", "resent-cc", "resent-date", "resent-from", "resent-message-id",
  "resent-reply-to", "resent-sender", "resent-to",
};

void
smtp_headers_init(SmtpHeaderFilter *f, gsize limit, const char *message_id, const char *date,
                  const char *from)
{
  memset(f, 0, sizeof *f);
  f->message_id = g_strdup(message_id);
  f->date = g_strdup(date);
  f->from = g_strdup(from);
  f->limit = limit;
  f->pending = g_string_sized_new(64);
  f->at_line_start = TRUE;
}

void
smtp_headers_clear(SmtpHeaderFilter *f)
{
  g_free(f->message_id);
  g_free(f->date);
  g_free(f->from);
  if (f->pending != NULL)
    g_string_free(f->pending, TRUE);
  memset(f, 0, sizeof *f);
}

/* The header block is over: the missing headers, then pass-through. */
static void
headers_end(SmtpHeaderFilter *f, GString *out)
{
  const char *prefix = f->resent ? "Resent-" : "";
  guint msgid = f->resent ? SEEN_RESENT_MESSAGE_ID : SEEN_MESSAGE_ID;
  guint date = f->resent ? SEEN_RESENT_DATE : SEEN_DATE;
  guint from = f->resent ? SEEN_RESENT_FROM : SEEN_FROM;

  f->done = TRUE;
  if ((f->seen & msgid) == 0)
    g_string_append_printf(out, "%sMessage-Id: %s\n", prefix, f->message_id);
  if ((f->seen & date) == 0)
    g_string_append_printf(out, "%sDate: %s\n", prefix, f->date);
  if ((f->seen & from) == 0)
    g_string_append_printf(out, "%sFrom: %s\n", prefix, f->from);
}

/* Gives up (header_size_limit): what is held goes out as it is. */
static void
headers_give_up(SmtpHeaderFilter *f, GString *out)
{
  f->done = TRUE;
  if (!f->dropping)
    g_string_append_len(out, f->pending->str, f->pending->len);
  g_string_truncate(f->pending, 0);
}

/* pending holds "Name:" (maybe "Name :"): remember what it is. */
static void
headers_classify(SmtpHeaderFilter *f)
{
  gsize n = f->pending->len - 1;   /* without the colon */
  while (n > 0 && (f->pending->str[n - 1] == ' ' || f->pending->str[n - 1] == '\t'))
    n--;
  g_autofree char *name = g_ascii_strdown(f->pending->str, n);
  static const struct {
    const char *name;
    guint bit;
  } known[] = {
    { "message-id", SEEN_MESSAGE_ID },
    { "date", SEEN_DATE },
    { "from", SEEN_FROM },
    { "resent-message-id", SEEN_RESENT_MESSAGE_ID },
    { "resent-date", SEEN_RESENT_DATE },
    { "resent-from", SEEN_RESENT_FROM },
  };
  f->any_header = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(known); i++)
    if (strcmp(name, known[i].name) == 0)
      f->seen |= known[i].bit;
  for (guint i = 0; i < G_N_ELEMENTS(resent_names); i++)
    if (strcmp(name, resent_names[i]) == 0)
      f->resent = TRUE;
  f->dropping = strcmp(name, "bcc") == 0 || strcmp(name, "resent-bcc") == 0;
}

/* One byte of a line start whose name is being collected.  Returns FALSE
 * when the line turned out not to be a header (the block is over; the
 * byte is not consumed). */
static gboolean
headers_name_byte(SmtpHeaderFilter *f, char c, GString *out)
{
  if (c == ':' && f->pending->len > 0) {
    g_string_append_c(f->pending, c);
    headers_classify(f);
    if (!f->dropping)
      g_string_append_len(out, f->pending->str, f->pending->len);
    g_string_truncate(f->pending, 0);
    f->at_line_start = FALSE;
    f->name_space = FALSE;
    return TRUE;
  }
  if (c == ' ' || c == '\t') {
    f->name_space = TRUE;
  } else if ((guchar) c < 33 || (guchar) c > 126 || c == ':' || f->name_space ||
             f->pending->len >= NAME_MAX_BYTES) {
    headers_end(f, out);
    g_string_append_len(out, f->pending->str, f->pending->len);
    g_string_truncate(f->pending, 0);
    return FALSE;
  }
  g_string_append_c(f->pending, c);
  return TRUE;
}

void
smtp_headers_feed(SmtpHeaderFilter *f, const char *in, gsize len, GString *out)
{
  gsize i = 0;
  while (i < len) {
    if (f->done) {
      g_string_append_len(out, in + i, len - i);
      return;
    }
    if (f->limit > 0 && f->header_bytes > f->limit) {
      headers_give_up(f, out);
      continue;
    }
    char c = in[i];
    if (f->at_line_start && f->pending->len == 0) {
      if (c == '\n') {
        headers_end(f, out);   /* the empty line ends the block */
        continue;
      }
      if (c == ' ' || c == '\t') {
        if (!f->any_header) {
          headers_end(f, out);   /* a continuation of nothing: body */
          continue;
        }
        f->at_line_start = FALSE;   /* continuation: kept or dropped with its header */
      } else {
        f->dropping = FALSE;
        if (headers_name_byte(f, c, out)) {
          i++;
          f->header_bytes++;
        }
        continue;
      }
    } else if (f->at_line_start) {
      if (headers_name_byte(f, c, out)) {
        i++;
        f->header_bytes++;
      }
      continue;
    }
    const char *nl = memchr(in + i, '\n', len - i);
    gsize n = nl != NULL ? (gsize)(nl - (in + i)) + 1 : len - i;
    if (!f->dropping)
      g_string_append_len(out, in + i, n);
    f->header_bytes += n;
    i += n;
    if (nl != NULL)
      f->at_line_start = TRUE;
  }
}

void
smtp_headers_finish(SmtpHeaderFilter *f, GString *out)
{
  if (f->done)
    return;
  if (f->pending->len > 0) {
    /* An unfinished line start at the end: not a header. */
    headers_end(f, out);
    g_string_append_len(out, f->pending->str, f->pending->len);
    g_string_truncate(f->pending, 0);
    return;
  }
  headers_end(f, out);
}
