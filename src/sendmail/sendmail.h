/* sendmail.h - what the modules of sendmail(1) share: the sendmail,
 * mailq and newaliases commands of a Postfix-compatible system, one
 * binary that submits over SMTP to postern-smtpd's local listener (a
 * unix socket) and is never set-uid or set-gid.
 *
 *   sendmail-addr.c    RFC 5322 address lists (command line, -f, -t)
 *   sendmail-input.c   reading the message: line ends, From_ lines,
 *                      the lone ".", the header block, -t recipients
 *   sendmail-smtp.c    the SMTP client on the local socket
 *   sendmail-submit.c  one submission (-bm) and the -bs relay
 *   sendmail-main.c    options, modes, mailq/newaliases dispatch
 *
 * Library code returns errors (GError, exit status); only main prints.
 */
#pragma once

#include <stdio.h>
#include <sys/types.h>
#include <glib.h>

/* sysexits.h, as Postfix's sendmail uses them. */
#include <sysexits.h>

/* ---- addresses (sendmail-addr.c) ---- */

/* The addresses in an RFC 5322 address list ("a@b, Name <c@d>, group:
 * e@f;"), each in external form without comments or white space
 * ("\"a b\"@c" keeps its quotes); "<>" gives "".  As Postfix's
 * tok822_parse + tok822_grep(TOK822_ADDR): phrases and group names are
 * dropped, a source route "@a,@b:" is removed.  Never fails: text that
 * is not an address list gives whatever addresses it seems to hold. */
GPtrArray *sendmail_addr_list(const char *text);

/* A full name as the phrase of "name <address>": quoted when it holds
 * RFC 5322 specials or the "!%" address operators (Postfix 3.3
 * header_from_format = standard). */
char *sendmail_addr_phrase(const char *name);
/* A full name as a comment "(name)" (header_from_format = obsolete). */
char *sendmail_addr_comment(const char *name);

/* ---- input (sendmail-input.c) ---- */

typedef enum {
  SENDMAIL_CR_ALWAYS,   /* strip CR before LF on every line (Postfix default) */
  SENDMAIL_CR_STRICT,   /* only if the first line ends in CRLF */
  SENDMAIL_CR_NEVER,
} SendmailCrMode;

/* Parses sendmail_fix_line_endings; FALSE for an unknown value. */
gboolean sendmail_cr_mode_parse(const char *text, SendmailCrMode *mode);

typedef struct {
  FILE *fp;
  gboolean dot_ends;        /* a line with only "." ends the input (no -i) */
  SendmailCrMode cr_mode;   /* STRICT is resolved at the first line */
  gboolean skip_from;       /* still at the top: From_ lines are dropped */
  gboolean ended;           /* EOF or the lone "." seen */
  char *buf;                /* getline buffer */
  size_t cap;
} SendmailInput;

void sendmail_input_init(SendmailInput *in, FILE *fp, gboolean dot_ends, SendmailCrMode mode);
void sendmail_input_clear(SendmailInput *in);
/* The next line, without its line end, in line (NULs and bare CRs kept).
 * FALSE at the end of the input (EOF or the lone "."), or on a read
 * error (error set). */
gboolean sendmail_input_line(SendmailInput *in, GString *line, GError **error);

/* The header block of the message, read ahead of the SMTP transaction. */
typedef struct {
  GPtrArray *lines;         /* GString*: header lines as read, continuations separate */
  GString *first_body_line; /* the line that ended the block, or NULL at EOF */
  gboolean blank_line;      /* an empty line ended the block */
  gboolean truncated;       /* header_size_limit reached: the rest is body */
  gboolean resent;          /* a Resent- header is present */
  gboolean has_from;        /* From: (Resent-From: when resent) present */
  GPtrArray *recipients;    /* -t: To/Cc/Bcc, or Resent-To/Cc/Bcc when resent */
} SendmailHeaders;

void sendmail_headers_clear(SendmailHeaders *h);
/* Reads the header block (up to limit bytes).  extract: collect the -t
 * recipients.  FALSE on a read error. */
gboolean sendmail_headers_read(SendmailInput *in, gsize limit, gboolean extract,
                               SendmailHeaders *h, GError **error);

/* ---- SMTP client (sendmail-smtp.c) ---- */

typedef struct {
  int fd;
  gboolean verbose;         /* -v: the dialogue on stderr */
  GString *rbuf;            /* received, not yet parsed */
  GString *wbuf;            /* to send */
  char *last_reply;         /* the last reply, lines joined by " " */
  int last_code;
} SendmailSmtp;

/* Connects to the unix socket at path.  FALSE with errno-style error. */
gboolean sendmail_smtp_connect(SendmailSmtp *c, const char *path, gboolean verbose,
                               GError **error);
void sendmail_smtp_close(SendmailSmtp *c);
/* Reads one (multi-line) reply; returns its code, 0 when the connection
 * failed (error set).  timeout in seconds. */
int sendmail_smtp_reply(SendmailSmtp *c, int timeout, GError **error);
/* Queues a command line (CRLF added). */
void sendmail_smtp_command(SendmailSmtp *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Queues message data. */
void sendmail_smtp_data(SendmailSmtp *c, const char *data, gsize len);
/* Sends what is queued (also done when the buffer is large). */
gboolean sendmail_smtp_flush(SendmailSmtp *c, GError **error);
/* Queues one message line dot-stuffed with CRLF, flushing as needed. */
gboolean sendmail_smtp_line(SendmailSmtp *c, const char *line, gsize len, GError **error);

/* ---- submission (sendmail-submit.c) ---- */

typedef struct {
  const char *socket_path;  /* local_submission_socket */
  const char *sender;       /* as MAIL FROM gives it ("" for <>) */
  const char *ident;        /* "sender(uid)", for messages */
  char *const *recipients;  /* command line (each an address list) */
  gboolean extract;         /* -t */
  gboolean dot_ends;        /* no -i */
  gboolean verbose;         /* -v */
  SendmailCrMode cr_mode;
  gsize header_limit;       /* header_size_limit */
  const char *body_type;    /* -B: "8BITMIME", "7BIT" or NULL */
  char *from_header;        /* "From: name <sender@origin>" to add when missing, or NULL */
  char *resent_from_header; /* the same for a resent message */
} SendmailSubmit;

/* One submission of the message on stdin.  Returns a sysexits status;
 * on failure *message says why (without the "sendmail: fatal: " part).
 * Nothing is queued unless the server accepted the final dot. */
int sendmail_submit(const SendmailSubmit *sub, FILE *in, char **message);

/* -bs: relays SMTP between stdin/stdout and the local socket until one
 * side closes.  Returns a sysexits status and *message on failure. */
int sendmail_relay(const char *socket_path, gboolean verbose, char **message);
