/* qmgr-smtp.c - remote delivery through the SMTP client's agent,
 * postern-smtp (docs/smtp-client.md).
 *
 * The SMTP client never runs as root: for each delivery the worker thread
 * forks a child that becomes mail_owner (raw system calls only, as in
 * qmgr-command.c: the child of a threaded process) and execs the agent
 * with the queue file opened read-only as fd 0, the request on fd 3 and
 * the answer on fd 4.  The agent looks up MX hosts, talks SMTP and
 * answers one line per recipient; this side logs the status lines and
 * returns the verdicts.  An agent that dies without answering defers.
 */
#include "qmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

/* The longest a delivery may take before the agent is killed: every
 * stage's own timeout is far shorter. */
#define QMGR_SMTP_LIMIT_S (60 * 60)

static char *qmgr_smtp_agent_path;
/* Readable once qmgr stops: deliveries in flight give up at once (the
 * message stays queued; at most that delivery is repeated later). */
static int qmgr_smtp_stop_pipe[2] = { -1, -1 };
G_LOCK_DEFINE_STATIC(qmgr_smtp_stop);

static int
qmgr_smtp_stop_fd(void)
{
  G_LOCK(qmgr_smtp_stop);
  if (qmgr_smtp_stop_pipe[0] < 0 && pipe2(qmgr_smtp_stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    qmgr_smtp_stop_pipe[0] = qmgr_smtp_stop_pipe[1] = -1;
  G_UNLOCK(qmgr_smtp_stop);
  return qmgr_smtp_stop_pipe[0];
}

void
qmgr_smtp_stop(void)
{
  if (qmgr_smtp_stop_fd() >= 0 && write(qmgr_smtp_stop_pipe[1], "x", 1) < 0) {
    /* the pipe is full: it is readable already */
  }
}

/* $POSTERN_SMTP_AGENT, or postern-smtp beside postern-qmgr (installed),
 * or ../smtp/postern-smtp (the build tree). */
static const char *
qmgr_smtp_agent(void)
{
  static gsize once;

  if (g_once_init_enter(&once)) {
    const char *env = g_getenv("POSTERN_SMTP_AGENT");
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = exe ? g_path_get_dirname(exe) : g_strdup(".");
    char *found = NULL;

    if (env && *env) {
      found = g_strdup(env);
    } else {
      const char *const rel[] = { "postern-smtp", "../smtp/postern-smtp" };

      for (guint i = 0; i < G_N_ELEMENTS(rel) && found == NULL; i++) {
        g_autofree char *p = g_build_filename(dir, rel[i], NULL);
        if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE))
          found = g_canonicalize_filename(p, NULL);
      }
      if (found == NULL)
        found = g_build_filename(dir, "postern-smtp", NULL);
    }
    qmgr_smtp_agent_path = found;
    g_once_init_leave(&once, 1);
  }
  return qmgr_smtp_agent_path;
}

/* The child: fds, identity, then the agent.  Async-signal-safe only. */
static G_GNUC_NORETURN void
smtp_child(int msg_fd, int req_fd, int res_fd, uid_t uid, gid_t gid, const char *path,
           char *const argv[])
{
  gid_t groups[1] = { gid };
  sigset_t none;

  if (dup2(msg_fd, 0) < 0 || dup2(req_fd, 3) < 0 || dup2(res_fd, 4) < 0)
    _exit(127);
  syscall(SYS_close_range, 5U, ~0U, 0U);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (geteuid() == 0 && uid != (uid_t) -1
      && (syscall(SYS_setgroups, 1L, groups) < 0
          || syscall(SYS_setresgid, (long) gid, (long) gid, (long) gid) < 0
          || syscall(SYS_setresuid, (long) uid, (long) uid, (long) uid) < 0))
    _exit(127);
  if (uid != (uid_t) -1 && uid != 0 && (getuid() == 0 || geteuid() == 0))
    _exit(127);
  execv(path, argv);
  _exit(127);
}

/* Reads the agent's whole answer (it closes fd 4 by exiting). */
static char *
smtp_read_answer(int fd, gint64 deadline_us)
{
  GString *out = g_string_new(NULL);
  char buf[4096];

  for (;;) {
    gint64 left_ms = (deadline_us - g_get_monotonic_time()) / 1000;
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
                           { .fd = qmgr_smtp_stop_fd(), .events = POLLIN } };
    ssize_t n;

    if (left_ms <= 0 || poll(p, 2, (int) MIN(left_ms, G_MAXINT)) == 0 || p[1].revents)
      break;
    n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    g_string_append_len(out, buf, n);
    if (out->len > 1024 * 1024)
      break;
  }
  return g_string_free(out, FALSE);
}

/* smtp_sasl_password_maps, read here (as root: Postfix's sasl_passwd is
 * root's alone) and handed to the agent: "A HOP user:password" for each
 * hop of the route that has an entry, looked up by the hop as written
 * ("[relay.example]:587"), then by its host name. */
static void
qmgr_smtp_credentials(const QmgrSettings *s, const Route *route, GString *request)
{
  const char *const *specs = config_list(s->config, "smtp_sasl_password_maps");
  g_auto(GStrv) items = NULL;
  g_autoptr(TableList) maps = NULL;
  g_autoptr(GError) error = NULL;
  guint hop = 0;

  if (!config_bool(s->config, "smtp_sasl_auth_enable") || specs == NULL || specs[0] == NULL)
    return;
  maps = table_list_open(specs, TABLE_FOLD_CASE, &error);
  if (maps == NULL) {
    log_warning("smtp_sasl_password_maps: %s", error->message);
    return;
  }
  items = g_strsplit_set(route->nexthop, ", \t", -1);
  for (guint i = 0; items[i]; i++) {
    g_autofree char *value = NULL, *host = NULL;
    g_autoptr(GPtrArray) hops = NULL;
    TableResult r;

    if (*items[i] == '\0')
      continue;
    if (route_nexthop_parse(items[i], 25, &hops, NULL))
      host = g_strdup(((RouteHop *) hops->pdata[0])->host);
    r = table_list_lookup(maps, items[i], &value, &error);
    if (r == TABLE_NOTFOUND && host != NULL)
      r = table_list_lookup(maps, host, &value, &error);
    if (r == TABLE_TEMPFAIL) {
      log_warning("smtp_sasl_password_maps: %s", error->message);
      g_clear_error(&error);
    }
    if (r == TABLE_FOUND && strchr(value, '\n') == NULL)
      g_string_append_printf(request, "A %u %s\n", hop, g_strstrip(value));
    hop++;
  }
}

void
qmgr_smtp_deliver_many(const QmgrDelivery *d, const char *const *addresses,
                       const char *const *orig_tos, guint n, const Route *route,
                       DeliveryKind *kinds, char **reasons)
{
  const QmgrSettings *s = d->settings;
  gint64 start = g_get_real_time();
  g_autofree char *offset = NULL, *size = NULL, *answer = NULL, *failure = NULL;
  g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", d->fd);
  g_autoptr(GString) request = g_string_new(NULL);
  g_auto(GStrv) lines = NULL;
  const char *agent = qmgr_smtp_agent();
  const char *confdir = config_get_dir(s->config);
  int req[2] = { -1, -1 }, res[2] = { -1, -1 }, msg_fd = -1, status = 0;
  pid_t pid;

  for (guint i = 0; i < n; i++) {
    kinds[i] = DELIVERY_DEFER;
    reasons[i] = NULL;
  }
  offset = g_strdup_printf("%" G_GINT64_FORMAT, d->env->content_offset);
  size = g_strdup_printf("%" G_GINT64_FORMAT, d->env->content_size);
  {
    char *const argv[] = {
      "postern-smtp", "--config-dir", (char *) confdir, "--queue-id", (char *) d->queue_id,
      "--nexthop", route->nexthop, "--offset", offset, "--size", size, NULL,
    };

    /* The agent gets the message read-only, whatever qmgr opened it as. */
    msg_fd = open(proc, O_RDONLY | O_CLOEXEC);
    if (msg_fd < 0 || pipe2(req, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0) {
      failure = g_strdup_printf("cannot start the SMTP client: %s", g_strerror(errno));
      goto out;
    }
    /* Above 0-4, so that the child's dup2()s cannot clobber each other. */
    {
      int *slots[3] = { &msg_fd, &req[0], &res[1] };

      for (guint k = 0; k < 3; k++) {
        int high = fcntl(*slots[k], F_DUPFD_CLOEXEC, 16);

        if (high < 0) {
          failure = g_strdup_printf("cannot start the SMTP client: %s", g_strerror(errno));
          goto out;
        }
        close(*slots[k]);
        *slots[k] = high;
      }
    }
    pid = fork();
    if (pid == 0)
      smtp_child(msg_fd, req[0], res[1], s->owner_uid, s->owner_gid, agent, argv);
  }
  close(req[0]);
  close(res[1]);
  req[0] = res[1] = -1;
  if (pid < 0) {
    failure = g_strdup_printf("cannot start the SMTP client: fork: %s", g_strerror(errno));
    goto out;
  }
  g_string_append_printf(request, "S %s\n", d->env->sender ? d->env->sender : "");
  qmgr_smtp_credentials(s, route, request);
  for (guint i = 0; i < n; i++)
    g_string_append_printf(request, "R %s\n", addresses[i]);
  if (write(req[1], request->str, request->len) < 0) {
    /* the agent died at once: its (missing) answer says so below */
  }
  close(req[1]);
  req[1] = -1;
  answer = smtp_read_answer(res[0], g_get_monotonic_time()
                                    + (gint64) QMGR_SMTP_LIMIT_S * G_USEC_PER_SEC);
  kill(pid, SIGKILL);       /* it has answered, or ran out of time */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  failure = g_strdup_printf("the SMTP client (%s) ended without an answer (%s %d)", agent,
                            WIFSIGNALED(status) ? "signal" : "status",
                            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  lines = g_strsplit(answer, "\n", -1);
  /* "0 S 2.0.0 mx.example[192.0.2.1]:25 250 2.0.0 Ok" */
  for (guint l = 0; lines[l]; l++) {
    g_auto(GStrv) f = g_strsplit(lines[l], " ", 5);
    guint64 i;
    char *end = NULL;
    DeliveryKind kind;
    const char *relay;

    if (g_strv_length(f) != 5 || strlen(f[1]) != 1)
      continue;
    i = g_ascii_strtoull(f[0], &end, 10);
    if (*end != '\0' || i >= n || reasons[i] != NULL)
      continue;
    kind = f[1][0] == 'S' ? DELIVERY_SENT : f[1][0] == 'B' ? DELIVERY_BOUNCE : DELIVERY_DEFER;
    relay = f[3];
    kinds[i] = kind;
    reasons[i] = kind == DELIVERY_SENT || strcmp(relay, "none") == 0
                 ? g_strdup(f[4]) : g_strdup_printf("host %s said: %s", relay, f[4]);
    qmgr_log_status(d, addresses[i], orig_tos[i], relay, start, kind, f[2], reasons[i]);
  }
out:
  {
    int fds[] = { msg_fd, req[0], req[1], res[0], res[1] };

    for (guint k = 0; k < G_N_ELEMENTS(fds); k++)
      if (fds[k] >= 0)
        close(fds[k]);
  }
  for (guint i = 0; i < n; i++)
    if (reasons[i] == NULL) {
      if (i == 0)
        log_qid(LOG_WARNING, d->queue_id, "%s", failure);
      reasons[i] = g_strdup(failure);
      qmgr_log_status(d, addresses[i], orig_tos[i], "none", start, DELIVERY_DEFER, "4.3.0",
                      reasons[i]);
    }
}

DeliveryKind
qmgr_smtp_deliver(const QmgrDelivery *d, const char *address, const char *orig_to,
                  const Route *route, char **reason)
{
  DeliveryKind kind;

  qmgr_smtp_deliver_many(d, &address, &orig_to, 1, route, &kind, reason);
  return kind;
}
