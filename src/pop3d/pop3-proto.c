/* pop3-proto.c - the POP3 protocol as pure functions (pop3-proto.h). */
#include "pop3-proto.h"

#include <string.h>

#define AUTHZ POP3_STATE_AUTHORIZATION
#define TRANS POP3_STATE_TRANSACTION

/* RFC 1939 section 9 and RFC 2449/2595/5034 for CAPA, STLS and AUTH;
 * argument counts as the RFCs give them (APOP, AUTH checked further by
 * their handlers). */
static const Pop3Command pop3_commands[POP3_N_CMDS] = {
  [POP3_CMD_USER] = { POP3_CMD_USER, "USER", AUTHZ, 1, 1 },
  [POP3_CMD_PASS] = { POP3_CMD_PASS, "PASS", AUTHZ, 1, 1 },
  [POP3_CMD_APOP] = { POP3_CMD_APOP, "APOP", AUTHZ, 2, 2 },
  [POP3_CMD_AUTH] = { POP3_CMD_AUTH, "AUTH", AUTHZ, 0, 2 },
  [POP3_CMD_STLS] = { POP3_CMD_STLS, "STLS", AUTHZ, 0, 0 },
  [POP3_CMD_CAPA] = { POP3_CMD_CAPA, "CAPA", AUTHZ | TRANS, 0, 0 },
  [POP3_CMD_QUIT] = { POP3_CMD_QUIT, "QUIT", AUTHZ | TRANS, 0, 0 },
  [POP3_CMD_STAT] = { POP3_CMD_STAT, "STAT", TRANS, 0, 0 },
  [POP3_CMD_LIST] = { POP3_CMD_LIST, "LIST", TRANS, 0, 1 },
  [POP3_CMD_RETR] = { POP3_CMD_RETR, "RETR", TRANS, 1, 1 },
  [POP3_CMD_DELE] = { POP3_CMD_DELE, "DELE", TRANS, 1, 1 },
  [POP3_CMD_NOOP] = { POP3_CMD_NOOP, "NOOP", TRANS, 0, 0 },
  [POP3_CMD_RSET] = { POP3_CMD_RSET, "RSET", TRANS, 0, 0 },
  [POP3_CMD_TOP] = { POP3_CMD_TOP, "TOP", TRANS, 2, 2 },
  [POP3_CMD_UIDL] = { POP3_CMD_UIDL, "UIDL", TRANS, 0, 1 },
  [POP3_CMD_UNKNOWN] = { POP3_CMD_UNKNOWN, NULL, 0, 0, 0 },
};

const Pop3Command *
pop3_command_find(const char *name)
{
  for (guint i = 0; i < POP3_CMD_UNKNOWN; i++)
    if (g_ascii_strcasecmp(name, pop3_commands[i].name) == 0)
      return &pop3_commands[i];
  return &pop3_commands[POP3_CMD_UNKNOWN];
}

Pop3ParseResult
pop3_parse_line(char *line, gsize len, Pop3Line *out)
{
  char *p = line, *end = line + len;

  memset(out, 0, sizeof *out);
  if (memchr(line, '\0', len) != NULL)
    return POP3_PARSE_NUL;
  *end = '\0';
  while (*p == ' ')
    p++;
  if (*p == '\0')
    return POP3_PARSE_EMPTY;
  /* RFC 2449 4: keywords up to 4 octets, each argument up to 40, the
   * line up to 255 (512 with CRLF in the original, generous here). */
  if (len > 255)
    return POP3_PARSE_TOO_LONG;
  char *verb = p;
  while (*p && *p != ' ')
    p++;
  if (*p)
    *p++ = '\0';
  out->cmd = pop3_command_find(verb);
  if (out->cmd->id == POP3_CMD_PASS) {
    /* The password is the rest of the line, spaces and all (as Dovecot
     * and most servers take it). */
    out->rest = p;
    out->args[0] = p;
    out->n_args = *p ? 1 : 0;
  } else {
    while (*p) {
      while (*p == ' ')
        p++;
      if (*p == '\0')
        break;
      if (out->n_args == G_N_ELEMENTS(out->args))
        return out->cmd->id == POP3_CMD_UNKNOWN ? POP3_PARSE_OK : POP3_PARSE_BAD_ARGS;
      out->args[out->n_args++] = p;
      while (*p && *p != ' ')
        p++;
      if (*p)
        *p++ = '\0';
    }
  }
  if (out->cmd->id != POP3_CMD_UNKNOWN
      && (out->n_args < (guint) out->cmd->min_args || out->n_args > (guint) out->cmd->max_args))
    return POP3_PARSE_BAD_ARGS;
  return POP3_PARSE_OK;
}

static gboolean
pop3_parse_decimal(const char *arg, guint64 *out)
{
  guint64 v = 0;

  if (arg == NULL || *arg == '\0' || strlen(arg) > 10)
    return FALSE;
  for (const char *c = arg; *c; c++) {
    if (!g_ascii_isdigit(*c))
      return FALSE;
    v = v * 10 + (guint64) (*c - '0');
  }
  *out = v;
  return TRUE;
}

gboolean
pop3_parse_msgno(const char *arg, guint max, guint *out)
{
  guint64 v;

  if (!pop3_parse_decimal(arg, &v) || v == 0 || v > max)
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

gboolean
pop3_parse_count(const char *arg, guint *out)
{
  guint64 v;

  if (!pop3_parse_decimal(arg, &v))
    return FALSE;
  *out = (guint) MIN(v, (guint64) G_MAXUINT);
  return TRUE;
}

/* ---------------------------------------------------------------- multi-line */

void
pop3_encoder_init(Pop3Encoder *e, guint max_body_lines)
{
  *e = (Pop3Encoder) { .at_line_start = TRUE, .max_body_lines = max_body_lines };
}

static void
pop3_encoder_data(Pop3Encoder *e, char c, GString *out)
{
  if (out != NULL) {
    if (e->at_line_start && c == '.')
      g_string_append_c(out, '.');     /* byte-stuffing (RFC 1939 3) */
    g_string_append_c(out, c);
  }
  e->at_line_start = FALSE;
  e->line_has_data = TRUE;
  e->octets++;
}

/* A line ends (CRLF on the wire): the header's empty line starts the
 * body; TOP counts body lines. */
static void
pop3_encoder_line_end(Pop3Encoder *e, GString *out)
{
  gboolean empty = !e->line_has_data;

  if (out != NULL)
    g_string_append(out, "\r\n");
  e->octets += 2;
  e->at_line_start = TRUE;
  e->line_has_data = FALSE;
  if (!e->in_body) {
    if (empty) {
      e->in_body = TRUE;
      if (e->max_body_lines == 0)
        e->done = TRUE;
    }
  } else if (++e->body_lines >= e->max_body_lines) {
    e->done = TRUE;
  }
}

void
pop3_encoder_feed(Pop3Encoder *e, const char *in, gsize len, GString *out)
{
  for (gsize i = 0; i < len && !e->done; i++) {
    char c = in[i];

    if (e->prev_cr) {
      e->prev_cr = FALSE;
      if (c == '\n') {
        pop3_encoder_line_end(e, out);
        continue;
      }
      pop3_encoder_data(e, '\r', out);   /* a bare CR stays as it is */
    }
    if (c == '\r')
      e->prev_cr = TRUE;
    else if (c == '\n')
      pop3_encoder_line_end(e, out);
    else
      pop3_encoder_data(e, c, out);
  }
}

void
pop3_encoder_finish(Pop3Encoder *e, GString *out)
{
  if (e->prev_cr && !e->done)
    pop3_encoder_data(e, '\r', out);
  e->prev_cr = FALSE;
  if (!e->at_line_start && !e->done)
    pop3_encoder_line_end(e, out);      /* the last line gets its CRLF */
  if (out != NULL)
    g_string_append(out, ".\r\n");
}
