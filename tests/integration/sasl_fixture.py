"""Cyrus SASL for the AUTH tests: a directory smtpd can read (the
"sasl_dir" fixture) and a sasldb made there with saslpasswd2."""

import base64
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TIMEOUT = 10.0   # (conftest imports this module: no import back)

REALM = "example.test"
USER, PASSWORD = "alice", "alice-secret"


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@pytest.fixture
def sasl_dir():
    """A directory smtpd (running as postern) can read: SASL's config
    path, the sasldb, saslauthd's mux."""
    d = Path(tempfile.mkdtemp(prefix="postern-sasl-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_sasldb(d, users=((USER, PASSWORD),)):
    db = d / "sasldb2"
    for user, pw in users:
        subprocess.run(["saslpasswd2", "-f", str(db), "-p", "-c", "-u", REALM, "-a", "smtpd", user],
                       input=pw, text=True, check=True, timeout=TIMEOUT)
    db.chmod(0o644)
    (d / "smtpd.conf").write_text("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                                  "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % db)
    return db
