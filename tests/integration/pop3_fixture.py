"""postern-pop3d for the POP3 tests: the `pop3d` fixture (a Pop3Env on
top of the test's `postern` instance), a strict raw POP3 client, and
mailbox helpers (maildirs and mboxes written directly, the wire form of a
stored message).

The daemon gets its listening sockets by socket activation
(LISTEN_FDNAMES=pop3[:pop3s], bound here on ephemeral ports, as conftest
does for smtpd), runs from $POSTERN_BUILD_DIR, and logs to a file in the
test directory like the other daemons (the postern fixture attaches the
logs of a failing test, and fails a test on a sanitizer report).

Passwords come from a sasldb made here with saslpasswd2 (realm
example.test = pop3d_sasl_local_domain), read through `pop3d.conf` in
cyrus_sasl_config_path (pop3d_sasl_application_name = pop3d).

conftest.py imports this module for its fixture: nothing from conftest is
imported at module level (import cycle); the few names needed are taken
from it inside functions.
"""

import base64
import os
import pwd
import grp
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rawsock import RawSocket

TIMEOUT = 10.0

REALM = "example.test"
PASSWORDS = {"poptest": "poptest-pw", "poptest2": "poptest2 pw with spaces",
             "root": "root-pw"}

GREETING = "+OK Postern ready."
LOGGED_IN = "+OK Logged in."
AUTH_FAILED = "-ERR [AUTH] Authentication failed."
PLAINTEXT_REFUSED = ("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                     "connections.")
IN_USE = "-ERR [IN-USE] Mailbox is locked by another POP3 session."
LOGGING_OUT = "+OK Logging out."
UNKNOWN = "-ERR Unknown command."


# The POP3 tests' own system users (maildir in the home, mbox in the
# test's spool): the homes of conftest's mailtest / mailtest2 are wiped by
# every Postern instance, so another test run on the same machine would
# pull a maildir from under a POP3 test.  Created here if missing, as
# conftest creates its users; homes under conftest's HOME_BASE.
POP3_USERS = ("poptest", "poptest2")


def ensure_pop3_accounts():
    cf = _conftest()
    for user in POP3_USERS:
        home = str(cf.HOME_BASE / user)
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", user], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            continue
        if pw.pw_dir != home:
            subprocess.run(["usermod", "-d", home, user], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _conftest():
    import conftest  # noqa: E402 (see the module doc)
    return conftest


# ---------------------------------------------------------------- the wire form of a message

def crlf(msg):
    """A stored message with CRLF line ends (LF or CRLF become CRLF, a bare
    CR stays), a final line end added when missing: LIST's octets."""
    out = re.sub(rb"\r?\n", b"\r\n", msg)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def stuffed(msg):
    """What RETR sends after its +OK line: crlf(), byte-stuffed, ".\\r\\n"."""
    lines = crlf(msg).split(b"\r\n")[:-1]
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines) + b".\r\n"


def top_of(msg, n):
    """The header, the empty line and n body lines of a message, in CRLF form
    (unstuffed)."""
    lines = crlf(msg).split(b"\r\n")[:-1]
    out = []
    i = 0
    while i < len(lines) and lines[i] != b"":
        out.append(lines[i])
        i += 1
    if i < len(lines):
        out.append(b"")
        out += lines[i + 1:i + 1 + n]
    return b"".join(ln + b"\r\n" for ln in out)


# ---------------------------------------------------------------- the raw client

class RawPop3(RawSocket):
    """A bare socket speaking POP3: exact bytes out; every line in must end
    with CRLF and status lines must be +OK / -ERR / "+ " continuations."""

    def __init__(self, sock, timeout=TIMEOUT):
        super().__init__(sock, timeout)

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=TIMEOUT):
        return super().connect(port, host, timeout)

    def raw_line(self, timeout=TIMEOUT):
        """The next line as bytes, without its CRLF."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        assert b"\n" not in line, "bare LF before CRLF in %r" % line
        return line

    def line(self, timeout=TIMEOUT):
        """A status line (str): +OK..., -ERR... or a "+ " continuation."""
        text = self.raw_line(timeout).decode("utf-8", "replace")
        assert re.match(r"^(\+OK( |$)|-ERR( |$)|\+ )", text), "not a status line: %r" % text
        return text

    def cmd(self, line, timeout=TIMEOUT):
        self.send(line + "\r\n")
        return self.line(timeout)

    def data(self, timeout=TIMEOUT):
        """The lines of a multi-line response after its status line, up to
        and with the terminator, exactly as sent (stuffed, CRLF): bytes.
        Every LF must be part of a CRLF (a bare CR may be message data)."""
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 3
                break
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                end = i + 5
                break
            start = max(0, len(self.buf) - 4)
            self._fill(deadline)
        out, self.buf = self.buf[:end], self.buf[end:]
        assert out.count(b"\n") == out.count(b"\r\n"), "bare LF in %r" % out[:500]
        return out

    def multi(self, line, timeout=TIMEOUT):
        """A command with a multi-line answer: (status, [data lines as str])."""
        status = self.cmd(line, timeout)
        if not status.startswith("+OK"):
            return status, None
        body = self.data(timeout)
        lines = body.split(b"\r\n")[:-2]
        return status, [ln.decode("utf-8", "replace") for ln in lines]

    def retr_raw(self, n, timeout=TIMEOUT):
        """RETR n: (status line, the bytes after it up to and with ".\\r\\n")."""
        status = self.cmd("RETR %s" % n, timeout)
        if not status.startswith("+OK"):
            return status, None
        return status, self.data(timeout)

    def login(self, user, password):
        r = self.cmd("USER %s" % user)
        assert r == "+OK", r
        return self.cmd("PASS %s" % password)

    def starttls(self, ctx, server_hostname="mail.example.test"):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock.settimeout(TIMEOUT)

    def read_to_eof(self, timeout=TIMEOUT):
        return super().read_to_eof(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- processes

def proc_status(pid):
    """/proc/PID/status as a dict of str (None when the process is gone)."""
    try:
        text = Path("/proc/%d/status" % pid).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    out = {}
    for ln in text.splitlines():
        k, _, v = ln.partition(":")
        out[k] = v.strip()
    return out


def _ppids():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % d).read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(d)] = int(fields[1])
    return out


def descendants(pid):
    """Pids of every live process below pid."""
    ppids = _ppids()
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [p for p, pp in ppids.items() if pp == cur]
        found += kids
        todo += kids
    return found


def socket_owners(local_port):
    """Pids holding the server side of the TCP connection whose client end
    is 127.0.0.1:local_port (via /proc/net/tcp and /proc/*/fd)."""
    inodes = set()
    for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = ln.split()
        rem_port = int(f[2].split(":")[1], 16)
        if rem_port == local_port:
            inodes.add(f[9])
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % d):
                try:
                    link = os.readlink("/proc/%s/fd/%s" % (d, fd))
                except OSError:
                    continue
                m = re.match(r"socket:\[(\d+)\]", link)
                if m and m.group(1) in inodes:
                    pids.add(int(d))
        except OSError:
            continue
    return pids


# ---------------------------------------------------------------- the environment

class Pop3Env:
    """postern-pop3d on the test's Postern instance (same main.cf)."""

    def __init__(self, postern, sasl_dir):
        cf = _conftest()
        ensure_pop3_accounts()
        self.p = postern
        for user in POP3_USERS:
            postern.make_home(user)      # fresh, empty, owned by the user
        self.binary = cf.BUILD / "src" / "pop3d" / "postern-pop3d"
        self.sasl_dir = Path(sasl_dir)
        self.sock = cf.listening_socket()
        self.port = self.sock.getsockname()[1]
        self.pop3s_sock = None
        self.pop3s_port = None
        self.daemon = None
        self.sasldb = self.sasl_dir / "sasldb2"
        self.add_users(PASSWORDS)
        self.write_sasl_conf()
        # Defaults for every POP3 test (a test's own params override them):
        # no failure delay unless a test measures it.
        self.p.params.update({
            "cyrus_sasl_config_path": str(self.sasl_dir),
            "pop3d_sasl_local_domain": REALM,
            "pop3d_sasl_failure_delay": "0s",
        })

    # -- SASL

    def add_users(self, users, realm=REALM):
        for user, pw in users.items():
            subprocess.run(["saslpasswd2", "-f", str(self.sasldb), "-p", "-c", "-u", realm,
                            "-a", "pop3d", user], input=pw, text=True, check=True,
                           timeout=TIMEOUT)
        self.sasldb.chmod(0o644)

    def write_sasl_conf(self, text=None):
        if text is None:
            text = ("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
                    "sasldb_path: %s\n" % self.sasldb)
        path = self.sasl_dir / "pop3d.conf"
        path.write_text(text)
        path.chmod(0o644)

    # -- the daemon

    def start(self, certs=None, pop3s=False, smtp=False, args=(), **params):
        """Writes main.cf (params on top of the defaults; certs sets
        smtpd_tls_cert_file/key, which pop3d's parameters default to),
        starts qmgr and smtpd too when smtp, then pop3d with the pop3 socket
        (and a pop3s one when pop3s)."""
        cf = _conftest()
        if certs is not None:
            params.setdefault("smtpd_tls_cert_file", certs["crt"])
            params.setdefault("smtpd_tls_key_file", certs["key"])
        self.p.configure(**params)
        if smtp:
            self.p.start_qmgr()
            self.p.start_smtpd()
        if not self.binary.exists():
            pytest.fail("%s is not built (POSTERN_BUILD_DIR=%s)" % (self.binary, cf.BUILD))
        socks = [("pop3", self.sock)]
        if pop3s:
            if self.pop3s_sock is None:
                self.pop3s_sock = cf.listening_socket()
                self.pop3s_port = self.pop3s_sock.getsockname()[1]
            socks.append(("pop3s", self.pop3s_sock))
        self.daemon = self.p._daemon("pop3d", [self.binary, "--config-dir", self.p.confdir,
                                               *args], socks)
        # The sockets listen already: connections wait in the backlog, so
        # READY=1 is only waited for a little, to catch a failed start.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not self.daemon.notify.has("READY=1"):
            assert self.daemon.alive(), "pop3d exited at start:\n" + self.daemon.log()
            time.sleep(0.01)
        assert self.daemon.alive(), "pop3d exited at start:\n" + self.daemon.log()
        return self.daemon

    def stop(self):
        """TERM to the daemon, then any process it left behind (by pid)."""
        if self.daemon is not None:
            kids = descendants(self.daemon.pid)
            self.daemon.stop()
            deadline = time.monotonic() + 3.0
            for pid in kids:
                while proc_status(pid) is not None and time.monotonic() < deadline:
                    time.sleep(0.02)
                if proc_status(pid) is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for s in (self.sock, self.pop3s_sock):
            if s is not None:
                s.close()

    def children(self):
        """{pid: /proc status} of the daemon's live descendants."""
        out = {}
        for pid in descendants(self.daemon.pid):
            st = proc_status(pid)
            if st is not None:
                out[pid] = st
        return out

    # -- clients

    def connect(self, port=None, greeting=True):
        c = RawPop3.connect(port or self.port)
        if greeting:
            g = c.line()
            assert g == GREETING, g
        return c

    def login(self, user="poptest", password=None, port=None):
        """A RawPop3 in TRANSACTION (USER/PASS in plaintext)."""
        c = self.connect(port)
        r = c.login(user, PASSWORDS.get(user) if password is None else password)
        assert r == LOGGED_IN, "%s -> %r\n%s" % (user, r, self.daemon.log()[-3000:])
        return c

    def login_retry(self, user="poptest", password=None, timeout=5.0):
        """As login(), retrying while an earlier session of the same mailbox
        is still finishing ([IN-USE] for a moment after a client dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.connect()
            r = c.login(user, PASSWORDS.get(user) if password is None else password)
            if r == LOGGED_IN:
                return c
            c.close()
            assert r == IN_USE and time.monotonic() < deadline, r
            time.sleep(0.1)

    # -- mailboxes

    def maildir(self, user="poptest"):
        """~user/Maildir with new/ cur/ tmp/, owned by user, mode 0700."""
        pw = pwd.getpwnam(user)
        md = self.p.home(user) / "Maildir"
        for d in (md, md / "new", md / "cur", md / "tmp"):
            d.mkdir(mode=0o700, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        return md

    def put(self, md, content, name, sub="new", owner="poptest", mode=0o600):
        """A message file written directly into a maildir."""
        path = Path(md) / sub / name
        path.write_bytes(content)
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
        return path

    def files(self, md):
        """{"new": [names], "cur": [names]} of a maildir."""
        return {sub: sorted(os.listdir(Path(md) / sub)) for sub in ("new", "cur")}

    def mail_spool_as_debian(self):
        """The mbox spool as Debian has /var/mail: root:mail, 2775."""
        os.chown(self.p.mail, 0, grp.getgrnam("mail").gr_gid)
        os.chmod(self.p.mail, 0o2775)


@pytest.fixture
def pop3d(postern, sasl_dir):
    """A Pop3Env on the test's postern instance (not started: .start())."""
    env = Pop3Env(postern, sasl_dir)
    try:
        yield env
    finally:
        env.stop()
