"""The daemons as services: socket activation (systemd-socket-activate and
LISTEN_FDS), --listen, -o overrides, sd_notify, SIGHUP reload, SIGTERM,
configuration errors."""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import (DEFAULT_TIMEOUT, QMGR, SMTPD, Daemon, RawSmtp, free_port, listening_socket,
                      queue_id_of)


def wait_connect(port, timeout=DEFAULT_TIMEOUT, daemon=None, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return RawSmtp.connect(port, host=host)
        except ConnectionRefusedError:
            if daemon is not None:
                assert daemon.alive(), "%s exited:\n%s" % (daemon.name, daemon.log())
            assert time.monotonic() < deadline, "nothing listens on %d" % port
            time.sleep(0.02)


def test_systemd_socket_activate_two_listeners(postern):
    """systemd-socket-activate binds two ports with names smtp and
    submission; smtpd (exec'd on the first connection) serves both."""
    p = postern.configure()
    p.start_qmgr()
    p1, p2 = free_port(), free_port()
    env = p.env
    argv = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2,
            "--fdname=smtp:submission",
            "-E", "POSTERN_CONFIG_DIR=%s" % p.confdir, "-E", "POSTERN_LOG_STDERR=1",
            "-E", "ASAN_OPTIONS=%s" % env["ASAN_OPTIONS"],
            "-E", "UBSAN_OPTIONS=%s" % env["UBSAN_OPTIONS"], SMTPD]
    d = Daemon("socket-activate", argv, env, p.tmp)
    p.daemons.append(d)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while d.log().count("Listening on") < 2:
        assert d.alive() and time.monotonic() < deadline, d.log()
        time.sleep(0.02)
    for port in (p1, p2):
        c = RawSmtp.connect(port)
        g = c.reply()
        assert g.code == 220 and g.text.startswith("220 mail.example.test"), g
        c.expect("QUIT", 221)
        c.close()
    p.send("mailtest@example.test", subject="via submission", port=p2)
    (msg,) = p.wait_mbox("mailtest")
    assert b"\nSubject: via submission\n" in msg


def test_listen_fds_named_sockets(postern):
    """LISTEN_FDS/LISTEN_FDNAMES from the fixture: smtp and submission."""
    p = postern.configure()
    sub = listening_socket()
    p.start_qmgr()
    p.start_smtpd(listeners=[("submission", sub)])
    sub_port = sub.getsockname()[1]
    p.send("mailtest@example.test", subject="one", port=p.port)
    p.send("mailtest@example.test", subject="two", port=sub_port)
    assert len(p.wait_mbox("mailtest", 2)) == 2
    sub.close()


def test_listen_option_tcp_and_unix(postern):
    p = postern.configure()
    p.start_qmgr()
    port = free_port()
    path = str(p.tmp / "local.sock")
    d = Daemon("smtpd-listen", [SMTPD, "--config-dir", p.confdir, "--listen",
                                "smtp=127.0.0.1:%d" % port, "--listen", "local=%s" % path],
               p.env, p.tmp)
    p.daemons.append(d)
    c = wait_connect(port, daemon=d)
    assert c.reply().code == 220
    c.expect("QUIT", 221)
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    c = RawSmtp(u)
    assert c.reply().code == 220
    c.expect("EHLO localhost", 250)
    c.expect("MAIL FROM:<root@localhost>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: local socket\r\n\r\nhi\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert b"\nSubject: local socket\n" in msg


def test_inet_interfaces_without_listeners(postern):
    """Neither socket activation nor --listen: port 25 of each inet_interfaces
    address, as Postfix's master.cf smtp service (a loopback address of its
    own, so nothing else on the machine is in the way)."""
    addr = "127.0.0.%d" % (100 + os.getpid() % 100)
    p = postern.configure(inet_interfaces=addr, inet_protocols="ipv4")
    d = Daemon("smtpd-inet", [SMTPD, "--config-dir", p.confdir], p.env, p.tmp)
    p.daemons.append(d)
    c = wait_connect(25, host=addr, daemon=d)
    assert c.reply().text.startswith("220 mail.example.test ESMTP")
    c.expect("QUIT", 221)


def test_out_of_descriptors_pauses_accept(postern):
    """With every descriptor in use smtpd stops accepting for a moment
    instead of spinning on the readable listener, and serves the waiting
    clients once descriptors are free again."""
    p = postern.configure(smtpd_client_connection_count_limit=0)
    port = free_port()
    d = Daemon("smtpd-nofile", ["prlimit", "--nofile=48:48", "--", SMTPD, "--config-dir",
                                p.confdir, "--listen", "smtp=127.0.0.1:%d" % port],
               p.env, p.tmp)
    p.daemons.append(d)
    first = wait_connect(port, daemon=d)
    assert first.reply().code == 220
    held = [first]
    for _ in range(60):
        c = RawSmtp(socket.create_connection(("127.0.0.1", port), timeout=5))
        held.append(c)
    time.sleep(1.5)
    pid = d.proc.pid
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_before = int(fields[11]) + int(fields[12])
    time.sleep(2)
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_after = int(fields[11]) + int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    assert (cpu_after - cpu_before) / ticks < 0.5, "smtpd spins while out of descriptors"
    assert "pausing new connections" in d.log()
    for c in held:
        c.close()
    c = wait_connect(port, daemon=d)
    assert c.reply().code == 220
    c.expect("QUIT", 221)


def test_o_override(postern):
    p = postern.configure(smtpd_banner="$myhostname ESMTP from main.cf")
    p.start_qmgr()
    p.start_smtpd(args=["-o", "smtpd_banner=$myhostname ESMTP overridden"])
    g = p.connect(greeting=False).reply()
    assert g.text == "220 mail.example.test ESMTP overridden", g


def test_sighup_reloads(postern):
    p = postern.start(smtpd_banner="$myhostname ESMTP first")
    old = p.connect(greeting=False)
    assert old.reply().text == "220 mail.example.test ESMTP first"
    old.expect("EHLO client.example.test", 250)
    p.configure(smtpd_banner="$myhostname ESMTP second")
    p.smtpd.signal(signal.SIGHUP)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        c = p.connect(greeting=False)
        text = c.reply().text
        c.close()
        if text == "220 mail.example.test ESMTP second":
            break
        assert text == "220 mail.example.test ESMTP first", text
        assert time.monotonic() < deadline, "banner unchanged after SIGHUP"
        time.sleep(0.02)
    # the session that was open across the reload goes on
    old.expect("NOOP", 250)
    old.expect("MAIL FROM:<a@client.example.test>", 250)
    old.expect("RCPT TO:<mailtest@example.test>", 250)
    old.expect("DATA", 354)
    old.send("Subject: across reload\r\n\r\nx\r\n.\r\n")
    queue_id_of(old.expect(None, 250))
    p.wait_mbox("mailtest")
    p.qmgr.signal(signal.SIGHUP)
    p.send("mailtest@example.test", subject="after qmgr reload")
    p.wait_mbox("mailtest", 2)


def test_sd_notify(postern):
    p = postern.start()
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not (p.smtpd.notify.has("READY=1") and p.qmgr.notify.has("READY=1")):
        assert time.monotonic() < deadline, "READY=1 missing: smtpd %r qmgr %r" % (
            p.smtpd.notify.messages, p.qmgr.notify.messages)
        time.sleep(0.02)
    for d in (p.smtpd, p.qmgr):
        assert d.stop() == (0, False)
        assert d.notify.has("STOPPING=1"), d.notify.messages


def test_sigterm_with_idle_session(postern):
    """SIGTERM ends smtpd promptly and cleanly even with a client connected."""
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    start = time.monotonic()
    rc, killed = p.smtpd.stop()
    assert not killed and rc == 0, (rc, killed)
    assert time.monotonic() - start < 6
    data, closed = c.read_to_eof(5)
    assert closed
    assert data == b"" or data.startswith(b"421 "), data
    assert p.qmgr.stop() == (0, False)


def test_drops_privileges(postern):
    import pwd
    p = postern.start()
    uid = pwd.getpwnam("postern").pw_uid
    with open("/proc/%d/status" % p.smtpd.pid) as f:
        uids = [ln for ln in f if ln.startswith("Uid:")][0].split()[1:]
    assert all(int(u) == uid for u in uids), "smtpd runs with uids %r, not postern (%d)" % (uids, uid)
    st = os.stat(p.spool / "incoming")
    assert st.st_uid == 0 or st.st_uid == uid


@pytest.mark.parametrize("program", ["smtpd", "qmgr"])
def test_config_error_names_file_and_line(postern, program):
    p = postern
    p.write_main_cf("myhostname = mail.example.test\n"
                    "# a comment\n"
                    "message_size_limit = lots\n"
                    "queue_directory = %s\n" % p.spool)
    binary = SMTPD if program == "smtpd" else QMGR
    argv = [str(binary), "--config-dir", str(p.confdir)]
    if program == "smtpd":
        argv += ["--listen", "smtp=127.0.0.1:%d" % free_port()]
    r = subprocess.run(argv, env=p.env, capture_output=True, timeout=DEFAULT_TIMEOUT, text=True)
    assert r.returncode != 0
    assert "main.cf:3" in r.stderr, r.stderr
    for marker in ("ERROR: AddressSanitizer", "runtime error:"):
        assert marker not in r.stderr, r.stderr


def test_unknown_parameter_is_a_warning(postern):
    p = postern.configure()
    text = (p.confdir / "main.cf").read_text()
    n = text.count("\n") + 1
    p.write_main_cf(text + "no_such_parameter_here = 1\n")
    p.start_qmgr()
    p.start_smtpd()
    assert "main.cf:%d" % n in p.smtpd.log() and "no_such_parameter_here" in p.smtpd.log(), p.smtpd.log()
