/* test-smtp-bdat.c - the BDAT argument and the chunk decoder: CRLF -> LF
 * whatever the chunk and read boundaries (every case is fed in one piece,
 * split at every offset, and one byte at a time), a "." line and a fake
 * end of data inside a chunk kept as data, bare LF and bare CR. */
#include <string.h>

#include "smtp-bdat.h"

static void
bdat(const char *arg, gboolean ok, gint64 size, gboolean last)
{
  gint64 s = -7;
  gboolean l = 2;
  g_assert_cmpint(smtp_parse_bdat(arg, &s, &l), ==, ok);
  if (ok) {
    g_assert_cmpint(s, ==, size);
    g_assert_cmpint(l, ==, last);
  }
}

static void
test_parse(void)
{
  bdat("0", TRUE, 0, FALSE);
  bdat("0 LAST", TRUE, 0, TRUE);
  bdat("1000", TRUE, 1000, FALSE);
  bdat("1000 last", TRUE, 1000, TRUE);
  bdat("1000 \t LaSt", TRUE, 1000, TRUE);
  bdat("007", TRUE, 7, FALSE);
  bdat("9223372036854775807", TRUE, G_MAXINT64, FALSE);
  bdat("9223372036854775808", FALSE, 0, FALSE);
  bdat("99999999999999999999999", FALSE, 0, FALSE);
  bdat("", FALSE, 0, FALSE);
  bdat("LAST", FALSE, 0, FALSE);
  bdat("-1", FALSE, 0, FALSE);
  bdat("+1", FALSE, 0, FALSE);
  bdat("1x", FALSE, 0, FALSE);
  bdat("0x10", FALSE, 0, FALSE);
  bdat("10 LAST x", FALSE, 0, FALSE);
  bdat("10 LASTX", FALSE, 0, FALSE);
  bdat("10 FIRST", FALSE, 0, FALSE);
  bdat("1 0", FALSE, 0, FALSE);
  bdat("1,0", FALSE, 0, FALSE);
}

/* Decodes chunks (split into pieces at cut, 0: whole) and returns the
 * content, or NULL at a bare CR. */
static char *
decode(const char *const *chunks, gboolean normalize, gsize cut)
{
  SmtpChunkDecoder d;
  GString *out = g_string_new(NULL);
  smtp_chunk_init(&d, normalize);
  for (const char *const *c = chunks; *c != NULL; c++) {
    gsize len = strlen(*c);
    for (gsize off = 0; off < len || (len == 0 && off == 0);) {
      gsize n = cut == 0 ? len - off : MIN(cut, len - off);
      char buf[256];
      gsize got = 0;
      g_assert_cmpuint(n + SMTP_CHUNK_OUT_SLACK, <=, sizeof buf);
      if (smtp_chunk_decode(&d, *c + off, n, buf, &got) == SMTP_CHUNK_BARE_CR) {
        g_string_free(out, TRUE);
        return NULL;
      }
      g_assert_cmpuint(got, <=, n + SMTP_CHUNK_OUT_SLACK);
      g_string_append_len(out, buf, got);
      off += n;
      if (len == 0)
        break;
    }
  }
  char buf[SMTP_CHUNK_OUT_SLACK];
  gsize got = 0;
  if (smtp_chunk_finish(&d, buf, &got) == SMTP_CHUNK_BARE_CR) {
    g_string_free(out, TRUE);
    return NULL;
  }
  g_string_append_len(out, buf, got);
  return g_string_free(out, FALSE);
}

/* Every way to cut the chunks into reads gives want. */
static void
check(const char *const *chunks, gboolean normalize, const char *want)
{
  for (gsize cut = 0; cut <= 8; cut++) {
    g_autofree char *got = decode(chunks, normalize, cut);
    g_assert_cmpstr(got, ==, want);
  }
}

/* The same content as one chunk, cut into two chunks at every offset. */
static void
check_split(const char *content, gboolean normalize, const char *want)
{
  gsize len = strlen(content);
  for (gsize i = 0; i <= len; i++) {
    g_autofree char *a = g_strndup(content, i);
    const char *chunks[] = { a, content + i, NULL };
    check(chunks, normalize, want);
  }
}

static void
test_decode(void)
{
  const char *simple[] = { "Subject: x\r\n\r\nbody\r\n", NULL };
  check(simple, FALSE, "Subject: x\n\nbody\n");
  /* CR | LF across a chunk boundary */
  const char *split[] = { "a\r", "\nb\r\n", NULL };
  check(split, FALSE, "a\nb\n");
  /* "." lines, a fake end of data and commands are data */
  check_split("x\r\n.\r\n..\r\nMAIL FROM:<evil@example.test>\r\n.\r\n", FALSE,
              "x\n.\n..\nMAIL FROM:<evil@example.test>\n.\n");
  /* bare LF: a line end in either mode */
  check_split("a\nb\n.\nc", FALSE, "a\nb\n.\nc");
  check_split("a\nb\n.\nc", TRUE, "a\nb\n.\nc");
  /* CR CR LF: the first CR is bare */
  check_split("a\r\r\nb", TRUE, "a\r\nb");
  const char *crcrlf[] = { "a\r\r\nb", NULL };
  check(crcrlf, FALSE, NULL);
  /* bare CR: data in normalize mode, an event in strict mode */
  check_split("a\rb\r\n", TRUE, "a\rb\n");
  const char *barecr[] = { "a\rb\r\n", NULL };
  check(barecr, FALSE, NULL);
  const char *barecr_split[] = { "a\r", "b\r\n", NULL };
  check(barecr_split, FALSE, NULL);
  /* a CR at the very end of the message */
  check_split("abc\r", TRUE, "abc\r");
  const char *endcr[] = { "abc\r", NULL };
  check(endcr, FALSE, NULL);
  const char *endcr2[] = { "abc\r", "", NULL };
  check(endcr2, FALSE, NULL);
  /* empty chunks, binary */
  const char *empty[] = { "", "", NULL };
  check(empty, FALSE, "");
  const char *bin[] = { "\x01\xff\x80", "\t\r\n", NULL };
  check(bin, FALSE, "\x01\xff\x80\t\n");
}

/* A NUL in content is data (the queue file locates content by size). */
static void
test_nul(void)
{
  SmtpChunkDecoder d;
  char out[16];
  gsize got = 0;
  smtp_chunk_init(&d, FALSE);
  g_assert_cmpint(smtp_chunk_decode(&d, "a\0b\r", 4, out, &got), ==, SMTP_CHUNK_MORE);
  g_assert_cmpuint(got, ==, 3);
  g_assert_cmpmem(out, got, "a\0b", 3);
  g_assert_cmpint(smtp_chunk_decode(&d, "\n", 1, out, &got), ==, SMTP_CHUNK_MORE);
  g_assert_cmpmem(out, got, "\n", 1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp-bdat/parse", test_parse);
  g_test_add_func("/smtp-bdat/decode", test_decode);
  g_test_add_func("/smtp-bdat/nul", test_nul);
  return g_test_run();
}
