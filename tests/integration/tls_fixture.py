"""Certificates for the TLS tests: a throwaway CA and server certificates
made with the openssl command (the "certs" fixture, session-wide)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import ssl

import pytest

HOST = "mail.example.test"


def make_cert(d, name, cn, ca_key, ca_crt):
    key, csr, crt, ext = (d / (name + ".key"), d / (name + ".csr"), d / (name + ".crt"),
                          d / (name + ".ext"))
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=%s" % cn], check=True, capture_output=True)
    ext.write_text("subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % cn)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", crt, "-days", "30", "-extfile", ext],
                   check=True, capture_output=True)
    key.chmod(0o644)
    return crt, key


@pytest.fixture(scope="session")
def certs():
    """A CA, a certificate for mail.example.test, a second one (for the
    reload test, CN other.example.test) and a key that matches neither.
    Readable by smtpd's unprivileged user, which reloads them."""
    d = Path(tempfile.mkdtemp(prefix="postern-tls-", dir="/tmp"))
    d.chmod(0o755)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                    "-out", ca_crt, "-days", "30", "-subj", "/CN=Postern Test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    crt, key = make_cert(d, "server", HOST, ca_key, ca_crt)
    crt2, key2 = make_cert(d, "other", "other.example.test", ca_key, ca_crt)
    stray = d / "stray.key"
    subprocess.run(["openssl", "genrsa", "-out", stray, "2048"], check=True, capture_output=True)
    stray.chmod(0o644)
    yield {"ca": ca_crt, "crt": crt, "key": key, "crt2": crt2, "key2": key2, "stray": stray,
           "dir": d}
    shutil.rmtree(d, ignore_errors=True)


def tls_params(certs, level="may", **more):
    """main.cf parameters for STARTTLS with the fixture's certificate
    (more may replace any of them)."""
    params = dict(smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
                  smtpd_tls_security_level=level)
    params.update(more)
    return params


def client_context(certs, **kw):
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx
