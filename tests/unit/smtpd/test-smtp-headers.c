/* test-smtp-headers.c - the local-submission header filter: Bcc: and
 * Resent-Bcc: dropped with their continuations, missing Message-Id:,
 * Date:, From: (or their Resent- forms) added where the header block
 * ends, the same result whatever the chunking of the input. */
#include <string.h>

#include "smtp-headers.h"

/* Filters input fed step bytes at a time (0 = at once). */
static char *
filter(const char *input, gsize step, gsize limit)
{
  SmtpHeaderFilter f;
  GString *out = g_string_new(NULL);
  gsize len = strlen(input);
  smtp_headers_init(&f, limit, "<ID>", "DATE", "me@host");
  if (step == 0)
    step = len > 0 ? len : 1;
  for (gsize i = 0; i < len; i += step)
    smtp_headers_feed(&f, input + i, MIN(step, len - i), out);
  smtp_headers_finish(&f, out);
  smtp_headers_clear(&f);
  return g_string_free(out, FALSE);
}

static void
check_limit(const char *input, const char *want, gsize limit)
{
  for (gsize step = 0; step <= 7; step++) {
    g_autofree char *got = filter(input, step, limit);
    g_assert_cmpstr(got, ==, want);
  }
}

static void
check(const char *input, const char *want)
{
  check_limit(input, want, 102400);
}

#define ADDED "Message-Id: <ID>\nDate: DATE\nFrom: me@host\n"

static void
test_missing_all(void)
{
  check("Subject: x\n\nbody\n", "Subject: x\n" ADDED "\nbody\n");
  check("\nbody only\n", ADDED "\nbody only\n");
  check("", ADDED);
  check("Subject: no body\n", "Subject: no body\n" ADDED);
}

static void
test_present_kept(void)
{
  check("From: a@b\nDate: d\nMessage-ID: <x@y>\n\nb\n", "From: a@b\nDate: d\nMessage-ID: <x@y>\n\nb\n");
  check("from : a@b\nSubject: s\n\nb\n", "from : a@b\nSubject: s\nMessage-Id: <ID>\nDate: DATE\n\nb\n");
  check("DATE: d\n\nb\n", "DATE: d\nMessage-Id: <ID>\nFrom: me@host\n\nb\n");
}

static void
test_bcc_dropped(void)
{
  check("To: a\nBcc: hidden@x,\n  more@y\n\tand more\nSubject: s\n\nBcc: in body\n",
        "To: a\nSubject: s\n" ADDED "\nBcc: in body\n");
  check("bcc:x\nRESENT-BCC: y\n z\nTo: t\n\nb\n", "To: t\n" "Resent-Message-Id: <ID>\n"
        "Resent-Date: DATE\nResent-From: me@host\n\nb\n");
  check("Bcc: only\n\nb\n", ADDED "\nb\n");
}

static void
test_resent(void)
{
  check("From: a\nDate: d\nResent-To: r\n\nb\n",
        "From: a\nDate: d\nResent-To: r\nResent-Message-Id: <ID>\nResent-Date: DATE\n"
        "Resent-From: me@host\n\nb\n");
  check("Resent-From: f\nResent-Date: d\nResent-Message-Id: m\n\nb\n",
        "Resent-From: f\nResent-Date: d\nResent-Message-Id: m\n\nb\n");
}

static void
test_end_without_blank_line(void)
{
  /* a line that is not a header ends the block; the headers go before it */
  check("Subject: s\nnot a header\nmore\n", "Subject: s\n" ADDED "not a header\nmore\n");
  check("Subject: s\nname with space: x\n", "Subject: s\n" ADDED "name with space: x\n");
  check(" continuation first\n", ADDED " continuation first\n");
  check(":colon first\n", ADDED ":colon first\n");
  check("Subject: s\n\x01weird: x\n", "Subject: s\n" ADDED "\x01weird: x\n");
}

static void
test_limit(void)
{
  /* past header_size_limit nothing more is added or dropped */
  check_limit("Subject: 0123456789\nBcc: x\n\nb\n", "Subject: 0123456789\nBcc: x\n\nb\n", 10);
  check_limit("Subject: s\nBcc: x\n\nb\n", "Subject: s\n" ADDED "\nb\n", 100);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp-headers/missing-all", test_missing_all);
  g_test_add_func("/smtp-headers/present-kept", test_present_kept);
  g_test_add_func("/smtp-headers/bcc-dropped", test_bcc_dropped);
  g_test_add_func("/smtp-headers/resent", test_resent);
  g_test_add_func("/smtp-headers/end-without-blank-line", test_end_without_blank_line);
  g_test_add_func("/smtp-headers/limit", test_limit);
  return g_test_run();
}
