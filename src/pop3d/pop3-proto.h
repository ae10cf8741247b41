/* pop3-proto.h - the POP3 protocol as pure functions (RFC 1939, 2449,
 * 3206): the command table with the states each command is valid in,
 * command-line parsing with RFC 1939's argument rules, and the
 * multi-line encoding (CRLF line ends, byte-stuffing, the terminator).
 * No sockets and no mailboxes here: unit-tested and fuzzable alone.
 */
#pragma once

#include <glib.h>

typedef enum {
  POP3_STATE_AUTHORIZATION = 1 << 0,
  POP3_STATE_TRANSACTION = 1 << 1,
  POP3_STATE_UPDATE = 1 << 2,
} Pop3State;

typedef enum {
  POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_APOP, POP3_CMD_AUTH, POP3_CMD_STLS, POP3_CMD_CAPA,
  POP3_CMD_QUIT, POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_RETR, POP3_CMD_DELE, POP3_CMD_NOOP,
  POP3_CMD_RSET, POP3_CMD_TOP, POP3_CMD_UIDL,
  POP3_CMD_UNKNOWN,
  POP3_N_CMDS
} Pop3CmdId;

typedef struct {
  Pop3CmdId id;
  const char *name;     /* upper case */
  guint states;         /* Pop3State bits it is valid in */
  gint min_args, max_args;
} Pop3Command;

/* The table entry of a command name (any case); the UNKNOWN entry when
 * there is none. */
const Pop3Command *pop3_command_find(const char *name);

/* A command line split: the verb and its arguments. */
typedef struct {
  const Pop3Command *cmd;
  char *args[3];        /* point into the line; NULL after the last */
  guint n_args;
  const char *rest;     /* PASS: everything after "PASS " (a password may hold spaces) */
} Pop3Line;

typedef enum {
  POP3_PARSE_OK,
  POP3_PARSE_EMPTY,       /* nothing on the line */
  POP3_PARSE_TOO_LONG,    /* over 255 octets of arguments (RFC 2449 4) */
  POP3_PARSE_BAD_ARGS,    /* wrong number of arguments */
  POP3_PARSE_NUL,         /* a NUL byte in the line */
} Pop3ParseResult;

/* Splits line (len bytes without CRLF, modified in place). */
Pop3ParseResult pop3_parse_line(char *line, gsize len, Pop3Line *out);

/* A message number argument: decimal, 1..max; FALSE otherwise. */
gboolean pop3_parse_msgno(const char *arg, guint max, guint *out);
/* TOP's line count: a non-negative decimal (capped at G_MAXUINT). */
gboolean pop3_parse_count(const char *arg, guint *out);

/* The wire form of a message for RETR and TOP: LF or CRLF become CRLF,
 * a bare CR stays, a line that starts with '.' gets another one, a last
 * line without a line end gets one, ".\r\n" ends the response.  With
 * out NULL it only counts: octets is then LIST's size (RFC 1939: the
 * message with CRLF line ends, before byte-stuffing). */
typedef struct {
  gboolean at_line_start;   /* the next byte begins a line */
  gboolean line_has_data;
  gboolean in_body;         /* past the header's empty line (TOP counts body lines) */
  gboolean prev_cr;         /* a CR waits: CRLF or a bare CR? */
  guint body_lines;         /* body lines finished so far */
  guint max_body_lines;     /* TOP's n; G_MAXUINT for RETR */
  gboolean done;            /* TOP: enough lines */
  guint64 octets;           /* wire octets so far, without stuffing and terminator */
} Pop3Encoder;

void pop3_encoder_init(Pop3Encoder *e, guint max_body_lines);
void pop3_encoder_feed(Pop3Encoder *e, const char *in, gsize len, GString *out);
void pop3_encoder_finish(Pop3Encoder *e, GString *out);
