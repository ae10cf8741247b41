/* test-pop3-session.c - the POP3 conversation on a real maildir: every
 * command in each state, deletion semantics (DELE + RSET, DELE + a dropped
 * connection, DELE + QUIT), TOP and UIDL, plaintext refused without TLS,
 * STLS, AUTH PLAIN and LOGIN (RFC 5034), and the bad command limit. */
#include "pop3-session.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  char *dir;
  Pop3Session s;
  GString *out;
} Fixture;

static void
put(const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename(dir, "new", name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-pop3-session-XXXXXX", NULL);
  for (guint i = 0; i < 3; i++) {
    g_autofree char *sub = g_build_filename(f->dir, (const char *[]) { "new", "cur", "tmp" }[i],
                                            NULL);
    g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
  }
  put(f->dir, "100.A.host", "Subject: one\n\nbody one\n");
  put(f->dir, "200.B.host", "Subject: two\n\n.starts with a dot\nline 2\nline 3\n");
  pop3_session_init(&f->s);
  f->out = g_string_new(NULL);
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf %s", f->dir);

  pop3_session_clear(&f->s);
  g_string_free(f->out, TRUE);
  g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
  g_free(f->dir);
}

/* Sends one line; returns the response text (and the action in *act). */
static const char *
cmd(Fixture *f, const char *line, Pop3Action *act)
{
  g_autofree char *copy = g_strdup(line);
  Pop3Action a;

  g_string_truncate(f->out, 0);
  a = pop3_session_line(&f->s, copy, strlen(copy), f->out);
  if (act)
    *act = a;
  return f->out->str;
}

static void
login(Fixture *f)
{
  Pop3Action act;
  g_autoptr(GError) error = NULL;
  Pop3Drop *drop = g_new0(Pop3Drop, 1);

  g_assert_cmpstr(cmd(f, "USER alice", NULL), ==, "+OK\r\n");
  cmd(f, "PASS secret word", &act);
  g_assert_cmpint(act, ==, POP3_ACTION_LOGIN);
  g_assert_cmpstr(f->s.user, ==, "alice");
  g_assert_cmpstr(f->s.password, ==, "secret word");
  drop->maildir = pop3_maildir_open(f->dir, &error);
  g_assert_no_error(error);
  g_string_truncate(f->out, 0);
  pop3_session_login(&f->s, drop, NULL, f->out);
  g_assert_cmpstr(f->out->str, ==, "+OK Logged in.\r\n");
  g_assert_null(f->s.password);
}

static void
test_transaction(Fixture *f, gconstpointer data)
{
  Pop3Action act;

  f->s.plaintext_ok = TRUE;
  g_assert_cmpstr(cmd(f, "STAT", NULL), ==, "-ERR Unknown command.\r\n");   /* not yet */
  login(f);
  g_assert_cmpstr(cmd(f, "STAT", NULL), ==, "+OK 2 78\r\n");
  g_assert_cmpstr(cmd(f, "LIST", NULL), ==, "+OK 2 messages:\r\n1 26\r\n2 52\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "LIST 2", NULL), ==, "+OK 2 52\r\n");
  g_assert_cmpstr(cmd(f, "LIST 3", NULL), ==, "-ERR There's no message 3.\r\n");
  g_assert_cmpstr(cmd(f, "UIDL", NULL), ==, "+OK\r\n1 100.A.host\r\n2 200.B.host\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "UIDL 1", NULL), ==, "+OK 1 100.A.host\r\n");
  g_assert_cmpstr(cmd(f, "RETR 2", NULL), ==,
                  "+OK 52 octets\r\nSubject: two\r\n\r\n..starts with a dot\r\nline 2\r\n"
                  "line 3\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "TOP 2 1", NULL), ==,
                  "+OK\r\nSubject: two\r\n\r\n..starts with a dot\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "TOP 1 x", NULL), ==, "-ERR Invalid number of lines\r\n");
  g_assert_cmpstr(cmd(f, "DELE 1", NULL), ==, "+OK Marked to be deleted.\r\n");
  g_assert_cmpstr(cmd(f, "RETR 1", NULL), ==, "-ERR Message is deleted.\r\n");
  g_assert_cmpstr(cmd(f, "DELE 1", NULL), ==, "-ERR Message is deleted.\r\n");
  g_assert_cmpstr(cmd(f, "STAT", NULL), ==, "+OK 1 52\r\n");
  g_assert_cmpstr(cmd(f, "LIST", NULL), ==, "+OK 1 messages:\r\n2 52\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "RSET", NULL), ==, "+OK\r\n");
  g_assert_cmpstr(cmd(f, "STAT", NULL), ==, "+OK 2 78\r\n");
  g_assert_cmpstr(cmd(f, "NOOP", NULL), ==, "+OK\r\n");
  g_assert_cmpstr(cmd(f, "USER bob", NULL), ==, "-ERR Unknown command.\r\n");
  g_assert_cmpstr(cmd(f, "DELE 2", NULL), ==, "+OK Marked to be deleted.\r\n");
  g_assert_cmpstr(cmd(f, "QUIT", &act), ==, "+OK Logging out.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_CLOSE);
  g_assert_true(f->s.updated);
  {
    /* message 2 is gone; message 1 (retrieved? no: only 2 was RETR'd) stays in new/ */
    g_autofree char *two = g_build_filename(f->dir, "new", "200.B.host", NULL);
    g_autofree char *one = g_build_filename(f->dir, "new", "100.A.host", NULL);
    g_assert_false(g_file_test(two, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(one, G_FILE_TEST_EXISTS));
  }
}

static void
test_dropped_connection_deletes_nothing(Fixture *f, gconstpointer data)
{
  f->s.plaintext_ok = TRUE;
  login(f);
  g_assert_cmpstr(cmd(f, "DELE 1", NULL), ==, "+OK Marked to be deleted.\r\n");
  g_assert_cmpstr(cmd(f, "RETR 2", NULL), !=, "");
  pop3_session_clear(&f->s);      /* the connection is gone: no QUIT */
  pop3_session_init(&f->s);
  {
    g_autofree char *one = g_build_filename(f->dir, "new", "100.A.host", NULL);
    g_autofree char *two = g_build_filename(f->dir, "new", "200.B.host", NULL);
    g_assert_true(g_file_test(one, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(two, G_FILE_TEST_EXISTS));
  }
}

static void
test_authorization(Fixture *f, gconstpointer data)
{
  Pop3Action act;

  /* no TLS yet and plaintext not allowed: USER/PASS refused, STLS offered */
  f->s.tls_available = TRUE;
  f->s.sasl_mechanisms = "PLAIN LOGIN";
  g_assert_cmpstr(cmd(f, "CAPA", NULL), ==,
                  "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
                  "STLS\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "USER alice", NULL), ==,
                  "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                  "connections.\r\n");
  g_assert_cmpstr(cmd(f, "STLS", &act), ==, "+OK Begin TLS negotiation now.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_STLS);
  pop3_session_tls_started(&f->s);
  g_assert_cmpstr(cmd(f, "STLS", NULL), ==, "-ERR TLS is already active.\r\n");
  g_assert_cmpstr(cmd(f, "CAPA", NULL), ==,
                  "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
                  "USER\r\nSASL PLAIN LOGIN\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "PASS x", NULL), ==, "-ERR No username given.\r\n");
  g_assert_cmpstr(cmd(f, "APOP alice 0123456789abcdef", NULL), ==, "-ERR APOP is not enabled.\r\n");
  g_assert_cmpstr(cmd(f, "USER", NULL), ==, "-ERR Missing argument.\r\n");
  g_assert_cmpstr(cmd(f, "USER alice", NULL), ==, "+OK\r\n");
  cmd(f, "PASS wrong", &act);
  g_assert_cmpint(act, ==, POP3_ACTION_LOGIN);
  g_string_truncate(f->out, 0);
  pop3_session_login(&f->s, NULL, NULL, f->out);
  g_assert_cmpstr(f->out->str, ==, "-ERR [AUTH] Authentication failed.\r\n");
  g_assert_null(f->s.user);     /* USER again before the next PASS */
  g_assert_cmpstr(cmd(f, "USER alice", NULL), ==, "+OK\r\n");
  cmd(f, "PASS right", &act);
  g_string_truncate(f->out, 0);
  pop3_session_login(&f->s, NULL, "[IN-USE] Mailbox is locked by another POP3 session.",
                     f->out);
  g_assert_cmpstr(f->out->str, ==, "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n");
  g_assert_cmpstr(cmd(f, "QUIT", &act), ==, "+OK Logging out.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_CLOSE);
  g_assert_false(f->s.updated);
}

static void
test_bad_commands(Fixture *f, gconstpointer data)
{
  Pop3Action act = POP3_ACTION_NONE;

  f->s.bad_command_limit = 3;
  g_assert_cmpstr(cmd(f, "HELO", NULL), ==, "-ERR Unknown command.\r\n");
  g_assert_cmpstr(cmd(f, "", NULL), ==, "-ERR Unknown command.\r\n");
  g_assert_cmpstr(cmd(f, "RETR 1", &act), ==, "-ERR Too many bad commands.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_CLOSE);
}

static void
test_auth(Fixture *f, gconstpointer data)
{
  Pop3Action act;

  f->s.sasl_mechanisms = "PLAIN LOGIN";
  /* Without TLS and without a plaintext exception: refused. */
  g_assert_cmpstr(cmd(f, "AUTH PLAIN AGFsaWNlAHNlY3JldA==", NULL), ==,
                  "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                  "connections.\r\n");
  f->s.plaintext_ok = TRUE;
  g_assert_cmpstr(cmd(f, "AUTH", NULL), ==, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
  g_assert_cmpstr(cmd(f, "AUTH CRAM-MD5", NULL), ==,
                  "-ERR Unsupported authentication mechanism.\r\n");

  /* PLAIN with the initial response: "\0alice\0secret" */
  cmd(f, "AUTH plain AGFsaWNlAHNlY3JldA==", &act);
  g_assert_cmpint(act, ==, POP3_ACTION_LOGIN);
  g_assert_cmpstr(f->s.user, ==, "alice");
  g_assert_cmpstr(f->s.password, ==, "secret");
  g_assert_cmpstr(f->s.method, ==, "PLAIN");
  g_string_truncate(f->out, 0);
  pop3_session_login(&f->s, NULL, "[AUTH] Authentication failed.", f->out);

  /* PLAIN after an empty challenge; the same authzid is fine:
   * "alice\0alice\0pass word" */
  g_assert_cmpstr(cmd(f, "AUTH PLAIN", &act), ==, "+ \r\n");
  cmd(f, "YWxpY2UAYWxpY2UAcGFzcyB3b3Jk", &act);
  g_assert_cmpint(act, ==, POP3_ACTION_LOGIN);
  g_assert_cmpstr(f->s.password, ==, "pass word");
  pop3_session_forget_password(&f->s);

  /* Another authorization identity ("bob\0alice\0secret"): a failed login. */
  g_assert_cmpstr(cmd(f, "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==", &act), ==,
                  "-ERR [AUTH] Authentication failed.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_NONE);
  g_assert_null(f->s.password);
  /* Malformed: no NULs, bad base64, a cancel. */
  g_assert_cmpstr(cmd(f, "AUTH PLAIN YWxpY2U=", NULL), ==, "-ERR [AUTH] Authentication failed.\r\n");
  g_assert_cmpstr(cmd(f, "AUTH PLAIN !!!!", NULL), ==, "-ERR Invalid base64 data.\r\n");
  g_assert_cmpstr(cmd(f, "AUTH PLAIN", NULL), ==, "+ \r\n");
  g_assert_cmpstr(cmd(f, "*", NULL), ==, "-ERR Authentication aborted.\r\n");
  /* The line after a challenge is never a command. */
  g_assert_cmpstr(cmd(f, "AUTH PLAIN", NULL), ==, "+ \r\n");
  g_assert_cmpstr(cmd(f, "QUIT", &act), ==, "-ERR [AUTH] Authentication failed.\r\n");
  g_assert_cmpint(act, ==, POP3_ACTION_NONE);

  /* LOGIN: two challenges, or the user name as initial response. */
  g_assert_cmpstr(cmd(f, "AUTH LOGIN", NULL), ==, "+ VXNlcm5hbWU6\r\n");
  g_assert_cmpstr(cmd(f, "YWxpY2U=", NULL), ==, "+ UGFzc3dvcmQ6\r\n");
  cmd(f, "c2VjcmV0", &act);
  g_assert_cmpint(act, ==, POP3_ACTION_LOGIN);
  g_assert_cmpstr(f->s.user, ==, "alice");
  g_assert_cmpstr(f->s.password, ==, "secret");
  g_assert_cmpstr(f->s.method, ==, "LOGIN");
  pop3_session_forget_password(&f->s);
  g_assert_cmpstr(cmd(f, "AUTH LOGIN YWxpY2U=", NULL), ==, "+ UGFzc3dvcmQ6\r\n");
  g_assert_cmpstr(cmd(f, "*", NULL), ==, "-ERR Authentication aborted.\r\n");
  g_assert_null(f->s.user);

  /* IMPLEMENTATION only when configured. */
  f->s.implementation = "Postern";
  g_assert_true(g_str_has_suffix(cmd(f, "CAPA", NULL), "IMPLEMENTATION Postern\r\n.\r\n"));
}

/* Many random lines before the login (commands, arguments, base64,
 * garbage): every response is one or more CRLF lines starting with +OK,
 * -ERR or "+ ", a multi-line one ends with ".", and a login only ever
 * hands over a user and a password without NUL. */
static void
test_random_lines(Fixture *f, gconstpointer data)
{
  static const char *const words[] = {
    "USER", "PASS", "AUTH", "PLAIN", "LOGIN", "CAPA", "STLS", "APOP", "QUIT", "STAT", "LIST",
    "RETR", "TOP", "UIDL", "NOOP", "RSET", "DELE", "*", "=", "AGFsaWNlAHNlY3JldA==",
    "YWxpY2U=", "c2VjcmV0", "!!", "alice", "1", "0", "-1", "99999999999", "\t", " ",
  };
  GRand *rand = g_rand_new_with_seed(1939);

  f->s.sasl_mechanisms = "PLAIN LOGIN";
  f->s.bad_command_limit = 0;
  for (guint round = 0; round < 20000; round++) {
    GString *line = g_string_new(NULL);
    guint n = (guint) g_rand_int_range(rand, 0, 5);
    Pop3Action act;

    f->s.plaintext_ok = g_rand_boolean(rand);
    f->s.tls_available = g_rand_boolean(rand);
    for (guint i = 0; i < n; i++) {
      if (i)
        g_string_append_c(line, ' ');
      if (g_rand_int_range(rand, 0, 10) == 0)
        g_string_append_c(line, (char) g_rand_int_range(rand, 1, 256));
      else
        g_string_append(line, words[g_rand_int_range(rand, 0, G_N_ELEMENTS(words))]);
    }
    g_string_truncate(f->out, 0);
    act = pop3_session_line(&f->s, line->str, line->len, f->out);
    g_assert_true(g_str_has_suffix(f->out->str, "\r\n") || act == POP3_ACTION_LOGIN);
    g_assert_true(f->out->len == 0 || g_str_has_prefix(f->out->str, "+OK")
                  || g_str_has_prefix(f->out->str, "-ERR ") || g_str_has_prefix(f->out->str, "+ "));
    if (g_str_has_prefix(f->out->str, "+OK\r\n") && f->out->len > 5)
      g_assert_true(g_str_has_suffix(f->out->str, "\r\n.\r\n"));
    if (act == POP3_ACTION_LOGIN) {
      g_assert_nonnull(f->s.user);
      g_assert_nonnull(f->s.password);
      g_assert_cmpuint(strlen(f->s.user), >, 0);
      g_string_truncate(f->out, 0);
      pop3_session_login(&f->s, NULL, "[AUTH] Authentication failed.", f->out);
      g_assert_null(f->s.password);
    }
    if (act == POP3_ACTION_STLS)
      pop3_session_tls_started(&f->s);
    if (act == POP3_ACTION_CLOSE) {
      pop3_session_clear(&f->s);
      pop3_session_init(&f->s);
      f->s.sasl_mechanisms = "PLAIN LOGIN";
      f->s.bad_command_limit = 0;
    }
    g_assert_cmpint(f->s.state, ==, POP3_STATE_AUTHORIZATION);
    g_string_free(line, TRUE);
  }
  g_rand_free(rand);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, setup, fn, teardown)
  ADD("/pop3/session/transaction", test_transaction);
  ADD("/pop3/session/dropped-connection", test_dropped_connection_deletes_nothing);
  ADD("/pop3/session/authorization", test_authorization);
  ADD("/pop3/session/bad-commands", test_bad_commands);
  ADD("/pop3/session/auth", test_auth);
  ADD("/pop3/session/random-lines", test_random_lines);
  return g_test_run();
}
