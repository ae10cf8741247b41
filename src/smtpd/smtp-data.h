/* smtp-data.h - the DATA phase decoder: a pure state machine.
 *
 * Bytes from the client in, message content out: CRLF becomes LF, a
 * leading dot is removed (dot-unstuffing), and only CRLF "." CRLF ends
 * the message.  In strict mode (smtpd_forbid_bare_newline = yes) a bare
 * LF or a bare CR stops decoding with an event, so that "\n.\n" can never
 * end one message and smuggle in a second.  In normalize mode a bare LF
 * ends a content line and a bare CR is kept as data, but the end of DATA
 * still needs CRLF "." CRLF (Postfix's "normalize").  Content lines of
 * any length are accepted (as Postfix, which keeps long lines); callers
 * bound the message size.
 */
#pragma once

#include <glib.h>

typedef enum {
  SMTP_DATA_MORE,      /* all input used; feed more */
  SMTP_DATA_END,       /* end of data seen; bytes after *consumed are commands */
  SMTP_DATA_BARE_LF,   /* strict mode: bare LF at in[*consumed] */
  SMTP_DATA_BARE_CR,   /* strict mode: bare CR before in[*consumed] */
} SmtpDataStatus;

/* Extra output room beyond the input length that a call may need (a CR
 * held back from the previous call is released). */
#define SMTP_DATA_OUT_SLACK 2

typedef struct {
  guint8 state;
  gboolean normalize;
  gboolean prev_crlf;   /* the previous line ended in CRLF (or none yet) */
} SmtpDataDecoder;

void smtp_data_init(SmtpDataDecoder *dec, gboolean normalize);

/* Decodes in[0..len) into out (room for len + SMTP_DATA_OUT_SLACK bytes).
 * *out_len receives the content bytes written, *consumed the input bytes
 * used (all of them for MORE; up to and including the final LF for END). */
SmtpDataStatus smtp_data_decode(SmtpDataDecoder *dec, const char *in, gsize len, char *out,
                                gsize *out_len, gsize *consumed);
