/* smtp-data.c - DATA decoder state machine (see smtp-data.h).  Pure: no
 * allocation, no I/O; the same output whether input comes in one piece or
 * one byte at a time. */
#include <string.h>

#include "smtp-data.h"

enum {
  S_BOL,      /* at the beginning of a line */
  S_DOT,      /* BOL, then '.' (dropped) */
  S_DOT_CR,   /* BOL, '.', CR */
  S_TEXT,     /* inside a line */
  S_CR,       /* inside a line, CR held back */
};

void
smtp_data_init(SmtpDataDecoder *dec, gboolean normalize)
{
  dec->state = S_BOL;
  dec->normalize = normalize;
  dec->prev_crlf = TRUE;
}

SmtpDataStatus
smtp_data_decode(SmtpDataDecoder *dec, const char *in, gsize len, char *out, gsize *out_len,
                 gsize *consumed)
{
  gsize i = 0, o = 0;
  SmtpDataStatus status = SMTP_DATA_MORE;

  while (i < len) {
    char c = in[i];
    switch (dec->state) {
    case S_TEXT: {
      /* Fast path: copy up to the next CR or LF. */
      gsize j = i;
      while (j < len && in[j] != '\r' && in[j] != '\n')
        j++;
      memcpy(out + o, in + i, j - i);
      o += j - i;
      i = j;
      if (i == len)
        break;
      c = in[i];
      if (c == '\r') {
        dec->state = S_CR;
        i++;
      } else if (!dec->normalize) {
        status = SMTP_DATA_BARE_LF;
        goto done;
      } else {
        out[o++] = '\n';
        dec->prev_crlf = FALSE;
        dec->state = S_BOL;
        i++;
      }
      break;
    }
    case S_BOL:
      if (c == '.') {
        dec->state = S_DOT;
        i++;
      } else if (c == '\r') {
        dec->state = S_CR;
        i++;
      } else if (c == '\n') {
        if (!dec->normalize) {
          status = SMTP_DATA_BARE_LF;
          goto done;
        }
        out[o++] = '\n';
        dec->prev_crlf = FALSE;
        i++;
      } else {
        dec->state = S_TEXT;
      }
      break;
    case S_DOT:
      if (c == '\r') {
        dec->state = S_DOT_CR;
        i++;
      } else if (c == '\n') {
        if (!dec->normalize) {
          status = SMTP_DATA_BARE_LF;
          goto done;
        }
        out[o++] = '\n';
        dec->prev_crlf = FALSE;
        dec->state = S_BOL;
        i++;
      } else {
        dec->state = S_TEXT;   /* dot-unstuffed; c handled there */
      }
      break;
    case S_DOT_CR:
      if (c == '\n') {
        i++;
        if (dec->prev_crlf) {
          status = SMTP_DATA_END;
          dec->state = S_BOL;
          goto done;
        }
        out[o++] = '\n';   /* "." after a bare-LF line: an empty line */
        dec->prev_crlf = TRUE;
        dec->state = S_BOL;
      } else if (!dec->normalize) {
        status = SMTP_DATA_BARE_CR;
        goto done;
      } else {
        out[o++] = '\r';
        dec->state = S_TEXT;
      }
      break;
    case S_CR:
      if (c == '\n') {
        out[o++] = '\n';
        dec->prev_crlf = TRUE;
        dec->state = S_BOL;
        i++;
      } else if (!dec->normalize) {
        status = SMTP_DATA_BARE_CR;
        goto done;
      } else {
        out[o++] = '\r';
        dec->state = S_TEXT;
      }
      break;
    }
  }
done:
  *out_len = o;
  *consumed = i;
  return status;
}
