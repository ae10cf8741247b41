"""postern-pop3d end to end (RFC 1939, 2449, 2595, 5034; Dovecot's reply
texts): every command and every state error on the wire, AUTH PLAIN and
LOGIN, STLS (with the CVE-2011-0411 injection) and pop3s, plaintext
refused without TLS, the failure delay and limits, IN-USE, timeouts;
maildir and mbox drops (byte-exact RETR/TOP, deletion semantics, UIDLs
stable across sessions and new deliveries, mail delivered during a
session, From_ lines in bodies, 10,000 messages), a virtual user from
MariaDB, privileges (the serving process runs as the mailbox owner), and
real clients: poplib, fetchmail, openssl s_client.

Mail is delivered through the real smtpd and qmgr where that matters
(what delivery writes is what pop3d must read), or written directly as
files (the 10,000-message maildir, hand-made mboxes).
"""

import os
import poplib
import pwd
import grp
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT, split_mbox
from mariadb_server import mariadb, write_cf  # noqa: F401 (mariadb is a fixture)
from pop3_fixture import (AUTH_FAILED, GREETING, IN_USE, LOGGED_IN, LOGGING_OUT, PASSWORDS,
                          PLAINTEXT_REFUSED, UNKNOWN, RawPop3, b64, crlf, proc_status,
                          socket_owners, stuffed, top_of)
from test_delivery import send_tricky
from tls_fixture import HOST, client_context

PW = PASSWORDS["poptest"]
CAPA_BASE = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
MAILDIR = {"home_mailbox": "Maildir/"}


def msg(subject, body=b"hello\n", to=b"poptest@example.test"):
    if isinstance(subject, str):
        subject = subject.encode()
    return (b"From: <sender@client.example.test>\nTo: <%s>\nSubject: %s\n\n" % (to, subject)
            + body)


def name(i, extra=""):
    """A maildir file name whose leading seconds give the delivery order."""
    return "%d.M%dP%d.testhost%s" % (1700000000 + i, i, 4000 + i, extra)


def delivery_order(items):
    """Maildir entries [(path, data)] in the order pop3d lists them
    (docs/pop3d.md): the name's leading seconds, then the name (without
    the ":2," info)."""
    def key(item):
        base = item[0].name.split(":2,")[0]
        return int(base.split(".")[0]), base
    return sorted(items, key=key)


def uidl_ok(uid):
    """RFC 1939 7: 1 to 70 characters in 0x21..0x7E."""
    return 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in uid)


def uidls(c):
    st, lines = c.multi("UIDL")
    assert st == "+OK", st
    out = []
    for ln in lines:
        n, uid = ln.split(" ")
        out.append((int(n), uid))
    return out


def mbox_messages(path):
    """The POP3 messages of an mbox file: each without its From_ line and
    without the blank separator line that ends it."""
    out = []
    for m in split_mbox(Path(path).read_bytes()):
        body = m.split(b"\n", 1)[1]
        assert body.endswith(b"\n\n") or body == b"\n", body[-20:]
        out.append(body[:-1])
    return out


def quit_ok(c):
    assert c.cmd("QUIT") == LOGGING_OUT
    data, closed = c.read_to_eof(5)
    assert (data, closed) == (b"", True)
    c.close()


def bind_from(addr, port):
    """A RawPop3 connected to 127.0.0.1:port from the local address addr."""
    s = socket.socket()
    s.settimeout(DEFAULT_TIMEOUT)
    s.bind((addr, 0))
    s.connect(("127.0.0.1", port))
    return RawPop3(s)


# ---------------------------------------------------------------- AUTHORIZATION

def test_greeting_capa_and_state_errors(pop3d):
    """Without a certificate plaintext logins are allowed; every command of
    the other state is "-ERR Unknown command."."""
    pop3d.start(**MAILDIR)
    md = pop3d.maildir()
    pop3d.put(md, msg("one"), name(1))

    c = pop3d.connect()
    st, caps = c.multi("CAPA")
    assert (st, caps) == ("+OK", CAPA_BASE + ["USER", "SASL PLAIN LOGIN"])
    for line in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP"):
        assert c.cmd(line) == UNKNOWN, line
    assert c.cmd("PASS %s" % PW) == "-ERR No username given."
    assert c.cmd("APOP poptest 0123456789abcdef0123456789abcdef") == "-ERR APOP is not enabled."
    assert c.cmd("STLS") == "-ERR TLS support isn't enabled."
    quit_ok(c)                       # QUIT in AUTHORIZATION: no UPDATE

    c = pop3d.connect()
    for line in ("RSET", "TOP 1 1", "UIDL", "LIST 1", "XYZZY"):
        assert c.cmd(line) == UNKNOWN, line
    assert c.cmd("user poptest") == "+OK"           # verbs in any case
    assert c.cmd("pass %s" % PW) == LOGGED_IN
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(msg("one")))
    quit_ok(c)

    c = pop3d.login()
    for line in ("USER poptest", "PASS %s" % PW, "APOP poptest 0123456789abcdef0123456789abcdef",
                 "AUTH PLAIN " + b64("\0poptest\0" + PW), "STLS"):
        assert c.cmd(line) == UNKNOWN, line
    st, caps = c.multi("CAPA")
    assert st == "+OK" and caps[:len(CAPA_BASE)] == CAPA_BASE, caps
    assert not any(cap.split()[0] in ("USER", "SASL", "STLS") for cap in caps), caps
    assert c.cmd("noop") == "+OK"
    quit_ok(c)
    assert pop3d.files(md) == {"new": [name(1)], "cur": []}


def test_capa_implementation(pop3d):
    pop3d.start(pop3d_implementation="Postern POP3 test")
    c = pop3d.connect()
    st, caps = c.multi("CAPA")
    assert (st, caps) == ("+OK", CAPA_BASE + ["USER", "SASL PLAIN LOGIN",
                                              "IMPLEMENTATION Postern POP3 test"])
    c.close()


def test_too_many_bad_commands_close(pop3d):
    pop3d.start()
    c = pop3d.connect()
    for i in range(9):
        assert c.cmd("XYZZY %d" % i) == UNKNOWN, i
    assert c.cmd("XYZZY 9") == "-ERR Too many bad commands."
    assert c.read_to_eof(5) == (b"", True)
    c.close()


def test_user_pass_login_forms_and_empty_mailbox(pop3d):
    pop3d.start(**MAILDIR)
    md = pop3d.maildir()
    pop3d.put(md, msg("mine"), name(1))
    pop3d.maildir("poptest2")
    # user@<a mydestination domain> is the same system user
    c = pop3d.login("poptest@example.test", PW)
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(msg("mine")))
    quit_ok(c)
    # a password with spaces: PASS takes the rest of the line
    c = pop3d.login("poptest2")
    assert c.cmd("STAT") == "+OK 0 0"
    assert c.multi("LIST") == ("+OK 0 messages:", [])
    assert c.multi("UIDL") == ("+OK", [])
    assert c.cmd("RETR 1") == "-ERR There's no message 1."
    quit_ok(c)


def test_auth_plain_and_login_exchanges(pop3d):
    pop3d.start(**MAILDIR)
    md = pop3d.maildir()
    pop3d.put(md, msg("one"), name(1))
    size = len(crlf(msg("one")))

    c = pop3d.connect()
    assert c.multi("AUTH") == ("+OK", ["PLAIN", "LOGIN"])
    assert c.cmd("AUTH PLAIN " + b64("\0poptest\0" + PW)) == LOGGED_IN
    assert c.cmd("STAT") == "+OK 1 %d" % size
    quit_ok(c)

    c = pop3d.connect()                        # PLAIN with an empty challenge
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.cmd(b64("\0poptest\0" + PW)) == LOGGED_IN
    quit_ok(c)

    c = pop3d.connect()                        # LOGIN's two challenges
    assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
    assert c.cmd(b64("poptest")) == "+ UGFzc3dvcmQ6"
    assert c.cmd(b64(PW)) == LOGGED_IN
    assert c.cmd("STAT") == "+OK 1 %d" % size
    quit_ok(c)

    c = pop3d.connect()                        # the same authzid as the login is fine
    assert c.cmd("auth plain " + b64("poptest\0poptest\0" + PW)) == LOGGED_IN
    quit_ok(c)

    # aborts and malformed exchanges are errors, not failed logins
    c = pop3d.connect()
    assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
    assert c.cmd("*") == "-ERR Authentication aborted."
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.cmd("*") == "-ERR Authentication aborted."
    assert c.cmd("AUTH PLAIN !!not-base64!!") == "-ERR Invalid base64 data."
    assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
    assert c.cmd("dXNlcg=x") == "-ERR Invalid base64 data."
    assert c.cmd("AUTH CRAM-MD5") == "-ERR Unsupported authentication mechanism."
    assert c.cmd("AUTH PLAIN " + b64("\0poptest\0" + PW)) == LOGGED_IN
    quit_ok(c)

    # no proxy logins: an authorization id other than the login fails
    c = pop3d.connect()
    assert c.cmd("AUTH PLAIN " + b64("poptest2\0poptest\0" + PW)) == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + b64("\0poptest\0wrong")) == AUTH_FAILED
    assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
    assert c.cmd(b64("poptest")) == "+ UGFzc3dvcmQ6"
    assert c.cmd(b64(PW)) == LOGGED_IN
    quit_ok(c)


def test_wrong_password_and_session_failure_limit(pop3d):
    pop3d.start(**MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    assert c.login("poptest", "wrong") == AUTH_FAILED
    assert c.login("nobody", "whatever") == AUTH_FAILED      # no user enumeration
    assert c.login("poptest2", PW) == AUTH_FAILED          # another user's password
    # the third failure (pop3d_sasl_failure_limit = 3) ends the session
    assert c.read_to_eof(5) == (b"", True)
    c.close()
    c = pop3d.login()
    quit_ok(c)


def test_login_right_after_a_failed_one(pop3d):
    """A client that tries again at once, in the same session, after a
    wrong password (what a person retyping it does) gets its answer: the
    second login is not taken for a protocol violation however fast it
    comes."""
    pop3d.start(pop3d_client_login_failure_limit=0, **MAILDIR)
    pop3d.maildir()
    results = []
    for _ in range(20):
        c = pop3d.connect()
        c.send("USER poptest\r\nPASS wrong\r\n")
        got = [c.line(), c.line()]
        assert got == ["+OK", AUTH_FAILED], got
        try:
            results.append(c.login("poptest", PW))
        except EOFError:
            results.append("EOF")
        c.close()
        time.sleep(0.05)          # the session's mail process ends before the next
    assert results == [LOGGED_IN] * 20, "%d of 20 second logins got no answer: %r" % (
        results.count("EOF"), results)


def test_login_failure_delay_grows(pop3d):
    pop3d.start(pop3d_sasl_failure_delay="1s", **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    times = []
    for _ in range(3):
        assert c.cmd("USER poptest") == "+OK"
        t0 = time.monotonic()
        assert c.cmd("PASS wrong") == AUTH_FAILED
        times.append(time.monotonic() - t0)
    t0 = time.monotonic()
    assert c.read_to_eof(5) == (b"", True)
    closed_after = time.monotonic() - t0
    c.close()
    assert 0.9 <= times[0] < 1.8 and 1.9 <= times[1] < 2.9 and 2.9 <= times[2] < 4.0, times
    assert closed_after < 1.0, closed_after
    # a good password in a new session is not delayed
    c = pop3d.connect()
    assert c.cmd("USER poptest") == "+OK"
    t0 = time.monotonic()
    assert c.cmd("PASS %s" % PW) == LOGGED_IN
    assert time.monotonic() - t0 < 0.8
    quit_ok(c)


def test_login_failure_limit_per_client_address(pop3d):
    pop3d.start(pop3d_client_login_failure_limit=3, anvil_rate_time_unit="60s", **MAILDIR)
    pop3d.maildir()
    for _ in range(3):
        c = pop3d.connect()
        assert c.login("poptest", "wrong") == AUTH_FAILED
        c.close()
    refused = "-ERR [SYS/TEMP] Too many failed logins from your address; try again later."
    c = RawPop3.connect(pop3d.port)
    first = c.line()
    # refused at once, or at the login (even with the right password)
    r = c.login("poptest", PW) if first == GREETING else first
    assert r == refused, r
    c.close()
    # another client address is not affected
    c = bind_from("127.0.0.2", pop3d.port)
    assert c.line() == GREETING
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)


def test_connection_limit_per_client_address(pop3d):
    pop3d.start(pop3d_client_connection_limit=2)
    held = [pop3d.connect(), pop3d.connect()]
    c = RawPop3.connect(pop3d.port)
    assert c.line() == "-ERR [SYS/TEMP] Too many connections from your address."
    assert c.read_to_eof(5) == (b"", True)
    c.close()
    other = bind_from("127.0.0.2", pop3d.port)
    assert other.line() == GREETING
    other.close()
    # a slot frees when a connection ends
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:
        c = RawPop3.connect(pop3d.port)
        first = c.line()
        if first == GREETING:
            break
        c.close()
        assert time.monotonic() < deadline, first
        time.sleep(0.1)
    c.close()
    for h in held:
        h.close()


def test_timeouts_before_and_after_login(pop3d):
    pop3d.start(pop3d_login_timeout="1s", pop3d_timeout="1s", **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    t0 = time.monotonic()
    assert c.line(5) == "-ERR Disconnected for inactivity."
    assert 0.9 <= time.monotonic() - t0 < 3.0
    assert c.read_to_eof(3) == (b"", True)
    c.close()

    c = pop3d.login()
    for _ in range(4):                     # each command restarts the clock
        time.sleep(0.6)
        assert c.cmd("NOOP") == "+OK"
    t0 = time.monotonic()
    assert c.line(5) == "-ERR Disconnected for inactivity."
    assert 0.9 <= time.monotonic() - t0 < 3.0
    assert c.read_to_eof(3) == (b"", True)
    c.close()


# ---------------------------------------------------------------- TRANSACTION on a maildir

M1 = msg("one", b"line one\n.leading dot\n..two dots\n.\nlast\n")
M2 = (b"Subject: two\r\n\r\nstored with CRLF\r\nbare\rCR\r\n")
M3 = msg("three", b"no final newline")


def three_messages(pop3d):
    md = pop3d.maildir()
    pop3d.put(md, M1, name(1))
    pop3d.put(md, M2, name(2, ":2,"), sub="cur")      # seen before, no flags
    pop3d.put(md, M3, name(3))
    return md


def test_transaction_commands_byte_exact(pop3d):
    pop3d.start(**MAILDIR)
    md = three_messages(pop3d)
    sizes = [len(crlf(m)) for m in (M1, M2, M3)]
    assert sizes[1] == len(M2)
    c = pop3d.login()
    assert c.cmd("STAT") == "+OK 3 %d" % sum(sizes)
    assert c.multi("LIST") == ("+OK 3 messages:", ["%d %d" % (i, s) for i, s in enumerate(sizes, 1)])
    assert c.cmd("LIST 2") == "+OK 2 %d" % sizes[1]
    assert c.cmd("LIST 4") == "-ERR There's no message 4."
    assert c.cmd("LIST 0") == "-ERR Invalid message number"
    assert c.cmd("LIST abc") == "-ERR Invalid message number"
    assert uidls(c) == [(1, name(1)), (2, name(2)), (3, name(3))]
    assert c.cmd("UIDL 3") == "+OK 3 %s" % name(3)

    st, data = c.retr_raw(1)
    assert st == "+OK %d octets" % sizes[0]
    assert data == stuffed(M1)
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\n" in data
    st, data = c.retr_raw(2)
    assert (st, data) == ("+OK %d octets" % sizes[1], M2 + b".\r\n")    # a bare CR stays
    st, data = c.retr_raw(3)
    assert (st, data) == ("+OK %d octets" % sizes[2], stuffed(M3))
    assert data.endswith(b"no final newline\r\n.\r\n")

    assert c.cmd("TOP 1 0") == "+OK"
    assert c.data() == stuffed(top_of(M1, 0))
    assert c.cmd("TOP 1 2") == "+OK"
    assert c.data() == stuffed(top_of(M1, 2))
    assert top_of(M1, 2).endswith(b"\r\n\r\nline one\r\n.leading dot\r\n")
    assert c.cmd("TOP 3 100") == "+OK"
    assert c.data() == stuffed(M3)

    # pipelined commands are answered in order
    c.send("STAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\n")
    assert [c.line() for _ in range(4)] == ["+OK 3 %d" % sum(sizes), "+OK 1 %d" % sizes[0],
                                            "+OK 1 %s" % name(1), "+OK"]

    assert c.cmd("DELE 2") == "+OK Marked to be deleted."
    for line in ("DELE 2", "RETR 2", "LIST 2", "UIDL 2", "TOP 2 1"):
        assert c.cmd(line) == "-ERR Message is deleted.", line
    assert c.cmd("STAT") == "+OK 2 %d" % (sizes[0] + sizes[2])
    assert c.multi("LIST") == ("+OK 2 messages:", ["1 %d" % sizes[0], "3 %d" % sizes[2]])
    assert uidls(c) == [(1, name(1)), (3, name(3))]
    assert c.cmd("RSET") == "+OK"
    assert c.cmd("STAT") == "+OK 3 %d" % sum(sizes)
    assert c.cmd("DELE 3") == "+OK Marked to be deleted."
    assert c.cmd("NOOP") == "+OK"
    quit_ok(c)
    # UPDATE: 3 is gone, the RETR'd new message moved to cur/ with the S flag
    # (the message retrieved from cur/ stays there)
    files = pop3d.files(md)
    assert files["new"] == [] and name(1) + ":2,S" in files["cur"], files
    assert len(files["cur"]) == 2 and any(f.startswith(name(2) + ":2,") for f in files["cur"])
    assert (md / "cur" / (name(1) + ":2,S")).read_bytes() == M1
    c = pop3d.login()
    assert uidls(c) == [(1, name(1)), (2, name(2))]
    quit_ok(c)


def test_poplib_session(pop3d):
    pop3d.start(**MAILDIR)
    md = three_messages(pop3d)
    sizes = [len(crlf(m)) for m in (M1, M2, M3)]
    p = poplib.POP3("127.0.0.1", pop3d.port, timeout=DEFAULT_TIMEOUT)
    assert p.getwelcome() == GREETING.encode()
    caps = p.capa()
    assert set(caps) == {"CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE",
                         "USER", "SASL"} and caps["SASL"] == ["PLAIN", "LOGIN"], caps
    with pytest.raises(poplib.error_proto) as e:
        p.stat()
    assert e.value.args[0] == UNKNOWN.encode()
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PW)
    assert e.value.args[0] == b"-ERR No username given."
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("APOP poptest 0123456789abcdef0123456789abcdef")
    assert e.value.args[0] == b"-ERR APOP is not enabled."
    with pytest.raises(poplib.error_proto) as e:
        p.stls()                 # poplib itself refuses: the server did not offer STLS
    assert p.user("poptest") == b"+OK"
    assert p.pass_(PW) == LOGGED_IN.encode()
    for cmd in ("USER poptest", "PASS x", "AUTH PLAIN", "STLS"):
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd(cmd)
        assert e.value.args[0] == UNKNOWN.encode(), cmd
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert (resp, lines) == (b"+OK 3 messages:", [b"%d %d" % (i, s) for i, s in enumerate(sizes, 1)])
    assert p.list(3) == b"+OK 3 %d" % sizes[2]
    resp, lines, _ = p.uidl()
    assert lines == [b"%d %s" % (i, name(i).encode()) for i in (1, 2, 3)]
    assert p.uidl(2) == b"+OK 2 %s" % name(2).encode()
    for i, m in enumerate((M1, M2, M3), 1):
        resp, lines, octets = p.retr(i)
        assert resp == b"+OK %d octets" % len(crlf(m))
        assert lines == crlf(m).split(b"\r\n")[:-1] and octets == len(crlf(m))
    resp, lines, _ = p.top(1, 1)
    assert resp == b"+OK" and lines == top_of(M1, 1).split(b"\r\n")[:-1]
    assert p.dele(1) == b"+OK Marked to be deleted."
    for call, arg in ((p.retr, 1), (p.dele, 1), (p.list, 1)):
        with pytest.raises(poplib.error_proto) as e:
            call(arg)
        assert e.value.args[0] == b"-ERR Message is deleted."
    with pytest.raises(poplib.error_proto) as e:
        p.retr(7)
    assert e.value.args[0] == b"-ERR There's no message 7."
    assert p.rset() == b"+OK"
    assert p.noop() == b"+OK"
    assert p.dele(3) == b"+OK Marked to be deleted."
    assert p.quit() == LOGGING_OUT.encode()
    files = pop3d.files(md)
    assert files["new"] == [] and sorted(f.split(":")[0] for f in files["cur"]) == \
        [name(1), name(2)], files


# ---------------------------------------------------------------- deletion semantics

@pytest.mark.parametrize("box", ["maildir", "mbox"])
@pytest.mark.parametrize("how", ["rset-quit", "dropped", "quit"])
def test_deletion_only_at_quit(pop3d, box, how):
    """DELE marks; RSET unmarks; a connection that ends without QUIT in
    TRANSACTION (RFC 1939 6) deletes nothing; QUIT deletes."""
    msgs = [msg("del-%d" % i, b"body %d\n" % i) for i in range(3)]
    if box == "maildir":
        pop3d.start(**MAILDIR)
        md = pop3d.maildir()
        for i, m in enumerate(msgs):
            pop3d.put(md, m, name(i))

        def stored():
            return [(md / sub / f).read_bytes() for sub, fs in pop3d.files(md).items() for f in fs]
    else:
        pop3d.mail_spool_as_debian()
        pop3d.start()
        path = pop3d.p.mbox_path("poptest")
        path.write_bytes(b"".join(b"From sender@client.example.test  Mon Jan  1 00:00:0%d 2024\n"
                                  % i + m + b"\n" for i, m in enumerate(msgs)))
        pw = pwd.getpwnam("poptest")
        os.chown(path, pw.pw_uid, grp.getgrnam("mail").gr_gid)
        os.chmod(path, 0o600)

        def stored():
            return mbox_messages(path)
    before = sorted(stored())
    before_bytes = path.read_bytes() if box == "mbox" else None
    c = pop3d.login()
    assert c.cmd("STAT").startswith("+OK 3 ")
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    assert c.cmd("DELE 3") == "+OK Marked to be deleted."
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(msgs[1]))
    if how == "rset-quit":
        assert c.cmd("RSET") == "+OK"
        quit_ok(c)
        assert sorted(stored()) == before
        if box == "mbox":
            assert path.read_bytes() == before_bytes
    elif how == "dropped":
        c.close()
        c = pop3d.login_retry()          # the dropped session is over once its lock is free
        assert c.cmd("STAT").startswith("+OK 3 ")
        quit_ok(c)
        assert sorted(stored()) == before
        if box == "mbox":
            assert path.read_bytes() == before_bytes
    else:
        quit_ok(c)
        assert stored() == [msgs[1]]
        c = pop3d.login()
        assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(msgs[1]))
        st, data = c.retr_raw(1)
        assert data == stuffed(msgs[1])
        quit_ok(c)


# ---------------------------------------------------------------- IN-USE

@pytest.mark.parametrize("box", ["maildir", "mbox"])
def test_second_session_in_use(pop3d, box):
    if box == "maildir":
        pop3d.start(**MAILDIR)
        pop3d.put(pop3d.maildir(), msg("one"), name(1))
    else:
        pop3d.mail_spool_as_debian()
        pop3d.start()
    a = pop3d.login()
    b = pop3d.connect()
    assert b.login("poptest", PW) == IN_USE
    assert b.read_to_eof(5) == (b"", True)
    b.close()
    # the same mailbox by its other name is the same lock
    b = pop3d.connect()
    assert b.login("poptest@example.test", PW) == IN_USE
    b.close()
    assert a.cmd("STAT").startswith("+OK ")
    quit_ok(a)
    c = pop3d.login_retry()
    quit_ok(c)


# ---------------------------------------------------------------- TLS

def test_plaintext_refused_until_stls(pop3d, certs):
    pop3d.start(certs=certs, **MAILDIR)
    pop3d.put(pop3d.maildir(), msg("secret"), name(1))
    c = pop3d.connect()
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["STLS"])
    assert c.cmd("USER poptest") == PLAINTEXT_REFUSED
    assert c.cmd("PASS %s" % PW) == PLAINTEXT_REFUSED
    assert c.cmd("AUTH PLAIN " + b64("\0poptest\0" + PW)) == PLAINTEXT_REFUSED
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls(client_context(certs))
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["USER", "SASL PLAIN LOGIN"])
    assert c.cmd("STLS") == "-ERR TLS is already active."
    assert c.login("poptest", PW) == LOGGED_IN
    st, data = c.retr_raw(1)
    assert (st, data) == ("+OK %d octets" % len(crlf(msg("secret"))), stuffed(msg("secret")))
    quit_ok(c)
    # AUTH over TLS too
    c = pop3d.connect()
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls(client_context(certs))
    assert c.cmd("AUTH PLAIN " + b64("\0poptest\0" + PW)) == LOGGED_IN
    quit_ok(c)


def test_plaintext_auth_networks(pop3d, certs):
    pop3d.start(certs=certs, pop3d_plaintext_auth_networks="127.0.0.1/32", **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["USER", "SASL PLAIN LOGIN", "STLS"])
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)
    c = bind_from("127.0.0.2", pop3d.port)     # not in the list
    assert c.line() == GREETING
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["STLS"])
    assert c.cmd("USER poptest") == PLAINTEXT_REFUSED
    c.close()


def test_tls_security_level_none_and_encrypt(pop3d, certs):
    # none: a certificate is configured but TLS is off; plaintext is allowed
    pop3d.start(certs=certs, pop3d_tls_security_level="none", **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["USER", "SASL PLAIN LOGIN"])
    assert c.cmd("STLS") == "-ERR TLS support isn't enabled."
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)
    pop3d.daemon.stop()
    # encrypt: no login before TLS, whatever the plaintext networks say
    pop3d.start(certs=certs, pop3d_tls_security_level="encrypt",
                pop3d_plaintext_auth_networks="127.0.0.0/8", **MAILDIR)
    c = pop3d.connect()
    assert c.multi("CAPA") == ("+OK", CAPA_BASE + ["STLS"])
    assert c.cmd("USER poptest") == PLAINTEXT_REFUSED
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls(client_context(certs))
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)


def test_stls_discards_pipelined_plaintext(pop3d, certs):
    """CVE-2011-0411 for POP3: commands in the same packet as STLS must not
    run inside the TLS session."""
    pop3d.start(certs=certs, **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    c.send("STLS\r\nUSER poptest\r\n")
    assert c.line() == "+OK Begin TLS negotiation now."
    assert c.buf == b""
    c.starttls(client_context(certs))
    assert c.cmd("PASS %s" % PW) == "-ERR No username given."
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)


def test_stls_starts_the_session_over(pop3d, certs):
    pop3d.start(certs=certs, pop3d_plaintext_auth_networks="127.0.0.0/8", **MAILDIR)
    pop3d.maildir()
    c = pop3d.connect()
    assert c.cmd("USER poptest") == "+OK"
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls(client_context(certs))
    assert c.cmd("PASS %s" % PW) == "-ERR No username given."
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)


def test_openssl_s_client_starttls_pop3(pop3d, certs):
    pop3d.start(certs=certs, **MAILDIR)
    m = msg("via s_client", b"hello from s_client\n.dot\n")
    pop3d.put(pop3d.maildir(), m, name(1))
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % pop3d.port,
                        "-starttls", "pop3", "-crlf", "-CAfile", str(certs["ca"]),
                        "-verify_hostname", HOST, "-verify_return_error", "-brief", "-ign_eof"],
                       input=b"USER poptest\nPASS %s\nSTAT\nRETR 1\nQUIT\n" % PW.encode(),
                       capture_output=True, timeout=DEFAULT_TIMEOUT * 2)
    out = r.stdout + r.stderr
    text = out.decode(errors="replace")
    assert r.returncode == 0, text
    assert "Verification: OK" in text and "Protocol version: TLSv1.3" in text, text
    expected = (b"+OK\r\n+OK Logged in.\r\n+OK 1 %d\r\n+OK %d octets\r\n" % (len(crlf(m)), len(crlf(m)))
                + stuffed(m) + b"+OK Logging out.\r\n")
    assert expected in r.stdout, r.stdout


def test_pop3s_with_poplib(pop3d, certs):
    # the pop3d_ parameters themselves (not the smtpd_ defaults)
    pop3d.start(pop3s=True, pop3d_tls_cert_file=certs["crt"], pop3d_tls_key_file=certs["key"],
                **MAILDIR)
    m = msg("over pop3s")
    pop3d.put(pop3d.maildir(), m, name(1))
    p = poplib.POP3_SSL("127.0.0.1", pop3d.pop3s_port, context=client_context(certs),
                        timeout=DEFAULT_TIMEOUT)
    assert p.sock.version() == "TLSv1.3"
    assert p.sock.getpeercert()["subject"] == ((("commonName", HOST),),)
    assert p.getwelcome() == GREETING.encode()
    caps = p.capa()
    assert "USER" in caps and "STLS" not in caps, caps
    assert p.user("poptest") == b"+OK" and p.pass_(PW) == LOGGED_IN.encode()
    assert p.stat() == (1, len(crlf(m)))
    _, lines, _ = p.retr(1)
    assert lines == crlf(m).split(b"\r\n")[:-1]
    assert p.dele(1) == b"+OK Marked to be deleted."
    assert p.quit() == LOGGING_OUT.encode()
    assert pop3d.files(pop3d.p.home("poptest") / "Maildir") == {"new": [], "cur": []}
    # the plaintext listener offers STLS with the same certificate
    c = pop3d.connect()
    assert c.cmd("STLS") == "+OK Begin TLS negotiation now."
    c.starttls(client_context(certs))
    assert c.login("poptest", PW) == LOGGED_IN
    quit_ok(c)


# ---------------------------------------------------------------- fetchmail

def fetchmail(pop3d, out, port=None, extra='  sslproto ""\n', args=()):
    """fetchmail as a real client: one poll of poptest, each message
    appended to out by its MDA.  Returns the CompletedProcess.  (fetchmail
    6.4 requires TLS unless told sslproto "": the default for the plaintext
    tests.)"""
    home = pop3d.p.tmp / "fetchmail"
    home.mkdir(mode=0o700, exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text('poll 127.0.0.1 service %d protocol pop3 timeout 10\n'
                  '  user "poptest" there with password "%s" is "root" here\n'
                  '  mda "cat >> %s" no rewrite\n%s\n' % (port or pop3d.port, PW, out, extra))
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(home), HOME=str(home))
    return subprocess.run(["fetchmail", "-f", str(rc), "-N", "--nosyslog", "-v", "--invisible",
                           "-i", str(home / "fetchids"), "--pidfile", str(home / "pid"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def delivered_maildir(p, n):
    """The files of poptest's maildir after n deliveries, in POP3 order."""
    return [data for _, data in delivery_order(p.wait_maildir("poptest", n))]


def test_fetchmail_retrieves_and_empties_the_mailbox(pop3d):
    pop3d.start(smtp=True, **MAILDIR)
    p = pop3d.p
    send_tricky(p, to="poptest@example.test")
    p.send("poptest@example.test", subject="second", body="second message\r\n")
    stored = delivered_maildir(p, 2)
    out = p.tmp / "fetched"
    r = fetchmail(pop3d, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 messages for poptest at 127.0.0.1" in r.stdout + r.stderr, r.stdout + r.stderr
    # the MDA gets each message as stored (LF line ends, dots unstuffed)
    assert out.read_bytes() == b"".join(stored)
    assert b"\n.\n" in out.read_bytes() and b"\n.leading dot\n" in out.read_bytes()
    md = p.home("poptest") / "Maildir"
    assert pop3d.files(md) == {"new": [], "cur": []}
    r = fetchmail(pop3d, out)
    assert r.returncode == 1, r.stdout + r.stderr        # no mail
    assert "No mail for poptest at 127.0.0.1" in r.stdout + r.stderr


def test_fetchmail_keep_uses_stable_uidls(pop3d):
    pop3d.start(smtp=True, **MAILDIR)
    p = pop3d.p
    p.send("poptest@example.test", subject="keep-1", body="one\r\n")
    p.send("poptest@example.test", subject="keep-2", body="two\r\n")
    stored = delivered_maildir(p, 2)
    md = p.home("poptest") / "Maildir"
    files = pop3d.files(md)
    out = p.tmp / "fetched"
    r = fetchmail(pop3d, out, args=["--keep", "--uidl"])
    assert r.returncode == 0, r.stdout + r.stderr
    # with --keep fetchmail reads by TOP (no RETR: nothing is marked seen)
    assert "POP3> TOP 1 99999999" in r.stdout + r.stderr, r.stdout + r.stderr
    assert out.read_bytes() == b"".join(stored)
    assert pop3d.files(md) == files
    # nothing new: fetchmail knows both UIDLs
    r = fetchmail(pop3d, out, args=["--keep", "--uidl"])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "POP3> TOP" not in r.stdout + r.stderr and "POP3> RETR" not in r.stdout + r.stderr
    p.send("poptest@example.test", subject="keep-3", body="three\r\n")
    delivered_maildir(p, 3)
    r = fetchmail(pop3d, out, args=["--keep", "--uidl"])
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.read_bytes()
    assert [data.count(b"Subject: keep-%d" % i) for i in (1, 2, 3)] == [1, 1, 1], data
    assert len(pop3d.files(md)["new"]) == 3
    # without --keep the next poll takes all three and empties the maildir
    out.unlink()
    r = fetchmail(pop3d, out, args=["--all"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "POP3> RETR 3" in r.stdout + r.stderr and "POP3> DELE 3" in r.stdout + r.stderr
    assert out.read_bytes().count(b"Subject: keep-") == 3
    assert pop3d.files(md) == {"new": [], "cur": []}


@pytest.mark.parametrize("mode", ["stls", "pop3s"])
def test_fetchmail_over_tls(pop3d, certs, mode):
    pop3d.start(certs=certs, pop3s=True, smtp=True, **MAILDIR)
    p = pop3d.p
    p.send("poptest@example.test", subject="tls fetch", body="over tls\r\n")
    (stored,) = delivered_maildir(p, 1)
    out = p.tmp / "fetched"
    tls = ('  sslproto "TLS1.2+" sslcertck sslcertfile "%s" sslcommonname "%s"\n'
           % (certs["ca"], HOST))
    if mode == "pop3s":
        r = fetchmail(pop3d, out, port=pop3d.pop3s_port, extra=tls + "  ssl\n")
    else:
        r = fetchmail(pop3d, out, extra=tls)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    if mode == "stls":
        assert "POP3> STLS" in log and "POP3< +OK Begin TLS negotiation now." in log, log
    else:
        assert "POP3> STLS" not in log, log
    assert re.search(r"TLSv1\.[23]", log), log
    assert out.read_bytes() == stored
    assert pop3d.files(p.home("poptest") / "Maildir") == {"new": [], "cur": []}


# ---------------------------------------------------------------- big maildir

def test_maildir_of_10000_messages(pop3d):
    pop3d.start(**MAILDIR)
    md = pop3d.maildir()
    n = 10000
    msgs = {}
    t0 = time.monotonic()
    pw = pwd.getpwnam("poptest")
    for i in range(1, n + 1):
        m = b"Subject: message %d\nX-Pad: %s\n\nbody of message %d\n.dot %d\n" % (
            i, b"x" * (i % 50), i, i)
        # the name's size fields, as delivery writes them
        nm = name(i, ",S=%d,W=%d" % (len(m), len(crlf(m))))
        path = md / "new" / nm
        path.write_bytes(m)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        msgs[i] = (nm, m)
    write_time = time.monotonic() - t0
    total = sum(len(crlf(m)) for _, m in msgs.values())

    t0 = time.monotonic()
    c = pop3d.login()
    assert c.cmd("STAT", timeout=30) == "+OK %d %d" % (n, total)
    login_stat = time.monotonic() - t0
    st, lines = c.multi("LIST", timeout=30)
    assert st == "+OK %d messages:" % n and len(lines) == n
    for i in (1, 2, 5000, 9999, 10000):
        assert lines[i - 1] == "%d %d" % (i, len(crlf(msgs[i][1])))
    got = uidls(c)
    assert got == [(i, msgs[i][0]) for i in range(1, n + 1)]
    assert len(set(u for _, u in got)) == n
    for i in (1, 4321, 10000):
        st, data = c.retr_raw(i)
        assert (st, data) == ("+OK %d octets" % len(crlf(msgs[i][1])), stuffed(msgs[i][1]))
    assert c.cmd("LIST 10001") == "-ERR There's no message 10001."
    assert c.cmd("DELE 2") == "+OK Marked to be deleted."
    assert c.cmd("DELE 9999") == "+OK Marked to be deleted."
    t1 = time.monotonic()
    quit_ok(c)
    quit_time = time.monotonic() - t1
    session = time.monotonic() - t0
    files = pop3d.files(md)
    assert len(files["new"]) == n - 5 and sorted(files["cur"]) == sorted(
        msgs[i][0] + ":2,S" for i in (1, 4321, 10000))
    t0 = time.monotonic()
    c = pop3d.login()
    assert c.cmd("STAT", timeout=30) == "+OK %d %d" % (
        n - 2, total - len(crlf(msgs[2][1])) - len(crlf(msgs[9999][1])))
    assert c.cmd("UIDL 1") == "+OK 1 %s" % msgs[1][0]          # moved to cur/, same UIDL
    assert c.cmd("UIDL 9998") == "+OK 9998 %s" % msgs[10000][0]
    quit_ok(c)
    second = time.monotonic() - t0
    assert login_stat < 5 and quit_time < 5 and session < 20 and second < 5, \
        "write %.1fs, login+STAT %.2fs, QUIT %.2fs, session %.1fs, second login %.2fs" % (
            write_time, login_stat, quit_time, session, second)


# ---------------------------------------------------------------- UIDLs across deliveries

def test_maildir_uidls_stable_after_new_deliveries(pop3d):
    pop3d.start(smtp=True, **MAILDIR)
    p = pop3d.p
    p.send("poptest@example.test", subject="u1")
    p.wait_maildir("poptest", 1)
    p.send("poptest@example.test", subject="u2")
    first = delivery_order(p.wait_maildir("poptest", 2))
    names = [path.name for path, _ in first]
    c = pop3d.login()
    u = uidls(c)
    assert u == [(1, names[0]), (2, names[1])], (u, names)
    assert all(uidl_ok(x) for _, x in u)
    st, data = c.retr_raw(1)
    assert data == stuffed(first[0][1])
    quit_ok(c)
    assert (p.home("poptest") / "Maildir" / "cur" / (names[0] + ":2,S")).exists()
    time.sleep(1.1)          # a later second: the new message sorts last
    p.send("poptest@example.test", subject="u3")
    third = p.wait_maildir("poptest", 3)
    new = [path.name for path, _ in third if path.parent.name == "new" and path.name != names[1]]
    assert len(new) == 1
    c = pop3d.login()
    assert uidls(c) == [(1, names[0]), (2, names[1]), (3, new[0])]
    st, data = c.retr_raw(3)
    assert b"Subject: u3\r\n" in data
    quit_ok(c)


def test_mbox_uidls_stable_after_new_deliveries_and_deletion(pop3d):
    pop3d.mail_spool_as_debian()
    pop3d.start(smtp=True)
    p = pop3d.p
    for i in (1, 2, 3):
        p.send("poptest@example.test", subject="m%d" % i, body="same body\r\n")
        p.wait_mbox("poptest", i)
    c = pop3d.login()
    u1 = [u for _, u in uidls(c)]
    assert len(u1) == 3 and len(set(u1)) == 3 and all(uidl_ok(x) for x in u1), u1
    quit_ok(c)
    c = pop3d.login()                         # a second session: the same UIDLs
    assert [u for _, u in uidls(c)] == u1
    quit_ok(c)
    p.send("poptest@example.test", subject="m4", body="same body\r\n")
    p.wait_mbox("poptest", 4)
    c = pop3d.login()
    u2 = uidls(c)
    assert [u for _, u in u2][:3] == u1 and u2[3][1] not in u1, (u1, u2)
    assert c.cmd("DELE 2") == "+OK Marked to be deleted."
    quit_ok(c)
    c = pop3d.login()
    assert uidls(c) == [(1, u1[0]), (2, u1[2]), (3, u2[3][1])]
    st, data = c.retr_raw(2)
    assert b"Subject: m3\r\n" in data
    quit_ok(c)
    msgs = p.mbox("poptest")
    assert [re.search(rb"Subject: (m\d)", m).group(1) for m in msgs] == [b"m1", b"m3", b"m4"]


# ---------------------------------------------------------------- mbox contents

def test_mbox_from_lines_in_bodies_delivered_by_qmgr(pop3d):
    pop3d.mail_spool_as_debian()
    pop3d.start(smtp=True)
    p = pop3d.p
    send_tricky(p, to="poptest@example.test")
    p.send("poptest@example.test", subject="after", body="From me\r\nagain\r\n")
    p.wait_mbox("poptest", 2)
    stored = mbox_messages(p.mbox_path("poptest"))
    assert len(stored) == 2
    assert b"\n>From the start of a line\n>From already quoted\n From not at the start\n" \
        in stored[0]
    c = pop3d.login()
    assert c.cmd("STAT") == "+OK 2 %d" % sum(len(crlf(m)) for m in stored)
    for i, m in enumerate(stored, 1):
        st, data = c.retr_raw(i)
        # mboxo: the quoted lines are sent as stored
        assert (st, data) == ("+OK %d octets" % len(crlf(m)), stuffed(m)), i
    st, data = c.retr_raw(1)
    assert b"\r\n..leading dot\r\n...two dots\r\n..\r\n>From the start of a line\r\n" in data
    assert c.cmd("TOP 2 1") == "+OK"
    assert c.data().endswith(b"\r\n\r\n>From me\r\n.\r\n")
    quit_ok(c)
    assert mbox_messages(p.mbox_path("poptest")) == stored      # nothing deleted: unchanged


MBOX_1 = (b"From alice@example.test  Mon Jan  1 00:00:00 2024\n"
          b"Subject: one\n\n>From the quoted line\n From with a space\n>>From twice\n.dot\n\n")
MBOX_TWIN = (b"From bob@example.test  Mon Jan  1 00:00:01 2024\n"
             b"Subject: twin\n\nsame\n\n")


def test_mbox_hand_written_with_identical_messages(pop3d):
    pop3d.mail_spool_as_debian()
    pop3d.start()
    path = pop3d.p.mbox_path("poptest")
    path.write_bytes(MBOX_1 + MBOX_TWIN + MBOX_TWIN)
    os.chown(path, pwd.getpwnam("poptest").pw_uid, grp.getgrnam("mail").gr_gid)
    os.chmod(path, 0o600)
    body1 = MBOX_1.split(b"\n", 1)[1][:-1]
    twin = MBOX_TWIN.split(b"\n", 1)[1][:-1]
    c = pop3d.login()
    assert c.cmd("STAT") == "+OK 3 %d" % (len(crlf(body1)) + 2 * len(crlf(twin)))
    st, data = c.retr_raw(1)
    assert data == (b"Subject: one\r\n\r\n>From the quoted line\r\n From with a space\r\n"
                    b">>From twice\r\n..dot\r\n.\r\n")
    u = [x for _, x in uidls(c)]
    assert len(set(u)) == 3, u
    assert c.cmd("DELE 2") == "+OK Marked to be deleted."
    quit_ok(c)
    # the rewrite keeps the others byte for byte, From_ lines included
    assert path.read_bytes() == MBOX_1 + MBOX_TWIN
    c = pop3d.login()
    assert [x for _, x in uidls(c)] == [u[0], u[2]]
    quit_ok(c)


# ---------------------------------------------------------------- delivery during a session

def test_maildir_delivery_during_session(pop3d):
    pop3d.start(smtp=True, **MAILDIR)
    p = pop3d.p
    p.send("poptest@example.test", subject="before")
    ((path1, m1),) = p.wait_maildir("poptest", 1)
    c = pop3d.login()
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(m1))
    p.send("poptest@example.test", subject="during")
    later = p.wait_maildir("poptest", 2)
    (path2, m2) = [x for x in later if x[0] != path1][0]
    # the open session's view does not change
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(m1))
    assert c.multi("LIST") == ("+OK 1 messages:", ["1 %d" % len(crlf(m1))])
    assert c.cmd("RETR 2") == "-ERR There's no message 2."
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    quit_ok(c)
    md = p.home("poptest") / "Maildir"
    assert pop3d.files(md) == {"new": [path2.name], "cur": []}
    c = pop3d.login()
    assert uidls(c) == [(1, path2.name)]
    st, data = c.retr_raw(1)
    assert (st, data) == ("+OK %d octets" % len(crlf(m2)), stuffed(m2))
    quit_ok(c)


def test_mbox_delivery_during_session(pop3d):
    """The session holds the mbox locks: a delivery meanwhile waits (or is
    deferred and retried); nothing is lost at QUIT, the next session sees
    it."""
    pop3d.mail_spool_as_debian()
    pop3d.start(smtp=True)
    p = pop3d.p
    p.send("poptest@example.test", subject="before", body="first\r\n")
    p.send("poptest@example.test", subject="kept", body="kept\r\n")
    p.wait_mbox("poptest", 2)
    stored = mbox_messages(p.mbox_path("poptest"))
    c = pop3d.login()
    assert c.cmd("STAT") == "+OK 2 %d" % sum(len(crlf(m)) for m in stored)
    p.send("poptest@example.test", subject="during", body="during\r\n")
    time.sleep(1.5)
    assert c.cmd("STAT") == "+OK 2 %d" % sum(len(crlf(m)) for m in stored)
    assert c.cmd("RETR 3") == "-ERR There's no message 3."
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    quit_ok(c)
    deadline = time.monotonic() + 15
    while True:
        subjects = [re.search(rb"\nSubject: (\S+)", m).group(1)
                    for m in mbox_messages(p.mbox_path("poptest"))]
        if b"during" in subjects or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert subjects == [b"kept", b"during"], subjects
    p.wait_queue_empty()
    c = pop3d.login()
    assert c.cmd("STAT").startswith("+OK 2 ")
    st, data = c.retr_raw(2)
    assert b"Subject: during\r\n" in data and data.endswith(b"\r\nduring\r\n.\r\n")
    quit_ok(c)


# ---------------------------------------------------------------- virtual users from MariaDB

def test_virtual_user_from_mariadb(pop3d, mariadb):
    db = mariadb
    db.sql("CREATE TABLE IF NOT EXISTS mail.pop3_users (username VARCHAR(64), "
           "realm VARCHAR(64), password VARCHAR(128));"
           "DELETE FROM mail.pop3_users;"
           "INSERT INTO mail.pop3_users VALUES ('alice', 'virt.test', 'alice-pop3'),"
           " ('gone', 'virt.test', 'gone-pop3');"
           "GRANT SELECT ON mail.pop3_users TO 'postern'@'127.0.0.1';")
    pop3d.write_sasl_conf(
        "pwcheck_method: auxprop\nauxprop_plugin: sql\nmech_list: PLAIN LOGIN\n"
        "sql_engine: mysql\nsql_hostnames: 127.0.0.1:%d\nsql_user: postern\n"
        "sql_passwd: sec'ret\nsql_database: mail\n"
        "sql_select: SELECT password FROM pop3_users WHERE username = '%%u' AND realm = '%%r'\n"
        % db.port)
    p = pop3d.p
    pw = pwd.getpwnam("poptest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    pop3d.start(smtp=True, pop3d_sasl_local_domain="",
                virtual_mailbox_domains="virt.test", virtual_mailbox_base=str(base),
                virtual_mailbox_maps=write_cf(
                    p, db, "mailboxes.cf",
                    "SELECT maildir FROM virtual_mailboxes WHERE email = '%s' AND active = 1"),
                virtual_uid_maps="static:%d" % pw.pw_uid, virtual_gid_maps="static:%d" % pw.pw_gid)
    send_tricky(p, to="alice@virt.test")
    new = base / "virt.test" / "alice" / "new"
    p._wait("virtual maildir", lambda: sorted(new.iterdir()) if new.is_dir() else [], 1, 10)
    (path,) = sorted(new.iterdir())
    stored = path.read_bytes()

    c = pop3d.connect()
    assert c.login("alice@virt.test", "wrong") == AUTH_FAILED
    c.close()
    c = pop3d.connect()
    assert c.login("alice@virt.test", "alice-pop3") == LOGGED_IN
    assert c.cmd("STAT") == "+OK 1 %d" % len(crlf(stored))
    assert uidls(c) == [(1, path.name)]
    st, data = c.retr_raw(1)
    assert (st, data) == ("+OK %d octets" % len(crlf(stored)), stuffed(stored))
    # served as the virtual uid
    owners = [proc_status(pid) for pid in socket_owners(c.local_port)]
    assert any(s and s["Uid"].split() == [str(pw.pw_uid)] * 4 for s in owners), owners
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    quit_ok(c)
    assert not path.exists() and list(new.iterdir()) == []
    # AUTH PLAIN with the same store
    c = pop3d.connect()
    assert c.cmd("AUTH PLAIN " + b64("\0alice@virt.test\0alice-pop3")) == LOGGED_IN
    assert c.cmd("STAT") == "+OK 0 0"
    quit_ok(c)
    # a password in the store but no active mailbox: no login
    c = pop3d.connect()
    r = c.login("gone@virt.test", "gone-pop3")
    assert r.startswith("-ERR "), r
    c.close()


# ---------------------------------------------------------------- privileges

def uids(st):
    return [int(x) for x in st["Uid"].split()]


def gids(st):
    return [int(x) for x in st["Gid"].split()]


def test_maildir_served_as_its_owner(pop3d):
    pop3d.start(**MAILDIR)
    pw = pwd.getpwnam("poptest")
    owner = pwd.getpwnam("postern")
    md = pop3d.maildir()                        # 0700 dirs, 0600 files: only poptest reads
    os.chmod(pop3d.p.home("poptest"), 0o700)
    for i in (1, 2, 3):
        pop3d.put(md, msg("private %d" % i), name(i))
    c = pop3d.connect()
    before = pop3d.children()
    assert before and all(uids(st) == [owner.pw_uid] * 4 for st in before.values()), before
    assert c.login("poptest", PW) == LOGGED_IN
    st, data = c.retr_raw(1)
    assert data == stuffed(msg("private 1"))
    # the process holding the client's connection now runs as poptest, for good
    holders = {pid: proc_status(pid) for pid in socket_owners(c.local_port)}
    holders = {pid: s for pid, s in holders.items() if s is not None and pid != os.getpid()}
    mine = [s for s in holders.values() if uids(s) == [pw.pw_uid] * 4]
    assert mine, holders
    for s in mine:
        assert gids(s) == [pw.pw_gid] * 4, s
        assert "0" not in s["Groups"].split(), s
        assert int(s["CapEff"], 16) == 0 and int(s["CapPrm"], 16) == 0, s
    assert not any(uids(s)[0] == 0 for s in holders.values()), holders
    kids = pop3d.children()
    assert all(uids(s)[0] in (owner.pw_uid, pw.pw_uid) for s in kids.values()), kids
    assert c.cmd("DELE 2") == "+OK Marked to be deleted."
    quit_ok(c)
    # everything the server left in the maildir belongs to poptest
    for dirpath, dirnames, filenames in os.walk(md):
        for f in dirnames + filenames:
            s = os.lstat(os.path.join(dirpath, f))
            assert (s.st_uid, s.st_gid) == (pw.pw_uid, pw.pw_gid), os.path.join(dirpath, f)
    assert pop3d.files(md) == {"new": [name(3)], "cur": [name(1) + ":2,S"]}
    # root's mail is never served
    c = pop3d.connect()
    r = c.login("root", PASSWORDS["root"])
    assert r.startswith("-ERR "), r
    c.close()


def debian_spool_mbox(pop3d, mode):
    """poptest's mbox in a spool laid out as Debian's /var/mail (root:mail
    2775), owned poptest:mail with mode; the server started."""
    pop3d.mail_spool_as_debian()
    pop3d.start()
    pw = pwd.getpwnam("poptest")
    mail_gid = grp.getgrnam("mail").gr_gid
    path = pop3d.p.mbox_path("poptest")
    path.write_bytes(MBOX_1 + MBOX_TWIN)
    os.chown(path, pw.pw_uid, mail_gid)
    os.chmod(path, mode)
    return pw, mail_gid, path


def test_mbox_served_as_its_owner_with_group_mail(pop3d):
    pw, mail_gid, path = debian_spool_mbox(pop3d, 0o600)
    c = pop3d.login()
    assert c.cmd("STAT").startswith("+OK 2 ")
    holders = [proc_status(pid) for pid in socket_owners(c.local_port)]
    mine = [s for s in holders if s and uids(s) == [pw.pw_uid] * 4]
    assert mine, holders
    for s in mine:
        assert mail_gid in gids(s) + [int(g) for g in s["Groups"].split()], s
        assert int(s["CapEff"], 16) == 0, s
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    quit_ok(c)
    st = os.stat(path)
    assert path.read_bytes() == MBOX_TWIN
    assert st.st_uid == pw.pw_uid and (st.st_mode & 0o077) == 0, (st.st_uid, oct(st.st_mode))
    for f in os.listdir(pop3d.p.mail):
        s = os.lstat(pop3d.p.mail / f)
        assert s.st_uid == pw.pw_uid, (f, s.st_uid)


def test_mbox_keeps_its_mode_through_a_rewrite(pop3d):
    """A group-readable mbox (0660 user:mail) stays so after DELE + QUIT,
    whatever the server's umask."""
    pw, mail_gid, path = debian_spool_mbox(pop3d, 0o660)
    c = pop3d.login()
    assert c.cmd("DELE 1") == "+OK Marked to be deleted."
    quit_ok(c)
    st = os.stat(path)
    assert path.read_bytes() == MBOX_TWIN
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (pw.pw_uid, mail_gid, 0o660), \
        (st.st_uid, st.st_gid, oct(st.st_mode))


def test_sasldb_readable_through_a_group_of_mail_owner(pop3d):
    """Debian's /etc/sasldb2 is root:sasl 0640 and postern is put in group
    sasl: the auth process has mail_owner's supplementary groups."""
    group = "postern-popsasl"
    if subprocess.run(["getent", "group", group], stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["groupadd", "-r", group], check=True)
    subprocess.run(["usermod", "-a", "-G", group, "postern"], check=True)
    try:
        pop3d.start(**MAILDIR)
        pop3d.maildir()
        os.chown(pop3d.sasldb, 0, grp.getgrnam(group).gr_gid)
        os.chmod(pop3d.sasldb, 0o640)
        c = pop3d.connect()
        assert c.login("poptest", PW) == LOGGED_IN
        quit_ok(c)
    finally:
        subprocess.run(["gpasswd", "-d", "postern", group], stdout=subprocess.DEVNULL)


def cpu_seconds(pid):
    """utime + stime of a process, or None when it is gone."""
    try:
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_tls_client_that_stops_reading_is_let_go(pop3d, certs):
    """Over pop3s a client that asks for a big message and then reads
    nothing ties up its login (TLS proxy) and mail processes only until
    pop3d_timeout (and the proxy's margin) has passed."""
    pop3d.start(pop3s=True, pop3d_tls_cert_file=certs["crt"], pop3d_tls_key_file=certs["key"],
                pop3d_timeout="3s", **MAILDIR)
    big = msg("big", (b"y" * 999 + b"\n") * 30000)         # 30 MB: more than the socket buffers
    pop3d.put(pop3d.maildir(), big, name(1))
    ctx = client_context(certs)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)      # before connect: a small window
    raw.settimeout(DEFAULT_TIMEOUT)
    raw.connect(("127.0.0.1", pop3d.pop3s_port))
    s = ctx.wrap_socket(raw, server_hostname=HOST)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK Postern ready.")
    s.sendall(b"USER poptest\r\nPASS %s\r\n" % PW.encode())
    assert f.readline() == b"+OK\r\n"
    assert f.readline() == b"+OK Logged in.\r\n"
    baseline = len(pop3d.children())
    assert baseline >= 2                    # the TLS proxy and the mail process
    s.sendall(b"RETR 1\r\n")
    time.sleep(0.5)
    # blocked on the client, not spinning: under 0.3 s of CPU in a second
    before = {pid: cpu_seconds(pid) for pid in pop3d.children()}
    time.sleep(1.0)
    for pid, t in before.items():
        now = cpu_seconds(pid)
        assert now is None or t is None or now - t < 0.3, (pid, t, now)
    deadline = time.monotonic() + 15
    while pop3d.children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pop3d.children(), pop3d.children()
    s.close()
