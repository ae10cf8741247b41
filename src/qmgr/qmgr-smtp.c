/* qmgr-smtp.c - remote delivery through the SMTP client's agents,
 * postern-smtp (docs/smtp-client.md).
 *
 * The SMTP client never runs as root.  qmgr keeps a pool of agents: a
 * worker thread that has recipients for a destination takes an idle agent
 * (preferring one whose last delivery went to the same next hops: it may
 * still hold that connection open), or starts one (a child that becomes
 * mail_owner with raw system calls, as in qmgr-command.c, and execs the
 * agent with a SOCK_SEQPACKET socket as fd 3), up to default_process_limit.
 * The request is one datagram with the queue file (read-only, SCM_RIGHTS);
 * the answer one datagram of per-recipient lines, logged here in Postfix's
 * words.  An agent that dies or runs out of time defers what it had.
 *
 * Per destination (the route's next hops): at most
 * smtp_destination_concurrency_limit deliveries at once, and a destination
 * none of whose hosts could be reached is "dead" for minimal_backoff_time:
 * its recipients are deferred at once ("delivery temporarily suspended:
 * ..."), as Postfix's qmgr throttles a destination after
 * default_destination_concurrency_failed_cohort_limit failed sessions.
 */
#include "qmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

/* The longest a delivery may take before the agent is killed: every
 * stage's own timeout is far shorter. */
#define QMGR_SMTP_LIMIT_S (60 * 60)
#define QMGR_SMTP_DATAGRAM_MAX (1024 * 1024)

static char *qmgr_smtp_agent_path;
/* Readable once qmgr stops: deliveries in flight give up at once (the
 * message stays queued; at most that delivery is repeated later). */
static int qmgr_smtp_stop_pipe[2] = { -1, -1 };
G_LOCK_DEFINE_STATIC(qmgr_smtp_stop);

typedef struct {
  pid_t pid;
  int fd;                     /* our end of the socket */
  gboolean busy;
  char *nexthop;              /* of its last delivery */
  gint64 idle_since;          /* monotonic microseconds */
  guint generation;           /* of the configuration it loaded */
} QmgrAgent;

typedef struct {
  guint busy;                 /* deliveries in flight */
  guint refs;                 /* those and the ones waiting for a slot */
  guint failed;               /* sessions in a row that reached no host */
  gint64 dead_until;          /* monotonic microseconds; 0: alive */
  char *dead_reason;
} QmgrDest;

static struct {
  GMutex lock;
  GCond cond;
  GPtrArray *agents;          /* QmgrAgent * */
  GHashTable *dests;          /* next hops -> QmgrDest * */
  GArray *exiting;            /* pid_t: told to go, not yet reaped */
  guint generation;
  gboolean stopping;
} pool;

static int
qmgr_smtp_stop_fd(void)
{
  G_LOCK(qmgr_smtp_stop);
  if (qmgr_smtp_stop_pipe[0] < 0 && pipe2(qmgr_smtp_stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    qmgr_smtp_stop_pipe[0] = qmgr_smtp_stop_pipe[1] = -1;
  G_UNLOCK(qmgr_smtp_stop);
  return qmgr_smtp_stop_pipe[0];
}

static void
dest_free(gpointer p)
{
  QmgrDest *dest = p;

  g_free(dest->dead_reason);
  g_free(dest);
}

/* Under pool.lock. */
static void
pool_init(void)
{
  if (pool.agents != NULL)
    return;
  pool.agents = g_ptr_array_new();
  pool.dests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dest_free);
  pool.exiting = g_array_new(FALSE, FALSE, sizeof(pid_t));
}

/* Reaps the agents that were told to go.  Under pool.lock. */
static void
pool_reap(void)
{
  for (guint i = 0; i < pool.exiting->len;) {
    pid_t pid = g_array_index(pool.exiting, pid_t, i);
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);

    if (r == pid || (r < 0 && errno == ECHILD))
      g_array_remove_index_fast(pool.exiting, i);
    else
      i++;
  }
}

/* Takes agent i out of the pool: its socket closed (it says QUIT to a
 * cached connection and exits), or killed when it may be stuck.  Under
 * pool.lock. */
static void
pool_retire(guint i, gboolean kill_it)
{
  QmgrAgent *agent = g_ptr_array_steal_index_fast(pool.agents, i);

  if (kill_it)
    kill(agent->pid, SIGKILL);
  close(agent->fd);
  g_array_append_val(pool.exiting, agent->pid);
  g_free(agent->nexthop);
  g_free(agent);
}

static guint
pool_index(const QmgrAgent *agent)
{
  guint i;

  for (i = 0; i < pool.agents->len && pool.agents->pdata[i] != agent; i++)
    ;
  return i;
}

void
qmgr_smtp_stop(void)
{
  g_mutex_lock(&pool.lock);
  pool_init();
  pool.stopping = TRUE;
  for (guint i = pool.agents->len; i-- > 0;)
    if (!((QmgrAgent *) pool.agents->pdata[i])->busy)
      pool_retire(i, FALSE);
  g_cond_broadcast(&pool.cond);
  g_mutex_unlock(&pool.lock);
  if (qmgr_smtp_stop_fd() >= 0 && write(qmgr_smtp_stop_pipe[1], "x", 1) < 0) {
    /* the pipe is full: it is readable already */
  }
}

void
qmgr_smtp_reload(void)
{
  g_mutex_lock(&pool.lock);
  pool_init();
  pool.generation++;
  for (guint i = pool.agents->len; i-- > 0;)
    if (!((QmgrAgent *) pool.agents->pdata[i])->busy)
      pool_retire(i, FALSE);
  g_mutex_unlock(&pool.lock);
}

void
qmgr_smtp_expire(const QmgrSettings *s)
{
  gint64 max_idle = config_time(s->config, "max_idle") * G_USEC_PER_SEC;
  gint64 now = g_get_monotonic_time();

  g_mutex_lock(&pool.lock);
  pool_init();
  for (guint i = pool.agents->len; i-- > 0;) {
    QmgrAgent *agent = pool.agents->pdata[i];

    if (!agent->busy && now - agent->idle_since >= max_idle)
      pool_retire(i, FALSE);
  }
  {
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, pool.dests);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
      QmgrDest *dest = value;

      if (dest->refs == 0 && dest->dead_until <= now)
        g_hash_table_iter_remove(&it);
    }
  }
  pool_reap();
  g_mutex_unlock(&pool.lock);
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
smtp_child(int sock, int null_fd, uid_t uid, gid_t gid, const char *path, char *const argv[])
{
  gid_t groups[1] = { gid };
  sigset_t none;

  if (dup2(null_fd, 0) < 0 || dup2(sock, 3) < 0)
    _exit(127);
  syscall(SYS_close_range, 4U, ~0U, 0U);
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

/* For each hop of the route that has an entry in maps (the tables of
 * param), "LETTER INDEX value" in request.  A hop is looked up as written
 * ("[relay.example]:587"), then by its host name, then (parents) by each
 * parent domain as ".example.com".  Values with a line end are ignored.
 * FALSE (with *why) when a lookup could not be answered. */
static gboolean
qmgr_smtp_hop_lookup(TableList *maps, const char *param, gboolean parents, const Route *route,
                     char letter, GString *request, char **why)
{
  g_auto(GStrv) items = g_strsplit_set(route->nexthop, ", \t", -1);
  g_autoptr(GError) error = NULL;
  guint hop = 0;

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
    for (const char *dot = host ? strchr(host, '.') : NULL;
         parents && r == TABLE_NOTFOUND && dot != NULL; dot = strchr(dot + 1, '.'))
      r = table_list_lookup(maps, dot, &value, &error);
    if (r == TABLE_TEMPFAIL) {
      *why = g_strdup_printf("%s lookup error for %s: %s", param, items[i], error->message);
      return FALSE;
    }
    if (r == TABLE_FOUND && strchr(value, '\n') == NULL)
      g_string_append_printf(request, "%c %u %s\n", letter, hop, g_strstrip(value));
    hop++;
  }
  return TRUE;
}

/* smtp_sasl_password_maps, read here (as root: Postfix's sasl_passwd is
 * root's alone) and handed to the agent as "A HOP user:password";
 * smtp_tls_policy_maps as "P HOP level attributes"; smtp_fallback_relay
 * (not for mail to the relayhost, as Postfix 2.3 and later) as "F hops".
 * FALSE (with *why: the delivery defers) when a TLS policy cannot be
 * known: never a guess that could send in the clear; credentials that
 * cannot be read only leave the session without AUTH. */
static gboolean
qmgr_smtp_hop_settings(const QmgrSettings *s, const Route *route, GString *request, char **why)
{
  const char *fallback = config_str(s->config, "smtp_fallback_relay");

  if (config_bool(s->config, "smtp_sasl_auth_enable")) {
    g_autofree char *sasl_why = NULL;

    if (s->sasl_password_error != NULL)
      log_warning("%s", s->sasl_password_error);
    else if (s->sasl_password_maps != NULL
             && !qmgr_smtp_hop_lookup(s->sasl_password_maps, "smtp_sasl_password_maps", FALSE,
                                      route, 'A', request, &sasl_why))
      log_warning("%s", sasl_why);
  }
  if (s->tls_policy_error != NULL) {
    *why = g_strdup(s->tls_policy_error);
    return FALSE;
  }
  if (s->tls_policy_maps != NULL
      && !qmgr_smtp_hop_lookup(s->tls_policy_maps, "smtp_tls_policy_maps", TRUE, route, 'P',
                               request, why))
    return FALSE;
  if (*fallback && strcmp(route->nexthop, config_str(s->config, "relayhost")) != 0) {
    g_autofree char *hops = g_strdup(fallback);

    g_strdelimit(hops, "\n", ' ');
    g_string_append_printf(request, "F %s\n", hops);
  }
  return TRUE;
}

/* Starts an agent; NULL (with *why) when it cannot.  Under pool.lock. */
static QmgrAgent *
pool_spawn(const QmgrSettings *s, char **why)
{
  const char *agent_path = qmgr_smtp_agent();
  char *const argv[] = { "postern-smtp", "--config-dir", (char *) config_get_dir(s->config),
                         NULL };
  int sv[2], null_fd, size = 4 * 1024 * 1024;
  QmgrAgent *agent;
  pid_t pid;

  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    *why = g_strdup_printf("cannot start the SMTP client: socketpair: %s", g_strerror(errno));
    return NULL;
  }
  for (guint k = 0; k < 2; k++) {
    if (setsockopt(sv[k], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
      (void) setsockopt(sv[k], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Above 0-3, so that the child's dup2()s cannot clobber each other. */
  {
    int *slots[2] = { &sv[1], &null_fd };

    for (guint k = 0; k < 2; k++) {
      int high = *slots[k] >= 0 ? fcntl(*slots[k], F_DUPFD_CLOEXEC, 16) : -1;

      if (*slots[k] >= 0)
        close(*slots[k]);
      *slots[k] = high;
    }
  }
  if (sv[1] < 0 || null_fd < 0) {
    *why = g_strdup_printf("cannot start the SMTP client: %s", g_strerror(errno));
    close(sv[0]);
    if (sv[1] >= 0)
      close(sv[1]);
    if (null_fd >= 0)
      close(null_fd);
    return NULL;
  }
  pid = fork();
  if (pid == 0)
    smtp_child(sv[1], null_fd, s->owner_uid, s->owner_gid, agent_path, argv);
  close(sv[1]);
  close(null_fd);
  if (pid < 0) {
    *why = g_strdup_printf("cannot start the SMTP client: fork: %s", g_strerror(errno));
    close(sv[0]);
    return NULL;
  }
  agent = g_new0(QmgrAgent, 1);
  agent->pid = pid;
  agent->fd = sv[0];
  agent->generation = pool.generation;
  g_ptr_array_add(pool.agents, agent);
  return agent;
}

/* An idle agent is usable unless it died (its socket readable or hung up). */
static gboolean
agent_alive(const QmgrAgent *agent)
{
  struct pollfd p = { .fd = agent->fd, .events = POLLIN };

  return poll(&p, 1, 0) == 0;
}

typedef enum {
  ACQUIRE_OK,
  ACQUIRE_DEAD,               /* the destination is throttled: *why */
  ACQUIRE_FAILED,             /* no agent: *why */
  ACQUIRE_BUSY,               /* none free now, and not to be waited for */
} AcquireResult;

/* An agent for nexthop, waiting (when wait) for a free slot of the
 * destination and of the pool. */
static AcquireResult
pool_acquire(const QmgrSettings *s, const char *nexthop, gboolean wait, QmgrAgent **out,
             char **why)
{
  guint dest_limit = (guint) config_int(s->config, "smtp_destination_concurrency_limit");
  guint process_limit = (guint) config_int(s->config, "default_process_limit");
  AcquireResult result = ACQUIRE_FAILED;
  gboolean waited = FALSE;
  QmgrDest *dest;

  g_mutex_lock(&pool.lock);
  pool_init();
  dest = g_hash_table_lookup(pool.dests, nexthop);
  if (dest == NULL) {
    dest = g_new0(QmgrDest, 1);
    g_hash_table_insert(pool.dests, g_strdup(nexthop), dest);
  }
  dest->refs++;               /* keeps dest in the table while we wait */
  for (;;) {
    QmgrAgent *same = NULL, *other = NULL;
    gint64 now = g_get_monotonic_time();

    pool_reap();
    if (pool.stopping) {
      *why = g_strdup("the queue manager is stopping");
      break;
    }
    if (dest->dead_until > now) {
      *why = g_strdup_printf("delivery temporarily suspended: %s", dest->dead_reason);
      result = ACQUIRE_DEAD;
      break;
    }
    if (dest->busy < dest_limit || dest_limit == 0) {
      for (guint i = pool.agents->len; i-- > 0;) {
        QmgrAgent *agent = pool.agents->pdata[i];

        if (agent->busy)
          continue;
        if (agent->generation != pool.generation || !agent_alive(agent)) {
          pool_retire(i, TRUE);
          continue;
        }
        if (same == NULL && g_strcmp0(agent->nexthop, nexthop) == 0)
          same = agent;
        else if (other == NULL || agent->idle_since < other->idle_since)
          other = agent;
      }
      *out = same ? same : other;
      if (*out == NULL && pool.agents->len < process_limit) {
        *out = pool_spawn(s, why);
        if (*out == NULL)
          break;
      }
      if (*out != NULL) {
        (*out)->busy = TRUE;
        dest->busy++;
        g_mutex_unlock(&pool.lock);
        if (waited)
          workpool_blocking_end();
        return ACQUIRE_OK;
      }
    }
    if (!wait) {
      result = ACQUIRE_BUSY;
      break;
    }
    /* waiting for a slot does not hold a delivery thread's place */
    if (!waited)
      workpool_blocking_begin();
    waited = TRUE;
    g_cond_wait_until(&pool.cond, &pool.lock, now + G_USEC_PER_SEC);
  }
  if (waited)
    workpool_blocking_end();
  if (--dest->refs == 0 && dest->dead_until == 0 && dest->failed == 0)
    g_hash_table_remove(pool.dests, nexthop);
  g_mutex_unlock(&pool.lock);
  return result;
}

/* Gives the agent back (or, when broken, retires it) and records how the
 * destination did: unreachable (throttle: why) or not. */
static void
pool_release(const QmgrSettings *s, QmgrAgent *agent, gboolean broken, const char *nexthop,
             const char *unreachable)
{
  guint cohort = (guint) config_int(s->config, "default_destination_concurrency_failed_cohort_limit");
  QmgrDest *dest;

  g_mutex_lock(&pool.lock);
  dest = g_hash_table_lookup(pool.dests, nexthop);
  if (dest != NULL) {
    dest->busy--;
    dest->refs--;
    if (unreachable != NULL) {
      if (++dest->failed >= MAX(cohort, 1) && dest->dead_until <= g_get_monotonic_time()) {
        dest->dead_until = g_get_monotonic_time()
                           + config_time(s->config, "minimal_backoff_time") * G_USEC_PER_SEC;
        g_free(dest->dead_reason);
        dest->dead_reason = g_strdup(unreachable);
        log_info("%s: destination throttled for %" G_GINT64_FORMAT "s: %s", nexthop,
                 config_time(s->config, "minimal_backoff_time"), unreachable);
      }
    } else {
      dest->failed = 0;
      dest->dead_until = 0;
    }
    if (dest->refs == 0 && dest->dead_until == 0 && dest->failed == 0)
      g_hash_table_remove(pool.dests, nexthop);
  }
  if (agent != NULL) {
    guint i = pool_index(agent);

    if (i < pool.agents->len) {
      if (broken || pool.stopping || agent->generation != pool.generation) {
        pool_retire(i, broken);
      } else {
        agent->busy = FALSE;
        g_free(agent->nexthop);
        agent->nexthop = g_strdup(nexthop);
        agent->idle_since = g_get_monotonic_time();
      }
    }
  }
  g_cond_broadcast(&pool.cond);
  g_mutex_unlock(&pool.lock);
}

/* Sends the request with the queue file; FALSE when the agent is gone. */
static gboolean
agent_send(QmgrAgent *agent, const GString *request, int msg_fd)
{
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  struct iovec iov = { .iov_base = request->str, .iov_len = request->len };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                       .msg_controllen = sizeof control.space };
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  ssize_t n;

  memset(&control, 0, sizeof control);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &msg_fd, sizeof(int));
  do
    n = sendmsg(agent->fd, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t) request->len;
}

/* The answer datagram, NUL-terminated; NULL when the agent died, qmgr is
 * stopping or the time is up. */
static char *
agent_receive(QmgrAgent *agent, gint64 deadline_us)
{
  g_autofree char *buf = g_malloc(QMGR_SMTP_DATAGRAM_MAX + 1);

  for (;;) {
    gint64 left_ms = (deadline_us - g_get_monotonic_time()) / 1000;
    struct pollfd p[2] = { { .fd = agent->fd, .events = POLLIN },
                           { .fd = qmgr_smtp_stop_fd(), .events = POLLIN } };
    ssize_t n;
    int r;

    if (left_ms <= 0)
      return NULL;
    r = poll(p, 2, (int) MIN(left_ms, G_MAXINT));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || p[1].revents)
      return NULL;
    n = recv(agent->fd, buf, QMGR_SMTP_DATAGRAM_MAX, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return NULL;
    buf[n] = '\0';
    return g_steal_pointer(&buf);
  }
}

/* The request datagram: the message, the envelope's DSN and SMTPUTF8
 * attributes, credentials, the recipients with theirs. */
static gboolean
qmgr_smtp_request(const QmgrDelivery *d, const QmgrSmtpRcpt *rcpts, guint n,
                  const Route *route, GString *request, char **why)
{
  const QueueEnvelope *env = d->env;

  g_string_append_printf(request, "Q %s\nH %s\nM %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n",
                         d->queue_id, route->nexthop, env->content_offset, env->content_size);
  /* an alias's owner-NAME, inside its expansion, else the message's */
  g_string_append_printf(request, "S %s\n", d->sender ? d->sender
                                             : env->sender ? env->sender : "");
  if (env->smtputf8)
    g_string_append(request, "U\n");
  if (env->envid != NULL)
    g_string_append_printf(request, "E %s\n", env->envid);
  if (env->ret != QUEUE_RET_DEFAULT)
    g_string_append_printf(request, "T %s\n", env->ret == QUEUE_RET_FULL ? "FULL" : "HDRS");
  if (!qmgr_smtp_hop_settings(d->settings, route, request, why))
    return FALSE;
  for (guint i = 0; i < n; i++) {
    g_string_append_printf(request, "R %s\n", rcpts[i].address);
    if (rcpts[i].notify != 0)
      g_string_append_printf(request, "N %s\n", queue_notify_string(rcpts[i].notify));
    if (rcpts[i].orcpt != NULL)
      g_string_append_printf(request, "O %s\n", rcpts[i].orcpt);
    else if (rcpts[i].orig_to != NULL && strchr(rcpts[i].orig_to, '@') != NULL)
      g_string_append_printf(request, "O rfc822;%s\n", rcpts[i].orig_to);
  }
  return TRUE;
}

/* One session's worth of recipients on its way through an agent. */
typedef struct {
  const QmgrDelivery *d;
  QmgrSmtpBatch *b;
  gint64 start;
  QmgrAgent *agent;           /* NULL: decided at the start (no agent) */
  char *failure;              /* why there is no answer */
  gboolean broken;
} QmgrSmtpCall;

/* Defers the recipients that have no verdict yet, with why (dsn 4.x.x). */
static void
smtp_call_defer_rest(QmgrSmtpCall *c, const char *dsn, const char *why, gboolean warn)
{
  QmgrSmtpBatch *b = c->b;

  for (guint i = 0; i < b->n; i++)
    if (b->reasons[i] == NULL) {
      if (warn)
        log_qid(LOG_WARNING, c->d->queue_id, "%s", why);
      warn = FALSE;
      b->reasons[i] = g_strdup(why);
      qmgr_log_status(c->d, b->rcpts[i].address, b->rcpts[i].orig_to, "none", c->start,
                      DELIVERY_DEFER, dsn, why);
    }
}

/* Takes an agent and hands it the request.  FALSE, with nothing done,
 * when wait is FALSE and the agent would have to be waited for;
 * otherwise TRUE: the request is out, or the recipients are decided
 * (deferred) already. */
static gboolean
smtp_call_start(QmgrSmtpCall *c, gboolean wait)
{
  const QmgrDelivery *d = c->d;
  QmgrSmtpBatch *b = c->b;
  g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", d->fd);
  g_autofree char *why = NULL;
  g_autoptr(GString) request = g_string_new(NULL);
  int msg_fd;

  c->start = g_get_real_time();
  for (guint i = 0; i < b->n; i++) {
    b->kinds[i] = DELIVERY_DEFER;
    b->reasons[i] = NULL;
    if (b->passed != NULL)
      b->passed[i] = FALSE;
  }
  switch (pool_acquire(d->settings, b->route.nexthop, wait, &c->agent, &why)) {
  case ACQUIRE_OK:
    break;
  case ACQUIRE_BUSY:
    return FALSE;
  case ACQUIRE_DEAD:
    smtp_call_defer_rest(c, "4.4.1", why, FALSE);
    return TRUE;
  case ACQUIRE_FAILED:
    smtp_call_defer_rest(c, "4.3.0", why, TRUE);
    return TRUE;
  }
  /* The agent gets the message read-only, whatever qmgr opened it as. */
  msg_fd = open(proc, O_RDONLY | O_CLOEXEC);
  c->broken = FALSE;
  if (!qmgr_smtp_request(d, b->rcpts, b->n, &b->route, request, &c->failure)) {
    ;                         /* deferred at the finish with the reason */
  } else if (msg_fd < 0) {
    c->failure = g_strdup_printf("cannot reopen the queue file: %s", g_strerror(errno));
  } else if (request->len > QMGR_SMTP_DATAGRAM_MAX) {
    c->failure = g_strdup("the request for the SMTP client is too large");
  } else if (!agent_send(c->agent, request, msg_fd)) {
    c->failure = g_strdup_printf("the SMTP client (%s) is gone: %s", qmgr_smtp_agent(),
                                 g_strerror(errno));
    c->broken = TRUE;
  }
  if (msg_fd >= 0)
    close(msg_fd);            /* the datagram holds its own reference */
  return TRUE;
}

/* Waits for the agent's answer, logs each recipient's verdict, gives the
 * agent back. */
static void
smtp_call_finish(QmgrSmtpCall *c)
{
  const QmgrDelivery *d = c->d;
  QmgrSmtpBatch *b = c->b;
  g_autofree char *answer = NULL, *unreachable = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 setup_us = 0;
  guint conn_use = 0;

  if (c->agent == NULL)
    return;
  if (c->failure == NULL) {
    workpool_blocking_begin();
    answer = agent_receive(c->agent, g_get_monotonic_time()
                                     + (gint64) QMGR_SMTP_LIMIT_S * G_USEC_PER_SEC);
    workpool_blocking_end();
    if (answer == NULL) {
      c->failure = g_strdup_printf("the SMTP client (%s) ended without an answer",
                                   qmgr_smtp_agent());
      c->broken = TRUE;
    }
  }
  lines = g_strsplit(answer ? answer : "", "\n", -1);
  /* the session's set-up time and connection use come after the verdicts */
  for (guint l = 0; lines[l]; l++)
    if (lines[l][0] == 'C' && lines[l][1] == ' ') {
      char *end = NULL;

      setup_us = g_ascii_strtoll(lines[l] + 2, &end, 10);
      conn_use = end && *end == ' ' ? (guint) g_ascii_strtoull(end + 1, NULL, 10) : 0;
    }
  /* "0 S 2.0.0 mx.example[192.0.2.1]:25 250 2.0.0 Ok" */
  for (guint l = 0; lines[l]; l++) {
    g_auto(GStrv) f = g_strsplit(lines[l], " ", 5);
    guint64 i;
    char *end = NULL;
    DeliveryKind kind;
    char st;

    if (strcmp(lines[l], "T") == 0) {
      unreachable = g_strdup("");
      continue;
    }
    if (g_strv_length(f) != 5 || strlen(f[1]) != 1)
      continue;
    i = g_ascii_strtoull(f[0], &end, 10);
    if (*end != '\0' || i >= b->n || b->reasons[i] != NULL)
      continue;
    st = f[1][0];
    kind = st == 'S' || st == 'P' ? DELIVERY_SENT : st == 'B' ? DELIVERY_BOUNCE : DELIVERY_DEFER;
    b->kinds[i] = kind;
    if (b->passed != NULL)
      b->passed[i] = st == 'P';
    b->reasons[i] = g_strdup(f[4]);   /* the agent's words: "host H said: ..." or its own */
    qmgr_log_status_smtp(d, b->rcpts[i].address, b->rcpts[i].orig_to, f[3], c->start,
                         setup_us, conn_use, kind, f[2], b->reasons[i]);
  }
  if (unreachable != NULL && b->n > 0 && b->reasons[0] != NULL) {
    g_free(unreachable);
    unreachable = g_strdup(b->reasons[0]);
  }
  pool_release(d->settings, c->agent, c->broken, b->route.nexthop, unreachable);
  c->agent = NULL;
  smtp_call_defer_rest(c, "4.3.0", c->failure ? c->failure
                                   : "incomplete answer from the SMTP client", TRUE);
  g_clear_pointer(&c->failure, g_free);
}

void
qmgr_smtp_deliver_batches(const QmgrDelivery *d, QmgrSmtpBatch *batches, guint n)
{
  g_autofree QmgrSmtpCall *calls = g_new0(QmgrSmtpCall, n);
  guint started = 0, finished = 0;

  /* Every batch's request goes out before any answer is waited for, as
   * long as agents are free: the sessions run side by side.  When one
   * would have to wait, the ones out are finished first (holding agents
   * while waiting for more could leave two deliveries each waiting for
   * the other's). */
  for (guint i = 0; i < n; i++) {
    calls[i] = (QmgrSmtpCall) { .d = d, .b = &batches[i] };
    if (!smtp_call_start(&calls[i], started == finished)) {
      while (finished < started)
        smtp_call_finish(&calls[finished++]);
      smtp_call_start(&calls[i], TRUE);
    }
    started++;
  }
  while (finished < started)
    smtp_call_finish(&calls[finished++]);
}

DeliveryKind
qmgr_smtp_deliver(const QmgrDelivery *d, const QueueRecipient *dsn_from, const char *address,
                  const char *orig_to, const Route *route, char **reason)
{
  QmgrSmtpRcpt rcpt = { .address = address, .orig_to = orig_to };
  DeliveryKind kind;
  gboolean passed;
  QmgrSmtpBatch batch = { .route = *route, .rcpts = &rcpt, .n = 1, .kinds = &kind,
                          .reasons = reason, .passed = &passed };

  if (dsn_from != NULL) {
    rcpt.notify = dsn_from->notify;
    rcpt.orcpt = dsn_from->orcpt;
  }
  qmgr_smtp_deliver_batches(d, &batch, 1);
  /* the next hop sends any success notice */
  if (kind == DELIVERY_SENT && passed && d->dsn_action != NULL
      && strcmp(d->dsn_action, "expanded") != 0)
    g_strlcpy(d->dsn_action, "passed", 16);
  return kind;
}
