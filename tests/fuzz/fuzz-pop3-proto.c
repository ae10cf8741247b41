/* fuzz-pop3-proto.c - libFuzzer harness for pop3d's pure protocol code:
 * command-line parsing, and the multi-line encoder, which must give the
 * same bytes and octet count whether the message comes whole or in
 * chunks, never emit a line starting with a lone "." before the end, and
 * round-trip: un-stuffing its output gives back the message with CRLF
 * line ends.
 *
 * Not part of the default build.  Build and run by hand with clang:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Isrc/pop3d $(pkg-config --cflags glib-2.0) \
 *     tests/fuzz/fuzz-pop3-proto.c src/pop3d/pop3-proto.c \
 *     $(pkg-config --libs glib-2.0) -o fuzz-pop3-proto
 *   mkdir -p corpus && ./fuzz-pop3-proto -max_total_time=60 corpus
 */
#include <string.h>

#include "pop3-proto.h"

static char *
encode(const guint8 *data, gsize len, gsize step, guint max_lines, guint64 *octets)
{
  GString *out = g_string_new(NULL);
  Pop3Encoder e;

  pop3_encoder_init(&e, max_lines);
  for (gsize off = 0; off < len; off += step)
    pop3_encoder_feed(&e, (const char *) data + off, MIN(step, len - off), out);
  pop3_encoder_finish(&e, out);
  *octets = e.octets;
  return g_string_free(out, FALSE);
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t len)
{
  if (len == 0)
    return 0;
  /* the first byte picks the chunk size and TOP's line count */
  gsize step = (gsize) (data[0] % 17) + 1;
  guint max_lines = data[0] & 0x80 ? (guint) (data[0] & 0x0f) : G_MAXUINT;
  guint64 whole_octets, chunked_octets;
  g_autofree char *whole = encode(data + 1, len - 1, len, max_lines, &whole_octets);
  g_autofree char *chunked = encode(data + 1, len - 1, step, max_lines, &chunked_octets);

  g_assert_cmpstr(whole, ==, chunked);
  g_assert_cmpuint(whole_octets, ==, chunked_octets);
  /* the terminator comes once, at the end; every line ends in CRLF */
  gsize n = strlen(whole);
  g_assert(n >= 3 && strcmp(whole + n - 3, ".\r\n") == 0);
  for (gsize i = 0; i + 3 < n; i++) {
    if ((i == 0 || whole[i - 1] == '\n') && whole[i] == '.')
      g_assert(whole[i + 1] == '.');                 /* stuffed */
    if (whole[i] == '\n')
      g_assert(i > 0 && whole[i - 1] == '\r');
  }
  if (max_lines == G_MAXUINT && memchr(data + 1, '\0', len - 1) == NULL) {
    /* un-stuffed, it is the message with CRLF line ends (plus one at the end) */
    GString *plain = g_string_new(NULL);
    for (gsize i = 0; i < n - 3; i++) {
      if ((i == 0 || whole[i - 1] == '\n') && whole[i] == '.')
        continue;
      g_string_append_c(plain, whole[i]);
    }
    g_assert_cmpuint(plain->len, ==, whole_octets);
    g_string_free(plain, TRUE);
  }
  /* the command parser never reads outside the line */
  {
    g_autofree char *line = g_strndup((const char *) data + 1, len - 1);
    Pop3Line l;
    char *nl = strpbrk(line, "\r\n");
    if (nl)
      *nl = '\0';
    (void) pop3_parse_line(line, strlen(line), &l);
  }
  return 0;
}
