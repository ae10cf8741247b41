/* fuzz-smtp-parse.c - libFuzzer harness for smtpd's pure parsers: command
 * line splitting (strict and normalize), verb/argument split, MAIL/RCPT
 * argument parsing (with the DSN and SMTPUTF8 parameters: nothing accepted
 * may hold CR, LF or NUL), the BDAT argument, and the DATA and BDAT
 * decoders, which must give the same result whether the input comes in
 * one piece or in arbitrary chunks.
 *
 * Not part of the default build.  Build and run by hand with clang:
 *
 *   ninja -C build    # for libpostern-common.a
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -DPOSTERN_VERSION=\"fuzz\" \
 *     -Isrc/common -Isrc/smtpd $(pkg-config --cflags glib-2.0) \
 *     tests/fuzz/fuzz-smtp-parse.c src/smtpd/smtp-parse.c src/smtpd/smtp-params.c \
 *     src/smtpd/smtp-data.c src/smtpd/smtp-bdat.c src/common/address.c \
 *     build/src/common/libpostern-common.a $(pkg-config --libs glib-2.0 gio-2.0) \
 *     -o fuzz-smtp-parse
 *   mkdir -p corpus && ./fuzz-smtp-parse -max_total_time=60 corpus
 *
 * Seed ideas: the .in files of tests/unit/smtpd/dialogs/.
 */
#include <string.h>

#include "smtp-bdat.h"
#include "smtp-data.h"
#include "smtp-parse.h"

/* No accepted value may break a queue file record. */
static void
check_record(const char *v)
{
  g_assert(v == NULL || strpbrk(v, "\r\n") == NULL);
}

/* The BDAT decoder over data cut into pieces by seed (0: one piece);
 * FALSE at a bare CR. */
static gboolean
chunk_decode(const guint8 *data, gsize len, gboolean normalize, guint8 seed, GString *out)
{
  SmtpChunkDecoder dec;
  char buf[300];
  gsize pos = 0, got = 0;
  smtp_chunk_init(&dec, normalize);
  while (pos < len) {
    gsize n = seed == 0 ? len - pos : MIN((gsize)(seed % 251) + 1, len - pos);
    n = MIN(n, sizeof buf - SMTP_CHUNK_OUT_SLACK);
    if (smtp_chunk_decode(&dec, (const char *)data + pos, n, buf, &got) != SMTP_CHUNK_MORE)
      return FALSE;
    g_assert(got <= n + SMTP_CHUNK_OUT_SLACK);
    g_string_append_len(out, buf, got);
    pos += n;
    seed = seed * 31 + 7;
  }
  if (smtp_chunk_finish(&dec, buf, &got) != SMTP_CHUNK_MORE)
    return FALSE;
  g_string_append_len(out, buf, got);
  return TRUE;
}

/* Decodes all of in with chunk sizes taken from the input itself. */
static SmtpDataStatus
decode_chunked(const guint8 *data, gsize len, gboolean normalize, guint8 seed, GString *out,
               gsize *used)
{
  SmtpDataDecoder dec;
  SmtpDataStatus st = SMTP_DATA_MORE;
  char buf[300];
  gsize pos = 0;
  smtp_data_init(&dec, normalize);
  while (pos < len) {
    gsize n = seed == 0 ? len - pos : MIN((gsize)(seed % 251) + 1, len - pos);
    n = MIN(n, sizeof buf - SMTP_DATA_OUT_SLACK);
    gsize out_len = 0, consumed = 0;
    st = smtp_data_decode(&dec, (const char *)data + pos, n, buf, &out_len, &consumed);
    g_assert(out_len <= n + SMTP_DATA_OUT_SLACK);
    g_assert(consumed <= n);
    g_string_append_len(out, buf, out_len);
    pos += consumed;
    if (st != SMTP_DATA_MORE)
      break;
    seed = seed * 31 + 7;
  }
  *used = pos;
  return st;
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
  /* Command lines. */
  for (int normalize = 0; normalize < 2; normalize++) {
    gsize pos = 0;
    while (pos < size) {
      gsize line_len = 0, consumed = 0;
      SmtpLineStatus st = smtp_line_next((const char *)data + pos, size - pos,
                                         SMTP_COMMAND_LINE_MAX, normalize, &line_len, &consumed);
      if (st == SMTP_LINE_INCOMPLETE)
        break;
      g_assert(consumed > 0 && consumed <= size - pos);
      if (st == SMTP_LINE_OK) {
        g_assert(line_len < consumed);
        char *line = g_malloc(line_len + 1);
        memcpy(line, data + pos, line_len);
        char *verb, *arg;
        if (smtp_parse_split(line, line_len, &verb, &arg)) {
          SmtpPathArg p = { 0 };
          char *reply = NULL;
          guint flags = size > 0 ? data[size - 1] & 15 : 0;
          gint64 bdat_size;
          gboolean bdat_last;
          if (g_ascii_strcasecmp(verb, "BDAT") == 0 &&
              smtp_parse_bdat(arg, &bdat_size, &bdat_last))
            g_assert(bdat_size >= 0);
          if (g_ascii_strcasecmp(verb, "MAIL") == 0) {
            if (smtp_parse_mail(arg, flags, &p, &reply))
              g_assert(p.address != NULL && reply == NULL);
            else
              g_assert(reply != NULL && (reply[0] == '5'));
          } else {
            if (smtp_parse_rcpt(arg, flags, &p, &reply))
              g_assert(p.address != NULL && reply == NULL);
            else
              g_assert(reply != NULL && (reply[0] == '5'));
          }
          check_record(p.envid);
          check_record(p.orcpt);
          smtp_path_arg_clear(&p);
          g_free(reply);
        }
        g_free(line);
      }
      pos += consumed;
    }
  }

  /* DATA: one piece and chunked must agree, in both modes. */
  for (int normalize = 0; normalize < 2; normalize++) {
    GString *a = g_string_new(NULL), *b = g_string_new(NULL);
    gsize used_a, used_b;
    SmtpDataStatus sa = decode_chunked(data, size, normalize, 0, a, &used_a);
    SmtpDataStatus sb = decode_chunked(data, size, normalize, size > 0 ? data[0] : 1, b, &used_b);
    g_assert(sa == sb);
    g_assert(used_a == used_b);
    g_assert(a->len == b->len && memcmp(a->str, b->str, a->len) == 0);
    /* Strict mode never lets a bare LF through as a line end. */
    if (!normalize && sa == SMTP_DATA_END)
      g_assert(memchr(data, '\n', used_a) == NULL || used_a >= 3);
    g_string_free(a, TRUE);
    g_string_free(b, TRUE);
  }

  /* BDAT content: one piece and chunked must agree; no CR survives strict mode. */
  for (int normalize = 0; normalize < 2; normalize++) {
    GString *a = g_string_new(NULL), *b = g_string_new(NULL);
    gboolean ok_a = chunk_decode(data, size, normalize, 0, a);
    gboolean ok_b = chunk_decode(data, size, normalize, size > 0 ? data[0] : 1, b);
    g_assert(ok_a == ok_b);
    if (ok_a)
      g_assert(a->len == b->len && memcmp(a->str, b->str, a->len) == 0);
    if (ok_a && !normalize)
      g_assert(memchr(a->str, '\r', a->len) == NULL);
    g_string_free(a, TRUE);
    g_string_free(b, TRUE);
  }
  return 0;
}
