/* test-smtp-client-proto.c - the SMTP client's protocol without sockets:
 * multi-line replies and enhanced codes, malformed replies, the EHLO
 * extensions (with the old AUTH= form), a transaction with PIPELINING
 * (per-recipient 2xx/4xx/5xx, MAIL refused, no recipient accepted, DATA
 * refused, the final reply) and without it (one command per reply),
 * SIZE refused before sending, an aborted session, and DATA's dot
 * stuffing in any chunking. */
#include "smtp-client-proto.h"

#include <string.h>

/* Feeds "NNN-...\r\nNNN ...\r\n" lines; the reply is complete. */
static void
reply_of(SmtpClientReply *r, const char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\r\n", -1);
  SmtpReplyStep step = SMTP_REPLY_MORE;

  memset(r, 0, sizeof *r);
  for (guint i = 0; lines[i] && *lines[i]; i++) {
    g_assert_cmpint(step, ==, SMTP_REPLY_MORE);
    step = smtp_client_reply_feed(r, lines[i], strlen(lines[i]));
  }
  g_assert_cmpint(step, ==, SMTP_REPLY_DONE);
}

static void
test_replies(void)
{
  SmtpClientReply r;
  g_autofree char *text = NULL;
  static const char *const bad[] = { "", "25", "abc ok", "250x", "150 too low", "650 too high",
                                     "2500 four digits" };

  reply_of(&r, "250-mx.example Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
  g_assert_cmpint(r.code, ==, 250);
  g_assert_cmpuint(r.lines->len, ==, 3);
  g_assert_cmpstr(r.enhanced, ==, "");
  smtp_client_reply_clear(&r);

  reply_of(&r, "550-5.1.1 <x@y>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n");
  g_assert_cmpstr(r.enhanced, ==, "5.1.1");
  text = smtp_client_reply_text(&r);
  g_assert_cmpstr(text, ==, "550 5.1.1 <x@y>: Recipient address rejected: 5.1.1 User unknown");
  smtp_client_reply_clear(&r);

  /* an enhanced code of another class is not one; a bare code is a reply */
  reply_of(&r, "451 5.1.1 odd\r\n");
  g_assert_cmpstr(r.enhanced, ==, "");
  smtp_client_reply_clear(&r);
  reply_of(&r, "354\r\n");
  g_assert_cmpint(r.code, ==, 354);
  smtp_client_reply_clear(&r);

  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    memset(&r, 0, sizeof r);
    g_assert_cmpint(smtp_client_reply_feed(&r, bad[i], strlen(bad[i])), ==, SMTP_REPLY_BAD);
    smtp_client_reply_clear(&r);
  }
  /* the code must not change inside one reply */
  memset(&r, 0, sizeof r);
  g_assert_cmpint(smtp_client_reply_feed(&r, "250-a", 5), ==, SMTP_REPLY_MORE);
  g_assert_cmpint(smtp_client_reply_feed(&r, "251 b", 5), ==, SMTP_REPLY_BAD);
  smtp_client_reply_clear(&r);
  /* a reply that never ends is refused at the limit, not kept growing */
  memset(&r, 0, sizeof r);
  for (guint i = 0; i < SMTP_CLIENT_REPLY_LINES_MAX; i++)
    g_assert_cmpint(smtp_client_reply_feed(&r, "250-more", 8), ==, SMTP_REPLY_MORE);
  g_assert_cmpint(smtp_client_reply_feed(&r, "250-more", 8), ==, SMTP_REPLY_BAD);
  smtp_client_reply_clear(&r);
}

static void
test_ehlo(void)
{
  SmtpClientReply r;
  SmtpClientCaps caps = { 0 };

  reply_of(&r, "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
               "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN CRAM-MD5\r\n"
               "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
               "250 CHUNKING\r\n");
  smtp_client_caps_parse(&r, &caps);
  g_assert_true(caps.esmtp && caps.pipelining && caps.starttls && caps.eightbitmime);
  g_assert_true(caps.enhancedstatuscodes && caps.dsn && caps.smtputf8 && caps.chunking);
  g_assert_true(caps.size);
  g_assert_cmpuint(caps.size_limit, ==, 10240000);
  g_assert_cmpstr(caps.auth, ==, "PLAIN LOGIN");     /* the first AUTH line */
  smtp_client_reply_clear(&r);

  reply_of(&r, "250-old.example\r\n250-AUTH=login plain\r\n250 SIZE\r\n");
  smtp_client_caps_parse(&r, &caps);
  g_assert_cmpstr(caps.auth, ==, "LOGIN PLAIN");
  g_assert_true(caps.size);
  g_assert_cmpuint(caps.size_limit, ==, 0);
  g_assert_false(caps.pipelining);
  smtp_client_reply_clear(&r);
  smtp_client_caps_clear(&caps);
}

/* One reply into the transaction; returns what it says to send. */
static char *
reply_tx(SmtpClientTx *tx, const char *text, SmtpTxState want)
{
  SmtpClientReply r;
  char *send = NULL;

  reply_of(&r, text);
  g_assert_cmpint(smtp_client_tx_reply(tx, &r, &send), ==, want);
  smtp_client_reply_clear(&r);
  return send;
}

static const SmtpClientRcpt *
rcpt(const SmtpClientTx *tx, guint i)
{
  return tx->rcpts->pdata[i];
}

static void
test_pipelined(void)
{
  SmtpClientCaps caps = { .esmtp = TRUE, .pipelining = TRUE, .size = TRUE, .eightbitmime = TRUE };
  const char *rcpts[] = { "a@x.example", "b@x.example", "c@x.example", NULL };
  g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@here.example", rcpts, 1234, TRUE);
  g_autofree char *begin = smtp_client_tx_begin(tx);

  g_assert_cmpstr(begin, ==, "MAIL FROM:<s@here.example> SIZE=1234 BODY=8BITMIME\r\n"
                             "RCPT TO:<a@x.example>\r\nRCPT TO:<b@x.example>\r\n"
                             "RCPT TO:<c@x.example>\r\nDATA\r\n");
  g_assert_null(reply_tx(tx, "250 2.1.0 Ok\r\n", SMTP_TX_RCPT));
  g_assert_null(reply_tx(tx, "250 2.1.5 Ok\r\n", SMTP_TX_RCPT));
  g_assert_null(reply_tx(tx, "450 4.2.0 <b@x.example>: greylisted\r\n", SMTP_TX_RCPT));
  g_assert_null(reply_tx(tx, "550 5.1.1 <c@x.example>: unknown\r\n", SMTP_TX_DATA));
  g_assert_null(reply_tx(tx, "354 End data with <CR><LF>.<CR><LF>\r\n", SMTP_TX_BODY));
  g_assert_null(reply_tx(tx, "250 2.0.0 Ok: queued as 12345\r\n", SMTP_TX_DONE));
  g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_SENT);
  g_assert_cmpstr(rcpt(tx, 0)->dsn, ==, "2.0.0");
  g_assert_cmpstr(rcpt(tx, 0)->reply, ==, "250 2.0.0 Ok: queued as 12345");
  g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_DEFER);
  g_assert_cmpstr(rcpt(tx, 1)->dsn, ==, "4.2.0");
  g_assert_cmpint(rcpt(tx, 2)->status, ==, SMTP_RCPT_BOUNCE);
  g_assert_cmpstr(rcpt(tx, 2)->dsn, ==, "5.1.1");
}

/* DSN and SMTPUTF8 parameters go only to a server that offers them; a
 * non-ASCII envelope never goes to one without SMTPUTF8. */
static void
test_dsn_and_smtputf8(void)
{
  SmtpClientCaps caps = { .esmtp = TRUE, .pipelining = TRUE, .dsn = TRUE, .smtputf8 = TRUE };
  SmtpClientCaps plain = { .esmtp = TRUE, .pipelining = TRUE };
  const char *rcpts[] = { "a@x.example", "b@x.example", NULL };
  const char *utf8[] = { "j\xc3\xb6rg@x.example", NULL };

  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = NULL;

    tx->envid = g_strdup("id+1 =x");
    tx->ret = g_strdup("HDRS");
    tx->smtputf8 = TRUE;
    ((SmtpClientRcpt *) tx->rcpts->pdata[0])->notify = g_strdup("SUCCESS,FAILURE");
    ((SmtpClientRcpt *) tx->rcpts->pdata[0])->orcpt = g_strdup("rfc822;A+b@x.example");
    begin = smtp_client_tx_begin(tx);
    g_assert_cmpstr(begin, ==, "MAIL FROM:<s@h> SMTPUTF8 RET=HDRS ENVID=id+2B1+20+3Dx\r\n"
                               "RCPT TO:<a@x.example> NOTIFY=SUCCESS,FAILURE "
                               "ORCPT=rfc822;A+2Bb@x.example\r\n"
                               "RCPT TO:<b@x.example>\r\nDATA\r\n");
  }
  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&plain, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = NULL;

    tx->envid = g_strdup("id");
    tx->ret = g_strdup("FULL");
    tx->smtputf8 = TRUE;
    ((SmtpClientRcpt *) tx->rcpts->pdata[0])->notify = g_strdup("NEVER");
    begin = smtp_client_tx_begin(tx);
    g_assert_cmpstr(begin, ==, "MAIL FROM:<s@h>\r\nRCPT TO:<a@x.example>\r\n"
                               "RCPT TO:<b@x.example>\r\nDATA\r\n");
  }
  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&plain, "s@h", utf8, 0, FALSE);

    tx->smtputf8 = TRUE;
    tx->peer = "mx.example[192.0.2.1]:25";
    g_assert_null(smtp_client_tx_begin(tx));
    g_assert_cmpint(tx->state, ==, SMTP_TX_DONE);
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpstr(rcpt(tx, 0)->dsn, ==, "5.6.7");
    g_assert_cmpstr(rcpt(tx, 0)->reply, ==, "SMTPUTF8 is required, but was not offered by host "
                                            "mx.example[192.0.2.1]:25");
  }
  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", utf8, 0, FALSE);
    g_autofree char *begin = NULL;

    tx->smtputf8 = TRUE;
    begin = smtp_client_tx_begin(tx);
    g_assert_cmpstr(begin, ==, "MAIL FROM:<s@h> SMTPUTF8\r\n"
                               "RCPT TO:<j\xc3\xb6rg@x.example>\r\nDATA\r\n");
  }
}

static void
test_pipelined_failures(void)
{
  SmtpClientCaps caps = { .esmtp = TRUE, .pipelining = TRUE };
  const char *rcpts[] = { "a@x.example", "b@x.example", NULL };

  {
    /* MAIL refused: every recipient gets its verdict, the rest is read */
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "", rcpts, 10, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);

    g_assert_cmpstr(begin, ==, "MAIL FROM:<>\r\nRCPT TO:<a@x.example>\r\n"
                               "RCPT TO:<b@x.example>\r\nDATA\r\n");   /* no SIZE= offered */
    g_assert_null(reply_tx(tx, "553 5.7.1 sender rejected\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "503 5.5.1 need MAIL\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "503 5.5.1 need MAIL\r\n", SMTP_TX_DATA));
    g_assert_null(reply_tx(tx, "503 5.5.1 need RCPT\r\n", SMTP_TX_DONE));
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpstr(rcpt(tx, 0)->reply, ==, "553 5.7.1 sender rejected");
    g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_BOUNCE);
  }
  {
    /* no recipient accepted, yet DATA got 354: end with an empty message */
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);
    g_autofree char *dot = NULL;

    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "421 4.7.0 closing\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "550 no\r\n", SMTP_TX_DATA));
    dot = reply_tx(tx, "354 go\r\n", SMTP_TX_DOT);
    g_assert_cmpstr(dot, ==, ".\r\n");
    g_assert_null(reply_tx(tx, "554 5.5.1 no valid recipients\r\n", SMTP_TX_DONE));
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_DEFER);
    g_assert_cmpstr(rcpt(tx, 0)->dsn, ==, "4.7.0");
    g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpstr(rcpt(tx, 1)->dsn, ==, "5.0.0");
  }
  {
    /* DATA refused: the accepted recipients take that reply; a 5xx after the dot bounces */
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);

    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_DATA));
    g_assert_null(reply_tx(tx, "451 4.3.0 try later\r\n", SMTP_TX_DONE));
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_DEFER);
    g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_DEFER);
  }
  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);

    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_DATA));
    g_assert_null(reply_tx(tx, "354 go\r\n", SMTP_TX_BODY));
    g_assert_null(reply_tx(tx, "554 5.7.1 spam\r\n", SMTP_TX_DONE));
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpstr(rcpt(tx, 1)->dsn, ==, "5.7.1");
  }
  {
    /* the connection breaks after RCPT: the open recipients are deferred */
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 0, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);

    g_assert_null(reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT));
    g_assert_null(reply_tx(tx, "550 5.1.1 no\r\n", SMTP_TX_RCPT));
    smtp_client_tx_abort(tx, "lost connection with mx.example[192.0.2.1] while sending RCPT TO");
    g_assert_cmpint(tx->state, ==, SMTP_TX_DONE);
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_DEFER);
    g_assert_cmpstr(rcpt(tx, 1)->dsn, ==, "4.4.2");
  }
}

static void
test_lockstep(void)
{
  SmtpClientCaps caps = { .esmtp = TRUE, .size = TRUE, .size_limit = 100 };
  const char *rcpts[] = { "a@x.example", "b@x.example", NULL };
  g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 50, TRUE);
  g_autofree char *begin = smtp_client_tx_begin(tx);
  g_autofree char *r1 = NULL, *r2 = NULL, *data = NULL;

  /* no PIPELINING, no 8BITMIME: MAIL alone, no BODY= */
  g_assert_cmpstr(begin, ==, "MAIL FROM:<s@h> SIZE=50\r\n");
  r1 = reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT);
  g_assert_cmpstr(r1, ==, "RCPT TO:<a@x.example>\r\n");
  r2 = reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT);
  g_assert_cmpstr(r2, ==, "RCPT TO:<b@x.example>\r\n");
  data = reply_tx(tx, "550 no\r\n", SMTP_TX_DATA);
  g_assert_cmpstr(data, ==, "DATA\r\n");
  g_assert_null(reply_tx(tx, "354 go\r\n", SMTP_TX_BODY));
  g_assert_null(reply_tx(tx, "250 queued\r\n", SMTP_TX_DONE));
  g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_SENT);
  g_assert_cmpint(rcpt(tx, 1)->status, ==, SMTP_RCPT_BOUNCE);
}

static void
test_lockstep_nobody_accepted_and_size(void)
{
  SmtpClientCaps caps = { .esmtp = TRUE, .size = TRUE, .size_limit = 100 };
  const char *rcpts[] = { "a@x.example", NULL };

  {
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 50, FALSE);
    g_autofree char *begin = smtp_client_tx_begin(tx);

    /* every RCPT refused: no DATA at all */
    g_autofree char *r1 = reply_tx(tx, "250 ok\r\n", SMTP_TX_RCPT);

    g_assert_cmpstr(r1, ==, "RCPT TO:<a@x.example>\r\n");
    g_assert_null(reply_tx(tx, "550 no\r\n", SMTP_TX_DONE));
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
  }
  {
    /* over the server's SIZE: nothing is sent, every recipient bounces 5.3.4 */
    g_autoptr(SmtpClientTx) tx = smtp_client_tx_new(&caps, "s@h", rcpts, 101, FALSE);

    g_assert_null(smtp_client_tx_begin(tx));
    g_assert_cmpint(tx->state, ==, SMTP_TX_DONE);
    g_assert_cmpint(rcpt(tx, 0)->status, ==, SMTP_RCPT_BOUNCE);
    g_assert_cmpstr(rcpt(tx, 0)->dsn, ==, "5.3.4");
  }
}

static char *
stuff(const char *msg, gsize step)
{
  GString *out = g_string_new(NULL);
  SmtpDotStuffer d;
  gsize len = strlen(msg);

  smtp_dot_stuffer_init(&d);
  for (gsize off = 0; off < len; off += step)
    smtp_dot_stuffer_feed(&d, msg + off, MIN(step, len - off), out);
  smtp_dot_stuffer_finish(&d, out);
  return g_string_free(out, FALSE);
}

static void
test_dot_stuffing(void)
{
  static const struct { const char *in, *out; } cases[] = {
    { "", ".\r\n" },
    { "a\n", "a\r\n.\r\n" },
    { "a", "a\r\n.\r\n" },
    { ".\n", "..\r\n.\r\n" },
    { "x\n.\n..y\r\n.z", "x\r\n..\r\n...y\r\n..z\r\n.\r\n" },
    { "cr\r\nlf\nbare\rcr\n", "cr\r\nlf\r\nbare\rcr\r\n.\r\n" },
    { "ends with cr\r", "ends with cr\r\n.\r\n" },
    { "\r\n.\r\n", "\r\n..\r\n.\r\n" },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
    for (gsize step = 1; step <= 4; step++) {
      g_autofree char *got = stuff(cases[i].in, step);
      g_assert_cmpstr(got, ==, cases[i].out);
    }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/smtp/client/replies", test_replies);
  g_test_add_func("/smtp/client/ehlo", test_ehlo);
  g_test_add_func("/smtp/client/pipelined", test_pipelined);
  g_test_add_func("/smtp/client/pipelined-failures", test_pipelined_failures);
  g_test_add_func("/smtp/client/dsn-smtputf8", test_dsn_and_smtputf8);
  g_test_add_func("/smtp/client/lockstep", test_lockstep);
  g_test_add_func("/smtp/client/lockstep-nobody-and-size", test_lockstep_nobody_accepted_and_size);
  g_test_add_func("/smtp/client/dot-stuffing", test_dot_stuffing);
  return g_test_run();
}
