"""Fixtures for Postern's integration tests: real daemons from the build tree.

Each test gets its own directory (config, spool, mailboxes), its own
listening socket (bound here on an ephemeral port and handed to smtpd by
socket activation, so there is no port race), and its own smtpd and qmgr
processes, started under setsid and stopped with TERM (then KILL) after the
test.  Daemon logs go to files in the test directory; they are attached to
the report of a failing test.  A sanitizer report in any daemon's stderr
fails the test.

Must run as root (the daemons drop privileges, deliveries run as the test
users `mailtest` and `mailtest2`, which are created here if missing).
"""

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sasl_fixture import sasl_dir  # noqa: F401  (fixtures, for every test file)
from tls_fixture import certs  # noqa: F401
from rawsock import RawSocket
from pop3_fixture import pop3d  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTERN_BUILD_DIR") or ROOT / "build")
SMTPD = BUILD / "src" / "smtpd" / "postern-smtpd"
QMGR = BUILD / "src" / "qmgr" / "postern-qmgr"

HOME_BASE = Path("/tmp/postern-test-home")
TEST_USERS = ("mailtest", "mailtest2")
MAIL_OWNER = "postern"

# Sanitizer reports that fail a test when they show up in a daemon's stderr.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "LeakSanitizer has encountered a fatal error")

DEFAULT_TIMEOUT = 10.0   # seconds for any single wait; generous for ASan builds


# ---------------------------------------------------------------- accounts

def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ensure_accounts():
    """The mail owner and the two test users, homes under HOME_BASE."""
    if os.geteuid() != 0:
        pytest.exit("the integration tests must run as root", returncode=2)
    try:
        pwd.getpwnam(MAIL_OWNER)
    except KeyError:
        _run("useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", MAIL_OWNER)
    HOME_BASE.mkdir(mode=0o755, exist_ok=True)
    os.chmod(HOME_BASE, 0o755)
    for user in TEST_USERS:
        home = str(HOME_BASE / user)
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            _run("useradd", "-M", "-d", home, "-s", "/bin/sh", user)
            continue
        if pw.pw_dir != home:
            _run("usermod", "-d", home, user)


@pytest.fixture(scope="session", autouse=True)
def accounts():
    ensure_accounts()


# ---------------------------------------------------------------- SMTP on the wire

class SmtpReply:
    """One (possibly multi-line) SMTP reply as it came over the wire."""

    def __init__(self, lines):
        self.lines = lines                      # each without its CRLF
        self.code = int(lines[-1][:3])
        self.texts = [ln[4:] for ln in lines]   # text after "250-" / "250 "

    @property
    def text(self):
        return self.lines[-1]

    def __repr__(self):
        return "SmtpReply(%r)" % "\\r\\n".join(self.lines)


class RawSmtp(RawSocket):
    """A bare socket speaking SMTP: exact bytes out, replies parsed strictly
    (every line must end with CRLF)."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        super().__init__(sock, timeout)

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        return super().connect(port, host, timeout)

    def reply(self, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            assert b"\n" not in line and b"\r" not in line, "bare CR/LF in reply line %r" % line
            assert re.match(r"^[2-5]\d\d[ -]", text) or re.match(r"^[2-5]\d\d$", text), \
                "malformed reply line %r" % text
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                return SmtpReply(lines)

    def replies(self, n, timeout=DEFAULT_TIMEOUT):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=DEFAULT_TIMEOUT):
        self.send(line + "\r\n")
        return self.reply(timeout)

    def expect(self, line, code, timeout=DEFAULT_TIMEOUT):
        r = self.cmd(line, timeout) if line is not None else self.reply(timeout)
        assert r.code == code, "%r -> %r, wanted %d" % (line, r, code)
        return r

    def read_to_eof(self, timeout=DEFAULT_TIMEOUT):
        return super().read_to_eof(timeout)


def dsn_report(m):
    """(human text, per-message fields, [per-recipient fields], original
    part) of an RFC 3464 notice (an email.message), its structure checked."""
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    human, status, original = m.get_payload()
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return human.get_payload(), blocks[0], blocks[1:], original


def queue_id_of(reply):
    m = re.match(r"^250 2\.0\.0 Ok: queued as (\S+)$", reply.text)
    assert m, "not a queued reply: %r" % reply
    return m.group(1)


# ---------------------------------------------------------------- mailboxes

ASCTIME = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"


def split_mbox(data):
    """Messages of an mbox file, each starting with its From_ line.  A From_
    line starts a message at the top of the file or after an empty line."""
    msgs, cur = [], None
    prev_empty = True
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and prev_empty:
            if cur is not None:
                msgs.append(cur)
            cur = line
        elif cur is None:
            raise AssertionError("mbox does not start with a From_ line: %r" % data[:200])
        else:
            cur += line
        prev_empty = line == b"\n"
    if cur is not None:
        msgs.append(cur)
    return msgs


def parse_delivered(msg, mbox):
    """Splits a delivered message into (from_line or None, [the three
    delivery headers], received header, rest).  Asserts the structure of the
    contract: [From_] Return-Path, X-Original-To, Delivered-To, Received."""
    from_line = None
    if mbox:
        from_line, msg = msg.split(b"\n", 1)
        from_line = from_line.decode("utf-8", "replace")
        assert re.match(r"^From \S+  " + ASCTIME + "$", from_line), "bad From_ line %r" % from_line
    lines = msg.split(b"\n", 3)
    assert lines[0].startswith(b"Return-Path: <"), lines[0]
    assert lines[1].startswith(b"X-Original-To: "), lines[1]
    assert lines[2].startswith(b"Delivered-To: "), lines[2]
    m = re.match(rb"^(Received: from [^\n]*\n(?:\t[^\n]*\n)+)", lines[3])
    assert m, "no Received: header after the delivery headers: %r" % lines[3][:300]
    received = m.group(1)
    assert re.search(rb";(?:\n\t)? ?[^\n]*\d\d:\d\d:\d\d [+-]\d{4}[^\n]*\n$", received), \
        "Received: header does not end with a date: %r" % received
    rest = lines[3][len(received):]
    return from_line, [ln.decode() for ln in lines[:3]], received.decode(), rest


# ---------------------------------------------------------------- processes

def _sanitizer_env(env):
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class NotifySocket:
    """A NOTIFY_SOCKET for sd_notify() messages of one daemon."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)      # the daemon may have dropped to mail_owner
        self.sock.setblocking(False)
        self.messages = []

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode("utf-8", "replace"))
            except BlockingIOError:
                return self.messages

    def has(self, assignment):
        return any(assignment in m.split("\n") for m in self.poll())

    def close(self):
        self.sock.close()


class Daemon:
    """One daemon process under setsid, logs to files, stopped by PID only."""

    def __init__(self, name, argv, env, workdir, sockets=(), notify=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.workdir = Path(workdir)
        self.out_path = self.workdir / ("%s.out" % name)
        self.err_path = self.workdir / ("%s.err" % name)
        self.notify = notify
        self.expected_exit = False
        env = dict(env)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.path
        fds = [s.fileno() for _, s in sockets]
        argv = self.argv
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in sockets)
            # LISTEN_PID must be the daemon's own pid: set by a shell that execs it
            argv = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sdshim"] + argv
        else:
            for k in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"):
                env.pop(k, None)

        def child_setup():
            for i, fd in enumerate(fds):
                os.dup2(fd, 100 + i)
            for i in range(len(fds)):
                os.dup2(100 + i, 3 + i)
                os.set_inheritable(3 + i, True)
                os.close(100 + i)

        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, start_new_session=True,
                                         preexec_fn=child_setup if fds else None,
                                         close_fds=not fds)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        """Waits for a regex in the daemon's stderr; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log(), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("%s: no log line matching %r in %.0fs" % (self.name, pattern, timeout))
            time.sleep(0.02)

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self):
        """kill -9, as a crash would; the test expects this death."""
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.proc.wait(DEFAULT_TIMEOUT)

    def stop(self, grace=DEFAULT_TIMEOUT):
        """TERM, then KILL after grace seconds.  Returns (returncode, needed_kill)."""
        if not self.alive():
            return self.proc.returncode, False
        self.expected_exit = True
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(grace), False
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            return self.proc.wait(DEFAULT_TIMEOUT), True


# ---------------------------------------------------------------- the environment

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening_socket(port=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    return s


class Postern:
    """A private Postern instance: config dir, spool, mail spool, daemons."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.confdir = self.tmp / "etc"
        self.spool = self.tmp / "spool"
        self.mail = self.tmp / "mail"
        self.aliases = self.tmp / "aliases"
        for d in (self.confdir, self.mail):
            d.mkdir()
        os.chmod(self.tmp, 0o755)
        os.chmod(self.confdir, 0o755)
        os.chmod(self.mail, 0o1777)
        self.aliases.write_text("postmaster: root\n")
        self.params = {
            "myhostname": "mail.example.test",
            "mydomain": "example.test",
            "mydestination": "$myhostname, localhost, example.test",
            "queue_directory": str(self.spool),
            "mail_spool_directory": str(self.mail),
            "alias_maps": "hash:%s" % self.aliases,
            "alias_database": "hash:%s" % self.aliases,
            "mynetworks": "127.0.0.0/8",
            "smtpd_peername_lookup": "no",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
        }
        self.daemons = []
        self.smtpd = None
        self.qmgr = None
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]
        self.env = _sanitizer_env(dict(os.environ, POSTERN_LOG_STDERR="1",
                                       POSTERN_CONFIG_DIR=str(self.confdir)))
        self.env.pop("NOTIFY_SOCKET", None)
        # No test depends on the machine's resolver: DNS goes to a port where
        # nothing listens (every lookup "try again", at once) unless a test
        # starts its own server (test_dns.py, and remote delivery tests).
        self.env.setdefault("POSTERN_DNS_SERVER", "127.0.0.1:9")
        # No test talks to the machine's system bus: qmgr's D-Bus service
        # looks for one here (and keeps retrying) unless a test gives it a
        # private bus (dbus_fixture.py).
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=%s" % (self.tmp / "no-system-bus")
        self._n = 0
        self.reset_homes()

    # -- configuration

    def configure(self, **params):
        """Sets main.cf parameters (None removes one) and writes main.cf."""
        for k, v in params.items():
            if v is None:
                self.params.pop(k, None)
            else:
                self.params[k] = str(v)
        self.write_main_cf()
        return self

    def write_main_cf(self, text=None):
        if text is None:
            text = "# written by tests/integration/conftest.py\n" + "".join(
                "%s = %s\n" % kv for kv in self.params.items())
        path = self.confdir / "main.cf"
        tmp = self.confdir / ".main.cf.tmp"
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    def write_aliases(self, text):
        self.aliases.write_text(text)
        os.chmod(self.aliases, 0o644)
        # root-owned, as /etc/aliases: |command and /file destinations then
        # run as default_privs (nobody)
        os.chown(self.aliases, 0, 0)

    # -- users and mailboxes

    def reset_homes(self):
        for user in TEST_USERS:
            self.make_home(user)

    def make_home(self, user):
        home = HOME_BASE / user
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(mode=0o755)
        pw = pwd.getpwnam(user)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        return home

    def home(self, user):
        return HOME_BASE / user

    def mbox_path(self, user):
        return self.mail / user

    def mbox(self, user):
        try:
            return split_mbox(self.mbox_path(user).read_bytes())
        except FileNotFoundError:
            return []

    def maildir(self, user):
        """Messages in ~user/Maildir/new and cur, oldest name first: [(path, bytes)]."""
        out = []
        for sub in ("new", "cur"):
            d = self.home(user) / "Maildir" / sub
            if d.is_dir():
                out += [(p, p.read_bytes()) for p in sorted(d.iterdir())]
        return out

    def _wait(self, what, get, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            got = get()
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%s: %d message(s) after %.0fs, wanted %d" % (what, len(got), timeout, n))
            self.check_daemons_alive()
            time.sleep(0.02)

    def wait_mbox(self, user, n=1, timeout=DEFAULT_TIMEOUT):
        """Waits until user's mbox holds at least n messages; returns them."""
        return self._wait("mbox of " + user, lambda: self.mbox(user), n, timeout)

    def wait_maildir(self, user, n=1, timeout=DEFAULT_TIMEOUT):
        return self._wait("Maildir of " + user, lambda: self.maildir(user), n, timeout)

    # -- the queue

    def queue_files(self):
        """{dir: [names]} of every queue subdirectory, temp files included."""
        out = {}
        for d in ("incoming", "active", "deferred", "hold", "corrupt"):
            p = self.spool / d
            out[d] = sorted(os.listdir(p)) if p.is_dir() else []
        return out

    def committed_queue_files(self):
        return {d: [n for n in names if not n.startswith(".")]
                for d, names in self.queue_files().items()}

    def wait_queue_empty(self, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            files = self.committed_queue_files()
            if not any(files[d] for d in ("incoming", "active", "deferred")):
                return
            if time.monotonic() > deadline:
                raise AssertionError("queue not empty after %.0fs: %r" % (timeout, files))
            time.sleep(0.02)

    # -- daemons

    def _daemon(self, name, argv, sockets=(), env=None):
        self._n += 1
        notify = NotifySocket(self.tmp / ("notify-%s-%d" % (name, self._n)))
        d = Daemon("%s-%d" % (name, self._n), argv, env or self.env, self.tmp, sockets, notify)
        self.daemons.append(d)
        return d

    def start_qmgr(self, args=(), wait_ready=True):
        if not (self.confdir / "main.cf").exists():
            self.write_main_cf()
        assert QMGR.exists(), "%s not built" % QMGR
        self.qmgr = self._daemon("qmgr", [QMGR, "--config-dir", self.confdir, *args])
        if wait_ready:
            # READY=1 if the daemon sends it; otherwise just make sure it stays up
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not self.qmgr.notify.has("READY=1"):
                assert self.qmgr.alive(), "qmgr exited at start:\n" + self.qmgr.log()
                time.sleep(0.01)
        assert self.qmgr.alive(), "qmgr exited at start:\n" + self.qmgr.log()
        return self.qmgr

    def start_smtpd(self, args=(), listeners=None, wait_ready=True):
        """Starts smtpd with our listening socket as fd 'smtp' (socket
        activation), plus any (name, socket) in listeners."""
        if not (self.confdir / "main.cf").exists():
            self.write_main_cf()
        assert SMTPD.exists(), "%s not built" % SMTPD
        socks = [("smtp", self.sock)] + list(listeners or [])
        self.smtpd = self._daemon("smtpd", [SMTPD, "--config-dir", self.confdir, *args], socks)
        if wait_ready:
            self.wait_smtp_ready(self.port, self.smtpd)
        return self.smtpd

    def wait_smtp_ready(self, port, daemon=None):
        """A connection gets the 220 greeting; QUIT, and wait for the close."""
        c = RawSmtp.connect(port)
        try:
            try:
                greeting = c.reply()
            except (EOFError, TimeoutError) as e:
                log = daemon.log() if daemon else ""
                raise AssertionError("no greeting on port %d: %s\n%s" % (port, e, log)) from None
            assert greeting.code == 220, greeting
            c.send("QUIT\r\n")
            c.read_to_eof(5)
        finally:
            c.close()
        return greeting

    def start(self, **params):
        """Writes main.cf with params, starts qmgr and smtpd."""
        self.configure(**params)
        self.start_qmgr()
        self.start_smtpd()
        return self

    def check_daemons_alive(self):
        for d in self.daemons:
            if not d.alive() and not d.expected_exit:
                raise AssertionError("%s died unexpectedly (status %s):\n%s"
                                     % (d.name, d.proc.returncode, d.log()[-4000:]))

    def stop_all(self):
        problems = []
        for d in reversed(self.daemons):
            was_alive = d.alive()
            rc, killed = d.stop()
            if killed:
                problems.append("%s did not exit within %.0fs of SIGTERM" % (d.name, DEFAULT_TIMEOUT))
            elif not was_alive and not d.expected_exit:
                problems.append("%s had died during the test (status %s)" % (d.name, rc))
            if d.notify:
                d.notify.close()
        self.sock.close()
        return problems

    def sanitizer_reports(self):
        out = []
        for d in self.daemons:
            log = d.log()
            if any(m in log for m in SANITIZER_MARKERS):
                out.append("%s:\n%s" % (d.name, log[-8000:]))
        return out

    def all_logs(self):
        parts = []
        for d in self.daemons:
            parts.append("==== %s (pid %d, %s) stderr:\n%s" % (d.name, d.pid, " ".join(d.argv), d.log()))
            try:
                out = d.out_path.read_text(errors="replace")
            except FileNotFoundError:
                out = ""
            if out:
                parts.append("==== %s stdout:\n%s" % (d.name, out))
        return "\n".join(parts)

    # -- clients

    def connect(self, port=None, greeting=True):
        c = RawSmtp.connect(port or self.port)
        if greeting:
            r = c.reply()
            assert r.code == 220, r
        return c

    def smtp(self, port=None):
        s = smtplib.SMTP("127.0.0.1", port or self.port, local_hostname="client.example.test",
                         timeout=DEFAULT_TIMEOUT)
        return s

    def send(self, to, body=b"", sender="sender@client.example.test", subject="test",
             port=None, mail_options=(), headers=b""):
        """Sends one message with smtplib; returns the message bytes as sent
        (CRLF line ends)."""
        if isinstance(to, str):
            to = [to]
        if isinstance(body, str):
            body = body.encode()
        msg = (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n" % (sender.encode(), to[0].encode(),
                                                           subject.encode())
               + headers + b"\r\n" + body)
        with self.smtp(port) as s:
            s.ehlo()
            refused = s.sendmail(sender, to, msg, mail_options=list(mail_options))
            assert not refused, refused
        return msg

    def barrier(self, user="mailtest2", timeout=DEFAULT_TIMEOUT):
        """Sends a marker mail to user and waits for it: everything queued
        before it has had its chance to be delivered."""
        before = len(self.mbox(user))
        self._n += 1
        self.send("%s@example.test" % user, subject="barrier-%d" % self._n, body="barrier\r\n")
        return self.wait_mbox(user, before + 1, timeout)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    p = item.funcargs.get("postern") if hasattr(item, "funcargs") else None
    if rep.failed and p is not None and rep.when in ("call", "setup"):
        rep.sections.append(("postern daemon logs", p.all_logs()[-30000:]))


@pytest.fixture
def postern(request):
    """A fresh Postern instance (not started: call .start(**params))."""
    for b in (SMTPD, QMGR):
        if not b.exists():
            pytest.fail("%s is not built (POSTERN_BUILD_DIR=%s)" % (b, BUILD))
    tmp = tempfile.mkdtemp(prefix="postern-it-", dir="/tmp")
    p = Postern(tmp)
    failed = False
    try:
        yield p
    finally:
        problems = p.stop_all()
        reports = p.sanitizer_reports()
        call = getattr(request.node, "rep_call", None)
        failed = call is None or call.failed
        if not failed and not reports and not problems:
            shutil.rmtree(tmp, ignore_errors=True)
        if reports:
            pytest.fail("sanitizer report in daemon stderr (kept %s):\n%s" % (tmp, "\n".join(reports)))
        if problems:
            pytest.fail("; ".join(problems) + " (kept %s)\n%s" % (tmp, p.all_logs()[-20000:]))
