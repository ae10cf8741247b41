/* smtp-client-proto.h - the SMTP client's side of the protocol as pure
 * functions (issue 7, docs/smtp-client.md): server replies parsed line by
 * line (RFC 5321 4.2, enhanced status codes of RFC 3463), the EHLO
 * extensions a delivery uses, and one mail transaction planned as the
 * commands to send (pipelined when the server says PIPELINING, RFC 2920)
 * with each reply mapped back to its recipient.  No sockets here: the
 * delivery agent feeds bytes and sends what this returns; the unit tests
 * drive it alone.
 */
#pragma once

#include <glib.h>

/* ---------------------------------------------------------------- replies */

typedef struct {
  int code;               /* 220, 250, 354, 421, 550, ... */
  char enhanced[16];      /* "5.1.1" when the server sent one, else "" */
  GPtrArray *lines;       /* char *: each line's text after "NNN-" / "NNN " */
} SmtpClientReply;

void smtp_client_reply_clear(SmtpClientReply *r);
/* The reply as one line for logs and bounces: "550 5.1.1 <x@y>: unknown" with
 * the lines joined by spaces. */
char *smtp_client_reply_text(const SmtpClientReply *r);

typedef enum {
  SMTP_REPLY_MORE,        /* a "NNN-" line: more follow */
  SMTP_REPLY_DONE,        /* the last line: *reply is complete */
  SMTP_REPLY_BAD,         /* not a reply line, or a code that changed mid-reply */
} SmtpReplyStep;

/* The most lines one reply may have (an EHLO reply has a dozen). */
#define SMTP_CLIENT_REPLY_LINES_MAX 1000

/* Feeds one line (without CRLF) into reply (zeroed before its first line);
 * SMTP_REPLY_BAD past SMTP_CLIENT_REPLY_LINES_MAX lines. */
SmtpReplyStep smtp_client_reply_feed(SmtpClientReply *reply, const char *line, gsize len);

/* ---------------------------------------------------------------- EHLO */

typedef struct {
  gboolean esmtp;         /* EHLO was accepted (else HELO) */
  gboolean pipelining, starttls, eightbitmime, enhancedstatuscodes, dsn, smtputf8, chunking;
  gboolean size;
  guint64 size_limit;     /* SIZE n; 0: no limit given */
  char *auth;             /* "PLAIN LOGIN" from AUTH (or the old AUTH=), or NULL */
} SmtpClientCaps;

void smtp_client_caps_clear(SmtpClientCaps *caps);
/* The extensions of a 250 reply to EHLO (its first line is the greeting). */
void smtp_client_caps_parse(const SmtpClientReply *ehlo, SmtpClientCaps *caps);

/* ---------------------------------------------------------------- a transaction */

typedef enum {
  SMTP_RCPT_PENDING,
  SMTP_RCPT_ACCEPTED,     /* RCPT got 2xx; the final DATA reply decides */
  SMTP_RCPT_SENT,         /* 2xx after the data */
  SMTP_RCPT_DEFER,        /* 4xx (RCPT or data), or the session broke */
  SMTP_RCPT_BOUNCE,       /* 5xx */
} SmtpRcptStatus;

typedef struct {
  char *address;
  char *notify;           /* RFC 3461 NOTIFY= keywords, sent when the server says DSN; may be NULL */
  char *orcpt;            /* ORCPT= "type;address" (decoded), likewise; may be NULL */
  SmtpRcptStatus status;
  char *reply;            /* the server's reply that decided, for the log (or our own
                           * text when local) */
  char *dsn;              /* "2.0.0", "4.x.x", "5.1.1": the reply's or a default */
  gboolean local;         /* decided by the client (SIZE, SMTPUTF8, a broken session),
                           * not by a server reply */
  const char *stage;      /* the command the deciding reply answered: "MAIL FROM",
                           * "RCPT TO", "DATA", "end of DATA"; NULL when local */
} SmtpClientRcpt;

typedef enum {
  SMTP_TX_MAIL,           /* waiting for MAIL's reply */
  SMTP_TX_RCPT,           /* waiting for RCPT replies */
  SMTP_TX_DATA,           /* waiting for DATA's 354 */
  SMTP_TX_BODY,           /* 354 came: send the message, then ".\r\n" */
  SMTP_TX_DOT,            /* waiting for the reply to the final dot */
  SMTP_TX_DONE,           /* every recipient decided; the session can go on (RSET or QUIT) */
} SmtpTxState;

typedef struct {
  SmtpClientCaps *caps;   /* of this session (not owned) */
  char *sender;           /* "" for the null sender */
  guint64 size;           /* message size for SIZE= (0: not sent) */
  gboolean eightbit;      /* BODY=8BITMIME when the server offers it */
  char *envid;            /* RFC 3461 ENVID= (decoded), sent when the server says DSN; may be NULL */
  char *ret;              /* RET= "FULL" or "HDRS", likewise; may be NULL */
  gboolean smtputf8;      /* RFC 6531: the message was received with SMTPUTF8 */
  const char *peer;       /* "host[addr]:port" for the texts; may be NULL (not owned) */
  GPtrArray *rcpts;       /* SmtpClientRcpt * */
  SmtpTxState state;
  guint next_reply_rcpt;  /* the RCPT whose reply comes next */
  guint accepted;         /* RCPTs with 2xx */
  char *mail_reply;       /* MAIL's reply when it was refused */
} SmtpClientTx;

/* A transaction for sender and the recipients (char *), in that order. */
SmtpClientTx *smtp_client_tx_new(SmtpClientCaps *caps, const char *sender,
                                 const char *const *recipients, guint64 size, gboolean eightbit);
void smtp_client_tx_free(SmtpClientTx *tx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SmtpClientTx, smtp_client_tx_free)

/* RFC 3461 xtext of text (printable ASCII but "+" and "=" as is, the
 * rest as "+XX"). */
char *smtp_xtext_encode(const char *text);

/* The commands to send now, CRLF-terminated: with PIPELINING MAIL, every
 * RCPT and DATA at once; without, MAIL alone (then one command per reply,
 * from smtp_client_tx_reply()).  MAIL carries SIZE=, BODY=8BITMIME,
 * SMTPUTF8, RET= and ENVID=, RCPT NOTIFY= and ORCPT= where the server
 * offers them.  NULL when the transaction is decided before it starts:
 * a message larger than the server's SIZE limit is not offered at all
 * (every recipient bounces 5.3.4, as Postfix does), nor one that needs
 * SMTPUTF8 (a non-ASCII envelope address) from a server without it
 * (5.6.7, no downgrade). */
char *smtp_client_tx_begin(SmtpClientTx *tx);

/* One reply of the transaction; *send (may be NULL) gets the next commands
 * to send, if any.  Returns the new state. */
SmtpTxState smtp_client_tx_reply(SmtpClientTx *tx, const SmtpClientReply *reply, char **send);

/* The session ended before the transaction did (connection lost, a 421,
 * a timeout): every recipient not yet decided is deferred with why. */
void smtp_client_tx_abort(SmtpClientTx *tx, const char *why);

/* ---------------------------------------------------------------- the message */

/* DATA's transparency (RFC 5321 4.5.2): LF or CRLF line ends become CRLF,
 * a line starting with "." gets another; feed the message in any chunks,
 * then finish (".\r\n", with a CRLF first when the message did not end
 * with a line end). */
typedef struct {
  gboolean at_line_start;
  gboolean prev_cr;
} SmtpDotStuffer;

void smtp_dot_stuffer_init(SmtpDotStuffer *d);
void smtp_dot_stuffer_feed(SmtpDotStuffer *d, const char *in, gsize len, GString *out);
void smtp_dot_stuffer_finish(SmtpDotStuffer *d, GString *out);
