/* smtp-bdat.h - RFC 3030 CHUNKING, the pure parts: the BDAT command's
 * argument and the decoder of chunk content.
 *
 * A chunk is exactly its announced number of octets, read raw: no
 * dot-unstuffing and no end-of-data line, so a "." line inside a chunk
 * is data and nothing in a chunk is ever a command.  The decoder turns
 * the content into the queue file's form as the DATA decoder does: CRLF
 * becomes LF, also when a chunk boundary falls between the CR and the LF
 * (the CR is held back until the next byte decides).  A bare LF is a
 * line end (LF, as Postfix); it cannot end anything in BDAT, and the SMTP
 * client writes it as CRLF.  A bare CR is data in normalize mode (Postfix)
 * and an event in strict mode (smtpd_forbid_bare_newline): stored, it
 * would reach the next hop as a CR inside a line, which some servers take
 * for a line end (SMTP smuggling).  Unit-tested
 * (tests/unit/smtpd/test-smtp-bdat.c).
 */
#pragma once

#include <glib.h>

/* "BDAT <size> [LAST]" (the argument after the verb, blanks trimmed):
 * size is all digits (no sign, within 63 bits), LAST case-insensitive.
 * FALSE for anything else. */
gboolean smtp_parse_bdat(const char *arg, gint64 *size, gboolean *last);

typedef enum {
  SMTP_CHUNK_MORE,      /* all input used; feed more */
  SMTP_CHUNK_BARE_CR,   /* strict mode: a CR not followed by LF */
} SmtpChunkStatus;

/* Room a call may need in out beyond the input length (a held CR). */
#define SMTP_CHUNK_OUT_SLACK 1

typedef struct {
  gboolean normalize;
  gboolean cr;          /* the last byte seen was a CR, not written yet */
} SmtpChunkDecoder;

void smtp_chunk_init(SmtpChunkDecoder *dec, gboolean normalize);

/* Decodes in[0..len) (any part of any chunk of the message) into out
 * (room for len + SMTP_CHUNK_OUT_SLACK); *out_len is what was written. */
SmtpChunkStatus smtp_chunk_decode(SmtpChunkDecoder *dec, const char *in, gsize len, char *out,
                                  gsize *out_len);

/* The end of the message (after BDAT LAST's chunk): a CR still held back
 * is a bare CR (written to out in normalize mode; room for 1 byte). */
SmtpChunkStatus smtp_chunk_finish(SmtpChunkDecoder *dec, char *out, gsize *out_len);
