/* test-tls.c - tls.c: Postfix's protocol and cipher words, the context
 * from parameters (keys, errors), and a non-blocking handshake and data
 * over a socketpair against an OpenSSL client. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
test_levels(void)
{
  TlsLevel level;

  g_assert_true(tls_level_parse("", &level) && level == TLS_LEVEL_NONE);
  g_assert_true(tls_level_parse("none", &level) && level == TLS_LEVEL_NONE);
  g_assert_true(tls_level_parse("may", &level) && level == TLS_LEVEL_MAY);
  g_assert_true(tls_level_parse("Encrypt", &level) && level == TLS_LEVEL_ENCRYPT);
  g_assert_false(tls_level_parse("verify", &level));
}

static void
test_protocols(void)
{
  static const struct {
    const char *text;
    int min, max;
    guint64 no;
  } cases[] = {
    { ">=TLSv1.2", TLS1_2_VERSION, 0, 0 },
    { "<=TLSv1.2", 0, TLS1_2_VERSION, 0 },
    { ">=TLSv1.2, <=TLSv1.3", TLS1_2_VERSION, TLS1_3_VERSION, 0 },
    { "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", 0, 0,
      SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 },
    { "TLSv1.2 TLSv1.3", 0, 0, SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 },
    { "", 0, 0, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    int min = -1, max = -1;
    guint64 no = 1;

    g_assert_true(tls_protocols_parse(cases[i].text, &min, &max, &no, &error));
    g_assert_no_error(error);
    g_assert_cmpint(min, ==, cases[i].min);
    g_assert_cmpint(max, ==, cases[i].max);
    g_assert_cmphex(no, ==, cases[i].no);
  }
  {
    g_autoptr(GError) error = NULL;
    int min, max;
    guint64 no;

    g_assert_false(tls_protocols_parse(">=TLSv1.4", &min, &max, &no, &error));
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, "unknown TLS protocol \"TLSv1.4\""));
    g_clear_error(&error);
    g_assert_false(tls_protocols_parse(">=TLSv1.3, <=TLSv1.2", &min, &max, &no, &error));
    g_assert_nonnull(strstr(error->message, "no TLS protocol left"));
  }
}

static void
test_ciphers(void)
{
  const char *const exclude[] = { "aNULL", "RC4", NULL };
  g_autofree char *medium = tls_cipher_list("medium", NULL);
  g_autofree char *high = tls_cipher_list("HIGH", exclude);

  g_assert_cmpstr(medium, ==, "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH");
  g_assert_cmpstr(high, ==, "aNULL:-aNULL:HIGH:@STRENGTH:!aNULL:!RC4");
  g_assert_null(tls_cipher_list("strong", NULL));
}

/* ---------------------------------------------------------------- with certificates */

typedef struct {
  char *dir;
  char *crt, *key, *other_key;
} Fixture;

static void
run(const char *cmd)
{
  int status = 0;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, &error));
  g_assert_no_error(error);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = NULL;

  f->dir = g_dir_make_tmp("test-tls-XXXXXX", NULL);
  f->crt = g_build_filename(f->dir, "server.crt", NULL);
  f->key = g_build_filename(f->dir, "server.key", NULL);
  f->other_key = g_build_filename(f->dir, "other.key", NULL);
  cmd = g_strdup_printf("sh -c 'openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
                        "/CN=mail.example.test -keyout %s -out %s 2>/dev/null && openssl genrsa "
                        "-out %s 2048 2>/dev/null'", f->key, f->crt, f->other_key);
  run(cmd);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf %s", f->dir);

  run(cmd);
  g_free(f->dir);
  g_free(f->crt);
  g_free(f->key);
  g_free(f->other_key);
}

static Config *
config_with(Fixture *f, const char *const *overrides)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename(f->dir, "main.cf", NULL);
  Config *config;

  g_assert_true(g_file_set_contents(path, "myhostname = mail.example.test\n", -1, NULL));
  config = config_load(f->dir, overrides, &error);
  g_assert_no_error(error);
  return config;
}

static void
test_context_errors(Fixture *f, gconstpointer data)
{
  g_autofree char *cert = g_strdup_printf("smtpd_tls_cert_file=%s", f->crt);
  g_autofree char *wrong_key = g_strdup_printf("smtpd_tls_key_file=%s", f->other_key);
  g_autofree char *missing = g_strdup_printf("smtpd_tls_cert_file=%s/none.crt", f->dir);
  const char *const none[] = { NULL };
  const char *const mismatch[] = { cert, wrong_key, NULL };
  const char *const absent[] = { missing, NULL };
  const char *const bad_proto[] = { cert, "smtpd_tls_protocols=>=TLSv9", NULL };
  const char *const bad_grade[] = { cert, "smtpd_tls_ciphers=strong", NULL };
  const char *const no_key[] = { cert, NULL };   /* the key defaults to the certificate file */
  const struct {
    const char *const *overrides;
    const char *error;
  } cases[] = {
    { none, "TLS needs smtpd_tls_cert_file or smtpd_tls_chain_files" },
    { mismatch, "the private key does not match the certificate" },
    { absent, "none.crt: No such file or directory" },
    { bad_proto, "smtpd_tls_protocols: unknown TLS protocol \"TLSv9\"" },
    { bad_grade, "smtpd_tls_ciphers: unknown cipher grade \"strong\"" },
    { no_key, "server.crt: no PEM private key in the file" },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    Config *config = config_with(f, cases[i].overrides);
    TlsServer *server = tls_server_new(config, "smtpd", FALSE, &error);

    g_assert_null(server);
    g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
    if (strstr(error->message, cases[i].error) == NULL)
      g_error("case %u: \"%s\" lacks \"%s\"", i, error->message, cases[i].error);
    config_free(config);
  }
}

/* A server connection and an OpenSSL client on the two ends of a
 * non-blocking socketpair. */
typedef struct {
  Config *config;
  TlsServer *server;
  TlsConn *conn;
  SSL_CTX *cctx;
  SSL *client;
  int sv[2];
} Pair;

/* client_version: 0, or the only version the client may use. */
static void
pair_open(Pair *p, Fixture *f, int client_version)
{
  g_autofree char *cert = g_strdup_printf("smtpd_tls_cert_file=%s", f->crt);
  g_autofree char *key = g_strdup_printf("smtpd_tls_key_file=%s", f->key);
  const char *const overrides[] = { cert, key, NULL };
  g_autoptr(GError) error = NULL;

  p->config = config_with(f, overrides);
  p->server = tls_server_new(p->config, "smtpd", FALSE, &error);
  g_assert_no_error(error);
  g_assert_true(tls_server_configured(p->config, "smtpd"));
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->sv), ==, 0);
  p->conn = tls_conn_new(p->server, p->sv[0], &error);
  g_assert_no_error(error);
  p->cctx = SSL_CTX_new(TLS_client_method());
  if (client_version != 0) {
    SSL_CTX_set_min_proto_version(p->cctx, client_version);
    SSL_CTX_set_max_proto_version(p->cctx, client_version);
    SSL_CTX_set_cipher_list(p->cctx, "DEFAULT@SECLEVEL=0");
  }
  p->client = SSL_new(p->cctx);
  SSL_set_fd(p->client, p->sv[1]);
  SSL_set_connect_state(p->client);
}

/* Steps both sides until the server's handshake is no longer waiting. */
static TlsIo
pair_handshake(Pair *p, GError **error)
{
  TlsIo io = TLS_IO_WANT_READ;

  for (int i = 0; i < 100 && io == TLS_IO_WANT_READ; i++) {
    SSL_do_handshake(p->client);
    io = tls_conn_handshake(p->conn, error);
  }
  return io;
}

static void
pair_close(Pair *p)
{
  SSL_free(p->client);
  SSL_CTX_free(p->cctx);
  tls_conn_free(p->conn);
  tls_server_unref(p->server);
  close(p->sv[0]);
  close(p->sv[1]);
  config_free(p->config);
}

static void
test_handshake_and_data(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *info = NULL, *details = NULL;
  Pair p;
  char buf[64];
  gsize n = 0;
  size_t cn = 0;

  pair_open(&p, f, 0);
  g_assert_cmpint(pair_handshake(&p, &error), ==, TLS_IO_DONE);
  g_assert_no_error(error);
  while (SSL_do_handshake(p.client) != 1)
    ;
  g_assert_cmpstr(tls_conn_protocol(p.conn), ==, "TLSv1.3");
  info = tls_conn_describe(p.conn, &details);
  g_assert_true(g_str_has_prefix(info, "TLSv1.3 with cipher TLS_"));
  g_assert_true(g_str_has_suffix(info, " bits)"));
  g_assert_true(g_str_has_prefix(details, "key-exchange X25519 server-signature RSA-PSS (2048 bits)"));

  /* nothing to read yet: WANT_READ, never a block */
  g_assert_cmpint(tls_conn_read(p.conn, buf, sizeof buf, &n, &error), ==, TLS_IO_WANT_READ);
  g_assert_cmpint(SSL_write_ex(p.client, "EHLO x\r\nQUIT\r\n", 14, &cn), ==, 1);
  g_assert_cmpint(tls_conn_read(p.conn, buf, 8, &n, &error), ==, TLS_IO_DONE);
  g_assert_cmpmem(buf, n, "EHLO x\r\n", 8);
  g_assert_true(tls_conn_pending(p.conn));    /* the rest waits inside OpenSSL */
  g_assert_cmpint(tls_conn_read(p.conn, buf, sizeof buf, &n, &error), ==, TLS_IO_DONE);
  g_assert_cmpmem(buf, n, "QUIT\r\n", 6);
  g_assert_false(tls_conn_pending(p.conn));
  g_assert_cmpint(tls_conn_write(p.conn, "221 Bye\r\n", 9, &n, &error), ==, TLS_IO_DONE);
  g_assert_cmpuint(n, ==, 9);
  g_assert_cmpint(SSL_read_ex(p.client, buf, sizeof buf, &cn), ==, 1);
  g_assert_cmpmem(buf, cn, "221 Bye\r\n", 9);
  /* close_notify, then EOF on the other side */
  tls_conn_close_notify(p.conn);
  g_assert_cmpint(SSL_read_ex(p.client, buf, sizeof buf, &cn), ==, 0);
  g_assert_cmpint(SSL_get_error(p.client, 0), ==, SSL_ERROR_ZERO_RETURN);
  SSL_shutdown(p.client);
  g_assert_cmpint(tls_conn_read(p.conn, buf, sizeof buf, &n, &error), ==, TLS_IO_EOF);
  pair_close(&p);
}

/* A TLS 1.0 client against ">=TLSv1.2": an error, with OpenSSL's reason. */
static void
test_old_client_refused(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  Pair p;

  pair_open(&p, f, TLS1_VERSION);
  g_assert_cmpint(pair_handshake(&p, &error), ==, TLS_IO_ERROR);
  g_assert_nonnull(error);
  g_assert_true(strstr(error->message, "unsupported protocol") != NULL
                || strstr(error->message, "version") != NULL);
  pair_close(&p);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tls/levels", test_levels);
  g_test_add_func("/tls/protocols", test_protocols);
  g_test_add_func("/tls/ciphers", test_ciphers);
  g_test_add("/tls/context-errors", Fixture, NULL, fixture_setup, test_context_errors,
             fixture_teardown);
  g_test_add("/tls/handshake-and-data", Fixture, NULL, fixture_setup, test_handshake_and_data,
             fixture_teardown);
  g_test_add("/tls/old-client-refused", Fixture, NULL, fixture_setup, test_old_client_refused,
             fixture_teardown);
  return g_test_run();
}
