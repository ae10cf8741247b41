"""The D-Bus API org.postern.Mail1 (postern-qmgr) and mailctl, against a
private system bus with a real polkitd (dbus_fixture.py): every method
through mailctl and through busctl/gdbus, authorization for root, an
unprivileged user and a member of the example rules' group, the queue
operations while deliveries run, signals, and a bus that comes and goes."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT, ROOT
from dbus_fixture import (ADMIN_USER, BUS_NAME, BUS_PATH, IFACE_MANAGER, IFACE_QUEUE, MAILCTL,
                          PLAIN_USER, mailbus, wait_for)  # noqa: F401 (mailbus is a fixture)

SENDER = "sender@client.example.test"
NO_SUCH_ID = "0123456789ABCDEF01"
ACCESS_DENIED = "GDBus.Error:org.freedesktop.DBus.Error.AccessDenied"


# ---------------------------------------------------------------- helpers

@pytest.fixture
def outdir():
    """Where |command aliases (run as nobody) write."""
    d = Path(tempfile.mkdtemp(prefix="postern-test-out-", dir="/tmp"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def send_id(p, to, subject="test", body="hello\r\n"):
    """Sends one message; returns its queue id from the 250 reply."""
    if isinstance(to, str):
        to = [to]
    with p.smtp() as s:
        s.ehlo()
        code, _ = s.mail(SENDER)
        assert code == 250
        for rcpt in to:
            code, msg = s.rcpt(rcpt)
            assert code == 250, msg
        code, msg = s.data(("From: <%s>\r\nSubject: %s\r\n\r\n%s" % (SENDER, subject, body)).encode())
        assert code == 250, msg
    m = re.match(r"^2\.0\.0 Ok: queued as (\S+)$", msg.decode())
    assert m, msg
    return m.group(1)


def queue_json(mb, *args, user=None):
    r = mb.mailctl("queue", "list", "--json", *args, user=user)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def find(entries, qid):
    got = [e for e in entries if e["id"] == qid]
    return got[0] if got else None


def wait_queue_state(mb, qid, queue, timeout=DEFAULT_TIMEOUT):
    return wait_for(lambda: (find(queue_json(mb), qid) or {}).get("queue") == queue and
                    find(queue_json(mb), qid), "%s in %s" % (qid, queue), timeout)


def dbus_error(result):
    """The D-Bus error name in gdbus's stderr."""
    m = re.search(r"GDBus\.Error:([\w.]+):", result.stderr)
    return m.group(1) if m else None


def flaky_alias(outdir, name="flaky"):
    """A |command that fails temporarily (EX_TEMPFAIL) until outdir/ok exists."""
    return ('%s: "|test -e %s/ok || exit 75; cat > %s/%s.out"\n' % (name, outdir, outdir, name))


def slow_alias(outdir, name="slow", seconds=3):
    return ('%s: "|touch %s/%s.started; sleep %d; cat > %s/%s.out"\n'
            % (name, outdir, name, seconds, outdir, name))


class Watch:
    """mailctl watch in the background; lines collected by a thread."""

    def __init__(self, mb, *args, user=None):
        argv = [str(MAILCTL), "watch", *args]
        if user:
            argv = ["setpriv", "--reuid=%s" % user, "--regid=%s" % user, "--init-groups"] + argv
        self.proc = subprocess.Popen(argv, env=mb.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        self.lines, self.err = [], []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True).start()
        wait_for(lambda: any("watching" in line for line in self.err) or self.proc.poll() is not None,
                 "mailctl watch to subscribe")
        assert self.proc.poll() is None, "".join(self.err)

    @staticmethod
    def _read(stream, out):
        for line in stream:
            out.append(line)

    def wait(self, pattern, timeout=DEFAULT_TIMEOUT):
        return wait_for(lambda: [ln for ln in self.lines if re.search(pattern, ln)],
                        "a watch line matching %r (have %r)" % (pattern, self.lines), timeout)

    def stop(self):
        """SIGTERM: mailctl watch exits 0, without a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(DEFAULT_TIMEOUT)
        time.sleep(0.1)
        err = "".join(self.err)
        assert "Sanitizer" not in err and "runtime error" not in err, err
        assert rc == 0, (rc, err)
        return rc


def xml_interfaces():
    """{interface: {"method": {name: [(arg, type, direction)]}, "property": {...}, "signal": {...}}}"""
    tree = ET.parse(ROOT / "dbus" / "org.postern.Mail1.xml")
    out = {}
    for iface in tree.getroot().iter("interface"):
        d = {"method": {}, "property": {}, "signal": {}}
        for kind in d:
            for el in iface.iter(kind):
                d[kind][el.get("name")] = [(a.get("name"), a.get("type"), a.get("direction"))
                                           for a in el.iter("arg")] if kind != "property" \
                    else (el.get("type"), el.get("access"))
        out[iface.get("name")] = d
    return out


# ---------------------------------------------------------------- the interface

def test_xml_documents_every_member():
    """Every interface, method, argument, property and signal of the XML has
    a gdbus-codegen doc comment, and the XML holds the DESIGN.md contract."""
    text = (ROOT / "dbus" / "org.postern.Mail1.xml").read_text()
    ifaces = xml_interfaces()
    assert set(ifaces) == {IFACE_MANAGER, IFACE_QUEUE}
    comments = re.findall(r"<!--(.*?)-->", text, re.S)
    headers = {m.group(1) for c in comments for m in [re.match(r"\s*([\w.]+):\s*\n", c)] if m}
    args = {m for c in comments for m in re.findall(r"@([\w-]+):", c)}
    for name, members in ifaces.items():
        assert name in headers, name
        for kind in ("method", "property", "signal"):
            for member, margs in members[kind].items():
                assert member in headers, "%s.%s has no doc comment" % (name, member)
                if kind != "property":
                    for arg, _, _ in margs:
                        assert arg in args, "%s.%s: argument %s undocumented" % (name, member, arg)
    m, q = ifaces[IFACE_MANAGER], ifaces[IFACE_QUEUE]
    assert m["property"] == {"Version": ("s", "read"), "StartedAt": ("t", "read"),
                             "QueueCounts": ("a{su}", "read"), "Counters": ("a{st}", "read")}
    assert set(m["method"]) == {"GetParameters", "SetParameters", "CheckConfiguration", "Reload",
                                "RebuildTable", "RebuildAliases"}
    assert m["method"]["GetParameters"] == [("names", "as", "in"), ("which", "s", "in"),
                                            ("parameters", "a{ss}", "out")]
    assert m["method"]["SetParameters"] == [("parameters", "a{ss}", "in")]
    assert m["method"]["CheckConfiguration"] == [("problems", "as", "out")]
    assert set(m["signal"]) == {"ConfigurationChanged"}
    assert q["method"]["ListMessages"] == [("filter", "a{sv}", "in"), ("messages", "aa{sv}", "out")]
    assert q["method"]["GetMessage"] == [("id", "s", "in"), ("message", "a{sv}", "out")]
    for name in ("DeleteMessages", "HoldMessages", "ReleaseMessages", "RequeueMessages"):
        assert q["method"][name][0] == ("ids", "as", "in"), name
    assert q["method"]["Flush"] == []
    assert set(q["signal"]) == {"MessageQueued", "MessageDelivered", "MessageDeferred",
                                "MessageBounced"}
    for e in ("NoSuchMessage", "InvalidParameter", "InvalidValue", "TableError"):
        assert "org.postern.Mail1.Error." + e in text


def test_introspection_matches_xml(postern, mailbus):
    """The running service exports exactly the interface of the XML."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    r = mailbus.run(["gdbus", "introspect", "--system", "--xml", "--dest", BUS_NAME,
                     "--object-path", BUS_PATH], user=PLAIN_USER)
    assert r.returncode == 0, r.stderr
    live = ET.fromstring(r.stdout)
    for name, members in xml_interfaces().items():
        iface = [i for i in live.iter("interface") if i.get("name") == name]
        assert iface, name
        for kind in ("method", "property", "signal"):
            got = {el.get("name") for el in iface[0].iter(kind)}
            assert got == set(members[kind]), (name, kind, got)


def test_properties_are_public(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    before = time.time()
    r = mailbus.busctl("get-property", BUS_NAME, BUS_PATH, IFACE_MANAGER, "Version", user=PLAIN_USER)
    assert r.returncode == 0 and r.stdout.strip() == 's "0.1.0"', (r.stdout, r.stderr)
    r = mailbus.busctl("get-property", BUS_NAME, BUS_PATH, IFACE_MANAGER, "StartedAt", user=PLAIN_USER)
    started = int(r.stdout.split()[1]) / 1e6
    assert before - 30 < started <= before, started
    # a delivery moves the counters, and QueueCounts is recounted
    postern.send("mailtest@example.test")
    postern.wait_mbox("mailtest")
    wait_for(lambda: "\"delivered\" 1" in mailbus.busctl(
        "get-property", BUS_NAME, BUS_PATH, IFACE_MANAGER, "Counters", user=PLAIN_USER).stdout,
        "Counters delivered 1")
    r = mailbus.gdbus_call("org.freedesktop.DBus.Properties", "GetAll", IFACE_MANAGER, user=PLAIN_USER)
    assert r.returncode == 0, r.stderr
    assert "'Counters': <{'received': uint64 1, 'delivered': 1, 'deferred': 0, 'bounced': 0}>" \
        in r.stdout, r.stdout
    # "rejected" is smtpd's, unknown here: absent, not zero
    assert "rejected" not in r.stdout
    assert re.search(r"'QueueCounts': <\{'incoming': uint32 0, 'active': 0, 'deferred': 0, "
                     r"'hold': 0, 'corrupt': 0\}>", r.stdout), r.stdout
    # mailctl status shows the same, without any authorization
    r = mailbus.mailctl("status", user=PLAIN_USER)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"^postern-qmgr 0\.1\.0, running since \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$",
                    lines[0]), lines[0]
    assert lines[1] == "Queue: incoming 0 active 0 deferred 0 hold 0 corrupt 0"
    assert lines[2] == "Counters: received 1 delivered 1 deferred 0 bounced 0"
    # no systemd on this bus: each unit's state is unknown
    assert lines[3:] == ["postern-qmgr.service   unknown", "postern-smtpd.socket   unknown",
                         "postern-smtpd.service  unknown"]
    s = json.loads(mailbus.mailctl("status", "--json").stdout)
    assert s["version"] == "0.1.0" and s["counters"]["delivered"] == 1
    assert s["queue"] == {"incoming": 0, "active": 0, "deferred": 0, "hold": 0, "corrupt": 0}
    assert s["units"]["postern-qmgr.service"] == "unknown"


def test_properties_changed_is_emitted_at_most_once_a_second(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    mon = subprocess.Popen(["gdbus", "monitor", "--system", "--dest", BUS_NAME, "--object-path",
                            BUS_PATH], env=mailbus.env(), stdout=subprocess.PIPE, text=True)
    lines = []
    threading.Thread(target=lambda: [lines.append((time.monotonic(), ln)) for ln in mon.stdout],
                     daemon=True).start()

    def changed():
        return [(t, ln) for t, ln in lines if "PropertiesChanged" in ln and "'Counters'" in ln]

    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        for i in range(10):
            postern.send("mailtest@example.test", subject="burst %d" % i)
        postern.wait_mbox("mailtest", 10)
        wait_for(lambda: [ln for _, ln in changed() if "'delivered': 10" in ln],
                 "PropertiesChanged with delivered 10 (have %r)" % lines)
        got = changed()
        span = got[-1][0] - t0
        # one batch per tick: never more signals than seconds (plus the first)
        assert len(got) <= span + 2, (len(got), span, got)
        for (t1, _), (t2, _) in zip(got, got[1:]):
            assert t2 - t1 > 0.5, got
    finally:
        mon.terminate()
        mon.wait(DEFAULT_TIMEOUT)


def test_bus_policy(postern, mailbus):
    """dbus/org.postern.Mail1.conf: only root may own the name; others reach
    the daemon (which then asks polkit), but not Properties.Set."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    r = mailbus.run(["gdbus", "call", "--system", "--dest", "org.freedesktop.DBus", "--object-path",
                     "/org/freedesktop/DBus", "--method", "org.freedesktop.DBus.RequestName",
                     BUS_NAME, "4"], user=PLAIN_USER)
    assert dbus_error(r) == "org.freedesktop.DBus.Error.AccessDenied", r.stderr
    assert "not allowed to own the service" in r.stderr, r.stderr
    r = mailbus.gdbus_call("org.freedesktop.DBus.Properties", "Set", IFACE_MANAGER, "Version",
                           "<'9'>", user=PLAIN_USER)
    assert dbus_error(r) == "org.freedesktop.DBus.Error.AccessDenied", r.stderr
    assert "Rejected send message" in r.stderr, r.stderr
    r = mailbus.gdbus_call("org.freedesktop.DBus.Peer", "Ping", user=PLAIN_USER)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- authorization

# (interface, method, gdbus arguments): valid arguments, so that only
# authorization can refuse.
EVERY_METHOD = [
    (IFACE_QUEUE, "ListMessages", ["{}"]),
    (IFACE_QUEUE, "StreamMessages", ["{}"]),
    (IFACE_QUEUE, "GetMessage", ["'%s'" % NO_SUCH_ID]),
    (IFACE_QUEUE, "DeleteMessages", ["['%s']" % NO_SUCH_ID]),
    (IFACE_QUEUE, "HoldMessages", ["['%s']" % NO_SUCH_ID]),
    (IFACE_QUEUE, "ReleaseMessages", ["['%s']" % NO_SUCH_ID]),
    (IFACE_QUEUE, "RequeueMessages", ["['ALL']"]),
    (IFACE_QUEUE, "Flush", []),
    (IFACE_MANAGER, "GetParameters", ["['myhostname']", "'effective'"]),
    (IFACE_MANAGER, "SetParameters", ["{'myhostname': 'mx.example.test'}"]),
    (IFACE_MANAGER, "CheckConfiguration", []),
    (IFACE_MANAGER, "Reload", []),
    (IFACE_MANAGER, "RebuildTable", ["'hash:/etc/aliases'"]),
    (IFACE_MANAGER, "RebuildAliases", []),
]


def test_unprivileged_user_is_denied_everything(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    qid = send_id(postern, "mailtest@example.test")
    postern.wait_mbox("mailtest")
    for iface, method, args in EVERY_METHOD:
        r = mailbus.gdbus_call(iface, method, *args, user=PLAIN_USER)
        assert r.returncode != 0 and dbus_error(r) == "org.freedesktop.DBus.Error.AccessDenied", \
            (method, r.stdout, r.stderr)
        assert "org.postern.mail." in r.stderr, r.stderr
    # busctl too, and the denial is logged
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_QUEUE, "Flush", user=PLAIN_USER)
    assert r.returncode != 0 and "Access denied" in r.stderr, r.stderr
    postern.qmgr.wait_log(r"D-Bus: Flush denied to uid %d \(:\S+\): org\.postern\.mail\.manage-queue"
                          % __import__("pwd").getpwnam(PLAIN_USER).pw_uid)
    # mailctl: exit 1 and a clear message; the queue was not touched
    for args in (("queue", "list"), ("queue", "show", qid), ("queue", "delete", "ALL"),
                 ("queue", "hold", "ALL"), ("queue", "release", "ALL"), ("queue", "requeue", "ALL"),
                 ("queue", "flush"), ("config", "get", "myhostname"), ("config", "list"),
                 ("reload",)):
        r = mailbus.mailctl(*args, user=PLAIN_USER)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert r.stderr.startswith("mailctl: access denied: "), r.stderr
    assert "reload" not in postern.qmgr.log()


def test_root_and_admin_group_are_allowed(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    for user in (None, ADMIN_USER):
        for iface, method, args in EVERY_METHOD:
            r = mailbus.gdbus_call(iface, method, *args, user=user)
            assert dbus_error(r) != "org.freedesktop.DBus.Error.AccessDenied", \
                (user, method, r.stderr)
        r = mailbus.mailctl("queue", "list", user=user)
        assert r.returncode == 0 and r.stdout == "Mail queue is empty\n", (r.stdout, r.stderr)


def test_interactive_authorization_flag_reaches_polkit(postern, mailbus):
    """Without the flag the caller learns that authentication would help;
    with it (ALLOW_INTERACTIVE_AUTHORIZATION -> AllowUserInteraction) polkit
    looks for an agent, and with none registered the answer says so."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    code = r"""
import sys
from gi.repository import Gio, GLib
bus = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
flags = Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION if sys.argv[2] == "yes" else Gio.DBusCallFlags.NONE
try:
    bus.call_sync("org.postern.Mail1", "/org/postern/Mail1", "org.postern.Mail1.Queue", "Flush",
                  None, None, flags, 10000, None)
    print("allowed")
except GLib.Error as e:
    print(e.message)
"""
    plain = mailbus.run(["/usr/bin/python3", "-c", code, mailbus.address, "no"], user=PLAIN_USER)
    inter = mailbus.run(["/usr/bin/python3", "-c", code, mailbus.address, "yes"], user=PLAIN_USER)
    assert plain.stdout.strip() == (ACCESS_DENIED + ": Interactive authentication required for "
                                    "org.postern.mail.manage-queue"), plain
    assert inter.stdout.strip() == (ACCESS_DENIED + ": Access denied: org.postern.mail.manage-queue "
                                    "needs authentication and no polkit authentication agent "
                                    "answered"), inter
    admin = mailbus.run(["/usr/bin/python3", "-c", code, mailbus.address, "no"], user=ADMIN_USER)
    assert admin.stdout.strip() == "allowed", admin


def mailctl_on_pty(mb, *args, user=None, env=None, timeout=DEFAULT_TIMEOUT * 3):
    """mailctl with a terminal as standard input (an administrator at a
    shell), as user; returns the CompletedProcess."""
    import pty
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    argv = [str(MAILCTL), *args]
    if user is not None:
        argv = ["setpriv", "--reuid=%s" % user, "--regid=%s" % user, "--init-groups"] + argv

    def controlling_tty():
        os.setsid()
        os.close(os.open(name, os.O_RDWR))     # the first tty a session leader opens
    try:
        return subprocess.run(argv, env=dict(mb.env(), **(env or {})), stdin=slave,
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=controlling_tty)
    finally:
        os.close(slave)
        os.close(master)


def test_mailctl_starts_a_polkit_agent_at_a_terminal(postern, mailbus, outdir):
    """As systemctl: at a terminal, a caller other than root gets pkttyagent
    --notify-fd 3 --fallback as a child while mailctl runs (so polkit's
    auth_admin_keep can ask for the password), and it is gone afterwards;
    not for root, not with --no-ask-password, not without a terminal."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    agent = outdir / "agent"
    agent.write_text('#!/bin/sh\necho "$@" > %s/agent.args\necho $$ > %s/agent.pid\n'
                     'exec 3>&-\nexec sleep 60\n' % (outdir, outdir))
    agent.chmod(0o755)
    env = {"MAILCTL_POLKIT_AGENT": str(agent)}
    r = mailctl_on_pty(mailbus, "queue", "list", user=ADMIN_USER, env=env)
    assert r.returncode == 0 and r.stdout == "Mail queue is empty\n", r.stderr
    assert (outdir / "agent.args").read_text() == "--notify-fd 3 --fallback\n"
    pid = int((outdir / "agent.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)     # stopped and reaped when mailctl ended
    for f in ("agent.args", "agent.pid"):
        (outdir / f).unlink()
    for who, args in ((None, ["queue", "list"]), (ADMIN_USER, ["--no-ask-password", "queue", "list"])):
        r = mailctl_on_pty(mailbus, *args, user=who, env=env)
        assert r.returncode == 0, r.stderr
    r = mailbus.run([MAILCTL, "queue", "list"], user=ADMIN_USER)   # no terminal
    assert r.returncode == 0
    assert not (outdir / "agent.args").exists()
    # the real pkttyagent: with no login session to register for, it gives
    # up, and the call goes on to a clear denial instead of hanging
    t0 = time.monotonic()
    r = mailctl_on_pty(mailbus, "queue", "flush", user=PLAIN_USER)
    assert r.returncode == 1 and r.stderr.startswith("mailctl: access denied: "), r.stderr
    assert time.monotonic() - t0 < 15


def test_without_polkit_only_root_is_allowed(postern, mailbus):
    mailbus.start_bus()        # no polkitd on this bus
    postern.start()
    mailbus.wait_owner()
    r = mailbus.mailctl("queue", "list")
    assert r.returncode == 0 and r.stdout == "Mail queue is empty\n", r.stderr
    r = mailbus.mailctl("queue", "list", user=ADMIN_USER)
    assert r.returncode == 1 and "access denied: Access denied: cannot ask polkit" in r.stderr, r.stderr


# ---------------------------------------------------------------- validation and errors

def test_unknown_and_malformed_ids(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    for method in ("DeleteMessages", "HoldMessages", "ReleaseMessages", "RequeueMessages"):
        r = mailbus.gdbus_call(IFACE_QUEUE, method, "['%s']" % NO_SUCH_ID)
        assert dbus_error(r) == "org.postern.Mail1.Error.NoSuchMessage", (method, r.stderr)
        assert "No message %s in the queue" % NO_SUCH_ID in r.stderr
        for bad in ("['../../etc/passwd']", "[]", "['ALL', '%s']" % NO_SUCH_ID):
            r = mailbus.gdbus_call(IFACE_QUEUE, method, bad)
            assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs", (method, bad, r.stderr)
    r = mailbus.gdbus_call(IFACE_QUEUE, "GetMessage", "'%s'" % NO_SUCH_ID)
    assert dbus_error(r) == "org.postern.Mail1.Error.NoSuchMessage", r.stderr
    # validation comes before authorization: a malformed id is InvalidArgs for anyone
    r = mailbus.gdbus_call(IFACE_QUEUE, "GetMessage", "'x/y'", user=PLAIN_USER)
    assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs", r.stderr
    for bad, why in (("{'colour': <'red'>}", "Unknown filter key \"colour\""),
                     ("{'queue': <'maildrop'>}", "Unknown queue \"maildrop\""),
                     ("{'min-age': <'old'>}", "wants an integer"),
                     ("{'min-age': <int32 -5>}", "must not be negative"),
                     ("{'sender': <uint32 5>}", "wants a string")):
        r = mailbus.gdbus_call(IFACE_QUEUE, "ListMessages", bad)
        assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs" and why in r.stderr, \
            (bad, r.stderr)
    # mailctl
    r = mailbus.mailctl("queue", "delete", NO_SUCH_ID)
    assert r.returncode == 1 and r.stderr == "mailctl: No message %s in the queue\n" % NO_SUCH_ID
    r = mailbus.mailctl("queue", "show", "nonsense")
    assert r.returncode == 1 and r.stderr == \
        "mailctl: invalid arguments: \"nonsense\" is not a queue id\n", r.stderr
    r = mailbus.mailctl("queue", "list", "--queue", "maildrop")
    assert r.returncode == 1 and "Unknown queue \"maildrop\"" in r.stderr
    # usage errors are exit 2
    for args in (("queue",), ("queue", "frobnicate"), ("queue", "delete"), ("queue", "list", "--limit"),
                 ("queue", "list", "--min-age", "soon"), ("status", "extra"), ("watch", "--count", "0"),
                 ("--bogus", "status")):
        r = mailbus.mailctl(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.startswith("mailctl: ") or r.stderr.startswith("usage: "), r.stderr


def test_service_not_running(postern, mailbus):
    mailbus.start_bus()
    # the bus exists but nobody owns org.postern.Mail1
    r = mailbus.mailctl("status")
    assert r.returncode == 3 and r.stderr == ("mailctl: postern-qmgr is not running "
                                              "(org.postern.Mail1 has no owner on the bus)\n"), r.stderr
    r = mailbus.mailctl("queue", "list")
    assert r.returncode == 3
    # no bus at all
    r = mailbus.mailctl("--bus-address", "unix:path=%s/nobus" % postern.tmp, "status")
    assert r.returncode == 3 and r.stderr.startswith("mailctl: cannot connect to the bus at "
                                                     "unix:path=%s/nobus: " % postern.tmp), r.stderr


# ---------------------------------------------------------------- the queue

def test_list_json_and_postqueue_format(postern, mailbus, outdir):
    p = postern.configure()
    p.write_aliases(flaky_alias(outdir) + flaky_alias(outdir, "flaky2"))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    t0 = time.time()
    a = send_id(p, ["flaky@example.test", "mailtest@example.test"], subject="one")
    p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % a)
    b = send_id(p, ["flaky2@example.test"], subject="two", body="x" * 3000 + "\r\n")
    p.qmgr.wait_log(r"%s: to=<flaky2@example\.test>.*status=deferred" % b)
    r = mailbus.mailctl("queue", "hold", b)
    assert r.returncode == 0 and r.stderr == "mailctl: Placed on hold: 1 message\n", r.stderr

    entries = queue_json(mailbus)
    assert [e["id"] for e in entries] == [a, b]          # oldest first
    ea, eb = entries
    reason = 'Command died with status 75: "test -e %s/ok || exit 75; cat > %s/flaky.out"' \
        % (outdir, outdir)
    assert ea["sender"] == SENDER and ea["attempts"] >= 1
    assert t0 - 5 < ea["arrival-time"] / 1e6 < time.time()
    assert ea["client"] == "unknown[127.0.0.1]"
    rcpts = {r["address"]: r for r in ea["recipients"]}
    assert rcpts["flaky@example.test"]["state"] == "pending"
    assert rcpts["flaky@example.test"]["reason"] == reason
    assert rcpts["mailtest@example.test"]["state"] == "delivered"
    assert eb["queue"] == "hold" and eb["flags"] == ["held"]
    assert eb["size"] > 3000
    # a deferred message is in deferred/ or, while retried, active
    assert ea["queue"] in ("deferred", "active")

    # filters
    assert [e["id"] for e in queue_json(mailbus, "--queue", "hold")] == [b]
    assert [e["id"] for e in queue_json(mailbus, "--recipient", "FLAKY2@")] == [b]
    assert [e["id"] for e in queue_json(mailbus, "--recipient", "mailtest@")] == []  # delivered
    assert [e["id"] for e in queue_json(mailbus, "--sender", "client.example")] == [a, b]
    assert queue_json(mailbus, "--sender", "<>") == []
    assert [e["id"] for e in queue_json(mailbus, "--reason", "STATUS 75")] == [a, b]
    assert queue_json(mailbus, "--min-age", "1h") == []
    assert [e["id"] for e in queue_json(mailbus, "--max-age", "1h")] == [a, b]
    assert [e["id"] for e in queue_json(mailbus, "--limit", "1")] == [a]
    r = mailbus.gdbus_call(IFACE_QUEUE, "ListMessages", "{'queue': <'hold'>, 'max-age': <uint32 3600>}")
    assert r.returncode == 0 and "'id': <'%s'>" % b in r.stdout and a not in r.stdout, r.stdout

    # postqueue -p's layout (long queue ids), held marked "!", reasons in parentheses
    r = mailbus.mailctl("queue", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    w = max(17, len(b) + 1)
    assert lines[0] == "%-*s %8s %-19s %s" % (w, "----Queue ID-----", "--Size--",
                                              "---Arrival Time----", "--Sender/Recipient------")
    stamp = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d"
    ida = a + ("*" if lines[1].startswith(a + "*") else "")
    assert re.match(r"^%s +%d %s %s$" % (re.escape(ida.ljust(w)), ea["size"], stamp, SENDER),
                    lines[1]), lines[1]
    shown = reason if len(reason) <= 76 else reason
    assert lines[2] == "%*s(%s)" % (max(0, 76 - len(reason)), "", shown)
    assert lines[3] == " " * (w + 30) + "flaky@example.test"
    assert lines[4] == ""
    assert re.match(r"^%s +%d %s %s$" % (re.escape((b + "!").ljust(w)), eb["size"], stamp, SENDER),
                    lines[5]), lines[5]
    assert lines[6].endswith("(%s)" % reason.replace("flaky.out", "flaky2.out"))
    assert lines[7] == " " * (w + 30) + "flaky2@example.test"
    assert lines[8] == ""
    assert lines[9] == "-- %d Kbytes in 2 Requests." % ((ea["size"] + eb["size"]) // 1024)
    assert lines[10:] == [""]

    # show: envelope and header fields
    r = mailbus.mailctl("queue", "show", "--json", a)
    m = json.loads(r.stdout)
    assert m["id"] == a and m["helo"] == "client.example.test" and m["protocol"] == "ESMTP"
    headers = dict(m["headers"])
    assert headers["Subject"] == "one" and headers["From"] == "<%s>" % SENDER
    assert m["headers"][0][0] == "Received"
    r = mailbus.mailctl("queue", "show", b)
    assert r.returncode == 0
    assert "Queue ID      %s\nQueue         hold\n" % b in r.stdout
    assert "Flags         held\n" in r.stdout and "Sender        <%s>\n" % SENDER in r.stdout
    assert "  <flaky2@example.test> pending (%s)\n" % reason.replace("flaky.out", "flaky2.out") \
        in r.stdout
    assert "  Subject: two\n" in r.stdout
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_QUEUE, "GetMessage", "s", b)
    assert r.returncode == 0 and '"Subject" "two"' in r.stdout, r.stdout


# ---------------------------------------------------------------- large listings

def bus_connection(mb):
    from gi.repository import Gio
    return Gio.DBusConnection.new_for_address_sync(
        mb.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


def list_page(conn, **criteria):
    """ListMessages with the criteria, in-process (Gio)."""
    from gi.repository import GLib
    types = {"limit": "u"}
    args = GLib.Variant("(a{sv})", ({k.replace("_", "-"): GLib.Variant(types.get(k, "s"), v)
                                     for k, v in criteria.items()},))
    reply = conn.call_sync(BUS_NAME, BUS_PATH, IFACE_QUEUE, "ListMessages", args, None, 0, -1, None)
    return reply.unpack()[0]


def open_stream(conn, criteria=None):
    """StreamMessages: the descriptor the reply carries."""
    from gi.repository import GLib
    args = GLib.Variant("(a{sv})", (criteria or {},))
    reply, fds = conn.call_with_unix_fd_list_sync(BUS_NAME, BUS_PATH, IFACE_QUEUE, "StreamMessages",
                                                  args, GLib.VariantType("(h)"), 0, -1, None, None)
    return fds.get(reply.unpack()[0])


def read_to_end(fd):
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def parse_frames(data, cut=False):
    """The frames as (kind, dict); with cut, a last frame cut off is dropped."""
    from gi.repository import GLib
    frames, off = [], 0
    while off < len(data):
        n = int.from_bytes(data[off:off + 4], "little") if len(data) - off >= 4 else 0
        if len(data) - off < 5 + n:
            assert cut, "a cut frame"
            break
        kind, payload = chr(data[off + 4]), data[off + 5:off + 5 + n]
        v = GLib.Variant.new_from_bytes(GLib.VariantType("a{sv}"), GLib.Bytes.new(payload), False)
        assert v.is_normal_form(), (kind, payload)
        frames.append((kind, v.unpack()))
        off += 5 + n
    return frames


def read_stream(conn, criteria=None):
    return parse_frames(read_to_end(open_stream(conn, criteria)))


def held_messages(p, mb, outdir, n):
    """n messages parked in hold/, oldest first."""
    p.write_aliases(flaky_alias(outdir))
    mb.start()
    p.start()
    mb.wait_owner()
    ids = [send_id(p, "flaky@example.test", subject="m%d" % i) for i in range(n)]
    for qid in ids:
        p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % qid)
    r = mb.gdbus_call(IFACE_QUEUE, "HoldMessages", "['ALL']")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: sorted(p.committed_queue_files()["hold"]) == sorted(ids), "the files in hold/")
    return sorted(ids)


def test_stream_messages_frames(postern, mailbus, outdir):
    """StreamMessages: a socket in the reply; a header frame, one frame per
    message equal to the ListMessages entry, in the same order, and an end
    frame with the count; the criteria, limit and after apply."""
    p = postern.configure()
    ids = held_messages(p, mailbus, outdir, 4)
    conn = bus_connection(mailbus)
    listed = list_page(conn)
    assert [e["id"] for e in listed] == ids
    frames = read_stream(conn)
    kinds = "".join(k for k, _ in frames)
    assert kinds == "hmmmme", kinds
    head = frames[0][1]
    assert head["version"] == 1 and head["candidates"] == 4 and head["id-width"] == len(ids[0])
    assert [d for k, d in frames if k == "m"] == listed
    assert frames[-1][1] == {"count": 4}
    # criteria
    from gi.repository import GLib
    frames = read_stream(conn, {"limit": GLib.Variant("u", 2)})
    assert [d["id"] for k, d in frames if k == "m"] == ids[:2] and frames[-1][1] == {"count": 2}
    frames = read_stream(conn, {"after": GLib.Variant("s", ids[1])})
    assert [d["id"] for k, d in frames if k == "m"] == ids[2:]
    assert frames[0][1]["candidates"] == 2
    frames = read_stream(conn, {"queue": GLib.Variant("s", "deferred")})
    assert "".join(k for k, _ in frames) == "he" and frames[-1][1] == {"count": 0}
    frames = read_stream(conn, {"recipient": GLib.Variant("s", "FLAKY@")})
    assert len([k for k, _ in frames if k == "m"]) == 4
    # a reader that goes away at once costs the service nothing
    for _ in range(8):
        os.close(open_stream(conn))
    assert [e["id"] for e in list_page(conn)] == ids
    assert p.qmgr.proc.poll() is None, "postern-qmgr died"
    # bad criteria: InvalidArgs, as ListMessages
    r = mailbus.gdbus_call(IFACE_QUEUE, "StreamMessages", "{'bogus': <1>}")
    assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs", r.stderr
    r = mailbus.gdbus_call(IFACE_QUEUE, "StreamMessages", "{'after': <'not-an-id'>}")
    assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs", r.stderr


def test_stream_cut_short_when_qmgr_stops(postern, mailbus):
    """A reader that does not read holds a stream up; stopping postern-qmgr
    cuts it short (no 'e' frame) and qmgr still exits at once and cleanly."""
    p = postern.configure(recipient_delimiter="+", smtpd_recipient_limit=5000)
    table = p.tmp / "hold.regexp"
    table.write_text("/./ HOLD\n")
    mailbus.start()
    p.start(smtpd_recipient_restrictions="check_recipient_access regexp:%s, permit_mynetworks, "
            "reject_unauth_destination" % table)
    mailbus.wait_owner()
    # three messages of 3,000 recipients each: some 900 KB of listing,
    # more than the socket buffers hold
    ids = [send_id(p, ["mailtest+%d.%d@example.test" % (m, i) for i in range(3000)])
           for m in range(3)]
    for qid in ids:
        p.qmgr.wait_log(r"%s: .*\(queue hold\)" % qid)
    conn = bus_connection(mailbus)
    fd = open_stream(conn)
    time.sleep(0.5)     # the stream thread fills the buffers and blocks
    # four at once at most: a fifth reader is told to come back later
    others = [open_stream(conn) for _ in range(3)]
    r = mailbus.gdbus_call(IFACE_QUEUE, "StreamMessages", "{}")
    assert dbus_error(r) == "org.freedesktop.DBus.Error.LimitsExceeded", r.stderr
    for other in others:
        os.close(other)
    wait_for(lambda: mailbus.gdbus_call(IFACE_QUEUE, "StreamMessages", "{'limit': <1>}")
             .returncode == 0, "a stream slot")
    t0 = time.monotonic()
    code, killed = p.qmgr.stop()
    assert not killed and code == 0 and time.monotonic() - t0 < 5, (code, p.qmgr.log()[-2000:])
    data = read_to_end(fd)
    assert 100000 < len(data) < 900000, len(data)
    kinds = "".join(k for k, _ in parse_frames(data, cut=True))
    assert kinds.startswith("h") and "e" not in kinds, kinds
    # the queue is untouched
    assert sorted(p.committed_queue_files()["hold"]) == sorted(ids)


def test_list_messages_pages_with_limit_and_after(postern, mailbus, outdir):
    """ListMessages "limit" + "after" page through the queue: every message
    once, in order, even when one goes away between pages."""
    p = postern.configure()
    ids = held_messages(p, mailbus, outdir, 5)
    conn = bus_connection(mailbus)
    seen, after = [], None
    while True:
        page = list_page(conn, limit=2, **({"after": after} if after else {}))
        seen += [e["id"] for e in page]
        if len(page) < 2:
            break
        after = page[-1]["id"]
        if len(seen) == 2:
            # the next one on the list is deleted meanwhile
            r = mailbus.mailctl("queue", "delete", ids[2])
            assert r.returncode == 0, r.stderr
    assert seen == ids[:2] + ids[3:]
    assert list_page(conn, after=ids[-1]) == []
    # a cursor whose message is gone still works: ids compare as strings
    assert [e["id"] for e in list_page(conn, after=ids[2])] == ids[3:]
    r = mailbus.gdbus_call(IFACE_QUEUE, "ListMessages", "{'after': <uint32 5>}")
    assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs" and "wants a string" in r.stderr


def test_mailctl_pages_when_the_bus_cannot_pass_descriptors(postern, mailbus, outdir, tmp_path):
    """Over -H (ssh, through pipes: no descriptor passing), mailctl queue
    list pages through ListMessages and prints what the stream gives."""
    p = postern.configure()
    ids = held_messages(p, mailbus, outdir, 3)
    direct = mailbus.mailctl("queue", "list")
    direct_json = mailbus.mailctl("queue", "list", "--json")
    assert direct.returncode == 0 and direct_json.returncode == 0 and direct.stderr == ""
    assert [e["id"] for e in json.loads(direct_json.stdout)] == ids
    assert direct.stdout.endswith("-- %d Kbytes in 3 Requests.\n"
                                  % (sum(e["size"] for e in json.loads(direct_json.stdout)) // 1024))
    # stdin and stdout of the bridge are pipes, as under a real ssh
    fake = tmp_path / "ssh"
    fake.write_text('#!/bin/sh\ncat | systemd-stdio-bridge --bus-path="$DBUS_SYSTEM_BUS_ADDRESS" | cat\n')
    fake.chmod(0o755)
    env = dict(mailbus.env(), MAILCTL_SSH=str(fake))
    for args, want in ((["queue", "list"], direct.stdout), (["queue", "list", "--json"], direct_json.stdout)):
        r = subprocess.run([str(MAILCTL), "-H", "mail.example.test", *args], env=env,
                           capture_output=True, text=True, timeout=DEFAULT_TIMEOUT * 3)
        assert r.returncode == 0, r.stderr
        assert r.stdout == want and r.stderr == ""
    r = subprocess.run([str(MAILCTL), "-H", "mail.example.test", "queue", "list", "--json",
                        "--limit", "2"], env=env, capture_output=True, text=True,
                       timeout=DEFAULT_TIMEOUT * 3)
    assert [e["id"] for e in json.loads(r.stdout)] == ids[:2]


def test_empty_queue(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    assert mailbus.mailctl("queue", "list").stdout == "Mail queue is empty\n"
    assert queue_json(mailbus) == []


def test_hold_then_release(postern, mailbus, outdir):
    p = postern.configure()
    p.write_aliases(flaky_alias(outdir))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    qid = send_id(p, "flaky@example.test")
    p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % qid)
    r = mailbus.gdbus_call(IFACE_QUEUE, "HoldMessages", "['%s']" % qid)
    assert r.returncode == 0 and r.stdout.strip() == "(['%s'],)" % qid, (r.stdout, r.stderr)
    p.qmgr.wait_log(r"%s: (placed on hold|will be placed on hold)" % qid)
    wait_for(lambda: p.committed_queue_files()["hold"] == [qid], "the file in hold/")
    (outdir / "ok").touch()
    # retries are every 1-2 s: several passes, and nothing is delivered from hold/
    time.sleep(4)
    assert not (outdir / "flaky.out").exists()
    assert p.committed_queue_files()["hold"] == [qid]
    # holding it again is no change; releasing something not held neither
    r = mailbus.mailctl("queue", "hold", qid)
    assert r.returncode == 0 and r.stderr == ""
    r = mailbus.mailctl("queue", "release", qid)
    assert r.returncode == 0 and r.stderr == "mailctl: Released from hold: 1 message\n", r.stderr
    p.qmgr.wait_log(r"%s: released from hold" % qid)
    p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=sent" % qid)
    assert (outdir / "flaky.out").exists()
    p.wait_queue_empty()
    assert p.committed_queue_files()["hold"] == []


def test_hold_and_release_all_and_access_hold(postern, mailbus, outdir):
    """ALL as postsuper's; a message an access(5) HOLD parked is delivered
    once released (its K record is written then)."""
    p = postern.configure()
    table = p.tmp / "access"
    table.write_text("mailtest2@example.test HOLD\n")
    p.write_aliases(flaky_alias(outdir))
    mailbus.start()
    p.start(smtpd_recipient_restrictions="check_recipient_access hash:%s" % table)
    mailbus.wait_owner()
    held = send_id(p, "mailtest2@example.test")
    p.qmgr.wait_log(r"%s: .*\(queue hold\)" % held)
    one = send_id(p, "flaky@example.test")
    two = send_id(p, "flaky@example.test")
    for q in (one, two):
        p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % q)
    r = mailbus.mailctl("--json", "queue", "hold", "ALL")
    assert r.returncode == 0 and sorted(json.loads(r.stdout)) == sorted([one, two])
    assert r.stderr == "mailctl: Placed on hold: 2 messages\n"
    wait_for(lambda: sorted(p.committed_queue_files()["hold"]) == sorted([held, one, two]),
             "three held")
    (outdir / "ok").touch()
    r = mailbus.mailctl("queue", "release", "ALL")
    assert r.returncode == 0 and r.stderr == "mailctl: Released from hold: 3 messages\n", r.stderr
    p.wait_mbox("mailtest2")
    for q in (one, two):
        p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=sent" % q)
    p.wait_queue_empty()
    assert p.committed_queue_files()["hold"] == []


def test_delete(postern, mailbus, outdir):
    p = postern.configure()
    p.write_aliases(flaky_alias(outdir))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    ids = [send_id(p, "flaky@example.test") for _ in range(3)]
    for q in ids:
        p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % q)
    # ids from stdin, with postqueue -p's marks, as postsuper -d -
    r = mailbus.mailctl("queue", "delete", "-", input="%s*\n%s!\n" % (ids[0], ids[1]))
    assert r.returncode == 0 and r.stderr == "mailctl: Deleted: 2 messages\n", r.stderr
    p.qmgr.wait_log(r"%s: removed" % ids[0])
    assert [e["id"] for e in queue_json(mailbus)] == [ids[2]]
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_QUEUE, "DeleteMessages", "as", "1", "ALL")
    assert r.returncode == 0 and r.stdout.strip() == 'as 1 "%s"' % ids[2], r.stdout
    p.wait_queue_empty()
    assert queue_json(mailbus) == []
    assert not (outdir / "flaky.out").exists()


def test_delete_while_delivery_runs(postern, mailbus, outdir):
    """A message deleted during its attempt: what the attempt delivers stays
    delivered, the rest is dropped when the attempt ends, no file is left."""
    p = postern.configure()
    p.write_aliases(slow_alias(outdir) + flaky_alias(outdir))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    qid = send_id(p, ["slow@example.test", "flaky@example.test"], body="slow body\r\n")
    wait_for(lambda: (outdir / "slow.started").exists(), "the slow command to start")
    r = mailbus.mailctl("queue", "delete", qid)
    assert r.returncode == 0 and r.stderr == "mailctl: Deleted: 1 message\n", r.stderr
    p.qmgr.wait_log(r"%s: will be removed when the delivery attempt in progress ends" % qid)
    assert find(queue_json(mailbus), qid)["queue"] == "active"   # still being delivered
    p.qmgr.wait_log(r"%s: to=<slow@example\.test>.*status=sent" % qid, timeout=15)
    p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=deferred" % qid)
    p.qmgr.wait_log(r"%s: removed" % qid)
    assert (outdir / "slow.out").read_bytes().endswith(b"\nslow body\n")
    p.wait_queue_empty()
    assert p.committed_queue_files()["hold"] == []
    time.sleep(3)        # no retry of a deleted message
    assert len(re.findall(r"%s: to=<flaky@example\.test>" % qid, p.qmgr.log())) == 1


def test_hold_while_delivery_runs(postern, mailbus, outdir):
    p = postern.configure()
    p.write_aliases(slow_alias(outdir) + flaky_alias(outdir))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    qid = send_id(p, ["slow@example.test", "flaky@example.test"])
    wait_for(lambda: (outdir / "slow.started").exists(), "the slow command to start")
    r = mailbus.mailctl("queue", "hold", qid)
    assert r.returncode == 0 and r.stderr == "mailctl: Placed on hold: 1 message\n", r.stderr
    p.qmgr.wait_log(r"%s: placed on hold" % qid, timeout=15)
    assert p.committed_queue_files()["hold"] == [qid]
    e = find(queue_json(mailbus, "--queue", "hold"), qid)
    states = {r["address"]: r["state"] for r in e["recipients"]}
    assert states == {"slow@example.test": "delivered", "flaky@example.test": "pending"}


def test_requeue_and_flush_deliver_deferred_mail(postern, mailbus, outdir):
    p = postern.configure(minimal_backoff_time="1h", maximal_backoff_time="2h",
                          queue_run_delay="1h")
    p.write_aliases(flaky_alias(outdir) + flaky_alias(outdir, "flaky2"))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    a = send_id(p, "flaky@example.test")
    b = send_id(p, "flaky2@example.test")
    for q in (a, b):
        p.qmgr.wait_log(r"%s: to=<.*status=deferred" % q)
    wait_for(lambda: sorted(p.committed_queue_files()["deferred"]) == sorted([a, b]), "both deferred")
    e = find(queue_json(mailbus), a)
    assert e["queue"] == "deferred" and e["next-attempt"] / 1e6 > time.time() + 3000
    (outdir / "ok").touch()
    time.sleep(2)
    assert not (outdir / "flaky.out").exists()      # an hour to go
    r = mailbus.mailctl("queue", "requeue", a)
    assert r.returncode == 0 and r.stderr == "mailctl: Requeued: 1 message\n", r.stderr
    p.qmgr.wait_log(r"%s: requeued" % a)
    p.qmgr.wait_log(r"%s: to=<flaky@example\.test>.*status=sent" % a)
    p.qmgr.wait_log(r"%s: removed" % a)
    assert p.committed_queue_files()["deferred"] == [b]
    r = mailbus.mailctl("queue", "flush")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    p.qmgr.wait_log(r"%s: to=<flaky2@example\.test>.*status=sent" % b)
    p.wait_queue_empty()
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_QUEUE, "Flush")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- signals

def test_signals_follow_a_message_life(postern, mailbus, outdir):
    p = postern.configure(minimal_backoff_time="1h", maximal_backoff_time="2h",
                          queue_run_delay="1h")
    p.write_aliases(flaky_alias(outdir))
    mailbus.start()
    p.start()
    mailbus.wait_owner()
    wj = Watch(mailbus, "--json")
    wt = Watch(mailbus, user=ADMIN_USER)      # signals are public
    try:
        qid = send_id(p, ["flaky@example.test", "mailtest@example.test"])
        wj.wait(r'"signal":"MessageDeferred"')
        (outdir / "ok").touch()
        assert mailbus.mailctl("queue", "requeue", qid).returncode == 0
        wj.wait(r'"signal":"MessageDelivered","id":"%s","recipient":"flaky@example.test"' % qid)
        events = [json.loads(line) for line in wj.lines]
        mine = [e for e in events if e.get("id") == qid]
        assert [(e["signal"], e.get("recipient")) for e in mine] == [
            ("MessageQueued", None), ("MessageDeferred", "flaky@example.test"),
            ("MessageDelivered", "mailtest@example.test"), ("MessageDelivered", "flaky@example.test")]
        assert mine[0] == {"signal": "MessageQueued", "id": qid, "sender": SENDER,
                           "recipients": ["flaky@example.test", "mailtest@example.test"],
                           "size": mine[0]["size"]}
        assert mine[0]["size"] > 0
        assert mine[1]["reason"].startswith("Command died with status 75: ")
        assert mine[2]["status"] == "delivered to mailbox"
        assert mine[3]["status"].startswith("delivered to command: ")
        # the text form, one line each
        wt.wait(r"^%s: to=<flaky@example\.test>, status=sent \(delivered to command: " % qid)
        text = [ln.rstrip("\n") for ln in wt.lines if ln.startswith(qid)]
        assert text[0] == "%s: queued, from=<%s>, size=%d, nrcpt=2" % (qid, SENDER, mine[0]["size"])
        assert text[1].startswith("%s: to=<flaky@example.test>, status=deferred (Command died with "
                                  "status 75: " % qid)
        assert text[2] == "%s: to=<mailtest@example.test>, status=sent (delivered to mailbox)" % qid
    finally:
        wj.stop()
        wt.stop()


def test_bounce_signal_and_count(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    w = Watch(mailbus, "--json", "--count", "3")
    # a local recipient that does not exist is rejected at RCPT; an alias to
    # nowhere bounces in delivery
    postern.write_aliases("gone: nosuchuser-at-all\n")
    qid = send_id(postern, "gone@example.test")
    assert w.proc.wait(DEFAULT_TIMEOUT) == 0        # --count 3: queued, the notice queued, bounced
    events = [json.loads(line) for line in w.lines]
    assert events[0]["signal"] == "MessageQueued" and events[0]["id"] == qid
    bounced = [e for e in events if e["signal"] == "MessageBounced"]
    assert len(bounced) == 1, events
    assert bounced[0]["id"] == qid and bounced[0]["recipient"] == "gone@example.test"
    assert bounced[0]["reason"]
    # the non-delivery notice is a message of its own
    notices = [e for e in events if e["signal"] == "MessageQueued" and e["id"] != qid]
    assert len(notices) == 1, events
    wait_for(lambda: "\"bounced\" 1" in mailbus.busctl(
        "get-property", BUS_NAME, BUS_PATH, IFACE_MANAGER, "Counters").stdout, "bounced 1")


# ---------------------------------------------------------------- the bus comes and goes

def test_qmgr_before_the_bus(postern, mailbus):
    """Mail never depends on D-Bus: without a bus qmgr warns once and
    delivers; it takes the name when the bus appears, and again after the
    bus restarts."""
    p = postern
    p.start()
    p.send("mailtest@example.test", subject="no bus")
    p.wait_mbox("mailtest")
    time.sleep(2.5)          # a retry or two
    warnings = re.findall(r"warning: D-Bus: cannot connect to the system bus.*", p.qmgr.log())
    assert len(warnings) == 1, warnings
    assert "org.postern.Mail1 is unavailable until it can (retrying every 2 s), mail delivery goes on" \
        in warnings[0]
    mailbus.start_bus()
    mailbus.wait_owner(timeout=DEFAULT_TIMEOUT)
    p.qmgr.wait_log(r"D-Bus: acquired the name org\.postern\.Mail1 on the system bus")
    assert mailbus.mailctl("queue", "list").stdout == "Mail queue is empty\n"
    # the bus goes away: a warning, mail goes on, the name comes back with the bus
    mailbus.stop_bus()
    p.qmgr.wait_log(r"warning: D-Bus: lost the system bus connection")
    p.send("mailtest@example.test", subject="bus gone")
    p.wait_mbox("mailtest", 2)
    mailbus.start_bus()
    mailbus.wait_owner()
    r = mailbus.mailctl("status")
    assert r.returncode == 0 and "Counters: received 2 delivered 2 " in r.stdout, r.stdout


# ---------------------------------------------------------------- configuration

def test_get_parameters(postern, mailbus):
    p = postern
    mailbus.start()
    p.start(smtpd_banner="$myhostname ESMTP ready")
    mailbus.wait_owner()
    # effective: expanded values in use (postconf -x)
    r = mailbus.mailctl("config", "get", "myhostname", "smtpd_banner", "mydestination", "mail_name")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("myhostname = mail.example.test\n"
                        "smtpd_banner = mail.example.test ESMTP ready\n"
                        "mydestination = mail.example.test, localhost, example.test\n"
                        "mail_name = Postern\n"), r.stdout
    # defaults: the table's text (postconf -d); computed ones computed
    r = mailbus.gdbus_call(IFACE_MANAGER, "GetParameters", "['mydestination', 'smtpd_banner', "
                           "'config_directory']", "'defaults'")
    assert r.returncode == 0, r.stderr
    assert "'mydestination': '$myhostname, localhost.$mydomain, localhost'" in r.stdout
    assert "'smtpd_banner': '$myhostname ESMTP $mail_name'" in r.stdout
    assert "'config_directory': '%s'" % p.confdir in r.stdout
    d = json.loads(mailbus.mailctl("config", "list", "--defaults", "--json").stdout)
    assert d["minimal_backoff_time"] == "300s" and d["myhostname"] and "." in d["myhostname"]
    # changed: what main.cf sets, as written (postconf -n)
    r = mailbus.mailctl("config", "list", "--changed")
    lines = r.stdout.splitlines()
    assert "smtpd_banner = $myhostname ESMTP ready" in lines
    assert "minimal_backoff_time = 1s" in lines
    assert not [ln for ln in lines if ln.startswith("mail_name ")]
    assert lines == sorted(lines)
    # everything
    full = json.loads(mailbus.mailctl("config", "list", "--json").stdout)
    assert full["mail_name"] == "Postern" and len(full) > 100
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_MANAGER, "GetParameters", "ass", "1",
                       "queue_directory", "effective")
    assert r.stdout.strip() == 'a{ss} 1 "queue_directory" "%s"' % p.spool, r.stdout
    # errors
    r = mailbus.gdbus_call(IFACE_MANAGER, "GetParameters", "['no_such_parameter']", "'effective'")
    assert dbus_error(r) == "org.postern.Mail1.Error.InvalidParameter", r.stderr
    assert 'Unknown parameter "no_such_parameter"' in r.stderr
    r = mailbus.gdbus_call(IFACE_MANAGER, "GetParameters", "['myhostname']", "'current'")
    assert dbus_error(r) == "org.freedesktop.DBus.Error.InvalidArgs", r.stderr
    r = mailbus.mailctl("config", "get", "no_such_parameter")
    assert r.returncode == 1 and r.stderr == \
        'mailctl: invalid parameter: Unknown parameter "no_such_parameter"\n', r.stderr


def test_reload_reaches_smtpd_and_signals(postern, mailbus):
    p = postern
    mailbus.start()
    p.start(smtpd_banner="$myhostname ESMTP before")
    mailbus.wait_owner()
    assert p.connect(greeting=False).reply().text == "220 mail.example.test ESMTP before"
    pidfiles = os.listdir(p.spool / "pid")
    assert pidfiles == ["smtpd.%d.pid" % p.smtpd.pid], pidfiles
    w = Watch(mailbus, "--json")
    try:
        p.configure(smtpd_banner="$myhostname ESMTP after")
        r = mailbus.mailctl("reload")
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
        p.qmgr.wait_log(r"reload: sent SIGHUP to postern-smtpd \(pid %d\)" % p.smtpd.pid)
        p.smtpd.wait_log(r"reloaded configuration")
        assert p.connect(greeting=False).reply().text == "220 mail.example.test ESMTP after"
        w.wait(r'"signal":"ConfigurationChanged"')
        assert json.loads(w.lines[-1]) == {"signal": "ConfigurationChanged",
                                           "names": ["smtpd_banner"]}
        r = mailbus.mailctl("config", "get", "smtpd_banner")
        assert r.stdout == "smtpd_banner = mail.example.test ESMTP after\n"
        # a configuration that does not load: the error names file and line,
        # the old one stays
        p.write_main_cf("myhostname = mail.example.test\nmessage_size_limit = lots\n")
        r = mailbus.gdbus_call(IFACE_MANAGER, "Reload")
        assert dbus_error(r) == "org.postern.Mail1.Error.InvalidValue", r.stderr
        assert "The configuration does not load, the old one stays: %s/main.cf:2: " % p.confdir \
            in r.stderr, r.stderr
        r = mailbus.mailctl("reload")
        assert r.returncode == 1 and r.stderr.startswith("mailctl: invalid value: The configuration "
                                                         "does not load"), r.stderr
        r = mailbus.mailctl("config", "get", "smtpd_banner")
        assert r.stdout == "smtpd_banner = mail.example.test ESMTP after\n"
    finally:
        w.stop()
    # a stale pid file (a crashed smtpd) is cleaned up, not signalled
    p.configure(smtpd_banner="$myhostname ESMTP again")
    stale = p.spool / "pid" / "smtpd.999999.pid"
    stale.write_text("1\n")
    assert mailbus.mailctl("reload").returncode == 0
    p.qmgr.wait_log(r"reload: removed the stale pid file %s" % re.escape(str(stale)))
    assert not stale.exists()
    assert p.connect(greeting=False).reply().text == "220 mail.example.test ESMTP again"
    p.smtpd.stop()
    assert os.listdir(p.spool / "pid") == []     # smtpd removes its pid file


def test_rebuild_table_changes_an_access_decision(postern, mailbus):
    p = postern
    access = p.tmp / "access"
    access.write_text("blocked@example.test REJECT not you\n")
    mailbus.start()
    r = mailbus.mailctl("table", "rebuild", "hash:%s" % access)     # local, as postmap
    assert r.returncode == 0, r.stderr
    p.start(smtpd_recipient_restrictions="check_recipient_access hash:%s, permit_mynetworks, "
                                         "reject_unauth_destination" % access)
    mailbus.wait_owner()

    def rcpt(addr):
        c = p.connect()
        c.expect("ehlo client.example.test", 250)
        c.expect("mail from:<%s>" % SENDER, 250)
        text = c.cmd("rcpt to:<%s>" % addr).text
        c.close()
        return text

    assert rcpt("mailtest@example.test").startswith("250 ")
    access.write_text("blocked@example.test REJECT not you\nmailtest@example.test REJECT go away\n")
    assert rcpt("mailtest@example.test").startswith("250 ")    # the .cdb still rules
    r = mailbus.busctl("call", BUS_NAME, BUS_PATH, IFACE_MANAGER, "RebuildTable", "s",
                       "hash:%s" % access)
    assert r.returncode == 0, r.stderr
    p.qmgr.wait_log(r"rebuilt hash:%s" % re.escape(str(access)))
    want = "554 5.7.1 <mailtest@example.test>: Recipient address rejected: go away"
    wait_for(lambda: rcpt("mailtest@example.test") == want, "smtpd to use the new table")
    # a source that does not compile: TableError with file:line, the old table stays
    access.write_text("mailtest@example.test\n")
    r = mailbus.gdbus_call(IFACE_MANAGER, "RebuildTable", "'hash:%s'" % access)
    assert dbus_error(r) == "org.postern.Mail1.Error.TableError", r.stderr
    assert "%s:1: " % access in r.stderr, r.stderr
    assert rcpt("mailtest@example.test") == want
    # only tables of the running configuration, only hash: and cdb:
    r = mailbus.gdbus_call(IFACE_MANAGER, "RebuildTable", "'hash:/etc/passwd'")
    assert dbus_error(r) == "org.postern.Mail1.Error.InvalidValue", r.stderr
    assert "hash:/etc/passwd is not a table of the running configuration" in r.stderr
    assert not os.path.exists("/etc/passwd.cdb")
    for bad in ("'texthash:%s'" % access, "'hash:relative'", "'nonsense'"):
        r = mailbus.gdbus_call(IFACE_MANAGER, "RebuildTable", bad)
        assert dbus_error(r) == "org.postern.Mail1.Error.InvalidValue", (bad, r.stderr)


def test_rebuild_aliases(postern, mailbus):
    p = postern
    p.write_aliases("postmaster: root\n")
    mailbus.start()
    p.configure()
    r = subprocess.run([str(MAILCTL), "--config-dir", str(p.confdir), "aliases", "rebuild"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p.start()
    mailbus.wait_owner()

    def rcpt(addr):
        c = p.connect()
        c.expect("ehlo client.example.test", 250)
        c.expect("mail from:<%s>" % SENDER, 250)
        code = c.cmd("rcpt to:<%s>" % addr).code
        c.close()
        return code

    p.write_aliases("postmaster: root\nsales: mailtest2\n")
    assert rcpt("sales@example.test") == 550        # aliases.cdb does not know it yet
    r = mailbus.gdbus_call(IFACE_MANAGER, "RebuildAliases")
    assert r.returncode == 0 and r.stdout.strip() == "()", r.stderr
    p.qmgr.wait_log(r"rebuilt hash:%s" % re.escape(str(p.aliases)))
    wait_for(lambda: rcpt("sales@example.test") == 250, "smtpd to know the new alias")
    p.send("sales@example.test", subject="to sales")
    msgs = p.wait_mbox("mailtest2")
    assert b"Subject: to sales" in msgs[0]
    p.write_aliases("postmaster: root\nsales mailtest2\n")
    r = mailbus.gdbus_call(IFACE_MANAGER, "RebuildAliases")
    assert dbus_error(r) == "org.postern.Mail1.Error.TableError" and "%s:2: " % p.aliases in r.stderr, \
        r.stderr


def test_set_parameters_and_check_need_configure(postern, mailbus):
    """SetParameters and CheckConfiguration are authorized like the other
    configuration methods (validation of names comes first)."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    r = mailbus.mailctl("config", "set", "myhostname=mx.example.test", user=PLAIN_USER)
    assert r.returncode == 1 and r.stderr.startswith("mailctl: access denied: "), r.stderr
    r = mailbus.gdbus_call(IFACE_MANAGER, "SetParameters", "{'no_such_thing': 'x'}", user=PLAIN_USER)
    assert dbus_error(r) == "org.postern.Mail1.Error.InvalidParameter", r.stderr   # validation first
    r = mailbus.gdbus_call(IFACE_MANAGER, "CheckConfiguration", user=PLAIN_USER)
    assert dbus_error(r) == "org.freedesktop.DBus.Error.AccessDenied", r.stderr
    r = mailbus.mailctl("config", "set", "novalue", user=PLAIN_USER)
    assert r.returncode == 2


# ---------------------------------------------------------------- systemd and remote hosts

def start_fake_systemd(postern, mailbus, units):
    from conftest import Daemon
    path = postern.tmp / "units.json"
    path.write_text(json.dumps(units))
    calls = postern.tmp / "systemd-calls.log"
    postern._n += 1
    d = Daemon("fake-systemd-%d" % postern._n,
               ["/usr/bin/python3", ROOT / "tests" / "integration" / "fake_systemd.py",
                mailbus.address, path, calls], mailbus.env(), postern.tmp)
    postern.daemons.append(d)
    mailbus.wait_owner("org.freedesktop.systemd1")
    return calls


def test_status_and_reload_through_systemd(postern, mailbus):
    """With org.freedesktop.systemd1 on the bus, mailctl status shows the
    units' states and Reload asks systemd to reload postern-smtpd*.service."""
    p = postern
    mailbus.start()
    p.start(smtpd_banner="$myhostname ESMTP one")
    mailbus.wait_owner()
    calls = start_fake_systemd(p, mailbus, {
        "postern-qmgr.service": {"active": "active", "sub": "running", "pid": p.qmgr.pid},
        "postern-smtpd.socket": {"active": "active", "sub": "listening"},
        "postern-smtpd.service": {"active": "active", "sub": "running", "pid": p.smtpd.pid},
        "postern-smtpd-submission.service": {"active": "inactive", "sub": "dead"},
    })
    r = mailbus.mailctl("status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[3:] == ["postern-qmgr.service   active (running)",
                                         "postern-smtpd.socket   active (listening)",
                                         "postern-smtpd.service  active (running)"], r.stdout
    p.configure(smtpd_banner="$myhostname ESMTP two")
    assert mailbus.mailctl("reload").returncode == 0
    p.qmgr.wait_log(r"reload: asked systemd to reload postern-smtpd\.service")
    assert calls.read_text() == "postern-smtpd.service replace\n"    # not the inactive one
    assert "sent SIGHUP" not in p.qmgr.log()                         # systemd did it
    p.smtpd.wait_log(r"reloaded configuration")
    assert p.connect(greeting=False).reply().text == "220 mail.example.test ESMTP two"


def test_host_option_talks_through_ssh(postern, mailbus, tmp_path):
    """-H HOST runs "ssh -xT -- HOST systemd-stdio-bridge" (busctl's way);
    MAILCTL_SSH names the ssh program, here one that bridges to the local
    private bus and records its arguments."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    fake = tmp_path / "ssh"
    fake.write_text('#!/bin/sh\necho "$@" > %s/ssh.args\n'
                    'exec systemd-stdio-bridge --bus-path="$DBUS_SYSTEM_BUS_ADDRESS"\n' % tmp_path)
    fake.chmod(0o755)
    env = dict(mailbus.env(), MAILCTL_SSH=str(fake))
    r = subprocess.run([str(MAILCTL), "-H", "root@mail.example.test", "queue", "list"], env=env,
                       capture_output=True, text=True, timeout=DEFAULT_TIMEOUT * 3)
    assert r.returncode == 0 and r.stdout == "Mail queue is empty\n", r.stderr
    assert (tmp_path / "ssh.args").read_text() == "-xT -- root@mail.example.test systemd-stdio-bridge\n"
    r = subprocess.run([str(MAILCTL), "-H", "-oProxyCommand=x", "status"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 3 and "bad host name" in r.stderr


# ---------------------------------------------------------------- SetParameters, CheckConfiguration

def test_set_parameters_rewrites_main_cf_and_reloads_smtpd(postern, mailbus):
    """mailctl config set (SetParameters): main.cf rewritten as postconf -e
    does (comments and order kept, the value replaced in place), and the
    running smtpd reloads: a new session sees the new banner."""
    mailbus.start()
    postern.configure(smtpd_banner="$myhostname ESMTP before")
    main_cf = postern.confdir / "main.cf"
    main_cf.write_text("# managed by hand\n" + main_cf.read_text() + "# the end\n")
    postern.start_qmgr()
    postern.start_smtpd()
    mailbus.wait_owner()
    c = postern.connect(greeting=False)
    assert c.reply().text == "220 mail.example.test ESMTP before"
    c.close()
    before = main_cf.read_text()
    r = mailbus.mailctl("config", "set", "smtpd_banner=$myhostname ESMTP after")
    assert r.returncode == 0, r.stderr
    after = main_cf.read_text()
    assert after == before.replace("smtpd_banner = $myhostname ESMTP before",
                                   "smtpd_banner = $myhostname ESMTP after"), after
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        c = postern.connect(greeting=False)
        text = c.reply().text
        c.close()
        if text == "220 mail.example.test ESMTP after":
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    r = mailbus.mailctl("config", "get", "smtpd_banner")
    assert r.stdout == "smtpd_banner = mail.example.test ESMTP after\n", r.stdout


def test_set_parameters_refuses_bad_values_and_names(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    main_cf = postern.confdir / "main.cf"
    before = main_cf.read_bytes()
    r = mailbus.gdbus_call(IFACE_MANAGER, "SetParameters",
                           "{'smtpd_timeout': 'soon', 'myhostname': 'x.example.test'}")
    assert dbus_error(r) == "org.postern.Mail1.Error.InvalidValue", r.stderr
    assert "smtpd_timeout" in r.stderr and "soon" in r.stderr, r.stderr
    r = mailbus.gdbus_call(IFACE_MANAGER, "SetParameters", "{'no_such_thing': 'x'}")
    assert dbus_error(r) == "org.postern.Mail1.Error.InvalidParameter", r.stderr
    r = mailbus.mailctl("config", "set", "smtpd_recipient_limit=-5")
    assert r.returncode == 1 and "smtpd_recipient_limit" in r.stderr, r.stderr
    assert main_cf.read_bytes() == before               # nothing written
    assert not list(postern.confdir.glob("main.cf.tmp*"))


def test_check_configuration(postern, mailbus):
    """mailctl check (CheckConfiguration) reports what postfix check would:
    here a missing table and a world-writable alias file."""
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    r = mailbus.mailctl("check")
    clean = r.stdout
    assert r.returncode == 0, r.stderr
    os.chmod(postern.aliases, 0o666)
    postern.configure(smtpd_recipient_restrictions="check_recipient_access hash:%s, "
                      "permit_mynetworks, reject_unauth_destination" % (postern.tmp / "nosuch"))
    r = mailbus.mailctl("check")
    assert r.returncode == 0, r.stderr                  # warnings only
    new = [l for l in r.stdout.splitlines() if l not in clean.splitlines()]
    main_cf = str(postern.confdir / "main.cf")
    assert any(l.startswith(main_cf + ":") and ": warning: parameter smtpd_recipient_restrictions: "
               "open database %s.cdb: No such file" % (postern.tmp / "nosuch") in l for l in new), \
        r.stdout
    assert ": warning: parameter alias_maps: alias file %s is world writable" % postern.aliases \
        in r.stdout, r.stdout
    r = mailbus.mailctl("check", "--json")
    assert sorted(json.loads(r.stdout)) == sorted(r2 for r2 in mailbus.mailctl("check").stdout
                                                  .splitlines())
    r = mailbus.mailctl("check", user=PLAIN_USER)
    assert r.returncode == 1 and r.stderr.startswith("mailctl: access denied: "), r.stderr
