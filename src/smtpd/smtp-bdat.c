/* smtp-bdat.c - BDAT argument and chunk decoder (see smtp-bdat.h).  Pure:
 * no allocation, no I/O; the same output whatever the chunk boundaries
 * and however the chunks are cut into reads. */
#include <string.h>

#include "smtp-bdat.h"

gboolean
smtp_parse_bdat(const char *arg, gint64 *size, gboolean *last)
{
  const char *p = arg;
  gint64 n = 0;

  if (!g_ascii_isdigit(*p))
    return FALSE;
  for (; g_ascii_isdigit(*p); p++) {
    if (n > (G_MAXINT64 - (*p - '0')) / 10)
      return FALSE;
    n = n * 10 + (*p - '0');
  }
  if (*p != '\0' && *p != ' ' && *p != '\t')
    return FALSE;
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p == '\0') {
    *last = FALSE;
  } else if (g_ascii_strcasecmp(p, "LAST") == 0) {
    *last = TRUE;
  } else {
    return FALSE;
  }
  *size = n;
  return TRUE;
}

void
smtp_chunk_init(SmtpChunkDecoder *dec, gboolean normalize)
{
  dec->normalize = normalize;
  dec->cr = FALSE;
}

SmtpChunkStatus
smtp_chunk_decode(SmtpChunkDecoder *dec, const char *in, gsize len, char *out, gsize *out_len)
{
  gsize i = 0, o = 0;

  while (i < len) {
    if (dec->cr) {
      dec->cr = FALSE;
      if (in[i] == '\n') {
        out[o++] = '\n';
        i++;
        continue;
      }
      if (!dec->normalize) {
        *out_len = o;
        return SMTP_CHUNK_BARE_CR;
      }
      out[o++] = '\r';
    }
    /* Copy up to the next CR; a bare LF passes as the line end it is. */
    const char *cr = memchr(in + i, '\r', len - i);
    gsize j = cr != NULL ? (gsize) (cr - in) : len;
    memcpy(out + o, in + i, j - i);
    o += j - i;
    i = j;
    if (i < len) {
      dec->cr = TRUE;
      i++;
    }
  }
  *out_len = o;
  return SMTP_CHUNK_MORE;
}

SmtpChunkStatus
smtp_chunk_finish(SmtpChunkDecoder *dec, char *out, gsize *out_len)
{
  *out_len = 0;
  if (!dec->cr)
    return SMTP_CHUNK_MORE;
  dec->cr = FALSE;
  if (!dec->normalize)
    return SMTP_CHUNK_BARE_CR;
  out[(*out_len)++] = '\r';
  return SMTP_CHUNK_MORE;
}
