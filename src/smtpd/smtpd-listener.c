/* smtpd-listener.c - the server object: listening sockets (from socket
 * activation or bound by --listen), accepting connections into sessions,
 * the worker pools, settings swaps on reload and the graceful stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "log.h"
#include "smtpd.h"

#define LISTEN_PAUSE_US (G_USEC_PER_SEC / 2)

typedef struct {
  SmtpdServer *server;
  int fd;
  SmtpdListenerKind kind;
  sd_event_source *source;
  sd_event_source *pause;       /* out of descriptors or memory: accept later */
} SmtpdListener;

static const char *const kind_names[] = {
  [SMTPD_LISTENER_SMTP] = "smtp",
  [SMTPD_LISTENER_SUBMISSION] = "submission",
  [SMTPD_LISTENER_SMTPS] = "smtps",
  [SMTPD_LISTENER_LOCAL] = "local",
};

gboolean
smtpd_listener_kind_parse(const char *name, SmtpdListenerKind *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS(kind_names); i++) {
    if (strcmp(name, kind_names[i]) == 0) {
      *kind = i;
      return TRUE;
    }
  }
  return FALSE;
}

const char *
smtpd_listener_kind_name(SmtpdListenerKind kind)
{
  return kind_names[kind];
}

static void
listener_free(gpointer data)
{
  SmtpdListener *l = data;
  sd_event_source_disable_unref(l->source);
  sd_event_source_disable_unref(l->pause);
  if (l->fd >= 0)
    close(l->fd);
  g_free(l);
}

SmtpdServer *
smtpd_server_new(sd_event *event, SmtpdSettings *settings, GError **error)
{
  SmtpdServer *server = g_new0(SmtpdServer, 1);
  server->event = sd_event_ref(event);
  server->settings = smtpd_settings_ref(settings);
  server->anvil = smtpd_anvil_new();
  server->listeners = g_ptr_array_new_with_free_func(listener_free);
  server->commit_pool = workpool_new(event, settings->commit_threads, error);
  if (server->commit_pool == NULL)
    goto fail;
  server->lookup_pool = workpool_new(event, settings->lookup_threads, error);
  if (server->lookup_pool == NULL)
    goto fail;
  /* TLS handshakes are CPU work: one thread per processor. */
  server->tls_pool = workpool_new(event, MAX(g_get_num_processors(), 1), error);
  if (server->tls_pool == NULL)
    goto fail;
  return server;
fail:
  smtpd_server_free(server);
  return NULL;
}

void
smtpd_server_free(SmtpdServer *server)
{
  if (server == NULL)
    return;
  g_ptr_array_unref(server->listeners);
  while (server->sessions != NULL)
    smtpd_session_disconnect(server->sessions);
  /* Outstanding work finishes here; its done() sees closed sessions. */
  if (server->commit_pool != NULL)
    workpool_free(server->commit_pool);
  if (server->lookup_pool != NULL)
    workpool_free(server->lookup_pool);
  if (server->tls_pool != NULL)
    workpool_free(server->tls_pool);
  sd_event_source_disable_unref(server->stop_timer);
  smtpd_anvil_free(server->anvil);
  smtpd_settings_unref(server->settings);
  sd_event_unref(server->event);
  g_free(server);
}

void
smtpd_server_set_settings(SmtpdServer *server, SmtpdSettings *settings)
{
  SmtpdSettings *old = server->settings;
  server->settings = smtpd_settings_ref(settings);
  smtpd_settings_unref(old);
}

static int
listener_resume(sd_event_source *source, uint64_t usec, void *userdata)
{
  SmtpdListener *l = userdata;
  l->pause = sd_event_source_disable_unref(l->pause);
  if (!l->server->stopping)
    sd_event_source_set_enabled(l->source, SD_EVENT_ON);
  return 0;
}

/* The listener stays readable while accept() fails for want of
 * descriptors or memory: stop watching it for a moment instead of
 * spinning (the connections wait in the backlog). */
static void
listener_pause(SmtpdListener *l, int err)
{
  log_warning("accept on %s listener: %s; pausing new connections for %d ms",
              kind_names[l->kind], g_strerror(err), (int) (LISTEN_PAUSE_US / 1000));
  sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
  if (l->pause == NULL)
    sd_event_add_time_relative(l->server->event, &l->pause, CLOCK_MONOTONIC, LISTEN_PAUSE_US,
                               0, listener_resume, l);
}

static int
listener_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
  SmtpdListener *l = userdata;
  for (guint i = 0; i < 64; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        listener_pause(l, errno);
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        log_warning("accept on %s listener: %s", kind_names[l->kind], g_strerror(errno));
      break;
    }
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
      /* Every batch of replies leaves in one send(); Nagle would only hold
       * a reply behind an unacknowledged segment, e.g. the first inside
       * TLS behind OpenSSL's session tickets, for a delayed ACK (~40 ms). */
      int one = 1;
      setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    smtpd_session_new(l->server, cfd, l->kind, (struct sockaddr *)&ss, len);
  }
  return 0;
}

gboolean
smtpd_server_add_listener(SmtpdServer *server, int fd, SmtpdListenerKind kind, GError **error)
{
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "listener fd %d: %s", fd,
                g_strerror(errno));
    return FALSE;
  }
  SmtpdListener *l = g_new0(SmtpdListener, 1);
  l->server = server;
  l->fd = fd;
  l->kind = kind;
  int r = sd_event_add_io(server->event, &l->source, fd, EPOLLIN, listener_accept, l);
  if (r < 0) {
    l->fd = -1;
    listener_free(l);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "listener fd %d: %s", fd,
                g_strerror(-r));
    return FALSE;
  }
  g_ptr_array_add(server->listeners, l);
  return TRUE;
}

static int
server_stop_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
  SmtpdServer *server = userdata;
  log_warning("%u session(s) still active at shutdown, closing them", server->n_sessions);
  sd_event_exit(server->event, 0);
  return 0;
}

void
smtpd_server_stop(SmtpdServer *server, gint64 grace_us)
{
  if (server->stopping)
    return;
  server->stopping = TRUE;
  for (guint i = 0; i < server->listeners->len; i++) {
    SmtpdListener *l = server->listeners->pdata[i];
    sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
  }
  for (SmtpdSession *s = server->sessions, *next; s != NULL; s = next) {
    next = s->next;
    smtpd_session_ref(s);
    smtpd_session_shutdown(s);
    smtpd_session_unref(s);
  }
  if (server->n_sessions == 0) {
    sd_event_exit(server->event, 0);
    return;
  }
  sd_event_add_time_relative(server->event, &server->stop_timer, CLOCK_MONOTONIC, grace_us, 0,
                             server_stop_timeout, server);
}
