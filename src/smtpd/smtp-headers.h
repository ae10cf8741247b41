/* smtp-headers.h - the primary header block of a local submission, as
 * Postfix's cleanup(8) treats mail posted with sendmail: a pure filter
 * over decoded content (LF line ends), bytes in, bytes out.
 *
 * Bcc: and Resent-Bcc: headers (with their continuation lines) are
 * dropped; at the end of the headers a missing Message-Id:, Date: and
 * From: are added, in that order -- or Resent-Message-Id:, Resent-Date:,
 * Resent-From: when the message has a Resent- header (Postfix's
 * cleanup_missing_headers).  The headers end at the first empty line, or
 * at the first line that is neither a header ("name:" with a name of
 * printable characters, optionally followed by white space before the
 * colon) nor a continuation line; the added headers go in front of that
 * line.  A message that ends inside its headers gets them at its end.
 * Past header_size_limit bytes of headers the filter gives up and passes
 * everything through unchanged (nothing is added or dropped after that).
 * Never logs, never allocates per byte.
 */
#pragma once

#include <glib.h>

typedef struct {
  char *message_id, *date, *from;   /* values to add (without "Name: ") */
  gsize limit;                      /* header_size_limit */
  gsize header_bytes;               /* header bytes seen so far */
  GString *pending;                 /* start of a line whose name is not known yet */
  guint seen;                       /* SmtpHeaderSeen bits */
  gboolean resent;                  /* a Resent- header was seen */
  gboolean any_header;              /* at least one header line was seen */
  gboolean done;                    /* past the headers: pass through */
  gboolean at_line_start;
  gboolean name_space;               /* white space after the name, before the colon */
  gboolean dropping;                /* inside a dropped header */
} SmtpHeaderFilter;

/* Takes copies of the three values. */
void smtp_headers_init(SmtpHeaderFilter *f, gsize limit, const char *message_id,
                       const char *date, const char *from);
void smtp_headers_clear(SmtpHeaderFilter *f);

/* Filters in[0..len) and appends what is to be stored to out. */
void smtp_headers_feed(SmtpHeaderFilter *f, const char *in, gsize len, GString *out);

/* End of content: flushes a held line start, and adds the missing
 * headers when the content ended inside the header block. */
void smtp_headers_finish(SmtpHeaderFilter *f, GString *out);
