"""The system tier: the shipped units under a real systemd as PID 1.

One container (systemd-nspawn --volatile=yes, nspawn.py) is booted for the
module with the units rendered to run this build tree's daemons, the
shipped sysusers.d and tmpfiles.d files, a main.cf and aliases in
/etc/postern.  Inside it systemd-sysusers makes the postern account,
systemd-tmpfiles the queue, systemd binds port 25 and activates smtpd on
the first connection, journald collects the logs.  The tests then check
what an administrator would: systemctl status, a delivered mail, the
message's path in the journal, deliveries that need qmgr's capabilities
inside its sandbox, reloads that keep sessions, the watchdog.

Test-only changes to the units, all as drop-ins: ASAN_OPTIONS=detect_leaks=0
(LeakSanitizer stops the process's threads with ptrace(2), which the
units' SystemCallFilter= forbids by design; leaks are checked by the rest
of the suite).  The project's bus policy is bound into the container's
/etc/dbus-1/system.d, so qmgr runs as shipped, Type=dbus.
"""

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, DEFAULT_TIMEOUT, SANITIZER_MARKERS, parse_delivered
import nspawn
import units as U

ROOT = U.ROOT
PY = "/usr/bin/python3"
# Where the build tree appears inside the container: never under /tmp,
# which the units' PrivateTmp= hides from the services (a checkout under
# /tmp would make every ExecStart= fail with 203/EXEC).
CBUILD = Path("/opt/postern-build")

MAIN_CF = """\
# /etc/postern/main.cf of the system test container
myhostname = mail.example.test
mydestination = $myhostname, localhost, example.test
home_mailbox = Maildir/
alias_maps = hash:/etc/postern/aliases
alias_database = hash:/etc/postern/aliases
command_time_limit = 2s
"""

ALIASES = """\
postmaster: root
cmdok: "|/bin/sh -c 'cat >/dev/null'"
slow: "|/bin/sleep 30"
"""

# A raw SMTP client run in the container's network namespace: sends each
# step, collects each reply, can run a command mid-session ("exec").
SMTP_CLIENT = r'''
import json, socket, subprocess, sys
spec = json.loads(sys.argv[1])
s = socket.create_connection(("127.0.0.1", spec.get("port", 25)), timeout=20)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed after %r" % lines)
        assert line.endswith(b"\r\n"), line
        lines.append(line[:-2].decode())
        if len(line) < 6 or line[3:4] == b" ":
            return lines
out = [reply()]
for step in spec["steps"]:
    if "exec" in step:
        r = subprocess.run(step["exec"], capture_output=True, text=True, timeout=30)
        out.append({"exec": r.returncode, "output": r.stdout + r.stderr})
        continue
    s.sendall(step["send"].encode())
    out.append(reply())
print(json.dumps(out))
'''


def transaction(rcpt, subject, body="hello from the system tier\r\n"):
    return [{"send": "EHLO client.example.test\r\n"},
            {"send": "MAIL FROM:<sender@client.example.test>\r\n"},
            {"send": "RCPT TO:<%s>\r\n" % rcpt},
            {"send": "DATA\r\n"},
            {"send": "Subject: %s\r\n\r\n%s.\r\n" % (subject, body)}]


class System:
    def __init__(self, container, workdir):
        self.c = container
        self.workdir = workdir
        self.client = workdir / "smtp_client.py"
        self.client.write_text(SMTP_CLIENT)

    def smtp(self, steps, port=25):
        r = self.c.run_in_network(PY, self.client, json.dumps({"port": port, "steps": steps}))
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def send(self, rcpt, subject, body="hello from the system tier\r\n"):
        """One message; returns (greeting, queue id)."""
        out = self.smtp(transaction(rcpt, subject, body) + [{"send": "QUIT\r\n"}])
        for lines in out[1:5]:
            assert lines[-1][:1] in "23", out
        m = re.match(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", out[5][-1])
        assert m, out
        return out[0], m.group(1)

    def proc_status(self, unit):
        pid = self.c.show(unit, "MainPID")["MainPID"]
        assert pid != "0", "%s has no main process" % unit
        status = self.c.run("cat", "/proc/%s/status" % pid).stdout
        return int(pid), dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)

    def uid(self, user):
        for line in self.c.path("/etc/passwd").read_text().splitlines():
            f = line.split(":")
            if f[0] == user:
                return int(f[2]), int(f[3])
        raise AssertionError("no %s in the container's /etc/passwd" % user)

    def path_of(self, qid, timeout=DEFAULT_TIMEOUT, last="removed"):
        """The journal entries of one message, once its last line is there."""
        return self.c.wait_journal(
            lambda es: any(e.get("MESSAGE") == "%s: %s" % (qid, last) for e in es),
            "POSTERN_QUEUE_ID=%s" % qid, timeout=timeout)


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


@pytest.fixture(scope="module")
def system():
    for tool in (nspawn.NSPAWN, shutil.which("nsenter")):
        if not tool or not os.access(tool, os.X_OK):
            pytest.fail("systemd-nspawn/nsenter missing: apt-get install systemd-container")
    work = Path(tempfile.mkdtemp(prefix="postern-sys-", dir="/tmp"))
    os.chmod(work, 0o755)
    units = work / "units"
    U.render_units(units, U.build_binaries(CBUILD))
    write(units / "postern-test.target",
          "[Unit]\nDescription=Postern system test (boot only this)\n"
          "Wants=postern.target\nAfter=postern.target\n")
    for svc in U.SERVICES:
        write(units / (svc + ".d") / "50-test-sanitizer.conf",
              "# test only: LeakSanitizer needs ptrace(2), which SystemCallFilter= forbids\n"
              "[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0 "
              "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1\n")
    binds = [(units, "/etc/systemd/system"), (work / "sysusers.d", "/etc/sysusers.d"),
             (work / "tmpfiles.d", "/etc/tmpfiles.d"), (work / "postern", "/etc/postern"),
             (BUILD, CBUILD)]
    # qmgr is Type=dbus: the bus must let it own org.postern.Mail1
    pol = work / "dbus-system.d"
    pol.mkdir()
    shutil.copy(ROOT / "dbus" / "org.postern.Mail1.conf", pol / "org.postern.Mail1.conf")
    binds.append((pol, "/etc/dbus-1/system.d"))
    write(work / "sysusers.d" / "postern.conf",
          (U.UNITS_SRC / "sysusers.d" / "postern.conf").read_text())
    write(work / "sysusers.d" / "postern-test.conf",
          'u mailtest - "Postern test recipient" /home/mailtest /bin/sh\n')
    write(work / "tmpfiles.d" / "postern.conf",
          (U.UNITS_SRC / "tmpfiles.d" / "postern.conf").read_text())
    # Debian's base-files ships /var/mail; the tmpfs root has none
    write(work / "tmpfiles.d" / "postern-test.conf",
          "d /home 0755 root root -\nd /home/mailtest 0700 mailtest mailtest -\n"
          "d /var/mail 2775 root mail -\n")
    write(work / "postern" / "main.cf", MAIN_CF)
    write(work / "postern" / "aliases", ALIASES)

    c = nspawn.Container(work, "postern-%d" % os.getpid(), binds, "postern-test.target")
    failed = True
    try:
        state = c.boot()
        s = System(c, work)
        s.boot_state = state
        yield s
        failed = False
    finally:
        logs = ""
        if c.leader is not None and c.proc.poll() is None:
            r = c.run("journalctl", "--no-pager", "-o", "short-monotonic", "-u", "postern-*",
                      check=False)
            logs = r.stdout
        killed = c.stop()
        reports = [m for m in SANITIZER_MARKERS if m in logs]
        if not failed and not reports and not killed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            (work / "journal.txt").write_text(logs)
        assert not reports, "sanitizer report in the container's journal (kept %s):\n%s" % (
            work, logs[-8000:])
        assert not killed, "the container did not power off on SIGTERM (kept %s)" % work


def test_boot_and_status(system):
    """systemd boots the target; sysusers.d and tmpfiles.d made the account
    and the queue; qmgr runs bounded, the smtp socket listens and smtpd is
    not started before a client comes."""
    c = system.c
    failed = c.run("systemctl", "--failed", "--no-legend", "--plain").stdout
    assert system.boot_state == "running", failed
    assert c.boot_seconds < 20, c.boot_seconds
    st = c.run("systemctl", "status", "--no-pager", "postern-qmgr.service").stdout
    assert "Active: active (running)" in st, st
    assert 'Status: "Processing the queue"' in st, st
    st = c.run("systemctl", "status", "--no-pager", "postern-smtpd.socket").stdout
    assert "Active: active (listening)" in st and "Listen: [::]:25 (Stream)" in st, st
    assert c.show("postern-smtpd.service", "ActiveState")["ActiveState"] == "inactive"

    uid, gid = system.uid("postern")
    assert uid < 1000
    spool = c.path("/var/spool/postern")
    st = os.stat(spool)
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755)
    for d, owner, mode in (("incoming", uid, 0o730), ("recycle", uid, 0o730),
                           ("deferred", 0, 0o700), ("hold", 0, 0o700), ("active", 0, 0o700),
                           ("corrupt", 0, 0o700)):
        st = os.stat(spool / d)
        assert (st.st_uid, st.st_mode & 0o7777) == (owner, mode), d

    _, q = system.proc_status("postern-qmgr.service")
    assert q["Uid"].split() == ["0"] * 4
    assert q["CapBnd"] == "00000000000000eb", q["CapBnd"]   # CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID
    assert q["NoNewPrivs"] == "1" and q["Seccomp"] == "2"
    # qmgr is Type=dbus: systemd saw it take org.postern.Mail1 on the
    # container's system bus, where mailctl finds it and systemd's units
    st = c.run(str(CBUILD / "src" / "mailctl" / "mailctl"), "status").stdout
    assert re.match(r"^postern-qmgr \S+, running since ", st), st
    assert re.search(r"^postern-qmgr\.service +active \(running\)$", st, re.M), st
    assert re.search(r"^postern-smtpd\.socket +active \(listening\)$", st, re.M), st
    r = c.run(str(CBUILD / "src" / "mailctl" / "mailctl"), "--json", "status")
    assert json.loads(r.stdout.splitlines()[0])["units"]["postern-qmgr.service"] == \
        "active (running)", r.stdout


def test_socket_activated_delivery_and_journal(system):
    """The first connection makes systemd start smtpd (as postern, no
    capabilities, seccomp); the mail lands in the user's Maildir; the
    journal holds the message's whole path with its fields."""
    c = system.c
    greeting, qid = system.send("mailtest@example.test", "system tier")
    assert greeting == ["220 mail.example.test ESMTP Postern"]
    st = c.run("systemctl", "status", "--no-pager", "postern-smtpd.service").stdout
    assert "Active: active (running)" in st, st
    # started by its sockets: port 25 and sendmail's local socket
    trig = re.search(r"TriggeredBy: (.*?)\n +Docs:", st, re.S)
    assert trig and sorted(re.findall(r"● (\S+)", trig.group(1))) == [
        "postern-local.socket", "postern-smtpd.socket"], st
    assert 'Status: "Accepting connections"' in st, st
    _, s = system.proc_status("postern-smtpd.service")
    uid, gid = system.uid("postern")
    assert s["Uid"].split() == [str(uid)] * 4 and s["Gid"].split() == [str(gid)] * 4
    assert s["CapEff"] == s["CapPrm"] == s["CapBnd"] == "0000000000000000"
    assert s["NoNewPrivs"] == "1" and s["Seccomp"] == "2"

    entries = system.path_of(qid)
    new = c.path("/home/mailtest/Maildir/new")
    (msg,) = list(new.iterdir())
    muid, mgid = system.uid("mailtest")
    assert (msg.stat().st_uid, msg.stat().st_gid) == (muid, mgid)
    _, headers, received, rest = parse_delivered(msg.read_bytes(), mbox=False)
    assert headers == ["Return-Path: <sender@client.example.test>",
                       "X-Original-To: mailtest@example.test",
                       "Delivered-To: mailtest@example.test"]
    assert rest == b"Subject: system tier\n\nhello from the system tier\n"

    # Each service's lines in order; smtpd's "(queued)" and qmgr's lines
    # may interleave (qmgr sees the committed file by
    # inotify while smtpd's loop learns of the commit from its worker).
    def lines(unit, ident):
        return [(e, e["MESSAGE"][len(qid) + 2:]) for e in entries
                if e["_SYSTEMD_UNIT"] == unit and e["SYSLOG_IDENTIFIER"] == ident]
    smtpd = lines("postern-smtpd.service", "postern-smtpd")
    qmgr = lines("postern-qmgr.service", "postern-qmgr")
    assert len(smtpd) + len(qmgr) == len(entries), [e["MESSAGE"] for e in entries]
    # the first line is smtpd's; smtpd's "(queued)" may even come after
    # qmgr's "removed" (its loop logs once the commit thread reports back)
    assert entries[0] is smtpd[0][0]
    size = os.path.getsize(msg) - len(b"Return-Path: <sender@client.example.test>\n"
                                      b"X-Original-To: mailtest@example.test\n"
                                      b"Delivered-To: mailtest@example.test\n")
    assert [t for _, t in smtpd] == [
        "client=unknown[127.0.0.1]",
        "from=<sender@client.example.test>, size=%d, nrcpt=1 (queued)" % size]
    assert [t for _, t in qmgr][0] == (
        "from=<sender@client.example.test>, size=%d, nrcpt=1 (queue active)" % size)
    assert re.match(r"^to=<mailtest@example\.test>, relay=local, delay=[0-9.]+, "
                    r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, "
                    r"status=sent \(delivered to maildir\)$", qmgr[1][1]), qmgr[1][1]
    assert [t for _, t in qmgr][2:] == ["removed"]
    for e in entries:
        assert e["POSTERN_QUEUE_ID"] == qid and e["PRIORITY"] == "6", e
        assert e["_TRANSPORT"] == "journal", e          # native entries, not stderr lines
    assert smtpd[0][0]["POSTERN_CLIENT"] == smtpd[1][0]["POSTERN_CLIENT"] == "unknown[127.0.0.1]"
    assert smtpd[1][0]["POSTERN_SENDER"] == qmgr[0][0]["POSTERN_SENDER"] == (
        "sender@client.example.test")
    d = qmgr[1][0]
    assert (d["POSTERN_RECIPIENT"], d["POSTERN_STATUS"], d["POSTERN_RELAY"]) == (
        "mailtest@example.test", "sent", "local")
    assert re.match(r"^\d+(\.\d+)?$", d["POSTERN_DELAY"]), d
    # the same lookup an administrator types
    r = c.run("journalctl", "--no-pager", "-o", "cat", "POSTERN_QUEUE_ID=%s" % qid)
    assert r.stdout.splitlines() == [e["MESSAGE"] for e in entries]


def test_command_aliases_in_the_sandbox(system):
    """|command aliases run inside qmgr's sandbox as default_privs: one is
    delivered, one over command_time_limit is killed (CAP_KILL: it runs as
    another user) and deferred (CAP_FOWNER: the retry time is the mtime of
    a file that belongs to postern)."""
    c = system.c
    _, ok = system.send("cmdok@example.test", "command")
    entries = system.path_of(ok)
    assert any(re.search(r"to=<cmdok@example\.test>, .*status=sent \(delivered to command: "
                         r"/bin/sh -c 'cat >/dev/null'\)$", e["MESSAGE"]) for e in entries), entries
    t0 = time.monotonic()
    _, slow = system.send("slow@example.test", "slow command")
    entries = c.wait_journal(lambda es: any("status=deferred" in e["MESSAGE"] for e in es),
                             "POSTERN_QUEUE_ID=%s" % slow, timeout=DEFAULT_TIMEOUT)
    assert time.monotonic() - t0 < DEFAULT_TIMEOUT
    d = [e for e in entries if "status=deferred" in e["MESSAGE"]][0]
    assert d["MESSAGE"].endswith('dsn=4.3.0, status=deferred (Command time limit exceeded: '
                                 '"/bin/sleep 30")'), d["MESSAGE"]
    assert d["POSTERN_STATUS"] == "deferred"
    assert c.run("pgrep", "-x", "sleep", check=False).returncode == 1   # killed, not left over
    deferred = c.path("/var/spool/postern/deferred") / slow
    assert deferred.exists()
    assert deferred.stat().st_mtime > time.time()    # the next retry time


def test_reload_keeps_sessions(system):
    """systemctl reload: smtpd re-reads main.cf with a session open, which
    completes; the next session sees the new banner; qmgr's new
    home_mailbox (mbox in /var/mail, created as root and chowned to the
    user) applies to the next delivery.  Neither main PID changes."""
    c = system.c
    smtpd_pid, _ = system.proc_status("postern-smtpd.service")
    qmgr_pid, _ = system.proc_status("postern-qmgr.service")
    main_cf = system.workdir / "postern" / "main.cf"
    write(main_cf, MAIN_CF.replace("home_mailbox = Maildir/\n", "") +
          "smtpd_banner = $myhostname ESMTP reloaded\n")
    reload = ["nsenter", "-t", str(c.leader), "-a", "systemctl", "reload",
              "postern-smtpd.service", "postern-qmgr.service"]
    steps = transaction("mailtest@example.test", "across a reload")
    out = system.smtp(steps[:2] + [{"exec": reload}] + steps[2:] + [{"send": "QUIT\r\n"}])
    assert out[0] == ["220 mail.example.test ESMTP Postern"]
    assert out[3] == {"exec": 0, "output": ""}, out[3]
    m = re.match(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", out[6][-1])
    assert m, out
    qid = m.group(1)
    for unit, text in (("postern-smtpd.service", "reloaded configuration from /etc/postern"),
                       ("postern-qmgr.service", "reload -- configuration /etc/postern")):
        c.wait_journal(lambda es: any(e["MESSAGE"] == text for e in es), "_SYSTEMD_UNIT=%s" % unit)
    greeting, _ = system.send("mailtest@example.test", "after the reload")
    assert greeting == ["220 mail.example.test ESMTP reloaded"]
    system.path_of(qid)
    mbox = c.path("/var/mail/mailtest")
    data = mbox.read_bytes()
    assert b"\nSubject: across a reload\n" in data
    muid, _ = system.uid("mailtest")
    st = mbox.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (muid, 0o600)
    assert system.proc_status("postern-smtpd.service")[0] == smtpd_pid
    assert system.proc_status("postern-qmgr.service")[0] == qmgr_pid


@pytest.mark.parametrize("unit", ["postern-qmgr.service", "postern-smtpd.service"])
def test_watchdog_restarts_a_stopped_loop(system, unit):
    """With WatchdogSec=2s (a runtime drop-in), a daemon whose event loop
    stops (SIGSTOP) misses its pings; systemd logs the watchdog timeout,
    kills it and Restart=on-failure starts a new one that works (smtpd
    keeps its port: systemd holds the socket)."""
    c = system.c
    dropin = c.path("/run/systemd/system/%s.d/60-test-watchdog.conf" % unit)
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Service]\nWatchdogSec=2s\n")
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "restart", unit)
    p = c.show(unit, "WatchdogUSec", "MainPID", "NRestarts")
    assert p["WatchdogUSec"] == "2s"
    time.sleep(3.5)                    # longer than WatchdogSec: only the pings keep it alive
    q = c.show(unit, "ActiveState", "MainPID", "NRestarts")
    assert (q["ActiveState"], q["MainPID"], q["NRestarts"]) == ("active", p["MainPID"],
                                                               p["NRestarts"]), (p, q)
    old = int(p["MainPID"])
    c.run("systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", unit)
    c.wait_journal(lambda es: any(e.get("MESSAGE") == "%s: Watchdog timeout (limit 2s)!" % unit
                                  for e in es), "-u", unit, timeout=15)
    deadline = time.monotonic() + 15
    while True:
        p = c.show(unit, "MainPID", "ActiveState", "NRestarts")
        if p["ActiveState"] == "active" and p["MainPID"] not in ("0", str(old)):
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.1)
    assert int(p["NRestarts"]) == int(q["NRestarts"]) + 1
    _, qid = system.send("mailtest@example.test", "after the watchdog")
    system.path_of(qid)
