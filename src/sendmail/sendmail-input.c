/* sendmail-input.c - reading the message on stdin as Postfix's sendmail
 * does: LF or CRLF line ends (sendmail_fix_line_endings), leading From_
 * lines dropped, a line with only "." ending the input unless -i/-oi,
 * NULs and bare CRs kept as data.  Then the header block, read ahead of
 * the SMTP transaction so that -t can take its recipients from To:,
 * Cc: and Bcc: (or only Resent-To:, Resent-Cc:, Resent-Bcc: once one of
 * those appears, as Postfix), and so that a From: with the full name can
 * be added when the message has none.  No output, no logging.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "sendmail.h"

gboolean
sendmail_cr_mode_parse(const char *text, SendmailCrMode *mode)
{
  if (strcmp(text, "always") == 0)
    *mode = SENDMAIL_CR_ALWAYS;
  else if (strcmp(text, "strict") == 0)
    *mode = SENDMAIL_CR_STRICT;
  else if (strcmp(text, "never") == 0)
    *mode = SENDMAIL_CR_NEVER;
  else
    return FALSE;
  return TRUE;
}

void
sendmail_input_init(SendmailInput *in, FILE *fp, gboolean dot_ends, SendmailCrMode mode)
{
  memset(in, 0, sizeof *in);
  in->fp = fp;
  in->dot_ends = dot_ends;
  in->cr_mode = mode;
  in->skip_from = TRUE;
}

void
sendmail_input_clear(SendmailInput *in)
{
  free(in->buf);   /* getline's */
  in->buf = NULL;
  in->cap = 0;
}

gboolean
sendmail_input_line(SendmailInput *in, GString *line, GError **error)
{
  for (;;) {
    if (in->ended)
      return FALSE;
    errno = 0;
    ssize_t n = getline(&in->buf, &in->cap, in->fp);
    if (n < 0) {
      in->ended = TRUE;
      if (ferror(in->fp)) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "error reading input: %s",
                    g_strerror(errno != 0 ? errno : EIO));
      }
      return FALSE;
    }
    gboolean nl = n > 0 && in->buf[n - 1] == '\n';
    if (nl)
      n--;
    if (nl && in->cr_mode == SENDMAIL_CR_STRICT)   /* decided by the first line */
      in->cr_mode = n > 0 && in->buf[n - 1] == '\r' ? SENDMAIL_CR_ALWAYS : SENDMAIL_CR_NEVER;
    if (in->skip_from) {
      /* "From " and ">From " lines at the top are mbox separators, not
       * message content (Postfix drops them too). */
      if (nl) {
        const char *p = in->buf;
        gsize left = n;
        while (left > 0 && *p == '>') {
          p++;
          left--;
        }
        if (left >= 5 && memcmp(p, "From ", 5) == 0)
          continue;
      }
      in->skip_from = FALSE;
    }
    if (nl && in->cr_mode == SENDMAIL_CR_ALWAYS)
      while (n > 0 && in->buf[n - 1] == '\r')
        n--;
    if (in->dot_ends && n == 1 && in->buf[0] == '.') {
      in->ended = TRUE;
      return FALSE;
    }
    g_string_truncate(line, 0);
    g_string_append_len(line, in->buf, n);
    return TRUE;
  }
}

static void
string_free(gpointer p)
{
  g_string_free(p, TRUE);
}

void
sendmail_headers_clear(SendmailHeaders *h)
{
  g_clear_pointer(&h->lines, g_ptr_array_unref);
  if (h->first_body_line != NULL)
    g_string_free(h->first_body_line, TRUE);
  h->first_body_line = NULL;
  g_clear_pointer(&h->recipients, g_ptr_array_unref);
}

/* Length of the name of a header line ("Name:" or "Name :"), or 0 when
 * the line is not a header (Postfix's is_header()). */
static gsize
header_name_len(const GString *line)
{
  gsize n = 0;
  while (n < line->len && (guchar) line->str[n] > 32 && (guchar) line->str[n] < 127 &&
         line->str[n] != ':')
    n++;
  if (n == 0)
    return 0;
  gsize i = n;
  while (i < line->len && (line->str[i] == ' ' || line->str[i] == '\t'))
    i++;
  return i < line->len && line->str[i] == ':' ? n : 0;
}

/* Postfix's HDR_OPT_RR headers. */
static gboolean
header_is_resent(const char *name)
{
  static const char *const names[] = {
    "resent-bcc", "resent-cc", "resent-date", "resent-from", "resent-message-id",
    "resent-reply-to", "resent-sender", "resent-to",
  };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    if (strcmp(name, names[i]) == 0)
      return TRUE;
  return FALSE;
}

typedef struct {
  gboolean extract;
  gboolean seen_from, seen_resent_from;
  gboolean rcpt_resent;       /* a Resent- recipient header was seen */
  GPtrArray *regular, *resent; /* char*: addresses */
} HeaderScan;

/* One complete header (continuations joined with "\n"). */
static void
header_done(HeaderScan *scan, SendmailHeaders *h, const char *name, const char *value)
{
  if (strcmp(name, "from") == 0)
    scan->seen_from = TRUE;
  else if (strcmp(name, "resent-from") == 0)
    scan->seen_resent_from = TRUE;
  if (header_is_resent(name))
    h->resent = TRUE;
  if (!scan->extract)
    return;
  gboolean regular = strcmp(name, "to") == 0 || strcmp(name, "cc") == 0 ||
                     strcmp(name, "bcc") == 0;
  gboolean resent = strcmp(name, "resent-to") == 0 || strcmp(name, "resent-cc") == 0 ||
                    strcmp(name, "resent-bcc") == 0;
  if (!resent && !(regular && !scan->rcpt_resent))
    return;
  if (resent)
    scan->rcpt_resent = TRUE;
  g_autoptr(GPtrArray) addrs = sendmail_addr_list(value);
  GPtrArray *to = resent ? scan->resent : scan->regular;
  for (guint i = 0; i < addrs->len; i++)
    g_ptr_array_add(to, g_strdup(addrs->pdata[i]));
}

gboolean
sendmail_headers_read(SendmailInput *in, gsize limit, gboolean extract, SendmailHeaders *h,
                      GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GString) line = g_string_new(NULL);
  g_autoptr(GString) value = g_string_new(NULL);
  g_autofree char *name = NULL;
  HeaderScan scan = { .extract = extract };
  gsize bytes = 0;

  memset(h, 0, sizeof *h);
  h->lines = g_ptr_array_new_with_free_func(string_free);
  scan.regular = g_ptr_array_new_with_free_func(g_free);
  scan.resent = g_ptr_array_new_with_free_func(g_free);
  while (sendmail_input_line(in, line, &local)) {
    if (line->len == 0) {
      h->blank_line = TRUE;
      break;
    }
    gsize n;
    if ((line->str[0] == ' ' || line->str[0] == '\t') && name != NULL) {
      g_string_append_c(value, '\n');
      g_string_append_len(value, line->str, line->len);
    } else if ((n = header_name_len(line)) > 0) {
      if (name != NULL)
        header_done(&scan, h, name, value->str);
      g_free(name);
      name = g_ascii_strdown(line->str, n);
      const char *colon = memchr(line->str, ':', line->len);
      g_string_assign(value, colon + 1);
    } else {
      h->first_body_line = g_string_new_len(line->str, line->len);
      break;
    }
    g_ptr_array_add(h->lines, g_string_new_len(line->str, line->len));
    bytes += line->len + 1;
    if (limit > 0 && bytes > limit) {
      h->truncated = TRUE;
      break;
    }
  }
  if (local != NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    g_ptr_array_unref(scan.regular);
    g_ptr_array_unref(scan.resent);
    return FALSE;
  }
  if (name != NULL)
    header_done(&scan, h, name, value->str);
  h->has_from = h->resent ? scan.seen_resent_from : scan.seen_from;
  if (scan.rcpt_resent) {
    h->recipients = scan.resent;
    g_ptr_array_unref(scan.regular);
  } else {
    h->recipients = scan.regular;
    g_ptr_array_unref(scan.resent);
  }
  return TRUE;
}
