/* test-sendmail-input.c - reading the message as Postfix's sendmail:
 * line ends (sendmail_fix_line_endings), From_ lines at the top, the lone
 * "." with and without -i, NUL and bare CR kept; the header block and the
 * -t recipients (Resent- headers win once present). */
#include <string.h>

#include "sendmail.h"

/* All lines of input, each followed by "|". */
static char *
lines(const char *input, gsize len, gboolean dot_ends, SendmailCrMode mode)
{
  FILE *fp = fmemopen((void *) input, len, "r");
  SendmailInput in;
  GString *out = g_string_new(NULL);
  g_autoptr(GString) line = g_string_new(NULL);
  g_autoptr(GError) error = NULL;
  sendmail_input_init(&in, fp, dot_ends, mode);
  while (sendmail_input_line(&in, line, &error)) {
    g_string_append_len(out, line->str, line->len);
    g_string_append_c(out, '|');
  }
  g_assert_no_error(error);
  sendmail_input_clear(&in);
  fclose(fp);
  return g_string_free(out, FALSE);
}

static void
check(const char *input, gboolean dot_ends, SendmailCrMode mode, const char *want)
{
  g_autofree char *got = lines(input, strlen(input), dot_ends, mode);
  g_assert_cmpstr(got, ==, want);
}

static void
test_line_ends(void)
{
  check("a\nb\r\nc\r\r\nd\re\n", TRUE, SENDMAIL_CR_ALWAYS, "a|b|c|d\re|");
  check("a\nb\r\n", TRUE, SENDMAIL_CR_NEVER, "a|b\r|");
  check("a\r\nb\nc\r\n", TRUE, SENDMAIL_CR_STRICT, "a|b|c|");
  check("a\nb\r\n", TRUE, SENDMAIL_CR_STRICT, "a|b\r|");
  check("last line without newline", TRUE, SENDMAIL_CR_ALWAYS, "last line without newline|");
  check("x\r", TRUE, SENDMAIL_CR_ALWAYS, "x\r|");   /* no LF: nothing to fix */
  static const char nul[] = "a\0b\nc\n";
  g_autofree char *got = lines(nul, sizeof nul - 1, TRUE, SENDMAIL_CR_ALWAYS);
  g_assert_cmpmem(got, 6, "a\0b|c|", 6);
}

static void
test_dot(void)
{
  check("a\n.\nb\n", TRUE, SENDMAIL_CR_ALWAYS, "a|");
  check("a\n.\r\nb\n", TRUE, SENDMAIL_CR_ALWAYS, "a|");
  check("a\n.\nb\n", FALSE, SENDMAIL_CR_ALWAYS, "a|.|b|");
  check("a\n..\n. \nb\n", TRUE, SENDMAIL_CR_ALWAYS, "a|..|. |b|");
}

static void
test_from_lines(void)
{
  check("From x  Mon\n>From y\n>>From z\nFrom: real header\nFrom w\n", TRUE,
        SENDMAIL_CR_ALWAYS, "From: real header|From w|");
  check("Subject: s\nFrom x\n", TRUE, SENDMAIL_CR_ALWAYS, "Subject: s|From x|");
}

/* The header block of input, "lines|...", "first body line", flags. */
static void
check_headers(const char *input, gboolean extract, const char *want_lines, const char *want_body,
              const char *want_rcpts, gboolean blank, gboolean has_from, gboolean resent)
{
  FILE *fp = fmemopen((void *) input, strlen(input), "r");
  SendmailInput in;
  SendmailHeaders h;
  g_autoptr(GError) error = NULL;
  sendmail_input_init(&in, fp, TRUE, SENDMAIL_CR_ALWAYS);
  g_assert_true(sendmail_headers_read(&in, 1000, extract, &h, &error));
  GString *got = g_string_new(NULL);
  for (guint i = 0; i < h.lines->len; i++)
    g_string_append_printf(got, "%s|", ((GString *) h.lines->pdata[i])->str);
  g_assert_cmpstr(got->str, ==, want_lines);
  g_string_free(got, TRUE);
  g_assert_cmpstr(h.first_body_line != NULL ? h.first_body_line->str : NULL, ==, want_body);
  g_ptr_array_add(h.recipients, NULL);
  g_autofree char *rcpts = g_strjoinv("|", (char **) h.recipients->pdata);
  g_assert_cmpstr(rcpts, ==, want_rcpts);
  g_assert_cmpint(h.blank_line, ==, blank);
  g_assert_cmpint(h.has_from, ==, has_from);
  g_assert_cmpint(h.resent, ==, resent);
  sendmail_headers_clear(&h);
  sendmail_input_clear(&in);
  fclose(fp);
}

static void
test_headers(void)
{
  check_headers("To: a@b, C <c@d>\nCc: e@f\n (comment)\nBcc: g@h\nSubject: s\n\nbody\n", TRUE,
                "To: a@b, C <c@d>|Cc: e@f| (comment)|Bcc: g@h|Subject: s|", NULL,
                "a@b|c@d|e@f|g@h", TRUE, FALSE, FALSE);
  /* without -t nothing is collected */
  check_headers("To: a@b\nFrom: me\n\nbody\n", FALSE, "To: a@b|From: me|", NULL, "", TRUE, TRUE,
                FALSE);
  /* a non-header line ends the block and is the first body line */
  check_headers("To: a@b\nthis is body\nmore\n", TRUE, "To: a@b|", "this is body", "a@b", FALSE,
                FALSE, FALSE);
  /* Resent- recipients replace the others; Resent-From: is what counts */
  check_headers("To: old@x\nResent-To: new@y\nCc: ignored@z\nResent-Cc: n2@y\nFrom: f\n\n", TRUE,
                "To: old@x|Resent-To: new@y|Cc: ignored@z|Resent-Cc: n2@y|From: f|", NULL,
                "new@y|n2@y", TRUE, FALSE, TRUE);
  check_headers("Resent-From: r\nResent-Date: d\n\n", TRUE, "Resent-From: r|Resent-Date: d|",
                NULL, "", TRUE, TRUE, TRUE);
  /* end of input inside the headers */
  check_headers("TO:x@y\nsubject : s\n", TRUE, "TO:x@y|subject : s|", NULL, "x@y", FALSE, FALSE,
                FALSE);
}

static void
test_header_limit(void)
{
  const char *input = "To: a@b\nSubject: 0123456789012345678901234567890123456789\nX: y\n\nb\n";
  FILE *fp = fmemopen((void *) input, strlen(input), "r");
  SendmailInput in;
  SendmailHeaders h;
  g_autoptr(GError) error = NULL;
  sendmail_input_init(&in, fp, TRUE, SENDMAIL_CR_ALWAYS);
  g_assert_true(sendmail_headers_read(&in, 20, TRUE, &h, &error));
  g_assert_true(h.truncated);
  g_assert_cmpuint(h.lines->len, ==, 2);
  sendmail_headers_clear(&h);
  sendmail_input_clear(&in);
  fclose(fp);
}

static void
test_cr_mode_parse(void)
{
  SendmailCrMode m;
  g_assert_true(sendmail_cr_mode_parse("always", &m) && m == SENDMAIL_CR_ALWAYS);
  g_assert_true(sendmail_cr_mode_parse("strict", &m) && m == SENDMAIL_CR_STRICT);
  g_assert_true(sendmail_cr_mode_parse("never", &m) && m == SENDMAIL_CR_NEVER);
  g_assert_false(sendmail_cr_mode_parse("Always", &m));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sendmail-input/line-ends", test_line_ends);
  g_test_add_func("/sendmail-input/dot", test_dot);
  g_test_add_func("/sendmail-input/from-lines", test_from_lines);
  g_test_add_func("/sendmail-input/headers", test_headers);
  g_test_add_func("/sendmail-input/header-limit", test_header_limit);
  g_test_add_func("/sendmail-input/cr-mode-parse", test_cr_mode_parse);
  return g_test_run();
}
