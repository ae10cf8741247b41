"""The shipped systemd units, checked offline and run the way they say.

- systemd-analyze verify on every unit (rendered with ExecStart= pointing at
  this build tree), and a broken copy must fail, so the check can fail;
- systemd-analyze security --offline=yes: each service at or below its
  exposure limit, and the scores docs/systemd.md states are the real ones;
- socket activation with systemd-socket-activate, using the ListenStream=
  and FileDescriptorName= values of the .socket files (on ephemeral
  loopback ports) and the services' ExecStart=, User=, Group= and UMask=:
  the smtp service greets and delivers, the submission service applies its
  -o overrides, the POP3 service (root bounded to CAP_SETUID, CAP_SETGID and
  CAP_KILL, as its CapabilityBoundingSet= says) serves a login on pop3 and
  on pop3s;
- postern-pop3d under a real systemd (systemd-nspawn, as test_system.py
  boots the rest): started from its sockets inside its whole sandbox;
- the watchdog pings of both daemons, tmpfiles.d against what qmgr makes,
  sysusers.d, and meson install's placement of everything.
"""

import grp
import json
import os
import pwd
import re
import smtplib
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (BUILD, DEFAULT_TIMEOUT, ROOT, SANITIZER_MARKERS, Daemon, NotifySocket,
                      RawSmtp, free_port, parse_delivered)
import units as U

# The POP3 units, on top of units.py's lists (which test_system.py boots).
POP3_SERVICES = ("postern-pop3d.service",)
POP3_SOCKETS = ("postern-pop3d.socket", "postern-pop3s.socket")
SERVICES = U.SERVICES + tuple(n for n in POP3_SERVICES if n not in U.SERVICES)
SOCKETS = U.SOCKETS + tuple(n for n in POP3_SOCKETS if n not in U.SOCKETS)
ALL_UNITS = SERVICES + SOCKETS + U.TARGETS
POP3D = BUILD / "src" / "pop3d" / "postern-pop3d"

# Exposure limits (systemd-analyze security, 0.0 best .. 10.0 worst).
EXPOSURE_LIMIT = {
    "postern-smtpd.service": 3.0,
    "postern-submission.service": 3.0,
    "postern-qmgr.service": 3.0,
    "postern-pop3d.service": 3.0,
}

# Capability bits (linux/capability.h) of the POP3 parent.
CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=60, **kw)


def build_binaries(build):
    return dict(U.build_binaries(build), **{"postern-pop3d": Path(build) / "src" / "pop3d" /
                                            "postern-pop3d"})


@pytest.fixture
def rendered(tmp_path):
    return U.render_units(tmp_path / "units", build_binaries(BUILD), names=ALL_UNITS)


# ---------------------------------------------------------------- offline checks

def test_verify_clean(rendered):
    """Every unit loads without a single complaint, with its dependencies."""
    r = run(["systemd-analyze", "verify", "--man=no", *rendered.values()])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_verify_catches_a_missing_binary(tmp_path):
    """The check above can fail: a unit whose ExecStart= binary does not
    exist (the installed path before installation) is rejected."""
    bins = {k: tmp_path / "nowhere" / k for k in build_binaries(BUILD)}
    units = U.render_units(tmp_path / "units", bins, names=("postern-smtpd.service",
                                                             "postern-smtpd.socket"))
    r = run(["systemd-analyze", "verify", "--man=no", *units.values()])
    assert r.returncode != 0
    assert "nowhere/postern-smtpd is not executable: No such file or directory" in r.stderr


def exposure(path):
    r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", path])
    assert r.returncode == 0, r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d) ", r.stdout)
    assert m, r.stdout[-500:]
    return float(m.group(1)), r.stdout


def test_security_exposure(rendered):
    """Each service at or below its limit; --threshold agrees (the CI gate)."""
    for name, limit in EXPOSURE_LIMIT.items():
        score, report = exposure(rendered[name])
        assert score <= limit, "%s: exposure %.1f > %.1f\n%s" % (name, score, limit, report)
        r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                 "--threshold=%d" % round(limit * 10), rendered[name]])
        assert r.returncode == 0, r.stdout[-800:] + r.stderr


def test_security_details(rendered):
    """The points that matter most, by name, from the JSON report: smtpd has
    no capabilities and no root; qmgr only its six capabilities."""
    def checks(name):
        r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", "--json=short",
                 rendered[name]])
        assert r.returncode == 0, r.stderr
        return {c["name"]: c for c in json.loads(r.stdout)}

    for name in ("postern-smtpd.service", "postern-submission.service"):
        c = checks(name)
        assert c["User=/DynamicUser="]["exposure"] in (None, 0, 0.0), c["User=/DynamicUser="]
        for k, v in c.items():
            if k.startswith("CapabilityBoundingSet=") or k.startswith("AmbientCapabilities"):
                assert not v["exposure"], (name, k, v)
    qmgr = U.parse_unit(rendered["postern-qmgr.service"])
    caps = set(" ".join(qmgr["Service"]["CapabilityBoundingSet"]).split())
    assert caps == {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID",
                    "CAP_SETUID"}
    # pop3d: root, but only the three capabilities its children's identities
    # need; no file-permission override, no chown, no network privileges
    pop3d = U.parse_unit(rendered["postern-pop3d.service"])
    caps = set(" ".join(pop3d["Service"]["CapabilityBoundingSet"]).split())
    assert caps == {"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}
    c = checks("postern-pop3d.service")
    for k in ("CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
              "CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)",
              "CapabilityBoundingSet=~CAP_SYS_ADMIN", "CapabilityBoundingSet=~CAP_SYS_PTRACE",
              "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)",
              "NoNewPrivileges=", "RestrictSUIDSGID=", "ProtectSystem=", "PrivateTmp=",
              "SystemCallArchitectures=", "MemoryDenyWriteExecute=", "UMask="):
        assert not c[k]["exposure"], (k, c[k])


def test_docs_state_the_real_scores(rendered):
    """docs/systemd.md gives each service's exposure; it must be the one
    systemd-analyze computes for the units as shipped."""
    text = (ROOT / "docs" / "systemd.md").read_text()
    for name in EXPOSURE_LIMIT:
        m = re.search(r"^\| `%s` \| (\d+\.\d) " % re.escape(name), text, re.M)
        assert m, "docs/systemd.md has no score row for %s" % name
        score, _ = exposure(rendered[name])
        assert float(m.group(1)) == score, "%s: docs say %s, systemd-analyze says %.1f" % (
            name, m.group(1), score)


def test_unit_basics():
    """What the design asks of each unit, read as systemd reads it."""
    units = {n: U.parse_unit((U.UNITS_SRC / (n + ".in")) if (U.UNITS_SRC / (n + ".in")).exists()
                             else U.UNITS_SRC / n) for n in ALL_UNITS}
    v = U.unit_value
    for n in ("postern-smtpd.service", "postern-submission.service"):
        assert v(units[n], "Service", "Type") == "notify"
        assert v(units[n], "Service", "User") == "postern"
        assert v(units[n], "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
        assert v(units[n], "Service", "WatchdogSec")
        assert v(units[n], "Service", "ProtectSystem") == "strict"
        assert v(units[n], "Service", "ProtectHome") == "yes"
    q = units["postern-qmgr.service"]
    assert v(q, "Service", "Type") == "dbus"
    assert v(q, "Service", "BusName") == "org.postern.Mail1"
    assert v(q, "Service", "NotifyAccess") == "main"   # STATUS= and WATCHDOG=1 still count
    assert v(q, "Service", "WatchdogSec")
    assert U.socket_listeners(units["postern-smtpd.socket"]) == [("25", "smtp")]
    assert U.socket_listeners(units["postern-submission.socket"]) == [("587", "submission")]
    assert U.socket_listeners(units["postern-smtps.socket"]) == [("465", "smtps")]
    # sendmail's socket: local_submission_socket's default, open to every user
    assert U.socket_listeners(units["postern-local.socket"]) == [("/run/postern/local.sock", "local")]
    assert v(units["postern-local.socket"], "Socket", "SocketMode") == "0666"
    assert v(units["postern-local.socket"], "Socket", "Service") == "postern-smtpd.service"
    for s in SOCKETS:
        assert v(units[s], "Socket", "Accept", "no") == "no"   # one process, every session
        assert v(units[s], "Unit", "PartOf") == "postern.target"
        assert units[s]["Install"]["WantedBy"] == ["sockets.target"]
    assert v(units["postern-smtps.socket"], "Socket", "Service") == "postern-submission.service"
    # POP3: both sockets for one service, which runs as root (bounded)
    assert U.socket_listeners(units["postern-pop3d.socket"]) == [("110", "pop3")]
    assert U.socket_listeners(units["postern-pop3s.socket"]) == [("995", "pop3s")]
    for s in POP3_SOCKETS:
        assert v(units[s], "Socket", "Service") == "postern-pop3d.service"
    p3 = units["postern-pop3d.service"]
    assert v(p3, "Service", "Type") == "notify"
    assert v(p3, "Service", "User") is None
    assert v(p3, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert v(p3, "Service", "WatchdogSec")
    assert v(p3, "Service", "NoNewPrivileges") == "yes"
    assert v(p3, "Service", "ProtectSystem") == "strict"
    assert v(p3, "Service", "ProtectHome") is None       # mailboxes live in homes
    rw = " ".join(p3["Service"]["ReadWritePaths"]).split()
    assert rw == ["-/var/mail", "-/home"], rw
    assert v(p3, "Unit", "Requires") is None        # a pop3s-only site masks the pop3 socket
    assert v(p3, "Unit", "Wants") == "postern-pop3d.socket"
    # submission, smtps and pop3s are opt-in (Postfix's master.cf; a certificate)
    wants = " ".join(units["postern.target"]["Unit"]["Wants"]).split()
    assert wants == ["postern-qmgr.service", "postern-smtpd.socket", "postern-local.socket",
                     "postern-pop3d.socket"]


# ---------------------------------------------------------------- as the units run them

def unit_exec_argv(service):
    """ExecStart= wrapped the way systemd would run it here: User=/Group=
    with the user's groups, CapabilityBoundingSet= and NoNewPrivileges=
    (setpriv), UMask=."""
    argv = U.exec_start_argv(service)
    user = U.unit_value(service, "Service", "User")
    group = U.unit_value(service, "Service", "Group", user)
    umask = U.unit_value(service, "Service", "UMask", "0022")
    wrap = ["/bin/sh", "-c", 'umask %s && exec "$0" "$@"' % umask]
    priv = []
    if user:
        priv += ["--reuid=%s" % user, "--regid=%s" % group, "--init-groups"]
    if "CapabilityBoundingSet" in service.get("Service", {}):
        caps = " ".join(service["Service"]["CapabilityBoundingSet"]).split()
        assert not any(c.startswith("~") for c in caps), caps
        priv.append("--bounding-set=" + ",".join(
            ["-all"] + ["+" + c[len("CAP_"):].lower() for c in caps]))
    if U.unit_value(service, "Service", "NoNewPrivileges") == "yes":
        priv.append("--no-new-privs")
    if priv:
        wrap += ["setpriv", *priv, "--"]
    return wrap + argv


def socket_activate(p, socket_units, service_name, rendered, notify=None, extra_env=()):
    """systemd-socket-activate with the listeners of socket_units (ephemeral
    loopback ports, the units' fd names) running service_name's ExecStart.
    Returns (daemon, [(port, fdname)])."""
    service = U.parse_unit(rendered[service_name])
    listeners = []
    for s in socket_units:
        for listen, name in U.socket_listeners(U.parse_unit(rendered[s])):
            port = free_port()
            addr = U.loopback_address(listen, port)
            if addr is None:     # a unix socket: a private path, "port" is the path
                port = addr = str(p.tmp / ("%s.sock" % name))
            listeners.append((addr, port, name))
    argv = ["systemd-socket-activate"]
    for addr, _, _ in listeners:
        argv += ["-l", addr]
    argv.append("--fdname=" + ":".join(n for _, _, n in listeners))
    env = {"POSTERN_CONFIG_DIR": str(p.confdir), "POSTERN_LOG_STDERR": "1",
           "ASAN_OPTIONS": p.env["ASAN_OPTIONS"], "UBSAN_OPTIONS": p.env["UBSAN_OPTIONS"]}
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.path
    env.update(extra_env)
    for k, val in env.items():
        argv += ["-E", "%s=%s" % (k, val)]
    argv += unit_exec_argv(service)
    d = Daemon("socket-activate-%s" % service_name, argv, p.env, p.tmp)
    p.daemons.append(d)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while d.log().count("Listening on") < len(listeners):
        assert d.alive() and time.monotonic() < deadline, d.log()
        time.sleep(0.02)
    return d, [(port, name) for _, port, name in listeners]


def test_smtpd_socket_unit_activation(postern, rendered):
    """postern-smtpd.socket + .service as systemd would run them: the fd
    named smtp, smtpd as postern from the first instruction, a queue owned
    by root as tmpfiles.d and qmgr make it; the greeting, a delivered mail,
    READY=1 and watchdog pings."""
    p = postern.configure()
    p.start_qmgr()                       # as root: the queue tree, incoming/ for postern
    incoming = p.spool / "incoming"
    assert p.spool.stat().st_uid == 0
    assert incoming.stat().st_uid == pwd.getpwnam("postern").pw_uid
    notify = NotifySocket(p.tmp / "notify-activated")
    d, listeners = socket_activate(p, ["postern-smtpd.socket"], "postern-smtpd.service",
                                   rendered, notify, {"WATCHDOG_USEC": "400000"})
    assert [n for _, n in listeners] == ["smtp"]
    port = listeners[0][0]

    c = RawSmtp.connect(port)            # the first connection execs smtpd
    g = c.reply()
    assert g.text == "220 mail.example.test ESMTP Postern", g
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: socket unit\r\n\r\nvia postern-smtpd.socket\r\n.\r\n")
    r = c.expect(None, 250)
    assert re.match(r"^250 2\.0\.0 Ok: queued as [0-9A-F]+$", r.text), r
    c.expect("QUIT", 221)
    c.close()
    (msg,) = p.wait_mbox("mailtest")
    _, headers, _, rest = parse_delivered(msg, mbox=True)
    assert headers[0] == "Return-Path: <sender@client.example.test>"
    assert rest == b"Subject: socket unit\n\nvia postern-smtpd.socket\n\n"

    # smtpd really runs as the unit's User= and Group=
    status = Path("/proc/%d/status" % d.pid).read_text()
    uid = pwd.getpwnam("postern").pw_uid
    gid = grp.getgrnam("postern").gr_gid
    assert re.search(r"^Uid:\t%d\t%d\t%d\t%d$" % ((uid,) * 4), status, re.M), status
    assert re.search(r"^Gid:\t%d\t%d\t%d\t%d$" % ((gid,) * 4), status, re.M), status
    assert re.search(r"^CapEff:\t0+$", status, re.M)

    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while sum(m.split("\n").count("WATCHDOG=1") for m in notify.poll()) < 3:
        assert time.monotonic() < deadline, notify.messages
        time.sleep(0.05)
    assert notify.has("READY=1")
    assert "unknown parameter" not in d.log()
    notify.close()


def test_submission_socket_units_activation(postern, rendered, certs, sasl_dir):
    """postern-submission.service started by its two socket units' fds
    (submission, smtps), with master.cf's -o overrides from its ExecStart=:
    STARTTLS is required on submission, AUTH only inside TLS, a client
    that has not authenticated is rejected with Postfix's text and one
    that has may relay; smtps is TLS from the first byte; no -o name is
    unknown."""
    from sasl_fixture import PASSWORD, REALM, USER, b64, make_sasldb
    from tls_fixture import HOST, client_context, tls_params
    make_sasldb(sasl_dir)
    p = postern.configure(cyrus_sasl_config_path=sasl_dir, smtpd_sasl_local_domain=REALM,
                          mynetworks="192.0.2.0/24", **tls_params(certs, level="may"))
    p.start_qmgr()
    d, listeners = socket_activate(p, ["postern-submission.socket", "postern-smtps.socket"],
                                   "postern-submission.service", rendered)
    assert [n for _, n in listeners] == ["submission", "smtps"]
    port = listeners[0][0]
    c = RawSmtp.connect(port)
    assert c.reply().text == "220 mail.example.test ESMTP Postern"
    r = c.expect("EHLO client.example.test", 250)
    assert "250-STARTTLS" in r.lines and not any("AUTH" in l for l in r.lines), r.lines
    r = c.cmd("MAIL FROM:<sender@client.example.test>")
    assert r.text == "530 5.7.0 Must issue a STARTTLS command first", r
    c.expect("STARTTLS", 220)
    c.sock = client_context(certs).wrap_socket(c.sock, server_hostname=HOST)
    r = c.expect("EHLO client.example.test", 250)
    assert "250-AUTH PLAIN LOGIN" in r.lines, r.lines
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    r = c.cmd("RCPT TO:<mailtest@example.test>")
    assert r.text == "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied", r
    c.expect("RSET", 250)
    assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD))).code == 235
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    c.expect("RCPT TO:<nobody@remote.example>", 250)
    c.expect("QUIT", 221)
    c.close()
    with smtplib.SMTP_SSL("127.0.0.1", listeners[1][0], local_hostname="client.example.test",
                          context=client_context(certs), timeout=DEFAULT_TIMEOUT) as s:
        code, text = s.ehlo()
        assert code == 250 and b"STARTTLS" not in text and s.has_extn("auth")
        assert s.login(USER, PASSWORD)[0] == 235
    assert "unknown parameter" not in d.log(), d.log()
    assert p.committed_queue_files()["incoming"] == []


def proc_status(pid):
    """/proc/PID/status as a dict of str (None when the process is gone)."""
    try:
        text = Path("/proc/%d/status" % pid).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return {k: v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())}


def descendants(pid):
    """Pids of the live processes below pid."""
    ppid = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid[int(d)] = int(Path("/proc/%s/stat" % d).read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [p for p, pp in ppid.items() if pp == cur]
        found += kids
        todo += kids
    return found


def proc_ids(status):
    """([uids], [gids], {groups}) of a proc_status() dict."""
    return ([int(x) for x in status["Uid"].split()], [int(x) for x in status["Gid"].split()],
            {int(x) for x in status["Groups"].split()})


POP3_GREETING = "+OK Postern ready."
POP3_PASSWORD = "mailtest-pw"


class Pop3:
    """A minimal POP3 client for the unit tests: status lines, multi-line
    data (unstuffed), every line ending in CRLF."""

    def __init__(self, port, tls_context=None, server_hostname=None):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT)
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.f = self.sock.makefile("rb")

    def line(self):
        ln = self.f.readline()
        if not ln:
            raise EOFError("connection closed")
        assert ln.endswith(b"\r\n"), ln
        return ln[:-2].decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def multi(self, text):
        """(status, [lines]) of a command with a multi-line answer."""
        st = self.cmd(text)
        if not st.startswith("+OK"):
            return st, None
        lines = []
        while True:
            ln = self.line()
            if ln == ".":
                return st, lines
            lines.append(ln[1:] if ln.startswith(".") else ln)

    def closed(self, timeout=5):
        """True when the server closes the connection (within timeout)."""
        self.sock.settimeout(timeout)
        try:
            return self.f.read() is not None
        except OSError as e:
            return "EOF" in str(e) or isinstance(e, ConnectionResetError)

    def close(self):
        self.sock.close()


def pop3_sasldb(sasl_dir, users):
    """A sasldb with users {name: password} for pop3d
    (pop3d_sasl_application_name = pop3d reads pop3d.conf)."""
    db = Path(sasl_dir) / "sasldb2"
    for user, pw in users.items():
        subprocess.run(["saslpasswd2", "-f", str(db), "-p", "-c", "-u", "example.test", "-a",
                        "pop3d", user], input=pw, text=True, check=True, timeout=DEFAULT_TIMEOUT)
    os.chmod(db, 0o644)
    (Path(sasl_dir) / "pop3d.conf").write_text(
        "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
        "sasldb_path: %s\n" % db)
    return db


def maildir_of(home, user, messages):
    """home/Maildir with messages {name: bytes} in new/, all owned by user."""
    pw = pwd.getpwnam(user)
    md = Path(home) / "Maildir"
    for d in (md, md / "new", md / "cur", md / "tmp"):
        d.mkdir(mode=0o700, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    for name, data in messages.items():
        f = md / "new" / name
        f.write_bytes(data)
        os.chown(f, pw.pw_uid, pw.pw_gid)
        os.chmod(f, 0o600)
    return md


def maildir_files(md):
    return {sub: sorted(os.listdir(Path(md) / sub)) for sub in ("new", "cur")}


def crlf_octets(msg):
    """LIST's octets of a stored message with LF line ends."""
    return len(msg) + msg.count(b"\n")


def test_pop3d_socket_units_activation(postern, rendered, sasl_dir, certs):
    """postern-pop3d.service started by its two socket units' fds (pop3,
    pop3s) as systemd would run it: root bounded to CAP_SETUID, CAP_SETGID
    and CAP_KILL, NoNewPrivileges=, UMask=.  A sasldb user logs in on
    pop3 (USER/PASS, STAT, RETR, DELE, QUIT: the message is gone from the
    maildir) and on pop3s (TLS from the first byte); the login process runs
    as mail_owner, the mail process as the mailbox's owner, neither with a
    capability; READY=1, watchdog pings, RELOADING=1 on SIGHUP, and SIGTERM
    with a session open stops everything within pop3d's 10 s."""
    from tls_fixture import HOST, client_context
    assert POP3D.exists(), "%s not built" % POP3D
    pop3_sasldb(sasl_dir, {"mailtest": POP3_PASSWORD})
    p = postern.configure(home_mailbox="Maildir/", cyrus_sasl_config_path=sasl_dir,
                          pop3d_sasl_local_domain="example.test", pop3d_sasl_failure_delay="0s",
                          pop3d_tls_cert_file=certs["crt"], pop3d_tls_key_file=certs["key"],
                          pop3d_plaintext_auth_networks="127.0.0.0/8")
    pw = pwd.getpwnam("mailtest")
    owner = pwd.getpwnam("postern")
    m1 = b"From: <sender@client.example.test>\nSubject: one\n\nvia postern-pop3d.socket\n"
    m2 = b"From: <sender@client.example.test>\nSubject: two\n\n.dot-stuffed line\n"
    md = maildir_of(p.home("mailtest"), "mailtest", {"1700000001.M1P1.testhost": m1,
                                                     "1700000002.M2P2.testhost": m2})
    os.chmod(p.home("mailtest"), 0o700)          # only mailtest may look inside

    notify = NotifySocket(p.tmp / "notify-pop3d-activated")
    d, listeners = socket_activate(p, POP3_SOCKETS, "postern-pop3d.service", rendered, notify,
                                   {"WATCHDOG_USEC": "400000"})
    assert [n for _, n in listeners] == ["pop3", "pop3s"]
    (port, _), (port_s, _) = listeners

    c = Pop3(port)                               # the first connection execs pop3d
    assert c.line() == POP3_GREETING
    # the parent: root, the unit's three capabilities and nothing else
    st = proc_status(d.pid)
    assert proc_ids(st)[0] == [0] * 4, st
    want = (1 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_KILL)
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k], 16) == want, (k, st[k])
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, st
    assert st["NoNewPrivs"] == "1", st
    # before the login: one login process, as postern, with nothing
    kids = [s for s in map(proc_status, descendants(d.pid)) if s is not None]
    assert len(kids) == 1, kids
    uids, gids, groups = proc_ids(kids[0])
    assert uids == [owner.pw_uid] * 4 and gids == [owner.pw_gid] * 4, kids[0]
    assert groups <= {owner.pw_gid} and int(kids[0]["CapEff"], 16) == 0, kids[0]

    assert c.cmd("USER mailtest") == "+OK"
    assert c.cmd("PASS %s" % POP3_PASSWORD) == "+OK Logged in."
    assert c.cmd("STAT") == "+OK 2 %d" % (crlf_octets(m1) + crlf_octets(m2))
    r = c.multi("RETR 2")
    assert r == ("+OK %d octets" % crlf_octets(m2), m2.decode().split("\n")[:-1]), r
    # the mail process: mailtest for good, no capabilities
    mail = [s for s in map(proc_status, descendants(d.pid))
            if s is not None and proc_ids(s)[0] == [pw.pw_uid] * 4]
    assert len(mail) == 1, [proc_status(x) for x in descendants(d.pid)]
    uids, gids, groups = proc_ids(mail[0])
    assert gids == [pw.pw_gid] * 4 and 0 not in groups, mail[0]
    assert int(mail[0]["CapEff"], 16) == int(mail[0]["CapPrm"], 16) == 0, mail[0]
    assert mail[0]["NoNewPrivs"] == "1"
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    assert c.cmd("QUIT") == "+OK Logging out."
    assert c.closed()
    c.close()
    assert maildir_files(md) == {"new": [], "cur": ["1700000002.M2P2.testhost:2,S"]}
    for dirpath, dirnames, filenames in os.walk(md):
        for f in dirnames + filenames:
            s = os.lstat(os.path.join(dirpath, f))
            assert (s.st_uid, s.st_gid) == (pw.pw_uid, pw.pw_gid), os.path.join(dirpath, f)
            assert s.st_mode & 0o077 == 0, (f, oct(s.st_mode))

    # pop3s: TLS from the first byte, the same certificate
    c = Pop3(port_s, client_context(certs), HOST)
    assert c.sock.getpeercert()["subject"] == ((("commonName", HOST),),)
    assert c.line() == POP3_GREETING
    st, capa = c.multi("CAPA")
    assert st == "+OK" and "USER" in capa and "STLS" not in capa, capa
    assert c.cmd("USER mailtest") == "+OK"
    assert c.cmd("PASS %s" % POP3_PASSWORD) == "+OK Logged in."
    assert c.cmd("STAT") == "+OK 1 %d" % crlf_octets(m2)

    # READY=1 and the watchdog, then a reload
    def count(what):
        return sum(m.split("\n").count(what) for m in notify.poll())

    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while count("WATCHDOG=1") < 3:
        assert time.monotonic() < deadline, notify.messages
        time.sleep(0.05)
    assert count("READY=1") == 1
    d.signal(1)                                  # ExecReload=/bin/kill -HUP $MAINPID
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while count("READY=1") < 2:
        assert d.alive() and time.monotonic() < deadline, notify.messages
        time.sleep(0.05)
    assert notify.has("RELOADING=1")
    assert c.cmd("NOOP") == "+OK"                # the session lives on

    # SIGTERM (systemctl stop) with the pop3s session still open
    kids = descendants(d.pid)
    assert kids
    t0 = time.monotonic()
    rc, killed = d.stop(grace=12)
    assert (rc, killed) == (0, False) and time.monotonic() - t0 < 10.5, (rc, d.log()[-2000:])
    assert notify.has("STOPPING=1")
    assert all(proc_status(pid) is None for pid in kids), [proc_status(x) for x in kids]
    assert c.closed()
    c.close()
    notify.close()
    assert "unknown parameter" not in d.log() and "fatal" not in d.log(), d.log()


# ---------------------------------------------------------------- pop3d under a real systemd

# A POP3 client run in the container's network namespace (host files): each
# step sends a line and reads the status line (and the data of a multi-line
# answer), or runs a command mid-session; at the end it reads to EOF.
POP3_CLIENT = r"""
import json, socket, ssl, subprocess, sys, time
spec = json.loads(sys.argv[1])
s = socket.create_connection(("127.0.0.1", spec["port"]), timeout=20)
if spec.get("ca"):
    ctx = ssl.create_default_context(cafile=spec["ca"])
    s = ctx.wrap_socket(s, server_hostname=spec["host"])
f = s.makefile("rb")
def line():
    ln = f.readline()
    if not ln:
        return None
    assert ln.endswith(b"\r\n"), ln
    return ln[:-2].decode()
out = [line()]
for step in spec["steps"]:
    if "exec" in step:
        t0 = time.monotonic()
        r = subprocess.run(step["exec"], capture_output=True, text=True, timeout=40)
        out.append({"exec": r.returncode, "output": r.stdout + r.stderr,
                    "seconds": time.monotonic() - t0})
        continue
    s.sendall(step["send"].encode() + b"\r\n")
    st = line()
    data = None
    if step.get("multi") and st and st.startswith("+OK"):
        data = []
        while True:
            ln = line()
            if ln == ".":
                break
            data.append(ln)
    out.append([st, data])
rest = f.read()
out.append({"eof": rest.decode("utf-8", "replace")})
print(json.dumps(out))
"""


def test_pop3d_under_systemd(tmp_path, certs):
    """postern-pop3d.socket and postern-pop3s.socket as shipped, in a
    container with systemd as PID 1 (nspawn.py; test_system.py boots the
    rest of the mail system the same way): the first connection makes
    systemd start the service inside its whole sandbox (ProtectSystem=strict
    with ReadWritePaths= for the mailboxes, the system call filter,
    NoNewPrivileges=, the capability bound), which reads a root-only TLS key
    without CAP_DAC_OVERRIDE, serves a login on pop3 and pop3s, moves and
    deletes maildir files in /home, survives systemctl reload with a session
    open, and stops cleanly on systemctl stop with a session open."""
    import shutil
    import nspawn
    from sasl_fixture import TIMEOUT
    from tls_fixture import HOST
    for tool in (nspawn.NSPAWN, shutil.which("nsenter")):
        if not tool or not os.access(tool, os.X_OK):
            pytest.fail("systemd-nspawn/nsenter missing: apt-get install systemd-container")
    cbuild = Path("/opt/postern-build")           # not under /tmp: PrivateTmp= would hide it
    work = Path(tempfile.mkdtemp(prefix="postern-pop3-sys-", dir="/tmp"))
    os.chmod(work, 0o755)

    def write(path, text, mode=0o644):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)

    units = work / "units"
    U.render_units(units, build_binaries(cbuild), names=POP3_SERVICES + POP3_SOCKETS)
    write(units / "postern-test.target",
          "[Unit]\nDescription=Postern POP3 test (boot only this)\n"
          "Wants=postern-pop3d.socket postern-pop3s.socket\n"
          "After=postern-pop3d.socket postern-pop3s.socket\n")
    write(units / "postern-pop3d.service.d" / "50-test-sanitizer.conf",
          "# test only: LeakSanitizer needs ptrace(2), which SystemCallFilter= forbids\n"
          "[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0 "
          "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1\n")
    write(work / "sysusers.d" / "postern.conf",
          (U.UNITS_SRC / "sysusers.d" / "postern.conf").read_text())
    write(work / "sysusers.d" / "postern-test.conf",
          'u mailtest - "Postern test recipient" /home/mailtest /bin/sh\n')
    write(work / "tmpfiles.d" / "postern-test.conf",
          "d /home 0755 root root -\nd /home/mailtest 0700 mailtest mailtest -\n"
          "d /home/mailtest/Maildir 0700 mailtest mailtest -\n"
          "d /home/mailtest/Maildir/new 0700 mailtest mailtest -\n"
          "d /home/mailtest/Maildir/cur 0700 mailtest mailtest -\n"
          "d /home/mailtest/Maildir/tmp 0700 mailtest mailtest -\n"
          "d /var/mail 2775 root mail -\n")
    etc = work / "postern"
    write(etc / "main.cf",
          "myhostname = %s\nmydestination = $myhostname, localhost, example.test\n"
          "home_mailbox = Maildir/\ncyrus_sasl_config_path = /etc/postern/sasl\n"
          "pop3d_sasl_local_domain = example.test\npop3d_sasl_failure_delay = 0s\n"
          "pop3d_plaintext_auth_networks = 127.0.0.0/8\n"
          "pop3d_tls_cert_file = /etc/postern/tls/server.crt\n"
          "pop3d_tls_key_file = /etc/postern/tls/server.key\n" % HOST)
    (etc / "sasl").mkdir()
    os.chmod(etc / "sasl", 0o755)
    subprocess.run(["saslpasswd2", "-f", str(etc / "sasl" / "sasldb2"), "-p", "-c", "-u",
                    "example.test", "-a", "pop3d", "mailtest"], input="mailtest-pw", text=True,
                   check=True, timeout=TIMEOUT)
    os.chmod(etc / "sasl" / "sasldb2", 0o644)
    write(etc / "sasl" / "pop3d.conf", "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
          "mech_list: PLAIN LOGIN\nsasldb_path: /etc/postern/sasl/sasldb2\n")
    (etc / "tls").mkdir()
    shutil.copy(certs["crt"], etc / "tls" / "server.crt")
    shutil.copy(certs["key"], etc / "tls" / "server.key")
    os.chmod(etc / "tls" / "server.crt", 0o644)
    os.chmod(etc / "tls" / "server.key", 0o600)     # root only: no CAP_DAC_OVERRIDE needed
    os.chown(etc / "tls" / "server.key", 0, 0)
    client = work / "pop3_client.py"
    client.write_text(POP3_CLIENT)
    shutil.copy(certs["ca"], work / "ca.crt")

    binds = [(units, "/etc/systemd/system"), (work / "sysusers.d", "/etc/sysusers.d"),
             (work / "tmpfiles.d", "/etc/tmpfiles.d"), (etc, "/etc/postern"), (BUILD, cbuild)]
    c = nspawn.Container(work, "postern-pop3-%d" % os.getpid(), binds, "postern-test.target")
    ok = False
    logs = ""
    try:
        state = c.boot()
        failed = c.run("systemctl", "--failed", "--no-legend", "--plain").stdout
        assert state == "running", failed
        for sock, listen in (("postern-pop3d.socket", "[::]:110"),
                             ("postern-pop3s.socket", "[::]:995")):
            st = c.run("systemctl", "status", "--no-pager", sock).stdout
            assert "Active: active (listening)" in st and "Listen: %s (Stream)" % listen in st, st
        assert c.show("postern-pop3d.service", "ActiveState")["ActiveState"] == "inactive"

        def uid_of(user):
            for ln in c.path("/etc/passwd").read_text().splitlines():
                f = ln.split(":")
                if f[0] == user:
                    return int(f[2]), int(f[3])
            raise AssertionError("no %s in the container" % user)

        muid, mgid = uid_of("mailtest")
        ouid, _ = uid_of("postern")
        md = c.path("/home/mailtest/Maildir")
        msgs = {"1700000001.M1P1.systest": b"Subject: one\n\nfirst\n",
                "1700000002.M2P2.systest": b"Subject: two\n\nsecond\n"}
        for name, data in msgs.items():
            f = md / "new" / name
            f.write_bytes(data)
            os.chown(f, muid, mgid)
            os.chmod(f, 0o600)

        def pop3(port, steps, tls=False):
            spec = {"port": port, "steps": steps}
            if tls:
                spec.update(ca=str(work / "ca.crt"), host=HOST)
            r = c.run_in_network("/usr/bin/python3", client, json.dumps(spec), timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            return json.loads(r.stdout)

        login = [{"send": "USER mailtest"}, {"send": "PASS mailtest-pw"}]
        out = pop3(110, login + [{"send": "STAT"}, {"send": "RETR 2", "multi": True},
                                 {"send": "DELE 1"}, {"send": "QUIT"}])
        assert out[0] == "+OK Postern ready.", out
        assert out[1:3] == [["+OK", None], ["+OK Logged in.", None]], out
        octets = {n: len(m) + m.count(b"\n") for n, m in msgs.items()}   # CRLF line ends
        assert out[3] == ["+OK 2 %d" % sum(octets.values()), None], out
        two = octets["1700000002.M2P2.systest"]
        assert out[4] == ["+OK %d octets" % two, ["Subject: two", "", "second"]], out
        assert out[5:7] == [["+OK Marked to be deleted.", None], ["+OK Logging out.", None]]
        assert out[7] == {"eof": ""}, out
        # the sandbox let the mail process write its home: one unlinked, one moved
        assert sorted(os.listdir(md / "new")) == [] and sorted(os.listdir(md / "cur")) == [
            "1700000002.M2P2.systest:2,S"], (os.listdir(md / "new"), os.listdir(md / "cur"))

        st = c.run("systemctl", "status", "--no-pager", "postern-pop3d.service").stdout
        assert "Active: active (running)" in st, st
        assert 'Status: "Accepting connections"' in st, st
        trig = re.search(r"TriggeredBy: (.*?)\n +Docs:", st, re.S)
        assert trig and sorted(re.findall(r"● (\S+)", trig.group(1))) == [
            "postern-pop3d.socket", "postern-pop3s.socket"], st
        pid = c.show("postern-pop3d.service", "MainPID")["MainPID"]
        status = dict(ln.split(":\t", 1) for ln in
                      c.run("cat", "/proc/%s/status" % pid).stdout.splitlines() if ":\t" in ln)
        assert status["Uid"].split() == ["0"] * 4
        want = "%016x" % ((1 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_KILL))
        assert status["CapBnd"] == status["CapEff"] == status["CapPrm"] == want, status
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status
        # its view of the file system: read-only but for the mailboxes;
        # /run read-only too, root's home and the users' runtime directories,
        # the queue and the password hashes hidden
        mounts = {}
        for ln in c.run("cat", "/proc/%s/mountinfo" % pid).stdout.splitlines():
            f = ln.split()
            mounts[f[4]] = f[5].split(",")[0]       # the last mount of a path wins
        assert mounts["/"] == "ro" and mounts["/run"] == "ro", mounts
        assert mounts["/home"] == "rw" and mounts["/var/mail"] == "rw", mounts
        probe = ("for p in /etc/postern /run /run/systemd/system /home /var/mail; do "
                 "touch $p/.probe 2>/dev/null && echo $p rw && rm $p/.probe || echo $p ro; done; "
                 "for p in /root /run/user /etc/shadow; do echo $p $(stat -c %a $p) "
                 "$(ls -A $p | wc -l) $(stat -c %s $p); done")
        c.run("/bin/sh", "-c", "touch /root/.marker && mkdir -p /run/user/0")
        r = c.run("nsenter", "-t", pid, "-m", "/bin/sh", "-c", probe)
        assert r.stdout.split("\n") == [
            "/etc/postern ro", "/run ro", "/run/systemd/system ro", "/home rw", "/var/mail rw",
            "/root 0 0 40", "/run/user 0 0 40", "/etc/shadow 0 1 0", ""], r.stdout

        # pop3s, and systemctl reload / stop with that session open
        leader = ["nsenter", "-t", str(c.leader), "-a"]
        out = pop3(995, login + [{"send": "STAT"},
                                 {"exec": leader + ["systemctl", "reload",
                                                    "postern-pop3d.service"]},
                                 {"send": "NOOP"},
                                 {"exec": leader + ["systemctl", "stop", "postern-pop3d.service"]}],
                   tls=True)
        assert out[0] == "+OK Postern ready.", out
        assert out[2] == ["+OK Logged in.", None] and out[3] == ["+OK 1 %d" % two, None], out
        assert out[4]["exec"] == 0 and out[5] == ["+OK", None], out
        assert out[6]["exec"] == 0 and out[6]["seconds"] < 10.5, out
        assert out[7] == {"eof": ""}, out
        p = c.show("postern-pop3d.service", "ActiveState", "Result", "ExecMainStatus",
                   "NRestarts")
        assert (p["ActiveState"], p["Result"], p["ExecMainStatus"]) == ("inactive", "success",
                                                                          "0"), p
        j = c.run("journalctl", "--no-pager", "-o", "cat", "-u", "postern-pop3d.service").stdout
        assert "reloaded configuration from /etc/postern" in j, j
        assert re.search(r"login: user=<mailtest>, method=USER, rip=127\.0\.0\.1, .*TLS", j), j
        # the socket stays: the next client starts the service again
        out = pop3(110, login + [{"send": "QUIT"}])
        assert out[2] == ["+OK Logged in.", None], out
        ok = True
    finally:
        if c.leader is not None and c.proc is not None and c.proc.poll() is None:
            logs = c.run("journalctl", "--no-pager", "-o", "short-monotonic", "-u", "postern-*",
                         check=False).stdout
        killed = c.stop()
        reports = [m for m in SANITIZER_MARKERS if m in logs]
        if ok and not reports and not killed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            (work / "journal.txt").write_text(logs)
    assert not reports, "sanitizer report in the container's journal (kept %s):\n%s" % (
        work, logs[-8000:])
    assert not killed, "the container did not power off on SIGTERM (kept %s)" % work


def test_qmgr_watchdog_pings(postern):
    """qmgr pings the watchdog from its event loop at the rate WATCHDOG_USEC
    asks (WatchdogSec= in the unit); a stopped loop stops the pings."""
    p = postern.configure()
    env = dict(p.env, WATCHDOG_USEC="400000")
    notify = NotifySocket(p.tmp / "notify-qmgr-wd")
    d = Daemon("qmgr-watchdog", [U.build_binaries(BUILD)["postern-qmgr"], "--config-dir",
                                 p.confdir], dict(env, NOTIFY_SOCKET=notify.path), p.tmp)
    p.daemons.append(d)

    def pings():
        return sum(m.split("\n").count("WATCHDOG=1") for m in notify.poll())

    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while pings() < 3:
        assert d.alive() and time.monotonic() < deadline, d.log()
        time.sleep(0.05)
    d.signal(19)                 # SIGSTOP: nothing runs the loop, nothing pings
    time.sleep(0.1)
    before = pings()
    time.sleep(1.0)
    assert pings() == before
    d.signal(18)                 # SIGCONT
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while pings() < before + 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    notify.close()


# ---------------------------------------------------------------- tmpfiles.d, sysusers.d, install

def tree_modes(top):
    out = {}
    for path in [top] + sorted(p for p in Path(top).iterdir()):
        st = os.lstat(path)
        out[os.path.relpath(path, top)] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def test_tmpfiles_matches_the_daemons(postern, tmp_path):
    """systemd-tmpfiles with the shipped file makes the queue exactly as
    qmgr makes it: same directories, modes and owners, and qmgr then
    changes nothing."""
    spool = tmp_path / "tmpfiles-spool"
    conf = tmp_path / "postern.conf"
    text = (U.UNITS_SRC / "tmpfiles.d" / "postern.conf").read_text()
    assert "/var/spool/postern" in text
    conf.write_text(text.replace("/var/spool/postern", str(spool)))
    r = run(["systemd-tmpfiles", "--create", conf])
    assert r.returncode == 0, r.stderr
    made_by_tmpfiles = tree_modes(spool)

    p = postern.configure()
    p.start_qmgr()
    made_by_qmgr = tree_modes(p.spool)
    assert made_by_tmpfiles == made_by_qmgr
    p.qmgr.stop()
    p.configure(queue_directory=str(spool))
    p.start_qmgr()
    assert tree_modes(spool) == made_by_tmpfiles


def test_sysusers_accounts(tmp_path):
    """systemd-sysusers with the shipped file into an empty root: the system
    user and group postern (no login) and the group postern-admin."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = run(["systemd-sysusers", "--root=%s" % root, U.UNITS_SRC / "sysusers.d" / "postern.conf"])
    assert r.returncode == 0, r.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()}
    group = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/group").read_text().splitlines()}
    pw = passwd["postern"]
    assert int(pw[2]) < 1000 and pw[3] == group["postern"][2]
    assert pw[6] in ("/usr/sbin/nologin", "/sbin/nologin")
    assert int(group["postern-admin"][2]) < 1000


def test_meson_install_places_units(tmp_path):
    """meson install puts units, sysusers.d and tmpfiles.d where systemd
    reads them under the prefix, and each installed ExecStart= names a
    binary that the same install put there."""
    dest = tmp_path / "dest"
    r = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", dest])
    assert r.returncode == 0, r.stdout + r.stderr
    intro = json.loads(run(["meson", "introspect", "--buildoptions", BUILD]).stdout)
    opts = {o["name"]: o["value"] for o in intro}
    prefix = opts["prefix"]
    unitdir = opts["systemdsystemunitdir"] or subprocess.run(
        ["pkg-config", "--define-variable=root_prefix=" + prefix, "--variable=systemdsystemunitdir",
         "systemd"], capture_output=True, text=True).stdout.strip()
    for name in ALL_UNITS:
        path = Path(str(dest) + unitdir) / name
        assert path.exists(), "%s not installed in %s" % (name, unitdir)
        unit = U.parse_unit(path)
        if name.endswith(".service"):
            exe = U.exec_start_argv(unit)[0]
            assert exe.startswith(prefix + "/"), exe
            assert os.access(str(dest) + exe, os.X_OK), "%s: %s not installed" % (name, exe)
    for d in ("sysusers.d", "tmpfiles.d"):
        found = list(dest.rglob("%s/postern.conf" % d))
        assert len(found) == 1 and str(found[0]).startswith(str(dest) + prefix + "/"), found
    # the D-Bus parts: interface, policy, activation through systemd; polkit; completion
    share = Path(str(dest) + prefix) / "share"
    for rel in ("dbus-1/interfaces/org.postern.Mail1.xml", "dbus-1/system.d/org.postern.Mail1.conf",
                "dbus-1/system-services/org.postern.Mail1.service",
                "polkit-1/actions/org.postern.mail.policy", "bash-completion/completions/mailctl"):
        assert (share / rel).is_file(), rel
    activation = (share / "dbus-1/system-services/org.postern.Mail1.service").read_text()
    assert "\nName=org.postern.Mail1\n" in activation
    assert "\nSystemdService=postern-qmgr.service\n" in activation


def test_local_socket_unit_submission(postern, rendered):
    """postern-local.socket with postern-smtpd.socket, as systemd passes
    them to postern-smtpd.service (fds smtp and local): sendmail submits
    through the local one (its path moved into the test directory) and the
    mail is delivered with pickup's Received: line."""
    p = postern.configure()
    p.start_qmgr()
    d, listeners = socket_activate(p, ["postern-smtpd.socket", "postern-local.socket"],
                                   "postern-smtpd.service", rendered)
    assert [n for _, n in listeners] == ["smtp", "local"]
    local = listeners[1][0]
    os.chmod(local, 0o666)        # SocketMode=0666, as the unit says
    p.configure(local_submission_socket=local)
    sendmail = BUILD / "src" / "sendmail" / "sendmail"
    pw = pwd.getpwnam("mailtest2")
    r = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                        "--init-groups", "--", str(sendmail), "-t"],
                       input=b"To: mailtest@example.test\nSubject: via the local socket\n\nhi\n",
                       capture_output=True, env=p.env, timeout=DEFAULT_TIMEOUT, cwd="/")
    assert r.returncode == 0, r.stderr
    (msg,) = p.wait_mbox("mailtest")
    assert b"Return-Path: <mailtest2@" in msg
    assert re.search(rb"\nReceived: by mail\.example\.test \(Postern, from userid %d\)\n"
                     % pw.pw_uid, msg), msg
    assert b"Subject: via the local socket\n" in msg
