/* listeners.h - the listening sockets of a daemon: those systemd passed
 * by socket activation (named by the units' FileDescriptorName=) and
 * those --listen NAME=ADDR:PORT asks for, shared by smtpd and pop3d.
 */
#pragma once

#include <glib.h>

typedef struct {
  int fd;
  char *name;     /* "smtp", "pop3s", ...; "unknown" when systemd gave none */
  gboolean activated;
} Listener;

/* sd_listen_fds_with_names() (the environment is unset), then each
 * "NAME=ADDR:PORT" or "NAME=/path" of listen bound; a GArray of
 * Listener, freed with listeners_free().  NULL with an error naming the
 * bad --listen word (POSTERN_ERROR_CONFIG) or the address that cannot be
 * bound (POSTERN_ERROR_FAILED). */
GArray *listeners_collect(char **listen, GError **error);
void listeners_free(GArray *listeners);

/* A non-blocking, close-on-exec listening socket on "ADDR:PORT",
 * "[v6]:PORT" or "/path" (a unix socket, mode 0666); -1 and error. */
int listeners_bind(const char *address, GError **error);

/* A daemon holding many connections: raises the soft descriptor limit to
 * the hard one (systemd's default hard limit is 524288; the soft 1024
 * would cap it at about a thousand connections).  Logs a warning when it
 * cannot. */
void listeners_raise_fd_limit(void);
