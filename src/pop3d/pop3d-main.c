/* pop3d-main.c - postern-pop3d's parent process (pop3d.h, docs/pop3d.md):
 * arguments, configuration, listeners, and the event loop that accepts
 * connections and runs the login, auth and mail processes of each.
 *
 *   postern-pop3d [--config-dir DIR] [-o name=value]... [--listen pop3|pop3s=ADDR:PORT]... [-v]
 *
 * The parent never reads a client's bytes.  It keeps, per client address,
 * the connections (pop3d_client_connection_limit) and the failed logins
 * of the current anvil_rate_time_unit (pop3d_client_login_failure_limit),
 * and per connection its failures, whose answer it delays
 * (pop3d_sasl_failure_delay times the failures so far) and after
 * pop3d_sasl_failure_limit of which it ends the session: a login process
 * taken over by its client can neither skip the delay nor pick the user
 * it serves.  Started as root it keeps only CAP_SETUID, CAP_SETGID (for
 * the children's identities) and CAP_KILL (to stop them).
 *
 * Exit codes: 0 clean stop, 1 configuration or start-up error, 2 no
 * listeners / bad usage.
 */
#include "pop3d.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "listeners.h"
#include "log.h"

#define SHUTDOWN_GRACE_US (10 * G_USEC_PER_SEC)

typedef struct _Server Server;

typedef struct {
  guint conns;
  guint failures;           /* failed logins in the window */
  gint64 window_start;      /* monotonic µs */
} ClientStat;

typedef struct {
  Server *server;
  Pop3dPeer peer;
  pid_t login_pid, auth_pid, mail_pid;
  guint children;           /* not reaped yet (an earlier auth process may still be exiting) */
  int ctl_fd;
  sd_event_source *ctl_src;
  int auth_fd;
  sd_event_source *auth_src;
  sd_event_source *delay_src;
  Pop3dLoginReply delayed;  /* the reply the delay holds back */
  /* the login being checked */
  int client_fd;            /* the descriptor the mail process gets */
  char *user;
  char method[8];
  gboolean tls;
  char *rest;
  gsize rest_len;
  guint failures;
} Conn;

struct _Server {
  sd_event *event;
  Pop3dSettings *st;
  const char *config_dir;
  char **overrides;
  GPtrArray *listener_srcs;
  GHashTable *by_pid;       /* pid → Conn */
  GHashTable *clients;      /* remote address → ClientStat */
  guint n_conns;
  gboolean stopping;
  sd_event_source *stop_timer;
};

static void G_GNUC_NORETURN G_GNUC_PRINTF(2, 3)
die(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "postern-pop3d: fatal: %s\n", msg);
  g_free(msg);
  exit(code);
}

/* ---------------------------------------------------------------- per client address */

static ClientStat *
client_stat(Server *sv, const char *addr)
{
  ClientStat *c = g_hash_table_lookup(sv->clients, addr);
  gint64 now = g_get_monotonic_time();

  if (c == NULL) {
    c = g_new0(ClientStat, 1);
    c->window_start = now;
    g_hash_table_insert(sv->clients, g_strdup(addr), c);
  }
  if (now - c->window_start >= sv->st->rate_unit_us) {
    c->window_start = now;
    c->failures = 0;
  }
  return c;
}

static void
client_release(Server *sv, const char *addr)
{
  ClientStat *c = g_hash_table_lookup(sv->clients, addr);

  if (c == NULL)
    return;
  if (c->conns > 0)
    c->conns--;
  /* Failures are remembered for the rest of their window. */
  if (c->conns == 0
      && (c->failures == 0 || g_get_monotonic_time() - c->window_start >= sv->st->rate_unit_us))
    g_hash_table_remove(sv->clients, addr);
}

/* ---------------------------------------------------------------- connections */

static void
conn_forget_login(Conn *c)
{
  if (c->client_fd >= 0)
    close(c->client_fd);
  c->client_fd = -1;
  g_clear_pointer(&c->user, g_free);
  if (c->rest) {
    memset(c->rest, 0, c->rest_len);
    g_clear_pointer(&c->rest, g_free);
  }
  c->rest_len = 0;
}

static void
conn_maybe_free(Conn *c)
{
  Server *sv = c->server;

  if (c->children || c->ctl_src || c->auth_src || c->delay_src)
    return;
  conn_forget_login(c);
  client_release(sv, c->peer.remote);
  g_free(c);
  sv->n_conns--;
  if (sv->stopping && sv->n_conns == 0)
    sd_event_exit(sv->event, 0);
}

static void
conn_close_ctl(Conn *c)
{
  c->ctl_src = sd_event_source_disable_unref(c->ctl_src);
  if (c->ctl_fd >= 0)
    close(c->ctl_fd);
  c->ctl_fd = -1;
}

static void
conn_reply(Conn *c, char kind, const char *text)
{
  Pop3dLoginReply r = { .kind = kind };

  g_strlcpy(r.text, text ? text : "", sizeof r.text);
  if (c->ctl_fd >= 0 && send(c->ctl_fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
    conn_close_ctl(c);
}

static int
conn_delay_done(sd_event_source *src, uint64_t usec, void *userdata)
{
  Conn *c = userdata;

  c->delay_src = sd_event_source_disable_unref(c->delay_src);
  conn_reply(c, c->delayed.kind, c->delayed.text);
  conn_maybe_free(c);
  return 0;
}

/* The answer to a failed login, failure_delay × failures later. */
static void
conn_reply_later(Conn *c, char kind, const char *text, gint64 delay_ms)
{
  uint64_t now = 0;

  c->delayed.kind = kind;
  g_strlcpy(c->delayed.text, text, sizeof c->delayed.text);
  sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
  if (delay_ms <= 0
      || sd_event_add_time(c->server->event, &c->delay_src, CLOCK_MONOTONIC,
                           now + (uint64_t) delay_ms * 1000, 0, conn_delay_done, c) < 0)
    conn_reply(c, kind, text);
}

static void
conn_register_pid(Conn *c, pid_t pid)
{
  g_hash_table_insert(c->server->by_pid, GINT_TO_POINTER(pid), c);
  c->children++;
}

/* ---------------------------------------------------------------- a login's outcome */

static void
conn_start_mail(Conn *c, const Pop3dMailbox *box)
{
  Server *sv = c->server;
  pid_t pid = fork();

  if (pid == 0)
    pop3d_mail_main(sv->st, &c->peer, box, c->user, c->client_fd, c->rest ? c->rest : "",
                    c->rest_len);
  if (pid < 0) {
    log_error("fork: %s", g_strerror(errno));
    conn_reply(c, 'F', "[SYS/TEMP] Internal error.");
    return;
  }
  c->mail_pid = pid;
  conn_register_pid(c, pid);
  log_send(LOG_INFO, NULL, (LogField[]) { { "POSTERN_CLIENT", c->peer.remote } }, 1,
           "login: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%ld%s", c->user, c->method,
           c->peer.remote, c->peer.local, (long) pid, c->tls ? ", TLS" : "");
  conn_reply(c, 'O', "");
}

static void
conn_auth_result(Conn *c, const Pop3dAuthResult *res)
{
  Server *sv = c->server;
  const Pop3dSettings *st = sv->st;
  LogField f[] = { { "POSTERN_CLIENT", c->peer.remote } };
  ClientStat *cs;

  switch (res->status) {
  case POP3D_AUTH_OK:
    if (res->box.uid != 0 && res->box.gid != 0 && res->box.path[0] == '/') {
      conn_start_mail(c, &res->box);
      break;
    }
    log_send(LOG_WARNING, NULL, f, 1, "[%s]: user=<%s>: refusing a mailbox owned by root: %s",
             c->peer.remote, c->user, res->box.path);
    conn_reply(c, 'F', "[SYS/PERM] No mailbox for this user.");
    break;
  case POP3D_AUTH_FAIL:
    c->failures++;
    cs = client_stat(sv, c->peer.remote);
    cs->failures++;
    log_send(LOG_WARNING, NULL, f, 1, "[%s]: POP3 %s authentication failed: user=<%s>: %s",
             c->peer.remote, c->method, c->user, res->reason);
    conn_reply_later(c, c->failures >= st->failure_limit ? 'C' : 'F',
                     "[AUTH] Authentication failed.", st->failure_delay_ms * c->failures);
    break;
  case POP3D_AUTH_NOBOX:
    log_send(LOG_WARNING, NULL, f, 1, "[%s]: user=<%s> authenticated but has no mailbox: %s",
             c->peer.remote, c->user, res->reason);
    conn_reply(c, 'F', "[SYS/PERM] No mailbox for this user.");
    break;
  default:
    log_send(LOG_WARNING, NULL, f, 1, "[%s]: user=<%s>: login cannot be checked now: %s",
             c->peer.remote, c->user, res->reason);
    conn_reply(c, 'F', "[SYS/TEMP] Authentication is temporarily unavailable.");
    break;
  }
  conn_forget_login(c);
}

static int
conn_on_auth(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
  Conn *c = userdata;
  Pop3dAuthResult res = { .status = POP3D_AUTH_TEMP };
  gsize got = 0;

  while (got < sizeof res) {
    ssize_t n = read(fd, (char *) &res + got, sizeof res - got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      if (errno == EAGAIN && got == 0)
        return 0;
      continue;
    }
    if (n <= 0)
      break;
    got += (gsize) n;
  }
  if (got != sizeof res) {
    res = (Pop3dAuthResult) { .status = POP3D_AUTH_TEMP };
    g_strlcpy(res.reason, "the auth process ended without an answer", sizeof res.reason);
  }
  res.reason[sizeof res.reason - 1] = '\0';
  res.box.path[sizeof res.box.path - 1] = '\0';
  c->auth_src = sd_event_source_disable_unref(c->auth_src);
  close(c->auth_fd);
  c->auth_fd = -1;
  conn_auth_result(c, &res);
  conn_maybe_free(c);
  return 0;
}

/* A login from the login process: check it in an auth process. */
static void
conn_login(Conn *c, const Pop3dLoginRequest *req, const char *data, int fd)
{
  Server *sv = c->server;
  const Pop3dSettings *st = sv->st;
  ClientStat *cs = client_stat(sv, c->peer.remote);
  g_autofree char *password = NULL;
  int pipe_fd[2];
  pid_t pid;

  c->client_fd = fd;
  c->user = g_strndup(data, req->user_len);
  password = g_strndup(data + req->user_len, req->password_len);
  c->rest_len = req->rest_len;
  c->rest = g_memdup2(data + req->user_len + req->password_len, req->rest_len);
  g_strlcpy(c->method, req->method, sizeof c->method);
  c->tls = req->tls != 0;
  if (st->login_failure_limit > 0 && cs->failures >= st->login_failure_limit) {
    log_send(LOG_WARNING, NULL, (LogField[]) { { "POSTERN_CLIENT", c->peer.remote } }, 1,
             "[%s]: login refused: %u failed logins from this address within %" G_GINT64_FORMAT
             "s (pop3d_client_login_failure_limit)", c->peer.remote, cs->failures,
             st->rate_unit_us / G_USEC_PER_SEC);
    conn_reply(c, 'F', "[SYS/TEMP] Too many failed logins from your address; try again later.");
    conn_forget_login(c);
    memset(password, 0, req->password_len);
    return;
  }
  if (pipe2(pipe_fd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
    log_error("cannot start an auth process: %s", g_strerror(errno));
    conn_reply(c, 'F', "[SYS/TEMP] Internal error.");
    conn_forget_login(c);
    memset(password, 0, req->password_len);
    return;
  }
  if (pid == 0) {
    close(pipe_fd[0]);
    pop3d_auth_main(st, &c->peer, c->user, password, req->tls_bits, pipe_fd[1]);
  }
  memset(password, 0, req->password_len);
  close(pipe_fd[1]);
  c->auth_pid = pid;
  conn_register_pid(c, pid);
  c->auth_fd = pipe_fd[0];
  if (sd_event_add_io(sv->event, &c->auth_src, c->auth_fd, EPOLLIN, conn_on_auth, c) < 0) {
    close(c->auth_fd);
    c->auth_fd = -1;
    conn_reply(c, 'F', "[SYS/TEMP] Internal error.");
    conn_forget_login(c);
  }
}

static int
conn_on_ctl(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
  Conn *c = userdata;
  g_autofree char *buf = g_malloc(POP3D_LOGIN_MAX);
  union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
  struct iovec iov = { .iov_base = buf, .iov_len = POP3D_LOGIN_MAX };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
                       .msg_controllen = sizeof control.b };
  Pop3dLoginRequest req;
  int passed = -1;
  ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS
        && cm->cmsg_len == CMSG_LEN(sizeof(int)) && passed < 0)
      memcpy(&passed, CMSG_DATA(cm), sizeof passed);
  if (n <= 0) {
    if (passed >= 0)
      close(passed);
    conn_close_ctl(c);
    conn_maybe_free(c);
    return 0;
  }
  memcpy(&req, buf, MIN((gsize) n, sizeof req));
  /* One login at a time, well formed, with its descriptor: anything else
   * is a login process that no longer follows the protocol. */
  if ((gsize) n < sizeof req || req.kind != 'L' || passed < 0 || c->auth_src || c->mail_pid
      || c->delay_src || c->client_fd >= 0 || req.user_len == 0
      || sizeof req + req.user_len + req.password_len + (gsize) req.rest_len != (gsize) n
      || memchr(buf + sizeof req, '\0', req.user_len + req.password_len) != NULL) {
    log_warning("[%s]: login process %ld broke the protocol; stopping it", c->peer.remote,
                (long) c->login_pid);
    if (passed >= 0)
      close(passed);
    if (c->login_pid)
      kill(c->login_pid, SIGKILL);
    conn_close_ctl(c);
    conn_maybe_free(c);
    return 0;
  }
  req.method[sizeof req.method - 1] = '\0';
  conn_login(c, &req, buf + sizeof req, passed);
  memset(buf, 0, (gsize) n);
  conn_maybe_free(c);
  return 0;
}

/* ---------------------------------------------------------------- accepting */

static void
peer_fill(Pop3dPeer *p, int fd, gboolean implicit_tls)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  memset(p, 0, sizeof *p);
  p->implicit_tls = implicit_tls;
  if (getpeername(fd, (struct sockaddr *) &p->peer, &len) == 0) {
    inet_sockaddr_to_string((const struct sockaddr *) &p->peer, p->remote, sizeof p->remote);
    if (p->peer.ss_family == AF_INET) {
      const struct sockaddr_in *in = (const struct sockaddr_in *) &p->peer;
      p->remote_port = ntohs(in->sin_port);
      p->loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (p->peer.ss_family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &p->peer;
      p->remote_port = ntohs(in6->sin6_port);
      p->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
  }
  if (p->remote[0] == '\0')
    g_strlcpy(p->remote, "unknown", sizeof p->remote);
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0) {
    inet_sockaddr_to_string((const struct sockaddr *) &ss, p->local, sizeof p->local);
    if (ss.ss_family == AF_INET)
      p->local_port = ntohs(((const struct sockaddr_in *) &ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      p->local_port = ntohs(((const struct sockaddr_in6 *) &ss)->sin6_port);
  }
}

static void
refuse(int fd, const char *line)
{
  if (write(fd, line, strlen(line)) < 0) {
    /* the client is gone already */
  }
  close(fd);
}

typedef struct {
  Server *sv;
  gboolean implicit_tls;    /* pop3s */
} Listen;

static int
on_accept(sd_event_source *src, int lfd, uint32_t revents, void *userdata)
{
  const Listen *ln = userdata;
  Server *sv = ln->sv;
  gboolean implicit_tls = ln->implicit_tls;
  const Pop3dSettings *st = sv->st;

  for (int i = 0; i < 64 && !sv->stopping; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1, pair[2];
    Conn *c;
    ClientStat *cs;
    pid_t pid;

    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        log_warning("accept: %s", g_strerror(errno));
      return 0;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = g_new0(Conn, 1);
    c->server = sv;
    c->client_fd = c->auth_fd = c->ctl_fd = -1;
    peer_fill(&c->peer, fd, implicit_tls);
    if (sv->n_conns >= st->process_limit) {
      log_send(LOG_WARNING, NULL, (LogField[]) { { "POSTERN_CLIENT", c->peer.remote } }, 1,
               "[%s]: server busy: %u connections (pop3d_process_limit)", c->peer.remote,
               sv->n_conns);
      refuse(fd, implicit_tls ? "" : "-ERR [SYS/TEMP] Server busy, try again later.\r\n");
      g_free(c);
      continue;
    }
    cs = client_stat(sv, c->peer.remote);
    if (st->connection_limit > 0 && cs->conns >= st->connection_limit) {
      log_send(LOG_WARNING, NULL, (LogField[]) { { "POSTERN_CLIENT", c->peer.remote } }, 1,
               "[%s]: too many connections from this address (%u, "
               "pop3d_client_connection_limit)", c->peer.remote, cs->conns);
      refuse(fd, implicit_tls ? "" : "-ERR [SYS/TEMP] Too many connections from your address.\r\n");
      g_free(c);
      continue;
    }
    cs->conns++;
    sv->n_conns++;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0 || (pid = fork()) < 0) {
      log_error("cannot start a login process: %s", g_strerror(errno));
      refuse(fd, implicit_tls ? "" : "-ERR [SYS/TEMP] Internal error.\r\n");
      conn_maybe_free(c);
      continue;
    }
    if (pid == 0) {
      close(pair[0]);
      pop3d_login_main(st, &c->peer, fd, pair[1]);
    }
    close(fd);
    close(pair[1]);
    c->ctl_fd = pair[0];
    c->login_pid = pid;
    conn_register_pid(c, pid);
    if (sd_event_add_io(sv->event, &c->ctl_src, c->ctl_fd, EPOLLIN, conn_on_ctl, c) < 0) {
      kill(pid, SIGKILL);
      conn_close_ctl(c);
    }
    log_debug("connect from [%s]:%u, login process %ld", c->peer.remote, c->peer.remote_port,
              (long) pid);
  }
  return 0;
}

/* ---------------------------------------------------------------- signals */

static int
on_sigchld(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
  Server *sv = userdata;
  pid_t pid;
  int status;

  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    Conn *c = g_hash_table_lookup(sv->by_pid, GINT_TO_POINTER(pid));

    if (c == NULL)
      continue;
    g_hash_table_remove(sv->by_pid, GINT_TO_POINTER(pid));
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM && WTERMSIG(status) != SIGKILL)
      log_warning("process %ld for [%s] killed by signal %d", (long) pid, c->peer.remote,
                  WTERMSIG(status));
    if (c->login_pid == pid)
      c->login_pid = 0;
    if (c->auth_pid == pid)
      c->auth_pid = 0;
    if (c->mail_pid == pid)
      c->mail_pid = 0;
    c->children--;
    conn_maybe_free(c);
  }
  return 0;
}

static void
kill_children(Server *sv, int sig)
{
  GHashTableIter it;
  gpointer pid;

  g_hash_table_iter_init(&it, sv->by_pid);
  while (g_hash_table_iter_next(&it, &pid, NULL))
    kill(GPOINTER_TO_INT(pid), sig);
}

static int
stop_timeout(sd_event_source *src, uint64_t usec, void *userdata)
{
  Server *sv = userdata;

  log_warning("%u session(s) still active at shutdown, killing them", sv->n_conns);
  kill_children(sv, SIGKILL);
  sd_event_exit(sv->event, 0);
  return 0;
}

static int
on_sigterm(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
  Server *sv = userdata;
  uint64_t now = 0;

  if (sv->stopping)
    return 0;
  sv->stopping = TRUE;
  sd_notify(0, "STOPPING=1\nSTATUS=Stopping sessions");
  log_info("terminating on signal %d", (int) si->ssi_signo);
  for (guint i = 0; i < sv->listener_srcs->len; i++)
    sd_event_source_set_enabled(sv->listener_srcs->pdata[i], SD_EVENT_OFF);
  /* Mail processes finish the command they run (an UPDATE included). */
  kill_children(sv, SIGTERM);
  if (sv->n_conns == 0) {
    sd_event_exit(sv->event, 0);
    return 0;
  }
  sd_event_now(sv->event, CLOCK_MONOTONIC, &now);
  sd_event_add_time(sv->event, &sv->stop_timer, CLOCK_MONOTONIC, now + SHUTDOWN_GRACE_US, 0,
                    stop_timeout, sv);
  return 0;
}

static void
log_config_warnings(const Pop3dSettings *st)
{
  const GPtrArray *w = config_warnings(st->config);

  for (guint i = 0; w != NULL && i < w->len; i++)
    log_warning("%s", (const char *) w->pdata[i]);
}

static int
on_sighup(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
  Server *sv = userdata;
  g_autoptr(GError) error = NULL;
  Pop3dSettings *st;

  sd_notify(0, "RELOADING=1\nSTATUS=Reloading configuration");
  st = pop3d_settings_load(sv->config_dir, (const char *const *) sv->overrides, &error);
  if (st == NULL) {
    log_error("reload failed, keeping the old configuration: %s", error->message);
  } else {
    log_config_warnings(st);
    pop3d_settings_free(sv->st);
    sv->st = st;
    log_info("reloaded configuration from %s", sv->config_dir);
  }
  sd_notify(0, "READY=1\nSTATUS=Accepting connections");
  return 0;
}

/* ---------------------------------------------------------------- start */

static void
listener_src_free(gpointer src)
{
  sd_event_source_disable_unref(src);
}

/* Root keeps what the children need and nothing else. */
static void
drop_capabilities(void)
{
  const guint64 keep = (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) | (1ULL << CAP_KILL);
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
  struct __user_cap_data_struct data[2] = { { 0 } };

  if (geteuid() != 0)
    return;
  /* The bounding set, where it still has more (dropping needs
   * CAP_SETPCAP; under the unit it is bounded already). */
  for (int cap = 0; cap < 64; cap++)
    if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1
        && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
      die(1, "cannot drop capability %d: %s", cap, g_strerror(errno));
  data[0].effective = data[0].permitted = (guint32) keep;
  if (syscall(SYS_capset, &hdr, data) < 0)
    die(1, "capset: %s", g_strerror(errno));
}

int
main(int argc, char **argv)
{
  g_autofree char *config_dir = NULL;
  g_auto(GStrv) overrides = NULL;
  g_auto(GStrv) listen = NULL;
  gboolean verbose = FALSE, version = FALSE;
  GOptionEntry entries[] = {
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir,
      "Configuration directory (default $POSTERN_CONFIG_DIR or /etc/postern)", "DIR" },
    { "option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &overrides,
      "Override a main.cf parameter (repeatable)", "NAME=VALUE" },
    { "listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen,
      "Listen without socket activation: pop3|pop3s=ADDR:PORT", "NAME=ADDR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- Postern POP3 server");
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) listeners = NULL;
  g_autoptr(GPtrArray) listens = g_ptr_array_new_with_free_func(g_free);
  Server sv = { 0 };
  sigset_t mask;
  int r;

  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error))
    die(2, "%s", error->message);
  if (version) {
    printf("postern-pop3d %s\n", POSTERN_VERSION);
    return 0;
  }
  log_init("postern-pop3d", FALSE);
  listeners_raise_fd_limit();
  if (verbose)
    log_set_debug(TRUE);

  sv.config_dir = config_dir_resolve(config_dir);
  sv.overrides = overrides;
  sv.st = pop3d_settings_load(sv.config_dir, (const char *const *) overrides, &error);
  if (sv.st == NULL)
    die(1, "%s", error->message);
  log_config_warnings(sv.st);

  listeners = listeners_collect(listen, &error);
  if (listeners == NULL)
    die(error->code == POSTERN_ERROR_CONFIG ? 2 : 1, "%s", error->message);
  if (listeners->len == 0)
    die(2, "no listeners: start postern-pop3d from postern-pop3d.socket, or pass --listen "
        "NAME=ADDR:PORT (e.g. --listen pop3=127.0.0.1:1110 --listen pop3s=127.0.0.1:1995)");
  drop_capabilities();

  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);

  r = sd_event_default(&sv.event);
  if (r < 0)
    die(1, "sd_event_default: %s", g_strerror(-r));
  sd_event_set_watchdog(sv.event, TRUE);
  sd_event_add_signal(sv.event, NULL, SIGHUP, on_sighup, &sv);
  sd_event_add_signal(sv.event, NULL, SIGTERM, on_sigterm, &sv);
  sd_event_add_signal(sv.event, NULL, SIGINT, on_sigterm, &sv);
  sd_event_add_signal(sv.event, NULL, SIGCHLD, on_sigchld, &sv);
  sv.by_pid = g_hash_table_new(NULL, NULL);
  sv.clients = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  sv.listener_srcs = g_ptr_array_new_with_free_func(listener_src_free);

  for (guint i = 0; i < listeners->len; i++) {
    const Listener *l = &g_array_index(listeners, Listener, i);
    gboolean pop3s = strcmp(l->name, "pop3s") == 0;
    sd_event_source *src = NULL;
    Listen *ln;

    if (!pop3s && strcmp(l->name, "pop3") != 0) {
      if (!l->activated)
        die(2, "--listen %s=...: unknown listener name (pop3, pop3s)", l->name);
      log_warning("socket-activated fd %d has unknown name \"%s\", serving it as pop3", l->fd,
                  l->name);
    }
    if (pop3s && sv.st->tls == NULL)
      log_warning("pop3s listener (fd %d): TLS is not available (set pop3d_tls_cert_file); "
                  "its connections are closed", l->fd);
    fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
    ln = g_new0(Listen, 1);
    g_ptr_array_add(listens, ln);
    ln->sv = &sv;
    ln->implicit_tls = pop3s;
    r = sd_event_add_io(sv.event, &src, l->fd, EPOLLIN, on_accept, ln);
    if (r < 0)
      die(1, "listener fd %d: %s", l->fd, g_strerror(-r));
    g_ptr_array_add(sv.listener_srcs, src);
  }

  log_info("daemon started -- version %s, configuration %s", POSTERN_VERSION, sv.config_dir);
  sd_notify(0, "READY=1\nSTATUS=Accepting connections");
  r = sd_event_loop(sv.event);

  g_ptr_array_free(sv.listener_srcs, TRUE);
  listeners_free(g_steal_pointer(&listeners));
  g_hash_table_destroy(sv.by_pid);
  g_hash_table_destroy(sv.clients);
  sd_event_unref(sv.event);
  pop3d_settings_free(sv.st);
  log_info("stopped");
  return r < 0 ? 1 : 0;
}
