/* test-pop3-proto.c - the POP3 command table, argument rules, and the
 * multi-line encoding (CRLF, byte-stuffing, TOP, octet counts), fed a
 * few bytes at a time as well as whole. */
#include "pop3-proto.h"

#include <string.h>

static Pop3ParseResult
parse(const char *text, Pop3Line *out, char **copy)
{
  *copy = g_strdup(text);
  return pop3_parse_line(*copy, strlen(*copy), out);
}

static void
test_commands(void)
{
  static const struct {
    const char *line;
    Pop3ParseResult result;
    Pop3CmdId id;
    guint n_args;
    const char *arg0, *arg1;
  } cases[] = {
    { "USER alice", POP3_PARSE_OK, POP3_CMD_USER, 1, "alice", NULL },
    { "user  alice ", POP3_PARSE_OK, POP3_CMD_USER, 1, "alice", NULL },
    { "PASS secret with spaces", POP3_PARSE_OK, POP3_CMD_PASS, 1, "secret with spaces", NULL },
    { "STAT", POP3_PARSE_OK, POP3_CMD_STAT, 0, NULL, NULL },
    { "list 3", POP3_PARSE_OK, POP3_CMD_LIST, 1, "3", NULL },
    { "TOP 1 10", POP3_PARSE_OK, POP3_CMD_TOP, 2, "1", "10" },
    { "TOP 1", POP3_PARSE_BAD_ARGS, POP3_CMD_TOP, 1, "1", NULL },
    { "RETR", POP3_PARSE_BAD_ARGS, POP3_CMD_RETR, 0, NULL, NULL },
    { "STAT 1", POP3_PARSE_BAD_ARGS, POP3_CMD_STAT, 1, "1", NULL },
    { "USER", POP3_PARSE_BAD_ARGS, POP3_CMD_USER, 0, NULL, NULL },
    { "AUTH PLAIN AGFsaWNlAHB3", POP3_PARSE_OK, POP3_CMD_AUTH, 2, "PLAIN", "AGFsaWNlAHB3" },
    { "XYZZY 1 2 3 4", POP3_PARSE_OK, POP3_CMD_UNKNOWN, 3, "1", "2" },
    { "   ", POP3_PARSE_EMPTY, POP3_CMD_UNKNOWN, 0, NULL, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    Pop3Line l;
    g_autofree char *copy = NULL;
    Pop3ParseResult r = parse(cases[i].line, &l, &copy);

    g_assert_cmpint(r, ==, cases[i].result);
    if (r == POP3_PARSE_EMPTY)
      continue;
    g_assert_cmpint(l.cmd->id, ==, cases[i].id);
    g_assert_cmpuint(l.n_args, ==, cases[i].n_args);
    g_assert_cmpstr(l.args[0], ==, cases[i].arg0);
    if (cases[i].n_args > 1)
      g_assert_cmpstr(l.args[1], ==, cases[i].arg1);
  }
  {
    char line[] = "USER a\0b";
    Pop3Line l;
    g_assert_cmpint(pop3_parse_line(line, 8, &l), ==, POP3_PARSE_NUL);
  }
  {
    g_autofree char *longline = g_strnfill(300, 'x');
    Pop3Line l;
    longline[0] = 'U';
    g_assert_cmpint(pop3_parse_line(longline, 300, &l), ==, POP3_PARSE_TOO_LONG);
  }
  g_assert_true(pop3_command_find("uidl")->states & POP3_STATE_TRANSACTION);
  g_assert_false(pop3_command_find("RETR")->states & POP3_STATE_AUTHORIZATION);
  g_assert_true(pop3_command_find("CAPA")->states & POP3_STATE_AUTHORIZATION);
}

static void
test_numbers(void)
{
  guint n;

  g_assert_true(pop3_parse_msgno("1", 3, &n) && n == 1);
  g_assert_true(pop3_parse_msgno("3", 3, &n) && n == 3);
  g_assert_false(pop3_parse_msgno("0", 3, &n));
  g_assert_false(pop3_parse_msgno("4", 3, &n));
  g_assert_false(pop3_parse_msgno("-1", 3, &n));
  g_assert_false(pop3_parse_msgno("1a", 3, &n));
  g_assert_false(pop3_parse_msgno("99999999999", G_MAXUINT, &n));
  g_assert_true(pop3_parse_count("0", &n) && n == 0);
  g_assert_true(pop3_parse_count("9999999999", &n) && n == G_MAXUINT);
  g_assert_false(pop3_parse_count("", &n));
}

/* Encodes in, a chunk of step bytes at a time (0: whole). */
static char *
encode(const char *in, guint max_lines, gsize step, guint64 *octets)
{
  GString *out = g_string_new(NULL);
  gsize len = strlen(in);
  Pop3Encoder e;

  pop3_encoder_init(&e, max_lines);
  for (gsize off = 0; off < len; off += step ? step : len)
    pop3_encoder_feed(&e, in + off, MIN(step ? step : len, len - off), out);
  pop3_encoder_finish(&e, out);
  if (octets)
    *octets = e.octets;
  return g_string_free(out, FALSE);
}

static void
test_encoding(void)
{
  static const struct {
    const char *in;
    guint max;
    const char *out;
    guint64 octets;
  } cases[] = {
    { "Subject: a\n\nbody\n", G_MAXUINT, "Subject: a\r\n\r\nbody\r\n.\r\n", 20 },
    { "Subject: a\r\n\r\nbody\r\n", G_MAXUINT, "Subject: a\r\n\r\nbody\r\n.\r\n", 20 },
    { "S: a\n\n.hidden\n..two\n.\n", G_MAXUINT, "S: a\r\n\r\n..hidden\r\n...two\r\n..\r\n.\r\n", 27 },
    { "S: a\n\nno newline", G_MAXUINT, "S: a\r\n\r\nno newline\r\n.\r\n", 20 },
    { "S: a\n\nbare\rcr\n", G_MAXUINT, "S: a\r\n\r\nbare\rcr\r\n.\r\n", 17 },
    { "S: a\n\n1\n2\n3\n", 2, "S: a\r\n\r\n1\r\n2\r\n.\r\n", 14 },
    { "S: a\nT: b\n\n1\n2\n", 0, "S: a\r\nT: b\r\n\r\n.\r\n", 14 },
    { "S: a\n\n1\n", 5, "S: a\r\n\r\n1\r\n.\r\n", 11 },
    { "", G_MAXUINT, ".\r\n", 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    for (gsize step = 0; step <= 3; step++) {
      guint64 octets = 0;
      g_autofree char *out = encode(cases[i].in, cases[i].max, step, &octets);

      if (strcmp(out, cases[i].out) != 0)
        g_error("case %u step %" G_GSIZE_FORMAT ": got \"%s\"", i, step, g_strescape(out, NULL));
      g_assert_cmpuint(octets, ==, cases[i].octets);
    }
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/pop3/commands", test_commands);
  g_test_add_func("/pop3/numbers", test_numbers);
  g_test_add_func("/pop3/encoding", test_encoding);
  return g_test_run();
}
