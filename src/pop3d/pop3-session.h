/* pop3-session.h - the POP3 conversation as a pure state machine: lines
 * in, response bytes out, with the decisions that need the outside world
 * (checking a password, starting TLS, ending the connection) returned as
 * actions.  The daemon wires it to sockets, TLS, SASL and the processes
 * of docs/pop3d.md; the unit tests drive it directly.  Response texts
 * follow Dovecot's, which the users of the seed notes know.
 */
#pragma once

#include <glib.h>

#include "pop3-proto.h"
#include "pop3-maildir.h"
#include "pop3-mbox.h"

/* A drop: a maildir or an mbox, opened as its owner. */
typedef struct {
  Pop3Maildir *maildir;
  Pop3Mbox *mbox;
} Pop3Drop;

void pop3_drop_free(Pop3Drop *drop);

typedef enum {
  POP3_ACTION_NONE,       /* the response is in out; read the next line */
  POP3_ACTION_LOGIN,      /* USER/PASS: check user and password, then pop3_session_login() */
  POP3_ACTION_STLS,       /* "+OK" is in out: start TLS once it is sent, then pop3_session_tls_started() */
  POP3_ACTION_CLOSE,      /* the last response is in out: close after sending it */
} Pop3Action;

/* Where an AUTH exchange stands (RFC 5034): the next line is the
 * client's base64 answer, not a command. */
typedef enum {
  POP3_AUTH_NONE,
  POP3_AUTH_PLAIN,            /* "+ " sent: the PLAIN response comes */
  POP3_AUTH_LOGIN_USER,       /* "+ VXNlcm5hbWU6" sent */
  POP3_AUTH_LOGIN_PASS,       /* "+ UGFzc3dvcmQ6" sent */
} Pop3AuthStep;

typedef struct {
  /* what the channel offers (set by the daemon) */
  gboolean tls_available;     /* STLS may be offered */
  gboolean tls_active;
  gboolean plaintext_ok;      /* USER/PASS allowed without TLS (no TLS configured, or loopback) */
  const char *sasl_mechanisms; /* for CAPA and AUTH: a subset of "PLAIN LOGIN", or NULL */
  const char *implementation; /* CAPA IMPLEMENTATION, or NULL */
  guint bad_command_limit;    /* errors after which the session ends */

  /* state */
  Pop3State state;
  char *user;                 /* after USER */
  char *password;             /* for POP3_ACTION_LOGIN, cleared by pop3_session_login() */
  const char *method;         /* of that login: "USER", "PLAIN", "LOGIN" */
  Pop3AuthStep auth_step;
  Pop3Drop *drop;             /* TRANSACTION */
  guint bad_commands;
  gboolean updated;           /* UPDATE done (QUIT in TRANSACTION) */
} Pop3Session;

void pop3_session_init(Pop3Session *s);
void pop3_session_clear(Pop3Session *s);

/* The greeting. */
void pop3_session_greeting(Pop3Session *s, GString *out);
/* One command line (len bytes without CRLF; modified), or the answer to
 * an AUTH challenge.  POP3_ACTION_LOGIN for USER/PASS and for AUTH
 * PLAIN / LOGIN (user and password decoded; an authorization identity
 * other than the login name fails the login at once). */
Pop3Action pop3_session_line(Pop3Session *s, char *line, gsize len, GString *out);
/* The outcome of POP3_ACTION_LOGIN: drop (taken) on success, NULL when
 * the password was wrong (why: NULL) or the mailbox cannot be had now
 * (why: "[IN-USE] ..." or "[SYS/TEMP] ..."). */
void pop3_session_login(Pop3Session *s, Pop3Drop *drop, const char *why, GString *out);
/* Wipes and frees the password of the last login (the daemon hands it on). */
void pop3_session_forget_password(Pop3Session *s);
/* TLS is up after STLS: the state starts over (RFC 2595 4). */
void pop3_session_tls_started(Pop3Session *s);
