/* pop3d-auth.c - the auth process (pop3d.h): one per login attempt,
 * forked by the parent with the name and password the login process
 * forwarded.  As mail_owner, with no capabilities, it asks Cyrus SASL
 * (sasl_checkpass: sasldb, saslauthd, an auxprop store, as
 * pop3d_sasl_application_name.conf says) and finds the mailbox the name
 * owns; the parent gets one Pop3dAuthResult and decides.
 */
#include "pop3d.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "auth-sasl.h"
#include "log.h"

static void G_GNUC_NORETURN
auth_finish(int fd, Pop3dAuthResult *res)
{
  const char *p = (const char *) res;
  gsize left = sizeof *res;

  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit(1);
    p += n;
    left -= (gsize) n;
  }
  _exit(0);
}

void
pop3d_auth_main(const Pop3dSettings *st, const Pop3dPeer *peer, const char *user,
                const char *password, int tls_bits, int result_fd)
{
  int keep[1] = { result_fd };
  Pop3dAuthResult res = { .status = POP3D_AUTH_TEMP };
  g_autofree char *local = NULL, *remote = NULL, *why = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AuthSasl) sasl = NULL;
  AuthSaslParams params = { .service = "pop", .hostname = st->hostname, .realm = st->realm,
                            .external_ssf = (guint) MAX(tls_bits, 0) };

  pop3d_child_setup(keep, 1);
  if (st->owner_uid != (uid_t) -1
      && !pop3d_become(st->owner_uid, st->owner_gid, st->owner_groups, st->n_owner_groups)) {
    g_snprintf(res.reason, sizeof res.reason, "cannot become mail_owner %s: %s", st->mail_owner,
               g_strerror(errno));
    auth_finish(keep[0], &res);
  }
  params.local_addr = local = g_strdup_printf("%s;%u", peer->local, peer->local_port);
  params.remote_addr = remote = g_strdup_printf("%s;%u", peer->remote, peer->remote_port);
  sasl = auth_sasl_new(&params, &error);
  if (sasl == NULL) {
    g_strlcpy(res.reason, error->message, sizeof res.reason);
    auth_finish(keep[0], &res);
  }
  switch (auth_sasl_checkpass(sasl, user, password, &why)) {
  case AUTH_SASL_DONE:
    break;
  case AUTH_SASL_TEMP:
    g_strlcpy(res.reason, why ? why : "SASL cannot check passwords now", sizeof res.reason);
    auth_finish(keep[0], &res);
  default:
    res.status = POP3D_AUTH_FAIL;
    g_strlcpy(res.reason, why ? why : "authentication failure", sizeof res.reason);
    auth_finish(keep[0], &res);
  }
  if (!pop3d_locate(st, user, &res.box, &error)) {
    res.status = g_error_matches(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY)
                 ? POP3D_AUTH_TEMP : POP3D_AUTH_NOBOX;
    g_strlcpy(res.reason, error->message, sizeof res.reason);
    auth_finish(keep[0], &res);
  }
  res.status = POP3D_AUTH_OK;
  auth_finish(keep[0], &res);
}
