/* config-check-tls.c - config_check()'s look at smtpd's TLS files.
 *
 * When smtpd_tls_cert_file is set: the certificate must be readable and
 * hold a PEM certificate; smtpd_tls_key_file (by default the same file)
 * must hold a PEM private key that matches it, and must not be readable
 * by other users, nor by a group other than mail_owner's (root:postern
 * 0640 is fine: smtpd runs as mail_owner); smtpd_tls_CAfile, when set,
 * must hold at least one PEM certificate.  OpenSSL's error queue is
 * cleared after every failure, so nothing leaks to later TLS code.
 */
#include "config-check-private.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>

/* Opens path for reading, or reports why not. */
static BIO *
check_tls_open(ConfigCheck *check, const char *setting, const char *path)
{
  FILE *fp = fopen(path, "re");
  if (!fp) {
    config_check_add(check, setting, "warning", "open %s: %s", path, g_strerror(errno));
    return NULL;
  }
  return BIO_new_fp(fp, BIO_CLOSE);
}

/* A passphrase-protected key cannot be loaded by a daemon: no prompt. */
static int
check_tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
  return 0;
}

static X509 *
check_tls_certificate(ConfigCheck *check, const char *path)
{
  BIO *bio = check_tls_open(check, "smtpd_tls_cert_file", path);
  if (!bio)
    return NULL;
  X509 *cert = PEM_read_bio_X509(bio, NULL, check_tls_no_passphrase, NULL);
  BIO_free(bio);
  if (!cert) {
    ERR_clear_error();
    config_check_add(check, "smtpd_tls_cert_file", "warning",
                     "cannot load a certificate from %s: no PEM certificate found", path);
  }
  return cert;
}

/* smtpd reloads as mail_owner: a file it cannot read then keeps the
 * certificates of the previous load (Postfix reads them as root). */
static void
check_tls_owner_reads(ConfigCheck *check, const char *setting, const char *path)
{
  struct stat st;

  if (check->owner_ok && stat(path, &st) == 0 && !config_check_owner_can_read(check, &st))
    config_check_add(check, setting, "warning",
                     "%s is not readable by mail_owner %s, as which smtpd re-reads it on reload "
                     "(root:%s 0640 is fine)", path, check->owner, check->owner);
}

/* Who may read the key besides its owner. */
static void
check_tls_key_mode(ConfigCheck *check, const char *path)
{
  struct stat st;
  check_tls_owner_reads(check, "smtpd_tls_key_file", path);
  if (stat(path, &st) < 0)
    return;
  if (st.st_mode & S_IROTH)
    config_check_add(check, "smtpd_tls_key_file", "warning",
                     "private key file %s is readable by other users", path);
  else if ((st.st_mode & S_IRGRP) && !(check->owner_ok && st.st_gid == check->owner_gid))
    config_check_add(check, "smtpd_tls_key_file", "warning",
                     "private key file %s is readable by group %ld", path, (long) st.st_gid);
}

static void
check_tls_key(ConfigCheck *check, const char *path, X509 *cert, const char *cert_path)
{
  BIO *bio = check_tls_open(check, "smtpd_tls_key_file", path);
  if (!bio)
    return;
  check_tls_key_mode(check, path);
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, check_tls_no_passphrase, NULL);
  BIO_free(bio);
  if (!key) {
    ERR_clear_error();
    config_check_add(check, "smtpd_tls_key_file", "warning",
                     "cannot load a private key from %s: no PEM private key found, or it needs "
                     "a passphrase", path);
    return;
  }
  if (cert && X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    config_check_add(check, "smtpd_tls_key_file", "warning",
                     "private key in %s does not match the certificate in %s", path, cert_path);
  }
  EVP_PKEY_free(key);
}

static void
check_tls_cafile(ConfigCheck *check, const char *path)
{
  BIO *bio = check_tls_open(check, "smtpd_tls_CAfile", path);
  if (!bio)
    return;
  STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, check_tls_no_passphrase, NULL);
  BIO_free(bio);
  int certs = 0;
  for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++)
    if (sk_X509_INFO_value(infos, i)->x509)
      certs++;
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  if (certs == 0)
    config_check_add(check, "smtpd_tls_CAfile", "warning",
                     "no PEM certificate found in %s", path);
}

void
config_check_tls(ConfigCheck *check)
{
  const char *cert_path = config_str(check->config, "smtpd_tls_cert_file");
  const char *key_path = config_str(check->config, "smtpd_tls_key_file");
  const char *ca_path = config_str(check->config, "smtpd_tls_CAfile");
  if (*cert_path) {
    X509 *cert = check_tls_certificate(check, cert_path);
    if (cert)
      check_tls_owner_reads(check, "smtpd_tls_cert_file", cert_path);
    if (*key_path)
      check_tls_key(check, key_path, cert, cert_path);
    X509_free(cert);
  }
  if (*ca_path)
    check_tls_cafile(check, ca_path);
}
