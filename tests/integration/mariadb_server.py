"""A private MariaDB for the mysql: table tests (test_mysql.py,
test_domain_lists.py): its own datadir, socket and port on 127.0.0.1,
started once per test module that uses the `mariadb` fixture, never a
system instance.  It holds the example schema of conf.d/ with a few
rows (virt.test is a virtual domain; alice@virt.test a mailbox; info@
an alias), and a user postern / sec'ret that may only SELECT.

Import the fixture into a test module with
`from mariadb_server import mariadb, write_cf`.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port


class MariaDB:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="postern-mysql-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.datadir = self.dir / "data"
        self.socket = self.dir / "mysqld.sock"
        self.port = free_port()
        self.proc = None
        subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=%s" % self.datadir,
                        "--user=root", "--auth-root-authentication-method=socket",
                        "--skip-test-db", "--innodb-log-file-size=8M"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)

    def start(self):
        self.log = open(self.dir / "mariadbd.log", "ab")
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--datadir=%s" % self.datadir,
             "--socket=%s" % self.socket, "--port=%d" % self.port, "--bind-address=127.0.0.1",
             "--user=root", "--pid-file=%s" % (self.dir / "mysqld.pid"), "--skip-name-resolve",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited: %s" % (self.dir / "mariadbd.log").read_text()[-2000:])
            r = subprocess.run(["mariadb-admin", "--no-defaults", "--socket=%s" % self.socket,
                                "ping"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not answer within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def sql(self, text):
        subprocess.run(["mariadb", "--no-defaults", "--socket=%s" % self.socket],
                       input=text.encode(), check=True, timeout=20)


@pytest.fixture(scope="module")
def mariadb():
    # tools/test installs mariadb-server; without it these tests must fail, not vanish
    assert shutil.which("mariadbd"), "mariadb-server is not installed (tools/lib.sh installs it)"
    db = MariaDB()
    try:
        db.start()
        db.sql((ROOT / "conf.d" / "mysql-schema.sql").read_text())
        db.sql("""
          CREATE USER 'postern'@'127.0.0.1' IDENTIFIED BY 'sec''ret';
          GRANT SELECT ON mail.* TO 'postern'@'127.0.0.1';
          CREATE TABLE mail.recipient_access (address VARCHAR(255) PRIMARY KEY, action VARCHAR(255));
          GRANT SELECT ON mail.recipient_access TO 'postern'@'127.0.0.1';
          INSERT INTO mail.virtual_domains VALUES ('virt.test');
          INSERT INTO mail.virtual_mailboxes (email, maildir, active) VALUES
            ('alice@virt.test', 'virt.test/alice/', 1), ('gone@virt.test', 'virt.test/gone/', 0);
          INSERT INTO mail.virtual_aliases VALUES
            ('info@virt.test', 'alice@virt.test'), ('info@virt.test', 'mailtest@example.test');
          INSERT INTO mail.recipient_access VALUES ('blocked@example.test', 'REJECT no mail here');
        """)
        yield db
    finally:
        db.stop()
        shutil.rmtree(db.dir, ignore_errors=True)


def write_cf(p, db, name, query, extra=""):
    """A table file like conf.d's examples, pointing at the private server
    (a dead first host shows the failover)."""
    path = p.tmp / name
    dead = free_port()
    path.write_text("hosts = 127.0.0.1:%d, 127.0.0.1:%d\nuser = postern\npassword = sec'ret\n"
                    "dbname = mail\nquery = %s\n%s" % (dead, db.port, query, extra))
    return "mysql:%s" % path
