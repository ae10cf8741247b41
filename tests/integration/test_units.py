"""The shipped systemd units, checked offline and run the way they say.

- systemd-analyze verify on every unit (rendered with ExecStart= pointing at
  this build tree), and a broken copy must fail, so the check can fail;
- systemd-analyze security --offline=yes: each service at or below its
  exposure limit, and the scores docs/systemd.md states are the real ones;
- socket activation with systemd-socket-activate, using the ListenStream=
  and FileDescriptorName= values of the .socket files (on ephemeral
  loopback ports) and the services' ExecStart=, User=, Group= and UMask=:
  the smtp service greets and delivers, the submission service applies its
  -o overrides;
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
import time
from pathlib import Path

import pytest

from conftest import (BUILD, DEFAULT_TIMEOUT, ROOT, Daemon, NotifySocket, RawSmtp, free_port,
                      parse_delivered)
import units as U

# Exposure limits (systemd-analyze security, 0.0 best .. 10.0 worst).
EXPOSURE_LIMIT = {
    "postern-smtpd.service": 3.0,
    "postern-submission.service": 3.0,
    "postern-qmgr.service": 3.0,
}


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.fixture
def rendered(tmp_path):
    return U.render_units(tmp_path / "units", U.build_binaries(BUILD))


# ---------------------------------------------------------------- offline checks

def test_verify_clean(rendered):
    """Every unit loads without a single complaint, with its dependencies."""
    r = run(["systemd-analyze", "verify", "--man=no", *rendered.values()])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_verify_catches_a_missing_binary(tmp_path):
    """The check above can fail: a unit whose ExecStart= binary does not
    exist (the installed path before installation) is rejected."""
    bins = {k: tmp_path / "nowhere" / k for k in U.build_binaries(BUILD)}
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
                             else U.UNITS_SRC / n) for n in U.ALL_UNITS}
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
    for s in U.SOCKETS:
        assert v(units[s], "Socket", "Accept", "no") == "no"   # one process, every session
    assert v(units["postern-smtps.socket"], "Socket", "Service") == "postern-submission.service"
    # submission is opt-in, as in Postfix's master.cf
    wants = " ".join(units["postern.target"]["Unit"]["Wants"]).split()
    assert wants == ["postern-qmgr.service", "postern-smtpd.socket", "postern-local.socket"]


# ---------------------------------------------------------------- as the units run them

def unit_exec_argv(service):
    """ExecStart= wrapped the way systemd would run it here: User=/Group=
    with the user's groups (setpriv), UMask=."""
    argv = U.exec_start_argv(service)
    user = U.unit_value(service, "Service", "User")
    group = U.unit_value(service, "Service", "Group", user)
    umask = U.unit_value(service, "Service", "UMask", "0022")
    wrap = ["/bin/sh", "-c", 'umask %s && exec "$0" "$@"' % umask]
    if user:
        wrap += ["setpriv", "--reuid=%s" % user, "--regid=%s" % group, "--init-groups", "--"]
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
    for name in U.ALL_UNITS:
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
