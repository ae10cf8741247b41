/* listeners.c - the listening sockets of a daemon (listeners.h). */
#include "listeners.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "inet.h"
#include "log.h"

#define LISTEN_BACKLOG 1024

int
listeners_bind(const char *address, GError **error)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int fd;

  if (!inet_parse_listen(address, &ss, &len, error))
    return -1;
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    goto fail;
  if (ss.ss_family == AF_UNIX) {
    unlink(((struct sockaddr_un *)&ss)->sun_path);
  } else {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* [::] and 0.0.0.0 are separate listeners, as in Postfix. */
    if (ss.ss_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
    goto fail;
  /* Local submission is for every local user; the unit sets the same mode. */
  if (ss.ss_family == AF_UNIX)
    chmod(((struct sockaddr_un *)&ss)->sun_path, 0666);
  return fd;
fail:
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "cannot listen on %s: %s", address,
              g_strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

static void
listener_clear(gpointer p)
{
  g_free(((Listener *) p)->name);
}

void
listeners_free(GArray *listeners)
{
  if (listeners != NULL)
    g_array_unref(listeners);
}

GArray *
listeners_collect(char **listen, GError **error)
{
  g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(Listener));
  char **names = NULL;
  int n = sd_listen_fds_with_names(1, &names);

  g_array_set_clear_func(out, listener_clear);
  if (n < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "sd_listen_fds_with_names: %s",
                g_strerror(-n));
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    Listener l = { .fd = SD_LISTEN_FDS_START + i, .activated = TRUE };
    l.name = g_strdup(names != NULL && names[i] != NULL ? names[i] : "unknown");
    g_array_append_val(out, l);
  }
  g_strfreev(names);

  for (char **p = listen; p != NULL && *p != NULL; p++) {
    const char *eq = strchr(*p, '=');
    Listener l = { 0 };

    if (eq == NULL || eq == *p) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                  "--listen %s: expected NAME=ADDR:PORT or NAME=/path", *p);
      return NULL;
    }
    l.fd = listeners_bind(eq + 1, error);
    if (l.fd < 0)
      return NULL;
    l.name = g_strndup(*p, eq - *p);
    g_array_append_val(out, l);
  }
  return g_steal_pointer(&out);
}

void
listeners_raise_fd_limit(void)
{
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      log_warning("cannot raise the descriptor limit: %s, ignoring", g_strerror(errno));
  }
}
