/* smtpd-session.c - one SMTP connection: socket I/O, buffers, the state
 * machine, deadlines, error accounting and the connection's lifetime.
 *
 * Input is read into a bounded buffer and complete lines are executed in
 * order (pipelining); replies collect in an output buffer that is
 * flushed when no complete command is left or when a command waits for
 * work in a pool.  A session waiting for work processes nothing further,
 * so replies stay in order.  Never blocks: slow work goes to the pools.
 * Memory per idle session is kept small: the input buffer is allocated on
 * the first read, the transaction arrays on the first RCPT.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "log.h"
#include "smtpd.h"

#define SMTPD_IN_INITIAL 1024
#define SMTPD_IN_DATA (16 * 1024)
#define SMTPD_IN_MAX (16 * 1024)
#define SMTPD_OUT_HIGH (64 * 1024)
#define SMTPD_QUIT_US (10 * G_USEC_PER_SEC)
#define SMTPD_LINGER_US (2 * G_USEC_PER_SEC)
#define SMTPD_TIMER_ACCURACY_US (50 * 1000)

static const char *const state_names[] = {
  [SMTPD_STATE_INIT] = "INIT",     [SMTPD_STATE_READY] = "READY",
  [SMTPD_STATE_MAIL] = "MAIL",     [SMTPD_STATE_RCPT] = "RCPT",
  [SMTPD_STATE_DATA] = "DATA",     [SMTPD_STATE_BDAT] = "BDAT",
  [SMTPD_STATE_COMMIT] = "COMMIT",
  [SMTPD_STATE_QUIT] = "QUIT",     [SMTPD_STATE_CLOSED] = "CLOSED",
};


const char *
smtpd_state_name(SmtpdState state)
{
  return state_names[state];
}

void
smtpd_session_enter_state(SmtpdSession *s, SmtpdState state)
{
  if (s->state == state)
    return;
  log_debug("%s: %s -> %s", s->namaddr, state_names[s->state], state_names[state]);
  s->state = state;
}

SmtpdSession *
smtpd_session_ref(SmtpdSession *s)
{
  s->ref++;
  return s;
}

void
smtpd_session_unref(SmtpdSession *s)
{
  if (--s->ref > 0)
    return;
  g_assert(s->state == SMTPD_STATE_CLOSED);
  smtpd_session_reset_transaction(s);
  g_clear_pointer(&s->writer, queue_writer_free);
  g_clear_pointer(&s->writer_ahead, queue_writer_free);
  g_clear_pointer(&s->rcpt_addr, g_ptr_array_unref);
  g_clear_pointer(&s->rcpt_orig, g_ptr_array_unref);
  g_clear_pointer(&s->rcpt_notify, g_array_unref);
  g_clear_pointer(&s->rcpt_orcpt, g_ptr_array_unref);
  g_free(s->in);
  g_string_free(s->out, TRUE);
  g_free(s->client_name);
  g_free(s->client_reverse_name);
  g_free(s->namaddr);
  g_free(s->helo);
  g_free(s->access_denied);
  g_free(s->defer_client);
  g_free(s->defer_sender);
  g_free(s->local_login);
  g_free(s->submit_denied);
  g_free(s->tls_info);
  g_free(s->tls_details);
  g_free(s->end_reason);
  if (s->history != NULL)
    g_string_free(s->history, TRUE);
  smtpd_auth_reset(s);      /* here: a worker may use the exchange until the last unref */
  smtpd_local_data_end(s);
  smtpd_settings_unref(s->settings);
  g_free(s);
}

static gint64
now_us(void)
{
  return g_get_monotonic_time();
}

/* Arms the single deadline timer. */
static void
session_arm_timer(SmtpdSession *s, gint64 deadline)
{
  s->deadline = deadline;
  if (s->timer == NULL)
    return;
  sd_event_source_set_time(s->timer, (guint64)deadline);
  sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

void
smtpd_session_set_deadline(SmtpdSession *s, gint64 timeout_us)
{
  session_arm_timer(s, now_us() + timeout_us);
}

static void session_read(SmtpdSession *s);

static int
session_tls_kick(sd_event_source *source, void *userdata)
{
  SmtpdSession *s = smtpd_session_ref(userdata);

  if (s->state != SMTPD_STATE_CLOSED)
    session_read(s);
  smtpd_session_unref(s);
  return 0;
}

void
smtpd_session_update_io(SmtpdSession *s)
{
  if (s->io == NULL)
    return;
  guint32 events = 0;
  gboolean want_read = FALSE;
  gsize pending_out = s->out->len - s->out_pos;
  if (s->tls_handshaking) {
    events = s->tls_wait;
  } else if (s->state == SMTPD_STATE_QUIT) {
    if (pending_out > 0)
      events |= EPOLLOUT;
    if (s->lingering)
      events |= EPOLLIN;
  } else {
    /* Not while STARTTLS's 220 goes out (what follows is the client's
     * handshake), nor before the handshake on the smtps listener. */
    want_read = !s->eof && s->in_len - s->in_pos < SMTPD_IN_MAX && pending_out < SMTPD_OUT_HIGH
                && !s->tls_start && (s->tls != NULL || !smtpd_tls_wrapper(s));
    if (want_read)
      events |= EPOLLIN;
    if (pending_out > 0 && !s->hold_output)
      events |= EPOLLOUT;
    if (want_read && s->tls_read_wants_write)
      events |= EPOLLOUT;
    if (pending_out > 0 && s->tls_write_wants_read)
      events |= EPOLLIN;
  }
  if (events != s->io_events) {
    s->io_events = events;
    sd_event_source_set_io_events(s->io, events);
  }
  /* Input OpenSSL has decrypted already raises no poll event. */
  if (want_read && s->tls != NULL && tls_conn_pending(s->tls)) {
    if (s->tls_kick == NULL)
      sd_event_add_defer(s->server->event, &s->tls_kick, session_tls_kick, s);
    sd_event_source_set_enabled(s->tls_kick, SD_EVENT_ONESHOT);
  }
}

void
smtpd_session_disconnect(SmtpdSession *s)
{
  if (s->state == SMTPD_STATE_CLOSED)
    return;
  smtpd_notify_session_end(s, s->end_reason);
  if (s->client_name != NULL) {
    g_autofree char *stats = smtpd_commands_stats(s);
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_INFO, NULL, f, 1, "disconnect from %s %s", s->namaddr, stats);
  }
  if (s->state != SMTPD_STATE_COMMIT)
    smtpd_data_abort(s);
  if (s->anvil_counted)
    smtpd_anvil_disconnect(s->server->anvil, s->client_addr);
  s->io = sd_event_source_disable_unref(s->io);
  s->timer = sd_event_source_disable_unref(s->timer);
  s->sleep_timer = sd_event_source_disable_unref(s->sleep_timer);
  s->tls_kick = sd_event_source_disable_unref(s->tls_kick);
  if (!s->tls_busy) {     /* else the handshake step's done() closes them */
    g_clear_pointer(&s->tls, tls_conn_free);
    if (s->fd >= 0)
      close(s->fd);
    s->fd = -1;
  }

  SmtpdServer *server = s->server;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    server->sessions = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  s->prev = s->next = NULL;
  server->n_sessions--;
  smtpd_session_enter_state(s, SMTPD_STATE_CLOSED);
  if (server->stopping && server->n_sessions == 0)
    sd_event_exit(server->event, 0);
  smtpd_session_unref(s);   /* the connection's reference */
}

void
smtpd_session_abort(SmtpdSession *s, const char *why)
{
  if (s->state == SMTPD_STATE_CLOSED)
    return;
  if (why != NULL && s->end_reason == NULL)
    s->end_reason = g_strdup(why);
  if (why != NULL && s->client_name != NULL) {
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_INFO, NULL, f, 1, "%s after %s from %s", why,
             s->last_cmd != NULL ? s->last_cmd : "CONNECT", s->namaddr);
  }
  smtpd_session_disconnect(s);
}

/* Writes what the output buffer holds; FALSE when the peer is gone. */
static void session_starttls_done(SmtpdSession *s);

static gboolean
session_flush(SmtpdSession *s)
{
  while (s->out_pos < s->out->len) {
    const char *data = s->out->str + s->out_pos;
    gsize len = s->out->len - s->out_pos;
    ssize_t n = s->tls != NULL ? smtpd_tls_send(s, data, len)
                               : send(s->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      smtpd_session_abort(s, "lost connection");
      return FALSE;
    }
    s->out_pos += n;
  }
  if (s->out_pos < s->out->len)
    return TRUE;
  g_string_truncate(s->out, 0);
  s->out_pos = 0;
  if (s->tls_start && s->state < SMTPD_STATE_QUIT) {
    /* STARTTLS's 220 is out in plaintext: now the handshake. */
    s->tls_start = FALSE;
    smtpd_tls_start(s, session_starttls_done);
    return s->state != SMTPD_STATE_CLOSED;
  }
  if (s->state == SMTPD_STATE_QUIT && !s->lingering) {
    /* The final reply is out: half-close and drain what the client still
     * sends for a moment, so unread input does not turn into a reset
     * that could destroy our reply before the client reads it. */
    if (s->tls != NULL)
      tls_conn_close_notify(s->tls);
    shutdown(s->fd, SHUT_WR);
    s->lingering = TRUE;
    smtpd_session_set_deadline(s, SMTPD_LINGER_US);
  }
  return TRUE;
}

void
smtpd_session_append(SmtpdSession *s, const char *line)
{
  if (log_debug_enabled())
    log_debug("%s: > %s", s->namaddr, line);
  smtpd_notify_out(s, line);
  g_string_append(s->out, line);
  g_string_append_len(s->out, "\r\n", 2);
}

void
smtpd_session_reply_line(SmtpdSession *s, const char *line)
{
  if (s->state >= SMTPD_STATE_QUIT)
    return;
  smtpd_session_append(s, line);
  if (line[0] == '4' || line[0] == '5') {
    s->cmd_failed = TRUE;
    s->errors++;
  }
}

void
smtpd_session_reply(SmtpdSession *s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *line = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  smtpd_session_reply_line(s, line);
}

void
smtpd_session_close_with(SmtpdSession *s, const char *line)
{
  if (s->state >= SMTPD_STATE_QUIT)
    return;
  smtpd_session_append(s, line);
  if (s->state != SMTPD_STATE_COMMIT)
    smtpd_data_abort(s);
  smtpd_session_enter_state(s, SMTPD_STATE_QUIT);
  s->hold_output = FALSE;
  s->sleep_timer = sd_event_source_disable_unref(s->sleep_timer);
  smtpd_session_set_deadline(s, SMTPD_QUIT_US);
  if (session_flush(s))
    smtpd_session_update_io(s);
}

void
smtpd_session_reset_transaction(SmtpdSession *s)
{
  /* A BDAT transaction has its queue file open between chunks; a reset
   * one (RSET, EHLO, a failed LAST) keeps none. */
  smtpd_data_abort(s);
  g_clear_pointer(&s->sender, g_free);
  g_clear_pointer(&s->sender_orig, g_free);
  g_clear_pointer(&s->pending_rcpt, g_free);
  g_clear_pointer(&s->pending_rcpt_orig, g_free);
  g_clear_pointer(&s->writer_ahead, queue_writer_free);
  if (s->rcpt_addr != NULL) {
    g_ptr_array_set_size(s->rcpt_addr, 0);
    g_ptr_array_set_size(s->rcpt_orig, 0);
    g_array_set_size(s->rcpt_notify, 0);
    g_ptr_array_set_size(s->rcpt_orcpt, 0);
  }
  s->pending_notify = 0;
  g_clear_pointer(&s->pending_orcpt, g_free);
  s->mail_size = -1;
  s->body = SMTP_BODY_NONE;
  s->smtputf8 = FALSE;
  s->dsn_ret = QUEUE_RET_DEFAULT;
  g_clear_pointer(&s->dsn_envid, g_free);
  s->data_size = 0;
  s->data_too_big = s->data_write_failed = FALSE;
  s->data_tried = FALSE;
  s->bdat_active = s->bdat_last = s->bdat_skip = FALSE;
  s->bdat_chunk = s->bdat_left = s->bdat_octets = 0;
  g_clear_pointer(&s->bdat_reply, g_free);
  g_clear_pointer(&s->bdat_error, g_free);
  s->discard = s->hold = FALSE;
  g_clear_pointer(&s->prepend, g_ptr_array_unref);
  g_clear_pointer(&s->defer_sender, g_free);
  g_clear_pointer(&s->redirect, g_free);
  g_clear_pointer(&s->bcc, g_ptr_array_unref);
  if (s->state == SMTPD_STATE_MAIL || s->state == SMTPD_STATE_RCPT ||
      s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT ||
      s->state == SMTPD_STATE_COMMIT)
    smtpd_session_enter_state(s, SMTPD_STATE_READY);
}

void
smtpd_session_suspend(SmtpdSession *s)
{
  g_assert(s->wait == SMTPD_WAIT_NONE);
  s->wait = SMTPD_WAIT_WORK;
  smtpd_session_ref(s);
}

void
smtpd_session_resume(SmtpdSession *s)
{
  smtpd_session_continue(s, NULL, NULL);
}

void
smtpd_session_continue(SmtpdSession *s, SmtpdSessionNext next, gpointer data)
{
  g_assert(s->wait == SMTPD_WAIT_WORK);
  s->wait = SMTPD_WAIT_NONE;
  if (next != NULL && s->state < SMTPD_STATE_QUIT)
    next(s, data);
  if (s->state != SMTPD_STATE_CLOSED) {
    /* Unless next() started more work and the command goes on: */
    if (s->wait == SMTPD_WAIT_NONE && s->state == SMTPD_STATE_INIT)
      smtpd_connect_greet(s);
    else if (s->wait == SMTPD_WAIT_NONE && s->cmd != SMTPD_N_CMDS)
      smtpd_session_command_done(s);
    if (s->state != SMTPD_STATE_CLOSED)
      smtpd_session_process(s);   /* flushes the replies, reads on when not waiting */
  }
  smtpd_session_unref(s);   /* the suspension's reference */
}

/* Tarpit over: continue with the next command. */
static int
session_sleep_done(sd_event_source *source, uint64_t usec, void *userdata)
{
  SmtpdSession *s = userdata;
  s->sleep_timer = sd_event_source_disable_unref(s->sleep_timer);
  s->wait = SMTPD_WAIT_NONE;
  s->hold_output = FALSE;
  smtpd_session_set_deadline(s, s->settings->timeout * G_USEC_PER_SEC);
  smtpd_session_process(s);
  return 0;
}

void
smtpd_session_command_done(SmtpdSession *s)
{
  SmtpdCmdId id = s->cmd;
  const SmtpdSettings *st = s->settings;
  if (id == SMTPD_N_CMDS || s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT)
    return;   /* DATA and BDAT are accounted for when their content ends */
  s->cmd = SMTPD_N_CMDS;
  if (s->cmd_total[id] < G_MAXUINT16) {
    s->cmd_total[id]++;
    if (!s->cmd_failed)
      s->cmd_ok[id]++;
  }
  if (s->state >= SMTPD_STATE_QUIT)
    return;
  if (st->hard_error_limit > 0 && s->errors >= st->hard_error_limit) {
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_WARNING, NULL, f, 1, "too many errors after %s from %s", s->last_cmd,
             s->namaddr);
    g_autofree char *line = g_strdup_printf("421 4.7.0 %s Error: too many errors",
                                            st->myhostname);
    smtpd_session_close_with(s, line);
    return;
  }
  smtpd_session_set_deadline(s, st->timeout * G_USEC_PER_SEC);
  gint64 delay = s->penalty_us;   /* a failed AUTH (smtpd-auth.c) */
  s->penalty_us = 0;
  if (s->cmd_failed && st->error_sleep_time > 0 && s->errors > st->soft_error_limit)
    delay = MAX(delay, st->error_sleep_time * G_USEC_PER_SEC);
  if (delay > 0) {
    s->wait = SMTPD_WAIT_SLEEP;
    s->hold_output = TRUE;
    sd_event_add_time_relative(s->server->event, &s->sleep_timer, CLOCK_MONOTONIC, delay,
                               SMTPD_TIMER_ACCURACY_US, session_sleep_done, s);
  }
}

void
smtpd_session_shutdown(SmtpdSession *s)
{
  if (s->wait != SMTPD_WAIT_NONE)
    return;   /* finishes its current step, then sees server->stopping */
  if (s->tls_handshaking || s->tls_start) {
    smtpd_session_abort(s, NULL);   /* no channel to say 421 on yet */
    return;
  }
  if (s->state == SMTPD_STATE_READY || s->state == SMTPD_STATE_MAIL ||
      s->state == SMTPD_STATE_RCPT) {
    g_autofree char *line = g_strdup_printf("421 4.3.2 %s Service shutting down",
                                            s->settings->myhostname);
    smtpd_session_close_with(s, line);
  }
}

/* Executes complete command lines and DATA content from the input buffer,
 * in order, until input runs out or the session must wait. */
void
smtpd_session_process(SmtpdSession *s)
{
  smtpd_session_ref(s);
  /* A stop that came while a handshake step ran: the loop below never
   * starts during a handshake, so it is seen here. */
  if (s->server->stopping && s->wait == SMTPD_WAIT_NONE && s->tls_handshaking
      && s->state < SMTPD_STATE_QUIT)
    smtpd_session_shutdown(s);
  while (s->wait == SMTPD_WAIT_NONE && s->state >= SMTPD_STATE_READY &&
         s->state < SMTPD_STATE_QUIT && !s->tls_start && !s->tls_handshaking) {
    if (s->state == SMTPD_STATE_DATA) {
      if (!smtpd_data_feed(s))
        break;
      continue;
    }
    if (s->state == SMTPD_STATE_BDAT) {
      if (!smtpd_bdat_feed(s))
        break;
      continue;
    }
    if (s->server->stopping && s->state != SMTPD_STATE_COMMIT) {
      smtpd_session_shutdown(s);
      break;
    }
    char *p = s->in + s->in_pos;
    gsize avail = s->in_len - s->in_pos;
    if (avail == 0)
      break;
    if (s->discard_line) {
      char *lf = memchr(p, '\n', avail);
      if (lf == NULL) {
        s->in_pos = s->in_len;
        break;
      }
      s->in_pos += lf - p + 1;
      s->discard_line = FALSE;
      s->cmd = SMTPD_CMD_UNKNOWN;
      s->cmd_failed = FALSE;
      smtpd_session_reply_line(s, SMTP_REPLY_LINE_TOO_LONG);
      smtpd_session_command_done(s);
      continue;
    }
    gsize line_len, consumed;
    gsize max = s->auth_pending ? (gsize) MIN(s->settings->sasl_response_limit, SMTPD_IN_MAX - 2)
                                : SMTP_COMMAND_LINE_MAX;
    SmtpLineStatus st = smtp_line_next(p, avail, max, !s->strict_newline, &line_len, &consumed);
    if (st == SMTP_LINE_INCOMPLETE)
      break;
    s->in_pos += consumed;
    if (s->auth_pending && st == SMTP_LINE_OK) {
      smtpd_auth_response(s, p, line_len);
    } else if (s->auth_pending && st == SMTP_LINE_TOO_LONG) {
      s->auth_pending = FALSE;
      if (line_len == 0)
        s->discard_line = TRUE;
      s->cmd = SMTPD_CMD_AUTH;
      smtpd_session_reply_line(s, "500 5.5.6 SASL response limit exceeded");
      smtpd_session_command_done(s);
    } else if (st == SMTP_LINE_OK) {
      smtpd_notify_in(s, p, line_len);
      smtpd_commands_execute(s, p, line_len);
      if (s->tls_start) {
        /* Whatever came after STARTTLS was sent before our 220 and is
         * not part of the TLS session: thrown away (CVE-2011-0411). */
        s->in_pos = s->in_len;
        break;
      }
    } else if (st == SMTP_LINE_TOO_LONG) {
      if (line_len == 0) {
        s->discard_line = TRUE;
        continue;
      }
      s->cmd = SMTPD_CMD_UNKNOWN;
      s->cmd_failed = FALSE;
      smtpd_session_reply_line(s, SMTP_REPLY_LINE_TOO_LONG);
      smtpd_session_command_done(s);
    } else {
      const char *what = st == SMTP_LINE_BARE_LF ? "<LF>" : "<CR>";
      LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
      log_send(LOG_WARNING, NULL, f, 1, "disallowed bare %s received from %s", what,
               s->namaddr);
      g_autofree char *line = g_strdup_printf("%d 5.5.2 %s Error: bare %s received",
                                              (int)s->settings->bare_newline_code,
                                              s->settings->myhostname, what);
      smtpd_session_close_with(s, line);
    }
  }

  if (s->state != SMTPD_STATE_CLOSED) {
    if (s->in_pos == s->in_len)
      s->in_pos = s->in_len = 0;
    if (s->eof && s->wait == SMTPD_WAIT_NONE && s->state < SMTPD_STATE_QUIT) {
      session_flush(s);
      smtpd_session_abort(s, "lost connection");
    } else if ((s->hold_output || session_flush(s)) && s->state != SMTPD_STATE_CLOSED) {
      smtpd_session_update_io(s);
    }
  }
  smtpd_session_unref(s);
}

/* Reads what the socket has; in QUIT it only drains. */
static void
session_read(SmtpdSession *s)
{
  if (s->state == SMTPD_STATE_QUIT) {
    char sink[4096];
    ssize_t n = recv(s->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      smtpd_session_disconnect(s);
    return;
  }

  gboolean content = s->state == SMTPD_STATE_DATA || s->state == SMTPD_STATE_BDAT;
  guint32 want = content ? SMTPD_IN_DATA : SMTPD_IN_INITIAL;
  if (s->in_pos > 0) {
    memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
    s->in_len -= s->in_pos;
    s->in_pos = 0;
  }
  if (s->in_cap < want || (s->in_len == s->in_cap && s->in_cap < SMTPD_IN_MAX)) {
    guint32 cap = MAX(want, MIN(s->in_cap * 2, SMTPD_IN_MAX));
    s->in = g_realloc(s->in, cap);
    s->in_cap = cap;
  }
  if (s->in_len == s->in_cap) {
    smtpd_session_update_io(s);
    return;
  }

  ssize_t n = s->tls != NULL ? smtpd_tls_recv(s, s->in + s->in_len, s->in_cap - s->in_len)
                             : recv(s->fd, s->in + s->in_len, s->in_cap - s->in_len, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return;
    smtpd_session_abort(s, "lost connection");
    return;
  }
  if (n == 0) {
    s->eof = TRUE;
  } else {
    s->in_len += n;
    if (content) {
      /* Each chunk of content earns n / smtpd_min_data_rate seconds,
       * capped at smtpd_timeout from now. */
      const SmtpdSettings *st = s->settings;
      gint64 now = now_us(), cap = now + st->timeout * G_USEC_PER_SEC;
      if (st->per_record_deadline && st->min_data_rate > 0) {
        gint64 d = s->deadline + (gint64)n * G_USEC_PER_SEC / st->min_data_rate;
        session_arm_timer(s, MIN(d, cap));
      } else {
        session_arm_timer(s, cap);
      }
    }
  }
  if (s->state == SMTPD_STATE_INIT) {
    s->ill_pipelining = s->in_len > 0;   /* RFC 2920: talking before the greeting */
    smtpd_session_update_io(s);   /* early talker: keep it for after the greeting */
    if (s->eof)
      smtpd_session_abort(s, "lost connection");
    return;
  }
  smtpd_session_process(s);
}

static int
session_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
  SmtpdSession *s = smtpd_session_ref(userdata);
  if (s->tls_handshaking) {
    smtpd_tls_handshake_step(s);
    smtpd_session_unref(s);
    return 0;
  }
  if ((revents & EPOLLOUT) && s->tls_read_wants_write && s->state != SMTPD_STATE_QUIT)
    session_read(s);
  if ((revents & EPOLLIN) && s->tls_write_wants_read && s->state != SMTPD_STATE_CLOSED)
    revents |= EPOLLOUT;    /* the write waited for this */
  if ((revents & EPOLLOUT) && s->state != SMTPD_STATE_CLOSED) {
    if (session_flush(s) && s->state != SMTPD_STATE_CLOSED) {
      if (s->state < SMTPD_STATE_QUIT && s->wait == SMTPD_WAIT_NONE)
        smtpd_session_process(s);   /* back-pressure over: continue */
      else
        smtpd_session_update_io(s);
    }
  }
  if ((revents & (EPOLLHUP | EPOLLERR)) && s->eof && s->state != SMTPD_STATE_CLOSED)
    smtpd_session_abort(s, "lost connection");   /* gone both ways; avoid spinning */
  if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s->state != SMTPD_STATE_CLOSED)
    session_read(s);
  smtpd_session_unref(s);
  return 0;
}

static int
session_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
  SmtpdSession *s = smtpd_session_ref(userdata);
  if (s->state == SMTPD_STATE_QUIT) {
    smtpd_session_disconnect(s);
  } else if (s->wait != SMTPD_WAIT_NONE) {
    /* Our own work (a handshake step included) is not the client's fault. */
    smtpd_session_set_deadline(s, s->settings->timeout * G_USEC_PER_SEC);
  } else if (s->tls_handshaking) {
    smtpd_session_abort(s, "timeout");   /* no reply: the channel is neither plain nor TLS */
  } else {
    LogField f[] = { { "POSTERN_CLIENT", s->namaddr } };
    log_send(LOG_INFO, NULL, f, 1, "timeout after %s from %s",
             s->last_cmd != NULL ? s->last_cmd : "CONNECT", s->namaddr);
    g_autofree char *line = g_strdup_printf("421 4.4.2 %s Error: timeout exceeded",
                                            s->settings->myhostname);
    smtpd_session_close_with(s, line);
  }
  smtpd_session_unref(s);
  return 0;
}

/* STARTTLS: TLS is up.  RFC 3207 4.2: the client starts over, and
 * nothing it said in plaintext counts. */
static void
session_starttls_done(SmtpdSession *s)
{
  smtpd_session_reset_transaction(s);
  g_clear_pointer(&s->helo, g_free);
  s->esmtp = FALSE;
  s->ill_pipelining = FALSE;
  if (s->sasl == NULL)
    smtpd_auth_reset(s);
  smtpd_session_set_deadline(s, s->settings->timeout * G_USEC_PER_SEC);
  smtpd_session_process(s);
}

void
smtpd_session_start_io(SmtpdSession *s)
{
  SmtpdServer *server = s->server;

  s->io_events = EPOLLIN;
  sd_event_add_io(server->event, &s->io, s->fd, EPOLLIN, session_io, s);
  s->deadline = now_us() + s->settings->timeout * G_USEC_PER_SEC;
  sd_event_add_time(server->event, &s->timer, CLOCK_MONOTONIC, s->deadline,
                    SMTPD_TIMER_ACCURACY_US, session_timeout, s);
}
