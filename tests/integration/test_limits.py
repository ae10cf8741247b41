"""Limits a client cannot get around: timeouts with a deadline per line
(a trickling client is cut off), error limits, per-client connection
count and rate."""

import select
import time


TIMEOUT_S = 2
TIMEOUT_REPLY = b"421 4.4.2 mail.example.test Error: timeout exceeded\r\n"


def trickle_until_closed(c, payload, interval=0.5, limit=15.0):
    """Sends payload one byte per interval until the server closes; returns
    (seconds until the close, bytes received)."""
    start = time.monotonic()
    got = b""
    i = 0
    next_send = start
    sock = c.sock
    while time.monotonic() - start < limit:
        now = time.monotonic()
        if now >= next_send:
            try:
                sock.send(payload[i % len(payload):i % len(payload) + 1])
            except (BrokenPipeError, ConnectionResetError):
                pass
            i += 1
            next_send += interval
        r, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        if r:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, got
            got += chunk
    raise AssertionError("server did not cut off a trickling client in %.0fs (got %r)" % (limit, got))


def timeout_params():
    return dict(smtpd_timeout="%ds" % TIMEOUT_S)


def test_idle_timeout(postern):
    p = postern.start(**timeout_params())
    c = p.connect()
    start = time.monotonic()
    data, closed = c.read_to_eof(timeout=10)
    elapsed = time.monotonic() - start
    assert closed and data == TIMEOUT_REPLY, data
    assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + 2.5, elapsed


def test_trickled_command_is_cut_off(postern):
    p = postern.start(**timeout_params())
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    elapsed, got = trickle_until_closed(c, b"NOOP NOOP NOOP NOOP NOOP NOOP NOOP ")
    assert got == TIMEOUT_REPLY, got
    assert elapsed <= TIMEOUT_S + 2.5, "cut off only after %.1fs" % elapsed


def test_trickled_data_is_cut_off(postern):
    p = postern.start(**timeout_params())
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<slow@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: slow\r\n\r\n")
    elapsed, got = trickle_until_closed(c, b"x")
    assert got == TIMEOUT_REPLY, got
    assert elapsed <= TIMEOUT_S + 2.5, "cut off only after %.1fs" % elapsed
    p.barrier()
    assert p.mbox("mailtest") == []


def test_steady_data_is_not_cut_off(postern):
    """The DATA deadline moves with the data (smtpd_min_data_rate, 500 B/s by
    default): 1000-byte lines every 0.8 s for longer than smtpd_timeout pass."""
    p = postern.start(**timeout_params())
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<steady@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: steady\r\n\r\n")
    for i in range(4):
        time.sleep(0.8)
        c.send("line %d %s\r\n" % (i, "x" * 990))
    c.send(".\r\n")
    assert c.reply().code == 250
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nline 3 " + b"x" * 990 + b"\n\n")


def test_hard_error_limit(postern):
    p = postern.start(smtpd_hard_error_limit=3, smtpd_soft_error_limit=10,
                      smtpd_error_sleep_time="0")
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    errors, final = 0, None
    for _ in range(8):
        try:
            c.send("BOGUS\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            r = c.reply(5)
        except EOFError:
            break
        if r.code == 421:
            final = r
            break
        assert r.code == 502, r
        errors += 1
    assert final is not None, "no 421 after %d errors" % errors
    assert final.text.startswith("421 4.7.0 mail.example.test Error: too many errors"), final
    assert errors == 3, "421 came after %d errors, smtpd_hard_error_limit = 3" % errors
    assert c.read_to_eof(5)[1], "connection not closed after 421"


def limit_params(**kw):
    # the default exceptions are $mynetworks, which holds 127.0.0.1
    return dict(smtpd_client_event_limit_exceptions="192.0.2.1", **kw)


def test_connection_count_limit(postern):
    p = postern.configure(**limit_params(smtpd_client_connection_count_limit=2))
    p.start_qmgr()
    p.start_smtpd(wait_ready=False)
    c1, c2 = p.connect(), p.connect()
    c3 = p.connect(greeting=False)
    r = c3.reply()
    assert r.text.startswith("421 4.7.0 "), r
    assert c3.read_to_eof(5)[1], "connection not closed after 421"
    c1.expect("NOOP", 250)
    c2.expect("NOOP", 250)
    c1.expect("QUIT", 221)
    c1.read_to_eof(5)
    # once the server has seen the close, a new connection is welcome again
    deadline = time.monotonic() + 5
    while True:
        c4 = p.connect(greeting=False)
        r = c4.reply()
        c4.close()
        if r.code == 220:
            break
        assert time.monotonic() < deadline, "still refused after a connection closed: %r" % r
        time.sleep(0.05)


def test_connection_rate_limit(postern):
    p = postern.configure(**limit_params(smtpd_client_connection_rate_limit=3,
                                         anvil_rate_time_unit="60s"))
    p.start_qmgr()
    p.start_smtpd(wait_ready=False)
    for _ in range(3):
        c = p.connect()
        c.expect("QUIT", 221)
        c.close()
    c = p.connect(greeting=False)
    r = c.reply()
    assert r.text.startswith("421 4.7.0 "), r
    assert c.read_to_eof(5)[1]


def test_exceptions_are_not_limited(postern):
    """With the default exceptions ($mynetworks), 127.0.0.1 is not limited."""
    p = postern.configure(smtpd_client_connection_count_limit=1)
    p.start_qmgr()
    p.start_smtpd(wait_ready=False)
    conns = [p.connect() for _ in range(3)]
    for c in conns:
        c.expect("NOOP", 250)
        c.close()
