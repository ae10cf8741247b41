/* test-smtp-data.c - the DATA decoder: CRLF -> LF, dot-unstuffing, the end
 * marker, bare LF / bare CR events, and the same result whether input
 * arrives in one piece or one byte at a time. */
#include <string.h>

#include "smtp-data.h"

typedef struct {
  GString *content;
  SmtpDataStatus status;
  gsize consumed;   /* total input used */
} Result;

/* Feeds input in pieces of step bytes (0 = all at once) until an event. */
static Result
decode(const char *input, gsize len, gboolean normalize, gsize step)
{
  SmtpDataDecoder dec;
  Result r = { g_string_new(NULL), SMTP_DATA_MORE, 0 };
  smtp_data_init(&dec, normalize);
  if (step == 0)
    step = len;
  while (r.consumed < len) {
    gsize n = MIN(step, len - r.consumed);
    g_autofree char *out = g_malloc(n + SMTP_DATA_OUT_SLACK);
    gsize out_len = 0, used = 0;
    r.status = smtp_data_decode(&dec, input + r.consumed, n, out, &out_len, &used);
    g_assert_cmpuint(out_len, <=, n + SMTP_DATA_OUT_SLACK);
    g_string_append_len(r.content, out, out_len);
    r.consumed += used;
    if (r.status != SMTP_DATA_MORE)
      break;
    g_assert_cmpuint(used, ==, n);
  }
  return r;
}

/* Checks one case at every step size from 1 to 7 and in one piece. */
static void
check(const char *input, gboolean normalize, SmtpDataStatus status, const char *content,
      gssize consumed)
{
  gsize len = strlen(input);
  for (gsize step = 0; step <= 7; step++) {
    Result r = decode(input, len, normalize, step);
    g_assert_cmpint(r.status, ==, status);
    g_assert_cmpstr(r.content->str, ==, content);
    if (consumed >= 0)
      g_assert_cmpuint(r.consumed, ==, (gsize)consumed);
    g_string_free(r.content, TRUE);
  }
}

static void
test_simple(void)
{
  check("Subject: x\r\n\r\nhello\r\n.\r\n", FALSE, SMTP_DATA_END, "Subject: x\n\nhello\n", -1);
  check(".\r\n", FALSE, SMTP_DATA_END, "", 3);
  check("a\r\n.\r\nMAIL FROM:<x>\r\n", FALSE, SMTP_DATA_END, "a\n", 6);
  check("no end yet\r\n", FALSE, SMTP_DATA_MORE, "no end yet\n", -1);
}

static void
test_dot_unstuffing(void)
{
  check("..\r\n.\r\n", FALSE, SMTP_DATA_END, ".\n", -1);
  check("..x\r\n...\r\n.\r\n", FALSE, SMTP_DATA_END, ".x\n..\n", -1);
  check(".x\r\n.\r\n", FALSE, SMTP_DATA_END, "x\n", -1);
  check("a.\r\n. \r\n.\r\n", FALSE, SMTP_DATA_END, "a.\n \n", -1);
}

static void
test_only_crlf_dot_crlf_ends(void)
{
  /* strict: every bare newline is an event */
  check("a\n.\n", FALSE, SMTP_DATA_BARE_LF, "a", 1);
  check("a\r\n.\n", FALSE, SMTP_DATA_BARE_LF, "a\n", 4);
  check("a\n.\r\n", FALSE, SMTP_DATA_BARE_LF, "a", 1);
  check("a\rb\r\n.\r\n", FALSE, SMTP_DATA_BARE_CR, "a", 2);
  check("a\r\n.\rx", FALSE, SMTP_DATA_BARE_CR, "a\n", 5);
  /* normalize: bare LF ends a line, but never the message */
  check("a\n.\nb\r\n.\r\n", TRUE, SMTP_DATA_END, "a\n\nb\n", -1);
  check("a\n.\r\nb\r\n.\r\n", TRUE, SMTP_DATA_END, "a\n\nb\n", -1);
  check("a\rb\r\n.\r\n", TRUE, SMTP_DATA_END, "a\rb\n", -1);
  check("a\r\n.\rx\r\n.\r\n", TRUE, SMTP_DATA_END, "a\n\rx\n", -1);
}

static void
test_smuggling(void)
{
  /* The classic attack: a second message after "\n.\n". */
  const char *attack = "Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\n"
                       "DATA\r\nSubject: two\r\n\r\n.\r\n";
  check(attack, FALSE, SMTP_DATA_BARE_LF, "Subject: one\n\nbody", 20);
  /* Normalized, it is all one message. */
  check(attack, TRUE, SMTP_DATA_END,
        "Subject: one\n\nbody\n\nMAIL FROM:<evil@x>\nRCPT TO:<v@y>\nDATA\nSubject: two\n\n", -1);
  /* "\r\n.\r" followed by something else is not an end either. */
  check("x\r\n.\r.\r\n", FALSE, SMTP_DATA_BARE_CR, "x\n", 5);
}

static void
test_long_lines_and_binary(void)
{
  GString *in = g_string_new(NULL), *want = g_string_new(NULL);
  for (int i = 0; i < 5000; i++) {
    g_string_append_c(in, 'a' + i % 26);
    g_string_append_c(want, 'a' + i % 26);
  }
  g_string_append_len(in, "\r\n\xff\x80\0z\r\n.\r\n", 11);
  g_string_append_len(want, "\n\xff\x80\0z\n", 6);
  for (gsize step = 0; step < 4; step++) {
    Result r = decode(in->str, in->len, FALSE, step * 333);
    g_assert_cmpint(r.status, ==, SMTP_DATA_END);
    g_assert_cmpmem(r.content->str, r.content->len, want->str, want->len);
    g_string_free(r.content, TRUE);
  }
  g_string_free(in, TRUE);
  g_string_free(want, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp-data/simple", test_simple);
  g_test_add_func("/smtp-data/dot-unstuffing", test_dot_unstuffing);
  g_test_add_func("/smtp-data/crlf-dot-crlf-only", test_only_crlf_dot_crlf_ends);
  g_test_add_func("/smtp-data/smuggling", test_smuggling);
  g_test_add_func("/smtp-data/long-lines-binary", test_long_lines_and_binary);
  return g_test_run();
}
